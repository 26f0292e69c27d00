//! A failure's signature: what makes two failures one cause.
//!
//! A failure's signature is its exception type, its message normalised (numbers, hex ids,
//! addresses, sizes, quoted values other than Python names, pytest parameters and paths under
//! site-packages replaced)
//! and the innermost frame under `vllm/` its traceback shows. vLLM's wrapper errors were
//! already replaced by the root-cause line above them when the log was parsed. Job-level
//! failures are signed by their normalised error line.
//!
//! Failures with the same signature are one cause: the parametrisations and shards of one
//! test, and different tests or jobs that hit the same error. Different exception types are
//! never one cause. An assertion (the test's own check) without a `vllm/` frame, and a message
//! too generic to say anything (`RuntimeError: <NUM>`), also keep the test function (or, for a
//! job-level failure, the job's area) in the key, so unrelated tests do not merge. pytest cuts
//! long summary lines with `...`: a cut message matches the messages it is a prefix of.
//!
//! A failure whose only error line is still one of vLLM's wrappers ("Engine core
//! initialization failed. See root cause above. Failed core proc(s): {}") had its root cause
//! elsewhere (another process's log, never printed): such failures of different tests, models
//! or jobs say nothing in common, so each is signed with its whole test id (its parameters name
//! the model) or its job, and says that the root cause is not in the log.

use super::cluster::cluster_key;
use super::fingerprint;
use regex::Regex;
use std::sync::LazyLock;

/// What identifies a cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The exception's class name (last dotted part); `None` for a job-level line.
    pub exception: Option<String>,
    /// The message, normalised; for a message pytest cut, the part before `...`.
    pub message: String,
    /// The message was cut (`...`): it matches longer messages it is a prefix of.
    pub cut: bool,
    /// The innermost `vllm/` frame: `vllm/path.py in function`.
    pub frame: Option<String>,
    /// What else keeps it apart: the test function or the job's area, when the signature
    /// alone is too generic (see the module doc); the whole test id, or the job, for a
    /// wrapper whose root cause is not in the log.
    pub scope: Option<String>,
    /// The error line is a vLLM wrapper and the log shows no root cause above it.
    pub root_cause_missing: bool,
}

/// Jobs that time out or lose their agent in one build before they are one cause, the fleet:
/// vLLM's runbook and PyTorch's torch-bump bot read "many jobs timed out at once" as the
/// hosts, not as that many problems.
pub const FLEET_JOBS: usize = 3;

impl Signature {
    /// The one cause of `jobs` jobs of a build that timed out or lost their agent together.
    pub fn fleet(jobs: usize) -> Self {
        Self {
            exception: Some("Fleet".into()),
            message: format!("{jobs} jobs timed out or lost their agent in this build"),
            cut: false,
            frame: None,
            scope: None,
            root_cause_missing: false,
        }
    }
}

impl Signature {
    /// The signature as results show it.
    pub fn text(&self) -> String {
        let mut text = match &self.exception {
            Some(exception) if self.message.is_empty() => exception.clone(),
            Some(exception) => format!("{exception}: {}", self.message),
            None => format!("job: {}", self.message),
        };
        if self.cut {
            text.push_str("...");
        }
        if let Some(frame) = &self.frame {
            text.push_str(&format!(" @ {frame}"));
        }
        if let Some(scope) = &self.scope {
            text.push_str(&format!(" [in {scope}]"));
        }
        if self.root_cause_missing {
            text.push_str(" (root cause not in the log)");
        }
        text
    }

    /// Whether `self` and `other` are the same cause.
    pub fn same_cause(&self, other: &Self) -> bool {
        let messages = match (self.cut, other.cut) {
            (false, false) => self.message == other.message,
            (true, false) => other.message.starts_with(&self.message),
            (false, true) => self.message.starts_with(&other.message),
            (true, true) => {
                self.message.starts_with(&other.message) || other.message.starts_with(&self.message)
            }
        };
        messages
            && self.exception == other.exception
            && self.frame == other.frame
            && self.scope == other.scope
    }
}

