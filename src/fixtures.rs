//! The bundled fixture nightly: real build 65099 of `vllm/ci` with job logs in Buildkite's raw
//! format, used by `ciwatch-mcp demo` and by the tests.
//!
//! The build JSON is the real API body. Each failed job's log is rendered here: agent hook
//! headers, the job's real command headers, over 1 MiB of passing tests and INFO noise (so that
//! tails and budgets matter), then the failure, taken from real vLLM CI excerpts
//! (`wiremock-fixtures/logs/<job id>.log`). Every line carries the `ESC _bk;t=<ms> BEL`
//! timestamp and a CRLF end, pytest words are ANSI-coloured, progress bars use bare CRs.

use crate::buildkite::{Build, Job};

/// The real build body (`GET …/builds/65099?include_retried_jobs=true`).
pub const BUILD_65099: &str = include_str!("../wiremock-fixtures/builds/65099.json");

/// Bytes of passing output before each failure.
pub const NOISE_BYTES: usize = 1_100_000;

/// Real vLLM CI-failure issue numbers and titles (`github/vllm_ci_failure_issue_titles.tsv`).
const ISSUE_TITLES: &str =
    include_str!("../wiremock-fixtures/github/vllm_ci_failure_issue_titles.tsv");
/// A complete GitHub issue object (octokit's recorded fixture), the template for the mock issues.
const ISSUE_TEMPLATE: &str =
    include_str!("../wiremock-fixtures/github/github_issue_object_octokit_fixture.json");
/// vLLM's real `.github/CODEOWNERS`.
pub const CODEOWNERS: &str = include_str!("../wiremock-fixtures/github/vllm_CODEOWNERS");

/// Issues the fixture GitHub reports as closed recently, so their matches read "possibly
/// regressed after fix".
pub const CLOSED_ISSUES: [u64; 2] = [18425, 16054];

