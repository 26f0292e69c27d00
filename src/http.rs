//! The outbound HTTP layer every client shares: one rate limiter, one retry policy, request and
//! byte counters, and errors that say what to do.
//!
//! * Every request waits on the shared `governor` limiter first, so concurrent log fetches
//!   never exceed the configured rate.
//! * 429 waits for `RateLimit-Reset` / `Retry-After` (seconds), 5xx and connection errors back
//!   off exponentially with jitter; both stop when the retry budget is spent. Other 4xx fail at
//!   once.
//! * Errors never contain the token: the URL is logged without query and headers are not.

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::{header::HeaderMap, RequestBuilder, Response, StatusCode};
use std::num::NonZeroU32;
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
    #[error("Buildkite rejected the token (401): check BUILDKITE_TOKEN; create one at https://buildkite.com/user/api-access-tokens")]
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
    /// Whether another attempt may succeed.
    fn is_transient(&self) -> bool {
        match self {
            Self::RateLimited { .. } | Self::Transport { .. } => true,
            Self::Status { status, .. } => *status >= 500,
            _ => false,
        }
    }
}

/// Counts of what went over the wire, for the result's `stats` and the benchmarks.
#[derive(Debug, Default)]
pub struct Counters {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
}

#[derive(Clone)]
pub struct HttpClient {
    inner: reqwest::Client,
    limiter: Arc<DefaultDirectRateLimiter>,
    retry: RetryPolicy,
    pub counters: Arc<Counters>,
}

impl HttpClient {
    pub fn new(
        timeout: Duration,
        requests_per_minute: u32,
        burst: u32,
        retry: RetryPolicy,
    ) -> Result<Self, HttpError> {
        let inner = reqwest::Client::builder()
            .user_agent(concat!("ciwatch-mcp/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| HttpError::Transport {
                what: "client set-up".into(),
                message: e.to_string(),
            })?;
        let per_minute = NonZeroU32::new(requests_per_minute.max(1)).expect("max(1) is non-zero");
        let burst = NonZeroU32::new(burst.max(1)).expect("max(1) is non-zero");
        let limiter = RateLimiter::direct(Quota::per_minute(per_minute).allow_burst(burst));
        Ok(Self {
            inner,
            limiter: Arc::new(limiter),
            retry,
            counters: Arc::default(),
        })
    }

    pub fn request(&self, method: reqwest::Method, url: &str) -> RequestBuilder {
        self.inner.request(method, url)
    }

    /// Sends the request built by `build` (called again for each attempt), retrying as the
    /// policy allows. Returns the successful (2xx) response; 416 is passed through as success
    /// because it means "empty log" to the caller.
    pub async fn send(
        &self,
        target: &Target,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response, HttpError> {
        use backon::{ExponentialBuilder, Retryable};
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.retry.min_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.max_attempts)
            .with_total_delay(Some(self.retry.total_budget))
            .with_jitter();
        let attempt = || async {
            self.limiter.until_ready().await;
            self.counters.requests.fetch_add(1, Ordering::Relaxed);
            let response = build().send().await.map_err(|e| HttpError::Transport {
                what: target.description.clone(),
                message: describe_transport_error(&e),
            })?;
            check_status(response, target).await
        };
        let budget = self.retry.total_budget;
        attempt
            .retry(backoff)
            .when(HttpError::is_transient)
            .adjust(move |error, delay| match error {
                // Honour the server's own wait, within the budget; past it, give up now.
                HttpError::RateLimited {
                    retry_after_secs, ..
                } => {
                    let wait = Duration::from_secs(*retry_after_secs);
                    (wait <= budget).then_some(
                        wait.max(delay.unwrap_or_default().min(Duration::from_millis(50))),
                    )
                }
                _ => delay,
            })
            .notify(|error, delay| tracing::warn!(%error, ?delay, "retrying request"))
            .await
    }

    pub fn record_bytes(&self, n: u64) {
        self.counters.bytes.fetch_add(n, Ordering::Relaxed);
    }
}

async fn check_status(response: Response, target: &Target) -> Result<Response, HttpError> {
    let status = response.status();
    if status.is_success() || status == StatusCode::RANGE_NOT_SATISFIABLE {
        return Ok(response);
    }
    let retry_after = retry_after_secs(response.headers());
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| crate::logs::bounded_text(body.trim(), 200));
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
