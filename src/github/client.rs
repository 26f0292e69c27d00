//! GitHub through octocrab: one fetch of the repository's CI-failure issues per scan, cached.
//!
//! Three searches, each paginated: open issues labelled `ci-failure`, those closed within the
//! last `closed_days`, and `[CI Failure]`-titled issues without the label. The search API allows
//! 30 requests a minute with a token and 10 without; the `X-RateLimit-*` headers are read, a
//! short wait for the reset is taken, a longer one is not: matching then goes on with what was
//! fetched and says so in a warning. Nothing here fails a scan.

use super::matching::{IssueCandidate, IssueState};
use crate::secret::Secret;
use crate::storage::Memo;
use serde::Deserialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Entries kept: repositories searched, onset ranges, commits whose files were read.
const REPOSITORIES_KEPT: usize = 8;
const RANGES_KEPT: usize = 64;
const COMMITS_KEPT: usize = 4096;

/// Results per search page (GitHub's maximum).
const PER_PAGE: u32 = 100;
/// Pages per search; vLLM has a few hundred CI-failure issues at most.
const MAX_PAGES: u32 = 5;
/// The longest wait for a search rate-limit reset before giving up on more pages.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct GitHubOptions {
    pub api_url: String,
    pub token: Option<Secret>,
    /// Closed issues are candidates when closed within this many days.
    pub closed_days: u32,
    /// How long fetched candidates are reused across tool calls.
    pub cache_ttl: Duration,
    pub timeout: Duration,
}

/// Candidates plus what went wrong fetching them.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    pub issues: Arc<Vec<IssueCandidate>>,
    pub warnings: Vec<String>,
}

pub struct GitHubClient {
    octocrab: octocrab::Octocrab,
    options: GitHubOptions,
    /// Candidates by repository, for `cache_ttl`; one fetch however many scans ask at once.
    candidates: Memo<String, Arc<Vec<IssueCandidate>>>,
    /// Compare ranges and commit files never change: kept until evicted.
    compares: Memo<String, (Vec<CompareCommit>, usize)>,
    commit_files: Memo<String, Vec<String>>,
    /// Requests sent, for the scan's stats and the tests.
    pub requests: AtomicU64,
    /// GitHub's own word on its budgets (`X-RateLimit-*`), one per resource it counts apart.
    search_pacing: crate::http::ServerPacer,
    core_pacing: crate::http::ServerPacer,
}

#[derive(Debug, thiserror::Error)]
pub enum GitHubError {
    #[error("could not set up the GitHub client for {url}: {message}")]
    Setup { url: String, message: String },
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SearchPage {
    items: Vec<SearchItem>,
}

/// The fields of a search result item that matching reads; all optional, so one odd issue (a
/// deleted author, a null body) never loses the page.
#[derive(Deserialize, Default)]
#[serde(default)]
struct SearchItem {
    number: u64,
    title: Option<String>,
    body: Option<String>,
    html_url: Option<String>,
    state: Option<String>,
    labels: Vec<Label>,
    pull_request: Option<serde_json::Value>,
    author_association: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Label {
    name: Option<String>,
}

impl GitHubClient {
    pub fn new(options: GitHubOptions) -> Result<Self, GitHubError> {
        let setup_error = |message: String| GitHubError::Setup {
            url: options.api_url.clone(),
            message,
        };
        let mut builder = octocrab::Octocrab::builder()
            .base_uri(options.api_url.as_str())
            .map_err(|e| setup_error(e.to_string()))?
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(options.timeout));
        if let Some(token) = &options.token {
            builder = builder.personal_token(token.expose().to_string());
        }
        let octocrab = builder.build().map_err(|e| setup_error(e.to_string()))?;
        Ok(Self {
            octocrab,
            candidates: Memo::new(REPOSITORIES_KEPT, Some(options.cache_ttl)),
            options,
            compares: Memo::new(RANGES_KEPT, None),
            commit_files: Memo::new(COMMITS_KEPT, None),
            requests: AtomicU64::new(0),
            search_pacing: Default::default(),
            core_pacing: Default::default(),
        })
    }

