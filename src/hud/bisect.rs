//! A bisect plan as a HUD page: its summary, the next run, and every commit of the range with
//! what main's builds ran there. Pure: a `BisectPlan` in, HTML out (maud escapes every text).

use super::page::{frame, link, Place};
use crate::model::{short_sha, BisectPlan, NextAction};
use crate::report::verdict_name;
use maud::{html, Markup};

pub fn bisect_page(plan: &BisectPlan, place: &Place) -> String {
    let body = html! {
        h1 { "Bisect plan: " (plan.test) }
        p class="meta" { "job " (plan.job_name) " · " (plan.pipeline) " · " (link(&plan.compare_url, "the range on GitHub")) }
        p id="summary" { (plan.summary) }
        @if let Some(signature) = &plan.signature { p { "Signature: " code { (signature) } } }
        @for next in &plan.next { (next_markup(next)) }
        h2 { "The range, oldest first" }
        table id="commits" { tbody {
            @for commit in &plan.commits {
                tr class=(if commit.in_narrowed_range { "in-range" } else { "" }) {
                    td { code { (short_sha(&commit.sha)) } }
                    td { (commit.title) }
                    td { (verdict_name(commit.verdict)) }
                    td { @for run in &commit.runs { (link(&run.build_url, &format!("#{}", run.build_number))) " " (verdict_name(run.verdict)) " " } }
                    td { @if !commit.retry_step_keys.is_empty() { "retry: " code { (commit.retry_step_keys.join(",")) } } }
                }
            }
        } }
        @for note in plan.notes.iter().chain(&plan.warnings) { p class="note" { (note) } }
    };
    frame(&format!("CI watch · bisect {}", plan.test), place, body)
}

fn next_markup(next: &crate::model::NextRun) -> Markup {
    html! {
        p id="next" {
            @match (next.action, &next.block, &next.build_url) {
                (NextAction::Unblock, Some(block), Some(url)) => {
                    "Next: unblock " code { (block.step_key) } " on " (link(url, &format!("build {}", next.build_number.unwrap_or_default())))
                    " (commit " code { (short_sha(&next.commit)) } ")"
                    @if let Some(unblock) = &block.unblock_url { " · API: " code { "PUT " (unblock) } }
                }
                _ => {
                    "Next: " code { "/ci retry" } " at commit " code { (short_sha(&next.commit)) } " with VLLM_CI_ONLY_STEP_KEYS=" code { (next.retry_step_keys.join(",")) }
                }
            }
        }
    }
}
