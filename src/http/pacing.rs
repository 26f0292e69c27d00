//! Pacing of outbound requests: the sliding window of a token's budget (kept in Redis too when
//! replicas share one), and the server's own word on its budget (`RateLimit-Remaining`,
//! `RateLimit-Reset`), for Buildkite's limiter and GitHub's pacer alike.

use reqwest::header::HeaderMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

tokio::task_local! {
    /// Set while a task does background work (the sidecar's watcher).
    static BACKGROUND: ();
}

/// Runs `work` as background work: its requests never take more than half of any window, and
/// none goes out while an interactive request waits for the window. So a caller's requests find
/// room at once, or wait at most for the background requests already sent to leave the window
/// (never for one queued after them).
pub async fn in_background<F: std::future::Future>(work: F) -> F::Output {
    BACKGROUND.scope((), work).await
}

/// Whether the running task does background work ([`in_background`]).
pub fn is_background() -> bool {
    BACKGROUND.try_with(|_| ()).is_ok()
}

/// How often background work looks again while an interactive request waits.
const BACKGROUND_RETRY: Duration = Duration::from_millis(100);

/// How many requests may go out in any window of time: Buildkite counts requests per user per
/// minute (50) and refuses the rest, so the bound is a sliding window, not a token bucket (a
/// bucket of rate r and burst b lets b + r requests into one minute).
#[derive(Debug, Clone, Copy)]
pub struct RateBudget {
    pub requests: u32,
    pub window: Duration,
}

impl RateBudget {
    pub fn per_minute(requests: u32) -> Self {
        Self {
            requests,
            window: Duration::from_secs(60),
        }
    }
}

/// The sliding-window limiter plus what the server last said about its own budget
/// (`RateLimit-Remaining`, `RateLimit-Reset`): when the server's budget is spent, requests wait
/// for its reset instead of being sent to be refused.
pub(super) struct Limiter {
    budget: RateBudget,
    state: tokio::sync::Mutex<LimiterState>,
    /// The replicas' window of the same token, when there is a shared store.
    shared: Option<crate::storage::SharedWindow>,
    /// Interactive requests waiting for the window: background work holds back meanwhile.
    interactive_waiting: AtomicUsize,
}

/// Counts an interactive request as waiting for as long as it lives (a cancelled wait too).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[derive(Default)]
struct LimiterState {
    /// When each of the last `budget.requests` requests was sent, oldest first.
    sent: std::collections::VecDeque<tokio::time::Instant>,
    /// Requests the server still allows, counted down locally until its reset.
    server_remaining: Option<(u64, tokio::time::Instant)>,
}

impl Limiter {
    pub(super) fn new(budget: RateBudget, shared: Option<crate::storage::SharedWindow>) -> Self {
        Self {
            budget: RateBudget {
                requests: budget.requests.max(1),
                window: budget.window,
            },
            state: tokio::sync::Mutex::default(),
            shared,
            interactive_waiting: AtomicUsize::new(0),
        }
    }

    /// Waits until one more request fits this process's window, then the replicas' shared one.
    pub(super) async fn acquire(&self) {
        self.acquire_local().await;
        let Some(shared) = &self.shared else {
            return;
        };
        loop {
            match shared.admit(self.budget.requests, self.budget.window).await {
                Ok(None) => return,
                Ok(Some(wait)) => tokio::time::sleep(wait.min(self.budget.window)).await,
                Err(error) => {
                    // The store is down: this process's own window still holds.
                    tracing::warn!(%error, "the shared rate window did not answer");
                    return;
                }
            }
        }
    }

