//! The HUD in a real browser: the sidecar's router against the wiremock Buildkite and GitHub of
//! `nightly_trend` (nightly 65099 and five earlier nightlies), pages loaded in headless Chromium
//! (Debian's `chromium`, installed by `scripts/test.sh`), and the MCP App view loaded in a small
//! host page that speaks the Apps postMessage protocol and hands it a real tool result. Planted
//! markup in a log line, an issue title and a commit message must stay text.

use crate::nightly_trend::{buildkite_server, github_server, Planted, CURRENT, NIGHTLIES};
use ciwatch_mcp::config::Secret;
use ciwatch_mcp::mcp::HttpOptions;
use ciwatch_mcp::model::ScanResult;
use rmcp::model::CallToolRequestParams;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::ServiceExt;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

const PLANTED: Planted = Planted {
    log: Some("PLANT-LOG<script>document.body.setAttribute('data-pwned','log')</script>\"><img src=x onerror=\"document.body.setAttribute('data-pwned','log-img')\"> javascript:alert(1)"),
    issue: Some("PLANT-ISSUE<script>document.body.setAttribute('data-pwned','issue')</script>\"><img src=x onerror=\"document.body.setAttribute('data-pwned','issue-img')\">"),
    commit: Some(" PLANT-COMMIT<script>document.body.setAttribute('data-pwned','commit')</script>\"><img src=x onerror=\"document.body.setAttribute('data-pwned','commit-img')\">"),
};

/// The sidecar on a loopback port, with its own token, over the mocks; its base URL.
async fn sidecar(buildkite: &MockServer, github: &MockServer, cache: &Path) -> String {
    sidecar_behind(buildkite, github, StoreAt::Dir(cache), None).await
}

