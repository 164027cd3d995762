//! One `SO_REUSEPORT` listener per worker on the same address (socket2): the kernel hashes
//! each new connection to one of them, so accepting never crosses threads. Port 0 is resolved
//! by the first listener and reused by the others (tests bind `127.0.0.1:0`).

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Accept backlog per listener.
const BACKLOG: i32 = 1024;

/// A bound, listening, non-blocking std listener with `SO_REUSEPORT` (and `SO_REUSEADDR`).
pub(crate) fn reuseport_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// `n` listeners on `addr`; the actual address (port 0 resolved) comes with them.
pub(crate) fn listeners(addr: SocketAddr, n: usize) -> io::Result<(SocketAddr, Vec<std::net::TcpListener>)> {
    let first = reuseport_listener(addr)?;
    let bound = first.local_addr()?;
    let mut all = vec![first];
    for _ in 1..n {
        all.push(reuseport_listener(bound)?);
    }
    Ok((bound, all))
}
