//! Owners from a temporary git repository with a known history (created with the `git` CLI in
//! the test; `src/` reads it through gitoxide only): CODEOWNERS at HEAD, path mapping, blame of
//! the failing test function through renames and later edits, bare clones, a missing repo, and
//! the GitHub contents fallback.

use ciwatch_mcp::owners::{LocalRepo, OwnerOptions, OwnerSource, Owners};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

fn git(dir: &Path, args: &[&str], author: (&str, &str), date: &str) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", author.0)
        .env("GIT_AUTHOR_EMAIL", author.1)
        .env("GIT_COMMITTER_NAME", author.0)
        .env("GIT_COMMITTER_EMAIL", author.1)
        .env("GIT_AUTHOR_DATE", date)
        .env("GIT_COMMITTER_DATE", date)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

const ALICE: (&str, &str) = ("Alice", "alice@example.com");
const BOB: (&str, &str) = ("Bob", "bob@example.com");
const CAROL: (&str, &str) = ("Carol", "carol@example.com");
const DAVE: (&str, &str) = ("Dave", "dave@example.com");

const TEST_FILE_V1: &str = "import pytest\n\n\n@pytest.mark.parametrize(\"n\", [1, 2])\ndef test_a(n):\n    assert n > 0\n\n\ndef test_b():\n    assert True\n\n\nclass TestC:\n    def test_a(self):\n        assert 1\n";

/// History: Alice adds the file and CODEOWNERS; Bob edits test_b; Carol moves the file under
/// tests/v1/engine/; Dave edits test_a. Returns the repository's directory.
fn repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    git(
        root,
        &["init", "-q", "-b", "main"],
        ALICE,
        "2026-01-01T10:00:00Z",
    );
    std::fs::create_dir_all(root.join(".github")).expect("mkdir");
    std::fs::create_dir_all(root.join("tests/engine")).expect("mkdir");
    std::fs::write(
        root.join(".github/CODEOWNERS"),
        "/tests/v1 @v1-owner\n/tests/v1/engine @engine-a @engine-b\n",
    )
    .expect("write");
    std::fs::write(root.join("tests/engine/test_x.py"), TEST_FILE_V1).expect("write");
    git(root, &["add", "."], ALICE, "2026-01-01T10:00:00Z");
    git(
        root,
        &["commit", "-q", "-m", "Add engine tests"],
        ALICE,
        "2026-01-01T10:00:00Z",
    );

    std::fs::write(
        root.join("tests/engine/test_x.py"),
        TEST_FILE_V1.replace("    assert True\n", "    assert True is True\n"),
    )
    .expect("write");
    git(
        root,
        &["commit", "-q", "-am", "Tighten test_b"],
        BOB,
        "2026-02-01T10:00:00Z",
    );

    std::fs::create_dir_all(root.join("tests/v1")).expect("mkdir");
    git(
        root,
        &["mv", "tests/engine", "tests/v1/engine"],
        CAROL,
        "2026-03-01T10:00:00Z",
    );
    git(
        root,
        &["commit", "-q", "-m", "Move engine tests under v1"],
        CAROL,
        "2026-03-01T10:00:00Z",
    );

    let moved = root.join("tests/v1/engine/test_x.py");
    let text = std::fs::read_to_string(&moved)
        .expect("read")
        .replace("    assert n > 0\n", "    assert n > 0, n\n");
    std::fs::write(&moved, text).expect("write");
    git(
        root,
        &["commit", "-q", "-am", "Explain test_a failures"],
        DAVE,
        "2026-04-01T10:00:00Z",
    );
    dir
}

fn options() -> OwnerOptions {
    OwnerOptions {
        blame_timeout: Duration::from_secs(20),
        scan_blame_budget: Duration::from_secs(60),
        api_cache_ttl: Duration::from_secs(60),
    }
}

async fn lookup(
    owners: &Owners,
    file: &str,
    node_id: Option<&str>,
) -> (Option<ciwatch_mcp::owners::OwnerLookup>, Vec<String>) {
    let prepared = owners.prepare("vllm-project/vllm").await;
    let mut warnings = prepared.warnings.clone();
    let found = owners.lookup(&prepared, file, node_id, &mut warnings).await;
    (found, warnings)
}

