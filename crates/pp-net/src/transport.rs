//! The transport seam: how connections are made, so tests can swap real TCP for a simulated
//! network.
//!
//! Everything above this trait is generic over it. Production uses [`TcpTransport`] (tokio TCP);
//! the deterministic simulator (turmoil) gets a ten-line implementation in the tests. A trait, not
//! a cargo feature, because features merge across a workspace test run and would silently put
//! every node on the simulated network.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};

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
    /// Open a connection to `addr` from the local address `local` (the IP this node listens
    /// on), so that the peer sees the connection come from the address it can dial back. The
    /// default ignores `local` (transports without source addresses).
    fn connect_from(
        &self,
        local: IpAddr,
        addr: &str,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send {
        let _ = local;
        self.connect(addr)
    }
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

    /// Binds the socket to `local` before connecting when `local` is a specific address of the
    /// same family and scope (loopback or not) as the destination. A node listening on
    /// 127.0.0.5 then dials from 127.0.0.5, not from the kernel's pick (127.0.0.1), so the peer
    /// records the address the node really listens on; on a host with several addresses, a node
    /// bound to one of them dials from it. Otherwise (a wildcard listener, or a loopback node
    /// reaching a public address) the kernel chooses, as with [`Transport::connect`].
    async fn connect_from(&self, local: IpAddr, addr: &str) -> io::Result<Self::Stream> {
        if local.is_unspecified() {
            return self.connect(addr).await;
        }
        let mut last = None;
        for remote in tokio::net::lookup_host(addr).await? {
            let bind = remote.is_ipv4() == local.is_ipv4()
                && remote.ip().is_loopback() == local.is_loopback();
            let socket = if remote.is_ipv4() {
                tokio::net::TcpSocket::new_v4()?
            } else {
                tokio::net::TcpSocket::new_v6()?
            };
            if bind {
                socket.bind(SocketAddr::new(local, 0))?;
            }
            match socket.connect(remote).await {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    return Ok(stream);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{addr} resolves to no address"),
            )
        }))
    }

    fn peer_addr(stream: &Self::Stream) -> Option<SocketAddr> {
        stream.peer_addr().ok()
    }
}
