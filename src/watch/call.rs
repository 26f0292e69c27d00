//! One scan's context: its options, the services beyond Buildkite, and the call value every
//! step of a scan reads (the reader, the services, the build's key, the options, progress).
//! The scan's steps are its methods (`scan.rs`); the compared pipeline's lookup reads it too.

use super::{Budgets, Progress};
use crate::buildkite::{BuildKey, PipelineKey};
pub use crate::fit::Presentation;
use crate::github::GitHubClient;
use crate::model::ScanStats;
use crate::owners::Owners;
use crate::reader::JobReader;
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// What of the result is returned: its detail and its page ([`Presentation::WHOLE`] for a
    /// caller that presents the result itself, as the MCP tools do).
    pub presentation: Presentation,
    /// At `full`, the Daily Findings and Standup texts go into the result. A caller that
    /// keeps full detail only to present less (the MCP tools at `summary`) leaves them out
    /// rather than render them to drop them.
    pub render_reports: bool,
    pub budgets: Budgets,
    /// Why this build was chosen, when the caller chose it (nightly selection).
    pub selection: Option<String>,
    /// GitHub repository (`owner/name`) of the code under test: its CI-failure issues are
    /// matched and its CODEOWNERS read.
    pub repo: String,
    /// Match failures to the repository's CI-failure issues.
    pub search_github: bool,
    /// Previous scheduled nightlies a nightly build is compared with (0: no comparison; other
    /// builds are never compared).
    pub compare_nightlies: usize,
    /// The second pipeline whose matching nightly each cause is looked up in (the AMD one).
    pub compare_pipeline: Option<PipelineKey>,
}

/// The services that add to a scan beyond Buildkite; each is optional.
#[derive(Clone, Copy, Default)]
pub struct Enrichment<'a> {
    pub github: Option<&'a GitHubClient>,
    pub owners: Option<&'a Owners>,
}

/// One scan of one build: what each of its steps reads (the reader, the services, the
/// build's key, the options) and reports progress to.
#[derive(Clone, Copy)]
pub(super) struct ScanCall<'a> {
    pub reader: &'a JobReader<'a>,
    pub enrichment: Enrichment<'a>,
    pub key: &'a BuildKey,
    pub options: &'a ScanOptions,
    pub progress: &'a dyn Progress,
}

/// This call's request and byte counts at the start of a scan, so its `stats` count only its
/// own (a main-branch analysis runs several scans in one call).
#[derive(Clone, Copy)]
pub(super) struct Snapshot {
    started: Instant,
    totals: crate::call::CallTotals,
}

impl Snapshot {
    pub(super) fn take() -> Self {
        Self {
            started: Instant::now(),
            totals: crate::call::call_totals(),
        }
    }

    /// What the call sent since the snapshot.
    pub(super) fn stats(&self) -> ScanStats {
        let now = crate::call::call_totals();
        ScanStats {
            api_requests: now.buildkite_requests - self.totals.buildkite_requests,
            github_requests: now.github_requests - self.totals.github_requests,
            log_bytes_fetched: now.log_bytes - self.totals.log_bytes,
            elapsed_ms: self.started.elapsed().as_millis() as u64,
            compared_pipeline_requests: 0,
            joined: false,
        }
    }
}
