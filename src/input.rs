//! Values from outside (tool arguments, pasted text) parsed once into types, so the rest of the
//! code never re-checks a string: a pytest node id, a GitHub repository slug, a commit sha.
//! Pure.
//! Invalid input is refused here, before any request is made.

use std::fmt;

/// The longest node id accepted; real vLLM ids with long parameter lists stay under 1,000.
pub const MAX_NODE_ID_CHARS: usize = 2_000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("test_nodeid {0}: give a pytest node id like tests/v1/test_x.py::test_name[param]")]
    NodeId(&'static str),
    #[error("repo {0:?} is not a GitHub repository: give owner/name, e.g. vllm-project/vllm")]
    RepoSlug(String),
    #[error("{argument} {value:?} is not a commit sha (7 to 40 hex digits)")]
    CommitSha {
        argument: &'static str,
        value: String,
    },
}

/// A pytest node id: `path/to/test_file.py::test_name[params]`, as written in logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeId(String);

impl NodeId {
    /// Accepts a relative `.py` path (with or without `tests/`, or under `/vllm-workspace/`)
    /// and a test name; refuses empty, over-long, control characters, absolute paths and
    /// `..` segments.
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(InputError::NodeId("is empty"));
        }
        if text.chars().count() > MAX_NODE_ID_CHARS {
            return Err(InputError::NodeId("is longer than 2000 characters"));
        }
        if text.chars().any(char::is_control) {
            return Err(InputError::NodeId("contains control characters"));
        }
        let (file, test) = text
            .split_once("::")
            .ok_or(InputError::NodeId("has no ::test part"))?;
        let relative = file.strip_prefix("/vllm-workspace/").unwrap_or(file);
        if relative.starts_with('/') || relative.starts_with('\\') {
            return Err(InputError::NodeId("has an absolute path"));
        }
        if relative.split(['/', '\\']).any(|segment| segment == "..") {
            return Err(InputError::NodeId("has a .. path segment"));
        }
        if !relative.ends_with(".py") || test.trim().is_empty() {
            return Err(InputError::NodeId("is not file.py::test"));
        }
        Ok(Self(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The file part (`tests/v1/test_x.py`).
    pub fn file(&self) -> &str {
        self.0.split("::").next().unwrap_or(&self.0)
    }

    /// The form ids are compared in: pytest's working directory adds or drops `tests/` (and
    /// `/vllm-workspace/`), so `tests/a/test_b.py::t` and `a/test_b.py::t` compare equal, and
    /// nothing else does (`t` is not `t[1]`).
    pub fn comparable(&self) -> &str {
        comparable(&self.0)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// [`NodeId::comparable`] for an id as a log prints it (already trusted as log text).
pub fn comparable(id: &str) -> &str {
    let id = id.trim().trim_start_matches("/vllm-workspace/");
    id.strip_prefix("tests/").unwrap_or(id)
}

/// Repository paths a failure's file may be at, most likely first. vLLM runs pytest in
/// `/vllm-workspace/tests`, so node ids are relative to `tests/` (`v1/engine/test_x.py`),
/// rooted (`tests/v1/…`) or absolute (`/vllm-workspace/tests/v1/…`).
pub fn repo_path_candidates(file: &str) -> Vec<String> {
    let file = file.trim();
    let relative = file
        .strip_prefix("/vllm-workspace/")
        .or_else(|| file.split_once("/dist-packages/").map(|(_, rest)| rest))
        .unwrap_or(file)
        .trim_start_matches("./")
        .trim_start_matches('/');
    if ["tests/", "vllm/", "examples/", "benchmarks/", "csrc/"]
        .iter()
        .any(|root| relative.starts_with(root))
    {
        vec![relative.to_string()]
    } else {
        vec![format!("tests/{relative}"), relative.to_string()]
    }
}

/// Whether a log line names the test whose comparable id is `wanted` (as a whole word: not
/// `test_x` inside `test_x_2`, not `t[1]` inside `t[10]`), with or without `tests/`.
pub fn comparable_in_line(line: &str, wanted: &str) -> bool {
    line.match_indices(wanted).any(|(at, _)| {
        let before = &line[..at];
        let after = &line[at + wanted.len()..];
        let starts = before.is_empty()
            || before.ends_with(char::is_whitespace)
            || before.ends_with("tests/");
        let ends = after.is_empty() || after.starts_with(char::is_whitespace);
        starts && ends
    })
}

/// A GitHub repository `owner/name`: it becomes part of API paths and search queries, so only
/// GitHub's own characters pass.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoSlug(String);

impl RepoSlug {
    pub fn parse(text: &str) -> Result<Self, InputError> {
        let refuse = || InputError::RepoSlug(text.to_string());
        let (owner, name) = text.trim().split_once('/').ok_or_else(refuse)?;
        let owner_ok = (1..=39).contains(&owner.len())
            && owner
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !owner.starts_with('-');
        let name_ok = (1..=100).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && name != "."
            && name != "..";
        if owner_ok && name_ok {
            Ok(Self(format!("{owner}/{name}")))
        } else {
            Err(refuse())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A git commit, full or abbreviated: 7 to 40 hex digits, kept in lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CommitSha(String);

impl CommitSha {
    /// `argument` names the tool argument in the error.
    pub fn parse(argument: &'static str, text: &str) -> Result<Self, InputError> {
        let text = text.trim();
        if (7..=40).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(text.to_lowercase()))
        } else {
            Err(InputError::CommitSha {
                argument,
                value: text.to_string(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_shas() {
        assert_eq!(
            CommitSha::parse("good_commit", " ABCDEF1 ").map(|s| s.as_str().to_string()),
            Ok("abcdef1".to_string())
        );
        for bad in ["main", "abc123", &"a".repeat(41), "abcdefg"] {
            let refused = CommitSha::parse("bad_commit", bad)
                .expect_err(bad)
                .to_string();
            assert!(
                refused.starts_with("bad_commit") && refused.contains("not a commit sha"),
                "{refused}"
            );
        }
    }

    #[test]
    fn node_ids() {
        for good in [
            "tests/v1/distributed/test_dbo.py::test_dbo_dp_ep_gsm8k[deepep_low_latency]",
            "v1/e2e/test_x.py::TestA::test_b[a b-1]",
            "/vllm-workspace/tests/a/test_b.py::t",
        ] {
            assert!(NodeId::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "   ",
            "../../../../etc/passwd::x",
            "tests/../../etc/test_x.py::t",
            "/etc/passwd.py::x",
            "tests/test_x.py",
            "tests/test_x.py::",
            "tests/test_x.py::t\u{0}",
            "tests/test_x.txt::t",
        ] {
            let error = NodeId::parse(bad).expect_err(bad);
            assert!(
                error.to_string().contains("give a pytest node id"),
                "{error}"
            );
        }
        assert!(NodeId::parse(&format!("tests/a.py::{}", "x".repeat(3000))).is_err());
        let id = NodeId::parse("tests/a/test_b.py::t[1]").expect("valid");
        assert_eq!(id.comparable(), comparable("a/test_b.py::t[1]"));
        assert_ne!(id.comparable(), comparable("a/test_b.py::t"));
        assert_eq!(id.file(), "tests/a/test_b.py");
    }

    #[test]
    fn repo_slugs() {
        assert_eq!(
            RepoSlug::parse("vllm-project/vllm").map(|r| r.as_str().to_string()),
            Ok("vllm-project/vllm".to_string())
        );
        for bad in [
            "vllm-project/vllm repo:other/x",
            "vllm-project",
            "a/b/c",
            "../x",
            "a/..",
            "-a/b",
            "a/b?x=1",
        ] {
            assert!(RepoSlug::parse(bad).is_err(), "{bad}");
        }
    }
}
