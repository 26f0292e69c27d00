//! Fitting a scan result to what a client takes, without losing a failure: detail is shed in a
//! fixed order first (draft texts, the rendered report, stack traces, log snippets, suspects
//! beyond the first, evidence lines, then everything but each failure's identity), and only
//! when even the identities are over the cap are the failures paged, with the offset of the
//! next page. Every step is said in the result. Pure: a result and a size function in.

use crate::model::{
    Cause, ComparedNightly, DetailLevel, FailureClassification, FailurePage, ScanResult,
};

/// Detail a result can lose, in the order it is given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shed {
    DraftIssues,
    ReportTexts,
    StackTraces,
    LogSnippets,
    LaterSuspects,
    EvidenceLines,
    AllButIdentity,
}

impl Shed {
    const ORDER: [Shed; 7] = [
        Shed::DraftIssues,
        Shed::ReportTexts,
        Shed::StackTraces,
        Shed::LogSnippets,
        Shed::LaterSuspects,
        Shed::EvidenceLines,
        Shed::AllButIdentity,
    ];

    /// What was dropped and how to get it back, for `detail_shed`.
    fn describe(self) -> &'static str {
        match self {
            Shed::DraftIssues => "the causes' draft_issue texts (ciwatch_render with format \"draft_issue\" and the cause_id gives one)",
            Shed::ReportTexts => "daily_findings_text and standup_summary_text (ciwatch_render without scan_result, or the resource report://latest, gives them)",
            Shed::StackTraces => "stack traces (ciwatch_get_job_test_failures gives a job's)",
            Shed::LogSnippets => "log snippets (ciwatch_get_job_log with around_test gives a test's lines)",
            Shed::LaterSuspects => "suspect commits beyond the first (ciwatch_render with format \"draft_issue\" lists them)",
            Shed::EvidenceLines => "evidence lines (ciwatch_get_job_log with search gives them)",
            Shed::AllButIdentity => "everything but each failure's key, test, job, category, trend, first error line, issue and job URL (scan one job with ciwatch_get_job_test_failures for the rest)",
        }
    }

    fn apply(self, result: &mut ScanResult) {
        match self {
            Shed::DraftIssues => drop_drafts(result),
            Shed::ReportTexts => {
                result.daily_findings_text = None;
                result.standup_summary_text = None;
            }
            Shed::AllButIdentity => {
                result.failures.iter_mut().for_each(|f| self.apply_to(f));
                for cause in &mut result.causes {
                    cause.suspect = None;
                    cause.owners = Vec::new();
                    if let Some(elsewhere) = &mut cause.elsewhere {
                        elsewhere.evidence = String::new();
                        elsewhere.jobs = Vec::new();
                    }
                }
            }
            _ => result.failures.iter_mut().for_each(|f| self.apply_to(f)),
        }
    }

    fn apply_to(self, failure: &mut FailureClassification) {
        let tf = &mut failure.test_failure;
        match self {
            Shed::DraftIssues | Shed::ReportTexts => {}
            Shed::StackTraces => tf.stack_trace = None,
            Shed::LogSnippets => tf.log_snippet = None,
            Shed::LaterSuspects => {
                if let Some(onset) = &mut failure.since.onset {
                    onset.suspects.truncate(1);
                }
            }
            Shed::EvidenceLines => failure.evidence = None,
            Shed::AllButIdentity => {
                tf.error_message = tf.error_message.take().map(|e| first_line(&e));
                failure.reason = None;
                failure.issue.matched = None;
                failure.owner.all = Vec::new();
                failure.owner.path = None;
                failure.owner.blame = None;
                failure.fingerprint = None;
                failure.since.onset = None;
                if let Some(trend) = &mut failure.since.trend {
                    trend.notes = Vec::new();
                }
            }
        }
    }
}

fn drop_drafts(result: &mut ScanResult) {
    for cause in &mut result.causes {
        cause.draft_issue = None;
    }
}

/// Characters of the error line kept with a failure's identity.
const IDENTITY_ERROR_CHARS: usize = 200;

fn first_line(text: &str) -> String {
    crate::text::bounded_text(text.lines().next().unwrap_or(""), IDENTITY_ERROR_CHARS)
}

/// What a caller asked to see of a result: how much of each failure, and which page of them.
/// A scan keeps the whole result; the MCP tools, the CLI and the main-branch analysis present
/// it through this one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presentation {
    pub detail_level: DetailLevel,
    /// Failures from this one on are in the result.
    pub failure_offset: usize,
    /// Most failures in the result; `usize::MAX` for all.
    pub max_failures: usize,
}

impl Presentation {
    /// Every failure at full detail: what a scan keeps before anyone is shown it.
    pub const WHOLE: Self = Self {
        detail_level: DetailLevel::Full,
        failure_offset: 0,
        max_failures: usize::MAX,
    };

