//! Daily roll-ups of the request log (`usage_rollup`, migration 0009): per day, for each value
//! of each report grouping, the requests, tokens and cost. Each batch of records adds to them
//! in the transaction that writes the records (only the records actually written, so a batch
//! written twice counts once). A report over the whole gateway reads the roll-ups for the
//! whole days of its window and the records themselves for the partial days at its edges,
//! so a month costs a few thousand rows whatever the traffic (RELIABILITY 27).
//!
//! A team's reports (what a team admin sees) have roll-ups of their own (migration 0011):
//! each grouping again, as `team/key`, `team/model`..., with values `{team}\x1f{value}`, so
//! a team's month is a range of the same index rather than a scan of the whole gateway's.

use std::borrow::Cow;
use std::collections::HashMap;

use super::usage::{GroupBy, ReportRow, UsageRecord};

pub const DAY: i64 = 86_400;

/// The roll-up dimension of a grouping (`all` holds the totals by day).
pub fn dim(by: GroupBy) -> &'static str {
    match by {
        GroupBy::Key => "key",
        GroupBy::Team => "team",
        GroupBy::User => "user",
        GroupBy::Project => "project",
        GroupBy::Model => "model",
        GroupBy::Provider => "provider",
        GroupBy::Tag => "tag",
        GroupBy::Day => "all",
    }
}

/// Between a team and a value in the team-scoped dimensions.
pub const TEAM_SEP: char = '\u{1f}';

/// The team-scoped dimension of a grouping's (`None` for `team` itself: a team's report by
/// team is its own row of `team`).
pub fn team_dim(dim: &str) -> Option<&'static str> {
    Some(match dim {
        "key" => "team/key",
        "user" => "team/user",
        "project" => "team/project",
        "model" => "team/model",
        "provider" => "team/provider",
        "tag" => "team/tag",
        "all" => "team/all",
        _ => return None,
    })
}

/// (dim, value, day) -> (requests, input, output, cost). Values borrow from the records;
/// only the team-scoped ones are built.
pub type Sums<'a> = foldhash::HashMap<(&'static str, Cow<'a, str>, i64), [i64; 4]>;

/// What `records` add to the roll-ups. The values are the ones the reports group by (see
/// `GroupBy::expr`).
pub fn sums<'a>(records: impl Iterator<Item = &'a UsageRecord>) -> Sums<'a> {
    let mut out = Sums::default();
    let mut values: Vec<(&'static str, &'a str)> = Vec::with_capacity(16);
    let mut tags: Vec<&'a str> = Vec::new();
    for r in records {
        let day = r.created_at.div_euclid(DAY) * DAY;
        let add = [
            1,
            super::usage::to_i64(r.input_tokens),
            super::usage::to_i64(r.output_tokens),
            super::usage::to_i64(r.cost_nanos),
        ];
        let dash = |v: &'a Option<String>| v.as_deref().unwrap_or("-");
        values.clear();
        values.extend([
            (
                "key",
                r.key_name.as_deref().or(r.key_id.as_deref()).unwrap_or("-"),
            ),
            ("team", dash(&r.team)),
            ("user", dash(&r.user)),
            ("project", dash(&r.project)),
            (
                "model",
                r.model.as_deref().unwrap_or(r.requested_model.as_str()),
            ),
            ("provider", dash(&r.provider)),
            ("all", ""),
        ]);
        tags.clear();
        tags.extend(r.tags.iter().map(String::as_str));
        tags.sort_unstable();
        tags.dedup();
        values.extend(tags.iter().map(|t| ("tag", *t)));
        let mut bump = |key: (&'static str, Cow<'a, str>, i64)| {
            let e = out.entry(key).or_insert([0; 4]);
            for (a, b) in e.iter_mut().zip(add) {
                *a = a.saturating_add(b);
            }
        };
        for &(d, v) in &values {
            bump((d, Cow::Borrowed(v), day));
        }
        if let Some(team) = &r.team {
            for &(d, v) in &values {
                if let Some(scoped) = team_dim(d) {
                    bump((scoped, Cow::Owned(format!("{team}{TEAM_SEP}{v}")), day));
                }
            }
        }
    }
    out
}

/// The columns of a roll-up row, before its values.
pub const UPSERT_HEAD: &str = "INSERT INTO usage_rollup (dim, value, day, requests, \
    input_tokens, output_tokens, cost_nanos)";
/// After the values: a row already there is added to (the same text on both backends).
pub const UPSERT_TAIL: &str = "ON CONFLICT (dim, day, value) DO UPDATE SET \
    requests = usage_rollup.requests + excluded.requests, \
    input_tokens = usage_rollup.input_tokens + excluded.input_tokens, \
    output_tokens = usage_rollup.output_tokens + excluded.output_tokens, \
    cost_nanos = usage_rollup.cost_nanos + excluded.cost_nanos";

/// The Postgres statement that adds one roll-up row.
pub fn upsert() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| format!("{UPSERT_HEAD} VALUES ($1, $2, $3, $4, $5, $6, $7) {UPSERT_TAIL}"))
}

/// Add `b` into `into`, by group.
pub fn merge(into: &mut HashMap<String, ReportRow>, b: Vec<ReportRow>) {
    for r in b {
        let e = into.entry(r.group.clone()).or_insert_with(|| ReportRow {
            group: r.group.clone(),
            requests: 0,
            input_tokens: 0,
            output_tokens: 0,
            cost_nanos: 0,
        });
        e.requests += r.requests;
        e.input_tokens += r.input_tokens;
        e.output_tokens += r.output_tokens;
        e.cost_nanos += r.cost_nanos;
    }
}

/// Most expensive first, then by group: the order every report has.
pub fn sorted(rows: HashMap<String, ReportRow>) -> Vec<ReportRow> {
    let mut out: Vec<ReportRow> = rows.into_values().collect();
    out.sort_by(|a, b| {
        b.cost_nanos
            .cmp(&a.cost_nanos)
            .then_with(|| a.group.cmp(&b.group))
    });
    out
}
