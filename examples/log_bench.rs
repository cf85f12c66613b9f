//! The request log at one million rows (RELIABILITY 27): how long the log's queries take on
//! SQLite and on Postgres, how big a row is, and how long a write waits while retention
//! deletes. Run by `bench/logs.sh`; prints a Markdown table.
//!
//!   cargo run --release --example log_bench -- sqlite [ROWS]
//!   cargo run --release --example log_bench -- postgres [ROWS]   # the machine's Postgres
//!   cargo run --release --example log_bench -- seed STORE_URL [ROWS]
//!
//! `seed` only writes the rows into the store at `STORE_URL`, over the 60 days up to now, and
//! leaves them there (for `bench/dashboard.sh`).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark that stops at the first failure and prints its table"
)]

use std::time::Duration;

use tokio::time::Instant;

use gatehouse::store::{GroupBy, LogFilter, Store, UsageFilter, UsageRecord};

const DAY: i64 = 86_400;
const NOW: i64 = 1_800_000_000;

fn record(i: u64) -> UsageRecord {
    record_until(i, NOW)
}

/// Row `i` of the spread, over the 60 days before `now`.
fn record_until(i: u64, now: i64) -> UsageRecord {
    // A cheap deterministic spread: 100 keys in 10 teams, 20 models, 5 providers, 60 days,
    // 4 % errors and 1 % cancelled, 30 % tagged.
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11;
    let key = h % 100;
    let error = h % 100 < 4;
    UsageRecord {
        request_id: format!("bench-{i:08}"),
        created_at: now - 60 * DAY
            + i64::try_from(i % (60 * DAY as u64)).unwrap_or(0) * 60 % (60 * DAY),
        key_id: Some(format!("key_{key:03}")),
        key_name: Some(format!("k{key}")),
        team: Some(format!("team_{}", key % 10)),
        user: Some(format!("user{}@example.com", h % 1000)),
        provider: Some(format!("provider_{}", h % 5)),
        model: Some(format!("model-{}", h % 20)),
        requested_model: format!("model-{}", h % 20),
        input_tokens: 500 + h % 3000,
        output_tokens: 50 + h % 800,
        cost_nanos: 1_000_000 + h % 9_000_000,
        status: if error {
            "error"
        } else if h % 100 == 4 {
            "cancelled"
        } else {
            "ok"
        },
        http_status: if error { 502 } else { 200 },
        error_class: error.then_some("upstream_failed"),
        error: error.then(|| {
            format!(
                "provider_{} returned 503: overloaded (attempt {})",
                h % 5,
                h % 3
            )
        }),
        client_schema: ["chat", "messages", "responses", "gemini"][(h % 4) as usize],
        ttft_ms: Some(100 + h % 900),
        latency_ms: Some(400 + h % 4000),
        route: Some("default".into()),
        attempts: Some(
            r#"[{"provider":"provider_1","model":"model-1","status":"ok","ms":420}]"#.into(),
        ),
        tags: if h % 10 < 3 {
            vec![format!("feature=f{}", (h / 10) % 10)]
        } else {
            Vec::new()
        },
        ..UsageRecord::default()
    }
}

