//! [`LightClient`]: the header chain kept in sync with full nodes over pp-net, and proofs
//! fetched from a full node's HTTP API and checked against it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pp_ledger::{Block, BlockHeader, Genesis, Hash, PublicKey};
use pp_net::{ChainView, Misbehaviour, NetConfig, NetError, Network, PeerId, TcpTransport};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::chain::{read_stake_proofs, Applied, ChainError, HeaderChain};
use crate::proofs::{
    check_account, check_stake, check_transaction, header_state_root, FullNode, ProofError,
    ProvenAccount, ProvenInclusion, ProvenStakes,
};
use crate::verify::{
    GenesisStakes, HeaderError, HeaderVerifier, SignedHeader, StakeError, StakeSnapshot,
    StakeSource,
};

/// How to run a [`LightClient`].
#[derive(Debug, Clone)]
pub struct LightConfig {
    /// The network's genesis (the one thing a light client trusts without checking).
    pub genesis: Genesis,
    /// Full nodes' p2p addresses (`HOST:PORT`) to sync headers from, tried in order.
    pub peers: Vec<String>,
    /// A full node's HTTP API base URL (e.g. `http://127.0.0.1:8080`), for proofs.
    pub full_node: Option<String>,
    /// Where to keep the header store (`light-headers.redb`); `None`: in memory only.
    pub data_dir: Option<PathBuf>,
    /// Headers asked per `get_headers` (at most [`pp_net::message::MAX_HEADERS_PER_REQUEST`]).
    pub batch: u32,
    /// Say `headers_only` to full nodes (docs/protocol.md §15; default true): they push the
    /// client no block or transaction, only each new block's signed header (`new_header`, wire
    /// protocol 6), which keeps its memory flat under load (1.6 MB anonymous against 7.5 MB
    /// under 158 transfers per block). False: full nodes relay it every block (as a compact
    /// block it rebuilds by fetching transactions) and transaction, of which it takes only the
    /// header too.
    pub headers_only: bool,
}

impl LightConfig {
    /// A configuration syncing from `peer`, in memory, without a full node for proofs.
    pub fn new(genesis: Genesis, peer: impl Into<String>) -> LightConfig {
        LightConfig {
            genesis,
            peers: vec![peer.into()],
            full_node: None,
            data_dir: None,
            batch: 500,
            headers_only: true,
        }
    }
}

/// Why a light client could not start or answer.
#[derive(Debug, thiserror::Error)]
pub enum LightError {
    /// The genesis cannot be used.
    #[error(transparent)]
    Genesis(#[from] crate::verify::GenesisUnusable),
    /// The header chain (verification or store).
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A proof was not accepted.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The network layer.
    #[error("network: {0}")]
    Net(#[from] NetError),
    /// No full node is configured for proofs.
    #[error("no full node configured for proofs (--full-node URL)")]
    NoFullNode,
    /// A file system error.
    #[error("{0}")]
    Io(String),
}

/// The best verified header, for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Tip {
    /// Its index (the height).
    pub height: u64,
    /// Its hash.
    pub hash: Hash,
    /// Its slot.
    pub slot: u64,
}

/// How syncing goes.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SyncStatus {
    /// The peer headers come from, if connected.
    pub peer: Option<String>,
    /// Batches refused (and their peer penalised and dropped).
    pub refused: u64,
    /// The last refusal or error.
    pub last_error: Option<String>,
    /// Headers taken from announcements (a `new_header`, or the header of a relayed block) that
    /// extended the chain without a `get_headers`.
    pub announced: u64,
}

/// Where the stake snapshots of epoch boundaries come from.
enum Stakes {
    /// Proven against the boundary block's state root (headers carry one, a full node is
    /// configured).
    Proven(ProvenStakes),
    /// The genesis distribution (headers commit to no state, or no full node to prove it).
    Genesis(GenesisStakes),
}

impl StakeSource for Stakes {
    fn stakes_after(&self, header: &BlockHeader, hash: &Hash) -> Result<StakeSnapshot, StakeError> {
        match self {
            Stakes::Proven(p) => p.stakes_after(header, hash),
            Stakes::Genesis(g) => g.stakes_after(header, hash),
        }
    }
}

