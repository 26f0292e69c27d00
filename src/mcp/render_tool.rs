//! `ciwatch_render`: Daily Findings or Standup markdown from any scan result (or the caller's
//! last scan, in full), or the draft `[CI Failure]` issue of one failure.

use super::CiWatchServer;
use crate::model::{Cause, FailureClassification, ScanResult};
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::CallToolResult;
use rmcp::service::RequestContext;
use rmcp::{tool, tool_router, RoleServer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RenderFormat {
    /// The full Daily Findings report (markdown).
    #[default]
    DailyFindings,
    /// The one-line Standup summary.
    Standup,
    /// The draft `[CI Failure]` issue (vLLM's form) of the cause `cause_id` (or the failure
    /// `failure_key`) names.
    DraftIssue,
    /// Everything about the cause `cause_id` (with every member failure) or the failure
    /// `failure_key`: evidence, reason, owners and blame, log snippet, stack trace, onset with
    /// every suspect and why, URLs, and the draft issue. What a `summary` answer leaves out.
    Details,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RenderParams {
    /// The result of ciwatch_scan_build or ciwatch_scan_latest_nightly, at any detail_level.
    /// Leave it out to render this caller's last scan in full (every failure, every detail,
    /// whatever the result returned held).
    #[serde(default)]
    pub scan_result: Option<serde_json::Map<String, serde_json::Value>>,
    /// "daily_findings" (default), "standup", "draft_issue" or "details" (these two need
    /// cause_id or failure_key).
    #[serde(default)]
    pub format: RenderFormat,
    /// For "draft_issue" and "details": the cause's `cause_id` (one draft per cause, every
    /// member in it).
    #[serde(default)]
    pub cause_id: Option<String>,
    /// For "draft_issue": a failure's `failure_key`, whose cause is drafted; for "details":
    /// that failure alone, with its cause.
    #[serde(default)]
    pub failure_key: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Rendered {
    pub format: RenderFormat,
    /// Markdown, ready to paste.
    pub text: String,
    /// For "details": the cause and its failures at full detail, with their URLs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Details>,
}

/// One cause, or one failure, in full.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Details {
    pub cause: Cause,
    pub failures: Vec<FailureClassification>,
}

/// A scan result a caller handed back: untrusted text like any log, so sanitised before use,
/// then read with the counts and URLs a slimmed answer leaves out restored.
pub(super) fn handed_back_scan(
    given: serde_json::Map<String, serde_json::Value>,
) -> Result<ScanResult, serde_json::Error> {
    let mut given = serde_json::Value::Object(given);
    crate::untrusted::sanitize_json(&mut given);
    let mut scan: ScanResult = serde_json::from_value(given)?;
    scan.restore_derived();
    Ok(scan)
}

#[tool_router(router = render_router, vis = "pub(super)")]
impl CiWatchServer {
    /// Render a scan result as the Daily Findings report or the one-line Standup summary
    /// (markdown, copy/paste ready), or one failure's draft `[CI Failure]` issue in vLLM's form
    /// (format "draft_issue" with its failure_key). Without scan_result it renders the last
    /// scan this caller ran, in full. Works on results of any detail_level and keeps the split
    /// between hard (blocking) and soft (optional) failures. Text from logs is put in code
    /// spans so it cannot inject markdown; a draft is for a person to review and file.
    #[tool(
        title = "Render a CI watch report",
        name = "ciwatch_render",
        output_schema = rmcp::handler::server::common::schema_for_output::<Rendered>(),
        annotations(
            title = "Render a CI watch report",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn render(
        &self,
        Parameters(params): Parameters<RenderParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, String> {
        let by_id = matches!(
            params.format,
            RenderFormat::DraftIssue | RenderFormat::Details
        );
        if by_id && params.cause_id.is_none() && params.failure_key.is_none() {
            return Err("formats \"draft_issue\" and \"details\" need cause_id (from the scan's causes) or failure_key (from its failures)".into());
        }
        let result: std::sync::Arc<ScanResult> = match params.scan_result {
            Some(given) => std::sync::Arc::new(
                handed_back_scan(given)
                    .map_err(|e| format!("scan_result is not a result of ciwatch_scan_build or ciwatch_scan_latest_nightly: {e}"))?,
            ),
            None => self
                .latest_scan(&context.extensions)
                .await
                .ok_or(super::NO_SCAN_YET)?,
        };
        let (cause_id, failure_key) = (params.cause_id.as_deref(), params.failure_key.as_deref());
        let text = match params.format {
            RenderFormat::DailyFindings => crate::report::daily_findings(&result),
            RenderFormat::Standup => crate::report::standup_summary(&result),
            RenderFormat::DraftIssue => draft_of(&result, cause_id, failure_key)?,
            RenderFormat::Details => {
                return details_of(&result, cause_id, failure_key);
            }
        };
        let rendered = Rendered {
            format: params.format,
            text,
            details: None,
        };
        super::output::structured(&rendered, rendered.text.clone())
    }
}

/// Everything about one cause (every member) or one failure, within the result cap: the
/// last members go first over it, and the text says how many.
fn details_of(
    result: &ScanResult,
    cause_id: Option<&str>,
    failure_key: Option<&str>,
) -> Result<CallToolResult, String> {
    let cause = cause_of(result, cause_id, failure_key)?;
    let failures: Vec<FailureClassification> = result
        .failures
        .iter()
        .filter(|f| match failure_key.filter(|_| cause_id.is_none()) {
            Some(key) => f.failure_key == key,
            None => cause.holds(f),
        })
        .cloned()
        .collect();
    let members = failures.len();
    let mut cause = cause.clone();
    cause.draft_issue = Some(cause_draft(result, &cause));
    let mut rendered = Rendered {
        format: RenderFormat::Details,
        text: String::new(),
        details: Some(Details { cause, failures }),
    };
    rendered.text = details_text(&rendered, members);
    let (result, _) = super::output::structured_within_cap(
        &mut rendered,
        |r| r.text.clone(),
        |r| {
            let cut = r
                .details
                .as_mut()
                .is_some_and(|d| d.failures.pop().is_some());
            r.text = details_text(r, members);
            cut
        },
    )?;
    Ok(result)
}

/// The text of `rendered`'s details, saying how many of the `members` were left out.
fn details_text(rendered: &Rendered, members: usize) -> String {
    let Some(details) = &rendered.details else {
        return String::new();
    };
    let shown = details.failures.len();
    let mut text = crate::report::details_text(&details.cause, &details.failures);
    if shown < members {
        text.push_str(&format!(
            "\n{} of {members} failures left out to stay under the result cap: ask for one with its failure_key\n",
            members - shown
        ));
    }
    text
}

/// The cause `cause_id` names, or the cause of the failure `failure_key` names.
fn cause_of<'r>(
    result: &'r ScanResult,
    cause_id: Option<&str>,
    failure_key: Option<&str>,
) -> Result<&'r Cause, String> {
    let cause_id = match (cause_id, failure_key) {
        (Some(id), _) => id.to_string(),
        (None, Some(key)) => result
            .failures
            .iter()
            .find(|f| f.failure_key == key)
            .ok_or_else(|| format!("no failure with failure_key {key:?} in this scan; failure keys are in its failures"))?
            .cause_id
            .clone()
            .ok_or_else(|| format!("failure {key:?} has no cause in this result"))?,
        (None, None) => return Err("no cause_id or failure_key given".into()),
    };
    result
        .causes
        .iter()
        .find(|c| c.cause_id == cause_id)
        .ok_or_else(|| format!("no cause {cause_id:?} in this scan; cause ids are in its causes"))
}

/// The cause's draft issue: the one the scan wrote, else one drafted now from every member.
fn cause_draft(result: &ScanResult, cause: &Cause) -> String {
    cause.draft_issue.clone().unwrap_or_else(|| {
        let members: Vec<&FailureClassification> =
            result.failures.iter().filter(|f| cause.holds(f)).collect();
        crate::report::draft_issue(cause, &members, &result.build_info)
    })
}

/// The draft of the cause `cause_id` names, or of the cause of the failure `failure_key`
/// names; said first when an issue already covers it.
fn draft_of(
    result: &ScanResult,
    cause_id: Option<&str>,
    failure_key: Option<&str>,
) -> Result<String, String> {
    let cause = cause_of(result, cause_id, failure_key)?;
    let draft = cause_draft(result, cause);
    Ok(match &cause.issue_advice {
        Some(advice) if advice.issue.is_some() => format!("Note: {}.\n\n{draft}", advice.reason),
        _ => draft,
    })
}
