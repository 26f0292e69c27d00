//! The store behind the job-outcome reader, one interface with two backends: the embedded redb
//! file ([`Cache`], the default, nothing to set up) and a Redis shared by a team's replicas
//! (`CIWATCH_STORE_URL=redis://host:port/db`). Both keep finished builds, job outcomes and whole
//! job logs under keys scoped by the Buildkite token's digest (the reader builds the keys).
//!
//! Redis keys are `ciwatch:{table}:{key}` with a TTL per table, so a Redis with
//! `maxmemory-policy allkeys-lru` stays bounded by its `maxmemory`. A Redis that does not
//! answer is never a failed call: the read goes to Buildkite and the call says so in a warning.
//!
//! Reads of one job log are single-flight: inside one process by a set of keys being read,
//! across replicas by a short lease (`SET NX PX` of a random token) that a dead replica's lease
//! outlives by at most [`LEASE`]. A lease is released by compare-and-delete, so a reader whose
//! lease expired never frees another's, and a cancelled reader releases its own at once. A
//! replica that finds a lease waits for the outcome to appear in the store.

use super::disk::{Cache, Commit, Table};
use serde::{de::DeserializeOwned, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// How long a lease on one log read lasts: longer than the read can take when the token's
/// budget is spent (up to a minute's wait for the window, then the whole log), short enough
/// that a dead replica's lease stalls the others for two minutes at most.
pub const LEASE: Duration = Duration::from_secs(120);
/// How long a Redis command may take before the store is taken as down for that call.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Store {
    backend: Backend,
    /// Keys this process is reading now (single flight inside the process), each with the
    /// signal its waiters are woken by when the read ends.
    reading: Mutex<HashMap<String, Arc<Notify>>>,
    /// Bytes of stored values read and written through this store, for tests and diagnostics.
    pub traffic: Traffic,
}

/// Bytes of stored values read and written.
#[derive(Debug, Default)]
pub struct Traffic {
    pub read: std::sync::atomic::AtomicU64,
    pub written: std::sync::atomic::AtomicU64,
}

impl Traffic {
    fn count(counter: &std::sync::atomic::AtomicU64, bytes: usize) {
        counter.fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// (read, written) so far.
    pub fn totals(&self) -> (u64, u64) {
        let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
        (load(&self.read), load(&self.written))
    }
}

enum Backend {
    /// Shared with the blocking threads its reads and commits run on.
    Embedded(Arc<Cache>),
    Shared(SharedStore),
}

impl From<Cache> for Store {
    fn from(cache: Cache) -> Self {
        Store::with(Backend::Embedded(Arc::new(cache)))
    }
}

/// Whether a read of one key may go ahead.
pub enum Lease<'a> {
    /// This caller reads; the guard ends the lease, released or dropped (as when a call is
    /// cancelled), here and for the replicas.
    Acquired(LeaseGuard<'a>),
    /// Another reader is on it: wait for its outcome, woken by the signal when the reader is
    /// in this process (a replica's is polled for).
    Busy(Option<Arc<Notify>>),
}

pub struct LeaseGuard<'a> {
    store: &'a Store,
    key: String,
    /// The token this reader's lease holds in Redis, until it is released.
    token: Option<String>,
}

impl LeaseGuard<'_> {
    /// Ends the lease for the replicas too.
    pub async fn release(mut self) {
        if let (Backend::Shared(shared), Some(token)) = (&self.store.backend, self.token.take()) {
            shared.answer(release_lease(shared.manager.clone(), &self.key, &token).await);
        }
    }
}

impl Drop for LeaseGuard<'_> {
    /// A guard dropped before its release (the call was cancelled) releases its lease on the
    /// runtime, so the next reader need not wait for it to expire.
    fn drop(&mut self) {
        self.store.forget(&self.key);
        if let (Backend::Shared(shared), Some(token)) = (&self.store.backend, self.token.take()) {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let (connection, key) = (shared.manager.clone(), self.key.clone());
                runtime.spawn(async move { release_lease(connection, &key, &token).await });
            }
        }
    }
}

/// Deletes the lease on `key` only while it still holds `token`: a lease that expired and was
/// taken by another reader is theirs.
async fn release_lease(
    mut connection: redis::aio::ConnectionManager,
    key: &str,
    token: &str,
) -> redis::RedisResult<()> {
    static COMPARE_AND_DELETE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(
        || {
            redis::Script::new(
                r#"if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end"#,
            )
        },
    );
    COMPARE_AND_DELETE
        .key(lease_key(key))
        .arg(token)
        .invoke_async::<i64>(&mut connection)
        .await
        .map(drop)
}

