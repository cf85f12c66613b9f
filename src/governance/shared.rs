//! Counters shared by every instance through Redis (`[redis]`): budget reservations and
//! rate-limit windows, each changed by one Lua script so that a check and its update are
//! atomic across instances.
//!
//! Every call is bounded by `redis.timeout` (200 ms by default). A call that fails or times
//! out marks Redis down; from then on requests do not wait on it at all (budgets answer 503,
//! rate limits use a local share) until the health loop, which pings every second, sees it
//! answer again. The loop also keeps a heartbeat per instance, so each instance knows how
//! many share the limits (the local share of a limit is `limit / instances`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Script, ScriptInvocation};

use crate::config::RedisConfig;

/// How often the health loop pings Redis and renews this instance's heartbeat.
pub const HEALTH_INTERVAL: Duration = Duration::from_secs(1);
/// An instance whose heartbeat is older than this no longer counts.
const INSTANCE_TTL_MS: u64 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("Redis is unreachable")]
    Down,
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis: {0}")]
    Redis(String),
}

pub struct Shared {
    conn: ConnectionManager,
    timeout: Duration,
    prefix: String,
    up: AtomicBool,
    instance: String,
    instances: AtomicU64,
    pub(super) scripts: Scripts,
}

pub(super) struct Scripts {
    pub budget_init: Script,
    pub budget_reserve: Script,
    pub budget_settle: Script,
    pub limit_acquire: Script,
    pub limit_adjust: Script,
}

impl Shared {
    /// A client that connects lazily: a Redis that is down at start leaves the gateway
    /// running degraded (and says so), never half-working.
    pub fn new(cfg: &RedisConfig) -> Result<Arc<Self>, SharedError> {
        let client = redis::Client::open(cfg.url.expose())
            .map_err(|_| SharedError::Redis("invalid redis.url".to_owned()))?;
        let conn_cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(cfg.timeout.max(Duration::from_millis(500))))
            .set_response_timeout(Some(cfg.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, conn_cfg)
            .map_err(|e| SharedError::Redis(e.to_string()))?;
        Ok(Arc::new(Self {
            conn,
            timeout: cfg.timeout,
            prefix: cfg.prefix.clone(),
            up: AtomicBool::new(false),
            instance: uuid::Uuid::new_v4().simple().to_string(),
            instances: AtomicU64::new(1),
            scripts: Scripts {
                budget_init: Script::new(BUDGET_INIT),
                budget_reserve: Script::new(BUDGET_RESERVE),
                budget_settle: Script::new(BUDGET_SETTLE),
                limit_acquire: Script::new(LIMIT_ACQUIRE),
                limit_adjust: Script::new(LIMIT_ADJUST),
            },
        }))
    }

    pub fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// How many instances share the limits (at least 1), as last seen while Redis was up.
    pub fn instances(&self) -> u64 {
        self.instances.load(Ordering::Relaxed).max(1)
    }

    /// Run a script, bounded by the timeout; a failure marks Redis down.
    pub async fn invoke<T: redis::FromRedisValue>(
        &self,
        inv: &ScriptInvocation<'_>,
    ) -> Result<T, SharedError> {
        let mut conn = self.conn.clone();
        self.bounded(Box::pin(inv.invoke_async(&mut conn))).await
    }

    /// Run a plain command, bounded by the timeout; a failure marks Redis down.
    pub async fn cmd<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, SharedError> {
        let mut conn = self.conn.clone();
        self.bounded(Box::pin(cmd.query_async(&mut conn))).await
    }

