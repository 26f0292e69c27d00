//! The one in-process cache of fetched facts (issue candidates, CODEOWNERS, blames, compare
//! ranges, commit files, listings) and the one single flight: bounded in entries (oldest
//! evicted), optionally expiring, and never locked across a request. Askers of the same key wait
//! for one fetch and share its answer, so a sidecar's concurrent scans send one GitHub search,
//! not one each; other keys never wait. One cancellation rule: when the asker running a fetch
//! goes away, the next one waiting runs it. The on-disk store of Buildkite outcomes is
//! `disk.rs`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One fetch under way: its answer and whether to keep it, once it is in.
type Flight<V> = tokio::sync::OnceCell<(V, bool)>;

pub struct Memo<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    /// The fetch under way per key, and its answer for those waiting on it.
    flights: Mutex<HashMap<K, Arc<Flight<V>>>>,
    capacity: usize,
    ttl: Option<Duration>,
}

impl<K: Eq + Hash + Clone, V: Clone> Memo<K, V> {
    /// At most `capacity` entries; each kept for `ttl` (`None`: until evicted).
    pub fn new(capacity: usize, ttl: Option<Duration>) -> Self {
        Self {
            entries: Mutex::default(),
            flights: Mutex::default(),
            capacity: capacity.max(1),
            ttl,
        }
    }

    /// The value of `key` when present and fresh.
    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let (stored, value) = entries.get(key)?;
        self.ttl
            .is_none_or(|ttl| stored.elapsed() < ttl)
            .then(|| value.clone())
    }

    pub fn insert(&self, key: K, value: V) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            if let Some(oldest) = entries
                .iter()
                .min_by_key(|(_, (stored, _))| *stored)
                .map(|(k, _)| k.clone())
            {
                entries.remove(&oldest);
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// The value of `key`, fetched once however many ask at the same time. `fetch` returns the
    /// value and whether to keep it (a partial answer goes to those waiting, and is not kept).
    pub async fn get_or_fetch<F, Fut>(&self, key: &K, fetch: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = (V, bool)>,
    {
        if let Some(value) = self.get(key) {
            return value;
        }
        // Kept by a fetch that ended between the look above and this asker's turn: no second
        // fetch.
        let fetch_unless_kept = || async move {
            match self.get(key) {
                Some(value) => (value, false),
                None => fetch().await,
            }
        };
        self.shared(key, fetch_unless_kept).await.0
    }

    /// `fetch`'s answer, run once by the first of the askers of `key` at the same time and
    /// shared with the others; the bool says whether this asker joined a fetch another ran.
    /// Kept afterwards only when `fetch` says so.
    pub async fn shared<F, Fut>(&self, key: &K, fetch: F) -> (V, bool)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = (V, bool)>,
    {
        let flight = self
            .flights
            .lock()
            .map(|mut flights| flights.entry(key.clone()).or_default().clone())
            .unwrap_or_default();
        let mut ran = false;
        let (value, keep) = flight
            .get_or_init(|| {
                ran = true;
                fetch()
            })
            .await
            .clone();
        if ran {
            if keep {
                self.insert(key.clone(), value.clone());
            }
            if let Ok(mut flights) = self.flights.lock() {
                if flights.get(key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
                    flights.remove(key);
                }
            }
        }
        (value, !ran)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn bounded_and_expiring() {
        let memo: Memo<u32, &str> = Memo::new(2, None);
        memo.insert(1, "a");
        memo.insert(2, "b");
        memo.insert(3, "c");
        assert_eq!(
            (memo.get(&1), memo.get(&2), memo.get(&3)),
            (None, Some("b"), Some("c"))
        );
        let expiring: Memo<u32, &str> = Memo::new(2, Some(Duration::ZERO));
        expiring.insert(1, "a");
        assert_eq!(expiring.get(&1), None);
    }

    #[tokio::test]
    async fn concurrent_askers_share_one_fetch_and_partial_answers_are_not_kept() {
        let memo: Memo<&str, u32> = Memo::new(8, None);
        let fetches = AtomicUsize::new(0);
        let ask = || {
            memo.get_or_fetch(&"repo", || async {
                fetches.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
                (7, true)
            })
        };
        let answers = futures::future::join_all((0..10).map(|_| ask())).await;
        assert!(answers.iter().all(|a| *a == 7));
        assert_eq!(fetches.load(Ordering::Relaxed), 1);
        let partial = memo.get_or_fetch(&"other", || async { (1, false) }).await;
        assert_eq!((partial, memo.get(&"other")), (1, None));
    }

    #[tokio::test(start_paused = true)]
    async fn a_partial_answer_goes_to_those_waiting_and_a_cancelled_fetch_to_the_next() {
        let memo = Arc::new(Memo::<&str, u32>::new(8, None));
        let fetches = Arc::new(AtomicUsize::new(0));
        let ask = || {
            let (memo, fetches) = (memo.clone(), fetches.clone());
            async move {
                memo.shared(&"scan", || async {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    (5, false)
                })
                .await
            }
        };
        let answers = futures::future::join_all((0..20).map(|_| ask())).await;
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        assert_eq!(answers.iter().filter(|(_, joined)| !joined).count(), 1);
        assert!(answers.iter().all(|(value, _)| *value == 5));
        assert_eq!(memo.get(&"scan"), None, "not kept");
        ask().await;
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            2,
            "a later asker fetches again"
        );

        let first = tokio::spawn(ask());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = tokio::spawn(ask());
        tokio::time::sleep(Duration::from_millis(100)).await;
        first.abort();
        assert_eq!(
            second.await.expect("second asker"),
            (5, false),
            "it ran the fetch"
        );
        assert_eq!(fetches.load(Ordering::SeqCst), 4);
    }
}
