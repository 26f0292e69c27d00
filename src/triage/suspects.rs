//! Ranking the commits of a new failure's onset range by how close each is to the failure, as
//! vLLM's bisect runbook does by hand: a commit that touches a file named in the traceback
//! first, then one that touches the test file, then one in the same directory, then one whose
//! files share CODEOWNERS with the test; ties go to the more recent commit. Pure.

use crate::model::Suspect;
use regex::Regex;
use std::sync::LazyLock;

/// `File "/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/core.py", line 857`.
static PYTHON_FRAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"File "([^"]+\.py)", line \d+"#).expect("valid"));
/// pytest's location line: `compile/fullgraph/test_multimodal_compile.py:58: AssertionError`.
static PYTEST_LOCATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^([\w./-]+\.py):\d+: ").expect("valid"));

/// A commit of the range, oldest first as GitHub's compare lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeCommit {
    pub sha: String,
    pub title: String,
    pub author: String,
    /// The files it changed; `None` when they were not read (budget, error).
    pub files: Option<Vec<String>>,
}

/// What is known of the failure.
#[derive(Debug, Clone, Default)]
pub struct FailureSite {
    /// Repository paths named in the traceback, most specific (innermost) last.
    pub traceback_files: Vec<String>,
    /// The test file (repository path), or the job's test area for a job-level failure.
    pub test_file: Option<String>,
    /// CODEOWNERS owners of the test file.
    pub test_owners: Vec<String>,
}

/// Repository paths named in a traceback or pytest excerpt, in order, without repeats. Only
/// vLLM's own files count: installed `vllm/…` packages, `/vllm-workspace/…`, and paths relative
/// to the `tests/` directory pytest runs in.
pub fn traceback_files(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let frames = PYTHON_FRAME.captures_iter(text).map(|c| c[1].to_string());
    let locations = PYTEST_LOCATION
        .captures_iter(text)
        .map(|c| c[1].to_string());
    for path in frames.chain(locations) {
        if let Some(repo_path) = repo_path(&path) {
            if !found.contains(&repo_path) {
                found.push(repo_path);
            }
        }
    }
    found
}

/// The repository path of a file as a log names it; `None` for files outside vLLM (other
/// installed packages, absolute paths elsewhere, `..`).
pub fn repo_path(path: &str) -> Option<String> {
    let path = path.trim();
    let installed = path
        .split_once("/dist-packages/")
        .or_else(|| path.split_once("/site-packages/"))
        .map(|(_, rest)| rest);
    let outside = match installed {
        Some(rest) => !rest.starts_with("vllm/"),
        None => path.starts_with('/') && !path.starts_with("/vllm-workspace/"),
    };
    if outside || path.contains("..") {
        return None;
    }
    crate::input::repo_path_candidates(path).into_iter().next()
}

fn directory(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// Ranks `commits` (oldest first) for `site`; `owners_of` gives a file's CODEOWNERS owners.
pub fn rank_suspects(
    commits: &[RangeCommit],
    site: &FailureSite,
    owners_of: &dyn Fn(&str) -> Vec<String>,
) -> Vec<Suspect> {
    let mut ranked: Vec<(u8, usize, Suspect)> = commits
        .iter()
        .enumerate()
        .map(|(order, commit)| {
            let (closeness, reason) = closeness(commit, site, owners_of);
            let suspect = Suspect {
                sha: commit.sha.clone(),
                title: commit.title.clone(),
                author: commit.author.clone(),
                reason,
                closeness,
            };
            (closeness, order, suspect)
        })
        .collect();
    // Closest first; among equals, the most recent (later in the range) first.
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)));
    ranked.into_iter().map(|(_, _, s)| s).collect()
}

fn closeness(
    commit: &RangeCommit,
    site: &FailureSite,
    owners_of: &dyn Fn(&str) -> Vec<String>,
) -> (u8, String) {
    let Some(files) = &commit.files else {
        return (0, "its files were not read".to_string());
    };
    if let Some(file) = site
        .traceback_files
        .iter()
        .rev()
        .find(|f| files.contains(f))
    {
        return (4, format!("touches {file}, named in the traceback"));
    }
    if let Some(test) = site
        .test_file
        .as_deref()
        .filter(|t| files.iter().any(|f| f == t))
    {
        return (3, format!("touches the test file {test}"));
    }
    let near: Vec<&str> = site
        .traceback_files
        .iter()
        .chain(site.test_file.iter())
        .map(|f| directory(f))
        .filter(|d| !d.is_empty())
        .collect();
    if let Some(file) = files.iter().find(|f| near.contains(&directory(f))) {
        return (
            2,
            format!(
                "touches {file}, in {}/ next to the failure's files",
                directory(file)
            ),
        );
    }
    if !site.test_owners.is_empty() {
        if let Some(file) = files
            .iter()
            .find(|f| owners_of(f).iter().any(|o| site.test_owners.contains(o)))
        {
            return (
                1,
                format!("touches {file}, which shares CODEOWNERS with the test"),
            );
        }
    }
    (0, "touches no file near the failure".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_from_python_frames_and_pytest_locations() {
        let text = "  File \"/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/core.py\", line 857, in run\n  File \"/usr/lib/python3/dist-packages/torch/nn/module.py\", line 1, in x\n  File \"/vllm-workspace/examples/offline_inference/data_parallel.py\", line 268, in <module>\ncompile/fullgraph/test_multimodal_compile.py:58: AssertionError\n";
        assert_eq!(
            traceback_files(text),
            vec![
                "vllm/v1/engine/core.py",
                "examples/offline_inference/data_parallel.py",
                "tests/compile/fullgraph/test_multimodal_compile.py"
            ]
        );
        assert_eq!(repo_path("../../etc/passwd"), None);
    }

    #[test]
    fn the_commit_that_touches_the_traceback_ranks_first() {
        let commit = |sha: &str, files: &[&str]| RangeCommit {
            sha: sha.into(),
            title: format!("commit {sha}"),
            author: "a".into(),
            files: Some(files.iter().map(|f| f.to_string()).collect()),
        };
        let commits = vec![
            commit(
                "culprit",
                &["vllm/distributed/device_communicators/all2all.py"],
            ),
            commit(
                "same-dir",
                &["vllm/distributed/device_communicators/pynccl.py"],
            ),
            commit("owners", &["vllm/model_executor/x.py"]),
            commit("test", &["tests/distributed/test_x.py"]),
            commit("unrelated", &["docs/index.md"]),
            RangeCommit {
                files: None,
                ..commit("unread", &[])
            },
        ];
        let site = FailureSite {
            traceback_files: vec![
                "vllm/v1/engine/core.py".into(),
                "vllm/distributed/device_communicators/all2all.py".into(),
            ],
            test_file: Some("tests/distributed/test_x.py".into()),
            test_owners: vec!["@owner".into()],
        };
        let owners_of = |f: &str| {
            if f.starts_with("vllm/model_executor/") {
                vec!["@owner".to_string()]
            } else {
                vec![]
            }
        };
        let ranked = rank_suspects(&commits, &site, &owners_of);
        let order: Vec<(&str, u8)> = ranked
            .iter()
            .map(|s| (s.sha.as_str(), s.closeness))
            .collect();
        assert_eq!(
            order,
            vec![
                ("culprit", 4),
                ("test", 3),
                ("same-dir", 2),
                ("owners", 1),
                ("unread", 0),
                ("unrelated", 0)
            ]
        );
        assert!(
            ranked[0].reason.contains("named in the traceback"),
            "{}",
            ranked[0].reason
        );
    }
}
