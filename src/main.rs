//! The `ciwatch-mcp` command: with no arguments it serves MCP over stdio; `scan` runs one scan
//! from the shell; `demo` scans the bundled fixture nightly through a local HTTP server.
//! Diagnostics go to stderr (`RUST_LOG`); in server mode stdout carries only JSON-RPC.

use ciwatch_mcp::buildkite::{parse_build_ref, parse_pipeline, BuildkiteClient};
use ciwatch_mcp::config::Settings;
use ciwatch_mcp::model::ScanResult;
use ciwatch_mcp::services::Services;
use ciwatch_mcp::watch::{self, Enrichment, Presentation, Progress, ScanOptions};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ciwatch-mcp",
    version,
    about = "vLLM CI watch: an MCP server that scans Buildkite builds and classifies their failures"
)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve MCP over stdio (the default when no command is given), or Streamable HTTP with --http.
    Serve(ServeArgs),
    /// Scan one build, or the latest nightly, and print the report.
    Scan {
        /// Build number or Buildkite URL.
        #[arg(long, conflicts_with = "nightly", required_unless_present = "nightly")]
        build: Option<String>,
        /// Scan the latest scheduled nightly of the branch instead.
        #[arg(long)]
        nightly: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Serve the bundled fixture Buildkite and GitHub on 127.0.0.1 until stdin closes; prints their
    /// URLs as one JSON line (for client tests in other languages).
    #[cfg(feature = "demo")]
    #[command(hide = true)]
    FixtureServer,
    /// Scan the bundled fixture nightly (real build 65099) through a local HTTP server; no token needed.
    #[cfg(feature = "demo")]
    Demo {
        /// Select the build as the nightly (exercises build listing) instead of by number.
        #[arg(long)]
        nightly: bool,
        #[command(flatten)]
        output: OutputArgs,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Serve Streamable HTTP on this address (path /mcp, health at /health) instead of stdio.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:8080", env = "CIWATCH_HTTP_BIND")]
    http: Option<std::net::SocketAddr>,
    /// Bearer token callers must send to /mcp; required on a non-loopback address.
    #[arg(long, env = "CIWATCH_HTTP_TOKEN", hide_env_values = true)]
    http_token: Option<String>,
    /// Host names accepted in the Host header besides loopback (the sidecar's service name), comma-separated.
    #[arg(long, env = "CIWATCH_HTTP_ALLOWED_HOSTS", value_delimiter = ',')]
    allowed_hosts: Vec<String>,
    /// Browser origins accepted besides loopback, comma-separated (e.g. https://app.example.com:443).
    #[arg(long, env = "CIWATCH_HTTP_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Vec<String>,
    /// The token of a Buildkite webhook (build.finished) to POST /webhooks/buildkite; a
    /// finished nightly is then read before anyone asks.
    #[arg(long, env = "CIWATCH_WEBHOOK_TOKEN", hide_env_values = true)]
    webhook_token: Option<String>,
    /// Seconds between the watcher's looks for a new nightly of the HUD's pipeline, which it
    /// reads before anyone asks (0 turns the watcher off).
    #[arg(long, env = "CIWATCH_WATCH_INTERVAL_SECS", default_value_t = ciwatch_mcp::mcp::DEFAULT_WATCH_INTERVAL.as_secs())]
    watch_interval_secs: u64,
}

#[derive(clap::Args)]
struct OutputArgs {
    /// Pipeline as org/pipeline.
    #[arg(long, default_value = "vllm/ci")]
    pipeline: String,
    /// Branch of the nightly.
    #[arg(long, default_value = "main")]
    branch: String,
    #[arg(long, value_enum, default_value_t = Format::Markdown)]
    format: Format,
    /// Most failures in the JSON output (default: all).
    #[arg(long)]
    max_failures: Option<usize>,
    /// GitHub repository whose `[CI Failure]` issues are matched.
    #[arg(long, default_value = "vllm-project/vllm")]
    repo: String,
    /// Skip GitHub issue matching (CODEOWNERS may still be read from GitHub).
    #[arg(long)]
    no_github: bool,
    /// Previous scheduled nightlies a nightly is compared with (0 turns the comparison off).
    #[arg(long, default_value_t = watch::DEFAULT_COMPARE_NIGHTLIES)]
    compare_nightlies: usize,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// The Daily Findings report.
    Markdown,
    /// The full scan result as JSON.
    Json,
    /// The one-line Standup summary.
    Standup,
}

/// Progress on stderr for shell use: a bar when stderr is a terminal, plain lines otherwise
/// (logs, CI, pipes).
enum StderrProgress {
    Bar(indicatif::ProgressBar),
    Lines,
}

impl StderrProgress {
    fn new() -> Self {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return Self::Lines;
        }
        let bar = indicatif::ProgressBar::new(0);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} logs {msg}",
        ) {
            bar.set_style(style);
        }
        Self::Bar(bar)
    }

    fn finish(&self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

impl Progress for StderrProgress {
    fn report(&self, done: usize, total: usize, message: &str) {
        match self {
            Self::Bar(bar) => {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
                bar.set_message(message.to_string());
            }
            Self::Lines => eprintln!("[{done}/{total}] {message}"),
        }
    }
}

fn main() -> ExitCode {
    ciwatch_mcp::allocator::bound_arenas();
    // A panic's message may quote a job log's text (a slicing bug names what it sliced), which
    // may hold a secret: only where it happened is logged. The log reader catches the panics
    // a log can cause and says so in the result.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map_or_else(|| "an unknown place".to_string(), ToString::to_string);
        tracing::error!(%at, "panic (its message is not logged: it may quote a log)");
    }));
    run()
}

