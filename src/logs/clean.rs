//! Turns a raw Buildkite job log into plain text lines.
//!
//! A raw log (`Accept: text/plain`) starts every line with an APC timestamp `ESC _bk;t=<ms> BEL`,
//! carries ANSI colour (CSI), OSC sequences (inline images `ESC ]1338;…BEL`), CRLF line ends and
//! bare CR progress updates. Logs copied from the web UI instead carry `[2025-11-11T09:29:32Z] `
//! prefixes and `  | ` / `--` copy artifacts. Everything downstream parses the output of
//! [`clean_log`], so anchors like `^FAILED` work on real logs.
//!
//! Cleaning never fails: invalid UTF-8 becomes U+FFFD, unknown escape sequences and zero-width or
//! bidi-override characters are dropped, and a line longer than [`MAX_LINE_BYTES`] is cut, so the
//! output is bounded by the input and by the line cap. Every output line ends with `\n`. Cleaning is idempotent:
//! `clean_log(clean_log(x)) == clean_log(x)`.

/// Longest line kept whole. Lines beyond this (a 100 MB JSON dump on one line) are cut so that a
/// single line cannot dominate memory or the excerpts shown to the model.
pub const MAX_LINE_BYTES: usize = 16 * 1024;

const CUT_MARKER: &str = " …[line cut]";

const ESC: u8 = 0x1b;
const BEL: u8 = 0x07;

/// Raw bytes of one line kept before the rest of it is dropped: the cleaner cuts a line at
/// [`MAX_LINE_BYTES`] anyway, and escape sequences shrink a raw line.
pub const MAX_RAW_LINE_BYTES: usize = 4 * MAX_LINE_BYTES;

/// Cleans raw log bytes into text whose lines carry no terminal control sequences. The same
/// path as a log read as a stream ([`RawLines`]), so a log gives the same text read whole or in
/// any chunks, long lines included.
pub fn clean_log(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut lines = RawLines::default();
    let mut clean = |piece: &str| clean_line(piece, &mut out);
    lines.push(raw, &mut clean);
    lines.finish(&mut clean);
    out
}

/// Raw log bytes cut into lines as they arrive: at `\n`, and at a bare `\r` (a terminal's
/// return to column 0, which keeps progress-bar updates from gluing onto the next real line).
/// Empty pieces from CRLF are no lines; an empty line between two `\n` is. A piece keeps at
/// most [`MAX_RAW_LINE_BYTES`], its rest dropped up to its end. What it holds is one pending
/// piece, never the log.
#[derive(Default)]
pub struct RawLines {
    pending: Vec<u8>,
    /// The pending piece passed [`MAX_RAW_LINE_BYTES`]: its rest is dropped.
    dropping: bool,
    /// A `\r` ended a piece since the last `\n`.
    after_cr: bool,
}

impl RawLines {
    /// Takes the next bytes; `line` gets each piece they complete (without its terminator).
    pub fn push(&mut self, mut bytes: &[u8], line: &mut impl FnMut(&str)) {
        while let Some(end) = memchr::memchr2(b'\n', b'\r', bytes) {
            self.take(&bytes[..end]);
            if bytes[end] == b'\r' {
                self.end_piece(false, line);
                self.after_cr = true;
            } else {
                // A line that was only its `\n` is an empty line; one that held a `\r` is not.
                self.end_piece(!self.after_cr, line);
                self.after_cr = false;
            }
            bytes = &bytes[end + 1..];
        }
        self.take(bytes);
    }

    /// Ends the last piece, if the bytes did not end with a terminator.
    pub fn finish(&mut self, line: &mut impl FnMut(&str)) {
        self.end_piece(false, line);
    }

    fn take(&mut self, bytes: &[u8]) {
        if self.dropping {
            return;
        }
        let room = MAX_RAW_LINE_BYTES.saturating_sub(self.pending.len());
        self.pending
            .extend_from_slice(&bytes[..bytes.len().min(room)]);
        self.dropping = bytes.len() > room;
    }

