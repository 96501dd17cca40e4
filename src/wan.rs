//! Beyond the LAN (PROTOCOL.md section 12): natter's Noise link inside one
//! bidirectional stream of an iroh connection (QUIC, relays, hole
//! punching), and `natter relay`, iroh's relay server.
//!
//! The iroh endpoint's secret key is the natter identity's ed25519 key, so
//! the endpoint id iroh authenticates in its TLS handshake is the identity
//! key natter's Noise handshake authenticates; the node checks the two
//! agree on every WAN link (`Node::accept_wan`). Every natter signature has
//! its own domain string, and iroh signs only inside TLS 1.3's
//! CertificateVerify, whose signed content starts with 64 spaces and a
//! context string: no signature of one can stand for the other (SECURITY.md).
//!
//! Nothing here looks anything up by itself: no DNS or pkarr address
//! lookup, no port mapping; iroh talks to the relay it is given (or n0's
//! public relays when none is) and to the addresses a ticket or a `Reach`
//! frame names.

use iroh::endpoint::{presets, Connection, RecvStream, SendStream};
use iroh::{Endpoint, EndpointAddr, RelayMode, RelayUrl, SecretKey, TransportAddr, Watcher};
use natter_core::identity::IdentityKey;
use natter_core::link::LinkPath;
use natter_core::wire::Reach;
use std::net::SocketAddr;

/// The ALPN of natter links over iroh.
pub const ALPN: &[u8] = b"natter/1";
/// How long an inbound connection may take, once its QUIC handshake is
/// done, to open the link's stream. An honest dialler opens it at once
/// (its Noise message 1 is what announces it); without this bound a peer
/// could finish handshakes and open nothing, and hold the shell's few
/// accepting slots for the whole connect timeout.
pub const FIRST_STREAM: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the WAN side could not start or a WAN dial failed.
#[derive(Debug, thiserror::Error)]
pub enum WanError {
    #[error("--relay {url}: {why}")]
    RelayUrl { url: String, why: String },
    #[error("cannot bind the iroh endpoint on {addr}: {why}")]
    Bind { addr: String, why: String },
    #[error("the peer's key is not a valid iroh endpoint id")]
    EndpointId,
    #[error("{0}")]
    Connect(String),
    #[error("--relay-ca {path}: {why}")]
    RelayCa { path: String, why: String },
}

/// How the endpoint is set up.
#[derive(Clone, Debug, Default)]
pub struct WanConfig {
    /// The relay to use (`--relay`); `None`: iroh's public relays (n0).
    pub relay: Option<String>,
    /// Bind the endpoint's UDP socket here instead of every interface
    /// (port 0: any). Tests bind loopback.
    pub bind: Option<SocketAddr>,
    /// No UDP socket at all: every packet goes through the relay (tests
    /// and the relayed benchmark row).
    pub relay_only: bool,
    /// PEM certificates to trust for the relay's HTTPS besides the usual
    /// web roots (a relay with a certificate from a private CA).
    pub relay_ca: Option<std::path::PathBuf>,
}

/// The iroh endpoint of this node.
#[derive(Clone, Debug)]
pub struct Wan {
    endpoint: Endpoint,
}

/// A WAN link's byte stream, and the connection it lives on (kept so the
/// shell can watch its path and close it).
pub struct WanStream {
    pub conn: Connection,
    pub send: SendStream,
    pub recv: RecvStream,
}

