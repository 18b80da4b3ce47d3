//! Inventory and compact-block relay on the wire (docs/protocol.md §14): the answers to
//! `get_txs` and `get_block_txs`, the fetch of announced transactions, the rebuild of compact
//! blocks, and the loop that sends the ids waiting for each peer.
//!
//! The state lives in [`Relay`](crate::relay::Relay); here are the steps that talk to peers. A
//! fetch or a rebuild runs in its own task (it waits for an answer that the connection's reader
//! must deliver), bounded by the relay state's limits. No lock is held across an `.await`, and
//! the chain view (which may lock the node's mempool) is never called under the relay lock.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use pp_ledger::{Block, Hash, SignedHeader, Transaction};
use tracing::debug;

use crate::codec::encode_message;
use crate::compact::{
    block_with, lay_out, CompactBlock, Rebuild, COMPACT_VERSION, MAX_COMPACT_TXS,
};
use crate::error::NetError;
use crate::message::{codes, Message, MAX_GET_TXS, MAX_INV_IDS};
use crate::misbehaviour::Misbehaviour;
use crate::network::{NetEvent, Shared};
use crate::peer_table::{PeerId, PeerInfo};

/// Rounds of `inv_txs` per peer in one flush (each up to [`MAX_INV_IDS`] ids).
const FLUSH_ROUNDS: usize = 4;

/// Our `compact_relay`, if this node asks for inventory relay.
pub(crate) fn our_compact_relay(shared: &Shared, peer: PeerId) {
    if !shared.config.compact_relay || shared.config.headers_only {
        return;
    }
    let msg = Message::CompactRelay {
        version: COMPACT_VERSION,
    };
    if let (Ok(frame), Ok(client)) = (
        encode_message(&msg, shared.config.max_frame_bytes),
        shared.client(peer),
    ) {
        if client.try_send(frame) {
            shared.relay().told(peer);
        }
    }
}

/// A peer's `compact_relay`: announce to it by id and compact block from now on; answer with
/// ours if we have not sent it yet. An unknown scheme version is ignored (the peer keeps getting
/// everything in full), and so is the `compact_relay` of a peer that said `headers_only` (it
/// keeps getting nothing).
pub(crate) fn on_compact_relay(shared: &Shared, info: &PeerInfo, version: u32) {
    if version != COMPACT_VERSION {
        debug!(version, "compact_relay with an unknown version ignored");
        return;
    }
    let reply = shared.relay().peer_wants_compact(info.id);
    if reply {
        our_compact_relay(shared, info.id);
    }
}

/// A peer's `inv_txs`: fetch from it the announced transactions we neither hold nor fetch.
pub(crate) fn on_inv(shared: &Arc<Shared>, info: &PeerInfo, ids: Vec<Hash>) {
    if ids.len() > MAX_INV_IDS {
        let reason = format!("inv_txs with {} ids, at most {MAX_INV_IDS}", ids.len());
        shared.penalize_peer(info, Misbehaviour::BadRequest, &reason);
        return;
    }
    // Asked outside the relay lock: the view may take the node's mempool lock.
    let held: HashSet<Hash> = ids
        .iter()
        .filter(|id| shared.view.has_tx(id))
        .copied()
        .collect();
    let want = shared
        .relay()
        .on_inv(info.id, &ids, MAX_GET_TXS, |id| held.contains(id));
    if want.is_empty() {
        return;
    }
    let shared2 = shared.clone();
    let peer = info.id;
    shared
        .tasks
        .spawn(async move { fetch_txs(shared2, peer, want).await });
}

/// Ask `peer` for `ids` and hand each transaction asked for to the owner (once).
async fn fetch_txs(shared: Arc<Shared>, peer: PeerId, ids: Vec<Hash>) {
    let answer = match shared.client(peer) {
        Ok(c) => {
            let asked = ids.clone();
            c.request(move |request_id| Message::GetTxs {
                request_id,
                ids: asked,
            })
            .await
        }
        Err(e) => Err(e),
    };
    let mut got = Vec::new();
    match answer {
        Ok(Message::Txs { txs, .. }) => {
            let mut wanted: HashSet<Hash> = ids.iter().copied().collect();
            for tx in txs {
                let id = tx.id();
                // Only what was asked, once: anything else in the answer is ignored.
                if wanted.remove(&id) {
                    got.push(id);
                    shared.relay().mark_known(peer, id);
                    shared.emit(NetEvent::NewTx { peer, tx });
                }
            }
        }
        Ok(other) => debug!(
            peer = peer.0,
            got = other.kind(),
            "get_txs answered wrongly"
        ),
        Err(e) => debug!(peer = peer.0, error = %e, "get_txs failed"),
    }
    shared.relay().fetched(&ids, &got);
}

