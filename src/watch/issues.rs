//! What the repository's CI-failure issues say about a scan: the issue each failure matches
//! (an open tracking issue makes it KNOWN_TRACKED), and for each untracked cause worth an issue
//! the one that already covers it (use it, or reopen it) or the draft of a new one. The server
//! never writes to GitHub.

use crate::github::{best_match, IssueCandidate, IssueState};
use crate::model::{
    Category, Cause, FailureClassification, IssueAction, IssueAdvice, IssueRef, ScanResult,
};
use crate::triage::signature::{signature, Signature};

/// For each untracked cause worth an issue: the issue that already covers it (no duplicate),
/// else the draft of a new one.
pub(super) fn advise_issues(result: &mut ScanResult, candidates: &[IssueCandidate]) {
    for cause in &mut result.causes {
        if !needs_advice(cause) {
            continue;
        }
        let members: Vec<&FailureClassification> =
            result.failures.iter().filter(|f| cause.holds(f)).collect();
        let Some(first) = members.first() else {
            continue;
        };
        let tf = &first.test_failure;
        let lead = signature(
            &tf.test_name,
            &tf.job_name,
            tf.error_message.as_deref(),
            tf.stack_trace.as_deref(),
        );
        let advice = match covering_issue(cause, &members, &lead, candidates) {
            Some((action, issue)) => use_issue(action, issue, lead.exception.as_deref()),
            None => {
                let draft = crate::report::draft_issue(cause, &members, &result.build_info);
                cause.draft_issue = Some(draft);
                IssueAdvice {
                    action: IssueAction::FileNew,
                    issue: None,
                    reason: "no open or closed issue covers it: file the draft".into(),
                }
            }
        };
        cause.issue_advice = Some(advice);
    }
}

/// Untracked and the code's failure: flaky and infrastructure causes, and logs that could not
/// be read, are not the code's failures to file.
fn needs_advice(cause: &Cause) -> bool {
    let tracked = cause
        .issue
        .as_ref()
        .is_some_and(|i| i.tracking && i.state == IssueState::Open);
    let worth_an_issue = matches!(
        cause.category,
        Category::NewRegression | Category::ContinuingUntracked
    );
    !tracked && worth_an_issue
}

/// A closed issue the matching already linked to a member (its test in the title) is the one
/// to reopen; else one that names the file and exception, or the signature.
fn covering_issue<'c>(
    cause: &Cause,
    members: &[&FailureClassification],
    signature: &Signature,
    candidates: &'c [IssueCandidate],
) -> Option<(IssueAction, &'c IssueCandidate)> {
    let files: Vec<&str> = members
        .iter()
        .filter_map(|f| {
            f.test_failure
                .test_name
                .split_once("::")
                .map(|(file, _)| file)
        })
        .collect();
    let linked_closed = cause
        .issue
        .as_ref()
        .filter(|i| i.state == IssueState::Closed)
        .and_then(|i| candidates.iter().find(|c| c.number == i.number))
        .map(|issue| (IssueAction::ReopenClosed, issue));
    linked_closed.or_else(|| {
        crate::github::matching::issue_for_cause(
            &files,
            signature.exception.as_deref(),
            &signature.message,
            candidates,
        )
    })
}

fn use_issue(action: IssueAction, issue: &IssueCandidate, exception: Option<&str>) -> IssueAdvice {
    IssueAdvice {
        action,
        issue: Some(IssueRef {
            number: issue.number,
            url: issue.url.clone(),
            title: issue.title.clone(),
            state: issue.state,
        }),
        reason: match action {
            IssueAction::ReopenClosed => format!(
                "closed #{} covers it: reopen it instead of filing a new one",
                issue.number
            ),
            _ => format!(
                "open #{} names its test file and {}: add to it",
                issue.number,
                exception.unwrap_or("exception")
            ),
        },
    }
}

/// KNOWN_TRACKED when an open issue matches (it outranks every other category, as in the
/// original); a closed issue that matches is linked, and the failure keeps its category with
/// a "possibly regressed after fix" reason.
pub(super) fn apply_issue_match(
    failure: &mut FailureClassification,
    candidates: &[IssueCandidate],
) {
    let Some(found) = best_match(
        &failure.test_failure.test_name,
        &failure.test_failure.job_name,
        candidates,
    ) else {
        return;
    };
    failure.issue.url = Some(found.url.clone()).filter(|u| !u.is_empty());
    match found.state {
        IssueState::Open if !found.tracking => {
            let earlier = failure.reason.take().unwrap_or_default();
            failure.reason = Some(format!(
                "{earlier}; mentioned in #{} {} ({}), opened outside the project and not labelled ci-failure: not counted as tracking",
                found.number, found.title, found.matched_on
            ));
        }
        IssueState::Open => {
            failure.category = Category::KnownTracked;
            failure.confidence = Some(found.score);
            failure.reason = Some(format!(
                "Tracked in #{}: {} ({})",
                found.number, found.title, found.matched_on
            ));
        }
        IssueState::Closed => {
            let earlier = failure.reason.take().unwrap_or_default();
            failure.reason = Some(format!(
                "{earlier}; possibly regressed after fix: matches closed #{} {} ({})",
                found.number, found.title, found.matched_on
            ));
        }
    }
    failure.issue.matched = Some(found);
}
