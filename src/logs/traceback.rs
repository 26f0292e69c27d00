//! Python's tracebacks and pytest's `E` blocks as a log shows them: the exception that closes
//! the last one, the root cause a wrapper error points up to, and where a traceback ends when
//! its frames and exception carry a process's or logger's prefix.

use super::prefix::{self, e_margin, without_pytest_margins};
use super::wording::{is_wrapper, EXCEPTION_LINE};
use crate::model::ErrorSource;

/// Frames kept from the end of the last traceback.
const TRACEBACK_TAIL_LINES: usize = 8;

/// The exception that closes the last traceback, or the first exception of pytest's last `E`
/// block when that comes later (or the root cause a vLLM wrapper points up to), marking the
/// traceback's tail in `keep`. A traceback cut off before its exception line (a truncated paste)
/// keeps its frames and gives no exception.
pub(super) fn last_exception(lines: &[&str], keep: &mut [bool]) -> Option<(usize, ErrorSource)> {
    let header = lines
        .iter()
        .rposition(|l| prefix::body(l).starts_with("Traceback (most recent call last)"));
    let closing = header.and_then(|tb| {
        let end = traceback_end(lines, tb);
        let last = end.unwrap_or(lines.len() - 1);
        keep[tb] = true;
        for flag in keep
            .iter_mut()
            .take(last + 1)
            .skip(last.saturating_sub(TRACEBACK_TAIL_LINES).max(tb))
        {
            *flag = true;
        }
        end
    });
    let e_block = last_e_block_exception(lines).filter(|&e| header.is_none_or(|tb| e > tb));
    if let Some(e) = e_block {
        keep[e] = true;
    }
    let found = e_block.or(closing)?;
    // vLLM's wrapper errors point up to the real one: take it, keep the wrapper as context.
    // A wrapper whose cause is not in the text says nothing of its own.
    if is_wrapper(prefix::body(lines[found])) {
        let above = header.unwrap_or(found).min(found);
        let cause = root_cause_index(&lines[..above])?;
        keep[cause] = true;
        return Some((cause, ErrorSource::RootCause));
    }
    Some((found, ErrorSource::Exception))
}

/// pytest's last `E` block (consecutive `E` lines): its first exception line (pytest prints the
/// exception first, whatever its name), or the last
/// exception nested under a second `E` margin (the repr of a collection error carries the
/// import's own traceback, whose exception is the cause); else `None`.
pub(super) fn last_e_block_exception(lines: &[&str]) -> Option<usize> {
    let is_e = |l: &&str| e_margin(prefix::body(l)).is_some();
    let last = lines.iter().rposition(is_e)?;
    let first = lines[..last]
        .iter()
        .rposition(|l| !is_e(l))
        .map_or(0, |i| i + 1);
    let is_exception =
        |i: &usize| closes_traceback(without_pytest_margins(prefix::body(lines[*i])).trim());
    let nested = |i: &usize| {
        e_margin(prefix::body(lines[*i]))
            .and_then(|inner| e_margin(inner.trim_start()))
            .is_some()
    };
    (first..=last)
        .rev()
        .find(|i| nested(i) && is_exception(i))
        .or_else(|| (first..=last).find(is_exception))
        .or_else(|| {
            // pytest's rewritten assertion (`E   assert 0 == 1`) names no exception.
            (first..=last).find(|&i| {
                without_pytest_margins(prefix::body(lines[i]))
                    .trim()
                    .starts_with("assert ")
            })
        })
}

/// The last exception line in `lines` that is not itself a wrapper: the root cause a wrapper
/// error points to.
pub(super) fn root_cause_index(lines: &[&str]) -> Option<usize> {
    lines.iter().rposition(|line| {
        let body = without_pytest_margins(prefix::body(line)).trim();
        EXCEPTION_LINE.is_match(body) && !is_wrapper(body)
    })
}

/// The traceback's exception line: the first line after the header that is indented no deeper
/// than the header (frames are `  File …` and their source lines, deeper). `None` when the text
/// ends first, or when that line is no exception (a paste cut mid-line).
fn traceback_end(lines: &[&str], header: usize) -> Option<usize> {
    let indent = |line: &str| {
        let body = prefix::body(line);
        body.len() - body.trim_start().len()
    };
    let depth = indent(lines[header]);
    (header + 1..lines.len())
        .find(|&i| !prefix::body(lines[i]).trim().is_empty() && indent(lines[i]) <= depth)
        .filter(|&i| closes_traceback(prefix::body(lines[i]).trim()))
}

/// A traceback's last line: `Name: message` or `dotted.Name: message` whatever the name (a
/// traceback's structure says it is the exception), or a bare name that reads as one.
fn closes_traceback(text: &str) -> bool {
    let name_end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(text.len());
    let named = name_end > 0
        && text[..name_end].split('.').all(|part| {
            part.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
        });
    named && text[name_end..].starts_with(": ")
        || EXCEPTION_LINE.is_match(text)
        || super::looks_like_exception(text)
}
