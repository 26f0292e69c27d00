//! The infrastructure rule table: which log lines prove that a failure is the machine's, not
//! the code's. Order is priority; the first rule that matches any evidence line wins.
//!
//! Rules are matched against error lines, failure excerpts and a test's own output — never
//! against test names ("bloom" is not an OOM, `test_timeout_handling` is not a timeout).

pub use crate::model::InfraKind;
use regex::Regex;
use std::sync::LazyLock;

pub struct InfraRule {
    /// The rule's name, as a failure's decision names it (`hub_or_network`, `host_oom`, …).
    pub name: &'static str,
    pub kind: InfraKind,
    pattern: Regex,
    /// Lines that match `pattern` but are not infrastructure (a local server that never came up
    /// refuses connections because the code under test crashed).
    unless: Option<Regex>,
    pub confidence: f64,
}

impl InfraRule {
    pub fn matches(&self, line: &str) -> bool {
        self.pattern.is_match(line) && !self.unless.as_ref().is_some_and(|u| u.is_match(line))
    }
}

const LOCAL_HOSTS: &str = r"localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\]";

/// Lines of a failed build of the project itself: an image name that does not exist, its
/// editable install, its requirements that cannot be resolved, its compile step. A failure of
/// the code (the pipeline is code too), not of the machine.
pub const CODE_BUILD: &str = r"pull access denied|repository does not exist|manifest unknown|failed to compute cache key|pip install (?:-e|--editable)\b|Failed to build `[^`@]+ @ file://|Could not find a version that satisfies the requirement|No matching distribution found|CMake Error|ninja: build stopped|setup\.py\b.*\b(?:error|failed)|error: command '[^']*' failed";