#[tokio::main]
async fn run() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let command = ciwatch_mcp::config::empty_variables_unset(Cli::command());
    let cli = match Cli::from_arg_matches(&command.get_matches()) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    let outcome = match cli.command {
        None => ciwatch_mcp::mcp::serve_stdio(cli.settings)
            .await
            .map_err(|e| e.to_string()),
        Some(Command::Serve(args)) => serve(cli.settings, args).await,
        #[cfg(feature = "demo")]
        Some(Command::FixtureServer) => fixture_server().await,
        Some(Command::Scan {
            build,
            nightly,
            output,
        }) => {
            let target = if nightly { None } else { build };
            run_scan(&cli.settings, target.as_deref(), &output).await
        }
        #[cfg(feature = "demo")]
        Some(Command::Demo { nightly, output }) => run_demo(cli.settings, nightly, &output).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings, args: ServeArgs) -> Result<(), String> {
    let Some(bind) = args.http else {
        return ciwatch_mcp::mcp::serve_stdio(settings)
            .await
            .map_err(|e| e.to_string());
    };
    let options = ciwatch_mcp::mcp::HttpOptions {
        bind,
        token: args
            .http_token
            .filter(|t| !t.is_empty())
            .map(ciwatch_mcp::config::Secret::new),
        allowed_hosts: args.allowed_hosts,
        allowed_origins: args.allowed_origins,
        webhook_token: args
            .webhook_token
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .map(ciwatch_mcp::config::Secret::new),
        watch_interval: (args.watch_interval_secs > 0)
            .then(|| std::time::Duration::from_secs(args.watch_interval_secs)),
    };
    ciwatch_mcp::mcp::serve_http(settings, options)
        .await
        .map_err(|e| e.to_string())
}

/// Runs until stdin closes, so a test harness in any language controls its lifetime.
#[cfg(feature = "demo")]
async fn fixture_server() -> Result<(), String> {
    let urls = ciwatch_mcp::demo::start()
        .await
        .map_err(|e| format!("could not start the fixture server: {e}"))?;
    println!(
        "{}",
        serde_json::json!({ "buildkite": urls.buildkite, "github": urls.github })
    );
    use tokio::io::AsyncReadExt;
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
    Ok(())
}

/// Failed-job logs the demo's one call reads: every failed job attempt of the bundled night.
#[cfg(feature = "demo")]
const DEMO_MAX_JOBS: usize = 50;

#[cfg(feature = "demo")]
async fn run_demo(
    mut settings: Settings,
    nightly: bool,
    output: &OutputArgs,
) -> Result<(), String> {
    let urls = ciwatch_mcp::demo::start()
        .await
        .map_err(|e| format!("could not start the demo server: {e}"))?;
    eprintln!(
        "demo: serving the fixture nightly (vllm/ci build 65099) at {} and its GitHub issues at {}",
        urls.buildkite, urls.github
    );
    settings.buildkite_api_url = urls.buildkite;
    settings.github_api_url = urls.github;
    settings.github_token = None;
    settings.buildkite_token = Some(ciwatch_mcp::secret::Secret::new("demo-token"));
    // The fixture carries real job ids of build 65099: its outcomes must not enter the store
    // that real scans read. Nothing is kept between runs, so one call reads the whole night
    // (its 24 failed job attempts) rather than leaving a second call's share unread.
    settings.no_cache = true;
    settings.max_jobs = settings.max_jobs.max(DEMO_MAX_JOBS);
    // The fixture build is from May 2026; widen the window so the nightly listing finds it.
    settings.nightly_window_hours = u32::MAX / 3600;
    let target = if nightly { None } else { Some("65099") };
    run_scan(&settings, target, output).await
}

