//! natter end-to-end benchmark: baselines and natter itself, all
//! measured in the same run over real loopback sockets (127.0.0.1 only), and
//! reported as one table with ratios.
//!
//! Run: `cargo bench --bench e2e` (about four minutes on 2 cores),
//! `NATTER_BENCH_QUICK=1 cargo bench --bench e2e` (about a minute, CI smoke),
//! `cargo bench --bench e2e -- ping` (only groups whose name contains "ping").
//! Without `--bench` (e.g. `cargo test --all-targets`) every group runs once
//! with a tiny budget, to check it still works.
//!
//! Adding a natter row: write a group function like the ones below, list it
//! in [`GROUPS`] after the baselines with `section: "natter"`, and in it call
//! `ctx.report.add(Measurement::new("natter …", value, unit).vs(names::…, Target::…))`.
//! See `e2e/report.rs` and docs/PERFORMANCE.md.

#[path = "e2e/baseline.rs"]
mod baseline;
#[path = "e2e/floor.rs"]
mod floor;
#[path = "e2e/mem.rs"]
mod mem;
#[path = "e2e/natter.rs"]
mod natter_rows;
#[path = "e2e/net.rs"]
mod net;
#[path = "e2e/reference.rs"]
mod reference;
#[path = "e2e/report.rs"]
mod report;
#[path = "e2e/rooms.rs"]
mod rooms;
#[path = "e2e/scale.rs"]
mod scale;
#[path = "e2e/stats.rs"]
mod stats;
#[path = "e2e/sys.rs"]
mod sys;

use std::time::Duration;

use anyhow::Result;
use tokio::runtime::Runtime;

use report::{Measurement, Report, Target};
use stats::{micros, Latency, Runs};

/// Names of the baseline rows; natter rows refer to these in `vs(..)`.
#[allow(
    dead_code,
    reason = "some names are only used by natter rows added later"
)]
pub mod names {
    pub const RAW_TCP_BULK: &str = "raw TCP bulk";
    pub const RAW_TCP_PING_P50: &str = "raw TCP ping-pong 64 B p50";
    pub const RAW_TCP_PING_P99: &str = "raw TCP ping-pong 64 B p99";
    pub const AEAD_SEAL_64: &str = "AEAD seal 64 B";
    pub const AEAD_SEAL_1K: &str = "AEAD seal 1 KiB";
    pub const AEAD_SEAL_16K: &str = "AEAD seal 16 KiB";
    /// 65519 B, the largest Noise plaintext.
    pub const AEAD_SEAL_MAX: &str = "AEAD seal 65519 B";
    pub const AEAD_SEALS_64: &str = "AEAD seal rate 64 B";
    pub const AEAD_SEALS_1K: &str = "AEAD seal rate 1 KiB";
    pub const AEAD_SEALS_16K: &str = "AEAD seal rate 16 KiB";
    pub const AEAD_SEALS_MAX: &str = "AEAD seal rate 65519 B";
    /// The same seals with ring's implementation, which natter's link uses.
    pub const AEAD_SEAL_MAX_RING: &str = "AEAD seal 65519 B, ring";
    pub const AEAD_SEALS_64_RING: &str = "AEAD seal rate 64 B, ring";
    pub const REF_HANDSHAKES_SERIAL: &str = "ref handshakes serial";
    pub const REF_HANDSHAKES_16: &str = "ref handshakes 16 in flight";
    pub const NATTER_HANDSHAKES_SERIAL: &str = "natter handshakes serial";
    pub const NATTER_HANDSHAKES_16: &str = "natter handshakes 16 in flight";
    pub const NATTER_HANDSHAKES_FIRST: &str = "natter handshakes serial, first contact";
    pub const REF_BULK: &str = "ref encrypted bulk";
    /// The reference link with ring's cipher, natter's primitive.
    pub const REF_BULK_RING: &str = "ref encrypted bulk, ring cipher";
    pub const VERIFY_ONE_CORE: &str = "verify_strict, one core";
    pub const VERIFY_ALL_CORES: &str = "verify_strict, all cores";
    pub const SIGN_ONE_CORE: &str = "ed25519 sign, one core";
    /// What sign + verify on the same cores allows (derived, see the note).
    pub const SIGN_VERIFY_BOUND: &str = "sign+verify bound, all cores";
    /// One node taking in posts signed beforehand (`natter_rows::public_intake`).
    pub const NATTER_PUBLIC_INTAKE: &str = "natter public intake, pre-signed";
    pub const REF_ONE_WAY_64: &str = "ref one-way 64 B";
    pub const REF_PING_P50: &str = "ref ping-pong 64 B p50";
    pub const REF_PING_P99: &str = "ref ping-pong 64 B p99";
    pub const REF_PING_P50_RING: &str = "ref ping-pong 64 B p50, ring cipher";
    pub const REF_PING_P99_RING: &str = "ref ping-pong 64 B p99, ring cipher";
    /// The least a verified, written file transfer does (`e2e/floor.rs`).
    pub const FILE_FLOOR: &str = "file transfer floor";
    /// natter rows that baselines are compared with (ratios are computed
    /// when the table is printed, so the order of groups does not matter).
    pub const NATTER_BULK: &str = "natter encrypted bulk";
}

/// How long each measurement runs.
pub struct Budget {
    pub mode: &'static str,
    /// Length of one throughput run (bulk, one-way).
    pub run: Duration,
    /// Throughput runs per figure; the table shows their median.
    pub runs: usize,
    /// Rounds of the rows whose ratio to a reference is a target, measured
    /// in turn with it: their ratio is the median of the rounds' ratios,
    /// and a natter row at 1.0 × its reference moves ±5 % between rounds.
    pub in_turn: usize,
    /// Length of one raw-seal run per size.
    pub seal: Duration,
    /// Length of one handshake run, and a cap on handshakes per run (ports).
    pub handshake: Duration,
    pub handshake_max: u64,
    /// Ping-pong round trips: not recorded, then recorded.
    pub ping_warmup: usize,
    pub ping_rounds: usize,
    /// Chat messages posted end to end.
    pub chat_messages: usize,
    /// Volumes of the direct chat curve (and its raw SQLite baseline).
    pub chat_curve: &'static [usize],
    /// History size for the search figure, and searches timed.
    pub search_history: usize,
    pub search_queries: usize,
    /// Idle peers for the memory figure.
    pub idle_peers: usize,
    /// Peers in the trust store for the latency figure, and messages timed.
    pub stored_peers: usize,
    pub stored_peer_rounds: usize,
    /// Size of the file sent between two whole nodes.
    pub file_bytes: usize,
    /// Members of the fan-out room, and messages posted to it.
    pub room_members: usize,
    pub room_messages: usize,
    /// Nodes of each simulated LAN, and the simulated ms it runs idle
    /// once meshed (longer below 100 nodes, see `e2e/scale.rs`).
    pub scale_nodes: &'static [usize],
    pub scale_steady_ms: u64,
}

