//! Settings, read once at start-up from flags and the environment into typed structs.
//!
//! Every setting has a flag and an environment variable (`.env.example` lists them all). Tokens
//! are held in [`Secret`], whose `Debug` never shows the value, so they cannot leak through logs
//! or error messages.

use clap::Args;
use std::time::Duration;

pub use crate::secret::Secret;

/// Settings shared by every command.
/// Characters a tool result may carry (structured content plus text) by default: Claude Code
/// caps a result at about 25,000 tokens (`CIWATCH_MAX_RESULT_CHARS` sets it).
pub const DEFAULT_MAX_RESULT_CHARS: u64 = 100_000;

#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Buildkite API token with `read_builds` and `read_build_logs` (`BUILDKITE_API_TOKEN` also works).
    #[arg(
        global = true,
        long = "buildkite-token",
        env = "BUILDKITE_TOKEN",
        hide_env_values = true,
        value_parser = parse_secret
    )]
    pub buildkite_token: Option<Secret>,

    /// Default Buildkite organisation for pipelines given without `org/`.
    #[arg(global = true, long, env = "BUILDKITE_ORG", default_value = "vllm")]
    pub buildkite_org: String,

    /// Buildkite REST base URL (tests and the demo point it at a local server).
    #[arg(
        global = true,
        long,
        env = "BUILDKITE_API_URL",
        default_value = "https://api.buildkite.com/v2"
    )]
    pub buildkite_api_url: String,

    /// Failed jobs whose logs are read per build (hard failures first).
    #[arg(global = true, long, env = "CIWATCH_MAX_JOBS", default_value_t = 20)]
    pub max_jobs: usize,

    /// Characters one tool result may carry (structured content and text together), declared
    /// to clients as `_meta["anthropic/maxResultSizeChars"]`; `summary` and `minimal` scans
    /// are held to 35,000 (about 10k tokens) or this, whichever is less. At least 10,000.
    #[arg(
        global = true,
        long,
        env = "CIWATCH_MAX_RESULT_CHARS",
        default_value_t = DEFAULT_MAX_RESULT_CHARS,
        value_parser = clap::value_parser!(u64).range(10_000..=10_000_000)
    )]
    pub max_result_chars: u64,

    /// Bytes of each job log read, from its end (Buildkite serves suffix ranges).
    #[arg(
        global = true,
        long,
        env = "CIWATCH_MAX_LOG_BYTES",
        default_value_t = 200_000
    )]
    pub max_log_bytes: u64,

    /// The safety ceiling on one call's first log reads, applied in the plan's priority order
    /// (a job past it is read by its tail, or not at all, and says so); a real night's failed
    /// jobs read whole take 40-70 MB.
    #[arg(global = true, long, env = "CIWATCH_SCAN_BYTE_BUDGET", default_value_t = crate::reader::DEFAULT_SCAN_BYTE_CEILING)]
    pub scan_byte_budget: u64,

    /// The largest job log read whole, in bytes: a multi-command job whose tail does not reach
    /// its first command is read again whole up to this, and the job-log tool reads logs whole
    /// up to this (past it, the log's end, said in the result).
    #[arg(global = true, long, env = "CIWATCH_MAX_WHOLE_LOG_BYTES", default_value_t = crate::watch::DEFAULT_MAX_WHOLE_LOG_BYTES)]
    pub max_whole_log_bytes: u64,

    /// Seconds a stored build is reused without asking Buildkite again (default 0: every look at
    /// a build asks, one request). A finished build still changes when someone retries a job;
    /// job outcomes are stored by job id and never go stale.
    #[arg(global = true, long, env = "CIWATCH_BUILD_FRESHNESS_SECS", default_value_t = crate::watch::DEFAULT_BUILD_FRESHNESS.as_secs())]
    pub build_freshness_secs: u64,

    /// Log fetches in flight at once. The request budget per minute is the real bound; this only
    /// caps open connections (the default reads a build's 20 logs in one wave).
    #[arg(global = true, long, env = "CIWATCH_CONCURRENCY", default_value_t = 24)]
    pub concurrency: usize,

    /// Outbound Buildkite requests in any one minute (a sliding window: within it requests go
    /// out at once). Buildkite allows 50 per user token and 200 per org; the default leaves room
    /// for the person's other tools. The server's own `RateLimit-Remaining` is honoured too.
    #[arg(
        global = true,
        long,
        env = "CIWATCH_REQUESTS_PER_MINUTE",
        default_value_t = 45
    )]
    pub requests_per_minute: u32,

    /// Timeout of one API request read whole (builds, listings), in seconds; a log stream waits
    /// at most this long for its next bytes, however long the whole log takes.
    #[arg(
        global = true,
        long,
        env = "CIWATCH_HTTP_TIMEOUT_SECS",
        default_value_t = 30
    )]
    pub http_timeout_secs: u64,

    /// PEM certificates Buildkite's client trusts besides the system's roots: the authority of
    /// a TLS-inspecting proxy in front of the API.
    #[arg(global = true, long, env = "CIWATCH_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,

    /// Longest total wait spent retrying one request (429, 5xx, connection errors), in seconds.
    #[arg(
        global = true,
        long,
        env = "CIWATCH_RETRY_BUDGET_SECS",
        default_value_t = 90
    )]
    pub retry_budget_secs: u64,

    /// First retry delay in milliseconds; later ones grow exponentially with jitter.
    #[arg(
        global = true,
        long,
        env = "CIWATCH_RETRY_MIN_DELAY_MS",
        default_value_t = 500
    )]
    pub retry_min_delay_ms: u64,

    /// GitHub token for issue search (`GH_TOKEN` also works). Optional: without it GitHub
    /// allows 10 searches a minute instead of 30.
    #[arg(
        global = true,
        long = "github-token",
        env = "GITHUB_TOKEN",
        hide_env_values = true,
        value_parser = parse_secret
    )]
    pub github_token: Option<Secret>,

    /// GitHub REST base URL (tests point it at a mock).
    #[arg(
        global = true,
        long,
        env = "GITHUB_API_URL",
        default_value = "https://api.github.com"
    )]
    pub github_api_url: String,

    /// Closed CI-failure issues are matched when closed within this many days (a match then
    /// reads "possibly regressed after fix").
    #[arg(
        global = true,
        long,
        env = "CIWATCH_GITHUB_CLOSED_DAYS",
        default_value_t = 30
    )]
    pub github_closed_days: u32,

    /// Seconds fetched GitHub issues are reused across tool calls.
    #[arg(
        global = true,
        long,
        env = "CIWATCH_GITHUB_CACHE_SECS",
        default_value_t = 600
    )]
    pub github_cache_secs: u64,

    /// A local vLLM clone (bare is fine) for CODEOWNERS at HEAD and blame of failing tests.
    /// Without it CODEOWNERS comes from GitHub and there is no blame.
    #[arg(global = true, long, env = "VLLM_REPO_PATH")]
    pub vllm_repo_path: Option<std::path::PathBuf>,

    /// The longest one blame may take, in milliseconds; a deep history degrades to CODEOWNERS.
    #[arg(
        global = true,
        long,
        env = "CIWATCH_BLAME_TIMEOUT_MS",
        default_value_t = 3000
    )]
    pub blame_timeout_ms: u64,

    /// The longest all blames of one scan may take together, in milliseconds.
    #[arg(
        global = true,
        long,
        env = "CIWATCH_SCAN_BLAME_BUDGET_MS",
        default_value_t = 15000
    )]
    pub scan_blame_budget_ms: u64,

    /// Directory of the on-disk cache of finished builds and parsed job logs (default
    /// `$XDG_CACHE_HOME/ciwatch-mcp`, else `~/.cache/ciwatch-mcp`).
    #[arg(global = true, long, env = "CIWATCH_CACHE_DIR")]
    pub cache_dir: Option<std::path::PathBuf>,

    /// Do not read or write any store: the on-disk cache, or the shared Redis that
    /// `CIWATCH_STORE_URL` names (`CIWATCH_NO_CACHE` takes 1/0, true/false, yes/no, on/off).
    #[arg(global = true, long, env = "CIWATCH_NO_CACHE", value_parser = clap::builder::BoolishValueParser::new(), default_missing_value = "true", num_args = 0..=1, default_value_t = false)]
    pub no_cache: bool,

    /// A Redis shared by a team's replicas (`redis://host:port/db`, `rediss://` too), instead
    /// of the on-disk cache: finished builds, job outcomes, whole logs and the rate window of
    /// each Buildkite token live there. A password in the URL, or in `CIWATCH_STORE_PASSWORD`.
    #[arg(global = true, long, env = "CIWATCH_STORE_URL", hide_env_values = true, value_parser = parse_secret)]
    pub store_url: Option<Secret>,

    /// The shared store's password, when its URL has none.
    #[arg(global = true, long, env = "CIWATCH_STORE_PASSWORD", hide_env_values = true, value_parser = parse_secret)]
    pub store_password: Option<Secret>,

    /// The second pipeline (`org/pipeline`) whose matching nightly each cause of a scan is
    /// looked up in, so a cause reads as universal, CUDA-only or ROCm-only; `none` (or `off`,
    /// or `--compare-pipeline ""`) turns it off. An empty variable is unset: the default.
    #[arg(global = true, long, env = "CIWATCH_COMPARE_PIPELINE", default_value = crate::watch::DEFAULT_COMPARE_PIPELINE)]
    pub compare_pipeline: String,

    /// How far back the latest nightly is searched for, in hours.
    #[arg(
        global = true,
        long,
        env = "CIWATCH_NIGHTLY_WINDOW_HOURS",
        default_value_t = 48
    )]
    pub nightly_window_hours: u32,
}

