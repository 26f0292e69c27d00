//! Owners of a failure: CODEOWNERS with GitHub's rules (pure, `codeowners`), the path of the
//! failing test (pure, `source`), and blame of the failing test's lines through gitoxide
//! (`repo`). No subprocess: the sidecar has no `git`.

pub mod codeowners;
pub mod repo;
pub mod service;
pub mod source;

pub use codeowners::CodeOwners;
pub use repo::{BlameCommit, LocalRepo};
pub use service::{OwnerLookup, OwnerOptions, OwnerSource, Owners};