    /// The page of `result` this asks for, each failure at this detail; `page` says which.
    /// The rendered texts (rendered from every failure before this) stay only at `full`.
    pub fn page(self, result: &mut ScanResult) {
        let level = self.detail_level;
        if level != DetailLevel::Full {
            result.daily_findings_text = None;
            result.standup_summary_text = None;
            result.compared_nightly =
                result
                    .causes
                    .iter()
                    .find_map(|c| c.elsewhere.as_ref())
                    .map(|e| ComparedNightly {
                        pipeline: e.pipeline.clone(),
                        build_number: e.build_number,
                    });
            for cause in &mut result.causes {
                cause.at_detail(level);
            }
        }
        let mut failures: Vec<FailureClassification> = std::mem::take(&mut result.failures)
            .into_iter()
            .map(|f| f.at_detail(level))
            .collect();
        if level != DetailLevel::Full {
            give_shared_errors_to_causes(&mut result.causes, &mut failures);
        }
        (result.failures, result.page) = self.page_of(failures);
        if result.page.is_partial() {
            note_page(result);
        }
    }

    /// The page of `items` this asks for, and which page it is of how many.
    pub fn page_of<T>(self, items: Vec<T>) -> (Vec<T>, FailurePage) {
        let total = items.len();
        let offset = self.failure_offset.min(total);
        let shown: Vec<T> = items
            .into_iter()
            .skip(offset)
            .take(self.max_failures)
            .collect();
        let page = FailurePage::new(offset, shown.len(), total);
        (shown, page)
    }
}

/// An error line that every member of a cause (two or more) shares is given once, on the cause,
/// and left out of the members: the same line 12 times says nothing 11 times.
fn give_shared_errors_to_causes(causes: &mut [Cause], failures: &mut [FailureClassification]) {
    for cause in causes {
        let id = cause.cause_id.as_str();
        let is_member = |f: &FailureClassification| f.cause_id.as_deref() == Some(id);
        let mut members = failures.iter().filter(|f| is_member(f));
        let first = members.next();
        let mut rest = members.peekable();
        let several = rest.peek().is_some();
        let shared = first
            .and_then(|f| f.test_failure.error_message.clone())
            .filter(|line| {
                several && rest.all(|f| f.test_failure.error_message.as_deref() == Some(line))
            });
        if shared.is_some() {
            for member in failures.iter_mut().filter(|f| is_member(f)) {
                member.test_failure.error_message = None;
            }
            cause.error_message = shared;
        }
    }
}

/// Fits `result` under `cap` as measured by `size`: sheds detail in [`Shed::ORDER`] while it is
/// over, then pages the failures (as many as fit from the page's start). Returns whether
/// anything was shed or paged.
pub fn fit_scan(result: &mut ScanResult, cap: usize, size: impl Fn(&ScanResult) -> usize) -> bool {
    let mut changed = false;
    for step in Shed::ORDER {
        if size(result) <= cap {
            return changed;
        }
        step.apply(result);
        result.detail_shed.push(step.describe().to_string());
        changed = true;
    }
    if size(result) <= cap {
        return changed;
    }
    // The largest count of failures that fits with the page's note: found by bisection (each
    // size is a render).
    let all = std::mem::take(&mut result.failures);
    let all_causes = std::mem::take(&mut result.causes);
    let start = result.page.offset;
    // A page carries the causes of its failures.
    let keep = |result: &mut ScanResult, count: usize| {
        result.failures = all[..count].to_vec();
        result.causes = all_causes
            .iter()
            .filter(|c| {
                result
                    .failures
                    .iter()
                    .any(|f| f.cause_id.as_ref() == Some(&c.cause_id))
            })
            .cloned()
            .collect();
        let end = start + count;
        result.page.returned = count;
        result.page.next_offset = (end < result.page.total).then_some(end);
        note_page(result);
    };
    let (mut fits, mut over) = (0usize, all.len());
    while fits + 1 < over {
        let mid = (fits + over) / 2;
        keep(result, mid);
        if size(result) <= cap {
            fits = mid;
        } else {
            over = mid;
        }
    }
    keep(result, fits);
    true
}

