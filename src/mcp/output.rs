//! Tool results with both forms: the value as `structuredContent` (matching the tool's
//! `outputSchema`) and a compact markdown rendering as the text content, for clients and
//! models that read only text.

use rmcp::model::{CallToolResult, ContentBlock};
use serde::Serialize;

pub fn structured<T: Serialize>(value: &T, text: String) -> Result<CallToolResult, String> {
    let json = serde_json::to_value(value)
        .map_err(|e| format!("the result could not be serialised: {e}"))?;
    let mut result = CallToolResult::structured(json);
    result.content = vec![ContentBlock::text(text)];
    Ok(result)
}
