//! The on-disk store of immutable Buildkite data: finished builds and the parsed outcome of each
//! finished job's log (written by `reader/`, the one reader of job logs). A second look
//! at a finished build, in this process or after a restart, then costs almost no API calls.
//!
//! Kept job logs (each a block index and its compressed blocks) are in a file of their own,
//! `logs.redb`, beside the records' `cache.redb`. Each file is bounded: every write is numbered,
//! and when the stored values exceed the file's share of the size limit the oldest-written ones
//! are evicted in the same transaction.
//!
//! redb is used: pure Rust, crash-safe, and safe for several server processes on one file. A
//! file that cannot be read (corrupt, or from another format) is moved aside and rebuilt; a file
//! that cannot be opened at all (locked by an incompatible process, unwritable directory) turns
//! the cache off with a warning. Nothing here fails a call.

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};
use std::path::{Path, PathBuf};

/// v4: the build alone; when it was fetched is in its head (`BUILD_HEADS`).
const BUILDS: TableDefinition<&str, &[u8]> = TableDefinition::new("builds_v4");
/// When a stored build was fetched, and what a change of it (a retry) changes: compared before
/// the build itself is read or written.
const BUILD_HEADS: TableDefinition<&str, &[u8]> = TableDefinition::new("build_heads_v1");
const JOB_OUTCOMES: TableDefinition<&str, &[u8]> = TableDefinition::new("job_outcomes_v3");
/// v5: a log's block index; its blocks are in `LOG_BLOCKS`.
const LOG_TEXTS: TableDefinition<&str, &[u8]> = TableDefinition::new("log_texts_v5");
const LOG_BLOCKS: TableDefinition<&str, &[u8]> = TableDefinition::new("log_blocks_v1");
const REPORTS: TableDefinition<&str, &[u8]> = TableDefinition::new("reports_v1");
/// Write number → `table-name NUL key`, oldest first: the eviction order.
const WRITES: TableDefinition<u64, &str> = TableDefinition::new("writes_v2");
/// `next_write` and `stored_bytes`.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta_v2");

/// Stored bytes kept by default: a nightly's build body is about 1.2 MB and its parsed job
/// outcomes a few KB each, so this holds weeks of nightlies and histories.
pub const DEFAULT_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// Which kind of record.
#[derive(Debug, Clone, Copy)]
pub enum Table {
    /// Finished builds with their jobs, keyed `org/pipeline/number`.
    Builds,
    /// Each stored build's head (when it was fetched, its state, `finished_at` and job count),
    /// under the build's key.
    BuildHeads,
    /// Parsed log outcomes of finished jobs, keyed by job id.
    JobOutcomes,
    /// What is kept of a finished job's log (whole, up to the read bound), keyed by job id: its
    /// block index, for the job-log views.
    LogTexts,
    /// The compressed blocks of those logs' cleaned text, keyed `job-key#block`.
    LogBlocks,
    /// Each caller's last scan, kept only in a shared store (replicas serve each other's
    /// callers), keyed by the caller's token digest; and in every store the HUD's last nightly
    /// scan of each pipeline, keyed `hud:org/pipeline`.
    Reports,
}

impl Table {
    fn definition(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Self::Builds => BUILDS,
            Self::BuildHeads => BUILD_HEADS,
            Self::JobOutcomes => JOB_OUTCOMES,
            Self::LogTexts => LOG_TEXTS,
            Self::LogBlocks => LOG_BLOCKS,
            Self::Reports => REPORTS,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Builds => "builds",
            Self::BuildHeads => "build_heads",
            Self::JobOutcomes => "job_outcomes",
            Self::LogTexts => "log_texts_v5",
            Self::LogBlocks => "log_blocks_v1",
            Self::Reports => "reports",
        }
    }

    /// Kept in the logs' file.
    fn is_log(self) -> bool {
        matches!(self, Self::LogTexts | Self::LogBlocks)
    }

    fn from_name(name: &str) -> Option<Self> {
        [
            Self::Builds,
            Self::BuildHeads,
            Self::JobOutcomes,
            Self::LogTexts,
            Self::LogBlocks,
            Self::Reports,
        ]
        .into_iter()
        .find(|t| t.name() == name)
    }
}

