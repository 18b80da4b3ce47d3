//! FetchClient: the request side of one connection.
//!
//! Requests get a fresh id and a oneshot registered in the connection's pending map; the reader
//! task completes the oneshot when a response with that id arrives. Many requests can therefore
//! be in flight on one connection, answered in any order. Each request has its own timeout, and
//! its pending entry is removed when the caller stops waiting (timeout or cancellation), so the
//! map cannot grow with abandoned requests. At most `max_in_flight` requests wait at once.
//!
//! The send queue is bounded twice: in frames (the channel) and in bytes (a semaphore whose
//! permits travel with each frame and return when the writer has written it), so a peer that
//! does not read costs us at most the byte budget, however large its answers.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::codec::encode_message;
use crate::error::NetError;
use crate::message::Message;
use crate::peer_table::{millis, PeerCounters, PeerId};

/// Responses awaited on one connection, by request id.
pub(crate) type PendingMap = Arc<Mutex<HashMap<u64, oneshot::Sender<Message>>>>;

/// Why a connection is being closed, and the error code to tell the peer (if any).
#[derive(Debug, Clone)]
pub(crate) struct CloseReason {
    pub(crate) reason: String,
    pub(crate) code: Option<&'static str>,
}

/// How many abandoned request ids are remembered, so that their late answers are not taken
/// for unsolicited ones.
const ABANDONED_MEMORY: usize = 256;

/// A frame in the send queue, holding its share of the byte budget until it is written.
#[derive(Debug)]
pub(crate) struct Queued {
    pub(crate) frame: Bytes,
    permit: OwnedSemaphorePermit,
}

impl Queued {
    /// The frame, and its share of the byte budget (to hold until the frame has left the
    /// writer's buffer).
    pub(crate) fn into_parts(self) -> (Bytes, OwnedSemaphorePermit) {
        (self.frame, self.permit)
    }
}

/// What became of a response that arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponseFate {
    /// Handed to the request waiting for it.
    Delivered,
    /// Its request timed out or was abandoned: a late answer, harmless.
    Late,
    /// No request of ours ever had this id, or it was already answered.
    Unsolicited,
}

/// How many more times a request waits [`ClientLimits::request_timeout`] when it runs out
/// while a frame of the peer waits for our own decoding ([`FetchClient::request`]).
pub(crate) const DECODE_EXTENSIONS: u32 = 2;

/// A handle to one live connection: send frames, make requests, close it.
#[derive(Debug, Clone)]
pub(crate) struct FetchClient {
    pub(crate) id: PeerId,
    queue: mpsc::Sender<Queued>,
    queue_bytes: Arc<Semaphore>,
    max_queue_bytes: usize,
    max_in_flight: usize,
    abandoned: Arc<Mutex<VecDeque<u64>>>,
    counters: Arc<PeerCounters>,
    pub(crate) pending: PendingMap,
    next_request_id: Arc<AtomicU64>,
    close: CancellationToken,
    close_reason: Arc<Mutex<Option<CloseReason>>>,
    max_frame_bytes: usize,
    request_timeout: Duration,
}

/// Removes a pending entry when the waiting request ends, whichever way it ends; an entry
/// still there was abandoned (timeout, cancellation), and its id is remembered.
struct PendingGuard<'a> {
    client: &'a FetchClient,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        let removed = self
            .client
            .pending
            .lock()
            .ok()
            .and_then(|mut p| p.remove(&self.id));
        if removed.is_some() {
            if let Ok(mut a) = self.client.abandoned.lock() {
                if a.len() >= ABANDONED_MEMORY {
                    a.pop_front();
                }
                a.push_back(self.id);
            }
        }
    }
}

/// Limits of one connection's client side.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientLimits {
    pub(crate) max_frame_bytes: usize,
    pub(crate) request_timeout: Duration,
    pub(crate) queue_bytes: usize,
    pub(crate) max_in_flight: usize,
}

impl FetchClient {
    pub(crate) fn new(
        id: PeerId,
        queue: mpsc::Sender<Queued>,
        close: CancellationToken,
        limits: ClientLimits,
        counters: Arc<PeerCounters>,
    ) -> FetchClient {
        let ClientLimits {
            max_frame_bytes,
            request_timeout,
            queue_bytes,
            max_in_flight,
        } = limits;
        FetchClient {
            id,
            queue,
            queue_bytes: Arc::new(Semaphore::new(queue_bytes)),
            max_queue_bytes: queue_bytes,
            max_in_flight: max_in_flight.max(1),
            abandoned: Arc::new(Mutex::new(VecDeque::new())),
            counters,
            pending: Arc::new(Mutex::new(HashMap::new())),
            next_request_id: Arc::new(AtomicU64::new(1)),
            close,
            close_reason: Arc::new(Mutex::new(None)),
            max_frame_bytes,
            request_timeout,
        }
    }

    /// Whether a frame of this peer was read and waits for our blocking pool to decode it.
    pub(crate) fn decoding(&self) -> bool {
        self.counters.decoding.load(Ordering::Relaxed) > 0
    }