/// The table. Confidence 0.7 is the original's for infrastructure; a fault the coredump hook
/// reports is often a kernel bug rather than bad hardware, so it is held at 0.5. An illegal
/// memory access raised in a test's process is the code's (a kernel's bug), never a rule's.
pub static INFRA_RULES: LazyLock<Vec<InfraRule>> = LazyLock::new(|| {
    let rule = |name, kind, pattern: &str, unless: Option<&str>, confidence| InfraRule {
        name,
        kind,
        pattern: crate::text::log_regex(pattern).expect("infra patterns are valid"),
        unless: unless.map(|u| crate::text::log_regex(u).expect("infra exclusions are valid")),
        confidence,
    };
    vec![
        // The runner itself: Buildkite's agent stops heartbeating or is shut down mid-job, GitHub
        // Actions' self-hosted runner or a Jenkins agent can no longer be reached.
        rule(
            "agent_lost",
            InfraKind::AgentLost,
            r"(?i)\bagent (?:was )?lost\b|lost connection to (?:the )?agent|exited with status -1\b|runner(?:: \S+)? lost communication with the server|\bCannot contact \S+",
            None,
            0.7,
        ),
        // The host before the code ran: a Buildkite agent hook (environment, checkout,
        // pre-command) exiting with its own status, a checkout that failed, the NVIDIA container
        // runtime unable to give the container its GPUs, and vLLM finding its GPUs' memory
        // taken by something else when the engine starts.
        rule(
            "host_not_ready",
            InfraKind::HostNotReady,
            r"(?i)\b(?:environment|checkout|pre-checkout|post-checkout|pre-command|pre-exit|global|local|agent) hook exited with status -?\d+|Checkout failed! exit status|nvidia-container-cli: \w+ error|Free memory on device (?:\S+ )?\([^)]*\) on startup is less than desired GPU memory|open\(/dev/[^)]*\): Device or resource busy|Unable to open /dev/kfd",
            None,
            0.7,
        ),
        // Python faulthandler (`faulthandler_timeout`, printed after the test id in `-s` runs)
        // and pytest-timeout (its failure message, old and new, and its thread-dump banner).
        // Before cancellation: a hang is why the job was then cancelled.
        rule(
            "hang",
            InfraKind::Hang,
            r"\bTimeout \(\d+:\d{2}:\d{2}\)!|(?:^|- )(?:E\s+)?Failed: Timeout \(?>|^\+{5,} Timeout \+{5,}$|\*\*\*Timeout \d|^//\S+\s+TIMEOUT in (?:\d+ out of \d+ in )?\d",
            None,
            0.6,
        ),
        // Buildkite agent, when the job is cancelled from the UI or by a newer build.
        rule(
            "cancelled",
            InfraKind::Cancelled,
            r"^# Received cancellation signal|^🚨 Error: The command was interrupted by a signal|^The operation was cancel+ed\.|(?i)\bjob was cancel+ed\b",
            None,
            0.7,
        ),
        rule(
            "disk_full",
            InfraKind::Disk,
            r"(?i)no space left on device|\bdisk (?:is )?full\b|DiskQuotaExceeded",
            None,
            0.7,
        ),
        // Kernel OOM killer, Slurm's report of a task it killed, and allocation failures on the
        // host; not CUDA OOM (see classify).
        rule(
            "host_oom",
            InfraKind::HostOom,
            r"(?i)cannot allocate memory|\boom[- ]?kill|Killed process \d+|exit(?:ed with)? (?:status|code):? 137\b|exit status 137\b|signal: killed\b|std::bad_alloc|\bKilled {2,}\S|^Killed$|\*\*\* \[[^\]]+\] Killed$|SIGKILL|\bsignal 9\b|exitcode\s*:\s*-9\b|\bMemoryError\b|out of memory: kill|\btask \d+: out of memory\b|\bexit ?code\s*:\s*-9\b",
            None,
            0.7,
        ),
        // Container registries refusing or failing a pull: Docker Hub's rate limit in every
        // client's wording (BuildKit, the daemon, podman/cri-o).
        // A compiler or tool saying the host's memory ran out (`catastrophic error: out of
        // memory`), in words that name no device.
        rule(
            "host_out_of_memory",
            InfraKind::HostOom,
            r"(?i)\bout of memory\b",
            Some(r"(?i)CUDA|HIP|\bGPU|device|OutOfMemoryError|CUBLAS|allocat"),
            0.6,
        ),
        // GitHub Actions' runner shut down under the job: after the host's OOM kill above (a
        // killed job's runner is often stopped too), else the runner was lost.
        rule(
            "runner_shut_down",
            InfraKind::AgentLost,
            r"The runner has received a shutdown signal",
            None,
            0.7,
        ),
        // A runner's own time limit: Jenkins' build-timeout plugin, GitHub Actions, and a
        // runner's timer of a job that printed nothing for too long (Travis, CircleCI).
        rule(
            "runner_timeout",
            InfraKind::JobTimeout,
            r"Build timed out \(after \d+ minutes\)|has exceeded the maximum execution time of \d+ minutes|^The action (?:'[^']*' )?has timed out|^No output has been received in the last \d|^Too long with no output \(exceeded ",
            None,
            0.7,
        ),
        rule(
            "registry_pull",
            InfraKind::NetworkOrHub,
            r"(?i)\btoomanyrequests\b|pull rate limit|failed to pull image|error pulling image|pulling from host \S+ failed with status code",
            None,
            0.7,
        ),
        // NCCL between hosts: an InfiniBand/RoCE work completion with an error status (12 is
        // the transport's retry count exceeded: the fabric, not a deadlock in the code), and its
        // socket transport losing a peer's connection.
        rule(
            "nccl_network",
            InfraKind::NetworkOrHub,
            r"NET/IB ?: Got completion from peer \S+ with (?:error|status=)\s?[1-9]|socketProgressOpt: Call to (?:recv|send) from \S+ failed",
            None,
            0.7,
        ),
        // Hugging Face Hub and other upstream services; connection errors to external hosts.
        rule(
            "hub_or_network",
            InfraKind::NetworkOrHub,
            concat!(
                // The Hub and other upstream services refusing or failing.
                r"(?i)huggingface\.co.*\b(?:429|5\d\d)\b|couldn't connect to 'https://huggingface\.co|\bHF API, response code: (?:429|5\d\d)\b|We had to rate limit you|HTTP Error (?:429|5\d\d) thrown while requesting|Retrying in \d+s \[Retry \d+/\d+\]|\b(?:429|5\d\d) (?:Server|Client) Error|HfHubHTTPError|LocalEntryNotFoundError|Too Many Requests|HTTP Error 403: rate limit exceeded|API rate limit exceeded|Gateway Time-?out|Service Unavailable|Bad Gateway",
                // aiohttp's refusal of a URL a test fetched (an image, a video): the host, not the code.
                r"|\b(?:403|429|5\d\d), message='[^']*', url='?https?://",
                // A connection to another host that failed, in Python's, curl's, git's, Go's
                // and uv's words.
                r"|Connection reset by peer|Connection aborted|Connection broken|ConnectionResetError|RemoteDisconnected|IncompleteRead|ChunkedEncodingError|Max retries exceeded with url|Failed to establish a new connection|NewConnectionError|ConnectTimeout|ReadTimeout|Read timed out|Connection timed out|Network is unreachable|No route to host|Connection refused",
                r"|Temporary failure in name resolution|failed to lookup address information|Temporary failure resolving|Name or service not known|nodename nor servname|getaddrinfo failed|Could not resolve host|SSLError|SSLEOFError|EOF occurred in violation of protocol|TLS handshake timeout|curl: \((?:6|7|28|35|52|56)\)|unable to access 'https?://|RPC failed|error sending request for url|dial tcp .*(?:timeout|refused|no such host)|i/o timeout|Hash Sum mismatch|DO NOT MATCH THE HASHES|Could not fetch URL|Failed to fetch https?://|download has timed out",
                // A socket's own timeout (Python's message for it), and an API's rate limit
                // in the openai client's words.
                r"|\b(?:TimeoutError|socket\.timeout): timed out$|RateLimitError: Error code: 429\b",
            ),
            Some(LOCAL_HOSTS),
            0.7,
        ),
        // Docker BuildKit, pip and the registry, when building the test image or its deps. A
        // step that builds or installs the project itself fails because of the code (see
        // `CODE_BUILD`); downloads that fail in a build step matched the network rule above.
        rule(
            "image_build",
            InfraKind::ImageBuild,
            r"^ERROR: failed to (?:solve|build|push)|^error: failed to solve|^#\d+ ERROR|ERROR: Could not (?:find a version|install packages)|subprocess-exited-with-error|docker: Error response from daemon|Failed to build `|Building wheel for \S+ .*did not run successfully|ResolvePackageNotFound|PackagesNotFoundError|UnsatisfiableError|Could not solve for environment specs",
            Some(CODE_BUILD),
            0.7,
        ),
        // NVIDIA driver and CUDA runtime, ROCm's driver and Habana's runtime: hardware faults and
        // devices that vanished or cannot be had.
        rule(
            "gpu_driver",
            InfraKind::GpuFault,
            r"(?i)rocm driver error 'hipErrorInvalidDevice'|hipErrorNoDevice|\[Device not found\] Device acquire failed|uncorrectable ECC|\bXid\b|GPU is lost|CUDA-capable device\(s\) is/are busy or unavailable|no CUDA-capable device is detected|CUDA driver initialization failed|Failed to initialize NVML|NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver|^No devices were found$",
            None,
            0.7,
        ),
        // The CUDA coredump hook vLLM CI enables, and ROCm's page fault: the driver's reports.
        rule(
            "gpu_fault",
            InfraKind::GpuFault,
            r"CUDBG_EXCEPTION_\w+|(?:Memory access fault|HW Exception) by GPU node-\d+",
            None,
            0.5,
        ),
    ]
});

