//! Narrowing a new failure's commit range from runs that already happened, as vLLM's bisect
//! runbook does by hand. The culprit lies after the last commit whose run passed and at or
//! before the first commit after it whose run failed with the failure's signature (the first
//! bad nightly's commit when main's own runs show none). It is confirmed only when those two
//! commits are adjacent. A run that failed for another reason, was killed by the host, never
//! ran, or has no build is no evidence either way. Pure: verdicts in, positions out.

use crate::model::RunVerdict;

/// A commit's verdict from its runs': a failure with the signature outweighs a pass (the
/// culprit is at or before it even when a rerun passed), a pass any run that is no evidence.
pub fn commit_verdict(runs: &[RunVerdict]) -> RunVerdict {
    const PRECEDENCE: [RunVerdict; 7] = [
        RunVerdict::FailedSame,
        RunVerdict::Passed,
        RunVerdict::FailedUnread,
        RunVerdict::FailedOther,
        RunVerdict::Blocked,
        RunVerdict::NotRun,
        RunVerdict::NotInBuild,
    ];
    PRECEDENCE
        .into_iter()
        .find(|wanted| runs.contains(wanted))
        .unwrap_or(RunVerdict::NoBuild)
}

/// Where the culprit may be, as positions in the range (oldest commit first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Narrowed {
    /// The last commit whose run passed; `None`: the range's base (the last good nightly).
    pub last_passed: Option<usize>,
    /// The first commit after it whose run failed with the signature.
    pub first_failed: usize,
    /// `first_failed` is the range's head, known bad from the nightly only.
    pub by_nightly: bool,
}

impl Narrowed {
    /// The commits the culprit may be: `last_passed` (exclusive) through `first_failed`.
    pub fn candidates(&self) -> std::ops::RangeInclusive<usize> {
        self.last_passed.map_or(0, |p| p + 1)..=self.first_failed
    }

    /// How many commits the culprit may be (at least one: the range ends at a known failure).
    pub fn commits(&self) -> usize {
        self.candidates().count()
    }

    /// A passing run and a failing one at adjacent commits.
    pub fn is_confirmed(&self) -> bool {
        self.commits() == 1
    }
}

/// The range narrowed by `verdicts` (one per commit, oldest first; the last is the first bad
/// nightly's commit). `None` when the head's own run passed: the evidence contradicts the
/// nightly, so nothing can be narrowed.
pub fn narrow(verdicts: &[RunVerdict]) -> Option<Narrowed> {
    let head = verdicts.len().checked_sub(1)?;
    let last_passed = verdicts.iter().rposition(|v| *v == RunVerdict::Passed);
    if last_passed == Some(head) {
        return None;
    }
    let from = last_passed.map_or(0, |p| p + 1);
    let first_same = (from..=head).find(|&i| verdicts[i] == RunVerdict::FailedSame);
    Some(Narrowed {
        last_passed,
        first_failed: first_same.unwrap_or(head),
        by_nightly: first_same.is_none(),
    })
}

/// The next commit whose failed runs must be read to move the boundary: the first unread
/// failure after the last pass, before any failure already known to carry the signature.
/// Logs are read only where the state changes.
pub fn next_to_read(verdicts: &[RunVerdict]) -> Option<usize> {
    let from = verdicts
        .iter()
        .rposition(|v| *v == RunVerdict::Passed)
        .map_or(0, |p| p + 1);
    verdicts[from..]
        .iter()
        .take_while(|v| **v != RunVerdict::FailedSame)
        .position(|v| *v == RunVerdict::FailedUnread)
        .map(|i| from + i)
}

/// The commit to run next: inside the narrowed range (its known-bad end left out), the one
/// nearest the middle whose job could still run: blocked first on a tie (unblocking an
/// existing build is cheapest), then a commit with no run of the job. `None` when no commit
/// can split it further.
pub fn halving_commit(verdicts: &[RunVerdict], narrowed: &Narrowed) -> Option<usize> {
    let candidates = narrowed.candidates();
    let (first, last) = (*candidates.start(), *candidates.end());
    let middle = first + (last - first) / 2;
    let runnable = |v: RunVerdict| {
        matches!(
            v,
            RunVerdict::Blocked
                | RunVerdict::NotRun
                | RunVerdict::NotInBuild
                | RunVerdict::NoBuild
                | RunVerdict::FailedOther
        )
    };
    (first..last)
        .filter(|&i| runnable(verdicts[i]))
        .min_by_key(|&i| (i.abs_diff(middle), verdicts[i] != RunVerdict::Blocked, i))
}

/// Runs that confirm the culprit among `commits` candidates at most: a binary search.
pub fn runs_to_confirm(commits: usize) -> u32 {
    match commits {
        0 | 1 => 0,
        n => usize::BITS - (n - 1).leading_zeros(),
    }
}

/// The key the pipeline generator gives a step without an explicit `key:` (ci-infra's
/// `_generate_step_key`): its label with spaces, `,+:./` as dashes and `()%` dropped.
pub fn step_key_of(label: &str) -> String {
    label
        .replace(' ', "-")
        .to_lowercase()
        .chars()
        .filter(|c| !matches!(c, '(' | ')' | '%'))
        .map(|c| if ",+:./".contains(c) { '-' } else { c })
        .collect()
}

/// The block step's key in front of a job: `block-<key>`, an AMD mirror's `block-amd-<key>`.
pub fn block_key_of(label: &str) -> String {
    match label.strip_prefix("AMD: ") {
        Some(rest) => format!("block-amd-{}", step_key_of(strip_queue(rest))),
        None => format!("block-{}", step_key_of(label)),
    }
}

