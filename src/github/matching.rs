//! Pure matching of failures against vLLM's `[CI Failure]` issues.
//!
//! Scores keep the original's meaning: 0.9 for an exact hit (the test id, its file or its
//! function in the title; the full id in the body), 0.7 for the job name in the title, and
//! nothing below 0.6 counts. Job names are normalised before comparing: emoji codes, AMD
//! hardware prefixes (`mi355_1:`, `AMD:`), hardware tags (`(H100)`, `(mi300_1)`), `%N` and shard
//! numbers, and bracket tags (`[NIGHTLY FIRE DRILL]`) are dropped.

use crate::input::comparable;
pub use crate::model::{IssueMatch, IssueState};

/// Lowest score that makes a match.
pub const MIN_MATCH_CONFIDENCE: f64 = 0.6;
pub const EXACT_MATCH_CONFIDENCE: f64 = 0.9;
pub const JOB_MATCH_CONFIDENCE: f64 = 0.7;
/// The full id of a test's function in the body, without its parameters.
const BODY_FUNCTION_CONFIDENCE: f64 = 0.8;

pub const CI_FAILURE_LABEL: &str = "ci-failure";

/// An issue that may track CI failures.
#[derive(Debug, Clone, PartialEq)]
pub struct IssueCandidate {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub url: String,
    pub state: IssueState,
    pub labels: Vec<String>,
    /// Labelled `ci-failure` or opened by the project's members or collaborators: it may make
    /// a failure KNOWN_TRACKED. Others are only linked.
    pub tracking: bool,
}

impl IssueCandidate {
    /// Labelled `ci-failure`, or titled `[CI Failure]` without the label.
    pub fn is_ci_failure(&self) -> bool {
        self.labels
            .iter()
            .any(|l| l.eq_ignore_ascii_case(CI_FAILURE_LABEL))
            || self.title.to_lowercase().contains("[ci failure]")
    }
}

pub use crate::triage::cluster::normalize_job_name;

/// `needle` occurs in `haystack` not glued to letters or digits on either side.
fn contains_word(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    haystack.match_indices(needle).any(|(at, _)| {
        let before = haystack[..at].chars().next_back();
        let after = haystack[at + needle.len()..].chars().next();
        let glued = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !glued(before) && !glued(after)
    })
}

/// How well one issue matches one failure; `None` below any rule.
fn score(test_name: &str, job_name: &str, issue: &IssueCandidate) -> Option<(f64, &'static str)> {
    let title = issue.title.to_lowercase();
    let body = issue.body.to_lowercase();
    let mut best: Option<(f64, &'static str)> = None;
    let mut consider = |hit: bool, value: f64, why: &'static str| {
        if hit && best.is_none_or(|(b, _)| value > b) {
            best = Some((value, why));
        }
    };
    if let Some((file, function)) = test_name.split_once("::") {
        let id = comparable(test_name).to_lowercase();
        let file = comparable(file).to_lowercase();
        let base = function
            .split('[')
            .next()
            .unwrap_or(function)
            .to_lowercase();
        let base_function = base.rsplit("::").next().unwrap_or(&base).to_string();
        consider(
            title.contains(&id),
            EXACT_MATCH_CONFIDENCE,
            "test id in title",
        );
        consider(
            file.len() > 3 && contains_word(&title, &file),
            EXACT_MATCH_CONFIDENCE,
            "test file in title",
        );
        consider(
            base_function.len() > 3 && contains_word(&title, &base_function),
            EXACT_MATCH_CONFIDENCE,
            "test function in title",
        );
        consider(
            body.contains(&id),
            EXACT_MATCH_CONFIDENCE,
            "test id in body",
        );
        consider(
            body.contains(&format!("{file}::{base}")),
            BODY_FUNCTION_CONFIDENCE,
            "test function in body",
        );
    }
    let job = normalize_job_name(job_name);
    let issue_subject = normalize_job_name(&issue.title);
    // An AMD mirror's issue (`mi355_1: …`) tracks the AMD job, not the NVIDIA one it mirrors.
    let same_hardware =
        crate::triage::cluster::is_amd(job_name) == crate::triage::cluster::is_amd(&issue.title);
    if job.len() >= 4 && same_hardware {
        let is_job_level = !test_name.contains("::");
        consider(
            is_job_level && issue_subject == job,
            EXACT_MATCH_CONFIDENCE,
            "job name is the title",
        );
        consider(
            contains_word(&issue_subject, &job),
            JOB_MATCH_CONFIDENCE,
            "job name in title",
        );
    }
    best
}

/// Characters of a cause's normalised message a closed issue must hold to share its signature.
const SIGNATURE_PREFIX_CHARS: usize = 48;

