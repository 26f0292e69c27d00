//! The shapes of pytest's own lines, each read alone: the `=====` banners, a section's
//! `____ head ____`, the `FAILED id - message` summary, a verbose `id STATUS` line, a node id.
//! Pure; a line that is not of a shape gives `None`.

/// What pytest reported for a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Outcome {
    /// The test body failed (`FAILED`).
    Failed,
    /// A fixture or collection failed around the test (`ERROR`).
    Error,
    Passed,
}

impl Outcome {
    pub(super) fn parse(word: &str) -> Option<Self> {
        match word {
            "FAILED" => Some(Self::Failed),
            "ERROR" => Some(Self::Error),
            "PASSED" => Some(Self::Passed),
            _ => None,
        }
    }
}

/// `===== FAILURES =====` → `FAILURES`. Any `=`-framed line ends the current section block.
pub(super) fn banner_title(line: &str) -> Option<&str> {
    let inner = line.strip_prefix("===")?.trim_start_matches('=');
    let inner = inner.strip_suffix("===")?.trim_end_matches('=');
    Some(inner.trim())
}

/// `____ test_x[a b] ____` → `test_x[a b]`; frame separators (`_ _ _ _`) are not heads.
pub(super) fn section_head(line: &str) -> Option<&str> {
    let inner = line.strip_prefix("_ ").or_else(|| {
        let trimmed = line.trim_start_matches('_');
        (trimmed.len() + 2 <= line.len()).then_some(trimmed.strip_prefix(' ')?)
    })?;
    let inner = inner.trim_end_matches('_').strip_suffix(' ')?;
    if inner.is_empty() || inner.bytes().all(|b| b == b'_' || b == b' ') {
        return None;
    }
    Some(inner)
}

/// A `____ test_x[…] ____` head (`_ test_x[…] _` or `__ test_x[…] ___` when the name nearly
/// fills the line), a test's name inside (`test_x`, `TestX.test_y`, unittest's
/// `SomeTest.test_y`).
pub(super) fn pasted_section_head(line: &str) -> bool {
    line.starts_with('_')
        && line.ends_with('_')
        && section_head(line).is_some_and(|head| {
            let name = test_of(head);
            let method = name
                .split('[')
                .next()
                .unwrap_or(name)
                .rsplit('.')
                .next()
                .unwrap_or(name);
            name.starts_with("test") || name.starts_with("Test") || method.starts_with("test")
        })
}

/// `FAILED id …` or `ERROR id …`, and what follows the word: the spaces that align the two
/// words (`ERROR  id`) and a plugin's columns (`FAILED [1.2410s] id`, `FAILED | MEM … | DISK … id`)
/// are read through.
pub(super) fn summary_prefix(line: &str) -> Option<(Outcome, &str)> {
    // A Markdown list of summary lines (`- FAILED tests/a.py::t`), as an issue quotes them.
    let line = line.strip_prefix("- ").unwrap_or(line);
    let (outcome, rest) = if let Some(rest) = line.strip_prefix("FAILED ") {
        (Outcome::Failed, rest)
    } else {
        (Outcome::Error, line.strip_prefix("ERROR ")?)
    };
    let rest = rest.trim_start_matches(' ');
    // A plugin's columns between bars (`| MEM 0.8/15.6 GB | DISK 52.1/71.6 GB tests/a.py::t`):
    // the id is the first word that reads as one.
    if rest.starts_with("| ") {
        let id_at = rest
            .match_indices(' ')
            .map(|(at, _)| at + 1)
            .find(|&at| parse_node_id(&rest[at..]).is_some());
        return Some((outcome, id_at.map_or(rest, |at| &rest[at..])));
    }
    let column = rest
        .strip_prefix('[')
        .and_then(|inner| inner.split_once("] "))
        .filter(|(inner, _)| !inner.contains(' '));
    Some((outcome, column.map_or(rest, |(_, after)| after)))
}

/// A lone status word, optionally followed by the `[ 42%]` column.
pub(super) fn status_word(text: &str) -> Option<Outcome> {
    let text = text.trim();
    let word = match text.find(' ') {
        Some(space) => {
            let tail = text[space..].trim();
            if !(tail.starts_with('[') && tail.ends_with("%]")) {
                return None;
            }
            &text[..space]
        }
        None => text,
    };
    Outcome::parse(word)
}

/// Parses a pytest node id at the start of `text`: `path/to/test_x.py::Class::test_y[params]`.
/// Parameters may hold spaces, dashes, brackets and any unicode; they end at the matching `]`.
/// Returns the id and the text after it.
pub fn parse_node_id(text: &str) -> Option<(&str, &str)> {
    let sep = text.find("::")?;
    let path = &text[..sep];
    if !path.ends_with(".py") || path.is_empty() || !path.bytes().all(is_path_byte) {
        return None;
    }
    let bytes = text.as_bytes();
    let mut i = sep + 2;
    let name_start = i;
    // Dots too: a doctest's id is `path.py::module.function`.
    while i < bytes.len()
        && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b':' | b'.'))
    {
        i += 1;
    }
    if i == name_start || text[name_start..i].ends_with([':', '.']) {
        return None;
    }
    if bytes.get(i) == Some(&b'[') {
        let mut depth = 0usize;
        let mut end = None;
        for (offset, b) in text[i..].bytes().enumerate() {
            match b {
                b'[' => depth += 1,
                b']' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i + offset + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        i = end?;
    }
    let rest = &text[i..];
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some((&text[..i], rest))
}

/// A byte of a test file's path as pytest prints it (with backslashes on Windows).
fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'\\' | b'.' | b'_' | b'-')
}

/// `tests/test_x.py - ImportError: …`: a module pytest could not collect, named by its path.
pub(super) fn module_id(text: &str) -> Option<(&str, &str)> {
    let end = text.find(' ').unwrap_or(text.len());
    let path = &text[..end];
    let rest = &text[end..];
    (path.ends_with(".py")
        && path.bytes().all(is_path_byte)
        && (rest.is_empty() || rest.starts_with(" - ")))
    .then_some((path, rest))
}

/// `test_x[params]` alone after `FAILED`: a summary a paste regrouped without the file. Only a
/// name pytest collects (`test_…`), whole or followed by ` - message`.
pub(super) fn bare_test_name(text: &str) -> Option<(&str, &str)> {
    let end = text.find(" - ").unwrap_or(text.len());
    let (name, rest) = text.split_at(end);
    let function = name.split('[').next().unwrap_or_default();
    let params_closed = !name.contains('[') || name.ends_with(']');
    (function.starts_with("test_")
        && function
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && params_closed
        && !name.contains(' '))
    .then_some((name, rest))
}

/// The head line pytest prints for a node id: the part after the file, classes joined by `.`.
pub fn head_line(node_id: &str) -> String {
    let name = node_id.split_once("::").map_or(node_id, |(_, name)| name);
    name.replace("::", ".")
}

/// The test or module a section's head names: `ERROR at setup of test_x` → `test_x`.
pub(super) fn test_of(head: &str) -> &str {
    head.strip_prefix("ERROR at setup of ")
        .or_else(|| head.strip_prefix("ERROR at teardown of "))
        .or_else(|| head.strip_prefix("ERROR collecting "))
        .unwrap_or(head)
}