#[tokio::test]
async fn codeowners_and_blame_from_a_work_tree_and_a_bare_clone() {
    let repo = repository();
    let bare = tempfile::tempdir().expect("temp dir");
    let bare_path = bare.path().join("vllm.git");
    git(
        repo.path(),
        &[
            "clone",
            "-q",
            "--bare",
            ".",
            bare_path.to_str().expect("utf-8"),
        ],
        ALICE,
        "2026-05-01T10:00:00Z",
    );

    for path in [repo.path().to_path_buf(), bare_path] {
        let owners = Owners::new(LocalRepo::open(&path).map(Some), None, options());
        // A node id relative to tests/, as pytest prints it in /vllm-workspace/tests.
        let (found, warnings) = lookup(
            &owners,
            "v1/engine/test_x.py",
            Some("v1/engine/test_x.py::test_a[1]"),
        )
        .await;
        assert!(warnings.is_empty(), "{warnings:?}");
        let found = found.expect("owners found");
        assert_eq!(found.path, "tests/v1/engine/test_x.py");
        assert_eq!(
            found.owners,
            vec!["@engine-a", "@engine-b"],
            "the last matching line wins"
        );
        assert_eq!(found.source, Some(OwnerSource::Codeowners));
        let blame = found.blame.expect("blame of test_a");
        assert_eq!(
            (blame.author.as_str(), blame.summary.as_str()),
            ("Dave", "Explain test_a failures")
        );
        assert_eq!(blame.lines, (4, 6), "decorator to the end of the function");

        // test_b was last changed by Bob, before the move: the blame follows the rename.
        let (found, _) = lookup(
            &owners,
            "tests/v1/engine/test_x.py",
            Some("tests/v1/engine/test_x.py::test_b"),
        )
        .await;
        let blame = found.and_then(|f| f.blame).expect("blame of test_b");
        assert_eq!(blame.author, "Bob");

        // The method of the class is a different function from the module-level test_a.
        let (found, _) = lookup(
            &owners,
            "v1/engine/test_x.py",
            Some("v1/engine/test_x.py::TestC::test_a"),
        )
        .await;
        let blame = found.and_then(|f| f.blame).expect("blame of TestC.test_a");
        assert_eq!(blame.author, "Alice", "unchanged since Alice wrote it: without rename tracking the move commit (Carol) would be blamed");
    }
}

#[tokio::test]
async fn missing_repository_is_a_warning_and_github_supplies_codeowners() {
    let github_mock = crate::common::github_server().await;
    let github = Arc::new(
        ciwatch_mcp::github::GitHubClient::new(ciwatch_mcp::github::GitHubOptions {
            api_url: github_mock.uri(),
            token: None,
            closed_days: 30,
            cache_ttl: Duration::from_secs(60),
            timeout: Duration::from_secs(5),
        })
        .expect("client"),
    );
    let owners = Owners::new(
        LocalRepo::open(Path::new("/nonexistent/vllm")).map(Some),
        Some(github.clone()),
        options(),
    );
    let (found, warnings) = lookup(
        &owners,
        "models/language/generation/test_hybrid.py",
        Some("models/language/generation/test_hybrid.py::test_models[x]"),
    )
    .await;
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("cannot open the git repository at /nonexistent/vllm")),
        "{warnings:?}"
    );
    let found = found.expect("owners from GitHub");
    assert_eq!(
        found.owners,
        vec!["@tdoublep", "@tomeras91"],
        "{warnings:?}"
    );
    assert!(found.blame.is_none());
    // CODEOWNERS is fetched once and cached.
    let before = github.requests.load(std::sync::atomic::Ordering::Relaxed);
    let _ = lookup(&owners, "lora/test_x.py", None).await;
    assert_eq!(
        github.requests.load(std::sync::atomic::Ordering::Relaxed),
        before
    );
}

#[tokio::test]
async fn files_missing_at_head_have_no_owner_entry() {
    let repo = repository();
    let owners = Owners::new(LocalRepo::open(repo.path()).map(Some), None, options());
    let (found, _) = lookup(
        &owners,
        "v1/engine/test_gone.py",
        Some("v1/engine/test_gone.py::test_a"),
    )
    .await;
    assert!(found.is_none());
}