/// An issue that already covers a cause, so no duplicate is filed: an open CI-failure issue
/// whose title or body names one of its test files and its exception type (add to it), else a
/// closed one whose text holds its exception type and normalised message (reopen it).
/// `message` is normalised as [`crate::triage::signature::normalise`] does.
pub fn issue_for_cause<'a>(
    test_files: &[&str],
    exception: Option<&str>,
    message: &str,
    candidates: &'a [IssueCandidate],
) -> Option<(crate::model::IssueAction, &'a IssueCandidate)> {
    use crate::model::IssueAction;
    let exception = exception.filter(|e| e.len() > 3 && *e != "Error")?;
    let files: Vec<String> = test_files
        .iter()
        .map(|f| comparable(f).to_lowercase())
        .filter(|f| f.len() > 3)
        .collect();
    let names_exception = |issue: &IssueCandidate| {
        contains_word(&issue.title, exception) || contains_word(&issue.body, exception)
    };
    let open = candidates.iter().find(|issue| {
        let text = format!("{}\n{}", issue.title, issue.body).to_lowercase();
        issue.state == IssueState::Open
            && issue.is_ci_failure()
            && names_exception(issue)
            && files.iter().any(|f| contains_word(&text, f))
    });
    if let Some(issue) = open {
        return Some((IssueAction::UseOpen, issue));
    }
    let prefix: String = message.chars().take(SIGNATURE_PREFIX_CHARS).collect();
    if prefix.trim().len() < 8 {
        return None;
    }
    candidates
        .iter()
        .filter(|issue| issue.state == IssueState::Closed && names_exception(issue))
        .find(|issue| {
            crate::triage::signature::normalise(&issue.body)
                .0
                .contains(&prefix)
        })
        .map(|issue| (IssueAction::ReopenClosed, issue))
}

