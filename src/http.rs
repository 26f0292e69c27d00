//! The outbound HTTP layer every client shares: one rate limiter, one retry policy, request and
//! byte counters, and errors that say what to do.
//!
//! * Every request waits on its token's limiter first (Buildkite counts per user token): at most
//!   the configured number of requests in any sliding window (a minute), and none while the
//!   server's own `RateLimit-Remaining` is spent, until its `RateLimit-Reset`. Within the budget
//!   requests go out at once. With a shared store the window is also kept in Redis, one per
//!   token for all replicas ([`crate::storage::SharedWindow`]).
//! * 429 waits for `RateLimit-Reset` / `Retry-After` (seconds), 5xx and connection errors back
//!   off exponentially with jitter; both stop when the retry budget is spent. Other 4xx fail at
//!   once.
//! * Errors never contain the token: the URL is logged without query and headers are not.

mod pacing;

use pacing::Limiter;
pub use pacing::{in_background, is_background, RateBudget, ServerPacer};
use reqwest::{header::HeaderMap, RequestBuilder, Response, StatusCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub max_attempts: usize,
    /// The most time spent waiting between attempts of one request.
    pub total_budget: Duration,
}

/// What a request was for, to name it in errors ("build 65099", "log of job …").
#[derive(Debug, Clone)]
pub struct Target {
    pub description: String,
    /// What a 404 means for this request.
    pub not_found: String,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The Buildkite client names where its token came from (see `BuildkiteError::Unauthorized`).
    #[error("Buildkite rejected the token (401); create one at https://buildkite.com/user/api-access-tokens")]
    Unauthorized,
    #[error(
        "the token may not read {0} (403): it needs the read_builds and read_build_logs scopes"
    )]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("rate limited by Buildkite while fetching {what}; retry after {retry_after_secs}s (lower CIWATCH_REQUESTS_PER_MINUTE)")]
    RateLimited { what: String, retry_after_secs: u64 },
    #[error("Buildkite answered {status} for {what}: {message}")]
    Status {
        status: u16,
        what: String,
        message: String,
    },
    #[error("could not reach Buildkite for {what}: {message}")]
    Transport { what: String, message: String },
    #[error("unexpected response for {what}: {message}")]
    Decode { what: String, message: String },
}

impl HttpError {
    /// Whether another attempt may succeed. A body cut off or garbled in transit (a proxy, a
    /// reset connection) is read again like a connection error.
    fn is_transient(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Transport { .. } | Self::Decode { .. } => true,
            Self::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// Counts of what went over the wire, for the benchmarks (process-wide: every call adds to
/// them; a result's `stats` come from the call's own counts, `crate::call`).
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
}

#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    /// Every token's limiter, shared by the clones of this client.
    limiters: Arc<Limiters>,
    /// This view's: its token's, or the one for callers without a token.
    limiter: Arc<Limiter>,
    retry: RetryPolicy,
    /// The longest exchange of a request whose answer is read whole (JSON).
    timeout: Duration,
    pub counters: Arc<Counters>,
    /// This client's, shared by its clones and views (see [`HttpClient::id`]).
    id: u64,
}

static NEXT_CLIENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A limiter per Buildkite token (by its digest), made on first use.
struct Limiters {
    budget: RateBudget,
    by_token: std::sync::Mutex<std::collections::HashMap<String, Arc<Limiter>>>,
    /// The shared store's connection, for the replicas' one window per token.
    redis: Option<redis::aio::ConnectionManager>,
}

