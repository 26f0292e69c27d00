//! The HUD: a scanned nightly drawn for people, once. The sidecar serves it at `/hud` (causes
//! first, then the failing tests and jobs × the nightlies they were compared with, and one
//! test's strip on its own page); MCP hosts that render Apps show `app.html`, whose script only
//! bridges to the host: it hands the tool result back to the server (`ciwatch_view`), which
//! draws it with the same views ([`app_view`]). Pure: a result in, HTML out. Pages are rendered
//! by maud, which escapes every text it is given; they carry no script and no external asset,
//! so they work offline and with JavaScript off, under a policy that forbids any script.

mod bisect;
mod grid;
mod history;
mod page;

pub use bisect::bisect_page;
pub use grid::{build_url, columns, rows, Cell, Outcome, Row};
pub use history::history_view;
pub use page::{night_page, night_view, no_scan_page, test_page, Place};

/// A tool result as the MCP App shows it: a scan's night view (without the sidecar's links) or
/// a test history's strip, the same markup the sidecar's pages hold.
pub enum AppResult<'r> {
    Scan(&'r crate::model::ScanResult),
    History(&'r crate::model::HistoryResult),
}

/// The HTML fragment the App puts in its page for `result`.
pub fn app_view(result: AppResult<'_>) -> String {
    match result {
        AppResult::Scan(scan) => night_view(scan, None).into_string(),
        AppResult::History(history) => history_view(history).into_string(),
    }
}

/// The pages' one style sheet, inlined (no asset to fetch) and allowed by its hash.
const STYLE: &str = include_str!("hud.css");

/// The MCP App view: a `ui://` resource that draws a scan or test-history tool result.
pub const APP_URI: &str = "ui://ciwatch/night.html";
/// The MIME type MCP hosts expect of an App's HTML.
pub const APP_MIME: &str = "text/html;profile=mcp-app";
/// The App's page, its style sheet put in.
const APP_TEMPLATE: &str = include_str!("app.html");

/// The App's HTML: the pages' style sheet and a script that only bridges to the host (the view
/// itself comes from the server, [`app_view`]). Put together once.
pub fn app_html() -> &'static str {
    static HTML: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| APP_TEMPLATE.replace("/*STYLE*/", STYLE));
    &HTML
}

/// The `Content-Security-Policy` of the sidecar's pages: no script at all, the one inlined
/// style sheet by its hash, forms posting only to the sidecar, no framing. Hashed once.
pub fn content_security_policy() -> &'static str {
    static POLICY: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use base64::Engine;
        use sha2::{Digest, Sha256};
        let hash =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
        format!(
            "default-src 'none'; script-src 'none'; style-src 'sha256-{hash}'; img-src 'none'; \
             form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        )
    });
    &POLICY
}

/// A link target that may be live in a page: `https://` URLs only (a `javascript:` or `data:`
/// URL from an issue or a log stays text).
pub fn safe_href(url: &str) -> Option<&str> {
    let lower = url.trim_start().get(..8).map(str::to_ascii_lowercase);
    (lower.as_deref() == Some("https://") && !url.chars().any(char::is_whitespace)).then_some(url)
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::model::ScanResult;
    use serde_json::json;

    /// A nightly (100) compared with four earlier ones: a continuing failure listed first, a
    /// new one second.
    pub fn scan_with_trends() -> ScanResult {
        let failure = |key: &str, test: &str, job_id: &str, trend: serde_json::Value| {
            json!({
                "failure_key": key,
                "test_failure": {"test_name": test, "job_name": "Kernels Core", "error_message": "AssertionError: x"},
                "category": "NEW_REGRESSION", "confidence": 0.8, "job_id": job_id, "trend": trend,
            })
        };
        serde_json::from_value(json!({
            "build_info": {"build_number": "100", "build_url": "https://buildkite.com/vllm/ci/builds/100",
                "pipeline": "vllm/ci", "branch": "main", "commit": "abc", "state": "failed"},
            "total_jobs": 3, "failed_jobs": 2, "scan_timestamp": "2026-12-02T05:00:00Z",
            "links": {"job": "https://buildkite.com/vllm/ci/builds/100#{job_id}", "issue": "https://github.com/vllm-project/vllm/issues/{number}"},
            "comparison": {"compared_builds": [99, 98, 97, 96], "new": 1, "continuing": 1, "intermittent": 0, "unknown": 0, "fixed": 0},
            "total_failures": 2,
            "failures": [
                failure("k-old", "tests/old.py::test_old", "j-100", json!({"trend": "continuing", "streak": 2, "first_failed_build": 99,
                    "failed_in_window": 1, "nightlies_compared": 2, "runs": "FN?P", "run_jobs": ["j-99", "", "j-97", "j-96"]})),
                failure("k-new", "tests/new.py::test_new", "j-101", json!({"trend": "new", "streak": 1, "first_failed_build": 100,
                    "failed_in_window": 0, "nightlies_compared": 4, "runs": "PPPP", "run_jobs": ["a", "b", "c", "d"]})),
            ],
        }))
        .expect("a scan")
    }

    #[test]
    fn only_https_links_are_live() {
        assert!(super::safe_href("https://buildkite.com/vllm/ci/builds/1").is_some());
        assert!(super::safe_href("HTTPS://github.com/x").is_some());
        for bad in [
            "javascript:alert(1)",
            " javascript:alert(1)",
            "data:text/html,<script>",
            "http://example.com",
            "https://x.com/\"><img src=x onerror=alert(1)> y",
            "",
        ] {
            assert_eq!(super::safe_href(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_policy_allows_no_script_and_names_the_style_by_its_hash() {
        let policy = super::content_security_policy();
        assert!(policy.contains("script-src 'none'"));
        assert!(!policy.contains("unsafe-inline"));
        assert!(policy.contains("style-src 'sha256-"));
    }
}
