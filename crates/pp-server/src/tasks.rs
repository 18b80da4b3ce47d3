//! The long-running tasks of a node: the consensus loop (one turn per slot), the network event
//! handler (gossip in), and the sync task (catching up from a peer whose chain is longer).
//!
//! Every task stops when the shutdown signal (a `watch` channel) flips, and none holds a lock
//! across an `.await`.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt as _};
use pp_ledger::{AddOutcome, Block, BlockError, ChainError, Transaction};
use pp_net::{Misbehaviour, NetError, NetEvent, PeerId};
use tokio::sync::{mpsc, watch};

use crate::mempool::{Inserted, MempoolError};
use crate::metrics::gauge_value;
use crate::net::PeerNet;
use crate::node::{Core, ImportError, Imported, SyncRequest, MAX_SERVE_HEADERS};
use crate::storage::{StorageError, StoredBan, WriteOp};

/// Most `get_blocks` rounds in one sync attempt (each bounded by the request timeout).
const MAX_SYNC_ROUNDS: u32 = 10_000;
/// Bans are saved to disk at most this often, in slots (the network saves its address book
/// itself).
const SAVE_BANS_EVERY_SLOTS: u64 = 20;
/// After a start, a node that has peers to reach produces no block until no connected peer
/// claims a longer chain, or until this much time has passed (so a lying or unreachable peer
/// cannot silence it for long). A block made on a stale tip right after a restart forks the
/// chain; if the restarted node also leads the next slot, its fork is the longer one and the
/// network drops a block that a majority already held (found by the pp-sim crash/restart
/// scenario).
const STARTUP_SYNC_GRACE: Duration = Duration::from_secs(15);
/// Most relayed transactions waiting together for their journal commit in the event loop.
const MAX_ADMITTING: usize = 1_024;

/// Waits until `shutdown` says stop (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

fn short(h: &pp_ledger::Hash) -> String {
    h.to_hex()[..12].to_string()
}

/// Announces an import that changed the best chain and logs it.
fn announce(core: &Core, block: &Block, imported: &Imported, from: Option<PeerId>, produced: bool) {
    let h = block.hash();
    match &imported.outcome {
        AddOutcome::Extended | AddOutcome::Reorg { .. } | AddOutcome::SideChain => {
            if let Some(net) = core.net() {
                net.broadcast_block(block, from);
                let tip = core.chain().tip_hash();
                net.update_tip(imported.height, tip);
            }
        }
        AddOutcome::AlreadyKnown => return,
    }
    let what = if produced { "produced" } else { "received" };
    match &imported.outcome {
        AddOutcome::Reorg {
            rolled_back,
            applied,
        } => tracing::info!(
            index = block.header.index,
            slot = block.header.slot,
            hash = %short(&h),
            txs = block.transactions.len(),
            rolled_back = rolled_back.len(),
            applied = applied.len(),
            "block {what}: fork switch"
        ),
        AddOutcome::SideChain => tracing::info!(
            index = block.header.index,
            slot = block.header.slot,
            hash = %short(&h),
            "block {what}: side chain"
        ),
        _ => tracing::info!(
            index = block.header.index,
            slot = block.header.slot,
            hash = %short(&h),
            txs = block.transactions.len(),
            "block {what}"
        ),
    }
}

/// One turn per slot: produce if leader, look for peers ahead, sleep to the next slot boundary.
pub(crate) async fn consensus_loop(core: Arc<Core>, mut shutdown: watch::Receiver<bool>) {
    let mut last_slot: Option<u64> = None;
    let started = tokio::time::Instant::now();
    let mut caught_up = false;
    loop {
        if *shutdown.borrow() {
            break;
        }
        if let Some(reason) = core.health.failure() {
            // Fail-stop: no more blocks, and no peer is served what the disk may not hold.
            tracing::error!(error = %reason, "storage failed: consensus stopped, network closed");
            if let Some(net) = core.net() {
                net.shutdown().await;
            }
            break;
        }
        let now = core.now_ms();
        if let Some(slot) = core.slots.slot_at(now) {
            if last_slot.is_none_or(|l| slot > l) {
                last_slot = Some(slot);
                caught_up = caught_up || caught_up_after_start(&core, started);
                // Cancelling a turn is safe: its only await points are in mining (no lock held,
                // nothing written yet) and imports are synchronous.
                tokio::select! {
                    _ = stopped(&mut shutdown) => break,
                    () = slot_turn(&core, slot, caught_up) => {}
                }
            }
        }
        let now = core.now_ms();
        let wait = match core.slots.slot_at(now) {
            Some(_) => core.slots.ms_until_next_slot(now),
            // Before genesis: wake at genesis time, but at least once a second.
            None => core.slots.genesis_time_ms().saturating_sub(now).min(1_000),
        };
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            _ = tokio::time::sleep(Duration::from_millis(wait.max(1))) => {}
        }
    }
}

