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

/// The fenced block under the heading that starts with `heading` in the markdown `file`.
fn fenced_block(file: &str, heading: &str) -> String {
    let text = corpus_file(file);
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with(heading))
        .unwrap_or_else(|| panic!("heading {heading} in {file}"));
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
        text: fenced_block("vllm_short_test_summary_blocks.md", name),
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
        // Hub 504s in the test's own output, then a lone FAILED: the test's error is the error
        // line its output printed.
        file(
            "vllm_pr_11966_metrics_hf_504_then_failed.txt",
            &["metrics/test_metrics.py::test_async_engine_log_metrics_regression[True-4-half-distilbert/distilgpt2]"],
            Some("Error retrieving file list: 504 Server Error: Gateway Time-out"),
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
    .into_iter()
    .chain(job_level_cases())
    .collect()
}

/// The excerpts of `job_level_excerpts.md` (see its notes for provenance): jobs that failed
/// with no pytest summary, or whose summary line names the cause only partly. The error is a
/// part of the line that must be chosen: never the agent's exit line when the log says more.
fn job_level_cases() -> Vec<Expected> {
    use Category::{InfraSuspected as Infra, NewRegression as Code};
    use InfraKind::*;
    let case = |name: &'static str, test_ids, error: &'static str, category, infra_kind| Expected {
        name,
        text: fenced_block("job_level_excerpts.md", name),
        test_ids,
        error: Some(error),
        category,
        infra_kind,
    };
    vec![
        case("llm-d/llm-d-router#1527", &[], "Error retrieving file list. Returning an empty list.", Infra, Some(NetworkOrHub)),
        case("vllm-project/guidellm#778", &[], "HTTP Error 429 thrown while requesting HEAD https://huggingface.co/gpt2", Infra, Some(NetworkOrHub)),
        case("vllm-project/vllm#48830 hub-504-head", &[], "HTTP Error 504 thrown while requesting HEAD", Infra, Some(NetworkOrHub)),
        case("vllm-project/vllm#48830 hub-504-file", &[], "Error retrieving file list: Server error '504 Gateway Timeout'", Infra, Some(NetworkOrHub)),
        case("huggingface/smolagents#599", &["tests/test_models.py::ModelTests::test_get_hfapi_message_no_tool"], "huggingface_hub.errors.HfHubHTTPError: 429 Client Error: Too Many Requests", Infra, Some(NetworkOrHub)),
        case("amd/gaia#1672", &[], "lemonade_server.cli.PullError: Failed to install Qwen3-0.6B-GGUF.", Infra, Some(NetworkOrHub)),
        case("ggml-org/llama.cpp#18108", &[], "error from HF API, response code: 429", Infra, Some(NetworkOrHub)),
        case("pytorch/pytorch#170150", &[], "We had to rate limit you, you hit the quota of 6000 api requests per 5 minutes period.", Infra, Some(NetworkOrHub)),
        case("pytorch/torchchat#174", &[], "Segmentation fault      (core dumped) python generate.py", Code, None),
        case("vllm-project/vllm#3053", &[], "Fatal Python error: Segmentation fault", Code, None),
        case("vllm-project/vllm#1974", &[], "SyntaxError: invalid syntax", Code, None),
        case("vllm-project/vllm#16582", &[], "ImportError while loading conftest '/workspace/dev/vipshop/vllm/tests/conftest.py'.", Code, None),
        case("vllm-project/vllm-omni#5338", &["tests/entrypoints/openai_api/test_qwen3_omni_realtime_websocket.py::TestQwen3OmniRealtimeWebSocket::test_streaming_audio_input_pcm_output_async_chunk[async_chunk]"], "RuntimeError: Stage 0 replica 0 exited with code 1 before API server became ready.", Code, None),
        case("pytorch/pytorch#175666", &[], "ValueError: Free memory on device cuda:1 (19.77/22.05 GiB) on startup is less than desired GPU memory utilization", Infra, Some(HostNotReady)),
        case("vllm-project/vllm#33297 gpu-not-free-engine", &[], "ValueError: Free memory on device cuda:0 (1.53/22.05 GiB) on startup", Infra, Some(HostNotReady)),
        case("vllm-project/vllm#33297 gpu-not-free-caret", &[], "ValueError: Free memory on device cuda:0 (1.54/22.05 GiB) on startup", Infra, Some(HostNotReady)),
        case("addnab/docker-run-action#56", &[], "ERROR: failed to solve: docker:20.10: pulling from host registry-1.docker.io failed with status code [manifests 20.10]: 429 Too Many Requests", Infra, Some(NetworkOrHub)),
        case("kubernetes-sigs/headlamp#2417", &[], "toomanyrequests: You have reached your pull rate limit", Infra, Some(NetworkOrHub)),
        case("openshift/release#17936", &[], "toomanyrequests: You have reached your pull rate limit", Infra, Some(NetworkOrHub)),
        case("docker/setup-buildx-action#510", &[], "toomanyrequests: too many failed login attempts", Infra, Some(NetworkOrHub)),
        case("tatsu-lab/stanford_alpaca#207", &[], "NET/IB : Got completion from peer 11.214.147.122<39138> with error 12", Infra, Some(NetworkOrHub)),
        case("NVIDIA/nccl#2076", &[], "DistBackendError: NCCL error in: /pytorch/torch/csrc/distributed/c10d/NCCLUtils.hpp:268, remote process exited or there was a network error", Infra, Some(NetworkOrHub)),
        case("NVIDIA/nccl-tests#252", &[], "NET/IB : Got completion from peer 10.0.35.1<49189> with error 4", Infra, Some(NetworkOrHub)),
        case("NVIDIA/nccl#1405", &[], "NET/IB : Got completion from peer 10.216.210.236<54862> with status=12", Infra, Some(NetworkOrHub)),
        case("ai-dynamo/nixl#2123", &[], "Failed to build `vllm @ file:///home/svc-nixl/vllm`", Code, None),
        case("MetaX-MACA/vLLM-metax#174", &[], "Failed to build `vllm-metax @ file:///workspace/vllm-metax`", Code, None),
        case("vllm-project/vllm#6919", &[], "pip._internal.exceptions.InstallationSubprocessError: Getting requirements to build wheel exited with 1", Infra, Some(ImageBuild)),
        case("vllm-project/vllm-metal#413", &[], "Failed to build `vllm @ file:///Users/oli/vllm-0.22.0`", Code, None),
        case("vllm-project/vllm#33069", &[], "Failed to build `vllm @ file:///home/ubuntu/vllm`", Code, None),
        case("ModelTC/LightX2V#421", &[], "subprocess.CalledProcessError: Command '['cmake', '--build', '.', '-j=15',", Infra, Some(HostOom)),
        case("NVIDIA/nvidia-docker#1252", &[], "nvidia-container-cli: initialization error: driver error", Infra, Some(HostNotReady)),
        case("dusty-nv/jetson-containers#102", &[], "nvidia-container-cli: initialization error: driver error", Infra, Some(HostNotReady)),
        case("NVIDIA/nvidia-container-toolkit#131", &[], "nvidia-container-cli: initialization error: cannot open shared object file", Infra, Some(HostNotReady)),
        case("ray-project/ray#29767", &[], "# Received cancellation signal, interrupting", Infra, Some(Cancelled)),
        case("MinaProtocol/mina#11307", &[], "# Received cancellation signal, interrupting", Infra, Some(Cancelled)),
        case("vllm-project/vllm-omni#6569", &[], "KeyError: '/loky-13757-1xlrowil'", Infra, Some(Cancelled)),
        case("element-hq/element-web#9218", &[], "Exited with status -1 (agent lost).", Infra, Some(AgentLost)),
        case("IBM/text-generation-inference#11", &[], "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device", Infra, Some(Disk)),
        case("apache/mxnet#10960", &[], "OSError: [Errno 28] No space left on device", Infra, Some(Disk)),
        case("buildkite/agent#1607", &[], "fatal: internal error in revision walk", Infra, Some(HostNotReady)),
        case("mozilla/translations#1167", &[], "Failed to initialize NVML: Driver/library version mismatch", Infra, Some(GpuFault)),
        case("vllm-project/vllm#25716", &[], "No devices were found", Infra, Some(GpuFault)),
        case("Lightning-AI/pytorch-lightning#10128", &[], "nvidia-container-cli: initialization error: nvml error: driver/library version mismatch", Infra, Some(HostNotReady)),
        case("Avarok-Cybersecurity/dgx-vllm#16", &[], "urllib3.exceptions.MaxRetryError: HTTPSConnectionPool(host='huggingface.co', port=443): Max retries exceeded", Infra, Some(NetworkOrHub)),
        case("AUTOMATIC1111/stable-diffusion-webui#17165", &[], "Max retries exceeded with url: /openai/clip-vit-large-patch14/resolve/main/merges.txt", Infra, Some(NetworkOrHub)),
        case("vllm-project/vllm-omni#5390", &["tests/e2e/accuracy/test_hunyuan_image3_pixel_accuracy.py::test_hunyuan_image3_pixel_accuracy_online", "tests/e2e/accuracy/test_hunyuan_image3_pixel_accuracy.py::test_hunyuan_image3_pixel_accuracy_offline"], "RuntimeError: Server processes exited with code 1 before becoming ready.", Code, None),
        case("vllm-project/vllm-omni#6188", &["tests/examples/offline_inference/test_image_task_prompts.py"], "ImportError while importing test module '/workspace/vllm-omni/tests/examples/offline_inference/test_image_task_prompts.py'.", Code, None),
        case("sunpy/ndcube#797", &[], "ModuleNotFoundError: No module named 'mpl_animators'", Code, None),
        case("triton-inference-server/triton_distributed#306", &[], "ModuleNotFoundError: No module named 'vllm.monolith'", Code, None),
        case("bluesky/ophyd#800", &[], "Segmentation fault      (core dumped) coverage run", Code, None),
        case("OpenNeuroOrg/openneuro#3142", &["tests/test_upload.py::test_move_files_nesting"], "Fatal Python error: Segmentation fault", Code, None),
        case("vllm-project/vllm#24901", &[], "Fatal Python error: Segmentation fault", Code, None),
        case("Oneflow-Inc/oneflow#9178", &[], "Aborted (core dumped)", Code, None),
        case("cornell-zhang/allo#172", &[], "Aborted (core dumped)", Code, None),
        case("SciKit-Surgery/scikit-surgeryvtk#202", &[], "Fatal Python error: Aborted", Code, None),
        case("ROCm/legacy-rocm-build#5238", &[], "Memory access fault by GPU node-2", Infra, Some(GpuFault)),
        case("vllm-project/vllm#4121", &[], "torch.cuda.OutOfMemoryError: HIP out of memory. Tried to allocate 4.70 GiB.", Code, None),
        case("tenstorrent/tt-metal#38685", &[], "Failed: Timeout (>600.0s) from pytest-timeout.", Infra, Some(Hang)),
        case("Lightning-Universe/lightning-bolts#409", &[], "Killed                  coverage run", Infra, Some(HostOom)),
        case("Azure/azureml-assets#149", &[], "Killed                  python -m pytest tests/", Infra, Some(HostOom)),
        case("huggingface/optimum-intel#1261", &[
            "tests/neural_compressor/test_optimization.py::QuantizationTest::test_static_quantization_2_text_generation",
            "tests/neural_compressor/test_optimization.py::TrainingOptimizationTest::test_aware_training_quantization_0_text_classification",
            "tests/neural_compressor/test_optimization.py::TrainingOptimizationTest::test_aware_training_quantization_pruning_0_text_classification",
        ], "OSError: We couldn't connect to 'https://huggingface.co/' to load this file", Infra, Some(NetworkOrHub)),
        case("quic/efficient-transformers#1086", &[
            "tests/unit_test/models/test_model_quickcheck.py::test_causal_lm_cpu_runtime_parity_with_api_runner[mpt]",
            "tests/unit_test/models/test_model_quickcheck.py::test_causal_lm_cpu_runtime_parity_with_api_runner[olmo2]",
            "tests/unit_test/models/test_model_quickcheck.py::test_causal_export_prefix_changes_hash_dir",
        ], "OSError: We couldn't connect to 'https://huggingface.co' to load the files", Infra, Some(NetworkOrHub)),
        case("vllm-project/vllm#34969", &[
            "evals/gsm8k/test_gsm8k_correctness.py::test_gsm8k_correctness[DeepSeek-V2-Lite-Instruct-FP8]",
            "evals/gsm8k/test_gsm8k_correctness.py::test_gsm8k_correctness[Qwen3-Next-80B-A3B-NVFP4-EP2]",
        ], "AssertionError: GSM8K metric too low: 0.0114 < 0.7200 - 0.0800 = 0.6400", Code, None),
        // A section cut before its E line: named by its head, nothing says why.
        Expected {
            name: "vllm-project/vllm-omni#6887",
            text: fenced_block("job_level_excerpts.md", "vllm-project/vllm-omni#6887"),
            test_ids: &["test_minicpmo_4_5_daily_omni_accuracy_bench[omni_server0]"],
            error: None,
            category: Category::NeedsHumanTriage,
            infra_kind: None,
        },
        case("vllm-project/vllm#7896", &[], "RuntimeError: NCCL error: unhandled cuda error (run with NCCL_DEBUG=INFO for details)", Code, None),
        case("vllm-project/vllm#6732", &[], "torch.distributed.DistBackendError: NCCL error in: ../torch/csrc/distributed/c10d/N", Code, None),
        case("cvat-ai/cvat#5234", &[], "E: Failed to fetch http://archive.ubuntu.com/ubuntu/pool/main/libp/libpipeline/libpipeline1_1.5.2-2build1_amd64.deb  502  Bad Gateway", Infra, Some(NetworkOrHub)),
        case("infiniflow/ragflow#3965", &[], "E: Package 'ca-certificates' has no installation candidate", Infra, Some(NetworkOrHub)),
        case("parca-dev/parca-agent#593", &[], "E: Unable to locate package lld", Infra, Some(NetworkOrHub)),
        case("vllm-project/vllm#18417", &[], "RuntimeError: CUDA error: an ill", Code, None),
        case("vllm-project/vllm#20170", &[], "Process group watchdog thread terminated with exception: CUDA error: an illegal memory access was encountered", Infra, Some(GpuFault)),
        // A traceback cut before its exception: its frames are no error lines, so nothing says why.
        Expected {
            name: "vllm-project/vllm#41323",
            text: fenced_block("job_level_excerpts.md", "vllm-project/vllm#41323"),
            test_ids: &[],
            error: None,
            category: Category::NeedsHumanTriage,
            infra_kind: None,
        },
        // The Intel GPU job of the bundled nightly 65099 (`src/fixtures.rs`: its failure is a
        // real vLLM CI excerpt): faulthandler's dump after pytest's timeout.
        Expected {
            name: "65099 Intel GPU Test (fixtures/logs)",
            text: std::fs::read_to_string(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/wiremock-fixtures/logs/019e068f-867e-49c8-b77a-bec0ddb02e21.log"
            ))
            .expect("fixture log"),
            test_ids: &[],
            error: Some("test_engine_core_concurrent_batches Timeout (0:25:00)!"),
            category: Infra,
            infra_kind: Some(Hang),
        },
    ]
}

