//! Identical scans asked at the same time share one run: twenty callers of one cold nightly cost
//! one scan's reading and analysis, and each gets the same answer. Nothing is kept once the run
//! ends, so the next call scans again (and goes on where an incomplete answer stopped). A caller
//! that joins gets no progress of its own; when the caller running the scan cancels, the next
//! one waiting runs it.

use crate::model::ScanResult;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

type Outcome = Result<Arc<ScanResult>, String>;

#[derive(Default)]
pub struct ScanFlights {
    /// Runs under way, by caller, build and options.
    flights: Mutex<HashMap<String, Arc<OnceCell<Outcome>>>>,
}

impl ScanFlights {
    /// The outcome of `scan`, run once by the first of the callers asking `key` at the same
    /// time; the bool says whether this caller joined a run another started.
    pub async fn run<F, Fut>(&self, key: String, scan: F) -> (Outcome, bool)
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Outcome>,
    {
        let cell = self
            .flights
            .lock()
            .map(|mut flights| flights.entry(key.clone()).or_default().clone())
            .unwrap_or_default();
        let mut ran = false;
        let outcome = cell
            .get_or_init(|| {
                ran = true;
                scan()
            })
            .await
            .clone();
        // The run has ended: a later call scans again.
        if let Ok(mut flights) = self.flights.lock() {
            if flights.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                flights.remove(&key);
            }
        }
        (outcome, !ran)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn result() -> Arc<ScanResult> {
        Arc::new(serde_json::from_value(serde_json::json!({
            "build_info": {"pipeline": "vllm/ci", "build_number": "1", "build_url": "", "state": "failed",
                           "branch": "main", "commit": "", "message": "", "created_at": ""},
            "total_jobs": 0, "failed_jobs": 0, "failures": [], "scan_timestamp": ""
        })).expect("a result"))
    }

    #[tokio::test(start_paused = true)]
    async fn callers_at_the_same_time_share_one_run_and_a_later_call_runs_again() {
        let flights = ScanFlights::default();
        let runs = AtomicUsize::new(0);
        let scan = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            Ok(result())
        };
        let answers =
            futures::future::join_all((0..20).map(|_| flights.run("k".into(), scan))).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(answers.iter().filter(|(_, joined)| !joined).count(), 1);
        assert!(answers.iter().all(|(outcome, _)| outcome.is_ok()));
        assert!(flights.run("k".into(), scan).await.0.is_ok());
        assert_eq!(runs.load(Ordering::SeqCst), 2, "nothing kept after the run");
        assert!(flights.run("other".into(), scan).await.0.is_ok());
        assert_eq!(runs.load(Ordering::SeqCst), 3, "another key never joins");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_run_passes_to_the_next_caller() {
        let flights = Arc::new(ScanFlights::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let scan = {
            let runs = runs.clone();
            move || {
                let runs = runs.clone();
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    Ok(result())
                }
            }
        };
        let first = tokio::spawn({
            let (flights, scan) = (flights.clone(), scan.clone());
            async move { flights.run("k".into(), scan).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let second = tokio::spawn({
            let flights = flights.clone();
            async move { flights.run("k".into(), scan).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        first.abort();
        let (outcome, joined) = second.await.expect("second caller");
        assert!(outcome.is_ok());
        assert!(!joined, "the second caller ran the scan itself");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }
}
