//! One job log read as a stream: bytes are cut into lines as they arrive, each line goes
//! through the cleaner and a [`LineSink`] (the reader's pytest and job-level extractors) at
//! once, and the cleaned text is kept in compressed blocks ([`super::blocks`]). What a read
//! holds is its pending line, the sink's window and the compressed text, never the log itself.
//!
//! A body that breaks is resumed where it broke: Buildkite serves suffix ranges only, and the
//! bytes not yet read are exactly the log's last `total - read` bytes, so the next request asks
//! for those and nothing it already has. A stream waits at most the read timeout for its next
//! byte (the HTTP client's `read_timeout`), never a total time a large log could not meet.

use super::blocks::{BlockWriter, StoredText};
use crate::buildkite::{BuildKey, BuildkiteClient, BuildkiteError, LogBody};
use crate::http::HttpError;
use crate::logs::clean::{clean_line, RawLines};

/// Resumed requests of one read after its body broke, before the read gives up.
pub const MAX_RESUMES: usize = 4;

/// What reads a log's cleaned lines as they arrive, in order.
pub trait LineSink: Default {
    type Output;
    fn line(&mut self, line: &str);
    fn finish(self) -> Self::Output;
}

/// Lines of a log, parsed and compressed as its bytes arrive.
#[derive(Default)]
pub struct LogStream<S> {
    lines: RawLines,
    cleaned: String,
    analyzer: S,
    text: BlockWriter,
    /// Raw lines taken so far.
    line_no: u64,
    /// The line the cleaner or the sink failed on (a panic): the sink reads nothing after it,
    /// and the read says so instead of taking the whole call down.
    failed_at: Option<u64>,
}

impl<S: LineSink> LogStream<S> {
    /// Takes the next bytes of the log.
    pub fn push(&mut self, bytes: &[u8]) {
        let mut lines = std::mem::take(&mut self.lines);
        lines.push(bytes, &mut |piece| self.take_line(piece));
        self.lines = lines;
    }

    /// What the sink made of every byte pushed, the cleaned text in compressed blocks, and the
    /// raw line the cleaner or the sink failed on, if one did. A sink that fails to finish gives
    /// what an empty one gives, and the line after the last.
    pub fn finish(mut self) -> (S::Output, BlockWriter, Option<u64>) {
        let mut lines = std::mem::take(&mut self.lines);
        lines.finish(&mut |piece| self.take_line(piece));
        let analyzer = std::mem::take(&mut self.analyzer);
        let output = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| analyzer.finish()))
            .unwrap_or_else(|_| {
                self.failed_at.get_or_insert(self.line_no + 1);
                S::default().finish()
            });
        (output, self.text, self.failed_at)
    }

    /// One raw line: cleaned, given to the sink, and kept (compressed) as the stored text. A
    /// panic in either is caught here, and the sink, whose state may be broken, is given no
    /// more lines. A line the cleaner failed on is kept empty, so the lines after it keep their
    /// numbers.
    fn take_line(&mut self, raw: &str) {
        use std::panic::{catch_unwind, AssertUnwindSafe};
        self.line_no += 1;
        let Self {
            cleaned, analyzer, ..
        } = self;
        let clean = catch_unwind(AssertUnwindSafe(|| {
            cleaned.clear();
            clean_line(raw, cleaned);
        }));
        if clean.is_err() {
            cleaned.clear();
            cleaned.push('\n');
            self.failed_at.get_or_insert(self.line_no);
        }
        if self.failed_at.is_none() {
            let read = catch_unwind(AssertUnwindSafe(|| {
                for line in cleaned.lines() {
                    analyzer.line(line);
                }
            }));
            if read.is_err() {
                self.failed_at = Some(self.line_no);
            }
        }
        self.text.push(&self.cleaned);
    }
}

/// What one streamed read saw: what its sink made of the lines, and the cleaned text.
pub struct Streamed<A> {
    pub analysis: A,
    /// The cleaned text of what was read, in compressed blocks, with its index (how much was
    /// read, whether it began at the log's first byte).
    pub text: StoredText,
    /// Requests it took: one, and one per resumed break.
    pub requests: usize,
    /// The raw line the reader failed on (a bug met on this log): what follows it is not in
    /// `analysis`.
    pub failed_at: Option<u64>,
}

impl<A> Streamed<A> {
    /// Times its body broke and was resumed.
    pub fn breaks(&self) -> usize {
        self.requests.saturating_sub(1)
    }

    pub fn bytes_read(&self) -> u64 {
        self.text.index.bytes_read
    }

    /// The log's size.
    pub fn total_size(&self) -> u64 {
        self.text.index.total_size
    }

    /// The read began at the log's first byte.
    pub fn complete(&self) -> bool {
        self.text.index.complete
    }
}

