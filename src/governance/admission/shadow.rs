//! A mirror's shadow request (issue #4): admitted on the mirror's own budgets only, never on
//! the caller's budgets or rate limits, and recorded with `mirror_of` naming the primary.

use std::sync::Arc;

use super::{Admission, RouteNote, Ticket};
use crate::error::{ErrorKind, GatewayError};
use crate::governance::budget::{Line, Scope, ScopeKind};
use crate::governance::ledger;

impl Admission {
    /// A shadow request of this one for rule `route`'s mirror: admitted on the mirror's own
    /// `budgets` only (no caller budget, no rate limit), recorded with `mirror_of`.
    pub fn shadow(&self, route: &str, budgets: Vec<crate::config::Budget>, model: &str) -> Shadow {
        let mut ticket = Ticket {
            request_id: crate::new_request_id(),
            created_at: self.enforcer.clock.now_secs(),
            principal: self.ticket.principal.clone(),
            requested_model: model.to_owned(),
            tags: self.ticket.tags.clone(),
            end_user: self.ticket.end_user.clone(),
            input_tokens: self.ticket.input_tokens,
            mirror_of: Some((self.ticket.request_id.clone(), route.to_owned())),
            started: Some(tokio::time::Instant::now()),
            schema: self.ticket.schema,
            ..Ticket::default()
        };
        ticket.route = Some(RouteNote {
            rule: Some(route.to_owned()),
            ..RouteNote::default()
        });
        Shadow {
            adm: Admission {
                enforcer: Arc::clone(&self.enforcer),
                pricing: Arc::clone(&self.pricing),
                ticket,
                asked_output: self.asked_output,
                choices: self.choices,
                max_output: self.max_output_on(model),
                route_to: None,
                spent: Vec::new(),
                settled: false,
            },
            budgets,
        }
    }
}

/// A mirror's shadow request, before its budgets admit it.
pub struct Shadow {
    adm: Admission,
    budgets: Vec<crate::config::Budget>,
}

impl Shadow {
    /// Reserve the worst case on the mirror's budgets; `Err` when one is spent or cannot
    /// be checked (the shadow is then not sent).
    pub async fn admit(mut self) -> Result<Admission, GatewayError> {
        if self.budgets.is_empty() {
            return Ok(self.adm);
        }
        let adm = &mut self.adm;
        let now = adm.enforcer.clock.now_secs();
        let route = adm
            .ticket
            .mirror_of
            .as_ref()
            .map(|(_, r)| r.clone())
            .unwrap_or_default();
        let scope = Scope::new(ScopeKind::Mirror, &route, &route);
        let worst_cost = adm.worst_cost(&adm.ticket.requested_model);
        let worst_tokens = adm.ticket.input_tokens.saturating_add(adm.max_output);
        let mut lines: Vec<Line> = self
            .budgets
            .iter()
            .map(|b| Line::reserving(&scope, b, now, worst_cost, worst_tokens))
            .collect();
        ledger::sort(&mut lines);
        match adm
            .enforcer
            .ledger
            .reserve(&adm.ticket.request_id, &lines, now)
            .await
        {
            Ok(None) => {
                adm.ticket.lines = lines;
                Ok(self.adm)
            }
            Ok(Some(i)) => {
                let what = lines.get(i).map(Line::describe).unwrap_or_default();
                self.adm.discard();
                Err(GatewayError::new(
                    ErrorKind::BudgetExhausted,
                    format!("mirror budget spent: the {what} is spent for this period"),
                ))
            }
            Err(e) => {
                self.adm.discard();
                Err(GatewayError::new(
                    ErrorKind::BudgetUnavailable,
                    format!("mirror budgets cannot be checked: {e}"),
                ))
            }
        }
    }
}
