//! The corpus (`wiremock-fixtures/corpus/`, see its README): real CI log excerpts, each with the
//! verdict a watcher reads from it written beside it (test ids, error line, kind). Every excerpt
//! is replayed as a Buildkite job log (`to_raw_format`) through the scan's streaming reader
//! (`reader::log::stream::LogStream`), in chunks of several sizes that must all agree, and scored.
//! `seen/` must give every verdict (a regression test); a `fresh/` batch is only measured: its
//! first run is the project's accuracy, written in the corpus README before anything is fixed.

use ciwatch_mcp::fixtures::to_raw_format;
use ciwatch_mcp::logs::prefix::is_bare_prefix;
use ciwatch_mcp::logs::{LogAnalysis, LogAnalyzer};
use ciwatch_mcp::model::{Category, InfraKind};
use ciwatch_mcp::reader::log::stream::LogStream;
use ciwatch_mcp::triage::{classify, FailureText, JobSignals};
use std::path::{Path, PathBuf};

/// One excerpt and its verdict, as its corpus file states them.
#[derive(Debug)]
struct Excerpt {
    /// `<owner/repo>#<number> <slug>`.
    name: String,
    from_vllm_ci: bool,
    test_ids: Vec<String>,
    /// A part of the error line of the first test listed, or of the job.
    error: Option<String>,
    category: Category,
    infra_kind: Option<InfraKind>,
    /// A miss kept on purpose, with why (`fixme:` in the file): asserted to still miss, so that
    /// a fix shows and the line is removed.
    fixme: Option<String>,
    text: String,
}

#[derive(Debug, PartialEq)]
struct Actual {
    test_ids: Vec<String>,
    error: Option<String>,
    category: Category,
    infra_kind: Option<InfraKind>,
}

fn corpus_dir(part: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("wiremock-fixtures/corpus")
        .join(part)
}

/// The markdown files of `seen/` or `fresh/`, in name order.
fn corpus_files(part: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(part))
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "md"));
    files.sort();
    files
}

/// The excerpts of one corpus file (format: the corpus README).
fn parse_file(path: &Path) -> Vec<Excerpt> {
    let text = std::fs::read_to_string(path).expect("corpus file");
    text.split("\n## ")
        .skip(1)
        .map(|section| {
            parse_section(section).unwrap_or_else(|e| {
                panic!(
                    "{}: section {:?}: {e}",
                    path.display(),
                    section.lines().next()
                )
            })
        })
        .collect()
}

fn parse_section(section: &str) -> Result<Excerpt, String> {
    let mut lines = section.lines();
    let name = lines.next().ok_or("no heading")?.trim().to_string();
    let (mut origin, mut error, mut kind, mut fixme) = (None, None, None, None);
    let mut test_ids = Vec::new();
    let fence = loop {
        let line = lines.next().ok_or("no fenced excerpt")?;
        if line.starts_with("```") {
            break line.trim_end().to_string();
        }
        let Some((key, value)) = line.split_once(": ") else {
            continue;
        };
        let value = value.trim();
        match key {
            "origin" => origin = Some(value == "vllm-ci"),
            "tests" if value != "none" => test_ids.push(value.to_string()),
            "error" => error = Some((value != "none").then(|| value.to_string())),
            "kind" => kind = Some(value.to_string()),
            "fixme" => fixme = Some(value.to_string()),
            _ => {}
        }
    };
    let fence_marker = fence.trim_end_matches(|c: char| c != '`');
    let mut body = Vec::new();
    for line in lines.by_ref() {
        if line.trim_end() == fence_marker {
            break;
        }
        body.push(line);
    }
    let kind = kind.ok_or("no kind")?;
    let (category, infra_kind) = match kind.as_str() {
        "code" => (Category::NewRegression, None),
        "triage" => (Category::NeedsHumanTriage, None),
        other => {
            let infra = other
                .strip_prefix("infra:")
                .ok_or(format!("unknown kind {other}"))?;
            let infra: InfraKind = serde_json::from_value(serde_json::Value::String(infra.into()))
                .map_err(|_| format!("unknown infrastructure kind {infra}"))?;
            (Category::InfraSuspected, Some(infra))
        }
    };
    Ok(Excerpt {
        name,
        from_vllm_ci: origin.ok_or("no origin")?,
        test_ids,
        error: error.ok_or("no error")?,
        category,
        infra_kind,
        fixme,
        text: body.join("\n") + "\n",
    })
}

/// Chunk sizes the raw log is fed to the reader in: whole, a byte at a time, a prime, a page.
const CHUNKINGS: [usize; 4] = [usize::MAX, 1, 13, 4096];

