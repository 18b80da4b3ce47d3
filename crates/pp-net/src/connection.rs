//! One connection: the `hello` handshake, then a reader loop and a writer task.
//!
//! After the handshake both sides are symmetric: either may send requests and announcements.
//! The reader loop answers requests from the [`ChainView`](crate::ChainView), hands responses to
//! the waiting [`FetchClient`] request, and announcements to the owner as events. The writer task
//! drains a bounded queue into the socket. Nothing here grows without bound: the queue is bounded;
//! when it is full, answers wait (which stops us reading from that peer, so TCP pushes back on
//! it) and broadcasts are dropped; events to the owner are bounded too.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite};
use tracing::{debug, Instrument};

use crate::client::FetchClient;
use crate::codec::{encode_message, FrameCodec, MessageCodec};
use crate::config::NetConfig;
use crate::error::NetError;
use crate::message::{
    check_new_block_summary, codes, Hello, Message, MAX_BLOCKS_PER_REQUEST,
    MAX_HEADERS_PER_REQUEST, MAX_LOCATOR_LEN, MAX_NODE_ID_LEN, MAX_PEERS_PER_RESPONSE,
};
use crate::network::{NetEvent, Shared};
use crate::peer_table::{millis, penalty, Direction, PeerInfo};

/// The read side of a connection, yielding messages.
pub(crate) type Reader<S> = FramedRead<ReadHalf<S>, MessageCodec>;
/// The write side of a connection, taking encoded payloads.
pub(crate) type Writer<S> = FramedWrite<WriteHalf<S>, FrameCodec>;

/// Split a stream into framed halves.
pub(crate) fn framed<S: AsyncRead + AsyncWrite>(
    stream: S,
    max_frame_bytes: usize,
) -> (Reader<S>, Writer<S>) {
    let (r, w) = tokio::io::split(stream);
    (
        FramedRead::new(r, MessageCodec::new(max_frame_bytes)),
        FramedWrite::new(w, FrameCodec::new(max_frame_bytes)),
    )
}

/// Best effort: tell the peer why we close, then close. Bounded in time, errors ignored
/// (the peer may already be gone, and we are closing anyway).
pub(crate) async fn send_error_and_close<S: AsyncWrite>(
    writer: &mut Writer<S>,
    code: &str,
    message: &str,
    max_frame_bytes: usize,
) {
    let limit = Duration::from_secs(2);
    if let Ok(frame) = encode_message(&Message::error(None, code, message), max_frame_bytes) {
        let _ = tokio::time::timeout(limit, writer.send(frame)).await;
    }
    let _ = tokio::time::timeout(limit, writer.get_mut().shutdown()).await;
}

