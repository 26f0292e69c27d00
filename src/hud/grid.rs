//! The failing tests and jobs of a nightly against the nightlies it was compared with: one row
//! per failure, one cell per nightly (this one first, then newest to oldest), each cell linked
//! to its Buildkite job. Pure data for the page to draw.

use crate::model::{FailureClassification, ScanResult, Trend};

/// What one nightly said about one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Failed,
    Passed,
    /// The nightly had no job of that name.
    NotRun,
    /// The nightly could not say (agent lost, cancelled, log not read).
    Unknown,
}

impl Outcome {
    /// A letter of `FailureTrend::runs`.
    fn of_letter(letter: char) -> Self {
        match letter {
            'F' => Self::Failed,
            'P' => Self::Passed,
            'N' => Self::NotRun,
            _ => Self::Unknown,
        }
    }

    /// The cell's CSS class (the page's tests count cells by it).
    pub fn class(self) -> &'static str {
        match self {
            Self::Failed => "fail",
            Self::Passed => "pass",
            Self::NotRun => "notrun",
            Self::Unknown => "unknown",
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Self::Failed => "✗",
            Self::Passed => "✓",
            Self::NotRun => "–",
            Self::Unknown => "?",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::Passed => "passed",
            Self::NotRun => "not run",
            Self::Unknown => "could not say",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub build: u64,
    pub outcome: Outcome,
    /// The job in that nightly, else the nightly itself; `None` when neither is known.
    pub href: Option<String>,
}

#[derive(Debug)]
pub struct Row<'a> {
    pub failure: &'a FailureClassification,
    /// This nightly first, then the compared ones, newest first.
    pub cells: Vec<Cell>,
}

/// The nightlies of the grid's columns: this one, then the compared ones, newest first.
pub fn columns(scan: &ScanResult) -> Vec<u64> {
    let current = scan.build_info.build_number.parse().unwrap_or(0);
    std::iter::once(current)
        .chain(
            scan.comparison
                .iter()
                .flat_map(|c| c.compared_builds.iter().copied()),
        )
        .collect()
}

/// Every failure of the scan as a row, what is new first (then intermittent, continuing,
/// unknown), in the scan's order within each.
pub fn rows(scan: &ScanResult) -> Vec<Row<'_>> {
    let columns = columns(scan);
    let mut rows: Vec<Row<'_>> = scan
        .failures
        .iter()
        .map(|failure| Row {
            failure,
            cells: cells(scan, failure, &columns),
        })
        .collect();
    rows.sort_by_key(|row| trend_rank(row.failure));
    rows
}

fn trend_rank(failure: &FailureClassification) -> u8 {
    match failure.since.trend.as_ref().map(|t| t.trend) {
        Some(Trend::New) => 0,
        Some(Trend::Intermittent) => 1,
        Some(Trend::Continuing) => 2,
        Some(Trend::Unknown) | None => 3,
    }
}

fn cells(scan: &ScanResult, failure: &FailureClassification, columns: &[u64]) -> Vec<Cell> {
    let now = Cell {
        build: columns[0],
        outcome: Outcome::Failed,
        href: failure
            .job_id
            .as_deref()
            .map(|id| scan.links.job.replace("{job_id}", id))
            .or_else(|| failure.job_url.clone())
            .or_else(|| Some(scan.build_info.build_url.clone())),
    };
    let trend = failure.since.trend.as_ref();
    let runs: Vec<char> = trend.map_or_else(Vec::new, |t| t.runs.chars().collect());
    let earlier = columns[1..].iter().enumerate().map(|(i, &build)| {
        let outcome = runs
            .get(i)
            .map_or(Outcome::Unknown, |&l| Outcome::of_letter(l));
        let job = trend
            .and_then(|t| t.run_jobs.get(i))
            .filter(|id| !id.is_empty());
        Cell {
            build,
            outcome,
            href: build_url(&scan.build_info.build_url, build).map(|url| match job {
                Some(id) => format!("{url}#{id}"),
                None => url,
            }),
        }
    });
    std::iter::once(now).chain(earlier).collect()
}

/// Another build of the same pipeline: `…/builds/65099` → `…/builds/{number}`.
pub fn build_url(this_build_url: &str, number: u64) -> Option<String> {
    let (base, last) = this_build_url.rsplit_once('/')?;
    last.parse::<u64>().ok()?;
    Some(format!("{base}/{number}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_reads_its_letters_and_jobs_in_column_order() {
        let mut scan = crate::hud::tests::scan_with_trends();
        scan.links.job = "https://buildkite.com/vllm/ci/builds/100#{job_id}".into();
        let rows = rows(&scan);
        // The new failure comes first, though the scan lists it second.
        assert_eq!(
            rows[0].failure.test_failure.test_name,
            "tests/new.py::test_new"
        );
        let cells = &rows[1].cells;
        let outcomes: Vec<Outcome> = cells.iter().map(|c| c.outcome).collect();
        assert_eq!(
            outcomes,
            [
                Outcome::Failed,
                Outcome::Failed,
                Outcome::NotRun,
                Outcome::Unknown,
                Outcome::Passed
            ]
        );
        assert_eq!(
            cells[0].href.as_deref(),
            Some("https://buildkite.com/vllm/ci/builds/100#j-100")
        );
        assert_eq!(
            cells[1].href.as_deref(),
            Some("https://buildkite.com/vllm/ci/builds/99#j-99")
        );
        assert_eq!(
            cells[2].href.as_deref(),
            Some("https://buildkite.com/vllm/ci/builds/98")
        );
        assert_eq!(columns(&scan), [100, 99, 98, 97, 96]);
    }

    #[test]
    fn a_build_url_is_made_only_from_a_build_url() {
        assert_eq!(
            build_url("https://buildkite.com/vllm/ci/builds/65099", 7).as_deref(),
            Some("https://buildkite.com/vllm/ci/builds/7")
        );
        assert_eq!(build_url("https://buildkite.com/vllm/ci", 7), None);
        assert_eq!(build_url("", 7), None);
    }
}