/// A lease's token: unguessable by another reader, unique to this process and this lease.
fn lease_token() -> String {
    use std::hash::{BuildHasher, Hasher};
    static LEASES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    // `RandomState` is seeded from the system's randomness for each new state.
    let random = |n: u64| {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(n);
        hasher.finish()
    };
    let n = LEASES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!(
        "{}-{n}-{:016x}{:016x}",
        std::process::id(),
        random(n),
        random(!n)
    )
}

/// Runs a redb read or durable commit on tokio's blocking threads, so a commit's disk sync or
/// a large read never holds up the async workers that drive the concurrent log reads. `None`
/// when the task could not finish (the runtime is shutting down).
async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    match tokio::task::spawn_blocking(work).await {
        Ok(value) => Some(value),
        Err(error) => {
            tracing::warn!(%error, "a store task did not finish");
            None
        }
    }
}

/// Redis, shared by replicas.
struct SharedStore {
    manager: redis::aio::ConnectionManager,
    /// `redis://host:port/db`, without the password, for messages.
    shown_url: String,
}

impl Store {
    fn with(backend: Backend) -> Self {
        Self {
            backend,
            reading: Mutex::default(),
            traffic: Traffic::default(),
        }
    }

    /// The embedded store, or `None` for a shared one (tests and the cache warning).
    pub fn embedded(&self) -> Option<&Cache> {
        match &self.backend {
            Backend::Embedded(cache) => Some(cache),
            Backend::Shared(_) => None,
        }
    }