/// Each stored value starts with its write number (8 bytes, big-endian), so an overwrite can
/// drop the old entry from the eviction order.
const SEQ_BYTES: usize = 8;

/// When a write reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// On its own commit (`fsync`).
    Durable,
    /// Seen by every reader at once, made durable by the next [`Cache::flush`] or durable
    /// commit: a scan writes each job as it is read (its waiters look for it) and syncs once.
    Deferred,
}

/// The store's two files: small records (builds, their heads, job outcomes, reports) and kept
/// job logs. Logs have a file of their own so that a view reading through a 64 MB log fills a
/// page cache of 1 MiB, not the records' one (a view's memory would follow the log's size), and
/// so that a night of logs never evicts the outcomes a scan reads first.
pub struct Cache {
    records: BoundedFile,
    logs: BoundedFile,
}

/// Page cache of the records' file. Its default (1 GiB) made a busy sidecar's resident set grow
/// toward a gigabyte; the hot reads are a scan's outcomes and builds (a few MB).
const RECORDS_PAGE_CACHE: usize = 16 * 1024 * 1024;
/// Page cache of the logs' file: a log's blocks are read once per view, so caching them buys
/// nothing; its index and the tree's upper pages fit.
const LOGS_PAGE_CACHE: usize = 1024 * 1024;

impl Cache {
    /// Opens (or creates) `dir/cache.redb` and `dir/logs.redb`. `Err` is a warning for the user;
    /// run without cache.
    pub fn open(dir: &Path) -> Result<Self, String> {
        Self::open_bounded(dir, DEFAULT_MAX_BYTES)
    }

    /// [`Cache::open`] keeping at most `max_bytes` of stored values: a quarter for the records,
    /// the rest for the logs.
    pub fn open_bounded(dir: &Path, max_bytes: u64) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cache directory {} cannot be created ({e}); running without cache",
                dir.display()
            )
        })?;
        let records_bytes = max_bytes / 4;
        Ok(Self {
            records: BoundedFile::open(dir.join("cache.redb"), RECORDS_PAGE_CACHE, records_bytes)?,
            logs: BoundedFile::open(
                dir.join("logs.redb"),
                LOGS_PAGE_CACHE,
                max_bytes - records_bytes,
            )?,
        })
    }

    fn file(&self, table: Table) -> &BoundedFile {
        if table.is_log() {
            &self.logs
        } else {
            &self.records
        }
    }

    /// A stored value; `None` when absent or unreadable (a stale format is treated as a miss).
    pub fn get<T: DeserializeOwned>(&self, table: Table, key: &str) -> Option<T> {
        serde_json::from_slice(&self.get_bytes(table, key)?).ok()
    }

    /// The bytes stored by [`Cache::put_bytes`].
    pub fn get_bytes(&self, table: Table, key: &str) -> Option<Vec<u8>> {
        self.get_bytes_many(table, &[key]).pop().flatten()
    }

    /// [`Cache::get_bytes`] of each key, in one read transaction.
    pub fn get_bytes_many(&self, table: Table, keys: &[&str]) -> Vec<Option<Vec<u8>>> {
        self.file(table).get_bytes_many(table, keys)
    }

    /// Bytes of stored values (for tests and diagnostics).
    pub fn stored_bytes(&self) -> u64 {
        self.records.stored_bytes() + self.logs.stored_bytes()
    }

    /// Stores a value; failures are logged and otherwise ignored (the cache is an optimisation).
    pub fn put<T: Serialize>(&self, table: Table, key: &str, value: &T) {
        if let Ok(bytes) = serde_json::to_vec(value) {
            self.put_bytes(table, key, &bytes);
        }
    }

    /// Stores bytes of the caller's own encoding (a compressed log).
    pub fn put_bytes(&self, table: Table, key: &str, bytes: &[u8]) {
        self.put_many_bytes(&[(table, key, bytes)], Commit::Durable);
    }

    /// Makes every [`Commit::Deferred`] write before it durable: one `fsync` per file.
    pub fn flush(&self) {
        self.records.flush();
        self.logs.flush();
    }

    /// Stores several values in one commit per file (a job's outcome, and its log's index and
    /// blocks).
    pub fn put_many_bytes(&self, values: &[(Table, &str, &[u8])], commit: Commit) {
        let (logs, records): (Vec<_>, Vec<_>) =
            values.iter().copied().partition(|value| value.0.is_log());
        for (file, values) in [(&self.logs, logs), (&self.records, records)] {
            if !values.is_empty() {
                file.put_many_bytes(&values, commit);
            }
        }
    }
}

