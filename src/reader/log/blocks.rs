//! A log's cleaned text kept in indexed blocks: each block is whole lines, compressed on its
//! own, and the index says where each block starts (its first line) and how many lines it
//! holds. A view then decompresses only the blocks it shows, one at a time, whatever the log's
//! size.

use serde::{Deserialize, Serialize};

/// Cleaned text per block: each concurrent read or view holds at most about this much
/// uncompressed, and lz4 still shrinks log text about tenfold in blocks this size.
pub const BLOCK_BYTES: usize = 64 * 1024;

/// Where one block sits in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockSpan {
    /// 0-based number of its first line.
    pub first_line: u64,
    pub lines: u32,
}

impl BlockSpan {
    fn end_line(&self) -> u64 {
        self.first_line + u64::from(self.lines)
    }
}

/// What a stored log is: how much of the log was read, whether that is the whole log, and its
/// blocks. Kept apart from the blocks, so a view learns the log's shape from a few bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockIndex {
    pub bytes_read: u64,
    /// The log's size.
    pub total_size: u64,
    /// The text is the whole log: line 0 is the first line Buildkite serves.
    pub complete: bool,
    pub blocks: Vec<BlockSpan>,
}

impl BlockIndex {
    pub fn total_lines(&self) -> u64 {
        self.blocks.last().map_or(0, BlockSpan::end_line)
    }

    /// The block holding 0-based line `line`.
    pub fn block_of(&self, line: u64) -> Option<usize> {
        let at = self.blocks.partition_point(|b| b.end_line() <= line);
        (at < self.blocks.len()).then_some(at)
    }

    /// The stored form: a format byte, then JSON. `None` from [`BlockIndex::decode`] for
    /// anything else, so a value of an older format reads as absent and is fetched again.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![INDEX_FORMAT];
        out.extend(serde_json::to_vec(self).unwrap_or_default());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        match bytes.split_first()? {
            (&INDEX_FORMAT, json) => serde_json::from_slice(json).ok(),
            _ => None,
        }
    }
}

const INDEX_FORMAT: u8 = 5;

/// A log's text as kept: its index and its compressed blocks.
pub struct StoredText {
    pub index: BlockIndex,
    pub blocks: Vec<Vec<u8>>,
}

/// Cleaned text cut into blocks of whole lines as it grows, each compressed (lz4, its size
/// prepended) when it fills.
#[derive(Default)]
pub struct BlockWriter {
    block: String,
    next_line: u64,
    spans: Vec<BlockSpan>,
    compressed: Vec<Vec<u8>>,
}

impl BlockWriter {
    /// Takes cleaned text; a block is closed only after a line's end.
    pub fn push(&mut self, text: &str) {
        self.block.push_str(text);
        if self.block.len() >= BLOCK_BYTES && self.block.ends_with('\n') {
            self.close_block();
        }
    }

    fn close_block(&mut self) {
        if self.block.is_empty() {
            return;
        }
        let lines = self.block.lines().count() as u32;
        self.spans.push(BlockSpan {
            first_line: self.next_line,
            lines,
        });
        self.next_line += u64::from(lines);
        self.compressed
            .push(lz4_flex::compress_prepend_size(self.block.as_bytes()));
        self.block.clear();
    }

    /// The spans and compressed blocks of everything pushed.
    pub fn finish(mut self) -> (Vec<BlockSpan>, Vec<Vec<u8>>) {
        self.close_block();
        (self.spans, self.compressed)
    }

    /// Everything pushed, as kept: `bytes_read` of a log of `total_size`, `complete` when the
    /// text begins at the log's first byte.
    pub fn into_text(self, bytes_read: u64, total_size: u64, complete: bool) -> StoredText {
        let (blocks, compressed) = self.finish();
        StoredText {
            index: BlockIndex {
                bytes_read,
                total_size,
                complete,
                blocks,
            },
            blocks: compressed,
        }
    }
}

/// The text of one block written by [`BlockWriter`]; `None` for anything else.
pub fn decode_block(bytes: &[u8]) -> Option<String> {
    let mut buffer = Vec::new();
    decode_block_into(bytes, &mut buffer).map(str::to_string)
}

/// The most text a block can hold: a block closes after the line that fills it, and a line
/// is at most a raw line's bound. A larger size is not a block's.
const MAX_BLOCK_BYTES: usize = BLOCK_BYTES + 2 * crate::logs::clean::MAX_RAW_LINE_BYTES;

/// [`decode_block`] into `buffer`, which a walk over many blocks reuses: one allocation for
/// the walk, not one per block.
pub fn decode_block_into<'b>(bytes: &[u8], buffer: &'b mut Vec<u8>) -> Option<&'b str> {
    let (size, compressed) = lz4_flex::block::uncompressed_size(bytes).ok()?;
    if size > MAX_BLOCK_BYTES {
        return None;
    }
    buffer.resize(size, 0);
    let written = lz4_flex::block::decompress_into(compressed, buffer).ok()?;
    std::str::from_utf8(buffer.get(..written)?).ok()
}

/// The text of `blocks`, whole (for tests that compare a stream with a whole read; views read
/// a block at a time).
pub fn whole_text(blocks: &[Vec<u8>]) -> Option<String> {
    blocks.iter().map(|block| decode_block(block)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_hold_whole_lines_and_the_index_finds_each_line() {
        let mut writer = BlockWriter::default();
        let line = "x".repeat(1000);
        for n in 0..200 {
            writer.push(&format!("{n} {line}\n"));
        }
        writer.push("no newline at the end");
        let (spans, blocks) = writer.finish();
        assert!(spans.len() > 2, "200 KB is cut into blocks");
        let texts: Vec<String> = blocks
            .iter()
            .map(|b| decode_block(b).expect("decodes"))
            .collect();
        let index = BlockIndex {
            bytes_read: 0,
            total_size: 0,
            complete: true,
            blocks: spans,
        };
        assert_eq!(index.total_lines(), 201);
        for line in [0u64, 63, 64, 65, 199, 200] {
            let at = index.block_of(line).expect("in the log");
            let span = index.blocks[at];
            let text = texts[at].lines().nth((line - span.first_line) as usize);
            let expected = if line == 200 {
                "no newline at the end".to_string()
            } else {
                format!("{line} {}", "x".repeat(1000))
            };
            assert_eq!(text, Some(expected.as_str()), "line {line}");
        }
        assert_eq!(index.block_of(201), None);
        assert_eq!(BlockIndex::decode(&index.encode()), Some(index));
        assert_eq!(
            BlockIndex::decode(b"{}"),
            None,
            "another format reads as absent"
        );
        assert_eq!(
            decode_block(&[9, 0, 0, 0, 0xf0]),
            None,
            "not lz4 of 9 bytes"
        );
    }
}
