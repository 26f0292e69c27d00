//! CODEOWNERS with GitHub's semantics. Pure: text in, owners out.
//!
//! * Patterns follow gitignore rules: a leading `/` or a `/` in the middle anchors the pattern
//!   at the repository root, otherwise it matches at any depth; `*` and `?` stay within one path
//!   segment, `**` crosses segments; a trailing `/` matches directories only; a pattern naming a
//!   directory owns everything below it. As GitHub documents, `docs/*` owns `docs/a.md` but not
//!   `docs/build/b.md`.
//! * The **last** matching line wins; all its owners are kept (`@user`, `@org/team`, emails);
//!   a matching line without owners un-owns the path.

use regex::Regex;

#[derive(Debug, Clone)]
struct Rule {
    pattern: String,
    matcher: Regex,
    owners: Vec<String>,
}

/// A parsed CODEOWNERS file.
#[derive(Debug, Clone, Default)]
pub struct CodeOwners {
    rules: Vec<Rule>,
    /// Lines that could not be read (invalid patterns), for warnings.
    pub skipped_lines: Vec<usize>,
}

/// The owners of one path and the rule that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ownership<'a> {
    /// Empty when the last matching rule un-owns the path.
    pub owners: &'a [String],
    pub pattern: &'a str,
}

impl CodeOwners {
    pub fn parse(text: &str) -> Self {
        let mut parsed = Self::default();
        for (index, raw) in text.lines().enumerate() {
            let line = strip_comment(raw).trim();
            if line.is_empty() {
                continue;
            }
            let mut fields = line.split_whitespace();
            let Some(pattern) = fields.next() else {
                continue;
            };
            let owners: Vec<String> = fields.map(str::to_string).collect();
            match glob_to_regex(pattern) {
                Some(matcher) => parsed.rules.push(Rule {
                    pattern: pattern.to_string(),
                    matcher,
                    owners,
                }),
                None => parsed.skipped_lines.push(index + 1),
            }
        }
        parsed
    }

    /// The last rule matching `path` (repository-relative, `/`-separated), if any.
    pub fn owners_of(&self, path: &str) -> Option<Ownership<'_>> {
        let path = path.trim_start_matches('/');
        self.rules
            .iter()
            .rev()
            .find(|rule| rule.matcher.is_match(path))
            .map(|rule| Ownership {
                owners: &rule.owners,
                pattern: &rule.pattern,
            })
    }
}

/// `#` starts a comment unless escaped (`\#`).
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes[i - 1] != b'\\') {
            return &line[..i];
        }
    }
    line
}

fn glob_to_regex(pattern: &str) -> Option<Regex> {
    let directory_only = pattern.ends_with('/');
    let body = pattern.trim_end_matches('/');
    let anchored = body.starts_with('/') || body.contains('/');
    let body = body.trim_start_matches('/');
    if body.is_empty() {
        return None;
    }
    let last_segment = body.rsplit('/').next().unwrap_or(body);
    // A plain name may be a directory: it owns what is below. A wildcard in the last segment
    // matches entries of that directory only (GitHub's `docs/*` example), except `**`.
    let descends = directory_only || !last_segment.contains(['*', '?']) || last_segment == "**";

    let mut regex = String::from(if anchored { "^" } else { "^(?:.*/)?" });
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                let slash_follows = chars.get(i + 2) == Some(&'/');
                if slash_follows {
                    regex.push_str("(?:.*/)?");
                    i += 3;
                } else {
                    regex.push_str(".*");
                    i += 2;
                }
                continue;
            }
            '*' => regex.push_str("[^/]*"),
            '?' => regex.push_str("[^/]"),
            '\\' if i + 1 < chars.len() => {
                i += 1;
                regex.push_str(&regex::escape(&chars[i].to_string()));
            }
            c => regex.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    regex.push_str(match (directory_only, descends) {
        (true, _) => "/.*$",
        (false, true) => "(?:/.*)?$",
        (false, false) => "$",
    });
    Regex::new(&regex).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(file: &CodeOwners, path: &str) -> Option<Vec<String>> {
        file.owners_of(path).map(|o| o.owners.to_vec())
    }

    fn strings(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|s| s.to_string()).collect())
    }

    /// The examples of GitHub's CODEOWNERS documentation.
    #[test]
    fn github_documented_examples() {
        let file = CodeOwners::parse(
            "# comment\n*       @global-owner1 @global-owner2\n*.js    @js-owner #This is an inline comment.\n*.go docs@example.com\n*.txt @octo-org/octocats\n/build/logs/ @doctocat\ndocs/*  docs@example.com\napps/ @octocat\n/docs/ @doctocat\n/scripts/ @doctocat @octocat\n**/logs @octocat\n/apps/ @octocat\n/apps/github\n/apps/ @octocat\n/apps/github @doctocat\n",
        );
        assert_eq!(
            owners(&file, "README.md"),
            strings(&["@global-owner1", "@global-owner2"])
        );
        assert_eq!(owners(&file, "src/app.js"), strings(&["@js-owner"]));
        assert_eq!(owners(&file, "main.go"), strings(&["docs@example.com"]));
        assert_eq!(
            owners(&file, "notes/a.txt"),
            strings(&["@octo-org/octocats"])
        );
        assert_eq!(
            owners(&file, "build/logs/x.log"),
            strings(&["@octocat"]),
            "**/logs comes later"
        );
        assert_eq!(
            owners(&file, "scripts/deploy.sh"),
            strings(&["@doctocat", "@octocat"])
        );
        assert_eq!(owners(&file, "deep/logs/y"), strings(&["@octocat"]));
        assert_eq!(owners(&file, "apps/github/x"), strings(&["@doctocat"]));
        assert_eq!(owners(&file, "apps/other/x"), strings(&["@octocat"]));
    }

    #[test]
    fn wildcard_last_segment_does_not_descend_and_ownerless_lines_unown() {
        let file = CodeOwners::parse("* @all\ndocs/* @docs\n/vllm/utils/argparse_utils.py\n");
        assert_eq!(
            owners(&file, "docs/getting-started.md"),
            strings(&["@docs"])
        );
        assert_eq!(
            owners(&file, "docs/build-app/troubleshooting.md"),
            strings(&["@all"])
        );
        assert_eq!(owners(&file, "vllm/utils/argparse_utils.py"), Some(vec![]));
    }

    #[test]
    fn real_vllm_codeowners() {
        let file = CodeOwners::parse(include_str!(
            "../../wiremock-fixtures/github/vllm_CODEOWNERS"
        ));
        assert!(file.skipped_lines.is_empty(), "{:?}", file.skipped_lines);
        let cases = [
            (
                "tests/models/language/generation/test_hybrid.py",
                strings(&["@tdoublep", "@tomeras91"]),
            ),
            (
                "tests/v1/kv_connector/unit/test_x.py",
                strings(&["@ApostaC", "@orozery", "@ivanium"]),
            ),
            (
                "tests/distributed/test_pipeline_parallel.py",
                strings(&["@youkaichao"]),
            ),
            (
                ".buildkite/test-pipeline.yaml",
                strings(&["@Harry-Chen", "@khluu"]),
            ),
        ];
        for (path, expected) in cases {
            assert_eq!(owners(&file, path), expected, "{path}");
        }
        let entrypoints =
            owners(&file, "tests/entrypoints/openai/test_chat.py").unwrap_or_default();
        assert!(
            entrypoints.contains(&"@DarkLight1337".to_string()),
            "{entrypoints:?}"
        );
    }
}
