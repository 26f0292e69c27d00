//! The sidecar's HUD pages, rendered by maud (every text escaped): the night page (what the
//! nightly is, whether the answer is whole, causes first, then the grid and what was fixed),
//! one failure's page, and the page shown before any scan.

use super::grid::{self, Cell, Row};
use super::{safe_href, STYLE};
use crate::model::{Cause, FailureClassification, ScanResult, WatchOutcome, WatchStatus};
use crate::report::{issue_state_name, parity_name};
use maud::{html, Markup, PreEscaped, DOCTYPE};

/// Characters of an error line or a signature on the page (the MCP tools give the rest).
const LINE_CHARS: usize = 200;

/// Where a pipeline's pages are served.
#[derive(Debug, Clone)]
pub struct Place {
    /// `org/pipeline`.
    pub pipeline: String,
    /// The night page's path, e.g. `/hud/vllm/ci`.
    pub base: String,
    /// What the sidecar's watcher last did for the pipeline, when it watches it.
    pub watch: Option<WatchStatus>,
}

impl Place {
    pub fn new(org: &str, pipeline: &str) -> Self {
        Self {
            pipeline: format!("{org}/{pipeline}"),
            base: format!("/hud/{org}/{pipeline}"),
            watch: None,
        }
    }

    fn refresh(&self) -> String {
        format!("{}/refresh", self.base)
    }

    /// Where a failure's bisect plan is asked for (`POST`: it reads Buildkite and GitHub).
    pub fn bisect(&self, failure_key: &str) -> String {
        let id: String = url::form_urlencoded::byte_serialize(failure_key.as_bytes()).collect();
        format!("{}/bisect?id={id}", self.base)
    }

    fn failure_page(&self, failure: &FailureClassification) -> String {
        let id: String =
            url::form_urlencoded::byte_serialize(failure.failure_key.as_bytes()).collect();
        format!("{}/test?id={id}", self.base)
    }
}

pub(super) fn frame(title: &str, place: &Place, body: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                nav {
                    a href=(place.base) { "CI watch · " (place.pipeline) }
                    form method="post" action=(place.refresh()) {
                        button type="submit" title="Scan the latest nightly again (reads Buildkite)" { "Scan now" }
                    }
                }
                main { (body) }
                footer {
                    @if let Some(watch) = &place.watch { p class="watch" { (watch_line(watch)) } }
                    "Legend: "
                    @for outcome in [grid::Outcome::Failed, grid::Outcome::Passed, grid::Outcome::NotRun, grid::Outcome::Unknown] {
                        span class={"cell " (outcome.class())} { (outcome.symbol()) } " " (outcome.label()) " · "
                    }
                    "Text from logs and issues is shown as written, never run."
                }
            }
        }
    }
    .into_string()
}

/// The watcher's last look and its next, in one line.
fn watch_line(watch: &WatchStatus) -> String {
    let what = match &watch.outcome {
        WatchOutcome::Read {
            build_number,
            complete,
            failures,
        } => format!(
            "read nightly #{build_number} ({failures} failures, {})",
            if *complete { "complete" } else { "incomplete" }
        ),
        WatchOutcome::Failed { why } => format!("could not read the nightly ({why})"),
    };
    format!(
        "Watcher: looked at {}: {what}; next look at {}.",
        watch.looked_at, watch.next_look_at
    )
}

/// The page shown when the store holds no scan of the pipeline yet, with why when known.
pub fn no_scan_page(place: &Place, why: Option<&str>) -> String {
    let body = html! {
        h1 { "No nightly scanned yet" }
        p { "The HUD shows the last nightly of " code { (place.pipeline) } " scanned with this server's token. \
             Press “Scan now”, or call ciwatch_scan_latest_nightly through this server." }
        @if let Some(why) = why { p class="incomplete" { (why) } }
    };
    frame(&format!("CI watch · {}", place.pipeline), place, body)
}

