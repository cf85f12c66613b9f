//! `GET /ui/budgets`: every budget the viewer may see, in its current period: spent, held
//! for requests in flight, the limit, the alert it has reached, and when it runs out at the
//! rate spent so far. The admin and team admins see what `GET /admin/api/budgets` lists for
//! them; a key holder the budgets that apply to their own key (as `GET /v1/usage`).

use axum::extract::State;
use axum::response::Response;
use http::StatusCode;
use maud::{Markup, html};

use super::layout::{self, page};
use super::viewer::Viewer;
use crate::admin::Caller;
use crate::governance::admission::BudgetStatus;
use crate::governance::alerts::THRESHOLDS;
use crate::governance::now_unix;
use crate::state::AppState;

pub async fn show(State(state): State<AppState>, viewer: Viewer) -> Response {
    let statuses = match &viewer.caller {
        Caller::Member(p) => {
            let directory = state.governance().directory();
            state
                .governance()
                .enforcer()
                .budget_status(&directory, p)
                .await
                .map_err(|e| tracing::error!(error = %e, "dashboard: budgets unreadable"))
        }
        manager => crate::admin::reports::budget_statuses(&state, manager)
            .await
            .map_err(|_| ()),
    };
    let Ok(statuses) = statuses else {
        return layout::problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "Budgets cannot be read",
            "The budget counters cannot be read right now. Try again in a moment.",
        );
    };
    let now = now_unix();
    let content = html! {
        @if statuses.is_empty() {
            p.empty { "No budget applies here. Budgets are set on keys, users, teams, projects and providers (docs/configuration.md)." }
        } @else {
            div.scroll {
                table {
                    thead { tr {
                        th scope="col" { "Budget" }
                        th scope="col" { "Period" }
                        th.num scope="col" { "Spent" }
                        th.num scope="col" { "Held" }
                        th.num scope="col" { "Limit" }
                        th scope="col" { "Used" }
                        th scope="col" { "Runs out" }
                        th scope="col" { "When spent" }
                    } }
                    tbody {
                        @for b in &statuses {
                            (row(b, now))
                        }
                    }
                }
            }
            p.hint { "Held: reserved for requests in flight, settled when they end. Runs out: at the rate spent since the period began." }
        }
    };
    page(&viewer, "/ui/budgets", "Budgets", content)
}

fn row(b: &BudgetStatus, now: i64) -> Markup {
    let used = used_share(b);
    html! {
        tr {
            th scope="row" { (b.scope) " " (b.name) }
            td { (b.period) " " span.hint { "until " (layout::time(b.period_end)) } }
            td.num { (amount(b.spent, b.unit)) }
            td.num { (amount(b.reserved, b.unit)) }
            td.num { (amount(b.limit, b.unit)) }
            td {
                meter min="0" max="100" low="50" high="80" optimum="0" value=(format!("{:.0}", (used * 100.0).min(100.0))) {}
                " " (format!("{:.0}%", used * 100.0))
                @if let Some(t) = alert(used) { " " span.alert { (t) } }
            }
            td { (runs_out(b, now)) }
            td { (b.on_exhausted) }
        }
    }
}

/// Spent and held, as a share of the limit.
fn used_share(b: &BudgetStatus) -> f64 {
    if b.limit > 0.0 {
        (b.spent + b.reserved) / b.limit
    } else {
        1.0
    }
}

/// The highest alert threshold reached (`alerts::THRESHOLDS`).
fn alert(used: f64) -> Option<String> {
    THRESHOLDS
        .iter()
        .rev()
        .find(|&&t| used * 100.0 >= f64::from(t))
        .map(|t| {
            if *t >= 100 {
                "exhausted".to_owned()
            } else {
                format!("past {t}%")
            }
        })
}

/// When the budget runs out at the rate spent since its period began, if within the period.
fn runs_out(b: &BudgetStatus, now: i64) -> String {
    if b.exhausted || used_share(b) >= 1.0 {
        return "now".to_owned();
    }
    let elapsed = (now - b.period_start).max(1) as f64;
    let rate = (b.spent + b.reserved) / elapsed;
    if rate <= 0.0 {
        return "not at this rate".to_owned();
    }
    let at = now as f64 + b.remaining.max(0.0) / rate;
    if at >= b.period_end as f64 {
        "not this period".to_owned()
    } else {
        layout::time(at as i64)
    }
}

fn amount(v: f64, unit: &str) -> String {
    if unit == "usd" {
        format!("${v:.2}")
    } else {
        super::overview::count(v.max(0.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(spent: f64, reserved: f64, limit: f64) -> BudgetStatus {
        BudgetStatus {
            scope: "team",
            name: "alpha".into(),
            unit: "usd",
            period: "daily",
            timezone: "UTC".into(),
            period_start: 0,
            period_end: 86_400,
            limit,
            spent,
            reserved,
            remaining: (limit - spent - reserved).max(0.0),
            exhausted: spent + reserved >= limit,
            on_exhausted: "block".into(),
        }
    }

    #[test]
    fn the_end_is_projected_from_the_rate_so_far() {
        // $25 of $100 in a quarter of the day: runs out at the day's end, not before.
        assert_eq!(
            runs_out(&status(25.0, 0.0, 100.0), 21_600),
            "not this period"
        );
        // $50 in the first 6 hours: the other $50 by 12:00.
        assert_eq!(
            runs_out(&status(50.0, 0.0, 100.0), 21_600),
            "1970-01-01 12:00:00 UTC"
        );
        assert_eq!(
            runs_out(&status(0.0, 0.0, 100.0), 21_600),
            "not at this rate"
        );
        assert_eq!(runs_out(&status(60.0, 40.0, 100.0), 21_600), "now");
    }

    #[test]
    fn alerts_name_the_highest_threshold_reached() {
        assert_eq!(alert(0.49), None);
        assert_eq!(alert(0.5).as_deref(), Some("past 50%"));
        assert_eq!(alert(0.85).as_deref(), Some("past 80%"));
        assert_eq!(alert(1.0).as_deref(), Some("exhausted"));
        assert_eq!(amount(1234.5, "tokens"), "1,234");
        assert_eq!(amount(3.456, "usd"), "$3.46");
    }
}
