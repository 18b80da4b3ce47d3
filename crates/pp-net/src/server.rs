//! FetchServer: the accept loop.
//!
//! Before any handshake work, an inbound connection from a banned address is closed at once,
//! and so is one over the limits on connections still in the handshake (in total and per IP),
//! so that silent sockets cannot hold peer slots: peer slots are only decided after the Noise
//! handshake has proven who is calling (see [`crate::peer_table::PeerTable::admit`]). Accept
//! errors (e.g. out of file descriptors) back off 10 ms, 20 ms … up to 1 s rather than spin,
//! and never longer, so the listener is back as soon as descriptors are.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, warn};

use crate::network::Shared;
use crate::peer_table::Direction;
use crate::transport::Transport;

const FIRST_ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// Accept connections until shutdown; each one gets its own task.
pub(crate) async fn accept_loop<T: Transport>(shared: Arc<Shared>, listener: T::Listener) {
    let mut backoff = FIRST_ACCEPT_BACKOFF;
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            r = T::accept(&listener) => r,
        };
        let (stream, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                if shared.logs.allow("accept failed") {
                    warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed");
                }
                tokio::select! {
                    _ = shared.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                continue;
            }
        };
        backoff = FIRST_ACCEPT_BACKOFF;
        if shared.check_ip(addr.ip(), Instant::now()).is_err() {
            shared.stats.refused_banned.fetch_add(1, Ordering::Relaxed);
            debug!(%addr, "refused: banned address");
            continue;
        }
        let Some(slot) = shared.handshakes.try_acquire(addr.ip()) else {
            shared
                .stats
                .refused_handshake_limit
                .fetch_add(1, Ordering::Relaxed);
            debug!(%addr, "refused: too many handshakes in progress");
            continue;
        };
        let s = shared.clone();
        shared.tasks.spawn(async move {
            if let Err(e) = s
                .establish(stream, addr, Direction::Inbound, None, Some(slot))
                .await
            {
                debug!(%addr, error = %e, "inbound handshake failed");
            }
        });
    }
    debug!("accept loop stopped");
}
