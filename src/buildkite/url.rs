//! Parsing what a user may paste to name a build: a number, or any Buildkite web or API URL.
//!
//! Forms (api-facts §1.8): `…/{org}/{pipeline}/builds/{N}`, with `#{job}` or `#{job}/{lines}`,
//! `/steps/canvas?sid={step}&jid={job}`, `/canvas?sid=`, `/list?sid=`, `/steps?jid=`; the legacy
//! `…/organizations/{org}/pipelines/{pipeline}/builds/{N}/jobs/{job}/log`; and API URLs
//! `https://api.buildkite.com/v2/organizations/{org}/pipelines/{pipeline}/builds/{N}`.
//! `sid` is a step id (`job.step.id`), `jid` a job id.

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
}

/// Splits `org/pipeline` (or a bare `pipeline`, using `default_org`).
pub fn parse_pipeline(pipeline: &str, default_org: &str) -> Result<(String, String), UrlError> {
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    match pipeline.trim().split_once('/') {
        Some((org, name)) if valid(org) && valid(name) => Ok((org.to_string(), name.to_string())),
        None if valid(pipeline.trim()) => {
            Ok((default_org.to_string(), pipeline.trim().to_string()))
        }
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
        let (org, pipeline) = parse_pipeline(default_pipeline, default_org)?;
        return Ok(BuildRef {
            org,
            pipeline,
            number,
            job_id: None,
            step_id: None,
        });
    }
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or_else(unrecognised)?;
    let (location, fragment) = rest
        .split_once('#')
        .map_or((rest, None), |(l, f)| (l, Some(f)));
    let (path, query) = location
        .split_once('?')
        .map_or((location, None), |(p, q)| (p, Some(q)));
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let (host, segments) = segments.split_first().ok_or_else(unrecognised)?;
    if !host.ends_with("buildkite.com")
        && !host.starts_with("localhost")
        && !host.starts_with("127.0.0.1")
    {
        return Err(unrecognised());
    }
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
    let (number, after) = after.split_first().ok_or_else(unrecognised)?;
    let number = number.parse::<u64>().map_err(|_| unrecognised())?;
    let mut job_id = match after {
        ["jobs", job, ..] => Some(job.to_string()),
        _ => None,
    };
    let mut step_id = None;
    for pair in query.unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("jid", value)) if !value.is_empty() => job_id = Some(value.to_string()),
            Some(("sid", value)) if !value.is_empty() => step_id = Some(value.to_string()),
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
        ] {
            let error = parse_build_ref(input, "vllm/ci", "vllm").expect_err(input);
            assert!(error.to_string().contains("give a build number"), "{error}");
        }
        assert!(parse_pipeline("a/b/c", "vllm").is_err());
        assert_eq!(
            parse_pipeline("ci", "vllm"),
            Ok(("vllm".into(), "ci".into()))
        );
    }
}
