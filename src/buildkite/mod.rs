//! Buildkite: the REST client, its response models and web-URL parsing. Knows nothing of MCP
//! or of what a failure is.

pub mod client;
pub mod models;
pub mod url;

pub use client::{BuildkiteClient, BuildkiteError, ListBuilds, LogBody};
pub use models::{latest_attempts, Build, BuildKey, BuildState, Job, JobState, PipelineKey};
pub use url::{parse_build_ref, parse_pipeline, BuildRef};
