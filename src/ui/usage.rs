//! `GET /ui/usage?by=&since=&until=`: requests, tokens and cost grouped by key, team, user,
//! project, model, provider, tag or day, as a chart and a table, in the viewer's scope (the
//! admin all, a team admin its team, a key holder its own key); `GET /ui/usage/export` gives
//! the same rows as CSV. Read through `admin::reports::usage_rows`, the admin API's report:
//! whole UTC days from the daily roll-ups.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};
use maud::html;

use super::layout::{self, page};
use super::overview::usd;
use super::viewer::Viewer;
use crate::admin::reports::{time_param, usage_rows};
use crate::error::GatewayError;
use crate::governance::now_unix;
use crate::state::AppState;
use crate::store::{GroupBy, ReportRow, UsageFilter};

/// The groupings offered, in order.
const BY: &[(&str, &str)] = &[
    ("model", "Model"),
    ("provider", "Provider"),
    ("key", "Key"),
    ("team", "Team"),
    ("user", "User"),
    ("project", "Project"),
    ("tag", "Tag"),
    ("day", "Day"),
];
/// Bars in the chart at most (the table has every row).
const BARS: usize = 20;
const DAY: i64 = 86_400;

/// The grouping and window a query asks for: 30 whole UTC days by model by default.
fn query(
    q: &HashMap<String, String>,
    now: i64,
) -> Result<(GroupBy, &'static str, UsageFilter), GatewayError> {
    let by = q.get("by").map_or("model", String::as_str);
    let (by_name, _) = BY
        .iter()
        .find(|(b, _)| *b == by)
        .ok_or_else(|| GatewayError::invalid_param("by", "unknown grouping"))?;
    let group = GroupBy::parse(by_name)
        .ok_or_else(|| GatewayError::invalid_param("by", "unknown grouping"))?;
    let since = match q.get("since").filter(|v| !v.is_empty()) {
        Some(v) => time_param("since", v, now)?,
        None => now.div_euclid(DAY) * DAY - 29 * DAY,
    };
    let until = match q.get("until").filter(|v| !v.is_empty()) {
        Some(v) => Some(time_param("until", v, now)?),
        None => None,
    };
    Ok((
        group,
        by_name,
        UsageFilter {
            since,
            until,
            ..UsageFilter::default()
        },
    ))
}

pub async fn show(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let now = now_unix();
    let (rows, by, problem) = match query(&q, now) {
        Ok((group, by, filter)) => match usage_rows(&state, &viewer.caller, group, filter).await {
            Ok(rows) => (rows, by, None),
            Err(_) => {
                return layout::unavailable("Usage");
            }
        },
        Err(e) => (Vec::new(), "model", Some(e.message)),
    };
    let rows = if by == "day" { day_labels(rows) } else { rows };
    let label = BY
        .iter()
        .find(|(b, _)| *b == by)
        .map_or("Group", |(_, l)| *l);
    let get = |k: &str| q.get(k).map_or("", String::as_str);
    let export = format!(
        "/ui/usage/export?by={by}&since={}&until={}",
        super::logs::enc(get("since")),
        super::logs::enc(get("until"))
    );
    let content = html! {
        form.filters method="get" action="/ui/usage" {
            label { span { "Group by" }
                select name="by" {
                    @for (b, l) in BY { option value=(b) selected[*b == by] { (l) } }
                }
            }
            label { span { "Since" } input name="since" value=(get("since")) placeholder="30 days"; }
            label { span { "Until" } input name="until" value=(get("until")) placeholder="now"; }
            div.actions { button type="submit" { "Show" } a href=(export) { "Export CSV" } }
        }
        @if let Some(p) = &problem { p.error role="alert" { (p) } }
        @if rows.is_empty() && problem.is_none() {
            p.empty { "No usage in this window." }
        } @else if !rows.is_empty() {
            h2 { "Cost by " (label.to_lowercase()) }
            (super::svg::bars(
                &format!("Cost by {}", label.to_lowercase()),
                &rows.iter().take(BARS).map(|r| (r.group.clone(), r.cost_nanos as f64, usd(r.cost_nanos))).collect::<Vec<_>>(),
            ))
            (super::overview::report_table(label, &rows, usize::MAX))
        }
    };
    page(&viewer, "/ui/usage", "Usage and cost", content)
}

pub async fn export(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (group, by, filter) = match query(&q, now_unix()) {
        Ok(v) => v,
        Err(e) => return layout::problem(StatusCode::BAD_REQUEST, "Cannot export", &e.message),
    };
    let Ok(rows) = usage_rows(&state, &viewer.caller, group, filter).await else {
        return layout::unavailable("Usage");
    };
    let rows = if by == "day" { day_labels(rows) } else { rows };
    let mut csv = format!("{by},requests,input_tokens,output_tokens,cost_usd\r\n");
    for r in &rows {
        csv.push_str(&format!(
            "{},{},{},{},{:.9}\r\n",
            csv_field(&r.group),
            r.requests,
            r.input_tokens,
            r.output_tokens,
            r.cost_nanos as f64 / crate::config::NANOS_PER_USD
        ));
    }
    let mut r = csv.into_response();
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"usage-by-{by}.csv\"")) {
        r.headers_mut().insert(CONTENT_DISPOSITION, v);
    }
    r
}

/// Day groups (Unix seconds of the day's start) as dates, oldest first.
fn day_labels(mut rows: Vec<ReportRow>) -> Vec<ReportRow> {
    rows.sort_by_key(|r| r.group.parse::<i64>().unwrap_or(0));
    for r in &mut rows {
        if let Ok(day) = r.group.parse::<i64>() {
            r.group = layout::time(day).chars().take(10).collect();
        }
    }
    rows
}

/// One CSV field (RFC 4180), with a formula's first character defused for spreadsheets.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("gpt-4o"), "gpt-4o");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
    }

    #[test]
    fn the_default_window_is_thirty_whole_days() {
        let now = 100 * DAY + 3_600;
        let (_, by, f) = query(&HashMap::new(), now).unwrap();
        assert_eq!(by, "model");
        assert_eq!(f.since, 71 * DAY);
        let q = [("by".to_owned(), "nope".to_owned())].into_iter().collect();
        assert!(query(&q, now).is_err());
    }
}
