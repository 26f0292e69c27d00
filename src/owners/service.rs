//! The owner lookup a scan uses: CODEOWNERS from the local clone (at HEAD) or, without one,
//! from GitHub's contents API; blame of the failing test function from the clone, bounded by a
//! time budget. Parsed CODEOWNERS are cached per commit (or per repository with a TTL for the
//! API source), blames per (commit, path, lines).

use super::codeowners::CodeOwners;
use super::repo::{BlameCommit, LocalRepo, CODEOWNERS_LOCATIONS};
use super::source::{function_line_range, repo_path_candidates, split_node_id};
use crate::github::GitHubClient;
pub use crate::model::OwnerSource;
use crate::storage::Memo;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// CODEOWNERS is "confident" (the original's 0.9); a blame author is a weaker signal.
pub const CODEOWNERS_CONFIDENCE: f64 = 0.9;
pub const BLAME_CONFIDENCE: f64 = 0.6;

/// What was found for one failure.
#[derive(Debug, Clone)]
pub struct OwnerLookup {
    pub owners: Vec<String>,
    pub source: Option<OwnerSource>,
    /// The repository path the owners were looked up for.
    pub path: String,
    pub blame: Option<BlameCommit>,
}

#[derive(Debug, Clone)]
pub struct OwnerOptions {
    /// The longest one blame may take before the scan goes on without it.
    pub blame_timeout: Duration,
    /// The longest all blames of one scan may take together.
    pub scan_blame_budget: Duration,
    /// How long CODEOWNERS read from GitHub is reused.
    pub api_cache_ttl: Duration,
}

/// CODEOWNERS and the commit it was read at, ready for many lookups in one scan.
pub struct Prepared {
    codeowners: Option<Arc<CodeOwners>>,
    head: Option<gix::ObjectId>,
    blame_deadline: Instant,
    pub warnings: Vec<String>,
}

impl Prepared {
    /// The CODEOWNERS read for this scan, if any.
    pub fn codeowners(&self) -> Option<&CodeOwners> {
        self.codeowners.as_deref()
    }
}

pub struct Owners {
    local: Option<LocalRepo>,
    /// Why the configured clone cannot be used, repeated in every scan's warnings.
    local_error: Option<String>,
    github: Option<Arc<GitHubClient>>,
    options: OwnerOptions,
    codeowners_by_commit: Memo<gix::ObjectId, Arc<CodeOwners>>,
    /// CODEOWNERS read from GitHub (or that it has none), for `api_cache_ttl`; a failed read
    /// is not kept.
    codeowners_by_repo: Memo<String, Result<Option<Arc<CodeOwners>>, String>>,
    blames: Memo<BlameKey, Option<BlameCommit>>,
}

/// Entries kept of each cache: a few repositories and HEADs, and the blames of a few nightlies.
const CODEOWNERS_ENTRIES: usize = 16;
const BLAME_ENTRIES: usize = 4096;