impl Budget {
    fn full() -> Budget {
        Budget {
            mode: "full",
            run: Duration::from_millis(1500),
            runs: 5,
            in_turn: 5,
            seal: Duration::from_millis(400),
            handshake: Duration::from_millis(1500),
            handshake_max: 10_000,
            ping_warmup: 2_000,
            ping_rounds: 20_000,
            chat_messages: 50_000,
            chat_curve: &[5_000, 50_000, 500_000],
            search_history: 1_000_000,
            search_queries: 300,
            idle_peers: 300,
            stored_peers: 100_000,
            stored_peer_rounds: 300,
            file_bytes: 1 << 30,
            room_members: 50,
            room_messages: 500,
            scale_nodes: &[25, 50, 100, 200],
            scale_steady_ms: 30_000,
        }
    }

    fn quick() -> Budget {
        Budget {
            mode: "quick",
            run: Duration::from_millis(300),
            runs: 3,
            in_turn: 5,
            seal: Duration::from_millis(100),
            handshake: Duration::from_millis(300),
            handshake_max: 2_000,
            ping_warmup: 500,
            ping_rounds: 5_000,
            chat_messages: 5_000,
            chat_curve: &[5_000, 50_000],
            search_history: 50_000,
            search_queries: 100,
            idle_peers: 50,
            stored_peers: 100_000,
            stored_peer_rounds: 50,
            file_bytes: 256 << 20,
            room_members: 50,
            room_messages: 200,
            scale_nodes: &[25, 50, 100, 200],
            scale_steady_ms: 10_000,
        }
    }

    /// Not run by `cargo bench` (no `--bench` flag): just check it works.
    fn smoke() -> Budget {
        Budget {
            mode: "smoke test",
            run: Duration::from_millis(50),
            runs: 1,
            in_turn: 1,
            seal: Duration::from_millis(20),
            handshake: Duration::from_millis(50),
            handshake_max: 200,
            ping_warmup: 20,
            ping_rounds: 200,
            chat_messages: 200,
            chat_curve: &[200],
            search_history: 2_000,
            search_queries: 20,
            idle_peers: 5,
            stored_peers: 1_000,
            stored_peer_rounds: 10,
            file_bytes: 8 << 20,
            room_members: 10,
            room_messages: 20,
            scale_nodes: &[25, 50],
            scale_steady_ms: 2_000,
        }
    }
}

/// What a group gets: the shared 2-worker runtime, the budget, the table.
pub struct Ctx<'a> {
    pub rt: &'a Runtime,
    pub budget: &'a Budget,
    pub report: &'a mut Report,
    /// natter rows a baseline group measured in turn with its own rows
    /// (`stats::repeat_interleaved`), for their natter group to report.
    pub paired: std::collections::HashMap<String, Paired>,
    /// natter's ping-pong, measured in turn with raw TCP's, and the median
    /// of the rounds' p50 ratios.
    pub paired_latency: Option<(Latency, Option<f64>)>,
}

impl Ctx<'_> {
    /// natter's row `name` as its baseline group measured it in turn, or,
    /// when only the natter group runs, measured now by `alone` (with no
    /// round-by-round ratios then).
    fn paired_or(&mut self, name: &str, alone: impl FnOnce() -> Result<Runs>) -> Result<Paired> {
        match self.paired.remove(name) {
            Some(p) => Ok(p),
            None => Ok(Paired {
                runs: alone()?,
                ratios: Vec::new(),
            }),
        }
    }
}

/// A natter row measured in turn with baseline rows.
pub struct Paired {
    pub runs: Runs,
    /// The row's round-by-round ratio to each baseline measured with it.
    pub ratios: Vec<(String, Option<f64>)>,
}

impl Paired {
    /// The round-by-round ratio to `baseline`; `None` if the two were not
    /// measured together.
    fn ratio(&self, baseline: &str) -> Option<f64> {
        self.ratios
            .iter()
            .find(|(name, _)| name == baseline)
            .and_then(|(_, r)| *r)
    }
}

/// A named set of rows measured together; `section` is the table section its
/// rows are printed under.
pub struct Group {
    pub section: &'static str,
    pub name: &'static str,
    pub run: fn(&mut Ctx) -> Result<()>,
}

const fn baseline(name: &'static str, run: fn(&mut Ctx) -> Result<()>) -> Group {
    Group {
        section: "baseline",
        name,
        run,
    }
}

/// Every measurement group, in run (and table) order. Baselines first. A
/// ratio is worked out when the table is printed, from any row of the same
/// run: the file floor (a baseline) is compared with natter's bulk row.
const GROUPS: &[Group] = &[
    baseline("raw-tcp-bulk", raw_tcp_bulk),
    baseline("raw-tcp-ping-pong", raw_tcp_ping_pong),
    baseline("aead-seal", aead_seal),
    baseline("ed25519-verify", ed25519_verify),
    baseline("ref-handshakes", ref_handshakes),
    baseline("ref-bulk", ref_bulk),
    baseline("ref-one-way", ref_one_way),
    baseline("ref-ping-pong", ref_ping_pong),
    baseline("file-floor", file_floor),
    baseline("sqlite-inserts", sqlite_inserts),
    natter("natter-handshakes", natter_handshakes),
    natter("natter-bulk", natter_bulk),
    natter("natter-one-way", natter_one_way),
    natter("natter-ping-pong", natter_ping_pong),
    natter("natter-node-round-trip", natter_node_round_trip),
    natter("natter-chat", natter_chat),
    natter("natter-chat-curve", natter_chat_curve),
    natter("natter-file", natter_file),
    natter("natter-wan", natter_wan),
    natter("natter-rooms", natter_rooms),
    natter("natter-stored-peers", natter_stored_peers),
    natter("natter-search", natter_search),
    natter("natter-idle-peers", natter_idle_peers),
    natter("natter-scale", natter_scale),
];

