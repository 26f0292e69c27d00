//! One job's log as text, bounded: its last lines, the lines matching a pattern (most recent
//! first, with context), or everything about one test (its progress line, its FAILURES section,
//! its summary line). Lines are numbered; the result never exceeds [`MAX_RESULT_BYTES`] and
//! says how to get the rest when cut.
//!
//! The text comes from the job-outcome reader's store: a finished job's whole log (up to
//! `max_whole_log_bytes`, 64 MiB by default) is fetched once, cleaned, stored compressed, and
//! every later view reads it from there. Lines are numbered from the log's first line; a log
//! over the bound is read from its end, and the result says so.

use super::jobs::{build_with_job, job_info, match_job};
use super::{Budgets, WatchError};
use crate::buildkite::BuildKey;
use crate::buildkite::BuildkiteError;
use crate::http::HttpError;
use crate::input::NodeId;
use crate::model::{JobLogResult, LogLine, MatchStrategy};
use crate::reader::JobReader;
use regex::Regex;

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
    query: &str,
    strategy: MatchStrategy,
    view: &LogView,
    budgets: &Budgets,
) -> Result<JobLogResult, WatchError> {
    let build = build_with_job(reader, key, query, strategy).await?;
    let job = match_job(build.jobs(), query, strategy).map_err(WatchError::NotFound)?;
    let text = reader
        .log_text(key, job, budgets.max_whole_log_bytes)
        .await
        .map_err(|error| match error {
            // Only a 404 means "no log"; a refused token or a timeout says so.
            BuildkiteError::Http(HttpError::NotFound(message)) => {
                WatchError::NotFound(format!("the log of {}: {message}", job.display_name()))
            }
            other => WatchError::Buildkite(other),
        })?;
    let lines: Vec<&str> = text.text.lines().collect();
    let (selected, matches, mut notes) = select(&lines, view);
    let mut truncated = false;
    let mut out: Vec<LogLine> = Vec::new();
    let mut bytes = 0usize;
    for (n, line) in selected {
        bytes += line.len() + 8;
        if bytes > MAX_RESULT_BYTES {
            truncated = true;
            break;
        }
        out.push(LogLine {
            n: n + 1,
            text: line.to_string(),
        });
    }
    if truncated {
        notes.push(format!(
            "cut at {} KB: ask for fewer tail_lines, a narrower search, or fewer context_lines",
            MAX_RESULT_BYTES / 1024
        ));
    }
    if !text.complete {
        notes.push(format!(
            "the log ({} bytes) is over the {}-byte bound of one read (CIWATCH_MAX_WHOLE_LOG_BYTES): only its last {} bytes were read, and line numbers count from the start of those",
            text.total_size, budgets.max_whole_log_bytes, text.bytes_read
        ));
    }
    Ok(JobLogResult {
        job_info: job_info(job),
        total_lines: lines.len(),
        whole_log: text.complete,
        matches,
        truncated,
        lines: out,
        notes,
    })
}

/// The lines of `view`, in the order they are shown, with their 0-based indexes; the match
/// count for a search; notes.
fn select<'t>(
    lines: &[&'t str],
    view: &LogView,
) -> (Vec<(usize, &'t str)>, Option<usize>, Vec<String>) {
    let numbered = |range: std::ops::Range<usize>| range.map(|i| (i, lines[i])).collect::<Vec<_>>();
    match view {
        LogView::Tail { lines: wanted } => {
            let start = lines.len().saturating_sub(*wanted);
            (numbered(start..lines.len()), None, Vec::new())
        }
        LogView::Search {
            pattern,
            context,
            max_matches,
        } => {
            let hits: Vec<usize> = (0..lines.len())
                .rev()
                .filter(|&i| pattern.is_match(lines[i]))
                .collect();
            let mut notes = Vec::new();
            if hits.len() > *max_matches {
                notes.push(format!(
                    "{} lines match; the {max_matches} most recent are shown (raise max_matches, at most {MAX_MATCHES})",
                    hits.len()
                ));
            }
            let mut shown = Vec::new();
            for &hit in hits.iter().take(*max_matches) {
                let start = hit.saturating_sub(*context);
                let end = (hit + context + 1).min(lines.len());
                shown.extend(numbered(start..end));
            }
            (shown, Some(hits.len()), notes)
        }
        LogView::AroundTest { node_id } => {
            let wanted = node_id.comparable();
            let head = crate::logs::pytest::head_line(node_id.as_str());
            let mut keep = vec![false; lines.len()];
            for (i, line) in lines.iter().enumerate() {
                if crate::input::comparable_in_line(line, wanted) {
                    keep[i] = true;
                }
                if is_section_head(line, &head) {
                    // The test's FAILURES or ERRORS section, up to the next section.
                    let end = (i + 1..lines.len())
                        .find(|&j| is_any_section_head(lines[j]))
                        .unwrap_or(lines.len());
                    keep[i..end].iter_mut().for_each(|k| *k = true);
                }
            }
            let shown: Vec<(usize, &str)> = (0..lines.len())
                .filter(|&i| keep[i])
                .map(|i| (i, lines[i]))
                .collect();
            let notes = if shown.is_empty() {
                vec![format!("{} is not named in the log; try search", node_id)]
            } else {
                Vec::new()
            };
            (shown, None, notes)
        }
    }
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

    #[test]
    fn views() {
        let lines: Vec<&str> = LOG.lines().collect();
        let (tail, _, _) = select(&lines, &LogView::Tail { lines: 2 });
        assert_eq!(
            tail.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![12, 13]
        );
        let (found, count, notes) = select(
            &lines,
            &LogView::Search {
                pattern: Regex::new("test_b").expect("regex"),
                context: 0,
                max_matches: 2,
            },
        );
        assert_eq!(count, Some(4));
        assert_eq!(
            found.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            vec![12, 6],
            "most recent first"
        );
        assert!(notes[0].contains("4 lines match"));
        let (around, _, _) = select(
            &lines,
            &LogView::AroundTest {
                node_id: NodeId::parse("tests/a/test_x.py::test_b[1]").expect("id"),
            },
        );
        let shown: Vec<usize> = around.iter().map(|(i, _)| *i).collect();
        assert_eq!(
            shown,
            vec![2, 4, 5, 6, 7, 8, 9, 10, 12],
            "progress line, section, summary"
        );
    }
}
