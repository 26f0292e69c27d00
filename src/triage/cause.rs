//! Root causes: a bad night's dozens of failures grouped into the handful of problems behind
//! them, as PyTorch's vLLM triage groups by exception chain (never by job-name prefix).
//! Failures with one [`Signature`] are one cause; each cause gathers its members' tests
//! (parametrisations folded), jobs, areas, hardware and platforms, and says where it fails
//! (parity).

use super::cluster::{cluster_key, hardware, platform};
use super::signature::{signature, Signature, FLEET_JOBS};
use crate::model::{Category, Cause, FailureClassification, InfraKind, Platform, Trend};
use std::collections::BTreeSet;

/// Groups `failures` into causes, strongest first, and sets each failure's `cause_id`.
/// `pipeline` (`org/pipeline`) tells the platform of jobs whose names do not.
pub fn group_causes(failures: &mut [FailureClassification], pipeline: &str) -> Vec<Cause> {
    let mut signatures: Vec<Signature> = failures
        .iter()
        .map(|f| {
            let tf = &f.test_failure;
            signature(
                &tf.test_name,
                &tf.job_name,
                tf.error_message.as_deref(),
                tf.stack_trace.as_deref().or(tf.log_snippet.as_deref()),
            )
        })
        .collect();
    let fleet: Vec<usize> = (0..failures.len())
        .filter(|&i| lost_to_the_fleet(&failures[i]))
        .collect();
    if fleet.len() >= FLEET_JOBS {
        for &i in &fleet {
            signatures[i] = Signature::fleet(fleet.len());
        }
    }
    // Uncut messages first, so a cut one joins the cause of the message it is a prefix of.
    let mut order: Vec<usize> = (0..failures.len()).collect();
    order.sort_by_key(|&i| signatures[i].cut);
    let mut groups: Vec<(Signature, Vec<usize>)> = Vec::new();
    for i in order {
        match groups
            .iter_mut()
            .find(|(s, _)| s.same_cause(&signatures[i]))
        {
            Some((_, members)) => members.push(i),
            None => groups.push((signatures[i].clone(), vec![i])),
        }
    }
    let mut causes: Vec<Cause> = groups
        .into_iter()
        .map(|(signature, mut members)| {
            members.sort_unstable();
            let members: Vec<&FailureClassification> =
                members.iter().map(|&i| &failures[i]).collect();
            cause_of(&signature, &members, pipeline)
        })
        .collect();
    causes.sort_by_key(|c| {
        (
            Category::REPORT_ORDER.iter().position(|&k| k == c.category),
            std::cmp::Reverse(c.failure_count),
        )
    });
    for cause in &causes {
        for failure in failures.iter_mut() {
            if cause.failure_keys.contains(&failure.failure_key) {
                failure.cause_id = Some(cause.cause_id.clone());
            }
        }
    }
    causes
}

/// A job that timed out or lost its agent, with no test named: the host's doing, not the code's.
fn lost_to_the_fleet(failure: &FailureClassification) -> bool {
    !failure.test_failure.test_name.contains("::")
        && matches!(
            failure.infra_kind,
            Some(InfraKind::AgentLost | InfraKind::JobTimeout)
        )
}

fn cause_of(signature: &Signature, members: &[&FailureClassification], pipeline: &str) -> Cause {
    let text = signature.text();
    let unique = |values: &mut dyn Iterator<Item = String>| -> Vec<String> {
        let mut seen = Vec::new();
        for value in values {
            if !seen.contains(&value) {
                seen.push(value);
            }
        }
        seen
    };
    let jobs = unique(&mut members.iter().map(|f| f.test_failure.job_name.clone()));
    let platforms: BTreeSet<Platform> = jobs.iter().map(|j| platform(j, pipeline)).collect();
    let category = Category::REPORT_ORDER
        .into_iter()
        .find(|c| members.iter().any(|f| f.category == *c))
        .unwrap_or(Category::NeedsHumanTriage);
    Cause {
        cause_id: cause_id(&text),
        signature: text,
        exception: signature.exception.clone(),
        error_message: None,
        failure_count: members.len(),
        failure_keys: members.iter().map(|f| f.failure_key.clone()).collect(),
        tests: fold_tests(members.iter().map(|f| f.test_failure.test_name.as_str())),
        clusters: unique(&mut jobs.iter().map(|j| cluster_key(j))),
        hardware: unique(&mut jobs.iter().flat_map(|j| hardware(j))),
        jobs,
        platforms: platforms.into_iter().collect(),
        category,
        trend: cause_trend(members),
        suspect: members
            .iter()
            .filter_map(|f| f.since.onset.as_ref())
            .flat_map(|o| o.suspects.iter())
            .find(|s| s.closeness > 0)
            .cloned(),
        owners: unique(&mut members.iter().flat_map(|f| f.owner.all.iter().cloned()))
            .into_iter()
            .take(6)
            .collect(),
        issue: members
            .iter()
            .filter_map(|f| f.issue.matched.as_ref())
            .find(|i| i.tracking)
            .or_else(|| members.iter().find_map(|f| f.issue.matched.as_ref()))
            .cloned(),
        elsewhere: None,
        parity: None,
        issue_advice: None,
        draft_issue: None,
    }
}

