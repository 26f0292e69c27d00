//! Parsing what a user may paste to name a build: a number, or any Buildkite web or API URL.
//!
//! Forms (api-facts §1.8): `…/{org}/{pipeline}/builds/{N}`, with `#{job}` or `#{job}/{lines}`,
//! `/steps/canvas?sid={step}&jid={job}`, `/canvas?sid=`, `/list?sid=`, `/steps?jid=`; the legacy
//! `…/organizations/{org}/pipelines/{pipeline}/builds/{N}/jobs/{job}/log`; and API URLs
//! `https://api.buildkite.com/v2/organizations/{org}/pipelines/{pipeline}/builds/{N}`.
//! `sid` is a step id (`job.step.id`), `jid` a job id.

use super::PipelineKey;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRef {
    pub org: String,
    pub pipeline: String,
    pub number: u64,
    pub job_id: Option<String>,
    pub step_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("cannot read a build from {0:?}: give a build number (65099) or a Buildkite URL like https://buildkite.com/vllm/ci/builds/65099")]
    Unrecognised(String),
    #[error("pipeline {0:?} is not of the form org/pipeline or pipeline")]
    BadPipeline(String),
    #[error("{0:?} is not a Buildkite host: give a build number or a URL on buildkite.com")]
    ForeignHost(String),
}

/// Splits `org/pipeline` (or a bare `pipeline`, using `default_org`).
pub fn parse_pipeline(pipeline: &str, default_org: &str) -> Result<PipelineKey, UrlError> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    match pipeline.trim().split_once('/') {
        Some((org, name)) if valid(org) && valid(name) => Ok(PipelineKey::new(org, name)),
        None if valid(pipeline.trim()) => Ok(PipelineKey::new(default_org, pipeline.trim())),
        _ => Err(UrlError::BadPipeline(pipeline.to_string())),
    }
}

/// Reads a build reference. A bare number uses `default_pipeline` (`org/pipeline`); a URL
/// brings its own org and pipeline.
pub fn parse_build_ref(
    input: &str,
    default_pipeline: &str,
    default_org: &str,
) -> Result<BuildRef, UrlError> {
    let text = input.trim();
    let unrecognised = || UrlError::Unrecognised(input.to_string());
    if let Ok(number) = text.trim_start_matches('#').parse::<u64>() {
        let PipelineKey { org, pipeline } = parse_pipeline(default_pipeline, default_org)?;
        return Ok(BuildRef {
            org,
            pipeline,
            number,
            job_id: None,
            step_id: None,
        });
    }
    let url = url::Url::parse(text).map_err(|_| unrecognised())?;
    if !matches!(url.scheme(), "https" | "http") || !is_buildkite_host(&url) {
        return Err(UrlError::ForeignHost(
            url.host_str().unwrap_or_default().to_string(),
        ));
    }
    let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let fragment = url.fragment();
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    let segments: Vec<&str> = segments
        .iter()
        .copied()
        .skip_while(|s| *s == "v2")
        .collect();
    let (org, pipeline, after) = match segments.as_slice() {
        ["organizations", org, "pipelines", pipeline, "builds", after @ ..] => {
            (*org, *pipeline, after)
        }
        [org, pipeline, "builds", after @ ..] => (*org, *pipeline, after),
        _ => return Err(unrecognised()),
    };
    // Org and pipeline become API path segments: the same rules as given by name.
    parse_pipeline(&format!("{org}/{pipeline}"), "").map_err(|_| unrecognised())?;
    let (number, after) = after.split_first().ok_or_else(unrecognised)?;
    let number = number.parse::<u64>().map_err(|_| unrecognised())?;
    let mut job_id = match after {
        ["jobs", job, ..] if looks_like_uuid(job) => Some(job.to_string()),
        _ => None,
    };
    let mut step_id = None;
    for (name, value) in &query {
        match name.as_str() {
            "jid" if looks_like_uuid(value) => job_id = Some(value.clone()),
            "sid" if looks_like_uuid(value) => step_id = Some(value.clone()),
            _ => {}
        }
    }
    if let Some(fragment) = fragment {
        let candidate = fragment.split('/').next().unwrap_or("");
        if looks_like_uuid(candidate) {
            job_id = Some(candidate.to_string());
        }
    }
    Ok(BuildRef {
        org: org.to_string(),
        pipeline: pipeline.to_string(),
        number,
        job_id,
        step_id,
    })
}

