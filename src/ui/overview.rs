//! `GET /ui/`: the overview of the last 30 days, in the viewer's scope: requests, tokens and
//! cost by day, and the models (and, for those who manage them, keys and teams) that spent
//! most. Read from the daily roll-ups (`Store::usage_report` over whole UTC days), never by
//! grouping raw records; a key holder's own figures come from their key's records.

use axum::extract::State;
use axum::response::Response;
use maud::{Markup, html};

use super::layout::{self, page};
use super::viewer::Viewer;
use crate::admin::Caller;
use crate::config::NANOS_PER_USD;
use crate::governance::now_unix;
use crate::state::AppState;
use crate::store::{GroupBy, ReportRow, UsageFilter};

/// Days shown, today included.
const DAYS: i64 = 30;
const DAY: i64 = 86_400;
/// Rows in each "top" table.
const TOP: usize = 5;

pub async fn page_for(State(state): State<AppState>, viewer: Viewer) -> Response {
    let now = now_unix();
    let today = now.div_euclid(DAY) * DAY;
    let since = today - (DAYS - 1) * DAY;
    let filter = UsageFilter {
        since,
        ..UsageFilter::default()
    };
    let mut groups = vec![(GroupBy::Day, "day"), (GroupBy::Model, "Models")];
    if !matches!(viewer.caller, Caller::Member(_)) {
        groups.push((GroupBy::Key, "Keys"));
    }
    if matches!(viewer.caller, Caller::Admin) {
        groups.push((GroupBy::Team, "Teams"));
    }
    let mut reports = Vec::with_capacity(groups.len());
    for (by, name) in &groups {
        match crate::admin::reports::usage_rows(&state, &viewer.caller, *by, filter.clone()).await {
            Ok(rows) => reports.push((*name, rows)),
            Err(_) => return layout::unavailable("Usage"),
        }
    }
    let days = by_day(&reports[0].1, since, DAYS);
    let total = days.iter().fold(ReportRow::default(), |mut t, (_, r)| {
        t.requests += r.requests;
        t.input_tokens += r.input_tokens;
        t.output_tokens += r.output_tokens;
        t.cost_nanos += r.cost_nanos;
        t
    });
    let scope_note = match &viewer.caller {
        Caller::Admin => "every team".to_owned(),
        Caller::TeamAdmin { team, .. } => format!("team {team}"),
        Caller::Member(p) => format!("key {}", p.key_name),
    };
    let content = html! {
        p.scope { "Last " (DAYS) " days (UTC), " (scope_note) "." }
        section.figures aria-label="Totals" {
            (figure("Requests", &count(total.requests)))
            (figure("Input tokens", &count(total.input_tokens)))
            (figure("Output tokens", &count(total.output_tokens)))
            (figure("Cost", &usd(total.cost_nanos)))
        }
        section.charts {
            div {
                h2 { "Requests by day" }
                (super::svg::bars("Requests by day", &days.iter().map(|(d, r)| (d.clone(), r.requests as f64, count(r.requests))).collect::<Vec<_>>()))
            }
            div {
                h2 { "Cost by day" }
                (super::svg::bars("Cost by day", &days.iter().map(|(d, r)| (d.clone(), r.cost_nanos as f64, usd(r.cost_nanos))).collect::<Vec<_>>()))
            }
        }
        @for (name, rows) in &reports[1..] {
            section {
                h2 { "Top " (name.to_lowercase()) }
                (report_table(name.trim_end_matches('s'), rows, TOP))
            }
        }
        details {
            summary { "Every day" }
            (report_table("Day", &days.iter().map(|(d, r)| ReportRow { group: d.clone(), ..r.clone() }).collect::<Vec<_>>(), usize::MAX))
        }
    };
    page(&viewer, "/ui/", "Overview", content)
}

/// One row a day from `since`, `n` days, zeros where nothing was spent.
fn by_day(rows: &[ReportRow], since: i64, n: i64) -> Vec<(String, ReportRow)> {
    (0..n)
        .map(|i| {
            let day = since + i * DAY;
            let row = rows
                .iter()
                .find(|r| r.group.parse::<i64>().ok() == Some(day))
                .cloned()
                .unwrap_or_default();
            (date(day), row)
        })
        .collect()
}

fn figure(label: &str, value: &str) -> Markup {
    html! { div.figure { span.label { (label) } span.value { (value) } } }
}

/// A usage report as a table: one row a group, the first `limit` rows; `label` heads the
/// group's column. The overview's and the usage page's.
pub fn report_table(label: &str, rows: &[ReportRow], limit: usize) -> Markup {
    html! {
        @if rows.is_empty() {
            p.empty { "Nothing yet." }
        } @else {
            div.scroll {
                table {
                    thead { tr {
                        th scope="col" { (label) }
                        th.num scope="col" { "Requests" }
                        th.num scope="col" { "Input tokens" }
                        th.num scope="col" { "Output tokens" }
                        th.num scope="col" { "Cost" }
                    } }
                    tbody {
                        @for r in rows.iter().take(limit) {
                            tr {
                                th scope="row" { (r.group) }
                                td.num { (count(r.requests)) }
                                td.num { (count(r.input_tokens)) }
                                td.num { (count(r.output_tokens)) }
                                td.num { (usd(r.cost_nanos)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `2026-12-08`.
fn date(unix: i64) -> String {
    jiff::Timestamp::from_second(unix)
        .map(|t| t.strftime("%Y-%m-%d").to_string())
        .unwrap_or_else(|_| unix.to_string())
}

/// A count with thousands separators.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Dollars, to the cent (to a hundredth of a cent under a dollar; a smaller sum that is not
/// zero says so).
pub fn usd(nanos: u64) -> String {
    let d = nanos as f64 / NANOS_PER_USD;
    if d > 0.0 && d < 0.0001 {
        "< $0.0001".to_owned()
    } else if d > 0.0 && d < 1.0 {
        format!("${d:.4}")
    } else {
        format!("${d:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(usd(0), "$0.00");
        assert_eq!(usd(18_000_000), "$0.0180");
        assert_eq!(usd(1_800), "< $0.0001");
        assert_eq!(usd(12_345_000_000), "$12.35");
        assert_eq!(date(1_765_152_000), "2025-12-08");
    }

    #[test]
    fn days_without_usage_are_zero() {
        let rows = vec![ReportRow {
            group: (86_400 * 2).to_string(),
            requests: 3,
            ..ReportRow::default()
        }];
        let days = by_day(&rows, 86_400, 3);
        let requests: Vec<u64> = days.iter().map(|(_, r)| r.requests).collect();
        assert_eq!(requests, [0, 3, 0]);
        assert_eq!(days[0].0, "1970-01-02");
    }
}