const fn natter(name: &'static str, run: fn(&mut Ctx) -> Result<()>) -> Group {
    Group {
        section: "natter",
        name,
        run,
    }
}

fn natter_handshakes(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    for (in_flight, first_contact, name, reference) in [
        (
            1,
            false,
            names::NATTER_HANDSHAKES_SERIAL,
            names::REF_HANDSHAKES_SERIAL,
        ),
        (
            16,
            false,
            names::NATTER_HANDSHAKES_16,
            names::REF_HANDSHAKES_16,
        ),
        (
            1,
            true,
            names::NATTER_HANDSHAKES_FIRST,
            names::REF_HANDSHAKES_SERIAL,
        ),
    ] {
        // Measured in turn with the reference by `ref_handshakes`, unless
        // only this group runs.
        let rt = ctx.rt;
        let paired = ctx.paired_or(name, || {
            stats::repeat(b.runs, || {
                rt.block_on(natter_rows::handshakes(
                    in_flight,
                    b.handshake,
                    b.handshake_max,
                    first_contact,
                ))
            })
        })?;
        let ratio = paired.ratio(reference);
        let spread = paired.runs.describe();
        let m = throughput(name, paired.runs, 1.0, "handshakes/s");
        ctx.report.add(if first_contact {
            m.in_turn(reference, ratio, None)
                .note("as above, but no binding remembered: one verify_strict more per side")
        } else {
            m.in_turn(reference, ratio, Some(Target::AtLeast(0.95)))
                .note(format!(
                    "identity payloads and checks; a binding verified before is remembered; \
                 X25519 by {}; measured in turn with the reference (x25519-dalek), {spread}",
                    x25519_name()
                ))
        });
    }
    Ok(())
}

/// Which X25519 natter's handshake runs here: a machine without the CPU
/// features graviola needs falls back to the reference's x25519-dalek, and
/// its handshake rows then sit near 1.0 ×.
fn x25519_name() -> &'static str {
    match natter_core::x25519::Backend::current() {
        natter_core::x25519::Backend::Graviola => "graviola",
        natter_core::x25519::Backend::Dalek => "x25519-dalek (this CPU lacks what graviola needs)",
    }
}

fn natter_bulk(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    // Measured in turn with the reference by `ref_bulk`, unless only this
    // group runs.
    let rt = ctx.rt;
    let p = ctx.paired_or(names::NATTER_BULK, || {
        stats::repeat(b.runs, || rt.block_on(natter_rows::bulk(b.run)))
    })?;
    let (to_ref, to_ring) = (p.ratio(names::REF_BULK), p.ratio(names::REF_BULK_RING));
    let to_seal = p.ratio(names::AEAD_SEAL_MAX_RING);
    ctx.report.add(
        throughput(names::NATTER_BULK, p.runs, GB, "GB/s")
            .in_turn(names::REF_BULK, to_ref, Some(Target::AtLeast(1.0)))
            // Like for like, on the same cipher: about 1.0 (PERFORMANCE.md,
            // "Bulk against the reference on ring's cipher"); not a target.
            .in_turn(names::REF_BULK_RING, to_ring, None)
            .in_turn(
                names::AEAD_SEAL_MAX_RING,
                to_seal,
                Some(Target::AtLeast(0.6)),
            ),
    );
    Ok(())
}

fn natter_one_way(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    let runs = stats::repeat(b.runs, || ctx.rt.block_on(natter_rows::one_way(64, b.run)))?;
    ctx.report.add(
        throughput("natter one-way 64 B", runs, 1.0, "msgs/s")
            .vs(names::REF_ONE_WAY_64, Target::AtLeast(2.0))
            .note("small frames packed into shared Noise messages"),
    );
    Ok(())
}

fn natter_ping_pong(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    // Measured in turn with raw TCP by `raw_tcp_ping_pong`, unless only
    // this group runs.
    let (l, ratio) = match ctx.paired_latency.take() {
        Some(measured) => measured,
        None => (
            natter_rows::ping_pong(64, b.ping_warmup, b.ping_rounds)?,
            None,
        ),
    };
    let (p50, p99) = latency_rows("natter ping-pong 64 B p50", "natter ping-pong 64 B p99", &l);
    ctx.report.add(
        p50.in_turn(names::RAW_TCP_PING_P50, ratio, Some(Target::AtMost(1.2)))
            .ratio_to(names::REF_PING_P50)
            .ratio_to(names::REF_PING_P50_RING),
    );
    ctx.report.add(
        p99.ratio_to(names::RAW_TCP_PING_P99)
            .ratio_to(names::REF_PING_P99),
    );
    Ok(())
}

fn natter_node_round_trip(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    let l = ctx.rt.block_on(natter_rows::node_round_trip(
        64,
        b.ping_warmup / 4,
        b.ping_rounds / 4,
    ))?;
    let (p50, p99) = latency_rows(
        "natter node round trip 64 B p50",
        "natter node round trip 64 B p99",
        &l,
    );
    ctx.report.add(p50.ratio_to(names::RAW_TCP_PING_P50));
    ctx.report.add(p99.ratio_to(names::RAW_TCP_PING_P99));
    Ok(())
}

