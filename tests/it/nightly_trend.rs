//! What changed since the last nightly, on a wiremock Buildkite holding real nightly 65099 and
//! five earlier scheduled nightlies made from it (webhook builds between them), and a wiremock
//! GitHub with the real issue titles and a compare range. The scenario has a new failure, a
//! continuing tracked one, one failing since before the window, an intermittent one, a fixed
//! one, one whose previous nightly lost its agent, and a job-level one; the range has a culprit
//! touching a traceback file next to decoys in the same directory.

use ciwatch_mcp::buildkite::BuildKey;
use ciwatch_mcp::github::{GitHubClient, GitHubOptions};
use ciwatch_mcp::model::{Category, DetailLevel, ScanResult, Trend};
use ciwatch_mcp::secret::Secret;
use ciwatch_mcp::storage::Cache;
use ciwatch_mcp::watch::{self, Budgets, Enrichment, JobReader, NoProgress};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub(crate) const CURRENT: u64 = 65099;
/// The previous nightlies, newest first.
pub(crate) const NIGHTLIES: [u64; 5] = [65040, 64980, 64920, 64860, 64800];
const WEBHOOKS: [u64; 3] = [65098, 65070, 65010];

const CULPRIT: &str = "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2";
const TEST_FILE_COMMIT: &str = "c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4";
const FIXED_TEST: &str =
    "basic_correctness/test_basic_correctness.py::test_models[False-facebook/opt-125m]";
const FIXED_ISSUE: u64 = 50001;
/// Tracks a test of a job that passed in every nightly of the window: silent, close it?
const SILENT_ISSUE: u64 = 50002;
const SILENT_TITLE: &str =
    "[CI Failure]: Kernels Core Operation Test - kernels/test_concat_mla_q.py";

fn commit(n: u64) -> String {
    if n == CURRENT {
        "1acd67a795ebccdf9b9db7697ae9082058301657".into()
    } else {
        format!("{:040x}", 0xabc0000u64 + n)
    }
}

/// Which jobs fail in which previous nightly (all others pass there).
fn failed_in(n: u64, job: &str) -> bool {
    match job {
        // Continuing and tracked (#42336): failed in the two previous nightlies.
        "Language Models Test (Extended Generation)" => n >= NIGHTLIES[1],
        // Failing since before the window.
        "Transformers Nightly Models" => true,
        // Intermittent: passed in the previous nightly, failed in the one before.
        "Distributed Model Tests (2 GPUs)" => n == NIGHTLIES[1],
        // The agent was lost in the previous nightly; it failed the same way before that.
        "AMD: V1 Sample + Logits (mi300_1)" => n == NIGHTLIES[0] || n == NIGHTLIES[1],
        // Job-level, continuing.
        "Examples" => n == NIGHTLIES[0],
        // Fixed: failed in the previous nightly, passes now.
        "Basic Correctness" => n == NIGHTLIES[0],
        _ => false,
    }
}

fn build(n: u64) -> Value {
    let mut build: Value =
        serde_json::from_str(ciwatch_mcp::fixtures::BUILD_65099).expect("fixture");
    if n == CURRENT {
        return build;
    }
    let nightly = NIGHTLIES.contains(&n);
    build["number"] = n.into();
    build["commit"] = commit(n).into();
    build["web_url"] = format!("https://buildkite.com/vllm/ci/builds/{n}").into();
    build["source"] = if nightly { "schedule" } else { "webhook" }.into();
    build["message"] = if nightly {
        "Full CI run - nightly"
    } else {
        "Merge pull request"
    }
    .into();
    let day = 8 - (CURRENT - n).div_ceil(60);
    build["created_at"] = format!("2026-05-{day:02}T06:00:00.000Z").into();
    build["finished_at"] = format!("2026-05-{day:02}T10:00:00.000Z").into();
    build["state"] = "failed".into();
    for job in build["jobs"].as_array_mut().expect("jobs") {
        let id = format!("{n:08}{}", &job["id"].as_str().expect("id")[8..]);
        job["id"] = id.into();
        let name = job["name"].as_str().unwrap_or_default().to_string();
        if job["type"] != "script" {
            continue;
        }
        let failed = nightly && failed_in(n, &name);
        job["state"] = if failed { "failed" } else { "passed" }.into();
        job["exit_status"] = if failed { 1 } else { 0 }.into();
        if failed && n == NIGHTLIES[0] && name.starts_with("AMD: V1 Sample") {
            job["exit_status"] = (-1).into();
        }
    }
    build
}

