//! FetchClient: the request side of one connection.
//!
//! Requests get a fresh id and a oneshot registered in the connection's pending map; the reader
//! task completes the oneshot when a response with that id arrives. Many requests can therefore
//! be in flight on one connection, answered in any order. Each request has its own timeout, and
//! its pending entry is removed when the caller stops waiting (timeout or cancellation), so the
//! map cannot grow with abandoned requests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::codec::encode_message;
use crate::error::NetError;
use crate::message::Message;
use crate::peer_table::{millis, PeerId};

/// Responses awaited on one connection, by request id.
pub(crate) type PendingMap = Arc<Mutex<HashMap<u64, oneshot::Sender<Message>>>>;

/// Why a connection is being closed, and the error code to tell the peer (if any).
#[derive(Debug, Clone)]
pub(crate) struct CloseReason {
    pub(crate) reason: String,
    pub(crate) code: Option<&'static str>,
}

/// A handle to one live connection: send frames, make requests, close it.
#[derive(Debug, Clone)]
pub(crate) struct FetchClient {
    pub(crate) id: PeerId,
    queue: mpsc::Sender<Bytes>,
    pub(crate) pending: PendingMap,
    next_request_id: Arc<AtomicU64>,
    close: CancellationToken,
    close_reason: Arc<Mutex<Option<CloseReason>>>,
    max_frame_bytes: usize,
    request_timeout: Duration,
}

/// Removes a pending entry when the waiting request ends, whichever way it ends.
struct PendingGuard<'a> {
    pending: &'a PendingMap,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Ok(mut p) = self.pending.lock() {
            p.remove(&self.id);
        }
    }
}

impl FetchClient {
    pub(crate) fn new(
        id: PeerId,
        queue: mpsc::Sender<Bytes>,
        close: CancellationToken,
        max_frame_bytes: usize,
        request_timeout: Duration,
    ) -> FetchClient {
        FetchClient {
            id,
            queue,
            pending: Arc::new(Mutex::new(HashMap::new())),
            next_request_id: Arc::new(AtomicU64::new(1)),
            close,
            close_reason: Arc::new(Mutex::new(None)),
            max_frame_bytes,
            request_timeout,
        }
    }

    /// A fresh request id for this connection.
    pub(crate) fn next_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Queue an encoded frame without waiting; false if the queue is full or closed.
    pub(crate) fn try_send(&self, frame: Bytes) -> bool {
        self.queue.try_send(frame).is_ok()
    }

    /// Queue an encoded frame, waiting for room at most `limit`.
    pub(crate) async fn send(&self, frame: Bytes, limit: Duration) -> Result<(), NetError> {
        match tokio::time::timeout(limit, self.queue.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(NetError::PeerGone(self.id.0)),
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
        self.pending
            .lock()
            .map_err(|_| NetError::PeerGone(self.id.0))?
            .insert(request_id, tx);
        let _guard = PendingGuard {
            pending: &self.pending,
            id: request_id,
        };
        let exchange = async {
            self.queue
                .send(frame)
                .await
                .map_err(|_| NetError::PeerGone(self.id.0))?;
            rx.await.map_err(|_| NetError::PeerGone(self.id.0))
        };
        let response = tokio::time::timeout(self.request_timeout, exchange)
            .await
            .map_err(|_| NetError::RequestTimeout {
                request_id,
                ms: millis(self.request_timeout),
            })??;
        match response {
            Message::Error { code, message, .. } => Err(NetError::RemoteError { code, message }),
            other => Ok(other),
        }
    }

    /// Hand a response to whoever waits for it; false if nobody does (late or unsolicited).
    pub(crate) fn complete(&self, request_id: u64, msg: Message) -> bool {
        let waiter = self
            .pending
            .lock()
            .ok()
            .and_then(|mut p| p.remove(&request_id));
        match waiter {
            Some(tx) => tx.send(msg).is_ok(),
            None => false,
        }
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