/// `org/pipeline` (or a pipeline of `default_org`) to compare with; `none`, `off` or empty for
/// none.
pub fn parse_compared_pipeline(
    value: &str,
    default_org: &str,
) -> Result<Option<crate::buildkite::PipelineKey>, String> {
    let value = value.trim();
    if value.is_empty() || value.eq_ignore_ascii_case("none") || value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    crate::buildkite::parse_pipeline(value, default_org)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// The store the settings choose (see [`Settings::store`]).
pub enum StoreSetting<'a> {
    None,
    /// A Redis shared by replicas.
    Redis {
        url: &'a str,
        password: Option<&'a str>,
    },
    /// The embedded redb file in this directory.
    Embedded(std::path::PathBuf),
}

/// Tokens become a [`Secret`] as they are read, so `Settings`' `Debug` never shows them.
fn parse_secret(value: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(value.trim()))
}

impl Settings {
    /// The token from `--buildkite-token`/`BUILDKITE_TOKEN`, else `BUILDKITE_API_TOKEN`,
    /// trimmed.
    pub fn token(&self) -> Option<Secret> {
        self.named_token().map(|(token, _)| token)
    }

    /// Which variable [`Settings::token`] comes from, for the errors that ask to check it.
    pub fn token_from(&self) -> &'static str {
        self.named_token()
            .map_or("BUILDKITE_TOKEN", |(_, from)| from)
    }

    fn named_token(&self) -> Option<(Secret, &'static str)> {
        let given = |token: Option<Secret>, from| {
            token
                .map(|t| Secret::new(t.expose().trim()))
                .filter(|t| !t.expose().is_empty())
                .map(|t| (t, from))
        };
        given(self.buildkite_token.clone(), "BUILDKITE_TOKEN").or_else(|| {
            let fallback = std::env::var("BUILDKITE_API_TOKEN").ok().map(Secret::new);
            given(fallback, "BUILDKITE_API_TOKEN")
        })
    }

    pub fn github_options(&self) -> crate::github::GitHubOptions {
        let token = self
            .github_token
            .clone()
            .or_else(|| std::env::var("GH_TOKEN").ok().map(Secret::new))
            .map(|t| Secret::new(t.expose().trim()))
            .filter(|t| !t.expose().is_empty());
        crate::github::GitHubOptions {
            api_url: self.github_api_url.trim_end_matches('/').to_string(),
            token,
            closed_days: self.github_closed_days,
            cache_ttl: Duration::from_secs(self.github_cache_secs),
            timeout: self.http_timeout(),
        }
    }

    /// The clone of the repository to read owners and blame from (`VLLM_REPO_PATH`); an
    /// empty value (a bundle's optional field left blank) means none.
    pub fn vllm_repo_path(&self) -> Option<&std::path::Path> {
        self.vllm_repo_path
            .as_deref()
            .filter(|path| !path.as_os_str().is_empty())
    }

    pub fn owner_options(&self) -> crate::owners::OwnerOptions {
        crate::owners::OwnerOptions {
            blame_timeout: Duration::from_millis(self.blame_timeout_ms),
            scan_blame_budget: Duration::from_millis(self.scan_blame_budget_ms),
            api_cache_ttl: Duration::from_secs(self.github_cache_secs),
        }
    }

    /// Which store to run with: none with `--no-cache` (even when a Redis is named), else the
    /// shared Redis when `CIWATCH_STORE_URL` is set, else the on-disk cache's directory; `Err`
    /// is why there is no directory.
    pub fn store(&self) -> Result<StoreSetting<'_>, String> {
        if self.no_cache {
            return Ok(StoreSetting::None);
        }
        if let Some(url) = self
            .store_url
            .as_ref()
            .filter(|u| !u.expose().trim().is_empty())
        {
            let password = self.store_password.as_ref().map(|p| p.expose());
            return Ok(StoreSetting::Redis {
                url: url.expose().trim(),
                password,
            });
        }
        self.cache_dir
            .clone()
            .or_else(crate::storage::default_dir)
            .map(StoreSetting::Embedded)
            .ok_or_else(|| {
                "no cache directory (set CIWATCH_CACHE_DIR or HOME); running without cache"
                    .to_string()
            })
    }

    pub fn http_timeout(&self) -> Duration {
        Duration::from_secs(self.http_timeout_secs.max(1))
    }

    pub fn rate_budget(&self) -> crate::http::RateBudget {
        crate::http::RateBudget::per_minute(self.requests_per_minute)
    }

    pub fn retry_policy(&self) -> crate::http::RetryPolicy {
        crate::http::RetryPolicy {
            min_delay: Duration::from_millis(self.retry_min_delay_ms),
            max_delay: Duration::from_secs(30),
            max_attempts: 6,
            total_budget: Duration::from_secs(self.retry_budget_secs),
        }
    }

    pub fn budgets(&self) -> crate::watch::Budgets {
        crate::watch::Budgets {
            max_jobs: self.max_jobs,
            max_log_bytes: self.max_log_bytes.max(1),
            scan_byte_budget: self.scan_byte_budget,
            max_whole_log_bytes: self.max_whole_log_bytes.max(1),
            concurrency: self.concurrency.max(1),
        }
    }

    /// The compared pipeline, `None` when turned off (an empty value); `Err` names a bad one.
    pub fn compared_pipeline(&self) -> Result<Option<crate::buildkite::PipelineKey>, String> {
        parse_compared_pipeline(&self.compare_pipeline, &self.buildkite_org)
    }

    pub fn build_freshness(&self) -> Duration {
        Duration::from_secs(self.build_freshness_secs)
    }
}