/// Markup planted by the HUD's tests in a log line, an issue title and a commit message.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Planted {
    pub log: Option<&'static str>,
    pub issue: Option<&'static str>,
    pub commit: Option<&'static str>,
}

fn log(n: u64, job_id: &str, planted: Planted) -> Vec<u8> {
    let fixture = ciwatch_mcp::fixtures::build_65099();
    let original = fixture
        .jobs()
        .iter()
        .find(|j| j.id[8..] == job_id[8..])
        .expect("a fixture job");
    if original.display_name() == "Basic Correctness" && n != CURRENT {
        let text = format!(
            "+++ :test_tube: Command (1/4): export VLLM_WORKER_MULTIPROC_METHOD=spawn\n+++ :test_tube: Command (2/4): pytest -v -s basic_correctness/test_cumem.py\nbasic_correctness/test_cumem.py::test_basic_cumem PASSED\n+++ :test_tube: Command (3/4): pytest -v -s basic_correctness/test_basic_correctness.py\n{FIXED_TEST} FAILED\n=========================== short test summary info ============================\nFAILED {FIXED_TEST} - AssertionError: outputs differ\n🚨 Error: The command exited with status 1\n"
        );
        return ciwatch_mcp::fixtures::to_raw_format(&text);
    }
    let raw = ciwatch_mcp::fixtures::raw_log(original);
    match planted.log {
        // Every error line that names an AssertionError now carries the markup too.
        Some(markup) if n == CURRENT => String::from_utf8_lossy(&raw)
            .replace("AssertionError", &format!("AssertionError {markup}"))
            .into_bytes(),
        _ => raw,
    }
}

struct Buildkite(Planted);
impl Respond for Buildkite {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let path = request.url.path().to_string();
        let segments: Vec<&str> = path.split('/').collect();
        if path.ends_with("/log") {
            let n: u64 = segments[segments.len() - 4].parse().unwrap_or(0);
            return crate::common::log_response(
                &log(n, segments[segments.len() - 2], self.0),
                request,
            );
        }
        if path.ends_with("/builds") {
            let without_jobs = request
                .url
                .query_pairs()
                .any(|(k, v)| k == "exclude_jobs" && v == "true");
            let mut numbers: Vec<u64> = [CURRENT]
                .into_iter()
                .chain(WEBHOOKS)
                .chain(NIGHTLIES)
                .collect();
            numbers.sort_by(|a, b| b.cmp(a));
            let listing: Vec<Value> = numbers
                .into_iter()
                .map(|n| {
                    let mut b = build(n);
                    if without_jobs {
                        b.as_object_mut().expect("object").remove("jobs");
                    }
                    b
                })
                .collect();
            return ResponseTemplate::new(200).set_body_json(listing);
        }
        let n: u64 = segments.last().and_then(|s| s.parse().ok()).unwrap_or(0);
        ResponseTemplate::new(200).set_body_json(build(n))
    }
}