fn natter_chat(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    for (direct, name, what) in [
        (true, "natter chat direct stored+acked", "direct"),
        (
            false,
            "natter chat public stored+acked",
            "public (ed25519-signed, verified)",
        ),
    ] {
        let runs = stats::repeat(b.runs.min(3), || {
            ctx.rt.block_on(natter_rows::chat(b.chat_messages, direct))
        })?;
        let m = throughput(name, runs, 1.0, "msgs/s");
        let m = if direct {
            m.goal(Target::AtLeast(50_000.0))
        } else {
            // Both nodes share the machine: the sender signs while the
            // receiver checks, so all cores are not the receiver's alone.
            m.vs(names::VERIFY_ALL_CORES, Target::AtLeast(0.8))
                .ratio_to(names::SIGN_VERIFY_BOUND)
        };
        ctx.report.add(m.note(format!(
            "{} {what} msgs, two nodes, SQLite files, {}",
            b.chat_messages,
            runs.describe()
        )));
    }
    // The receiving side alone: posts signed before the clock starts.
    // Measured in turn with the all-cores verify rate by `ed25519_verify`,
    // unless only this group runs.
    let rt = ctx.rt;
    let p = ctx.paired_or(names::NATTER_PUBLIC_INTAKE, || {
        stats::repeat(b.runs.min(3), || {
            rt.block_on(natter_rows::public_intake(b.chat_messages))
        })
    })?;
    let runs = p.runs;
    ctx.report.add(
        throughput(names::NATTER_PUBLIC_INTAKE, runs, 1.0, "msgs/s")
            .in_turn(
                names::VERIFY_ALL_CORES,
                p.ratio(names::VERIFY_ALL_CORES),
                Some(Target::AtLeast(0.8)),
            )
            .note(format!(
                "{} public msgs signed beforehand by a verified author and written to one node \
                 as fast as it reads; it checks (every core), stores and acks each, {}",
                b.chat_messages,
                runs.describe()
            )),
    );
    Ok(())
}

/// How many messages one SQLite transaction of the raw baseline holds:
/// natter's node handles at most 1024 inputs per batch, one commit each.
const SQLITE_BATCH: usize = 1024;

fn sqlite_row(count: usize) -> String {
    format!("raw SQLite inserts+FTS, {count} msgs")
}

fn chat_curve_row(count: usize) -> String {
    format!("natter chat direct, {count} msgs")
}

fn sqlite_natter_row(count: usize) -> String {
    format!("raw SQLite, natter's rows+acks, {count} msgs")
}

fn sqlite_pipeline_row(count: usize) -> String {
    format!("raw SQLite pipeline, two files, {count} msgs")
}

fn store_sender_row(count: usize) -> String {
    format!("natter store alone, sender's writes, {count} msgs")
}

fn sqlite_inserts(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    let rt = ctx.rt;
    for &count in b.chat_curve {
        // The floor, natter's rows on plain SQLite, natter's store alone,
        // the floor's work as a two-file pipeline and the chat row, in
        // turn: the chat row's ratio to the floor is a target (stashed for
        // `natter_chat_curve`).
        let rounds = if count > 100_000 { 1 } else { b.in_turn };
        let mut floor = || baseline::sqlite_inserts(count, SQLITE_BATCH);
        let mut rows = || baseline::sqlite_natter_rows(count, SQLITE_BATCH);
        let mut store = || natter_rows::store_sender(count, SQLITE_BATCH);
        let mut pipeline = || baseline::sqlite_pipeline(count, SQLITE_BATCH);
        let mut chat = || rt.block_on(natter_rows::chat(count, true));
        let measured = stats::repeat_interleaved(
            rounds,
            &mut [&mut floor, &mut rows, &mut store, &mut pipeline, &mut chat],
        )?;
        let [r, natter_rows_runs, store_runs, pipeline_runs, chat_runs] = measured.summaries()?;
        ctx.report.add(
            throughput(&sqlite_row(count), r, 1.0, "msgs/s").note(format!(
            "rusqlite, one file, WAL, synchronous=FULL, {SQLITE_BATCH} per transaction, FTS5, {}",
            r.describe()
        )),
        );
        ctx.report.add(
            throughput(&sqlite_natter_row(count), natter_rows_runs, 1.0, "msgs/s")
                .in_turn(&sqlite_row(count), measured.paired_ratio(1, 0), None)
                .note(format!(
                    "natter's schema and statements by plain rusqlite: the sender's inserts \
                     (awaiting their ack), {SQLITE_BATCH} per transaction, each batch then acked; \
                     no natter code, {}",
                    natter_rows_runs.describe()
                )),
        );
        ctx.report.add(
            throughput(&sqlite_pipeline_row(count), pipeline_runs, 1.0, "msgs/s")
                .in_turn(&sqlite_row(count), measured.paired_ratio(3, 0), None)
                .note(format!(
                    "the floor's work twice, as two threads on two files: one stores each batch \
                     of {SQLITE_BATCH} (fsynced) and hands it over, the other stores what it was \
                     handed (fsynced) and acks it, the first records the acks; no natter code, \
                     no link: what the chat row could reach, {}",
                    pipeline_runs.describe()
                )),
        );
        let floor_and_rows = |row| {
            vec![
                (sqlite_row(count), measured.paired_ratio(row, 0)),
                (sqlite_natter_row(count), measured.paired_ratio(row, 1)),
            ]
        };
        ctx.paired.insert(
            store_sender_row(count),
            Paired {
                runs: store_runs,
                ratios: floor_and_rows(2),
            },
        );
        let mut ratios = floor_and_rows(4);
        ratios.push((store_sender_row(count), measured.paired_ratio(4, 2)));
        ratios.push((sqlite_pipeline_row(count), measured.paired_ratio(4, 3)));
        ctx.paired.insert(
            chat_curve_row(count),
            Paired {
                runs: chat_runs,
                ratios,
            },
        );
    }
    Ok(())
}