/// Exchange `hello`s and check the peer's.
///
/// The dialer speaks first. The accepting side reads the dialer's `hello` before answering, so
/// that it can refuse a banned node or itself with an `error` frame instead of a `hello`. When the
/// networks differ (genesis or version), it still answers with its `hello` and then the `error`,
/// so that the dialer sees the mismatch with its own eyes and reports it as the same typed error.
/// `precheck` decides admission questions that need the peer table (self, bans).
pub(crate) async fn handshake<S: AsyncRead + AsyncWrite>(
    reader: &mut Reader<S>,
    writer: &mut Writer<S>,
    ours: &Hello,
    config: &NetConfig,
    direction: Direction,
    precheck: impl FnOnce(&Hello) -> Result<(), NetError>,
) -> Result<Hello, NetError> {
    let max = config.max_frame_bytes;
    let our_hello = encode_message(&Message::Hello(ours.clone()), max)?;
    if direction == Direction::Outbound {
        writer.send(our_hello.clone()).await?;
    }
    let first = match reader.next().await {
        None => {
            return Err(NetError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed during handshake",
            )))
        }
        Some(Err(e)) => {
            if e.is_malformed_input() {
                send_error_and_close(writer, e.code(), &e.to_string(), max).await;
            }
            return Err(e);
        }
        Some(Ok(m)) => m,
    };
    let theirs = match first {
        Message::Hello(h) => h,
        Message::Error { code, message, .. } => {
            return Err(match code.as_str() {
                codes::TOO_MANY_PEERS => NetError::TooManyPeers { max: 0 },
                codes::SELF_CONNECTION => NetError::SelfConnection {
                    node_id: ours.node_id.clone(),
                },
                _ => NetError::RemoteError { code, message },
            })
        }
        other => {
            let e = NetError::ProtocolViolation(format!(
                "first frame must be hello, got {}",
                other.kind()
            ));
            send_error_and_close(writer, codes::BAD_HELLO, &e.to_string(), max).await;
            return Err(e);
        }
    };
    if let Err(e) = check_hello(&theirs, ours) {
        let code = match e {
            NetError::ProtocolViolation(_) => codes::BAD_HELLO,
            _ => e.code(),
        };
        if direction == Direction::Inbound && code != codes::BAD_HELLO {
            let _ = writer.send(our_hello).await;
        }
        send_error_and_close(writer, code, &e.to_string(), max).await;
        return Err(e);
    }
    if let Err(e) = precheck(&theirs) {
        send_error_and_close(writer, e.code(), &e.to_string(), max).await;
        return Err(e);
    }
    if direction == Direction::Inbound {
        writer.send(our_hello).await?;
    }
    Ok(theirs)
}

