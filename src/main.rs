//! The `natter` binary: argument parsing and wiring. Errors stop here as
//! anyhow reports; the library below uses typed errors.
#![forbid(unsafe_code)]

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use natter::keyfile;
use natter::shell as net;
use natter::store::Store;
use natter::ui::{headless, interactive, sanitize::sanitize_nick};
use natter_core::discovery::DiscoveryConfig;
use natter_core::event::Event;
use natter_core::node::{Command, Node, NodeConfig};
use natter_core::rng::Rng;
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;

/// Secure peer-to-peer messenger for local networks.
///
/// With no subcommand natter starts a node: it announces itself with signed
/// UDP beacons, connects to every peer it finds over Noise-encrypted TCP
/// links, and reads commands (type /help) from the terminal. When standard
/// input is not a terminal it reads the same commands one per line and
/// prints one line per event (one JSON object per line with --json).
#[derive(Parser, Debug)]
#[command(name = "natter", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Sub>,

    /// Directory holding the identity key, history and settings.
    /// Default: the platform's data directory (e.g. ~/.local/share/natter).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Nickname shown to peers (at most 32 bytes).
    #[arg(long, value_name = "NAME")]
    nick: Option<String>,

    /// TCP address to accept links on. If the default port is taken the
    /// system picks a free port (several natter processes on one host).
    #[arg(long, value_name = "ADDR", default_value_t = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), net::DEFAULT_LISTEN_PORT))]
    listen: SocketAddr,

    /// Where to send discovery beacons (repeatable). Default: the broadcast
    /// address of every up IPv4 interface. Use 127.255.255.255 to discover
    /// only processes on this host.
    #[arg(long = "beacon-addr", value_name = "IP")]
    beacon_addr: Vec<IpAddr>,

    /// UDP port of discovery beacons, for sending and receiving.
    #[arg(long, value_name = "PORT", default_value_t = net::DEFAULT_BEACON_PORT)]
    beacon_port: u16,

    /// Do not send or listen for beacons; connect only with --connect or
    /// /connect.
    #[arg(long)]
    no_discovery: bool,

    /// Dial this peer at start and keep retrying until it answers
    /// (repeatable).
    #[arg(long = "connect", value_name = "HOST:PORT")]
    connect: Vec<String>,

    /// In line mode, print events as JSON objects, one per line.
    #[arg(long)]
    json: bool,

    /// Where received files are saved. Default: your download directory,
    /// else <data-dir>/downloads.
    #[arg(long, value_name = "DIR")]
    download_dir: Option<PathBuf>,

    /// Refuse offered files larger than this many bytes (suffixes K, M, G,
    /// T: powers of 1024).
    #[arg(long, value_name = "SIZE", default_value = "16G", value_parser = parse_size)]
    max_file_size: u64,

    /// Accept files offered by verified contacts without asking (never by
    /// unverified keys).
    #[arg(long)]
    auto_accept_verified: bool,

    /// Do not ring the terminal bell for private messages and messages
    /// that name you.
    #[arg(long)]
    no_bell: bool,

    /// Reach contacts beyond the LAN through iroh (relays, hole punching):
    /// /ticket, /connect <ticket>. Off unless this or the /wan setting
    /// turns it on.
    #[arg(long, conflicts_with = "no_wan")]
    wan: bool,

    /// Keep links beyond the LAN off for this run, whatever /wan saved.
    #[arg(long)]
    no_wan: bool,

    /// With --wan: the iroh relay to use (http:// or https://), e.g. one
    /// you run with `natter relay`. Default: iroh's public relays (n0).
    #[arg(long, value_name = "URL")]
    relay: Option<String>,

    /// With --wan: also trust the CA certificates in this PEM file for the
    /// relay's HTTPS (a relay whose certificate comes from a private CA).
    #[arg(long, value_name = "FILE")]
    relay_ca: Option<PathBuf>,

    /// With --wan: send every packet through the relay, never directly:
    /// peers do not learn your addresses (the relay still does).
    #[arg(long, conflicts_with = "wan_bind")]
    relay_only: bool,

    /// With --wan: bind the iroh endpoint's UDP socket to this address
    /// (port 0: any) instead of every interface.
    #[arg(long, value_name = "ADDR")]
    wan_bind: Option<SocketAddr>,

    /// Milliseconds between discovery beacons.
    #[arg(long, hide = true, default_value_t = 5_000)]
    beacon_interval_ms: u64,

    /// Milliseconds of silence before a keepalive ping.
    #[arg(long, hide = true, default_value_t = 5_000)]
    keepalive_ms: u64,

    /// Milliseconds of silence after which a link is declared dead.
    #[arg(long, hide = true, default_value_t = 15_000)]
    dead_after_ms: u64,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Print this node's fingerprint (creating the identity on first use).
    Id,
    /// Start the node (the default).
    Run,
    /// Run an iroh relay server for natter nodes (`--relay URL`): plain
    /// HTTP for a lab or test network, HTTPS with --cert and --key, which
    /// is what to deploy on the internet.
    Relay {
        /// TCP address to serve on.
        #[arg(long, value_name = "ADDR")]
        listen: SocketAddr,
        /// PEM certificate chain (with --key): serve HTTPS, and QUIC
        /// address discovery on UDP port 7842.
        #[arg(long, value_name = "FILE", requires = "key")]
        cert: Option<PathBuf>,
        /// PEM private key of the certificate.
        #[arg(long, value_name = "FILE", requires = "cert")]
        key: Option<PathBuf>,
        /// Serve only the identities whose fingerprints this file lists,
        /// one per line (`natter id` prints yours). Without it, anyone.
        #[arg(long, value_name = "FILE")]
        allow: Option<PathBuf>,
        /// Read at most this many bytes per second from each client
        /// (`4M` = 4 MiB). Without it, no limit.
        #[arg(long, value_name = "BYTES", value_parser = parse_size)]
        client_rate: Option<u64>,
    },
}