/// `buildkite.com` and its subdomains (`api.buildkite.com`), and loopback for a local server
/// such as the demo; `evilbuildkite.com` and `buildkite.com.evil.example` are not.
fn is_buildkite_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            domain == "buildkite.com" || domain.ends_with(".buildkite.com") || domain == "localhost"
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn looks_like_uuid(s: &str) -> bool {
    s.len() == 36 && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = "019e062d-318f-4e16-ba10-a1794563c3fc";
    const STEP: &str = "019e062d-3022-433d-926e-e15f52dfb524";

    fn check(input: &str, expected: (&str, &str, u64, Option<&str>, Option<&str>)) {
        let got =
            parse_build_ref(input, "vllm/ci", "vllm").unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(
            (
                got.org.as_str(),
                got.pipeline.as_str(),
                got.number,
                got.job_id.as_deref(),
                got.step_id.as_deref()
            ),
            expected,
            "{input}"
        );
    }

    #[test]
    fn every_url_form() {
        check("65099", ("vllm", "ci", 65099, None, None));
        check("#65099", ("vllm", "ci", 65099, None, None));
        check(
            "https://buildkite.com/vllm/ci/builds/65099",
            ("vllm", "ci", 65099, None, None),
        );
        check(
            &format!("https://buildkite.com/vllm/amd-ci/builds/7561#{JOB}"),
            ("vllm", "amd-ci", 7561, Some(JOB), None),
        );
        check(
            &format!("https://buildkite.com/vllm/ci/builds/65099#{JOB}/192-1557"),
            ("vllm", "ci", 65099, Some(JOB), None),
        );
        check(
            &format!(
                "https://buildkite.com/vllm/ci/builds/65099/steps/canvas?sid={STEP}&tab=output"
            ),
            ("vllm", "ci", 65099, None, Some(STEP)),
        );
        check(
            &format!(
                "https://buildkite.com/vllm/ci/builds/65099/steps/canvas?jid={JOB}&tab=output"
            ),
            ("vllm", "ci", 65099, Some(JOB), None),
        );
        check(
            &format!("https://buildkite.com/vllm/ci/builds/65099/canvas?sid={STEP}&tab=output"),
            ("vllm", "ci", 65099, None, Some(STEP)),
        );
        check(
            &format!("https://buildkite.com/vllm/ci/builds/65099/list?sid={STEP}&tab=output"),
            ("vllm", "ci", 65099, None, Some(STEP)),
        );
        check(
            &format!("https://buildkite.com/vllm/ci/builds/65099/steps?jid={JOB}"),
            ("vllm", "ci", 65099, Some(JOB), None),
        );
        check(
            &format!(
                "https://buildkite.com/vllm/ci/builds/65099/steps/canvas?sid={STEP}#{JOB}/7-13621"
            ),
            ("vllm", "ci", 65099, Some(JOB), Some(STEP)),
        );
        check(&format!("https://buildkite.com/organizations/vllm/pipelines/ci/builds/65099/jobs/{JOB}/log#203-4688"), ("vllm", "ci", 65099, Some(JOB), None));
        check(
            "https://api.buildkite.com/v2/organizations/vllm/pipelines/ci/builds/65099",
            ("vllm", "ci", 65099, None, None),
        );
    }

    #[test]
    fn bad_input_is_rejected_with_a_message() {
        for input in [
            "",
            "abc",
            "https://example.com/vllm/ci/builds/1",
            "https://buildkite.com/vllm/ci",
            "https://buildkite.com/vllm/ci/builds/x",
            "ftp://buildkite.com/a/b/builds/1",
            "https://evilbuildkite.com/vllm/ci/builds/1",
            "https://buildkite.com.evil.example/vllm/ci/builds/1",
            "https://buildkite.com@evil.example/vllm/ci/builds/1",
            "https://10.0.0.1/vllm/ci/builds/1",
            "https://buildkite.com/vllm/c%2Fi/builds/1",
            "https://buildkite.com/vllm/ci/builds/18446744073709551616",
        ] {
            let error = parse_build_ref(input, "vllm/ci", "vllm").expect_err(input);
            assert!(
                error.to_string().contains("give a build number"),
                "{input}: {error}"
            );
        }
        assert!(parse_build_ref(
            "https://API.Buildkite.com/v2/organizations/vllm/pipelines/ci/builds/1",
            "vllm/ci",
            "vllm"
        )
        .is_ok());
        assert!(parse_pipeline("a/b/c", "vllm").is_err());
        assert_eq!(
            parse_pipeline("ci", "vllm"),
            Ok(PipelineKey::new("vllm", "ci"))
        );
    }
}
