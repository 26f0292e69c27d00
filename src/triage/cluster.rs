//! Job names reduced to the test area they run, and the hardware and platform they run on.
//!
//! vLLM runs one test area on several machines and shards: `Kernels (B200)`, `AMD: Kernels
//! (mi300_1)`, `mi355_1: Kernels`, `Language Models Tests (Hybrid) 2`, `Distributed Tests (2
//! GPUs)(H100)`. The cluster key drops what tells the runs apart (emoji codes, bracket tags,
//! hardware prefixes and tags, GPU counts, shard numbers) so the same area clusters across
//! hardware and across the CUDA and AMD pipelines; issue matching uses the same normalisation,
//! keeping GPU counts.

use crate::model::Platform;
use regex::Regex;
use std::sync::LazyLock;

static EMOJI: LazyLock<Regex> = LazyLock::new(|| Regex::new(r":[a-z0-9_+-]+:").expect("valid"));
static BRACKET_TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[[^\]]*\]").expect("valid"));
static HARDWARE_PREFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:[a-z]+\d+_\d+|amd)\s*:\s*").expect("valid"));
static HARDWARE_TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\([^)]*\b(?:[abhl]\d{1,3}s?|gh200|gb200|mi\d{3}(?:_\d+)?)\b[^)]*\)")
        .expect("valid")
});
static GPU_COUNT_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\(\s*\d+\s*(?:x\s*)?gpus?\s*\)").expect("valid"));
static AMD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(?:\[[^\]]*\]\s*:?\s*)*(?:amd\b|mi\d{3})|\(mi\d{3}").expect("valid")
});
static SHARD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:\s%n|\s\d{1,2})$").expect("valid"));
/// Hardware named in a job name: an AMD prefix (`mi355_1:`), a tag (`(H100)`, `(mi300_1)`), a
/// GPU count (`(2 GPUs)`).
static HARDWARE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(mi\d{3})(?:_\d+)?\b|\b([abhl]\d{2,3}s?|gh200|gb200)\b|\((\d+)\s*(?:x\s*)?gpus?\)",
    )
    .expect("valid")
});

/// A job name or issue title reduced to what names the test area (lowercase); GPU counts are
/// kept, as an issue about the 4-GPU job is not about the 2-GPU one.
pub fn normalize_job_name(name: &str) -> String {
    let lower = name.to_lowercase();
    let text = EMOJI.replace_all(&lower, " ");
    let text = BRACKET_TAG.replace_all(&text, " ");
    let text = text.replace(['[', ']'], " ");
    let mut text = text
        .trim()
        .trim_start_matches([':', '-', ' '])
        .trim()
        .to_string();
    while let Some(stripped) = HARDWARE_PREFIX
        .find(&text)
        .map(|m| text[m.end()..].to_string())
    {
        text = stripped;
    }
    let text = HARDWARE_TAG.replace_all(&text, " ");
    let mut text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    while let Some(m) = SHARD.find(&text) {
        text.truncate(m.start());
    }
    text.trim_matches([' ', '-', ':']).to_string()
}

/// The test area a job runs, the same for its shards, its hardware and its AMD mirror:
/// `Kernels (B200)` and `AMD: Kernels (mi300_1)` are both `kernels`.
pub fn cluster_key(job_name: &str) -> String {
    let normalized = normalize_job_name(job_name);
    let mut text = GPU_COUNT_TAG.replace_all(&normalized, " ").into_owned();
    text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    while let Some(m) = SHARD.find(&text) {
        text.truncate(m.start());
    }
    text.trim_matches([' ', '-', ':']).to_string()
}

/// Whether a job name (or issue title) is one of the AMD mirror's.
pub fn is_amd(name: &str) -> bool {
    AMD.is_match(name)
}

/// The hardware a job name names: `B200`, `H100`, `mi300`, `2 GPUs`.
pub fn hardware(job_name: &str) -> Vec<String> {
    let mut found = Vec::new();
    for caps in HARDWARE.captures_iter(job_name) {
        let named = match (caps.get(1), caps.get(2), caps.get(3)) {
            (Some(amd), _, _) => amd.as_str().to_lowercase(),
            (_, Some(nvidia), _) => nvidia.as_str().to_uppercase(),
            (_, _, Some(count)) if count.as_str() == "1" => "1 GPU".to_string(),
            (_, _, Some(count)) => format!("{} GPUs", count.as_str()),
            _ => continue,
        };
        if !found.contains(&named) {
            found.push(named);
        }
    }
    found
}

/// The platform a job runs on, from its name (and the pipeline: `amd-ci` is ROCm).
pub fn platform(job_name: &str, pipeline: &str) -> Platform {
    let lower = job_name.to_lowercase();
    let word = |w: &str| {
        lower
            .split(|c: char| !c.is_alphanumeric())
            .any(|part| part == w)
    };
    if is_amd(job_name) || pipeline.ends_with("/amd-ci") {
        Platform::Rocm
    } else if word("xpu") || word("intel") {
        Platform::Xpu
    } else if word("npu") || word("ascend") {
        Platform::Npu
    } else if word("cpu") || lower.starts_with("cpu-") {
        Platform::Cpu
    } else {
        Platform::Cuda
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_area_across_hardware_shards_and_the_amd_mirror() {
        for (name, key) in [
            ("Kernels (B200)", "kernels"),
            ("AMD: Kernels (mi300_1)", "kernels"),
            ("mi355_1: Kernels", "kernels"),
            ("Distributed Tests (2 GPUs)(H100)", "distributed tests"),
            ("Distributed Tests (4 GPUs)(A100)", "distributed tests"),
            (
                "Language Models Tests (Hybrid) 2",
                "language models tests (hybrid)",
            ),
            (
                "AMD: Language Models Tests (Hybrid) 1 (mi300_1)",
                "language models tests (hybrid)",
            ),
            ("mi250_1: LoRA %N", "lora"),
            (":docker: Build CPU image", "build cpu image"),
        ] {
            assert_eq!(cluster_key(name), key, "{name}");
        }
        // Issue matching keeps GPU counts.
        assert_eq!(
            normalize_job_name("Distributed Tests (2 GPUs)(H100)"),
            "distributed tests (2 gpus)"
        );
    }

    #[test]
    fn hardware_and_platforms_from_real_job_names() {
        assert_eq!(
            hardware("Distributed Tests (2 GPUs)(H100)"),
            vec!["2 GPUs", "H100"]
        );
        assert_eq!(hardware("AMD: Samplers Test (mi250_1)"), vec!["mi250"]);
        assert_eq!(hardware("mi355_1: Quantization"), vec!["mi355"]);
        assert!(hardware("Quantization").is_empty());
        assert_eq!(hardware("e2e Scheduling (1 GPU)"), vec!["1 GPU"]);
        for (name, pipeline, expected) in [
            ("Kernels (B200)", "vllm/ci", Platform::Cuda),
            ("AMD: Kernels (mi300_1)", "vllm/ci", Platform::Rocm),
            ("Basic Correctness", "vllm/amd-ci", Platform::Rocm),
            ("Ascend NPU Test", "vllm/ci", Platform::Npu),
            ("Intel XPU Test", "vllm/ci", Platform::Xpu),
            ("CPU-Kernel Tests", "vllm/ci", Platform::Cpu),
            (
                "Async Engine, Inputs, Utils, Worker, Config (CPU)",
                "vllm/ci",
                Platform::Cpu,
            ),
        ] {
            assert_eq!(platform(name, pipeline), expected, "{name}");
        }
    }
}
