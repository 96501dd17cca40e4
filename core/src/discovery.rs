//! UDP discovery as a state machine: datagrams and time go in, sightings and
//! beacons to send come out. No sockets, no clock.
//!
//! Time is `now_ms`, a monotonic millisecond count supplied by the caller;
//! the wall clock (milliseconds since the Unix epoch) is passed separately,
//! only to stamp outgoing beacons.
//!
//! # What a sighting means
//!
//! A beacon is only a **hint**: "the holder of this identity key may accept
//! links at this address". It never changes who a peer is and never affects
//! a live authenticated link; the Noise handshake decides who is on the other
//! end. A [`Sighting`] carries the announced keys, the untrusted nickname and
//! `source IP : announced TCP port`.
//!
//! # Receive rules (in this order; cheap checks before cryptography)
//!
//! 1. **Size**: a datagram longer than `MAX_BEACON_LEN` is `TooLarge`.
//! 2. **Per-source rate**: a token bucket per source address
//!    (`per_source_rate_per_s`, `per_source_burst`; IPv4 and IPv4-mapped IPv6
//!    by address, other IPv6 by /64 prefix). Empty bucket: `RateLimited`.
//!    The table holds at most `max_sources` buckets; when full, the oldest
//!    (first inserted) is dropped. A dropped bucket comes back full, so
//!    eviction can only ever be generous to a source, never starve one.
//! 3. **Global rate**: one token bucket for all sources (`global_rate_per_s`,
//!    `global_burst`). Empty: `GlobalRateLimited`. This is the real bound on
//!    signature checks per second, since source addresses can be spoofed.
//! 4. **Structure**: exact decoding, version, limits (`parse_beacon`, no
//!    cryptography). Failure: `Malformed`.
//! 5. **Own**: the identity key is ours (our broadcast looping back, or
//!    another process with our key): `Own`.
//! 6. **Port**: TCP port 0: `ZeroPort`.
//! 7. **Replay**: see below. `Replay`.
//! 8. **Signature** over `"natter/1 beacon" || body` with the announced
//!    identity key (`verify_strict`): `BadSignature`. Then the binding of the
//!    announced Noise key to the identity key: `BadBinding`. The binding
//!    is not verified again when the keys (identity, Noise key, binding
//!    signature) are byte for byte those of the identity's last accepted
//!    beacon: the check is a deterministic function of those bytes, which
//!    passed it then, so it would pass again. Every beacon's own signature
//!    is still verified, and keys that differ in any byte are checked in
//!    full. This halves the cost of the beacons a node hears from every
//!    peer, every 5 s.
//!
//! Only a beacon that passes all eight updates any per-identity state, so
//! forged or garbled beacons cannot poison the replay record. Steps 1–7 cost
//! no public-key operation; [`DiscoveryStats::verify_calls`] counts step 8.
//!
//! # Replay rule
//!
//! Per identity the receiver keeps `(instance, seq, timestamp_ms)` of the
//! last *accepted* beacon. A new beacon from that identity is accepted only if
//!
//! - same `instance`: `seq` > last `seq`;
//! - different `instance`: `timestamp_ms` > last accepted `timestamp_ms`
//!   (a restart has a later clock; a beacon of an older instance, replayed
//!   after the restart, is refused).
//!
//! The rule is per identity, not per address, so a genuine beacon replayed
//! from another source address is refused too. The first beacon of an
//! identity the receiver holds no record of is accepted (after the signature
//! check) whatever its numbers.
//!
//! Limits, stated honestly: the record is dropped when the identity expires
//! (not heard for `expire_after_ms`) or is evicted, so an old genuine beacon
//! can be shown once to a receiver that has no record of that identity. The
//! result is a stale address hint for a peer that is not currently
//! announcing itself; a dial to it fails the handshake. The same forgetting
//! heals the opposite case: a peer whose clock stepped back across a restart
//! is refused as a replay only until its old record expires.
//!
//! # Send schedule
//!
//! - Immediately at start (the first [`Discovery::poll_beacon`]).
//! - Periodically, `interval_ms × (1 ± jitter)` after the previous beacon.
//! - Soon after an identity is first sighted (or sighted again after expiry)
//!   or a known identity restarted: the next beacon is brought forward to
//!   `now + uniform(soon_after_new_peer_ms)`, but never closer than
//!   `min_beacon_gap_ms` after the previous beacon, so a flood of new
//!   identities cannot make us send more than one beacon per gap. The
//!   first such sighting after a beacon sets the time; later ones do not
//!   move it. A beacon the gap holds back goes out
//!   `uniform(0, gap_jitter_ms)` after the gap ends. Nodes that start
//!   together sight each other within milliseconds of their first beacons:
//!   with the earliest of one draw per new identity, clamped to the gap,
//!   all their second beacons went out at the same instant, a burst that
//!   exceeds the receivers' global limit (`global_burst`) on a LAN of more
//!   than about 100 nodes. Spread over 300 ms, the global limit passes
//!   `global_burst + 0.3 s × global_rate_per_s` = 250 of them.
//!
//! Each beacon carries `seq` one higher than the previous (the first is 1).
//!
//! # Memory
//!
//! Every table is capped: `max_sources` rate-limit buckets, `max_tracked`
//! identities (the least recently sighted is evicted; an identity evicted
//! before it expired is reported by the next [`Discovery::expire`]). To be
//! evicted, a peer must have been sighted less recently than every other
//! tracked identity, i.e. `max_tracked - 1` sightings since its own. With the
//! defaults the global limit passes at most `100 + 500/s × 6 s = 3100`
//! beacons in the longest gap between two beacons of a live peer (6 s), so a
//! flood of fresh identities cannot evict a peer whose beacons arrive; one
//! whose beacons are lost during a sustained flood can be.

