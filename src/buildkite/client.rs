//! The Buildkite REST client: list builds, get a build with its jobs, read a job log's tail.
//! All requests go through the shared [`HttpClient`] (rate limit, retries, counters).

use super::models::{Build, BuildKey, PipelineKey};
use crate::http::{next_link, HttpClient, HttpError, Target};
use crate::secret::Secret;
use crate::storage::Memo;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_RANGE, RANGE};
use reqwest::{Method, StatusCode};
use std::sync::{Arc, LazyLock};

/// Pages of 100 builds followed at most when listing; Buildkite refuses very deep listings, and
/// a 48-hour window of `vllm/ci` main is well under this.
pub const MAX_LIST_PAGES: usize = 10;

/// How long a listing's first page answers identical asks (same token, URL and query): a
/// burst of callers looking up the same nightly, or its counterpart, costs one request, and a
/// build listed is at most this much older than Buildkite's own answer.
pub const LISTING_FRESHNESS: std::time::Duration = std::time::Duration::from_secs(10);

/// First pages of listings by HTTP client, token, URL and query (see
/// [`BuildkiteClient::first_page_shared`]): one client's, whichever of its callers asks.
static LISTINGS: LazyLock<Memo<String, SharedPage>> =
    LazyLock::new(|| Memo::new(256, Some(LISTING_FRESHNESS)));

/// How long a pipeline the token cannot see (a listing's 404) stays unseen: a pipeline's
/// visibility changes with a token's scopes, not from one minute to the next, and a scan asks
/// for the compared pipeline only after its own logs, so a team's burst of scans reaches it
/// over more than [`LISTING_FRESHNESS`].
const NOT_VISIBLE_FOR: std::time::Duration = std::time::Duration::from_secs(300);

/// The listings that answered 404, by the same key as [`LISTINGS`].
static NOT_VISIBLE: LazyLock<Memo<String, String>> =
    LazyLock::new(|| Memo::new(64, Some(NOT_VISIBLE_FOR)));

/// One page of a listing: the next page's URL, and its items.
type Page<T> = (Option<String>, Vec<T>);

/// A listing's first page as identical asks share it: read, or a 404 (a pipeline the token
/// cannot see, remembered longer: [`NOT_VISIBLE_FOR`]).
#[derive(Clone)]
enum SharedPage {
    Read(Arc<Page<Build>>),
    NotVisible(String),
    /// This asker's fetch failed otherwise; not kept.
    Failed,
}

/// Builds of a listing, and whether it stopped at its page limit with builds left unread.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Newest first.
    pub builds: Vec<Build>,
    pub pages_read: usize,
    /// Pages were left unread: the page limit stopped it before what was wanted was found.
    pub cut: bool,
}