impl HttpClient {
    pub fn new(timeout: Duration, rate: RateBudget, retry: RetryPolicy) -> Result<Self, HttpError> {
        Ok(Self {
            inner: reqwest_client(timeout, Vec::new())?,
            limiters: Arc::new(Limiters {
                budget: rate,
                by_token: Default::default(),
                redis: None,
            }),
            limiter: Arc::new(Limiter::new(rate, None)),
            retry,
            timeout,
            counters: Arc::default(),
            id: NEXT_CLIENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// This client trusting the certificates of the PEM bundle `pem` besides the system's roots
    /// (a TLS-inspecting proxy in front of the API; the HTTP/2 tests' own authority).
    pub fn trusting(mut self, pem: &[u8]) -> Result<Self, HttpError> {
        let refused = |why: String| HttpError::Transport {
            what: "the extra certificates (CIWATCH_CA_FILE)".into(),
            message: format!(
                "{why}; give a file of PEM certificates (-----BEGIN CERTIFICATE-----)"
            ),
        };
        let roots = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| refused(format!("not a PEM bundle ({e})")))?;
        if roots.is_empty() {
            return Err(refused("no certificate in it".into()));
        }
        self.inner = reqwest_client(self.timeout, roots)?;
        Ok(self)
    }

    /// Names this client among the process's: its clones and token views share it (a
    /// sidecar's sessions are one client), another client never does. Answers shared between
    /// callers are keyed by it.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Keeps each token's window in the shared store too, so replicas share one budget.
    pub fn with_shared_window(mut self, redis: Option<redis::aio::ConnectionManager>) -> Self {
        self.limiters = Arc::new(Limiters {
            budget: self.limiters.budget,
            by_token: Default::default(),
            redis,
        });
        self
    }

    /// This client paced by the limiter of the token whose digest is `token_scope`.
    pub fn for_token(&self, token_scope: &str) -> Self {
        let limiters = &self.limiters;
        let limiter = limiters
            .by_token
            .lock()
            .map(|mut by_token| {
                by_token
                    .entry(token_scope.to_string())
                    .or_insert_with(|| {
                        let shared = limiters.redis.clone().map(|connection| {
                            crate::storage::SharedWindow::new(connection, token_scope)
                        });
                        Arc::new(Limiter::new(limiters.budget, shared))
                    })
                    .clone()
            })
            .unwrap_or_else(|_| self.limiter.clone());
        Self {
            limiter,
            ..self.clone()
        }
    }

    /// A request whose answer is read as a stream: only the read timeout bounds it.
    pub fn request(&self, method: reqwest::Method, url: &str) -> RequestBuilder {
        self.inner.request(method, url)
    }

    /// A request whose answer is read whole: the exchange is bounded by the timeout too.
    pub fn request_timeout(&self, method: reqwest::Method, url: &str) -> RequestBuilder {
        self.inner.request(method, url).timeout(self.timeout)
    }

    /// Sends the request built by `build` and returns the successful (2xx) response; 416 is
    /// passed through as success because it means "empty log" to the caller.
    pub async fn send(
        &self,
        target: &Target,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, HttpError> {
        self.send_with(target, build, |response| async { Ok(response) })
            .await
    }

    /// Sends the request built by `build` (called again for each attempt) and reads its
    /// response with `read`, retrying the whole exchange as the policy allows: a body that
    /// ends early or does not parse is fetched again, like a 5xx.
    pub async fn send_with<T, F, Fut>(
        &self,
        target: &Target,
        build: impl Fn() -> RequestBuilder,
        read: F,
    ) -> Result<T, HttpError>
    where
        F: Fn(Response) -> Fut,
        Fut: std::future::Future<Output = Result<T, HttpError>>,
    {
        use backon::{ExponentialBuilder, Retryable};
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.max_attempts)
            .with_total_delay(Some(self.retry.total_budget))
            .with_jitter();
        let attempt = || async {
            self.limiter.acquire().await;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            crate::call::count_buildkite_request();
            let response = build().send().await.map_err(|e| HttpError::Transport {
                what: target.description.clone(),
                message: describe_transport_error(&e),
            })?;
            self.limiter.observe(response.headers()).await;
            read(check_status(response, target).await?).await
        };
        let budget = self.retry.total_budget;
        attempt
            .retry(backoff)
            .when(HttpError::is_transient)
            .adjust(move |error, delay| retry_wait(error, delay, budget))
            .notify(|error, delay| tracing::warn!(%error, ?delay, "retrying request"))
            .await
    }

    pub fn record_bytes(&self, n: u64) {
        self.counters.bytes.fetch_add(n, Ordering::Relaxed);
        crate::call::count_log_bytes(n);
    }
}

/// Bytes one HTTP/2 stream may have received and not yet read. A log reader holds at most
/// 32 bodies open (`STREAMS_PER_PROCESS` of the reader), some waiting for the ceiling before
/// they are read; the connection's window is that many streams' worth, so those waiting can
/// never take the window the bodies being read need (hyper's defaults, 2 MiB a stream and
/// 5 MiB a connection, let three unread logs stop every other stream on the connection).
pub const H2_STREAM_WINDOW: u32 = 1024 * 1024;
const H2_CONNECTION_WINDOW: u32 = 32 * H2_STREAM_WINDOW;

fn reqwest_client(
    timeout: Duration,
    extra_roots: Vec<reqwest::Certificate>,
) -> Result<reqwest::Client, HttpError> {
    reqwest::Client::builder()
        .user_agent(concat!("ciwatch-mcp/", env!("CARGO_PKG_VERSION")))
        // Each read waits at most `timeout` for its next bytes; a whole exchange is bounded
        // by `timeout` only where the caller asks ([`HttpClient::request_timeout`]), so a
        // large log on a slow link streams for as long as bytes keep coming.
        .read_timeout(timeout)
        .connect_timeout(Duration::from_secs(10))
        .http2_initial_stream_window_size(H2_STREAM_WINDOW)
        .http2_initial_connection_window_size(H2_CONNECTION_WINDOW)
        .tls_certs_merge(extra_roots)
        .build()
        .map_err(|e| HttpError::Transport {
            what: "client set-up".into(),
            message: e.to_string(),
        })
}

/// How long to wait before retrying after `error`, given the backoff's own `delay`: a 429 waits
/// for the server's word, within the retry `budget`; past it, no retry (the caller is told when
/// to come back). Other errors take the backoff's delay.
fn retry_wait(error: &HttpError, delay: Option<Duration>, budget: Duration) -> Option<Duration> {
    match error {
        HttpError::RateLimited {
            retry_after_secs, ..
        } => {
            let wait = Duration::from_secs(*retry_after_secs);
            (wait <= budget)
                .then_some(wait.max(delay.unwrap_or_default().min(Duration::from_millis(50))))
        }
        _ => delay,
    }
}

async fn check_status(response: Response, target: &Target) -> Result<Response, HttpError> {
    let status = response.status();
    if status.is_success() || status == StatusCode::RANGE_NOT_SATISFIABLE {
        return Ok(response);
    }
    let retry_after = retry_after_secs(response.headers());
    let body = response.text().await.unwrap_or_default();
    let message = error_message(&body);
    let what = target.description.clone();
    Err(match status {
        StatusCode::UNAUTHORIZED => HttpError::Unauthorized,
        StatusCode::FORBIDDEN => HttpError::Forbidden(what),
        StatusCode::NOT_FOUND => HttpError::NotFound(target.not_found.clone()),
        StatusCode::TOO_MANY_REQUESTS => HttpError::RateLimited {
            what,
            retry_after_secs: retry_after.unwrap_or(60),
        },
        _ => HttpError::Status {
            status: status.as_u16(),
            what,
            message,
        },
    })
}

/// What an error body says: the `message` of the `{"message": …}` that Buildkite and GitHub
/// both send, else the start of the body.
pub fn error_message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| crate::text::bounded_text(body.trim(), 200))
}

