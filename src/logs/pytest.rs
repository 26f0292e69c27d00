//! Finds pytest failures in cleaned log text: node ids, outcome, error line and excerpt.
//!
//! Three places name a failed test, and vLLM logs (`pytest -v -s`, several runs per job) carry
//! all of them: the short summary (`FAILED path::test[params] - Exc: msg`), the verbose progress
//! line (`path::test[params] FAILED`, or the id, the test's own output, then a lone `FAILED`), and
//! the `FAILURES`/`ERRORS` sections whose headers are pytest's short head line
//! (`____ test[params] ____`, `_ ERROR at setup of test[params] _`), not the node id.
//! Everything here is anchored per line and never looks at more than one line at a time, so a
//! failure is never attributed across lines (the original's `\s` separator spanned newlines).

use super::prefix;
pub(crate) use super::pytest_failure::Located;
pub use super::pytest_failure::{
    truncate_message, PytestFailure, MAX_ERROR_MESSAGE_CHARS, MAX_EXCERPT_CHARS, MAX_EXCERPT_LINES,
};
use super::pytest_lines::{
    banner_title, bare_test_name, module_id, pasted_section_head, section_head, status_word,
    summary_prefix,
};
pub use super::pytest_lines::{head_line, parse_node_id, Outcome};
use super::pytest_sections::{attach_sections, ClosedSection, Section};
use crate::model::ErrorSource;
use std::collections::HashMap;

/// Everything pytest-shaped found in one log.
#[derive(Debug, Default, Clone)]
pub struct PytestFindings {
    /// Failures in first-seen order, one per node id.
    pub failures: Vec<PytestFailure>,
    /// Node ids that passed (verbose lines), for history lookups.
    pub passed: Vec<String>,
}

/// Lines of a test's own output kept for evidence.
const OUTPUT_TAIL_LINES: usize = 12;

pub fn find_pytest_failures(cleaned: &str) -> PytestFindings {
    let mut scanner = PytestScanner::default();
    for line in cleaned.lines() {
        scanner.line(line);
    }
    scanner.finish()
}

/// [`find_pytest_failures`] one line at a time, for a log read as a stream. What it holds
/// between lines is bounded by the log's failures, not its length: the open section (a window
/// of its lines), the open test's last output lines, and each closed section as its excerpt.
#[derive(Default)]
pub struct PytestScanner {
    findings: PytestFindings,
    index: HashMap<String, usize>,
    sections: Vec<ClosedSection>,
    in_sections: bool,
    /// A `=====` banner was seen: a section head outside FAILURES/ERRORS is then no failure's.
    seen_banner: bool,
    current: Option<Section>,
    /// The test whose verbose id line was seen last and whose status is still open.
    running: Option<Running>,
    /// Failures of summary lines that had no ` - message`: a paste that wraps the message
    /// onto the next line (`  - RuntimeError: …`) gives it to all of them.
    awaiting_message: Vec<usize>,
    /// Lines taken so far.
    line_no: u64,
}