/// The direct chat row at every volume of the curve: does the rate hold as
/// the history and the outbox grow?
fn natter_chat_curve(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    for &count in b.chat_curve {
        let runs = if count > 100_000 { 1 } else { b.runs.min(3) };
        // Measured in turn with the floor by `sqlite_inserts`, unless only
        // this group runs.
        let p = ctx.paired_or(&store_sender_row(count), || {
            stats::repeat(runs, || natter_rows::store_sender(count, SQLITE_BATCH))
        })?;
        let r = p.runs;
        ctx.report.add(
            throughput(&store_sender_row(count), r, 1.0, "msgs/s")
                .in_turn(&sqlite_row(count), p.ratio(&sqlite_row(count)), None)
                .in_turn(
                    &sqlite_natter_row(count),
                    p.ratio(&sqlite_natter_row(count)),
                    None,
                )
                .note(format!(
                    "no node, no link: the sender's inserts with outbox entries, {SQLITE_BATCH} per \
                     transaction, each batch then acked; what the chat row's sender reaches if \
                     storing were all it did, {}",
                    r.describe()
                )),
        );
        let rt = ctx.rt;
        let p = ctx.paired_or(&chat_curve_row(count), || {
            stats::repeat(runs, || rt.block_on(natter_rows::chat(count, true)))
        })?;
        let r = p.runs;
        ctx.report.add(
            throughput(&chat_curve_row(count), r, 1.0, "msgs/s")
                .goal(Target::AtLeast(50_000.0))
                .in_turn(
                    &sqlite_row(count),
                    p.ratio(&sqlite_row(count)),
                    Some(Target::AtLeast(0.5)),
                )
                .in_turn(&store_sender_row(count), p.ratio(&store_sender_row(count)), None)
                .in_turn(
                    &sqlite_pipeline_row(count),
                    p.ratio(&sqlite_pipeline_row(count)),
                    None,
                )
                .note(format!(
                    "stored and acked by two nodes (each stores, the sender also records the ack), {}",
                    r.describe()
                )),
        );
    }
    Ok(())
}

fn natter_rooms(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    let sim = rooms::simulated(b.room_members, b.room_messages)?;
    let real = ctx
        .rt
        .block_on(rooms::loopback(b.room_members, b.room_messages))?;
    for (f, where_) in [(&sim, "simulator"), (&real, "loopback")] {
        let shape = if where_ == "simulator" {
            format!(
                "{} nodes on a random sparse graph ({} links), delivery by relaying; one thread",
                f.members, f.edges
            )
        } else {
            format!(
                "{} whole nodes, SQLite each; one author linked to the rest; until every ack",
                f.members
            )
        };
        ctx.report.add(
            Measurement::new(
                format!("room fan-out to {} members, {where_}", f.members),
                f.rate,
                "msgs/s",
            )
            .note(format!("{} messages; {shape}", f.messages)),
        );
        ctx.report.add(
            Measurement::new(
                format!("room bytes per message per link, {where_}"),
                f.bytes_per_edge,
                "B",
            )
            .note(format!(
                "{:.2} copies per link (at most 2: once each way) × the frame's size and Noise framing",
                f.copies_per_edge
            )),
        );
    }
    Ok(())
}

/// Links beyond the LAN over loopback: a `natter relay` in this process,
/// both endpoints on 127.0.0.1, direct (iroh finds the path at once) and
/// relayed (`relay_only`: every packet through the relay).
fn natter_wan(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    let relay = ctx
        .rt
        .block_on(natter::relay::Relay::spawn(&natter::relay::RelayOptions {
            allow: None,
            client_rate: None,
            listen: "127.0.0.1:0".parse()?,
            tls: None,
        }))?;
    let size = b.file_bytes / 4;
    for (relay_only, kind) in [(false, "direct"), (true, "relayed")] {
        let via = natter_rows::Via::Wan {
            relay: relay.url().to_owned(),
            relay_only,
        };
        let l = ctx.rt.block_on(natter_rows::node_round_trip_via(
            64,
            b.ping_warmup / 4,
            b.ping_rounds / 4,
            &via,
        ))?;
        let (p50, p99) = latency_rows(
            &format!("natter WAN {kind} round trip 64 B p50"),
            &format!("natter WAN {kind} round trip 64 B p99"),
            &l,
        );
        ctx.report
            .add(p50.ratio_to("natter node round trip 64 B p50"));
        ctx.report
            .add(p99.ratio_to("natter node round trip 64 B p99"));
        let f = ctx
            .rt
            .block_on(natter_rows::file_transfer_via(size, false, &via))?;
        ctx.report.add(
            Measurement::new(
                format!("natter WAN {kind} file transfer"),
                f.rate / GB,
                "GB/s",
            )
            .ratio_to("natter file transfer, no chat meanwhile")
            .note(format!(
                "{} MiB over iroh (QUIC) on loopback, the Noise link inside one stream",
                size >> 20
            )),
        );
    }
    ctx.rt.block_on(relay.shutdown());
    Ok(())
}

fn natter_file(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    let f = ctx
        .rt
        .block_on(natter_rows::file_transfer(b.file_bytes, true))?;
    let quiet = ctx
        .rt
        .block_on(natter_rows::file_transfer(b.file_bytes, false))?;
    let mib = b.file_bytes >> 20;
    let cores = |c: Option<f64>| c.map(|c| format!(", {c:.1} cores")).unwrap_or_default();
    ctx.report.add(
        Measurement::new("natter file transfer", f.rate / GB, "GB/s")
            .vs(names::NATTER_BULK, Target::AtLeast(0.9))
            .ratio_to(names::FILE_FLOOR)
            .note(format!(
                "{mib} MiB, two whole nodes, BLAKE3-verified, written and fsynced every 4 MiB, \
                 a chat message every 20 ms{}",
                cores(f.cores)
            )),
    );
    ctx.report.add(
        Measurement::new(
            "natter file transfer, no chat meanwhile",
            quiet.rate / GB,
            "GB/s",
        )
        .ratio_to(names::NATTER_BULK)
        .ratio_to(names::FILE_FLOOR)
        .note(format!(
            "as above without the chat messages (each is a SQLite commit on both node threads){}",
            cores(quiet.cores)
        )),
    );
    ctx.report.add(
        Measurement::new(
            "natter RSS growth during a file transfer",
            f.rss_growth as f64 / (1024.0 * 1024.0),
            "MiB",
        )
        .goal(Target::AtMost(64.0))
        .note(format!("{mib} MiB sent and received in this process")),
    );
    ctx.report.add(
        Measurement::new("natter chat 64 B idle p50", micros(f.chat_idle.p50), "µs").note(format!(
            "direct message to the receiver's event, {} messages, p99 {:.0} µs",
            f.chat_idle.n,
            micros(f.chat_idle.p99)
        )),
    );
    if let Some(during) = f.chat_during {
        ctx.report.add(
            Measurement::new(
                "natter chat 64 B during a file transfer p50",
                micros(during.p50),
                "µs",
            )
            .ratio_to("natter chat 64 B idle p50")
            .note(format!(
                "{} messages while {mib} MiB flow the same way, p99 {:.0} µs",
                during.n,
                micros(during.p99)
            )),
        );
    }
    Ok(())
}

