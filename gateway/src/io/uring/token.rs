//! What a completion is about: the `user_data` of every submission names the operation and the
//! socket ([`LegId`]: slab index and generation, so a completion for a freed and reused slot is
//! recognised), packed into the 64 bits io_uring hands back.

/// A socket's place in the engine's slab, with the generation that makes reuse safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct LegId {
    /// Index in the slab.
    pub(super) index: u32,
    /// Generation of that slot (24 bits are kept).
    pub(super) generation: u32,
}

/// The operation a completion finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// A receive into the socket's buffer.
    Recv,
    /// A send of the socket's output buffer.
    Send,
    /// The socket's `shutdown(SHUT_RDWR)` (it is being retired).
    Shutdown,
    /// The read of the engine's wake-up eventfd.
    Wake,
}

const GEN_MASK: u32 = 0x00ff_ffff;

/// Packs an operation on a socket.
pub(super) fn encode(op: Op, leg: LegId) -> u64 {
    let op = match op {
        Op::Recv => 1u64,
        Op::Send => 2,
        Op::Shutdown => 3,
        Op::Wake => 4,
    };
    (u64::from(leg.index) << 32) | (u64::from(leg.generation & GEN_MASK) << 8) | op
}

/// Unpacks [`encode`]; `None` for a value the engine never submitted.
pub(super) fn decode(user_data: u64) -> Option<(Op, LegId)> {
    let op = match user_data & 0xff {
        1 => Op::Recv,
        2 => Op::Send,
        3 => Op::Shutdown,
        4 => Op::Wake,
        _ => return None,
    };
    // Truncations are exact: the index was a u32 and the generation 24 bits.
    #[allow(clippy::cast_possible_truncation)]
    let leg = LegId { index: (user_data >> 32) as u32, generation: ((user_data >> 8) as u32) & GEN_MASK };
    Some((op, leg))
}

/// Whether `generation` (as stored in a slab slot) is the one packed in a completion.
pub(super) fn same_generation(stored: u32, packed: u32) -> bool {
    stored & GEN_MASK == packed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_op_and_wraps_the_generation() {
        for op in [Op::Recv, Op::Send, Op::Shutdown, Op::Wake] {
            let leg = LegId { index: u32::MAX - 3, generation: 0x0123_4567 };
            let (got_op, got) = decode(encode(op, leg)).unwrap();
            assert_eq!(got_op, op);
            assert_eq!(got.index, leg.index);
            assert!(same_generation(leg.generation, got.generation));
            assert!(!same_generation(leg.generation + 1, got.generation));
        }
        assert_eq!(decode(0), None, "0 is never submitted");
    }
}
