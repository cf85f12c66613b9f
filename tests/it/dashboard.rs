//! The dashboard at `/ui` (issue 10; RELIABILITY 35), over HTTP as a browser would use it:
//! signing in and out, the session cookie's flags, a replayed cookie after sign-out, forms
//! from elsewhere (login CSRF, CSRF), who sees which page and whose figures, and escaping of
//! what requests carry.

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Client, Response, redirect};

use crate::support::*;

const ADMIN: &str = "admin-token-0123456789abcdef";
const ALPHA_ADMIN: &str = "sk-alpha-admin-0123456789";
const MEMBER: &str = "sk-alpha-member-0123456789";
const LONER: &str = "sk-loner-key-0123456789";

fn config() -> String {
    format!(
        "[server]\nadmin_token = \"{ADMIN}\"\n[log]\nbodies = \"all\"\n\
         [providers.p]\nkind = \"openai-compatible\"\nbase_url = \"{{mock0}}\"\nmodels = [\"*\"]\n\
         [teams.alpha]\nbudget = {{ usd = 100, period = \"monthly\" }}\n\
         [[keys]]\nname = \"alpha-admin\"\nkey = \"{ALPHA_ADMIN}\"\nteam = \"alpha\"\nrole = \"team_admin\"\n\
         [[keys]]\nname = \"alpha-member\"\nkey = \"{MEMBER}\"\nteam = \"alpha\"\n\
         [[keys]]\nname = \"loner\"\nkey = \"{LONER}\"\n"
    )
}

/// A client that shows redirects instead of following them, and keeps no cookies: each
/// test sends the cookies it means to.
fn browser() -> Client {
    Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap()
}

fn set_cookies(r: &Response) -> Vec<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The value a `Set-Cookie` of `r` gives the cookie `name`.
fn cookie_value(r: &Response, name: &str) -> Option<String> {
    set_cookies(r).iter().find_map(|c| {
        c.split(';')
            .next()
            .and_then(|kv| kv.split_once('='))
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    })
}

