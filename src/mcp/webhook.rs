//! `POST /webhooks/buildkite` (with `CIWATCH_WEBHOOK_TOKEN` set): Buildkite's `build.finished`
//! of a nightly starts the HUD's read of that pipeline's latest nightly in the background, so
//! the night is read, and stored, before anyone asks. A request is verified before anything
//! else: `X-Buildkite-Signature: timestamp=…,signature=…` is the hex HMAC-SHA256 of
//! `"{timestamp}.{raw body}"` with the webhook token, compared in constant time, within a
//! 5-minute replay window, and the body is capped. An unsigned, wrongly signed or stale request
//! gets a 401; another event, or a build that is no nightly, is accepted and starts nothing.

use super::gate::constant_time_eq;
use super::CiWatchServer;
use crate::secret::Secret;
use crate::text::hex;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The largest body taken: a `build.finished` payload carries the build, and a nightly with its
/// 200 jobs is about 1.2 MB. Larger bodies get a 413.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// How far a signature's timestamp may be from now, either way.
const REPLAY_WINDOW_SECS: i64 = 300;

pub fn routes(server: CiWatchServer, token: Secret) -> Router {
    Router::new()
        .route("/webhooks/buildkite", post(receive))
        .with_state((server, Arc::new(token)))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn receive(
    State((server, token)): State<(CiWatchServer, Arc<Secret>)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = chrono::Utc::now().timestamp();
    if let Err(why) = verify(&headers, &body, token.expose().as_bytes(), now) {
        return (StatusCode::UNAUTHORIZED, why).into_response();
    }
    let event = headers
        .get("x-buildkite-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if event != "build.finished" {
        return (StatusCode::ACCEPTED, "ignored: not build.finished").into_response();
    }
    let Some((org, pipeline)) = finished_nightly(&body) else {
        return (StatusCode::ACCEPTED, "ignored: not a finished nightly").into_response();
    };
    tracing::info!(%org, %pipeline, "webhook: reading the finished nightly");
    tokio::spawn(async move {
        if let Err(error) = server.scan_nightly_for_hud(&org, &pipeline).await {
            tracing::warn!(%error, %org, %pipeline, "webhook: the nightly could not be read");
        }
    });
    (StatusCode::ACCEPTED, "reading the nightly").into_response()
}

/// The org and pipeline of the payload's build, when it is a finished nightly.
fn finished_nightly(body: &[u8]) -> Option<(String, String)> {
    let payload: serde_json::Value = serde_json::from_slice(body).ok()?;
    let build: crate::buildkite::Build =
        serde_json::from_value(payload.get("build")?.clone()).ok()?;
    if !(crate::watch::is_nightly(&build) && build.is_finished()) {
        return None;
    }
    // `https://buildkite.com/{org}/{pipeline}/builds/{number}`
    let url = payload["build"]["web_url"].as_str()?;
    let mut parts = url.split("://").nth(1)?.split('/').skip(1);
    let (org, pipeline) = (parts.next()?, parts.next()?);
    let slug = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    };
    (slug(org) && slug(pipeline)).then(|| (org.to_string(), pipeline.to_string()))
}

/// Checks `X-Buildkite-Signature` against `body` signed with `token` at `now` (Unix seconds).
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    token: &[u8],
    now: i64,
) -> Result<(), &'static str> {
    let signed = headers
        .get("x-buildkite-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or("unsigned: X-Buildkite-Signature is missing")?;
    let field = |name: &str| {
        signed
            .split(',')
            .filter_map(|part| part.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    };
    let (Some(timestamp), Some(signature)) = (field("timestamp"), field("signature")) else {
        return Err("X-Buildkite-Signature is not timestamp=…,signature=…");
    };
    let at: i64 = timestamp
        .parse()
        .map_err(|_| "the signature's timestamp is no number")?;
    if (now - at).abs() > REPLAY_WINDOW_SECS {
        return Err("stale: the signature's timestamp is over 5 minutes from now");
    }
    let expected = hex(&hmac_sha256(token, &[timestamp.as_bytes(), b".", body]));
    if constant_time_eq(signature.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err("the signature does not match (CIWATCH_WEBHOOK_TOKEN)")
    }
}

/// HMAC-SHA256 (RFC 2104) of the concatenated `message` parts.
fn hmac_sha256(key: &[u8], message: &[&[u8]]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let padded = |pad: u8| block.map(|b| b ^ pad);
    let mut inner = Sha256::new();
    inner.update(padded(0x36));
    for part in message {
        inner.update(part);
    }
    let mut outer = Sha256::new();
    outer.update(padded(0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// The `X-Buildkite-Signature` value Buildkite sends for `body` at `timestamp` (tests, and a
/// person checking a set-up by hand).
pub fn signature(token: &str, timestamp: i64, body: &[u8]) -> String {
    let stamp = timestamp.to_string();
    let mac = hmac_sha256(token.as_bytes(), &[stamp.as_bytes(), b".", body]);
    format!("timestamp={stamp},signature={}", hex(&mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than a block.
        let mac = hmac_sha256(
            &[0xaa; 131],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn signatures_are_checked_for_value_and_age() {
        let body = br#"{"event":"build.finished"}"#;
        let headers = |value: &str| {
            let mut map = HeaderMap::new();
            map.insert("x-buildkite-signature", value.parse().expect("header"));
            map
        };
        let good = signature("whsec", 1_000, body);
        assert_eq!(verify(&headers(&good), body, b"whsec", 1_000), Ok(()));
        assert_eq!(verify(&headers(&good), body, b"whsec", 1_299), Ok(()));
        assert!(
            verify(&headers(&good), body, b"whsec", 1_301).is_err(),
            "stale"
        );
        assert!(
            verify(&headers(&good), body, b"other", 1_000).is_err(),
            "another token"
        );
        assert!(
            verify(&headers(&good), b"{}", b"whsec", 1_000).is_err(),
            "another body"
        );
        assert!(
            verify(&HeaderMap::new(), body, b"whsec", 1_000).is_err(),
            "unsigned"
        );
        assert!(verify(&headers("timestamp=1000"), body, b"whsec", 1_000).is_err());
    }
}
