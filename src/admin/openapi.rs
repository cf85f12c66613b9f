//! `GET /admin/api/openapi.json`: the admin API described in OpenAPI 3.1, built once. A test
//! checks that every route of [`super::router`] is in it and every path in it is served.

use std::sync::OnceLock;

use axum::response::Response;
use http::StatusCode;
use serde_json::{Value, json};

pub async fn document() -> Response {
    static DOC: OnceLock<Value> = OnceLock::new();
    super::json(StatusCode::OK, DOC.get_or_init(build))
}

fn op(
    summary: &str,
    tag: &str,
    ok: u16,
    ok_schema: &str,
    body: Option<&str>,
    extra: &[u16],
) -> Value {
    let mut responses = serde_json::Map::new();
    responses.insert(
        ok.to_string(),
        json!({"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{ok_schema}")}}}}),
    );
    for code in [400, 401, 403].iter().chain(extra) {
        responses.insert(
            code.to_string(),
            json!({"$ref": "#/components/responses/Error"}),
        );
    }
    let mut o = json!({"summary": summary, "tags": [tag], "responses": responses});
    if let Some(schema) = body {
        o["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}},
        });
    }
    o
}

fn name_param(name: &str) -> Value {
    json!([{"name": name, "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[A-Za-z0-9._@+-]{1,128}$"}}])
}

fn build() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Gatehouse admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Keys, teams, users, projects, budgets and usage. The admin token sees and manages all; a team admin key its own team, granting no more than it holds; other keys only GET /admin/api/me."
        },
        "security": [{"bearer": []}],
        "paths": paths(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {"description": "An error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "schemas": schemas(),
        }
    })
}

/// Every route of the admin API, with its operations.
fn paths() -> Value {
    let mut paths = json!({
        "/admin/api/me": {"get": op("Who is calling", "auth", 200, "Me", None, &[])},
        "/admin/api/keys": {
            "get": op("List stored keys", "keys", 200, "KeyList", None, &[]),
            "post": op("Create a key (the reply holds the key, once)", "keys", 201, "Key", Some("KeyIn"), &[409]),
        },
        "/admin/api/keys/{id}": {
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
            "get": op("Read a key", "keys", 200, "Key", None, &[404]),
            "delete": op("Revoke a key", "keys", 200, "Key", None, &[404]),
        },
        "/admin/api/teams": {
            "get": op("List teams", "teams", 200, "EntityList", None, &[]),
            "post": op("Create a team (admin)", "teams", 201, "Entity", Some("TeamIn"), &[409]),
        },
        "/admin/api/teams/{name}": {
            "parameters": name_param("name"),
            "get": op("Read a team", "teams", 200, "Entity", None, &[404]),
            "put": op("Replace a team's models and limits (admin)", "teams", 200, "Entity", Some("TeamIn"), &[404, 409]),
            "delete": op("Delete a team (admin)", "teams", 200, "Deleted", None, &[404, 409]),
        },
        "/admin/api/users": {
            "get": op("List users", "users", 200, "EntityList", None, &[]),
            "post": op("Create a user", "users", 201, "Entity", Some("MemberIn"), &[409]),
        },
        "/admin/api/users/{name}": {
            "parameters": name_param("name"),
            "get": op("Read a user", "users", 200, "Entity", None, &[404]),
            "delete": op("Delete a user", "users", 200, "Deleted", None, &[404, 409]),
        },
        "/admin/api/projects": {
            "get": op("List projects", "projects", 200, "EntityList", None, &[]),
            "post": op("Create a project", "projects", 201, "Entity", Some("MemberIn"), &[409]),
        },
        "/admin/api/projects/{name}": {
            "parameters": name_param("name"),
            "get": op("Read a project", "projects", 200, "Entity", None, &[404]),
            "delete": op("Delete a project", "projects", 200, "Deleted", None, &[404, 409]),
        },
        "/admin/api/budgets": {"get": op("Every budget in its current period", "budgets", 200, "BudgetList", None, &[503])},
        "/admin/api/routing/explain": {"post": op("Which rule and targets a request of this model, key, tags and headers would take now (admin)", "routing", 200, "Explanation", Some("ExplainIn"), &[404, 503])},
        "/admin/api/usage": {"get": {
            "parameters": [
                {"name": "by", "in": "query", "schema": {"enum": ["key", "team", "user", "project", "model", "provider", "tag", "day"]}},
                {"name": "since", "in": "query", "schema": {"type": "string"}, "description": "Unix seconds or a duration back from now (7d)"},
                {"name": "until", "in": "query", "schema": {"type": "string"}}
            ],
        }},
        "/admin/api/logs": {"get": {
            "summary": "The request log, newest first, a page at a time (JSON, CSV or JSON lines): all of it for the admin, a team's for its team admin, a key's own requests for any other key",
            "operationId": "logs",
            "security": [{"bearer": []}],
            "parameters": [
                {"name": "since", "in": "query", "schema": {"type": "string"}, "description": "Unix seconds or a duration back from now (7d); default 7d"},
                {"name": "until", "in": "query", "schema": {"type": "string"}},
                {"name": "key", "in": "query", "schema": {"type": "string"}, "description": "a key's id"},
                {"name": "team", "in": "query", "schema": {"type": "string"}},
                {"name": "user", "in": "query", "schema": {"type": "string"}, "description": "the user the key belongs to"},
                {"name": "project", "in": "query", "schema": {"type": "string"}},
                {"name": "model", "in": "query", "schema": {"type": "string"}, "description": "asked for or served"},
                {"name": "provider", "in": "query", "schema": {"type": "string"}},
                {"name": "status", "in": "query", "schema": {"enum": ["ok", "error", "cancelled"]}},
                {"name": "error_class", "in": "query", "schema": {"type": "string"}, "description": "e.g. upstream_rejected, rate_limited, client_disconnected"},
                {"name": "tag", "in": "query", "schema": {"type": "string"}, "description": "name=value"},
                {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "text of the error"},
                {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}},
                {"name": "cursor", "in": "query", "schema": {"type": "string"}, "description": "the previous page's next_cursor (x-next-cursor for csv and jsonl)"},
                {"name": "format", "in": "query", "schema": {"enum": ["json", "csv", "jsonl"]}}
            ],
            "responses": {
                "200": {"description": "A page of the log", "content": {
                    "application/json": {"schema": {"type": "object", "properties": {"data": {"type": "array", "items": {"type": "object"}}, "next_cursor": {"type": ["string", "null"]}}}},
                    "text/csv": {"schema": {"type": "string"}},
                    "application/x-ndjson": {"schema": {"type": "string"}}
                }},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"}
            }
        }},
        "/admin/api/logs/{request_id}": {"get": {
            "summary": "One request's record, with its kept bodies (the admin only; a team admin gets its team's records, any other key its own, without them)",
            "operationId": "logEntry",
            "security": [{"bearer": []}],
            "parameters": [{"name": "request_id", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {
                "200": {"description": "The record", "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "request_id": {"type": "string"},
                    "bodies": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Bodies"}]}
                }}}}},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"}
            }
        }},
    });
    let usage_op = op(
        "Usage grouped by key, team, user, project, model, provider, tag or day",
        "usage",
        200,
        "Usage",
        None,
        &[],
    );
    if let Some(get) = paths["/admin/api/usage"]["get"].as_object_mut()
        && let Some(o) = usage_op.as_object()
    {
        get.extend(o.clone());
    }
    paths
}