impl Listing {
    /// The warning a result carries when the listing was cut: what was asked, what was read.
    pub fn cut_warning(&self, asked: &str) -> Option<String> {
        self.cut.then(|| {
            format!(
                "the listing of builds for {asked} stopped at its limit of {} pages ({} builds read, the oldest #{}); older builds were not looked at",
                self.pages_read,
                self.builds.len(),
                self.builds.last().map_or(0, |b| b.number)
            )
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildkiteError {
    #[error("BUILDKITE_TOKEN is not set: create a token with the read_builds and read_build_logs scopes at https://buildkite.com/user/api-access-tokens and set BUILDKITE_TOKEN (or BUILDKITE_API_TOKEN)")]
    MissingToken,
    #[error("Buildkite rejected the token of {token_from} (401): check it, or create one with the read_builds and read_build_logs scopes at https://buildkite.com/user/api-access-tokens")]
    Unauthorized { token_from: &'static str },
    #[error(transparent)]
    Http(#[from] HttpError),
}

/// Filters for listing builds.
#[derive(Debug, Clone, Default)]
pub struct ListBuilds {
    pub branch: Option<String>,
    /// ISO 8601; builds created at or after it.
    pub created_from: Option<String>,
    /// ISO 8601; builds created at or before it.
    pub created_to: Option<String>,
    /// Leave out the `jobs` array (much smaller pages). With jobs, retried attempts are
    /// included.
    pub exclude_jobs: bool,
    /// Only builds in a final state (`state=finished`: passed, failed, blocked, canceled).
    pub finished_only: bool,
    /// Only builds in one of these states (`state[]=…`); empty for any.
    pub states: Vec<&'static str>,
    /// Builds per page (at most 100, Buildkite's maximum; 0 means 100). Listing with jobs makes
    /// pages large, so callers ask for what they need.
    pub per_page: usize,
}

impl ListBuilds {
    /// Builds of `branch` created since `since`, without their jobs (small pages).
    pub fn created_since(branch: &str, since: chrono::DateTime<chrono::Utc>) -> Self {
        use chrono::DurationRound;
        // To the minute before: callers a few seconds apart ask the same listing, and share it.
        let since = since
            .duration_trunc(chrono::TimeDelta::minutes(1))
            .unwrap_or(since);
        Self {
            branch: Some(branch.to_string()),
            created_from: Some(since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            exclude_jobs: true,
            ..Default::default()
        }
    }
}

#[derive(Clone)]
pub struct BuildkiteClient {
    http: HttpClient,
    base: String,
    token: Secret,
    /// Named by a 401 (see [`BuildkiteClient::with_token_from`]).
    token_from: &'static str,
}

impl BuildkiteClient {
    pub fn new(
        http: HttpClient,
        base_url: &str,
        token: Option<Secret>,
    ) -> Result<Self, BuildkiteError> {
        let token = token.ok_or(BuildkiteError::MissingToken)?;
        let http = http.for_token(&token_digest(&token));
        Ok(Self {
            http,
            base: base_url.trim_end_matches('/').to_string(),
            token,
            token_from: "BUILDKITE_TOKEN",
        })
    }

    /// Where the token came from, as a 401 names it to the person who set it: a variable, or
    /// the header an HTTP caller sent.
    pub fn with_token_from(mut self, token_from: &'static str) -> Self {
        self.token_from = token_from;
        self
    }

    /// `error` as this client reports it: a 401 names where the token came from.
    fn named(&self, error: HttpError) -> BuildkiteError {
        match error {
            HttpError::Unauthorized => BuildkiteError::Unauthorized {
                token_from: self.token_from,
            },
            error => BuildkiteError::Http(error),
        }
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// A digest of the token (never the token): what this client's token has seen is stored
    /// under it, so callers with different tokens never share stored builds or outcomes.
    pub fn token_scope(&self) -> String {
        token_digest(&self.token)
    }

    fn pipeline_url(&self, org: &str, pipeline: &str) -> String {
        format!("{}/organizations/{org}/pipelines/{pipeline}", self.base)
    }

    /// The API URL of one build.
    fn build_url(&self, build: &BuildKey) -> String {
        let pipeline = self.pipeline_url(&build.org, &build.pipeline);
        format!("{pipeline}/builds/{}", build.number)
    }

    fn get(&self, url: &str) -> reqwest::RequestBuilder {
        self.http
            .request_timeout(Method::GET, url)
            .header(AUTHORIZATION, format!("Bearer {}", self.token.expose()))
    }

    /// Builds of a pipeline, newest first, following `Link: rel="next"` up to `max_pages`, or
    /// until `enough` says the builds read hold what is wanted.
    pub async fn list_builds(
        &self,
        pipeline: &PipelineKey,
        filter: &ListBuilds,
        max_pages: usize,
        enough: impl Fn(&[Build]) -> bool + Sync,
    ) -> Result<Listing, BuildkiteError> {
        let PipelineKey { org, pipeline } = pipeline;
        let target = Target {
            description: format!("builds of {org}/{pipeline}"),
            not_found: format!("pipeline {org}/{pipeline} not found, or the token cannot see it (Buildkite answers 404 for pipelines outside the token's organizations)"),
        };
        let per_page = match filter.per_page {
            0 => 100,
            n => n.min(100),
        };
        let mut query: Vec<(&str, String)> = vec![("per_page", per_page.to_string())];
        if let Some(branch) = &filter.branch {
            query.push(("branch", branch.clone()));
        }
        if let Some(from) = &filter.created_from {
            query.push(("created_from", from.clone()));
        }
        if let Some(to) = &filter.created_to {
            query.push(("created_to", to.clone()));
        }
        if filter.exclude_jobs {
            query.push(("exclude_jobs", "true".into()));
        } else {
            // Retried attempts carry the flake signal, as in `get_build`.
            query.push(("include_retried_jobs", "true".into()));
        }
        if filter.finished_only {
            query.push(("state", "finished".into()));
        }
        for state in &filter.states {
            query.push(("state[]", (*state).to_string()));
        }
        let first = format!("{}/builds", self.pipeline_url(org, pipeline));
        let first_page = self
            .first_page_shared(&target, &first, &query)
            .await
            .map_err(|e| self.named(e))?;
        let page = Pagination {
            max_pages,
            enough: &enough,
            read: Some(first_page),
        };
        let (builds, pages_read, more) = self
            .paginate(&target, &first, &query, page)
            .await
            .map_err(|e| self.named(e))?;
        let cut = more && !enough(&builds);
        Ok(Listing {
            builds,
            pages_read,
            cut,
        })
    }

    /// The first page of a listing, shared by every caller of this token that asks for the
    /// same one while it is fetched or within [`LISTING_FRESHNESS`] of its answer (a team's
    /// scans of the same nightly, and of its counterpart, at once or one after another).
    async fn first_page_shared(
        &self,
        target: &Target,
        first: &str,
        query: &[(&str, String)],
    ) -> Result<Page<Build>, HttpError> {
        let key = format!(
            "{}\0{}\0{first}\0{query:?}",
            self.http.id(),
            self.token_scope()
        );
        // A caller never waits on a listing the watcher (background work) is fetching, which
        // goes out at background priority: the watcher's flight is apart, and its answer is
        // kept for the callers when it comes.
        let background = crate::http::is_background();
        let flight = if background {
            format!("{key}\0background")
        } else {
            key.clone()
        };
        if let Some(message) = NOT_VISIBLE.get(&key) {
            return Err(HttpError::NotFound(message));
        }
        let mut failure = None;
        let shared = LISTINGS
            .get_or_fetch(&flight, || async {
                match self.get_page(target, first, query).await {
                    Ok(page) => (SharedPage::Read(Arc::new(page)), true),
                    Err(HttpError::NotFound(message)) => (SharedPage::NotVisible(message), true),
                    Err(error) => {
                        failure = Some(error);
                        (SharedPage::Failed, false)
                    }
                }
            })
            .await;
        if background && !matches!(shared, SharedPage::Failed) {
            LISTINGS.insert(key.clone(), shared.clone());
        }
        match shared {
            SharedPage::Read(page) => Ok(page.as_ref().clone()),
            SharedPage::NotVisible(message) => {
                NOT_VISIBLE.insert(key, message.clone());
                Err(HttpError::NotFound(message))
            }
            SharedPage::Failed => Err(failure.unwrap_or_else(|| HttpError::Transport {
                what: target.description.clone(),
                message: "the listing failed".into(),
            })),
        }
    }

    /// One page: `url` with `query`, and the next page's URL.
    async fn get_page<T: serde::de::DeserializeOwned>(
        &self,
        target: &Target,
        url: &str,
        query: &[(&str, String)],
    ) -> Result<Page<T>, HttpError> {
        let read_page = |response: reqwest::Response| async move {
            let next = next_link(response.headers());
            let items: Vec<T> = decode(response, target).await?;
            Ok((next, items))
        };
        self.http
            .send_with(target, || self.get(url).query(query), read_page)
            .await
    }

    /// GETs `first` with `query` (unless the limit holds its page, read already), then follows
    /// `Link: rel="next"` (on the same API only) until the page limit or `enough`. Returns the
    /// items, the pages read, and whether pages were left unread.
    async fn paginate<T: serde::de::DeserializeOwned>(
        &self,
        target: &Target,
        first: &str,
        query: &[(&str, String)],
        page_limit: Pagination<'_, T>,
    ) -> Result<(Vec<T>, usize, bool), HttpError> {
        let max_pages = page_limit.max_pages;
        let mut read = page_limit.read;
        let mut pages_read = 0;
        let mut items = Vec::new();
        let mut next: Option<String> = None;
        for page in 0..max_pages.max(1) {
            let (page_next, page_items) = match (&next, page) {
                (None, 0) => match read.take() {
                    Some(page) => page,
                    None => self.get_page(target, first, query).await?,
                },
                (Some(url), _) => self.get_page(target, url, &[]).await?,
                (None, _) => break,
            };
            next = page_next.filter(|url| url.starts_with(&self.base));
            items.extend(page_items);
            pages_read += 1;
            if next.is_none() || (page_limit.enough)(&items) {
                break;
            }
        }
        Ok((items, pages_read, next.is_some()))
    }

    /// Tests of a Test Engine suite, following `Link: rel="next"` up to `max_pages` pages of 100;
    /// `label` filters as documented (`flaky`). The `bool` is true when pages were left unread.
    pub async fn list_suite_tests(
        &self,
        org: &str,
        suite: &str,
        label: Option<&str>,
        max_pages: usize,
    ) -> Result<(Vec<super::models::SuiteTest>, bool), BuildkiteError> {
        let target = Target {
            description: format!("Test Engine suite {org}/{suite}"),
            not_found: format!("Test Engine suite {suite} not found in {org}, or the token cannot see it (it needs the read_suites scope)"),
        };
        let first = format!(
            "{}/analytics/organizations/{org}/suites/{suite}/tests",
            self.base
        );
        let mut query: Vec<(&str, String)> = vec![("per_page", "100".into())];
        if let Some(label) = label {
            query.push(("label", label.to_string()));
        }
        let page_limit = Pagination {
            max_pages,
            enough: &|_: &[super::models::SuiteTest]| false,
            read: None,
        };
        self.paginate(&target, &first, &query, page_limit)
            .await
            .map(|(tests, _, more)| (tests, more))
            .map_err(|error| {
                BuildkiteError::Http(match error {
                    HttpError::Forbidden(what) => HttpError::Forbidden(format!(
                        "{what} (Test Engine needs the read_suites scope)"
                    )),
                    other => other,
                })
            })
    }

    /// One build with every job, retried attempts included (they carry the flake signal).
    pub async fn get_build(&self, build: &BuildKey) -> Result<Build, BuildkiteError> {
        let (number, pipeline) = (build.number, build.pipeline_name());
        let target = Target {
            description: format!("build {number} of {pipeline}"),
            not_found: format!(
                "build {number} not found in {pipeline}, or the token cannot see that pipeline"
            ),
        };
        let url = self.build_url(build);
        self.http
            .send_with(
                &target,
                || self.get(&url).query(&[("include_retried_jobs", "true")]),
                |response| decode(response, &target),
            )
            .await
            .map_err(|e| self.named(e))
    }

    /// Opens the last `suffix` bytes of a job's log (`Accept: text/plain`,
    /// `Range: bytes=-N`) and returns its body unread, with where it starts in the log and the
    /// log's size (`Content-Range`). The request is retried as the policy allows until the
    /// body starts; the body itself is read as a stream (see [`LogBody::next_chunk`]).
    pub async fn open_log(
        &self,
        build: &BuildKey,
        job_id: &str,
        suffix: u64,
    ) -> Result<LogBody, BuildkiteError> {
        let number = build.number;
        let target = Target {
            description: format!("the log of job {job_id} in build {number}"),
            not_found: format!("job {job_id} has no log in build {number}"),
        };
        let url = format!("{}/jobs/{job_id}/log", self.build_url(build));
        let range = format!("bytes=-{}", suffix.max(1));
        let opened = |response: reqwest::Response| {
            let what = target.description.clone();
            async move { LogBody::of(response, what, suffix) }
        };
        self.http
            .send_with(
                &target,
                || {
                    // No total timeout: a large log on a slow link streams for as long as bytes
                    // keep coming (the client's read timeout ends a stalled one).
                    self.http
                        .request(Method::GET, &url)
                        .header(AUTHORIZATION, format!("Bearer {}", self.token.expose()))
                        .header(ACCEPT, "text/plain")
                        .header(RANGE, &range)
                },
                opened,
            )
            .await
            .map_err(|e| self.named(e))
    }
}

/// A log's body, opened and not yet read.
pub struct LogBody {
    /// `None` for an empty log (416).
    response: Option<reqwest::Response>,
    /// Where the body starts in the log.
    pub start: u64,
    /// The log's size as the server gave it (`Content-Range`, or `Content-Length` of a whole
    /// log); the bytes asked for when it gave none, until the body is read.
    pub total: u64,
    /// The server said the log's size. A whole log sent without a length (a proxy that ignores
    /// `Range` and answers a chunked `200`) is read to its end, never taken for an empty one.
    size_known: bool,
    /// The server said where the body sits in the log (`Content-Range`), so a broken body can
    /// be resumed with a suffix range.
    ranged: bool,
    /// What the body is, for errors ("the log of job … in build …").
    what: String,
}

impl LogBody {
    /// The body of an answer to a request for the last `asked` bytes. Only a 416 or an
    /// explicit zero length is an empty log; a partial answer that does not say where it sits
    /// in the log is an error (retried next time, never stored).
    fn of(response: reqwest::Response, what: String, asked: u64) -> Result<Self, HttpError> {
        let body = |response, start, total, size_known, ranged, what| Self {
            response,
            start,
            total,
            size_known,
            ranged,
            what,
        };
        if response.status() == StatusCode::RANGE_NOT_SATISFIABLE {
            return Ok(body(None, 0, 0, true, true, what));
        }
        // `bytes 100-199/200`
        let content_range = response
            .headers()
            .get(CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (span, total) = v.strip_prefix("bytes ")?.split_once('/')?;
                let (start, _) = span.split_once('-')?;
                Some((
                    start.trim().parse::<u64>().ok()?,
                    total.trim().parse::<u64>().ok()?,
                ))
            });
        if let Some((start, total)) = content_range {
            return Ok(body(Some(response), start, total, true, true, what));
        }
        if response.status() == StatusCode::PARTIAL_CONTENT {
            return Err(HttpError::Decode {
                what,
                message: "a partial answer (206) without a Content-Range: where it sits in the log is unknown".into(),
            });
        }
        // A whole log: the server ignored the range.
        Ok(match response.content_length() {
            Some(length) => body(Some(response), 0, length, true, false, what),
            None => body(Some(response), 0, asked, false, false, what),
        })
    }

    /// Whether the server said the log's size (see [`LogBody::total`]).
    pub fn size_known(&self) -> bool {
        self.size_known
    }

    /// Bytes the body holds (as announced).
    pub fn len(&self) -> u64 {
        self.total.saturating_sub(self.start)
    }

    /// An empty log, as the server said: a 416, or a length of zero.
    pub fn is_empty(&self) -> bool {
        self.size_known && self.len() == 0
    }

    /// Whether a break can be resumed with a suffix range.
    pub fn resumable(&self) -> bool {
        self.ranged
    }

    /// The next bytes of the body, `None` at its end.
    pub async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, HttpError> {
        let Some(response) = self.response.as_mut() else {
            return Ok(None);
        };
        response.chunk().await.map_err(|e| HttpError::Transport {
            what: self.what.clone(),
            message: format!("log stream ended early: {e}"),
        })
    }
}

/// Where a listing stops: at `max_pages`, or once `enough` holds for what was read.
struct Pagination<'a, T> {
    max_pages: usize,
    enough: &'a (dyn Fn(&[T]) -> bool + Sync),
    /// The first page, when it was read already (shared with other callers).
    read: Option<Page<T>>,
}

/// A digest of a token (never the token), naming its store entries and rate window.
fn token_digest(token: &Secret) -> String {
    use sha2::{Digest, Sha256};
    crate::text::hex(&Sha256::digest(token.expose().as_bytes())[..8])
}

async fn decode<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    target: &Target,
) -> Result<T, HttpError> {
    let body = response.bytes().await.map_err(|e| HttpError::Decode {
        what: target.description.clone(),
        message: format!("body ended early: {e}"),
    })?;
    serde_json::from_slice(&body).map_err(|e| HttpError::Decode {
        what: target.description.clone(),
        message: format!("not the JSON Buildkite sends ({e})"),
    })
}
