//! One connection after the Noise handshake: the `hello` exchange, then a reader loop and a
//! writer task.
//!
//! After the handshake both sides are symmetric: either may send requests and announcements.
//! The reader loop answers requests from the [`ChainView`](crate::ChainView), hands responses to
//! the waiting [`FetchClient`] request, and announcements to the owner as events. The writer task
//! drains a bounded queue into the socket. Nothing here grows without bound:
//! - the send queue is bounded in frames and in bytes; when it is full, answers wait (which
//!   stops us reading from that peer, so TCP pushes back on it) and broadcasts are dropped;
//! - what a peer sends unasked (requests, announcements) is charged to its budgets (bytes per
//!   second, messages per second per type); over budget, the peer is not read until the budget
//!   allows it, and only a sustained excess scores;
//! - a `blocks` answer is capped in bytes, and built block by block, never all at once;
//! - a peer that does not answer a keepalive `ping` within two ping intervals is dropped.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::{debug, Instrument};

use crate::blocking;
use crate::chain_view::ChainView;
use crate::client::{FetchClient, Queued, ResponseFate};
use crate::codec::{decode_message, encode_message, FrameCodec, LENGTH_PREFIX_LEN};
use crate::config::{MessageRates, NetConfig, OFFLOAD_FRAME_BYTES};
use crate::error::NetError;
use crate::message::{
    check_new_block_summary, codes, Hello, Message, MAX_BLOCKS_PER_REQUEST,
    MAX_HEADERS_PER_REQUEST, MAX_LOCATOR_LEN, MAX_NODE_ID_LEN, MAX_PEERS_PER_RESPONSE,
};
use crate::misbehaviour::Misbehaviour;
use crate::network::{NetEvent, Shared};
use crate::peer_table::{millis, Direction, PeerCounters, PeerInfo};
use crate::relay_tasks;

/// The read side of a connection, yielding frame payloads.
pub(crate) type Reader<S> = FramedRead<ReadHalf<S>, FrameCodec>;
/// The write side of a connection, taking encoded payloads.
pub(crate) type Writer<S> = FramedWrite<WriteHalf<S>, FrameCodec>;

/// Each time a peer has kept us waiting this long in total because it was over its budgets, it
/// scores [`Misbehaviour::Flooding`] (and is still only read when the budgets allow).
const FLOOD_WAIT: Duration = Duration::from_secs(2);
/// Blocks fetched from the chain view at a time while building a `blocks` answer.
const BLOCKS_PER_FETCH: u32 = 16;

/// Split a stream into framed halves.
pub(crate) fn framed<S: AsyncRead + AsyncWrite>(
    stream: S,
    max_frame_bytes: usize,
) -> (Reader<S>, Writer<S>) {
    let (r, w) = tokio::io::split(stream);
    (
        FramedRead::new(r, FrameCodec::new(max_frame_bytes)),
        FramedWrite::new(w, FrameCodec::new(max_frame_bytes)),
    )
}

/// The next message and the size of its frame on the wire (length prefix included);
/// `None` when the peer closed cleanly. Decodes on the calling task (the handshake's small
/// frames); a running connection uses [`decode_frame`].
pub(crate) async fn next_message<S: AsyncRead>(
    reader: &mut Reader<S>,
) -> Option<Result<(Message, usize), NetError>> {
    Some(match reader.next().await? {
        Ok(payload) => decode_message(&payload).map(|m| (m, payload.len() + LENGTH_PREFIX_LEN)),
        Err(e) => Err(e),
    })
}

