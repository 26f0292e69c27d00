//! Views of a kept log that decompress only the blocks they show: a range of lines (`seek`),
//! the last lines (`tail`), the lines matching a pattern newest first (`search`), and a walk
//! over every line in either direction (`walk`) for views that follow the log's structure.
//! Blocks are fetched a few at a time and decompressed off the async workers, one block at a
//! time, so a view holds about one block of text whatever the log's size.

use super::blocks::{decode_block_into, BlockIndex, BlockSpan, StoredText};
use crate::storage::{Store, Table};
use regex::Regex;
use std::ops::{ControlFlow, Range};

/// Blocks fetched from the source at once: few requests to the store and few hand-overs to a
/// blocking thread, little held (64 compressed blocks are about 400 KB of log text at lz4's
/// usual tenfold).
const BLOCKS_PER_FETCH: usize = 64;

/// A block was missing or unreadable: the kept log is gone (evicted, or of another format),
/// and reading the log again is the way on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogGone;

/// Where a log's compressed blocks are.
pub enum BlockSource<'s> {
    /// In the store: block `i` under `key#i` in [`Table::LogBlocks`].
    Store { store: &'s Store, key: String },
    /// Held by the caller (a log just read, with no store to keep it).
    Held(Vec<Vec<u8>>),
}

impl BlockSource<'_> {
    async fn fetch(&self, blocks: Range<usize>) -> Result<Vec<Vec<u8>>, LogGone> {
        match self {
            Self::Store { store, key } => {
                let keys: Vec<String> = blocks.map(|i| block_key(key, i)).collect();
                store
                    .get_bytes_many(Table::LogBlocks, &keys)
                    .await
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .ok_or(LogGone)
            }
            Self::Held(held) => held.get(blocks).map(<[_]>::to_vec).ok_or(LogGone),
        }
    }
}

/// The key of block `i` of the log kept under `key`.
pub fn block_key(key: &str, i: usize) -> String {
    format!("{key}#{i}")
}

/// Which way a walk goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    FirstToLast,
    LastToFirst,
}

/// What a search found: every matching line counted, the newest `shown` kept.
#[derive(Debug, Default)]
pub struct Hits {
    pub count: usize,
    /// 0-based line numbers, newest first.
    pub newest: Vec<u64>,
}

/// A kept log, read through its index.
pub struct LogView<'s> {
    pub index: BlockIndex,
    source: BlockSource<'s>,
}

impl<'s> LogView<'s> {
    pub fn new(index: BlockIndex, source: BlockSource<'s>) -> Self {
        Self { index, source }
    }

    /// A view of text held by the caller (read just now, with no store to keep it).
    pub fn held(text: StoredText) -> LogView<'static> {
        LogView::new(text.index, BlockSource::Held(text.blocks))
    }

    /// Lines `lines` (0-based, clamped to the log) in order, until `max_bytes` of text have
    /// been taken (the line that passes it is the last).
    pub async fn seek(
        &self,
        lines: Range<u64>,
        max_bytes: usize,
    ) -> Result<Vec<(u64, String)>, LogGone> {
        let end = lines.end.min(self.index.total_lines());
        if lines.start >= end {
            return Ok(Vec::new());
        }
        let (first, last) = (
            self.index.block_of(lines.start).ok_or(LogGone)?,
            self.index.block_of(end - 1).ok_or(LogGone)?,
        );
        let state = (Vec::new(), 0usize);
        let ((taken, _), _) = self
            .walk_blocks(
                first..last + 1,
                Direction::FirstToLast,
                state,
                move |state, n, line| {
                    if n < lines.start || n >= end {
                        return ControlFlow::Continue(());
                    }
                    state.1 += line.len();
                    state.0.push((n, line.to_string()));
                    if state.1 > max_bytes {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                },
            )
            .await?;
        Ok(taken)
    }

    /// The last `count` lines.
    pub async fn tail(&self, count: u64, max_bytes: usize) -> Result<Vec<(u64, String)>, LogGone> {
        let total = self.index.total_lines();
        self.seek(total.saturating_sub(count)..total, max_bytes)
            .await
    }

    /// Lines matching `pattern`, newest first: all counted, the newest `shown` kept.
    pub async fn search(&self, pattern: &Regex, shown: usize) -> Result<Hits, LogGone> {
        let pattern = pattern.clone();
        self.walk(
            Direction::LastToFirst,
            Hits::default(),
            move |hits, n, line| {
                if pattern.is_match(line) {
                    hits.count += 1;
                    if hits.newest.len() < shown {
                        hits.newest.push(n);
                    }
                }
                ControlFlow::Continue(())
            },
        )
        .await
    }

    /// Gives every line, with its 0-based number, to `visit` in `direction`, until it breaks.
    pub async fn walk<T, F>(&self, direction: Direction, state: T, visit: F) -> Result<T, LogGone>
    where
        T: Send + 'static,
        F: FnMut(&mut T, u64, &str) -> ControlFlow<()> + Send + 'static,
    {
        let all = 0..self.index.blocks.len();
        Ok(self.walk_blocks(all, direction, state, visit).await?.0)
    }

    async fn walk_blocks<T, F>(
        &self,
        blocks: Range<usize>,
        direction: Direction,
        mut state: T,
        mut visit: F,
    ) -> Result<(T, F), LogGone>
    where
        T: Send + 'static,
        F: FnMut(&mut T, u64, &str) -> ControlFlow<()> + Send + 'static,
    {
        let mut batches: Vec<Range<usize>> = blocks
            .clone()
            .step_by(BLOCKS_PER_FETCH)
            .map(|start| start..(start + BLOCKS_PER_FETCH).min(blocks.end))
            .collect();
        if direction == Direction::LastToFirst {
            batches.reverse();
        }
        let mut buffer = Vec::new();
        for batch in batches {
            let compressed = self.source.fetch(batch.clone()).await?;
            let spans = self.index.blocks[batch].to_vec();
            let (flow, back) = tokio::task::spawn_blocking(move || {
                let walk = Walk {
                    spans: &spans,
                    compressed: &compressed,
                    direction,
                };
                let flow = walk.visit(&mut buffer, &mut state, &mut visit);
                (flow, (state, visit, buffer))
            })
            .await
            .map_err(|_| LogGone)?;
            (state, visit, buffer) = back;
            match flow? {
                ControlFlow::Break(()) => break,
                ControlFlow::Continue(()) => {}
            }
        }
        Ok((state, visit))
    }
}