/// `command` with an empty variable meaning "not set" for every argument read from one (a
/// copied `.env.example`, compose's `env_file`): clap takes an empty variable as an empty value
/// and refuses it ("a value is required"), so such an argument reads no variable at all.
pub fn empty_variables_unset(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            let empty = arg
                .get_env()
                .and_then(std::env::var_os)
                .is_some_and(|value| value.is_empty());
            if empty {
                arg.env(None)
            } else {
                arg
            }
        })
        .mut_subcommands(empty_variables_unset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: Settings,
    }

    #[test]
    fn tokens_never_print_and_boolean_variables_take_the_usual_words() {
        let cli = Cli::parse_from([
            "ciwatch-mcp",
            "--buildkite-token",
            "bkua_canary_value",
            "--github-token",
            "ghp_canary_value",
        ]);
        let printed = format!("{:?}", cli.settings);
        assert!(!printed.contains("canary"), "{printed}");
        assert_eq!(
            cli.settings
                .token()
                .map(|t| t.expose().to_string())
                .as_deref(),
            Some("bkua_canary_value")
        );
        for (word, expected) in [
            ("1", true),
            ("yes", true),
            ("on", true),
            ("true", true),
            ("0", false),
            ("off", false),
            ("no", false),
        ] {
            let cli = Cli::parse_from(["ciwatch-mcp", &format!("--no-cache={word}")]);
            assert_eq!(cli.settings.no_cache, expected, "{word}");
        }
        assert!(
            Cli::parse_from(["ciwatch-mcp", "--no-cache"])
                .settings
                .no_cache
        );
        let error = Cli::try_parse_from(["ciwatch-mcp", "--no-cache=maybe"])
            .err()
            .expect("refused");
        assert!(error.to_string().contains("maybe"), "{error}");
    }

    #[test]
    fn the_compared_pipeline_turns_off_with_none_off_or_an_empty_argument() {
        for off in ["none", "NONE", "off", "", " "] {
            let cli = Cli::parse_from(["ciwatch-mcp", "--compare-pipeline", off]);
            assert_eq!(cli.settings.compared_pipeline(), Ok(None), "{off:?}");
        }
        let default = Cli::parse_from(["ciwatch-mcp"])
            .settings
            .compared_pipeline();
        let compared = default.expect("valid").expect("on by default");
        assert_eq!(
            (compared.org.as_str(), compared.pipeline.as_str()),
            ("vllm", "amd-ci")
        );
    }

    #[test]
    fn no_cache_turns_off_the_shared_store_too_and_tokens_are_trimmed() {
        let cli = Cli::parse_from([
            "ciwatch-mcp",
            "--no-cache",
            "--store-url",
            "redis://127.0.0.1:9/0",
            "--buildkite-token",
            "  bkua_padded\n",
        ]);
        assert!(matches!(cli.settings.store(), Ok(StoreSetting::None)));
        let token = cli.settings.token().expect("a token");
        assert_eq!(token.expose(), "bkua_padded");
        assert_eq!(cli.settings.token_from(), "BUILDKITE_TOKEN");
        let with_redis = Cli::parse_from(["ciwatch-mcp", "--store-url", "redis://127.0.0.1:9/0"]);
        assert!(matches!(
            with_redis.settings.store(),
            Ok(StoreSetting::Redis { .. })
        ));
    }
}
