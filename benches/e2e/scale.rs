//! natter on a simulated LAN of N nodes (`natter_core::testkit::sim`): no
//! sockets, simulated time, one thread. Every node starts at once (the
//! worst case for discovery) and the mesh forms; after the beacons that new
//! identities brought forward have gone out, the LAN runs idle for a
//! steady window. Per N: simulated time to a full mesh, beacon bytes per
//! node per second in the steady window, CPU per node, memory per node,
//! connections per node. Each row is compared with the same row at the
//! previous N (half as many nodes), so a per-node cost that is linear in N
//! shows about 2× and a constant one about 1×.

use std::time::Instant;

use anyhow::{ensure, Result};
use natter_core::discovery::DiscoveryConfig;
use natter_core::testkit::sim::{NetConfig, Sim, Traffic};

use crate::report::Measurement;
use crate::{mem, sys};

/// Seed of every run: the same LAN each time.
const SEED: u64 = 0x5ca1e;
/// How often the mesh is checked: time to mesh is known to this.
const MESH_STEP_MS: u64 = 50;
/// A LAN that has not meshed by then counts as a failure.
const MESH_LIMIT_MS: u64 = 120_000;

/// Simulated time after the mesh before the steady window: every node has
/// then heard every peer's periodic beacon (at most `interval × (1 +
/// jitter)` apart) and sent the beacon that brought forward (at most
/// `min_beacon_gap + 800 ms` later), so the window sees periodic beacons only.
fn settle_ms() -> u64 {
    let d = DiscoveryConfig::default();
    let periodic = (d.interval_ms as f64 * (1.0 + d.jitter)).ceil() as u64;
    periodic + d.min_beacon_gap_ms + d.soon_after_new_peer_ms.1
}

/// Figures of one LAN.
pub struct ScaleRun {
    pub nodes: usize,
    /// Simulated time from start to full mesh.
    pub mesh_ms: u64,
    /// Traffic of all nodes summed, while the mesh formed and in the
    /// steady window.
    pub formation: Traffic,
    pub steady: Traffic,
    pub steady_ms: u64,
    /// CPU of the simulating thread (nodes and simulator), while the mesh
    /// formed and in the steady window.
    pub formation_cpu_s: Option<f64>,
    pub steady_cpu_s: Option<f64>,
    /// Share of the steady window's wall time spent inside node code.
    pub steady_node_share: f64,
    /// Wall time of the whole run.
    pub wall_s: f64,
    /// Beacons refused for the global rate limit, all nodes, whole run.
    pub global_limited: u64,
    /// Connections dialled plus accepted, all nodes, whole run.
    pub connections: u64,
    /// Resident memory growth with every node up and linked, jemalloc's
    /// free pages purged before each reading.
    pub rss_growth: Option<u64>,
}

impl ScaleRun {
    fn per_node(&self, x: f64) -> f64 {
        x / self.nodes as f64
    }

    fn steady_s(&self) -> f64 {
        self.steady_ms as f64 / 1000.0
    }
}

fn since(a: &Traffic, b: &Traffic) -> Traffic {
    Traffic {
        datagrams_sent: a.datagrams_sent - b.datagrams_sent,
        datagram_bytes_sent: a.datagram_bytes_sent - b.datagram_bytes_sent,
        datagrams_received: a.datagrams_received - b.datagrams_received,
        datagram_bytes_received: a.datagram_bytes_received - b.datagram_bytes_received,
        tcp_bytes_sent: a.tcp_bytes_sent - b.tcp_bytes_sent,
        tcp_bytes_received: a.tcp_bytes_received - b.tcp_bytes_received,
        dials: a.dials - b.dials,
        accepts: a.accepts - b.accepts,
    }
}

fn cpu_since(before: Option<f64>) -> Option<f64> {
    before.zip(sys::thread_cpu_seconds()).map(|(b, a)| a - b)
}

/// Build a LAN of `nodes`, let it mesh and settle, then run it idle for
/// `steady_ms`, or longer below 100 nodes (`steady_ms × 100 / nodes`), so
/// that small LANs also average over many beacons.
pub fn measure(nodes: usize, steady_ms: u64) -> Result<ScaleRun> {
    let rss_before = settled_rss();
    let stretch = (100 / nodes.max(1)).max(1) as u64;
    let steady_ms = steady_ms * stretch;
    let start = Instant::now();

    let cpu = sys::thread_cpu_seconds();
    let mut sim = Sim::new(SEED, NetConfig::default());
    sim.add_nodes(nodes);
    let Some(mesh_ms) = sim.run_until_mesh(MESH_STEP_MS, MESH_LIMIT_MS) else {
        anyhow::bail!("{nodes} nodes: no full mesh after {MESH_LIMIT_MS} ms");
    };
    let formation_cpu_s = cpu_since(cpu);
    let formation = sim.traffic();

    sim.run_for(settle_ms());
    let settled = sim.traffic();
    let (busy, cpu, wall) = (sim.busy(), sys::thread_cpu_seconds(), Instant::now());
    sim.run_for(steady_ms);
    let steady_cpu_s = cpu_since(cpu);
    let steady_node_share = (sim.busy() - busy).as_secs_f64() / wall.elapsed().as_secs_f64();
    ensure!(sim.full_mesh(), "{nodes} nodes: the mesh did not hold");
    let total = sim.traffic();
    let global_limited = sim
        .nodes
        .iter()
        .filter_map(|n| n.node.discovery_stats())
        .map(|s| s.global_rate_limited)
        .sum();

    // The event log is the simulator's record, not the nodes' memory.
    for n in &mut sim.nodes {
        n.events = Vec::new();
    }
    let rss_growth = rss_before
        .zip(settled_rss())
        .map(|(b, a)| a.saturating_sub(b));
    drop(sim);

    Ok(ScaleRun {
        nodes,
        mesh_ms,
        formation,
        steady: since(&total, &settled),
        steady_ms,
        formation_cpu_s,
        steady_cpu_s,
        steady_node_share,
        wall_s: start.elapsed().as_secs_f64(),
        global_limited,
        connections: total.dials + total.accepts,
        rss_growth,
    })
}

