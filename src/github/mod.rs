//! GitHub: fetching vLLM's CI-failure issues (octocrab) and matching failures to them (pure).

pub mod client;
pub mod matching;

pub use client::{Candidates, CompareCommit, GitHubClient, GitHubOptions};
pub use matching::{best_match, IssueCandidate, IssueMatch, IssueState};