/// Whether a node that started at `started` may produce: always without P2P or peers to wait
/// for; otherwise once every connected peer's tip is at most our height (sync requests bring us
/// there), or after [`STARTUP_SYNC_GRACE`].
fn caught_up_after_start(core: &Core, started: tokio::time::Instant) -> bool {
    let Some(net) = core.net() else {
        return true;
    };
    if started.elapsed() >= STARTUP_SYNC_GRACE {
        return true;
    }
    let peers = net.peers();
    if peers.is_empty() {
        // A lone node (no address to dial) has nobody to catch up with.
        return net.known_addrs().is_empty();
    }
    let height = core.chain().height();
    peers.iter().all(|p| p.tip_index <= height)
}

async fn slot_turn(core: &Arc<Core>, slot: u64, produce: bool) {
    let block = if produce {
        core.produce(slot).await
    } else {
        None
    };
    if let Some(block) = block {
        match core.import_block(block.clone()).await {
            Ok(imported) => {
                if matches!(
                    imported.outcome,
                    AddOutcome::Extended | AddOutcome::Reorg { .. }
                ) {
                    core.metrics.blocks_produced.inc();
                }
                announce(core, &block, &imported, None, true);
            }
            // A block arrived for this slot while we mined, or storage failed: nothing stored,
            // nothing announced.
            Err(e) => tracing::warn!(slot, error = %e, "own block not imported"),
        }
    }
    let Some(net) = core.net() else {
        return;
    };
    core.metrics.peers.set(gauge_value(net.peer_count()));
    let height = core.chain().height();
    if let Some(best) = net
        .peers()
        .into_iter()
        .filter(|p| p.tip_index > height)
        .max_by_key(|p| p.tip_index)
    {
        core.request_sync(best.id, best.tip_index);
    }
    if slot % SAVE_BANS_EVERY_SLOTS == 0 {
        if let Err(e) = core
            .writer
            .write(WriteOp::Bans(bans_of(net.as_ref())))
            .await
        {
            tracing::warn!(error = %e, "cannot save bans");
        }
    }
}

/// Stores the bans in force, so that they hold across a restart (directly: for the shutdown,
/// once the storage writer has stopped).
pub(crate) fn save_bans(core: &Core, net: &dyn PeerNet) -> Result<(), StorageError> {
    core.storage.save_bans(&bans_of(net))
}

/// The bans in force, as stored.
fn bans_of(net: &dyn PeerNet) -> Vec<StoredBan> {
    net.bans()
        .into_iter()
        .map(|b| StoredBan {
            target: b.target.to_string(),
            reason: b.reason,
            expires_at_ms: b.expires_at_ms,
            manual: b.manual,
        })
        .collect()
}

/// Handles announcements and connection changes from the network.
///
/// Relayed transactions are admitted in arrival order, but the loop does not wait for each one
/// to be durable: up to [`MAX_ADMITTING`] of them wait together (and are committed together by
/// the storage writer) while the loop goes on; each is relayed once it is on disk.
pub(crate) async fn event_loop(
    core: Arc<Core>,
    mut events: mpsc::Receiver<NetEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut admitting = FuturesUnordered::new();
    loop {
        let ev = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            Some(()) = admitting.next(), if !admitting.is_empty() => continue,
            ev = events.recv(), if admitting.len() < MAX_ADMITTING => match ev {
                Some(ev) => ev,
                None => break,
            },
        };
        let Some(net) = core.net().cloned() else {
            continue;
        };
        match ev {
            NetEvent::PeerConnected(info) => {
                tracing::info!(peer = %info.id, node = %info.node_id, addr = %info.addr, tip = info.tip_index, "peer connected");
                core.metrics.peers.set(gauge_value(net.peer_count()));
                if info.tip_index > core.chain().height() {
                    core.request_sync(info.id, info.tip_index);
                }
            }
            NetEvent::PeerDisconnected { peer, reason } => {
                tracing::info!(%peer, %reason, "peer disconnected");
                core.metrics.peers.set(gauge_value(net.peer_count()));
            }
            NetEvent::NewBlock { peer, block } => on_block(&core, net.as_ref(), peer, block).await,
            NetEvent::NewTx { peer, tx } => {
                let admission = core.begin_admit(vec![tx.clone()]).await;
                let core = core.clone();
                admitting.push(async move {
                    let r = admission.finish(&core).await.pop();
                    relay_admitted(net.as_ref(), peer, &tx, r);
                });
            }
        }
    }
}