/// The fixture's issues, plus one tracking the test that is fixed now and one whose test has
/// passed for longer.
struct Issues(Planted);
impl Respond for Issues {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let query = request
            .url
            .query_pairs()
            .find(|(k, _)| k == "q")
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        let mut body = ciwatch_mcp::fixtures::github_search(&query);
        if !query.contains("is:closed") && !query.contains("-label:") {
            let items = body["items"].as_array_mut().expect("items");
            for (number, title) in [
                (
                    FIXED_ISSUE,
                    format!("[CI Failure]: Basic Correctness - {FIXED_TEST}"),
                ),
                (SILENT_ISSUE, SILENT_TITLE.to_string()),
            ] {
                let mut extra = items[0].clone();
                extra["number"] = number.into();
                extra["id"] = (2_000_000_000u64 + number).into();
                extra["title"] = title.into();
                extra["html_url"] =
                    format!("https://github.com/vllm-project/vllm/issues/{number}").into();
                items.push(extra);
            }
            body["total_count"] = items.len().into();
        }
        if let (Some(markup), Some(items)) = (self.0.issue, body["items"].as_array_mut()) {
            for item in items {
                let title = format!("{} {markup}", item["title"].as_str().unwrap_or_default());
                item["title"] = title.into();
                item["html_url"] = "javascript:alert(document.domain)".into();
            }
        }
        ResponseTemplate::new(200).set_body_json(body)
    }
}

/// The onset range: a culprit touching a file of the Elastic EP traceback, a decoy in the same
/// directory, one touching the compile test's file, and an unrelated one (oldest first).
fn range_files() -> Vec<(&'static str, &'static str, Vec<&'static str>)> {
    vec![
        (
            "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1",
            "[Distributed] pynccl cleanup",
            vec!["vllm/distributed/device_communicators/pynccl.py"],
        ),
        (
            CULPRIT,
            "[DeepEP] size the IPC buffers per peer",
            vec![
                "vllm/distributed/device_communicators/all2all.py",
                "vllm/envs.py",
            ],
        ),
        (
            TEST_FILE_COMMIT,
            "[Compile] count compiled vision submodules",
            vec!["tests/compile/fullgraph/test_multimodal_compile.py"],
        ),
        (
            "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3",
            "[Docs] typo",
            vec!["docs/index.md"],
        ),
    ]
}

pub(crate) async fn github_server(planted: Planted) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/search/issues"))
        .respond_with(Issues(planted))
        .mount(&server)
        .await;
    let commits: Vec<Value> = range_files()
        .iter()
        .map(|(sha, title, _)| {
            let title = format!("{title}{}", planted.commit.unwrap_or_default());
            json!({"sha": sha, "commit": {"message": format!("{title}\n\nSigned-off-by: x"), "author": {"name": "Dev", "email": "dev@example.com", "date": "2026-05-07T12:00:00Z"}}, "author": {"login": format!("dev-{}", &sha[..2])}, "html_url": format!("https://github.com/vllm-project/vllm/commit/{sha}")})
        })
        .collect();
    Mock::given(method("GET"))
        .and(path(format!(
            "/repos/vllm-project/vllm/compare/{}...{}",
            commit(NIGHTLIES[0]),
            commit(CURRENT)
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "ahead", "ahead_by": 4, "behind_by": 0, "total_commits": 4, "commits": commits, "files": []})))
        .mount(&server)
        .await;
    for (sha, _, files) in range_files() {
        let files: Vec<Value> = files
            .iter()
            .map(|f| json!({"filename": f, "status": "modified", "additions": 3, "deletions": 1, "changes": 4}))
            .collect();
        Mock::given(method("GET"))
            .and(path(format!("/repos/vllm-project/vllm/commits/{sha}")))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"sha": sha, "files": files})),
            )
            .mount(&server)
            .await;
    }
    server
}

pub(crate) async fn buildkite_server(planted: Planted) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex("^/v2/organizations/vllm/pipelines/ci/builds"))
        .respond_with(Buildkite(planted))
        .mount(&server)
        .await;
    server
}

/// The latest-nightly tool's path: pick the nightly, scan it compared with 5 earlier ones.
async fn scan_latest_nightly(
    buildkite: &MockServer,
    github: &GitHubClient,
    store: Option<&ciwatch_mcp::storage::Store>,
) -> ScanResult {
    let client = crate::common::client(&crate::common::settings(&buildkite.uri()));
    let choice = watch::latest_nightly(&client, "vllm", "ci", "main", u32::MAX / 3600)
        .await
        .expect("nightly");
    assert_eq!(choice.number, CURRENT);
    let reader = JobReader::new(&client, store);
    let mut options = crate::common::scan_options(Budgets::default(), DetailLevel::Full, true);
    options.compare_nightlies = 5;
    watch::scan_build(
        &reader,
        Enrichment {
            github: Some(github),
            owners: None,
        },
        &BuildKey::new("vllm", "ci", choice.number),
        &options,
        &NoProgress,
    )
    .await
    .expect("scan")
}

