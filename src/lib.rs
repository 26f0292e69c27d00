//! ciwatch-mcp: the daily vLLM CI watch as an MCP server. See `ARCHITECTURE.md` for the map.

pub mod logs;
pub mod model;
pub mod triage;