    /// A Redis call while Redis is up, within the timeout. Callers pass the call boxed, as
    /// `Store::bounded` boxes its own: the connection's state then lives on the heap for the
    /// calls that run rather than inline in every request's future.
    async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, SharedError> {
        if !self.is_up() {
            return Err(SharedError::Down);
        }
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.mark_down(&e.to_string());
                Err(SharedError::Redis(e.to_string()))
            }
            Err(_) => {
                self.mark_down("timed out");
                Err(SharedError::Timeout(self.timeout))
            }
        }
    }

    fn mark_down(&self, why: &str) {
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::error!(
                reason = why,
                "Redis unreachable: budgets refuse requests (503), rate limits use this instance's share until it answers again"
            );
        }
    }

    /// One health check: ping, renew the heartbeat, count live instances.
    pub async fn probe(&self) -> bool {
        let now_ms = crate::unix_now_ms();
        let key = self.key("instances");
        let mut pipe = redis::pipe();
        pipe.cmd("PING")
            .ignore()
            .zadd(&key, &self.instance, now_ms)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&key)
            .arg("-inf")
            .arg(now_ms.saturating_sub(INSTANCE_TTL_MS))
            .ignore()
            .zcard(&key)
            .pexpire(&key, 60_000)
            .ignore();
        let mut conn = self.conn.clone();
        let r: Result<Result<(u64,), _>, _> =
            tokio::time::timeout(self.timeout, pipe.query_async(&mut conn)).await;
        match r {
            Ok(Ok((n,))) => {
                self.instances.store(n.max(1), Ordering::Relaxed);
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!(instances = n, "Redis reachable: limits are shared");
                }
                true
            }
            Ok(Err(e)) => {
                self.mark_down(&e.to_string());
                false
            }
            Err(_) => {
                self.mark_down("timed out");
                false
            }
        }
    }

    /// Ping every [`HEALTH_INTERVAL`] until the process ends.
    pub fn spawn_health(self: &Arc<Self>) {
        let me = Arc::clone(self);
        #[expect(
            clippy::disallowed_methods,
            reason = "a health check for the process's life; a cut probe loses nothing"
        )]
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEALTH_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                me.probe().await;
            }
        });
    }
}

/// Start a budget counter from the store's spend for its period, once: `KEYS[1]` the
/// counter hash; `ARGV` the spend, the expiry (Unix seconds).
const BUDGET_INIT: &str = r"
if redis.call('HSETNX', KEYS[1], 'init', 1) == 1 then
  redis.call('HINCRBY', KEYS[1], 'spent', ARGV[1])
  redis.call('HSETNX', KEYS[1], 'reserved', 0)
  redis.call('EXPIREAT', KEYS[1], ARGV[2])
end
return 1
";

/// Reserve on every counter or none. `KEYS`: per counter, its hash and its lease set.
/// `ARGV`: now, request id, lease end, then per counter: limit, amount, expiry.
/// Returns `{-1, i}` when counter i was never started, `{0, i}` when counter i is spent,
/// `{1, 0}` when reserved. Leases that ended (their instance died) are released first.
const BUDGET_RESERVE: &str = r"
local now = tonumber(ARGV[1])
local id = ARGV[2]
local n = #KEYS / 2
for i = 1, n do
  if redis.call('HEXISTS', KEYS[2*i-1], 'init') == 0 then return {-1, i} end
end
local exhausted = 0
for i = 1, n do
  local h, l = KEYS[2*i-1], KEYS[2*i]
  local dead = redis.call('ZRANGEBYSCORE', l, '-inf', '(' .. now)
  for _, rid in ipairs(dead) do
    local amt = tonumber(redis.call('HGET', h, 'r:' .. rid) or '0')
    redis.call('HINCRBY', h, 'reserved', -amt)
    redis.call('HDEL', h, 'r:' .. rid)
    redis.call('ZREM', l, rid)
  end
  local spent = tonumber(redis.call('HGET', h, 'spent') or '0')
  local reserved = tonumber(redis.call('HGET', h, 'reserved') or '0')
  if exhausted == 0 and spent + reserved >= tonumber(ARGV[3 + 3*(i-1) + 1]) then exhausted = i end
