//! A local vLLM clone read through gitoxide: files at HEAD from the object database (bare or
//! with a work tree; the work tree is never read) and blame of a line range. Blocking calls;
//! `owners` runs them on the blocking pool.

pub use crate::model::BlameCommit;
use gix::bstr::ByteSlice;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// Where GitHub looks for CODEOWNERS, in its order; the first found is the only one used.
pub const CODEOWNERS_LOCATIONS: [&str; 3] = [".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"];

/// The object database, failing every lookup once `stop` is set. gix-blame has no interrupt of
/// its own, but it reads objects throughout, so a blame over its time budget is cancelled at
/// its next lookup instead of running on in the background.
struct Interruptible<'a, T> {
    objects: T,
    stop: &'a AtomicBool,
}

#[derive(Debug, thiserror::Error)]
#[error("cancelled: over its time budget")]
struct Cancelled;

impl<T: gix::objs::Find> gix::objs::Find for Interruptible<'_, T> {
    fn try_find<'b>(
        &self,
        id: &gix::oid,
        buffer: &'b mut Vec<u8>,
    ) -> gix::Result<Option<gix::objs::Data<'b>>> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(gix::Error::from_error(Cancelled));
        }
        self.objects.try_find(id, buffer)
    }
}

impl<T: gix::objs::FindHeader> gix::objs::FindHeader for Interruptible<'_, T> {
    fn try_header(&self, id: &gix::oid) -> gix::Result<Option<gix::objs::Header>> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(gix::Error::from_error(Cancelled));
        }
        self.objects.try_header(id)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("cannot open the git repository at {path}: {message}")]
    Open { path: String, message: String },
    #[error("cannot read HEAD of {path}: {message}")]
    Head { path: String, message: String },
    #[error("blame of {file} failed: {message}")]
    Blame { file: String, message: String },
}

#[derive(Clone)]
pub struct LocalRepo {
    repo: gix::ThreadSafeRepository,
    path: String,
}

impl LocalRepo {
    pub fn open(path: &Path) -> Result<Self, RepoError> {
        let display = path.display().to_string();
        let repo = gix::open(path)
            .map_err(|e| RepoError::Open {
                path: display.clone(),
                message: e.to_string(),
            })?
            .into_sync();
        Ok(Self {
            repo,
            path: display,
        })
    }

    fn head_error(&self, e: impl std::fmt::Display) -> RepoError {
        RepoError::Head {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// The commit HEAD points at.
    pub fn head(&self) -> Result<gix::ObjectId, RepoError> {
        let repo = self.repo.to_thread_local();
        let id = repo.head_id().map_err(|e| self.head_error(e))?;
        Ok(id.detach())
    }

    /// A file's bytes at `commit`, `None` when it does not exist there.
    pub fn read_file(
        &self,
        commit: gix::ObjectId,
        path: &str,
    ) -> Result<Option<Vec<u8>>, RepoError> {
        let repo = self.repo.to_thread_local();
        let tree = repo
            .find_commit(commit)
            .and_then(|c| c.tree())
            .map_err(|e| self.head_error(e))?;
        let Some(entry) = tree
            .lookup_entry_by_path(path)
            .map_err(|e| self.head_error(e))?
        else {
            return Ok(None);
        };
        if !entry.mode().is_blob() {
            return Ok(None);
        }
        let object = entry.object().map_err(|e| self.head_error(e))?;
        Ok(Some(object.data.clone()))
    }

    /// The CODEOWNERS file GitHub would use, with its path.
    pub fn codeowners(&self, commit: gix::ObjectId) -> Result<Option<(String, String)>, RepoError> {
        for location in CODEOWNERS_LOCATIONS {
            if let Some(bytes) = self.read_file(commit, location)? {
                return Ok(Some((
                    location.to_string(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                )));
            }
        }
        Ok(None)
    }

    /// Blames `lines` (1-based inclusive) of `path` at `commit`; the newest commit among the
    /// hunks is returned. Setting `stop` ends a running blame at its next object lookup.
    pub fn blame(
        &self,
        commit: gix::ObjectId,
        path: &str,
        lines: (u32, u32),
        stop: &AtomicBool,
    ) -> Result<Option<BlameCommit>, RepoError> {
        let error = |e: &dyn std::fmt::Display| RepoError::Blame {
            file: path.to_string(),
            message: e.to_string(),
        };
        let repo = self.repo.to_thread_local();
        let ranges = gix::blame::BlameRanges::from_one_based_inclusive_range(lines.0..=lines.1)
            .map_err(|e| error(&e))?;
        // What `Repository::blame_file` does, over an object database that can be stopped.
        let graph = repo.commit_graph_if_enabled().map_err(|e| error(&e))?;
        let mut resource_cache = repo
            .diff_resource_cache_for_tree_diff()
            .map_err(|e| error(&e))?;
        let options = gix::blame::Options {
            diff_algorithm: repo.diff_algorithm().map_err(|e| error(&e))?,
            ranges,
            since: None,
            // Follow renames so a moved test file keeps the history of its lines.
            rewrites: Some(gix::diff::Rewrites::default()),
            debug_track_path: false,
        };
        let objects = Interruptible {
            objects: &repo.objects,
            stop,
        };
        let outcome = gix::blame::file(
            objects,
            gix::blame::Start::Commit(commit),
            graph,
            &mut resource_cache,
            path.as_bytes().as_bstr(),
            options,
        )
        .map_err(|e| {
            // gix reports the failed lookup, not why it failed.
            if stop.load(Ordering::Relaxed) {
                error(&Cancelled)
            } else {
                error(&e)
            }
        })?;
        let mut newest: Option<(i64, BlameCommit)> = None;
        for entry in &outcome.entries {
            let found = repo.find_commit(entry.commit_id).map_err(|e| error(&e))?;
            let author = found.author().map_err(|e| error(&e))?;
            let seconds = author.time().map(|t| t.seconds).unwrap_or_default();
            if newest.as_ref().is_some_and(|(time, _)| *time >= seconds) {
                continue;
            }
            let sha = entry.commit_id.to_string();
            let summary = found
                .message()
                .map(|m| m.summary().to_string())
                .unwrap_or_default();
            let date = chrono::DateTime::from_timestamp(seconds, 0)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default();
            newest = Some((
                seconds,
                BlameCommit {
                    short_sha: crate::model::short_sha(&sha).to_string(),
                    sha,
                    author: author.name.to_string(),
                    author_email: author.email.to_string(),
                    date,
                    summary,
                    lines,
                },
            ));
        }
        Ok(newest.map(|(_, commit)| commit))
    }
}
