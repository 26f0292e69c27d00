//! The bisect plan against a main branch of 12 commits between two nightlies, each commit's
//! build made from real build 61012 (its 213 job objects, 16 block steps in front of AMD
//! mirrors, trimmed to the fields read): the failing job "AMD: V1 e2e (2 GPUs) (mi325_2)"
//! passed at some commits, failed with the signature at others and with another error at one,
//! is blocked behind "Run AMD: V1 e2e (2 GPUs)" at several, is not in one build, and one commit
//! has no build. Requests are counted from the mocks' received requests.

use ciwatch_mcp::github::{GitHubClient, GitHubOptions};
use ciwatch_mcp::input::NodeId;
use ciwatch_mcp::model::{BisectPlan, BisectStatus, NextAction, RunVerdict};
use ciwatch_mcp::secret::Secret;
use ciwatch_mcp::watch::{self, BisectOptions, BisectTarget};
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const JOB: &str = "AMD: V1 e2e (2 GPUs) (mi325_2)";
const TEST: &str = "v1/e2e/test_spec_decode.py::test_eagle_correctness[TREE_ATTN-llama3]";
const SAME: &str = "AssertionError: acceptance rate 0.412 is below the expected 0.600";
const OTHER: &str = "RuntimeError: NCCL error in: /pytorch/torch/csrc/distributed/c10d/NCCLUtils.cpp:77, unhandled cuda error";
const GOOD: &str = "1111111111111111111111111111111111111111";
/// Commits of the range, oldest first: the last is the first bad nightly's.
const COMMITS: usize = 12;
const FIRST_BUILD: u64 = 70_000;

/// What main's build at commit `i` (0-based) did with the job, in the scenario.
#[derive(Clone, Copy, PartialEq)]
enum Run {
    Passed,
    Same,
    Other,
    Blocked,
    Missing,
    NoBuild,
}

/// The scenario: last pass at 2, another error at 3, no build at 4, blocked at 5 and 6, the
/// signature from 7 on (9 is not in its build, 10 blocked). With `unblocked_midpoint`, the
/// run unblocked at 5 passed and 6 failed with the signature: the culprit is 6, confirmed.
fn scenario(unblocked_midpoint: bool) -> [Run; COMMITS] {
    use Run::*;
    let mut runs = [
        Passed, Blocked, Passed, Other, NoBuild, Blocked, Blocked, Same, Same, Missing, Blocked,
        Same,
    ];
    if unblocked_midpoint {
        runs[5] = Passed;
        runs[6] = Same;
    }
    runs
}

fn sha(i: usize) -> String {
    format!("{:040x}", 0xc0ffee000 + i)
}

fn committed_at(i: usize) -> String {
    format!("2026-11-20T{:02}:00:00Z", 8 + i)
}