/// The first rule (by priority) that matches any line, with the line that proves it.
pub fn find_infra<'a>(
    lines: impl Iterator<Item = &'a str> + Clone,
) -> Option<(&'static InfraRule, &'a str)> {
    INFRA_RULES.iter().find_map(|rule| {
        lines
            .clone()
            .find(|line| rule.matches(line))
            .map(|line| (rule, line))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(line: &str) -> Option<InfraKind> {
        find_infra(std::iter::once(line)).map(|(rule, _)| rule.kind)
    }

    #[test]
    fn rule_table() {
        let cases = [
            ("# Received cancellation signal, interrupting", Some(InfraKind::Cancelled)),
            ("Timeout (0:25:00)!", Some(InfraKind::Hang)),
            ("v1/engine/test_engine_core.py::test_x Timeout (0:25:00)!", Some(InfraKind::Hang)),
            ("E   Failed: Timeout >300.0s", Some(InfraKind::Hang)),
            ("FAILED tests/a.py::test_b - Failed: Timeout (>600.0s) from pytest-timeout.", Some(InfraKind::Hang)),
            // pytest-timeout's thread method, before it dumps every thread.
            ("+++++++++++++++++++++++++++++++++++ Timeout +++++++++++++++++++++++++++++++++++", Some(InfraKind::Hang)),
            ("OSError: [Errno 28] No space left on device", Some(InfraKind::Disk)),
            ("Error retrieving file list: 504 Server Error: Gateway Time-out for url: https://huggingface.co/api/models/x", Some(InfraKind::NetworkOrHub)),
            ("requests.exceptions.ConnectionError: HTTPConnectionPool(host='localhost', port=8000): Max retries exceeded (Connection refused)", None),
            ("openai.InternalServerError: Error code: 500 - {'error': {'message': \"403, message='Forbidden', url='https://upload.wikimedia.org/x.jpg'\"}}", Some(InfraKind::NetworkOrHub)),
            ("ERROR: failed to solve: process \"/bin/sh -c pip install\" did not complete successfully: exit code: 1", Some(InfraKind::ImageBuild)),
            // Building the project itself is the code's failure, not the machine's.
            ("ERROR: failed to solve: process \"/bin/sh -c pip install -e /workspace/vllm-ascend/\" did not complete successfully: exit code: 1", None),
            ("#14 41.52 ERROR: Could not find a version that satisfies the requirement torch-npu==2.8.0.post1", None),
            ("coredump: Detected an exception of type CUDBG_EXCEPTION_WARP_ILLEGAL_ADDRESS (14)", Some(InfraKind::GpuFault)),
            // huggingface_hub's own retry logging (utils/_http.py), before the test gives up.
            ("HTTP Error 504 thrown while requesting HEAD https://huggingface.co/Qwen/Qwen3-0.6B/resolve/main/config.json", Some(InfraKind::NetworkOrHub)),
            ("Retrying in 8s [Retry 4/5].", Some(InfraKind::NetworkOrHub)),
            ("huggingface_hub.errors.HfHubHTTPError: 429 Client Error: Too Many Requests for url: https://huggingface.co/api/models/meta-llama/Llama-3.2-1B", Some(InfraKind::NetworkOrHub)),
            ("requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='huggingface.co', port=443): Read timed out. (read timeout=10)", Some(InfraKind::NetworkOrHub)),
            // The Buildkite agent's hooks, and a GPU another process still holds (vLLM's check in
            // vllm/v1/worker/utils.py), are the host's.
            ("🚨 Error: The global environment hook exited with status 1", Some(InfraKind::HostNotReady)),
            ("(EngineCore pid=253) ValueError: Free memory on device (61.05/119.7 GiB) on startup is less than desired GPU memory utilization (0.52, 62.24 GiB)", Some(InfraKind::HostNotReady)),
            ("ValueError: Free memory on device cuda:0 (12.3/79.19 GiB) on startup is less than desired GPU memory utilization (0.9, 71.27 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes.", Some(InfraKind::HostNotReady)),
            // Registries refusing a pull, NCCL's fabric between hosts, the container runtime.
            ("#8 ERROR: failed to copy: httpReadSeeker: failed open: unexpected status code https://registry-1.docker.io/v2/library/node/manifests/sha256:d0bb: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit.", Some(InfraKind::NetworkOrHub)),
            ("kolyoz2:25146:25854 [0] ib_plugin.c:1105 NCCL WARN NET/IB : Got completion from peer 10.0.35.1<49189> with error 4, opcode 5327, len 5327, vendor err 81 (Send)", Some(InfraKind::NetworkOrHub)),
            ("socketProgressOpt: Call to recv from 172....<33759> failed : Connection reset by peer", Some(InfraKind::NetworkOrHub)),
            // A collective that timed out can be a deadlock in the code: no rule claims it.
            ("[Rank 0] Watchdog caught collective operation timeout: WorkNCCL(SeqNum=1, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for 600023 milliseconds before timing out.", None),
            ("docker: Error response from daemon: failed to create shim: OCI runtime create failed: error running hook: exit status 1, stdout: , stderr: nvidia-container-cli: initialization error: driver error: failed to process request: unknown.", Some(InfraKind::HostNotReady)),
            ("3039.4   subprocess.CalledProcessError: Command '['cmake', '--build', '.']' returned non-zero exit status 137.", Some(InfraKind::HostOom)),
            ("No devices were found", Some(InfraKind::GpuFault)),
            ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.", Some(InfraKind::GpuFault)),
            ("//xla/tests:collective_test_gpu   TIMEOUT in 3 out of 3 in 2400.3s", Some(InfraKind::Hang)),
            ("W: Failed to fetch http://deb.debian.org/debian/dists/bullseye/InRelease  Temporary failure resolving 'deb.debian.org'", Some(InfraKind::NetworkOrHub)),
            ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", None),
            ("tests/models/test_bloom.py::test_models[bloom-560m] FAILED", None),
            ("def test_timeout_handling(): pass", None),
            ("Unable to open /dev/kfd read-write: Invalid argument", Some(InfraKind::HostNotReady)),
            ("The action 'Run PyTorch smoketests' has timed out after 10 minutes.", Some(InfraKind::JobTimeout)),
            ("HW Exception by GPU node-1 (Agent handle: 0x5899c75e9d60) reason :GPU Hang", Some(InfraKind::GpuFault)),
            ("Error: Action 'https://api.github.com/repos/o/r/tarball/335b5c7' download has timed out.", Some(InfraKind::NetworkOrHub)),
            ("#28 12.53 ResolvePackageNotFound: ", Some(InfraKind::ImageBuild)),
            ("72/95 Test #72: arrow-azurefs-test ...........................***Timeout 300.10 sec", Some(InfraKind::Hang)),
            ("//tensorflow/python/distribute:a_test_gpu                 TIMEOUT in 2400.3s", Some(InfraKind::Hang)),
            ("No output has been received in the last 10m0s, this potentially indicates a stalled build or something wrong with the build itself.", Some(InfraKind::JobTimeout)),
            ("TimeoutError: timed out", Some(InfraKind::NetworkOrHub)),
            ("TimeoutError: the engine did not answer in 30 s", None),
            ("openai.RateLimitError: Error code: 429 - {'error': {'message': 'You exceeded your current quota'}}", Some(InfraKind::NetworkOrHub)),
            ("iree/experimental/rocm/status_util.c:31: INTERNAL; rocm driver error 'hipErrorInvalidDevice' (101): invalid device ordinal; creating device 'rocm'", Some(InfraKind::GpuFault)),
            ("RuntimeError: synStatus=8 [Device not found] Device acquire failed.", Some(InfraKind::GpuFault)),
            ("make: *** [Makefile:40: pytest] Killed", Some(InfraKind::HostOom)),
            ("fastcore.net.HTTP403ForbiddenError: HTTP Error 403: rate limit exceeded", Some(InfraKind::NetworkOrHub)),
            ("Too long with no output (exceeded 1h0m0s): context deadline exceeded", Some(InfraKind::JobTimeout)),
            ("critical libmamba Could not solve for environment specs", Some(InfraKind::ImageBuild)),
            ("client error (Connect): dns error: failed to lookup address information: Name does not resolve", Some(InfraKind::NetworkOrHub)),
            ("##[error]The runner has received a shutdown signal. This can happen when the runner service is stopped, or a manually started runner is canceled.", Some(InfraKind::AgentLost)),
        ];
        for (line, expected) in cases {
            assert_eq!(kind_of(line), expected, "{line}");
        }
    }
}