/// A frame's message and the size of its frame on the wire (length prefix included). A frame
/// of [`OFFLOAD_FRAME_BYTES`] or more is decoded on the network's blocking seam (one of
/// `max_offloaded_jobs` at a time), so that the runtime worker running
/// this connection is free meanwhile; shorter ones here. While an offloaded frame waits for
/// its decoding, `counters.decoding` counts it: the peer has delivered it, and a request
/// waiting for its answer does not hold our own delay against the peer
/// ([`FetchClient::request`](crate::client::FetchClient), [`crate::Network::decoding_from`]).
async fn decode_frame(
    payload: BytesMut,
    shared: &Shared,
    counters: &PeerCounters,
) -> Result<(Message, usize), NetError> {
    let size = payload.len() + LENGTH_PREFIX_LEN;
    let msg = if payload.len() >= OFFLOAD_FRAME_BYTES {
        let _decoding = Decoding::start(&counters.decoding);
        let Ok(_permit) = shared.offload_permits.acquire().await else {
            return Err(NetError::Shutdown);
        };
        blocking::run(&shared.config.blocking, move || decode_message(&payload))
            .await
            .unwrap_or(Err(NetError::Shutdown))?
    } else {
        decode_message(&payload)?
    };
    Ok((msg, size))
}

/// Counts one frame in [`PeerCounters::decoding`] for as long as it lives, so that every way
/// out of [`decode_frame`] (decoded, malformed, shutdown, cancelled) uncounts it.
struct Decoding<'a>(&'a AtomicU64);

