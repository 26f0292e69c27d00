//! The sidecar's watcher (`serve --http`, on unless `CIWATCH_WATCH_INTERVAL_SECS=0`): it looks
//! at the pipelines the HUD serves when the server starts and then at every interval, and reads
//! each one's latest nightly with the server's own token, so the night is in the store before
//! anyone asks and the HUD shows it. A nightly already read costs its listing and its build;
//! a new one is read whole. Its requests are background work (`http::in_background`): they
//! take at most half the rate window and hold back while a caller's request waits. The webhook
//! (`webhook.rs`) starts the same read at once; the poll stays as the reconciler for missed
//! deliveries.

use super::CiWatchServer;
use crate::model::{WatchOutcome, WatchStatus};
use std::time::Duration;

/// Calls one look may make: each reads the next `max_jobs` logs (stored ones are free), so a
/// night of 24 failed jobs is whole after two.
const READS_PER_LOOK: usize = 5;

/// The default interval between two looks (`CIWATCH_WATCH_INTERVAL_SECS`).
pub const DEFAULT_WATCH_INTERVAL: Duration = Duration::from_secs(300);

/// Starts the watcher of `pipelines` (`(org, pipeline)`) on this runtime; it runs as long as
/// the server does.
pub fn spawn(server: CiWatchServer, pipelines: Vec<(String, String)>, interval: Duration) {
    tokio::spawn(async move {
        loop {
            for (org, pipeline) in &pipelines {
                server.look(org, pipeline, interval).await;
            }
            tokio::time::sleep(interval).await;
        }
    });
}

impl CiWatchServer {
    /// One look at `org/pipeline`'s latest nightly, recorded for the HUD.
    async fn look(&self, org: &str, pipeline: &str, interval: Duration) {
        let looked_at = chrono::Utc::now();
        let read = crate::http::in_background(async {
            let mut read = self.scan_nightly_for_hud(org, pipeline).await;
            for _ in 1..READS_PER_LOOK {
                match &read {
                    Ok(scan) if !scan.complete => {
                        read = self.scan_nightly_for_hud(org, pipeline).await;
                    }
                    _ => break,
                }
            }
            read
        })
        .await;
        let outcome = match read {
            Ok(scan) => WatchOutcome::Read {
                build_number: scan.build_info.build_number.clone(),
                complete: scan.complete,
                failures: scan.total_failures,
            },
            Err(why) => {
                tracing::warn!(%why, %org, %pipeline, "watcher: the nightly could not be read");
                WatchOutcome::Failed {
                    why: crate::untrusted::sanitize(&why).into_owned(),
                }
            }
        };
        let next = looked_at + chrono::Duration::from_std(interval).unwrap_or_default();
        let status = WatchStatus {
            looked_at: looked_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            outcome,
            next_look_at: next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        };
        if let Ok(mut watched) = self.watch.lock() {
            watched.insert(format!("{org}/{pipeline}"), status);
        }
    }

    /// What the watcher last did for `pipeline` (`org/pipeline`), when it watches it.
    pub(super) fn watch_status(&self, pipeline: &str) -> Option<WatchStatus> {
        self.watch.lock().ok()?.get(pipeline).cloned()
    }
}