/// A scan of the fixture nightly with `VLLM_REPO_PATH` at a clone holding the real CODEOWNERS
/// and every failing test file: each pytest failure gets its owners and a blame commit.
#[tokio::test]
async fn scan_with_a_local_clone_gives_owners_and_blame_for_every_pytest_failure() {
    use ciwatch_mcp::model::DetailLevel;
    use ciwatch_mcp::watch::{self, Budgets, Enrichment, NoProgress};
    let buildkite = crate::common::fixture_server().await;
    let client = crate::common::client(&crate::common::settings(&buildkite.uri()));
    let options = crate::common::scan_options(Budgets::default(), DetailLevel::Full, false);
    let first = watch::scan_build(
        &watch::JobReader::new(&client, None),
        Enrichment::default(),
        &ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", 65099),
        &options,
        &NoProgress,
    )
    .await
    .expect("scan");
    let pytest: Vec<String> = first
        .failures
        .iter()
        .map(|f| f.test_failure.test_name.clone())
        .filter(|t| t.contains("::"))
        .collect();
    assert!(pytest.len() >= 15);

    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    git(
        root,
        &["init", "-q", "-b", "main"],
        ALICE,
        "2026-01-01T10:00:00Z",
    );
    std::fs::create_dir_all(root.join(".github")).expect("mkdir");
    std::fs::write(
        root.join(".github/CODEOWNERS"),
        ciwatch_mcp::fixtures::CODEOWNERS,
    )
    .expect("write");
    for id in &pytest {
        let (file, rest) = id.split_once("::").expect("node id");
        let function = rest.split('[').next().expect("name");
        let path = ciwatch_mcp::owners::source::repo_path_candidates(file).remove(0);
        let full = root.join(&path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        let mut text = std::fs::read_to_string(&full).unwrap_or_default();
        if !text.contains(&format!("def {function}(")) {
            text.push_str(&format!("\n\ndef {function}():\n    assert True\n"));
        }
        std::fs::write(full, text).expect("write");
    }
    git(root, &["add", "."], ALICE, "2026-01-01T10:00:00Z");
    git(
        root,
        &["commit", "-q", "-m", "Add the failing tests"],
        ALICE,
        "2026-01-01T10:00:00Z",
    );

    let owners = Owners::new(LocalRepo::open(root).map(Some), None, self::options());
    let enrichment = Enrichment {
        github: None,
        owners: Some(&owners),
    };
    let result = watch::scan_build(
        &watch::JobReader::new(&client, None),
        enrichment,
        &ciwatch_mcp::buildkite::BuildKey::new("vllm", "ci", 65099),
        &options,
        &NoProgress,
    )
    .await
    .expect("scan");
    let codeowners = ciwatch_mcp::owners::CodeOwners::parse(ciwatch_mcp::fixtures::CODEOWNERS);
    for failure in result
        .failures
        .iter()
        .filter(|f| f.test_failure.test_name.contains("::"))
    {
        let name = &failure.test_failure.test_name;
        let path = failure
            .owner
            .path
            .as_deref()
            .unwrap_or_else(|| panic!("{name} has no owner path"));
        let expected: Vec<String> = codeowners
            .owners_of(path)
            .map(|o| o.owners.to_vec())
            .unwrap_or_default();
        assert_eq!(failure.owner.all, expected, "{name}");
        let blame = failure
            .owner
            .blame
            .as_ref()
            .unwrap_or_else(|| panic!("{name} has no blame"));
        assert_eq!(blame.author, "Alice");
    }
    let hybrid = result
        .failures
        .iter()
        .find(|f| {
            f.test_failure
                .test_name
                .starts_with("models/language/generation/test_common.py")
        })
        .expect("present");
    assert_eq!(hybrid.owner.first.as_deref(), Some("@DarkLight1337"));
}

/// A blame whose stop flag is set ends at its next object lookup with an error that says so;
/// the same blame unstopped finds the last commit (issue: blames over budget are cancelled).
#[test]
fn a_stopped_blame_ends_instead_of_running_on() {
    use std::sync::atomic::AtomicBool;
    let repo = repository();
    let local = LocalRepo::open(repo.path()).expect("opens");
    let head = local.head().expect("head");
    let file = "tests/v1/engine/test_x.py";
    let found = local
        .blame(head, file, (1, 3), &AtomicBool::new(false))
        .expect("blame")
        .expect("a commit");
    assert!(!found.sha.is_empty());
    let stopped = local
        .blame(head, file, (1, 3), &AtomicBool::new(true))
        .expect_err("stopped");
    assert!(stopped.to_string().contains("cancelled"), "{stopped}");
}
