//! Property and stress tests: the log pipeline never panics, cleaning is idempotent, outputs
//! respect their caps, huge single lines and escape-only logs stay bounded, a log read in any
//! chunks says what it says read whole, and no error line is a bare prefix.

use ciwatch_mcp::logs::clean::{MAX_LINE_BYTES, MAX_RAW_LINE_BYTES};
use ciwatch_mcp::logs::prefix::is_bare_prefix;
use ciwatch_mcp::logs::{
    analyze_log, clean_log, pytest::MAX_ERROR_MESSAGE_CHARS, pytest::MAX_EXCERPT_CHARS,
    LogAnalysis, LogAnalyzer,
};
use ciwatch_mcp::reader::log::stream::LogStream;
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
        // Prefixes with readers of their own, to meet multi-byte text right after them.
        Just(b"2025-10-11T05:44:58.858110Z ".to_vec()),
        Just(b"01O ".to_vec()),
        Just(b"[tests/w.py:134 ERROR] ".to_vec()),
        Just(b"[LightGBM] [Fatal] ".to_vec()),
        Just(b"       > ".to_vec()),
        Just(b"- FAILED | MEM 1/2 GB | ".to_vec()),
        Just("\u{251c}\u{2500}\u{2500} ".as_bytes().to_vec()),
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
    fn arbitrary_bytes_read_in_any_chunks_say_what_they_say_whole(
        raw in prop::collection::vec(any::<u8>(), 0..4096),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        assert_chunkings_agree(&raw, &cuts)?;
    }
}

proptest! {
    // Each case carries lines of 64 KiB and more: fewer cases, each one large.
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Lines past the raw line cap ([`MAX_RAW_LINE_BYTES`], 64 KiB), alone or made of progress
    /// updates (bare CRs) and escapes, then a failure: any chunking gives the whole read's
    /// analysis and text.
    #[test]
    fn long_lines_read_in_any_chunks_say_what_they_say_whole(
        raw in long_line_log(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 1..24),
    ) {
        assert_chunkings_agree(&raw, &cuts)?;
    }

    /// Prefixes of every kind before nothing, before a traceback's announcement, or before an
    /// error: the error line chosen is never only prefixes, and an error after them is found.
    #[test]
    fn no_error_line_is_a_bare_prefix(lines in prop::collection::vec((prefix(), body()), 1..12)) {
        let text: String = lines.iter().map(|(p, b)| format!("{p}{b}\n")).collect();
        let analysis = analyze_log(&clean_log(text.as_bytes()));
        let errors = analysis
            .tests
            .iter()
            .filter_map(|t| t.error_message.clone())
            .chain(analysis.job_level.iter().filter_map(|j| j.error_message.clone()));
        for error in errors {
            prop_assert!(!is_bare_prefix(&error), "{error:?} from {text:?}");
        }
        let says_why = lines.iter().any(|(_, b)| b.contains("Error: "));
        let found = analysis.job_level.as_ref().is_some_and(|j| j.error_message.is_some());
        prop_assert!(!says_why || found || !analysis.tests.is_empty(), "{text:?}");
    }
}

fn prefix() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "",
        "ERROR 12-11 00:53:45 [repo_utils.py:63] ",
        "(EngineCore_DP0 pid=3112) ERROR 12-15 12:35:11 [core.py:866] ",
        "[rank0]: ",
        "2024-05-01T12:00:00.1234567Z ",
        "[2024-05-01T12:00:00.123Z] ",
        "12:00:01 ",
        "[gw3] ",
        "ERROR:root:",
        "ERROR    vllm.x:core.py:12 ",
        "app-1  | ",
        "##[error]",
        "#12 3.456 ",
        "  | ",
    ])
}

fn body() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "",
        "Traceback (most recent call last):",
        "Exception in worker:",
        "  File \"x.py\", line 1, in f",
        "INFO all good",
        "RuntimeError: CUDA error: an illegal memory access was encountered",
        "ValueError: Free memory on device cuda:0 (1.5/22 GiB) on startup is less than desired",
    ])
}

/// A log of a few lines, some of them past [`MAX_RAW_LINE_BYTES`], ending in a failure.
fn long_line_log() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        Just(b"ok\n".to_vec()),
        (MAX_RAW_LINE_BYTES - 8..2 * MAX_RAW_LINE_BYTES).prop_map(|n| {
            let mut l = vec![b'x'; n];
            l.push(b'\n');
            l
        }),
        // Progress updates of 10 bytes each: 80 to 160 KiB before the line's real end.
        (MAX_RAW_LINE_BYTES / 8..MAX_RAW_LINE_BYTES / 4).prop_map(|n| {
            let mut l = b"\x1b_bk;t=1\x07".to_vec();
            for i in 0..n {
                l.extend_from_slice(format!("\x1b[32m{:>3}%\r", i % 100).as_bytes());
            }
            l.extend_from_slice(b"tests/a.py::test_long FAILED\r\n");
            l
        }),
        (MAX_RAW_LINE_BYTES..MAX_RAW_LINE_BYTES + 4096).prop_map(|n| {
            let mut l = "é".repeat(n / 2).into_bytes();
            l.push(b'\n');
            l
        }),
    ];
    prop::collection::vec(line, 1..5).prop_map(|lines| {
        let mut raw = lines.concat();
        raw.extend_from_slice(b"FAILED tests/b.py::test_after - AssertionError: still found\n");
        raw
    })
}

/// The whole read's analysis and text equal those of the read cut at `cuts`.
fn assert_chunkings_agree(raw: &[u8], cuts: &[prop::sample::Index]) -> Result<(), TestCaseError> {
    let whole_text = clean_log(raw);
    let whole = serde_json::to_value(analyze_log(&whole_text)).expect("serialises");
    let mut at: Vec<usize> = cuts.iter().map(|c| c.index(raw.len() + 1)).collect();
    at.sort_unstable();
    let mut stream = LogStream::<LogAnalyzer>::default();
    let mut from = 0;
    for to in at.into_iter().chain([raw.len()]) {
        stream.push(&raw[from..to]);
        from = to;
    }
    let (analysis, blocks, failed_at): (LogAnalysis, _, _) = stream.finish();
    prop_assert_eq!(failed_at, None, "the reader failed on a line");
    let text = ciwatch_mcp::reader::log::blocks::whole_text(&blocks.finish().1).expect("decodes");
    prop_assert_eq!(serde_json::to_value(analysis).expect("serialises"), whole);
    prop_assert!(
        text == whole_text,
        "the stored text differs from the whole read's"
    );
    Ok(())
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