/// Failure tails by job id. The six flaked attempts of the B200 spec-decode, LM-eval and MoE jobs
/// carry the short test summaries of real vLLM CI failures of those suites (corpus excerpts
/// vllm#34797, #34700, #22922, #34706, #34969, #40637 and #21533), so the night holds its real
/// size: 24 failed attempts read, 39 failures.
const LOG_TAILS: &[(&str, &str)] = &[
    (
        "019e062d-31a8-4207-b84c-6a53d68dd726",
        include_str!("../wiremock-fixtures/logs/019e062d-31a8-4207-b84c-6a53d68dd726.log"),
    ),
    (
        "019e062d-31de-4ed0-8025-243346716090",
        include_str!("../wiremock-fixtures/logs/019e062d-31de-4ed0-8025-243346716090.log"),
    ),
    (
        "019e062d-3229-41f0-ae71-3fca05221b4b",
        include_str!("../wiremock-fixtures/logs/019e062d-3229-41f0-ae71-3fca05221b4b.log"),
    ),
    (
        "019e062d-322a-4676-96f9-9c2eb68e6a6a",
        include_str!("../wiremock-fixtures/logs/019e062d-322a-4676-96f9-9c2eb68e6a6a.log"),
    ),
    (
        "019e062d-327e-42c1-88c9-64c14381bbc3",
        include_str!("../wiremock-fixtures/logs/019e062d-327e-42c1-88c9-64c14381bbc3.log"),
    ),
    (
        "019e062d-327e-44f7-b8d9-ec4240490552",
        include_str!("../wiremock-fixtures/logs/019e062d-327e-44f7-b8d9-ec4240490552.log"),
    ),
    (
        "019e062d-327f-4b66-88d4-7df0451be197",
        include_str!("../wiremock-fixtures/logs/019e062d-327f-4b66-88d4-7df0451be197.log"),
    ),
    (
        "019e0689-da9b-47ab-915e-9c470bfe9a07",
        include_str!("../wiremock-fixtures/logs/019e0689-da9b-47ab-915e-9c470bfe9a07.log"),
    ),
    (
        "019e068f-84f5-4636-9707-f971a7d87843",
        include_str!("../wiremock-fixtures/logs/019e068f-84f5-4636-9707-f971a7d87843.log"),
    ),
    (
        "019e068f-85c7-4b9b-95c4-98c4b41d815f",
        include_str!("../wiremock-fixtures/logs/019e068f-85c7-4b9b-95c4-98c4b41d815f.log"),
    ),
    (
        "019e068f-8622-419c-be27-bdcce5a6395d",
        include_str!("../wiremock-fixtures/logs/019e068f-8622-419c-be27-bdcce5a6395d.log"),
    ),
    (
        "019e068f-867e-49c8-b77a-bec0ddb02e21",
        include_str!("../wiremock-fixtures/logs/019e068f-867e-49c8-b77a-bec0ddb02e21.log"),
    ),
    (
        "019e068f-872a-4bc8-9deb-77eeef36d35b",
        include_str!("../wiremock-fixtures/logs/019e068f-872a-4bc8-9deb-77eeef36d35b.log"),
    ),
    (
        "019e068f-8880-4d80-b9ae-21f562929ee8",
        include_str!("../wiremock-fixtures/logs/019e068f-8880-4d80-b9ae-21f562929ee8.log"),
    ),
    (
        "019e068f-88cf-4559-b404-fc9429cc6655",
        include_str!("../wiremock-fixtures/logs/019e068f-88cf-4559-b404-fc9429cc6655.log"),
    ),
    (
        "019e068f-891f-4675-8d7c-eb26e213f4e9",
        include_str!("../wiremock-fixtures/logs/019e068f-891f-4675-8d7c-eb26e213f4e9.log"),
    ),
    (
        "019e068f-896e-40a1-bde1-40b0250ed36f",
        include_str!("../wiremock-fixtures/logs/019e068f-896e-40a1-bde1-40b0250ed36f.log"),
    ),
    (
        "019e068f-89bb-4a5e-a397-1c30c218c59f",
        include_str!("../wiremock-fixtures/logs/019e068f-89bb-4a5e-a397-1c30c218c59f.log"),
    ),
    (
        "019e0663-e6af-472c-8301-c022a17dd163",
        include_str!("../wiremock-fixtures/logs/019e0663-e6af-472c-8301-c022a17dd163.log"),
    ),
    (
        "019e0663-f4fa-46ae-9157-a8c349439ed5",
        include_str!("../wiremock-fixtures/logs/019e0663-f4fa-46ae-9157-a8c349439ed5.log"),
    ),
    (
        "019e0664-1013-4d76-a08c-0b93024c26c8",
        include_str!("../wiremock-fixtures/logs/019e0664-1013-4d76-a08c-0b93024c26c8.log"),
    ),
    (
        "019e062d-31ef-4c83-af11-f8a8d2e7bd6c",
        include_str!("../wiremock-fixtures/logs/019e062d-31ef-4c83-af11-f8a8d2e7bd6c.log"),
    ),
    (
        "019e062d-31f1-40ff-804e-69acfbd8cc3f",
        include_str!("../wiremock-fixtures/logs/019e062d-31f1-40ff-804e-69acfbd8cc3f.log"),
    ),
    (
        "019e062d-31f3-4f4a-a64a-c7110ef81fc7",
        include_str!("../wiremock-fixtures/logs/019e062d-31f3-4f4a-a64a-c7110ef81fc7.log"),
    ),
];

/// The fixture build, parsed.
pub fn build_65099() -> Build {
    serde_json::from_str(BUILD_65099).expect("the bundled fixture build is valid JSON")
}

/// Real AMD nightly 7561 of `vllm/amd-ci` ("AMD Full CI Run - nightly", captured running).
pub const BUILD_AMD_7561: &str = include_str!("../wiremock-fixtures/builds/amd-ci_7561.json");

/// The AMD nightly as the fixture nightly's compared pipeline sees it: finished, on 65099's
/// commit, created the same morning (its one running job passed).
pub fn amd_nightly_beside_65099() -> serde_json::Value {
    let nightly = build_65099();
    let mut build: serde_json::Value =
        serde_json::from_str(BUILD_AMD_7561).expect("the bundled AMD build is valid JSON");
    build["state"] = "failed".into();
    build["finished_at"] = "2026-05-08T13:40:00.000Z".into();
    build["created_at"] = "2026-05-08T06:00:01.775Z".into();
    build["commit"] = nightly.commit.unwrap_or_default().into();
    for job in build["jobs"].as_array_mut().into_iter().flatten() {
        if job["state"] == "running" {
            job["state"] = "passed".into();
        }
    }
    build
}