/// Scans `build`, or the latest nightly when `None`, and prints the chosen format to stdout.
async fn run_scan(
    settings: &Settings,
    build: Option<&str>,
    output: &OutputArgs,
) -> Result<(), String> {
    let services = Services::build(settings).map_err(|e| e.to_string())?;
    if let Some(warning) = &services.store_warning {
        eprintln!("warning: {warning}");
    }
    let store = services.store.as_deref();
    let client = BuildkiteClient::new(services.http, &settings.buildkite_api_url, settings.token())
        .map_err(|e| e.to_string())?
        .with_token_from(settings.token_from());
    let mut options = scan_options(settings, output)?;
    let (org, pipeline, number) = match build {
        Some(build) => {
            let reference = parse_build_ref(build, &output.pipeline, &settings.buildkite_org)
                .map_err(|e| e.to_string())?;
            (reference.org, reference.pipeline, reference.number)
        }
        None => {
            let (org, pipeline, choice) = latest_nightly(&client, settings, output).await?;
            eprintln!("selected: {}", choice.explanation);
            options.selection = Some(choice.explanation);
            (org, pipeline, choice.number)
        }
    };
    let enrichment = Enrichment {
        github: Some(services.github.as_ref()),
        owners: Some(services.owners.as_ref()),
    };
    let reader =
        watch::JobReader::new(&client, store).with_build_freshness(settings.build_freshness());
    let key = ciwatch_mcp::buildkite::BuildKey::new(&org, &pipeline, number);
    let progress = StderrProgress::new();
    let result = watch::scan_build(&reader, enrichment, &key, &options, &progress).await;
    progress.finish();
    let result = result.map_err(|e| e.to_string())?;
    print_result(&result, output.format)?;
    eprintln!(
        "scanned build {} in {} ms: {} Buildkite requests, {} GitHub requests, {} log bytes fetched, {} unique failures",
        result.build_info.build_number,
        result.stats.elapsed_ms,
        result.stats.api_requests,
        result.stats.github_requests,
        result.stats.log_bytes_fetched,
        result.total_failures
    );
    Ok(())
}

fn scan_options(settings: &Settings, output: &OutputArgs) -> Result<ScanOptions, String> {
    // Every format is rendered from the whole result (owners, blame, suspects, links).
    Ok(ScanOptions {
        presentation: Presentation {
            max_failures: output.max_failures.unwrap_or(usize::MAX),
            ..Presentation::WHOLE
        },
        // The JSON carries the report texts; the other formats render their one text below.
        render_reports: matches!(output.format, Format::Json),
        budgets: settings.budgets(),
        selection: None,
        repo: ciwatch_mcp::input::RepoSlug::parse(&output.repo)
            .map_err(|e| e.to_string())?
            .as_str()
            .to_string(),
        search_github: !output.no_github,
        compare_nightlies: output.compare_nightlies,
        compare_pipeline: settings.compared_pipeline()?,
    })
}

/// The pipeline's latest nightly on the branch.
async fn latest_nightly(
    client: &BuildkiteClient,
    settings: &Settings,
    output: &OutputArgs,
) -> Result<(String, String, watch::NightlyChoice), String> {
    let ciwatch_mcp::buildkite::PipelineKey { org, pipeline } =
        parse_pipeline(&output.pipeline, &settings.buildkite_org).map_err(|e| e.to_string())?;
    let choice = watch::latest_nightly(
        client,
        &org,
        &pipeline,
        &output.branch,
        settings.nightly_window_hours,
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok((org, pipeline, choice))
}

fn print_result(result: &ScanResult, format: Format) -> Result<(), String> {
    let text = match format {
        Format::Markdown => ciwatch_mcp::report::daily_findings(result),
        Format::Standup => ciwatch_mcp::report::standup_summary(result) + "\n",
        Format::Json => serde_json::to_string_pretty(result).map_err(|e| e.to_string())? + "\n",
    };
    print!("{}", ciwatch_mcp::untrusted::sanitize(&text));
    Ok(())
}