/// The `value` of the hidden input `name` in a page.
fn hidden(page: &str, name: &str) -> String {
    let at = page
        .find(&format!("name=\"{name}\" value=\""))
        .unwrap_or_else(|| panic!("no {name} field in {page}"));
    let rest = &page[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// Sign in with `token` as a browser does (the form, then its post); the session cookie.
async fn sign_in(gw: &Gateway, token: &str) -> String {
    let b = browser();
    let form = b.get(gw.url("/ui/login")).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let nonce_cookie = cookie_value(&form, "gatehouse_login").unwrap();
    let page = form.text().await.unwrap();
    let nonce = hidden(&page, "nonce");
    assert_eq!(nonce, nonce_cookie);
    let r = b
        .post(gw.url("/ui/login"))
        .header(COOKIE, format!("gatehouse_login={nonce_cookie}"))
        .form(&[("token", token), ("nonce", &nonce)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert_eq!(r.headers()[LOCATION], "/ui/");
    cookie_value(&r, "gatehouse_session").unwrap()
}

async fn get(gw: &Gateway, path: &str, session: &str) -> (u16, String) {
    let r = browser()
        .get(gw.url(path))
        .header(COOKIE, format!("gatehouse_session={session}"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

/// A non-streamed chat request as `key`.
async fn chat_as(gw: &Gateway, key: &str, model: &str) -> Response {
    client()
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat_req(model, false))
        .send()
        .await
        .unwrap()
}

async fn start() -> (MockProvider, Gateway) {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let gw = Gateway::start(&config(), &[&mock]).await;
    (mock, gw)
}

#[tokio::test]
async fn without_a_session_pages_redirect_to_sign_in_and_forms_get_401() {
    let (_mock, gw) = start().await;
    let b = browser();
    // Deny by default: a page added later is closed too, until named public.
    for path in ["/ui/", "/ui", "/ui/config", "/ui/a-page-added-later"] {
        let r = b.get(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        let to = r.headers()[LOCATION].to_str().unwrap();
        assert!(to == "/ui/login" || to == "/ui/", "{path} -> {to}");
    }
    for path in ["/ui/logout", "/ui/a-form-added-later"] {
        let r = b.post(gw.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    let r = b
        .post(gw.url("/ui/config/reload"))
        .form(&[("_csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A cookie that names no session is refused too (and cleared), whatever it holds.
    for bogus in ["", "zz", &"0".repeat(64), "'; DROP TABLE ui_sessions; --"] {
        let r = b
            .get(gw.url("/ui/"))
            .header(COOKIE, format!("gatehouse_session={bogus}"))
            .send()
            .await
            .unwrap();
        assert!(
            [303, 401].contains(&r.status().as_u16()),
            "{bogus}: {}",
            r.status()
        );
    }
    // The sign-in page and the stylesheet need no session.
    let r = b.get(gw.url("/ui/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let login = set_cookies(&r);
    assert!(
        login.iter().any(|c| c.starts_with("gatehouse_login=")
            && c.contains("HttpOnly")
            && c.contains("SameSite=Strict")
            && c.contains("Path=/ui")),
        "{login:?}"
    );
    let css = b.get(gw.url("/ui/static/app.css")).send().await.unwrap();
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
}

#[tokio::test]
async fn sign_out_revokes_the_session_so_a_replayed_cookie_gets_401() {
    let (_mock, gw) = start().await;
    let b = browser();
    let form = b.get(gw.url("/ui/login")).send().await.unwrap();
    let nonce = cookie_value(&form, "gatehouse_login").unwrap();
    let r = b
        .post(gw.url("/ui/login"))
        .header(COOKIE, format!("gatehouse_login={nonce}"))
        .form(&[("token", ADMIN), ("nonce", &nonce)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    // The session cookie: an opaque id (no credential in it), HttpOnly, SameSite=Strict,
    // Secure (the gateway is on loopback, where browsers keep secure cookies), under /ui.
    let cookies = set_cookies(&r);
    let session_cookie = cookies
        .iter()
        .find(|c| c.starts_with("gatehouse_session="))
        .unwrap();
    for flag in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Path=/ui",
        "Max-Age=43200",
    ] {
        assert!(session_cookie.contains(flag), "{flag}: {session_cookie}");
    }
    let session = cookie_value(&r, "gatehouse_session").unwrap();
    assert_eq!(session.len(), 64);
    assert!(session.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!session.contains(ADMIN) && !cookies.iter().any(|c| c.contains(ADMIN)));
    // The login nonce is spent.
    assert!(cookies.iter().any(|c| c.starts_with("gatehouse_login=;")));

    let (status, overview) = get(&gw, "/ui/", &session).await;
    assert_eq!(status, 200);
    assert!(overview.contains("<h1>Overview</h1>"), "{overview}");
    assert!(
        overview.contains("href=\"/ui/config\""),
        "the admin sees Config"
    );
    let (status, config_page) = get(&gw, "/ui/config", &session).await;
    assert_eq!(status, 200);
    assert!(config_page.contains("SHA-256"));
    let (status, page) = get(&gw, "/ui/providers", &session).await;
    assert_eq!(status, 200);
    assert!(page.contains(">p<") && page.contains("serving"), "{page}");
    let (status, page) = get(&gw, "/ui/routes", &session).await;
    assert_eq!(status, 200);
    assert!(page.contains("Retries and ejection"), "{page}");
    let csrf = hidden(&overview, "_csrf");

    // Sign-out without the session's form token is refused, and changes nothing.
    let out = |token: String| {
        let (b, url, session) = (b.clone(), gw.url("/ui/logout"), session.clone());
        async move {
            b.post(url)
                .header(COOKIE, format!("gatehouse_session={session}"))
                .form(&[("_csrf", token)])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(out("0".repeat(64)).await.status(), 403);
    assert_eq!(out(String::new()).await.status(), 403);
    assert_eq!(get(&gw, "/ui/", &session).await.0, 200);
    let r = out(csrf).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()[LOCATION], "/ui/login");
    assert!(
        set_cookies(&r)
            .iter()
            .any(|c| c.starts_with("gatehouse_session=;") && c.contains("Max-Age=0"))
    );
    // Replayed after sign-out: 401 on every page, and the cookie is cleared.
    for path in ["/ui/", "/ui/config"] {
        let (status, body) = get(&gw, path, &session).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body.contains("Sign in"));
    }
}

#[tokio::test]
async fn sign_in_needs_the_forms_nonce_and_a_valid_credential() {
    let (_mock, gw) = start().await;
    let b = browser();
    // A form posted from elsewhere carries no nonce cookie: refused, no session.
    let r = b
        .post(gw.url("/ui/login"))
        .form(&[("token", ADMIN), ("nonce", "abc")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(cookie_value(&r, "gatehouse_session").is_none());
    // A nonce cookie that is not the form's.
    let r = b
        .post(gw.url("/ui/login"))
        .header(COOKIE, "gatehouse_login=abc")
        .form(&[("token", ADMIN), ("nonce", "abd")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // The right nonce, a wrong credential: the form again, 401, and the wrong token is not
    // echoed back.
    for token in [
        "sk-not-a-key-0123456789",
        "",
        "admin-token-0123456789abcdeX",
    ] {
        let r = b
            .post(gw.url("/ui/login"))
            .header(COOKIE, "gatehouse_login=abc")
            .form(&[("token", token), ("nonce", "abc")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{token}");
        assert!(cookie_value(&r, "gatehouse_session").is_none());
        let page = r.text().await.unwrap();
        assert!(page.contains("role=\"alert\""));
        assert!(token.is_empty() || !page.contains(token));
    }
}

#[tokio::test]
async fn each_sign_in_sees_its_own_scope_and_what_requests_carry_is_escaped() {
    let (mock, gw) = start().await;
    let hostile = "<script>alert(1)</script>";
    // The mock answers with the model it was asked for.
    mock.respond_with(|req| {
        Reply::json(
            200,
            serde_json::json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1,
                "model": req["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
            }),
        )
    });
    for (key, model, n) in [
        (MEMBER, hostile, 2),
        (ALPHA_ADMIN, "gpt-4o", 1),
        (LONER, "gpt-4o", 3),
    ] {
        for _ in 0..n {
            let r = chat_as(&gw, key, model).await;
            assert_eq!(r.status(), 200);
        }
    }
    gw.flush_records().await;
    let requests = |page: &str| {
        let at = page.find("Requests</span><span class=\"value\">").unwrap();
        let rest = &page[at + 35..];
        rest[..rest.find('<').unwrap()].to_owned()
    };
    // A key holder: its own key's requests only, no admin pages.
    let member = sign_in(&gw, MEMBER).await;
    let (status, page) = get(&gw, "/ui/", &member).await;
    assert_eq!(status, 200);
    assert_eq!(requests(&page), "2", "{page}");
    assert!(page.contains("key alpha-member"));
    assert!(!page.contains("href=\"/ui/config\""));
    assert!(!page.contains("<script>"), "model names are escaped");
    assert!(
        page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{page}"
    );
    for admin_page in [
        "/ui/config",
        "/ui/providers",
        "/ui/routes",
        "/ui/keys",
        "/ui/teams",
    ] {
        assert_eq!(get(&gw, admin_page, &member).await.0, 403, "{admin_page}");
    }
    // A team admin: its team's (the member's 2 and its own 1), and the team's keys.
    let team_admin = sign_in(&gw, ALPHA_ADMIN).await;
    let (_, page) = get(&gw, "/ui/", &team_admin).await;
    assert_eq!(requests(&page), "3", "{page}");
    assert!(page.contains("alpha-member") && !page.contains(">loner<"));
    for admin_page in ["/ui/config", "/ui/providers", "/ui/routes"] {
        assert_eq!(
            get(&gw, admin_page, &team_admin).await.0,
            403,
            "{admin_page}"
        );
    }
    // The admin: everything.
    let admin = sign_in(&gw, ADMIN).await;
    let (_, page) = get(&gw, "/ui/", &admin).await;
    assert_eq!(requests(&page), "6", "{page}");
    assert!(page.contains(">loner<") && page.contains("Top teams"));
    // Usage by model: the member's own (the hostile model escaped), the admin's all; the
    // export is the same rows as CSV.
    let (status, page) = get(&gw, "/ui/usage?by=model", &member).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("&lt;script&gt;") && !page.contains("<script>"),
        "{page}"
    );
    assert!(!page.contains(">gpt-4o<"), "another key's model: {page}");
    let (_, page) = get(&gw, "/ui/usage?by=key", &admin).await;
    assert!(
        page.contains(">loner<") && page.contains(">alpha-member<"),
        "{page}"
    );
    let (status, csv) = get(&gw, "/ui/usage/export?by=key&since=&until=", &admin).await;
    assert_eq!(status, 200);
    assert!(
        csv.starts_with("key,requests,input_tokens,output_tokens,cost_usd\r\n"),
        "{csv}"
    );
    assert!(csv.contains("\r\nloner,3,36,9,"), "{csv}");
    let (status, page) = get(&gw, "/ui/usage?since=last-tuesday", &admin).await;
    assert_eq!(status, 200);
    assert!(page.contains("role=\"alert\""));
    // Budgets: the team's, for its admin and its member (whose key it applies to); none
    // for a key without a team.
    for session in [&member, &team_admin, &admin] {
        let (status, page) = get(&gw, "/ui/budgets", session).await;
        assert_eq!(status, 200);
        assert!(
            page.contains("team alpha") && page.contains("$100.00"),
            "{page}"
        );
    }
    let loner = sign_in(&gw, LONER).await;
    let (_, page) = get(&gw, "/ui/budgets", &loner).await;
    assert!(page.contains("No budget applies here"), "{page}");
    // Sessions are independent: one signing out leaves the others.
    assert_eq!(get(&gw, "/ui/", &member).await.0, 200);
}

#[tokio::test]
async fn a_revoked_key_ends_its_sessions() {
    let (_mock, gw) = start().await;
    let created: serde_json::Value = client()
        .post(gw.url("/admin/api/keys"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({"name": "temp"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = created["key"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    let session = sign_in(&gw, key).await;
    assert_eq!(get(&gw, "/ui/", &session).await.0, 200);
    let r = client()
        .delete(gw.url(&format!("/admin/api/keys/{id}")))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(get(&gw, "/ui/", &session).await.0, 401);
}

/// The ids in a log page's table, newest first.
fn listed(page: &str) -> Vec<String> {
    page.match_indices("href=\"/ui/logs/")
        .map(|(at, _)| {
            let rest = &page[at + 15..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .filter(|id| !id.contains('/') && !id.contains('?'))
        .collect()
}

#[tokio::test]
async fn the_log_shows_each_sign_in_its_own_requests_with_filters_pages_and_details() {
    let (mock, gw) = start().await;
    let hostile = "<img src=x onerror=alert(1)>";
    mock.respond_with(|req| {
        if req["model"] == "broken" {
            return Reply::error(500, "the provider's own <b>raw</b> error");
        }
        Reply::json(
            200,
            serde_json::json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1,
                "model": req["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
            }),
        )
    });
    let mut ids = std::collections::HashMap::<&str, Vec<String>>::new();
    for (key, model) in [
        (MEMBER, hostile),
        (MEMBER, "gpt-4o"),
        (MEMBER, "broken"),
        (LONER, "gpt-4o"),
    ] {
        let r = chat_as(&gw, key, model).await;
        let id = r.headers()["x-gatehouse-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        ids.entry(key).or_default().push(id);
    }
    gw.flush_records().await;
    let mut member_ids = ids[MEMBER].clone();
    member_ids.reverse();
    let loner_id = ids[LONER][0].clone();

    let member = sign_in(&gw, MEMBER).await;
    let (status, page) = get(&gw, "/ui/logs", &member).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(listed(&page), member_ids, "the member's own, newest first");
    assert!(!page.contains("<img src=x"), "escaped");
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    // Filters: the status, a model; a filter cannot reach another key's requests.
    let (_, page) = get(&gw, "/ui/logs?status=error&since=&model=", &member).await;
    assert_eq!(listed(&page), [member_ids[0].clone()], "{page}");
    let (_, page) = get(&gw, "/ui/logs?error_class=upstream_failed", &member).await;
    let (_, all_errors) = get(&gw, "/ui/logs?status=error", &member).await;
    let class = {
        let at = all_errors.find("<span class=\"hint\">").unwrap() + 19;
        all_errors[at..at + all_errors[at..].find('<').unwrap()].to_owned()
    };
    let (_, page_by_class) = get(&gw, &format!("/ui/logs?error_class={class}"), &member).await;
    assert_eq!(
        listed(&page_by_class),
        [member_ids[0].clone()],
        "{class}: {page_by_class}"
    );
    assert!(
        class == "upstream_failed" || listed(&page).is_empty(),
        "{page}"
    );
    let (_, page) = get(&gw, "/ui/logs?project=none-such&user=", &member).await;
    assert!(listed(&page).is_empty());
    let (_, page) = get(&gw, &format!("/ui/logs?key={}", "static:loner"), &member).await;
    assert_eq!(listed(&page), member_ids);
    // A malformed filter is said on the page, not a failure.
    let (status, page) = get(&gw, "/ui/logs?since=yesterday-ish", &member).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("role=\"alert\"") && page.contains("since"),
        "{page}"
    );
    // Pages of one: each has the next one's link, and they walk the whole list.
    let mut seen = Vec::new();
    let mut path = "/ui/logs?limit=1".to_owned();
    loop {
        let (status, page) = get(&gw, &path, &member).await;
        assert_eq!(status, 200);
        seen.extend(listed(&page));
        let Some(at) = page.find("rel=\"next\"") else {
            break;
        };
        let start = page[..at].rfind("href=\"").unwrap() + 6;
        path = page[start..at]
            .trim_end_matches("\" ")
            .replace("&amp;", "&");
        assert!(
            path.contains("cursor=") && path.contains("limit=1"),
            "{path}"
        );
        assert!(seen.len() <= 3, "pagination does not end");
    }
    assert_eq!(seen, member_ids);

    // One request: the member's own, without bodies; another key's is not there.
    let (status, page) = get(&gw, &format!("/ui/logs/{}", member_ids[0]), &member).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Attempts") && !page.contains("Bodies"),
        "{page}"
    );
    assert_eq!(
        get(&gw, &format!("/ui/logs/{loner_id}"), &member).await.0,
        404
    );
    assert_eq!(
        get(
            &gw,
            &format!("/ui/logs/{}/body/request", member_ids[0]),
            &member
        )
        .await
        .0,
        404
    );
    // The team admin: the team's requests (the member's), not the loner's.
    let team_admin = sign_in(&gw, ALPHA_ADMIN).await;
    let (_, page) = get(&gw, "/ui/logs", &team_admin).await;
    assert_eq!(listed(&page), member_ids);
    assert_eq!(
        get(&gw, &format!("/ui/logs/{loner_id}"), &team_admin)
            .await
            .0,
        404
    );
    // The admin: everything, and the failed request's raw provider reply among its bodies,
    // escaped in the page and whole as plain text.
    let admin = sign_in(&gw, ADMIN).await;
    let (_, page) = get(&gw, "/ui/logs", &admin).await;
    assert_eq!(listed(&page).len(), 4);
    let (status, page) = get(&gw, &format!("/ui/logs/{}", member_ids[0]), &admin).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("Bodies") && page.contains("raw reply"),
        "{page}"
    );
    assert!(
        page.contains("the provider's own &lt;b&gt;raw&lt;/b&gt; error"),
        "{page}"
    );
    let r = browser()
        .get(gw.url(&format!(
            "/ui/logs/{}/body/provider_response",
            member_ids[0]
        )))
        .header(COOKIE, format!("gatehouse_session={admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.text().await.unwrap().contains("<b>raw</b>"));
}

/// A form post with the session's cookie; the status and the page.
async fn post(gw: &Gateway, path: &str, session: &str, form: &[(&str, &str)]) -> (u16, String) {
    let r = browser()
        .post(gw.url(path))
        .header(COOKIE, format!("gatehouse_session={session}"))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

#[tokio::test]
async fn keys_are_created_once_shown_and_revoked_by_the_admin_apis_rules() {
    let (_mock, gw) = start().await;
    let admin = sign_in(&gw, ADMIN).await;
    let (status, page) = get(&gw, "/ui/keys", &admin).await;
    assert_eq!(status, 200);
    let csrf = hidden(&page, "_csrf");
    // Without the session's form token: refused, nothing created.
    let (status, _) = post(
        &gw,
        "/ui/keys",
        &admin,
        &[("_csrf", "nope"), ("name", "ci")],
    )
    .await;
    assert_eq!(status, 403);
    // Created: the key is in this reply only.
    let (status, page) = post(
        &gw,
        "/ui/keys",
        &admin,
        &[
            ("_csrf", &csrf),
            ("name", "ci"),
            ("team", "alpha"),
            ("models", "gpt-4o"),
            ("monthly_usd", "25"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let at = page.find("<pre class=\"key\">").unwrap() + 17;
    let key = page[at..at + page[at..].find('<').unwrap()].to_owned();
    assert!(key.starts_with("sk-") || key.starts_with("gh-"), "{key}");
    let (_, list) = get(&gw, "/ui/keys", &admin).await;
    assert!(list.contains(">ci<") && !list.contains(&key), "shown once");
    // The key works, and signs in as itself.
    let r = chat_as(&gw, &key, "gpt-4o").await;
    assert_eq!(r.status(), 200);
    let holder = sign_in(&gw, &key).await;
    assert_eq!(
        get(&gw, "/ui/keys", &holder).await.0,
        403,
        "a key holder manages no keys"
    );

    // A team admin: its own team only, and no more than it holds (the admin API's rules).
    let team_admin = sign_in(&gw, ALPHA_ADMIN).await;
    let (_, page) = get(&gw, "/ui/keys", &team_admin).await;
    let team_csrf = hidden(&page, "_csrf");
    assert!(page.contains(">ci<"), "the team's key is listed");
    assert!(
        !page.contains("name=\"team_admin\""),
        "only the admin makes team admins"
    );
    let (status, page) = post(
        &gw,
        "/ui/keys",
        &team_admin,
        &[("_csrf", &team_csrf), ("name", "x"), ("team", "beta")],
    )
    .await;
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("your own team"), "{page}");
    let (status, page) = post(
        &gw,
        "/ui/keys",
        &team_admin,
        &[("_csrf", &team_csrf), ("name", "bad name!")],
    )
    .await;
    assert_eq!(status, 400, "{page}");
    // Revoked by the team admin: the key stops working and its session ends.
    let id = {
        let at = page.find("action=\"/ui/keys/").unwrap() + 17;
        page[at..at + page[at..].find('/').unwrap()].to_owned()
    };
    let (status, _) = post(
        &gw,
        &format!("/ui/keys/{id}/revoke"),
        &team_admin,
        &[("_csrf", "x")],
    )
    .await;
    assert_eq!(status, 403, "CSRF");
    let (status, page) = post(
        &gw,
        &format!("/ui/keys/{id}/revoke"),
        &team_admin,
        &[("_csrf", &team_csrf)],
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("revoked"));
    let r = chat_as(&gw, &key, "gpt-4o").await;
    assert_eq!(r.status(), 401);
    assert_eq!(get(&gw, "/ui/", &holder).await.0, 401);
}

/// Every page in a real Chromium, as a person uses it: signing in by typing the token, the
/// pages at 1280 and 390 pixels (screenshots under the test's output,
/// `$CARGO_TARGET_TMPDIR/ui/`), the keyboard's first stop, a failed request's raw provider
/// error in its detail page, and signing out with the button.
#[tokio::test]
async fn every_page_works_in_a_real_browser_at_desktop_and_phone_width() {
    let Some(browser) = crate::support::webdriver::Browser::start(1280).await else {
        return;
    };
    let (mock, gw) = start().await;
    mock.respond_with(|req| {
        if req["model"] == "broken" {
            return Reply::json(
                422,
                serde_json::json!({"object": "error", "message": "Input validation error: <raw> `max_tokens` too large", "type": "invalid_request_error"}),
            );
        }
        Reply::chat("hi")
    });
    for (key, model) in [
        (MEMBER, "gpt-4o"),
        (LONER, "gpt-4o-mini"),
        (MEMBER, "broken"),
    ] {
        chat_as(&gw, key, model).await;
    }
    gw.flush_records().await;
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui");
    std::fs::create_dir_all(&shots).unwrap();

    // Not signed in: the sign-in page, the token field focused to type into.
    browser.goto(&gw.url("/ui/")).await;
    assert!(browser.url().await.ends_with("/ui/login"));
    assert!(browser.focused().await.contains("id=\"token\""));
    browser.screenshot(&shots.join("login-1280.png")).await;
    browser.type_into("#token", ADMIN).await;
    browser.click("form.signin button").await;
    assert!(browser.arrives_at("/ui/").await, "{}", browser.url().await);
    let cookies = browser.cookies().await;
    let session = cookies
        .iter()
        .find(|c| c["name"] == "gatehouse_session")
        .unwrap();
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");
    assert!(!session["value"].as_str().unwrap().contains(ADMIN));
    // The keyboard's first stop on a page is the link that skips the navigation.
    browser.keys(crate::support::webdriver::TAB).await;
    assert!(browser.focused().await.contains("Skip to content"));

    let failed = {
        browser.goto(&gw.url("/ui/logs?status=error")).await;
        let page = browser.source().await;
        let at = page.find("href=\"/ui/logs/gh-").unwrap() + 15;
        page[at..at + page[at..].find('"').unwrap()].to_owned()
    };
    let pages: Vec<(String, &str, &str)> = vec![
        ("/ui/".into(), "overview", "Requests by day"),
        ("/ui/logs".into(), "logs", "gpt-4o-mini"),
        (
            format!("/ui/logs/{failed}"),
            "log-detail",
            "max_tokens` too large",
        ),
        ("/ui/usage?by=key".into(), "usage", "alpha-member"),
        ("/ui/budgets".into(), "budgets", "team alpha"),
        ("/ui/keys".into(), "keys", "Create a key"),
        ("/ui/teams".into(), "teams", "$100.00 monthly"),
        ("/ui/providers".into(), "providers", "serving"),
        ("/ui/routes".into(), "routes", "Retries and ejection"),
        ("/ui/config".into(), "config", "SHA-256"),
    ];
    for width in [1280, 390] {
        browser.resize(width, 900).await;
        for (path, name, shows) in &pages {
            browser.goto(&gw.url(path)).await;
            let text = browser.text().await;
            assert!(text.contains(shows), "{path} at {width}: {text}");
            browser
                .screenshot(&shots.join(format!("{name}-{width}.png")))
                .await;
        }
    }
    // The raw provider error, escaped: shown as text, not markup.
    browser.goto(&gw.url(&format!("/ui/logs/{failed}"))).await;
    assert!(browser.text().await.contains("<raw>"));

    // Sign out with the button: back at the sign-in page, and the pages are closed.
    browser.goto(&gw.url("/ui/")).await;
    browser.click("form.signout button").await;
    assert!(
        browser.arrives_at("/ui/login").await,
        "{}",
        browser.url().await
    );
    browser.goto(&gw.url("/ui/keys")).await;
    assert!(browser.url().await.ends_with("/ui/login"));
    eprintln!("screenshots in {}", shots.display());
}

/// `POST /admin/api/routing/explain` and the routes page's form: the rule and targets a
/// request would take, from its model, key, tags and headers, and the budgets spent now.
#[tokio::test]
async fn the_routes_page_explains_which_rule_a_request_would_take() {
    let mock = MockProvider::start(Profile::OpenAi).await;
    let text = format!(
        "[server]\nadmin_token = \"{ADMIN}\"\n\
         [providers.p]\nkind = \"openai-compatible\"\nbase_url = \"{{mock0}}\"\nmodels = [\"*\"]\n\
         [providers.capped]\nkind = \"openai-compatible\"\nbase_url = \"{{mock0}}\"\nmodels = [\"*\"]\nbudget = {{ tokens = 10, period = \"daily\" }}\n\
         [teams.alpha]\n\
         [[keys]]\nname = \"alpha-member\"\nkey = \"{MEMBER}\"\nteam = \"alpha\"\n\
         [[routes]]\nname = \"prod\"\nmatch = {{ model = \"gpt-*\", header = {{ \"x-env\" = \"prod\" }} }}\ntargets = [\"p/gpt-4o\"]\n\
         [[routes]]\nname = \"alpha-cheap\"\nmatch = {{ model = \"gpt-*\", team = \"alpha\", tag = \"feature=cheap\" }}\ntargets = [\"p/gpt-4o-mini\"]\n\
         [[routes]]\nname = \"within-cap\"\nmatch = {{ model = \"claude-*\", budget_available = \"provider:capped\" }}\ntargets = [\"capped/claude-sonnet\"]\n\
         [[routes]]\nname = \"after-cap\"\nmatch = {{ model = \"claude-*\" }}\ntargets = [\"p/local-model\"]\n"
    );
    let gw = Gateway::start(&text, &[&mock]).await;
    let explain = |body: serde_json::Value| {
        let gw = &gw;
        async move {
            let r = client()
                .post(gw.url("/admin/api/routing/explain"))
                .bearer_auth(ADMIN)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (s, v) = explain(
        serde_json::json!({"model": "gpt-4.1", "key": "alpha-member", "tags": ["feature=cheap"]}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["rule"]["name"], "alpha-cheap", "{v}");
    assert_eq!(v["targets"][0]["model"], "gpt-4o-mini");
    assert_eq!(v["facts"]["team"], "alpha");
    // The header rule comes first when its header is sent.
    let (_, v) = explain(serde_json::json!({"model": "gpt-4.1", "key": "alpha-member", "tags": ["feature=cheap"], "headers": {"x-env": "prod"}})).await;
    assert_eq!(v["rule"]["name"], "prod", "{v}");
    // No key: the team rule does not hold, and no rule matches: the provider that serves it.
    let (_, v) = explain(serde_json::json!({"model": "gpt-4.1", "tags": ["feature=cheap"]})).await;
    assert!(v["rule"].is_null(), "{v}");
    assert_eq!(v["targets"][0]["provider"], "p");
    // A provider's budget: available now, then spent after one request.
    let (_, v) = explain(serde_json::json!({"model": "claude-x"})).await;
    assert_eq!(v["rule"]["name"], "within-cap", "{v}");
    let r = chat_as(&gw, MEMBER, "claude-x").await;
    assert_eq!(r.status(), 200);
    gw.flush_records().await;
    let (_, v) = explain(serde_json::json!({"model": "claude-x"})).await;
    assert_eq!(v["rule"]["name"], "after-cap", "{v}");
    assert_eq!(v["facts"]["budgets_spent"][0], "provider capped", "{v}");
    // Refusals: an unknown key, no model, a field it does not know.
    assert_eq!(
        explain(serde_json::json!({"model": "gpt-4.1", "key": "nobody"}))
            .await
            .0,
        404
    );
    assert_eq!(explain(serde_json::json!({"model": ""})).await.0, 400);
    assert_eq!(
        explain(serde_json::json!({"model": "x", "colour": "red"}))
            .await
            .0,
        400
    );

    // The same on the routes page, from its form.
    let admin = sign_in(&gw, ADMIN).await;
    let (status, page) = get(
        &gw,
        "/ui/routes?model=gpt-4.1&key=alpha-member&tags=feature%3Dcheap",
        &admin,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        page.contains("alpha-cheap") && page.contains("p/gpt-4o-mini"),
        "{page}"
    );
    let (_, page) = get(&gw, "/ui/routes?model=gpt-4.1&key=nobody", &admin).await;
    assert!(page.contains("role=\"alert\""), "{page}");
}