end
if exhausted > 0 then return {0, exhausted} end
for i = 1, n do
  local h, l = KEYS[2*i-1], KEYS[2*i]
  local amount = ARGV[3 + 3*(i-1) + 2]
  local exp = ARGV[3 + 3*(i-1) + 3]
  redis.call('HINCRBY', h, 'reserved', amount)
  redis.call('HSET', h, 'r:' .. id, amount)
  redis.call('ZADD', l, ARGV[3], id)
  redis.call('EXPIREAT', h, exp)
  redis.call('EXPIREAT', l, exp)
end
return {1, 0}
";

/// Swap a reservation for the actual amount. `KEYS`: per counter, hash and lease set.
/// `ARGV`: request id, then per counter: actual, expiry. Returns each counter's spend.
const BUDGET_SETTLE: &str = r"
local id = ARGV[1]
local n = #KEYS / 2
local out = {}
for i = 1, n do
  local h, l = KEYS[2*i-1], KEYS[2*i]
  local amt = redis.call('HGET', h, 'r:' .. id)
  if amt then
    redis.call('HINCRBY', h, 'reserved', -tonumber(amt))
    redis.call('HDEL', h, 'r:' .. id)
    redis.call('ZREM', l, id)
  end
  out[i] = redis.call('HINCRBY', h, 'spent', ARGV[1 + 2*(i-1) + 1])
  redis.call('EXPIREAT', h, ARGV[1 + 2*(i-1) + 2])
end
return out
";

/// Check every rate limit, then count the request in all of them, or in none.
/// `KEYS`: two per check: a window check's current and previous minute counters, a
/// concurrency check's lease set (twice). `ARGV`: now (ms), request id, lease end (ms), then
/// per check: kind (`w` or `c`), limit, cost. Returns `{0, left...}` (what each check has
/// left) when admitted, otherwise
/// `{i, previous, current}` for the first check that refused.
const LIMIT_ACQUIRE: &str = r"
local now = tonumber(ARGV[1])
local id = ARGV[2]
local n = #KEYS / 2
local f = (now % 60000) / 60000
local out = {0}
for i = 1, n do
  local kind = ARGV[3 + 3*(i-1) + 1]
  local limit = tonumber(ARGV[3 + 3*(i-1) + 2])
  local cost = tonumber(ARGV[3 + 3*(i-1) + 3])
  if kind == 'w' then
    local cur = tonumber(redis.call('GET', KEYS[2*i-1]) or '0')
    local prev = tonumber(redis.call('GET', KEYS[2*i]) or '0')
    local est = prev * (1 - f) + cur + cost
    if est > limit then return {i, prev, cur} end
    out[i + 1] = math.floor(limit - est)
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[2*i-1], '-inf', now)
    local c = redis.call('ZCARD', KEYS[2*i-1])
    if c + 1 > limit then return {i, c, 0} end
    out[i + 1] = limit - c - 1
  end
end
for i = 1, n do
  local kind = ARGV[3 + 3*(i-1) + 1]
  if kind == 'w' then
    redis.call('INCRBY', KEYS[2*i-1], ARGV[3 + 3*(i-1) + 3])
    redis.call('PEXPIRE', KEYS[2*i-1], 120000)
  else
    redis.call('ZADD', KEYS[2*i-1], ARGV[3], id)
    redis.call('PEXPIREAT', KEYS[2*i-1], ARGV[3])
  end
end
return out
";

/// Undo or correct what an admitted request counted. `KEYS`: per adjustment, a window
/// counter or a lease set. `ARGV`: request id, then per key: kind (`w` or `c`), delta.
const LIMIT_ADJUST: &str = r"
local id = ARGV[1]
for i = 1, #KEYS do
  local kind = ARGV[1 + 2*(i-1) + 1]
  if kind == 'w' then
    if redis.call('EXISTS', KEYS[i]) == 1 then
      redis.call('INCRBY', KEYS[i], ARGV[1 + 2*(i-1) + 2])
    end
  else
    redis.call('ZREM', KEYS[i], id)
  end
end
return 1
";