/// One redb file whose values are kept under a byte bound, oldest-written evicted first.
struct BoundedFile {
    db: Database,
    max_bytes: u64,
}

impl BoundedFile {
    fn open(path: PathBuf, page_cache: usize, max_bytes: u64) -> Result<Self, String> {
        let create = |path: &Path| Database::builder().set_cache_size(page_cache).create(path);
        let db = match create(&path) {
            Ok(db) => db,
            Err(
                redb::DatabaseError::DatabaseAlreadyOpen
                | redb::DatabaseError::LockProtocolMismatch,
            ) => {
                return Err(format!(
                    "cache {} is locked by another process; running without cache",
                    path.display()
                ))
            }
            Err(first) => {
                // Unreadable: keep the old file for inspection and start a fresh one.
                let aside = path.with_extension(format!("corrupt-{}", std::process::id()));
                let _ = std::fs::rename(&path, &aside);
                tracing::warn!(error = %first, moved_to = %aside.display(), "cache file unreadable; rebuilding");
                create(&path).map_err(|e| {
                    format!(
                        "cache {} could not be rebuilt ({e}); running without cache",
                        path.display()
                    )
                })?
            }
        };
        Ok(Self { db, max_bytes })
    }

    fn get_bytes_many(&self, table: Table, keys: &[&str]) -> Vec<Option<Vec<u8>>> {
        let opened = self
            .db
            .begin_read()
            .ok()
            .and_then(|read| read.open_table(table.definition()).ok());
        let Some(opened) = opened else {
            return vec![None; keys.len()];
        };
        keys.iter()
            .map(|key| {
                let value = opened.get(*key).ok()??;
                Some(value.value().get(SEQ_BYTES..)?.to_vec())
            })
            .collect()
    }

    fn stored_bytes(&self) -> u64 {
        let read = || -> Option<u64> {
            let read = self.db.begin_read().ok()?;
            let meta = read.open_table(META).ok()?;
            Some(meta.get("stored_bytes").ok()??.value())
        };
        read().unwrap_or(0)
    }

    fn flush(&self) {
        let result = (|| -> Result<(), redb::Error> {
            let mut write = self.db.begin_write()?;
            write.set_durability(Durability::Immediate)?;
            write.commit()?;
            Ok(())
        })();
        if let Err(error) = result {
            tracing::warn!(%error, "cache flush failed");
        }
    }

    fn put_many_bytes(&self, values: &[(Table, &str, &[u8])], commit: Commit) {
        let result = (|| -> Result<(), redb::Error> {
            let mut write = self.db.begin_write()?;
            if commit == Commit::Deferred {
                write.set_durability(Durability::None)?;
            }
            for &(table, key, bytes) in values {
                let mut meta = write.open_table(META)?;
                let mut writes = write.open_table(WRITES)?;
                let mut opened = write.open_table(table.definition())?;
                let seq = meta.get("next_write")?.map_or(0, |v| v.value());
                let mut stored = meta.get("stored_bytes")?.map_or(0, |v| v.value());
                let mut record = Vec::with_capacity(SEQ_BYTES + bytes.len());
                record.extend_from_slice(&seq.to_be_bytes());
                record.extend_from_slice(bytes);
                if let Some(old) = opened.insert(key, record.as_slice())? {
                    let old = old.value();
                    stored = stored.saturating_sub(old.len() as u64);
                    if let Some(old_seq) = old.get(..SEQ_BYTES).and_then(|b| b.try_into().ok()) {
                        writes.remove(u64::from_be_bytes(old_seq))?;
                    }
                }
                stored += record.len() as u64;
                writes.insert(seq, format!("{}\0{key}", table.name()).as_str())?;
                meta.insert("next_write", seq + 1)?;
                // The newest value always stays, even when it alone is over the limit.
                while stored > self.max_bytes {
                    let Some((oldest, entry)) = writes
                        .first()?
                        .map(|(seq, entry)| (seq.value(), entry.value().to_string()))
                    else {
                        break;
                    };
                    if oldest == seq {
                        break;
                    }
                    writes.remove(oldest)?;
                    let Some((name, old_key)) = entry.split_once('\0') else {
                        continue;
                    };
                    let removed = match Table::from_name(name) {
                        Some(t) if t.name() == table.name() => {
                            opened.remove(old_key)?.map(|v| v.value().len())
                        }
                        Some(other) => write
                            .open_table(other.definition())?
                            .remove(old_key)?
                            .map(|v| v.value().len()),
                        None => None,
                    };
                    stored = stored.saturating_sub(removed.unwrap_or(0) as u64);
                }
                meta.insert("stored_bytes", stored)?;
            }
            write.commit()?;
            Ok(())
        })();
        if let Err(error) = result {
            let keys: Vec<&str> = values.iter().map(|&(_, key, _)| key).collect();
            tracing::warn!(%error, ?keys, "cache write failed");
        }
    }
}

