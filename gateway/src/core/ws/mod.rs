//! WebSocket codec over caller-owned buffers.
