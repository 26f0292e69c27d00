//! Property and stress tests: the log pipeline never panics, cleaning is idempotent, outputs
//! respect their caps, huge single lines and escape-only logs stay bounded.

use ciwatch_mcp::logs::clean::MAX_LINE_BYTES;
use ciwatch_mcp::logs::{
    analyze_log, clean_log, pytest::MAX_ERROR_MESSAGE_CHARS, pytest::MAX_EXCERPT_CHARS,
};
use proptest::prelude::*;

/// Bytes biased toward what breaks parsers: escapes, BEL, CR, newlines, brackets, pytest words.
fn log_bytes() -> impl Strategy<Value = Vec<u8>> {
    let atom = prop_oneof![
        any::<u8>().prop_map(|b| vec![b]),
        Just(b"\x1b_bk;t=1769067604900\x07".to_vec()),
        Just(b"\x1b[31m".to_vec()),
        Just(b"\x1b]1338;url=x".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"FAILED ".to_vec()),
        Just(b"ERROR ".to_vec()),
        Just(b"a/test_x.py::test_y[".to_vec()),
        Just(b"]".to_vec()),
        Just(b" - ".to_vec()),
        Just(b"E   AssertionError: x".to_vec()),
        Just(b"_____ test_y ____".to_vec()),
        Just(b"=== FAILURES ===".to_vec()),
        Just(b"Traceback (most recent call last):".to_vec()),
        Just("é🚨".as_bytes().to_vec()),
        Just(vec![0xff, 0xfe, 0xc3]),
    ];
    prop::collection::vec(atom, 0..200).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_and_respects_caps(raw in log_bytes()) {
        let cleaned = clean_log(&raw);
        prop_assert!(!cleaned.contains('\x1b') && !cleaned.contains('\r'));
        prop_assert!(cleaned.lines().all(|l| l.len() <= MAX_LINE_BYTES));
        let analysis = analyze_log(&cleaned);
        for test in &analysis.tests {
            prop_assert!(test.error_message.as_ref().is_none_or(|m| m.chars().count() <= MAX_ERROR_MESSAGE_CHARS));
            prop_assert!(test.excerpt.as_ref().is_none_or(|e| e.chars().count() <= MAX_EXCERPT_CHARS));
        }
        if let Some(level) = &analysis.job_level {
            prop_assert!(level.error_message.as_ref().is_none_or(|m| m.chars().count() <= MAX_ERROR_MESSAGE_CHARS));
        }
    }

    #[test]
    fn cleaning_is_idempotent(raw in log_bytes()) {
        let once = clean_log(&raw);
        prop_assert_eq!(clean_log(once.as_bytes()), once);
    }

    #[test]
    fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = analyze_log(&clean_log(&raw));
    }
}

#[test]
fn a_100_mb_single_line_is_cut_to_the_line_cap() {
    let mut raw = b"\x1b_bk;t=1\x07FAILED a/test_x.py::test_y - ".to_vec();
    raw.resize(100 * 1024 * 1024, b'x');
    let cleaned = clean_log(&raw);
    assert!(cleaned.len() <= MAX_LINE_BYTES + 1, "{}", cleaned.len());
    let analysis = analyze_log(&cleaned);
    assert_eq!(analysis.tests.len(), 1);
    assert!(analysis.tests[0]
        .error_message
        .as_ref()
        .is_some_and(|m| m.chars().count() <= MAX_ERROR_MESSAGE_CHARS));
}

#[test]
fn a_log_of_only_escape_codes_is_blank() {
    let raw = b"\x1b_bk;t=1\x07\x1b[31m\x1b[0m\x1b[K\r\n".repeat(100_000);
    let cleaned = clean_log(&raw);
    assert!(cleaned.chars().all(|c| c == '\n'));
    let analysis = analyze_log(&cleaned);
    assert!(analysis.tests.is_empty());
    assert_eq!(analysis.job_level.and_then(|j| j.error_message), None);
}
