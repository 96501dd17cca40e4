//! The handshake payload ("hello") carried encrypted in Noise XX messages 2
//! (responder) and 3 (initiator).

use super::codec::{check_len, decode_exact, encode, WireError};
use super::limits::{MAX_NICK_LEN, PROTOCOL_VERSION};
use crate::identity::BoundKeys;
use serde::{Deserialize, Serialize};

/// Who the sender is, proven by the binding signature and by the Noise
/// handshake itself (the Noise static key must equal `keys.noise`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`].
    pub version: u8,
    pub keys: BoundKeys,
    /// At most [`MAX_NICK_LEN`] bytes of UTF-8. Untrusted.
    pub nickname: String,
    /// TCP port the sender accepts links on, 0 if none. Lets the other side
    /// remember where to reach the sender later.
    pub listen_port: u16,
    /// Feature bits; none are defined in version 1, receivers ignore unknown bits.
    pub features: u64,
}

impl Hello {
    pub fn encode(&self) -> Vec<u8> {
        encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Hello, WireError> {
        let h: Hello = decode_exact(bytes)?;
        if h.version != PROTOCOL_VERSION {
            return Err(WireError::Version(h.version));
        }
        check_len("nickname", h.nickname.len(), MAX_NICK_LEN)?;
        Ok(h)
    }
}