struct Shared {
    chain: Mutex<HeaderChain>,
    stakes: Stakes,
    full_node: Option<FullNode>,
    status: Mutex<SyncStatus>,
    announced: Announced,
}

/// The newest block announced to the client, as its signed header with who announced it, for
/// the sync loop. Only the newest is kept: if the loop missed an older one, the newest does not
/// hang from its tip and sends it to `get_headers`, which fills the gap.
#[derive(Default)]
struct Announced {
    latest: Mutex<Option<(PeerId, SignedHeader)>>,
    wake: tokio::sync::Notify,
}

impl Announced {
    fn put(&self, peer: PeerId, header: SignedHeader) {
        *lock(&self.latest) = Some((peer, header));
        self.wake.notify_one();
    }

    fn take(&self) -> Option<(PeerId, SignedHeader)> {
        lock(&self.latest).take()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every critical section leaves the value whole (a panic inside one cannot half-apply a
    // batch: the chain changes only in its last, infallible step).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The [`ChainView`] a light client gives its pp-net [`Network`]: it shows full nodes only the
/// genesis (`tip` is index 0 with the hash given) and serves no block, header or transaction.
#[derive(Debug, Clone, Copy)]
pub struct ServesNothing(pub Hash);

impl ChainView for ServesNothing {
    fn tip(&self) -> (u64, Hash) {
        (0, self.0)
    }
    fn get_blocks(&self, _: u64, _: u32) -> Vec<Block> {
        Vec::new()
    }
    fn get_headers(&self, _: &[Hash], _: u32) -> Vec<SignedHeader> {
        Vec::new()
    }
}

/// A light client: verified headers from full nodes, and proofs checked against them.
///
/// ```no_run
/// # async fn demo() -> Result<(), pp_light::LightError> {
/// use pp_light::{LightClient, LightConfig};
///
/// let genesis = pp_ledger::Genesis::from_json(&std::fs::read("genesis.json").unwrap()).unwrap();
/// let mut config = LightConfig::new(genesis, "127.0.0.1:9000");
/// config.full_node = Some("http://127.0.0.1:8080".into());
/// let client = LightClient::start(config).await?;
/// println!("tip {:?}", client.tip());
/// let account = pp_ledger::KeyPair::from_seed([1; 32]).public();
/// match client.account(&account).await {
///     Ok(a) => println!("balance {:?} at block {}", a.leaf.map(|l| l.balance), a.block.hash),
///     Err(e) => println!("refused: {e}"),
/// }
/// client.shutdown().await;
/// # Ok(()) }
/// ```
pub struct LightClient {
    shared: Arc<Shared>,
    net: Arc<Network<TcpTransport>>,
    cancel: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for LightClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LightClient")
            .field("tip", &self.tip())
            .finish_non_exhaustive()
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl LightClient {
    /// Opens (or creates) the header store, re-verifies it, starts the p2p client and the sync
    /// task. Returns at once; headers arrive in the background.
    pub async fn start(config: LightConfig) -> Result<LightClient, LightError> {
        let verifier = HeaderVerifier::new(&config.genesis)?;
        let genesis_hash = verifier.genesis_hash();
        let provable = header_state_root(&verifier.genesis_entry().signed.header).is_some();
        let stakes = if provable && config.full_node.is_some() {
            Stakes::Proven(ProvenStakes::default())
        } else {
            if provable {
                tracing::warn!(
                    "no full node to prove stake snapshots: the genesis stake distribution is \
                     assumed for every epoch"
                );
            }
            Stakes::Genesis(GenesisStakes::new(&config.genesis))
        };
        let chain = match &config.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| LightError::Io(format!("{}: {e}", dir.display())))?;
                let path = dir.join("light-headers.redb");
                if let Stakes::Proven(p) = &stakes {
                    for (hash, bytes) in read_stake_proofs(&path)? {
                        let answer = serde_json::from_slice(&bytes).map_err(|e| {
                            ChainError::Corrupt(format!("stored stake proof {hash}: {e}"))
                        })?;
                        p.insert(hash, answer);
                    }
                }
                let chain = HeaderChain::open(verifier, &path, now_ms(), &stakes)?;
                if let Stakes::Proven(p) = &stakes {
                    p.retain(|h| chain.keeps_stake_proof(h));
                }
                chain
            }
            None => HeaderChain::in_memory(verifier),
        };
        let full_node = config.full_node.as_deref().map(FullNode::new).transpose()?;
        let mut net_config = NetConfig::new(
            format!("light-{}", hex::encode(rand_id())),
            genesis_hash,
            "127.0.0.1:0",
        );
        // Accepts no connections: it has nothing to serve.
        net_config.advertised_port = Some(0);
        // Headers only (the default): full nodes push it no block or transaction (it would
        // drop them), only each new block's signed header; the sync loop verifies an announced
        // header that hangs from its tip and asks `get_headers` for anything else, at once after
        // an answer that brought headers, and every `poll` without news.
        net_config.headers_only = config.headers_only;
        net_config.compact_relay = !config.headers_only;
        let (net, mut events) = Network::start(
            net_config,
            TcpTransport,
            Arc::new(ServesNothing(genesis_hash)),
        )
        .await?;
        let net = Arc::new(net);
        let shared = Arc::new(Shared {
            chain: Mutex::new(chain),
            stakes,
            full_node,
            status: Mutex::new(SyncStatus::default()),
            announced: Announced::default(),
        });
        let cancel = CancellationToken::new();
        // An announced block goes to the sync loop as its signed header, to be verified like
        // any other (a relayed block's transactions are not taken: the client keeps headers
        // only). The other events are drained and dropped.
        let c = cancel.clone();
        let s = Arc::clone(&shared);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = c.cancelled() => break,
                    ev = events.recv() => match ev {
                        None => break,
                        Some(pp_net::NetEvent::NewHeader { peer, header }) => {
                            s.announced.put(peer, header);
                        }
                        Some(pp_net::NetEvent::NewBlock { peer, block }) => {
                            s.announced.put(peer, SignedHeader::from(&block));
                        }
                        Some(_) => {}
                    }
                }
            }
        });
        let task = tokio::spawn(sync_loop(
            Arc::clone(&shared),
            Arc::clone(&net),
            config.peers.clone(),
            config
                .batch
                .clamp(1, pp_net::message::MAX_HEADERS_PER_REQUEST),
            Duration::from_millis((config.genesis.slot_duration_ms / 2).max(100)),
            cancel.clone(),
        ));
        Ok(LightClient {
            shared,
            net,
            cancel,
            task: Mutex::new(Some(task)),
        })
    }

    /// The network's genesis hash.
    pub fn genesis_hash(&self) -> Hash {
        lock(&self.shared.chain).verifier().genesis_hash()
    }

    /// The best verified header.
    pub fn tip(&self) -> Tip {
        let c = lock(&self.shared.chain);
        let t = c.tip();
        Tip {
            height: t.header().index,
            hash: t.hash,
            slot: t.header().slot,
        }
    }

    /// The verified best-chain header at `index`, if the client still keeps it in full (the
    /// window: the last k + 1 blocks or more, [`HeaderChain`]).
    pub fn header_at(&self, index: u64) -> Option<SignedHeader> {
        lock(&self.shared.chain).at(index).map(|v| v.signed.clone())
    }

    /// The hash of the verified best-chain block at `index`, at any depth.
    pub fn hash_at(&self, index: u64) -> Option<Hash> {
        lock(&self.shared.chain).hash_at(index)
    }

    /// How syncing goes.
    pub fn sync_status(&self) -> SyncStatus {
        lock(&self.shared.status).clone()
    }

    fn full_node(&self) -> Result<&FullNode, LightError> {
        self.shared.full_node.as_ref().ok_or(LightError::NoFullNode)
    }

    /// `account`'s state at the verified tip (or, if the full node does not have the tip yet,
    /// at one of the three blocks before it), proven against the header's state root.
    pub async fn account(&self, account: &PublicKey) -> Result<ProvenAccount, LightError> {
        let node = self.full_node()?;
        let candidates: Vec<Hash> = {
            let c = lock(&self.shared.chain);
            let h = c.height();
            (0..4u64)
                .filter_map(|back| h.checked_sub(back).and_then(|i| c.at(i)).map(|v| v.hash))
                .collect()
        };
        let mut last = None;
        for asked in candidates {
            match node
                .get(&format!("/proofs/accounts/{account}?block={asked}"))
                .await
            {
                Ok(answer) => {
                    let c = lock(&self.shared.chain);
                    return Ok(check_account(&c, account, Some(asked), &answer)?);
                }
                Err(e @ ProofError::NotFound(_)) => last = Some(e),
                Err(e) => return Err(e.into()),
            }
        }
        Err(last
            .unwrap_or_else(|| ProofError::NotFound("no verified header".into()))
            .into())
    }

    /// `account`'s state after block `block` (any block of the verified best chain, however
    /// old, that the full node still has the state of), proven against that block's state
    /// root: below the checkpoint the full node's header is checked against the stored hash.
    pub async fn account_at(
        &self,
        account: &PublicKey,
        block: &Hash,
    ) -> Result<ProvenAccount, LightError> {
        let node = self.full_node()?;
        let answer = node
            .get(&format!("/proofs/accounts/{account}?block={block}"))
            .await?;
        let c = lock(&self.shared.chain);
        Ok(check_account(&c, account, Some(*block), &answer)?)
    }

    /// The best-chain block including transaction `id`, proven against the header's `tx_root`.
    pub async fn transaction(&self, id: &Hash) -> Result<ProvenInclusion, LightError> {
        let node = self.full_node()?;
        let answer = node.get(&format!("/proofs/transactions/{id}")).await?;
        let c = lock(&self.shared.chain);
        Ok(check_transaction(&c, id, &answer)?)
    }

    /// Stops syncing and closes every connection.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        let task = lock(&self.task).take();
        if let Some(t) = task {
            let _ = t.await;
        }
        self.net.shutdown().await;
    }
}

