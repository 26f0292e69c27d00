//! One job's log as text, bounded: its last lines, the lines matching a pattern (most recent
//! first, with context), or everything about one test (its progress line, its FAILURES section,
//! its summary line). Lines are numbered; the result never exceeds [`MAX_RESULT_BYTES`] and
//! says how to get the rest when cut.
//!
//! The text comes from the job-outcome reader's store: a finished job's whole log (up to
//! `max_whole_log_bytes`, 64 MiB by default) is fetched once, cleaned, kept in compressed
//! blocks, and every later view reads from there only the blocks it shows, one at a time, off
//! the async workers (`reader::log::view`): a view's memory does not follow the log's size.
//! Lines are numbered from the log's first line; a log over the bound is read from its end,
//! and the result says so.

use super::jobs::{build_with_job, job_info, JobQuery};
use super::{Budgets, WatchError};
use crate::buildkite::BuildKey;
use crate::buildkite::BuildkiteError;
use crate::http::HttpError;
use crate::input::NodeId;
use crate::model::{JobLogResult, LogLine};
use crate::reader::log::view::{Direction, LogGone, LogView as KeptLog};
use crate::reader::JobReader;
use regex::Regex;
use std::ops::ControlFlow;

/// The most bytes of line text a result carries (Claude Code caps a tool result at about
/// 25,000 tokens; this leaves room for the rest of the result).
pub const MAX_RESULT_BYTES: usize = 64 * 1024;
pub const DEFAULT_TAIL_LINES: usize = 100;
pub const MAX_TAIL_LINES: usize = 5_000;
pub const MAX_CONTEXT_LINES: usize = 20;
pub const DEFAULT_MAX_MATCHES: usize = 20;
pub const MAX_MATCHES: usize = 200;

/// Which part of the log.
#[derive(Debug, Clone)]
pub enum LogView {
    Tail {
        lines: usize,
    },
    Search {
        pattern: Regex,
        context: usize,
        max_matches: usize,
    },
    AroundTest {
        node_id: NodeId,
    },
}

pub async fn job_log(
    reader: &JobReader<'_>,
    key: &BuildKey,
    query: &JobQuery<'_>,
    view: &LogView,
    budgets: &Budgets,
) -> Result<JobLogResult, WatchError> {
    // A call of its own: what it met beside the log (a shared store that did not answer) is
    // among its notes.
    crate::call::answered(read_job_log(reader, key, query, view, budgets), |r| {
        &mut r.notes
    })
    .await
}

async fn read_job_log(
    reader: &JobReader<'_>,
    key: &BuildKey,
    query: &JobQuery<'_>,
    view: &LogView,
    budgets: &Budgets,
) -> Result<JobLogResult, WatchError> {
    let build = build_with_job(reader, key, query).await?;
    let job = query.find(build.jobs()).map_err(WatchError::NotFound)?;
    let open = |fresh| async move {
        reader
            .log_view(key, job, budgets.max_whole_log_bytes, fresh)
            .await
            .map_err(|error| match error {
                // Only a 404 means "no log"; a refused token or a timeout says so.
                BuildkiteError::Http(HttpError::NotFound(message)) => {
                    WatchError::NotFound(format!("the log of {}: {message}", job.display_name()))
                }
                other => WatchError::Buildkite(other),
            })
    };
    let kept = open(false).await?;
    let (kept, shown) = match select(&kept, view).await {
        Ok(shown) => (kept, shown),
        // The kept log was evicted while it was read: read it again.
        Err(LogGone) => {
            drop(kept);
            let again = open(true).await?;
            let shown = select(&again, view).await.map_err(|_| {
                WatchError::NotFound(format!(
                    "the log of {} could not be kept",
                    job.display_name()
                ))
            })?;
            (again, shown)
        }
    };
    let mut notes = shown.notes;
    if shown.truncated {
        notes.push(format!(
            "cut at {} KB: ask for fewer tail_lines, a narrower search, or fewer context_lines",
            MAX_RESULT_BYTES / 1024
        ));
    }
    let index = &kept.index;
    if !index.complete {
        notes.push(format!(
            "the log ({} bytes) is over the {}-byte bound of one read (CIWATCH_MAX_WHOLE_LOG_BYTES): only its last {} bytes were read, and line numbers count from the start of those",
            index.total_size, budgets.max_whole_log_bytes, index.bytes_read
        ));
    }
    Ok(JobLogResult {
        job_info: job_info(job),
        total_lines: index.total_lines() as usize,
        whole_log: index.complete,
        matches: shown.matches,
        truncated: shown.truncated,
        lines: shown.lines,
        notes,
    })
}