/// The bodies the admin API takes and returns.
fn schemas() -> Value {
    let list = |item: &str| json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}}}});
    let budget_in = json!({
        "type": "object", "additionalProperties": false, "required": ["period"],
        "properties": {
            "usd": {"type": "number", "exclusiveMinimum": 0}, "tokens": {"type": "integer", "minimum": 1},
            "period": {"enum": ["daily", "weekly", "monthly"]}, "timezone": {"type": "string"},
            "route_to": {"type": "string", "description": "provider/model to serve from once spent"}
        }
    });
    let rate_limit = json!({
        "type": "object", "additionalProperties": false,
        "properties": {"rpm": {"type": "integer", "minimum": 1}, "tpm": {"type": "integer", "minimum": 1}, "concurrent": {"type": "integer", "minimum": 1}}
    });
    let limits_in = json!({
        "budgets": {"type": "array", "items": {"$ref": "#/components/schemas/BudgetIn"}},
        "rate_limit": {"$ref": "#/components/schemas/RateLimit"}
    });
    let mut key_in = json!({
        "type": "object", "additionalProperties": false, "required": ["name"],
        "properties": {
            "name": {"type": "string"}, "team": {"type": "string"}, "user": {"type": "string"},
            "project": {"type": "string"}, "models": {"type": "array", "items": {"type": "string"}},
            "expires_in": {"type": "string", "examples": ["30d"]},
            "role": {"enum": ["team_admin"], "description": "the admin only"},
            "log_bodies": {"enum": ["off", "client", "all"], "description": "bodies kept in the key's request records (the admin only)"}
        }
    });
    let mut team_in = json!({
        "type": "object", "additionalProperties": false,
        "properties": {"name": {"type": "string"}, "models": {"type": "array", "items": {"type": "string"}}}
    });
    let mut member_in = json!({
        "type": "object", "additionalProperties": false, "required": ["name"],
        "properties": {"name": {"type": "string"}, "team": {"type": "string"}}
    });
    for o in [&mut key_in, &mut team_in, &mut member_in] {
        if let (Some(p), Some(extra)) = (o["properties"].as_object_mut(), limits_in.as_object()) {
            p.extend(extra.clone());
        }
    }
    let key = json!({
        "type": "object",
        "properties": {
            "id": {"type": "string"}, "name": {"type": "string"},
            "key": {"type": "string", "description": "a hint (prefix…last four); the full key only in the reply to its creation"},
            "status": {"enum": ["active", "revoked", "expired"]}, "user": {"type": ["string", "null"]},
            "team": {"type": ["string", "null"]}, "project": {"type": ["string", "null"]},
            "models": {"type": ["array", "null"], "items": {"type": "string"}}, "role": {"type": ["string", "null"]},
            "created_at": {"type": "integer"}, "expires_at": {"type": ["integer", "null"]},
            "revoked_at": {"type": ["integer", "null"]}, "limits": {}
        }
    });
    let entity = json!({
        "type": "object",
        "properties": {
            "name": {"type": "string"}, "team": {"type": ["string", "null"]},
            "models": {"type": ["array", "null"], "items": {"type": "string"}},
            "limits": {"type": "object"}, "source": {"enum": ["config", "store"]}
        }
    });
    let budget = json!({
        "type": "object",
        "properties": {
            "scope": {"enum": ["key", "user", "team", "project", "provider"]}, "name": {"type": "string"},
            "unit": {"enum": ["usd", "tokens"]}, "period": {"enum": ["daily", "weekly", "monthly"]},
            "timezone": {"type": "string"}, "period_start": {"type": "integer"}, "period_end": {"type": "integer"},
            "limit": {"type": "number"}, "spent": {"type": "number"}, "reserved": {"type": "number"},
            "remaining": {"type": "number"}, "exhausted": {"type": "boolean"}, "on_exhausted": {"type": "string"}
        }
    });
    let usage = json!({
        "type": "object",
        "properties": {
            "by": {"type": "string"}, "since": {"type": "integer"}, "until": {"type": ["integer", "null"]},
            "data": {"type": "array", "items": {"type": "object", "properties": {
                "group": {"type": "string"}, "requests": {"type": "integer"}, "input_tokens": {"type": "integer"},
                "output_tokens": {"type": "integer"}, "cost_usd": {"type": "number"}
            }}}
        }
    });
    let me = json!({"type": "object", "properties": {"role": {"enum": ["admin", "team_admin", "member"]}, "team": {"type": ["string", "null"]}, "key": {}}});
    let error = json!({
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "properties": {
            "message": {"type": "string"}, "type": {"type": "string"}, "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}
        }}}
    });
    json!({
        "Me": me, "Key": key, "KeyList": list("Key"), "KeyIn": key_in,
        "Entity": entity, "EntityList": list("Entity"), "TeamIn": team_in, "MemberIn": member_in,
        "BudgetIn": budget_in, "RateLimit": rate_limit,
        "Budget": budget, "BudgetList": list("Budget"), "Usage": usage, "Error": error,
        "Deleted": {"type": "object", "properties": {"deleted": {"type": "string"}}},
        "ExplainIn": {"type": "object", "required": ["model"], "properties": {
            "model": {"type": "string"},
            "key": {"type": "string", "description": "a key's name or id"},
            "tags": {"type": "array", "items": {"type": "string"}, "description": "name=value"},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
            "input_tokens": {"type": "integer", "minimum": 0}
        }},
        "Explanation": {"type": "object", "properties": {
            "model": {"type": "string"},
            "routed_model": {"type": "string", "description": "after the rules' rewrites"},
            "rule": {"type": ["object", "null"], "description": "the first rule that holds: index, name, model pattern"},
            "targets": {"type": "array", "items": {"type": "object", "properties": {
                "provider": {"type": "string"}, "model": {"type": "string"}, "ejected": {"type": "boolean"}
            }}, "description": "in the order they would be tried"},
            "facts": {"type": "object", "description": "the key, team, user, tags, input tokens and budgets found spent"},
            "refused": {"type": "string", "description": "why no target serves the model, instead of rule and targets"}
        }},
        "Body": {"oneOf": [{"type": "null"}, {"type": "object", "properties": {
            "text": {"type": "string", "description": "redacted, cut to [log] body_limit"},
            "bytes": {"type": "integer", "description": "size before the cut"},
            "truncated": {"type": "boolean"}
        }}]},
        "Bodies": {"type": "object", "properties": {
            "provider": {"type": ["string", "null"]},
            "request": {"$ref": "#/components/schemas/Body"},
            "reply": {"$ref": "#/components/schemas/Body"},
            "provider_request": {"$ref": "#/components/schemas/Body"},
            "provider_response": {"$ref": "#/components/schemas/Body"}
        }}
    })
}