/// The build of commit `i`: real 61012 with its number, commit and job ids rewritten, and the
/// job (and its block step) set as the scenario says.
fn build(i: usize, run: Run) -> Value {
    let mut build: Value = serde_json::from_str(include_str!(
        "../../wiremock-fixtures/builds/61012_compact.json"
    ))
    .expect("fixture");
    let n = FIRST_BUILD + i as u64;
    build["number"] = n.into();
    build["commit"] = sha(i).into();
    build["source"] = "webhook".into();
    build["state"] = "passed".into();
    build["web_url"] = format!("https://buildkite.com/vllm/ci/builds/{n}").into();
    build["created_at"] = format!("2026-11-20T{:02}:10:00.000Z", 8 + i).into();
    let jobs: Vec<Value> = build["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .cloned()
        .filter_map(|mut job| {
            let id = format!("{n:08}{}", &job["id"].as_str().expect("id")[8..]);
            job["web_url"] = format!("https://buildkite.com/vllm/ci/builds/{n}#{id}").into();
            job["id"] = id.into();
            if job["state"] == "running" {
                job["state"] = "passed".into();
            }
            let ours = job["name"] == JOB;
            let our_block = job["label"] == "Run AMD: V1 e2e (2 GPUs)";
            if (ours || our_block) && run == Run::Missing {
                return None;
            }
            if ours {
                let (state, exit) = match run {
                    Run::Passed => ("passed", json!(0)),
                    Run::Same | Run::Other => ("failed", json!(1)),
                    _ => ("blocked", Value::Null),
                };
                job["state"] = state.into();
                job["exit_status"] = exit;
                if state != "blocked" {
                    job["started_at"] = "2026-11-20T12:00:00.000Z".into();
                    job["finished_at"] = "2026-11-20T12:30:00.000Z".into();
                }
            }
            if our_block && run != Run::Blocked {
                job["state"] = "passed".into();
            }
            Some(job)
        })
        .collect();
    build["jobs"] = jobs.into();
    build
}

/// The failed job's raw log: a pytest run whose one failure carries `error`.
fn log(error: &str) -> Vec<u8> {
    let text = format!(
        "+++ :test_tube: Command (1/1): pytest -v -s v1/e2e/test_spec_decode.py\n\
         v1/e2e/test_spec_decode.py::test_ngram_correctness[llama3] PASSED\n\
         {TEST} FAILED\n\
         =================================== FAILURES ===================================\n\
         ________________ test_eagle_correctness[TREE_ATTN-llama3] ________________\n\
         \n\
         >       assert acceptance_rate >= expected\n\
         E       {error}\n\
         \n\
         v1/e2e/test_spec_decode.py:212: {}\n\
         =========================== short test summary info ============================\n\
         FAILED {TEST} - {error}\n\
         ========================= 1 failed, 1 passed in 812.31s =========================\n\
         🚨 Error: The command exited with status 1\n",
        error.split(':').next().unwrap_or_default()
    );
    ciwatch_mcp::fixtures::to_raw_format(&text)
}

struct Listing(bool);
impl Respond for Listing {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        // Newest first, with a build of a commit outside the range (ignored).
        let mut builds: Vec<Value> = scenario(self.0)
            .iter()
            .enumerate()
            .filter(|(_, run)| **run != Run::NoBuild)
            .map(|(i, run)| build(i, *run))
            .rev()
            .collect();
        let mut foreign = build(0, Run::Same);
        foreign["number"] = (FIRST_BUILD + 99).into();
        foreign["commit"] = "2222222222222222222222222222222222222222".into();
        builds.insert(0, foreign);
        ResponseTemplate::new(200).set_body_json(builds)
    }
}

struct Logs(bool);
impl Respond for Logs {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let segments: Vec<&str> = request.url.path().split('/').collect();
        let n: u64 = segments[segments.len() - 4].parse().expect("build number");
        let run = scenario(self.0)[(n - FIRST_BUILD) as usize];
        let error = if run == Run::Other { OTHER } else { SAME };
        crate::common::log_response(&log(error), request)
    }
}

async fn buildkite(unblocked_midpoint: bool) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/organizations/vllm/pipelines/ci/builds"))
        .respond_with(Listing(unblocked_midpoint))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(
            r"^/v2/organizations/vllm/pipelines/ci/builds/\d+/jobs/[^/]+/log",
        ))
        .respond_with(Logs(unblocked_midpoint))
        .mount(&server)
        .await;
    server
}

async fn github() -> MockServer {
    let server = MockServer::start().await;
    let commits: Vec<Value> = (0..COMMITS)
        .map(|i| {
            json!({"sha": sha(i), "commit": {"message": format!("[Core] change {i}\n\nSigned-off-by: x"), "author": {"name": "Dev", "date": committed_at(i)}, "committer": {"name": "GitHub", "date": committed_at(i)}}, "author": {"login": format!("dev-{i}")}})
        })
        .collect();
    Mock::given(method("GET"))
        .and(path(format!(
            "/repos/vllm-project/vllm/compare/{GOOD}...{}",
            sha(COMMITS - 1)
        )))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "ahead", "ahead_by": COMMITS, "total_commits": COMMITS, "commits": commits, "files": []})))
        .mount(&server)
        .await;
    server
}

fn target(error: Option<&str>, also_on_amd: bool) -> BisectTarget {
    BisectTarget {
        test: Some(NodeId::parse(TEST).expect("id")),
        job_name: JOB.into(),
        error_message: error.map(str::to_string),
        stack_trace: None,
        good_commit: GOOD.into(),
        bad_commit: sha(COMMITS - 1),
        also_on_amd,
        suspects: Vec::new(),
    }
}