/// The best issue for a failure: highest score, then open before closed, then newest.
pub fn best_match(
    test_name: &str,
    job_name: &str,
    candidates: &[IssueCandidate],
) -> Option<IssueMatch> {
    candidates
        .iter()
        .filter(|issue| issue.is_ci_failure())
        .filter_map(|issue| {
            score(test_name, job_name, issue).map(|(value, why)| (issue, value, why))
        })
        .filter(|(_, value, _)| *value >= MIN_MATCH_CONFIDENCE)
        .max_by(|a, b| {
            a.1.total_cmp(&b.1)
                .then((a.0.state == IssueState::Open).cmp(&(b.0.state == IssueState::Open)))
                .then(a.0.number.cmp(&b.0.number))
        })
        .map(|(issue, value, why)| IssueMatch {
            number: issue.number,
            url: issue.url.clone(),
            title: issue.title.clone(),
            state: issue.state,
            score: value,
            matched_on: why.to_string(),
            tracking: issue.tracking,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The real titles in the shared data (`vllm_ci_failure_issue_titles.tsv`), open, labelled.
    fn real_issues() -> Vec<IssueCandidate> {
        include_str!("../../wiremock-fixtures/github/vllm_ci_failure_issue_titles.tsv")
            .lines()
            .filter_map(|line| line.split_once('\t'))
            .map(|(number, title)| IssueCandidate {
                number: number
                    .trim_start_matches('#')
                    .parse()
                    .expect("issue number"),
                title: title
                    .split(" (no label")
                    .next()
                    .unwrap_or(title)
                    .split(" (dump)")
                    .next()
                    .unwrap_or(title)
                    .to_string(),
                body: String::new(),
                url: format!(
                    "https://github.com/vllm-project/vllm/issues/{}",
                    number.trim_start_matches('#')
                ),
                state: IssueState::Open,
                labels: vec![CI_FAILURE_LABEL.to_string()],
                tracking: true,
            })
            .collect()
    }

    #[test]
    fn job_names_normalise() {
        let cases = [
            ("mi355_1: Kernels MoE Test %N", "kernels moe test"),
            ("Kernels MoE Test 2", "kernels moe test"),
            (
                "[CI Failure][NIGHTLY FIRE DRILL]: Entrypoints Test",
                "entrypoints test",
            ),
            ("AMD: V1 Sample + Logits (mi300_1)", "v1 sample + logits"),
            (
                "Distributed Tests (2 GPUs)(H100)",
                "distributed tests (2 gpus)",
            ),
            (
                ":nvidia: (H200 MIG 18GB) Basic Correctness Models %N",
                "basic correctness models",
            ),
            ("[CI Failure]: [Kernels (B200)", "kernels"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize_job_name(input), expected, "{input}");
        }
    }

    /// (test name, job name, expected issue number or None). Built from the real titles.
    #[test]
    fn matches_on_real_titles() {
        let issues = real_issues();
        let cases: [(&str, &str, Option<u64>); 11] = [
            (
                "quantization/test_cpu_offload.py::test_cpu_offload_gptq",
                "Quantization Test",
                Some(18425),
            ),
            (
                "v1/engine/test_engine_core_client.py::test_kv_cache_events[True-tcp]",
                "V1 Test others",
                Some(18708),
            ),
            (
                "kernels/moe/test_block_fp8.py::test_w8a8_block_fp8_fused_moe[0-dtype0]",
                "mi355_1: Kernels MoE Test 1",
                Some(40728),
            ),
            (
                "models/language/generation/test_common.py::test_models[x]",
                "Language Models Test (Extended Generation)",
                Some(42336),
            ),
            (
                "Distributed Tests (8 GPUs)(H100)",
                "Distributed Tests (8 GPUs)(H100)",
                Some(34401),
            ),
            (
                "models/language/generation/test_common.py::test_models[y]",
                "AMD: Language Models Test (Extended Generation) (mi325_1)",
                Some(41584),
            ),
            (
                "models/multimodal/generation/test_mllama.py::test_models_distributed[m]",
                "Distributed Tests (2 GPUs)(H100)",
                Some(22559),
            ),
            (
                "tests/lora/test_qwenvl.py::test_qwen2vl_lora_beam_search",
                "LoRA Test 1",
                None,
            ),
            (
                "tests/models/test_bloom.py::test_models[bloom]",
                "Basic Models Test",
                None,
            ),
            ("Examples", "Examples", None),
            (
                "entrypoints/openai/test_chat.py::test_x",
                "Entrypoints Integration Test (API Server 2)",
                None,
            ),
        ];
        for (test, job, expected) in cases {
            let got = best_match(test, job, &issues).map(|m| m.number);
            assert_eq!(got, expected, "{test} in {job}");
        }
    }

    #[test]
    fn unlabelled_issues_need_the_title_prefix_and_closed_ones_lose_to_open() {
        let issue = |number, title: &str, state, labels: Vec<String>| IssueCandidate {
            number,
            title: title.to_string(),
            body: String::new(),
            url: format!("u{number}"),
            state,
            labels,
            tracking: true,
        };
        let candidates = vec![
            issue(1, "Examples are slow", IssueState::Open, vec![]),
            issue(2, "[CI Failure]: Examples", IssueState::Closed, vec![]),
            issue(
                3,
                "[CI Failure]: Examples",
                IssueState::Open,
                vec![CI_FAILURE_LABEL.into()],
            ),
        ];
        assert_eq!(
            best_match("Examples", "Examples", &candidates).map(|m| m.number),
            Some(3)
        );
        assert_eq!(
            best_match("Examples", "Examples", &candidates[..2]).map(|m| (m.number, m.state)),
            Some((2, IssueState::Closed))
        );
        assert_eq!(best_match("Examples", "Examples", &candidates[..1]), None);
    }

    #[test]
    fn a_cause_already_covered_is_named_instead_of_drafted() {
        use crate::model::IssueAction;
        let issue = |number, state, title: &str, body: &str| IssueCandidate {
            number,
            title: title.into(),
            body: body.into(),
            url: format!("https://github.com/vllm-project/vllm/issues/{number}"),
            state,
            labels: vec![CI_FAILURE_LABEL.to_string()],
            tracking: true,
        };
        let candidates = [
            issue(41295, IssueState::Open, "[CI Failure]: mi355_1: Quantization", "FAILED quantization/test_cutlass_w4a16.py::test_machete_kernel_selected[fp16-gptq-g128] - ValueError: machete does not support"),
            issue(40001, IssueState::Closed, "[CI Failure]: V1 Sample + Logits", "E   RuntimeError: probability tensor contains either `inf`, `nan` or element < 0\nfixed by #39990"),
        ];
        let found = issue_for_cause(
            &["quantization/test_cutlass_w4a16.py"],
            Some("ValueError"),
            "machete does not support the quant config <Q>",
            &candidates,
        );
        assert_eq!(
            found.map(|(a, i)| (a, i.number)),
            Some((IssueAction::UseOpen, 41295))
        );
        // Another exception in the same file is not that issue.
        assert!(issue_for_cause(
            &["quantization/test_cutlass_w4a16.py"],
            Some("KeyError"),
            "<Q>",
            &candidates
        )
        .is_none());
        let (message, _) = crate::triage::signature::normalise(
            "probability tensor contains either `inf`, `nan` or element < 0",
        );
        let found = issue_for_cause(
            &["v1/sample/test_sampler.py"],
            Some("RuntimeError"),
            &message,
            &candidates,
        );
        assert_eq!(
            found.map(|(a, i)| (a, i.number)),
            Some((IssueAction::ReopenClosed, 40001))
        );
    }
}
