//! Reaching a peer beyond the LAN (PROTOCOL.md section 12): its iroh
//! addressing as a frame body ([`Reach`]) and, with its identity, as a
//! ticket a person hands over as text ([`Ticket`]).
//!
//! The iroh endpoint id of a natter node *is* its identity key, so a ticket
//! needs no second key and no signature binding two keys: the identity it
//! names is the one both iroh's TLS and natter's Noise handshake must
//! authenticate. Everything else in a ticket is a hint where to look; a
//! wrong hint costs a failed dial, never a wrong peer.

use super::codec::{decode_exact, encode, WireError};
use super::limits::{MAX_REACH_ADDRS, MAX_RELAY_URL_LEN, MAX_TICKET_LEN};
use crate::identity::IdentityKey;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Text every ticket starts with.
pub const TICKET_PREFIX: &str = "natter";
/// Version byte of the ticket body.
pub const TICKET_VERSION: u8 = 1;
/// Domain of the ticket checksum.
pub const CHECKSUM_DOMAIN: &[u8] = b"natter/1 ticket";
/// Bytes of checksum after the body.
const CHECKSUM_LEN: usize = 4;

/// An IP address and UDP port where a peer's iroh endpoint may answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WanAddr {
    V4([u8; 4], u16),
    V6([u8; 16], u16),
}

impl From<SocketAddr> for WanAddr {
    fn from(a: SocketAddr) -> Self {
        match a.ip() {
            IpAddr::V4(ip) => WanAddr::V4(ip.octets(), a.port()),
            IpAddr::V6(ip) => WanAddr::V6(ip.octets(), a.port()),
        }
    }
}

impl From<WanAddr> for SocketAddr {
    fn from(a: WanAddr) -> Self {
        match a {
            WanAddr::V4(ip, port) => SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port),
            WanAddr::V6(ip, port) => SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port),
        }
    }
}

/// Where a peer's iroh endpoint can be reached: its home relay and the
/// addresses it knows for itself. Body of frame 17 and part of a ticket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reach {
    /// `http://` or `https://` URL of the relay the endpoint is connected to.
    pub relay: Option<String>,
    /// At most [`MAX_REACH_ADDRS`].
    pub addrs: Vec<WanAddr>,
}

impl Reach {
    pub fn new(relay: Option<String>, addrs: impl IntoIterator<Item = SocketAddr>) -> Self {
        Reach {
            relay,
            addrs: addrs
                .into_iter()
                .take(MAX_REACH_ADDRS)
                .map(WanAddr::from)
                .collect(),
        }
    }

    /// The limits of section 12.1: a relay URL that is short, printable
    /// ASCII and `http(s)://`, and few addresses. Checked on every decode.
    pub fn validate(&self) -> Result<(), WireError> {
        if self.addrs.len() > MAX_REACH_ADDRS {
            return Err(WireError::TooLong {
                what: "reach addresses",
                len: self.addrs.len(),
                max: MAX_REACH_ADDRS,
            });
        }
        if let Some(url) = &self.relay {
            check_relay_url(url)?;
        }
        Ok(())
    }

    pub fn socket_addrs(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.addrs.iter().map(|a| SocketAddr::from(*a))
    }

    /// Nothing to dial: no relay and no address.
    pub fn is_empty(&self) -> bool {
        self.relay.is_none() && self.addrs.is_empty()
    }
}

/// Why a relay URL is refused.
pub fn check_relay_url(url: &str) -> Result<(), WireError> {
    if url.len() > MAX_RELAY_URL_LEN {
        return Err(WireError::TooLong {
            what: "relay URL",
            len: url.len(),
            max: MAX_RELAY_URL_LEN,
        });
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| WireError::Malformed("relay URL is not http:// or https://".into()))?;
    if rest.is_empty() || !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(WireError::Malformed(
            "relay URL has no host, or a space or control character".into(),
        ));
    }
    Ok(())
}

/// Postcard body of a ticket, before its checksum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct TicketBody {
    version: u8,
    identity: IdentityKey,
    reach: Reach,
}

/// A peer's identity and where to reach it beyond the LAN, as text:
/// `natter` followed by the lowercase, unpadded base32 (RFC 4648) of
/// `postcard(version, identity, reach) || checksum`, where the checksum is
/// the first 4 bytes of SHA-256(`"natter/1 ticket"` || body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub identity: IdentityKey,
    pub reach: Reach,
}