/// Relays a transaction from `peer` that was admitted (and is durable), or blames `peer` for
/// a bad signature.
fn relay_admitted(
    net: &dyn PeerNet,
    peer: PeerId,
    tx: &Transaction,
    r: Option<Result<Inserted, MempoolError>>,
) {
    match r {
        Some(Ok(Inserted::New)) => {
            net.credit(peer);
            net.broadcast_tx(tx, Some(peer));
        }
        Some(Ok(Inserted::Duplicate)) | None => {}
        Some(Err(e)) => {
            tracing::debug!(%peer, id = %tx.id(), error = %e, "transaction from peer refused");
            if matches!(e, MempoolError::BadSignature { .. }) {
                net.penalize(
                    peer,
                    Misbehaviour::InvalidTransaction,
                    "transaction with a bad signature",
                );
            }
        }
    }
}

async fn on_block(core: &Core, net: &dyn PeerNet, peer: PeerId, block: Block) {
    let hash = block.hash();
    if core.chain().contains(&hash) {
        return;
    }
    let index = block.header.index;
    match core.import_block(block.clone()).await {
        Ok(imported) => {
            if !matches!(imported.outcome, AddOutcome::AlreadyKnown) {
                core.metrics.blocks_received.inc();
                net.credit(peer);
            }
            announce(core, &block, &imported, Some(peer), false);
        }
        Err(ImportError::Chain(ChainError::UnknownParent { hash: parent })) => {
            // What can be checked without the parent is checked before anything is fetched
            // for it: an invalid block is refused, and its sender blamed, at once.
            let detached = core.chain().check_detached(&block);
            if let Err(e) = detached {
                core.metrics.blocks_rejected.inc();
                tracing::debug!(%peer, index, hash = %short(&hash), error = %e, "invalid block with unknown parent");
                net.penalize(peer, block_offence(&e), &format!("invalid block: {e}"));
                return;
            }
            tracing::debug!(%peer, index, parent = %short(&parent), "block with unknown parent: syncing");
            core.request_sync(peer, index);
        }
        Err(ImportError::Chain(ChainError::Block(e))) => {
            core.metrics.blocks_rejected.inc();
            tracing::debug!(%peer, index, hash = %short(&hash), error = %e, "invalid block from peer");
            net.penalize(peer, block_offence(&e), &format!("invalid block: {e}"));
        }
        Err(e) => {
            tracing::warn!(%peer, index, hash = %short(&hash), error = %e, "block not imported")
        }
    }
}

/// The offence of sending a block that breaks `e`: rules no fork or delay can excuse (the
/// block is invalid on every chain) are [`Misbehaviour::InvalidBlock`] or, for a block over the
/// size limit, [`Misbehaviour::OversizedBlock`]; the rest (leader, slot, clock, transactions on
/// this chain) can be an honest node's view of another fork: [`Misbehaviour::RejectedBlock`].
fn block_offence(e: &BlockError) -> Misbehaviour {
    match e {
        BlockError::TooLarge { .. } | BlockError::TooManyTxs { .. } => Misbehaviour::OversizedBlock,
        BlockError::BadVersion { .. }
        | BlockError::WrongDifficulty { .. }
        | BlockError::BadPow { .. }
        | BlockError::BadTxRoot { .. }
        | BlockError::BadBlockSignature(_) => Misbehaviour::InvalidBlock,
        _ => Misbehaviour::RejectedBlock,
    }
}