/// What a shown line takes of [`MAX_RESULT_BYTES`]: its text and its number.
fn shown_bytes(text: &str) -> usize {
    text.len() + 8
}

/// The lines a view shows, numbered from 1, within [`MAX_RESULT_BYTES`].
struct Shown {
    lines: Vec<LogLine>,
    /// The match count of a search.
    matches: Option<usize>,
    truncated: bool,
    notes: Vec<String>,
}

impl Shown {
    /// `lines` (0-based numbers) as shown: cut where their text passes the result's bound.
    fn cut(lines: Vec<(u64, String)>, matches: Option<usize>, notes: Vec<String>) -> Self {
        let mut bytes = 0usize;
        let mut shown = Vec::new();
        let mut truncated = false;
        for (n, text) in lines {
            bytes += shown_bytes(&text);
            if bytes > MAX_RESULT_BYTES {
                truncated = true;
                break;
            }
            shown.push(LogLine {
                n: n as usize + 1,
                text,
            });
        }
        Self {
            lines: shown,
            matches,
            truncated,
            notes,
        }
    }
}

/// The lines of `view`, in the order they are shown, reading only the blocks it needs.
async fn select(log: &KeptLog<'_>, view: &LogView) -> Result<Shown, LogGone> {
    match view {
        LogView::Tail { lines } => {
            let lines = log.tail(*lines as u64, MAX_RESULT_BYTES).await?;
            Ok(Shown::cut(lines, None, Vec::new()))
        }
        LogView::Search {
            pattern,
            context,
            max_matches,
        } => {
            let hits = log.search(pattern, *max_matches).await?;
            let mut notes = Vec::new();
            if hits.count > *max_matches {
                notes.push(format!(
                    "{} lines match; the {max_matches} most recent are shown (raise max_matches, at most {MAX_MATCHES})",
                    hits.count
                ));
            }
            let mut shown = Vec::new();
            let mut bytes = 0;
            for hit in hits.newest {
                let around = hit.saturating_sub(*context as u64)..hit + *context as u64 + 1;
                let lines = log.seek(around, MAX_RESULT_BYTES - bytes).await?;
                bytes += lines
                    .iter()
                    .map(|(_, text)| shown_bytes(text))
                    .sum::<usize>();
                shown.extend(lines);
                if bytes > MAX_RESULT_BYTES {
                    break;
                }
            }
            Ok(Shown::cut(shown, Some(hits.count), notes))
        }
        LogView::AroundTest { node_id } => {
            let lines = around_test(log, node_id).await?;
            let notes = if lines.is_empty() {
                vec![format!("{} is not named in the log; try search", node_id)]
            } else {
                Vec::new()
            };
            Ok(Shown::cut(lines, None, notes))
        }
    }
}