/// `16G` → 16 × 1024³; a plain number is bytes.
fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim();
    let (digits, shift) = match s.char_indices().last() {
        Some((i, 'k' | 'K')) => (&s[..i], 10),
        Some((i, 'm' | 'M')) => (&s[..i], 20),
        Some((i, 'g' | 'G')) => (&s[..i], 30),
        Some((i, 't' | 'T')) => (&s[..i], 40),
        _ => (s, 0),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("\"{s}\" is not a size (a number, optionally with K, M, G or T)"))?;
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("\"{s}\" is too large"))
}

/// Store key of the nickname chosen with --nick or /nick.
const NICK_KEY: &str = "nickname";

const AFTER_HELP: &str = "\
Examples:
  natter --nick alice                         start, discover peers on the LAN
  natter --beacon-addr 127.255.255.255        discover only processes on this host
  natter --no-discovery --connect 10.0.0.5:47475
  natter id                                   show your fingerprint
  natter --wan                                reach contacts beyond the LAN (/ticket)
  natter relay --listen 0.0.0.0:3340          run your own relay (plain HTTP)

Inside natter, type /help for the commands.";

fn data_dir(cli: &Cli) -> Result<PathBuf> {
    if let Some(d) = &cli.data_dir {
        return Ok(d.clone());
    }
    directories::ProjectDirs::from("", "", "natter")
        .map(|p| p.data_dir().to_path_buf())
        .context("cannot determine a data directory; pass --data-dir")
}

