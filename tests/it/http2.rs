//! Buildkite's API answers over HTTP/2 (TLS, negotiated by ALPN). A TLS front that speaks only
//! HTTP/2 forwards every request to the fixture Buildkite, whose failed jobs' logs are made
//! larger than hyper's stream and connection windows, and two cold scans read the night through
//! it at once: they must give the answer one scan gives over HTTP/1.1.

use crate::common::{failure_keys, scan_65099, scan_options, settings};
use bytes::Bytes;
use ciwatch_mcp::buildkite::BuildkiteClient;
use ciwatch_mcp::config::{Secret, Settings};
use ciwatch_mcp::fixtures;
use ciwatch_mcp::http::HttpClient;
use ciwatch_mcp::model::{DetailLevel, ScanResult};
use ciwatch_mcp::watch::{Budgets, JobReader};
use http_body_util::Full;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio_rustls::rustls;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TLS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/wiremock-fixtures/tls");
/// Each failed job's log is this much longer than the fixture's (about 1.1 MB), which makes it
/// larger than hyper's default stream window (2 MiB) and, three together, its connection window
/// (5 MiB).
const EXTRA_LOG_BYTES: usize = 1_100_000;

/// The fixture's logs with `EXTRA_LOG_BYTES` of passing tests before them.
struct LongLogs;

impl Respond for LongLogs {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let build = fixtures::build_65099();
        let job_id = request.url.path().rsplit('/').nth(1).unwrap_or_default();
        let Some(job) = build.jobs().iter().find(|j| j.id == job_id) else {
            return ResponseTemplate::new(404);
        };
        let mut log = passing_tests(EXTRA_LOG_BYTES);
        log.extend(fixtures::raw_log(job));
        crate::common::log_response(&log, request)
    }
}

fn passing_tests(bytes: usize) -> Vec<u8> {
    let mut text = String::new();
    for i in 0.. {
        if text.len() >= bytes {
            break;
        }
        text.push_str(&format!(
            "tests/kernels/test_padding.py::test_case[param-{i:07}] PASSED\n"
        ));
    }
    fixtures::to_raw_format(&text)
}

async fn long_log_buildkite() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(crate::common::BUILD_PATH))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(fixtures::BUILD_65099, "application/json"),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"/builds/65099/jobs/[^/]+/log$"))
        .respond_with(LongLogs)
        .mount(&server)
        .await;
    server
}

/// A TLS front that offers only `h2` and forwards each request to `upstream` (HTTP/1.1),
/// counting the requests it received over HTTP/2. Returns its `https://` address.
async fn http2_front(upstream: String, over_h2: Arc<AtomicUsize>) -> String {
    let certs = CertificateDer::pem_file_iter(format!("{TLS}/server.pem"))
        .expect("test certificate")
        .collect::<Result<Vec<_>, _>>()
        .expect("test certificate");
    let key = PrivateKeyDer::from_pem_file(format!("{TLS}/server.key")).expect("test key");
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("TLS config");
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let forward = reqwest::Client::new();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, forward, upstream, over_h2) = (
                acceptor.clone(),
                forward.clone(),
                upstream.clone(),
                over_h2.clone(),
            );
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |request| {
                    let (forward, upstream, over_h2) =
                        (forward.clone(), upstream.clone(), over_h2.clone());
                    async move {
                        if request.version() == hyper::Version::HTTP_2 {
                            over_h2.fetch_add(1, Ordering::Relaxed);
                        }
                        forward_to(&forward, &upstream, request).await
                    }
                });
                let _ =
                    hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
            });
        }
    });
    format!("https://localhost:{}", address.port())
}

async fn forward_to(
    forward: &reqwest::Client,
    upstream: &str,
    request: hyper::Request<hyper::body::Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, std::convert::Infallible> {
    let path = request.uri().path_and_query().map_or("/", |p| p.as_str());
    let mut outbound = forward.get(format!("{upstream}{path}"));
    for name in ["authorization", "accept", "range"] {
        if let Some(value) = request.headers().get(name) {
            outbound = outbound.header(name, value.clone());
        }
    }
    let answer = outbound
        .send()
        .await
        .expect("the fixture Buildkite answers");
    let mut response = hyper::Response::builder().status(answer.status().as_u16());
    for name in ["content-type", "content-range"] {
        if let Some(value) = answer.headers().get(name) {
            response = response.header(name, value.clone());
        }
    }
    let body = answer.bytes().await.expect("the fixture's body");
    Ok(response.body(Full::new(body)).expect("a response"))
}

/// A client of `settings`' Buildkite, trusting the tests' own authority.
fn client_trusting_test_authority(settings: &Settings) -> BuildkiteClient {
    let http = HttpClient::new(
        settings.http_timeout(),
        settings.rate_budget(),
        settings.retry_policy(),
    )
    .expect("client")
    .trusting(&std::fs::read(format!("{TLS}/ca.pem")).expect("test authority"))
    .expect("a PEM bundle");
    BuildkiteClient::new(
        http,
        &settings.buildkite_api_url,
        Some(Secret::new("bkua_test_token_value")),
    )
    .expect("token")
}

async fn scan(client: &BuildkiteClient) -> ScanResult {
    let reader = JobReader::new(client, None);
    let budgets = Budgets {
        // Tails as long as the logs: every body is over 2 MiB.
        max_log_bytes: 4_000_000,
        concurrency: 24,
        max_jobs: 40,
        ..Budgets::default()
    };
    scan_65099(&reader, &scan_options(budgets, DetailLevel::Summary, false)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_cold_scans_over_http2_give_the_answer_of_one_over_http1() {
    let buildkite = long_log_buildkite().await;
    let over_http1 = scan(&crate::common::client(&settings(&buildkite.uri()))).await;
    assert!(over_http1.complete, "{:?}", over_http1.incomplete);
    eprintln!(
        "{} requests, {} log bytes a scan",
        over_http1.stats.api_requests, over_http1.stats.log_bytes_fetched
    );
    // Every failed job's body is over 2 MiB.
    assert!(over_http1.stats.log_bytes_fetched > 24 * 2 * 1024 * 1024);

    let over_h2 = Arc::new(AtomicUsize::new(0));
    let front = http2_front(buildkite.uri(), over_h2.clone()).await;
    let client = client_trusting_test_authority(&settings(&front));
    let (first, second) = tokio::join!(scan(&client), scan(&client));
    for result in [&first, &second] {
        assert!(result.complete, "{:?}", result.incomplete);
        assert_eq!(
            result.stats.log_bytes_fetched,
            over_http1.stats.log_bytes_fetched
        );
        assert_eq!(failure_keys(result), failure_keys(&over_http1));
    }
    // Every request of both scans came over HTTP/2: the front offers nothing else.
    let both = first.stats.api_requests + second.stats.api_requests;
    assert_eq!(over_h2.load(Ordering::Relaxed) as u64, both);
}

#[tokio::test]
async fn a_file_that_is_no_pem_bundle_is_a_clear_error() {
    let http = HttpClient::new(
        std::time::Duration::from_secs(1),
        ciwatch_mcp::http::RateBudget::per_minute(60),
        settings("http://127.0.0.1:9").retry_policy(),
    )
    .expect("client");
    let error = http
        .trusting(b"not a certificate")
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("CIWATCH_CA_FILE"), "{error}");
}
