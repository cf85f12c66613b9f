//! Where the replies of requests sent with an `Idempotency-Key` are kept for their retries
//! (RELIABILITY 4, SPEC §5): this instance's memory, and Redis when `[redis]` is configured,
//! so that every instance sees every key. The stage that uses it is
//! `pipeline::idempotency`; this module only keeps, claims and gives back.
//!
//! A key is one of two things: *claimed* by a request in flight (a retry meanwhile gets
//! 409), or *done*, holding the first reply (or the note that it was too large to keep)
//! until its TTL ends. A claim is taken atomically: under this instance's one lock in
//! memory, and by one Lua script in Redis (`GET`, then `SET ... PX` if absent), so two
//! instances racing on one key get one winner. A claim is given back when its request ends
//! without a reply worth keeping; a claim in Redis whose instance died is given back by its
//! own TTL ([`IN_FLIGHT_TTL`]).
//!
//! Keys are scoped to their caller: the stored id is SHA-256 of the caller's scope (its
//! virtual key's id) and the key, so one tenant's key can never find another's reply, and
//! the key itself is stored nowhere. The request is known by its fingerprint, SHA-256 of its
//! method, path, query and body.
//!
//! # Memory
//! Done keys are kept in a map, and in a queue in the order they were kept. Every key is
//! kept for the same TTL, so that order is also the order they expire in: the front of the
//! queue is the first to go, whether the bytes kept pass `idempotency.memory` or the TTL
//! ends. One lock and a queue do exactly what a cache crate with a byte weigher (moka)
//! would, with an exact bound and a claim that is atomic with the lookup, without a new
//! dependency. In-flight claims are not counted in the bytes (at most one per request in
//! flight, each a few dozen bytes).
//!
//! # Redis down
//! A Redis call that fails marks Redis down (`governance::shared`), and from then on no
//! request waits on it. `idempotency.redis_down` says what then happens: `local` (the
//! default) keeps keys in this instance's memory, so a retry to the same instance is still
//! replayed; `refuse` answers 503, so that a key can never run twice across instances.
//! Every reply kept is kept in memory too, so a retry to the instance that served it is
//! replayed even while Redis is down.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use redis::Script;
use sha2::{Digest, Sha256};

use crate::config::{IdempotencySettings, RedisDown};
use crate::governance::shared::{Shared, SharedError};

/// How long a claim in Redis outlives an instance that died before finishing its request
/// (retries meanwhile get 409). Longer than any reply should take; in memory a claim goes
/// with its request.
pub const IN_FLIGHT_TTL: Duration = Duration::from_secs(15 * 60);

/// Bytes counted for a kept reply besides its body and headers (its map and queue entries).
const ENTRY_OVERHEAD: u64 = 128;

/// A key as scoped to its caller (see the module header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 32]);

impl KeyId {
    pub fn new(scope: &str, key: &str) -> Self {
        let mut h = Sha256::new();
        h.update((scope.len() as u64).to_le_bytes());
        h.update(scope.as_bytes());
        h.update(key.as_bytes());
        Self(h.finalize().into())
    }

    fn hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(64);
        for b in self.0 {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 15)]));
        }
        s
    }
}

/// What a request is, for telling a retry from another request under the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    pub fn new(method: &str, path_and_query: &str, body: &[u8]) -> Self {
        let mut h = Sha256::new();
        for part in [method.as_bytes(), path_and_query.as_bytes()] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part);
        }
        h.update(body);
        Self(h.finalize().into())
    }
}

/// A reply kept for replay: what the first request's client got.
#[derive(Debug, Clone, PartialEq)]
pub struct Kept {
    pub status: u16,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
}

impl Kept {
    /// Its size as kept: body, headers and overhead.
    pub fn weight(&self) -> u64 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len())
            .sum();
        (self.body.len() + headers) as u64 + ENTRY_OVERHEAD
    }
}

/// How a request that held a key ended, for its retries.
#[derive(Debug, Clone, PartialEq)]
pub enum Done {
    Reply(Arc<Kept>),
    /// It completed, but its reply (this many bytes) was larger than
    /// `idempotency.max_reply_bytes`: a retry is refused rather than run again.
    TooLarge(u64),
}