/// The raw log of a job of the fixture build. Failed jobs without a tail of their own end with
/// the agent's exit line only.
pub fn raw_log(job: &Job) -> Vec<u8> {
    let tail = LOG_TAILS.iter().find(|(id, _)| *id == job.id).map_or(
        "🚨 Error: The command exited with status 1\n",
        |(_, text)| text,
    );
    let mut writer = RawLogWriter::new(1_778_220_000_000);
    for hook in [
        "~~~ Running global environment hook",
        "~~~ Preparing working directory",
        "~~~ Running script",
    ] {
        writer.line(hook);
    }
    let commands: Vec<&str> = job
        .command
        .as_deref()
        .unwrap_or("")
        .lines()
        .filter_map(|l| l.strip_prefix("echo \"").and_then(|l| l.strip_suffix('"')))
        .filter(|l| l.starts_with("+++ ") || l.starts_with("--- "))
        .collect();
    for header in commands.iter().take_while(|h| !h.contains("Command (2/")) {
        writer.line(header);
    }
    writer.noise(NOISE_BYTES);
    for line in tail.lines() {
        writer.line(line);
    }
    writer.bytes
}

/// `text` in Buildkite's raw log format: a timestamp escape on every line, CRLF, pytest colours.
pub fn to_raw_format(text: &str) -> Vec<u8> {
    let mut writer = RawLogWriter::new(1_769_067_604_900);
    for line in text.lines() {
        writer.line(line);
    }
    writer.bytes
}

struct RawLogWriter {
    bytes: Vec<u8>,
    clock_ms: u64,
}

impl RawLogWriter {
    fn new(start_ms: u64) -> Self {
        Self {
            bytes: Vec::with_capacity(NOISE_BYTES + 64 * 1024),
            clock_ms: start_ms,
        }
    }

    fn line(&mut self, text: &str) {
        self.clock_ms += 7;
        self.bytes
            .extend_from_slice(format!("\x1b_bk;t={}\x07", self.clock_ms).as_bytes());
        self.bytes.extend_from_slice(colourise(text).as_bytes());
        self.bytes.extend_from_slice(b"\r\n");
    }

    /// Passing tests, vLLM INFO lines and a progress bar, until `bytes` more are written.
    fn noise(&mut self, bytes: usize) {
        let target = self.bytes.len() + bytes;
        let mut i = 0usize;
        while self.bytes.len() < target {
            i += 1;
            match i % 5 {
                0 => self.line(&format!("tests/models/language/generation/test_common.py::test_models[True-False-5-32-model-{i}] PASSED")),
                1 => self.line(&format!("(EngineCore_DP0 pid={}) INFO 05-08 06:{:02}:{:02} [gpu_model_runner.py:2602] Model loading took 15.{} GiB memory and {}.{} seconds", 3000 + i % 97, i / 60 % 60, i % 60, i % 10, i % 40, i % 9)),
                2 => self.line(&format!("INFO 05-08 06:{:02}:{:02} [kv_cache_utils.py:1087] GPU KV cache size: {} tokens", i / 60 % 60, i % 60, 400_000 + i)),
                3 => {
                    self.clock_ms += 3;
                    let bar = format!("\x1b_bk;t={}\x07Processed prompts:  50%|█████     | 4/8 [00:01<00:01]\rProcessed prompts: 100%|██████████| 8/8 [00:02<00:00]\r\n", self.clock_ms);
                    self.bytes.extend_from_slice(bar.as_bytes());
                }
                _ => self.line("WARNING 05-08 06:21:13 [config.py:1465] Default sampling parameters have been overridden by the model's Hugging Face generation config"),
            }
        }
    }
}

/// pytest's colours: status words, `E` lines and banners, as `--color=yes` prints them.
fn colourise(line: &str) -> String {
    if line.starts_with("E ") {
        return format!("\x1b[31m{line}\x1b[0m");
    }
    if line.starts_with("===") {
        return format!("\x1b[1m{line}\x1b[0m");
    }
    for (word, colour) in [("PASSED", "32"), ("FAILED", "31"), ("ERROR", "31")] {
        if let Some(rest) = line.strip_prefix(word) {
            return format!("\x1b[{colour}m{word}\x1b[0m{rest}");
        }
        if let Some(head) = line.strip_suffix(word) {
            return format!("{head}\x1b[{colour}m{word}\x1b[0m");
        }
    }
    line.to_string()
}

/// Serves `log` for a `Range` header value as Buildkite does: a suffix range gives 206 with
/// `Content-Range`, an empty log gives 416, anything else the whole log with 200.
pub fn range_response(log: &[u8], range: Option<&str>) -> (u16, Option<String>, Vec<u8>) {
    let (status, content_range, part) = range_of(log.len(), range);
    (status, content_range, log[part].to_vec())
}