/// The answer to `get_txs`: the transactions asked for that we announced or hold, in request
/// order; the others are left out.
pub(crate) fn txs_answer(
    shared: &Shared,
    info: &PeerInfo,
    request_id: u64,
    ids: Vec<Hash>,
) -> Result<Bytes, NetError> {
    let max = shared.config.max_frame_bytes;
    if ids.len() > MAX_GET_TXS {
        let reason = format!("get_txs with {} ids, at most {MAX_GET_TXS}", ids.len());
        shared.penalize_peer(info, Misbehaviour::BadRequest, &reason);
        return encode_message(
            &Message::error(Some(request_id), codes::BAD_REQUEST, reason),
            max,
        );
    }
    let cached: Vec<(Hash, Option<Transaction>)> = {
        let relay = shared.relay();
        ids.iter().map(|id| (*id, relay.cached_tx(id))).collect()
    };
    let txs: Vec<Transaction> = cached
        .into_iter()
        .filter_map(|(id, tx)| tx.or_else(|| shared.view.get_tx(&id)))
        .collect();
    shared.relay().served(info.id, txs.iter().map(|tx| tx.id()));
    encode_message(&Message::Txs { request_id, txs }, max)
}

/// The answer to `get_block_txs`: the transactions at `indexes` of a block we announced.
pub(crate) fn block_txs_answer(
    shared: &Shared,
    info: &PeerInfo,
    request_id: u64,
    hash: Hash,
    indexes: Vec<u32>,
) -> Result<Bytes, NetError> {
    let max = shared.config.max_frame_bytes;
    let refuse = |reason: String| {
        shared.penalize_peer(info, Misbehaviour::BadRequest, &reason);
        encode_message(
            &Message::error(Some(request_id), codes::BAD_REQUEST, reason),
            max,
        )
    };
    if indexes.len() > MAX_COMPACT_TXS {
        return refuse(format!(
            "get_block_txs with {} indexes, at most {MAX_COMPACT_TXS}",
            indexes.len()
        ));
    }
    if indexes.windows(2).any(|w| w[0] >= w[1]) {
        return refuse("get_block_txs indexes must increase strictly".to_string());
    }
    let Some(block) = shared.relay().block(&hash) else {
        return encode_message(
            &Message::error(
                Some(request_id),
                codes::NOT_FOUND,
                format!("block {hash} is not among the blocks announced recently"),
            ),
            max,
        );
    };
    let n = block.transactions.len();
    if let Some(bad) = indexes.iter().find(|i| **i as usize >= n) {
        return refuse(format!("index {bad} out of range ({n} transactions)"));
    }
    let txs = indexes
        .iter()
        .map(|i| block.transactions[*i as usize].clone())
        .collect();
    match encode_message(
        &Message::BlockTxs {
            request_id,
            hash,
            txs,
        },
        max,
    ) {
        Err(NetError::FrameTooLarge { .. }) => encode_message(
            &Message::error(
                Some(request_id),
                codes::FRAME_TOO_LARGE,
                "the transactions asked for do not fit in one frame",
            ),
            max,
        ),
        r => r,
    }
}