fn rand_id() -> [u8; 6] {
    let mut b = [0u8; 6];
    let n = now_ms().to_be_bytes();
    b.copy_from_slice(&n[2..]);
    b[0] ^= std::process::id() as u8;
    b
}

/// Fetches up to `count` signed headers after the fork point of `locator` from `peer` (one
/// `get_headers`: wire protocol 4 carries each header's signature).
pub async fn fetch_signed_headers(
    net: &Network<TcpTransport>,
    peer: PeerId,
    locator: Vec<Hash>,
    count: u32,
) -> Result<Vec<SignedHeader>, NetError> {
    net.get_headers(peer, locator, count).await
}

async fn sync_loop(
    shared: Arc<Shared>,
    net: Arc<Network<TcpTransport>>,
    peers: Vec<String>,
    batch: u32,
    poll: Duration,
    cancel: CancellationToken,
) {
    let mut current: Option<(PeerId, String)> = None;
    let mut next_peer = 0usize;
    let backoff = Duration::from_secs(1);
    let mut last_request: Option<tokio::time::Instant> = None;
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let (peer, addr) = match &current {
            Some(p) if net.peers().iter().any(|i| i.id == p.0) => p.clone(),
            _ => {
                if peers.is_empty() {
                    break;
                }
                let addr = peers[next_peer % peers.len()].clone();
                next_peer += 1;
                match net.connect(&addr).await {
                    Ok(info) => {
                        lock(&shared.status).peer = Some(addr.clone());
                        current = Some((info.id, addr.clone()));
                        (info.id, addr)
                    }
                    Err(e) => {
                        lock(&shared.status).last_error = Some(format!("connect {addr}: {e}"));
                        pause(&cancel, backoff).await;
                        continue;
                    }
                }
            }
        };
        // Paced: a request waits until MIN_HEADERS_INTERVAL after the one before, whatever
        // prompted it (an answer that brought headers: near the tip of a fast network every
        // answer brings a header or two; an announcement that did not hang from the tip, which
        // a peer could send as fast as it likes).
        if let Some(t) = last_request {
            let wait = MIN_HEADERS_INTERVAL.saturating_sub(t.elapsed());
            if !wait.is_zero() {
                pause(&cancel, wait).await;
            }
        }
        last_request = Some(tokio::time::Instant::now());
        let locator = lock(&shared.chain).locator();
        let fetched = tokio::select! {
            _ = cancel.cancelled() => break,
            r = fetch_signed_headers(&net, peer, locator, batch) => r,
        };
        let headers = match fetched {
            Ok(h) => h,
            Err(e) => {
                lock(&shared.status).last_error = Some(format!("{addr}: {e}"));
                current = None;
                pause(&cancel, backoff).await;
                continue;
            }
        };
        match take_headers(&shared, &headers).await {
            Ok(Applied::Nothing) => {
                // Up to date with the peer: wait for news.
                match follow_announcements(&shared, &net, poll, &cancel).await {
                    News::Cancelled => break,
                    News::Ask => {}
                    News::Refused(liar) => {
                        if current.as_ref().is_some_and(|(p, _)| *p == liar) {
                            current = None;
                        }
                        pause(&cancel, backoff).await;
                    }
                }
            }
            Ok(a) => {
                tracing::debug!(?a, "headers applied");
            }
            Err(TakeError::Proof(e)) => {
                // Our full node's trouble (often: it has not got the block yet), not the
                // peer's: try again shortly.
                tracing::info!(error = %e, "stake proof not had yet; retrying");
                lock(&shared.status).last_error = Some(format!("stake proofs: {e}"));
                pause(&cancel, poll).await;
            }
            Err(TakeError::Chain(
                e @ (ChainError::Store(_)
                | ChainError::Corrupt(_)
                | ChainError::Header(HeaderError::Stake(_))),
            )) => {
                tracing::error!(error = %e, "header store");
                lock(&shared.status).last_error = Some(e.to_string());
                pause(&cancel, backoff).await;
            }
            Err(TakeError::Chain(e)) => {
                // Every other refusal is something no honest peer sends.
                tracing::warn!(peer = %addr, error = %e, "headers refused; dropping the peer");
                net.penalize(peer, Misbehaviour::BadSyncAnswer, &e.to_string());
                net.disconnect(peer, &format!("bad headers: {e}"));
                {
                    let mut s = lock(&shared.status);
                    s.refused += 1;
                    s.last_error = Some(format!("{addr}: {e}"));
                    s.peer = None;
                }
                current = None;
                pause(&cancel, backoff).await;
            }
        }
    }
}

