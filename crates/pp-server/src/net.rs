//! The node's view of the peer-to-peer network, as an object-safe trait.
//!
//! `pp_net::Network<T>` is generic over its transport (tokio TCP in production, turmoil in
//! simulations). The server talks to it only through [`PeerNet`], so that nothing else in this
//! crate is generic: a simulated server differs from a real one only in the `Network` it was
//! started with ([`Server::start_with_transport`](crate::Server::start_with_transport)). A node
//! without P2P has a [`NoopNet`].

use std::net::SocketAddr;

use futures::future::BoxFuture;
use pp_ledger::{Block, Hash, SignedHeader, Transaction};

use pp_net::{
    BanInfo, BanTarget, BookCounts, Misbehaviour, NetError, NetStatsSnapshot, Network, PeerId,
    PeerInfo, Transport,
};

/// What the server needs from the network layer.
pub trait PeerNet: Send + Sync + 'static {
    /// The bound p2p address.
    fn local_addr(&self) -> SocketAddr;
    /// Connected peers.
    fn peers(&self) -> Vec<PeerInfo>;
    /// Number of connected peers.
    fn peer_count(&self) -> usize;
    /// Addresses we know of: configured ones and the address book's.
    fn known_addrs(&self) -> Vec<String>;
    /// Sizes of the address book.
    fn book_counts(&self) -> BookCounts {
        BookCounts::default()
    }
    /// Remembers an address and keeps dialing it while below `max_peers`.
    fn add_known_addr(&self, addr: &str);
    /// Announces a block to every peer except `except`.
    fn broadcast_block(&self, block: &Block, except: Option<PeerId>);
    /// Announces a transaction to every peer except `except`.
    fn broadcast_tx(&self, tx: &Transaction, except: Option<PeerId>);
    /// Keeps the tip we announce fresh.
    fn update_tip(&self, index: u64, hash: Hash);
    /// Scores an offence against a peer (banned past a threshold).
    fn penalize(&self, peer: PeerId, offence: Misbehaviour, reason: &str);
    /// Records that a peer delivered a valid block or transaction (the last to be evicted).
    fn credit(&self, _peer: PeerId) {}
    /// Bans in force.
    fn bans(&self) -> Vec<BanInfo> {
        Vec::new()
    }
    /// Bans `target` for `duration` as the operator; false if refused.
    fn ban(&self, _target: BanTarget, _duration: std::time::Duration, _reason: &str) -> bool {
        false
    }
    /// Lifts a ban; true if one was in force.
    fn unban(&self, _target: BanTarget) -> bool {
        false
    }
    /// Traffic, throttling, penalty, ban and handshake counters.
    fn stats(&self) -> NetStatsSnapshot {
        NetStatsSnapshot::default()
    }
    /// Dials `addr` and completes the handshake.
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, Result<PeerInfo, NetError>>;
    /// Best-chain blocks of `peer` from `from_index`.
    fn get_blocks(
        &self,
        peer: PeerId,
        from_index: u64,
        count: u32,
    ) -> BoxFuture<'_, Result<Vec<Block>, NetError>>;
    /// Signed headers of `peer` from the fork point with our `locator`.
    fn get_headers(
        &self,
        peer: PeerId,
        locator: Vec<Hash>,
        count: u32,
    ) -> BoxFuture<'_, Result<Vec<SignedHeader>, NetError>>;
    /// Whether a frame `peer` delivered still waits for this node's blocking pool to decode it
    /// (a deadline on the peer's answer does not count that wait against the peer).
    fn decoding_from(&self, _peer: PeerId) -> bool {
        false
    }
    /// Graceful shutdown of every connection and task.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

