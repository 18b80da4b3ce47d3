//! The facade the server uses: [`Network`] starts the FetchServer and the dialer, makes
//! requests over connections, broadcasts announcements, and reports events.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use pp_ledger::{Block, Hash, PublicKey, SignedHeader, Transaction};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info};

use crate::addrman::{AddrBook, AddrStore, BookCounts};
use crate::admission::{addr_group, AddrGroup, HandshakeLimiter, HandshakeSlot};
use crate::chain_view::ChainView;
use crate::client::{ClientLimits, FetchClient};
use crate::codec::encode_message;
use crate::compact::CompactBlock;
use crate::config::NetConfig;
use crate::connection::{framed, hello_exchange, send_error_and_close, Live};
use crate::discovery::{
    Discovery, ANCHORS, BELOW_TARGET_EXCHANGE_INTERVAL, EVICTED_BACKOFF, TRIED_SAVE_DELAY,
};
use crate::error::NetError;
use crate::loglimit::LogLimiter;
use crate::message::{
    codes, Hello, Message, MAX_BLOCKS_PER_REQUEST, MAX_HEADERS_PER_REQUEST, MAX_PEERS_ACCEPTED,
    MAX_PEERS_PER_RESPONSE,
};
use crate::misbehaviour::Misbehaviour;
use crate::noise::NoiseIdentity;
use crate::peer_table::{
    millis, AddrInfo, Admission, DialOutcome, Direction, Limits, PeerCounters, PeerId, PeerInfo,
    PeerStats, PeerTable, WallClock,
};
use crate::relay::{prefill_window, Relay};
use crate::reputation::{BanTarget, Reputation};
use crate::stats::{HandshakeFailure, NetStats, NetStatsSnapshot};
use crate::transport::{TcpTransport, Transport};

/// What the network tells its owner.
#[derive(Debug, Clone)]
pub enum NetEvent {
    /// A peer completed the handshake.
    PeerConnected(PeerInfo),
    /// A connection closed.
    PeerDisconnected {
        /// The connection that closed.
        peer: PeerId,
        /// Why.
        reason: String,
    },
    /// A peer announced a block (its summary fields were checked against it; nothing else was).
    NewBlock {
        /// Who sent it.
        peer: PeerId,
        /// The block.
        block: Block,
    },
    /// A peer announced a block by its signed header (`new_header`; only to a node configured
    /// `headers_only`). Nothing of it was checked: the owner verifies it like any header.
    NewHeader {
        /// Who sent it.
        peer: PeerId,
        /// The block's header and signature.
        header: SignedHeader,
    },
    /// A peer announced a transaction (not validated).
    NewTx {
        /// Who sent it.
        peer: PeerId,
        /// The transaction.
        tx: Transaction,
    },
}

/// A ban in force, for display and persistence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BanInfo {
    /// The banned identity key or IP address.
    pub target: BanTarget,
    /// Why.
    pub reason: String,
    /// Time left, in ms.
    pub remaining_ms: u64,
    /// When it ends, unix ms.
    pub expires_at_ms: u64,
    /// Made by the operator (not by a score reaching the threshold).
    pub manual: bool,
}

/// State shared by the facade and every task.
pub(crate) struct Shared {
    pub(crate) config: NetConfig,
    pub(crate) identity: NoiseIdentity,
    pub(crate) view: Arc<dyn ChainView>,
    pub(crate) local_addr: SocketAddr,
    table: Mutex<PeerTable>,
    /// Unix time for timestamps (see [`WallClock`]).
    wall: WallClock,
    /// Ordered by connection id, so broadcasts go out in a reproducible order (the simulator's
    /// runs must replay exactly from their seed).
    conns: Mutex<BTreeMap<PeerId, FetchClient>>,
    events: mpsc::Sender<NetEvent>,
    /// Outbound slots: a permit per outbound connection, taken before dialing.
    pub(crate) outbound: Arc<Semaphore>,
    /// Inbound connections still in the handshake.
    pub(crate) handshakes: HandshakeLimiter,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tasks: TaskTracker,
    tip: Mutex<Option<(u64, Hash)>>,
    dialing: Mutex<std::collections::HashSet<String>>,
    /// The address book and what goes with it (candidates, anchors, address budgets).
    disc: Mutex<Discovery>,
    /// Where the book is saved, if anywhere.
    store: Option<Arc<dyn AddrStore>>,
    /// The dial budget: every automatic dial and feeler holds a permit while it runs, so
    /// silent addresses (tarpits) can delay discovery but never hold connection slots.
    dials: Arc<Semaphore>,
    /// Automatic outbound dials in flight (counted against the outbound target).
    auto_dials: AtomicUsize,
    /// A feeler to an inbound candidate is in flight.
    feeling_candidate: AtomicBool,
    pub(crate) stats: NetStats,
    pub(crate) logs: LogLimiter,
    /// Inventory and compact-block relay state (see [`crate::relay`]).
    relay: Mutex<Relay>,
    /// Jobs this network runs on its blocking seam at once (decoding large frames, building
    /// large answers): `config.max_offloaded_jobs` permits. Connections wait for one, so 30
    /// peers pipelining `get_blocks` use that many threads and answer buffers, not 30.
    pub(crate) offload_permits: Semaphore,
}