    /// Gives the pending piece to `line`; an empty one only when `keep_empty`.
    fn end_piece(&mut self, keep_empty: bool, line: &mut impl FnMut(&str)) {
        if !self.pending.is_empty() || keep_empty {
            line(&String::from_utf8_lossy(&self.pending));
        }
        self.pending.clear();
        self.dropping = false;
    }
}

/// Cleans one raw line (without its `\n`) into `out`, as [`clean_log`] does: one or more lines,
/// each ending with `\n` (a bare CR starts a line of its own). Since `\n` never occurs inside
/// a UTF-8 sequence, cleaning a log line by line gives what cleaning it whole gives.
pub fn clean_line(raw_line: &str, out: &mut String) {
    // A bare CR is a terminal "return to column 0": treat each CR-separated piece as a line,
    // which keeps progress-bar updates from gluing onto the next real line.
    for piece in raw_line.split('\r') {
        if piece.is_empty() && piece.len() != raw_line.len() {
            // Empty pieces from CRLF or CR CR LF are not lines of their own.
            continue;
        }
        // Each line is copied once, straight into the output, then trimmed in place there.
        let start = out.len();
        strip_controls(piece, out);
        let copied = &out[start..];
        if has_invisible(copied) || copied.contains(NO_BREAK_SPACE) {
            // Invisible and bidi characters go; a web page's copy gives its gutters and
            // indentation as non-breaking spaces, which read as spaces. One pass for both.
            let visible: String = copied
                .chars()
                .filter(|c| !is_invisible(*c))
                .map(|c| if c == NO_BREAK_SPACE { ' ' } else { c })
                .collect();
            out.truncate(start);
            out.push_str(&visible);
        }
        let line = &out[start..];
        let prefix = line.len() - strip_web_ui_prefix(line).len();
        if prefix > 0 {
            out.replace_range(start..start + prefix, "");
        }
        if out[start..].contains("^[[") {
            let visible = without_caret_colours(&out[start..]);
            out.truncate(start);
            out.push_str(&visible);
        }
        cap_line(out, start);
        out.push('\n');
    }
}

/// Copies `piece` into `out` without escape sequences and control characters (tab is kept).
fn strip_controls(piece: &str, out: &mut String) {
    let bytes = piece.as_bytes();
    // Control bytes are almost always the ESC of a timestamp or colour: find those with a SIMD
    // search, and check the text between them for other controls in one (vectorisable) pass.
    let mut at = 0;
    while at < bytes.len() {
        let segment_end = memchr::memchr(ESC, &bytes[at..]).map_or(bytes.len(), |i| at + i);
        let segment = &piece[at..segment_end];
        if segment.bytes().any(is_control) {
            out.extend(
                segment
                    .chars()
                    .filter(|&c| !(c.is_ascii() && is_control(c as u8))),
            );
        } else {
            out.push_str(segment);
        }
        at = if segment_end < bytes.len() {
            skip_escape(bytes, segment_end)
        } else {
            segment_end
        };
    }
}

/// Every zero-width and bidirectional-override character starts with this UTF-8 byte.
const INVISIBLE_LEAD_BYTE: u8 = 0xe2;

/// Whether `line` holds a character [`is_invisible`] drops. Checked on bytes with a SIMD search
/// for the lead byte, because `0xe2` also starts common visible characters (`█`, `…`, `–`) and a
/// per-character pass over every such line would halve cleaning throughput.
fn has_invisible(line: &str) -> bool {
    let bytes = line.as_bytes();
    memchr::memchr_iter(INVISIBLE_LEAD_BYTE, bytes).any(|at| {
        matches!(
            (bytes.get(at + 1), bytes.get(at + 2)),
            (Some(0x80), Some(0x8b..=0x8f | 0xaa..=0xae)) | (Some(0x81), Some(0xa0..=0xa4 | 0xa6..=0xa9))
        )
    })
}

/// Zero-width characters and bidi overrides: they can make log text read differently to a
/// person and to the model, so none reaches either.
const NO_BREAK_SPACE: char = '\u{a0}';

fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}')
}

fn is_control(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b == 0x7f
}

/// Returns the index just past the escape sequence that starts at `start` (an ESC byte).
/// All indices returned fall on ASCII bytes or the end, so slicing stays on char boundaries.
fn skip_escape(bytes: &[u8], start: usize) -> usize {
    let Some(&kind) = bytes.get(start + 1) else {
        return start + 1;
    };
    match kind {
        // CSI: parameters and intermediates, then one final byte in 0x40..=0x7e.
        b'[' => {
            let mut i = start + 2;
            while i < bytes.len() {
                if (0x40..=0x7e).contains(&bytes[i]) {
                    return i + 1;
                }
                if !(0x20..=0x3f).contains(&bytes[i]) {
                    // Malformed: stop before the unexpected byte so it is handled on its own.
                    return i;
                }
                i += 1;
            }
            i
        }
        // APC (`_`, Buildkite timestamps), OSC (`]`), DCS (`P`), PM (`^`), SOS (`X`): a string
        // ended by BEL or by ST (`ESC \`). Unterminated ones end at the end of the line.
        b'_' | b']' | b'P' | b'^' | b'X' => {
            let mut i = start + 2;
            while i < bytes.len() {
                match bytes[i] {
                    BEL => return i + 1,
                    ESC if bytes.get(i + 1) == Some(&b'\\') => return i + 2,
                    _ => i += 1,
                }
            }
            i
        }
        // Two-byte sequences (ESC 7, ESC =, ESC c, …). Only ASCII finals are swallowed.
        0x20..=0x7e => start + 2,
        _ => start + 1,
    }
}

/// Drops the prefixes that copying a log from the Buildkite web UI adds: its `  | ` gutter
/// (two spaces, a bar, a space: the UI's own, not a table's) or a gutter before a
/// `[YYYY-MM-DDTHH:MM:SSZ] ` timestamp, and the timestamp (or GitHub Actions' own, each of them
/// when runners' logs are nested, with GitLab's stream tag after it: `01O `). A lone
/// `--` separator becomes empty. Colours that lost their escape byte in the copy (`[90m…[0m`,
/// or `^[[0;36m` in caret notation) are cut from the line's start.
fn strip_web_ui_prefix(line: &str) -> &str {
    // A copy pasted as a Markdown quote: `> ` before the text (pytest's `>       assert` marks
    // a source line with spaces after it, and is kept).
    let line = line
        .strip_prefix("> ")
        .filter(|quoted| {
            !quoted.starts_with(' ') || quoted.trim_start_matches(' ').starts_with("| ")
        })
        .unwrap_or(line);
    let mut rest = strip_copied_gutter(line);
    if let Some(after_gutter) = rest.trim_start_matches(' ').strip_prefix("| ") {
        if looks_like_bracket_timestamp(after_gutter) || rest.starts_with("  | ") {
            rest = after_gutter;
        }
    }
    if looks_like_bracket_timestamp(rest) {
        rest = &rest[22..];
        rest = rest.strip_prefix(' ').unwrap_or(rest);
    } else {
        // GitLab's raw logs carry the same clock, then the stream's name. A runner's log
        // printed inside another's carries one clock per runner.
        while let Some(after) = after_actions_timestamp(rest) {
            rest = super::clock::gitlab_stream(after).unwrap_or(after);
        }
    }
    if rest == "--" && line.len() == 2 || is_copied_line_link(rest) {
        return "";
    }
    strip_copied_colour(rest)
}

/// What a copy of Buildkite's log keeps before each line: its viewer's line number and a tab
/// (`4141\t`), or a timestamp whose control characters were lost (`bk;t=1784738344140 `).
fn strip_copied_gutter(line: &str) -> &str {
    if let Some((number, rest)) = line.split_once('\t') {
        if (1..=7).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit()) {
            return rest;
        }
    }
    let stamp = line
        .strip_prefix("_bk;t=")
        .or_else(|| line.strip_prefix("bk;t="));
    if let Some(rest) = stamp {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            return rest[digits..].strip_prefix(' ').unwrap_or(&rest[digits..]);
        }
    }
    line
}