/// The `rel="next"` URL of a `Link` header (Buildkite's and GitHub's paging).
pub fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params
            .split(';')
            .any(|p| p.trim() == "rel=\"next\"")
            .then(|| {
                url.trim()
                    .trim_start_matches('<')
                    .trim_end_matches('>')
                    .to_string()
            })
    })
}

/// Buildkite sends `RateLimit-Reset` (seconds until the window resets); other servers send
/// `Retry-After` in seconds.
fn retry_after_secs(headers: &HeaderMap) -> Option<u64> {
    ["ratelimit-reset", "retry-after"].iter().find_map(|name| {
        headers
            .get(*name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<u64>()
            .ok()
    })
}

/// reqwest's error text includes the URL; keep the kind, drop anything that could carry a query.
fn describe_transport_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "response body was cut off"
    } else {
        "request failed"
    };
    let source = std::error::Error::source(error)
        .map(|s| format!(": {s}"))
        .unwrap_or_default();
    format!("{kind}{source}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, LINK};

    #[test]
    fn link_header_next() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LINK,
            HeaderValue::from_static("<https://api.buildkite.com/v2/x?page=3>; rel=\"next\", <https://api.buildkite.com/v2/x?page=6>; rel=\"last\""),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://api.buildkite.com/v2/x?page=3")
        );
        headers.insert(
            LINK,
            HeaderValue::from_static("<https://api.buildkite.com/v2/x?page=1>; rel=\"first\""),
        );
        assert_eq!(next_link(&headers), None);
    }

    #[test]
    fn a_429_waits_for_the_servers_reset_within_the_budget_and_gives_up_past_it() {
        let limited = |secs| HttpError::RateLimited {
            what: "a build".into(),
            retry_after_secs: secs,
        };
        let budget = Duration::from_secs(30);
        let backoff = Some(Duration::from_millis(200));
        assert_eq!(
            retry_wait(&limited(1), backoff, budget),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            retry_wait(&limited(0), backoff, budget),
            Some(Duration::from_millis(50))
        );
        assert_eq!(retry_wait(&limited(42), backoff, budget), None);
        let server_error = HttpError::Status {
            status: 502,
            what: "a build".into(),
            message: String::new(),
        };
        assert_eq!(retry_wait(&server_error, backoff, budget), backoff);
    }
}