    /// A fresh request id for this connection.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The share of the byte budget a frame takes (a frame larger than the whole budget takes
    /// all of it, so it can still be sent alone).
    fn permits_for(&self, frame: &Bytes) -> u32 {
        u32::try_from(frame.len().clamp(1, self.max_queue_bytes.max(1))).unwrap_or(u32::MAX)
    }

    /// Queue an encoded frame without waiting; false if the queue is full (in frames or in
    /// bytes) or closed.
    pub(crate) fn try_send(&self, frame: Bytes) -> bool {
        let n = self.permits_for(&frame);
        let Ok(permit) = self.queue_bytes.clone().try_acquire_many_owned(n) else {
            return false;
        };
        self.queue.try_send(Queued { frame, permit }).is_ok()
    }

    /// Queue an encoded frame, waiting for room (frames and bytes).
    async fn enqueue(&self, frame: Bytes) -> Result<(), NetError> {
        let n = self.permits_for(&frame);
        let permit = self
            .queue_bytes
            .clone()
            .acquire_many_owned(n)
            .await
            .map_err(|_| NetError::PeerGone(self.id.0))?;
        self.queue
            .send(Queued { frame, permit })
            .await
            .map_err(|_| NetError::PeerGone(self.id.0))
    }

    /// Queue an encoded frame, waiting for room at most `limit`.
    pub(crate) async fn send(&self, frame: Bytes, limit: Duration) -> Result<(), NetError> {
        match tokio::time::timeout(limit, self.enqueue(frame)).await {
            Ok(r) => r,
            Err(_) => Err(NetError::RequestTimeout {
                request_id: 0,
                ms: millis(limit),
            }),
        }
    }

    /// Send the request built by `make(request_id)` and wait for its response. An `error`
    /// response becomes [`NetError::RemoteError`].
    pub(crate) async fn request(
        &self,
        make: impl FnOnce(u64) -> Message,
    ) -> Result<Message, NetError> {
        let request_id = self.next_id();
        let frame = encode_message(&make(request_id), self.max_frame_bytes)?;
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self
                .pending
                .lock()
                .map_err(|_| NetError::PeerGone(self.id.0))?;
            if pending.len() >= self.max_in_flight {
                return Err(NetError::TooManyRequests {
                    in_flight: self.max_in_flight,
                });
            }
            pending.insert(request_id, tx);
        }
        let _guard = PendingGuard {
            client: self,
            id: request_id,
        };
        let exchange = async {
            self.enqueue(frame).await?;
            rx.await.map_err(|_| NetError::PeerGone(self.id.0))
        };
        let mut exchange = std::pin::pin!(exchange);
        let mut extensions = 0;
        let response = loop {
            match tokio::time::timeout(self.request_timeout, &mut exchange).await {
                Ok(r) => break r?,
                // The answer may be a frame the peer delivered that still waits for our own
                // blocking pool to decode it (starved by other work on the machine): our delay,
                // not the peer's, so wait for it a little longer, a bounded number of times.
                Err(_) if extensions < DECODE_EXTENSIONS && self.decoding() => extensions += 1,
                Err(_) => {
                    return Err(NetError::RequestTimeout {
                        request_id,
                        ms: millis(self.request_timeout),
                    })
                }
            }
        };
        match response {
            Message::Error { code, message, .. } => Err(NetError::RemoteError { code, message }),
            other => Ok(other),
        }
    }

    /// Hand a response to whoever waits for it, and say what became of it.
    pub(crate) fn complete(&self, request_id: u64, msg: Message) -> ResponseFate {
        let waiter = self
            .pending
            .lock()
            .ok()
            .and_then(|mut p| p.remove(&request_id));
        match waiter {
            // The requester may have given up a moment ago: still an answer we asked for.
            Some(tx) => {
                let _ = tx.send(msg);
                ResponseFate::Delivered
            }
            None if self.abandoned.lock().is_ok_and(|a| a.contains(&request_id)) => {
                ResponseFate::Late
            }
            None => ResponseFate::Unsolicited,
        }
    }

    /// Count a broadcast this peer missed because its queue was full.
    pub(crate) fn count_dropped(&self) {
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Ask the connection to close; the first reason given wins.
    pub(crate) fn close(&self, reason: impl Into<String>, code: Option<&'static str>) {
        if let Ok(mut r) = self.close_reason.lock() {
            if r.is_none() {
                *r = Some(CloseReason {
                    reason: reason.into(),
                    code,
                });
            }
        }
        self.close.cancel();
    }

    /// The token cancelled when this connection must close.
    pub(crate) fn close_token(&self) -> &CancellationToken {
        &self.close
    }

    /// The reason given to [`FetchClient::close`], if any.
    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason.lock().ok().and_then(|r| r.clone())
    }

    /// Fail every waiting request (the connection is gone): dropping the senders wakes them.
    pub(crate) fn fail_pending(&self) {
        if let Ok(mut p) = self.pending.lock() {
            p.clear();
        }
    }
}