impl Wan {
    /// Bind the endpoint with the node's identity key.
    pub async fn bind(seed: &[u8; 32], cfg: &WanConfig) -> Result<Wan, WanError> {
        let relay_mode = match &cfg.relay {
            Some(url) => RelayMode::custom([parse_relay(url)?]),
            None => RelayMode::Default,
        };
        let mut builder = Endpoint::builder(presets::Minimal)
            .secret_key(SecretKey::from_bytes(seed))
            .alpns(vec![ALPN.to_vec()])
            .relay_mode(relay_mode);
        if let Some(path) = &cfg.relay_ca {
            let roots = pem_certificates(path).map_err(|why| WanError::RelayCa {
                path: path.display().to_string(),
                why,
            })?;
            builder = builder
                .ca_tls_config(iroh_relay::tls::CaTlsConfig::embedded().with_extra_roots(roots));
        }
        if cfg.relay_only {
            builder = builder.clear_ip_transports();
        } else if let Some(addr) = cfg.bind {
            builder =
                builder
                    .clear_ip_transports()
                    .bind_addr(addr)
                    .map_err(|e| WanError::Bind {
                        addr: addr.to_string(),
                        why: e.to_string(),
                    })?;
        }
        let endpoint = builder.bind().await.map_err(|e| WanError::Bind {
            addr: cfg
                .bind
                .map_or_else(|| "every interface".into(), |a| a.to_string()),
            why: e.to_string(),
        })?;
        Ok(Wan { endpoint })
    }

    /// Reports where this endpoint can be reached, now and every time it
    /// changes, until `report` says stop.
    pub async fn watch_reach(&self, mut report: impl FnMut(Reach) -> bool) {
        let mut watcher = self.endpoint.watch_addr();
        loop {
            if !report(reach_of(&watcher.get())) {
                return;
            }
            if watcher.updated().await.is_err() {
                return;
            }
        }
    }

    /// The next inbound connection, before its QUIC handshake (which
    /// [`finish_accept`] completes); `None` once the endpoint is closed.
    pub async fn accept(&self) -> Option<iroh::endpoint::Incoming> {
        self.endpoint.accept().await
    }

    /// Dial `peer`'s endpoint where `reach` says, and open the link's stream.
    pub async fn dial(&self, peer: IdentityKey, reach: &Reach) -> Result<WanStream, WanError> {
        let id = iroh::EndpointId::from_bytes(&peer.0).map_err(|_| WanError::EndpointId)?;
        let mut addrs: Vec<TransportAddr> = reach.socket_addrs().map(TransportAddr::Ip).collect();
        if let Some(url) = reach
            .relay
            .as_deref()
            .and_then(|u| u.parse::<RelayUrl>().ok())
        {
            addrs.push(TransportAddr::Relay(url));
        }
        let addr = EndpointAddr::from_parts(id, addrs);
        let conn = self
            .endpoint
            .connect(addr, ALPN)
            .await
            .map_err(|e| WanError::Connect(e.to_string()))?;
        let (send, recv) = conn
            .open_bi()
            .await
            .map_err(|e| WanError::Connect(e.to_string()))?;
        Ok(WanStream { conn, send, recv })
    }

    /// Close every connection and the endpoint.
    pub async fn close(&self) {
        self.endpoint.close().await;
    }
}

/// Finish an inbound connection: its handshake, then the stream the
/// dialler opens (it writes Noise message 1 at once, which is what
/// announces a QUIC stream). Returns the endpoint key iroh authenticated.
pub async fn finish_accept(
    incoming: iroh::endpoint::Incoming,
) -> Result<(IdentityKey, WanStream), WanError> {
    let fail = |e: &dyn std::fmt::Display| WanError::Connect(e.to_string());
    let accepting = incoming.accept().map_err(|e| fail(&e))?;
    let conn = accepting.await.map_err(|e| fail(&e))?;
    if conn.alpn() != ALPN {
        return Err(WanError::Connect("wrong ALPN".into()));
    }
    let peer = IdentityKey(*conn.remote_id().as_bytes());
    let stream = tokio::time::timeout(FIRST_STREAM, conn.accept_bi()).await;
    let Ok(stream) = stream else {
        conn.close(0u32.into(), b"no stream");
        return Err(WanError::Connect("no stream opened in time".into()));
    };
    let (send, recv) = stream.map_err(|e| fail(&e))?;
    Ok((peer, WanStream { conn, send, recv }))
}