impl PytestScanner {
    /// Takes the next cleaned line (without its newline). Runner, logger and process prefixes
    /// and indentation are read through ([`prefix`]) the same way whatever printed them.
    pub fn line(&mut self, raw_line: &str) {
        self.line_no += 1;
        let line = prefix::body(raw_line);
        let bare = line.trim();

        if let Some(title) = banner_title(bare) {
            self.close_section();
            self.in_sections = title == "FAILURES" || title == "ERRORS";
            self.seen_banner = true;
            return;
        }
        // A paste that starts at a failure's section head, below its banner.
        self.in_sections |= !self.seen_banner && pasted_section_head(bare);
        if self.in_sections {
            if let Some(head) = section_head(bare) {
                self.close_section();
                self.current = Some(Section::new(head));
                return;
            }
            if let Some(section) = self.current.as_mut() {
                section.push(line, self.line_no);
                return;
            }
        }
        let text = line.trim_start();
        if self.wrapped_summary_message(text) {
            return;
        }
        let findings = &mut self.findings;
        let index = &mut self.index;
        if let Some((outcome, rest)) = summary_prefix(text) {
            let id = parse_node_id(rest)
                .or_else(|| module_id(rest))
                .or_else(|| bare_test_name(rest));
            if let Some((id, after)) = id {
                let message = after.strip_prefix(" - ").map(|m| Located {
                    message: truncate_message(m),
                    source: ErrorSource::SummaryLine,
                    line: Some(self.line_no),
                });
                let waits = message.is_none();
                let at = record(findings, index, id, outcome, message);
                if waits {
                    self.awaiting_message.push(at);
                }
                return;
            }
        }

        if let Some((id, after)) = parse_node_id(text) {
            self.node_id_line(id, after);
            return;
        }

        if let Some(outcome) = status_word(text) {
            if let Some(running) = self.running.take() {
                match outcome {
                    Outcome::Passed => findings.passed.push(running.id),
                    _ => {
                        let at = record(findings, index, &running.id, outcome, None);
                        findings.failures[at].output_tail = running.output;
                    }
                }
            }
            return;
        }

        if let Some(running) = self.running.as_mut() {
            running.take_output(raw_line, text);
        }
    }

    /// `  - RuntimeError: …` (or `RuntimeError: …`) right below summary lines without a
    /// message: their message, wrapped by the paste. Any other line ends the wait.
    fn wrapped_summary_message(&mut self, text: &str) -> bool {
        if self.awaiting_message.is_empty() || summary_prefix(text).is_some() {
            return false;
        }
        let waiting = std::mem::take(&mut self.awaiting_message);
        // Under the summary lines as `  - RuntimeError: …`, or as the bare exception line.
        let message = Some(text.strip_prefix("- ").unwrap_or(text))
            .filter(|m| super::looks_like_exception(m));
        let Some(message) = message else {
            return false;
        };
        for at in waiting {
            let failure = &mut self.findings.failures[at];
            if failure.error_message.is_none() {
                failure.set_error(Some(Located {
                    message: truncate_message(message),
                    source: ErrorSource::SummaryLine,
                    line: Some(self.line_no),
                }));
            }
        }
        true
    }

    /// A line that starts with a node id: its verbose status, a summary line copied without its
    /// word (`id - AssertionError: …`), or the start of the test's own output.
    fn node_id_line(&mut self, id: &str, after: &str) {
        let (findings, index) = (&mut self.findings, &mut self.index);
        let message = after
            .strip_prefix(" - ")
            .filter(|m| super::looks_like_exception(m));
        match (status_word(after), message) {
            (Some(Outcome::Passed), _) => findings.passed.push(id.to_string()),
            (Some(outcome), _) => {
                record(findings, index, id, outcome, None);
            }
            (None, Some(message)) => {
                let located = Located {
                    message: truncate_message(message),
                    source: ErrorSource::SummaryLine,
                    line: Some(self.line_no),
                };
                record(findings, index, id, Outcome::Failed, Some(located));
            }
            (None, None) => {
                self.running = Some(Running {
                    id: id.to_string(),
                    output: Vec::new(),
                })
            }
        }
    }

    fn close_section(&mut self) {
        if let Some(done) = self.current.take() {
            self.sections.push(done.close());
        }
    }

    /// The findings of every line taken.
    pub fn finish(mut self) -> PytestFindings {
        self.close_section();
        attach_sections(&mut self.findings.failures, self.sections);
        self.findings
    }
}

/// The test whose verbose id line was seen last, with no status yet.
struct Running {
    id: String,
    /// Its last output lines.
    output: Vec<String>,
}

impl Running {
    fn take_output(&mut self, raw_line: &str, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.output.len() == OUTPUT_TAIL_LINES {
            self.output.remove(0);
        }
        // Kept with its prefixes: a logger's level says whether it reports an error.
        self.output.push(super::bounded_line(raw_line));
    }
}