    /// Waits until one more request fits both local budgets, and counts it as sent. Background
    /// work (see [`in_background`]) fits only half the window and yields to interactive waits.
    async fn acquire_local(&self) {
        let background = is_background();
        let room = if background {
            (self.budget.requests as usize / 2).max(1)
        } else {
            self.budget.requests as usize
        };
        let mut waiting = None;
        loop {
            let now = tokio::time::Instant::now();
            let wait_until = {
                let mut state = self.state.lock().await;
                while state
                    .sent
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.budget.window)
                {
                    state.sent.pop_front();
                }
                let server_wait = match state.server_remaining {
                    Some((_, reset)) if reset <= now => {
                        state.server_remaining = None;
                        None
                    }
                    Some((0, reset)) => Some(reset),
                    _ => None,
                };
                // The window has room again once the oldest of the last `room` sent leaves it.
                let window_wait = state
                    .sent
                    .len()
                    .checked_sub(room)
                    .and_then(|oldest| state.sent.get(oldest))
                    .map(|t| *t + self.budget.window);
                let yields = background && self.interactive_waiting.load(Ordering::Relaxed) > 0;
                match server_wait.max(window_wait) {
                    Some(until) => until,
                    None if yields => now + BACKGROUND_RETRY,
                    None => {
                        state.sent.push_back(now);
                        if let Some((remaining, _)) = &mut state.server_remaining {
                            *remaining = remaining.saturating_sub(1);
                        }
                        return;
                    }
                }
            };
            if !background && waiting.is_none() {
                waiting = Some(Waiting::new(&self.interactive_waiting));
            }
            tokio::time::sleep_until(wait_until).await;
        }
    }

    /// Takes the server's word on its budget from a response's headers.
    pub(super) async fn observe(&self, headers: &HeaderMap) {
        let number =
            |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
        let (Some(remaining), Some(reset_secs)) =
            (number("ratelimit-remaining"), number("ratelimit-reset"))
        else {
            return;
        };
        if let (0, Some(shared)) = (remaining, &self.shared) {
            if let Err(error) = shared.hold(Duration::from_secs(reset_secs.min(3600))).await {
                tracing::warn!(%error, "the shared rate window did not take the server's hold");
            }
        }
        self.take_server_word(remaining, Duration::from_secs(reset_secs))
            .await;
    }

    /// Remembers that the server allows `remaining` more requests until `reset_in` from now.
    async fn take_server_word(&self, remaining: u64, reset_in: Duration) {
        let reset_secs = reset_in.as_secs();
        // Requests still in flight were counted by the server before this answer or will be
        // after it; counting them again (the local countdown) errs on the side of waiting.
        let reset = tokio::time::Instant::now() + Duration::from_secs(reset_secs.min(3600));
        let mut state = self.state.lock().await;
        // Reset times of one window differ by the rounding of whole seconds.
        let same_window = |other: tokio::time::Instant| {
            other.max(reset).duration_since(other.min(reset)) < Duration::from_secs(2)
        };
        state.server_remaining = Some(match state.server_remaining {
            Some((local, local_reset)) if same_window(local_reset) => {
                (local.min(remaining), local_reset.max(reset))
            }
            Some((local, local_reset)) if local_reset > reset => (local, local_reset),
            _ => (remaining, reset),
        });
    }
}

/// Paces requests by the server's own word on its budget alone (GitHub's `X-RateLimit-*`: no
/// window of our own), with the same countdown as the Buildkite limiter: once the server says
/// none are left, requests wait for its reset, or are refused when that is too far off.
pub struct ServerPacer {
    limiter: Limiter,
}

impl Default for ServerPacer {
    fn default() -> Self {
        Self {
            limiter: Limiter::new(
                RateBudget {
                    requests: u32::MAX,
                    window: Duration::from_secs(1),
                },
                None,
            ),
        }
    }
}

impl ServerPacer {
    /// Waits until the server allows one more request; `Err` with the wait when it is longer
    /// than `longest_wait` (the caller goes on without the request).
    pub async fn ready(&self, longest_wait: Duration) -> Result<(), Duration> {
        let spent_until = {
            let state = self.limiter.state.lock().await;
            match state.server_remaining {
                Some((0, reset)) => Some(reset),
                _ => None,
            }
        };
        if let Some(reset) = spent_until {
            let wait = reset.saturating_duration_since(tokio::time::Instant::now());
            if wait > longest_wait {
                return Err(wait);
            }
        }
        self.limiter.acquire_local().await;
        Ok(())
    }

