//! The on-disk cache of immutable Buildkite data: finished builds and the parsed outcome of each
//! finished job's log. A repeated test history (or one after a scan) then costs almost no API
//! calls.
//!
//! redb is used: pure Rust, crash-safe, and safe for several server processes on one file. A
//! file that cannot be read (corrupt, or from another format) is moved aside and rebuilt; a file
//! that cannot be opened at all (locked by an incompatible process, unwritable directory) turns
//! the cache off with a warning. Nothing here fails a call.

use redb::{Database, ReadableDatabase, TableDefinition};
use serde::{de::DeserializeOwned, Serialize};
use std::path::{Path, PathBuf};

const BUILDS: TableDefinition<&str, &[u8]> = TableDefinition::new("builds_v1");
const JOB_OUTCOMES: TableDefinition<&str, &[u8]> = TableDefinition::new("job_outcomes_v1");

/// Which kind of record.
#[derive(Debug, Clone, Copy)]
pub enum Table {
    /// Finished builds with their jobs, keyed `org/pipeline/number`.
    Builds,
    /// Parsed log outcomes of finished jobs, keyed by job id.
    JobOutcomes,
}

impl Table {
    fn definition(self) -> TableDefinition<'static, &'static str, &'static [u8]> {
        match self {
            Self::Builds => BUILDS,
            Self::JobOutcomes => JOB_OUTCOMES,
        }
    }
}

pub struct Cache {
    db: Database,
    path: PathBuf,
}

impl Cache {
    /// Opens (or creates) `dir/cache.redb`. `Err` is a warning for the user; run without cache.
    pub fn open(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!(
                "cache directory {} cannot be created ({e}); running without cache",
                dir.display()
            )
        })?;
        let path = dir.join("cache.redb");
        match Database::create(&path) {
            Ok(db) => Ok(Self { db, path }),
            Err(
                redb::DatabaseError::DatabaseAlreadyOpen
                | redb::DatabaseError::LockProtocolMismatch,
            ) => Err(format!(
                "cache {} is locked by another process; running without cache",
                path.display()
            )),
            Err(first) => {
                // Unreadable: keep the old file for inspection and start a fresh one.
                let aside = path.with_extension(format!("corrupt-{}", std::process::id()));
                let _ = std::fs::rename(&path, &aside);
                tracing::warn!(error = %first, moved_to = %aside.display(), "cache file unreadable; rebuilding");
                Database::create(&path)
                    .map(|db| Self {
                        db,
                        path: path.clone(),
                    })
                    .map_err(|e| {
                        format!(
                            "cache {} could not be rebuilt ({e}); running without cache",
                            path.display()
                        )
                    })
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A stored value; `None` when absent or unreadable (a stale format is treated as a miss).
    pub fn get<T: DeserializeOwned>(&self, table: Table, key: &str) -> Option<T> {
        let read = self.db.begin_read().ok()?;
        let opened = read.open_table(table.definition()).ok()?;
        let value = opened.get(key).ok()??;
        serde_json::from_slice(value.value()).ok()
    }

    /// Stores a value; failures are logged and otherwise ignored (the cache is an optimisation).
    pub fn put<T: Serialize>(&self, table: Table, key: &str, value: &T) {
        let Ok(bytes) = serde_json::to_vec(value) else {
            return;
        };
        let result = (|| -> Result<(), redb::Error> {
            let write = self.db.begin_write()?;
            {
                let mut opened = write.open_table(table.definition())?;
                opened.insert(key, bytes.as_slice())?;
            }
            write.commit()?;
            Ok(())
        })();
        if let Err(error) = result {
            tracing::warn!(%error, key, "cache write failed");
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
}