/// Why a ticket was refused; each says what is wrong with the text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TicketError {
    #[error("a ticket is at most {max} characters; this is {len}")]
    TooLong { len: usize, max: usize },
    #[error("not a natter ticket (it starts with \"natter\")")]
    Prefix,
    #[error("a ticket is base32 after \"natter\": letters a-z and digits 2-7")]
    Encoding,
    #[error("the ticket is cut short")]
    TooShort,
    #[error("the ticket's checksum does not match: a character was changed or lost")]
    Checksum,
    #[error("ticket version {0} is not supported (this natter reads version 1)")]
    Version(u8),
    #[error("the ticket's identity is not a valid ed25519 key")]
    BadIdentity,
    #[error("malformed ticket: {0}")]
    Body(WireError),
}

const BASE32: data_encoding::Encoding = data_encoding::BASE32_NOPAD;

impl Ticket {
    pub fn encode(&self) -> String {
        let mut bytes = encode(&TicketBody {
            version: TICKET_VERSION,
            identity: self.identity,
            reach: self.reach.clone(),
        });
        let sum = checksum(&bytes);
        bytes.extend_from_slice(&sum);
        let mut text = String::from(TICKET_PREFIX);
        text.push_str(&BASE32.encode(&bytes).to_ascii_lowercase());
        text
    }

