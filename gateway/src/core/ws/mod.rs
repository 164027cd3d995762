//! WebSocket (RFC 6455) over caller-owned buffers: no socket, no allocation per frame.
//!
//! - [`upgrade`]: the HTTP/1.1 handshake, server side (Twilio → us) and client side (us → OpenAI).
//! - [`decoder`]: bytes → frames → messages, unmasking in place, with limits and every check
//!   the RFC asks of the receiving side.
//! - [`encoder`]: messages → frames into a caller's send buffer, masked with a per-connection
//!   CSPRNG key stream on the client side.
//! - [`mask`]: the XOR itself, 8 bytes at a time.
//!
//! tungstenite provides the frame header parser/formatter and the accept-key derivation; what it
//! keeps private (masking, in-place decoding) is written here.

pub mod decoder;
pub mod encoder;
pub mod error;
pub mod mask;
pub mod upgrade;

pub use decoder::{Decoded, Decoder, Message};
pub use encoder::Encoder;
pub use error::WsError;
pub use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

/// Which end of the connection this codec is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We accepted the connection (Twilio → gateway): incoming frames must be masked, ours are not.
    Server,
    /// We opened the connection (gateway → OpenAI): incoming frames must not be masked, ours are.
    Client,
}

/// Size limits, named in configuration and in the errors they produce (close code 1009).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload of a single frame.
    pub max_frame: usize,
    /// Largest message (sum of a fragmented message's payloads).
    pub max_message: usize,
}

impl Limits {
    /// Twilio side: media events are ~400 bytes; 64 KiB leaves room for any `start` with
    /// custom parameters while bounding memory per call.
    pub const TWILIO: Limits = Limits { max_frame: 64 * 1024, max_message: 64 * 1024 };
    /// OpenAI side: audio deltas of a few seconds and `session.*` echoes with long instructions.
    pub const OPENAI: Limits = Limits { max_frame: 1024 * 1024, max_message: 1024 * 1024 };
}

/// Close codes this codec sends (RFC 6455 §7.4.1).
pub mod close_code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// Endpoint going away (shutdown, session expired).
    pub const GOING_AWAY: u16 = 1001;
    /// Protocol error.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Data type not accepted.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// Text frame that is not UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// Policy violation.
    pub const POLICY_VIOLATION: u16 = 1008;
    /// Frame or message too big.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// Unexpected condition on our side.
    pub const INTERNAL_ERROR: u16 = 1011;

    /// Whether a peer may send `code` in a close frame (§7.4.1–7.4.2).
    pub fn is_valid_received(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}
