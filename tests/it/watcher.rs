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
