//! Every size and rate limit of the protocol, in one place.
//!
//! PROTOCOL.md quotes these numbers; a test checks that the document and the
//! constants agree, so change both together.

/// Protocol version carried in beacons and handshake payloads.
pub const PROTOCOL_VERSION: u8 = 1;

/// Largest UDP beacon accepted or sent, signature included.
pub const MAX_BEACON_LEN: usize = 512;

/// Largest nickname, in bytes of UTF-8, on the wire.
pub const MAX_NICK_LEN: usize = 32;

/// Largest chat text, in bytes of UTF-8.
pub const MAX_TEXT_LEN: usize = 16 * 1024;

/// Largest free-text detail in a `Close` frame, in bytes of UTF-8.
pub const MAX_CLOSE_DETAIL_LEN: usize = 256;

/// Most message ids in one `Ack` frame.
pub const MAX_ACK_IDS: usize = 1024;

/// Largest Noise message (the u16 length prefix allows no more).
pub const MAX_NOISE_MSG_LEN: usize = 65_535;

/// Poly1305 tag appended to every Noise transport message.
pub const NOISE_TAG_LEN: usize = 16;

/// Largest plaintext carried by one Noise transport message.
pub const MAX_PLAINTEXT_LEN: usize = MAX_NOISE_MSG_LEN - NOISE_TAG_LEN;

/// Largest handshake message accepted on the wire. Real ones are far
/// smaller (msg1 is exactly 32 bytes); the bound lets a deframer reject
/// garbage before buffering it.
pub const MAX_HANDSHAKE_MSG_LEN: usize = 1024;

/// Exact length of the first handshake message (`-> e`, empty payload).
pub const HANDSHAKE_MSG1_LEN: usize = 32;

/// Deadline for a whole handshake, from TCP accept/connect to established.
pub const HANDSHAKE_DEADLINE_MS: u64 = 10_000;

/// Largest file name in a `FileOffer`, in bytes of UTF-8.
pub const MAX_FILE_NAME_LEN: usize = 255;

/// A chunk group: the unit of verified file data (BLAKE3 chunks of 1 KiB,
/// 16 to a group, as bao-tree's `BlockSize::from_chunk_log(4)`).
pub const FILE_GROUP_SIZE: u64 = 16 * 1024;

/// Most chunk groups in one `FileData` frame (48 KiB with its proof fits
/// one Noise message).
pub const MAX_DATA_GROUPS: u8 = 3;

/// Most chunk groups one `FileRequest` may ask for (64 MiB).
pub const MAX_REQUEST_GROUPS: u32 = 4096;

/// Largest room name (`RoomPost` by name in `Rooms`), in bytes; names are
/// ASCII `a-z 0-9 - _`, starting with a letter or digit.
pub const MAX_ROOM_NAME_LEN: usize = 32;

/// Most room names in one `Rooms` frame.
pub const MAX_ROOMS_ANNOUNCED: usize = 64;

/// Most members of an invite-only room: a key rotation carries one sealed
/// key per remaining member in one `RoomControl`.
pub const MAX_ROOM_MEMBERS: usize = 256;

/// Longest ticket text (`natter…`) a decoder looks at.
pub const MAX_TICKET_LEN: usize = 1024;

/// Most addresses in a ticket or a `Reach` frame.
pub const MAX_REACH_ADDRS: usize = 16;

/// Longest relay URL in a ticket or a `Reach` frame.
pub const MAX_RELAY_URL_LEN: usize = 256;
