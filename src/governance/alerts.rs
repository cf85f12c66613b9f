//! Budget alerts at 50, 80 and 100 % of a budget: a warning in the log and, when
//! `[alerts] webhook` is set, a JSON POST to it. Each goes out once per budget and period,
//! whatever the number of instances (the mark is kept where the counter lives).

use bytes::Bytes;
use http_body_util::Full;
use serde::Serialize;

use super::budget::Line;
use super::ledger::Ledger;
use crate::config::BudgetUnit;
use crate::providers::exec::HttpClient;

pub const THRESHOLDS: [u32; 3] = [50, 80, 100];

pub struct Alerts {
    webhook: Option<(http::Uri, HttpClient)>,
}

/// The webhook's body.
#[derive(Debug, Serialize)]
pub struct Alert<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub threshold_percent: u32,
    pub scope: &'static str,
    pub name: &'a str,
    pub unit: &'static str,
    pub period: &'static str,
    pub period_start: i64,
    pub period_end: i64,
    /// In the unit: dollars or tokens.
    pub limit: f64,
    pub spent: f64,
    pub message: String,
}

impl Alerts {
    /// Alerts posted to `webhook`, which is connected to where `egress` allows.
    pub fn new(webhook: Option<&str>, egress: &std::sync::Arc<crate::egress::Policy>) -> Self {
        let webhook = webhook.and_then(|url| match url.parse::<http::Uri>() {
            Ok(uri) => Some((
                uri,
                crate::providers::exec::client(std::time::Duration::from_secs(5), egress),
            )),
            Err(_) => None,
        });
        Self { webhook }
    }

    /// After a settlement moved `line` from `before` to `after`: send the alerts of every
    /// threshold crossed.
    pub async fn check(&self, ledger: &Ledger, line: &Line, before: u64, after: u64, now: i64) {
        let limit = line.budget.limit;
        for t in THRESHOLDS {
            let mark = u64::try_from(u128::from(limit) * u128::from(t) / 100).unwrap_or(u64::MAX);
            if !(before < mark && after >= mark) {
                continue;
            }
            match ledger.alert_once(line, t, now).await {
                Ok(true) => self.send(line, t, after).await,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "could not record a budget alert; sending it anyway")
                }
            }
        }
    }

    async fn send(&self, line: &Line, threshold: u32, spent: u64) {
        let unit_value = |v: u64| match line.budget.unit {
            BudgetUnit::Usd => v as f64 / crate::config::NANOS_PER_USD,
            BudgetUnit::Tokens => v as f64,
        };
        let message = format!("{}% of the {} is spent", threshold, line.describe());
        tracing::warn!(
            threshold_percent = threshold,
            scope = line.scope.kind.as_str(),
            name = %line.scope.label,
            spent = unit_value(spent),
            "budget alert: {message}"
        );
        let Some((uri, client)) = &self.webhook else {
            return;
        };
        let alert = Alert {
            kind: "budget_alert",
            threshold_percent: threshold,
            scope: line.scope.kind.as_str(),
            name: &line.scope.label,
            unit: line.budget.unit.as_str(),
            period: line.budget.period.as_str(),
            period_start: line.window.start,
            period_end: line.window.end,
            limit: line.budget.limit_display(),
            spent: unit_value(spent),
            message,
        };
        let body = serde_json::to_vec(&alert).unwrap_or_default();
        let Ok(req) = http::Request::post(uri.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
        else {
            return;
        };
        match tokio::time::timeout(std::time::Duration::from_secs(10), client.request(req)).await {
            Ok(Ok(resp)) if resp.status().is_success() => {}
            Ok(Ok(resp)) => tracing::warn!(
                status = resp.status().as_u16(),
                "budget alert webhook refused the alert"
            ),
            Ok(Err(e)) => tracing::warn!(error = %e, "budget alert webhook unreachable"),
            Err(_) => tracing::warn!("budget alert webhook timed out"),
        }
    }
}