/// Where a cause fails: on CUDA and ROCm (`universal`), or on one only, when the other side
/// ran it and passed (the compared nightly, or the other platform's job of the same area in
/// the build). `None` when the other side could not say.
pub fn parity(
    platforms: &[Platform],
    elsewhere: Option<crate::model::ElsewhereState>,
    passed_on: &[Platform],
) -> Option<crate::model::Parity> {
    use crate::model::{ElsewhereState, Parity};
    let cuda = platforms.contains(&Platform::Cuda);
    let rocm =
        platforms.contains(&Platform::Rocm) || elsewhere == Some(ElsewhereState::FailingThere);
    let rocm_passed =
        elsewhere == Some(ElsewhereState::PassingThere) || passed_on.contains(&Platform::Rocm);
    match (cuda, rocm) {
        (true, true) => Some(Parity::Universal),
        (true, false) if rocm_passed => Some(Parity::CudaOnly),
        (false, true) if passed_on.contains(&Platform::Cuda) => Some(Parity::RocmOnly),
        _ => None,
    }
}

/// New when every member is new; else continuing, intermittent, unknown in that order.
fn cause_trend(members: &[&FailureClassification]) -> Option<Trend> {
    let trends: Vec<Trend> = members
        .iter()
        .filter_map(|f| f.since.trend.as_ref().map(|t| t.trend))
        .collect();
    if trends.is_empty() {
        return None;
    }
    if trends.len() == members.len() && trends.iter().all(|&t| t == Trend::New) {
        return Some(Trend::New);
    }
    [Trend::Continuing, Trend::Intermittent]
        .into_iter()
        .find(|t| trends.contains(t))
        .or(Some(Trend::Unknown))
}

fn cause_id(signature: &str) -> String {
    use sha2::{Digest, Sha256};
    crate::text::hex(&Sha256::digest(signature.as_bytes())[..8])
}

/// Test ids with the parametrisations of one function folded: `file.py::test_x[...] ×4`.
pub fn fold_tests<'a>(tests: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut folded: Vec<(String, Vec<&str>)> = Vec::new();
    for test in tests {
        let base = test.split('[').next().unwrap_or(test).to_string();
        match folded.iter_mut().find(|(b, _)| *b == base) {
            Some((_, ids)) => {
                if !ids.contains(&test) {
                    ids.push(test)
                }
            }
            None => folded.push((base, vec![test])),
        }
    }
    folded
        .into_iter()
        .map(|(base, ids)| match ids.as_slice() {
            [one] => one.to_string(),
            many => format!("{base}[...] ×{}", many.len()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parity_needs_the_other_side_to_have_run() {
        use crate::model::{ElsewhereState::*, Parity::*};
        let cuda = [Platform::Cuda];
        assert_eq!(parity(&cuda, Some(FailingThere), &[]), Some(Universal));
        assert_eq!(parity(&cuda, Some(PassingThere), &[]), Some(CudaOnly));
        assert_eq!(parity(&cuda, Some(NotRunThere), &[]), None);
        assert_eq!(
            parity(&[Platform::Cuda, Platform::Rocm], None, &[]),
            Some(Universal)
        );
        assert_eq!(
            parity(&[Platform::Rocm], Some(FailingThere), &[Platform::Cuda]),
            Some(RocmOnly)
        );
        assert_eq!(parity(&[Platform::Rocm], None, &[]), None);
    }

    fn job_failure(job: &str, error: &str, infra_kind: Option<&str>) -> FailureClassification {
        serde_json::from_value(serde_json::json!({
            "failure_key": format!("key-{job}"),
            "test_failure": {"test_name": job, "job_name": job, "error_message": error},
            "category": if infra_kind.is_some() { "INFRA_SUSPECTED" } else { "NEEDS_HUMAN_TRIAGE" },
            "confidence": 0.9,
            "infra_kind": infra_kind,
        }))
        .expect("a failure")
    }

    /// Jobs that time out or lose their agent together are one cause, the fleet, with its
    /// count; under three they keep causes of their own, and other failures never join it.
    #[test]
    fn many_jobs_timed_out_or_lost_together_are_one_fleet_cause() {
        let mut night = vec![
            job_failure(
                "Distributed Tests (4 GPUs)",
                "🚨 Error: The command exited with status -1",
                Some("agent_lost"),
            ),
            job_failure(
                "LoRA TP Test (distributed)",
                "Timeout: the job ran past its 90-minute limit",
                Some("job_timeout"),
            ),
            job_failure(
                "Basic Models Test",
                "🚨 Error: The command exited with status -1",
                Some("agent_lost"),
            ),
            job_failure(
                "Kernels MoE Test %N",
                "Timeout: the job ran past its 60-minute limit",
                Some("job_timeout"),
            ),
            job_failure("Examples Test", "KeyError: 'kimi_vl'", None),
            job_failure(
                "Docker Build",
                "ERROR: failed to solve: process did not complete",
                Some("image_build"),
            ),
        ];
        let causes = group_causes(&mut night, "vllm/ci");
        let fleet: Vec<&Cause> = causes
            .iter()
            .filter(|c| c.signature.starts_with("Fleet"))
            .collect();
        assert_eq!(fleet.len(), 1, "{causes:#?}");
        assert_eq!(fleet[0].failure_keys.len(), 4);
        assert!(fleet[0]
            .signature
            .contains("4 jobs timed out or lost their agent"));
        assert_eq!(fleet[0].category, Category::InfraSuspected);
        assert_eq!(causes.len(), 3, "the fleet, the KeyError, the image build");

        let mut two = night[..2].to_vec();
        let causes = group_causes(&mut two, "vllm/ci");
        assert!(causes.iter().all(|c| !c.signature.starts_with("Fleet")));
    }

    #[test]
    fn folding() {
        let folded = fold_tests(
            [
                "q/test_w4a16.py::test_machete[a]",
                "q/test_w4a16.py::test_machete[b]",
                "q/test_w4a16.py::test_machete[c]",
                "q/test_w4a16.py::test_other",
            ]
            .into_iter(),
        );
        assert_eq!(
            folded,
            vec![
                "q/test_w4a16.py::test_machete[...] ×3",
                "q/test_w4a16.py::test_other"
            ]
        );
    }
}