/// Reads `body` (an opened suffix of `job_id`'s log) to its end through a [`LogStream`],
/// resuming a broken body with a suffix range of exactly the bytes not yet read.
pub async fn read_to_end<S: LineSink>(
    client: &BuildkiteClient,
    build: &BuildKey,
    job_id: &str,
    mut body: LogBody,
) -> Result<Streamed<S::Output>, BuildkiteError> {
    // A body without a size is a whole log: its size is what it holds.
    let (start, total) = (body.start, if body.size_known() { body.total } else { 0 });
    let expected = body.len();
    let mut stream = LogStream::<S>::default();
    let mut read: u64 = 0;
    let mut requests = 1;
    loop {
        match body.next_chunk().await {
            Ok(Some(chunk)) => {
                read += chunk.len() as u64;
                stream.push(&chunk);
            }
            Ok(None) => break,
            Err(error) => {
                let left = expected.saturating_sub(read);
                if !body.resumable() || left == 0 || requests > MAX_RESUMES {
                    return Err(broken(error, read, expected, requests));
                }
                tracing::warn!(%error, read, left, "log stream broke; resuming");
                body = client.open_log(build, job_id, left).await?;
                requests += 1;
                if body.total != total || body.len() != left {
                    return Err(changed(job_id, total, body.total));
                }
            }
        }
    }
    client.http().record_bytes(read);
    let (analysis, text, failed_at) = stream.finish();
    Ok(Streamed {
        analysis,
        text: text.into_text(read, total.max(read), start == 0),
        requests,
        failed_at,
    })
}

fn broken(error: HttpError, read: u64, expected: u64, requests: usize) -> BuildkiteError {
    BuildkiteError::Http(HttpError::Transport {
        what: "a job log".into(),
        message: format!(
            "the log stream broke after {read} of {expected} bytes and {requests} requests ({error})"
        ),
    })
}

fn changed(job_id: &str, was: u64, now: u64) -> BuildkiteError {
    BuildkiteError::Http(HttpError::Decode {
        what: format!("the log of job {job_id}"),
        message: format!("the log changed size while it was read ({was} bytes, then {now})"),
    })
}

#[cfg(test)]
mod tests {
    use super::super::blocks::whole_text;
    use super::*;
    use crate::logs::{LogAnalysis, LogAnalyzer};

    fn streamed(raw: &[u8], chunk: usize) -> (LogAnalysis, String) {
        let mut stream = LogStream::<LogAnalyzer>::default();
        for piece in raw.chunks(chunk) {
            stream.push(piece);
        }
        let (analysis, text, failed_at) = stream.finish();
        assert_eq!(failed_at, None);
        let text = whole_text(&text.finish().1).expect("decodes");
        (analysis, text)
    }

    /// A sink that fails on one line: what it read before is kept, it reads nothing after, the
    /// text goes on, and the stream says where it failed.
    #[derive(Default)]
    struct FailsOnBoom(Vec<String>);

    impl LineSink for FailsOnBoom {
        type Output = Vec<String>;
        fn line(&mut self, line: &str) {
            assert!(!line.contains("boom"), "a bug met on this line");
            self.0.push(line.to_string());
        }
        fn finish(self) -> Vec<String> {
            self.0
        }
    }

    #[test]
    fn a_sink_that_fails_on_a_line_stops_there_and_the_stream_says_so() {
        let mut stream = LogStream::<FailsOnBoom>::default();
        stream.push(b"one\ntwo\nboom\nfour\n");
        let (lines, text, failed_at) = stream.finish();
        assert_eq!(lines, ["one", "two"]);
        assert_eq!(failed_at, Some(3));
        let text = whole_text(&text.finish().1).expect("decodes");
        assert_eq!(text, "one\ntwo\nboom\nfour\n", "the text keeps every line");
    }

    #[test]
    fn a_stream_in_any_chunks_says_what_the_whole_text_says() {
        let text = "+++ :test_tube: Command (1/2): pytest a\n\u{1b}_bk;t=1\u{7}tests/a.py::test_x FAILED\n=== FAILURES ===\n____ test_x ____\nE   AssertionError: é\n=== short test summary info ===\nFAILED tests/a.py::test_x - AssertionError: é\r\n+++ :test_tube: Command (2/2): pytest b\nprogress 10%\rprogress 90%\nno newline at the end";
        let whole = crate::logs::clean_log(text.as_bytes());
        let expected = crate::logs::analyze_log(&whole);
        for chunk in [1, 2, 3, 7, 64, 4096] {
            let (analysis, cleaned) = streamed(text.as_bytes(), chunk);
            assert_eq!(cleaned, whole, "chunks of {chunk}");
            assert_eq!(analysis.tests, expected.tests, "chunks of {chunk}");
            assert_eq!(analysis.command_headers, vec![(1, 2), (2, 2)]);
        }
    }

    #[test]
    fn a_huge_line_is_cut_and_the_next_line_is_read() {
        let mut raw = vec![b'x'; 3 * crate::logs::clean::MAX_RAW_LINE_BYTES];
        raw.extend_from_slice(b"\nFAILED tests/a.py::test_y - RuntimeError: boom\n");
        let (analysis, text) = streamed(&raw, 10_000);
        assert_eq!(analysis.tests.len(), 1);
        assert!(text
            .lines()
            .next()
            .is_some_and(|l| l.len() < crate::logs::clean::MAX_RAW_LINE_BYTES));
    }
}
