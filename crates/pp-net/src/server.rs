//! FetchServer: the accept loop.
//!
//! Inbound connections are bounded by a semaphore shared with outbound dials (`max_peers` is the
//! total). A connection that finds no permit is told so with an `error {code: "too_many_peers"}`
//! frame before it is closed, so the dialer learns why instead of guessing. Accept errors (e.g.
//! out of file descriptors) back off 1, 2, 4 … 64 s rather than spinning.

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, warn};

use crate::connection::{framed, send_error_and_close};
use crate::message::codes;
use crate::network::Shared;
use crate::peer_table::Direction;
use crate::transport::Transport;

const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(64);

/// Accept connections until shutdown; each one gets its own task.
pub(crate) async fn accept_loop<T: Transport>(shared: Arc<Shared>, listener: T::Listener) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let accepted = tokio::select! {
            _ = shared.shutdown.cancelled() => break,
            r = T::accept(&listener) => r,
        };
        let (stream, addr) = match accepted {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed");
                tokio::select! {
                    _ = shared.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_ACCEPT_BACKOFF);
                continue;
            }
        };
        backoff = Duration::from_secs(1);
        match shared.permits.clone().try_acquire_owned() {
            Ok(permit) => {
                let s = shared.clone();
                shared.tasks.spawn(async move {
                    if let Err(e) = s
                        .establish(stream, addr, Direction::Inbound, None, permit)
                        .await
                    {
                        debug!(%addr, error = %e, "inbound handshake failed");
                    }
                });
            }
            Err(_) => {
                let max = shared.config.max_peers;
                let max_frame = shared.config.max_frame_bytes;
                debug!(%addr, max, "refusing inbound connection: too many peers");
                shared.tasks.spawn(async move {
                    let (_reader, mut writer) = framed(stream, max_frame);
                    let message = format!("this node already has its maximum of {max} peers");
                    send_error_and_close(&mut writer, codes::TOO_MANY_PEERS, &message, max_frame)
                        .await;
                });
            }
        }
    }
    debug!("accept loop stopped");
}