/// Where a sidecar keeps its store: its own folder, or a Redis its replicas share.
enum StoreAt<'a> {
    Dir(&'a Path),
    Redis(&'a str),
}

async fn sidecar_behind(
    buildkite: &MockServer,
    github: &MockServer,
    store: StoreAt<'_>,
    endpoint_token: Option<&str>,
) -> String {
    let options = HttpOptions {
        token: endpoint_token.map(Secret::new),
        ..crate::common::loopback_options()
    };
    let settings = sidecar_settings(buildkite, github, store);
    crate::common::serve_sidecar(settings, &options).await
}

/// A sidecar with `options` and its own store over the nightly mocks (nothing planted): its base
/// URL, the Buildkite mock, and the store's folder (kept while the test runs).
pub(crate) async fn plain_sidecar(
    options: &HttpOptions,
) -> (String, MockServer, tempfile::TempDir) {
    let buildkite = buildkite_server(Planted::default()).await;
    let github = github_server(Planted::default()).await;
    let store = tempfile::tempdir().expect("temp dir");
    let settings = sidecar_settings(
        &buildkite,
        &github,
        StoreAt::Dir(&store.path().join("store")),
    );
    let base = crate::common::serve_sidecar(settings, options).await;
    (base, buildkite, store)
}

fn sidecar_settings(
    buildkite: &MockServer,
    github: &MockServer,
    store: StoreAt<'_>,
) -> ciwatch_mcp::config::Settings {
    let mut settings = crate::common::settings(&buildkite.uri());
    settings.github_api_url = github.uri();
    settings.github_token = Some(Secret::new("ghp_test"));
    // The fixture nightlies are from May 2026: look back far enough to find them.
    settings.nightly_window_hours = 24 * 365 * 20;
    settings.no_cache = false;
    match store {
        StoreAt::Dir(dir) => settings.cache_dir = Some(dir.to_path_buf()),
        StoreAt::Redis(url) => settings.store_url = Some(Secret::new(url)),
    }
    settings
}

/// Headless Chromium with this machine's closed network in mind (no background connections).
fn chromium(args: &[&str], profile: &Path) -> std::process::Output {
    let binary = ["chromium", "/usr/bin/chromium", "chromium-browser"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .expect("chromium runs (scripts/test.sh installs Debian's chromium)");
    std::process::Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .expect("chromium starts")
}

/// The DOM after the page's scripts ran (and a virtual 5 s for the App's messages).
fn dom(url: &str, profile: &Path) -> String {
    let out = chromium(&["--virtual-time-budget=5000", "--dump-dom", url], profile);
    assert!(
        out.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 DOM")
}

/// Text a browser serialised inside an element, back to markup.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// The full scan the HUD shows, read by the tools' own path (the same mocks).
pub(crate) async fn full_scan(base: &str) -> (ScanResult, Value) {
    let config = StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp"));
    let client =
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .expect("MCP over HTTP");
    let call = |detail: &str| {
        CallToolRequestParams::new("ciwatch_scan_latest_nightly").with_arguments(
            json!({"detail_level": detail})
                .as_object()
                .cloned()
                .expect("object"),
        )
    };
    let full = client.call_tool(call("full")).await.expect("full scan");
    let summary = client
        .call_tool(call("summary"))
        .await
        .expect("summary scan");
    let scan: ScanResult =
        serde_json::from_value(full.structured_content.expect("structured")).expect("a scan");
    (scan, serde_json::to_value(&summary).expect("result"))
}

fn every_element_is_inert(dom: &str, what: &str) {
    assert!(!dom.contains("data-pwned=\""), "{what}: planted script ran");
    assert!(
        !dom.to_ascii_lowercase().contains("<img"),
        "{what}: planted <img> became an element"
    );
    assert!(
        !dom.contains("href=\"javascript:"),
        "{what}: a javascript: link is live"
    );
}

/// Outcome classes of the grid's cells, row by row, as the scan says they should be.
fn expected_cells(scan: &ScanResult) -> Vec<(String, String)> {
    scan.failures
        .iter()
        .map(|f| {
            let runs = f
                .since
                .trend
                .as_ref()
                .map(|t| t.runs.clone())
                .unwrap_or_default();
            (f.failure_key.clone(), format!("F{runs:?<5}"))
        })
        .collect()
}

/// Every failure of `scan` is one row with its cells as the scan says, every cause one entry.
fn draws_every_failure_and_cause(dom: &str, scan: &ScanResult, what: &str) {
    for failure in &scan.failures {
        let row = format!("data-failure-key=\"{}\"", failure.failure_key);
        assert_eq!(
            dom.matches(&row).count(),
            1,
            "{what}: failure {}",
            failure.failure_key
        );
    }
    for cause in &scan.causes {
        let entry = format!("data-cause-id=\"{}\"", cause.cause_id);
        assert_eq!(
            dom.matches(&entry).count(),
            1,
            "{what}: cause {}",
            cause.cause_id
        );
    }
    for (key, cells) in expected_cells(scan) {
        assert_eq!(
            cells_of_row(dom, &key),
            cells,
            "{what}: the cells of failure {key}"
        );
    }
}

/// Each grid row of a drawn page, in order: its failure key and its text (name, error line,
/// and a symbol per nightly), tags and runs of white space left out.
fn rows_of(dom: &str) -> Vec<(String, String)> {
    let tag = regex::Regex::new(r"<[^>]*>").expect("regex");
    dom.split("<tr data-failure-key=\"")
        .skip(1)
        .map(|row| {
            let (key, rest) = row.split_once('"').expect("the key's end");
            let row = &rest[..rest.find("</tr>").expect("row end")];
            let text = tag.replace_all(row, " ");
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            (key.to_string(), unescape(&text))
        })
        .collect()
}

fn cells_of_row(dom: &str, key: &str) -> String {
    let start = dom
        .find(&format!("data-failure-key=\"{key}\""))
        .unwrap_or_else(|| panic!("row {key}"));
    let row = &dom[start..start + dom[start..].find("</tr>").expect("row end")];
    row.match_indices("class=\"cell ")
        .map(|(i, _)| match &row[i + 12..i + 16] {
            "fail" => 'F',
            "pass" => 'P',
            "notr" => 'N',
            _ => '?',
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hud_shows_every_failure_and_cause_in_a_real_browser_and_costs_no_request_warm() {
    let buildkite = buildkite_server(Planted::default()).await;
    let github = github_server(Planted::default()).await;
    let work = tempfile::tempdir().expect("temp dir");
    let base = sidecar(&buildkite, &github, &work.path().join("store")).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    let before = http
        .get(format!("{base}/hud"))
        .send()
        .await
        .expect("GET /hud");
    assert_eq!(before.status(), 200);
    assert!(before
        .text()
        .await
        .expect("page")
        .contains("No nightly scanned yet"));
    let refreshed = http
        .post(format!("{base}/hud/vllm/ci/refresh"))
        .header("origin", base.as_str())
        .send()
        .await
        .expect("refresh");
    assert_eq!(refreshed.status(), 303, "the refresh goes back to the page");
    let (scan, _) = full_scan(&base).await;
    assert_eq!(scan.build_info.build_number, CURRENT.to_string());

    let requests = buildkite.received_requests().await.expect("recorded").len();
    let page = http
        .get(format!("{base}/hud"))
        .send()
        .await
        .expect("GET /hud");
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .expect("policy")
        .to_string();
    assert!(policy.contains("script-src 'none'"), "{policy}");
    let page_bytes = page.text().await.expect("page").len();
    let dom = dom(&format!("{base}/hud"), &work.path().join("chromium"));
    assert_eq!(
        buildkite.received_requests().await.expect("recorded").len(),
        requests,
        "opening the HUD with the scan held makes no Buildkite request"
    );

    assert!(scan.total_failures > 5 && !scan.causes.is_empty());
    draws_every_failure_and_cause(&dom, &scan, "the HUD");
    assert_eq!(
        dom.matches("<th class=\"build\">").count(),
        1 + NIGHTLIES.len()
    );
    for failure in scan.failures.iter().filter(|f| f.job_id.is_some()) {
        let job = format!(
            "href=\"https://buildkite.com/vllm/ci/builds/{CURRENT}#{}\"",
            failure.job_id.as_deref().unwrap_or_default()
        );
        assert!(dom.contains(&job), "{job}");
    }
    assert!(
        dom.contains(&format!(
            "href=\"https://buildkite.com/vllm/ci/builds/{}#",
            NIGHTLIES[0]
        )),
        "earlier cells link to their jobs"
    );

    let first = &scan.failures[0];
    let strip = self::dom(
        &format!("{base}/hud/vllm/ci/test?id={}", first.failure_key),
        &work.path().join("chromium"),
    );
    assert_eq!(
        cells_of_row(
            &strip.replace("<tr>", "<tr data-failure-key=\"strip\">"),
            "strip"
        )
        .len(),
        1 + NIGHTLIES.len()
    );

    let screenshot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hud.png");
    let shot = chromium(
        &[
            "--window-size=1400,2600",
            &format!("--screenshot={}", screenshot.display()),
            &format!("{base}/hud"),
        ],
        &work.path().join("chromium"),
    );
    assert!(
        shot.status.success() && std::fs::metadata(&screenshot).is_ok_and(|m| m.len() > 10_000),
        "a screenshot"
    );
    let bench_fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/wiremock-fixtures/hud/nightly-65099-with-5-previous.json"
    );
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(bench_fixture, serde_json::to_string(&scan).expect("json"))
            .expect("the bench's scan");
        std::fs::copy(
            &screenshot,
            concat!(env!("CARGO_MANIFEST_DIR"), "/docs/hud.png"),
        )
        .expect("docs/hud.png");
    }
    let started = std::time::Instant::now();
    let html = ciwatch_mcp::hud::night_page(&scan, &ciwatch_mcp::hud::Place::new("vllm", "ci"));
    eprintln!(
        "HUD: nightly {CURRENT} with {} previous nightlies, {} failures, {} causes: page {page_bytes} bytes, rendered in {:?} (this build's profile), {} Buildkite requests to open it warm",
        NIGHTLIES.len(), scan.total_failures, scan.causes.len(), started.elapsed(), 0
    );
    assert_eq!(html.len(), page_bytes);
    // `benches/hud.rs` renders the scan this test made (written by UPDATE_SNAPSHOTS=1).
    let kept: ScanResult =
        serde_json::from_str(&std::fs::read_to_string(bench_fixture).expect("the bench's scan"))
            .expect("a scan");
    let keys = |s: &ScanResult| {
        s.failures
            .iter()
            .map(|f| f.failure_key.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(&kept),
        keys(&scan),
        "the bench's scan is this scan (UPDATE_SNAPSHOTS=1 writes it again)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_markup_never_runs_in_the_hud_or_the_app() {
    let buildkite = buildkite_server(PLANTED).await;
    let github = github_server(PLANTED).await;
    let work = tempfile::tempdir().expect("temp dir");
    let base = sidecar(&buildkite, &github, &work.path().join("store")).await;
    let (scan, summary) = full_scan(&base).await;
    let text = serde_json::to_string(&scan).expect("json");
    for marker in ["PLANT-LOG", "PLANT-ISSUE", "PLANT-COMMIT"] {
        assert!(text.contains(marker), "the scan carries {marker}");
    }

    let profile = work.path().join("chromium");
    let hud = dom(&format!("{base}/hud"), &profile);
    every_element_is_inert(&hud, "the HUD");
    for marker in ["PLANT-LOG", "PLANT-ISSUE", "PLANT-COMMIT"] {
        assert!(
            hud.contains(&format!("{marker}&lt;script&gt;")),
            "the HUD shows {marker} as text"
        );
    }
    let failure = scan
        .failures
        .iter()
        .find(|f| f.since.onset.is_some())
        .expect("a failure with an onset");
    let page = dom(
        &format!("{base}/hud/vllm/ci/test?id={}", failure.failure_key),
        &profile,
    );
    every_element_is_inert(&page, "a failure's page");
    assert!(
        page.contains("PLANT-COMMIT&lt;script&gt;"),
        "its suspects are shown as text"
    );

    let app = app_dom(&base, &summary, &profile).await;
    every_element_is_inert(&app, "the App");
    assert!(
        app.contains("PLANT-LOG&lt;script&gt;"),
        "the App shows the planted log line as text"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_draws_a_real_tool_result_in_a_host_page() {
    let buildkite = buildkite_server(Planted::default()).await;
    let github = github_server(Planted::default()).await;
    let work = tempfile::tempdir().expect("temp dir");
    let base = sidecar(&buildkite, &github, &work.path().join("store")).await;
    let (_, summary) = full_scan(&base).await;
    let app = app_dom(&base, &summary, &work.path().join("chromium")).await;
    // The summary holds a page of the failures (its size cap); the App draws that page.
    let scan: ScanResult =
        serde_json::from_value(summary["structuredContent"].clone()).expect("the summary's scan");
    assert!(scan.failures.len() > 10);
    if let Some(next) = scan.page.next_offset {
        assert!(
            app.contains(&format!("failure_offset {next}")),
            "the App says where the next page starts"
        );
    }
    draws_every_failure_and_cause(&app, &scan, "the App");

    // The same result draws the same rows in the App and at /hud. The first scans read the
    // night in part (its byte ceiling); asked again, it is whole, and the HUD holds that scan.
    // The full answer is a page of it (the result's size cap): each of its failures' rows is
    // drawn as the HUD draws it, in the HUD's order.
    let (full, _) = full_scan(&base).await;
    assert!(full.complete, "{:?}", full.incomplete);
    let profile = work.path().join("chromium");
    let held = json!({"structuredContent": full, "content": []});
    let app_rows = rows_of(&app_dom(&base, &held, &profile).await);
    let hud_rows = rows_of(&dom(&format!("{base}/hud"), &profile));
    assert_eq!(app_rows.len(), full.failures.len());
    assert!(hud_rows.len() >= app_rows.len());
    let in_app = |row: &&(String, String)| app_rows.iter().any(|(key, _)| *key == row.0);
    let hud_rows: Vec<(String, String)> = hud_rows.iter().filter(in_app).cloned().collect();
    assert_eq!(app_rows, hud_rows, "the App's rows are the HUD's");

    // A test history draws as one strip: a cell per build of its timeline.
    let failing = scan
        .failures
        .iter()
        .find(|f| f.test_failure.test_name.contains("::"))
        .expect("a failing test");
    let config = StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp"));
    let client =
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .expect("MCP over HTTP");
    let history = client
        .call_tool(CallToolRequestParams::new("ciwatch_test_history").with_arguments(
            json!({"test_nodeid": failing.test_failure.test_name, "build_query": "nightly", "lookback_builds": 6})
                .as_object()
                .cloned()
                .expect("object"),
        ))
        .await
        .expect("test history");
    let history = serde_json::to_value(&history).expect("result");
    let timeline = history["structuredContent"]["timeline"]
        .as_array()
        .expect("a timeline")
        .len();
    assert!(timeline >= 2, "{timeline} builds");
    let strip = app_dom(&base, &history, &work.path().join("chromium")).await;
    let row = &strip[strip.find("data-test=").expect("the strip")..];
    let row = &row[..row.find("</tr>").expect("its end")];
    assert_eq!(
        row.matches("class=\"cell ").count(),
        timeline,
        "a cell per build: {row}"
    );
}

/// Loads the App's HTML (read over MCP, as a host would) in a frame of a host page that answers
/// `ui/initialize`, hands it `result` after `ui/notifications/initialized`, and copies the
/// App's drawn DOM out when it reports its size. Returns that DOM.
async fn app_dom(base: &str, result: &Value, profile: &Path) -> String {
    let config = StreamableHttpClientTransportConfig::with_uri(format!("{base}/mcp"));
    let client =
        ().serve(StreamableHttpClientTransport::from_config(config))
            .await
            .expect("MCP over HTTP");
    let info = client.peer_info().expect("server info");
    let extensions = serde_json::to_value(&info.capabilities).expect("capabilities");
    assert_eq!(
        extensions["extensions"]["io.modelcontextprotocol/ui"]["mimeTypes"][0],
        ciwatch_mcp::hud::APP_MIME
    );
    let tools = client.list_all_tools().await.expect("tools");
    let with_view: Vec<&str> = tools
        .iter()
        .filter(|t| {
            t.meta
                .as_ref()
                .and_then(|m| m.0.get("ui"))
                .is_some_and(|ui| ui["resourceUri"] == ciwatch_mcp::hud::APP_URI)
        })
        .map(|t| t.name.as_ref())
        .collect();
    assert_eq!(
        with_view,
        [
            "ciwatch_scan_build",
            "ciwatch_scan_latest_nightly",
            "ciwatch_test_history"
        ]
    );
    let read = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(
            ciwatch_mcp::hud::APP_URI,
        ))
        .await
        .expect("resources/read");
    let contents = serde_json::to_value(&read.contents[0]).expect("contents");
    assert_eq!(contents["mimeType"], ciwatch_mcp::hud::APP_MIME);
    let app_html = contents["text"].as_str().expect("html").to_string();
    let view_tool = tools
        .iter()
        .find(|t| t.name == "ciwatch_view")
        .expect("the App's view tool");
    let meta = view_tool.meta.as_ref().expect("its _meta");
    assert_eq!(
        meta.0["ui"]["visibility"],
        json!(["app"]),
        "hidden from the model"
    );
    // What the host answers when the App asks for the view: the server's answer, asked here as
    // a host forwards `tools/call`.
    let view = client
        .call_tool(
            CallToolRequestParams::new("ciwatch_view").with_arguments(
                json!({"result": result["structuredContent"]})
                    .as_object()
                    .cloned()
                    .expect("object"),
            ),
        )
        .await
        .expect("ciwatch_view");
    let view = serde_json::to_string(&view)
        .expect("json")
        .replace("</", "<\\/");

    let host = MockServer::start().await;
    let embedded = serde_json::to_string(result)
        .expect("json")
        .replace("</", "<\\/");
    let host_html = format!(
        r#"<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>
<script type="application/json" id="result">{embedded}</script>
<script type="application/json" id="view">{view}</script>
<iframe id="app" src="/app.html" style="width:1200px;height:900px"></iframe>
<pre id="out"></pre>
<script>
const frame = document.getElementById('app');
const result = JSON.parse(document.getElementById('result').textContent);
const reply = (message) => frame.contentWindow.postMessage(message, '*');
window.addEventListener('message', (event) => {{
  const m = event.data;
  if (m.method === 'ui/initialize') reply({{jsonrpc: '2.0', id: m.id, result: {{protocolVersion: '2026-01-26', hostInfo: {{name: 'test-host', version: '1'}}, hostCapabilities: {{}}, hostContext: {{theme: 'light'}}}}}});
  else if (m.method === 'ui/notifications/initialized') reply({{jsonrpc: '2.0', method: 'ui/notifications/tool-result', params: result}});
  else if (m.method === 'tools/call' && m.params.name === 'ciwatch_view') reply({{jsonrpc: '2.0', id: m.id, result: JSON.parse(document.getElementById('view').textContent)}});
  else if (m.method === 'ui/notifications/size-changed') {{
    const out = document.getElementById('out');
    out.textContent = frame.contentDocument.documentElement.outerHTML;
    out.setAttribute('data-done', 'yes');
  }}
}});
</script></body></html>"#
    );
    for (route, body) in [("/host.html", host_html), ("/app.html", app_html)] {
        Mock::given(path(route))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body, "text/html"))
            .mount(&host)
            .await;
    }
    let dom = dom(&format!("{}/host.html", host.uri()), profile);
    // The host page carries the result as JSON text; only the App's frame could run it.
    assert!(
        !dom.contains("data-pwned=\""),
        "a planted script ran in the host page"
    );
    let start = dom
        .find("<pre id=\"out\" data-done=\"yes\">")
        .expect("the App drew the result and reported its size");
    let copied = &dom[start..start + dom[start..].find("</pre>").expect("end")];
    let app = unescape(copied);
    std::fs::write(concat!(env!("CARGO_TARGET_TMPDIR"), "/app-dom.html"), &app).ok();
    app
}

#[tokio::test]
async fn the_hud_keeps_the_sidecars_rules() {
    let buildkite = buildkite_server(Planted::default()).await;
    let github = github_server(Planted::default()).await;
    let work = tempfile::tempdir().expect("temp dir");
    let base = sidecar_behind(
        &buildkite,
        &github,
        StoreAt::Dir(&work.path().join("store")),
        Some("hud-secret"),
    )
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let status = |r: reqwest::Response| r.status().as_u16();

    let bare = http.get(format!("{base}/hud")).send().await.expect("GET");
    assert_eq!(status(bare), 401, "no token, no page");
    let wrong = http
        .get(format!("{base}/hud?token=nope"))
        .send()
        .await
        .expect("GET");
    assert_eq!(status(wrong), 401);
    let login = http
        .get(format!("{base}/hud?token=hud-secret"))
        .send()
        .await
        .expect("GET");
    assert_eq!(login.status(), 303);
    assert_eq!(
        login.headers()["location"],
        "/hud",
        "the token leaves the address bar"
    );
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let pair = cookie.split(';').next().expect("pair").to_string();
    let page = http
        .get(format!("{base}/hud"))
        .header("cookie", &pair)
        .send()
        .await
        .expect("GET");
    assert_eq!(page.status(), 200);
    assert!(
        !page.text().await.expect("page").contains("hud-secret"),
        "the page never shows the token"
    );
    let bearer = http
        .get(format!("{base}/hud"))
        .bearer_auth("hud-secret")
        .send()
        .await
        .expect("GET");
    assert_eq!(status(bearer), 200);

    let foreign_host = http
        .get(format!("{base}/hud"))
        .bearer_auth("hud-secret")
        .header("host", "evil.example")
        .send()
        .await
        .expect("GET");
    assert_eq!(status(foreign_host), 403, "DNS rebinding is refused");
    let foreign_origin = http
        .post(format!("{base}/hud/vllm/ci/refresh"))
        .bearer_auth("hud-secret")
        .header("origin", "https://evil.example")
        .send()
        .await
        .expect("POST");
    assert_eq!(
        status(foreign_origin),
        403,
        "another site cannot start a scan"
    );
    let bad = http
        .get(format!("{base}/hud/vllm/..%2Fetc"))
        .bearer_auth("hud-secret")
        .send()
        .await
        .expect("GET");
    assert_eq!(status(bad), 404);
    let unknown = http
        .get(format!("{base}/hud/vllm/ci/test?id=nothing"))
        .bearer_auth("hud-secret")
        .send()
        .await
        .expect("GET");
    assert_eq!(status(unknown), 404);
    assert_eq!(
        buildkite.received_requests().await.expect("recorded").len(),
        0,
        "refusals ask nothing of Buildkite"
    );
}

/// A replica that never scanned shows the night another replica scanned: the HUD is drawn from
/// the shared store, with no Buildkite request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_shows_the_night_another_scanned_from_the_shared_store() {
    let redis = crate::redis_store::RedisServer::start();
    let buildkite = buildkite_server(Planted::default()).await;
    let github = github_server(Planted::default()).await;
    let scanning = sidecar_behind(&buildkite, &github, StoreAt::Redis(&redis.url()), None).await;
    let other = sidecar_behind(&buildkite, &github, StoreAt::Redis(&redis.url()), None).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let refreshed = http
        .post(format!("{scanning}/hud/vllm/ci/refresh"))
        .send()
        .await
        .expect("refresh");
    assert_eq!(refreshed.status(), 303);
    let requests = buildkite.received_requests().await.expect("recorded").len();
    let page = http
        .get(format!("{other}/hud"))
        .send()
        .await
        .expect("GET /hud")
        .text()
        .await
        .expect("page");
    assert_eq!(
        buildkite.received_requests().await.expect("recorded").len(),
        requests,
        "the other replica asks Buildkite nothing"
    );
    assert!(page.contains(&format!(
        "Nightly <a href=\"https://buildkite.com/vllm/ci/builds/{CURRENT}\""
    )));
    assert_eq!(
        page.matches("data-failure-key=").count(),
        31,
        "every failure the other replica's call found"
    );
}

/// Behind a proxy listed with its port (`ciwatch.example:8443`), the HUD and its Scan now form
/// (posting with the page's own origin) pass the same gate as `/mcp`; another port does not.
/// The browser's cookie is a session value, never the token, and `Secure` over HTTPS.
#[tokio::test]
async fn behind_an_allowed_proxy_host_and_port_the_hud_and_scan_now_pass_the_one_gate() {
    let options = HttpOptions {
        token: Some(Secret::new("hud-secret")),
        allowed_hosts: vec!["ciwatch.example:8443".into()],
        ..crate::common::loopback_options()
    };
    let (base, _buildkite, _store) = plain_sidecar(&options).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let proxied = |request: reqwest::RequestBuilder, host: &str| {
        request
            .bearer_auth("hud-secret")
            .header("host", host)
            .header("x-forwarded-proto", "https")
    };
    let page = proxied(http.get(format!("{base}/hud")), "ciwatch.example:8443")
        .send()
        .await
        .expect("GET /hud");
    assert_eq!(page.status(), 200);
    let scan_now = proxied(
        http.post(format!("{base}/hud/vllm/ci/refresh")),
        "ciwatch.example:8443",
    )
    .header("origin", "https://ciwatch.example:8443")
    .send()
    .await
    .expect("Scan now");
    assert_eq!(
        scan_now.status(),
        303,
        "the scan ran and the page is shown again"
    );
    let initialize = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let mcp = proxied(http.post(format!("{base}/mcp")), "ciwatch.example:8443")
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .expect("POST /mcp");
    assert_eq!(mcp.status(), 200, "the same gate for /mcp");
    for path in ["/hud", "/mcp"] {
        let other_port = proxied(http.get(format!("{base}{path}")), "ciwatch.example:9443")
            .send()
            .await
            .expect("GET");
        assert_eq!(
            other_port.status(),
            403,
            "{path}: another port is another host"
        );
    }

    let login = http
        .get(format!("{base}/hud?token=hud-secret"))
        .header("host", "ciwatch.example:8443")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .expect("GET");
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_string();
    assert!(!cookie.contains("hud-secret"), "{cookie}");
    assert!(cookie.contains("; Secure"), "{cookie}");
    let pair = cookie.split(';').next().expect("pair").to_string();
    let with_session = http
        .get(format!("{base}/hud"))
        .header("host", "ciwatch.example:8443")
        .header("cookie", &pair)
        .send()
        .await
        .expect("GET");
    assert_eq!(with_session.status(), 200);
    let session_on_mcp = http
        .post(format!("{base}/mcp"))
        .header("cookie", &pair)
        .json(&initialize)
        .send()
        .await
        .expect("POST /mcp");
    assert_eq!(
        session_on_mcp.status(),
        401,
        "the HUD's cookie does not open /mcp"
    );
}

/// Buildkite's webhook, verified before anything else: a request unsigned, wrongly signed,
/// stale or over the body cap starts nothing (no Buildkite request), another event is
/// accepted and ignored, and a signed `build.finished` of the nightly starts its read, after
/// which the HUD shows the night without anyone having asked.
#[tokio::test]
async fn a_signed_build_finished_webhook_reads_the_night_and_nothing_else_starts_a_read() {
    let options = HttpOptions {
        webhook_token: Some(Secret::new("whsec-test")),
        ..crate::common::loopback_options()
    };
    let (base, buildkite, _store) = plain_sidecar(&options).await;
    let http = reqwest::Client::new();
    let mut build: Value = serde_json::from_str(ciwatch_mcp::fixtures::BUILD_65099).expect("build");
    build["number"] = CURRENT.into();
    build["web_url"] = format!("https://buildkite.com/vllm/ci/builds/{CURRENT}").into();
    let body =
        serde_json::to_vec(&json!({"event": "build.finished", "build": build})).expect("body");
    let now = chrono::Utc::now().timestamp();
    let send = |event: &str, signature: String, body: Vec<u8>| {
        http.post(format!("{base}/webhooks/buildkite"))
            .header("x-buildkite-event", event)
            .header("x-buildkite-signature", signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let sign = |at: i64, body: &[u8]| ciwatch_mcp::mcp::webhook_signature("whsec-test", at, body);
    let refused = [
        (
            "build.finished",
            sign(now, b"{}"),
            body.clone(),
            401,
            "signed for another body",
        ),
        (
            "build.finished",
            ciwatch_mcp::mcp::webhook_signature("other", now, &body),
            body.clone(),
            401,
            "another token",
        ),
        (
            "build.finished",
            sign(now - 600, &body),
            body.clone(),
            401,
            "stale",
        ),
        (
            "build.finished",
            String::new(),
            body.clone(),
            401,
            "unsigned",
        ),
        ("ping", sign(now, &body), body.clone(), 202, "another event"),
    ];
    for (event, signature, body, status, what) in refused {
        let answer = send(event, signature, body).await.expect("POST");
        assert_eq!(answer.status().as_u16(), status, "{what}");
    }
    let oversized = vec![b' '; 9 * 1024 * 1024];
    let answer = send("build.finished", sign(now, &oversized), oversized)
        .await
        .expect("POST");
    assert_eq!(answer.status().as_u16(), 413, "over the body cap");
    assert_eq!(
        buildkite.received_requests().await.expect("recorded").len(),
        0,
        "nothing was read"
    );

    let answer = send("build.finished", sign(now, &body), body.clone())
        .await
        .expect("POST");
    assert_eq!(answer.status().as_u16(), 202);
    // The read runs in the background: wait for the page to show the night (a bounded number
    // of short turns, not a clock's verdict).
    let mut shown = false;
    for _ in 0..400 {
        let page = http.get(format!("{base}/hud")).send().await.expect("GET");
        if page
            .text()
            .await
            .expect("page")
            .contains(&format!("/builds/{CURRENT}"))
        {
            shown = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(shown, "the HUD shows the night the webhook read");
}