/// What the streaming reader gives for `raw`, fed in `chunk`-byte pieces.
fn stream(raw: &[u8], chunk: usize) -> LogAnalysis {
    let mut reader = LogStream::<LogAnalyzer>::default();
    for piece in raw.chunks(chunk.min(raw.len()).max(1)) {
        reader.push(piece);
    }
    let (analysis, _, failed_at) = reader.finish();
    assert_eq!(failed_at, None, "the reader failed on a line of this log");
    analysis
}

fn analyse(excerpt: &Excerpt) -> Actual {
    let raw = to_raw_format(&excerpt.text);
    let analysis = stream(&raw, CHUNKINGS[0]);
    let whole = serde_json::to_value(&analysis).expect("serialises");
    for chunk in &CHUNKINGS[1..] {
        let chunked = serde_json::to_value(stream(&raw, *chunk)).expect("serialises");
        assert_eq!(
            chunked, whole,
            "{}: chunks of {chunk} differ from the whole read",
            excerpt.name
        );
    }
    let job = JobSignals {
        exit_status: Some(1),
        ..Default::default()
    };
    // The first test the excerpt lists is the one whose error it states.
    let first = excerpt
        .test_ids
        .first()
        .and_then(|id| analysis.tests.iter().find(|t| &t.node_id == id))
        .or(analysis.tests.first());
    let (error, text) = match (first, &analysis.job_level) {
        (Some(test), _) => (
            test.error_message.clone(),
            FailureText {
                error_message: test.error_message.as_deref(),
                excerpt: test.excerpt.as_deref(),
                output: &test.output_tail,
            },
        ),
        (None, Some(level)) => (
            level.error_message.clone(),
            FailureText {
                error_message: level.error_message.as_deref(),
                excerpt: Some(&level.excerpt),
                output: &[],
            },
        ),
        (None, None) => (None, FailureText::default()),
    };
    assert!(
        !error.as_deref().is_some_and(is_bare_prefix),
        "{}: the error line {error:?} is only prefixes",
        excerpt.name
    );
    let verdict = classify(text, job);
    Actual {
        test_ids: analysis.tests.iter().map(|t| t.node_id.clone()).collect(),
        error,
        category: verdict.category,
        infra_kind: verdict.infra_kind,
    }
}

/// Recall and precision of test ids, the share of excerpts whose error line is right, and the
/// share whose kind (category and infrastructure kind) is right, with what went wrong.
#[derive(Debug, Default)]
struct Figures {
    excerpts: usize,
    from_vllm_ci: usize,
    ids_expected: usize,
    ids_found: usize,
    ids_correct: usize,
    errors_expected: usize,
    errors_correct: usize,
    kinds_correct: usize,
    mismatches: Vec<String>,
    /// Names of the excerpts marked `fixme` that missed, as they should.
    known_misses: Vec<String>,
}

impl Figures {
    fn add(&mut self, case: &Excerpt, actual: &Actual) {
        self.excerpts += 1;
        self.from_vllm_ci += usize::from(case.from_vllm_ci);
        self.ids_expected += case.test_ids.len();
        self.ids_found += actual.test_ids.len();
        self.ids_correct += actual
            .test_ids
            .iter()
            .filter(|id| case.test_ids.contains(id))
            .count();
        let error_right = match (&case.error, &actual.error) {
            (Some(expected), Some(found)) => found.contains(expected.as_str()),
            (None, found) => found.is_none(),
            (Some(_), None) => false,
        };
        self.errors_expected += usize::from(case.error.is_some());
        self.errors_correct += usize::from(case.error.is_some() && error_right);
        let kind_right = (actual.category, actual.infra_kind) == (case.category, case.infra_kind);
        self.kinds_correct += usize::from(kind_right);
        let ids_right = actual.test_ids.len() == case.test_ids.len()
            && actual.test_ids.iter().all(|id| case.test_ids.contains(id));
        let right = error_right && kind_right && ids_right;
        if let Some(why) = &case.fixme {
            if right {
                self.mismatches.push(format!(
                    "{} is right now: remove its fixme ({why})",
                    case.name
                ));
            } else {
                self.known_misses.push(case.name.clone());
            }
        } else if !right {
            self.mismatches.push(format!(
                "{}\n  expected ids {:?} error {:?} {:?} {:?}\n  actual   {actual:?}",
                case.name, case.test_ids, case.error, case.category, case.infra_kind
            ));
        }
    }

    fn id_recall(&self) -> f64 {
        ratio(self.ids_correct, self.ids_expected)
    }
    fn id_precision(&self) -> f64 {
        ratio(self.ids_correct, self.ids_found)
    }
    fn errors(&self) -> f64 {
        ratio(self.errors_correct, self.errors_expected)
    }
    fn kinds(&self) -> f64 {
        ratio(self.kinds_correct, self.excerpts)
    }

