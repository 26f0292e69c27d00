//! Text helpers shared by every layer; imports nothing of the crate.

/// `bytes` as lower-case hex (digests, signatures, keys).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `text` cut to at most `max_chars` characters, with `...` marking a cut.
pub fn bounded_text(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_string(),
        Some((cut, _)) => {
            let keep = text[..cut]
                .char_indices()
                .nth(max_chars.saturating_sub(3))
                .map_or(cut, |(i, _)| i);
            format!("{}...", &text[..keep])
        }
    }
}

/// A regex for log lines, its word boundaries read as ASCII (`\b` becomes `(?-u:\b)`). A Unicode
/// `\b` keeps the fast engines off any line with one non-ASCII character (a progress bar, an
/// emoji), and the rules run on every line of a log's end: under load, Unicode boundaries took
/// about a third of a loaded sidecar's CPU (`perf`, docs/figures.md). Every word these
/// patterns bound is ASCII.
pub fn log_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&pattern.replace(r"\b", r"(?-u:\b)"))
}
