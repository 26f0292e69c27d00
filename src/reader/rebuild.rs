//! A job's outcome rebuilt from its kept whole log, without a request: the log's blocks read
//! through the extractors again. A log is kept without its outcome when the job-log tool read
//! it before any scan did, or when the outcomes' stored format changed with a new version of
//! the extractors while the logs stayed.

use super::coverage::{command_count, covers_job};
use super::log::stream::LineSink;
use super::log::view::{Direction, LogView};
use super::read_result::Seen;
use super::JobReader;
use crate::buildkite::Job;
use crate::logs::LogAnalyzer;
use crate::model::JobStatus;
use std::ops::ControlFlow;
use std::sync::atomic::Ordering;

impl JobReader<'_> {
    /// `job`'s outcome from its kept whole log, when the log is kept whole and the analysis
    /// covers the job; `None` otherwise (the log is then read as planned).
    pub(super) async fn rebuilt(&self, job: &Job) -> Option<(super::JobRead, Option<Seen>)> {
        let kept = self.kept_log(job, |index| index.complete).await?;
        let (bytes_seen, total_size) = (kept.index.bytes_read, kept.index.total_size);
        let analysis = analyse(&kept).await?;
        if !covers_job(true, &analysis, command_count(job, &analysis)) {
            return None;
        }
        self.counters.stored_hits.fetch_add(1, Ordering::Relaxed);
        let read = super::JobRead {
            status: JobStatus::Analyzed,
            analysis: Some(analysis),
            detail: None,
            stored: true,
        };
        let seen = Seen {
            bytes_seen,
            total_size,
            text: None,
        };
        Some((read, Some(seen)))
    }
}

/// Every line of a kept log through the extractors, first to last, as a stream gives them.
pub(super) async fn analyse(log: &LogView<'_>) -> Option<crate::logs::LogAnalysis> {
    let analyzer = log
        .walk(
            Direction::FirstToLast,
            LogAnalyzer::default(),
            |analyzer, _, line| {
                analyzer.line(line);
                ControlFlow::Continue(())
            },
        )
        .await
        .ok()?;
    // A panic there is a bug met on this log: the log is then read as planned, whose reader
    // says where it failed.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| LineSink::finish(analyzer))).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reader::log::stream::LogStream;

    #[tokio::test]
    async fn a_kept_log_read_again_says_what_its_stream_said() {
        let raw = "+++ :test_tube: Command (1/2): pytest a\n\u{1b}_bk;t=1\u{7}tests/a.py::test_x FAILED\n\n=== FAILURES ===\n____ test_x ____\nE   AssertionError: é\n=== short test summary info ===\nFAILED tests/a.py::test_x - AssertionError: é\r\n+++ :test_tube: Command (2/2): pytest b\nprogress 10%\rprogress 90%\nRuntimeError: boom\nno newline at the end";
        let mut stream = LogStream::<LogAnalyzer>::default();
        stream.push(raw.as_bytes());
        let (streamed, text, _) = stream.finish();
        let size = raw.len() as u64;
        let again = analyse(&LogView::held(text.into_text(size, size, true)))
            .await
            .expect("kept");
        assert_eq!(again.tests, streamed.tests);
        assert_eq!(again.command_headers, streamed.command_headers);
        assert_eq!(again.job_level, streamed.job_level);
        assert_eq!(again.tests.len(), 1);
    }
}
