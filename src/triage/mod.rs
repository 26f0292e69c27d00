//! Pure triage: failure keys, fingerprints, the infrastructure rule table, classification,
//! trends across nightlies and the ranking of suspect commits.
//! No I/O; everything here is tested on strings.

pub mod bisect;
pub mod cause;
pub mod classify;
pub mod cluster;
pub mod fingerprint;
pub mod history;
pub mod key;
pub mod nightly;
pub mod recurrence;
pub mod rules;
pub mod signature;
pub mod suspects;
pub mod trend;

pub use classify::{classify, FailureText, JobSignals, Verdict};
pub use fingerprint::fingerprint;
pub use key::failure_key;
