//! Nobody grants more than they hold (RELIABILITY 31). When a team admin creates a key, a
//! user or a project, what it asks for must fit inside what the team admin's own key and
//! team allow:
//! - models: every pattern asked for is one the granter holds, or a plain model name that
//!   one of the granter's patterns matches; asking for "every model" needs a granter whose
//!   own key has no list of its own (its team's list then bounds both);
//! - budgets: no larger than any budget of the granter's key or team in the same unit and
//!   period; a budget's fallback target must be a model the granter may use;
//! - rate limits: no larger than the granter's key's or team's, and set when the granter's
//!   own key has one (the team's limits bind every key of the team anyway);
//! - roles: only the admin makes team admins (checked by the caller of these functions).

use crate::config::{BudgetUnit, ModelPattern, OnExhausted, Policy};
use crate::governance::Principal;
use crate::governance::directory::TeamEntry;

/// Is `asked` covered by `held` (`None`: held has no limit)?
fn covered(asked: &str, held: Option<&[ModelPattern]>) -> bool {
    let Some(held) = held else { return true };
    let literal = !asked.contains(['*', '?', '[', '{']);
    held.iter()
        .any(|h| h.pattern == asked || (literal && h.matches(asked)))
}

/// Check a grant of `models` and `policy` by `granter` within `team`.
pub fn check(
    granter: &Principal,
    team: &TeamEntry,
    models: Option<&[String]>,
    policy: &Policy,
) -> Result<(), String> {
    match models {
        Some(list) => {
            for m in list {
                if !covered(m, granter.models()) || !covered(m, team.models.as_deref()) {
                    return Err(format!("you may not grant model `{m}`: you do not hold it"));
                }
            }
        }
        None if granter.models().is_some() => {
            return Err(
                "you may not grant every model: list the models (your own key is limited to some)"
                    .into(),
            );
        }
        None => {}
    }
    for b in &policy.budgets {
        for held in [&granter.policy, &team.policy] {
            if let Some(h) = held
                .budgets
                .iter()
                .find(|h| h.unit == b.unit && h.period == b.period)
                && b.limit > h.limit
            {
                return Err(format!(
                    "you may not grant a {} budget of {} {}: you hold {}",
                    b.period.as_str(),
                    b.limit_display(),
                    unit_name(b.unit),
                    h.limit_display()
                ));
            }
        }
        if let OnExhausted::RouteTo(t) = &b.on_exhausted {
            let model = t.model.as_deref().unwrap_or("");
            if !covered(model, granter.models()) || !covered(model, team.models.as_deref()) {
                return Err(format!(
                    "you may not route to `{}/{model}`: you do not hold that model",
                    t.provider
                ));
            }
        }
    }
    let asked = policy.rate_limit;
    for (held, must_set) in [(&granter.policy, true), (&team.policy, false)] {
        let h = held.rate_limit;
        for (what, a, h) in [
            ("rpm", asked.rpm, h.rpm),
            ("tpm", asked.tpm, h.tpm),
            ("concurrent", asked.concurrent, h.concurrent),
        ] {
            match (a, h) {
                (Some(a), Some(h)) if a > h => {
                    return Err(format!("you may not grant {what} {a}: you hold {h}"));
                }
                (None, Some(h)) if must_set => {
                    return Err(format!(
                        "you may not grant an unlimited {what}: you hold {h}; set one"
                    ));
                }
                _ => {}
            }
        }
    }
    Ok(())
}

fn unit_name(u: BudgetUnit) -> &'static str {
    match u {
        BudgetUnit::Usd => "USD",
        BudgetUnit::Tokens => "tokens",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Budget, Period, RateLimit};

    fn budget(unit: BudgetUnit, limit: u64) -> Budget {
        Budget {
            unit,
            limit,
            period: Period::Daily,
            timezone: "UTC".into(),
            tz: jiff::tz::TimeZone::UTC,
            on_exhausted: OnExhausted::Block,
        }
    }

    fn team(models: &[&str], policy: Policy) -> TeamEntry {
        TeamEntry {
            models: Some(
                models
                    .iter()
                    .map(|m| ModelPattern::new(m).unwrap())
                    .collect(),
            ),
            policy,
            from_config: true,
        }
    }

    #[test]
    fn models_budgets_and_limits_stay_within_what_is_held() {
        let granter = crate::governance::keys::test_principal(None, Policy::default());
        let t = team(
            &["gpt-4o*", "claude-*"],
            Policy {
                budgets: vec![budget(BudgetUnit::Usd, 100)],
                rate_limit: RateLimit {
                    rpm: Some(60),
                    ..RateLimit::default()
                },
            },
        );
        let ok_policy = Policy {
            budgets: vec![budget(BudgetUnit::Usd, 50)],
            rate_limit: RateLimit {
                rpm: Some(10),
                ..RateLimit::default()
            },
        };
        let list = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(
            check(
                &granter,
                &t,
                Some(&list(&["gpt-4o-mini", "claude-*"])),
                &ok_policy
            )
            .is_ok()
        );
        assert!(check(&granter, &t, None, &ok_policy).is_ok());
        // A wider pattern, a model not held, more budget, more rpm, no rpm at all.
        assert!(check(&granter, &t, Some(&list(&["gpt-*"])), &ok_policy).is_err());
        assert!(check(&granter, &t, Some(&list(&["o3"])), &ok_policy).is_err());
        let more = Policy {
            budgets: vec![budget(BudgetUnit::Usd, 101)],
            ..ok_policy.clone()
        };
        assert!(
            check(&granter, &t, None, &more)
                .unwrap_err()
                .contains("budget")
        );
        let faster = Policy {
            rate_limit: RateLimit {
                rpm: Some(61),
                ..RateLimit::default()
            },
            ..ok_policy.clone()
        };
        assert!(
            check(&granter, &t, None, &faster)
                .unwrap_err()
                .contains("rpm 61")
        );
        // No limit of its own is fine (the team's binds); not when the granter has one.
        let unlimited = Policy {
            rate_limit: RateLimit::default(),
            ..ok_policy.clone()
        };
        assert!(check(&granter, &t, None, &unlimited).is_ok());
        let limited = crate::governance::keys::test_principal(
            None,
            Policy {
                rate_limit: RateLimit {
                    rpm: Some(5),
                    ..RateLimit::default()
                },
                ..Policy::default()
            },
        );
        assert!(
            check(&limited, &t, None, &unlimited)
                .unwrap_err()
                .contains("unlimited rpm")
        );
        // A granter limited to some models may not hand out "every model".
        let narrow = crate::governance::keys::test_principal(Some(&["gpt-4o"]), Policy::default());
        assert!(check(&narrow, &t, None, &ok_policy).is_err());
        assert!(check(&narrow, &t, Some(&list(&["gpt-4o"])), &ok_policy).is_ok());
    }
}
