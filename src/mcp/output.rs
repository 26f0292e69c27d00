//! Tool results with both forms: the value as `structuredContent` (matching the tool's
//! `outputSchema`) and a compact markdown rendering as the text content, for clients and
//! models that read only text. Every result leaves through here, its text sanitised
//! (`untrusted`): logs and issues are written by anyone who can open a PR or an issue.

use crate::untrusted::{sanitize, sanitize_json};
use rmcp::model::{CallToolResult, ContentBlock};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn structured<T: Serialize>(value: &T, text: String) -> Result<CallToolResult, String> {
    let mut json = serde_json::to_value(value)
        .map_err(|e| format!("the result could not be serialised: {e}"))?;
    sanitize_json(&mut json);
    let mut result = CallToolResult::structured(json);
    result.content = vec![ContentBlock::text(sanitize(&text).into_owned())];
    Ok(result)
}

pub use crate::config::DEFAULT_MAX_RESULT_CHARS;

/// A scan's default answer (`summary`, `minimal`): about 10k tokens at 3.5 characters each,
/// so the morning answer leaves room in the conversation.
pub const SUMMARY_RESULT_CHARS: usize = 35_000;

static RESULT_CHARS: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_RESULT_CHARS as usize);

/// The cap on one result (`CIWATCH_MAX_RESULT_CHARS`), the process's.
pub fn max_result_chars() -> usize {
    RESULT_CHARS.load(Ordering::Relaxed)
}

pub fn set_max_result_chars(chars: u64) {
    RESULT_CHARS.store(
        usize::try_from(chars).unwrap_or(usize::MAX),
        Ordering::Relaxed,
    );
}

/// Like [`structured`], cutting `value` record by record until the result fits
/// [`max_result_chars`]: `shrink` removes one whole record and returns false when none is left;
/// `text` renders the value again. Returns how many records were removed.
pub fn structured_within_cap<T: Serialize>(
    value: &mut T,
    text: impl Fn(&T) -> String,
    mut shrink: impl FnMut(&mut T) -> bool,
) -> Result<(CallToolResult, usize), String> {
    let size = |value: &T| -> Result<usize, String> {
        let json = serde_json::to_string(value)
            .map_err(|e| format!("the result could not be serialised: {e}"))?;
        Ok(json.chars().count() + text(value).chars().count())
    };
    // Room for the note the caller adds about what was cut.
    const NOTE_ROOM: usize = 1_000;
    let mut removed = 0;
    while size(value)? > max_result_chars() - NOTE_ROOM && shrink(value) {
        removed += 1;
    }
    Ok((structured(value, text(value))?, removed))
}

/// A scan result under the cap of its detail level ([`SUMMARY_RESULT_CHARS`] below `full`),
/// its structured content and its text each: detail shed first, then the failures paged
/// (`crate::fit`); never a failure dropped.
pub fn scan_within_cap(
    result: &mut crate::model::ScanResult,
    level: crate::model::DetailLevel,
) -> Result<CallToolResult, String> {
    let cap = match level {
        crate::model::DetailLevel::Full => max_result_chars(),
        _ => {
            // `completeness` lists the jobs not read whole; the others are their failures' jobs.
            result.jobs.clear();
            SUMMARY_RESULT_CHARS.min(max_result_chars())
        }
    };
    result.without_derivable_urls();
    // Below `full` each form is sized for its own reader: a client with structured output gives
    // the model only `structuredContent` (Claude Code, VS Code), one without it reads only the
    // text, so each keeps under the cap. A `full` result is held to the whole result's cap.
    let each_for_its_reader = level != crate::model::DetailLevel::Full;
    let size = |r: &crate::model::ScanResult| {
        let json = serde_json::to_string(r).map_or(usize::MAX, |json| json.chars().count());
        let text = crate::report::scan_digest(r).chars().count();
        if each_for_its_reader {
            json.max(text)
        } else {
            json.saturating_add(text)
        }
    };
    // Room for the notes the fitting adds.
    const NOTE_ROOM: usize = 2_000;
    crate::fit::fit_scan(result, cap - NOTE_ROOM, size);
    structured(result, crate::report::scan_digest(result))
}

/// [`sanitized`], then cut record by record (`shrink`) while over [`max_result_chars`]; `note`
/// is told how many records went, to say so in the result. A `Json<T>` result carries its
/// value twice (structured and as text), so twice its size is what counts.
pub fn sanitized_within_cap<T: Serialize + DeserializeOwned>(
    value: T,
    mut shrink: impl FnMut(&mut T) -> bool,
    note: impl FnOnce(&mut T, usize),
) -> Result<T, String> {
    const NOTE_ROOM: usize = 1_000;
    let mut value = sanitized(value)?;
    let size =
        |value: &T| serde_json::to_string(value).map_or(usize::MAX, |j| 2 * j.chars().count());
    let mut removed = 0;
    while size(&value) > max_result_chars() - NOTE_ROOM && shrink(&mut value) {
        removed += 1;
    }
    if removed > 0 {
        note(&mut value, removed);
    }
    Ok(value)
}

/// `value` with every string sanitised, for tools that return `Json<T>`.
pub fn sanitized<T: Serialize + DeserializeOwned>(value: T) -> Result<T, String> {
    let mut json = serde_json::to_value(&value)
        .map_err(|e| format!("the result could not be serialised: {e}"))?;
    sanitize_json(&mut json);
    serde_json::from_value(json).map_err(|e| format!("the result could not be serialised: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_cut_record_by_record_to_the_cap() {
        let mut records: Vec<String> = (0..100)
            .map(|i| format!("{i:04}{}", "x".repeat(2_000)))
            .collect();
        let (result, removed) = structured_within_cap(
            &mut records,
            |r| format!("{} records", r.len()),
            |r| r.pop().is_some(),
        )
        .expect("result");
        assert!(removed > 50, "{removed}");
        assert_eq!(records.len(), 100 - removed);
        assert!(
            records.iter().all(|r| r.len() == 2_004),
            "no record cut in the middle"
        );
        let json = serde_json::to_string(&result.structured_content).expect("json");
        assert!(json.len() < max_result_chars());
    }
}