/// `Type: message`, the type a (dotted) class name.
static EXCEPTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:[A-Za-z_][\w]*\.)*([A-Z][\w]*(?:Error|Exception|Exit|Interrupt|Warning|Failed|Failure|Timeout|Fault|Dead)|[A-Z][a-z]+Error|Failed)\b:?\s*(.*)$")
        .expect("valid")
});
/// A frame under `vllm/`: pytest's short form `vllm/x.py:12: in f` or Python's
/// `File ".../vllm/x.py", line 12, in f`.
static VLLM_FRAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:^|[\s/"'(])(vllm/[\w/.-]+\.py)(?::\d+:?\s*in\s+(\w+)|",\s*line\s+\d+,\s*in\s+(\w+)|:\d+)"#)
        .expect("valid")
});
static QUOTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"'([^']*)'|"([^"]*)""#).expect("valid"));
/// A quoted Python name (`'transformers.models.llama4'`, `'kimi_vl'`) names what is missing or
/// wrong and is kept; other quoted values (parameters, model ids, outputs) vary and are not.
static QUOTED_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$").expect("valid")
});
static PARAMS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[[^\]]*\]").expect("valid"));
static SITE_PACKAGES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:/[\w.+-]+)*/(?:site|dist)-packages/").expect("valid"));
/// Fewer letters than this (placeholders aside) make a message too generic to stand alone.
const GENERIC_LETTERS: usize = 12;
/// The agent's own lines say that a job failed, not why: every failed job has one.
static AGENT_VERDICT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)the command (?:exited with status|was interrupted by a signal)")
        .expect("valid")
});

/// The signature of one failure from its test id, error line and traceback excerpt.
pub fn signature(
    test_name: &str,
    job_name: &str,
    error_message: Option<&str>,
    stack_trace: Option<&str>,
) -> Signature {
    let line = error_message
        .unwrap_or("")
        .lines()
        .next()
        .unwrap_or("")
        .trim();
    let line = crate::logs::prefix::without_pytest_margins(line).trim();
    let frame = stack_trace.and_then(innermost_vllm_frame);
    let is_test = test_name.contains("::");
    let (exception, message) = match EXCEPTION.captures(line) {
        Some(caps) => (Some(caps[1].to_string()), caps[2].to_string()),
        // pytest's rewritten `assert x == y` is an AssertionError.
        None if is_test && line.starts_with("assert ") => {
            (Some("AssertionError".to_string()), line.to_string())
        }
        None if is_test => (Some("Error".to_string()), line.to_string()),
        None => (None, line.to_string()),
    };
    let (message, cut) = normalise(&message);
    let generic = letters(&message) < GENERIC_LETTERS || AGENT_VERDICT.is_match(&message);
    let assertion = exception.as_deref() == Some("AssertionError");
    let root_cause_missing = crate::logs::wording::is_wrapper(line);
    let scope = if root_cause_missing {
        Some(if is_test {
            crate::input::comparable(test_name).to_string()
        } else {
            job_name.to_string()
        })
    } else if is_test && frame.is_none() && (assertion || generic) {
        Some(test_function(test_name))
    } else if !is_test && generic {
        Some(cluster_key(job_name))
    } else {
        None
    };
    Signature {
        exception,
        message,
        cut,
        frame,
        scope,
        root_cause_missing,
    }
}

/// The message with what varies between runs replaced; whether pytest cut it.
pub fn normalise(message: &str) -> (String, bool) {
    let trimmed = message.trim();
    let (text, cut) = match trimmed.strip_suffix("...") {
        Some(before) => (before, true),
        None => (trimmed, false),
    };
    let text = SITE_PACKAGES.replace_all(text, "<SITE>/");
    let text = QUOTED.replace_all(&text, |caps: &regex::Captures<'_>| {
        let inner = caps.get(1).or(caps.get(2)).map_or("", |m| m.as_str());
        if QUOTED_NAME.is_match(inner) {
            caps[0].to_string()
        } else {
            "<Q>".to_string()
        }
    });
    let text = PARAMS.replace_all(&text, "[<P>]");
    let mut text = fingerprint(&text);
    if cut {
        // A cut may fall inside a placeholder's source: keep whole words only.
        if let Some(at) = text.rfind(' ') {
            text.truncate(at);
        }
    }
    (text.trim().to_string(), cut)
}

fn letters(message: &str) -> usize {
    let without = Regex::new(r"<[A-Z]+>")
        .map(|r| r.replace_all(message, "").into_owned())
        .unwrap_or_default();
    without.chars().filter(|c| c.is_alphabetic()).count()
}

/// `file.py::test_function` without parameters.
fn test_function(test_name: &str) -> String {
    let id = test_name.split('[').next().unwrap_or(test_name);
    crate::input::comparable(id).to_string()
}