async fn plan(unblocked_midpoint: bool, target: &BisectTarget) -> (BisectPlan, usize, usize) {
    let (buildkite, github) = (buildkite(unblocked_midpoint).await, github().await);
    let settings = crate::common::settings(&buildkite.uri());
    let client = crate::common::client(&settings);
    let reader = watch::JobReader::new(&client, None);
    let github_client = GitHubClient::new(GitHubOptions {
        api_url: github.uri(),
        token: Some(Secret::new("ghp_test")),
        closed_days: 30,
        cache_ttl: Duration::from_secs(600),
        timeout: Duration::from_secs(5),
    })
    .expect("client");
    let options = BisectOptions {
        pipeline: ciwatch_mcp::buildkite::PipelineKey::new("vllm", "ci"),
        branch: "main".into(),
        repo: "vllm-project/vllm".into(),
        max_logs: watch::DEFAULT_BISECT_LOGS,
        limits: settings.budgets().limits(),
    };
    let plan = watch::bisect_plan(&reader, &github_client, target, &options)
        .await
        .expect("plan");
    let buildkite_requests = buildkite.received_requests().await.expect("recorded");
    let listing = &buildkite_requests[0];
    let query: Vec<(String, String)> = listing.url.query_pairs().into_owned().collect();
    assert!(
        query.contains(&("branch".into(), "main".into())),
        "{query:?}"
    );
    // The window: the first commit's time less an hour, the last one's plus twelve.
    assert!(
        query.contains(&("created_from".into(), "2026-11-20T07:00:00Z".into())),
        "{query:?}"
    );
    assert!(
        query.contains(&("created_to".into(), "2026-11-21T07:00:00Z".into())),
        "{query:?}"
    );
    let github_requests = github.received_requests().await.expect("recorded").len();
    (plan, buildkite_requests.len(), github_requests)
}

#[tokio::test]
async fn main_runs_narrow_the_range_and_name_the_runs_that_halve_it() {
    let (plan, buildkite_requests, github_requests) = plan(false, &target(Some(SAME), true)).await;
    let verdicts: Vec<RunVerdict> = plan.commits.iter().map(|c| c.verdict).collect();
    use RunVerdict::*;
    assert_eq!(
        verdicts,
        [
            Passed,
            Blocked,
            Passed,
            FailedOther,
            NoBuild,
            Blocked,
            Blocked,
            FailedSame,
            FailedUnread,
            NotInBuild,
            Blocked,
            FailedUnread
        ],
        "{}",
        plan.summary
    );
    // Narrowed to commits 3..=7: after the pass at 2, through the first signature at 7.
    assert_eq!(plan.status, BisectStatus::Narrowed);
    let narrowed = plan.narrowed.as_ref().expect("narrowed");
    assert_eq!(
        (
            narrowed.after_commit.as_str(),
            narrowed.through_commit.as_str(),
            narrowed.commits
        ),
        (sha(2).as_str(), sha(7).as_str(), 5)
    );
    let in_range: Vec<bool> = plan.commits.iter().map(|c| c.in_narrowed_range).collect();
    assert_eq!(
        in_range,
        (0..COMMITS)
            .map(|i| (3..=7).contains(&i))
            .collect::<Vec<_>>()
    );
    assert_eq!(plan.culprit, None);
    assert_eq!(plan.runs_to_confirm, 3);
    // The midpoint (5) is blocked: unblock its block step on its build.
    let next = &plan.next[..];
    assert_eq!(next.len(), 1, "{next:?}");
    assert_eq!(next[0].commit, sha(5));
    assert_eq!(next[0].action, NextAction::Unblock);
    assert_eq!(next[0].build_number, Some(FIRST_BUILD + 5));
    let block = next[0].block.as_ref().expect("block step");
    assert_eq!(block.step_key, "block-amd-v1-e2e-2-gpus");
    assert!(
        block
            .unblock_url
            .as_deref()
            .is_some_and(|u| u.ends_with("/unblock")),
        "{block:?}"
    );
    // The commit with no build gets the step keys of a `/ci retry`, AMD mirror included.
    let no_build = &plan.commits[4];
    assert!(no_build.runs.is_empty());
    assert_eq!(
        no_build.retry_step_keys,
        ["amd-v1-e2e-2-gpus"],
        "an AMD mirror's own key is retried once"
    );
    // Another error is no evidence, and the plan says so.
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains(&format!("build {}", FIRST_BUILD + 3))
                && n.contains("another error")),
        "{:?}",
        plan.notes
    );
    // One listing and two logs (3, then 7: only where the state changes); one compare.
    assert_eq!((buildkite_requests, github_requests), (3, 1));
    assert_eq!(plan.stats.buildkite_requests, 3);
    assert_eq!(plan.stats.logs_read, 2);
    assert_eq!(plan.stats.github_requests, 1);
}

