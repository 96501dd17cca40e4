//! The typed Noise handshake: `Noise_XX_25519_ChaChaPoly_BLAKE2s`, prologue
//! `natter/1`.
//!
//! ```text
//!   Initiator                                   Responder
//!   Initiator::start        -> e                Responder::new
//!                                               .read_msg1  (checks e)
//!                           <- e, ee, s, es, hello_R
//!   .read_msg2 (checks e, s, hello_R, expected identity)
//!                           -> s, se, hello_I
//!   Established                                 ResponderAwaitingMsg3
//!                                               .read_msg3 (checks s, hello_I)
//!                                               Established
//! ```
//!
//! Each state is its own type and every step consumes `self`, so a step can
//! run at most once and only in order. No [`Transport`] exists until a state
//! returns [`Established`]: sending application data early does not compile.
//!
//! Each side checks the other's hello: the Noise remote static key must equal
//! the key in the hello, the binding signature must verify with
//! `verify_strict`, and a dialling side that knows whom it meant to reach
//! requires that identity. Ephemeral and static keys of low order are refused.

use crate::identity::{
    domain, is_low_order, BoundKeys, IdentityError, IdentityKey, LocalIdentity, VerifiedBindings,
};
use crate::transport::Transport;
use crate::wire::limits::{HANDSHAKE_MSG1_LEN, MAX_HANDSHAKE_MSG_LEN, PROTOCOL_VERSION};
use crate::wire::{Hello, WireError};

/// The Noise protocol name.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";

/// Length of an X25519 public key on the wire.
const DH_LEN: usize = 32;
/// Encrypted static key: key plus tag.
const ENCRYPTED_STATIC_LEN: usize = 32 + 16;
/// Poly1305 tag.
const TAG_LEN: usize = 16;

