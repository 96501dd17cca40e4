//! Every byte format of natter, with no IO. Decoders here are exact: one
//! canonical encoding, no trailing bytes, limits from [`limits`].

pub mod beacon;
pub mod codec;
pub mod frame;
pub mod framing;
pub mod hello;
pub mod limits;
pub mod room;
pub mod ticket;

pub use beacon::{decode_beacon, encode_beacon, BeaconBody};
pub use codec::WireError;
pub use frame::{
    decode_frames, Close, CloseReason, DirectMessage, Frame, MessageId, PublicMessage,
};
pub use framing::{Deframer, FramingError};
pub use hello::Hello;
pub use room::{
    is_room_name, KeyEnvelope, RoomChange, RoomControl, RoomFounding, RoomId, RoomPost, SealedPost,
};
pub use ticket::{Reach, Ticket, TicketError, WanAddr};