/// Serves sync requests one at a time.
pub(crate) async fn sync_loop(
    core: Arc<Core>,
    mut requests: mpsc::Receiver<SyncRequest>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let mut req = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            r = requests.recv() => match r { Some(r) => r, None => break },
        };
        // Coalesce what queued up meanwhile: follow the peer with the longest claimed chain.
        while let Ok(r) = requests.try_recv() {
            if r.tip_index > req.tip_index {
                req = r;
            }
        }
        if req.tip_index <= core.chain().height() {
            continue;
        }
        let Some(net) = core.net().cloned() else {
            continue;
        };
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            r = sync_from(&core, net.as_ref(), req) => match r {
                Ok(n) if n > 0 => tracing::info!(peer = %req.peer, blocks = n, height = core.chain().height(), "synced"),
                Ok(_) => {}
                Err(e) => tracing::debug!(peer = %req.peer, error = %e, "sync attempt failed"),
            },
        }
    }
}

/// Why a sync attempt stopped early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    #[error(transparent)]
    Net(#[from] NetError),
    #[error("peer sent block {got} where {expected} was asked for")]
    OutOfOrder { expected: u64, got: u64 },
    #[error("peer's block {index} was refused: {error}")]
    Refused { index: u64, error: ImportError },
}

/// Fetches and applies the peer's best chain from our fork point. Returns the blocks applied.
pub(crate) async fn sync_from(
    core: &Core,
    net: &dyn PeerNet,
    req: SyncRequest,
) -> Result<u64, SyncError> {
    let locator = crate::history::locator(core);
    let headers = net
        .get_headers(req.peer, locator, MAX_SERVE_HEADERS)
        .await?;
    // The first header we do not hold is where their chain leaves ours.
    let mut next = {
        let c = core.chain();
        match headers.iter().find(|h| !c.contains(&h.hash())) {
            Some(h) => h.index,
            None => match headers.last() {
                Some(h) => h.index.saturating_add(1),
                None => {
                    // It claimed (in `hello` or an announcement) a chain longer than ours and
                    // has nothing past our fork point to show for it.
                    if req.tip_index > c.height() {
                        drop(c);
                        net.penalize(
                            req.peer,
                            Misbehaviour::UndeliverableAnnouncement,
                            &format!("claimed height {} but sent no headers", req.tip_index),
                        );
                    }
                    return Ok(0);
                }
            },
        }
    };
    let batch = core.sync_batch;
    let mut applied = 0u64;
    let mut last: Option<Block> = None;
    for _ in 0..MAX_SYNC_ROUNDS {
        let blocks = net.get_blocks(req.peer, next, batch).await?;
        let got = blocks.len();
        if let Some((i, b)) = blocks
            .iter()
            .enumerate()
            .find(|(i, b)| b.header.index != next.saturating_add(*i as u64))
        {
            net.penalize(
                req.peer,
                Misbehaviour::BadSyncAnswer,
                "get_blocks answer out of order",
            );
            return Err(SyncError::OutOfOrder {
                expected: next.saturating_add(i as u64),
                got: b.header.index,
            });
        }
        let tail = blocks.last().cloned();
        let (done, refused) = core
            .import_blocks(blocks)
            .await
            .map_err(|e| SyncError::Refused {
                index: next,
                error: ImportError::Storage(e),
            })?;
        let fresh = done
            .iter()
            .filter(|d| !matches!(d.outcome, AddOutcome::AlreadyKnown))
            .count() as u64;
        core.metrics.blocks_received.inc_by(fresh);
        applied += fresh;
        next = next.saturating_add(done.len() as u64);
        if let Some(e) = refused {
            if let ChainError::Block(be) = &e {
                core.metrics.blocks_rejected.inc();
                net.penalize(
                    req.peer,
                    block_offence(be),
                    &format!("invalid block in sync: {be}"),
                );
            }
            return Err(SyncError::Refused {
                index: next,
                error: ImportError::Chain(e),
            });
        }
        if tail.is_some() {
            last = tail;
        }
        if got < batch as usize {
            break;
        }
    }
    // Tell our other peers about the new tip once, rather than relaying every synced block.
    if let Some(b) = last {
        let c = core.chain();
        if c.tip_hash() == b.hash() {
            let height = c.height();
            drop(c);
            net.broadcast_block(&b, Some(req.peer));
            net.update_tip(height, b.hash());
        }
    }
    Ok(applied)
}