/// Why headers were not taken.
enum TakeError {
    /// A stake-snapshot proof the batch needs could not be had from our full node.
    Proof(ProofError),
    /// The header chain refused the batch, or its store failed.
    Chain(ChainError),
}

/// Verifies `headers` (consecutive, as a `headers` answer carries them, or one announced
/// header) against the chain, after fetching the stake-snapshot proofs of the epoch boundaries
/// they cross, and applies the fork choice.
async fn take_headers(shared: &Shared, headers: &[SignedHeader]) -> Result<Applied, TakeError> {
    if let (Stakes::Proven(p), Some(node)) = (&shared.stakes, &shared.full_node) {
        let needed = lock(&shared.chain).epoch_boundaries(headers);
        fetch_stake_proofs(shared, p, node, needed)
            .await
            .map_err(TakeError::Proof)?;
    }
    let mut c = lock(&shared.chain);
    let checkpoint = c.checkpoint();
    // At most `batch` headers: milliseconds of hashing and signature checks.
    let applied = c
        .apply(headers, now_ms(), &shared.stakes)
        .map_err(TakeError::Chain)?;
    // The window moved: the stake answers of blocks it left are not needed any more.
    if let (Stakes::Proven(p), true) = (&shared.stakes, c.checkpoint() != checkpoint) {
        p.retain(|h| c.keeps_stake_proof(h));
    }
    Ok(applied)
}