/// Lock a mutex even if a panicking thread poisoned it: the data are plain maps that every
/// operation leaves consistent, so the poison carries no information worth dying for.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, PeerTable> {
        lock(&self.table)
    }

    pub(crate) fn client(&self, peer: PeerId) -> Result<FetchClient, NetError> {
        lock(&self.conns)
            .get(&peer)
            .cloned()
            .ok_or(NetError::PeerGone(peer.0))
    }

    pub(crate) fn relay(&self) -> MutexGuard<'_, Relay> {
        lock(&self.relay)
    }

    pub(crate) fn peer_info(&self, peer: PeerId) -> Option<PeerInfo> {
        self.table().get(peer)
    }

    /// The nonce of our compact blocks for `hash`: unpredictable to others (keyed by our
    /// identity secret), so nobody can craft transactions whose short ids collide in our
    /// announcements; the same for every peer, so a block is encoded once per prefill set.
    fn compact_nonce(&self, hash: &Hash) -> u64 {
        let h = Hash::sha256(
            &[
                b"pp-net/compact-nonce".as_slice(),
                &self.config.identity.secret_bytes(),
                &hash.0,
            ]
            .concat(),
        );
        let mut b = [0u8; 8];
        b.copy_from_slice(&h.0[..8]);
        u64::from_be_bytes(b)
    }

    fn our_hello(&self) -> Hello {
        let (tip_index, tip_hash) = lock(&self.tip).unwrap_or_else(|| self.view.tip());
        Hello {
            protocol_version: self.config.protocol_version,
            genesis_hash: self.config.genesis_hash,
            node_id: self.config.node_id.clone(),
            listen_port: self
                .config
                .advertised_port
                .unwrap_or(self.local_addr.port()),
            tip_index,
            tip_hash,
            headers_only: self.config.headers_only,
        }
    }

    /// Score `offence` against the peer's identity key and (for offences that prove a hostile
    /// sender) its IP; at the threshold, ban and close every connection the ban covers.
    pub(crate) fn penalize_peer(&self, peer: &PeerInfo, offence: Misbehaviour, reason: &str) {
        self.penalize(Some(peer.key), Some(peer.addr.ip()), offence, reason);
    }

    /// [`Shared::penalize_peer`] for what is known of an offender (an unauthenticated
    /// connection has an address but no proven key).
    pub(crate) fn penalize(
        &self,
        key: Option<PublicKey>,
        ip: Option<IpAddr>,
        offence: Misbehaviour,
        reason: &str,
    ) {
        self.stats.penalty(offence);
        let (bans, closing) = {
            let mut t = self.table();
            let bans = t.penalize(key, ip, offence, reason, Instant::now());
            let closing: Vec<(PeerId, String)> = bans
                .iter()
                .flat_map(|(target, ban)| {
                    t.ids_of(*target)
                        .into_iter()
                        .map(move |id| (id, format!("banned ({target}): {}", ban.reason)))
                })
                .collect();
            (bans, closing)
        };
        if self.logs.allow("penalty") {
            debug!(key = ?key.map(|k| k.to_hex()), ?ip, %offence, reason, banned = bans.len(), "peer penalised");
        }
        for (target, ban) in &bans {
            self.stats.ban(offence);
            if self.logs.allow("ban") {
                info!(%target, reason = %ban.reason, "banned");
            }
        }
        let conns = lock(&self.conns);
        for (id, why) in closing {
            if let Some(c) = conns.get(&id) {
                c.close(why, Some(codes::BANNED));
            }
        }
    }

    /// Err if `ip` is banned.
    pub(crate) fn check_ip(&self, ip: IpAddr, now: Instant) -> Result<(), NetError> {
        self.table().check_ip(ip, now)
    }

    pub(crate) fn touch(&self, id: PeerId) {
        self.table().touch(id);
    }

    pub(crate) fn update_peer_tip(&self, id: PeerId, index: u64, hash: Hash) {
        self.table().update_tip(id, index, hash);
    }

    fn disc(&self) -> MutexGuard<'_, Discovery> {
        lock(&self.disc)
    }

    /// The answer to `get_peers`: up to 100 random tried addresses, without the requester's.
    pub(crate) fn peers_answer(&self, requester: &PeerInfo) -> Vec<String> {
        let theirs = requester.listen_addr;
        self.disc()
            .book
            .sample_tried(MAX_PEERS_PER_RESPONSE, &|a| Some(*a) == theirs)
            .into_iter()
            .map(|a| a.to_string())
            .collect()
    }

    /// The IP this node gives as the source of what it learnt itself (configuration, feelers).
    fn own_ip(&self) -> IpAddr {
        self.local_addr.ip()
    }

    /// Ask `peer` for addresses and take them into the book (within its address budget). An
    /// answer with more than [`MAX_PEERS_ACCEPTED`] addresses is dropped and scored.
    pub(crate) async fn request_peers(&self, peer: PeerId) -> Result<Vec<String>, NetError> {
        self.disc().note_asked(peer, Instant::now());
        let response = self
            .client(peer)?
            .request(|request_id| Message::GetPeers { request_id })
            .await?;
        let peers = match response {
            Message::Peers { peers, .. } => peers,
            other => {
                return Err(NetError::UnexpectedResponse {
                    request: "get_peers",
                    got: other.kind().to_string(),
                })
            }
        };
        let Some(info) = self.table().get(peer) else {
            return Err(NetError::PeerGone(peer.0));
        };
        if peers.len() > MAX_PEERS_ACCEPTED {
            let reason = format!("{} addresses, at most {MAX_PEERS_ACCEPTED}", peers.len());
            self.penalize_peer(&info, Misbehaviour::TooManyAddresses, &reason);
            return Err(NetError::ProtocolViolation(format!(
                "peers answer: {reason}"
            )));
        }
        let addrs: Vec<SocketAddr> = peers.iter().filter_map(|a| a.parse().ok()).collect();
        let added = self.disc().learn(peer, info.addr.ip(), &addrs);
        debug!(peer = peer.0, got = peers.len(), added, "peers answer");
        Ok(peers)
    }

    /// Save the book (with up to two outbound peers as anchors), if a store is attached.
    pub(crate) fn save_book(&self) {
        let Some(store) = &self.store else { return };
        let mut outbound: Vec<PeerInfo> = self
            .table()
            .peers()
            .into_iter()
            .filter(|p| p.direction == Direction::Outbound)
            .collect();
        outbound.sort_by_key(|p| (p.connected_at_ms, p.id));
        let anchors: Vec<SocketAddr> = outbound
            .iter()
            .filter_map(|p| p.listen_addr)
            .take(ANCHORS)
            .collect();
        let snapshot = self.disc().book.snapshot(anchors);
        if let Err(e) = store.save(&snapshot) {
            if self.logs.allow("book save") {
                tracing::warn!(error = %e, "cannot save the address book");
            }
        }
    }

    /// Hand an announcement to the owner without waiting: if the owner is behind, drop it and
    /// count it. Waiting could deadlock (the owner may be awaiting a response that this very
    /// connection task must read), and announcements are recoverable by sync.
    pub(crate) fn emit(&self, ev: NetEvent) {
        if self.events.try_send(ev).is_err() {
            self.stats.dropped_events.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Connect/disconnect events must not be lost: if the channel is full, deliver from a task.
    fn emit_lifecycle(&self, ev: NetEvent) {
        match self.events.try_send(ev) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(ev)) => {
                let tx = self.events.clone();
                self.tasks.spawn(async move {
                    let _ = tx.send(ev).await;
                });
            }
        }
    }

    /// Our outbound connection `id` was evicted by the remote to make room for a newcomer:
    /// leave its addresses (configured or from the book) alone for [`EVICTED_BACKOFF`], so we
    /// go to our other candidates instead of coming straight back to evict someone else.
    pub(crate) fn note_evicted(&self, id: PeerId) {
        let now = Instant::now();
        let addrs = self.table().defer_peer(id, now + EVICTED_BACKOFF);
        let mut d = self.disc();
        for a in addrs.iter().filter_map(|a| a.parse::<SocketAddr>().ok()) {
            d.note_evicted(a, now);
        }
        debug!(peer = id.0, ?addrs, "evicted by the remote for a newcomer");
    }

    /// Forget a closed connection.
    pub(crate) fn unregister(&self, id: PeerId, reason: &str) {
        lock(&self.conns).remove(&id);
        self.relay().remove_peer(id);
        self.disc().forget(id);
        let removed = self
            .table()
            .remove(id, Instant::now(), self.config.dial_backoff_base);
        if removed.is_some() {
            self.emit_lifecycle(NetEvent::PeerDisconnected {
                peer: id,
                reason: reason.to_string(),
            });
        }
    }

    /// Run the Noise handshake and the `hello` exchange on a fresh stream (one deadline for
    /// both), admit the peer to the peer table, and start its tasks. `slot` holds an inbound
    /// connection's place in the handshake limits until this returns. An outbound connection takes
    /// an outbound slot at admission and keeps it for its life.
    pub(crate) async fn establish<S>(
        self: &Arc<Self>,
        stream: S,
        addr: SocketAddr,
        direction: Direction,
        dialed_as: Option<&str>,
        slot: Option<HandshakeSlot>,
    ) -> Result<PeerInfo, NetError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let result = self
            .establish_inner(stream, addr, direction, dialed_as)
            .await;
        drop(slot);
        if let Err(e) = &result {
            self.note_handshake_failure(e, addr, direction);
        }
        result
    }

    async fn establish_inner<S>(
        self: &Arc<Self>,
        stream: S,
        addr: SocketAddr,
        direction: Direction,
        dialed_as: Option<&str>,
    ) -> Result<PeerInfo, NetError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let config = &self.config;
        let ours = self.our_hello();
        let our_key = self.identity.public_key();
        let limits = Limits {
            max_inbound: config.max_inbound(),
            max_inbound_per_group: config.max_inbound_per_group,
            eviction_min_age: config.eviction_min_age,
        };
        let candidate = |id: PeerId, key: PublicKey, theirs: &Hello| {
            let dialed: Option<SocketAddr> = dialed_as.and_then(|d| d.parse().ok());
            let listen_addr = match (theirs.listen_port, dialed) {
                (0, _) => None,
                (port, Some(d)) if d.port() == port => Some(d),
                (port, _) => Some(SocketAddr::new(addr.ip(), port)),
            };
            let now_ms = self.wall.now_ms();
            PeerInfo {
                id,
                key,
                addr,
                node_id: theirs.node_id.clone(),
                direction,
                listen_addr,
                tip_index: theirs.tip_index,
                tip_hash: theirs.tip_hash,
                score: 0,
                connected_at_ms: now_ms,
                last_seen_ms: now_ms,
                stats: PeerStats::default(),
            }
        };
        let exchange = async {
            let (stream, key) =
                crate::noise::handshake(stream, &self.identity, direction == Direction::Outbound)
                    .await?;
            let (mut reader, mut writer) = framed(stream, config.max_frame_bytes);
            // The same admission as below, asked before we answer, so that a refusal is what
            // the dialer reads first.
            let precheck = |theirs: &Hello| {
                let info = candidate(PeerId(0), key, theirs);
                match self.table().admit(&our_key, &info, limits, Instant::now()) {
                    Admission::Reject(e) => {
                        // A node of our network refused only for lack of room is still worth
                        // knowing: its claimed address becomes a feeler candidate (bounded per
                        // group, and it counts only if the feeler reaches the same key), so
                        // that we can pass it on, and dial it, rather than leave a newcomer
                        // whose only known peer is full with no way in.
                        if let (NetError::TooManyPeers { .. }, Direction::Inbound, Some(listen)) =
                            (&e, direction, info.listen_addr)
                        {
                            self.disc().note_inbound(listen, key, Instant::now());
                        }
                        Err(e)
                    }
                    _ => Ok(()),
                }
            };
            let theirs =
                hello_exchange(&mut reader, &mut writer, &ours, config, direction, precheck)
                    .await?;
            Ok::<_, NetError>((reader, writer, key, theirs))
        };
        let (reader, mut writer, key, theirs) = tokio::select! {
            _ = self.shutdown.cancelled() => return Err(NetError::Shutdown),
            r = tokio::time::timeout(config.handshake_timeout, exchange) => match r {
                Ok(r) => r?,
                Err(_) => return Err(NetError::HandshakeTimeout { ms: millis(config.handshake_timeout) }),
            },
        };
        let (queue_tx, queue_rx) = mpsc::channel(config.outbound_queue.max(1));
        let counters = Arc::new(PeerCounters::new());
        let admitted = {
            let mut t = self.table();
            let id = t.next_peer_id();
            let info = candidate(id, key, &theirs);
            let now = Instant::now();
            // An outbound connection takes its slot only now, after the handshake: a dial to a
            // silent address holds a dial permit, never a connection slot.
            let permit = match direction {
                Direction::Outbound => self.outbound.clone().try_acquire_owned().ok(),
                Direction::Inbound => None,
            };
            let admission = match (direction, &permit) {
                (Direction::Outbound, None) => Admission::Reject(NetError::TooManyPeers {
                    max: config.max_outbound(),
                }),
                _ => t.admit(&our_key, &info, limits, now),
            };
            match admission {
                Admission::Reject(e) => Err(e),
                admission => {
                    t.insert(info, counters.clone(), dialed_as, now);
                    let info = t.get(id);
                    let client = FetchClient::new(
                        id,
                        queue_tx,
                        self.shutdown.child_token(),
                        ClientLimits {
                            max_frame_bytes: config.max_frame_bytes,
                            request_timeout: config.request_timeout,
                            queue_bytes: config.queue_bytes(),
                            max_in_flight: config.max_requests_in_flight,
                        },
                        counters.clone(),
                    );
                    let mut conns = lock(&self.conns);
                    let closing = match admission {
                        Admission::Replace(old) => Some((
                            old,
                            "replaced by a connection the tie-break prefers",
                            codes::ALREADY_CONNECTED,
                        )),
                        Admission::Evict(old) => {
                            self.stats.evictions.fetch_add(1, Ordering::Relaxed);
                            Some((old, "evicted for a newcomer", codes::TOO_MANY_PEERS))
                        }
                        _ => None,
                    };
                    if let Some((old, why, code)) = closing {
                        if let Some(c) = conns.get(&old) {
                            c.close(why, Some(code));
                        }
                    }
                    conns.insert(id, client.clone());
                    Ok((info, client, permit))
                }
            }
        };
        let (info, client, permit) = match admitted {
            Ok((Some(info), client, permit)) => (info, client, permit),
            Ok((None, _, _)) => return Err(NetError::PeerGone(0)),
            Err(e) => {
                send_error_and_close(
                    &mut writer,
                    e.code(),
                    &e.to_string(),
                    config.max_frame_bytes,
                )
                .await;
                return Err(e);
            }
        };
        self.relay().add_peer(info.id, theirs.headers_only);
        if direction == Direction::Outbound {
            // The dialer asks first; the acceptor answers (so a peer that never asks, such as a
            // minimal client, is never sent relay messages it did not ask for).
            crate::relay_tasks::our_compact_relay(self, info.id);
        }
        debug!(peer = info.id.0, node = %info.node_id, key = %info.key, %addr, ?direction, "peer connected");
        self.emit_lifecycle(NetEvent::PeerConnected(info.clone()));
        let live = Live {
            shared: self.clone(),
            client,
            info: info.clone(),
            counters,
            reader,
            writer,
            queue: queue_rx,
            permit,
        };
        self.tasks.spawn(crate::connection::run(live));
        match (info.direction, info.listen_addr) {
            // What an inbound peer claims is only a candidate for a feeler, never an entry.
            (Direction::Inbound, Some(listen)) => {
                self.disc().note_inbound(listen, info.key, Instant::now());
            }
            // Ask whom we chose to reach for more addresses at once (inbound peers are asked
            // only by the periodic exchange below the outbound target, see
            // `BELOW_TARGET_EXCHANGE_INTERVAL`).
            (Direction::Outbound, _) => {
                let shared = self.clone();
                let id = info.id;
                self.tasks.spawn(async move {
                    if let Err(e) = shared.request_peers(id).await {
                        debug!(peer = id.0, error = %e, "get_peers failed");
                    }
                });
            }
            _ => {}
        }
        Ok(info)
    }

    /// Count a failed handshake, log it (rate-limited), and score what proves a hostile sender.
    fn note_handshake_failure(&self, e: &NetError, addr: SocketAddr, direction: Direction) {
        let reason = match e {
            NetError::HandshakeFailed { .. } | NetError::BadIdentityProof { .. } => {
                HandshakeFailure::Noise
            }
            NetError::HandshakeTimeout { .. } => HandshakeFailure::Timeout,
            NetError::GenesisMismatch { .. } | NetError::VersionMismatch { .. } => {
                HandshakeFailure::WrongNetwork
            }
            NetError::Banned { .. } => HandshakeFailure::Banned,
            NetError::TooManyPeers { .. } => HandshakeFailure::NoRoom,
            NetError::SelfConnection { .. } | NetError::AlreadyConnected { .. } => {
                HandshakeFailure::Duplicate
            }
            NetError::Shutdown => return,
            _ => HandshakeFailure::Other,
        };
        self.stats.handshake_failed(reason);
        if reason == HandshakeFailure::Noise && direction == Direction::Inbound {
            self.penalize(
                None,
                Some(addr.ip()),
                Misbehaviour::BadHandshake,
                &e.to_string(),
            );
        }
        let line = match reason {
            HandshakeFailure::Noise => Some("handshake failed"),
            HandshakeFailure::WrongNetwork => Some("wrong network"),
            _ => None,
        };
        if let Some(line) = line {
            if self.logs.allow(line) {
                info!(%addr, ?direction, error = %e, "{line}");
            }
        } else {
            debug!(%addr, ?direction, error = %e, "handshake did not complete");
        }
    }
}

