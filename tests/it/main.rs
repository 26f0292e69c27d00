//! The integration tests, one binary (each module one area) so the crate links once.

mod common;
mod compact;

mod analytics;
mod arguments;
mod bisect;
mod buildkite_api;
mod causes;
mod corpus;
mod coverage;
mod faults;
mod github;
mod history;
mod http2;
mod hud;
mod job_log;
mod main_branch;
mod mcp_e2e;
mod mcp_http;
mod mcp_progress;
mod nightly_trend;
mod odd_answers;
mod owners;
mod redis_store;
mod result_cap;
mod robustness;
mod scan;
mod schema_snapshot;
mod setup;
mod store;
mod streaming;
mod trust;
mod watcher;
