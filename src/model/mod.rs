//! The result types every layer shares: what a scan returns, what reports render, what MCP tools
//! publish as their output schema. Plain data: no I/O, no client types.
//!
//! Field names follow the original Python server's results (`build_info`, `failures`,
//! `test_failure`, `failure_key`, …) so existing prompts keep working; fields it lacked
//! (`jobs`, `warnings`, `infra_kind`, `evidence`, `soft_failed`, …) are additions.
//!
//! One file per result family; every type is re-exported here, so `crate::model::ScanResult`
//! names it wherever it lives.

mod bisect;
mod cause;
mod failure;
mod history;
mod job;
mod main_branch;
mod nightly;
mod scan;
mod shared;
mod state;
mod watch;

pub use bisect::*;
pub use cause::*;
pub use failure::*;
pub use history::*;
pub use job::*;
pub use main_branch::*;
pub use nightly::*;
pub use scan::*;
pub use shared::*;
pub use state::*;
pub use watch::*;