fn natter_stored_peers(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    let l = ctx.rt.block_on(natter_rows::latency_with_stored_peers(
        b.stored_peers,
        b.stored_peer_rounds,
    ))?;
    ctx.report.add(
        Measurement::new(
            "natter message-to-ack latency p50",
            l.p50.as_secs_f64() * 1e3,
            "ms",
        )
        .goal(Target::AtMost(5.0))
        .note(format!(
            "direct, one at a time, with {} stored peers; {} messages, p99 {:.2} ms",
            b.stored_peers,
            l.n,
            l.p99.as_secs_f64() * 1e3
        )),
    );
    Ok(())
}

fn natter_search(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    let (l, build) = natter_rows::search(b.search_history, b.search_queries)?;
    ctx.report.add(
        Measurement::new("natter /search p50", l.p50.as_secs_f64() * 1e3, "ms")
            .goal(Target::AtMost(10.0))
            .note(format!(
                "{} messages (built in {:.1} s), {} queries, p99 {:.2} ms",
                b.search_history,
                build.as_secs_f64(),
                l.n,
                l.p99.as_secs_f64() * 1e3
            )),
    );
    Ok(())
}

fn natter_idle_peers(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    let (per_peer, base) = ctx
        .rt
        .block_on(natter_rows::idle_peer_memory(b.idle_peers))?;
    ctx.report.add(
        Measurement::new("natter memory per idle peer", per_peer / 1024.0, "KiB")
            .goal(Target::AtMost(64.0))
            .note(format!(
                "{} authenticated idle links to a natter process of {:.1} MiB",
                b.idle_peers,
                base as f64 / (1024.0 * 1024.0)
            )),
    );
    Ok(())
}

/// A simulated LAN at each size (`e2e/scale.rs`); rows compare each size
/// with the one before (each twice as large).
fn natter_scale(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    let mut runs = Vec::new();
    scale::warm_up();
    for &n in b.scale_nodes {
        eprintln!("e2e: natter-scale: {n} nodes");
        runs.push(scale::measure(n, b.scale_steady_ms)?);
    }
    for row in scale::rows(&runs) {
        ctx.report.add(row);
    }
    Ok(())
}

const GB: f64 = 1e9;

fn throughput(name: &str, runs: Runs, scale: f64, unit: &'static str) -> Measurement {
    Measurement::new(name, runs.median / scale, unit).note(runs.describe())
}

fn latency_rows(p50: &str, p99: &str, l: &Latency) -> (Measurement, Measurement) {
    let note = format!(
        "{} round trips, min {:.1} max {:.0} µs",
        l.n,
        micros(l.min),
        micros(l.max)
    );
    (
        Measurement::new(p50, micros(l.p50), "µs").note(note.clone()),
        Measurement::new(p99, micros(l.p99), "µs").note(note),
    )
}

fn raw_tcp_bulk(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    let runs = stats::repeat(b.runs, || ctx.rt.block_on(baseline::tcp_bulk(b.run)))?;
    ctx.report.add(
        throughput(names::RAW_TCP_BULK, runs, GB, "GB/s")
            .note(format!("{}, 64 KiB writes", runs.describe())),
    );
    Ok(())
}

/// Raw TCP ping-pong, measured in turn with natter's (its p50 has a target
/// against this one): `in_turn` rounds of each, a share of the round trips
/// in each; the rows summarise all of a row's round trips, and natter's
/// ratio (stashed for `natter_ping_pong`) is the median of the rounds' p50
/// ratios.
fn raw_tcp_ping_pong(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    let per_round = (b.ping_rounds / b.in_turn.max(1)).max(1);
    // Each round keeps its round trips and gives its p50 (µs) to pair.
    let round = |samples: Result<Vec<Duration>>, all: &mut Vec<Duration>| {
        let samples = samples?;
        let p50 = Latency::from_samples(samples.clone()).map(|l| micros(l.p50));
        all.extend(samples);
        p50.ok_or_else(|| anyhow::anyhow!("no ping-pong samples"))
    };
    let (mut raw, mut natter) = (Vec::new(), Vec::new());
    let mut raw_round = || {
        round(
            baseline::tcp_ping_pong_samples(b.ping_warmup, per_round),
            &mut raw,
        )
    };
    let mut natter_round = || {
        round(
            natter_rows::ping_pong_samples(64, b.ping_warmup, per_round),
            &mut natter,
        )
    };
    let measured = stats::repeat_interleaved(b.in_turn, &mut [&mut raw_round, &mut natter_round])?;
    let (Some(raw), Some(natter)) = (Latency::from_samples(raw), Latency::from_samples(natter))
    else {
        anyhow::bail!("no ping-pong samples");
    };
    let (p50, p99) = latency_rows(names::RAW_TCP_PING_P50, names::RAW_TCP_PING_P99, &raw);
    ctx.report.add(p50);
    ctx.report.add(p99);
    ctx.paired_latency = Some((natter, measured.paired_ratio(1, 0)));
    Ok(())
}

