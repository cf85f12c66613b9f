//! Budgets as counters: who a budget belongs to ([`Scope`]), and one budget in its current
//! period with what a request reserves on it ([`Line`]).
//!
//! A counter is named `b:<scope>:<name>:<unit>:<start>:<end>` (names percent-encode `:` and
//! `%`), so every instance, and the store, agree on it without coordination, and a new
//! period is simply a new counter.

use crate::config::{Budget, BudgetUnit, Policy, RateLimit};
use crate::governance::directory::Directory;
use crate::governance::period::{self, Window};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeKind {
    Key,
    User,
    Team,
    Project,
    Provider,
    /// A routing rule's mirror (its shadow requests).
    Mirror,
}

impl ScopeKind {
    /// The routing condition's name for a caller's budget of this scope.
    pub fn budget_of(self) -> Option<crate::config::BudgetOf> {
        use crate::config::BudgetOf;
        match self {
            Self::Key => Some(BudgetOf::Key),
            Self::User => Some(BudgetOf::User),
            Self::Team => Some(BudgetOf::Team),
            Self::Project => Some(BudgetOf::Project),
            Self::Provider | Self::Mirror => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::User => "user",
            Self::Team => "team",
            Self::Project => "project",
            Self::Provider => "provider",
            Self::Mirror => "mirror",
        }
    }

    /// The `usage_records` column that names this scope.
    pub fn column(self) -> &'static str {
        match self {
            Self::Key => "key_id",
            Self::User => "user_name",
            Self::Team => "team",
            Self::Project => "project",
            Self::Provider => "provider",
            Self::Mirror => "mirror_route",
        }
    }
}

/// Whose budget or limit: a key (by id), a user, team, project or provider (by name).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub kind: ScopeKind,
    pub name: String,
    /// How messages name it (a key by its name, not its id).
    pub label: String,
}

impl Scope {
    pub fn new(kind: ScopeKind, name: &str, label: &str) -> Self {
        Self {
            kind,
            name: name.to_owned(),
            label: label.to_owned(),
        }
    }

    /// `team:platform`, for counter names.
    pub fn id(&self) -> String {
        format!("{}:{}", self.kind.as_str(), escape(&self.name))
    }
}

fn escape(s: &str) -> String {
    s.replace('%', "%25").replace(':', "%3A")
}

/// One budget of one scope, in the period that contains the request.
#[derive(Debug, Clone)]
pub struct Line {
    pub scope: Scope,
    pub budget: Budget,
    pub window: Window,
    pub counter: String,
    /// What the request reserves on it (nano-USD or tokens).
    pub amount: u64,
}

impl Line {
    pub fn new(scope: &Scope, budget: &Budget, now: i64) -> Self {
        let window = period::window(budget.period, &budget.tz, now);
        let counter = format!(
            "b:{}:{}:{}:{}",
            scope.id(),
            budget.unit.as_str(),
            window.start,
            window.end
        );
        Self {
            scope: scope.clone(),
            budget: budget.clone(),
            window,
            counter,
            amount: 0,
        }
    }

    /// The line a request reserves its worst case on: `worst_cost` nano-USD on a dollar
    /// budget, `worst_tokens` on a token budget.
    pub fn reserving(
        scope: &Scope,
        budget: &Budget,
        now: i64,
        worst_cost: u64,
        worst_tokens: u64,
    ) -> Self {
        let mut l = Self::new(scope, budget, now);
        l.amount = match budget.unit {
            BudgetUnit::Usd => worst_cost,
            BudgetUnit::Tokens => worst_tokens,
        };
        l
    }

    /// "team `platform` daily budget of $5.00".
    pub fn describe(&self) -> String {
        let amount = match self.budget.unit {
            BudgetUnit::Usd => format!("${:.2}", self.budget.limit_display()),
            BudgetUnit::Tokens => format!("{} tokens", self.budget.limit),
        };
        format!(
            "{} `{}` {} budget of {amount}",
            self.scope.kind.as_str(),
            self.scope.label,
            self.budget.period.as_str()
        )
    }

    pub fn counter_ref(&self) -> crate::store::CounterRef<'_> {
        crate::store::CounterRef {
            counter: &self.counter,
            column: self.scope.kind.column(),
            name: &self.scope.name,
            unit: self.budget.unit,
            start: self.window.start,
            end: self.window.end,
            limit: self.budget.limit,
            amount: self.amount,
        }
    }

    /// The amount a request with this usage and cost spends on this budget.
    pub fn actual(&self, tokens: u64, cost_nanos: u64) -> u64 {
        match self.budget.unit {
            BudgetUnit::Usd => cost_nanos,
            BudgetUnit::Tokens => tokens,
        }
    }
}

/// The scopes a caller belongs to, most specific first, each with its limits.
pub fn caller_scopes<'a>(
    principal: &'a crate::governance::Principal,
    directory: &'a Directory,
) -> Vec<(Scope, &'a Policy)> {
    let mut out = Vec::with_capacity(4);
    if !principal.policy.is_empty() {
        out.push((
            Scope::new(ScopeKind::Key, &principal.key_id, &principal.key_name),
            &principal.policy,
        ));
    }
    let mut push = |kind, name: &Option<String>, policy: Option<&'a Policy>| {
        if let (Some(n), Some(p)) = (name, policy)
            && !p.is_empty()
        {
            out.push((Scope::new(kind, n, n), p));
        }
    };
    push(
        ScopeKind::User,
        &principal.user,
        principal
            .user
            .as_ref()
            .and_then(|u| directory.users.get(u))
            .map(|u| &u.policy),
    );
    push(
        ScopeKind::Team,
        &principal.team,
        principal
            .team
            .as_ref()
            .and_then(|t| directory.teams.get(t))
            .map(|t| &t.policy),
    );
    push(
        ScopeKind::Project,
        &principal.project,
        principal
            .project
            .as_ref()
            .and_then(|p| directory.projects.get(p))
            .map(|p| &p.policy),
    );
    out
}

/// True when any scope has a rate limit.
pub fn any_rate_limit(scopes: &[(Scope, &Policy)]) -> bool {
    scopes
        .iter()
        .any(|(_, p)| p.rate_limit != RateLimit::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{OnExhausted, Period};

    #[test]
    fn counters_name_scope_unit_and_period() {
        let b = Budget {
            unit: BudgetUnit::Usd,
            limit: 5_000_000_000,
            period: Period::Daily,
            timezone: "UTC".into(),
            tz: jiff::tz::TimeZone::UTC,
            on_exhausted: OnExhausted::Block,
        };
        let scope = Scope::new(ScopeKind::Team, "a:b%c", "a:b%c");
        let l = Line::new(&scope, &b, 1_763_764_200);
        assert_eq!(l.counter, "b:team:a%3Ab%25c:usd:1763683200:1763769600");
        assert_eq!(l.describe(), "team `a:b%c` daily budget of $5.00");
        assert_eq!(l.actual(100, 7), 7);
    }
}