/// [`range_response`] as the part of a log of `len` bytes to send, without copying it.
pub fn range_of(len: usize, range: Option<&str>) -> (u16, Option<String>, std::ops::Range<usize>) {
    if len == 0 {
        return (416, None, 0..0);
    }
    let suffix = range
        .and_then(|r| r.trim().strip_prefix("bytes=-"))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n > 0);
    match suffix {
        Some(n) => {
            let start = len.saturating_sub(n);
            let content_range = format!("bytes {start}-{}/{len}", len - 1);
            (206, Some(content_range), start..len)
        }
        None => (200, None, 0..len),
    }
}

/// The fixture GitHub's issues: the real titles, labelled `ci-failure` (the one noted as
/// unlabelled stays so), as complete issue objects.
pub fn github_issues() -> Vec<serde_json::Value> {
    let template: serde_json::Value =
        serde_json::from_str(ISSUE_TEMPLATE).expect("the bundled issue template is valid JSON");
    ISSUE_TITLES
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .filter_map(|(number, title)| Some((number.trim_start_matches('#').parse::<u64>().ok()?, title)))
        .map(|(number, raw_title)| {
            let unlabelled = raw_title.contains("(no label");
            let title = raw_title.split(" (no label").next().unwrap_or(raw_title).trim_end_matches(" (dump)");
            let closed = CLOSED_ISSUES.contains(&number);
            let mut issue = template.clone();
            let url = format!("https://github.com/vllm-project/vllm/issues/{number}");
            let api = format!("https://api.github.com/repos/vllm-project/vllm/issues/{number}");
            let labels = if unlabelled {
                serde_json::json!([])
            } else {
                serde_json::json!([{ "id": 6036488001u64, "node_id": "LA_kwDOIo_c", "url": "https://api.github.com/repos/vllm-project/vllm/labels/ci-failure", "name": "ci-failure", "color": "e99695", "default": false, "description": "Issue about an unexpected test failure in CI" }])
            };
            if let Some(object) = issue.as_object_mut() {
                object.insert("number".into(), number.into());
                object.insert("id".into(), (2_000_000_000 + number).into());
                object.insert("title".into(), title.into());
                object.insert("html_url".into(), url.into());
                object.insert("url".into(), api.clone().into());
                object.insert("repository_url".into(), "https://api.github.com/repos/vllm-project/vllm".into());
                object.insert("labels".into(), labels);
                object.insert("state".into(), if closed { "closed" } else { "open" }.into());
                object.insert("closed_at".into(), if closed { "2026-11-20T10:00:00Z".into() } else { serde_json::Value::Null });
                object.insert("body".into(), format!("### Name of failing test\n\n{title}\n\n### Basic information\n\n- [x] Flaky test\n").into());
            }
            issue
        })
        .collect()
}

/// A `/search/issues` answer for one of the three queries the client sends.
pub fn github_search(query: &str) -> serde_json::Value {
    let issues = github_issues();
    let labelled =
        |issue: &serde_json::Value| issue["labels"].as_array().is_some_and(|l| !l.is_empty());
    let items: Vec<serde_json::Value> = issues
        .into_iter()
        .filter(|issue| {
            if query.contains("-label:ci-failure") {
                !labelled(issue)
            } else if query.contains("is:closed") {
                labelled(issue) && issue["state"] == "closed"
            } else {
                labelled(issue) && issue["state"] == "open"
            }
        })
        .collect();
    serde_json::json!({ "total_count": items.len(), "incomplete_results": false, "items": items })
}

/// A contents-API answer for `path` of the fixture repository: only `.github/CODEOWNERS` exists.
pub fn github_contents(path: &str) -> Option<serde_json::Value> {
    use base64::Engine;
    (path == ".github/CODEOWNERS").then(|| {
        // GitHub wraps base64 at 60 characters.
        let encoded = base64::engine::general_purpose::STANDARD.encode(CODEOWNERS);
        let wrapped: Vec<&str> = encoded.as_bytes().chunks(60).map(|c| std::str::from_utf8(c).unwrap_or_default()).collect();
        serde_json::json!({
            "type": "file", "encoding": "base64", "size": CODEOWNERS.len(), "name": "CODEOWNERS", "path": path,
            "content": wrapped.join("\n"),
            "html_url": "https://github.com/vllm-project/vllm/blob/main/.github/CODEOWNERS"
        })
    })
}
