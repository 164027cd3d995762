//! Why a WebSocket peer's bytes were refused, and the close code each reason maps to.

use super::close_code;

/// A violation by the peer (or a limit hit). Each maps to the close code to send before
/// closing ([`WsError::close_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// A client frame arrived unmasked (RFC 6455 §5.1: the server must close).
    #[error("client frame is not masked")]
    UnmaskedClientFrame,
    /// A server frame arrived masked (§5.1: the client must close).
    #[error("server frame is masked")]
    MaskedServerFrame,
    /// RSV1-3 set without a negotiated extension.
    #[error("reserved bits set in frame header (no extension was negotiated)")]
    ReservedBits,
    /// Opcode 3-7 or 11-15.
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// Control frame with a payload over 125 bytes.
    #[error("control frame payload of {0} bytes (max 125)")]
    ControlFrameTooLong(u64),
    /// Control frame with FIN clear.
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// Continuation frame with no message in progress.
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// New text/binary frame while a fragmented message is in progress.
    #[error("new data frame while a fragmented message is unfinished")]
    ExpectedContinuation,
    /// Extended length not in its shortest form, or with the top bit set.
    #[error("frame length is not minimally encoded")]
    NonMinimalLength,
    /// Close frame with a 1-byte payload or an invalid code.
    #[error("invalid close frame (code {0})")]
    InvalidClose(u16),
    /// Text message or close reason that is not UTF-8.
    #[error("text is not valid UTF-8")]
    InvalidUtf8,
    /// A frame's payload is over the configured limit.
    #[error("frame payload of {len} bytes exceeds the limit of {max} (Limits::max_frame)")]
    FrameTooLarge {
        /// Declared payload length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A fragmented message grew over the configured limit.
    #[error("message of {len}+ bytes exceeds the limit of {max} (Limits::max_message)")]
    MessageTooLarge {
        /// Bytes so far.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A frame arrived after the peer's close frame.
    #[error("frame received after the peer's close frame")]
    AfterClose,
}

impl WsError {
    /// The close code to send for this error.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::InvalidUtf8 => close_code::INVALID_PAYLOAD,
            WsError::FrameTooLarge { .. } | WsError::MessageTooLarge { .. } => close_code::MESSAGE_TOO_BIG,
            _ => close_code::PROTOCOL_ERROR,
        }
    }
}