/// Median of `runs` timings of `f`, in milliseconds.
async fn time<F, Fut, T>(runs: usize, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let _ = f().await;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    ms.sort_by(f64::total_cmp);
    ms[ms.len() / 2]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let backend = args.get(1).map_or("sqlite", String::as_str);
    if backend == "seed" {
        let url = args.get(2).expect("seed STORE_URL [ROWS]");
        let rows: u64 = args
            .get(3)
            .and_then(|n| n.parse().ok())
            .unwrap_or(1_000_000);
        let store = Store::connect(url).await.unwrap();
        let now = gatehouse::governance::now_unix();
        let t = Instant::now();
        for start in (0..rows).step_by(5_000) {
            let mut records: Vec<_> = (start..(start + 5_000).min(rows))
                .map(|i| record_until(i, now))
                .collect();
            store.insert_usage(&mut records).await.unwrap();
        }
        println!("seeded {rows} rows in {:.0} s", t.elapsed().as_secs_f64());
        return;
    }
    let rows: u64 = args
        .get(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let base = "postgres://postgres@127.0.0.1:5432/test";
    let schema = format!("gh_bench_{}", std::process::id());
    let (store, size_of) = match backend {
        "postgres" => {
            let admin = sqlx::PgPool::connect(base)
                .await
                .expect("Postgres on 127.0.0.1:5432");
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&admin)
                .await
                .unwrap();
            let url = format!("{base}?options=-c%20search_path%3D{schema}");
            (Store::connect(&url).await.unwrap(), None)
        }
        _ => {
            let path =
                std::env::temp_dir().join(format!("gatehouse-log-bench-{}.db", std::process::id()));
            let _ = std::fs::remove_file(&path);
            let url = format!("sqlite://{}", path.display());
            (Store::connect(&url).await.unwrap(), Some(path))
        }
    };
    let t = Instant::now();
    let batch = 5_000u64;
    for start in (0..rows).step_by(batch as usize) {
        let mut records: Vec<_> = (start..(start + batch).min(rows)).map(record).collect();
        store.insert_usage(&mut records).await.unwrap();
    }
    let load = t.elapsed();
    let month = UsageFilter {
        since: NOW - 30 * DAY,
        until: Some(NOW),
        ..UsageFilter::default()
    };
    let one_key = UsageFilter {
        key_id: Some("key_042".into()),
        ..month.clone()
    };
    let page = |f: LogFilter| LogFilter {
        since: NOW - 30 * DAY,
        limit: 100,
        ..f
    };
    let mut out = vec![
        format!(
            "| {backend}, {rows} rows (loaded in {:.0} s) | median ms |",
            load.as_secs_f64()
        ),
        "| --- | ---: |".to_owned(),
    ];
    let mut line = |what: &str, ms: f64| out.push(format!("| {what} | {ms:.1} |"));
    line(
        "30-day spend of one key (by day)",
        time(5, || store.usage_report(GroupBy::Day, &one_key)).await,
    );
    let one_team = UsageFilter {
        team: Some("team_3".into()),
        ..month.clone()
    };
    line(
        "30-day usage of one team by key (a team admin's report)",
        time(5, || store.usage_report(GroupBy::Key, &one_team)).await,
    );
    for (name, by) in [
        ("key", GroupBy::Key),
        ("team", GroupBy::Team),
        ("model", GroupBy::Model),
        ("tag", GroupBy::Tag),
        ("day", GroupBy::Day),
    ] {
        line(
            &format!("30-day usage by {name}, all keys"),
            time(5, || store.usage_report(by, &month)).await,
        );
    }
    let pages = [
        ("log page, newest 100", LogFilter::default()),
        (
            "log page, one key",
            LogFilter {
                key_id: Some("key_042".into()),
                ..Default::default()
            },
        ),
        (
            "log page, status error",
            LogFilter {
                status: Some("error".into()),
                ..Default::default()
            },
        ),
        (
            "log page, one tag (3 % of rows)",
            LogFilter {
                tag: Some("feature=f7".into()),
                ..Default::default()
            },
        ),
        (
            "log page, a tag no row has",
            LogFilter {
                tag: Some("feature=none".into()),
                ..Default::default()
            },
        ),
        (
            "log page, error text",
            LogFilter {
                error_text: Some("attempt 2".into()),
                ..Default::default()
            },
        ),
        (
            "log page, model and provider",
            LogFilter {
                model: Some("model-7".into()),
                provider: Some("provider_2".into()),
                ..Default::default()
            },
        ),
    ];
    for (what, f) in pages {
        let f = page(f);
        line(what, time(5, || store.logs(&f)).await);
    }
    // Retention: delete the oldest 10 days while one writer inserts a record at a time.
    let writer = {
        let store = store.clone();
        #[expect(
            clippy::disallowed_methods,
            reason = "a benchmark's own writer, not the gateway's"
        )]
        tokio::spawn(async move {
            let mut worst = Duration::ZERO;
            let mut i = rows + 1;
            let end = Instant::now() + Duration::from_secs(3);
            while Instant::now() < end {
                let t = Instant::now();
                store.insert_usage(&mut vec![record(i)]).await.unwrap();
                worst = worst.max(t.elapsed());
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            worst
        })
    };
    let t = Instant::now();
    let deleted = store.purge_before(NOW - 50 * DAY).await.unwrap();
    let purge = t.elapsed();
    let worst = writer.await.unwrap();
    out.push(format!(
        "| retention: {deleted} rows deleted in {:.1} s; slowest concurrent write | {:.1} |",
        purge.as_secs_f64(),
        worst.as_secs_f64() * 1000.0
    ));
    if let Some(path) = size_of {
        let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
        out.push(format!(
            "| file size per row before retention (bytes, indexes included) | {:.0} |",
            bytes as f64 / rows as f64
        ));
        let _ = std::fs::remove_file(&path);
    }
    println!("{}", out.join("\n"));
    if backend == "postgres" {
        store.close().await;
        let admin = sqlx::PgPool::connect(base).await.unwrap();
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&admin)
            .await
            .unwrap();
    }
}
