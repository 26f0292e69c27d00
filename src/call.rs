//! One call's own context (a tool call, a CLI command): what it sent, counted where requests go
//! out, and the warnings it met on the way (a shared store that did not answer). A task-local
//! value, so concurrent calls never add to each other's `stats` or report each other's trouble.
//! Imports nothing of the crate: the HTTP layer and the store both write into it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What one call (a tool call, a CLI command) sent, counted where requests go out, and what went
/// wrong beside its answer (a shared store that did not answer): the call's own task-local
/// value, so concurrent calls never add to each other's `stats` or report each other's trouble.
#[derive(Debug, Default)]
struct CallCounters {
    buildkite_requests: AtomicU64,
    github_requests: AtomicU64,
    log_bytes: AtomicU64,
    warnings: std::sync::Mutex<Vec<String>>,
}

/// The call's totals so far: Buildkite requests, GitHub requests, log bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallTotals {
    pub buildkite_requests: u64,
    pub github_requests: u64,
    pub log_bytes: u64,
}

tokio::task_local! {
    static CALL: Arc<CallCounters>;
}

/// Runs `work` as one call with counters of its own, unless it already runs inside one (the
/// scans of a main-branch analysis count into the analysis).
pub async fn within_call<F: std::future::Future>(work: F) -> F::Output {
    if CALL.try_with(|_| ()).is_ok() {
        work.await
    } else {
        CALL.scope(Arc::default(), work).await
    }
}

/// The current call's totals (zeros outside a call).
pub fn call_totals() -> CallTotals {
    CALL.try_with(|c| CallTotals {
        buildkite_requests: c.buildkite_requests.load(Ordering::Relaxed),
        github_requests: c.github_requests.load(Ordering::Relaxed),
        log_bytes: c.log_bytes.load(Ordering::Relaxed),
    })
    .unwrap_or_default()
}

/// Runs `work` as one call ([`within_call`]) and puts the warnings the call met into its
/// result, where `warnings_of` says they go.
pub async fn answered<T, E>(
    work: impl std::future::Future<Output = Result<T, E>>,
    warnings_of: impl FnOnce(&mut T) -> &mut Vec<String>,
) -> Result<T, E> {
    within_call(async {
        let mut result = work.await?;
        warnings_of(&mut result).extend(take_call_warnings());
        Ok(result)
    })
    .await
}

/// Adds a warning to the current call's answer (once); outside a call it is dropped (the
/// caller logs what went wrong).
pub fn warn_call(warning: String) {
    let _ = CALL.try_with(|c| {
        if let Ok(mut warnings) = c.warnings.lock() {
            if !warnings.contains(&warning) {
                warnings.push(warning);
            }
        }
    });
}

/// The current call's warnings so far, taken for its answer.
pub fn take_call_warnings() -> Vec<String> {
    CALL.try_with(|c| {
        c.warnings
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default()
    })
    .unwrap_or_default()
}

/// Counts into the current call, if any.
fn count_in_call(field: impl FnOnce(&CallCounters) -> &AtomicU64, n: u64) {
    let _ = CALL.try_with(|c| field(c).fetch_add(n, Ordering::Relaxed));
}

/// Counts one GitHub request into the current call.
pub fn count_github_request() {
    count_in_call(|c| &c.github_requests, 1);
}

/// Counts one Buildkite request into the current call.
pub fn count_buildkite_request() {
    count_in_call(|c| &c.buildkite_requests, 1);
}

/// Counts log bytes read from Buildkite into the current call.
pub fn count_log_bytes(n: u64) {
    count_in_call(|c| &c.log_bytes, n);
}