/// A small LAN built and dropped before the first measurement: the
/// process keeps some of what it grows by the first time (allocator
/// metadata), which would otherwise count against the first size.
pub fn warm_up() {
    let mut sim = Sim::new(SEED, NetConfig::default());
    sim.add_nodes(10);
    let _ = sim.run_until_mesh(MESH_STEP_MS, MESH_LIMIT_MS);
}

/// Resident memory once jemalloc has given back every free page, so that
/// what was freed a moment ago does not count as held.
fn settled_rss() -> Option<u64> {
    purge_free_pages();
    mem::resident_bytes()
}

#[cfg(not(fuzzing))]
fn purge_free_pages() {
    // MALLCTL_ARENAS_ALL: every arena.
    let name = c"arena.4096.purge";
    // SAFETY: a documented mallctl that takes and returns nothing: null
    // old and new pointers with zero lengths. It only returns free pages
    // to the system; a failure leaves them counted, which errs high.
    let _ = unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
}

#[cfg(fuzzing)]
fn purge_free_pages() {}

/// The table rows for runs at increasing N: each metric for every N, each
/// row compared with the same metric at the previous N.
pub fn rows(runs: &[ScaleRun]) -> Vec<Measurement> {
    type Metric = (
        &'static str,
        &'static str,
        fn(&ScaleRun) -> Option<(f64, String)>,
    );
    let metrics: [Metric; 7] = [
        ("time to full mesh", "s", |r| {
            Some((
                r.mesh_ms as f64 / 1000.0,
                format!(
                    "simulated, all nodes started at once, checked every {MESH_STEP_MS} ms; \
                     {:.1} beacons per node refused by the global limit",
                    r.per_node(r.global_limited as f64)
                ),
            ))
        }),
        ("beacon bytes sent per node per s", "B/s", |r| {
            let forming = r.per_node(r.formation.datagram_bytes_sent as f64)
                / (r.mesh_ms.max(1) as f64 / 1000.0);
            Some((
                r.per_node(r.steady.datagram_bytes_sent as f64) / r.steady_s(),
                format!(
                    "{:.0} s steady window, {:.0} B per beacon; {forming:.0} B/s while forming",
                    r.steady_s(),
                    r.steady.datagram_bytes_sent as f64 / r.steady.datagrams_sent.max(1) as f64,
                ),
            ))
        }),
        ("beacon bytes received per node per s", "B/s", |r| {
            Some((
                r.per_node(r.steady.datagram_bytes_received as f64) / r.steady_s(),
                format!(
                    "{:.1} beacons/s per node, its own included, each signature-checked",
                    r.per_node(r.steady.datagrams_received as f64) / r.steady_s()
                ),
            ))
        }),
        ("CPU per node per simulated s", "ms", |r| {
            let cpu = r.steady_cpu_s?;
            Some((
                r.per_node(cpu) * 1000.0 / r.steady_s(),
                format!(
                    "steady window, simulating thread; {:.0} % of its time in node code",
                    r.steady_node_share * 100.0
                ),
            ))
        }),
        ("CPU per node to form the mesh", "ms", |r| {
            let cpu = r.formation_cpu_s?;
            Some((
                r.per_node(cpu) * 1000.0,
                format!(
                    "simulating thread, start to full mesh; whole run {:.1} s wall",
                    r.wall_s
                ),
            ))
        }),
        ("memory per node", "KiB", |r| {
            let bytes = r.rss_growth? as f64;
            Some((
                r.per_node(bytes) / 1024.0,
                format!(
                    "RSS growth, jemalloc purged, simulator included; {:.1} KiB per link end",
                    r.per_node(bytes) / (r.nodes - 1).max(1) as f64 / 1024.0
                ),
            ))
        }),
        ("connections per node", "conns", |r| {
            Some((
                r.per_node(r.connections as f64),
                format!("dialled + accepted; one per peer is {}", r.nodes - 1),
            ))
        }),
    ];
    let mut rows = Vec::new();
    for (metric, unit, value) in metrics {
        let mut previous: Option<String> = None;
        for r in runs {
            let Some((v, note)) = value(r) else { continue };
            let name = format!("scale {} nodes: {metric}", r.nodes);
            let mut m = Measurement::new(name.clone(), v, unit).note(note);
            if let Some(p) = &previous {
                m = m.ratio_to(p);
            }
            rows.push(m);
            previous = Some(name);
        }
    }
    rows
}