/// The rules a remote `hello` must satisfy (self-connection and duplicates are decided later,
/// against the peer table).
fn check_hello(theirs: &Hello, ours: &Hello) -> Result<(), NetError> {
    if theirs.protocol_version != ours.protocol_version {
        return Err(NetError::VersionMismatch {
            ours: ours.protocol_version,
            theirs: theirs.protocol_version,
        });
    }
    if theirs.genesis_hash != ours.genesis_hash {
        return Err(NetError::GenesisMismatch {
            ours: ours.genesis_hash,
            theirs: theirs.genesis_hash,
        });
    }
    let id = &theirs.node_id;
    if id.is_empty() || id.len() > MAX_NODE_ID_LEN || id.chars().any(char::is_control) {
        return Err(NetError::ProtocolViolation(format!(
            "node_id must be 1..={MAX_NODE_ID_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// Everything a live connection task owns.
pub(crate) struct Live<S> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) client: FetchClient,
    pub(crate) info: PeerInfo,
    pub(crate) reader: Reader<S>,
    pub(crate) writer: Writer<S>,
    pub(crate) queue: mpsc::Receiver<Bytes>,
    pub(crate) permit: OwnedSemaphorePermit,
}

/// Run a registered connection until it closes, then unregister it.
pub(crate) async fn run<S>(live: Live<S>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let span = tracing::debug_span!("peer", id = live.info.id.0, node = %live.info.node_id, addr = %live.info.addr);
    run_inner(live).instrument(span).await;
}

async fn run_inner<S>(live: Live<S>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let Live {
        shared,
        client,
        info,
        mut reader,
        writer,
        queue,
        permit,
    } = live;
    let config = &shared.config;
    let writer_task = tokio::spawn(write_loop(
        writer,
        queue,
        client.clone(),
        config.request_timeout,
    ));

    let mut ping =
        tokio::time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    // After a stall, one ping is enough; a burst of catch-up pings would only add noise.
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut idle_deadline = Instant::now() + config.idle_timeout;
    let mut ended: Option<(String, Option<&'static str>)> = None;
    loop {
        // Biased (branches tried in the order written, a close request first): an unbiased
        // select starts at a random branch (tokio's per-process RNG), which made simulated runs
        // differ between replays of one seed (pp-sim).
        tokio::select! {
            biased;
            _ = client.close_token().cancelled() => break,
            _ = ping.tick() => {
                let frame = encode_message(&Message::Ping { request_id: client.next_id() }, config.max_frame_bytes);
                if let Ok(frame) = frame {
                    // A full queue already proves traffic is flowing; skip this ping.
                    let _ = client.try_send(frame);
                }
            }
            _ = tokio::time::sleep_until(idle_deadline) => {
                ended = Some((format!("idle for {} ms", millis(config.idle_timeout)), Some(codes::TIMEOUT)));
                break;
            }
            frame = reader.next() => match frame {
                None => {
                    ended = Some(("closed by peer".to_string(), None));
                    break;
                }
                Some(Err(e)) => {
                    if e.is_malformed_input() {
                        shared.penalize_node(&info.node_id, penalty::MALFORMED_FRAME, &e.to_string());
                        ended = Some((e.to_string(), Some(e.code())));
                    } else {
                        ended = Some((e.to_string(), None));
                    }
                    break;
                }
                Some(Ok(msg)) => {
                    idle_deadline = Instant::now() + config.idle_timeout;
                    shared.touch(info.id);
                    if let Err((reason, code)) = handle_message(&shared, &client, &info, msg).await {
                        ended = Some((reason, code));
                        break;
                    }
                }
            }
        }
    }
    // Whoever asked us to close (penalize, shutdown, replacement) said why; otherwise it was us.
    let (reason, code) = match (ended, client.close_reason()) {
        (Some(ended), _) => ended,
        (None, Some(r)) => (r.reason, r.code),
        (None, None) if shared.shutdown.is_cancelled() => {
            ("node shutting down".to_string(), Some(codes::SHUTTING_DOWN))
        }
        (None, None) => ("closed".to_string(), None),
    };
    client.close(reason.clone(), code);
    client.fail_pending();
    shared.unregister(info.id, &reason);
    drop(permit);
    if let Ok(mut writer) = writer_task.await {
        match code {
            Some(code) => {
                send_error_and_close(&mut writer, code, &reason, config.max_frame_bytes).await
            }
            None => {
                let _ =
                    tokio::time::timeout(Duration::from_secs(2), writer.get_mut().shutdown()).await;
            }
        }
    }
    debug!(%reason, "connection closed");
}

/// Drain the queue into the socket until the connection closes. Frames are fed in small batches
/// and flushed once per batch, so a burst costs one syscall, not one per frame.
async fn write_loop<S: AsyncWrite>(
    mut writer: Writer<S>,
    mut queue: mpsc::Receiver<Bytes>,
    client: FetchClient,
    write_timeout: Duration,
) -> Writer<S> {
    loop {
        let first = tokio::select! {
            biased;
            _ = client.close_token().cancelled() => break,
            f = queue.recv() => f,
        };
        let Some(first) = first else { break };
        let batch = async {
            writer.feed(first).await?;
            for _ in 0..64 {
                match queue.try_recv() {
                    Ok(f) => writer.feed(f).await?,
                    Err(_) => break,
                }
            }
            writer.flush().await
        };
        match tokio::time::timeout(write_timeout, batch).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                client.close(format!("write failed: {e}"), None);
                break;
            }
            Err(_) => {
                // The peer does not read: it is slow or stuck, and we will not buffer for it.
                client.close(
                    format!("peer did not read for {} ms", millis(write_timeout)),
                    Some(codes::TIMEOUT),
                );
                break;
            }
        }
    }
    writer
}

type Close = (String, Option<&'static str>);

/// Act on one message. Err means: close the connection with this reason (and code to send).
async fn handle_message(
    shared: &Arc<Shared>,
    client: &FetchClient,
    info: &PeerInfo,
    msg: Message,
) -> Result<(), Close> {
    let config = &shared.config;
    let answer = match msg {
        Message::Hello(_) => {
            let reason = "second hello".to_string();
            shared.penalize_node(&info.node_id, penalty::PROTOCOL_VIOLATION, &reason);
            return Err((reason, Some(codes::PROTOCOL_VIOLATION)));
        }
        Message::GetBlocks {
            request_id,
            from_index,
            count,
        } => {
            let count = count.min(MAX_BLOCKS_PER_REQUEST);
            let mut blocks = shared.view.get_blocks(from_index, count);
            blocks.truncate(usize::try_from(count).unwrap_or(usize::MAX));
            encode_blocks_answer(request_id, &blocks, config.max_frame_bytes)
        }
        Message::GetHeaders {
            request_id,
            locator,
            count,
        } => {
            if locator.len() > MAX_LOCATOR_LEN {
                shared.penalize_node(&info.node_id, penalty::BAD_REQUEST, "locator too long");
                encode_message(
                    &Message::error(
                        Some(request_id),
                        codes::BAD_REQUEST,
                        format!(
                            "locator has {} hashes, at most {MAX_LOCATOR_LEN} allowed",
                            locator.len()
                        ),
                    ),
                    config.max_frame_bytes,
                )
            } else {
                let count = count.min(MAX_HEADERS_PER_REQUEST);
                let mut headers = shared.view.get_headers(&locator, count);
                headers.truncate(usize::try_from(count).unwrap_or(usize::MAX));
                encode_message(
                    &Message::Headers {
                        request_id,
                        headers,
                    },
                    config.max_frame_bytes,
                )
            }
        }
        Message::GetPeers { request_id } => {
            let mut peers = shared.peer_addrs_except(info.id);
            peers.truncate(MAX_PEERS_PER_RESPONSE);
            encode_message(
                &Message::Peers { request_id, peers },
                config.max_frame_bytes,
            )
        }
        Message::Ping { request_id } => {
            encode_message(&Message::Pong { request_id }, config.max_frame_bytes)
        }
        Message::NewBlock {
            index,
            slot,
            prev_hash,
            hash,
            block,
        } => {
            if let Err(e) = check_new_block_summary(index, slot, &prev_hash, &hash, &block) {
                shared.penalize_node(&info.node_id, penalty::BAD_ANNOUNCEMENT, &e.to_string());
                debug!(error = %e, "dropped new_block with a false summary");
                return Ok(());
            }
            shared.update_peer_tip(info.id, index, hash);
            shared.emit(NetEvent::NewBlock {
                peer: info.id,
                block,
            });
            return Ok(());
        }
        Message::NewTx { tx } => {
            shared.emit(NetEvent::NewTx { peer: info.id, tx });
            return Ok(());
        }
        Message::Error {
            request_id: None,
            code,
            message,
        } => {
            return Err((format!("peer closed with error {code}: {message}"), None));
        }
        response @ (Message::Blocks { .. }
        | Message::Headers { .. }
        | Message::Peers { .. }
        | Message::Pong { .. }
        | Message::Error { .. }) => {
            if let Some(id) = response.response_id() {
                // Nobody waiting is normal: our keepalive pings and answers that arrive after the
                // request timed out.
                client.complete(id, response);
            }
            return Ok(());
        }
    };
    let frame = match answer {
        Ok(f) => f,
        Err(e) => return Err((format!("cannot encode answer: {e}"), Some(codes::INTERNAL))),
    };
    // Waiting here (instead of dropping) stops us reading from a peer that does not read our
    // answers: its requests back up in TCP, not in our memory.
    client
        .send(frame, config.request_timeout)
        .await
        .map_err(|e| (format!("cannot queue answer: {e}"), Some(codes::TIMEOUT)))
}

/// The `blocks` answer, serialized exactly as `Message::Blocks` would be, but from a borrowed
/// slice so that shrinking the batch does not clone blocks.
#[derive(serde::Serialize)]
struct BlocksRef<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    request_id: u64,
    blocks: &'a [pp_ledger::Block],
}

/// Counts bytes instead of storing them: sizes a JSON encoding without allocating it.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn json_len<T: serde::Serialize>(value: &T) -> Result<usize, NetError> {
    let mut c = ByteCounter(0);
    serde_json::to_writer(&mut c, value).map_err(|e| NetError::BadJson(e.to_string()))?;
    Ok(c.0)
}

/// A `blocks` answer that fits in a frame: the longest prefix of `blocks` whose encoding fits
/// (a requester simply asks again from where the answer ends). Sizes are counted block by block
/// first, so a large request never materialises an oversized frame in memory.
fn encode_blocks_answer(
    request_id: u64,
    blocks: &[pp_ledger::Block],
    max_frame_bytes: usize,
) -> Result<Bytes, NetError> {
    let envelope = BlocksRef {
        kind: "blocks",
        request_id,
        blocks: &[],
    };
    let mut total = json_len(&envelope)?;
    let mut n = 0;
    for block in blocks {
        // One separating comma between array elements.
        let add = json_len(block)? + usize::from(n > 0);
        if total + add > max_frame_bytes {
            break;
        }
        total += add;
        n += 1;
    }
    if n == 0 && !blocks.is_empty() {
        return encode_message(
            &Message::error(
                Some(request_id),
                codes::FRAME_TOO_LARGE,
                "a single block does not fit in one frame",
            ),
            max_frame_bytes,
        );
    }
    let msg = BlocksRef {
        kind: "blocks",
        request_id,
        blocks: blocks.get(..n).unwrap_or(blocks),
    };
    let json = serde_json::to_vec(&msg).map_err(|e| NetError::BadJson(e.to_string()))?;
    Ok(Bytes::from(json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_answer_is_the_longest_prefix_that_fits_the_frame() {
        let k = pp_ledger::KeyPair::from_seed([3; 32]);
        let g = pp_ledger::Hash([4; 32]);
        let mut parent = pp_ledger::BlockHeader {
            version: pp_ledger::BLOCK_VERSION,
            index: 0,
            slot: 0,
            prev_hash: g,
            tx_root: pp_ledger::Hash::ZERO,
            producer: k.public(),
            timestamp: 0,
            difficulty: 0,
            nonce: 0,
        };
        let mut blocks = Vec::new();
        for i in 1..=10 {
            let tx =
                pp_ledger::Transaction::transfer(&k, pp_ledger::PublicKey([1; 32]), 1, 1, i, &g);
            let b = pp_ledger::Block::produce(&parent, i, i, 0, vec![tx], &k, &g, 1).unwrap();
            parent = b.header.clone();
            blocks.push(b);
        }
        let all = encode_blocks_answer(9, &blocks, usize::MAX).unwrap();
        let whole = encode_message(
            &Message::Blocks {
                request_id: 9,
                blocks: blocks.clone(),
            },
            usize::MAX,
        )
        .unwrap();
        assert_eq!(all, whole, "same bytes as the enum encoding");
        for max in [whole.len(), whole.len() - 1, whole.len() / 2, 1200] {
            let part = encode_blocks_answer(9, &blocks, max).unwrap();
            assert!(part.len() <= max);
            match crate::codec::decode_message(&part).unwrap() {
                Message::Blocks {
                    request_id: 9,
                    blocks: got,
                } => {
                    assert_eq!(got[..], blocks[..got.len()]);
                    // Exactly the longest prefix: one more block would not fit.
                    if got.len() < blocks.len() {
                        let longer =
                            encode_blocks_answer(9, &blocks[..=got.len()], usize::MAX).unwrap();
                        assert!(longer.len() > max);
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        match crate::codec::decode_message(&encode_blocks_answer(9, &blocks, 300).unwrap()).unwrap()
        {
            Message::Error {
                code,
                request_id: Some(9),
                ..
            } => assert_eq!(code, codes::FRAME_TOO_LARGE),
            other => panic!("{other:?}"),
        }
    }
}