impl Done {
    fn weight(&self) -> u64 {
        match self {
            Done::Reply(k) => k.weight(),
            Done::TooLarge(_) => ENTRY_OVERHEAD,
        }
    }
}

/// What a request with a key finds.
#[derive(Debug)]
pub enum Begin {
    /// The key is new: the request runs, holding the claim.
    Claimed(Claim),
    /// The key is done, for this same request.
    Done(Done),
    /// The key is held by a request still in flight (409).
    InFlight,
    /// The key was used for another request (422).
    Mismatch,
    /// Redis does not answer and `redis_down = "refuse"` (503).
    Unavailable,
}

/// The claims and kept replies of one gateway. Cheap to clone.
#[derive(Clone)]
pub struct Idempotency {
    inner: Arc<Inner>,
}

struct Inner {
    local: Mutex<Local>,
    shared: Option<Arc<Shared>>,
    claim: Script,
    commit: Script,
    release: Script,
}

#[derive(Default)]
struct Local {
    map: HashMap<KeyId, Slot>,
    /// Done keys in the order they were kept (their generation tells a key kept again).
    order: VecDeque<(KeyId, u64)>,
    bytes: u64,
    generation: u64,
}

enum Slot {
    Claimed {
        fp: Fingerprint,
        token: u64,
    },
    Done {
        fp: Fingerprint,
        done: Done,
        /// `crate::mono_ms` when it is forgotten.
        expires: u64,
        weight: u64,
        generation: u64,
    },
}

/// Where a claim was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Local,
    Redis,
}

/// A key claimed by a request in flight. Kept with [`Claim::commit`]; given back with
/// [`Claim::release`] or by being dropped (in Redis, by a tracked task).
#[derive(Debug)]
pub struct Claim {
    store: Option<Idempotency>,
    id: KeyId,
    fp: Fingerprint,
    token: u64,
    place: Place,
}

impl std::fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Idempotency")
    }
}

/// `GET`; if absent, `SET` the claim with its TTL. Returns the value found, or 0.
const CLAIM: &str = r"
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 0
";
/// Replace our own claim with the done record.
const COMMIT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";
/// Delete our own claim.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

impl Idempotency {
    /// Keys in memory, and in `shared` when there is one.
    pub fn new(shared: Option<Arc<Shared>>) -> Self {
        Self {
            inner: Arc::new(Inner {
                local: Mutex::new(Local::default()),
                shared,
                claim: Script::new(CLAIM),
                commit: Script::new(COMMIT),
                release: Script::new(RELEASE),
            }),
        }
    }

    /// Look `id` up for the request `fp`, claiming it if it is new.
    pub async fn begin(&self, id: KeyId, fp: Fingerprint, settings: &IdempotencySettings) -> Begin {
        let token = crate::random_u64();
        // A reply kept here answers at once (and while Redis is down); a claim taken here
        // while Redis was down is still held.
        if let Some(found) = self.local_find(id, fp, false, token) {
            return found;
        }
        if let Some(shared) = &self.inner.shared {
            match self.redis_begin(shared, id, fp, token).await {
                Ok(b) => return b,
                Err(e) => {
                    tracing::debug!(error = %e, "idempotency key not checked in Redis");
                    if settings.redis_down == RedisDown::Refuse {
                        return Begin::Unavailable;
                    }
                }
            }
        }
        self.local_find(id, fp, true, token)
            .unwrap_or(Begin::Unavailable)
    }

    /// The key in memory: what it is, or (with `claim`) a new claim when it is free.
    fn local_find(&self, id: KeyId, fp: Fingerprint, claim: bool, token: u64) -> Option<Begin> {
        let now = crate::mono_ms();
        let mut local = self.lock();
        match local.map.get(&id) {
            Some(Slot::Claimed { fp: f, .. }) => {
                return Some(if *f == fp {
                    Begin::InFlight
                } else {
                    Begin::Mismatch
                });
            }
            Some(Slot::Done {
                fp: f,
                done,
                expires,
                ..
            }) if *expires > now => {
                return Some(if *f == fp {
                    Begin::Done(done.clone())
                } else {
                    Begin::Mismatch
                });
            }
            _ => {}
        }
        if !claim {
            return None;
        }
        local.remove(id);
        local.map.insert(id, Slot::Claimed { fp, token });
        Some(Begin::Claimed(Claim {
            store: Some(self.clone()),
            id,
            fp,
            token,
            place: Place::Local,
        }))
    }