    /// The CI-failure issues of `repo` (`owner/name`), from the cache when fresh.
    pub async fn ci_failure_candidates(&self, repo: &str) -> Candidates {
        let mut warnings = Vec::new();
        let issues = self
            .candidates
            .get_or_fetch(&repo.to_string(), || async {
                let closed_since = (chrono::Utc::now()
                    - chrono::Duration::days(i64::from(self.options.closed_days)))
                .format("%Y-%m-%d");
                let queries = [
                    format!("repo:{repo} is:issue label:ci-failure is:open"),
                    format!(
                        "repo:{repo} is:issue label:ci-failure is:closed closed:>={closed_since}"
                    ),
                    format!("repo:{repo} is:issue \"CI Failure\" in:title -label:ci-failure"),
                ];
                let mut issues: Vec<IssueCandidate> = Vec::new();
                for query in &queries {
                    if let Err(warning) = self.search_all(query, &mut issues).await {
                        warnings.push(warning);
                        break;
                    }
                }
                issues.sort_by_key(|i| i.number);
                issues.dedup_by_key(|i| i.number);
                // A partial fetch is used once, not kept.
                (Arc::new(issues), warnings.is_empty())
            })
            .await;
        Candidates { issues, warnings }
    }

    /// Runs one search through all its pages; `Err` is a warning for the result.
    async fn search_all(&self, query: &str, into: &mut Vec<IssueCandidate>) -> Result<(), String> {
        for page in 1..=MAX_PAGES {
            let url = format!(
                "{}/search/issues?q={}&per_page={PER_PAGE}&page={page}&sort=updated&order=desc",
                self.options.api_url.trim_end_matches('/'),
                urlencode(query)
            );
            if let Err(wait) = self.search_pacing.ready(MAX_RATE_LIMIT_WAIT).await {
                return Err(format!("GitHub search rate limit is spent for another {} s; matched against the issues fetched so far", wait.as_secs()));
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            crate::call::count_github_request();
            let response = self.octocrab._get(url.as_str()).await.map_err(|e| {
                format!("GitHub issue search failed ({e}); matching skipped the rest")
            })?;
            let status = response.status();
            let remaining = header_u64(response.headers(), "x-ratelimit-remaining");
            let reset = header_u64(response.headers(), "x-ratelimit-reset");
            self.search_pacing.observe(remaining, reset).await;
            let has_next = crate::http::next_link(response.headers()).is_some();
            let body = self
                .octocrab
                .body_to_string(response)
                .await
                .unwrap_or_default();
            if !status.is_success() {
                return Err(describe_failure(
                    status.as_u16(),
                    remaining,
                    reset,
                    &body,
                    self.options.token.is_some(),
                ));
            }
            let parsed: SearchPage = serde_json::from_str(&body).map_err(|e| {
                format!(
                    "GitHub search returned an unexpected body ({e}); matching skipped the rest"
                )
            })?;
            let count = parsed.items.len();
            into.extend(
                parsed
                    .items
                    .into_iter()
                    .filter(|i| i.pull_request.is_none())
                    .map(candidate),
            );
            if !has_next || count < PER_PAGE as usize {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// An issue as matching sees it. Titles and bodies are anyone's text: hidden characters are
/// removed here. Only the project's own people (or the `ci-failure` label, which only they
/// can set) make an issue count as tracking; a link must point at GitHub.
fn candidate(item: SearchItem) -> IssueCandidate {
    use crate::untrusted::sanitize;
    let labels: Vec<String> = item
        .labels
        .into_iter()
        .filter_map(|l| l.name)
        .map(|l| sanitize(&l).into_owned())
        .collect();
    let insider = matches!(
        item.author_association.as_deref(),
        Some("OWNER" | "MEMBER" | "COLLABORATOR")
    );
    let labelled = labels
        .iter()
        .any(|l| l.eq_ignore_ascii_case(super::matching::CI_FAILURE_LABEL));
    let url = item
        .html_url
        .filter(|u| u.starts_with("https://github.com/"))
        .unwrap_or_default();
    IssueCandidate {
        number: item.number,
        title: sanitize(item.title.as_deref().unwrap_or_default()).into_owned(),
        body: sanitize(item.body.as_deref().unwrap_or_default()).into_owned(),
        url,
        state: if item.state.as_deref() == Some("closed") {
            IssueState::Closed
        } else {
            IssueState::Open
        },
        labels,
        tracking: insider || labelled,
    }
}

fn header_u64(headers: &reqwest::header::HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

fn describe_failure(
    status: u16,
    remaining: Option<u64>,
    reset: Option<u64>,
    body: &str,
    has_token: bool,
) -> String {
    let message = crate::http::error_message(body);
    match status {
        401 => {
            "GitHub rejected GITHUB_TOKEN (401); issue matching skipped — fix or unset the token"
                .to_string()
        }
        403 | 429 if remaining == Some(0) || status == 429 => {
            let when = reset
                .and_then(|r| chrono::DateTime::from_timestamp(r as i64, 0))
                .map(|t| format!(" (resets {})", t.format("%H:%M:%S UTC")))
                .unwrap_or_default();
            let advice = if has_token {
                ""
            } else {
                "; set GITHUB_TOKEN for 30 searches a minute instead of 10"
            };
            format!("GitHub search rate limit reached{when}; issue matching is partial{advice}")
        }
        _ => format!("GitHub search answered {status} ({message}); issue matching skipped"),
    }
}

/// Query-string encoding for GitHub search (`q=`).
fn urlencode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ContentsItem {
    content: String,
    encoding: String,
}

/// One commit of a compare range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompareCommit {
    pub sha: String,
    /// The first line of its message.
    pub title: String,
    /// The GitHub login, else the commit's author name.
    pub author: String,
    /// When it was committed to the branch (ISO 8601): a merge's time.
    pub committed_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CompareBody {
    commits: Vec<CompareItem>,
    total_commits: usize,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CompareItem {
    sha: String,
    commit: CommitDetail,
    author: Option<Login>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CommitDetail {
    message: String,
    author: Option<NameOnly>,
    committer: Option<Dated>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Dated {
    date: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NameOnly {
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Login {
    login: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CommitBody {
    files: Vec<FileItem>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct FileItem {
    filename: String,
    previous_filename: Option<String>,
}

impl GitHubClient {
    /// GETs `path` of the REST API as JSON, `Ok(None)` for 404; `Err` names what was asked
    /// for.
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        what: &str,
    ) -> Result<Option<T>, String> {
        let url = format!("{}{path}", self.options.api_url.trim_end_matches('/'));
        if let Err(wait) = self.core_pacing.ready(MAX_RATE_LIMIT_WAIT).await {
            return Err(format!(
                "GitHub's rate limit is spent for another {} s: {what} not read",
                wait.as_secs()
            ));
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        crate::call::count_github_request();
        let response = self
            .octocrab
            ._get(url.as_str())
            .await
            .map_err(|e| format!("reading {what} from GitHub failed: {e}"))?;
        let headers = response.headers();
        let (remaining, reset) = (
            header_u64(headers, "x-ratelimit-remaining"),
            header_u64(headers, "x-ratelimit-reset"),
        );
        self.core_pacing.observe(remaining, reset).await;
        let status = response.status().as_u16();
        let body = self
            .octocrab
            .body_to_string(response)
            .await
            .unwrap_or_default();
        match status {
            200 => serde_json::from_str(&body).map(Some).map_err(|e| {
                format!("GitHub's answer for {what} was not the JSON it documents ({e})")
            }),
            404 => Ok(None),
            401 => Err(format!("GitHub rejected GITHUB_TOKEN (401) reading {what}")),
            403 | 429 => Err(format!(
                "GitHub refused {what} ({status}): rate limit or permissions; set GITHUB_TOKEN"
            )),
            other => Err(format!(
                "GitHub answered {other} for {what}: {}",
                crate::http::error_message(&body)
            )),
        }
    }

    /// The commits after `base` up to `head` (oldest first, at most GitHub's 250 per compare),
    /// and how many the range holds in all. Cached by the pair.
    pub async fn compare(
        &self,
        repo: &str,
        base: &str,
        head: &str,
    ) -> Result<(Vec<CompareCommit>, usize), String> {
        let key = format!("{repo}/{base}...{head}");
        if let Some(hit) = self.compares.get(&key) {
            return Ok(hit);
        }
        let what = format!("the commits {base}...{head} of {repo}");
        let body: CompareBody = self
            .get_json(&format!("/repos/{repo}/compare/{base}...{head}"), &what)
            .await?
            .ok_or_else(|| format!("GitHub does not know {what} (404)"))?;
        let commits: Vec<CompareCommit> = body
            .commits
            .into_iter()
            .map(|c| CompareCommit {
                title: c
                    .commit
                    .message
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                author: c
                    .author
                    .map(|a| a.login)
                    .filter(|l| !l.is_empty())
                    .or_else(|| c.commit.author.map(|a| a.name))
                    .unwrap_or_default(),
                committed_at: c.commit.committer.and_then(|d| d.date),
                sha: c.sha,
            })
            .collect();
        let total = body.total_commits.max(commits.len());
        self.compares.insert(key, (commits.clone(), total));
        Ok((commits, total))
    }

    /// The files one commit changed (renames under both names), cached by sha: a commit
    /// never changes.
    pub async fn commit_files(&self, repo: &str, sha: &str) -> Result<Vec<String>, String> {
        let key = format!("{repo}@{sha}");
        if let Some(hit) = self.commit_files.get(&key) {
            return Ok(hit);
        }
        let what = format!("commit {sha} of {repo}");
        let body: CommitBody = self
            .get_json(&format!("/repos/{repo}/commits/{sha}"), &what)
            .await?
            .ok_or_else(|| format!("GitHub does not know {what} (404)"))?;
        let files: Vec<String> = body
            .files
            .into_iter()
            .flat_map(|f| std::iter::once(f.filename).chain(f.previous_filename))
            .collect();
        self.commit_files.insert(key, files.clone());
        Ok(files)
    }

    /// A file of `repo`'s default branch from the contents API, `Ok(None)` when it does not
    /// exist. Used for CODEOWNERS when no local clone is configured.
    pub async fn file_text(&self, repo: &str, path: &str) -> Result<Option<String>, String> {
        use base64::Engine;
        let Some(item) = self
            .get_json::<ContentsItem>(
                &format!("/repos/{repo}/contents/{path}"),
                &format!("{path} of {repo}"),
            )
            .await?
        else {
            return Ok(None);
        };
        if item.encoding != "base64" {
            return Err(format!(
                "GitHub sent {path} as {:?}, not base64",
                item.encoding
            ));
        }
        let compact: String = item.content.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|e| format!("GitHub contents of {path} were not valid base64 ({e})"))?;
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }
}

#[cfg(test)]
mod candidate_tests {
    use super::*;

    #[test]
    fn outsiders_issues_do_not_track_and_hidden_text_is_removed() {
        let item = |association: &str, labels: serde_json::Value| -> SearchItem {
            serde_json::from_value(serde_json::json!({
                "number": 7,
                "title": "[CI Failure]: test_x\u{e0049}\u{e0047}\u{202e}",
                "html_url": "https://evil.example/issues/7",
                "state": "open",
                "labels": labels,
                "author_association": association
            }))
            .expect("item")
        };
        let outsider = candidate(item("NONE", serde_json::json!([])));
        assert!(!outsider.tracking);
        assert_eq!(outsider.title, "[CI Failure]: test_x");
        assert_eq!(outsider.url, "", "links only to GitHub");
        assert!(candidate(item("MEMBER", serde_json::json!([]))).tracking);
        assert!(candidate(item("NONE", serde_json::json!([{"name": "ci-failure"}]))).tracking);
    }
}
