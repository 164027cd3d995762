//! A connected socket as the setup code holds it: plain TCP, or TLS over it (the Twilio side as a
//! server, the OpenAI side as a client). Setup (handshakes, the upgrade head, redemption, the
//! OpenAI connect) runs on tokio whichever shell relays the call; then the epoll shell keeps the
//! stream as it is ([`Stream`] is `AsyncRead + AsyncWrite`), while the io_uring shell takes it
//! apart with [`Stream::into_parts`]: the file descriptor, and the rustls connection with
//! whatever it already buffered, so not a byte is lost in the hand-over.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

/// A socket, plain or TLS.
pub(crate) enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS accepted from Twilio (or its proxy).
    Server(tokio_rustls::server::TlsStream<TcpStream>),
    /// TLS to OpenAI.
    Client(tokio_rustls::client::TlsStream<TcpStream>),
}

/// A stream taken apart for the io_uring shell: a blocking-mode socket (io_uring waits for it,
/// never the thread) and its TLS state, if any.
pub(crate) struct Parts {
    /// The socket, out of tokio's reactor.
    pub(crate) tcp: std::net::TcpStream,
    /// The session, with any records it has already read or still has to write.
    pub(crate) tls: Option<Box<rustls::Connection>>,
}

impl Stream {
    /// Leaves tokio: the socket is deregistered from the reactor and put back in blocking mode.
    pub(crate) fn into_parts(self) -> io::Result<Parts> {
        let (tcp, tls) = match self {
            Stream::Plain(tcp) => (tcp, None),
            Stream::Server(s) => {
                let (tcp, conn) = s.into_inner();
                (tcp, Some(Box::new(rustls::Connection::Server(conn))))
            }
            Stream::Client(s) => {
                let (tcp, conn) = s.into_inner();
                (tcp, Some(Box::new(rustls::Connection::Client(conn))))
            }
        };
        let tcp = tcp.into_std()?;
        tcp.set_nonblocking(false)?;
        Ok(Parts { tcp, tls })
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Server(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Client(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Server(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Client(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Server(s) => Pin::new(s).poll_flush(cx),
            Stream::Client(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Server(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Client(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