/// Reports the connection's path each time the selected one changes,
/// until the connection closes or `report` says stop. Polled every
/// [`PATH_POLL`]: a path changes seldom, and a snapshot is cheap.
pub async fn watch_path(conn: Connection, mut report: impl FnMut(LinkPath) -> bool) {
    let mut last = None;
    let mut tick = tokio::time::interval(PATH_POLL);
    loop {
        tick.tick().await;
        if conn.close_reason().is_some() {
            return;
        }
        let path = conn.paths().iter().find(|p| p.is_selected()).map(|p| {
            if p.is_relay() {
                LinkPath::Relayed
            } else {
                LinkPath::Direct
            }
        });
        if let Some(path) = path.filter(|p| Some(*p) != last) {
            last = Some(path);
            if !report(path) {
                return;
            }
        }
    }
}

/// How often a WAN link's path is looked at.
const PATH_POLL: std::time::Duration = std::time::Duration::from_millis(500);

fn reach_of(addr: &EndpointAddr) -> Reach {
    // As iroh writes it, with a trailing slash (`http://h:p/`).
    let relay = addr.relay_urls().next().map(RelayUrl::to_string);
    Reach::new(relay, addr.ip_addrs().copied())
}

/// The certificates of a PEM file, at least one (`--relay-ca` here, the
/// relay's own chain in `natter relay --cert`); the error says why not.
pub(crate) fn pem_certificates(
    path: &std::path::Path,
) -> Result<Vec<rustls_pki_types::CertificateDer<'static>>, String> {
    use rustls_pki_types::pem::PemObject;
    let certs: Vec<_> = rustls_pki_types::CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no certificate in it".into());
    }
    Ok(certs)
}