/// The night page of a nightly scanned at full detail.
pub fn night_page(scan: &ScanResult, place: &Place) -> String {
    let title = format!(
        "CI watch · {} nightly {}",
        place.pipeline, scan.build_info.build_number
    );
    frame(&title, place, night_view(scan, Some(place)))
}

/// What a scan result shows, drawn once for the sidecar's night page and the MCP App: the
/// nightly, whether the answer is whole, causes first, then the grid, the page it holds, and
/// what was fixed. `place` links each failure to its page on the sidecar; the App has none.
pub fn night_view(scan: &ScanResult, place: Option<&Place>) -> Markup {
    let info = &scan.build_info;
    let columns = grid::columns(scan);
    let rows = grid::rows(scan);
    html! {
        header {
            h1 {
                "Nightly "
                (link(&info.build_url, &format!("#{}", info.build_number)))
            }
            p class="meta" {
                (info.state) " · commit " code { (sha(&info.commit)) } " · " (info.branch)
                " · scanned " (scan.scan_timestamp)
            }
        }
        (completeness(scan))
        p class="headline" { (headline(scan)) }
        (causes(scan))
        section id="grid" {
            h2 { "Failing tests and jobs × the last " (columns.len()) " nightlies" }
            table {
                thead { tr {
                    th { "test, or job" }
                    @for (i, &build) in columns.iter().enumerate() {
                        th class="build" {
                            @match grid::build_url(&info.build_url, build) {
                                Some(url) => (link(&url, &build.to_string())),
                                None => (build),
                            }
                            @if i == 0 { br; small { "this one" } }
                        }
                    }
                } }
                tbody { @for row in &rows { (grid_row(row, scan, place)) } }
            }
        }
        @if let Some(next) = scan.page.next_offset {
            p class="incomplete" {
                "This result holds one page of the failures: ask for failure_offset " (next) " for the next."
            }
        }
        (fixed(scan))
    }
}

/// One failure's page: its strip across the nightlies, error, owners, issue and onset.
/// `None` when the scan has no failure of that key or test.
pub fn test_page(scan: &ScanResult, id: &str, place: &Place) -> Option<String> {
    let rows = grid::rows(scan);
    let row = rows
        .iter()
        .find(|r| r.failure.failure_key == id)
        .or_else(|| rows.iter().find(|r| r.failure.test_failure.test_name == id))?;
    let failure = row.failure;
    let onset = failure.since.onset.as_ref();
    let body = html! {
        h1 { (label(failure)) }
        p class="meta" { "job " (failure.test_failure.job_name) " · " (failure.category.as_str())
            @if let Some(trend) = &failure.since.trend { " · " (trend.trend.as_str()) ", failing " (trend.streak) " nightlies in a row" } }
        section id="strip" {
            h2 { "Nightlies, this one first" }
            table { tbody { tr data-failure-key=(failure.failure_key) {
                @for cell in &row.cells { th class="build" { (cell.build) } }
            } tr { @for cell in &row.cells { (cell_markup(cell)) } } } }
        }
        @if let Some(error) = &failure.test_failure.error_message { h2 { "Error" } pre { (error) } }
        @if let Some(trace) = &failure.test_failure.stack_trace { h2 { "Traceback" } pre { (trace) } }
        @if !failure.owner.all.is_empty() { p { "Owners: " (failure.owner.all.join(", ")) } }
        @if let Some(issue) = &failure.issue.matched { p { "Issue: " (issue_markup(issue, scan)) } }
        @if let Some(onset) = onset {
            h2 { "Began between nightly " (onset.last_passed_build) " and " (onset.first_failed_build) }
            @if let Some(url) = safe_href(&onset.compare_url) { p { a href=(url) { "the commits between them" } } }
            ol { @for suspect in &onset.suspects { li { code { (sha(&suspect.sha)) } " " (suspect.title) " — " (suspect.author) ": " (suspect.reason) } } }
            form method="post" action=(place.bisect(&failure.failure_key)) {
                button type="submit" title="Narrow the range with main's own builds (reads Buildkite and GitHub)" { "Plan the bisect" }
            }
        }
    };
    Some(frame(
        &format!("CI watch · {}", failure.test_failure.test_name),
        place,
        body,
    ))
}