fn default_nick() -> String {
    let user = std::env::var("USER").unwrap_or_default();
    let nick = sanitize_nick(&user);
    if nick.is_empty() {
        "anonymous".into()
    } else {
        nick
    }
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // iroh logs through `tracing`; NATTER_LOG (e.g. `iroh=debug`) shows it.
    #[cfg(feature = "wan")]
    if let Ok(filter) = std::env::var("NATTER_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_writer(std::io::stderr)
            .try_init();
    }
    if let Some(Sub::Relay {
        listen,
        cert,
        key,
        allow,
        client_rate,
    }) = &cli.command
    {
        return relay(
            *listen,
            cert.clone().zip(key.clone()),
            allow.as_deref(),
            *client_rate,
        );
    }
    let dir = data_dir(&cli)?;
    let (identity, created) = keyfile::load_or_create(&dir)?;
    if created {
        eprintln!("created a new identity in {}", dir.display());
    }
    if matches!(cli.command, Some(Sub::Id)) {
        println!("{}", identity.fingerprint());
        return Ok(());
    }

    // One process per data directory: the store holds a lock.
    let mut store = Store::open_telling(&dir, |u| {
        eprintln!(
            "updating the history in {} from schema version {} to {}; a long history takes a while, once",
            dir.display(),
            u.from,
            u.to
        );
    })?;
    let nick = match &cli.nick {
        Some(n) => {
            let clean = sanitize_nick(n);
            if clean != *n {
                bail!("--nick {n:?} is not a valid nickname (at most 32 bytes, no control characters)");
            }
            store.set_meta(NICK_KEY, &clean)?;
            clean
        }
        None => match store.get_meta(NICK_KEY)? {
            Some(n) => sanitize_nick(&n),
            None => default_nick(),
        },
    };

    let wan = !cli.no_wan
        && (cli.wan || store.get_meta(natter_core::node::WAN_SETTING)?.as_deref() == Some("on"));
    if !wan
        && (cli.relay.is_some()
            || cli.wan_bind.is_some()
            || cli.relay_only
            || cli.relay_ca.is_some())
    {
        bail!("--relay, --relay-ca, --relay-only and --wan-bind need --wan (or /wan on)");
    }
    if wan && !cfg!(feature = "wan") {
        bail!("this natter was built without links beyond the LAN (cargo feature \"wan\")");
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(run(cli, identity, store, nick, dir, wan));
    // The stdin reader sits in a blocking read that never returns on its
    // own; do not wait for it.
    runtime.shutdown_background();
    result
}

async fn run(
    cli: Cli,
    identity: natter_core::identity::LocalIdentity,
    mut store: Store,
    nick: String,
    dir: PathBuf,
    wan: bool,
) -> Result<()> {
    let listener = net::listen(cli.listen, cli.listen.port() == net::DEFAULT_LISTEN_PORT).await?;
    #[cfg(feature = "wan")]
    let endpoint = match wan {
        true => {
            let cfg = natter::wan::WanConfig {
                relay: cli.relay.clone(),
                bind: cli.wan_bind,
                relay_only: cli.relay_only,
                relay_ca: cli.relay_ca.clone(),
            };
            Some(natter::wan::Wan::bind(&identity.ed25519_seed(), &cfg).await?)
        }
        false => None,
    };
    let listen_addr = listener.local_addr().context("listener has no address")?;

    let (beacons, targets) = if cli.no_discovery {
        (None, Vec::new())
    } else {
        let bind = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), cli.beacon_port);
        let sock = net::beacon_socket(bind)?;
        let targets = if cli.beacon_addr.is_empty() {
            net::default_beacon_targets(cli.beacon_port)
        } else {
            cli.beacon_addr
                .iter()
                .map(|ip| SocketAddr::new(*ip, cli.beacon_port))
                .collect()
        };
        (Some(sock), targets)
    };

    let discovery = (!cli.no_discovery).then(|| {
        let mut d = DiscoveryConfig::default();
        d.interval_ms = cli.beacon_interval_ms.max(100);
        d.expire_after_ms = 3 * d.interval_ms + 1_000;
        d
    });
    let cfg = NodeConfig {
        nickname: nick.clone(),
        listen_port: listen_addr.port(),
        discovery,
        beacon_targets: targets.clone(),
        keepalive_ms: cli.keepalive_ms,
        dead_after_ms: cli.dead_after_ms,
        files: natter_core::files::FileLimits {
            max_size: cli.max_file_size,
            auto_accept_verified: cli.auto_accept_verified,
        },
        wan,
        ..NodeConfig::default()
    };
    let rng = Rng::from_os().map_err(|e| anyhow::anyhow!("{e}"))?;
    let clock = Instant::now();
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(0))
        .unwrap_or(0);
    let local = identity.identity_key();
    // Commits return before their fsync; the node thread holds what follows
    // one until the log is synced (natter::shell::Options::group_commit).
    let group_commit = store
        .group_commit()
        .context("cannot set up the history's commits")?;
    let mut node = Node::new(identity, cfg, Box::new(store), rng, 0, wall);
    node.set_signature_check(Box::new(natter::signatures::AllCores::new()));
    let started = Event::Started {
        identity: local,
        nickname: nick,
        listen: listen_addr,
        beacon_targets: targets.clone(),
        rooms: node.joined_rooms(),
    };
    let files_dir = dir.join(natter::files::FILES_DIR);
    let download_dir = cli
        .download_dir
        .clone()
        .unwrap_or_else(|| natter::files::default_download_dir(&dir));
    let file_store = natter::files::FsFileStore::open(
        &dir.join(natter::store::DB_FILE),
        files_dir.clone(),
        download_dir,
    )
    .map_err(|e| anyhow::anyhow!("cannot set up file transfers: {e}"))?;
    node.set_file_store(Box::new(file_store));

    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>(64);
    let (ev_tx, ev_rx) = net::event_channel();
    ev_tx.send(started);
    let opts = net::Options {
        files_dir: Some(files_dir),
        group_commit: Some(group_commit),
        #[cfg(feature = "wan")]
        wan: endpoint,
    };
    let shell = tokio::spawn(net::run_with(
        node, listener, beacons, cmd_rx, ev_tx, clock, opts,
    ));

    for target in &cli.connect {
        let addr = tokio::net::lookup_host(target.as_str())
            .await
            .with_context(|| format!("cannot resolve --connect {target}"))?
            .next()
            .with_context(|| format!("--connect {target} did not resolve"))?;
        let _ = cmd_tx.send(Command::Connect(addr)).await;
    }

    // Ctrl-C and SIGTERM quit cleanly: peers are told, history is flushed.
    let quit_tx = cmd_tx.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = quit_tx.send(Command::Quit).await;
    });

    let interactive =
        std::io::stdin().is_terminal() && std::io::stdout().is_terminal() && !cli.json;
    if interactive {
        interactive::run(cmd_tx, ev_rx, &dir, !cli.no_bell).await;
    } else {
        headless::run(cmd_tx, ev_rx, cli.json).await;
    }
    let _ = shell.await;
    Ok(())
}