/// What ended a wait for news.
enum News {
    /// The client is shutting down.
    Cancelled,
    /// Time to ask for headers: `poll` passed without an announced header extending the chain,
    /// or one came that does not hang from the tip (the client missed a block, or the network
    /// switched branches), or it could not be taken for a reason of ours.
    Ask,
    /// An announced header that hangs from the tip failed verification: its peer was penalised
    /// and disconnected.
    Refused(PeerId),
}

/// Waits for news once the client is up to date: takes each announced header that hangs from
/// the tip (verified like any header: links, slot, proof of work, the producer's signature and
/// election against the stake snapshot, docs/light-client.md), so that the tip follows a
/// relayed block without a round trip, until `poll` passes with no header taken, or an
/// announcement calls for `get_headers` or was a lie.
async fn follow_announcements(
    shared: &Shared,
    net: &Network<TcpTransport>,
    poll: Duration,
    cancel: &CancellationToken,
) -> News {
    let mut deadline = tokio::time::Instant::now() + poll;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return News::Cancelled,
            _ = tokio::time::sleep_until(deadline) => return News::Ask,
            _ = shared.announced.wake.notified() => {}
        }
        let Some((peer, header)) = shared.announced.take() else {
            continue;
        };
        let (hangs, held) = {
            let c = lock(&shared.chain);
            let hangs = c.tip().hash == header.header.prev_hash;
            // Looked up in the window only (in memory): an older header is no news either way,
            // and asking about it costs one `get_headers`.
            (hangs, !hangs && c.by_hash(&header.hash()).is_some())
        };
        if held {
            continue;
        }
        if !hangs {
            return News::Ask;
        }
        match take_headers(shared, std::slice::from_ref(&header)).await {
            Ok(Applied::Extended(_)) => {
                lock(&shared.status).announced += 1;
                deadline = tokio::time::Instant::now() + poll;
            }
            Ok(_) => {}
            Err(TakeError::Chain(ChainError::Header(e))) if !matches!(e, HeaderError::Stake(_)) => {
                let offence = offence(&e);
                tracing::warn!(peer = peer.0, error = %e, "announced header refused; dropping the peer");
                net.penalize(peer, offence, &format!("new_header: {e}"));
                net.disconnect(peer, &format!("bad announced header: {e}"));
                let mut s = lock(&shared.status);
                s.refused += 1;
                s.last_error = Some(format!("announced header: {e}"));
                s.peer = None;
                return News::Refused(peer);
            }
            // A stake proof not had yet, the store: `get_headers` retries, and reports.
            Err(_) => return News::Ask,
        }
    }
}