/// The p2p network of one node. Cheap to clone (an `Arc` inside). [`Network::shutdown`] stops it
/// and waits for every task; dropping the last handle also stops it, without waiting.
pub struct Network<T: Transport = TcpTransport> {
    shared: Arc<Shared>,
    transport: T,
    /// Held by handles given to the owner, not by the network's own tasks, so that the network
    /// stops when the owner lets go of it instead of running unreachable forever.
    owner: Option<Arc<OwnerGuard>>,
}

/// Cancels the network when the last owner handle is dropped.
struct OwnerGuard {
    shutdown: CancellationToken,
}

impl Drop for OwnerGuard {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl<T: Transport> Clone for Network<T> {
    fn clone(&self) -> Self {
        Network {
            shared: self.shared.clone(),
            transport: self.transport.clone(),
            owner: self.owner.clone(),
        }
    }
}

impl<T: Transport> std::fmt::Debug for Network<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("node_id", &self.shared.config.node_id)
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl<T: Transport> Network<T> {
    /// Bind the listener, start the accept loop (FetchServer) and the dialer. Events arrive on the
    /// returned receiver (bounded by `config.event_queue`; announcements are dropped, and counted,
    /// when the owner falls behind). The address book starts empty and is not saved; see
    /// [`Network::start_with_store`].
    pub async fn start(
        config: NetConfig,
        transport: T,
        view: Arc<dyn ChainView>,
    ) -> Result<(Network<T>, mpsc::Receiver<NetEvent>), NetError> {
        Network::start_with_store(config, transport, view, None).await
    }

    /// [`Network::start`] with the address book loaded from `store` (a store that fails to load
    /// gives an empty book, logged) and saved to it every `config.book_save_interval` and at
    /// shutdown. The saved anchors are dialed before anything else.
    pub async fn start_with_store(
        config: NetConfig,
        transport: T,
        view: Arc<dyn ChainView>,
        store: Option<Arc<dyn AddrStore>>,
    ) -> Result<(Network<T>, mpsc::Receiver<NetEvent>), NetError> {
        let saved = match store.as_ref().map(|s| s.load()) {
            Some(Ok(saved)) => saved,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "cannot load the address book; starting with an empty one");
                None
            }
            None => None,
        };
        let wall = WallClock::new(config.unix_time_ms);
        let unix_s = wall.now_ms() / 1000;
        let fallback_secret = Hash::sha256(
            &[
                b"pp-net/addrman/secret".as_slice(),
                &config.identity.secret_bytes(),
            ]
            .concat(),
        );
        let (book, anchors) = match &saved {
            Some(snap) => (
                AddrBook::restore(snap, fallback_secret, unix_s),
                snap.anchors.clone(),
            ),
            None => (AddrBook::new(fallback_secret), Vec::new()),
        };
        let listener = transport.bind(&config.listen_addr).await?;
        let local_addr = T::local_addr(&listener)?;
        let (events, events_rx) = mpsc::channel(config.event_queue.max(1));
        let reputation = Reputation::new(
            config.max_tracked_offenders,
            config.ban_threshold,
            config.ban_duration,
            config.score_ttl,
        );
        let config_max_dials = config.max_dials.max(1);
        let config_max_offloaded = config.max_offloaded_jobs.max(1);
        let shared = Arc::new(Shared {
            outbound: Arc::new(Semaphore::new(config.max_outbound())),
            handshakes: HandshakeLimiter::new(
                config.max_handshaking,
                config.max_handshaking_per_ip,
            ),
            identity: NoiseIdentity::new(&config.identity),
            config,
            view,
            local_addr,
            table: Mutex::new({
                let mut t = PeerTable::new(reputation).with_wall_clock(wall);
                t.set_eviction_key(Hash::sha256(
                    &[b"pp-net/eviction/key".as_slice(), &book.secret().0].concat(),
                ));
                t
            }),
            wall,
            conns: Mutex::new(BTreeMap::new()),
            events,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            tip: Mutex::new(None),
            dialing: Mutex::new(std::collections::HashSet::new()),
            disc: Mutex::new(Discovery::new(book, anchors, unix_s)),
            store,
            dials: Arc::new(Semaphore::new(config_max_dials)),
            auto_dials: AtomicUsize::new(0),
            feeling_candidate: AtomicBool::new(false),
            stats: NetStats::default(),
            logs: LogLimiter::new(),
            relay: Mutex::new(Relay::new()),
            offload_permits: Semaphore::new(config_max_offloaded),
        });
        let owner = Some(Arc::new(OwnerGuard {
            shutdown: shared.shutdown.clone(),
        }));
        let net = Network {
            shared,
            transport,
            owner,
        };
        net.shared.tasks.spawn(crate::server::accept_loop::<T>(
            net.shared.clone(),
            listener,
        ));
        net.shared.tasks.spawn(net.detached().discovery_loop());
        net.shared
            .tasks
            .spawn(crate::relay_tasks::flush_loop(net.shared.clone()));
        Ok((net, events_rx))
    }

    /// A handle for the network's own tasks: it does not keep the network alive.
    fn detached(&self) -> Network<T> {
        Network {
            shared: self.shared.clone(),
            transport: self.transport.clone(),
            owner: None,
        }
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// This node's label.
    pub fn node_id(&self) -> &str {
        &self.shared.config.node_id
    }

    /// This node's identity key (what peers know it by).
    pub fn identity(&self) -> PublicKey {
        self.shared.identity.public_key()
    }

    /// Dial `addr` and complete the handshake now. Returns the existing peer if already connected
    /// to that node, [`NetError::SelfConnection`] if `addr` is this node. On success the address
    /// is also remembered (as by [`Network::add_known_addr`]), so it is redialed after a drop,
    /// and counts as reached in the address book.
    pub async fn connect(&self, addr: &str) -> Result<PeerInfo, NetError> {
        self.dial(addr, true).await
    }

    /// Dial `addr`; `remember` keeps it among the configured addresses after a success.
    async fn dial(&self, addr: &str, remember: bool) -> Result<PeerInfo, NetError> {
        let shared = &self.shared;
        if shared.shutdown.is_cancelled() {
            return Err(NetError::Shutdown);
        }
        // One dial per address at a time: two concurrent dials to one node from one side would
        // race to become its connection. A second caller waits for the first and shares its peer.
        let _dialing = loop {
            if let Some(p) = shared.table().by_addr(addr) {
                return Ok(p);
            }
            if let Some(guard) = DialGuard::claim(shared, addr) {
                break guard;
            }
            tokio::select! {
                _ = shared.shutdown.cancelled() => return Err(NetError::Shutdown),
                _ = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
            }
        };
        if shared.outbound.available_permits() == 0 {
            return Err(NetError::TooManyPeers {
                max: shared.config.max_outbound(),
            });
        }
        let timeout = shared.config.handshake_timeout;
        let stream = tokio::select! {
            _ = shared.shutdown.cancelled() => return Err(NetError::Shutdown),
            r = tokio::time::timeout(timeout, self.transport.connect_from(shared.local_addr.ip(), addr)) => match r {
                Ok(s) => s?,
                Err(_) => return Err(NetError::HandshakeTimeout { ms: millis(timeout) }),
            },
        };
        let peer_addr = T::peer_addr(&stream)
            .or_else(|| addr.parse().ok())
            .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
        let result = match shared
            .establish(stream, peer_addr, Direction::Outbound, Some(addr), None)
            .await
        {
            Err(NetError::AlreadyConnected { key }) => {
                let mut t = shared.table();
                let existing = PublicKey::from_hex(&key).ok().and_then(|k| t.by_key(&k));
                if let Some(p) = &existing {
                    t.link_dialed_addr(p.id, addr);
                }
                existing.ok_or(NetError::AlreadyConnected { key })
            }
            r => r,
        };
        if let Ok(sa) = addr.parse::<SocketAddr>() {
            let mut d = shared.disc();
            let now = d.now();
            match &result {
                Ok(_) => {
                    d.book.good(sa, shared.own_ip(), now);
                }
                Err(NetError::SelfConnection { .. }) => {
                    d.book.remove(&sa);
                }
                Err(_) => {}
            }
        }
        if result.is_ok() && remember {
            // An address worth dialing by hand is worth keeping: remember it, so the dialer
            // reconnects after a drop.
            let c = &shared.config;
            let mut t = shared.table();
            t.add_known(addr, Instant::now(), c.max_known_addrs);
            t.dial_result(
                addr,
                DialOutcome::Connected,
                Instant::now(),
                c.dial_backoff_base,
                c.dial_backoff_max,
            );
        }
        result
    }

    /// Remember an address; the dialer keeps it connected (with exponential backoff after
    /// failures) while outbound slots are free.
    pub fn add_known_addr(&self, addr: &str) {
        let addr = addr.trim();
        if addr.is_empty() {
            return;
        }
        self.shared
            .table()
            .add_known(addr, Instant::now(), self.shared.config.max_known_addrs);
        if let Ok(sa) = addr.parse::<SocketAddr>() {
            let own = self.shared.own_ip();
            let mut d = self.shared.disc();
            let now = d.now();
            d.book.add(sa, own, now);
        }
    }

    /// Fetch up to `count` blocks starting at `from_index` from a peer.
    pub async fn get_blocks(
        &self,
        peer: PeerId,
        from_index: u64,
        count: u32,
    ) -> Result<Vec<Block>, NetError> {
        let count = count.min(MAX_BLOCKS_PER_REQUEST);
        let response = self
            .shared
            .client(peer)?
            .request(|request_id| Message::GetBlocks {
                request_id,
                from_index,
                count,
            })
            .await?;
        match response {
            Message::Blocks { mut blocks, .. } => {
                blocks.truncate(usize::try_from(count).unwrap_or(usize::MAX));
                Ok(blocks)
            }
            other => Err(NetError::UnexpectedResponse {
                request: "get_blocks",
                got: other.kind().to_string(),
            }),
        }
    }

    /// Whether a frame `peer` delivered was read and still waits for this node's blocking
    /// pool to decode it (large frames only: those are decoded there). A caller timing the
    /// peer's answer does not count that wait against it: the delay is ours.
    pub fn decoding_from(&self, peer: PeerId) -> bool {
        self.shared.client(peer).is_ok_and(|c| c.decoding())
    }

    /// Fetch up to `count` signed headers after the fork point identified by `locator`.
    pub async fn get_headers(
        &self,
        peer: PeerId,
        locator: Vec<Hash>,
        count: u32,
    ) -> Result<Vec<SignedHeader>, NetError> {
        let count = count.min(MAX_HEADERS_PER_REQUEST);
        let response = self
            .shared
            .client(peer)?
            .request(|request_id| Message::GetHeaders {
                request_id,
                locator,
                count,
            })
            .await?;
        match response {
            Message::Headers { mut headers, .. } => {
                headers.truncate(usize::try_from(count).unwrap_or(usize::MAX));
                Ok(headers)
            }
            other => Err(NetError::UnexpectedResponse {
                request: "get_headers",
                got: other.kind().to_string(),
            }),
        }
    }

    /// Ask a peer for addresses (random entries of its tried table) and take them into the
    /// address book, within the peer's address budget. An answer with more than 1,000
    /// addresses is refused and scored ([`Misbehaviour::TooManyAddresses`]).
    pub async fn get_peers(&self, peer: PeerId) -> Result<Vec<String>, NetError> {
        self.shared.request_peers(peer).await
    }

    /// Send a `ping` and wait for the `pong`; returns the round-trip time.
    pub async fn ping(&self, peer: PeerId) -> Result<std::time::Duration, NetError> {
        let start = Instant::now();
        let response = self
            .shared
            .client(peer)?
            .request(|request_id| Message::Ping { request_id })
            .await?;
        match response {
            Message::Pong { .. } => Ok(start.elapsed()),
            other => Err(NetError::UnexpectedResponse {
                request: "ping",
                got: other.kind().to_string(),
            }),
        }
    }

    /// Announce a block to every peer but `except`, without waiting: as a `new_header` (its
    /// signed header alone) to peers that said `headers_only`, as a `compact_block` to peers
    /// that asked for compact relay, as a `new_block` to the others. A compact block
    /// prefills the transactions the peer may lack from us: ids still waiting to be announced to
    /// it, and ids announced within [`prefill_window`] of its round trip that it has not fetched
    /// from us. The block is kept to answer `get_block_txs`.
    /// A peer whose send queue is full misses it (counted in [`Network::dropped_broadcasts`]);
    /// it will catch up by sync.
    pub fn broadcast_block(&self, block: &Block, except: Option<PeerId>) {
        let hash = block.hash();
        let nonce = self.shared.compact_nonce(&hash);
        let max = self.shared.config.max_frame_bytes;
        let mut full = Vec::new();
        let mut headers_only = Vec::new();
        let mut compact = Vec::new();
        let now = Instant::now();
        // Read before the relay lock: the two locks are never held together.
        let rtts: BTreeMap<PeerId, Option<std::time::Duration>> = self
            .shared
            .table()
            .peers()
            .into_iter()
            .map(|p| {
                (
                    p.id,
                    p.stats.min_rtt_us.map(std::time::Duration::from_micros),
                )
            })
            .collect();
        {
            let mut relay = self.shared.relay();
            relay.note_block(hash, Arc::new(block.clone()));
            let peers: Vec<PeerId> = lock(&self.shared.conns).keys().copied().collect();
            for peer in peers.into_iter().filter(|p| Some(*p) != except) {
                if relay.is_headers_only(peer) {
                    headers_only.push(peer);
                    continue;
                }
                if !relay.is_compact(peer) {
                    full.push(peer);
                    continue;
                }
                let rtt = rtts.get(&peer).copied().flatten();
                let window = prefill_window(rtt);
                let prefill = relay.prefill(peer, now, window);
                let cb = CompactBlock::build(block, nonce, |_, tx| prefill.contains(&tx.id()));
                for tx in &block.transactions {
                    relay.mark_known(peer, tx.id());
                }
                match encode_message(&Message::CompactBlock(cb), max) {
                    Ok(frame) => compact.push((peer, frame)),
                    Err(e) => debug!(error = %e, "cannot encode a compact block"),
                }
            }
        }
        let mut sends = compact;
        if !full.is_empty() {
            match encode_message(&Message::new_block(block), max) {
                Ok(frame) => sends.extend(full.into_iter().map(|p| (p, frame.clone()))),
                Err(e) => debug!(error = %e, "cannot broadcast a block"),
            }
        }
        if !headers_only.is_empty() {
            match encode_message(&Message::NewHeader(SignedHeader::from(block)), max) {
                Ok(frame) => sends.extend(headers_only.into_iter().map(|p| (p, frame.clone()))),
                Err(e) => debug!(error = %e, "cannot announce a header"),
            }
        }
        sends.sort_by_key(|(p, _)| *p);
        self.send_each(sends);
    }

    /// Announce a transaction to every peer but `except` and those that said `headers_only`,
    /// without waiting: its id is queued
    /// for the next `inv_txs` to peers that asked for inventory relay and are not known to hold
    /// it; the others get a `new_tx`. It is kept to answer `get_txs`.
    pub fn broadcast_tx(&self, tx: &Transaction, except: Option<PeerId>) {
        let targets = self.shared.relay().announce_tx(tx, except);
        self.shared
            .stats
            .dropped_broadcasts
            .fetch_add(targets.dropped, Ordering::Relaxed);
        if targets.full.is_empty() {
            return;
        }
        let msg = Message::NewTx { tx: tx.clone() };
        match encode_message(&msg, self.shared.config.max_frame_bytes) {
            Ok(frame) => {
                let sends = targets
                    .full
                    .into_iter()
                    .map(|p| (p, frame.clone()))
                    .collect();
                self.send_each(sends);
            }
            Err(e) => debug!(error = %e, "cannot broadcast a transaction"),
        }
    }

    /// Queue each frame for its peer without waiting; a full queue drops it (counted).
    fn send_each(&self, sends: Vec<(PeerId, bytes::Bytes)>) {
        let conns = lock(&self.shared.conns);
        for (id, frame) in sends {
            let Some(c) = conns.get(&id) else { continue };
            if !c.try_send(frame) {
                self.shared
                    .stats
                    .dropped_broadcasts
                    .fetch_add(1, Ordering::Relaxed);
                c.count_dropped();
            }
        }
    }

    /// Set the tip announced in future `hello`s (otherwise taken from the [`ChainView`]).
    pub fn update_tip(&self, index: u64, hash: Hash) {
        *lock(&self.shared.tip) = Some((index, hash));
    }

    /// Connected peers.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.shared.table().peers()
    }

    /// Number of connected peers.
    pub fn peer_count(&self) -> usize {
        self.shared.table().len()
    }

    /// Every address this node knows: the configured ones, then the address book's (sorted,
    /// without duplicates).
    pub fn known_addrs(&self) -> Vec<String> {
        let mut all = self.shared.table().known_addrs();
        all.extend(
            self.shared
                .disc()
                .book
                .entries()
                .into_iter()
                .map(|e| e.addr.to_string()),
        );
        all.sort();
        all.dedup();
        all
    }

    /// Configured addresses (from [`Network::add_known_addr`] and [`Network::connect`]) with
    /// their dial state and backoff.
    pub fn address_book(&self) -> Vec<AddrInfo> {
        self.shared.table().address_book(Instant::now())
    }

    /// Sizes of the address book.
    pub fn book_counts(&self) -> BookCounts {
        self.shared.disc().book.counts()
    }

    /// Every entry of the address book (tried first).
    pub fn book_entries(&self) -> Vec<crate::addrman::AddrEntry> {
        self.shared.disc().book.entries()
    }

    /// Connected peers in `direction`.
    pub fn count(&self, direction: Direction) -> usize {
        self.shared.table().count(direction)
    }

    /// Save the address book to the attached store now (it is also saved every
    /// `config.book_save_interval` and at shutdown).
    pub fn save_book(&self) {
        self.shared.save_book();
    }

    /// Score `offence` against the node behind `peer` (and, for offences that prove a hostile
    /// sender, its IP address); at the threshold it is banned for `config.ban_duration` and
    /// disconnected.
    pub fn penalize(&self, peer: PeerId, offence: Misbehaviour, reason: &str) {
        let info = self.shared.table().get(peer);
        if let Some(info) = info {
            self.shared.penalize_peer(&info, offence, reason);
        }
    }

    /// Record that `peer` delivered a valid block or transaction: the most useful peers are
    /// the last to be evicted.
    pub fn credit(&self, peer: PeerId) {
        self.shared.table().credit(peer, Instant::now());
    }

    /// Disconnect a peer now.
    pub fn disconnect(&self, peer: PeerId, reason: &str) {
        if let Some(c) = lock(&self.shared.conns).get(&peer) {
            c.close(reason.to_string(), None);
        }
    }

    /// The misbehaviour score of an identity key or an IP address (0 if never penalised).
    pub fn score(&self, target: BanTarget) -> i32 {
        self.shared
            .table()
            .reputation()
            .score(target, Instant::now())
    }

    /// Ban `target` (an identity key or an IP address) for `duration`, as the operator, and
    /// close the connections it covers. False if the operator ban list is full.
    pub fn ban(&self, target: BanTarget, duration: std::time::Duration, reason: &str) -> bool {
        let until = Instant::now() + duration;
        let closing = {
            let mut t = self.shared.table();
            if !t.reputation().ban(target, reason, until, true) {
                return false;
            }
            t.ids_of(target)
        };
        let conns = lock(&self.shared.conns);
        for id in closing {
            if let Some(c) = conns.get(&id) {
                c.close(format!("banned ({target}): {reason}"), Some(codes::BANNED));
            }
        }
        true
    }

    /// Put back a ban saved earlier (across a restart): in force until `expires_at_ms` (unix
    /// ms). False if it has expired (or the operator ban list is full).
    pub fn restore_ban(
        &self,
        target: BanTarget,
        reason: &str,
        expires_at_ms: u64,
        manual: bool,
    ) -> bool {
        let now_ms = self.shared.wall.now_ms();
        if expires_at_ms <= now_ms {
            return false;
        }
        let until = Instant::now() + std::time::Duration::from_millis(expires_at_ms - now_ms);
        self.shared
            .table()
            .reputation()
            .ban(target, reason, until, manual)
    }

    /// Lift a ban; true if one was in force.
    pub fn unban(&self, target: BanTarget) -> bool {
        self.shared
            .table()
            .reputation()
            .unban(target, Instant::now())
    }

    /// Bans in force, sorted by target.
    pub fn bans(&self) -> Vec<BanInfo> {
        let now = Instant::now();
        let unix_now = self.shared.wall.now_ms();
        self.shared
            .table()
            .reputation()
            .bans(now)
            .into_iter()
            .map(|(target, b)| {
                let remaining_ms = millis(b.until.saturating_duration_since(now));
                BanInfo {
                    target,
                    reason: b.reason,
                    remaining_ms,
                    expires_at_ms: unix_now.saturating_add(remaining_ms),
                    manual: b.manual,
                }
            })
            .collect()
    }

    /// Broadcast frames dropped because a peer's queue was full.
    pub fn dropped_broadcasts(&self) -> u64 {
        self.shared.stats.dropped_broadcasts.load(Ordering::Relaxed)
    }

    /// Announcement events dropped because the owner's event queue was full.
    pub fn dropped_events(&self) -> u64 {
        self.shared.stats.dropped_events.load(Ordering::Relaxed)
    }

    /// Traffic, throttling, penalty, ban and handshake counters since start.
    pub fn stats(&self) -> NetStatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// Inbound connections still in the handshake.
    pub fn handshakes_in_progress(&self) -> usize {
        self.shared.handshakes.in_progress()
    }

    /// Graceful shutdown: stop accepting and dialing, close every connection, wait for every
    /// task to finish.
    pub async fn shutdown(&self) {
        if !self.shared.shutdown.is_cancelled() {
            // Saved while the outbound peers are still connected: they are the anchors.
            self.shared.save_book();
        }
        self.shared.shutdown.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }

    /// The dialer: every `dial_interval` it fills the outbound target (anchors first, then
    /// configured addresses whose backoff has passed, then the address book), feels an inbound
    /// candidate; every `feeler_interval` it feels a new address (or a tried collision); every
    /// `peer_exchange_interval` (more often below the outbound target, see
    /// `BELOW_TARGET_EXCHANGE_INTERVAL`) it asks a peer for addresses; every
    /// `book_save_interval` it saves the book.
    async fn discovery_loop(self) {
        let shared = self.shared.clone();
        let c = &shared.config;
        let start = Instant::now();
        let mut next_feeler = start + c.feeler_interval;
        let mut next_exchange = start + c.peer_exchange_interval;
        let mut next_save = start + c.book_save_interval;
        let below_target_exchange = c.peer_exchange_interval.min(BELOW_TARGET_EXCHANGE_INTERVAL);
        let mut next_below_target_exchange = start + below_target_exchange;
        let mut next_tried_check = start + TRIED_SAVE_DELAY;
        let mut saved_tried = shared.disc().book.counts().tried;
        loop {
            // The first round waits one interval, so the owner can restore bans (and add
            // configured addresses) before anything is dialed.
            tokio::select! {
                _ = shared.shutdown.cancelled() => break,
                _ = tokio::time::sleep(c.dial_interval) => {}
            }
            self.fill_outbound();
            self.feel_candidate();
            let now = Instant::now();
            if now >= next_feeler {
                next_feeler = now + c.feeler_interval;
                self.feel_new();
            }
            // Peer exchange: see `BELOW_TARGET_EXCHANGE_INTERVAL` for the rule.
            let below_target = shared.table().count(Direction::Outbound) < c.max_outbound();
            if now >= next_exchange || (below_target && now >= next_below_target_exchange) {
                next_exchange = now + c.peer_exchange_interval;
                next_below_target_exchange = now + below_target_exchange;
                self.exchange_with_one(below_target);
            }
            if now >= next_save {
                next_save = now + c.book_save_interval;
                saved_tried = shared.disc().book.counts().tried;
                shared.save_book();
            } else if now >= next_tried_check {
                // Addresses that proved reachable are what a restart needs (a node nobody
                // dials any more must dial out from its book): save soon after tried grows.
                next_tried_check = now + TRIED_SAVE_DELAY;
                let tried = shared.disc().book.counts().tried;
                if tried != saved_tried {
                    saved_tried = tried;
                    shared.save_book();
                }
            }
        }
    }

    /// Groups of our outbound connections and of the dials in flight.
    fn outbound_groups(&self) -> std::collections::HashSet<AddrGroup> {
        let mut groups: std::collections::HashSet<AddrGroup> = self
            .shared
            .table()
            .peers()
            .iter()
            .filter(|p| p.direction == Direction::Outbound)
            .map(|p| addr_group(p.addr.ip()))
            .collect();
        groups.extend(
            lock(&self.shared.dialing)
                .iter()
                .filter_map(|a| a.parse::<SocketAddr>().ok())
                .map(|a| addr_group(a.ip())),
        );
        groups
    }

    /// The next address to dial for the outbound target, if any. `picked` holds the groups of
    /// the addresses picked earlier in the same round, whose dials have not started yet: with
    /// the groups of the outbound peers and of the dials in flight, they keep anchors and book
    /// picks to one outbound connection per group. (Configured addresses are the operator's
    /// choice and are dialed whatever their group.)
    fn next_target(
        &self,
        picked: &mut std::collections::HashSet<AddrGroup>,
    ) -> Option<(String, bool)> {
        let shared = &self.shared;
        let now = Instant::now();
        let mut groups = self.outbound_groups();
        groups.extend(picked.iter().copied());
        loop {
            let anchor = shared.disc().anchors.pop();
            match anchor {
                Some(a)
                    if shared.table().by_addr(&a.to_string()).is_none()
                        && !groups.contains(&addr_group(a.ip()))
                        && !shared.disc().evicted_us(&a, now) =>
                {
                    picked.insert(addr_group(a.ip()));
                    return Some((a.to_string(), false));
                }
                Some(_) => continue,
                None => break,
            }
        }
        if let Some(a) = shared.table().take_due(now, 1).pop() {
            if let Ok(sa) = a.parse::<SocketAddr>() {
                picked.insert(addr_group(sa.ip()));
            }
            return Some((a, true));
        }
        let connected: std::collections::HashSet<SocketAddr> = shared
            .table()
            .peers()
            .iter()
            .filter_map(|p| p.listen_addr)
            .collect();
        let own = shared.local_addr;
        let mut d = shared.disc();
        let now_s = d.now();
        let evicted = d.evicted_addrs(now);
        let pick = d.book.select(false, now_s, |e| {
            e.addr != own
                && !connected.contains(&e.addr)
                && !groups.contains(&addr_group(e.addr.ip()))
                && !evicted.contains(&e.addr)
        });
        pick.map(|a| {
            d.book.attempt(&a, now_s);
            picked.insert(addr_group(a.ip()));
            (a.to_string(), false)
        })
    }

    /// Start dials while the outbound target is not met and the dial budget allows.
    fn fill_outbound(&self) {
        let shared = &self.shared;
        let target = shared.config.max_outbound();
        let mut picked = std::collections::HashSet::new();
        for _ in 0..target {
            let outbound = shared.table().count(Direction::Outbound);
            if outbound + shared.auto_dials.load(Ordering::Relaxed) >= target {
                return;
            }
            let Ok(permit) = shared.dials.clone().try_acquire_owned() else {
                return;
            };
            let Some((addr, configured)) = self.next_target(&mut picked) else {
                return;
            };
            shared.auto_dials.fetch_add(1, Ordering::Relaxed);
            let net = self.clone();
            shared.tasks.spawn(async move {
                let c = &net.shared.config;
                let outcome =
                    match tokio::time::timeout(c.dial_timeout, net.dial(&addr, false)).await {
                        Ok(Ok(_)) | Ok(Err(NetError::AlreadyConnected { .. })) => {
                            DialOutcome::Connected
                        }
                        Ok(Err(NetError::SelfConnection { .. })) => DialOutcome::OwnAddress,
                        Ok(Err(e)) => {
                            debug!(%addr, error = %e, "dial failed");
                            DialOutcome::Failed
                        }
                        Err(_) => {
                            debug!(%addr, "dial timed out");
                            DialOutcome::Failed
                        }
                    };
                if configured {
                    net.shared.table().dial_result(
                        &addr,
                        outcome,
                        Instant::now(),
                        c.dial_backoff_base,
                        c.dial_backoff_max,
                    );
                }
                net.shared.auto_dials.fetch_sub(1, Ordering::Relaxed);
                drop(permit);
            });
        }
    }

    /// Feel the next address seen on an inbound connection (one such feeler at a time): it
    /// enters the book, as tried, only if the dial reaches the key that connection proved.
    fn feel_candidate(&self) {
        let shared = &self.shared;
        if shared.feeling_candidate.load(Ordering::Relaxed) {
            return;
        }
        let Ok(permit) = shared.dials.clone().try_acquire_owned() else {
            return;
        };
        let Some(cand) = shared.disc().next_candidate() else {
            return;
        };
        shared.feeling_candidate.store(true, Ordering::Relaxed);
        let net = self.clone();
        shared.tasks.spawn(async move {
            let reached = net.feel(cand.addr, Some(cand.key)).await;
            if reached == Feeler::Reached {
                let own = net.shared.own_ip();
                let mut d = net.shared.disc();
                let now = d.now();
                d.book.add(cand.addr, own, now);
                d.book.good(cand.addr, own, now);
            }
            net.shared.stats.feeler(reached == Feeler::Reached);
            net.shared.feeling_candidate.store(false, Ordering::Relaxed);
            drop(permit);
        });
    }

    /// Feel a tried entry that blocks a newcomer (test-before-evict) or else a new entry: a
    /// reached address moves to tried.
    fn feel_new(&self) {
        let shared = &self.shared;
        let Ok(permit) = shared.dials.clone().try_acquire_owned() else {
            return;
        };
        let own = shared.local_addr;
        let target = {
            let mut d = shared.disc();
            let now = d.now();
            let t = d
                .book
                .collision_to_test()
                .or_else(|| d.book.select(true, now, |e| e.addr != own));
            if let Some(a) = t {
                d.book.attempt(&a, now);
            }
            t
        };
        let Some(addr) = target else { return };
        let net = self.clone();
        shared.tasks.spawn(async move {
            let reached = net.feel(addr, None).await;
            {
                let own = net.shared.own_ip();
                let mut d = net.shared.disc();
                let now = d.now();
                match reached {
                    Feeler::Reached => {
                        d.book.good(addr, own, now);
                    }
                    Feeler::Ourselves => {
                        d.book.remove(&addr);
                    }
                    Feeler::Failed => {}
                }
                d.book.resolve_collisions(now);
            }
            net.shared.stats.feeler(reached == Feeler::Reached);
            drop(permit);
        });
    }

    /// A feeler: dial `addr`, run the Noise handshake and the `hello` exchange, and close. It
    /// takes no connection slot and is never admitted as a peer. Reached when the remote proves
    /// a key (`expect`, if given), is of our network, and either answers `hello` or refuses us
    /// for lack of room or as a duplicate (it checks our version and genesis before that).
    async fn feel(&self, addr: SocketAddr, expect: Option<PublicKey>) -> Feeler {
        let shared = &self.shared;
        let attempt = async {
            let stream = self
                .transport
                .connect_from(shared.local_addr.ip(), &addr.to_string())
                .await
                .ok()?;
            let (stream, key) = crate::noise::handshake(stream, &shared.identity, true)
                .await
                .ok()?;
            if key == shared.identity.public_key() {
                return Some(Feeler::Ourselves);
            }
            if expect.is_some_and(|k| k != key) {
                return Some(Feeler::Failed);
            }
            if shared.table().by_key(&key).is_some() {
                // Already connected to that node: the address answers with its key.
                return Some(Feeler::Reached);
            }
            let (mut reader, mut writer) = framed(stream, shared.config.max_frame_bytes);
            let ours = shared.our_hello();
            let r = hello_exchange(
                &mut reader,
                &mut writer,
                &ours,
                &shared.config,
                Direction::Outbound,
                |_| Ok(()),
            )
            .await;
            let reached = match r {
                Ok(_) | Err(NetError::TooManyPeers { .. }) => Feeler::Reached,
                Err(NetError::RemoteError { code, .. }) if code == codes::ALREADY_CONNECTED => {
                    Feeler::Reached
                }
                Err(_) => Feeler::Failed,
            };
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(1),
                tokio::io::AsyncWriteExt::shutdown(writer.get_mut()),
            )
            .await;
            Some(reached)
        };
        tokio::select! {
            _ = shared.shutdown.cancelled() => Feeler::Failed,
            r = tokio::time::timeout(shared.config.dial_timeout, attempt) => {
                r.ok().flatten().unwrap_or(Feeler::Failed)
            }
        }
    }

    /// Ask one peer for addresses (see `BELOW_TARGET_EXCHANGE_INTERVAL`): at the outbound
    /// target, a random outbound peer; below it, whichever peer, inbound or outbound, was asked
    /// least recently. A node whose configured peers are full (they refuse it for lack of room)
    /// or that was configured with nobody (a seed) has no other way to learn of the network
    /// than its inbound peers. What an inbound peer tells us enters the new table only,
    /// bucketed by that peer's group and limited by its token bucket, as any `peers` answer
    /// is; it counts once a dial or feeler reaches it.
    fn exchange_with_one(&self, below_target: bool) {
        let peers = self.shared.table().peers();
        let outbound: Vec<PeerId> = peers
            .iter()
            .filter(|p| p.direction == Direction::Outbound)
            .map(|p| p.id)
            .collect();
        let pick = if below_target || outbound.is_empty() {
            let all: Vec<PeerId> = peers.iter().map(|p| p.id).collect();
            self.shared.disc().least_recently_asked(&all)
        } else {
            let i = self.shared.disc().book.random_index(outbound.len());
            outbound.get(i).copied()
        };
        let Some(peer) = pick else { return };
        let shared = self.shared.clone();
        self.shared.tasks.spawn(async move {
            if let Err(e) = shared.request_peers(peer).await {
                debug!(peer = peer.0, error = %e, "get_peers failed");
            }
        });
    }
}

/// How a feeler ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Feeler {
    /// A node of our network answered with a proven key.
    Reached,
    /// The address is this node.
    Ourselves,
    /// No answer, another network, or another key than expected.
    Failed,
}

/// Marks an address as being dialed; released on drop, however the dial ends.
struct DialGuard<'a> {
    shared: &'a Shared,
    addr: String,
}

impl<'a> DialGuard<'a> {
    fn claim(shared: &'a Shared, addr: &str) -> Option<DialGuard<'a>> {
        lock(&shared.dialing)
            .insert(addr.to_string())
            .then(|| DialGuard {
                shared,
                addr: addr.to_string(),
            })
    }
}

impl Drop for DialGuard<'_> {
    fn drop(&mut self) {
        lock(&self.shared.dialing).remove(&self.addr);
    }
}
