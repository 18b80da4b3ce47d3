//! [`TurmoilTransport`]: the `pp_net::Transport` seam implemented on turmoil's simulated TCP, so
//! the real pp-net (and the real pp-server on top of it) runs unchanged inside a simulation.
//!
//! turmoil's TCP delivers segments in order but, unlike a kernel, never retransmits: a segment
//! dropped by a failed or partitioned link leaves a gap that stalls the stream for good. To the
//! node this looks like a peer that went silent, which pp-net's request and idle timeouts must
//! detect; that is exactly the failure the simulation wants to exercise.

use std::io;
use std::net::SocketAddr;

use pp_net::Transport;

/// turmoil's simulated TCP behind pp-net's transport seam. Only usable inside a turmoil host.
#[derive(Debug, Clone, Copy, Default)]
pub struct TurmoilTransport;

impl Transport for TurmoilTransport {
    type Stream = turmoil::net::TcpStream;
    type Listener = turmoil::net::TcpListener;

    async fn bind(&self, addr: &str) -> io::Result<Self::Listener> {
        turmoil::net::TcpListener::bind(addr).await
    }

    async fn accept(listener: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)> {
        listener.accept().await
    }

    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }

    async fn connect(&self, addr: &str) -> io::Result<Self::Stream> {
        turmoil::net::TcpStream::connect(addr).await
    }

    fn peer_addr(stream: &Self::Stream) -> Option<SocketAddr> {
        stream.peer_addr().ok()
    }
}