use crate::identity::{domain, BoundKeys, IdentityKey, LocalIdentity};
use crate::rng::Rng;
use crate::wire::beacon::{encode_beacon, parse_beacon, BeaconBody};
use crate::wire::limits::{MAX_BEACON_LEN, MAX_NICK_LEN, PROTOCOL_VERSION};
use crate::wire::WireError;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// Timing, rate and memory limits of discovery.
#[derive(Clone, Debug, PartialEq)]
pub struct DiscoveryConfig {
    /// Mean time between periodic beacons.
    pub interval_ms: u64,
    /// Periodic beacons are `interval_ms × (1 ± jitter)` apart.
    pub jitter: f64,
    /// After a new identity is sighted, beacon again within this range.
    pub soon_after_new_peer_ms: (u64, u64),
    /// A beacon brought forward by a new sighting is never sent sooner than
    /// this after the previous beacon.
    pub min_beacon_gap_ms: u64,
    /// A beacon that gap holds back goes out within this long after the
    /// gap ends (uniformly), not at its end. Kept below the node's
    /// `higher_dial_delay_ms` less the gap, so that a lower key that
    /// missed a peer's first beacon usually hears the next one before the
    /// higher key starts its own dial.
    pub gap_jitter_ms: u64,
    /// An identity not sighted for this long is expired.
    pub expire_after_ms: u64,
    /// Per-source token bucket refill, beacons per second.
    pub per_source_rate_per_s: f64,
    /// Per-source token bucket size.
    pub per_source_burst: u32,
    /// Global token bucket refill, beacons per second.
    pub global_rate_per_s: f64,
    /// Global token bucket size.
    pub global_burst: u32,
    /// Most per-source buckets kept; the oldest is dropped beyond this.
    pub max_sources: usize,
    /// Most identities tracked; the least recently sighted is evicted.
    pub max_tracked: usize,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        let interval_ms = 5000;
        DiscoveryConfig {
            interval_ms,
            jitter: 0.2,
            soon_after_new_peer_ms: (200, 800),
            min_beacon_gap_ms: 1000,
            gap_jitter_ms: 300,
            expire_after_ms: 3 * interval_ms + 1000,
            per_source_rate_per_s: 20.0,
            per_source_burst: 5,
            global_rate_per_s: 500.0,
            global_burst: 100,
            max_sources: 1024,
            max_tracked: 4096,
        }
    }
}

/// An accepted beacon: where an identity may currently be reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sighting {
    /// Identity key, Noise static key and their (verified) binding.
    pub keys: BoundKeys,
    /// Announced display name. Untrusted: at most `MAX_NICK_LEN` bytes of
    /// UTF-8, otherwise arbitrary.
    pub nickname: String,
    /// Source IP of the datagram with the announced TCP port.
    pub addr: SocketAddr,
    /// The sender's instance id.
    pub instance: u64,
    /// Not tracked before: first sighting, or first after expiry/eviction.
    pub new_identity: bool,
    /// Tracked before, under a different instance: the peer restarted.
    pub restarted: bool,
}

/// Why a datagram was dropped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejected {
    #[error("datagram larger than a beacon can be")]
    TooLarge,
    #[error("source is over its rate limit")]
    RateLimited,
    #[error("over the global beacon rate limit")]
    GlobalRateLimited,
    #[error("malformed beacon: {0}")]
    Malformed(WireError),
    #[error("our own beacon")]
    Own,
    #[error("replayed or out-of-date beacon")]
    Replay,
    #[error("beacon signature does not verify")]
    BadSignature,
    #[error("Noise key is not bound to the identity key")]
    BadBinding,
    #[error("beacon announces TCP port 0")]
    ZeroPort,
}

/// Counters, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoveryStats {
    pub accepted: u64,
    pub too_large: u64,
    pub rate_limited: u64,
    pub global_rate_limited: u64,
    pub malformed: u64,
    pub own: u64,
    pub replay: u64,
    pub bad_signature: u64,
    pub bad_binding: u64,
    pub zero_port: u64,
    /// Beacons that reached signature verification (the expensive step).
    pub verify_calls: u64,
    /// Bindings verified: beacons whose keys differ from their identity's
    /// last accepted ones.
    pub binding_checks: u64,
    pub beacons_sent: u64,
    /// Beacons that could not be encoded (a bug: inputs are kept in limits).
    pub encode_errors: u64,
    /// Identities removed by [`Discovery::expire`] for silence.
    pub expired: u64,
    /// Identities evicted because `max_tracked` was reached.
    pub evicted_identities: u64,
    /// Rate-limit buckets dropped because `max_sources` was reached.
    pub evicted_sources: u64,
}

impl DiscoveryStats {
    fn count(&mut self, r: &Result<Sighting, Rejected>) {
        let c = match r {
            Ok(_) => &mut self.accepted,
            Err(Rejected::TooLarge) => &mut self.too_large,
            Err(Rejected::RateLimited) => &mut self.rate_limited,
            Err(Rejected::GlobalRateLimited) => &mut self.global_rate_limited,
            Err(Rejected::Malformed(_)) => &mut self.malformed,
            Err(Rejected::Own) => &mut self.own,
            Err(Rejected::Replay) => &mut self.replay,
            Err(Rejected::BadSignature) => &mut self.bad_signature,
            Err(Rejected::BadBinding) => &mut self.bad_binding,
            Err(Rejected::ZeroPort) => &mut self.zero_port,
        };
        *c += 1;
    }
}

/// A token bucket: `burst` tokens, refilled at `rate_per_s`.
#[derive(Clone, Debug)]
struct TokenBucket {
    tokens: f64,
    last_ms: u64,
}

impl TokenBucket {
    fn full(burst: u32, now_ms: u64) -> Self {
        TokenBucket {
            tokens: f64::from(burst),
            last_ms: now_ms,
        }
    }