/// Why a handshake failed. Every variant closes the connection.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HandshakeError {
    #[error("handshake message {step} has {len} bytes, expected {expected}")]
    BadLength {
        step: u8,
        len: usize,
        expected: &'static str,
    },
    #[error("Noise rejected handshake message {step} (wrong key, tampering or garbage)")]
    Noise { step: u8 },
    #[error("the peer's {0} X25519 key is all-zero or of low order")]
    LowOrderKey(&'static str),
    #[error("malformed hello: {0}")]
    BadHello(#[from] WireError),
    #[error("the hello's static key differs from the Noise static key")]
    StaticKeyMismatch,
    #[error("the peer's identity binding does not verify")]
    BadBinding,
    #[error("reached identity {got:?}, but dialled {expected:?}")]
    WrongIdentity {
        expected: IdentityKey,
        got: IdentityKey,
    },
    #[error("the peer presented our own identity")]
    SelfConnection,
    /// snow refused a step; its error is kept as the source.
    #[error("the Noise library refused a handshake step: {0}")]
    Snow(#[from] snow::Error),
    /// snow finished message 3 without the peer's static key (it cannot,
    /// for XX; checked rather than assumed).
    #[error("the handshake ended without the peer's static key")]
    NoRemoteStatic,
}

/// What the local side says about itself in its hello.
#[derive(Clone, Debug)]
pub struct HandshakeConfig {
    pub nickname: String,
    pub listen_port: u16,
    /// Fixed ephemeral secret: settable only in tests and with the
    /// `testkit` feature ([`HandshakeConfig::with_fixed_ephemeral_for_tests`]),
    /// because reusing an ephemeral key destroys forward secrecy.
    fixed_ephemeral: Option<[u8; 32]>,
    /// Bindings already verified by this node's handshakes; configs of one
    /// node share it ([`HandshakeConfig::with_bindings`]).
    bindings: VerifiedBindings,
}

impl HandshakeConfig {
    pub fn new(nickname: impl Into<String>, listen_port: u16) -> Self {
        HandshakeConfig {
            nickname: nickname.into(),
            listen_port,
            fixed_ephemeral: None,
            bindings: VerifiedBindings::default(),
        }
    }

    /// The same config remembering verified bindings in `bindings`, shared
    /// with other configs of the same node.
    pub fn with_bindings(mut self, bindings: VerifiedBindings) -> Self {
        self.bindings = bindings;
        self
    }

    /// The same config with a fixed ephemeral secret, for test vectors and
    /// deterministic fuzzing only.
    #[cfg(any(test, feature = "testkit"))]
    pub fn with_fixed_ephemeral_for_tests(mut self, secret: [u8; 32]) -> Self {
        self.fixed_ephemeral = Some(secret);
        self
    }
}

/// The authenticated peer, as proven by the handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerHello {
    pub keys: BoundKeys,
    /// Untrusted display name.
    pub nickname: String,
    pub listen_port: u16,
    pub features: u64,
}

impl PeerHello {
    pub fn identity(&self) -> IdentityKey {
        self.keys.identity
    }
}

/// A completed handshake: the encrypted transport and who is on the other end.
pub struct Established {
    pub transport: Transport,
    pub peer: PeerHello,
    /// The Noise handshake hash, unique to this session.
    pub handshake_hash: Vec<u8>,
}

impl std::fmt::Debug for Established {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Established")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// snow's resolver with two changes, each the same function byte for byte.
/// ChaCha20-Poly1305 is ring's (RFC 8439 with Noise's 64-bit little-endian
/// counter nonce): 0.17 µs on a 64-byte message where the pure-Rust one
/// costs 1.6 µs, which is most of what a link adds to a small message's
/// round trip. X25519 is graviola's where the CPU allows it (`crate::x25519`):
/// less than half of x25519-dalek's time, and X25519 was most of a
/// handshake's.
struct NatterResolver;

impl snow::resolvers::CryptoResolver for NatterResolver {
    fn resolve_rng(&self) -> Option<Box<dyn snow::types::Random>> {
        snow::resolvers::DefaultResolver.resolve_rng()
    }

    fn resolve_dh(&self, choice: &snow::params::DHChoice) -> Option<Box<dyn snow::types::Dh>> {
        match choice {
            snow::params::DHChoice::Curve25519 => Some(Box::new(noise_dh::NoiseX25519::new())),
            _ => snow::resolvers::DefaultResolver.resolve_dh(choice),
        }
    }

    fn resolve_hash(
        &self,
        choice: &snow::params::HashChoice,
    ) -> Option<Box<dyn snow::types::Hash>> {
        snow::resolvers::DefaultResolver.resolve_hash(choice)
    }

    fn resolve_cipher(
        &self,
        choice: &snow::params::CipherChoice,
    ) -> Option<Box<dyn snow::types::Cipher>> {
        snow::resolvers::RingResolver
            .resolve_cipher(choice)
            .or_else(|| snow::resolvers::DefaultResolver.resolve_cipher(choice))
    }
}

fn builder<'a>(
    local: &'a LocalIdentity,
    cfg: &'a HandshakeConfig,
) -> Result<snow::Builder<'a>, HandshakeError> {
    let params = NOISE_PARAMS.parse().map_err(HandshakeError::Snow)?;
    let mut b = snow::Builder::with_resolver(params, Box::new(NatterResolver))
        .local_private_key(local.noise_secret())
        .map_err(HandshakeError::Snow)?
        .prologue(domain::NOISE_PROLOGUE)
        .map_err(HandshakeError::Snow)?;
    if let Some(e) = &cfg.fixed_ephemeral {
        b = b.fixed_ephemeral_key_for_testing_only(e);
    }
    Ok(b)
}

fn hello_bytes(local: &LocalIdentity, cfg: &HandshakeConfig) -> Result<Vec<u8>, HandshakeError> {
    let hello = Hello {
        version: PROTOCOL_VERSION,
        keys: *local.bound_keys(),
        nickname: cfg.nickname.clone(),
        listen_port: cfg.listen_port,
        features: 0,
    };
    crate::wire::codec::check_len(
        "nickname",
        hello.nickname.len(),
        crate::wire::limits::MAX_NICK_LEN,
    )?;
    Ok(hello.encode())
}

