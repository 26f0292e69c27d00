//! Blame of one test function in a file with a long history: gitoxide (what `src/` uses) next
//! to `git blame -L` on the same range, measured in the same run. The set-up builds a
//! repository of 5,000 commits with `git fast-import`; every commit edits the file, one in 500
//! edits the test function.

use ciwatch_mcp::owners::source::function_line_range;
use ciwatch_mcp::owners::LocalRepo;
use criterion::{criterion_group, criterion_main, Criterion};
use std::io::Write;
use std::process::{Command, Stdio};

const COMMITS: usize = 5_000;
const FILE: &str = "tests/test_long_history.py";

fn file_at(commit: usize) -> String {
    let mut text = String::from("import pytest\n\n");
    for helper in 0..40 {
        // Each commit rewrites one helper, so the file changes every time.
        let version = if commit % 40 == helper {
            commit
        } else {
            commit - commit % 40
        };
        text.push_str(&format!("def helper_{helper}():\n    return {version}\n\n"));
    }
    let target_version = commit / 500;
    text.push_str(&format!("def test_target():\n    value = helper_1()\n    assert value >= {target_version}\n    assert isinstance(value, int)\n\n"));
    for helper in 40..60 {
        text.push_str(&format!("def helper_{helper}():\n    return {helper}\n\n"));
    }
    text
}

fn build_repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let status = Command::new("git")
        .args(["init", "-q", "--bare", "-b", "main"])
        .current_dir(dir.path())
        .status()
        .expect("git init");
    assert!(status.success());
    let mut import = Command::new("git")
        .args(["fast-import", "--quiet"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .spawn()
        .expect("git fast-import");
    {
        let stdin = import.stdin.as_mut().expect("stdin");
        let mut stream = std::io::BufWriter::new(stdin);
        for commit in 0..COMMITS {
            let content = file_at(commit);
            let message = format!("change {commit}");
            let author = format!(
                "Dev {} <dev{}@example.com> {} +0000",
                commit % 7,
                commit % 7,
                1_700_000_000 + commit * 600
            );
            write!(stream, "commit refs/heads/main\nmark :{}\nauthor {author}\ncommitter {author}\ndata {}\n{message}\n", commit + 1, message.len()).expect("write");
            if commit > 0 {
                writeln!(stream, "from :{commit}").expect("write");
            }
            write!(
                stream,
                "M 100644 inline {FILE}\ndata {}\n{content}\n",
                content.len()
            )
            .expect("write");
        }
    }
    assert!(import.wait().expect("fast-import finishes").success());
    dir
}

fn bench(c: &mut Criterion) {
    let dir = build_repository();
    let repo = LocalRepo::open(dir.path()).expect("open");
    let head = repo.head().expect("head");
    let source = String::from_utf8(
        repo.read_file(head, FILE)
            .expect("read")
            .expect("file exists"),
    )
    .expect("utf-8");
    let range = function_line_range(&source, None, "test_target").expect("function found");
    let gix_result = repo
        .blame(
            head,
            FILE,
            range,
            &std::sync::atomic::AtomicBool::new(false),
        )
        .expect("blame")
        .expect("commit");
    eprintln!(
        "blamed lines {range:?}: newest commit {} ({})",
        gix_result.short_sha, gix_result.summary
    );

    let lines = format!("{},{}", range.0, range.1);
    let git_porcelain = Command::new("git")
        .args(["blame", "--porcelain", "-L", &lines, "HEAD", "--", FILE])
        .current_dir(dir.path())
        .output()
        .expect("git blame");
    let git_text = String::from_utf8_lossy(&git_porcelain.stdout);
    assert!(
        git_text.contains(&gix_result.sha),
        "gix and git agree on the newest commit"
    );

    let mut group = c.benchmark_group("blame_5000_commits");
    group.sample_size(10);
    group.bench_function("gix", |b| {
        b.iter(|| {
            repo.blame(
                head,
                FILE,
                range,
                &std::sync::atomic::AtomicBool::new(false),
            )
            .expect("blame")
        })
    });
    group.bench_function("git_cli", |b| {
        b.iter(|| {
            let out = Command::new("git")
                .args(["blame", "--porcelain", "-L", &lines, "HEAD", "--", FILE])
                .current_dir(dir.path())
                .output()
                .expect("git blame");
            assert!(out.status.success());
            out.stdout.len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