/// verify_strict of signed room posts per second ([`baseline::verify_rate`]):
/// on one core, and on every core at once with the work shared as it comes.
fn ed25519_verify(ctx: &mut Ctx) -> Result<()> {
    use natter_core::chat::{open_room_id, sign_room_post, SignedPost};
    let b = ctx.budget;
    let me = natter_core::identity::LocalIdentity::from_secrets([3; 32], [4; 32])?;
    let posts: Vec<SignedPost> = (0..256u32)
        .map(|i| {
            let mut id = [0u8; 16];
            id[..4].copy_from_slice(&i.to_le_bytes());
            let text = format!("message {i} of the chat benchmark");
            SignedPost::Room(Box::new(sign_room_post(
                &me,
                open_room_id("lobby"),
                id,
                1,
                text,
            )))
        })
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runs = stats::repeat(b.runs, || baseline::verify_rate(&posts, 1, b.seal))?;
    ctx.report.add(
        throughput(names::VERIFY_ONE_CORE, runs, 1.0, "verifies/s")
            .note("one thread, 256 room posts by one author, round and round"),
    );
    // All cores, in turn with the public intake row whose target is a
    // ratio to it (stashed for `natter_chat`).
    let rt = ctx.rt;
    let mut verify_all = || baseline::verify_rate(&posts, cores, b.seal);
    let mut intake = || rt.block_on(natter_rows::public_intake(b.chat_messages));
    let measured = stats::repeat_interleaved(b.in_turn, &mut [&mut verify_all, &mut intake])?;
    let [all_runs, intake_runs] = measured.summaries()?;
    ctx.report.add(
        throughput(names::VERIFY_ALL_CORES, all_runs, 1.0, "verifies/s").note(format!(
            "a thread per core, each taking the next {} of the 256 posts until the time is up",
            baseline::VERIFY_CHUNK
        )),
    );
    ctx.paired.insert(
        names::NATTER_PUBLIC_INTAKE.to_string(),
        Paired {
            runs: intake_runs,
            ratios: vec![(
                names::VERIFY_ALL_CORES.to_string(),
                measured.paired_ratio(1, 0),
            )],
        },
    );
    // Signing, the author's share of a public message: when author and
    // receiver share the machine (as in the chat rows), every message costs
    // one sign and one verify of the same cores.
    let runs = stats::repeat(b.runs, || {
        let start = std::time::Instant::now();
        let mut n = 0u32;
        while start.elapsed() < b.seal {
            for _ in 0..64 {
                let mut id = [0u8; 16];
                id[..4].copy_from_slice(&n.to_le_bytes());
                std::hint::black_box(sign_room_post(
                    &me,
                    open_room_id("lobby"),
                    id,
                    1,
                    "message of the chat benchmark".into(),
                ));
                n += 1;
            }
        }
        anyhow::Ok(f64::from(n) / start.elapsed().as_secs_f64())
    })?;
    let sign = runs.median;
    ctx.report.add(
        throughput(names::SIGN_ONE_CORE, runs, 1.0, "signs/s").note("sign_room_post, one thread"),
    );
    let verify = ctx
        .report
        .get(names::VERIFY_ONE_CORE)
        .map_or(f64::NAN, |m| m.value);
    let cores = cores as f64;
    let bound = cores / (1.0 / sign + 1.0 / verify);
    ctx.report.add(
        Measurement::new(names::SIGN_VERIFY_BOUND, bound, "msgs/s")
            .ratio_to(names::VERIFY_ALL_CORES)
            .note(format!(
                "{cores} cores / (1/sign + 1/verify one core): public messages per second if \
                 signing and checking were all the cores did"
            )),
    );
    Ok(())
}

fn aead_seal(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    let named = [
        (names::AEAD_SEAL_64, names::AEAD_SEALS_64),
        (names::AEAD_SEAL_1K, names::AEAD_SEALS_1K),
        (names::AEAD_SEAL_16K, names::AEAD_SEALS_16K),
        (names::AEAD_SEAL_MAX, names::AEAD_SEALS_MAX),
    ];
    let mut rates = Vec::new();
    for (size, (bytes_name, rate_name)) in baseline::SEAL_SIZES.into_iter().zip(named) {
        let runs = stats::repeat(b.runs, || anyhow::Ok(baseline::aead_seal(size, b.seal)))?;
        ctx.report
            .add(throughput(bytes_name, runs, GB / size as f64, "GB/s"));
        rates.push(throughput(rate_name, runs, 1.0, "seals/s"));
    }
    for r in rates {
        ctx.report.add(r);
    }
    let big = baseline::SEAL_SIZES[3];
    let runs = stats::repeat(b.runs, || anyhow::Ok(baseline::aead_seal_ring(big, b.seal)))?;
    ctx.report.add(
        throughput(names::AEAD_SEAL_MAX_RING, runs, GB / big as f64, "GB/s")
            .ratio_to(names::AEAD_SEAL_MAX),
    );
    let runs = stats::repeat(b.runs, || anyhow::Ok(baseline::aead_seal_ring(64, b.seal)))?;
    ctx.report.add(
        throughput(names::AEAD_SEALS_64_RING, runs, 1.0, "seals/s").ratio_to(names::AEAD_SEALS_64),
    );
    Ok(())
}

/// The reference's handshake rows, each measured in turn with the natter
/// rows compared with it (stashed in `ctx.paired` for `natter_handshakes`),
/// so a ratio compares the two links on the same machine state.
fn ref_handshakes(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    let (rt, hs, max) = (ctx.rt, b.handshake, b.handshake_max);
    let reference = |n| move || rt.block_on(reference::handshakes(n, hs, max));
    let natter = |n, first| move || rt.block_on(natter_rows::handshakes(n, hs, max, first));
    let (mut r1, mut n1, mut f1) = (reference(1), natter(1, false), natter(1, true));
    let serial = stats::repeat_interleaved(b.in_turn, &mut [&mut r1, &mut n1, &mut f1])?;
    let (mut r16, mut n16) = (reference(16), natter(16, false));
    let parallel = stats::repeat_interleaved(b.in_turn, &mut [&mut r16, &mut n16])?;
    let [ref_serial, natter_serial, natter_first] = serial.summaries()?;
    let [ref_16, natter_16] = parallel.summaries()?;
    for (name, runs, measured, row, reference) in [
        (
            names::NATTER_HANDSHAKES_SERIAL,
            natter_serial,
            &serial,
            1,
            names::REF_HANDSHAKES_SERIAL,
        ),
        (
            names::NATTER_HANDSHAKES_FIRST,
            natter_first,
            &serial,
            2,
            names::REF_HANDSHAKES_SERIAL,
        ),
        (
            names::NATTER_HANDSHAKES_16,
            natter_16,
            &parallel,
            1,
            names::REF_HANDSHAKES_16,
        ),
    ] {
        let ratios = vec![(reference.to_owned(), measured.paired_ratio(row, 0))];
        ctx.paired.insert(name.to_owned(), Paired { runs, ratios });
    }
    ctx.report.add(throughput(
        names::REF_HANDSHAKES_SERIAL,
        ref_serial,
        1.0,
        "handshakes/s",
    ));
    ctx.report.add(
        throughput(names::REF_HANDSHAKES_16, ref_16, 1.0, "handshakes/s")
            .ratio_to(names::REF_HANDSHAKES_SERIAL),
    );
    Ok(())
}