/// What a full node scores a block whose header fails `e` as (docs/protocol.md §11): a rule no
/// fork, delay or clock excuses (version, difficulty, proof of work, signature) is
/// `invalid_block`; one that depends on the chain it extends or the clock is `rejected_block`.
fn offence(e: &HeaderError) -> Misbehaviour {
    match e {
        HeaderError::BadVersion { .. }
        | HeaderError::WrongDifficulty { .. }
        | HeaderError::BadPow { .. }
        | HeaderError::BadSignature { .. } => Misbehaviour::InvalidBlock,
        HeaderError::BadIndex { .. }
        | HeaderError::BadLink { .. }
        | HeaderError::SlotNotAfterParent { .. }
        | HeaderError::SlotInFuture { .. }
        | HeaderError::NotLeader { .. }
        | HeaderError::Stake(_) => Misbehaviour::RejectedBlock,
    }
}

/// Fetches, checks and stores the stake-snapshot proofs of the boundary blocks `needed`
/// not held yet. An answer that does not check is an error (nothing is kept).
async fn fetch_stake_proofs(
    shared: &Shared,
    proven: &ProvenStakes,
    node: &FullNode,
    needed: Vec<(BlockHeader, Hash)>,
) -> Result<(), ProofError> {
    for (header, hash) in needed {
        if proven.contains(&hash) {
            continue;
        }
        let answer = node
            .get_limited(
                &format!("/proofs/stake?block={hash}"),
                crate::proofs::MAX_STAKE_ANSWER_BYTES,
            )
            .await?;
        check_stake(&header, &answer)?;
        let bytes = serde_json::to_vec(&answer).unwrap_or_default();
        if let Err(e) = lock(&shared.chain).store_stake_proof(&hash, &bytes) {
            tracing::warn!(error = %e, "cannot store a stake proof");
        }
        proven.insert(hash, answer);
    }
    Ok(())
}

/// The shortest time between two `get_headers` the client sends: half the per-peer budget a
/// full node allows (20 per second, docs/protocol.md §8), so that following a network whose
/// blocks come faster than the round trip never looks like a flood (a full node bans a peer
/// kept over its budget for 2 s, and with it the peer's address).
pub const MIN_HEADERS_INTERVAL: Duration = Duration::from_millis(100);

async fn pause(cancel: &CancellationToken, d: Duration) {
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::time::sleep(d) => {}
    }
}
