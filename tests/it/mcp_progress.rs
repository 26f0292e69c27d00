//! Progress notifications of a scan, seen by an rmcp client in process: they arrive for a
//! request with a progress token, count logs up to the total, and never go backwards.

use ciwatch_mcp::mcp::CiWatchServer;
use rmcp::model::{CallToolRequestParams, ClientRequest, ProgressNotificationParam, Request};
use rmcp::service::{NotificationContext, PeerRequestOptions};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(params);
        }
    }
}

#[tokio::test]
async fn scan_progress_counts_logs_and_only_increases() {
    let buildkite = crate::common::fixture_server().await;
    let github = crate::common::github_server().await;
    let mut settings = crate::common::settings(&buildkite.uri());
    settings.github_api_url = github.uri();
    let server = CiWatchServer::new(settings).expect("server");
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        if let Ok(running) = server.serve(server_io).await {
            let _ = running.waiting().await;
        }
    });
    let recorder = Recorder::default();
    let client = recorder.clone().serve(client_io).await.expect("initialize");
    let arguments = serde_json::json!({"build_id_or_url": "65099", "detail_level": "minimal"});
    let request = ClientRequest::CallToolRequest(Request::new(
        CallToolRequestParams::new("ciwatch_scan_build")
            .with_arguments(arguments.as_object().cloned().expect("object")),
    ));
    let handle = client
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .expect("sent");
    handle.await_response().await.expect("answered");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let seen = recorder.seen.lock().expect("lock").clone();
    assert!(
        seen.len() >= 20,
        "one notification per log read: {}",
        seen.len()
    );
    assert!(
        seen.windows(2).all(|w| w[1].progress > w[0].progress),
        "strictly increasing"
    );
    let last = seen.last().expect("some");
    assert_eq!((last.progress.round(), last.total), (20.0, Some(20.0)));
    client.cancel().await.expect("close");
}