/// A peer's `compact_block`: record its tip and rebuild the block (in a task) unless we hold it
/// or are rebuilding it already.
pub(crate) fn on_compact_block(shared: &Arc<Shared>, info: &PeerInfo, cb: CompactBlock) {
    let hash = cb.header.hash();
    shared.update_peer_tip(info.id, cb.header.index, hash);
    if shared.view.has_block(&hash) || !shared.relay().start_rebuild(hash) {
        return;
    }
    let shared2 = shared.clone();
    let peer = info.id;
    shared.tasks.spawn(async move {
        let block = rebuild(&shared2, peer, &cb, hash).await;
        shared2.relay().end_rebuild(&hash);
        if block.is_none() {
            shared2.stats.compact_failed.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(block) = block {
            {
                let mut relay = shared2.relay();
                for tx in &block.transactions {
                    relay.mark_known(peer, tx.id());
                }
            }
            shared2.emit(NetEvent::NewBlock { peer, block });
        }
    });
}

/// A peer's `new_header`. Only a node that said `headers_only` is sent one (docs/protocol.md
/// §15): it records the sender's tip and hands the header, unchecked, to the owner, whose job
/// is to verify it like any header. Any other node was sent it against the rule: the sender
/// is scored [`Misbehaviour::ProtocolViolation`] and the header dropped. Charged, like every
/// announcement, to the sender's byte budget.
pub(crate) fn on_new_header(shared: &Shared, info: &PeerInfo, header: SignedHeader) {
    if !shared.config.headers_only {
        shared.penalize_peer(
            info,
            Misbehaviour::ProtocolViolation,
            "new_header to a node that did not say headers_only",
        );
        return;
    }
    shared.update_peer_tip(info.id, header.header.index, header.hash());
    shared.emit(NetEvent::NewHeader {
        peer: info.id,
        header,
    });
}

/// Rebuild the block of `cb` from our transactions, fetching what is missing from `peer`, or
/// every transaction when the short ids are ambiguous or the rebuilt block does not match its
/// header. `None` if the peer cannot deliver: it then announced a tip we will sync towards.
async fn rebuild(shared: &Shared, peer: PeerId, cb: &CompactBlock, hash: Hash) -> Option<Block> {
    let mut partial = match lay_out(cb) {
        Ok(Rebuild::Partial(p)) => p,
        Ok(Rebuild::Ambiguous) => return fetch_all(shared, peer, cb, hash).await,
        Err(e) => {
            let info = shared.peer_info(peer)?;
            shared.penalize_peer(&info, Misbehaviour::BadAnnouncement, &e.to_string());
            return None;
        }
    };
    shared.relay().offer_cached(&mut partial);
    let candidates = shared.view.pending_txs(&mut |id| partial.matches(id));
    for tx in &candidates {
        partial.offer(&tx.id(), tx);
    }
    let missing = partial.missing();
    if missing.is_empty() {
        if let Some(block) = partial.finish() {
            shared.stats.compact_rebuilt.fetch_add(1, Ordering::Relaxed);
            return Some(block);
        }
        return fetch_all(shared, peer, cb, hash).await;
    }
    let txs = get_block_txs(shared, peer, hash, missing).await?;
    match partial.fill(txs) {
        Ok(()) => {
            if let Some(block) = partial.finish() {
                shared.stats.compact_fetched.fetch_add(1, Ordering::Relaxed);
                return Some(block);
            }
        }
        Err(e) => {
            let info = shared.peer_info(peer)?;
            shared.penalize_peer(&info, Misbehaviour::BadSyncAnswer, &e.to_string());
            return None;
        }
    }
    fetch_all(shared, peer, cb, hash).await
}

/// The full fallback: ask for every transaction of the block.
async fn fetch_all(shared: &Shared, peer: PeerId, cb: &CompactBlock, hash: Hash) -> Option<Block> {
    let n = u32::try_from(cb.tx_count()).ok()?;
    let txs = get_block_txs(shared, peer, hash, (0..n).collect()).await?;
    if txs.len() != n as usize {
        let info = shared.peer_info(peer)?;
        let reason = format!("block_txs with {} transactions, {n} asked", txs.len());
        shared.penalize_peer(&info, Misbehaviour::BadSyncAnswer, &reason);
        return None;
    }
    shared.stats.compact_full.fetch_add(1, Ordering::Relaxed);
    Some(block_with(cb, txs))
}

async fn get_block_txs(
    shared: &Shared,
    peer: PeerId,
    hash: Hash,
    indexes: Vec<u32>,
) -> Option<Vec<Transaction>> {
    let client = shared.client(peer).ok()?;
    let answer = client
        .request(move |request_id| Message::GetBlockTxs {
            request_id,
            hash,
            indexes,
        })
        .await;
    match answer {
        Ok(Message::BlockTxs { hash: h, txs, .. }) if h == hash => {
            let n = u64::try_from(txs.len()).unwrap_or(u64::MAX);
            shared
                .stats
                .compact_txs_fetched
                .fetch_add(n, Ordering::Relaxed);
            Some(txs)
        }
        Ok(other) => {
            debug!(
                peer = peer.0,
                got = other.kind(),
                "get_block_txs answered wrongly"
            );
            None
        }
        Err(e) => {
            debug!(peer = peer.0, error = %e, "get_block_txs failed");
            None
        }
    }
}

/// Every `inv_interval`, send each peer the ids waiting for it.
pub(crate) async fn flush_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(
        shared
            .config
            .inv_interval
            .max(std::time::Duration::from_millis(1)),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        for _ in 0..FLUSH_ROUNDS {
            let batches = shared
                .relay()
                .take_pending(MAX_INV_IDS, tokio::time::Instant::now());
            if batches.is_empty() {
                break;
            }
            let full = batches.iter().any(|(_, ids)| ids.len() == MAX_INV_IDS);
            for (peer, ids) in batches {
                let Ok(frame) =
                    encode_message(&Message::InvTxs { ids }, shared.config.max_frame_bytes)
                else {
                    continue;
                };
                let sent = shared
                    .client(peer)
                    .map(|c| c.try_send(frame))
                    .unwrap_or(false);
                if !sent {
                    shared
                        .stats
                        .dropped_broadcasts
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            if !full {
                break;
            }
        }
    }
}