/// Everything about one test, first to last: the lines that name it (progress, summary) and
/// its FAILURES or ERRORS section, up to the next section; taken until the result's bound.
async fn around_test(log: &KeptLog<'_>, node_id: &NodeId) -> Result<Vec<(u64, String)>, LogGone> {
    struct Walk {
        wanted: String,
        head: String,
        in_section: bool,
        bytes: usize,
        taken: Vec<(u64, String)>,
    }
    let walk = Walk {
        wanted: node_id.comparable().to_string(),
        head: crate::logs::pytest::head_line(node_id.as_str()),
        in_section: false,
        bytes: 0,
        taken: Vec::new(),
    };
    let walk = log
        .walk(Direction::FirstToLast, walk, |walk, n, line| {
            if is_section_head(line, &walk.head) {
                walk.in_section = true;
            } else if walk.in_section && is_any_section_head(line) {
                walk.in_section = false;
            }
            if walk.in_section || crate::input::comparable_in_line(line, &walk.wanted) {
                walk.bytes += shown_bytes(line);
                walk.taken.push((n, line.to_string()));
                if walk.bytes > MAX_RESULT_BYTES {
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        })
        .await?;
    Ok(walk.taken)
}

/// `____ test_name[param] ____`, pytest's head of a test's section.
fn is_section_head(line: &str, head: &str) -> bool {
    let trimmed = line.trim();
    trimmed.starts_with("___")
        && trimmed.ends_with("___")
        && trimmed.trim_matches('_').trim() == head
}

fn is_any_section_head(line: &str) -> bool {
    let trimmed = line.trim();
    (trimmed.starts_with("___") && trimmed.ends_with("___") && trimmed.len() > 6)
        || (trimmed.starts_with("===") && trimmed.ends_with("==="))
        || trimmed.starts_with("+++ ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "+++ :test_tube: Command (1/1): pytest -v -s a\na/test_x.py::test_a PASSED\na/test_x.py::test_b[1] FAILED\n=== FAILURES ===\n____ test_b[1] ____\n\n    def test_b():\n>       assert 0\nE       assert 0\n\na/test_x.py:3: AssertionError\n=== short test summary info ===\nFAILED a/test_x.py::test_b[1] - assert 0\n🚨 Error: The command exited with status 1";

    fn kept(text: &str) -> KeptLog<'static> {
        let mut writer = crate::reader::log::blocks::BlockWriter::default();
        for line in text.lines() {
            writer.push(&format!("{line}\n"));
        }
        let size = text.len() as u64;
        KeptLog::held(writer.into_text(size, size, true))
    }

    fn numbers(shown: &Shown) -> Vec<usize> {
        shown.lines.iter().map(|line| line.n).collect()
    }

    #[tokio::test]
    async fn views() {
        let log = kept(LOG);
        let tail = select(&log, &LogView::Tail { lines: 2 })
            .await
            .expect("kept");
        assert_eq!(numbers(&tail), vec![13, 14]);
        let search = LogView::Search {
            pattern: Regex::new("test_b").expect("regex"),
            context: 0,
            max_matches: 2,
        };
        let found = select(&log, &search).await.expect("kept");
        assert_eq!(found.matches, Some(4));
        assert_eq!(numbers(&found), vec![13, 7], "most recent first");
        assert!(found.notes[0].contains("4 lines match"));
        let node_id = NodeId::parse("tests/a/test_x.py::test_b[1]").expect("id");
        let around = select(&log, &LogView::AroundTest { node_id })
            .await
            .expect("kept");
        assert_eq!(
            numbers(&around),
            vec![3, 5, 6, 7, 8, 9, 10, 11, 13],
            "progress line, section, summary"
        );
    }

    #[tokio::test]
    async fn a_view_of_a_large_log_is_cut_at_the_result_bound() {
        let line = format!("E   {}", "x".repeat(1000));
        let log = kept(&vec![line.as_str(); 5000].join("\n"));
        let tail = select(&log, &LogView::Tail { lines: 5000 })
            .await
            .expect("kept");
        assert!(tail.truncated);
        assert_eq!(tail.lines.first().map(|l| l.n), Some(1));
        assert!(tail.lines.len() < 70, "{} lines kept", tail.lines.len());
    }
}