    fn try_take(&mut self, now_ms: u64, rate_per_s: f64, burst: u32) -> bool {
        // A rate that is negative, NaN or infinite counts as no refill.
        let rate = if rate_per_s.is_finite() && rate_per_s > 0.0 {
            rate_per_s
        } else {
            0.0
        };
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        self.tokens = (self.tokens + elapsed as f64 * rate / 1000.0).min(f64::from(burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// The key a source is rate-limited under.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        // One host on an IPv6 LAN commonly owns a whole /64.
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !u128::from(u64::MAX);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
    }
}

/// Per-source buckets, capped, oldest dropped first.
#[derive(Debug, Default)]
struct SourceLimiter {
    buckets: HashMap<IpAddr, TokenBucket>,
    /// Keys in insertion order; always the same set as `buckets`.
    order: VecDeque<IpAddr>,
}

impl SourceLimiter {
    /// Take a token for `ip`. Returns (allowed, buckets evicted).
    fn allow(&mut self, now_ms: u64, ip: IpAddr, cfg: &DiscoveryConfig) -> (bool, u64) {
        let key = source_key(ip);
        let (rate, burst) = (cfg.per_source_rate_per_s, cfg.per_source_burst);
        if let Some(b) = self.buckets.get_mut(&key) {
            return (b.try_take(now_ms, rate, burst), 0);
        }
        let mut evicted = 0;
        while self.buckets.len() >= cfg.max_sources.max(1) {
            match self.order.pop_front() {
                Some(old) => {
                    self.buckets.remove(&old);
                    evicted += 1;
                }
                None => break,
            }
        }
        let mut b = TokenBucket::full(burst, now_ms);
        let ok = b.try_take(now_ms, rate, burst);
        self.buckets.insert(key, b);
        self.order.push_back(key);
        (ok, evicted)
    }
}

/// What we remember of an identity: its last accepted beacon.
#[derive(Clone, Copy, Debug)]
struct Tracked {
    instance: u64,
    seq: u64,
    timestamp_ms: u64,
    last_seen_ms: u64,
    /// The keys of that beacon, binding verified.
    keys: BoundKeys,
}

impl Tracked {
    /// The replay rule (see the module documentation).
    fn admits(&self, body: &BeaconBody) -> bool {
        if body.instance == self.instance {
            body.seq > self.seq
        } else {
            body.timestamp_ms > self.timestamp_ms
        }
    }
}

/// Discovery state of one node.
#[derive(Debug)]
pub struct Discovery {
    config: DiscoveryConfig,
    local: IdentityKey,
    nickname: String,
    tcp_port: u16,
    instance: u64,
    seq: u64,
    rng: Rng,
    /// When the next beacon is due (0 until the first one: immediately).
    next_beacon_ms: u64,
    last_beacon_ms: Option<u64>,
    /// A new or restarted peer already brought the next beacon forward.
    brought_forward: bool,
    /// Latest `now_ms` seen, to report "due now" from `poll_timeout`.
    last_now_ms: u64,
    sources: SourceLimiter,
    global: TokenBucket,
    tracked: HashMap<IdentityKey, Tracked>,
    /// `(last_seen_ms, identity)` for every tracked identity, oldest first.
    by_age: BTreeSet<(u64, IdentityKey)>,
    /// Identities evicted before expiry, reported by the next `expire`.
    evicted: VecDeque<IdentityKey>,
    stats: DiscoveryStats,
}

impl Discovery {
    /// A node that will announce `local` as `nickname`, accepting links on
    /// `tcp_port`. `instance` should be random per process start. A nickname
    /// over `MAX_NICK_LEN` bytes is cut at a character boundary.
    pub fn new(
        config: DiscoveryConfig,
        local: &LocalIdentity,
        nickname: String,
        tcp_port: u16,
        instance: u64,
        rng: Rng,
    ) -> Self {
        let global = TokenBucket::full(config.global_burst, 0);
        Discovery {
            config,
            local: local.identity_key(),
            nickname: clamp_nickname(nickname),
            tcp_port,
            instance,
            seq: 0,
            rng,
            next_beacon_ms: 0,
            last_beacon_ms: None,
            brought_forward: false,
            last_now_ms: 0,
            sources: SourceLimiter::default(),
            global,
            tracked: HashMap::new(),
            by_age: BTreeSet::new(),
            evicted: VecDeque::new(),
            stats: DiscoveryStats::default(),
        }
    }

    /// Change the announced nickname (cut to `MAX_NICK_LEN` bytes at a
    /// character boundary). Takes effect with the next beacon.
    pub fn set_nickname(&mut self, nick: String) {
        self.nickname = clamp_nickname(nick);
    }

    /// Change the announced TCP port. Takes effect with the next beacon.
    pub fn set_tcp_port(&mut self, p: u16) {
        self.tcp_port = p;
    }

    /// A received datagram. See the module documentation for the order of
    /// checks; only the last one costs a signature verification.
    pub fn handle_datagram(
        &mut self,
        now_ms: u64,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<Sighting, Rejected> {
        self.last_now_ms = self.last_now_ms.max(now_ms);
        let result = self.check_and_record(now_ms, from, data);
        self.stats.count(&result);
        result
    }

    fn check_and_record(
        &mut self,
        now_ms: u64,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<Sighting, Rejected> {
        if data.len() > MAX_BEACON_LEN {
            return Err(Rejected::TooLarge);
        }
        let (allowed, evicted) = self.sources.allow(now_ms, from.ip(), &self.config);
        self.stats.evicted_sources += evicted;
        if !allowed {
            return Err(Rejected::RateLimited);
        }
        if !self.global.try_take(
            now_ms,
            self.config.global_rate_per_s,
            self.config.global_burst,
        ) {
            return Err(Rejected::GlobalRateLimited);
        }
        let (body, body_bytes, sig) = parse_beacon(data).map_err(Rejected::Malformed)?;
        let id = body.keys.identity;
        if id == self.local {
            return Err(Rejected::Own);
        }
        if body.tcp_port == 0 {
            return Err(Rejected::ZeroPort);
        }
        let prior = self.tracked.get(&id).copied();
        if prior.is_some_and(|p| !p.admits(&body)) {
            return Err(Rejected::Replay);
        }

        self.stats.verify_calls += 1;
        id.verify(domain::BEACON, body_bytes, &sig)
            .map_err(|_| Rejected::BadSignature)?;
        // The same keys as last time passed this check then (module docs).
        if prior.is_none_or(|p| p.keys != body.keys) {
            self.stats.binding_checks += 1;
            body.keys.verify().map_err(|_| Rejected::BadBinding)?;
        }

        // Accepted: only now does the beacon touch per-identity state.
        let new_identity = prior.is_none();
        let restarted = prior.is_some_and(|p| p.instance != body.instance);
        match prior {
            Some(p) => {
                self.by_age.remove(&(p.last_seen_ms, id));
            }
            None => self.make_room(),
        }
        self.tracked.insert(
            id,
            Tracked {
                instance: body.instance,
                seq: body.seq,
                timestamp_ms: body.timestamp_ms,
                last_seen_ms: now_ms,
                keys: body.keys,
            },
        );
        self.by_age.insert((now_ms, id));
        if new_identity && !self.evicted.is_empty() {
            self.evicted.retain(|k| *k != id);
        }
        if new_identity || restarted {
            self.beacon_soon(now_ms);
        }
        Ok(Sighting {
            keys: body.keys,
            nickname: body.nickname,
            addr: SocketAddr::new(from.ip().to_canonical(), body.tcp_port),
            instance: body.instance,
            new_identity,
            restarted,
        })
    }

    /// Evict least recently sighted identities until one more fits.
    fn make_room(&mut self) {
        while self.tracked.len() >= self.config.max_tracked.max(1) {
            let Some((_, old)) = self.by_age.pop_first() else {
                break;
            };
            self.tracked.remove(&old);
            self.stats.evicted_identities += 1;
            if self.evicted.len() >= self.config.max_tracked.max(1) {
                self.evicted.pop_front();
            }
            self.evicted.push_back(old);
        }
    }

    /// Bring the next beacon forward after a new or restarted peer, once
    /// per beacon.
    fn beacon_soon(&mut self, now_ms: u64) {
        if self.brought_forward {
            return;
        }
        self.brought_forward = true;
        let (lo, hi) = self.config.soon_after_new_peer_ms;
        let mut at = now_ms.saturating_add(self.rng.range_ms(lo, hi));
        if let Some(last) = self.last_beacon_ms {
            let gap_end = last.saturating_add(self.config.min_beacon_gap_ms);
            if at < gap_end {
                // Nodes started together all land here: spread them out.
                let spread = self.rng.range_ms(0, self.config.gap_jitter_ms);
                at = gap_end.saturating_add(spread);
            }
        }
        self.next_beacon_ms = self.next_beacon_ms.min(at);
    }

    /// The signed beacon to send now, if one is due; the caller sends it to
    /// every configured target. `wall_ms` stamps it; `local` signs it and
    /// must be the identity given to [`Discovery::new`].
    pub fn poll_beacon(
        &mut self,
        now_ms: u64,
        wall_ms: u64,
        local: &LocalIdentity,
    ) -> Option<Vec<u8>> {
        debug_assert_eq!(local.identity_key(), self.local, "wrong identity");
        self.last_now_ms = self.last_now_ms.max(now_ms);
        if now_ms < self.next_beacon_ms {
            return None;
        }
        self.seq += 1;
        self.last_beacon_ms = Some(now_ms);
        self.brought_forward = false;
        let period = self
            .rng
            .jitter(self.config.interval_ms, self.config.jitter)
            .max(1);
        self.next_beacon_ms = now_ms.saturating_add(period);
        let body = BeaconBody {
            version: PROTOCOL_VERSION,
            keys: *local.bound_keys(),
            tcp_port: self.tcp_port,
            nickname: self.nickname.clone(),
            instance: self.instance,
            seq: self.seq,
            timestamp_ms: wall_ms,
        };
        match encode_beacon(&body, local) {
            Ok(packet) => {
                self.stats.beacons_sent += 1;
                Some(packet)
            }
            Err(_) => {
                self.stats.encode_errors += 1;
                None
            }
        }
    }

    /// The earliest deadline (in `now_ms` time) at which `poll_beacon` or
    /// `expire` has work. Always `Some`: a beacon is always scheduled.
    pub fn poll_timeout(&self) -> Option<u64> {
        let mut t = self.next_beacon_ms;
        if let Some(&(seen, _)) = self.by_age.first() {
            t = t.min(seen.saturating_add(self.config.expire_after_ms));
        }
        if !self.evicted.is_empty() {
            t = t.min(self.last_now_ms);
        }
        Some(t)
    }

    /// Identities not sighted for `expire_after_ms`, plus any evicted from a
    /// full table since the last call. They are forgotten (replay record
    /// included) and returned; what that means is for the node to decide. A
    /// live link is never affected by this.
    pub fn expire(&mut self, now_ms: u64) -> Vec<IdentityKey> {
        self.last_now_ms = self.last_now_ms.max(now_ms);
        let mut gone: Vec<IdentityKey> = self.evicted.drain(..).collect();
        while let Some(&(seen, id)) = self.by_age.first() {
            if now_ms.saturating_sub(seen) < self.config.expire_after_ms {
                break;
            }
            self.by_age.pop_first();
            self.tracked.remove(&id);
            self.stats.expired += 1;
            gone.push(id);
        }
        gone
    }

    /// Counters per outcome.
    pub fn stats(&self) -> &DiscoveryStats {
        &self.stats
    }

    /// This process's instance id.
    pub fn instance(&self) -> u64 {
        self.instance
    }

    /// Number of identities currently tracked.
    pub fn tracked_len(&self) -> usize {
        self.tracked.len()
    }

    /// Number of per-source rate-limit buckets currently held.
    pub fn source_table_len(&self) -> usize {
        self.sources.buckets.len()
    }
}

/// Cut a nickname to `MAX_NICK_LEN` bytes at a character boundary.
fn clamp_nickname(mut nick: String) -> String {
    if nick.len() > MAX_NICK_LEN {
        let mut cut = MAX_NICK_LEN;
        while !nick.is_char_boundary(cut) {
            cut -= 1;
        }
        nick.truncate(cut);
    }
    nick
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::decode_beacon;
    use std::net::Ipv4Addr;

    const WALL: u64 = 1_700_000_000_000;

    fn ident(n: u8) -> LocalIdentity {
        LocalIdentity::from_secrets([n; 32], [n.wrapping_add(100); 32]).unwrap()
    }

    fn addr(n: u32) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::from(0x0a00_0000 + n), 47474))
    }

    fn node_with(config: DiscoveryConfig, id: &LocalIdentity) -> Discovery {
        Discovery::new(config, id, "bob".into(), 40_000, 77, Rng::new(1))
    }

    fn node(id: &LocalIdentity) -> Discovery {
        node_with(DiscoveryConfig::default(), id)
    }

    fn body(id: &LocalIdentity, instance: u64, seq: u64, ts: u64) -> BeaconBody {
        BeaconBody {
            version: PROTOCOL_VERSION,
            keys: *id.bound_keys(),
            tcp_port: 41_000,
            nickname: "alice".into(),
            instance,
            seq,
            timestamp_ms: ts,
        }
    }

    fn beacon(id: &LocalIdentity, instance: u64, seq: u64, ts: u64) -> Vec<u8> {
        encode_beacon(&body(id, instance, seq, ts), id).unwrap()
    }

    fn generous() -> DiscoveryConfig {
        DiscoveryConfig {
            per_source_burst: 1_000_000,
            global_burst: 1_000_000,
            ..DiscoveryConfig::default()
        }
    }

    // ---- schedule -------------------------------------------------------

    #[test]
    fn first_beacon_is_due_at_start() {
        let bob = ident(2);
        let mut d = node(&bob);
        assert_eq!(d.poll_timeout(), Some(0));
        assert!(d.poll_beacon(0, WALL, &bob).is_some());
        assert!(d.poll_beacon(0, WALL, &bob).is_none());
        let next = d.poll_timeout().unwrap();
        assert!((4000..=6000).contains(&next), "{next}");
    }

    #[test]
    fn periodic_beacons_are_jittered_within_bounds() {
        let bob = ident(2);
        let mut d = node(&bob);
        let mut t = 0;
        assert!(d.poll_beacon(t, WALL, &bob).is_some());
        let mut gaps = std::collections::BTreeSet::new();
        for _ in 0..300 {
            let due = d.poll_timeout().unwrap();
            assert!(d.poll_beacon(due - 1, WALL, &bob).is_none());
            assert!(d.poll_beacon(due, WALL, &bob).is_some());
            let gap = due - t;
            assert!((4000..=6000).contains(&gap), "{gap}");
            gaps.insert(gap);
            t = due;
        }
        assert!(gaps.len() > 100, "periodic beacons are not jittered");
        assert_eq!(d.stats().beacons_sent, 301);
    }

    #[test]
    fn a_new_peer_brings_the_next_beacon_forward() {
        let (alice, bob) = (ident(1), ident(2));
        let mut d = node(&bob);
        assert!(d.poll_beacon(0, WALL, &bob).is_some());
        let periodic = d.poll_timeout().unwrap();
        assert!(periodic >= 4000);

        assert!(
            d.handle_datagram(3000, addr(1), &beacon(&alice, 1, 1, WALL))
                .unwrap()
                .new_identity
        );
        let soon = d.poll_timeout().unwrap();
        assert!((3200..=3800).contains(&soon), "{soon}");
        // Nor does another new identity: one draw per beacon.
        assert!(
            d.handle_datagram(3150, addr(2), &beacon(&ident(3), 1, 1, WALL))
                .unwrap()
                .new_identity
        );
        assert_eq!(d.poll_timeout(), Some(soon));

        // Seeing the same peer again does not move the beacon.
        assert!(
            !d.handle_datagram(3100, addr(1), &beacon(&alice, 1, 2, WALL))
                .unwrap()
                .new_identity
        );
        assert_eq!(d.poll_timeout(), Some(soon));

        assert!(d.poll_beacon(soon - 1, WALL, &bob).is_none());
        assert!(d.poll_beacon(soon, WALL, &bob).is_some());
        let after = d.poll_timeout().unwrap() - soon;
        assert!((4000..=6000).contains(&after), "{after}");
    }

    #[test]
    fn new_peers_cannot_push_beacons_closer_than_the_minimum_gap() {
        let bob = ident(2);
        let mut d = node(&bob);
        assert!(d.poll_beacon(0, WALL, &bob).is_some());
        assert!(d
            .handle_datagram(100, addr(1), &beacon(&ident(1), 1, 1, WALL))
            .is_ok());
        // Within 300 ms after the gap, not all at its end.
        let soon = d.poll_timeout().unwrap();
        assert!((1000..=1300).contains(&soon), "{soon}");
        assert!(d.poll_beacon(soon, WALL, &bob).is_some());
        // A flood of new identities gives at most one beacon per gap.
        let mut sent = 0;
        for i in 0..100u32 {
            let t = soon + u64::from(i) * 10;
            let id = ident(10 + i as u8);
            assert!(d
                .handle_datagram(t, addr(100 + i), &beacon(&id, 1, 1, WALL))
                .is_ok());
            if d.poll_beacon(t, WALL, &bob).is_some() {
                sent += 1;
            }
        }
        assert_eq!(sent, 0, "within 1000 ms of the last beacon");
        let next = d.poll_timeout().unwrap();
        assert!((soon + 1000..=soon + 1300).contains(&next), "{next}");
    }

    #[test]
    fn nodes_started_together_spread_their_second_beacons() {
        let mut second = std::collections::BTreeSet::new();
        for seed in 0..50u64 {
            let bob = ident(2);
            let mut d = Discovery::new(
                DiscoveryConfig::default(),
                &bob,
                "bob".into(),
                40_000,
                77,
                Rng::new(seed),
            );
            assert!(d.poll_beacon(0, WALL, &bob).is_some());
            // Everyone's first beacon arrives a few ms later.
            for k in 0..20u8 {
                let id = ident(10 + k);
                let from = addr(u32::from(k));
                assert!(d.handle_datagram(3, from, &beacon(&id, 1, 1, WALL)).is_ok());
            }
            second.insert(d.poll_timeout().unwrap());
        }
        let (first, last) = (second.first().unwrap(), second.last().unwrap());
        assert!(*first >= 1000 && *last <= 1300, "{first}..{last}");
        assert!(last - first >= 200, "second beacons within {first}..{last}");
        assert!(second.len() > 35, "{} distinct times", second.len());
    }

    #[test]
    fn a_restarted_peer_brings_the_next_beacon_forward() {
        let (alice, bob) = (ident(1), ident(2));
        let mut d = node(&bob);
        assert!(d.poll_beacon(0, WALL, &bob).is_some());
        assert!(d
            .handle_datagram(100, addr(1), &beacon(&alice, 1, 1, WALL))
            .is_ok());
        let sent = d.poll_timeout().unwrap();
        assert!(d.poll_beacon(sent, WALL, &bob).is_some());
        assert!(d.poll_timeout().unwrap() >= sent + 4000);
        let at = sent + 2000;
        let s = d
            .handle_datagram(at, addr(1), &beacon(&alice, 2, 1, WALL + at))
            .unwrap();
        assert!(s.restarted);
        let soon = d.poll_timeout().unwrap();
        assert!((at + 200..=at + 800).contains(&soon), "{soon}");
    }

    #[test]
    fn emitted_beacons_count_up_decode_and_verify() {
        let bob = ident(2);
        let mut d = node(&bob);
        let mut t = 0;
        for expected_seq in 1..=5u64 {
            if expected_seq == 4 {
                d.set_nickname("robert".into());
                d.set_tcp_port(40_001);
            }
            let pkt = d.poll_beacon(t, WALL + t, &bob).unwrap();
            let b = decode_beacon(&pkt).unwrap();
            assert_eq!(b.seq, expected_seq);
            assert_eq!(b.instance, 77);
            assert_eq!(b.keys, *bob.bound_keys());
            assert_eq!(b.timestamp_ms, WALL + t);
            let (nick, port) = if expected_seq < 4 {
                ("bob", 40_000)
            } else {
                ("robert", 40_001)
            };
            assert_eq!((b.nickname.as_str(), b.tcp_port), (nick, port));
            t = d.poll_timeout().unwrap();
        }
    }

    #[test]
    fn long_nicknames_are_cut_at_a_character_boundary() {
        let bob = ident(2);
        let mut d = node(&bob);
        d.set_nickname("é".repeat(40)); // 80 bytes, 2 per character
        let pkt = d.poll_beacon(0, WALL, &bob).unwrap();
        let b = decode_beacon(&pkt).unwrap();
        assert_eq!(b.nickname, "é".repeat(MAX_NICK_LEN / 2));
        let mut d = node(&bob);
        d.set_nickname(format!("a{}", "é".repeat(40))); // cut falls mid-character
        let b = decode_beacon(&d.poll_beacon(0, WALL, &bob).unwrap()).unwrap();
        assert_eq!(b.nickname, format!("a{}", "é".repeat(15)));
        assert_eq!(d.stats().encode_errors, 0);
    }

    // ---- receive --------------------------------------------------------

    #[test]
    fn accepts_a_genuine_beacon() {
        let (alice, bob) = (ident(1), ident(2));
        let mut d = node(&bob);
        let s = d
            .handle_datagram(0, addr(1), &beacon(&alice, 9, 1, WALL))
            .unwrap();
        assert_eq!(s.keys, *alice.bound_keys());
        assert_eq!(s.nickname, "alice");
        assert_eq!(
            s.addr,
            SocketAddr::from((Ipv4Addr::from(0x0a00_0001), 41_000))
        );
        assert_eq!(s.instance, 9);
        assert!(s.new_identity && !s.restarted);
        let s = d
            .handle_datagram(10, addr(1), &beacon(&alice, 9, 2, WALL))
            .unwrap();
        assert!(!s.new_identity && !s.restarted);
        assert_eq!(d.tracked_len(), 1);
        assert_eq!((d.stats().accepted, d.stats().verify_calls), (2, 2));
    }

    #[test]
    fn the_sighting_address_is_the_source_ip_in_canonical_form() {
        let (alice, bob) = (ident(1), ident(2));
        let mut d = node(&bob);
        let mapped: SocketAddr = "[::ffff:10.0.0.1]:5555".parse().unwrap();
        let s = d
            .handle_datagram(0, mapped, &beacon(&alice, 1, 1, WALL))
            .unwrap();
        assert_eq!(s.addr, "10.0.0.1:41000".parse().unwrap());
    }

    #[test]
    fn own_beacons_are_dropped_before_verification() {
        let bob = ident(2);
        let mut d = node(&bob);
        let pkt = d.poll_beacon(0, WALL, &bob).unwrap();
        assert_eq!(d.handle_datagram(1, addr(1), &pkt), Err(Rejected::Own));
        // Also another process using our key, with numbers we never sent.
        let other = encode_beacon(&body(&bob, 5, 99, WALL), &bob).unwrap();
        assert_eq!(d.handle_datagram(1, addr(2), &other), Err(Rejected::Own));
        assert_eq!((d.stats().own, d.stats().verify_calls), (2, 0));
        assert_eq!(d.tracked_len(), 0);
    }

    #[test]
    fn someone_elses_keys_signed_by_another_key_are_rejected() {
        let (alice, bob, mallory) = (ident(1), ident(2), ident(3));
        let mut d = node(&bob);
        // Mallory announces Alice's keys with a high seq, signed by herself.
        let forged = encode_beacon(&body(&alice, 1, 100, WALL), &mallory).unwrap();
        assert_eq!(
            d.handle_datagram(0, addr(3), &forged),
            Err(Rejected::BadSignature)
        );
        assert_eq!(d.tracked_len(), 0);
        // The forgery did not advance Alice's replay record.
        assert!(d
            .handle_datagram(1, addr(1), &beacon(&alice, 1, 1, WALL))
            .is_ok());
        assert_eq!(
            d.handle_datagram(2, addr(3), &forged),
            Err(Rejected::BadSignature)
        );
        assert_eq!(d.stats().bad_signature, 2);
    }

    #[test]
    fn a_noise_key_bound_to_another_identity_is_rejected() {
        let (alice, bob, mallory) = (ident(1), ident(2), ident(3));
        let mut d = node(&bob);
        // Mallory signs the beacon herself but claims Alice's Noise key.
        let mut b = body(&mallory, 1, 1, WALL);
        b.keys.noise = alice.bound_keys().noise;
        let pkt = encode_beacon(&b, &mallory).unwrap();
        assert_eq!(
            d.handle_datagram(0, addr(3), &pkt),
            Err(Rejected::BadBinding)
        );
        assert_eq!(d.tracked_len(), 0);
    }

    #[test]
    fn a_binding_is_verified_again_only_when_the_keys_change() {
        let (alice, bob) = (ident(1), ident(2));
        let mut d = node_with(generous(), &bob);
        for seq in 1..=3 {
            assert!(d
                .handle_datagram(seq, addr(1), &beacon(&alice, 1, seq, WALL))
                .is_ok());
        }
        assert_eq!((d.stats().verify_calls, d.stats().binding_checks), (3, 1));

        // Alice's own signature over a binding that does not verify: the
        // keys differ from the accepted ones, so it is checked, and refused.
        let mut b = body(&alice, 1, 4, WALL);
        b.keys.binding.0[0] ^= 1;
        let pkt = encode_beacon(&b, &alice).unwrap();
        assert_eq!(
            d.handle_datagram(4, addr(1), &pkt),
            Err(Rejected::BadBinding)
        );
        // A new Noise key, properly bound, is checked and accepted.
        let rotated = LocalIdentity::from_secrets([1; 32], [77; 32]).unwrap();
        assert_eq!(rotated.identity_key(), alice.identity_key());
        assert!(d
            .handle_datagram(5, addr(1), &beacon(&rotated, 1, 5, WALL))
            .is_ok());
        assert_eq!(d.stats().binding_checks, 3);
        // And then not again.
        assert!(d
            .handle_datagram(6, addr(1), &beacon(&rotated, 1, 6, WALL))
            .is_ok());
        assert_eq!((d.stats().verify_calls, d.stats().binding_checks), (6, 3));
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let (alice, bob) = (ident(1), ident(2));
        let mut d = node_with(generous(), &bob);
        let pkt = beacon(&alice, 1, 1, WALL);
        for i in 0..pkt.len() * 8 {
            let mut p = pkt.clone();
            p[i / 8] ^= 1 << (i % 8);
            assert!(d.handle_datagram(0, addr(1), &p).is_err(), "bit {i}");
        }
        assert_eq!(d.tracked_len(), 0);
        // Control: the unflipped packet is fine.
        assert!(d.handle_datagram(0, addr(1), &pkt).is_ok());
    }

    #[test]
    fn oversized_garbage_and_port_zero_cost_no_verification() {
        let (alice, bob) = (ident(1), ident(2));
        let mut d = node_with(generous(), &bob);
        let big = vec![0u8; MAX_BEACON_LEN + 1];
        assert_eq!(d.handle_datagram(0, addr(1), &big), Err(Rejected::TooLarge));
        assert!(matches!(
            d.handle_datagram(0, addr(1), &[0u8; 100]),
            Err(Rejected::Malformed(_))
        ));
        assert!(matches!(
            d.handle_datagram(0, addr(1), &[]),
            Err(Rejected::Malformed(_))
        ));
        let mut b = body(&alice, 1, 1, WALL);
        b.tcp_port = 0;
        let pkt = encode_beacon(&b, &alice).unwrap();
        assert_eq!(d.handle_datagram(0, addr(1), &pkt), Err(Rejected::ZeroPort));
        let s = d.stats();
        assert_eq!((s.too_large, s.malformed, s.zero_port), (1, 2, 1));
        assert_eq!(s.verify_calls, 0);
    }

    // ---- replay ---------------------------------------------------------

    #[test]
    fn replays_are_refused_before_verification() {
        let (alice, bob) = (ident(1), ident(2));
        let mut d = node(&bob);
        let p5 = beacon(&alice, 1, 5, WALL);
        assert!(d.handle_datagram(0, addr(1), &p5).is_ok());
        // The same beacon again, from the same and from another address.
        assert_eq!(d.handle_datagram(1, addr(1), &p5), Err(Rejected::Replay));
        assert_eq!(d.handle_datagram(1, addr(9), &p5), Err(Rejected::Replay));
        // An older beacon of the same instance.
        let p4 = beacon(&alice, 1, 4, WALL);
        assert_eq!(d.handle_datagram(2, addr(9), &p4), Err(Rejected::Replay));
        assert_eq!((d.stats().replay, d.stats().verify_calls), (3, 1));
        // The next one is fine.
        assert!(d
            .handle_datagram(3, addr(1), &beacon(&alice, 1, 6, WALL))
            .is_ok());
    }

    #[test]
    fn a_restart_is_accepted_and_the_old_instance_is_then_refused() {
        let (alice, bob) = (ident(1), ident(2));
        let mut d = node(&bob);
        let old = beacon(&alice, 1, 5, WALL);
        assert!(d.handle_datagram(0, addr(1), &old).is_ok());

        // A new instance with an earlier clock is not a believable restart.
        let early = beacon(&alice, 2, 1, WALL - 1);
        assert_eq!(d.handle_datagram(1, addr(1), &early), Err(Rejected::Replay));

        let s = d
            .handle_datagram(2, addr(1), &beacon(&alice, 2, 1, WALL + 10))
            .unwrap();
        assert!(s.restarted && !s.new_identity);
        assert_eq!(s.instance, 2);

        // The old instance's beacons, replayed after the restart.
        assert_eq!(d.handle_datagram(3, addr(1), &old), Err(Rejected::Replay));
        let old_later = beacon(&alice, 1, 6, WALL + 5);
        assert_eq!(
            d.handle_datagram(3, addr(7), &old_later),
            Err(Rejected::Replay)
        );
        // The new instance carries on.
        let s = d
            .handle_datagram(4, addr(1), &beacon(&alice, 2, 2, WALL + 10))
            .unwrap();
        assert!(!s.restarted && !s.new_identity);
    }

    // ---- rate limits ----------------------------------------------------

    #[test]
    fn per_source_burst_then_limited_then_refilled_without_verifying() {
        let (alice, bob) = (ident(1), ident(2));
        let mut d = node(&bob);
        let mut seq = 0;
        let mut send = |d: &mut Discovery, t: u64, from: SocketAddr| {
            seq += 1;
            d.handle_datagram(t, from, &beacon(&alice, 1, seq, WALL))
        };
        for _ in 0..5 {
            assert!(send(&mut d, 0, addr(1)).is_ok());
        }
        for _ in 0..1000 {
            assert_eq!(send(&mut d, 0, addr(1)), Err(Rejected::RateLimited));
        }
        assert_eq!(d.stats().verify_calls, 5);
        assert_eq!(d.stats().rate_limited, 1000);

        // Another source is not affected.
        assert!(send(&mut d, 0, addr(2)).is_ok());

        // 20 per second: one token per 50 ms.
        assert_eq!(send(&mut d, 49, addr(1)), Err(Rejected::RateLimited));
        assert!(send(&mut d, 50, addr(1)).is_ok());
        assert_eq!(send(&mut d, 50, addr(1)), Err(Rejected::RateLimited));

        // A long pause refills to the burst, not beyond.
        for _ in 0..5 {
            assert!(send(&mut d, 60_000, addr(1)).is_ok());
        }
        assert_eq!(send(&mut d, 60_000, addr(1)), Err(Rejected::RateLimited));
        assert_eq!(d.stats().verify_calls, 5 + 1 + 1 + 5);
    }

    #[test]
    fn ipv6_sources_share_a_bucket_per_64_and_mapped_v4_is_v4() {
        let a: IpAddr = "fe80::1".parse().unwrap();
        let b: IpAddr = "fe80::dead:beef:1:2".parse().unwrap();
        let c: IpAddr = "fe80:0:0:1::1".parse().unwrap();
        assert_eq!(source_key(a), source_key(b));
        assert_ne!(source_key(a), source_key(c));
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(source_key(v4), source_key(mapped));
        assert_eq!(source_key(v4), v4);
    }

    #[test]
    fn global_limit_bounds_work_from_many_sources() {
        let (alice, bob) = (ident(1), ident(2));
        let config = DiscoveryConfig {
            global_rate_per_s: 10.0,
            global_burst: 10,
            ..DiscoveryConfig::default()
        };
        let mut d = node_with(config, &bob);
        for i in 1..=10u32 {
            let r = d.handle_datagram(0, addr(i), &beacon(&alice, 1, u64::from(i), WALL));
            assert!(r.is_ok(), "{i}: {r:?}");
        }
        for i in 11..=50u32 {
            let r = d.handle_datagram(0, addr(i), &beacon(&alice, 1, u64::from(i), WALL));
            assert_eq!(r, Err(Rejected::GlobalRateLimited), "{i}");
        }
        assert_eq!(d.stats().verify_calls, 10);
        // 10 per second: one token per 100 ms.
        assert!(d
            .handle_datagram(100, addr(60), &beacon(&alice, 1, 60, WALL))
            .is_ok());
        assert_eq!(
            d.handle_datagram(100, addr(61), &beacon(&alice, 1, 61, WALL)),
            Err(Rejected::GlobalRateLimited)
        );
    }

    #[test]
    fn a_garbage_flood_never_reaches_verification() {
        let bob = ident(2);
        let mut d = node(&bob);
        let mut rng = Rng::new(5);
        for i in 0..20_000u32 {
            let len = rng.below(600) as usize;
            let junk: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            assert!(d.handle_datagram(u64::from(i), addr(i), &junk).is_err());
        }
        assert_eq!(d.stats().verify_calls, 0);
        assert_eq!(d.stats().accepted, 0);
        assert!(d.source_table_len() <= 1024);
    }

    // ---- memory bounds and expiry ---------------------------------------

    #[test]
    fn the_source_table_stays_bounded_and_eviction_never_starves() {
        let (alice, bob) = (ident(1), ident(2));
        let config = DiscoveryConfig {
            max_sources: 16,
            global_burst: 1_000_000,
            ..DiscoveryConfig::default()
        };
        let mut d = node_with(config, &bob);
        // Exhaust source 1.
        for _ in 0..6 {
            let _ = d.handle_datagram(0, addr(1), b"junk");
        }
        assert_eq!(
            d.handle_datagram(0, addr(1), b"junk"),
            Err(Rejected::RateLimited)
        );
        for i in 2..=100u32 {
            let _ = d.handle_datagram(0, addr(i), b"junk");
            assert!(d.source_table_len() <= 16);
        }
        assert_eq!(d.source_table_len(), 16);
        assert_eq!(d.stats().evicted_sources, 100 - 16);
        // Source 1 was evicted and comes back with a full bucket.
        assert!(d
            .handle_datagram(0, addr(1), &beacon(&alice, 1, 1, WALL))
            .is_ok());
    }

    #[test]
    fn the_identity_table_stays_bounded_and_reports_evictions() {
        let bob = ident(2);
        let config = DiscoveryConfig {
            max_tracked: 4,
            ..DiscoveryConfig::default()
        };
        let mut d = node_with(config, &bob);
        let ids: Vec<LocalIdentity> = (10..16).map(ident).collect();
        for (i, id) in ids.iter().enumerate() {
            let t = i as u64 * 100;
            assert!(d
                .handle_datagram(t, addr(i as u32), &beacon(id, 1, 1, WALL))
                .is_ok());
            assert!(d.tracked_len() <= 4);
        }
        assert_eq!(d.tracked_len(), 4);
        assert_eq!(d.stats().evicted_identities, 2);
        // Evictions are due now, well before any expiry.
        assert!(d.poll_timeout().unwrap() <= 500);
        let gone = d.expire(500);
        assert_eq!(gone, vec![ids[0].identity_key(), ids[1].identity_key()]);
        assert!(d.expire(500).is_empty());
        // A refreshed identity is not the one evicted next.
        assert!(d
            .handle_datagram(600, addr(2), &beacon(&ids[2], 1, 2, WALL))
            .is_ok());
        assert!(
            d.handle_datagram(700, addr(0), &beacon(&ids[0], 1, 2, WALL))
                .unwrap()
                .new_identity
        );
        assert_eq!(d.expire(700), vec![ids[3].identity_key()]);
    }

    #[test]
    fn silent_identities_expire_and_come_back_as_new() {
        let (alice, bob, carol) = (ident(1), ident(2), ident(3));
        let mut d = node(&bob);
        assert!(d.poll_beacon(0, WALL, &bob).is_some());
        assert!(d
            .handle_datagram(1000, addr(1), &beacon(&alice, 1, 1, WALL))
            .is_ok());
        assert!(d
            .handle_datagram(3000, addr(3), &beacon(&carol, 1, 1, WALL))
            .is_ok());
        // Driven by poll_timeout, as the node does: each identity goes at
        // exactly last sighting + expire_after_ms (16 s), not before.
        let mut gone = Vec::new();
        let mut t = 3000;
        // Bounded, so a deadline that never clears fails instead of hanging.
        for _ in 0..100 {
            if t >= 25_000 {
                break;
            }
            t = d.poll_timeout().unwrap();
            let _ = d.poll_beacon(t, WALL, &bob);
            gone.extend(d.expire(t).into_iter().map(|id| (t, id)));
        }
        assert!(t >= 25_000, "poll_timeout stopped advancing at {t}");
        assert_eq!(
            gone,
            vec![
                (17_000, alice.identity_key()),
                (19_000, carol.identity_key())
            ]
        );
        assert_eq!(d.tracked_len(), 0);
        assert_eq!(d.stats().expired, 2);
        let s = d
            .handle_datagram(20_000, addr(1), &beacon(&alice, 1, 2, WALL))
            .unwrap();
        assert!(s.new_identity);
    }

    #[test]
    fn poll_timeout_is_the_earliest_of_beacon_and_expiry() {
        let (alice, bob) = (ident(1), ident(2));
        let config = DiscoveryConfig {
            expire_after_ms: 2000,
            ..DiscoveryConfig::default()
        };
        let mut d = node_with(config, &bob);
        assert!(d.poll_beacon(0, WALL, &bob).is_some());
        assert!(d
            .handle_datagram(0, addr(1), &beacon(&alice, 1, 1, WALL))
            .is_ok());
        let soon = d.poll_timeout().unwrap();
        assert!(soon < 2000, "{soon}");
        assert!(d.poll_beacon(soon, WALL, &bob).is_some()); // the "soon" beacon
        assert_eq!(d.poll_timeout(), Some(2000));
        let at = soon + 100;
        assert!(d
            .handle_datagram(at, addr(1), &beacon(&alice, 1, 2, WALL))
            .is_ok());
        assert_eq!(d.poll_timeout(), Some(at + 2000));
    }
}