fn github(uri: &str) -> GitHubClient {
    GitHubClient::new(GitHubOptions {
        api_url: uri.to_string(),
        token: Some(Secret::new("ghp_test")),
        closed_days: 30,
        cache_ttl: Duration::from_secs(600),
        timeout: Duration::from_secs(5),
    })
    .expect("client")
}

#[tokio::test]
async fn the_latest_nightly_says_what_is_new_continuing_intermittent_and_fixed() {
    let buildkite = buildkite_server(Planted::default()).await;
    let github_mock = github_server(Planted::default()).await;
    let github = github(&github_mock.uri());
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ciwatch_mcp::storage::Store::from(Cache::open(dir.path()).expect("store"));

    let result = scan_latest_nightly(&buildkite, &github, Some(&store)).await;
    let cold = buildkite.received_requests().await.expect("recorded").len();
    assert!(cold <= 80, "cold: {cold} Buildkite requests");
    let comparison = result.comparison.clone().expect("compared");
    assert_eq!(
        comparison.compared_builds,
        NIGHTLIES.to_vec(),
        "webhook builds are not nightlies"
    );

    let by_test: HashMap<&str, &ciwatch_mcp::model::FailureClassification> = result
        .failures
        .iter()
        .map(|f| (f.test_failure.test_name.as_str(), f))
        .collect();
    let find = |part: &str| {
        by_test
            .iter()
            .find(|(name, _)| name.contains(part))
            .map(|(_, f)| *f)
            .unwrap_or_else(|| panic!("no failure {part}"))
    };
    let trend = |part: &str| find(part).since.trend.clone().expect("a trend");
    // One draft per cause: the draft of the cause a failure belongs to.
    let cause_of = |failure: &ciwatch_mcp::model::FailureClassification| {
        result
            .causes
            .iter()
            .find(|c| Some(&c.cause_id) == failure.cause_id.as_ref())
            .expect("every failure has a cause")
    };

    // New, job-level, its root cause under the wrapper, and the culprit first.
    let elastic = find("Elastic EP Scaling Test");
    assert_eq!(trend("Elastic EP").trend, Trend::New);
    assert_eq!(elastic.category, Category::NewRegression);
    assert_eq!(
        elastic.test_failure.error_message.as_deref(),
        Some("RuntimeError: DeepEP error: CUDA IPC handle could not be opened for peer rank 1")
    );
    let onset = elastic.since.onset.clone().expect("onset");
    assert_eq!(
        (onset.last_passed_build, onset.first_failed_build),
        (NIGHTLIES[0], CURRENT)
    );
    assert_eq!(
        onset.compare_url,
        format!(
            "https://github.com/vllm-project/vllm/compare/{}...{}",
            commit(NIGHTLIES[0]),
            commit(CURRENT)
        )
    );
    assert_eq!(onset.suspects[0].sha, CULPRIT, "{:?}", onset.suspects);
    assert!(onset.suspects[0]
        .reason
        .contains("all2all.py, named in the traceback"));
    assert_eq!(
        onset.suspects[1].closeness, 2,
        "the decoy in the same directory is next"
    );
    // A new test failure: the commit touching its test file first.
    let compile = find("test_qwen2_5_vl_compilation");
    assert_eq!(
        compile.since.onset.as_ref().expect("onset").suspects[0].sha,
        TEST_FILE_COMMIT
    );
    let draft = cause_of(compile).draft_issue.as_deref().unwrap_or_default();
    assert!(draft.starts_with(
        "Title: [CI Failure]: PyTorch Compilation Unit Tests - compile/fullgraph/test_multimodal_compile.py"
    ), "{draft}");
    // The onset links to its bisect plan: in the draft, and as the failure page's button.
    assert!(
        draft.contains(&format!(
            "`ciwatch_bisect_plan` with failure_key `{}`",
            compile.failure_key
        )),
        "{draft}"
    );
    let place = ciwatch_mcp::hud::Place::new("vllm", "ci");
    let page = ciwatch_mcp::hud::test_page(&result, &compile.failure_key, &place).expect("page");
    assert!(
        page.contains(&format!(
            "action=\"{}\"",
            place.bisect(&compile.failure_key).replace('&', "&amp;")
        )),
        "the failure page has no bisect button"
    );

    // Continuing and tracked: stays KNOWN_TRACKED, with its streak.
    let tracked = trend("test_models[True-False-5-32-naver");
    assert_eq!(
        (tracked.trend, tracked.streak, tracked.first_failed_build),
        (Trend::Continuing, 3, NIGHTLIES[1])
    );
    assert_eq!(
        find("test_models[True-False-5-32-naver").category,
        Category::KnownTracked
    );

    // Failing since before the window, untracked: says so, and gets a draft issue.
    let old = find("test_single_image_models[glm4v");
    let old_trend = old.since.trend.clone().expect("trend");
    assert_eq!(
        (
            old_trend.trend,
            old_trend.streak,
            old_trend.streak_reaches_past_window
        ),
        (Trend::Continuing, 6, true)
    );
    assert_eq!(old.category, Category::ContinuingUntracked);
    assert!(
        old.reason
            .as_deref()
            .is_some_and(|r| r.contains("Failing since build 64800, 6 nightlies")),
        "{:?}",
        old.reason
    );
    let draft = cause_of(old).draft_issue.as_deref().expect("draft");
    // One draft per untracked cause, naming every member test and job; a cause whose issue
    // was closed is proposed for reopening instead.
    use ciwatch_mcp::model::{IssueAction, IssueState};
    let untracked: Vec<_> = result
        .causes
        .iter()
        .filter(|c| {
            matches!(
                c.category,
                Category::NewRegression | Category::ContinuingUntracked
            ) && c
                .issue
                .as_ref()
                .is_none_or(|i| !(i.tracking && i.state == IssueState::Open))
        })
        .collect();
    let (reopen, untracked): (Vec<_>, Vec<_>) = untracked.into_iter().partition(|c| {
        c.issue
            .as_ref()
            .is_some_and(|i| i.state == IssueState::Closed)
    });
    assert!(!untracked.is_empty());
    for cause in &reopen {
        let advice = cause.issue_advice.as_ref().expect("advice");
        assert_eq!(
            advice.action,
            IssueAction::ReopenClosed,
            "{}",
            advice.reason
        );
        assert!(
            cause.draft_issue.is_none(),
            "no duplicate of a closed issue"
        );
    }
    for cause in &untracked {
        let advice = cause.issue_advice.as_ref().expect("advice");
        assert_eq!(advice.action, IssueAction::FileNew, "{}", advice.reason);
        let text = cause
            .draft_issue
            .as_deref()
            .expect("a draft per untracked cause");
        for failure in result
            .failures
            .iter()
            .filter(|f| cause.failure_keys.contains(&f.failure_key))
        {
            assert!(text.contains(&failure.test_failure.test_name), "{text}");
            assert!(text.contains(&failure.test_failure.job_name), "{text}");
        }
    }
    let drafted = result
        .causes
        .iter()
        .filter(|c| c.draft_issue.is_some())
        .count();
    assert_eq!(
        drafted,
        untracked.len(),
        "no draft for tracked, flaky or infra causes"
    );
    assert!(draft.contains("### Name of failing test"));
    assert!(
        draft.contains("Failing since nightly 64800: 6 consecutive nightlies"),
        "{draft}"
    );

    // Intermittent: flaky, not new.
    assert_eq!(trend("test_models_distributed").trend, Trend::Intermittent);
    assert_eq!(
        find("test_models_distributed").category,
        Category::FlakySuspected
    );

    // The previous nightly lost its agent: skipped, so the failure is continuing, not new.
    let amd = trend("test_w8a8_block_fp8_fused_moe[0-dtype0-block_size0-1-2-128");
    assert_eq!(
        (amd.trend, amd.streak, amd.first_failed_build),
        (Trend::Continuing, 2, NIGHTLIES[1])
    );
    assert!(
        amd.notes
            .iter()
            .any(|n| n.contains("65040 skipped: the agent was lost")),
        "{:?}",
        amd.notes
    );

    // Job-level, continuing: identity by job and error signature.
    let examples = by_test
        .get("Examples")
        .expect("the Examples job-level failure");
    assert_eq!(
        examples.since.trend.as_ref().map(|t| t.trend),
        Some(Trend::Continuing)
    );

    // NEW_REGRESSION only for failures that are new (or that nothing could be compared with).
    for f in &result.failures {
        if f.category == Category::NewRegression {
            let t = f.since.trend.as_ref().expect("trend").trend;
            assert!(
                matches!(t, Trend::New | Trend::Unknown),
                "{}: {t:?}",
                f.test_failure.test_name
            );
        }
    }

    // Fixed, with the issue to close.
    let fixed = result
        .fixed
        .iter()
        .find(|f| f.test_name == FIXED_TEST)
        .unwrap_or_else(|| panic!("{:?}", result.fixed));
    assert_eq!(fixed.evidence, "the job passed");
    assert_eq!(fixed.issue.as_ref().map(|i| i.number), Some(FIXED_ISSUE));

    // Tracked issues both ways: the silent one is proposed for closing; the one fixed since
    // the previous nightly is not silent yet (it failed there); a continuing one still fails.
    use ciwatch_mcp::model::TrackedStatus;
    let tracked = |number: u64| result.tracked_issues.iter().find(|t| t.number == number);
    let silent = tracked(SILENT_ISSUE).expect("the silent issue is listed");
    assert_eq!(silent.status, TrackedStatus::Silent);
    assert!(
        silent
            .suggestion
            .contains("passed in the last 3 nightlies (65099, 65040, 64980): close it?"),
        "{}",
        silent.suggestion
    );
    assert!(tracked(FIXED_ISSUE).is_none_or(|t| t.status != TrackedStatus::Silent));
    let still = result
        .tracked_issues
        .iter()
        .filter(|t| t.status == TrackedStatus::StillFailing)
        .count();
    assert!(still > 0, "{:?}", result.tracked_issues);

    // The reports lead with what changed.
    let daily = result.daily_findings_text.as_deref().expect("full detail");
    let changed = daily
        .find("## Since the Last Nightly")
        .expect("what changed");
    assert!(changed < daily.find("## Failures by Category").expect("categories"));
    assert!(daily.contains("close it?"), "{daily}");
    let standup = result.standup_summary_text.as_deref().expect("standup");
    assert!(
        standup.contains(&format!(
            "Since the last nightly: {} new, {} continuing, {} fixed.",
            comparison.new, comparison.continuing, comparison.fixed
        )),
        "{standup}"
    );

    // The next call reads the jobs the first left unread (max_jobs counts what a call
    // requests); asked again after that, the store answers.
    let whole = scan_latest_nightly(&buildkite, &github, Some(&store)).await;
    assert!(whole.complete, "{:?}", whole.incomplete);
    let before_warm = buildkite.received_requests().await.expect("recorded").len();
    let again = scan_latest_nightly(&buildkite, &github, Some(&store)).await;
    let warm = buildkite.received_requests().await.expect("recorded").len() - before_warm;
    assert!(warm <= 5, "warm: {warm} Buildkite requests");
    assert_eq!(again.comparison, whole.comparison);
    eprintln!(
        "nightly comparison: cold {cold} Buildkite requests, {} GitHub; warm {warm}",
        result.stats.github_requests
    );
}