#[tokio::test]
async fn adjacent_evidence_confirms_the_culprit() {
    let (plan, buildkite_requests, _) = plan(true, &target(Some(SAME), false)).await;
    assert_eq!(plan.status, BisectStatus::Confirmed, "{}", plan.summary);
    assert_eq!(plan.culprit.as_deref(), Some(sha(6).as_str()));
    assert_eq!(plan.runs_to_confirm, 0);
    assert!(plan.next.is_empty());
    assert!(plan.summary.starts_with("Confirmed"), "{}", plan.summary);
    // One listing and one log: the failure right after the last pass.
    assert_eq!(buildkite_requests, 2);
}

#[tokio::test]
async fn without_an_error_line_any_failure_of_the_test_counts() {
    let (plan, _, _) = plan(false, &target(None, false)).await;
    // The other error at 3 now counts: the range is 3 alone, after the pass at 2.
    assert_eq!(plan.status, BisectStatus::Confirmed, "{}", plan.summary);
    assert_eq!(plan.culprit.as_deref(), Some(sha(3).as_str()));
}

/// Through rmcp's client over the sidecar: the tool answers the arguments form with the same
/// plan, and bad input gets a clear error before any request.
#[tokio::test]
async fn the_tool_plans_from_arguments_and_refuses_bad_ones_without_a_request() {
    use rmcp::model::CallToolRequestParams;
    let (buildkite, github) = (buildkite(false).await, github().await);
    let mut settings = crate::common::settings(&buildkite.uri());
    settings.github_api_url = github.uri();
    let client = crate::common::sidecar_client(settings).await;
    let call = |arguments: Value| {
        let request = CallToolRequestParams::new("ciwatch_bisect_plan")
            .with_arguments(arguments.as_object().cloned().expect("object"));
        client.call_tool(request)
    };
    let answer = call(json!({
        "job_name": JOB,
        "test_nodeid": TEST,
        "good_commit": GOOD,
        "bad_commit": sha(COMMITS - 1),
        "error_message": SAME,
    }))
    .await
    .expect("answer");
    assert_ne!(answer.is_error, Some(true), "{answer:?}");
    let plan: BisectPlan =
        serde_json::from_value(answer.structured_content.clone().expect("structured"))
            .expect("plan");
    assert_eq!(plan.status, BisectStatus::Narrowed);
    assert_eq!(plan.next[0].commit, sha(5));
    let text = format!("{:?}", answer.content);
    assert!(text.contains("Narrowed to 5 of 12 commits"), "{text}");
    let before = buildkite.received_requests().await.expect("recorded").len();
    for (arguments, says) in [
        (
            json!({"job_name": JOB, "good_commit": "main", "bad_commit": sha(1)}),
            "not a commit sha",
        ),
        (
            json!({"good_commit": GOOD, "bad_commit": sha(1)}),
            "give failure_key or cause_id",
        ),
        (json!({"failure_key": "k"}), "No scan has run yet"),
        (
            json!({"job_name": JOB, "good_commit": GOOD, "bad_commit": sha(1), "max_logs": 51}),
            "max_logs",
        ),
    ] {
        let refused = call(arguments.clone()).await;
        let message = match refused {
            Ok(result) => {
                assert_eq!(result.is_error, Some(true), "{arguments}: {result:?}");
                format!("{:?}", result.content)
            }
            Err(error) => error.to_string(),
        };
        assert!(message.contains(says), "{arguments}: {message}");
    }
    assert_eq!(
        buildkite.received_requests().await.expect("recorded").len(),
        before,
        "bad input made a request"
    );
}