impl<T: Transport> PeerNet for Network<T> {
    fn local_addr(&self) -> SocketAddr {
        Network::local_addr(self)
    }
    fn peers(&self) -> Vec<PeerInfo> {
        Network::peers(self)
    }
    fn peer_count(&self) -> usize {
        Network::peer_count(self)
    }
    fn known_addrs(&self) -> Vec<String> {
        Network::known_addrs(self)
    }
    fn add_known_addr(&self, addr: &str) {
        Network::add_known_addr(self, addr)
    }
    fn book_counts(&self) -> BookCounts {
        Network::book_counts(self)
    }
    fn broadcast_block(&self, block: &Block, except: Option<PeerId>) {
        Network::broadcast_block(self, block, except)
    }
    fn broadcast_tx(&self, tx: &Transaction, except: Option<PeerId>) {
        Network::broadcast_tx(self, tx, except)
    }
    fn update_tip(&self, index: u64, hash: Hash) {
        Network::update_tip(self, index, hash)
    }
    fn penalize(&self, peer: PeerId, offence: Misbehaviour, reason: &str) {
        Network::penalize(self, peer, offence, reason)
    }
    fn credit(&self, peer: PeerId) {
        Network::credit(self, peer)
    }
    fn bans(&self) -> Vec<BanInfo> {
        Network::bans(self)
    }
    fn ban(&self, target: BanTarget, duration: std::time::Duration, reason: &str) -> bool {
        Network::ban(self, target, duration, reason)
    }
    fn unban(&self, target: BanTarget) -> bool {
        Network::unban(self, target)
    }
    fn stats(&self) -> NetStatsSnapshot {
        Network::stats(self)
    }
    fn connect<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, Result<PeerInfo, NetError>> {
        Box::pin(Network::connect(self, addr))
    }
    fn get_blocks(
        &self,
        peer: PeerId,
        from_index: u64,
        count: u32,
    ) -> BoxFuture<'_, Result<Vec<Block>, NetError>> {
        Box::pin(Network::get_blocks(self, peer, from_index, count))
    }
    fn get_headers(
        &self,
        peer: PeerId,
        locator: Vec<Hash>,
        count: u32,
    ) -> BoxFuture<'_, Result<Vec<SignedHeader>, NetError>> {
        Box::pin(Network::get_headers(self, peer, locator, count))
    }
    fn decoding_from(&self, peer: PeerId) -> bool {
        Network::decoding_from(self, peer)
    }
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(Network::shutdown(self))
    }
}

/// The network of a node without P2P: no peers, no addresses, nothing sent; requests fail with
/// [`NetError::Shutdown`]. It stands in for a real network so that the node's operations never
/// branch on whether P2P is on.
pub(crate) struct NoopNet;

impl PeerNet for NoopNet {
    fn local_addr(&self) -> SocketAddr {
        SocketAddr::from(([0, 0, 0, 0], 0))
    }
    fn peers(&self) -> Vec<PeerInfo> {
        Vec::new()
    }
    fn peer_count(&self) -> usize {
        0
    }
    fn known_addrs(&self) -> Vec<String> {
        Vec::new()
    }
    fn add_known_addr(&self, _addr: &str) {}
    fn broadcast_block(&self, _block: &Block, _except: Option<PeerId>) {}
    fn broadcast_tx(&self, _tx: &Transaction, _except: Option<PeerId>) {}
    fn update_tip(&self, _index: u64, _hash: Hash) {}
    fn penalize(&self, _peer: PeerId, _offence: Misbehaviour, _reason: &str) {}
    fn connect<'a>(&'a self, _addr: &'a str) -> BoxFuture<'a, Result<PeerInfo, NetError>> {
        Box::pin(async { Err(NetError::Shutdown) })
    }
    fn get_blocks(
        &self,
        _peer: PeerId,
        _from_index: u64,
        _count: u32,
    ) -> BoxFuture<'_, Result<Vec<Block>, NetError>> {
        Box::pin(async { Err(NetError::Shutdown) })
    }
    fn get_headers(
        &self,
        _peer: PeerId,
        _locator: Vec<Hash>,
        _count: u32,
    ) -> BoxFuture<'_, Result<Vec<SignedHeader>, NetError>> {
        Box::pin(async { Err(NetError::Shutdown) })
    }
    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }
}