fn check_ephemeral(msg: &[u8]) -> Result<(), HandshakeError> {
    let mut e = [0u8; DH_LEN];
    e.copy_from_slice(&msg[..DH_LEN]);
    if is_low_order(&e) {
        return Err(HandshakeError::LowOrderKey("ephemeral"));
    }
    Ok(())
}

fn write(hs: &mut snow::HandshakeState, payload: &[u8]) -> Result<Vec<u8>, HandshakeError> {
    let mut out = vec![0u8; MAX_HANDSHAKE_MSG_LEN];
    let n = hs
        .write_message(payload, &mut out)
        .map_err(HandshakeError::Snow)?;
    out.truncate(n);
    Ok(out)
}

fn read(hs: &mut snow::HandshakeState, msg: &[u8], step: u8) -> Result<Vec<u8>, HandshakeError> {
    let mut payload = vec![0u8; msg.len()];
    let n = hs
        .read_message(msg, &mut payload)
        .map_err(|_| HandshakeError::Noise { step })?;
    payload.truncate(n);
    Ok(payload)
}

/// Check the peer's hello against what Noise authenticated.
fn verify_peer(
    hs: &snow::HandshakeState,
    payload: &[u8],
    local: &IdentityKey,
    expected: Option<IdentityKey>,
    bindings: &VerifiedBindings,
) -> Result<PeerHello, HandshakeError> {
    let remote_static = hs
        .get_remote_static()
        .ok_or(HandshakeError::NoRemoteStatic)?;
    let hello = Hello::decode(payload)?;
    if remote_static != hello.keys.noise.0 {
        return Err(HandshakeError::StaticKeyMismatch);
    }
    match bindings.verify(&hello.keys) {
        Ok(()) => {}
        Err(IdentityError::LowOrderNoiseKey) => return Err(HandshakeError::LowOrderKey("static")),
        Err(_) => return Err(HandshakeError::BadBinding),
    }
    if hello.keys.identity == *local {
        return Err(HandshakeError::SelfConnection);
    }
    if let Some(expected) = expected {
        if hello.keys.identity != expected {
            return Err(HandshakeError::WrongIdentity {
                expected,
                got: hello.keys.identity,
            });
        }
    }
    Ok(PeerHello {
        keys: hello.keys,
        nickname: hello.nickname,
        listen_port: hello.listen_port,
        features: hello.features,
    })
}

fn establish(mut hs: snow::HandshakeState, peer: PeerHello) -> Result<Established, HandshakeError> {
    // `into_transport_mode` refuses an unfinished handshake; the raw split
    // does not check, so check here.
    if !hs.is_handshake_finished() {
        return Err(HandshakeError::Snow(snow::Error::State(
            snow::error::StateProblem::HandshakeNotFinished,
        )));
    }
    let handshake_hash = hs.get_handshake_hash().to_vec();
    // The two keys of Noise's Split(); the transport seals and opens with
    // them itself (transport.rs says why).
    let (k1, k2) = hs.dangerously_get_raw_split();
    Ok(Established {
        transport: Transport::new(hs.is_initiator(), &k1, &k2),
        peer,
        handshake_hash,
    })
}

/// The dialling side, having sent message 1 and waiting for message 2.
pub struct Initiator {
    hs: snow::HandshakeState,
    hello: Vec<u8>,
    local: IdentityKey,
    expected: Option<IdentityKey>,
    bindings: VerifiedBindings,
}