fn completeness(scan: &ScanResult) -> Markup {
    let c = &scan.completeness;
    html! {
        @if scan.complete {
            p class="complete" { "Complete: every failure of the build is here. Failed jobs read whole: " (c.failed_jobs_read) "." }
        } @else {
            p class="incomplete" {
                "INCOMPLETE: " (scan.incomplete.join("; ")) ". Read in part: " (c.read_in_part.len())
                ", not read: " (c.not_read.len()) "."
            }
        }
    }
}

fn headline(scan: &ScanResult) -> String {
    let mut parts = vec![format!(
        "{} failures in {} causes",
        scan.total_failures,
        scan.causes.len()
    )];
    if let Some(comparison) = &scan.comparison {
        let since = comparison
            .compared_builds
            .first()
            .map_or(String::new(), |b| format!(" since nightly {b}"));
        parts.push(format!("{} new{since}", comparison.new));
        parts.push(format!("{} continuing", comparison.continuing));
        parts.push(format!("{} fixed", scan.fixed.len()));
    }
    parts.join(" · ")
}

fn causes(scan: &ScanResult) -> Markup {
    html! {
        section id="causes" {
            h2 { "Causes (" (scan.causes.len()) ")" }
            table {
                thead { tr { th { "category" } th { "trend" } th { "signature, and the first suspect" } th { "failures" } th { "owners" } th { "issue" } th { "parity" } } }
                tbody { @for cause in &scan.causes { (cause_row(cause, scan)) } }
            }
        }
    }
}

fn cause_row(cause: &Cause, scan: &ScanResult) -> Markup {
    let category = cause.category.as_str();
    html! {
        tr data-cause-id=(cause.cause_id) {
            td { span class={"chip " (category.to_ascii_lowercase())} { (category) } }
            td { @if let Some(trend) = cause.trend { span class={"trend " (trend.as_str())} { (trend.as_str()) } } }
            td class="signature" {
                code { (short(&cause.signature, LINE_CHARS)) }
                @if let Some(s) = &cause.suspect { div class="suspect" { "suspect " code { (sha(&s.sha)) } " " (short(&s.title, LINE_CHARS)) } }
            }
            td class="count" { (cause.failure_count) }
            td { (cause.owners.join(", ")) }
            td class="issue" { @if let Some(issue) = &cause.issue { (issue_markup(issue, scan)) } }
            td { @if let Some(parity) = cause.parity { (parity_name(parity)) } }
        }
    }
}

fn issue_markup(issue: &crate::model::IssueMatch, scan: &ScanResult) -> Markup {
    let url = if issue.url.is_empty() {
        scan.links
            .issue
            .replace("{number}", &issue.number.to_string())
    } else {
        issue.url.clone()
    };
    html! {
        (link(&url, &format!("#{}", issue.number))) " (" (issue_state_name(issue.state)) ")"
        @if !issue.title.is_empty() { " " span class="title" { (issue.title) } }
    }
}

fn grid_row(row: &Row<'_>, scan: &ScanResult, place: Option<&Place>) -> Markup {
    let failure = row.failure;
    let trend = failure.since.trend.as_ref().map(|t| t.trend.as_str());
    // Below full detail an error line every member of a cause shares is on the cause.
    let error = failure.test_failure.error_message.as_ref().or_else(|| {
        let cause = scan
            .causes
            .iter()
            .find(|c| Some(&c.cause_id) == failure.cause_id.as_ref());
        cause.and_then(|c| c.error_message.as_ref())
    });
    html! {
        tr data-failure-key=(failure.failure_key) class={"trend-" (trend.unwrap_or("none"))} {
            th {
                @match place {
                    Some(place) => a href=(place.failure_page(failure)) { (label(failure)) },
                    None => span { (label(failure)) },
                }
                @if trend == Some("new") { " " span class="trend new" { "new" } }
                @if let Some(error) = error {
                    div class="error" { (short(error.lines().next().unwrap_or(""), LINE_CHARS)) }
                }
            }
            @for cell in &row.cells { (cell_markup(cell)) }
        }
    }
}

