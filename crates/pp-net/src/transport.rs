//! The transport seam: how connections are made, so tests can swap real TCP for a simulated
//! network.
//!
//! Everything above this trait is generic over it. Production uses [`TcpTransport`] (tokio TCP);
//! the deterministic simulator (turmoil) gets a ten-line implementation in the tests. A trait, not
//! a cargo feature, because features merge across a workspace test run and would silently put
//! every node on the simulated network.

use std::future::Future;
use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};

/// Binds listeners, accepts and opens byte-stream connections.
pub trait Transport: Clone + Send + Sync + 'static {
    /// A connected, bidirectional byte stream.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    /// A bound listener.
    type Listener: Send + Sync + 'static;

    /// Bind a listener to `addr` (`"127.0.0.1:0"` picks an ephemeral port).
    fn bind(&self, addr: &str) -> impl Future<Output = io::Result<Self::Listener>> + Send;
    /// Wait for the next inbound connection.
    fn accept(
        listener: &Self::Listener,
    ) -> impl Future<Output = io::Result<(Self::Stream, SocketAddr)>> + Send;
    /// The address the listener is bound to.
    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr>;
    /// Open a connection to `addr`.
    fn connect(&self, addr: &str) -> impl Future<Output = io::Result<Self::Stream>> + Send;
    /// The remote address of a connected stream, if the transport can tell (used for the peer
    /// table; when `None`, the dialed address is used if it is an `ip:port`).
    fn peer_addr(stream: &Self::Stream) -> Option<SocketAddr> {
        let _ = stream;
        None
    }
}

/// Real TCP via tokio.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpTransport;

impl Transport for TcpTransport {
    type Stream = tokio::net::TcpStream;
    type Listener = tokio::net::TcpListener;

    async fn bind(&self, addr: &str) -> io::Result<Self::Listener> {
        tokio::net::TcpListener::bind(addr).await
    }

    async fn accept(listener: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)> {
        let (stream, addr) = listener.accept().await?;
        // Frames are small and latency matters more than packet count for request/response.
        stream.set_nodelay(true)?;
        Ok((stream, addr))
    }

    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn connect(&self, addr: &str) -> io::Result<Self::Stream> {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    fn peer_addr(stream: &Self::Stream) -> Option<SocketAddr> {
        stream.peer_addr().ok()
    }
}