/// The last (innermost) frame under `vllm/` in a traceback.
pub fn innermost_vllm_frame(trace: &str) -> Option<String> {
    VLLM_FRAME.captures_iter(trace).last().map(|caps| {
        let file = &caps[1];
        match caps.get(2).or(caps.get(3)) {
            Some(function) => format!("{file} in {}", function.as_str()),
            None => file.to_string(),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sig(test: &str, job: &str, error: &str, trace: &str) -> Signature {
        signature(
            test,
            job,
            Some(error),
            Some(trace).filter(|t| !t.is_empty()),
        )
    }

    /// Five wrapper-only failures of a real-size night (different models, tests and jobs)
    /// are five causes, each saying its root cause is not in its log; the parametrisations of
    /// one test with different models stay apart too.
    #[test]
    fn wrapper_only_failures_are_never_one_cause() {
        let wrapper = "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}";
        let failures = [
            (
                "models/test_initialization.py::test_can_initialize[Qwen3NextForCausalLM]",
                "Basic Models Test",
            ),
            (
                "models/test_initialization.py::test_can_initialize[MiniMaxM2ForCausalLM]",
                "Basic Models Test",
            ),
            (
                "entrypoints/openai/test_chat.py::test_chat[meta-llama/Llama-3.2-1B-Instruct]",
                "Entrypoints Test",
            ),
            (
                "v1/e2e/test_spec_decode.py::test_eagle_correctness[Qwen/Qwen3-8B]",
                "V1 e2e",
            ),
            ("Distributed Tests (4 GPUs)", "Distributed Tests (4 GPUs)"),
        ];
        let signatures: Vec<Signature> = failures
            .iter()
            .map(|(test, job)| sig(test, job, wrapper, ""))
            .collect();
        for (i, a) in signatures.iter().enumerate() {
            assert!(a.root_cause_missing, "{}", a.text());
            assert!(
                a.text().ends_with("(root cause not in the log)"),
                "{}",
                a.text()
            );
            for b in &signatures[i + 1..] {
                assert!(!a.same_cause(b), "{} ~ {}", a.text(), b.text());
            }
        }
        assert!(signatures[0].text().contains("Qwen3NextForCausalLM"));
        // The same wrapper-only failure in two shards of one job is still one cause.
        let again = sig(failures[0].0, failures[0].1, wrapper, "");
        assert!(signatures[0].same_cause(&again));
        // A real root cause is signed as usual.
        let root = sig(
            failures[0].0,
            failures[0].1,
            "ValueError: unsupported dtype",
            "",
        );
        assert!(
            !root.root_cause_missing && root.scope.is_none(),
            "{}",
            root.text()
        );
    }

    /// Real error lines from vLLM's logs and issues (`wiremock-fixtures/`, `data/`).
    #[test]
    fn signatures_of_real_excerpts() {
        let cases = [
            (
                "quantization/test_cutlass_w4a16.py::test_machete_kernel_selected[fp16-gptq-g128]",
                "ValueError: machete does not support group_size=128 with act_order on device sm_90",
                "vllm/model_executor/layers/quantization/kernels/mixed_precision/machete.py:91: in can_implement\n    raise ValueError(",
                "ValueError: machete does not support group_size=<NUM> with act_order on device sm_<NUM> @ vllm/model_executor/layers/quantization/kernels/mixed_precision/machete.py in can_implement",
            ),
            (
                "models/test_initialization.py::test_can_initialize_large_subset[Qwen3NextForCausalLM]",
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB of which 1.07 GiB is free.",
                "",
                "OutOfMemoryError: CUDA out of memory. Tried to allocate <SIZE>. GPU <NUM> has a total capacity of <SIZE> of which <SIZE> is free.",
            ),
            (
                "metrics/test_metrics.py::test_async_engine_log_metrics_regression[True-4-half-distilbert/distilgpt2]",
                "huggingface_hub.errors.HfHubHTTPError: 504 Server Error: Gateway Time-out for url: https://huggingface.co/api/models/distilbert/distilgpt2/tree/m...",
                "",
                "HfHubHTTPError: <NUM> Server Error: Gateway Time-out for url:...",
            ),
            (
                "v1/engine/test_async_llm.py::test_abort[engine_args0-Hello my name is Robert and-RequestOutputKind.DELTA]",
                "AssertionError: assert 31 == 32",
                "",
                "AssertionError: assert <NUM> == <NUM> [in v1/engine/test_async_llm.py::test_abort]",
            ),
            (
                "Elastic EP Scaling Test",
                "RuntimeError: DeepEP error: CUDA IPC handle could not be opened for peer rank 1",
                "",
                "RuntimeError: DeepEP error: CUDA IPC handle could not be opened for peer rank <NUM>",
            ),
        ];
        for (test, error, trace, expected) in cases {
            assert_eq!(
                sig(test, "Quantization", error, trace).text(),
                expected,
                "{test}"
            );
        }
    }

    #[test]
    fn parametrisations_are_one_cause_and_exception_types_never_merge() {
        let machete = |param: &str| {
            sig(
                &format!("quantization/test_cutlass_w4a16.py::test_machete_kernel_selected[{param}]"),
                "mi355_1: Quantization",
                &format!("ValueError: machete kernel not selected for '{param}': got 'MarlinLinearKernel'"),
                "vllm/model_executor/kernels/linear/mixed_precision/machete.py:88: in can_implement",
            )
        };
        let params = [
            "fp16-gptq-g128",
            "bf16-gptq-g128",
            "fp16-awq-g128",
            "fp16-channelwise",
        ];
        for param in params {
            assert!(machete(param).same_cause(&machete(params[0])), "{param}");
        }
        let module = sig(
            "models/test_transformers.py::test_models[llama]",
            "Transformers Backward Compatibility Models Test",
            "ModuleNotFoundError: No module named 'transformers.models.llama4'",
            "",
        );
        let hub = sig(
            "models/test_transformers.py::test_models[mistral]",
            "Transformers Backward Compatibility Models Test",
            "huggingface_hub.errors.HfHubHTTPError: 504 Server Error: Gateway Time-out for url: https://huggingface.co/api/models/mistralai/x",
            "",
        );
        assert!(!module.same_cause(&hub), "different exception types");
        // The same ModuleNotFoundError in another job's test is the same cause.
        let other_job = sig(
            "models/test_initialization.py::test_can_initialize[Llama4ForCausalLM]",
            "Transformers Nightly Models Test",
            "ModuleNotFoundError: No module named 'transformers.models.llama4'",
            "",
        );
        assert!(module.same_cause(&other_job));
        // Another missing module is another cause.
        let other_module = sig(
            "models/test_transformers.py::test_models[qwen]",
            "Transformers Backward Compatibility Models Test",
            "ModuleNotFoundError: No module named 'flash_attn'",
            "",
        );
        assert!(!module.same_cause(&other_module));
        // Two tests' own assertions are two causes; one test's shards are one.
        let a = sig(
            "a/test_x.py::test_a[1]",
            "J",
            "AssertionError: assert 0 == 3",
            "",
        );
        let a2 = sig(
            "a/test_x.py::test_a[2]",
            "J 2",
            "AssertionError: assert 1 == 3",
            "",
        );
        let b = sig(
            "a/test_x.py::test_b",
            "J",
            "AssertionError: assert 0 == 3",
            "",
        );
        assert!(a.same_cause(&a2));
        assert!(!a.same_cause(&b));
    }

    #[test]
    fn the_agent_exit_line_alone_does_not_join_jobs() {
        let exit = "🚨 Error: The command exited with status 1";
        let a = sig(
            "LM Eval Qwen3.5 Models (B200)",
            "LM Eval Qwen3.5 Models (B200)",
            exit,
            "",
        );
        let b = sig(
            "LM Eval Small Models (B200)",
            "LM Eval Small Models (B200)",
            exit,
            "",
        );
        assert!(!a.same_cause(&b));
        // Its shards on other hardware still do.
        let c = sig(
            "LM Eval Small Models (H100)",
            "LM Eval Small Models (H100)",
            exit,
            "",
        );
        assert!(b.same_cause(&c));
    }

    #[test]
    fn a_message_cut_by_pytest_joins_the_whole_one() {
        let whole = sig(
            "v1/attention/test_backend.py::test_b[long-param-1]",
            "J",
            "RuntimeError: HIP error: invalid device function\nHIP kernel errors might be asynchronously reported",
            "",
        );
        let cut = sig(
            "v1/attention/test_backend.py::test_b[2]",
            "J",
            "RuntimeError: HIP error: invalid device fu...",
            "",
        );
        assert!(cut.cut && whole.same_cause(&cut) && cut.same_cause(&whole));
    }

    #[test]
    fn innermost_frame_under_vllm() {
        let python = "Traceback (most recent call last):\n  File \"/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/core.py\", line 866, in run_engine_core\n  File \"/usr/local/lib/python3.12/dist-packages/vllm/v1/worker/gpu_worker.py\", line 201, in init_device\n  File \"/usr/local/lib/python3.12/dist-packages/torch/cuda/__init__.py\", line 412, in set_device\n";
        assert_eq!(
            innermost_vllm_frame(python).as_deref(),
            Some("vllm/v1/worker/gpu_worker.py in init_device")
        );
        let pytest = "vllm/model_executor/layers/fused_moe/layer.py:1120: in forward\n    return self.forward_impl(x)\n/vllm-workspace/tests/kernels/test_moe.py:88: in test_fused_moe\n";
        assert_eq!(
            innermost_vllm_frame(pytest).as_deref(),
            Some("vllm/model_executor/layers/fused_moe/layer.py in forward")
        );
        assert_eq!(
            innermost_vllm_frame("/vllm-workspace/tests/x.py:1: in f"),
            None
        );
    }
}