/// `CIWATCH_CACHE_DIR`, else `$XDG_CACHE_HOME/ciwatch-mcp`, else `~/.cache/ciwatch-mcp`.
pub fn default_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .map(|base| base.join("ciwatch-mcp"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corrupt_file_rebuild() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let cache = Cache::open(dir.path()).expect("opens");
            cache.put(Table::JobOutcomes, "job-1", &vec!["a".to_string()]);
            assert_eq!(
                cache.get::<Vec<String>>(Table::JobOutcomes, "job-1"),
                Some(vec!["a".to_string()])
            );
            assert_eq!(cache.get::<Vec<String>>(Table::Builds, "job-1"), None);
        }
        std::fs::write(
            dir.path().join("cache.redb"),
            b"not a redb file at all, garbage",
        )
        .expect("corrupt it");
        let cache = Cache::open(dir.path()).expect("rebuilt");
        assert_eq!(cache.get::<Vec<String>>(Table::JobOutcomes, "job-1"), None);
        cache.put(Table::JobOutcomes, "job-2", &1u32);
        assert_eq!(cache.get::<u32>(Table::JobOutcomes, "job-2"), Some(1));
    }

    #[test]
    fn deferred_writes_are_seen_at_once_and_kept_after_a_flush() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let cache = Cache::open(dir.path()).expect("opens");
            for key in ["a", "b"] {
                cache.put_many_bytes(&[(Table::JobOutcomes, key, b"1")], Commit::Deferred);
            }
            assert_eq!(cache.get::<u32>(Table::JobOutcomes, "a"), Some(1));
            cache.flush();
        }
        let cache = Cache::open(dir.path()).expect("reopens");
        for key in ["a", "b"] {
            assert_eq!(cache.get::<u32>(Table::JobOutcomes, key), Some(1), "{key}");
        }
    }

    #[test]
    fn oldest_written_values_are_evicted_past_the_size_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        // Each record is 8 + 102 bytes ("x" * 100 as a JSON string): three fit in 400.
        // The records' file keeps a quarter of the bound: 400 bytes.
        let cache = Cache::open_bounded(dir.path(), 1600).expect("opens");
        let value = "x".repeat(100);
        for key in ["a", "b", "c"] {
            cache.put(Table::JobOutcomes, key, &value);
        }
        assert_eq!(cache.stored_bytes(), 330);
        // Overwriting "a" makes it the newest; "b" is now the oldest.
        cache.put(Table::JobOutcomes, "a", &value);
        assert_eq!(cache.stored_bytes(), 330);
        cache.put(Table::Builds, "d", &value);
        assert_eq!(cache.stored_bytes(), 330);
        assert_eq!(cache.get::<String>(Table::JobOutcomes, "b"), None);
        for (table, key) in [
            (Table::JobOutcomes, "a"),
            (Table::JobOutcomes, "c"),
            (Table::Builds, "d"),
        ] {
            assert_eq!(
                cache.get::<String>(table, key).as_deref(),
                Some(value.as_str()),
                "{key}"
            );
        }
    }
}