    fn line(&self, what: &str) -> String {
        format!(
            "{what}: {} excerpts ({} from vLLM CI); test ids recall {}/{} ({:.3}) precision {}/{} ({:.3}); error lines {}/{} ({:.3}); kinds {}/{} ({:.3})",
            self.excerpts, self.from_vllm_ci, self.ids_correct, self.ids_expected, self.id_recall(),
            self.ids_correct, self.ids_found, self.id_precision(), self.errors_correct,
            self.errors_expected, self.errors(), self.kinds_correct, self.excerpts, self.kinds()
        )
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

fn score(files: &[PathBuf]) -> Figures {
    let mut figures = Figures::default();
    for file in files {
        let (mut own, mut vllm) = (Figures::default(), Figures::default());
        for excerpt in parse_file(file) {
            let actual = analyse(&excerpt);
            own.add(&excerpt, &actual);
            figures.add(&excerpt, &actual);
            if excerpt.from_vllm_ci {
                vllm.add(&excerpt, &actual);
            }
        }
        let name = file
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        eprintln!("{}", own.line(&name));
        eprintln!("{}", vllm.line(&format!("{name}, vLLM CI only")));
    }
    figures
}

fn seen() -> Vec<Excerpt> {
    corpus_files("seen")
        .iter()
        .flat_map(|f| parse_file(f))
        .collect()
}

/// `cargo test --test it corpus -- --nocapture` prints the figures of every file. The excerpts
/// the rules were fitted to (`seen/`) must all give their verdict.
#[test]
fn seen_excerpts_give_their_verdicts() {
    let figures = score(&corpus_files("seen"));
    eprintln!("{}", figures.line("seen/"));
    eprintln!("known misses (fixme): {:?}", figures.known_misses);
    assert!(
        figures.mismatches.is_empty(),
        "{}",
        figures.mismatches.join("\n")
    );
}

/// A fresh batch is measured, never asserted: its first run is the project's accuracy (written in
/// the corpus README), and a miss is fixed in the rules once the batch has moved to `seen/`.
/// `CIWATCH_CORPUS_BATCH=<file name>` measures that batch alone (its first run, one at a time).
#[test]
fn fresh_batches_are_measured() {
    let mut files = corpus_files("fresh");
    if let Ok(only) = std::env::var("CIWATCH_CORPUS_BATCH") {
        files.retain(|f| f.file_name().is_some_and(|n| n.to_string_lossy() == only));
    }
    let figures = score(&files);
    eprintln!("{}", figures.line("fresh/"));
    for mismatch in &figures.mismatches {
        eprintln!("{mismatch}");
    }
    // Every file parses and every excerpt was read: the count is what the files hold.
    let held: usize = files.iter().map(|f| parse_file(f).len()).sum();
    assert_eq!(figures.excerpts, held);
}

/// The corpus as a whole: at least 150 excerpts from vLLM's own CI among at least 150, each named
/// once. (The share of vLLM's CI is printed: 365 of 1,015 after batch r.)
#[test]
fn the_corpus_is_mostly_vllm_ci() {
    let all: Vec<Excerpt> = corpus_files("seen")
        .iter()
        .chain(&corpus_files("fresh"))
        .flat_map(|f| parse_file(f))
        .collect();
    let vllm = all.iter().filter(|e| e.from_vllm_ci).count();
    eprintln!("{vllm} of {} excerpts from vLLM's CI", all.len());
    assert!(
        all.len() >= 150 && vllm >= 150,
        "{vllm} of {} from vLLM CI",
        all.len()
    );
    let mut names: Vec<&str> = all.iter().map(|e| e.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "excerpt names are unique");
}

/// Every rule of the infrastructure table is proved by at least one excerpt of `seen/`: the first
/// rule that matches an excerpt expected to be infrastructure, counted per rule.
#[test]
fn every_infrastructure_rule_has_a_real_excerpt() {
    use ciwatch_mcp::logs::clean_log;
    use ciwatch_mcp::triage::rules::{find_infra, INFRA_RULES};
    let mut proved = vec![Vec::new(); INFRA_RULES.len()];
    for case in seen()
        .iter()
        .filter(|c| c.infra_kind.is_some() && c.fixme.is_none())
    {
        let cleaned = clean_log(&to_raw_format(&case.text));
        if let Some((rule, _)) = find_infra(cleaned.lines()) {
            let index = INFRA_RULES
                .iter()
                .position(|r| std::ptr::eq(r, rule))
                .expect("a rule of the table");
            assert_eq!(Some(rule.kind), case.infra_kind, "{}", case.name);
            proved[index].push(case.name.clone());
        }
    }
    for (index, (rule, cases)) in INFRA_RULES.iter().zip(&proved).enumerate() {
        eprintln!("rule {index} ({:?}): {} excerpts", rule.kind, cases.len());
        assert!(
            !cases.is_empty(),
            "rule {index} ({:?}) has no real excerpt",
            rule.kind
        );
    }
}
