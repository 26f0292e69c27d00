//! Tool results with both forms: the value as `structuredContent` (matching the tool's
//! `outputSchema`) and a compact markdown rendering as the text content, for clients and
//! models that read only text. Every result leaves through here, its text sanitised
//! (`untrusted`): logs and issues are written by anyone who can open a PR or an issue.

use crate::untrusted::{sanitize, sanitize_json};
use rmcp::model::{CallToolResult, ContentBlock};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub fn structured<T: Serialize>(value: &T, text: String) -> Result<CallToolResult, String> {
    let mut json = serde_json::to_value(value)
        .map_err(|e| format!("the result could not be serialised: {e}"))?;
    sanitize_json(&mut json);
    let mut result = CallToolResult::structured(json);
    result.content = vec![ContentBlock::text(sanitize(&text).into_owned())];
    Ok(result)
}

/// `value` with every string sanitised, for tools that return `Json<T>`.
pub fn sanitized<T: Serialize + DeserializeOwned>(value: T) -> Result<T, String> {
    let mut json = serde_json::to_value(&value)
        .map_err(|e| format!("the result could not be serialised: {e}"))?;
    sanitize_json(&mut json);
    serde_json::from_value(json).map_err(|e| format!("the result could not be serialised: {e}"))
}