/// Every rule of the infrastructure table is proved by at least one real excerpt: the first rule
/// that matches an excerpt expected to be infrastructure, counted per rule.
#[test]
fn every_infrastructure_rule_has_a_real_excerpt() {
    use ciwatch_mcp::triage::rules::{find_infra, INFRA_RULES};
    let mut proved = vec![Vec::new(); INFRA_RULES.len()];
    for case in cases().iter().filter(|c| c.infra_kind.is_some()) {
        let cleaned = clean_log(&to_raw_format(&case.text));
        if let Some((rule, _)) = find_infra(cleaned.lines()) {
            let index = INFRA_RULES
                .iter()
                .position(|r| std::ptr::eq(r, rule))
                .expect("a rule of the table");
            assert_eq!(Some(rule.kind), case.infra_kind, "{}", case.name);
            proved[index].push(case.name);
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

/// Recall and precision of test ids, the share of excerpts whose error line is right, and the
/// share whose kind (category and infrastructure kind) is right, with what went wrong.
#[derive(Debug, Default)]
struct Figures {
    ids_expected: usize,
    ids_found: usize,
    ids_correct: usize,
    errors_expected: usize,
    errors_found: usize,
    errors_correct: usize,
    kinds: usize,
    kinds_correct: usize,
    mismatches: Vec<String>,
}

impl Figures {
    fn add(&mut self, case: &Expected, actual: &Actual) {
        self.ids_expected += case.test_ids.len();
        self.ids_found += actual.test_ids.len();
        self.ids_correct += actual
            .test_ids
            .iter()
            .filter(|id| case.test_ids.contains(&id.as_str()))
            .count();
        let error_right = match (case.error, actual.error.as_deref()) {
            (Some(expected), Some(found)) => found.contains(expected),
            (None, found) => found.is_none(),
            (Some(_), None) => false,
        };
        self.errors_expected += usize::from(case.error.is_some());
        self.errors_found += usize::from(actual.error.is_some());
        self.errors_correct += usize::from(case.error.is_some() && error_right);
        let kind_right = (actual.category, actual.infra_kind) == (case.category, case.infra_kind);
        self.kinds += 1;
        self.kinds_correct += usize::from(kind_right);
        let ids_right = actual.test_ids.len() == case.test_ids.len()
            && actual
                .test_ids
                .iter()
                .all(|id| case.test_ids.contains(&id.as_str()));
        if !(error_right && kind_right && ids_right) {
            self.mismatches.push(format!(
                "{}\n  expected ids {:?} error {:?} {:?} {:?}\n  actual   {actual:?}",
                case.name, case.test_ids, case.error, case.category, case.infra_kind
            ));
        }
    }

    fn ratio(part: usize, whole: usize) -> f64 {
        if whole == 0 {
            1.0
        } else {
            part as f64 / whole as f64
        }
    }
}

/// `cargo test --test it corpus -- --nocapture` prints the figures.
#[test]
fn real_excerpts_give_the_expected_results() {
    let cases = cases();
    assert!(
        cases.len() >= 55,
        "the corpus holds {} excerpts",
        cases.len()
    );
    let mut figures = Figures::default();
    for case in &cases {
        figures.add(case, &analyse(&case.text));
    }
    let f = &figures;
    let id_recall = Figures::ratio(f.ids_correct, f.ids_expected);
    let id_precision = Figures::ratio(f.ids_correct, f.ids_found);
    let errors = Figures::ratio(f.errors_correct, f.errors_expected);
    let kinds = Figures::ratio(f.kinds_correct, f.kinds);
    eprintln!(
        "corpus of {} real excerpts: test ids recall {}/{} precision {}/{}; error lines right {}/{} ({} given); kinds right {}/{}",
        cases.len(), f.ids_correct, f.ids_expected, f.ids_correct, f.ids_found,
        f.errors_correct, f.errors_expected, f.errors_found, f.kinds_correct, f.kinds
    );
    assert!(
        id_recall >= 0.98 && id_precision >= 0.98 && errors >= 0.95 && kinds >= 0.9,
        "ids recall {id_recall:.3} precision {id_precision:.3}, errors {errors:.3}, kinds {kinds:.3}:\n{}",
        f.mismatches.join("\n")
    );
    assert!(f.mismatches.is_empty(), "{}", f.mismatches.join("\n"));
}
