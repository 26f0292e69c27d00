//! Buildkite Test Engine lookups for pytest node ids: which suite test a node id is, and whether
//! Test Engine labels it flaky. Uses the documented list-tests endpoint (paginated, `label=flaky`).
//!
//! The mapping of a node id to Test Engine's `scope`/`name` is not documented for pytest, so it
//! is tolerant: the name must equal the test part of the node id (`test_x[p]`, or `C::m` /
//! `m` for methods) and, where the suite test names a file (`scope`, `file_name`, `location`),
//! that file must be the node id's. An exact name beats the same test with other parameters.

use super::WatchError;
use crate::buildkite::models::SuiteTest;
use crate::buildkite::BuildkiteClient;
pub use crate::model::{AnalyticsBulkResult, AnalyticsMatch, Candidate};
use std::collections::{BTreeMap, HashSet};

/// Pages of 100 tests read per suite listing; vLLM's suite has thousands of tests.
pub const MAX_SUITE_PAGES: usize = 50;
/// More node ids than this in one bulk call gets a warning (the original's 50).
const LARGE_BATCH: usize = 50;

fn file_and_name(nodeid: &str) -> (Option<&str>, &str) {
    match nodeid.split_once("::") {
        Some((file, name)) => (Some(file), name),
        None => (None, nodeid),
    }
}

/// A suite test's file or location (`./tests/a/test_b.py:12`) in the form node ids compare in.
fn relative_file(path: &str) -> &str {
    let path = path.trim().trim_start_matches("./");
    crate::input::comparable(path.split(':').next().unwrap_or(path))
}

fn same_file(test: &SuiteTest, file: &str) -> bool {
    let wanted = relative_file(file);
    let named: Vec<&str> = [
        test.file_name.as_deref(),
        test.location.as_deref(),
        test.scope
            .as_deref()
            .map(|s| s.split("::").next().unwrap_or(s)),
    ]
    .into_iter()
    .flatten()
    .filter(|s| s.contains(".py"))
    .collect();
    named.is_empty()
        || named.iter().any(|n| {
            relative_file(n) == wanted || relative_file(n).ends_with(&format!("/{wanted}"))
        })
}

/// The suite tests a node id (or plain test name) may be; exact names first.
pub fn match_tests<'t>(nodeid: &str, tests: &'t [SuiteTest]) -> Vec<&'t SuiteTest> {
    let (file, name) = file_and_name(nodeid.trim());
    let short = name.rsplit("::").next().unwrap_or(name);
    let in_file = |t: &&SuiteTest| file.is_none_or(|f| same_file(t, f));
    let test_name = |t: &SuiteTest| t.name.clone().unwrap_or_default();
    let exact: Vec<&SuiteTest> = tests
        .iter()
        .filter(in_file)
        .filter(|t| test_name(t) == name || test_name(t) == short)
        .collect();
    if !exact.is_empty() || name.contains('[') {
        return exact;
    }
    // A node id without parameters names every parametrisation of the function.
    tests
        .iter()
        .filter(in_file)
        .filter(|t| test_name(t).split('[').next() == Some(short))
        .collect()
}

fn describe(test: &SuiteTest, nodeid: &str, flaky: &HashSet<&str>) -> AnalyticsMatch {
    AnalyticsMatch {
        test_nodeid: nodeid.to_string(),
        test_id: test.id.clone(),
        test_name: test.name.clone().unwrap_or_default(),
        scope: test.scope.clone().unwrap_or_default(),
        location: test.location.clone().unwrap_or_default(),
        web_url: test.web_url.clone().unwrap_or_default(),
        is_flaky: flaky.contains(test.id.as_str()),
    }
}

