//! The long-running tasks of a node: the consensus loop (one turn per slot), the network event
//! handler (gossip in). Sync (catching up with longer chains) is [`crate::sync`].
//!
//! Every task stops when the shutdown signal (a `watch` channel) flips, and none holds a lock
//! across an `.await`.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt as _};
use pp_ledger::{AddOutcome, Block, BlockError, ChainError, Transaction, TxError};
use pp_net::{Misbehaviour, NetEvent, PeerId};
use tokio::sync::{mpsc, watch};

use crate::events::NodeEvent;
use crate::mempool::{Inserted, MempoolError};
use crate::metrics::gauge_value;
use crate::net::PeerNet;
use crate::node::{Core, ImportError, Imported};
use crate::storage::{StorageError, StoredBan, WriteOp};

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
/// After a start, a node also waits (within [`STARTUP_SYNC_GRACE`]) until this many peers are
/// connected, or as many as it knows addresses of if fewer: one connected peer that is itself
/// behind (restarted a moment before) says nothing about the chain the others hold (pp-sim
/// crash/restart seed 18: two nodes restarted together, each connected only to the other, and
/// one of them orphaned a block three nodes held).
const STARTUP_PEERS: usize = 3;
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

/// Logs at INFO if the first argument is true, else at DEBUG (see [`crate::block_log`]).
macro_rules! block_line {
    ($own_line:expr, $($arg:tt)+) => {
        if $own_line {
            tracing::info!($($arg)+)
        } else {
            tracing::debug!($($arg)+)
        }
    };
}

/// Announces an import that changed the best chain and logs it.
fn announce(core: &Core, block: &Block, imported: &Imported, from: Option<PeerId>, produced: bool) {
    let h = block.hash();
    match &imported.outcome {
        AddOutcome::Extended | AddOutcome::Reorg { .. } | AddOutcome::SideChain => {
            if let Some(net) = core.net() {
                net.broadcast_block(block, from);
                if from.is_some() {
                    core.metrics.ops.blocks_relayed.inc();
                }
                let tip = core.chain().tip_hash();
                net.update_tip(imported.height, tip);
            }
        }
        AddOutcome::AlreadyKnown => return,
    }
    let what = if produced { "produced" } else { "received" };
    // Fork switches always get their own line; other blocks are rate-limited.
    let own_line = matches!(imported.outcome, AddOutcome::Reorg { .. }) || core.block_log_line(1);
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
        AddOutcome::SideChain => block_line!(
            own_line,
            index = block.header.index,
            slot = block.header.slot,
            hash = %short(&h),
            "block {what}: side chain"
        ),
        _ => block_line!(
            own_line,
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
/// for; otherwise once [`STARTUP_PEERS`] peers (or every address it knows, if fewer) are
/// connected and every connected peer's tip is at most our height (sync requests bring us
/// there), or after [`STARTUP_SYNC_GRACE`].
fn caught_up_after_start(core: &Core, started: tokio::time::Instant) -> bool {
    let Some(net) = core.net() else {
        return true;
    };
    if started.elapsed() >= STARTUP_SYNC_GRACE {
        return true;
    }
    let peers = net.peers();
    let known = net.known_addrs();
    if peers.is_empty() {
        // A lone node (no address to dial) has nobody to catch up with.
        return known.is_empty();
    }
    let reachable = known
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        .max(1);
    if peers.len() < reachable.min(STARTUP_PEERS) {
        return false;
    }
    let height = core.chain().height();
    peers.iter().all(|p| p.tip_index <= height)
}

async fn slot_turn(core: &Arc<Core>, slot: u64, produce: bool) {
    let led = core.slot_started(slot);
    let mut produced = false;
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
                    produced = true;
                }
                announce(core, &block, &imported, None, true);
            }
            // A block arrived for this slot while we mined, or storage failed: nothing stored,
            // nothing announced.
            Err(e) => tracing::warn!(slot, error = %e, "own block not imported"),
        }
    }
    core.slot_ended(led, produced);
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
        // `biased`: a fixed polling order (not tokio's random start) keeps simulations
        // replayable; finished admissions first, as they make room for more events.
        let ev = tokio::select! {
            biased;
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
                core.events.publish([NodeEvent::peer_up(&info)]);
                if info.tip_index > core.chain().height() {
                    core.request_sync(info.id, info.tip_index);
                }
            }
            NetEvent::PeerDisconnected { peer, reason } => {
                tracing::info!(%peer, %reason, "peer disconnected");
                core.metrics.peers.set(gauge_value(net.peer_count()));
                core.events
                    .publish([NodeEvent::PeerDown { id: peer.0, reason }]);
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
            if matches!(e, MempoolError::Tx(TxError::BadSignature(_))) {
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
                core.observe_propagation(&block);
                net.credit(peer);
            }
            announce(core, &block, &imported, Some(peer), false);
        }
        Err(ImportError::Chain(ChainError::UnknownParent { hash: parent })) => {
            // What can be checked without the parent is checked before anything is fetched
            // for it: an invalid block is refused, and its sender blamed, at once.
            let detached = core.chain().check_detached(&block);
            if let Err(e) = detached {
                core.metrics.block_rejected(&e);
                tracing::debug!(%peer, index, hash = %short(&hash), error = %e, "invalid block with unknown parent");
                net.penalize(peer, block_offence(&e), &format!("invalid block: {e}"));
                return;
            }
            tracing::debug!(%peer, index, parent = %short(&parent), "block with unknown parent: syncing");
            core.request_sync(peer, index);
        }
        Err(ImportError::Chain(ChainError::Block(e))) => {
            core.metrics.block_rejected(&e);
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
pub(crate) fn block_offence(e: &BlockError) -> Misbehaviour {
    match e {
        BlockError::TooLarge { .. } | BlockError::TooManyTxs { .. } => Misbehaviour::OversizedBlock,
        BlockError::BadVersion { .. }
        | BlockError::WrongDifficulty { .. }
        | BlockError::BadPow { .. }
        | BlockError::BadTxRoot { .. }
        | BlockError::BadBlockSignature(_)
        | BlockError::BadOpCertSignature { .. }
        | BlockError::BadHotKeySignature { .. } => Misbehaviour::InvalidBlock,
        _ => Misbehaviour::RejectedBlock,
    }
}
