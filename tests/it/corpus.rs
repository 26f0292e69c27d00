//! The real vLLM CI excerpts (`wiremock-fixtures/corpus/`, copied from issues and PRs), wrapped
//! in Buildkite's raw log format, each with the result an experienced watcher reads from it:
//! test ids, error line, category and infrastructure kind. Truncated excerpts expect what they
//! actually show (a section cut before its `E` line has no error line).

use ciwatch_mcp::fixtures::to_raw_format;
use ciwatch_mcp::logs::{analyze_log, clean_log};
use ciwatch_mcp::model::{Category, InfraKind};
use ciwatch_mcp::triage::{classify, FailureText, JobSignals};

struct Expected {
    name: &'static str,
    text: String,
    test_ids: &'static [&'static str],
    /// Error line of the first failure (or of the job when no test is named).
    error: Option<&'static str>,
    category: Category,
    infra_kind: Option<InfraKind>,
}

#[derive(Debug, PartialEq)]
struct Actual {
    test_ids: Vec<String>,
    error: Option<String>,
    category: Category,
    infra_kind: Option<InfraKind>,
}

fn analyse(text: &str) -> Actual {
    let analysis = analyze_log(&clean_log(&to_raw_format(text)));
    let job = JobSignals {
        exit_status: Some(1),
        ..Default::default()
    };
    let (error, verdict) = match (analysis.tests.first(), &analysis.job_level) {
        (Some(test), _) => (
            test.error_message.clone(),
            classify(
                FailureText {
                    error_message: test.error_message.as_deref(),
                    excerpt: test.excerpt.as_deref(),
                    output: &test.output_tail,
                },
                job,
            ),
        ),
        (None, Some(level)) => (
            level.error_message.clone(),
            classify(
                FailureText {
                    error_message: level.error_message.as_deref(),
                    excerpt: Some(&level.excerpt),
                    output: &[],
                },
                job,
            ),
        ),
        (None, None) => (None, classify(FailureText::default(), job)),
    };
    Actual {
        test_ids: analysis.tests.iter().map(|t| t.node_id.clone()).collect(),
        error,
        category: verdict.category,
        infra_kind: verdict.infra_kind,
    }
}

fn corpus_file(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/wiremock-fixtures/corpus/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("corpus file")
}

/// The fenced block under the heading that names `issue` in the summary-blocks file.
fn summary_block(issue: &str) -> String {
    let text = corpus_file("vllm_short_test_summary_blocks.md");
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with(issue))
        .expect("heading");
    let start = section.find("```").expect("fence");
    let body = &section[start..];
    let body = &body[body.find('\n').expect("fence line") + 1..];
    body[..body.find("```").expect("closing fence")].to_string()
}