/// Looks every node id up in the suite: one paginated listing of the suite and one of its
/// flaky tests, however many ids.
pub async fn analytics_bulk(
    client: &BuildkiteClient,
    org: &str,
    suite: &str,
    nodeids: &[String],
) -> Result<AnalyticsBulkResult, WatchError> {
    let (tests, truncated) = client
        .list_suite_tests(org, suite, None, MAX_SUITE_PAGES)
        .await?;
    let (flaky_tests, _) = client
        .list_suite_tests(org, suite, Some("flaky"), MAX_SUITE_PAGES)
        .await?;
    let flaky: HashSet<&str> = flaky_tests.iter().map(|t| t.id.as_str()).collect();
    let mut warnings = Vec::new();
    if truncated {
        warnings.push(format!(
            "read the first {} tests of suite {suite} ({MAX_SUITE_PAGES} pages); tests beyond them show as not found",
            tests.len()
        ));
    }
    if nodeids.len() > LARGE_BATCH {
        warnings.push(format!(
            "Large batch ({} tests) may be slow. Consider splitting.",
            nodeids.len()
        ));
    }
    let mut result = AnalyticsBulkResult {
        results: Vec::new(),
        not_found: Vec::new(),
        multiple_matches: BTreeMap::new(),
        total_checked: nodeids.len(),
        suite_tests_read: tests.len(),
        warnings,
    };
    for nodeid in nodeids {
        match match_tests(nodeid, &tests).as_slice() {
            [] => result.not_found.push(nodeid.clone()),
            [one] => result.results.push(describe(one, nodeid, &flaky)),
            many => {
                let candidates = many
                    .iter()
                    .map(|t| Candidate {
                        id: t.id.clone(),
                        name: t.name.clone().unwrap_or_default(),
                        scope: t.scope.clone().unwrap_or_default(),
                        location: t.location.clone().unwrap_or_default(),
                    })
                    .collect();
                result.multiple_matches.insert(nodeid.clone(), candidates);
            }
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(id: &str, scope: &str, name: &str, location: &str) -> SuiteTest {
        SuiteTest {
            id: id.into(),
            web_url: Some(format!(
                "https://buildkite.com/organizations/vllm/analytics/suites/ci-1/tests/{id}"
            )),
            scope: Some(scope.into()),
            name: Some(name.into()),
            location: Some(location.into()),
            file_name: None,
        }
    }

    #[test]
    fn exact_names_win_over_siblings_and_files_must_agree() {
        let suite = vec![
            test(
                "1",
                "tests/v1/distributed/test_dbo.py",
                "test_dbo_dp_ep_gsm8k[deepep_low_latency]",
                "tests/v1/distributed/test_dbo.py:40",
            ),
            test(
                "2",
                "tests/v1/distributed/test_dbo.py",
                "test_dbo_dp_ep_gsm8k[deepep_high_throughput]",
                "tests/v1/distributed/test_dbo.py:40",
            ),
            test(
                "3",
                "tests/other/test_dbo.py",
                "test_dbo_dp_ep_gsm8k[deepep_low_latency]",
                "tests/other/test_dbo.py:9",
            ),
            test(
                "4",
                "tests/v1/engine/test_x.py::TestC",
                "test_m",
                "tests/v1/engine/test_x.py:12",
            ),
        ];
        let ids = |nodeid: &str| {
            match_tests(nodeid, &suite)
                .iter()
                .map(|t| t.id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids("v1/distributed/test_dbo.py::test_dbo_dp_ep_gsm8k[deepep_low_latency]"),
            vec!["1"]
        );
        assert_eq!(
            ids("tests/v1/distributed/test_dbo.py::test_dbo_dp_ep_gsm8k"),
            vec!["1", "2"],
            "no parameters: every parametrisation"
        );
        assert_eq!(ids("v1/engine/test_x.py::TestC::test_m"), vec!["4"]);
        assert!(ids("v1/distributed/test_dbo.py::test_dbo_dp_ep_gsm8k[missing]").is_empty());
        assert_eq!(
            ids("test_dbo_dp_ep_gsm8k[deepep_low_latency]"),
            vec!["1", "3"],
            "a plain name matches in any file"
        );
    }
}