fn record(
    findings: &mut PytestFindings,
    index: &mut HashMap<String, usize>,
    id: &str,
    outcome: Outcome,
    message: Option<Located>,
) -> usize {
    if let Some(&at) = index.get(id) {
        let existing = &mut findings.failures[at];
        if existing.error_message.is_none() {
            existing.set_error(message);
        }
        return at;
    }
    let mut failure = PytestFailure {
        node_id: id.to_string(),
        outcome,
        error_message: None,
        excerpt: None,
        output_tail: Vec::new(),
        error_source: None,
        error_line: None,
    };
    failure.set_error(message);
    findings.failures.push(failure);
    index.insert(id.to_string(), findings.failures.len() - 1);
    findings.failures.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_with_spaces_brackets_and_unicode() {
        let cases = [
            (
                "tests/a.py::test_abort[engine_args0-Hello my name is Robert and-RequestOutputKind.DELTA] FAILED",
                Some("tests/a.py::test_abort[engine_args0-Hello my name is Robert and-RequestOutputKind.DELTA]"),
            ),
            ("x/test_b.py::TestC::test_d[a[1]-é] - E", Some("x/test_b.py::TestC::test_d[a[1]-é]")),
            ("test_c.py::test_x", Some("test_c.py::test_x")),
            ("test_c.py::test_x[unclosed", None),
            ("not a path::test", None),
            ("model.py:: spaced", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_node_id(text).map(|(id, _)| id), expected, "{text}");
        }
    }

    #[test]
    fn head_lines_join_classes_with_dots() {
        assert_eq!(
            head_line("a/test_b.py::TestC::test_d[x]"),
            "TestC.test_d[x]"
        );
        assert_eq!(head_line("a/test_b.py::test_d"), "test_d");
    }

    /// A summary line without its message, the message pasted as the bare exception line below.
    #[test]
    fn a_bare_exception_under_a_summary_line_is_its_message() {
        let log = "FAILED evals/test_gsm8k.py::test_gsm8k[m]\nAssertionError: GSM8K metric too low: 0.2085 < 0.2100\nassert np.float64(0.2) >= (0.29 - 0.08)\n";
        let findings = find_pytest_failures(log);
        assert_eq!(findings.failures.len(), 1);
        assert_eq!(
            findings.failures[0].error_message.as_deref(),
            Some("AssertionError: GSM8K metric too low: 0.2085 < 0.2100")
        );
    }

    #[test]
    fn summary_and_section_give_message_and_excerpt() {
        let log = "\
=================================== FAILURES ===================================
________________________ test_kv_cache_events[True-tcp] ________________________

monkeypatch = <object at 0x7fc027da70e0>
>       assert received is not None, \"No message received\"
E       AssertionError: No message received
E       assert None is not None

v1/engine/test_engine_core_client.py:321: AssertionError
=========================== short test summary info ============================
FAILED v1/engine/test_engine_core_client.py::test_kv_cache_events[True-tcp] - AssertionError: No message received
assert None is not None
==================== 1 failed, 3 passed in 12.00s ====================
";
        let findings = find_pytest_failures(log);
        assert_eq!(findings.failures.len(), 1);
        let f = &findings.failures[0];
        assert_eq!(
            f.node_id,
            "v1/engine/test_engine_core_client.py::test_kv_cache_events[True-tcp]"
        );
        assert_eq!(
            f.error_message.as_deref(),
            Some("AssertionError: No message received")
        );
        let excerpt = f.excerpt.as_deref().unwrap_or_default();
        assert!(
            excerpt.contains("E       assert None is not None"),
            "{excerpt}"
        );
        assert!(excerpt.contains("test_engine_core_client.py:321: AssertionError"));
    }

    #[test]
    fn verbose_status_after_test_output_is_attributed_to_the_running_test() {
        let log = "\
metrics/test_metrics.py::test_log[True-4] ERROR 02-22 03:46:06 config.py:102] Error retrieving file list: 504 Server Error
ERROR 02-22 03:46:18 config.py:100] Error retrieving file list: 504 Server Error: Gateway Time-out
FAILED
metrics/test_metrics.py::test_other PASSED
";
        let findings = find_pytest_failures(log);
        assert_eq!(findings.failures.len(), 1);
        assert_eq!(
            findings.failures[0].node_id,
            "metrics/test_metrics.py::test_log[True-4]"
        );
        assert_eq!(findings.failures[0].outcome, Outcome::Failed);
        assert!(findings.failures[0]
            .output_tail
            .iter()
            .any(|l| l.contains("504 Server Error")));
        assert_eq!(
            findings.passed,
            vec!["metrics/test_metrics.py::test_other".to_string()]
        );
    }

    #[test]
    fn xdist_prefixes_and_error_outcomes() {
        let log = "[gw0] [ 50%] FAILED a/test_x.py::test_one\n[gw1] [100%] ERROR a/test_x.py::test_two\nERROR a/test_x.py::test_two - fixture 'gpu' not found\n";
        let findings = find_pytest_failures(log);
        let got: Vec<_> = findings
            .failures
            .iter()
            .map(|f| (f.node_id.as_str(), f.outcome, f.error_message.as_deref()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a/test_x.py::test_one", Outcome::Failed, None),
                (
                    "a/test_x.py::test_two",
                    Outcome::Error,
                    Some("fixture 'gpu' not found")
                ),
            ]
        );
    }

    /// A plugin's columns between the summary's word and the id, a module named from two roots,
    /// a section head with short frames, and a value's repr that starts with `E` above the
    /// line pytest failed at.
    #[test]
    fn summary_columns_module_roots_short_heads_and_reprs() {
        let columns = find_pytest_failures(
            "FAILED | MEM 0.8/15.6 GB | DISK 52.1/71.6 GB tests/a.py::test_b - ValueError: x\n",
        );
        assert_eq!(columns.failures[0].node_id, "tests/a.py::test_b");
        let listed = find_pytest_failures("- FAILED tests/a.py::test_c\n  - https://ci/runs/1\n");
        assert_eq!(listed.failures[0].node_id, "tests/a.py::test_c");
        assert_eq!(
            columns.failures[0].error_message.as_deref(),
            Some("ValueError: x")
        );

        let roots = find_pytest_failures("=== ERRORS ===\n___ ERROR collecting third_party/ops/test/test_p.py ___\nTraceback:\ntest_p.py:20: in <module>\n    from test_x import P\nE   ImportError: cannot import name 'P'\n=== short test summary info ===\nERROR test_p.py\n");
        let ids: Vec<&str> = roots.failures.iter().map(|f| f.node_id.as_str()).collect();
        assert_eq!(ids, ["test_p.py"]);
        assert_eq!(
            roots.failures[0].error_message.as_deref(),
            Some("ImportError: cannot import name 'P'")
        );

        let short = find_pytest_failures(
            "x.py:54: AssertionError\n__ TestT.test_self_influence_unpack_inputs ___\n\na = 1\n",
        );
        let ids: Vec<&str> = short.failures.iter().map(|f| f.node_id.as_str()).collect();
        assert_eq!(ids, ["TestT.test_self_influence_unpack_inputs"]);

        let repr = find_pytest_failures("=== FAILURES ===\n___ test_cat ___\n\ndf = (  str_col\nE     abc        1\n\n    def test_cat(df):\n>       assert_eq(df, sol)\n\ndask/test_a.py:205: \n");
        assert_eq!(repr.failures[0].error_message, None, "{repr:?}");
    }

    #[test]
    fn exception_detection() {
        assert!(crate::logs::looks_like_exception("AssertionError: x"));
        assert!(crate::logs::looks_like_exception(
            "torch.OutOfMemoryError: CUDA out of memory."
        ));
        assert!(crate::logs::looks_like_exception("Failed: Timeout >300.0s"));
        assert!(!crate::logs::looks_like_exception(
            "assert None is not None"
        ));
        assert!(!crate::logs::looks_like_exception("ValueError"));
    }
}
