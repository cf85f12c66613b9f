//! Validation of the governance sections: `[teams.NAME]` and static `[[keys]]` (SPEC §2).

use indexmap::IndexMap;

use super::policy::{self, Holder, Policy};
use super::raw::{RawKey, RawTeam, Str};
use super::source::Source;
use super::{ModelPattern, Secret, Target};

/// Parses a `route_to` target (the caller owns the raw config it is checked against).
pub(super) type TargetFn<'a> =
    dyn FnMut(&mut Source<'_>, &toml::Spanned<String>) -> Option<Target> + 'a;

/// Shortest static key accepted: anything shorter is guessable.
pub const MIN_STATIC_KEY_LEN: usize = 16;

#[derive(Debug, Clone, Default)]
pub struct Team {
    /// Model globs the team's keys may use; `None` = every model.
    pub models: Option<Vec<ModelPattern>>,
    pub policy: Policy,
}

/// A key written in the config file.
#[derive(Debug, Clone)]
pub struct StaticKey {
    pub name: String,
    pub key: Secret,
    pub team: Option<String>,
    pub user: Option<String>,
    pub project: Option<String>,
    pub models: Option<Vec<ModelPattern>>,
    pub policy: Policy,
    /// Administers its team through the admin API (`role = "team_admin"`).
    pub team_admin: bool,
    /// Bodies kept in this key's records (`None`: the provider's, then `[log] bodies`).
    pub log_bodies: Option<super::BodyLevel>,
}

pub(super) fn model_list(
    src: &mut Source<'_>,
    list: &Option<Vec<Str>>,
) -> Option<Vec<ModelPattern>> {
    let list = list.as_ref()?;
    Some(
        list.iter()
            .filter_map(|m| {
                let text = src.expand(m);
                ModelPattern::new(&text)
                    .map_err(|e| {
                        src.error(
                            &m.span(),
                            format!("invalid model pattern `{}`: {e}", m.get_ref()),
                        )
                    })
                    .ok()
            })
            .collect(),
    )
}

pub(super) fn teams(
    src: &mut Source<'_>,
    raw: &IndexMap<String, toml::Spanned<RawTeam>>,
    target: &mut TargetFn<'_>,
) -> IndexMap<String, Team> {
    raw.iter()
        .map(|(name, t)| {
            let span = t.span();
            let t = t.get_ref();
            let team = Team {
                models: model_list(src, &t.models),
                policy: Policy {
                    budgets: policy::budgets(src, &span, t.budget.as_ref(), Holder::Caller, target),
                    rate_limit: policy::rate_limit(src, t.rate_limit.as_ref()),
                },
            };
            (name.clone(), team)
        })
        .collect()
}

pub(super) fn keys(
    src: &mut Source<'_>,
    raw: &[toml::Spanned<RawKey>],
    teams: &IndexMap<String, Team>,
    target: &mut TargetFn<'_>,
) -> Vec<StaticKey> {
    let mut out: Vec<StaticKey> = Vec::new();
    for k in raw {
        let span = k.span();
        let k = k.get_ref();
        let name = src.expand(&k.name);
        let key = Secret::new(src.expand(&k.key));
        if key.expose().chars().count() < MIN_STATIC_KEY_LEN {
            src.error(
                &k.key.span(),
                format!("key `{name}` is shorter than {MIN_STATIC_KEY_LEN} characters"),
            );
        }
        if out.iter().any(|o| o.name == name) {
            src.error(&k.name.span(), format!("duplicate key name `{name}`"));
        }
        if out.iter().any(|o| o.key == key) {
            src.error(
                &span,
                format!("key `{name}` has the same value as another key"),
            );
        }
        let team = k.team.as_ref().map(|t| {
            let team = src.expand(t);
            if !teams.contains_key(&team) {
                src.error(
                    &t.span(),
                    format!("unknown team `{team}`: define it with [teams.{team}]"),
                );
            }
            team
        });
        let user = k.user.as_ref().map(|u| src.expand(u));
        let project = k.project.as_ref().map(|p| src.expand(p));
        let models = model_list(src, &k.models);
        let policy = Policy {
            budgets: policy::budgets(src, &span, k.budget.as_ref(), Holder::Caller, target),
            rate_limit: policy::rate_limit(src, k.rate_limit.as_ref()),
        };
        let team_admin = match &k.role {
            None => false,
            Some(r) if r.get_ref() == "team_admin" => {
                if team.is_none() {
                    src.error(
                        &r.span(),
                        format!("key `{name}` is a team admin but has no team"),
                    );
                }
                true
            }
            Some(r) => {
                src.error(
                    &r.span(),
                    format!(
                        "unknown role `{}`: the only role is \"team_admin\"",
                        r.get_ref()
                    ),
                );
                false
            }
        };
        out.push(StaticKey {
            log_bodies: super::body_level(src, k.log_bodies.as_ref()),
            team_admin,
            name,
            key,
            team,
            user,
            project,
            models,
            policy,
        });
    }
    out
}