fn cases() -> Vec<Expected> {
    use Category::*;
    let file = |name: &'static str, test_ids, error, category, infra_kind| Expected {
        name,
        text: corpus_file(name),
        test_ids,
        error,
        category,
        infra_kind,
    };
    let block = |name: &'static str, test_ids, error, category| Expected {
        name,
        text: summary_block(name),
        test_ids,
        error,
        category,
        infra_kind: None,
    };
    vec![
        // Test source only, cut before any result: nothing to report.
        file("pytorch_issue_170488_vllm_distributed_4gpus_eagle_dp.txt", &[], None, NeedsHumanTriage, None),
        // Verbose FAILED line and the start of its section, cut before the E lines.
        file("pytorch_issue_170568_vllm_compile_failures_section.txt", &["compile/fullgraph/test_multimodal_compile.py::test_qwen2_5_vl_compilation"], None, NeedsHumanTriage, None),
        // A warnings-summary entry (UserWarning), not a failure.
        file("pytorch_issue_175928_vllm_logprobs_userwarning.txt", &[], None, NeedsHumanTriage, None),
        // A FAILURES section whose summary line is outside the excerpt: named by its head line.
        file("vllm_issue_16054_test_abort_failures_section.txt", &["test_abort[engine_args0-Hello my name is Robert and-RequestOutputKind.DELTA]"], None, NeedsHumanTriage, None),
        // A traceback pasted with web-UI gutters, cut before its exception line.
        file("vllm_issue_22559_distributed_2gpus_mllama_traceback.txt", &[], None, NeedsHumanTriage, None),
        // Shell xtrace before a failure that is not in the excerpt.
        file("vllm_issue_30889_shell_xtrace_before_failure.txt", &[], None, NeedsHumanTriage, None),
        // The CUDA coredump hook reporting an illegal address.
        file(
            "vllm_issue_39522_cuda_coredump_illegal_address.txt",
            &[],
            Some("coredump: Detected an exception of type CUDBG_EXCEPTION_WARP_ILLEGAL_ADDRESS (14)"),
            InfraSuspected,
            Some(InfraKind::GpuFault),
        ),
        // A wide-terminal FAILURES header, parametrized id with slashes and dashes.
        file("vllm_issue_43086_kernels_b200_failures_section.txt", &["test_nvfp4[flashinfer_trtllm-True-nvidia/Llama-3.1-8B-Instruct-NVFP4]"], None, NeedsHumanTriage, None),
        // Hub 504s in the test's own output, then a lone FAILED.
        file(
            "vllm_pr_11966_metrics_hf_504_then_failed.txt",
            &["metrics/test_metrics.py::test_async_engine_log_metrics_regression[True-4-half-distilbert/distilgpt2]"],
            None,
            InfraSuspected,
            Some(InfraKind::NetworkOrHub),
        ),
        block(
            "vllm-project/vllm#35235",
            &["models/multimodal/generation/test_voxtral_realtime.py::test_voxtral_realtime_forward", "models/multimodal/generation/test_voxtral_realtime.py::test_voxtral_realtime_generator"],
            None,
            NeedsHumanTriage,
        ),
        block(
            "vllm-project/vllm#34703",
            &["tests/kernels/moe/test_flashinfer.py::test_flashinfer_blockscale_fp8_none_expert_group"],
            Some("RuntimeError: Check failed: (args->n_group != 0) is false: n_group should not be zero for DeepSeekV3 routing"),
            NewRegression,
        ),
        block(
            "vllm-project/vllm#18425",
            &["quantization/test_cpu_offload.py::test_cpu_offload_gptq", "quantization/test_cpu_offload.py::test_cpu_offload_awq", "quantization/test_cpu_offload.py::test_cpu_offload_compressed_tensors"],
            Some("RuntimeError: Server exited unexpectedly."),
            NewRegression,
        ),
        block(
            "vllm-project/vllm#18708",
            &["v1/engine/test_engine_core_client.py::test_kv_cache_events[True-tcp]"],
            Some("AssertionError: No message received"),
            NewRegression,
        ),
        block(
            "vllm-project/vllm#41584",
            &[
                "models/language/generation/test_common.py::test_models[True-False-5-32-naver-hyperclovax/HyperCLOVAX-SEED-Think-14B]",
                "models/language/generation/test_common.py::test_models[False-False-5-32-naver-hyperclovax/HyperCLOVAX-SEED-Think-14B]",
            ],
            None,
            NeedsHumanTriage,
        ),
        // Cut mid-line: the last line ("FAILED ke") names no test.
        block(
            "vllm-project/vllm#35126",
            &[
                "kernels/moe/test_block_fp8.py::test_w8a8_block_fp8_fused_moe[0-dtype0-block_size0-1-2-128-4608-7168]",
                "kernels/moe/test_block_fp8.py::test_w8a8_block_fp8_fused_moe[0-dtype0-block_size0-1-2-2048-4608-7168]",
                "kernels/moe/test_block_fp8.py::test_w8a8_block_fp8_fused_moe[0-dtype0-block_size0-1-2-8192-1024-7168]",
                "kernels/moe/test_block_fp8.py::test_w8a8_block_fp8_fused_moe[0-dtype0-block_size0-1-8-2048-4608-7168]",
                "kernels/moe/test_block_fp8.py::test_w8a8_block_fp8_fused_moe[0-dtype0-block_size0-1-8-8192-4608-7168]",
                "kernels/moe/test_block_fp8.py::test_w8a8_block_fp8_fused_moe[0-dtype0-block_size0-1-16-8192-4608-7168]",
                "kernels/moe/test_block_fp8.py::test_w8a8_block_fp8_fused_moe[0-dtype0-block_size0-2-2-83-4608-7168]",
                "kernels/moe/test_block_fp8.py::test_w8a8_block_fp8_fused_moe[0-dtype0-block_size0-2-8-83-4608-7168]",
                "kernels/moe/test_block_fp8.py::test_w8a8_block_fp8_fused_moe[0-dtype0-block_size0-2-8-128-4608-7168]",
            ],
            None,
            NeedsHumanTriage,
        ),
    ]
}

#[test]
fn real_excerpts_give_the_expected_results() {
    let mut mismatches = Vec::new();
    let (mut ids_expected, mut ids_found, mut ids_correct) = (0usize, 0usize, 0usize);
    let (mut errors_expected, mut errors_found, mut errors_correct) = (0usize, 0usize, 0usize);
    for case in cases() {
        let actual = analyse(&case.text);
        ids_expected += case.test_ids.len();
        ids_found += actual.test_ids.len();
        ids_correct += actual
            .test_ids
            .iter()
            .filter(|id| case.test_ids.contains(&id.as_str()))
            .count();
        errors_expected += usize::from(case.error.is_some());
        errors_found += usize::from(actual.error.is_some());
        errors_correct +=
            usize::from(case.error.is_some() && actual.error.as_deref() == case.error);
        let expected = Actual {
            test_ids: case.test_ids.iter().map(|s| s.to_string()).collect(),
            error: case.error.map(str::to_string),
            category: case.category,
            infra_kind: case.infra_kind,
        };
        if actual != expected {
            mismatches.push(format!(
                "{}\n  expected {expected:?}\n  actual   {actual:?}",
                case.name
            ));
        }
    }
    eprintln!(
        "corpus: test ids precision {ids_correct}/{ids_found} recall {ids_correct}/{ids_expected}; error lines precision {errors_correct}/{errors_found} recall {errors_correct}/{errors_expected}"
    );
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}
