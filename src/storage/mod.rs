//! Everything kept between requests, in one place: the store interface the reader uses (the
//! embedded redb file, or Redis shared by replicas, with its read lease), the on-disk redb
//! tables, the in-process memo of fetched facts (single flight per key), and the rate window
//! shared through Redis. The formats of what the reader keeps are the reader's own
//! (`reader/stored.rs`): they name its types.

mod disk;
mod memo;
mod rate_window;
mod store;

pub use disk::{default_dir, Cache, Commit, Table, DEFAULT_MAX_BYTES};
pub use memo::Memo;
pub use rate_window::SharedWindow;
pub use store::{Lease, LeaseGuard, Store, Traffic, LEASE};