/// One batch of a walk: its blocks' spans and compressed bytes, and which way it goes.
struct Walk<'b> {
    spans: &'b [BlockSpan],
    compressed: &'b [Vec<u8>],
    direction: Direction,
}

impl Walk<'_> {
    /// Decompresses the blocks one at a time into `buffer` and gives their lines to `visit`.
    fn visit<T>(
        &self,
        buffer: &mut Vec<u8>,
        state: &mut T,
        visit: &mut impl FnMut(&mut T, u64, &str) -> ControlFlow<()>,
    ) -> Result<ControlFlow<()>, LogGone> {
        let mut order: Vec<usize> = (0..self.spans.len()).collect();
        if self.direction == Direction::LastToFirst {
            order.reverse();
        }
        for at in order {
            let text = decode_block_into(&self.compressed[at], buffer).ok_or(LogGone)?;
            let lines = text.lines().zip(self.spans[at].first_line..);
            let flow = if self.direction == Direction::FirstToLast {
                lines
                    .map(|(line, n)| visit(state, n, line))
                    .find(|f| f.is_break())
            } else {
                let lines: Vec<_> = lines.collect();
                lines
                    .into_iter()
                    .rev()
                    .map(|(line, n)| visit(state, n, line))
                    .find(|f| f.is_break())
            };
            if let Some(stop) = flow {
                return Ok(stop);
            }
        }
        Ok(ControlFlow::Continue(()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::blocks::BlockWriter;
    use super::*;

    fn held(lines: usize) -> LogView<'static> {
        let mut writer = BlockWriter::default();
        for n in 0..lines {
            writer.push(&format!("line {n} {}\n", "y".repeat(900)));
        }
        LogView::held(writer.into_text(0, 0, true))
    }

    fn numbers(lines: &[(u64, String)]) -> Vec<u64> {
        lines.iter().map(|(n, _)| *n).collect()
    }

    #[tokio::test]
    async fn views_read_across_blocks_in_both_directions() {
        // 8,000 lines of about 910 bytes fill 112 blocks: two fetches of 64.
        let view = held(8000);
        assert!(view.index.blocks.len() > BLOCKS_PER_FETCH);
        let tail = view.tail(3, usize::MAX).await.expect("kept");
        assert_eq!(numbers(&tail), vec![7997, 7998, 7999]);
        assert!(tail[2].1.starts_with("line 7999 "));
        let across = view.seek(70..74, usize::MAX).await.expect("kept");
        assert_eq!(numbers(&across), vec![70, 71, 72, 73]);
        assert!(across
            .iter()
            .all(|(n, text)| text.starts_with(&format!("line {n} "))));
        let cut = view.seek(0..8000, 2500).await.expect("kept");
        assert_eq!(
            numbers(&cut),
            vec![0, 1, 2],
            "the line past the bytes is the last"
        );
        let hits = view
            .search(&Regex::new(r"^line 7\d\d\d ").expect("regex"), 3)
            .await
            .expect("kept");
        assert_eq!(hits.count, 1000);
        assert_eq!(hits.newest, vec![7999, 7998, 7997]);
        let first = view
            .walk(Direction::FirstToLast, Vec::new(), |seen, n, _| {
                seen.push(n);
                if seen.len() == 2 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
            .await
            .expect("kept");
        assert_eq!(first, vec![0, 1]);
    }

    #[tokio::test]
    async fn a_missing_block_says_the_log_is_gone() {
        let mut view = held(200);
        if let BlockSource::Held(blocks) = &mut view.source {
            blocks.pop();
        }
        assert_eq!(view.tail(1, usize::MAX).await.err(), Some(LogGone));
        assert_eq!(view.seek(0..1, usize::MAX).await.map(|l| l.len()), Ok(1));
    }
}
