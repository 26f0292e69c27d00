//! The sidecar's watcher: started with the server, it reads the HUD pipeline's latest nightly
//! before anyone asks, so the morning's first call is complete from the store without a log
//! request, and the HUD says what the watcher read and when it looks next.

use crate::hud::{full_scan, plain_sidecar};
use crate::nightly_trend::CURRENT;
use ciwatch_mcp::mcp::HttpOptions;
use std::time::Duration;

#[tokio::test]
async fn the_watcher_reads_the_night_before_anyone_asks() {
    let options = HttpOptions {
        watch_interval: Some(Duration::from_secs(3600)),
        ..crate::common::loopback_options()
    };
    let (base, buildkite, _store) = plain_sidecar(&options).await;
    let http = reqwest::Client::new();
    // The first look runs in the background: wait for the HUD to say it read the night (a
    // bounded number of short turns, not a clock's verdict).
    let mut page = String::new();
    for _ in 0..600 {
        page = http
            .get(format!("{base}/hud"))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("page");
        if page.contains("Watcher: looked at") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        page.contains(&format!("read nightly #{CURRENT}")) && page.contains(" failures, complete)"),
        "{page}"
    );
    assert!(page.contains("next look at"), "{page}");
    assert!(
        page.contains(&format!("/builds/{CURRENT}")),
        "the HUD shows the night"
    );
    let logs_read = |requests: &[wiremock::Request]| {
        requests
            .iter()
            .filter(|r| r.url.path().ends_with("/log"))
            .count()
    };
    let before = buildkite.received_requests().await.expect("recorded");
    assert!(logs_read(&before) > 0, "the watcher read the logs");

    let (scan, _) = full_scan(&base).await;
    let after = buildkite.received_requests().await.expect("recorded");
    assert!(scan.complete, "{:?}", scan.incomplete);
    assert_eq!(scan.build_info.build_number, CURRENT.to_string());
    assert_eq!(
        logs_read(&after[before.len()..]),
        0,
        "the caller's scan read every log from the store"
    );
}

/// A caller asking for the nightly listing the watcher is fetching does not wait on it (the
/// watcher's request goes out at background priority): it asks for itself, and once the
/// watcher's answer is in, the next caller is answered from it.
#[tokio::test]
async fn a_caller_never_waits_on_the_watchers_listing() {
    let server = wiremock::MockServer::start().await;
    let listing_path = "/v2/organizations/vllm/pipelines/ci/builds";
    wiremock::Mock::given(wiremock::matchers::path(listing_path))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(serde_json::json!([crate::common::listed_build(
                    65099,
                    "schedule",
                    "failed",
                    "Full CI run - nightly"
                )]))
                .set_delay(std::time::Duration::from_millis(600)),
        )
        .mount(&server)
        .await;
    let client = crate::common::client(&crate::common::settings(&server.uri()));
    let latest = |client: ciwatch_mcp::buildkite::BuildkiteClient| async move {
        ciwatch_mcp::watch::latest_nightly(&client, "vllm", "ci", "main", u32::MAX / 3600)
            .await
            .expect("the nightly")
            .number
    };
    let listings = || async {
        let requests = server.received_requests().await.expect("recorded");
        requests
            .iter()
            .filter(|r| r.url.path() == listing_path)
            .count()
    };
    let watcher = tokio::spawn(ciwatch_mcp::http::in_background(latest(client.clone())));
    while listings().await == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(latest(client.clone()).await, 65099);
    assert_eq!(listings().await, 2, "the caller asked for itself");
    assert_eq!(watcher.await.expect("watcher"), 65099);
    assert_eq!(latest(client.clone()).await, 65099);
    assert_eq!(
        listings().await,
        2,
        "answered from the listings already read"
    );
}
