//! The Buildkite log layer, apart from vLLM's policy: a log body streamed line by line and
//! resumed where it broke ([`stream`], with a [`stream::LineSink`] for whoever reads the
//! lines), its cleaned text kept in indexed, compressed blocks ([`blocks`]), and views that
//! read only the blocks they show ([`view`]). It imports nothing of the reader above it: the
//! plan, pytest and coverage are the reader's.

pub mod blocks;
pub mod stream;
pub mod view;