    /// Decode a ticket as a person pasted it: surrounding ASCII white
    /// space and upper-case letters are accepted, nothing else is forgiven
    /// (section 12.5 of docs/PROTOCOL.md, which another implementation
    /// follows: not Unicode's white space, which `str::trim` would take).
    pub fn decode(text: &str) -> Result<Ticket, TicketError> {
        let text = text.trim_ascii();
        if text.len() > MAX_TICKET_LEN {
            return Err(TicketError::TooLong {
                len: text.len(),
                max: MAX_TICKET_LEN,
            });
        }
        let lower = text.to_ascii_lowercase();
        let data = lower
            .strip_prefix(TICKET_PREFIX)
            .ok_or(TicketError::Prefix)?;
        let bytes = BASE32
            .decode(data.to_ascii_uppercase().as_bytes())
            .map_err(|_| TicketError::Encoding)?;
        if bytes.len() <= CHECKSUM_LEN {
            return Err(TicketError::TooShort);
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        if checksum(body) != sum {
            return Err(TicketError::Checksum);
        }
        // The version is the body's first byte (a u8 is one byte in postcard),
        // read before the rest so a later version gets its own error.
        match body.first() {
            Some(&TICKET_VERSION) => {}
            Some(&v) => return Err(TicketError::Version(v)),
            None => return Err(TicketError::TooShort),
        }
        let body: TicketBody = decode_exact(body).map_err(TicketError::Body)?;
        body.reach.validate().map_err(TicketError::Body)?;
        if ed25519_dalek::VerifyingKey::from_bytes(&body.identity.0).is_err() {
            return Err(TicketError::BadIdentity);
        }
        Ok(Ticket {
            identity: body.identity,
            reach: body.reach,
        })
    }

    /// Whether `text` is meant as a ticket rather than a `host:port`:
    /// `natter` and letters and digits only (a host name such as
    /// `natterbox.local:47475` has a dot or a colon).
    pub fn looks_like(text: &str) -> bool {
        let text = text.trim();
        text.get(..TICKET_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(TICKET_PREFIX))
            && text.len() > TICKET_PREFIX.len()
            && text.bytes().all(|b| b.is_ascii_alphanumeric())
    }
}

fn checksum(body: &[u8]) -> [u8; CHECKSUM_LEN] {
    let digest = Sha256::new()
        .chain_update(CHECKSUM_DOMAIN)
        .chain_update(body)
        .finalize();
    let mut out = [0u8; CHECKSUM_LEN];
    out.copy_from_slice(&digest[..CHECKSUM_LEN]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> IdentityKey {
        // The ed25519 base point: a valid key.
        let mut k = [0u8; 32];
        k[0] = 0x58;
        k[1..].fill(0x66);
        IdentityKey(k)
    }

    fn ticket() -> Ticket {
        Ticket {
            identity: key(),
            reach: Reach::new(
                Some("https://relay.example.org".into()),
                [
                    "192.0.2.7:4433".parse().unwrap(),
                    "[2001:db8::1]:4433".parse().unwrap(),
                ],
            ),
        }
    }

    #[test]
    fn round_trip_and_forgiving_of_case_and_space() {
        let t = ticket();
        let text = t.encode();
        assert!(text.starts_with("natter"));
        assert!(Ticket::looks_like(&text));
        assert!(!Ticket::looks_like("natterbox.local:47475"));
        assert!(!Ticket::looks_like("natter"));
        assert_eq!(Ticket::decode(&text).unwrap(), t);
        let shouted = format!("  {}\n", text.to_ascii_uppercase());
        assert_eq!(Ticket::decode(&shouted).unwrap(), t);
        let bare = Ticket {
            identity: key(),
            reach: Reach::default(),
        };
        assert_eq!(Ticket::decode(&bare.encode()).unwrap(), bare);
    }

    #[test]
    fn every_changed_character_is_caught() {
        let text = ticket().encode();
        for i in TICKET_PREFIX.len()..text.len() {
            let mut b = text.clone().into_bytes();
            b[i] = if b[i] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(b).unwrap();
            assert!(Ticket::decode(&changed).is_err(), "change at {i} accepted");
        }
        // Cut at every length.
        for n in 0..text.len() {
            assert!(Ticket::decode(&text[..n]).is_err(), "prefix {n} accepted");
        }
    }

    #[test]
    fn typed_errors() {
        assert_eq!(Ticket::decode("127.0.0.1:4000"), Err(TicketError::Prefix));
        assert_eq!(Ticket::decode("natter!!"), Err(TicketError::Encoding));
        assert_eq!(Ticket::decode("natteraa"), Err(TicketError::TooShort));
        let long = format!("natter{}", "a".repeat(MAX_TICKET_LEN));
        assert!(matches!(
            Ticket::decode(&long),
            Err(TicketError::TooLong { .. })
        ));
        let text = ticket().encode();
        assert_eq!(Ticket::decode(&format!(" \t{text}\r\n")), Ok(ticket()));
        // Only ASCII white space is trimmed; the limit counts bytes.
        assert_eq!(
            Ticket::decode(&format!("\u{a0}{text}")),
            Err(TicketError::Prefix)
        );
        let wide = format!("natter{}", "\u{e9}".repeat(MAX_TICKET_LEN / 2));
        assert!(matches!(
            Ticket::decode(&wide),
            Err(TicketError::TooLong { .. })
        ));
        let mut b = text.into_bytes();
        let last = b.len() - 1;
        b[last] = if b[last] == b'a' { b'b' } else { b'a' };
        assert!(matches!(
            Ticket::decode(std::str::from_utf8(&b).unwrap()),
            Err(TicketError::Checksum | TicketError::Encoding)
        ));
    }

    /// Bodies that pass the checksum but break a rule of section 12.
    fn with_checksum(body: &[u8]) -> String {
        let mut bytes = body.to_vec();
        bytes.extend_from_slice(&checksum(body));
        format!("natter{}", BASE32.encode(&bytes).to_ascii_lowercase())
    }

    #[test]
    fn well_summed_but_wrong_bodies() {
        let good = encode(&TicketBody {
            version: 1,
            identity: key(),
            reach: Reach::default(),
        });
        let mut v2 = good.clone();
        v2[0] = 2;
        assert_eq!(
            Ticket::decode(&with_checksum(&v2)),
            Err(TicketError::Version(2))
        );
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(matches!(
            Ticket::decode(&with_checksum(&trailing)),
            Err(TicketError::Body(WireError::TrailingBytes(1)))
        ));
        let bad_key = encode(&TicketBody {
            version: 1,
            identity: IdentityKey([
                0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, 0, 0,
            ]),
            reach: Reach::default(),
        });
        assert_eq!(
            Ticket::decode(&with_checksum(&bad_key)),
            Err(TicketError::BadIdentity)
        );
        for url in ["ftp://x", "https://", "https://a b", "http://\u{7f}"] {
            let body = encode(&TicketBody {
                version: 1,
                identity: key(),
                reach: Reach {
                    relay: Some(url.into()),
                    addrs: vec![],
                },
            });
            assert!(
                matches!(
                    Ticket::decode(&with_checksum(&body)),
                    Err(TicketError::Body(_))
                ),
                "{url}"
            );
        }
        let many = encode(&TicketBody {
            version: 1,
            identity: key(),
            reach: Reach {
                relay: None,
                addrs: vec![WanAddr::V4([1, 2, 3, 4], 1); MAX_REACH_ADDRS + 1],
            },
        });
        assert!(matches!(
            Ticket::decode(&with_checksum(&many)),
            Err(TicketError::Body(WireError::TooLong { .. }))
        ));
    }
}
