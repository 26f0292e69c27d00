//! ciwatch-mcp: the daily vLLM CI watch as an MCP server. See `ARCHITECTURE.md` for the map.

pub mod allocator;
pub mod buildkite;
pub mod call;
pub mod config;
#[cfg(feature = "demo")]
pub mod demo;
pub mod fit;
#[cfg(any(test, feature = "demo"))]
pub mod fixtures;
pub mod github;
pub mod http;
pub mod hud;
pub mod input;
pub mod logs;
pub mod mcp;
pub mod model;
pub mod owners;
pub mod pipeline;
pub mod reader;
pub mod report;
pub mod secret;
pub mod services;
pub mod storage;
pub mod text;
pub mod triage;
pub mod untrusted;
pub mod watch;