    /// Takes the server's word: `remaining` requests until the Unix time `reset_at`.
    pub async fn observe(&self, remaining: Option<u64>, reset_at: Option<u64>) {
        let (Some(remaining), Some(reset_at)) = (remaining, reset_at) else {
            return;
        };
        let now = chrono::Utc::now().timestamp().max(0) as u64;
        self.limiter
            .take_server_word(remaining, Duration::from_secs(reset_at.saturating_sub(now)))
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    /// Sends `count` requests through `limiter` at once and returns when each went out,
    /// measured from `start` on tokio's paused clock.
    async fn send_times(limiter: &Limiter, count: usize, start: Instant) -> Vec<Duration> {
        let sends = (0..count).map(|_| async {
            limiter.acquire().await;
            Instant::now() - start
        });
        let mut sent = futures::future::join_all(sends).await;
        sent.sort();
        sent
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_up_to_the_budget_goes_at_once_and_no_window_holds_more() {
        let window = Duration::from_millis(400);
        let limiter = Limiter::new(
            RateBudget {
                requests: 5,
                window,
            },
            None,
        );
        let sent = send_times(&limiter, 12, Instant::now()).await;
        assert_eq!(sent[..5], [Duration::ZERO; 5]);
        assert_eq!(sent[5..10], [window; 5]);
        assert_eq!(sent[10..], [window * 2; 2]);
        for (i, first) in sent.iter().enumerate() {
            let in_window = sent[i..].iter().filter(|t| **t - *first < window).count();
            assert!(in_window <= 5, "{in_window} requests within {window:?}");
        }
    }

    /// A watcher reading 40 logs and a caller's 20 requests 10 s in, under 45 a minute: the
    /// watcher never holds more than half the window, so the caller's requests all go out at
    /// once, and the watcher finishes later instead.
    #[tokio::test(start_paused = true)]
    async fn background_work_takes_half_the_window_and_callers_never_wait_for_it() {
        let window = Duration::from_secs(60);
        let limiter = Limiter::new(RateBudget::per_minute(45), None);
        let start = Instant::now();
        let watcher = in_background(send_times(&limiter, 40, start));
        let caller = async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            send_times(&limiter, 20, start).await
        };
        let (watcher, caller) = tokio::join!(watcher, caller);
        assert_eq!(caller, [Duration::from_secs(10); 20]);
        assert_eq!(watcher[..22], [Duration::ZERO; 22]);
        let all: Vec<Duration> = watcher.iter().chain(&caller).copied().collect();
        for first in &all {
            let in_window = all
                .iter()
                .filter(|t| **t >= *first && **t - *first < window);
            assert!(in_window.count() <= 45);
            let watcher_in_window = watcher
                .iter()
                .filter(|t| **t >= *first && **t - *first < window);
            assert!(watcher_in_window.count() <= 22);
        }
        // Its half counts the caller's requests too: the rest goes once those leave the window.
        assert_eq!(watcher.last(), Some(&Duration::from_secs(70)));
    }

    /// While a caller waits for the window, background work sends nothing, even with room for it.
    #[tokio::test(start_paused = true)]
    async fn background_work_yields_while_a_caller_waits() {
        let limiter = Limiter::new(
            RateBudget {
                requests: 4,
                window: Duration::from_secs(10),
            },
            None,
        );
        let start = Instant::now();
        // The caller fills the window and waits for its next four.
        let caller = send_times(&limiter, 8, start);
        let watcher = async {
            tokio::task::yield_now().await;
            in_background(send_times(&limiter, 1, start)).await
        };
        let (caller, watcher) = tokio::join!(caller, watcher);
        assert_eq!(caller[4..], [Duration::from_secs(10); 4]);
        assert!(watcher[0] >= Duration::from_secs(20), "{watcher:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_spent_server_budget_holds_requests_until_its_reset() {
        let limiter = Limiter::new(RateBudget::per_minute(1000), None);
        limiter.take_server_word(2, Duration::from_secs(1)).await;
        let sent = send_times(&limiter, 4, Instant::now()).await;
        let reset = Duration::from_secs(1);
        assert_eq!(sent, [Duration::ZERO, Duration::ZERO, reset, reset]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_pacer_refuses_a_wait_longer_than_asked_and_waits_a_shorter_one() {
        let pacer = ServerPacer::default();
        let reset = Duration::from_secs(30);
        pacer.limiter.take_server_word(0, reset).await;
        assert_eq!(pacer.ready(Duration::from_secs(10)).await, Err(reset));
        let start = Instant::now();
        assert_eq!(pacer.ready(Duration::from_secs(60)).await, Ok(()));
        assert_eq!(Instant::now() - start, reset);
    }
}