/// `natter relay`: serve until Ctrl-C or SIGTERM.
#[cfg(feature = "wan")]
fn relay(
    listen: SocketAddr,
    tls: Option<(PathBuf, PathBuf)>,
    allow: Option<&std::path::Path>,
    client_rate: Option<u64>,
) -> Result<()> {
    let allow = match allow {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the allow list {}", path.display()))?;
            let allowed = natter::relay::Allowed::parse(&text)?;
            if allowed.is_empty() {
                bail!(
                    "the allow list {} names nobody: the relay would serve no one",
                    path.display()
                );
            }
            eprintln!(
                "natter relay: serving the {} identities listed in {}",
                allowed.len(),
                path.display()
            );
            Some(allowed)
        }
        None => None,
    };
    // iroh-relay's bucket refills ten times a second and refuses every
    // client below 10 B/s; below 1 KiB/s no link would work anyway.
    let client_rate = match client_rate {
        Some(r) => Some(
            u32::try_from(r)
                .ok()
                .filter(|r| *r >= 1024)
                .and_then(std::num::NonZeroU32::new)
                .context("--client-rate must be at least 1K and below 4G bytes per second")?,
        ),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let opts = natter::relay::RelayOptions {
            listen,
            tls,
            allow,
            client_rate,
        };
        let relay = natter::relay::Relay::spawn(&opts).await?;
        // The URL alone on its line: scripts and tests read it.
        println!("natter relay serving at {}", relay.url());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("cannot wait for SIGTERM")?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        relay.shutdown().await;
        Ok(())
    })
}

#[cfg(not(feature = "wan"))]
fn relay(
    _: SocketAddr,
    _: Option<(PathBuf, PathBuf)>,
    _: Option<&std::path::Path>,
    _: Option<u64>,
) -> Result<()> {
    bail!("this natter was built without links beyond the LAN (cargo feature \"wan\")")
}
