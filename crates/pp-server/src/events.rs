//! The node's event bus: what happens in a running node (a block joins the best chain, a
//! transaction is admitted to the mempool, a peer connects or leaves), published to whoever
//! listens — today the `GET /events` Server-Sent Events stream (see `docs/http-api.md#get-events`).
//!
//! Memory is bounded whatever the listeners do: events go into one tokio `broadcast` ring of
//! [`EVENT_BUFFER`] entries shared by every listener, so a listener that does not keep up does not
//! make the node hold more; it misses the oldest events and is told how many (`lagged`). At most
//! [`MAX_EVENT_CLIENTS`] listeners are admitted at once. Publishing never blocks and never fails
//! the operation that publishes: with nobody listening it costs one atomic read.
//!
//! Events are published once the change they report is durable (an imported block, an admitted
//! transaction), so a listener is never told of something a crash could undo.

use std::sync::Arc;

use pp_ledger::Hash;
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch, OwnedSemaphorePermit, Semaphore};

/// Events kept for listeners that are behind (the broadcast ring's capacity). A listener more
/// than this many events behind skips to the oldest event still held and gets a `lagged` event.
pub const EVENT_BUFFER: usize = 1_024;
/// Most event listeners (`GET /events` streams) at once; more are refused (`503`).
pub const MAX_EVENT_CLIENTS: usize = 64;

/// One thing that happened in the node. Serialized as the JSON `data` of an SSE event whose name
/// is [`NodeEvent::name`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub(crate) enum NodeEvent {
    /// A block joined the best chain (as the new tip, or as part of a fork switch, in order).
    Block {
        /// Its index (height).
        index: u64,
        /// Its hash.
        hash: Hash,
        /// Its slot.
        slot: u64,
        /// How many transactions it carries.
        tx_count: usize,
    },
    /// A new transaction was admitted to the mempool (durably journaled).
    Tx {
        /// Its id.
        id: Hash,
    },
    /// A peer completed the handshake.
    PeerUp {
        /// The connection id (as in `GET /peers`).
        id: u64,
        /// Its identity key.
        key: pp_ledger::PublicKey,
        /// The label it announced.
        node_id: String,
        /// The socket of the connection.
        addr: String,
        /// `inbound` or `outbound`.
        direction: pp_net::Direction,
    },
    /// A peer connection closed.
    PeerDown {
        /// The connection id of its `peer_up`.
        id: u64,
        /// Why it closed.
        reason: String,
    },
}

impl NodeEvent {
    /// The SSE event name.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            NodeEvent::Block { .. } => "block",
            NodeEvent::Tx { .. } => "tx",
            NodeEvent::PeerUp { .. } => "peer_up",
            NodeEvent::PeerDown { .. } => "peer_down",
        }
    }

    /// The `peer_up` event of a new connection.
    pub(crate) fn peer_up(info: &pp_net::PeerInfo) -> NodeEvent {
        NodeEvent::PeerUp {
            id: info.id.0,
            key: info.key,
            node_id: info.node_id.clone(),
            addr: info.addr.to_string(),
            direction: info.direction,
        }
    }
}

/// The bus: one per node, owned by its `Core`.
pub(crate) struct EventBus {
    tx: broadcast::Sender<NodeEvent>,
    /// One permit per listener.
    clients: Arc<Semaphore>,
    /// Turns true when the node stops: every stream ends (so that the HTTP server's graceful
    /// shutdown is not held up by streams that would otherwise never finish).
    closed: watch::Sender<bool>,
}

/// Why a listener was not admitted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum SubscribeError {
    /// [`MAX_EVENT_CLIENTS`] listeners are connected.
    #[error("{0} event streams are open already (the limit)")]
    Full(usize),
    /// The node is stopping.
    #[error("the node is stopping")]
    Closed,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(EVENT_BUFFER, MAX_EVENT_CLIENTS)
    }
}

impl EventBus {
    /// A bus keeping `buffer` events for at most `max_clients` listeners.
    pub(crate) fn new(buffer: usize, max_clients: usize) -> EventBus {
        let (tx, _) = broadcast::channel(buffer.max(1));
        EventBus {
            tx,
            clients: Arc::new(Semaphore::new(max_clients)),
            closed: watch::channel(false).0,
        }
    }

