//! Peers: connecting, then syncing from a peer that is ahead — written once here and used by
//! `POST /peers`, [`Server::connect_to_peer`](crate::Server::connect_to_peer), the network's
//! `PeerConnected` events and the consensus loop's look at the peers each slot — and the bans
//! that hold across restarts.

use std::time::Duration;

use pp_net::{PeerId, PeerInfo};

use super::Core;
use crate::events::NodeEvent;
use crate::metrics::gauge_value;
use crate::storage::{StorageError, StoredBan, WriteOp};

/// Bans are saved to disk at most this often, in slots (the network saves its address book
/// itself).
const SAVE_BANS_EVERY_SLOTS: u64 = 20;

/// Why [`Core::connect`] did not connect.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// This node runs without P2P.
    #[error("peer-to-peer networking is disabled on this node")]
    P2pDisabled,
    /// The dial or the handshake failed.
    #[error(transparent)]
    Net(#[from] pp_net::NetError),
    /// No handshake within the time allowed.
    #[error("no handshake within {0:?}")]
    Timeout(Duration),
}

impl Core {
    /// Remembers `addr` (it is redialed while below the peer target), dials it and completes
    /// the handshake within `timeout`, then syncs from the peer if it is ahead.
    pub(crate) async fn connect(
        &self,
        addr: &str,
        timeout: Duration,
    ) -> Result<PeerInfo, ConnectError> {
        if !self.p2p_enabled() {
            return Err(ConnectError::P2pDisabled);
        }
        let net = self.net();
        net.add_known_addr(addr);
        let info = tokio::time::timeout(timeout, net.connect(addr))
            .await
            .map_err(|_| ConnectError::Timeout(timeout))??;
        self.sync_if_ahead(info.id, info.tip_index);
        Ok(info)
    }

    /// Asks the sync task to catch up with `peer` if its tip is above ours.
    pub(crate) fn sync_if_ahead(&self, peer: PeerId, tip_index: u64) {
        if tip_index > self.height() {
            self.request_sync(peer, tip_index);
        }
    }

    /// A peer completed its handshake (either direction): counted, published, synced from if
    /// ahead.
    pub(crate) fn on_peer_connected(&self, info: &PeerInfo) {
        tracing::info!(peer = %info.id, node = %info.node_id, addr = %info.addr, tip = info.tip_index, "peer connected");
        self.metrics.peers.set(gauge_value(self.net().peer_count()));
        self.events.publish([NodeEvent::peer_up(info)]);
        self.sync_if_ahead(info.id, info.tip_index);
    }

    /// A peer's connection ended.
    pub(crate) fn on_peer_disconnected(&self, peer: PeerId, reason: String) {
        tracing::info!(%peer, %reason, "peer disconnected");
        self.metrics.peers.set(gauge_value(self.net().peer_count()));
        self.events
            .publish([NodeEvent::PeerDown { id: peer.0, reason }]);
    }

    /// The peers' part of a slot turn: the peer gauge, a sync request to the connected peer
    /// furthest ahead (if any), and the bans saved every [`SAVE_BANS_EVERY_SLOTS`] slots.
    /// Nothing without P2P (there are no peers and no bans to save).
    pub(crate) async fn peers_turn(&self, slot: u64) {
        if !self.p2p_enabled() {
            return;
        }
        let net = self.net();
        self.metrics.peers.set(gauge_value(net.peer_count()));
        let height = self.height();
        if let Some(best) = net
            .peers()
            .into_iter()
            .filter(|p| p.tip_index > height)
            .max_by_key(|p| p.tip_index)
        {
            self.request_sync(best.id, best.tip_index);
        }
        if slot % SAVE_BANS_EVERY_SLOTS == 0 {
            if let Err(e) = self.writer.write(WriteOp::Bans(self.bans_in_force())).await {
                tracing::warn!(error = %e, "cannot save bans");
            }
        }
    }

    /// Stores the bans in force now, directly (for the admin endpoints, and at shutdown once the
    /// storage writer has stopped), so that they hold across a restart. Without P2P nothing is
    /// written: the bans an earlier run saved stay stored.
    pub(crate) fn save_bans(&self) -> Result<(), StorageError> {
        if !self.p2p_enabled() {
            return Ok(());
        }
        self.storage.save_bans(&self.bans_in_force())
    }

    /// The bans saved at the last run (to put back into a network that just started).
    pub(crate) fn stored_bans(&self) -> Vec<StoredBan> {
        self.storage.bans().unwrap_or_default()
    }

    /// The bans in force, as stored.
    fn bans_in_force(&self) -> Vec<StoredBan> {
        self.net()
            .bans()
            .into_iter()
            .map(|b| StoredBan {
                target: b.target.to_string(),
                reason: b.reason,
                expires_at_ms: b.expires_at_ms,
                manual: b.manual,
            })
            .collect()
    }
}
