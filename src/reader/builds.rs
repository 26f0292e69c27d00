//! The reader's builds: a build from the store when its small head says it may be reused, else
//! one request, one caller at a time; a fetched build is written only when its head changed.

use super::stored::BuildHead;
use super::{now_millis, wait_for_turn, JobReader};
use crate::buildkite::BuildKey;
use crate::buildkite::{Build, BuildkiteError};
use crate::storage::Table;
use std::sync::atomic::{AtomicBool, Ordering};

impl JobReader<'_> {
    /// A build with every job (retried attempts included): from the store when it was fetched
    /// within the freshness window, else one request (stored when finished).
    pub async fn build(&self, key: &BuildKey) -> Result<Build, BuildkiteError> {
        self.build_holding(key, |_| true).await
    }

    /// [`JobReader::build`], asking Buildkite again when the stored build does not satisfy
    /// `holds` (a job id it does not have may be a retry made since it was stored).
    pub async fn build_holding(
        &self,
        key: &BuildKey,
        holds: impl Fn(&Build) -> bool,
    ) -> Result<Build, BuildkiteError> {
        let window = i64::try_from(self.build_freshness.as_millis()).unwrap_or(i64::MAX);
        let fresh = |head: &BuildHead| now_millis().saturating_sub(head.fetched_at_ms) < window;
        self.build_where(key, fresh, holds).await
    }

    /// A build a listing just showed: the stored one while the listing shows it unchanged (same
    /// state and `finished_at`: a retried job changes both), else one request.
    pub async fn build_as_listed(
        &self,
        key: &BuildKey,
        listed: &Build,
    ) -> Result<Build, BuildkiteError> {
        let unchanged = |head: &BuildHead| {
            listed.is_finished()
                && head.state == listed.state
                && head.finished_at == listed.finished_at
        };
        self.build_where(key, unchanged, |_| true).await
    }

    /// The stored build when its head is `fresh` and the build `holds`, else one request; while
    /// another caller (this process or a replica) fetches the same build, waits for it and
    /// takes what it stored. Only the small head is read until the build itself is wanted.
    async fn build_where(
        &self,
        key: &BuildKey,
        fresh: impl Fn(&BuildHead) -> bool,
        holds: impl Fn(&Build) -> bool,
    ) -> Result<Build, BuildkiteError> {
        let Some(store) = self.store else {
            let build = self.client.get_build(key).await?;
            self.remember_build(key, &build).await;
            return Ok(build);
        };
        let store_key = build_store_key(&self.scope, key);
        let asked_at = now_millis();
        // A head whose build is gone (evicted, or expired before it): the build is written again.
        let build_missing = AtomicBool::new(false);
        let (store_key, fresh, holds, missing) = (&store_key, &fresh, &holds, &build_missing);
        let look = |waited: bool| async move {
            let head: BuildHead = store.get(Table::BuildHeads, store_key).await?;
            // Fetched by the caller this one waited for: as fresh as a request of its own.
            let fetched_for_this = waited && head.fetched_at_ms >= asked_at;
            if !(fresh(&head) || fetched_for_this) {
                return None;
            }
            let Some(stored) = store.get::<Build>(Table::Builds, store_key).await else {
                missing.store(true, Ordering::Relaxed);
                return None;
            };
            (fetched_for_this || holds(&stored)).then_some(stored)
        };
        let lease = match wait_for_turn(store, &format!("build/{store_key}"), look).await {
            Ok(stored) => {
                self.counters.stored_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(stored);
            }
            Err(lease) => lease,
        };
        let build = self.client.get_build(key).await;
        if let Ok(build) = &build {
            self.store_build(key, build, build_missing.load(Ordering::Relaxed))
                .await;
        }
        if let Some(lease) = lease {
            lease.release().await;
        }
        build
    }

    /// Stores a finished build that came with its jobs (a listing with retried jobs), so a
    /// later look at it within the freshness window costs nothing. When the stored one is the
    /// same build (its head unchanged), only the head's time is written. The writes are made
    /// durable with the call's other writes, not each on its own. A build still running is
    /// noted instead: none of its job outcomes will be stored either.
    pub async fn remember_build(&self, key: &BuildKey, build: &Build) {
        self.store_build(key, build, false).await;
    }

    /// [`JobReader::remember_build`]; the build itself is written also when the head is the
    /// same but the build was found `missing`.
    async fn store_build(&self, key: &BuildKey, build: &Build, missing: bool) {
        if !build.is_finished() {
            if let Ok(mut running) = self.running.lock() {
                running.insert(key.clone());
            }
            return;
        }
        let (Some(store), true) = (self.store, build.jobs.is_some()) else {
            return;
        };
        let store_key = build_store_key(&self.scope, key);
        let fetched_at_ms = now_millis();
        let head = BuildHead::of(build, fetched_at_ms);
        let stored_head: Option<BuildHead> = store.get(Table::BuildHeads, &store_key).await;
        let mut values = Vec::new();
        if missing || !stored_head.is_some_and(|stored| stored.same_build(&head)) {
            values.extend(
                serde_json::to_vec(build)
                    .ok()
                    .map(|bytes| (Table::Builds, store_key.clone(), bytes)),
            );
        }
        values.extend(
            serde_json::to_vec(&head)
                .ok()
                .map(|bytes| (Table::BuildHeads, store_key, bytes)),
        );
        store.put_many_bytes(values).await;
        self.unflushed.store(true, Ordering::Relaxed);
    }
}

fn build_store_key(scope: &str, key: &BuildKey) -> String {
    format!("{scope}/{}/{}/{}", key.org, key.pipeline, key.number)
}