fn cell_markup(cell: &Cell) -> Markup {
    let title = format!("nightly {}: {}", cell.build, cell.outcome.label());
    html! {
        td class={"cell " (cell.outcome.class())} title=(title) {
            @match cell.href.as_deref().and_then(safe_href) {
                Some(url) => a href=(url) { (cell.outcome.symbol()) },
                None => (cell.outcome.symbol()),
            }
        }
    }
}

fn fixed(scan: &ScanResult) -> Markup {
    html! {
        @if !scan.fixed.is_empty() {
            section id="fixed" {
                h2 { "Fixed since nightly " @if let Some(f) = scan.fixed.first() { (f.failed_in_build) } " (" (scan.fixed.len()) ")" }
                ul { @for f in &scan.fixed { li { code { (f.test_name) } " in " (f.job_name) } } }
            }
        }
    }
}

/// A failure's name on the page: its test, else its job.
fn label(failure: &FailureClassification) -> &str {
    let test = &failure.test_failure.test_name;
    if test.is_empty() {
        &failure.test_failure.job_name
    } else {
        test
    }
}

pub(super) fn link(url: &str, text: &str) -> Markup {
    html! {
        @match safe_href(url) {
            Some(url) => a href=(url) { (text) },
            None => (text),
        }
    }
}

/// A commit as people quote it.
fn sha(full: &str) -> String {
    full.chars().take(10).collect()
}

fn short(text: &str, chars: usize) -> String {
    crate::text::bounded_text(text, chars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place() -> Place {
        Place::new("vllm", "ci")
    }

    #[test]
    fn the_night_page_names_every_failure_with_a_cell_per_nightly() {
        let scan = crate::hud::tests::scan_with_trends();
        let page = night_page(&scan, &place());
        for key in ["k-old", "k-new"] {
            assert_eq!(
                page.matches(&format!("data-failure-key=\"{key}\"")).count(),
                1,
                "{key}"
            );
        }
        assert_eq!(
            page.matches("class=\"cell fail\"").count(),
            3 + 1,
            "two now, one before, one in the legend"
        );
        assert_eq!(page.matches("class=\"cell pass\"").count(), 5 + 1);
        assert!(page.contains("href=\"/hud/vllm/ci/test?id=k-new\""));
        assert!(page.contains("action=\"/hud/vllm/ci/refresh\""));
        assert!(!page.contains("<script"));
    }

    #[test]
    fn planted_markup_stays_text() {
        let mut scan = crate::hud::tests::scan_with_trends();
        let planted =
            "<script>document.body.dataset.pwned=1</script>\"><img src=x onerror=alert(1)>";
        scan.failures[0].test_failure.error_message = Some(planted.into());
        scan.failures[0].test_failure.test_name = planted.into();
        scan.build_info.build_url = "javascript:alert(1)".into();
        let page = night_page(&scan, &place());
        assert!(!page.contains("<script>document"));
        assert!(!page.contains("<img"));
        assert!(!page.contains("href=\"javascript:"));
        assert!(page.contains("&lt;script&gt;"));
        let one = test_page(&scan, &scan.failures[0].failure_key, &place()).expect("its page");
        assert!(!one.contains("<img") && !one.contains("<script"));
    }

    #[test]
    fn a_failure_is_found_by_key_or_test() {
        let scan = crate::hud::tests::scan_with_trends();
        assert!(test_page(&scan, "k-old", &place()).is_some());
        assert!(test_page(&scan, "tests/new.py::test_new", &place()).is_some());
        assert!(test_page(&scan, "nothing", &place()).is_none());
    }
}
