//! What the sidecar's watcher last did for a pipeline: when it looked, what it read, and when it
//! looks next (shown on the HUD).

/// The watcher's state for one pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchStatus {
    /// When it last looked (RFC 3339, UTC).
    pub looked_at: String,
    pub outcome: WatchOutcome,
    /// When it looks next (RFC 3339, UTC).
    pub next_look_at: String,
}

/// What the last look found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchOutcome {
    /// It read the latest nightly (from the store where it had read it before).
    Read {
        build_number: String,
        complete: bool,
        failures: usize,
    },
    /// The look failed; the next one tries again.
    Failed { why: String },
}