/// The reference's bulk rows, measured in turn with natter's bulk row
/// (stashed in `ctx.paired` for `natter_bulk`), as the handshake rows are.
fn ref_bulk(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    use reference::Cipher;
    let (rt, run) = (ctx.rt, b.run);
    let mut snow = || rt.block_on(reference::bulk(Cipher::SnowDefault, run));
    let mut ring = || rt.block_on(reference::bulk(Cipher::Ring, run));
    let mut natter = || rt.block_on(natter_rows::bulk(run));
    // natter's bulk row has a target against ring's seal too (round 1's
    // 0.6 ×), so a seal is measured in every round as well (bytes/s); the
    // seal rows of the table are the `aead-seal` group's.
    let big = baseline::SEAL_SIZES[3];
    let mut seal = || anyhow::Ok(baseline::aead_seal_ring(big, b.seal) * big as f64);
    let measured = stats::repeat_interleaved(
        b.in_turn,
        &mut [&mut snow, &mut ring, &mut natter, &mut seal],
    )?;
    let [snow, ring, natter, _seal] = measured.summaries()?;
    let ratios = vec![
        (names::REF_BULK.to_owned(), measured.paired_ratio(2, 0)),
        (names::REF_BULK_RING.to_owned(), measured.paired_ratio(2, 1)),
        (
            names::AEAD_SEAL_MAX_RING.to_owned(),
            measured.paired_ratio(2, 3),
        ),
    ];
    ctx.paired.insert(
        names::NATTER_BULK.to_owned(),
        Paired {
            runs: natter,
            ratios,
        },
    );
    for (runs, name, seal) in [
        (snow, names::REF_BULK, names::AEAD_SEAL_MAX),
        (ring, names::REF_BULK_RING, names::AEAD_SEAL_MAX_RING),
    ] {
        ctx.report.add(
            throughput(name, runs, GB, "GB/s")
                .ratio_to(names::RAW_TCP_BULK)
                .ratio_to(seal),
        );
    }
    Ok(())
}

fn ref_one_way(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    let runs = stats::repeat(b.runs, || ctx.rt.block_on(reference::one_way(64, b.run)))?;
    ctx.report
        .add(throughput(names::REF_ONE_WAY_64, runs, 1.0, "msgs/s").ratio_to(names::AEAD_SEALS_64));
    Ok(())
}

fn ref_ping_pong(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    use reference::Cipher;
    for (cipher, p50_name, p99_name) in [
        (
            Cipher::SnowDefault,
            names::REF_PING_P50,
            names::REF_PING_P99,
        ),
        (
            Cipher::Ring,
            names::REF_PING_P50_RING,
            names::REF_PING_P99_RING,
        ),
    ] {
        let l = reference::ping_pong(cipher, 64, b.ping_warmup, b.ping_rounds)?;
        let (p50, p99) = latency_rows(p50_name, p99_name, &l);
        ctx.report.add(p50.ratio_to(names::RAW_TCP_PING_P50));
        ctx.report.add(p99.ratio_to(names::RAW_TCP_PING_P99));
    }
    Ok(())
}

fn file_floor(ctx: &mut Ctx) -> Result<()> {
    let b = ctx.budget;
    let dir = tempfile::tempdir()?;
    let source = dir.path().join("floor-source.bin");
    natter_rows::write_random_file(&source, floor::SOURCE_BYTES)?;
    let runs = stats::repeat(b.runs, || {
        ctx.rt
            .block_on(floor::file_floor(&source, dir.path(), b.run))
    })?;
    ctx.report.add(
        throughput(names::FILE_FLOOR, runs, GB, "GB/s")
            .ratio_to(names::NATTER_BULK)
            .note(format!(
                "{}; natter link as bulk + pread 48 KiB pieces, BLAKE3, pwrite, fdatasync every 4 MiB",
                runs.describe()
            )),
    );
    Ok(())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let benching = args.iter().any(|a| a == "--bench");
    let filters: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let quick = std::env::var("NATTER_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let budget = match (benching, quick) {
        (false, _) => Budget::smoke(),
        (true, true) => Budget::quick(),
        (true, false) => Budget::full(),
    };

    let load_at_start = sys::load_average();
    let rt = match net::multi_thread_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("e2e: {e:#}");
            std::process::exit(1);
        }
    };
    let mut report = Report::new();
    let mut failed = Vec::new();
    let mut section = "";
    let mut ctx = Ctx {
        rt: &rt,
        budget: &budget,
        report: &mut report,
        paired: std::collections::HashMap::new(),
        paired_latency: None,
    };
    for group in GROUPS {
        if !filters.is_empty() && !filters.iter().any(|f| group.name.contains(f)) {
            continue;
        }
        if group.section != section {
            section = group.section;
            ctx.report.section(section);
        }
        eprintln!("e2e: running {}", group.name);
        if let Err(e) = (group.run)(&mut ctx) {
            eprintln!("e2e: {} failed: {e:#}", group.name);
            failed.push(group.name);
        }
    }

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut header = format!(
        "natter e2e benchmark — {}, {cores} cores, {} mode",
        report::today(),
        budget.mode
    );
    if let Some(cpu) = sys::cpu_model() {
        header.push_str(&format!(", {cpu}"));
    }
    if let Some(load) = load_at_start {
        header.push_str(&format!(", load average {load:.2} at start"));
    }
    print!("{}", report.render(&header));
    if let Some(rss) = mem::resident_bytes() {
        println!(
            "\nprocess resident memory at exit: {:.1} MiB",
            rss as f64 / (1024.0 * 1024.0)
        );
    }
    if !failed.is_empty() {
        eprintln!("e2e: failed groups: {}", failed.join(", "));
        std::process::exit(1);
    }
}
