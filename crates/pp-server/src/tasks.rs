//! The long-running tasks of a node: the consensus loop (one turn per slot), the network event
//! handler (gossip in). Sync (catching up with longer chains) is [`crate::sync`]. They decide
//! *when*; what is done is the node's API ([`crate::node`]): `produce`, `import_own`,
//! `peers_turn`, `on_peer_connected`, `on_block`, `begin_admit`.
//!
//! Every task stops when the shutdown signal (a `watch` channel) flips, and none holds a lock
//! across an `.await`.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt as _};
use pp_net::NetEvent;
use tokio::sync::{mpsc, watch};

use crate::node::Core;

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
/// Most relayed transactions waiting together for their journal commit in the event loop (it
/// stops taking events at this many, so at most this plus [`MAX_TX_GATHER`] are in flight).
const MAX_ADMITTING: usize = 1_024;
/// Most relayed transactions gathered into one admission, whose signatures are checked as one
/// batch.
const MAX_TX_GATHER: usize = 256;

/// Waits until `shutdown` says stop (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            return;
        }
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
        if let Some(reason) = core.storage_failure() {
            // Fail-stop: no more blocks, and no peer is served what the disk may not hold.
            tracing::error!(error = %reason, "storage failed: consensus stopped, network closed");
            core.net().shutdown().await;
            break;
        }
        let now = core.now_ms();
        if let Some(slot) = core.slots().slot_at(now) {
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
        let wait = match core.slots().slot_at(now) {
            Some(_) => core.slots().ms_until_next_slot(now),
            // Before genesis: wake at genesis time, but at least once a second.
            None => core
                .slots()
                .genesis_time_ms()
                .saturating_sub(now)
                .min(1_000),
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
    let net = core.net();
    if started.elapsed() >= STARTUP_SYNC_GRACE {
        return true;
    }
    let peers = net.peers();
    let known = net.known_addrs();
    if peers.is_empty() {
        // A lone node (no address to dial, or no P2P) has nobody to catch up with.
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
    let height = core.height();
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
        produced = core.import_own(block).await;
    }
    core.slot_ended(led, produced);
    core.peers_turn(slot).await;
}

/// Handles announcements and connection changes from the network.
///
/// Relayed transactions are admitted in arrival order, those from one peer that are already
/// waiting gathered into one admission (their signatures checked as one batch, see
/// [`Core::begin_admit`]). The loop does not wait for them to be durable: up to
/// [`MAX_ADMITTING`] wait together (and are committed together by the storage writer) while the
/// loop goes on; each is relayed once it is on disk.
pub(crate) async fn event_loop(
    core: Arc<Core>,
    mut events: mpsc::Receiver<NetEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut admitting = FuturesUnordered::new();
    // Transactions in `admitting`.
    let mut in_flight = 0usize;
    // An event taken from the channel while gathering transactions, handled next.
    let mut next: Option<NetEvent> = None;
    loop {
        let ev = match next.take() {
            Some(ev) => ev,
            // `biased`: a fixed polling order (not tokio's random start) keeps simulations
            // replayable; finished admissions first, as they make room for more events.
            None => tokio::select! {
                biased;
                _ = stopped(&mut shutdown) => break,
                Some(n) = admitting.next(), if !admitting.is_empty() => {
                    in_flight -= n;
                    continue;
                }
                ev = events.recv(), if in_flight < MAX_ADMITTING => match ev {
                    Some(ev) => ev,
                    None => break,
                },
            },
        };
        match ev {
            NetEvent::PeerConnected(info) => core.on_peer_connected(&info),
            NetEvent::PeerDisconnected { peer, reason } => core.on_peer_disconnected(peer, reason),
            NetEvent::NewBlock { peer, block } => core.on_block(peer, block).await,
            // Only a node configured `headers_only` is handed one; a full node never is.
            NetEvent::NewHeader { .. } => {}
            NetEvent::NewTx { peer, tx } => {
                // The transactions from the same peer already waiting join this one (up to
                // MAX_TX_GATHER), so that their signatures are checked as one batch; the first
                // other event ends the gathering and is handled next, so the order of events
                // is kept.
                let mut txs = vec![tx];
                while txs.len() < MAX_TX_GATHER {
                    match events.try_recv() {
                        Ok(NetEvent::NewTx { peer: p, tx }) if p == peer => txs.push(tx),
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let n = txs.len();
                in_flight += n;
                let admission = core.begin_admit(txs, Some(peer)).await;
                let core = core.clone();
                admitting.push(async move {
                    admission.finish(&core).await;
                    n
                });
            }
        }
    }
}