    /// The shared store at `url` (`redis://` or `rediss://`); `password` when the URL has none.
    /// Connects lazily: a Redis that is down makes calls fall back to Buildkite, not this fail.
    pub fn redis(url: &str, password: Option<&str>) -> Result<Self, String> {
        let mut info: redis::ConnectionInfo = url.parse().map_err(|e| {
            format!("CIWATCH_STORE_URL is not a Redis URL ({e}): give redis://host:port/db")
        })?;
        if let (Some(password), None) = (password, info.redis_settings().password()) {
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        let scheme = if url.trim_start().starts_with("rediss:") {
            "rediss"
        } else {
            "redis"
        };
        let shown_url = format!("{scheme}://{}/{}", info.addr(), info.redis_settings().db());
        let client =
            redis::Client::open(info).map_err(|e| format!("the shared store {shown_url}: {e}"))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(RESPONSE_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let manager = redis::aio::ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("the shared store {shown_url}: {e}"))?;
        Ok(Store::with(Backend::Shared(SharedStore {
            manager,
            shown_url,
        })))
    }

    /// A stored value; `None` when absent, unreadable or the store did not answer.
    pub async fn get<T: DeserializeOwned>(&self, table: Table, key: &str) -> Option<T> {
        serde_json::from_slice(&self.get_bytes(table, key).await?).ok()
    }

    pub async fn put<T: Serialize>(&self, table: Table, key: &str, value: &T) {
        if let Ok(bytes) = serde_json::to_vec(value) {
            self.put_bytes(table, key, &bytes).await;
        }
    }

    pub async fn get_bytes(&self, table: Table, key: &str) -> Option<Vec<u8>> {
        self.get_bytes_many(table, &[key.to_string()])
            .await
            .pop()
            .flatten()
    }

    /// Stored values of `keys`, in their order: one read (one transaction, or one `MGET`).
    pub async fn get_many<T: DeserializeOwned>(
        &self,
        table: Table,
        keys: &[String],
    ) -> Vec<Option<T>> {
        self.get_bytes_many(table, keys)
            .await
            .into_iter()
            .map(|bytes| serde_json::from_slice(&bytes?).ok())
            .collect()
    }

    /// Stored bytes of `keys`, in their order: one read (one transaction, or one `MGET`).
    pub async fn get_bytes_many(&self, table: Table, keys: &[String]) -> Vec<Option<Vec<u8>>> {
        if keys.is_empty() {
            return Vec::new();
        }
        let answer = match &self.backend {
            Backend::Embedded(cache) => {
                let (cache, keys) = (cache.clone(), keys.to_vec());
                off_the_workers(move || {
                    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                    cache.get_bytes_many(table, &keys)
                })
                .await
            }
            Backend::Shared(shared) => {
                let mut connection = shared.manager.clone();
                let keys: Vec<String> = keys.iter().map(|key| redis_key(table, key)).collect();
                let answer: redis::RedisResult<Vec<Option<Vec<u8>>>> = redis::cmd("MGET")
                    .arg(keys)
                    .query_async(&mut connection)
                    .await;
                shared.answer(answer)
            }
        };
        let values = answer
            .filter(|values| values.len() == keys.len())
            .unwrap_or_else(|| vec![None; keys.len()]);
        Traffic::count(
            &self.traffic.read,
            values.iter().flatten().map(Vec::len).sum(),
        );
        values
    }

    /// Stores several values at once, seen by every reader at once: one commit made durable by
    /// the next [`Store::flush`], or one pipeline of `SET`s.
    pub async fn put_many_bytes(&self, values: Vec<(Table, String, Vec<u8>)>) {
        Traffic::count(
            &self.traffic.written,
            values.iter().map(|(_, _, v)| v.len()).sum(),
        );
        match &self.backend {
            Backend::Embedded(cache) => {
                let cache = cache.clone();
                off_the_workers(move || {
                    let borrowed: Vec<(Table, &str, &[u8])> = values
                        .iter()
                        .map(|(table, key, bytes)| (*table, key.as_str(), bytes.as_slice()))
                        .collect();
                    cache.put_many_bytes(&borrowed, Commit::Deferred);
                })
                .await;
            }
            Backend::Shared(shared) => {
                let mut connection = shared.manager.clone();
                let mut pipe = redis::pipe();
                for (table, key, bytes) in &values {
                    pipe.cmd("SET")
                        .arg(redis_key(*table, key))
                        .arg(bytes.as_slice())
                        .arg("EX")
                        .arg(ttl(*table).as_secs())
                        .ignore();
                }
                let answer: redis::RedisResult<()> = pipe.query_async(&mut connection).await;
                shared.answer(answer);
            }
        }
    }

    /// Makes the writes of [`Store::put_many_bytes`] durable (one `fsync` for a scan's jobs).
    /// Redis persists on its own terms: nothing to do.
    pub async fn flush(&self) {
        if let Backend::Embedded(cache) = &self.backend {
            let cache = cache.clone();
            off_the_workers(move || cache.flush()).await;
        }
    }

    pub async fn put_bytes(&self, table: Table, key: &str, bytes: &[u8]) {
        Traffic::count(&self.traffic.written, bytes.len());
        match &self.backend {
            Backend::Embedded(cache) => {
                let (cache, key, bytes) = (cache.clone(), key.to_string(), bytes.to_vec());
                off_the_workers(move || cache.put_bytes(table, &key, &bytes)).await;
            }
            Backend::Shared(shared) => {
                let mut connection = shared.manager.clone();
                let answer: redis::RedisResult<()> = redis::cmd("SET")
                    .arg(redis_key(table, key))
                    .arg(bytes)
                    .arg("EX")
                    .arg(ttl(table).as_secs())
                    .query_async(&mut connection)
                    .await;
                shared.answer(answer);
            }
        }
    }

    /// Asks to read `key` (one job's log) alone. Busy while this process or a replica reads
    /// it; a store that does not answer lets the read go ahead.
    pub async fn lease(&self, key: &str) -> Lease<'_> {
        if let Err(busy) = self.begin_here(key) {
            return busy;
        }
        let mut guard = LeaseGuard {
            store: self,
            key: key.to_string(),
            token: None,
        };
        let Backend::Shared(shared) = &self.backend else {
            return Lease::Acquired(guard);
        };
        let token = lease_token();
        let mut connection = shared.manager.clone();
        let answer: redis::RedisResult<Option<String>> = redis::cmd("SET")
            .arg(lease_key(key))
            .arg(&token)
            .arg("NX")
            .arg("PX")
            .arg(LEASE.as_millis() as u64)
            .query_async(&mut connection)
            .await;
        match shared.answer(answer) {
            // A replica holds it: dropping the guard frees it here.
            Some(None) => Lease::Busy(None),
            Some(Some(_)) => {
                guard.token = Some(token);
                Lease::Acquired(guard)
            }
            // The store did not answer: read without a lease.
            None => Lease::Acquired(guard),
        }
    }

