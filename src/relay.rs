//! `natter relay`: iroh's relay server, for people who want no third party
//! between their nodes. It forwards encrypted QUIC packets between iroh
//! endpoints that cannot reach each other directly and helps them punch
//! holes; it never sees natter's plaintext (the Noise link inside the QUIC
//! stream is end to end) and it cannot pose as a node (endpoint ids are
//! keys).
//!
//! Plain HTTP unless given a certificate and key, like iroh-relay's dev
//! mode: good for a lab or a namespace test. With `--cert` and `--key` it
//! serves HTTPS on the listen address and QUIC address discovery (which
//! tells endpoints their public address, for hole punching) on UDP port
//! 7842 of the same host, iroh's default.
//!
//! Open to every endpoint unless given `--allow FILE`: then only the
//! identities whose fingerprints the file lists (an endpoint id is the
//! node's identity key, proven in the relay handshake) may use it.
//! `--client-rate` caps what the relay reads from each client per second.

use iroh_relay::server::{
    Access, AccessControl, CertConfig, ClientRateLimit, ClientRequest, Limits, QuicConfig,
    RelayConfig, Server, ServerConfig, TlsConfig,
};
use natter_core::identity::{Fingerprint, IdentityKey, FINGERPRINT_CHARS};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;

/// UDP port of QUIC address discovery, as iroh clients expect it.
pub const QUIC_PORT: u16 = iroh_relay::defaults::DEFAULT_RELAY_QUIC_PORT;

/// What `natter relay` was asked for.
#[derive(Clone, Debug)]
pub struct RelayOptions {
    pub listen: SocketAddr,
    /// PEM certificate chain and private key: HTTPS. Neither: plain HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Only these identities may use the relay; `None`: anyone.
    pub allow: Option<Allowed>,
    /// Bytes per second the relay reads from each client at most.
    pub client_rate: Option<NonZeroU32>,
}

/// The identities a relay serves, by fingerprint.
#[derive(Clone, Debug, Default)]
pub struct Allowed(HashSet<String>);

impl Allowed {
    /// One fingerprint per line, all 32 characters (dashes and spaces
    /// optional, as `natter id` and `/verify` print them); empty lines and
    /// lines starting with `#` are skipped. A line that is not a whole
    /// fingerprint is an error, naming the line: a typo must not lock a
    /// contact out unnoticed.
    pub fn parse(text: &str) -> Result<Allowed, RelayError> {
        let mut set = HashSet::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f = Fingerprint::typed(line)
                .filter(|f| f.len() == FINGERPRINT_CHARS)
                .ok_or_else(|| RelayError::Allow {
                    line: i + 1,
                    text: line.to_owned(),
                })?;
            set.insert(f);
        }
        Ok(Allowed(set))
    }

    pub fn admits(&self, id: &IdentityKey) -> bool {
        self.0.contains(Fingerprint::of(id).as_str())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl AccessControl for Allowed {
    async fn on_connect(&self, request: &ClientRequest) -> Access {
        if self.admits(&IdentityKey(*request.endpoint_id().as_bytes())) {
            Access::Allow
        } else {
            Access::Deny {
                reason: Some("not on this relay's list".into()),
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("cannot read {path}: {why}")]
    Pem { path: String, why: String },
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Tls(String),
    #[error("cannot start the relay on {addr}: {why}")]
    Spawn { addr: SocketAddr, why: String },
    #[error("line {line} of the allow list is not a whole fingerprint (32 characters): {text:?}")]
    Allow { line: usize, text: String },
}

/// A running relay; it stops when dropped or shut down.
pub struct Relay {
    server: Server,
    url: String,
}

impl Relay {
    /// Start serving.
    pub async fn spawn(opts: &RelayOptions) -> Result<Relay, RelayError> {
        let mut relay = RelayConfig::new(opts.listen);
        if let Some(allowed) = &opts.allow {
            relay.access = Arc::new(allowed.clone());
        }
        if let Some(rate) = opts.client_rate {
            let mut limits = Limits::default();
            let mut client = ClientRateLimit::new(rate);
            // A second's worth at once: a burst of QUIC packets passes.
            client.max_burst_bytes = Some(rate);
            limits.client_rx = Some(client);
            relay.limits = limits;
        }
        let mut quic = None;
        if let Some((cert, key)) = &opts.tls {
            let server_config = tls_config(cert, key)?;
            // The HTTP port only answers captive-portal probes; any port.
            relay.http_bind_addr = SocketAddr::new(opts.listen.ip(), 0);
            let mut q = QuicConfig::new(SocketAddr::new(opts.listen.ip(), QUIC_PORT));
            q.server_config = Some(server_config.clone());
            quic = Some(q);
            relay.tls = Some(TlsConfig::new(
                opts.listen,
                CertConfig::Manual { server_config },
            ));
        }
        let mut config = ServerConfig::default();
        config.relay = Some(relay);
        config.quic = quic;
        let server = Server::spawn(config).await.map_err(|e| RelayError::Spawn {
            addr: opts.listen,
            why: e.to_string(),
        })?;
        let url = match (server.https_addr(), server.http_addr()) {
            (Some(a), _) => format!("https://{a}"),
            (None, Some(a)) => format!("http://{a}"),
            (None, None) => String::new(),
        };
        Ok(Relay { server, url })
    }

    /// The URL nodes pass as `--relay` (with the bound port when the
    /// listen port was 0). For HTTPS, use the host name the certificate
    /// names instead of the address.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn shutdown(self) {
        let _ = self.server.shutdown().await;
    }
}

// ring's default provider, as iroh's own `presets::Minimal` takes it
// (deprecated only for lacking post-quantum key exchange).
#[allow(deprecated)]
fn tls_config(cert: &PathBuf, key: &PathBuf) -> Result<rustls::ServerConfig, RelayError> {
    let pem = |path: &PathBuf, why: String| RelayError::Pem {
        path: path.display().to_string(),
        why,
    };
    let certs = crate::wan::pem_certificates(cert).map_err(|why| pem(cert, why))?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| pem(key, e.to_string()))?;
    rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| RelayError::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_single_cert(certs, key_der)
    .map_err(|e| RelayError::Tls(e.to_string()))
}
