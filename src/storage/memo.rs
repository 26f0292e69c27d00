//! The one in-process cache of fetched facts (issue candidates, CODEOWNERS, blames, compare
//! ranges, commit files): bounded in entries (oldest evicted), optionally expiring, and never
//! locked across a request. Askers of the same key wait for one fetch ("single flight"), so a
//! sidecar's concurrent scans send one GitHub search, not one each; other keys never wait.
//! The on-disk store of Buildkite outcomes is `disk.rs`.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Memo<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
    /// One lock per key being fetched; held only by that key's fetch.
    flights: Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>,
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
    /// value and whether to keep it (a partial answer is returned but not kept).
    pub async fn get_or_fetch<F, Fut>(&self, key: &K, fetch: F) -> V
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = (V, bool)>,
    {
        if let Some(value) = self.get(key) {
            return value;
        }
        let flight = self
            .flights
            .lock()
            .map(|mut flights| flights.entry(key.clone()).or_default().clone())
            .unwrap_or_default();
        let _turn = flight.lock().await;
        if let Some(value) = self.get(key) {
            return value;
        }
        let (value, keep) = fetch().await;
        if keep {
            self.insert(key.clone(), value.clone());
        }
        if let Ok(mut flights) = self.flights.lock() {
            flights.remove(key);
        }
        value
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
}
