//! Fingerprints: an error message with the parts that change between runs replaced by
//! placeholders, so the same failure on another machine or day groups with itself.
//!
//! The original's placeholders (`<UUID>`, `<TIMESTAMP>`, `<ADDR>`, `<NUM>`) are kept; the gaps
//! it left are closed: uppercase UUIDs, git SHAs and long hex without `0x` (`<HEX>`), digits glued
//! to words (`rank0`, `gpu3`, `pid=1234`), ports in URLs (`<PORT>`), temporary paths (`<TMP>`),
//! memory sizes (`2.00 GiB` → `<SIZE>`) and durations (`12.3s` → `<DURATION>`).

use regex::Regex;
use std::sync::LazyLock;

/// Applied in order after UUIDs and hex runs: earlier rules see the text before later ones
/// rewrite digits inside it.
static RULES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?Z?",
            "<TIMESTAMP>",
        ),
        (r"\b\d{2}-\d{2} \d{2}:\d{2}:\d{2}(?:\.\d+)?", "<TIMESTAMP>"),
        (r"0x[0-9a-fA-F]+", "<ADDR>"),
        (r"(?:/tmp|/var/tmp|/dev/shm)/[^\s'\x22:,)]+", "<TMP>"),
        (r"(?i)\b\d+(?:\.\d+)?\s?(?:[KMGT]i?B|bytes)\b", "<SIZE>"),
        (
            r"\b\d+(?:\.\d+)?\s?(?:ms|s|sec|seconds|minutes|min)\b",
            "<DURATION>",
        ),
        (r"(:)\d{2,5}\b", "${1}<PORT>"),
        (r"\d+\.\d+(?:\.\d+)*", "<NUM>"),
        (r"\d+", "<NUM>"),
    ]
    .into_iter()
    .map(|(pattern, replacement)| {
        (
            Regex::new(pattern).expect("fingerprint patterns are valid"),
            replacement,
        )
    })
    .collect()
});

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")
        .expect("uuid pattern is valid")
});

/// Hex runs long enough to be a SHA or an id. Words made only of letters a–f ("deadbeef",
/// "facade") or only of digits are left to the other rules; short ones ("b200", "bf16") are
/// parameter names that tell failures apart.
static HEX_RUN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\b[0-9a-f]{7,}\b").expect("hex pattern is valid"));

/// The normalised form of `message`.
pub fn fingerprint(message: &str) -> String {
    let without_uuids = UUID.replace_all(message.trim(), "<UUID>");
    let mut text = HEX_RUN
        .replace_all(&without_uuids, |caps: &regex::Captures<'_>| {
            let run = &caps[0];
            let has_digit = run.bytes().any(|b| b.is_ascii_digit());
            let has_letter = run.bytes().any(|b| b.is_ascii_alphabetic());
            if has_digit && has_letter {
                "<HEX>".to_string()
            } else {
                run.to_string()
            }
        })
        .into_owned();
    for (pattern, replacement) in RULES.iter() {
        if let std::borrow::Cow::Owned(replaced) = pattern.replace_all(&text, *replacement) {
            text = replaced;
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders() {
        let cases = [
            ("id 550E8400-E29B-41D4-A716-446655440000 x", "id <UUID> x"),
            ("at 2026-01-22T07:40:04.9Z", "at <TIMESTAMP>"),
            ("ptr 0x7f48b47b8710", "ptr <ADDR>"),
            (
                "commit 1acd67a795ebccdf9b9db7697ae9082058301657",
                "commit <HEX>",
            ),
            ("rank0 gpu3 pid=1234", "rank<NUM> gpu<NUM> pid=<NUM>"),
            (
                "url http://localhost:51905/v1",
                "url http://localhost:<PORT>/v<NUM>",
            ),
            (
                "file /tmp/pytest-of-root/pytest-3/x.json missing",
                "file <TMP> missing",
            ),
            ("Tried to allocate 2.00 GiB", "Tried to allocate <SIZE>"),
            ("took 12.3s", "took <DURATION>"),
            (
                "accuracy too low: 0.590 < 0.620",
                "accuracy too low: <NUM> < <NUM>",
            ),
            ("v1.2.3 and 1.2.3", "v<NUM> and <NUM>"),
        ];
        for (input, expected) in cases {
            assert_eq!(fingerprint(input), expected, "{input}");
        }
    }

    #[test]
    fn same_failure_on_other_machines_groups_and_different_failures_do_not() {
        let a = fingerprint("CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which 1.07 GiB is free. Process 4242 has 78.1 GiB memory in use.");
        let b = fingerprint("CUDA out of memory. Tried to allocate 512.00 MiB. GPU 3 has a total capacity of 79.19 GiB of which 300.00 MiB is free. Process 977 has 78.9 GiB memory in use.");
        assert_eq!(a, b);
        let c = fingerprint(
            "AssertionError: DBO+DP+EP accuracy too low (deepep_low_latency): 0.590 < 0.620",
        );
        let d = fingerprint(
            "AssertionError: DBO+DP+EP accuracy too low (deepep_high_throughput): 0.590 < 0.620",
        );
        assert_ne!(c, d);
        assert_ne!(a, c);
    }
}