impl<'a> Decoding<'a> {
    fn start(gauge: &'a AtomicU64) -> Decoding<'a> {
        gauge.fetch_add(1, Ordering::Relaxed);
        Decoding(gauge)
    }
}

impl Drop for Decoding<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
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

/// Exchange `hello`s (inside the encrypted stream) and check the peer's.
///
/// The dialer speaks first. The accepting side reads the dialer's `hello` before answering, so
/// that it can refuse a banned node or itself with an `error` frame instead of a `hello`. When the
/// networks differ (genesis or version), it still answers with its `hello` and then the `error`,
/// so that the dialer sees the mismatch with its own eyes and reports it as the same typed error.
/// `precheck` decides admission (self, bans, duplicates, room) for the proven identity, so that
/// a refusal is the first frame the dialer reads instead of a `hello` followed by a close.
pub(crate) async fn hello_exchange<S: AsyncRead + AsyncWrite>(
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
    let first = match next_message(reader).await {
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
        Some(Ok((m, _))) => m,
    };
    let theirs = match first {
        Message::Hello(h) => h,
        Message::Error { code, message, .. } => {
            return Err(match code.as_str() {
                codes::TOO_MANY_PEERS => NetError::TooManyPeers { max: 0 },
                codes::SELF_CONNECTION => NetError::SelfConnection {
                    key: config.identity.public().to_hex(),
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

/// The rules a remote `hello` must satisfy (identity, self-connection and duplicates are
/// decided on the key the Noise handshake proved).
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

/// governor's clock, driven by tokio's time, so paused-time tests and the simulator (turmoil)
/// control the budgets like every other timer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokioClock {
    origin: Instant,
}

impl TokioClock {
    /// A clock whose origin is now.
    pub(crate) fn new() -> TokioClock {
        TokioClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.origin.elapsed())
    }
}

pub(crate) type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Nanos>>;

fn limiter(per_sec: u32, burst: u32, clock: TokioClock) -> Limiter {
    let rate = NonZeroU32::new(per_sec.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    RateLimiter::direct_with_clock(Quota::per_second(rate).allow_burst(burst), clock)
}

/// One peer's budgets for what it sends unasked.
pub(crate) struct Budget {
    clock: TokioClock,
    bytes: Limiter,
    new_tx: Limiter,
    get_blocks: Limiter,
    get_headers: Limiter,
    get_peers: Limiter,
    inv_txs: Limiter,
    get_txs: Limiter,
    get_block_txs: Limiter,
}

impl Budget {
    pub(crate) fn new(config: &NetConfig) -> Budget {
        let clock = TokioClock::new();
        let frame = u32::try_from(config.max_frame_bytes + LENGTH_PREFIX_LEN).unwrap_or(u32::MAX);
        let MessageRates {
            new_tx,
            get_blocks,
            get_headers,
            get_peers,
            inv_txs,
            get_txs,
            get_block_txs,
        } = config.message_rates;
        let per_type = |rate: u32| limiter(rate, rate.saturating_mul(2), clock);
        Budget {
            clock,
            bytes: limiter(config.inbound_bytes_per_sec, frame.saturating_mul(2), clock),
            new_tx: per_type(new_tx),
            get_blocks: per_type(get_blocks),
            get_headers: per_type(get_headers),
            get_peers: per_type(get_peers),
            inv_txs: per_type(inv_txs),
            get_txs: per_type(get_txs),
            get_block_txs: per_type(get_block_txs),
        }
    }

    fn for_kind(&self, msg: &Message) -> Option<&Limiter> {
        match msg {
            Message::NewTx { .. } => Some(&self.new_tx),
            Message::GetBlocks { .. } => Some(&self.get_blocks),
            Message::GetHeaders { .. } => Some(&self.get_headers),
            Message::GetPeers { .. } => Some(&self.get_peers),
            Message::InvTxs { .. } => Some(&self.inv_txs),
            Message::GetTxs { .. } => Some(&self.get_txs),
            Message::GetBlockTxs { .. } => Some(&self.get_block_txs),
            _ => None,
        }
    }

    /// Wait until `limiter` grants `n` cells (or `close` fires). Returns the time waited.
    async fn take(
        &self,
        limiter: &Limiter,
        n: u32,
        close: &CancellationToken,
    ) -> Result<Duration, ()> {
        let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
        let mut waited = Duration::ZERO;
        loop {
            let wait = match limiter.check_n(n) {
                Ok(Ok(())) => return Ok(waited),
                Ok(Err(not_until)) => not_until.wait_time_from(self.clock.now()),
                // More than the burst can never pass: n is capped at one frame, and every burst
                // is at least two frames, so this cannot happen; let it through rather than stall.
                Err(_) => return Ok(waited),
            };
            let wait = wait.max(Duration::from_millis(1));
            tokio::select! {
                biased;
                _ = close.cancelled() => return Err(()),
                _ = tokio::time::sleep(wait) => waited += wait,
            }
        }
    }

    /// Charge an unsolicited message of `size` bytes; waits while over budget. Returns the time
    /// waited, or `Err` if the connection is closing.
    async fn charge(
        &self,
        msg: &Message,
        size: usize,
        close: &CancellationToken,
    ) -> Result<Duration, ()> {
        let mut waited = Duration::ZERO;
        if let Some(l) = self.for_kind(msg) {
            waited += self.take(l, 1, close).await?;
        }
        let n = u32::try_from(size).unwrap_or(u32::MAX);
        waited += self.take(&self.bytes, n, close).await?;
        Ok(waited)
    }
}

/// Everything a live connection task owns.
pub(crate) struct Live<S> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) client: FetchClient,
    pub(crate) info: PeerInfo,
    pub(crate) counters: Arc<PeerCounters>,
    pub(crate) reader: Reader<S>,
    pub(crate) writer: Writer<S>,
    pub(crate) queue: mpsc::Receiver<Queued>,
    /// The outbound slot, for connections we dialed.
    pub(crate) permit: Option<OwnedSemaphorePermit>,
}

/// Run a registered connection until it closes, then unregister it.
pub(crate) async fn run<S>(live: Live<S>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let span = tracing::debug_span!("peer", id = live.info.id.0, node = %live.info.node_id, key = %live.info.key, addr = %live.info.addr);
    run_inner(live).instrument(span).await;
}

type Close = (String, Option<&'static str>);

async fn run_inner<S>(live: Live<S>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let Live {
        shared,
        client,
        info,
        counters,
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
        counters.clone(),
        shared.clone(),
    ));
    let budget = Budget::new(config);
    let mut over_budget = Duration::ZERO;
    let mut ping =
        tokio::time::interval_at(Instant::now() + config.ping_interval, config.ping_interval);
    // After a stall, one ping is enough; a burst of catch-up pings would only add noise.
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let pong_deadline = config.ping_interval * 2;
    let mut ping_out: Option<(u64, Instant)> = None;
    let mut idle_deadline = Instant::now() + config.idle_timeout;
    let mut ended: Option<Close> = None;
    loop {
        // Biased (branches tried in the order written, a close request first): an unbiased
        // select starts at a random branch (tokio's per-process RNG), which made simulated runs
        // differ between replays of one seed (pp-sim).
        tokio::select! {
            biased;
            _ = client.close_token().cancelled() => break,
            _ = ping.tick() => {
                if let Some((_, sent)) = ping_out {
                    if sent.elapsed() >= pong_deadline {
                        ended = Some((format!("no pong within {} ms", millis(pong_deadline)), Some(codes::TIMEOUT)));
                        break;
                    }
                    continue;
                }
                let id = client.next_id();
                if let Ok(frame) = encode_message(&Message::Ping { request_id: id }, config.max_frame_bytes) {
                    // A full queue already proves traffic is flowing; skip this ping.
                    if client.try_send(frame) {
                        ping_out = Some((id, Instant::now()));
                    }
                }
            }
            _ = tokio::time::sleep_until(idle_deadline) => {
                ended = Some((format!("idle for {} ms", millis(config.idle_timeout)), Some(codes::TIMEOUT)));
                break;
            }
            // Only the read is raced against the other branches: it is cancel-safe (a frame
            // is taken from the stream only when it is returned), the decoding below is not.
            frame = reader.next() => match match frame {
                None => None,
                Some(Err(e)) => Some(Err(e)),
                Some(Ok(payload)) => Some(decode_frame(payload, &shared, &counters).await),
            } {
                None => {
                    ended = Some(("closed by peer".to_string(), None));
                    break;
                }
                Some(Err(e)) => {
                    if e.is_malformed_input() {
                        shared.penalize_peer(&info, Misbehaviour::MalformedFrame, &e.to_string());
                        ended = Some((e.to_string(), Some(e.code())));
                    } else {
                        ended = Some((e.to_string(), None));
                    }
                    break;
                }
                Some(Ok((msg, size))) => {
                    idle_deadline = Instant::now() + config.idle_timeout;
                    counters.bytes_in.fetch_add(size as u64, Ordering::Relaxed);
                    counters.messages_in.fetch_add(1, Ordering::Relaxed);
                    shared.stats.received(&msg, size);
                    shared.touch(info.id);
                    if let Some(id) = msg.response_id() {
                        let fate = match (&msg, ping_out) {
                            (Message::Pong { .. }, Some((pid, sent))) if pid == id => {
                                let rtt = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                                counters.min_rtt_us.fetch_min(rtt, Ordering::Relaxed);
                                ping_out = None;
                                ResponseFate::Delivered
                            }
                            _ => client.complete(id, msg),
                        };
                        if fate != ResponseFate::Unsolicited {
                            continue;
                        }
                        shared.penalize_peer(&info, Misbehaviour::UnsolicitedResponse, &format!("answer to unknown request {id}"));
                        if throttle(&shared, &budget, &info, &counters, &Message::Pong { request_id: id }, size, &client, &mut over_budget).await.is_err() {
                            break;
                        }
                        continue;
                    }
                    if throttle(&shared, &budget, &info, &counters, &msg, size, &client, &mut over_budget).await.is_err() {
                        break;
                    }
                    if let Err(close) = handle_message(&shared, &client, &info, msg).await {
                        ended = Some(close);
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

/// Charge `msg` to the peer's budgets, waiting (not reading) while it is over. Every
/// [`FLOOD_WAIT`] of waiting in total (`over_budget` keeps the sum) scores flooding once, so only
/// sustained abuse scores. `Err` when the connection is closing.
#[allow(clippy::too_many_arguments)]
async fn throttle(
    shared: &Shared,
    budget: &Budget,
    info: &PeerInfo,
    counters: &PeerCounters,
    msg: &Message,
    size: usize,
    client: &FetchClient,
    over_budget: &mut Duration,
) -> Result<(), ()> {
    let waited = budget.charge(msg, size, client.close_token()).await?;
    if waited == Duration::ZERO {
        return Ok(());
    }
    counters.throttled.fetch_add(1, Ordering::Relaxed);
    shared.stats.throttled.fetch_add(1, Ordering::Relaxed);
    *over_budget += waited;
    if *over_budget >= FLOOD_WAIT {
        *over_budget = Duration::ZERO;
        shared.penalize_peer(
            info,
            Misbehaviour::Flooding,
            &format!(
                "kept over its budget for {} ms ({})",
                millis(FLOOD_WAIT),
                msg.kind()
            ),
        );
    }
    Ok(())
}

/// Drain the queue into the socket until the connection closes. Frames are fed in small batches
/// and flushed once per batch, so a burst costs one syscall, not one per frame. A frame's share
/// of the byte budget returns once the batch holding it is flushed, so the budget covers the
/// writer's buffer too.
async fn write_loop<S: AsyncWrite>(
    mut writer: Writer<S>,
    mut queue: mpsc::Receiver<Queued>,
    client: FetchClient,
    counters: Arc<PeerCounters>,
    shared: Arc<Shared>,
) -> Writer<S> {
    let write_timeout = shared.config.request_timeout;
    let count = |frame: &Bytes| {
        let size = frame.len() + LENGTH_PREFIX_LEN;
        counters.bytes_out.fetch_add(size as u64, Ordering::Relaxed);
        counters.messages_out.fetch_add(1, Ordering::Relaxed);
        shared.stats.sent(frame, size);
    };
    let mut permits = Vec::new();
    loop {
        let first = tokio::select! {
            biased;
            _ = client.close_token().cancelled() => break,
            f = queue.recv() => f,
        };
        let Some(first) = first else { break };
        let batch = async {
            let mut next = Some(first);
            for _ in 0..=64 {
                let Some(q) = next.take() else { break };
                let (frame, permit) = q.into_parts();
                count(&frame);
                permits.push(permit);
                writer.feed(frame).await?;
                next = queue.try_recv().ok();
            }
            writer.flush().await
        };
        let result = tokio::time::timeout(write_timeout, batch).await;
        permits.clear();
        match result {
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
            shared.penalize_peer(info, Misbehaviour::ProtocolViolation, &reason);
            return Err((reason, Some(codes::PROTOCOL_VIOLATION)));
        }
        Message::GetBlocks {
            request_id,
            from_index,
            count,
        } => {
            offloaded(shared, move |shared| {
                blocks_answer(
                    shared.view.as_ref(),
                    request_id,
                    from_index,
                    count.min(MAX_BLOCKS_PER_REQUEST),
                    shared.config.max_blocks_answer_bytes,
                    shared.config.max_frame_bytes,
                )
            })
            .await
        }
        Message::GetHeaders {
            request_id,
            locator,
            count,
        } => {
            if locator.len() > MAX_LOCATOR_LEN {
                shared.penalize_peer(info, Misbehaviour::BadRequest, "locator too long");
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
                offloaded(shared, move |shared| {
                    let mut headers = shared.view.get_headers(&locator, count);
                    headers.truncate(usize::try_from(count).unwrap_or(usize::MAX));
                    encode_message(
                        &Message::Headers {
                            request_id,
                            headers,
                        },
                        shared.config.max_frame_bytes,
                    )
                })
                .await
            }
        }
        Message::GetPeers { request_id } => {
            let mut peers = shared.peers_answer(info);
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
                shared.penalize_peer(info, Misbehaviour::BadAnnouncement, &e.to_string());
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
            shared.relay().mark_known(info.id, tx.id());
            shared.emit(NetEvent::NewTx { peer: info.id, tx });
            return Ok(());
        }
        Message::CompactRelay { version } => {
            relay_tasks::on_compact_relay(shared, info, version);
            return Ok(());
        }
        Message::InvTxs { ids } => {
            relay_tasks::on_inv(shared, info, ids);
            return Ok(());
        }
        Message::GetTxs { request_id, ids } => {
            let info = info.clone();
            offloaded(shared, move |shared| {
                relay_tasks::txs_answer(shared, &info, request_id, ids)
            })
            .await
        }
        Message::CompactBlock(cb) => {
            relay_tasks::on_compact_block(shared, info, cb);
            return Ok(());
        }
        Message::NewHeader(header) => {
            relay_tasks::on_new_header(shared, info, header);
            return Ok(());
        }
        Message::GetBlockTxs {
            request_id,
            hash,
            indexes,
        } => {
            let info = info.clone();
            offloaded(shared, move |shared| {
                relay_tasks::block_txs_answer(shared, &info, request_id, hash, indexes)
            })
            .await
        }
        Message::Error {
            request_id: None,
            code,
            message,
        } => {
            // A node we dialed that closes with `too_many_peers` evicted us for a newcomer.
            if code == codes::TOO_MANY_PEERS && info.direction == Direction::Outbound {
                shared.note_evicted(info.id);
            }
            // A peer that stops cleanly says `shutting_down`: a goodbye, not a failure.
            let reason = if code == codes::SHUTTING_DOWN {
                format!("peer shut down ({code})")
            } else {
                format!("peer closed with error {code}: {message}")
            };
            return Err((reason, None));
        }
        // Answers are dispatched by the reader loop before this function is called.
        Message::Blocks { .. }
        | Message::Headers { .. }
        | Message::Peers { .. }
        | Message::Pong { .. }
        | Message::Txs { .. }
        | Message::BlockTxs { .. }
        | Message::Error { .. } => return Ok(()),
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

/// An answer built on the network's blocking seam ([`NetConfig::blocking`]): the answers to
/// `get_blocks`, `get_headers`, `get_txs` and `get_block_txs` read storage (through the
/// [`ChainView`]) and serialize up to megabytes of JSON, which must not hold a runtime worker.
/// The connection waits for it, so its answers still go out in request order.
async fn offloaded(
    shared: &Arc<Shared>,
    f: impl FnOnce(&Shared) -> Result<Bytes, NetError> + Send + 'static,
) -> Result<Bytes, NetError> {
    let Ok(_permit) = shared.offload_permits.acquire().await else {
        return Err(NetError::Shutdown);
    };
    let s = shared.clone();
    blocking::run(&shared.config.blocking, move || f(&s))
        .await
        .unwrap_or(Err(NetError::Shutdown))
}

/// The `blocks` answer to `get_blocks(from_index, count)`: consecutive best-chain blocks,
/// serialized exactly as `Message::Blocks` would be. It holds as many blocks as fit in
/// `max_answer_bytes` (the first block always, if it fits in a frame), so a requester simply
/// asks again from where the answer ends. Blocks are fetched a few at a time and serialized
/// once, so a large request never materialises more than one answer in memory. If the chain
/// changes between fetches, the answer ends where the blocks stop connecting.
pub(crate) fn blocks_answer(
    view: &dyn ChainView,
    request_id: u64,
    from_index: u64,
    count: u32,
    max_answer_bytes: usize,
    max_frame_bytes: usize,
) -> Result<Bytes, NetError> {
    const TAIL: &[u8] = b"]}";
    let mut out = format!(r#"{{"type":"blocks","request_id":{request_id},"blocks":["#).into_bytes();
    let mut n: u32 = 0;
    let mut last_hash = None;
    let mut first_too_large = false;
    'fetch: while n < count {
        let want = (count - n).min(BLOCKS_PER_FETCH);
        let chunk = view.get_blocks(from_index.saturating_add(u64::from(n)), want);
        if chunk.is_empty() {
            break;
        }
        let got = chunk.len();
        for block in chunk
            .into_iter()
            .take(usize::try_from(want).unwrap_or(usize::MAX))
        {
            if last_hash.is_some_and(|h| h != block.header.prev_hash) {
                break 'fetch;
            }
            let json = serde_json::to_vec(&block).map_err(|e| NetError::BadJson(e.to_string()))?;
            let total = out.len() + usize::from(n > 0) + json.len() + TAIL.len();
            if total > max_frame_bytes || (n > 0 && total > max_answer_bytes) {
                first_too_large = n == 0;
                break 'fetch;
            }
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&json);
            last_hash = Some(block.hash());
            n += 1;
        }
        if got < usize::try_from(want).unwrap_or(usize::MAX) {
            break;
        }
    }
    if first_too_large {
        return encode_message(
            &Message::error(
                Some(request_id),
                codes::FRAME_TOO_LARGE,
                "a single block does not fit in one frame",
            ),
            max_frame_bytes,
        );
    }
    out.extend_from_slice(TAIL);
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pp_ledger::{Block, Hash};

    struct Blocks(Vec<Block>);

    impl ChainView for Blocks {
        fn tip(&self) -> (u64, Hash) {
            (0, Hash::ZERO)
        }
        fn get_blocks(&self, from: u64, count: u32) -> Vec<Block> {
            self.0
                .iter()
                .skip(usize::try_from(from).unwrap())
                .take(count as usize)
                .cloned()
                .collect()
        }
        fn get_headers(&self, _: &[Hash], _: u32) -> Vec<pp_ledger::SignedHeader> {
            Vec::new()
        }
    }

    fn chain(n: u64) -> Vec<Block> {
        let k = pp_ledger::KeyPair::from_seed([3; 32]);
        let g = pp_ledger::Hash([4; 32]);
        let mut parent = pp_ledger::BlockHeader {
            version: pp_ledger::BLOCK_VERSION,
            index: 0,
            slot: 0,
            prev_hash: g,
            tx_root: pp_ledger::Hash::ZERO,
            state_root: pp_ledger::Hash::ZERO,
            producer: k.public(),
            timestamp: 0,
            difficulty: 0,
            vrf: None,
            ocert: None,
            nonce: 0,
        };
        let mut blocks = Vec::new();
        for i in 1..=n {
            let tx =
                pp_ledger::Transaction::transfer(&k, pp_ledger::PublicKey([1; 32]), 1, 1, i, &g);
            let b = pp_ledger::Block::produce(
                &parent,
                i,
                i,
                0,
                vec![tx],
                pp_ledger::Hash::ZERO,
                &k,
                &g,
                1,
            )
            .unwrap();
            parent = b.header.clone();
            blocks.push(b);
        }
        blocks
    }

    #[test]
    fn blocks_answer_is_the_longest_prefix_that_fits_and_encodes_like_the_enum() {
        let blocks = chain(40);
        let view = Blocks(blocks.clone());
        let all = blocks_answer(&view, 9, 0, 40, usize::MAX, usize::MAX).unwrap();
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
            for (answer_cap, frame_cap) in [(usize::MAX, max), (max, usize::MAX)] {
                let part = blocks_answer(&view, 9, 0, 40, answer_cap, frame_cap).unwrap();
                assert!(part.len() <= max);
                match crate::codec::decode_message(&part).unwrap() {
                    Message::Blocks {
                        request_id: 9,
                        blocks: got,
                    } => {
                        assert!(!got.is_empty());
                        assert_eq!(got[..], blocks[..got.len()]);
                        // Exactly the longest prefix: one more block would not fit.
                        if got.len() < blocks.len() {
                            let longer = encode_message(
                                &Message::Blocks {
                                    request_id: 9,
                                    blocks: blocks[..=got.len()].to_vec(),
                                },
                                usize::MAX,
                            )
                            .unwrap();
                            assert!(longer.len() > max);
                        }
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        // The byte cap never withholds the first block; the frame cap does.
        let one = blocks_answer(&view, 9, 3, 40, 1, usize::MAX).unwrap();
        match crate::codec::decode_message(&one).unwrap() {
            Message::Blocks { blocks: got, .. } => assert_eq!(got, vec![blocks[3].clone()]),
            other => panic!("{other:?}"),
        }
        match crate::codec::decode_message(&blocks_answer(&view, 9, 0, 40, 300, 300).unwrap())
            .unwrap()
        {
            Message::Error {
                code,
                request_id: Some(9),
                ..
            } => assert_eq!(code, codes::FRAME_TOO_LARGE),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn blocks_answer_stops_where_the_chain_stops_connecting() {
        let mut blocks = chain(40);
        let other = chain(40);
        // Blocks 20.. come from another chain (as after a reorg between two fetches).
        blocks[20] = other[30].clone();
        let view = Blocks(blocks.clone());
        let part = blocks_answer(&view, 1, 0, 40, usize::MAX, usize::MAX).unwrap();
        match crate::codec::decode_message(&part).unwrap() {
            Message::Blocks { blocks: got, .. } => assert_eq!(got[..], blocks[..20]),
            other => panic!("{other:?}"),
        }
    }
}