    /// Whether anybody listens (to skip building events nobody reads).
    pub(crate) fn has_listeners(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Publishes `events` in order to every listener; never blocks.
    pub(crate) fn publish(&self, events: impl IntoIterator<Item = NodeEvent>) {
        if !self.has_listeners() {
            return;
        }
        for ev in events {
            // Err only when the last listener left meanwhile: nothing to do.
            let _ = self.tx.send(ev);
        }
    }

    /// A new listener, if there is room; it receives every event published from now on.
    pub(crate) fn subscribe(&self) -> Result<Subscription, SubscribeError> {
        if *self.closed.borrow() {
            return Err(SubscribeError::Closed);
        }
        let permit = self
            .clients
            .clone()
            .try_acquire_owned()
            .map_err(|_| SubscribeError::Full(MAX_EVENT_CLIENTS))?;
        Ok(Subscription {
            rx: self.tx.subscribe(),
            closed: self.closed.subscribe(),
            _permit: permit,
        })
    }

    /// Ends every subscription (at its next receive) and admits no new one.
    pub(crate) fn close(&self) {
        self.closed.send_replace(true);
    }
}

/// What a listener receives next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// The next event.
    Event(NodeEvent),
    /// The listener fell behind and this many events were skipped.
    Lagged(u64),
}

/// One listener's place on the bus; its slot is given back when it is dropped.
pub(crate) struct Subscription {
    rx: broadcast::Receiver<NodeEvent>,
    closed: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
}

impl Subscription {
    /// The next event, or `None` once the bus is closed.
    pub(crate) async fn next(&mut self) -> Option<Received> {
        tokio::select! {
            biased;
            _ = crate::tasks::stopped(&mut self.closed) => None,
            r = self.rx.recv() => match r {
                Ok(ev) => Some(Received::Event(ev)),
                Err(RecvError::Lagged(n)) => Some(Received::Lagged(n)),
                Err(RecvError::Closed) => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(n: u8) -> NodeEvent {
        NodeEvent::Tx { id: Hash([n; 32]) }
    }

    #[tokio::test]
    async fn a_listener_gets_events_in_order_and_a_slow_one_is_told_what_it_missed() {
        let bus = EventBus::new(4, 8);
        let mut fast = bus.subscribe().unwrap();
        let mut slow = bus.subscribe().unwrap();
        for n in 0..3 {
            bus.publish([tx(n)]);
            assert_eq!(fast.next().await, Some(Received::Event(tx(n))));
        }
        // The slow listener reads nothing while 7 more are published: the ring holds 4.
        for n in 3..10 {
            bus.publish([tx(n)]);
        }
        assert_eq!(slow.next().await, Some(Received::Lagged(6)));
        for n in 6..10 {
            assert_eq!(slow.next().await, Some(Received::Event(tx(n))));
        }
        bus.close();
        assert_eq!(slow.next().await, None);
        assert_eq!(fast.next().await, None);
        assert_eq!(bus.subscribe().err(), Some(SubscribeError::Closed));
    }

    #[tokio::test]
    async fn listeners_beyond_the_limit_are_refused_until_one_leaves() {
        let bus = EventBus::new(4, 2);
        let a = bus.subscribe().unwrap();
        let _b = bus.subscribe().unwrap();
        assert!(matches!(bus.subscribe(), Err(SubscribeError::Full(_))));
        drop(a);
        assert!(bus.subscribe().is_ok());
    }

    #[test]
    fn publishing_with_nobody_listening_keeps_nothing() {
        let bus = EventBus::new(4, 2);
        assert!(!bus.has_listeners());
        bus.publish((0..100).map(tx));
        // A listener that arrives later sees only what comes after it.
        let mut late = bus.subscribe().unwrap();
        bus.publish([tx(7)]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(rt.block_on(late.next()), Some(Received::Event(tx(7))));
    }

    #[test]
    fn events_serialize_to_the_documented_json() {
        let b = NodeEvent::Block {
            index: 3,
            hash: Hash([1; 32]),
            slot: 5,
            tx_count: 2,
        };
        assert_eq!(b.name(), "block");
        assert_eq!(
            serde_json::to_value(&b).unwrap(),
            serde_json::json!({"index":3,"hash":"01".repeat(32),"slot":5,"tx_count":2})
        );
        let d = NodeEvent::PeerDown {
            id: 4,
            reason: "eof".into(),
        };
        assert_eq!(d.name(), "peer_down");
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            serde_json::json!({"id":4,"reason":"eof"})
        );
    }
}