/// Sets the flag when dropped: a blame whose waiter is gone is stopped, not abandoned.
struct StopOnDrop(Arc<std::sync::atomic::AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A blame is asked for at a commit, of a file, over a line range.
type BlameKey = (gix::ObjectId, String, (u32, u32));

impl Owners {
    /// `local` is the clone at `VLLM_REPO_PATH` (opened by the caller, so a bad path becomes a
    /// warning there); `github` is the fallback for CODEOWNERS.
    pub fn new(
        local: Result<Option<LocalRepo>, super::repo::RepoError>,
        github: Option<Arc<GitHubClient>>,
        options: OwnerOptions,
    ) -> Self {
        let (local, local_error) = match local {
            Ok(local) => (local, None),
            Err(error) => (
                None,
                Some(format!(
                    "{error}; set VLLM_REPO_PATH to a vLLM clone (bare is fine)"
                )),
            ),
        };
        Self {
            local,
            local_error,
            github,
            codeowners_by_commit: Memo::new(CODEOWNERS_ENTRIES, None),
            codeowners_by_repo: Memo::new(CODEOWNERS_ENTRIES, Some(options.api_cache_ttl)),
            options,
            blames: Memo::new(BLAME_ENTRIES, None),
        }
    }

    /// Reads CODEOWNERS once for a scan of `repo` (`owner/name`, for the API fallback).
    pub async fn prepare(&self, repo: &str) -> Prepared {
        let mut warnings: Vec<String> = self.local_error.iter().cloned().collect();
        let blame_deadline = Instant::now() + self.options.scan_blame_budget;
        if let Some(local) = self.local.clone() {
            let read = tokio::task::spawn_blocking(move || -> Result<_, super::repo::RepoError> {
                let head = local.head()?;
                let file = local.codeowners(head)?;
                Ok((head, file))
            })
            .await;
            match read {
                Ok(Ok((head, file))) => {
                    let codeowners = match (self.codeowners_by_commit.get(&head), file) {
                        (Some(parsed), _) => Some(parsed),
                        (None, Some((_, text))) => {
                            let parsed = Arc::new(CodeOwners::parse(&text));
                            self.codeowners_by_commit.insert(head, parsed.clone());
                            Some(parsed)
                        }
                        (None, None) => {
                            warnings.push(format!(
                                "no CODEOWNERS in the local clone at HEAD (looked in {})",
                                CODEOWNERS_LOCATIONS.join(", ")
                            ));
                            None
                        }
                    };
                    return Prepared {
                        codeowners,
                        head: Some(head),
                        blame_deadline,
                        warnings,
                    };
                }
                Ok(Err(error)) => {
                    warnings.push(format!("{error}; owners come from GitHub instead"))
                }
                Err(error) => warnings.push(format!("reading the local clone failed: {error}")),
            }
        }
        let codeowners = self.codeowners_from_github(repo, &mut warnings).await;
        Prepared {
            codeowners,
            head: None,
            blame_deadline,
            warnings,
        }
    }

    async fn codeowners_from_github(
        &self,
        repo: &str,
        warnings: &mut Vec<String>,
    ) -> Option<Arc<CodeOwners>> {
        let github = self.github.as_ref()?;
        let fetched = self
            .codeowners_by_repo
            .get_or_fetch(&repo.to_string(), || async {
                for location in CODEOWNERS_LOCATIONS {
                    match github.file_text(repo, location).await {
                        Ok(Some(text)) => {
                            return (Ok(Some(Arc::new(CodeOwners::parse(&text)))), true)
                        }
                        Ok(None) => continue,
                        Err(error) => return (Err(format!("{error}; owners unknown")), false),
                    }
                }
                (Ok(None), true)
            })
            .await;
        match fetched {
            Ok(Some(parsed)) => Some(parsed),
            Ok(None) => {
                warnings.push(format!("{repo} has no CODEOWNERS on GitHub"));
                None
            }
            Err(warning) => {
                warnings.push(warning);
                None
            }
        }
    }

    /// Owners of the file `file` (a node id's path or a job's test area); with a node id,
    /// also the blame of the test function when a local clone is available.
    pub async fn lookup(
        &self,
        prepared: &Prepared,
        file: &str,
        node_id: Option<&str>,
        warnings: &mut Vec<String>,
    ) -> Option<OwnerLookup> {
        let candidates = repo_path_candidates(file);
        let path = match (&self.local, prepared.head) {
            (Some(local), Some(head)) => self.existing_path(local, head, &candidates).await?,
            _ => candidates.first()?.clone(),
        };
        let owners: Vec<String> = prepared
            .codeowners
            .as_ref()
            .and_then(|c| c.owners_of(&path))
            .map(|o| o.owners.to_vec())
            .unwrap_or_default();
        let blame = match node_id {
            Some(node_id) => self.blame_test(prepared, &path, node_id, warnings).await,
            None => None,
        };
        let source = if !owners.is_empty() {
            Some(OwnerSource::Codeowners)
        } else {
            blame.as_ref().map(|_| OwnerSource::Blame)
        };
        Some(OwnerLookup {
            owners,
            source,
            path,
            blame,
        })
    }

    async fn existing_path(
        &self,
        local: &LocalRepo,
        head: gix::ObjectId,
        candidates: &[String],
    ) -> Option<String> {
        let local = local.clone();
        let candidates = candidates.to_vec();
        tokio::task::spawn_blocking(move || {
            candidates
                .into_iter()
                .find(|c| matches!(local.read_file(head, c), Ok(Some(_))))
        })
        .await
        .ok()
        .flatten()
    }

    /// The last commit that touched the test function of `node_id` in `path`, from the local
    /// clone at the prepared head, within the scan's blame deadline; `None` without a clone.
    async fn blame_test(
        &self,
        prepared: &Prepared,
        path: &str,
        node_id: &str,
        warnings: &mut Vec<String>,
    ) -> Option<BlameCommit> {
        let (local, head) = (self.local.as_ref()?, prepared.head?);
        let deadline = prepared.blame_deadline;
        let (_, class, function) = split_node_id(node_id)?;
        let (class, function) = (class.map(str::to_string), function.to_string());
        let reader = local.clone();
        let file = path.to_string();
        let range = tokio::task::spawn_blocking(move || {
            let source = reader.read_file(head, &file).ok().flatten()?;
            function_line_range(
                &String::from_utf8_lossy(&source),
                class.as_deref(),
                &function,
            )
        })
        .await
        .ok()
        .flatten()?;
        let key = (head, path.to_string(), range);
        if let Some(cached) = self.blames.get(&key) {
            return cached;
        }
        let budget = self
            .options
            .blame_timeout
            .min(deadline.saturating_duration_since(Instant::now()));
        if budget.is_zero() {
            return None;
        }
        let blamer = local.clone();
        let file = path.to_string();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop_blame = stop.clone();
        let task =
            tokio::task::spawn_blocking(move || blamer.blame(head, &file, range, &stop_blame));
        // Dropped before the blame ends (timeout, or the caller's request cancelled): stop it.
        let _cancel_on_drop = StopOnDrop(stop);
        let blamed = match tokio::time::timeout(budget, task).await {
            Ok(Ok(Ok(commit))) => commit,
            Ok(Ok(Err(error))) => {
                warnings.push(error.to_string());
                None
            }
            Ok(Err(error)) => {
                warnings.push(format!("blame of {path} stopped: {error}"));
                None
            }
            Err(_) => {
                warnings.push(format!(
                    "blame of {path} took over {} ms (deep history or the scan's blame budget); owners from CODEOWNERS only (raise CIWATCH_BLAME_TIMEOUT_MS)",
                    budget.as_millis()
                ));
                // Not cached: a later scan with a warmer object cache may finish in time.
                return None;
            }
        };
        self.blames.insert(key, blamed.clone());
        blamed
    }
}