/// GitHub Actions' web view copies each line's number as a link on a line of its own:
/// `[2622](https://github.com/o/r/actions/runs/1/job/2#step:19:2623)`.
fn is_copied_line_link(line: &str) -> bool {
    line.strip_prefix('[')
        .and_then(|rest| rest.split_once("](https://"))
        .is_some_and(|(number, url)| {
            !number.is_empty()
                && number.bytes().all(|b| b.is_ascii_digit())
                && url.ends_with(')')
                && !url.contains(' ')
        })
}

/// Colour codes copied in caret notation (`^[[0;36m`), wherever they are in the line.
fn without_caret_colours(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("^[[") {
        out.push_str(&rest[..at]);
        let body = &rest[at + 3..];
        match after_sgr(body) {
            Some((_, after)) => rest = after,
            None => {
                out.push_str("^[[");
                rest = body;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `[90m# Received…` → `# Received…`; `^[[0;36m(EngineCore…` → `(EngineCore…`.
fn strip_copied_colour(line: &str) -> &str {
    let mut rest = line;
    loop {
        let body = rest.strip_prefix("^[[").or_else(|| rest.strip_prefix('['));
        let Some(body) = body else { return rest };
        match after_sgr(body) {
            Some((parameters, after)) if parameters > 0 => rest = after,
            _ => return rest,
        }
    }
}

/// Past a colour code's opening bracket: how many parameter bytes (digits and `;`) it has, and
/// what follows its closing `m`; `None` when it is no colour code.
fn after_sgr(body: &str) -> Option<(usize, &str)> {
    let parameters = body
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b';')
        .count();
    body[parameters..]
        .strip_prefix('m')
        .map(|after| (parameters, after))
}

/// What follows GitHub Actions' `2026-06-17T10:29:02.1213552Z ` (its raw logs, as pasted from
/// PyTorch's vLLM jobs), if the line starts with one.
fn after_actions_timestamp(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    let date_and_time = b.len() > 20
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
            .iter()
            .all(|&i| b[i].is_ascii_digit());
    if !date_and_time {
        return None;
    }
    let rest = &line[19..];
    let rest = rest
        .strip_prefix('.')
        .map_or(rest, |f| f.trim_start_matches(|c: char| c.is_ascii_digit()));
    rest.strip_prefix("Z ")
}

/// `[2025-11-11T09:29:32Z]`: 22 ASCII bytes.
fn looks_like_bracket_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 22 || b[0] != b'[' || b[21] != b']' || b[20] != b'Z' || b[11] != b'T' {
        return false;
    }
    let digits = [1, 2, 3, 4, 6, 7, 9, 10, 12, 13, 15, 16, 18, 19];
    digits.iter().all(|&i| b[i].is_ascii_digit())
        && b[5] == b'-'
        && b[8] == b'-'
        && b[14] == b':'
        && b[17] == b':'
}

/// Cuts the line that starts at `start` (the end of `out`) to [`MAX_LINE_BYTES`].
fn cap_line(out: &mut String, start: usize) {
    if out.len() - start <= MAX_LINE_BYTES {
        return;
    }
    let keep = out[start..].floor_char_boundary(MAX_LINE_BYTES - CUT_MARKER.len());
    out.truncate(start + keep);
    out.push_str(CUT_MARKER);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &[u8], expected: &str) {
        assert_eq!(
            clean_log(raw),
            expected,
            "raw: {:?}",
            String::from_utf8_lossy(raw)
        );
    }

    #[test]
    fn a_copy_of_buildkites_log_loses_its_line_numbers_and_lost_timestamps() {
        check(
            b"4141\t____ test_a ____\nbk;t=1784738344140 FAILED a.py::t - E\n_bk;t=1 x\n",
            "____ test_a ____\nFAILED a.py::t - E\nx\n",
        );
        // A tab after something else, or a number that is not the whole gutter, stays.
        check(
            b"col\tvalue\n12345678\tx\nbk;t=abc\n",
            "col\tvalue\n12345678\tx\nbk;t=abc\n",
        );
    }

    #[test]
    fn strips_buildkite_timestamps_ansi_and_crlf() {
        check(
            b"\x1b_bk;t=1769067604900\x07\x1b[31mFAILED\x1b[0m tests/v1/distributed/test_dbo.py::\x1b[1mtest_dbo_dp_ep_gsm8k[deepep_low_latency]\x1b[0m - AssertionError: DBO+DP+EP accuracy too low\r\n",
            "FAILED tests/v1/distributed/test_dbo.py::test_dbo_dp_ep_gsm8k[deepep_low_latency] - AssertionError: DBO+DP+EP accuracy too low\n",
        );
    }

    #[test]
    fn strips_osc_images_and_erase_line() {
        check(
            b"\x1b_bk;t=1\x07\x1b]1338;url=artifact://a.gif;alt=a\x07\x1b[Kdone\r\r\n\x1b_bk;t=2\x07next",
            "done\nnext\n",
        );
    }

    #[test]
    fn bare_carriage_returns_split_progress_updates() {
        check(b"10%\r50%\r100%\nok\n", "10%\n50%\n100%\nok\n");
    }

    #[test]
    fn web_ui_copy_prefixes_are_removed() {
        check(
            b"[2025-02-22T11:46:18Z] FAILED\n  | [2025-02-22T11:46:18Z] E   boom\n--\n[2025-12-13T19:47:56Z]\n",
            "FAILED\nE   boom\n\n\n",
        );
    }

    #[test]
    fn copied_gutters_timestamps_and_colours_are_removed() {
        check(
            b"2026-06-17T10:29:02.1213552Z FAILED a\n2025-10-11T05:44:58.858110Z 01O ___ test_x ___\n  | ERROR tests/a.py::t - RuntimeError: x\n[90m# Received cancellation signal, interrupting[0m\n^[[0;36m(EngineCore_DP0 pid=7)^[[0;0m ok\n[1] done\n     1 | >>> FROM x\n",
            "FAILED a\n___ test_x ___\nERROR tests/a.py::t - RuntimeError: x\n# Received cancellation signal, interrupting[0m\n(EngineCore_DP0 pid=7) ok\n[1] done\n     1 | >>> FROM x\n",
        );
    }

    #[test]
    fn a_web_copy_quoted_in_markdown_is_read_through() {
        check(
            b"> [2024-09-05T00:38:34Z] INFO: a\n> --\n>   | [2024-09-05T00:38:34Z] ERROR: b\n> quoted prose\n",
            "INFO: a\n\nERROR: b\nquoted prose\n",
        );
    }

    #[test]
    fn a_web_copys_non_breaking_spaces_are_spaces() {
        check(
            "\u{a0} | [2025-07-11T20:13:34Z] Traceback (most recent call last):\n\u{a0}\u{a0}x\n"
                .as_bytes(),
            "Traceback (most recent call last):\n  x\n",
        );
    }

    #[test]
    fn invisible_and_bidi_characters_are_removed() {
        check(
            "FAILED a\u{202e}b\u{200b}c █\n".as_bytes(),
            "FAILED abc █\n",
        );
    }

    #[test]
    fn invalid_utf8_and_binary_bytes_do_not_panic() {
        check(b"ok\xff\x00\x01bad\x1b", "ok\u{fffd}bad\n");
    }

    #[test]
    fn long_lines_are_cut_to_the_cap() {
        let raw = vec![b'a'; MAX_LINE_BYTES * 3];
        let cleaned = clean_log(&raw);
        assert!(cleaned.len() <= MAX_LINE_BYTES + 1);
        assert!(cleaned.ends_with(&format!("{CUT_MARKER}\n")));
        assert_eq!(clean_log(cleaned.as_bytes()), cleaned);
    }

    #[test]
    fn unterminated_escape_sequences_end_at_line_end() {
        check(b"a\x1b_bk;t=123\nb\x1b[12", "a\nb\n");
    }
}