impl Initiator {
    /// Begin a handshake. `expected` is the identity the caller means to
    /// reach (from a beacon or the trust store), if it knows one. Returns the
    /// state and message 1 to send.
    pub fn start(
        local: &LocalIdentity,
        cfg: &HandshakeConfig,
        expected: Option<IdentityKey>,
    ) -> Result<(Initiator, Vec<u8>), HandshakeError> {
        let hello = hello_bytes(local, cfg)?;
        let mut hs = builder(local, cfg)?
            .build_initiator()
            .map_err(HandshakeError::Snow)?;
        let msg1 = write(&mut hs, &[])?;
        Ok((
            Initiator {
                hs,
                hello,
                local: local.identity_key(),
                expected,
                bindings: cfg.bindings.clone(),
            },
            msg1,
        ))
    }

    /// Process message 2; on success returns the session and message 3.
    pub fn read_msg2(mut self, msg2: &[u8]) -> Result<(Established, Vec<u8>), HandshakeError> {
        let min = DH_LEN + ENCRYPTED_STATIC_LEN + TAG_LEN;
        if msg2.len() < min || msg2.len() > MAX_HANDSHAKE_MSG_LEN {
            return Err(HandshakeError::BadLength {
                step: 2,
                len: msg2.len(),
                expected: "96..=1024",
            });
        }
        check_ephemeral(msg2)?;
        let payload = read(&mut self.hs, msg2, 2)?;
        let peer = verify_peer(
            &self.hs,
            &payload,
            &self.local,
            self.expected,
            &self.bindings,
        )?;
        let msg3 = write(&mut self.hs, &self.hello)?;
        Ok((establish(self.hs, peer)?, msg3))
    }
}

/// The accepting side, waiting for message 1.
pub struct Responder {
    hs: snow::HandshakeState,
    hello: Vec<u8>,
    local: IdentityKey,
    bindings: VerifiedBindings,
}

impl Responder {
    pub fn new(local: &LocalIdentity, cfg: &HandshakeConfig) -> Result<Responder, HandshakeError> {
        let hello = hello_bytes(local, cfg)?;
        let hs = builder(local, cfg)?
            .build_responder()
            .map_err(HandshakeError::Snow)?;
        Ok(Responder {
            hs,
            hello,
            local: local.identity_key(),
            bindings: cfg.bindings.clone(),
        })
    }

    /// Process message 1 (exactly an ephemeral key, no payload); returns the
    /// next state and message 2.
    pub fn read_msg1(
        mut self,
        msg1: &[u8],
    ) -> Result<(ResponderAwaitingMsg3, Vec<u8>), HandshakeError> {
        if msg1.len() != HANDSHAKE_MSG1_LEN {
            return Err(HandshakeError::BadLength {
                step: 1,
                len: msg1.len(),
                expected: "32",
            });
        }
        check_ephemeral(msg1)?;
        read(&mut self.hs, msg1, 1)?;
        let msg2 = write(&mut self.hs, &self.hello)?;
        Ok((
            ResponderAwaitingMsg3 {
                hs: self.hs,
                local: self.local,
                bindings: self.bindings,
            },
            msg2,
        ))
    }
}

/// The accepting side, having sent message 2 and waiting for message 3.
pub struct ResponderAwaitingMsg3 {
    hs: snow::HandshakeState,
    local: IdentityKey,
    bindings: VerifiedBindings,
}

impl ResponderAwaitingMsg3 {
    pub fn read_msg3(mut self, msg3: &[u8]) -> Result<Established, HandshakeError> {
        let min = ENCRYPTED_STATIC_LEN + TAG_LEN;
        if msg3.len() < min || msg3.len() > MAX_HANDSHAKE_MSG_LEN {
            return Err(HandshakeError::BadLength {
                step: 3,
                len: msg3.len(),
                expected: "64..=1024",
            });
        }
        let payload = read(&mut self.hs, msg3, 3)?;
        let peer = verify_peer(&self.hs, &payload, &self.local, None, &self.bindings)?;
        establish(self.hs, peer)
    }
}

mod noise_dh;
#[cfg(test)]
mod tests;