/// Says in `warnings` and `incomplete` that the failures are paged (replacing an earlier note).
fn note_page(result: &mut ScanResult) {
    let note = result.page.note();
    let mark = FailurePage::MARK;
    result.warnings.retain(|w| !w.starts_with(mark));
    result.warnings.push(note.clone());
    result.incomplete.retain(|w| !w.starts_with(mark));
    result.mark_incomplete(note);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BuildInfo, Category, TestFailure};

    fn page_failures(result: &mut ScanResult, level: DetailLevel, offset: usize, limit: usize) {
        let presentation = Presentation {
            detail_level: level,
            failure_offset: offset,
            max_failures: limit,
        };
        presentation.page(result);
    }

    fn failure(i: usize) -> FailureClassification {
        let mut failure: FailureClassification = serde_json::from_value(serde_json::json!({
            "failure_key": format!("{i:016x}"),
            "test_failure": {"test_name": format!("tests/x.py::test_{i}"), "job_name": "Kernels"},
            "category": "NEW_REGRESSION",
            "confidence": 0.8,
        }))
        .expect("failure");
        failure.test_failure = TestFailure {
            error_message: Some(format!("AssertionError: {i}\nsecond line")),
            stack_trace: Some("E  trace\n".repeat(40)),
            log_snippet: Some("snippet ".repeat(40)),
            ..failure.test_failure
        };
        failure.evidence = Some("evidence".into());
        failure
    }

    fn result(n: usize) -> ScanResult {
        let mut result: ScanResult = serde_json::from_value(serde_json::json!({
            "build_info": BuildInfo::default(),
            "total_jobs": 1, "failed_jobs": 1, "failures": [], "scan_timestamp": "2026-12-02T05:00:00Z",
        }))
        .expect("result");
        result.failures = (0..n).map(failure).collect();
        result.total_failures = n;
        result.causes = crate::triage::cause::group_causes(&mut result.failures, "vllm/ci");
        for cause in &mut result.causes {
            cause.draft_issue = Some("draft ".repeat(300));
        }
        page_failures(&mut result, DetailLevel::Full, 0, usize::MAX);
        result
    }

    fn json_size(result: &ScanResult) -> usize {
        serde_json::to_string(result).expect("json").len()
    }

    #[test]
    fn detail_goes_first_in_order_and_every_failure_stays() {
        let mut r = result(30);
        let full = json_size(&r);
        // Room for everything but the drafts.
        let without_drafts = {
            let mut r = r.clone();
            Shed::DraftIssues.apply(&mut r);
            json_size(&r) + 2_000
        };
        assert!(without_drafts < full);
        assert!(fit_scan(&mut r, without_drafts, json_size));
        assert_eq!(r.failures.len(), 30);
        assert!(r.causes.iter().all(|c| c.draft_issue.is_none()));
        assert!(r
            .failures
            .iter()
            .all(|f| f.test_failure.stack_trace.is_some()));
        assert_eq!(r.detail_shed.len(), 1, "{:?}", r.detail_shed);
        assert!(r.complete, "shedding detail loses no failure");
    }

    #[test]
    fn identities_are_paged_only_when_they_alone_are_over_the_cap() {
        let mut r = result(200);
        assert!(fit_scan(&mut r, 20_000, json_size));
        assert!(json_size(&r) <= 20_000);
        assert_eq!(r.detail_shed.len(), Shed::ORDER.len());
        let shown = r.failures.len();
        assert!(shown > 10 && shown < 200, "{shown}");
        assert_eq!(r.page.next_offset, Some(shown));
        assert_eq!(r.page.total, 200);
        assert!(!r.complete);
        assert!(r
            .warnings
            .iter()
            .any(|w| w.contains(&format!("failure_offset={shown}"))));
        // Identities keep the first error line.
        let first = &r.failures[0];
        assert_eq!(
            first.test_failure.error_message.as_deref(),
            Some("AssertionError: 0")
        );
        assert_eq!(first.category, Category::NewRegression);
        assert!(first.reason.is_none());

        // The next page starts where this one ended.
        let mut next = result(200);
        let offset = r.page.next_offset.expect("more");
        page_failures(&mut next, DetailLevel::Full, offset, usize::MAX);
        fit_scan(&mut next, 20_000, json_size);
        assert_eq!(next.page.offset, shown);
        assert_eq!(
            next.failures[0].failure_key,
            format!("{shown:016x}"),
            "no failure skipped between pages"
        );
    }

    #[test]
    fn below_full_an_error_line_every_member_shares_is_given_once_on_the_cause() {
        let mut r = result(5);
        // One test's four parametrisations, failing alike.
        for (i, f) in r.failures[..4].iter_mut().enumerate() {
            f.test_failure.test_name = format!("tests/x.py::test_same[{i}]");
            f.test_failure.error_message = Some("AssertionError: the same".into());
        }
        r.failures[4].test_failure.error_message = Some("RuntimeError: another".into());
        r.causes = crate::triage::cause::group_causes(&mut r.failures, "vllm/ci");
        let full = r.clone();
        page_failures(&mut r, DetailLevel::Summary, 0, usize::MAX);
        let shared: Vec<_> = r
            .causes
            .iter()
            .filter_map(|c| c.error_message.as_deref())
            .collect();
        assert_eq!(shared, ["AssertionError: the same"]);
        let kept: Vec<_> = r
            .failures
            .iter()
            .filter_map(|f| f.test_failure.error_message.as_deref())
            .collect();
        assert_eq!(
            kept,
            ["RuntimeError: another"],
            "the cause of one keeps its own line"
        );
        // At full every failure keeps its own line and no cause carries one.
        let mut f = full;
        page_failures(&mut f, DetailLevel::Full, 0, usize::MAX);
        assert!(f.causes.iter().all(|c| c.error_message.is_none()));
        assert!(f
            .failures
            .iter()
            .all(|x| x.test_failure.error_message.is_some()));
    }

    #[test]
    fn summary_carries_no_draft_text() {
        let mut r = result(3);
        assert!(r.causes.iter().all(|c| c.draft_issue.is_some()));
        page_failures(&mut r, DetailLevel::Summary, 0, usize::MAX);
        assert!(r.causes.iter().all(|c| c.draft_issue.is_none()));
        assert!(r.complete);
    }
}