    /// Starts this process's read of `key`, or says who is on it.
    fn begin_here(&self, key: &str) -> Result<(), Lease<'_>> {
        let Ok(mut reading) = self.reading.lock() else {
            return Err(Lease::Busy(None));
        };
        if let Some(signal) = reading.get(key) {
            return Err(Lease::Busy(Some(signal.clone())));
        }
        reading.insert(key.to_string(), Arc::default());
        Ok(())
    }

    /// Ends this process's read of `key` and wakes its waiters.
    fn forget(&self, key: &str) {
        let signal = self.reading.lock().ok().and_then(|mut r| r.remove(key));
        if let Some(signal) = signal {
            signal.notify_waiters();
        }
    }

    /// The Redis connection, for the shared rate window.
    pub fn redis_connection(&self) -> Option<redis::aio::ConnectionManager> {
        match &self.backend {
            Backend::Shared(shared) => Some(shared.manager.clone()),
            Backend::Embedded(_) => None,
        }
    }

    /// Bytes of stored values in the embedded store (tests and diagnostics).
    pub fn stored_bytes(&self) -> u64 {
        self.embedded().map_or(0, Cache::stored_bytes)
    }
}

impl SharedStore {
    /// The answer, or `None` with the failure a warning of the call it happened in (outside a
    /// call, the HUD's page or the watcher, it is only logged).
    fn answer<T>(&self, answer: redis::RedisResult<T>) -> Option<T> {
        match answer {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::warn!(%error, store = %self.shown_url, "shared store did not answer");
                crate::call::warn_call(format!(
                    "the shared store {} did not answer ({}); what it would have held was read from Buildkite",
                    self.shown_url,
                    crate::text::bounded_text(&error.to_string(), 160)
                ));
                None
            }
        }
    }
}

fn redis_key(table: Table, key: &str) -> String {
    format!("ciwatch:{}:{key}", table.name())
}

fn lease_key(key: &str) -> String {
    format!("ciwatch:lease:{key}")
}

/// How long Redis keeps a value: finished builds change only by retries (a week is enough for
/// the comparisons), outcomes and logs of finished jobs never change (a month).
fn ttl(table: Table) -> Duration {
    const DAY: u64 = 24 * 60 * 60;
    match table {
        Table::Builds | Table::BuildHeads => Duration::from_secs(7 * DAY),
        Table::JobOutcomes => Duration::from_secs(30 * DAY),
        Table::LogTexts | Table::LogBlocks => Duration::from_secs(7 * DAY),
        Table::Reports => Duration::from_secs(2 * DAY),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded store's reads and commits leave the thread that drives the async tasks.
    #[tokio::test]
    async fn embedded_reads_and_commits_run_off_the_async_worker_and_reads_come_in_one() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let store = Store::from(Cache::open(dir.path()).expect("cache opens"));
        let worker = std::thread::current().id();
        let ran_on = off_the_workers(|| std::thread::current().id()).await;
        assert!(ran_on.is_some_and(|thread| thread != worker));
        store.put_bytes(Table::JobOutcomes, "job", b"outcome").await;
        assert_eq!(
            store.get_bytes(Table::JobOutcomes, "job").await.as_deref(),
            Some(&b"outcome"[..])
        );
        store.put(Table::JobOutcomes, "other", &2u8).await;
        store.put(Table::JobOutcomes, "one", &1u8).await;
        let keys = ["one", "absent", "other"].map(String::from);
        let values: Vec<Option<u8>> = store.get_many(Table::JobOutcomes, &keys).await;
        assert_eq!(values, [Some(1), None, Some(2)]);
        assert!(store
            .get_many::<u8>(Table::JobOutcomes, &[])
            .await
            .is_empty());
    }

    #[tokio::test]
    async fn one_reader_per_key_and_a_dropped_read_frees_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::from(Cache::open(dir.path()).expect("cache"));
        let Lease::Acquired(first) = store.lease("scope/job-1").await else {
            panic!("the first reader gets the lease");
        };
        assert!(matches!(
            store.lease("scope/job-1").await,
            Lease::Busy(Some(_))
        ));
        assert!(matches!(
            store.lease("scope/job-2").await,
            Lease::Acquired(_)
        ));
        // A cancelled call drops its guard without releasing: the key is free again.
        drop(first);
        assert!(matches!(
            store.lease("scope/job-1").await,
            Lease::Acquired(_)
        ));
    }

    #[tokio::test]
    async fn urls_and_passwords_are_never_shown() {
        let store =
            Store::redis("rediss://:s3cret@cache.internal:6380/2", None).expect("a TLS URL");
        let Backend::Shared(shared) = &store.backend else {
            panic!("shared");
        };
        assert_eq!(shared.shown_url, "rediss://cache.internal:6380/2");
        assert!(Store::redis("http://cache.internal", None).is_err());
    }
}