fn parse_relay(url: &str) -> Result<RelayUrl, WanError> {
    natter_core::wire::ticket::check_relay_url(url).map_err(|e| WanError::RelayUrl {
        url: url.into(),
        why: e.to_string(),
    })?;
    url.parse()
        .map_err(|e: iroh::RelayUrlParseError| WanError::RelayUrl {
            url: url.into(),
            why: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::{Relay, RelayOptions};
    use natter_core::identity::Fingerprint;
    use std::time::Duration;

    /// A peer that finishes the QUIC handshake and opens no stream is let
    /// go after FIRST_STREAM, not held for the whole connect timeout;
    /// an honest dial right after is taken. Loopback and an in-process
    /// relay only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_that_opens_no_stream_is_let_go() {
        let relay = Relay::spawn(&RelayOptions {
            allow: None,
            client_rate: None,
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: None,
        })
        .await
        .unwrap();
        let cfg = WanConfig {
            relay: Some(relay.url().to_owned()),
            bind: Some("127.0.0.1:0".parse().unwrap()),
            ..WanConfig::default()
        };
        let (a, b) = (
            Wan::bind(&[1; 32], &cfg).await.unwrap(),
            Wan::bind(&[2; 32], &cfg).await.unwrap(),
        );
        let a_id = IdentityKey(*a.endpoint.id().as_bytes());
        let b_id = IdentityKey(*b.endpoint.id().as_bytes());
        let a_addr = a.endpoint.addr();
        // Every inbound connection is finished as the shell does: what
        // came of it, and when.
        let (tx, mut results) = tokio::sync::mpsc::unbounded_channel();
        let acceptor = tokio::spawn(async move {
            while let Some(incoming) = a.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let started = std::time::Instant::now();
                    let done =
                        tokio::time::timeout(Duration::from_secs(15), finish_accept(incoming))
                            .await;
                    let _ = tx.send((done.map(|r| r.map(|(peer, _)| peer)), started.elapsed()));
                });
            }
        });
        // The silent one: a connection, and nothing on it.
        let silent = b.endpoint.connect(a_addr.clone(), ALPN).await.unwrap();
        // An honest dial: its stream is announced by its first bytes
        // (Noise message 1).
        let mut honest = b.dial(a_id, &reach_of(&a_addr)).await.unwrap();
        honest.send.write_all(&[0; 32]).await.unwrap();
        let (mut taken, mut let_go) = (None, None);
        while taken.is_none() || let_go.is_none() {
            let next = tokio::time::timeout(Duration::from_secs(20), results.recv()).await;
            match next.ok().flatten() {
                Some((Ok(Ok(peer)), _)) => taken = Some(peer),
                Some((Ok(Err(_)), after)) => let_go = Some(after),
                Some((Err(_), _)) => panic!("held for the whole connect timeout"),
                None => panic!("the acceptor stopped or took too long"),
            }
        }
        assert_eq!(taken, Some(b_id));
        let after = let_go.unwrap();
        assert!(
            after >= FIRST_STREAM && after < Duration::from_secs(14),
            "{after:?}"
        );
        drop((silent, honest));
        acceptor.abort();
    }

    /// Where `w` can be reached through its relay, once it has one.
    async fn relayed_reach(w: &Wan) -> Reach {
        for _ in 0..100 {
            let reach = reach_of(&w.endpoint.addr());
            if reach.relay.is_some() {
                return reach;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no relay after 10 s");
    }

    /// A relay with an allow list carries the listed identities' links and
    /// nobody else's: every endpoint here is relay-only (no UDP socket),
    /// so the relay is the only way between them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_relay_with_an_allow_list_serves_only_the_identities_listed() {
        let key = |seed: u8| {
            let secret = SecretKey::from_bytes(&[seed; 32]);
            IdentityKey(*secret.public().as_bytes())
        };
        let list = format!(
            "# the team\n{}\n\n{}\n",
            Fingerprint::of(&key(1)).grouped(),
            Fingerprint::of(&key(3)).as_str().to_lowercase()
        );
        let relay = Relay::spawn(&RelayOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: None,
            allow: Some(crate::relay::Allowed::parse(&list).unwrap()),
            client_rate: std::num::NonZeroU32::new(8 << 20),
        })
        .await
        .unwrap();
        let cfg = WanConfig {
            relay: Some(relay.url().to_owned()),
            relay_only: true,
            ..WanConfig::default()
        };
        let a = Wan::bind(&[1; 32], &cfg).await.unwrap();
        let reach = relayed_reach(&a).await;
        let a_id = key(1);
        let accepting = {
            let a = a.clone();
            tokio::spawn(async move {
                let incoming = a.accept().await?;
                finish_accept(incoming).await.ok().map(|(peer, _)| peer)
            })
        };
        // 2 is not listed: it gets no link to 1.
        let b = Wan::bind(&[2; 32], &cfg).await.unwrap();
        let denied = tokio::time::timeout(Duration::from_secs(5), b.dial(a_id, &reach)).await;
        assert!(!matches!(denied, Ok(Ok(_))), "an unlisted identity linked");
        // 3 is: its link goes through.
        let c = Wan::bind(&[3; 32], &cfg).await.unwrap();
        let mut link = tokio::time::timeout(Duration::from_secs(10), c.dial(a_id, &reach))
            .await
            .expect("a listed identity links in time")
            .unwrap();
        link.send.write_all(&[0; 32]).await.unwrap();
        let peer = tokio::time::timeout(Duration::from_secs(10), accepting)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(peer, Some(key(3)));
    }

    #[test]
    fn an_allow_list_names_its_bad_line() {
        use crate::relay::{Allowed, RelayError};
        let good = Fingerprint::of(&IdentityKey([5; 32])).grouped();
        let list = format!("{good}\nABCD-EFGH\n");
        assert!(matches!(
            Allowed::parse(&list),
            Err(RelayError::Allow { line: 2, .. })
        ));
        let ok = Allowed::parse(&format!("# comment\n\n {good} \n")).unwrap();
        assert!(ok.admits(&IdentityKey([5; 32])));
        assert!(!ok.admits(&IdentityKey([6; 32])));
    }
}