/// A job's step key when its build does not show one: an AMD mirror's is `amd-<key>` of its
/// source step's label.
pub fn job_key_of(job_name: &str) -> String {
    match job_name.strip_prefix("AMD: ") {
        Some(rest) => format!("amd-{}", step_key_of(strip_queue(rest))),
        None => step_key_of(job_name),
    }
}

/// A mirror's label without its queue suffix: `V1 e2e (2 GPUs) (mi325_2)` → `V1 e2e (2 GPUs)`.
pub fn strip_queue(label: &str) -> &str {
    match label.rsplit_once(" (") {
        Some((base, queue))
            if queue.ends_with(')') && queue.starts_with("mi") && !queue.contains(' ') =>
        {
            base
        }
        _ => label,
    }
}

/// `VLLM_CI_ONLY_STEP_KEYS` for `/ci retry`: the job's key, and `amd-<key>` when the failure
/// also fails on AMD. Setup steps cannot be retried this way (ci-infra refuses them).
pub fn retry_step_keys(job_key: &str, with_amd: bool) -> Result<Vec<String>, String> {
    if job_key == "bootstrap" || job_key.contains("image-build") {
        return Err(format!(
            "{job_key} is a setup step: /ci retry never reruns bootstrap or an image build; run the commit's whole build instead"
        ));
    }
    let mut keys = vec![job_key.to_string()];
    if with_amd && !job_key.starts_with("amd-") {
        keys.push(format!("amd-{job_key}"));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use RunVerdict::*;

    #[test]
    fn narrowed_between_the_last_pass_and_the_first_failure_after_it() {
        let verdicts = [
            Passed,
            Blocked,
            Passed,
            FailedOther,
            NoBuild,
            FailedSame,
            Blocked,
            FailedSame,
        ];
        let narrowed = narrow(&verdicts).expect("narrowed");
        assert_eq!(narrowed.last_passed, Some(2));
        assert_eq!(narrowed.first_failed, 5);
        assert_eq!(narrowed.commits(), 3);
        assert!(!narrowed.by_nightly && !narrowed.is_confirmed());
        // The middle (4) has no build; the other side (3) failed for another reason.
        assert_eq!(halving_commit(&verdicts, &narrowed), Some(4));
        assert_eq!(runs_to_confirm(narrowed.commits()), 2);
    }

    #[test]
    fn adjacent_evidence_confirms() {
        let verdicts = [Blocked, Passed, FailedSame, NotInBuild];
        let narrowed = narrow(&verdicts).expect("narrowed");
        assert!(narrowed.is_confirmed());
        assert_eq!(narrowed.first_failed, 2);
        assert_eq!(halving_commit(&verdicts, &narrowed), None);
        assert_eq!(runs_to_confirm(1), 0);
    }

    #[test]
    fn without_main_evidence_the_nightly_bounds_the_range() {
        let verdicts = [Blocked, NoBuild, Blocked, NoBuild, FailedOther];
        let narrowed = narrow(&verdicts).expect("narrowed");
        assert_eq!(narrowed.last_passed, None);
        assert!(narrowed.by_nightly);
        assert_eq!(narrowed.commits(), 5);
        // Middle of 0..=4 is 2, blocked: unblock it.
        assert_eq!(halving_commit(&verdicts, &narrowed), Some(2));
        assert_eq!(runs_to_confirm(5), 3);
        // The head's own run passed: the nightly's failure is contradicted.
        assert_eq!(narrow(&[Blocked, Passed]), None);
        assert_eq!(narrow(&[]), None);
    }

    #[test]
    fn logs_are_read_only_where_the_state_changes() {
        assert_eq!(
            next_to_read(&[FailedUnread, Passed, FailedUnread, FailedUnread]),
            Some(2)
        );
        assert_eq!(next_to_read(&[Passed, FailedSame, FailedUnread]), None);
        assert_eq!(
            next_to_read(&[Passed, FailedOther, Blocked, FailedUnread]),
            Some(3)
        );
        assert_eq!(next_to_read(&[Passed, Blocked]), None);
    }

    #[test]
    fn a_commit_verdict_prefers_the_signature_then_a_pass() {
        assert_eq!(commit_verdict(&[Passed, FailedSame]), FailedSame);
        assert_eq!(commit_verdict(&[FailedOther, Passed, Blocked]), Passed);
        assert_eq!(commit_verdict(&[Blocked, NotInBuild]), Blocked);
        assert_eq!(commit_verdict(&[]), NoBuild);
    }

    #[test]
    fn keys_follow_the_pipeline_generator() {
        // Keys of real block steps of build 61012.
        assert_eq!(
            block_key_of("AMD: V1 Core + KV + Metrics"),
            "block-amd-v1-core---kv---metrics"
        );
        assert_eq!(
            block_key_of("AMD: Entrypoints Integration (API Server openai - Part 1) (mi325_1)"),
            "block-amd-entrypoints-integration-api-server-openai---part-1"
        );
        assert_eq!(
            block_key_of("Multi-Modal Models (Standard) 1: qwen2"),
            "block-multi-modal-models-standard-1--qwen2"
        );
        assert_eq!(
            step_key_of("Distributed Tests (2 GPUs)(H100)"),
            "distributed-tests-2-gpush100"
        );
        assert_eq!(
            retry_step_keys("v1-sample-logits", true).expect("keys"),
            ["v1-sample-logits", "amd-v1-sample-logits"]
        );
        assert_eq!(
            job_key_of("AMD: V1 Sample + Logits (mi300_1)"),
            "amd-v1-sample---logits"
        );
        assert_eq!(
            retry_step_keys("kernels", false).expect("keys"),
            ["kernels"]
        );
        assert!(retry_step_keys("bootstrap", false).is_err());
        assert!(retry_step_keys("cpu-arm64-image-build", true).is_err());
    }
}