    async fn redis_begin(
        &self,
        shared: &Shared,
        id: KeyId,
        fp: Fingerprint,
        token: u64,
    ) -> Result<Begin, SharedError> {
        let mut inv = self.inner.claim.prepare_invoke();
        inv.key(redis_key(shared, id))
            .arg(claimed_value(fp, token))
            .arg(crate::millis(IN_FLIGHT_TTL));
        let found: redis::Value = shared.invoke(&inv).await?;
        let bytes = match found {
            redis::Value::BulkString(b) => b,
            redis::Value::Int(_) | redis::Value::Nil => {
                return Ok(Begin::Claimed(Claim {
                    store: Some(self.clone()),
                    id,
                    fp,
                    token,
                    place: Place::Redis,
                }));
            }
            other => {
                return Err(SharedError::Redis(format!(
                    "unexpected idempotency reply {other:?}"
                )));
            }
        };
        match decode(&bytes) {
            Some((f, _)) if f != fp => Ok(Begin::Mismatch),
            Some((_, None)) => Ok(Begin::InFlight),
            Some((_, Some(done))) => Ok(Begin::Done(done)),
            None => Err(SharedError::Redis(
                "unreadable idempotency record".to_owned(),
            )),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Local> {
        self.inner
            .local
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes of replies kept in memory (for tests and the docs' figures).
    pub fn memory_bytes(&self) -> u64 {
        self.lock().bytes
    }

    /// Keys in memory, claimed or done.
    pub fn memory_keys(&self) -> usize {
        self.lock().map.len()
    }
}

impl Local {
    /// Forget `id` (whatever it is), counting its bytes out.
    fn remove(&mut self, id: KeyId) {
        if let Some(Slot::Done { weight, .. }) = self.map.remove(&id) {
            self.bytes = self.bytes.saturating_sub(weight);
        }
    }

    /// Keep `done` for `id`, then forget the oldest until the bytes fit `bound` and
    /// what has expired.
    fn keep(&mut self, id: KeyId, fp: Fingerprint, done: Done, ttl: Duration, bound: u64) {
        let now = crate::mono_ms();
        self.remove(id);
        let weight = done.weight();
        self.generation += 1;
        let generation = self.generation;
        self.map.insert(
            id,
            Slot::Done {
                fp,
                done,
                expires: now + crate::millis(ttl),
                weight,
                generation,
            },
        );
        self.order.push_back((id, generation));
        self.bytes += weight;
        while let Some(&(front, g)) = self.order.front() {
            let live = match self.map.get(&front) {
                Some(Slot::Done {
                    generation,
                    expires,
                    ..
                }) if *generation == g => Some(*expires),
                _ => None,
            };
            match live {
                // Kept again or given back since: only its queue entry is left.
                None => {
                    self.order.pop_front();
                }
                Some(expires) if expires <= now || self.bytes > bound => {
                    self.order.pop_front();
                    self.remove(front);
                }
                Some(_) => break,
            }
        }
    }
}

impl Claim {
    /// Keep how the request ended for its retries, for `settings.ttl`.
    pub async fn commit(mut self, done: Done, settings: &IdempotencySettings) {
        let Some(store) = self.store.take() else {
            return;
        };
        store.lock().keep(
            self.id,
            self.fp,
            done.clone(),
            settings.ttl,
            settings.memory,
        );
        if self.place == Place::Redis
            && let Some(shared) = &store.inner.shared
        {
            let mut inv = store.inner.commit.prepare_invoke();
            inv.key(redis_key(shared, self.id))
                .arg(claimed_value(self.fp, self.token))
                .arg(done_value(self.fp, &done))
                .arg(crate::millis(settings.ttl));
            if let Err(e) = shared.invoke::<i64>(&inv).await {
                tracing::warn!(error = %e, "idempotency reply kept in this instance only: Redis did not take it");
            }
        }
    }

    /// Give the key back: the request ended without a reply to keep, and a retry runs anew.
    pub async fn release(mut self) {
        if let Some(store) = self.store.take() {
            release(store, self.id, self.fp, self.token, self.place).await;
        }
    }
}

async fn release(store: Idempotency, id: KeyId, fp: Fingerprint, token: u64, place: Place) {
    {
        let mut local = store.lock();
        if matches!(local.map.get(&id), Some(Slot::Claimed { token: t, .. }) if *t == token) {
            local.map.remove(&id);
        }
    }
    if place == Place::Redis
        && let Some(shared) = &store.inner.shared
    {
        let mut inv = store.inner.release.prepare_invoke();
        inv.key(redis_key(shared, id)).arg(claimed_value(fp, token));
        if let Err(e) = shared.invoke::<i64>(&inv).await {
            tracing::warn!(error = %e, "idempotency claim not given back: Redis lets it go after its TTL");
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        let (id, fp, token, place) = (self.id, self.fp, self.token, self.place);
        if place == Place::Local {
            // No await needed: give it back in place.
            let mut local = store.lock();
            if matches!(local.map.get(&id), Some(Slot::Claimed { token: t, .. }) if *t == token) {
                local.map.remove(&id);
            }
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            crate::tasks::spawn_on(
                crate::tasks::Kind::Idempotency,
                release(store, id, fp, token, place),
                &handle,
            );
        }
    }
}

fn redis_key(shared: &Shared, id: KeyId) -> String {
    shared.key(&format!("idem:{}", id.hex()))
}

/// A claim as kept in Redis: `C`, the fingerprint, the claim's token.
fn claimed_value(fp: Fingerprint, token: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(41);
    v.push(b'C');
    v.extend_from_slice(&fp.0);
    v.extend_from_slice(&token.to_le_bytes());
    v
}

/// A done key as kept in Redis: `D`, the fingerprint, then `R` and the reply (status,
/// headers as length-prefixed names and values, body) or `T` and the size not kept.
fn done_value(fp: Fingerprint, done: &Done) -> Vec<u8> {
    let mut v = Vec::new();
    v.push(b'D');
    v.extend_from_slice(&fp.0);
    match done {
        Done::TooLarge(n) => {
            v.push(b'T');
            v.extend_from_slice(&n.to_be_bytes());
        }
        Done::Reply(k) => {
            v.reserve(k.weight() as usize);
            v.push(b'R');
            v.extend_from_slice(&k.status.to_be_bytes());
            let n = u16::try_from(k.headers.len()).unwrap_or(u16::MAX);
            v.extend_from_slice(&n.to_be_bytes());
            for (name, value) in k.headers.iter().take(usize::from(n)) {
                for part in [name.as_str().as_bytes(), value.as_bytes()] {
                    let len = u32::try_from(part.len()).unwrap_or(0);
                    v.extend_from_slice(&len.to_be_bytes());
                    v.extend_from_slice(&part[..len as usize]);
                }
            }
            v.extend_from_slice(&k.body);
        }
    }
    v
}

/// A value from Redis: its fingerprint, and how the key ended (`None`: still claimed).
fn decode(v: &[u8]) -> Option<(Fingerprint, Option<Done>)> {
    let mut r = Reader(v);
    let tag = r.take(1)?[0];
    let fp = Fingerprint(r.take(32)?.try_into().ok()?);
    match tag {
        b'C' => Some((fp, None)),
        b'D' => {
            let done = match r.take(1)?[0] {
                b'T' => Done::TooLarge(u64::from_be_bytes(r.take(8)?.try_into().ok()?)),
                b'R' => {
                    let status = u16::from_be_bytes(r.take(2)?.try_into().ok()?);
                    let n = u16::from_be_bytes(r.take(2)?.try_into().ok()?);
                    let mut headers = Vec::with_capacity(usize::from(n));
                    for _ in 0..n {
                        let name = HeaderName::from_bytes(r.part()?).ok()?;
                        let value = HeaderValue::from_bytes(r.part()?).ok()?;
                        headers.push((name, value));
                    }
                    Done::Reply(Arc::new(Kept {
                        status,
                        headers,
                        body: Bytes::copy_from_slice(r.0),
                    }))
                }
                _ => return None,
            };
            Some((fp, Some(done)))
        }
        _ => None,
    }
}

/// Reads a value from Redis front to back.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }

    /// A part written with its 4-byte length first.
    fn part(&mut self) -> Option<&'a [u8]> {
        let len = u32::from_be_bytes(self.take(4)?.try_into().ok()?);
        self.take(usize::try_from(len).ok()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(memory: u64) -> IdempotencySettings {
        IdempotencySettings {
            memory,
            ..Default::default()
        }
    }

    fn reply(body: &str) -> Done {
        Done::Reply(Arc::new(Kept {
            status: 200,
            headers: vec![(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body: Bytes::from(body.to_owned()),
        }))
    }

    #[test]
    fn a_done_record_reads_back_as_written() {
        let fp = Fingerprint::new("POST", "/v1/chat/completions", b"{}");
        for done in [reply("{\"a\":1}"), Done::TooLarge(9_999_999)] {
            let v = done_value(fp, &done);
            assert_eq!(decode(&v), Some((fp, Some(done))));
            // A value cut inside its head is unreadable.
            assert_eq!(decode(&v[..20]), None);
        }
        assert_eq!(decode(&claimed_value(fp, 7)), Some((fp, None)));
        assert_eq!(decode(b"X"), None);
    }

    #[test]
    fn keys_are_scoped_to_their_caller() {
        assert_ne!(KeyId::new("key-a", "k1"), KeyId::new("key-b", "k1"));
        // The scope's length is hashed too: ("ab", "c") is not ("a", "bc").
        assert_ne!(KeyId::new("ab", "c"), KeyId::new("a", "bc"));
        assert_eq!(KeyId::new("a", "k"), KeyId::new("a", "k"));
    }

    #[tokio::test]
    async fn a_claim_is_taken_once_and_given_back_when_dropped() {
        let store = Idempotency::new(None);
        let s = IdempotencySettings::default();
        let id = KeyId::new("t", "k");
        let fp = Fingerprint::new("POST", "/p", b"1");
        let Begin::Claimed(claim) = store.begin(id, fp, &s).await else {
            panic!("a new key is claimed")
        };
        assert!(matches!(store.begin(id, fp, &s).await, Begin::InFlight));
        let other = Fingerprint::new("POST", "/p", b"2");
        assert!(matches!(store.begin(id, other, &s).await, Begin::Mismatch));
        drop(claim);
        assert_eq!(store.memory_keys(), 0);
        let Begin::Claimed(claim) = store.begin(id, fp, &s).await else {
            panic!("a key given back is free")
        };
        claim.commit(reply("x"), &s).await;
        assert!(
            matches!(store.begin(id, fp, &s).await, Begin::Done(Done::Reply(k)) if k.body == "x")
        );
        assert!(matches!(store.begin(id, other, &s).await, Begin::Mismatch));
    }

    #[tokio::test]
    async fn memory_keeps_its_bound_by_forgetting_the_oldest() {
        let store = Idempotency::new(None);
        let body = "b".repeat(1000);
        let one = reply(&body).weight();
        // Room for three replies, not four.
        let s = settings(one * 3 + one / 2);
        let fp = Fingerprint::new("POST", "/p", b"1");
        for i in 0..10 {
            let Begin::Claimed(c) = store.begin(KeyId::new("t", &i.to_string()), fp, &s).await
            else {
                panic!("new key")
            };
            c.commit(reply(&body), &s).await;
            assert!(
                store.memory_bytes() <= s.memory,
                "{} > {}",
                store.memory_bytes(),
                s.memory
            );
        }
        assert_eq!(store.memory_keys(), 3);
        // The newest three are the ones left.
        for i in 0..10 {
            let found = store.begin(KeyId::new("t", &i.to_string()), fp, &s).await;
            assert_eq!(
                matches!(found, Begin::Done(_)),
                i >= 7,
                "key {i}: {found:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_kept_reply_expires_after_its_ttl() {
        crate::follow_tokio_clock();
        let store = Idempotency::new(None);
        let s = IdempotencySettings {
            ttl: Duration::from_secs(60),
            ..Default::default()
        };
        let id = KeyId::new("t", "k");
        let fp = Fingerprint::new("POST", "/p", b"1");
        let Begin::Claimed(c) = store.begin(id, fp, &s).await else {
            panic!("new key")
        };
        c.commit(reply("x"), &s).await;
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(matches!(store.begin(id, fp, &s).await, Begin::Done(_)));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(matches!(store.begin(id, fp, &s).await, Begin::Claimed(_)));
    }
}
