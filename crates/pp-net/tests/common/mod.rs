//! Shared helpers for the pp-net integration tests: a small in-memory chain, node start-up,
//! a raw framed client, and bounded waits.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pp_ledger::{Block, BlockHeader, Hash, KeyPair, PublicKey, Transaction, BLOCK_VERSION};
use pp_net::noise::{NoiseIdentity, NoiseStream};
use pp_net::{
    BanTarget, ChainView, Hello, Message, MessageCodec, NetConfig, NetEvent, Network, TcpTransport,
};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::Framed;

pub fn genesis_hash() -> Hash {
    Hash::sha256(b"pp-net test network")
}

pub fn key() -> KeyPair {
    KeyPair::from_seed([7; 32])
}

/// `n` linked blocks (index 1..=n) on a fake parent, each with `txs` signed transfers.
pub fn make_chain(n: u64, txs: usize) -> Vec<Block> {
    let k = key();
    let g = genesis_hash();
    let mut parent = BlockHeader {
        version: BLOCK_VERSION,
        index: 0,
        slot: 0,
        prev_hash: g,
        tx_root: Hash::ZERO,
        state_root: Hash::ZERO,
        producer: k.public(),
        timestamp: 0,
        difficulty: 0,
        vrf: None,
        ocert: None,
        nonce: 0,
    };
    let mut out = Vec::new();
    let mut nonce = 0u64;
    for i in 1..=n {
        let mut batch = Vec::new();
        for _ in 0..txs {
            batch.push(Transaction::transfer(
                &k,
                PublicKey([9; 32]),
                1,
                1,
                nonce,
                &g,
            ));
            nonce += 1;
        }
        let b = Block::produce(&parent, i, 1000 * i, 0, batch, Hash::ZERO, &k, &g, 1)
            .expect("difficulty 0");
        parent = b.header.clone();
        out.push(b);
    }
    out
}

/// A fixed chain served to peers.
pub struct TestChain {
    pub blocks: Vec<Block>,
}

impl ChainView for TestChain {
    fn tip(&self) -> (u64, Hash) {
        self.blocks
            .last()
            .map(|b| (b.header.index, b.hash()))
            .unwrap_or((0, genesis_hash()))
    }
    fn get_blocks(&self, from_index: u64, count: u32) -> Vec<Block> {
        self.blocks
            .iter()
            .filter(|b| b.header.index >= from_index)
            .take(count as usize)
            .cloned()
            .collect()
    }
    fn get_headers(&self, locator: &[Hash], count: u32) -> Vec<pp_ledger::SignedHeader> {
        let start = locator
            .iter()
            .find_map(|h| {
                self.blocks
                    .iter()
                    .position(|b| b.hash() == *h)
                    .map(|p| p + 1)
            })
            .unwrap_or(0);
        self.blocks
            .iter()
            .skip(start)
            .take(count as usize)
            .map(pp_ledger::SignedHeader::from)
            .collect()
    }
}

/// The identity key of the node or raw client labelled `label` (fixed per label, so a raw
/// client can speak as a node of the same label, and tests can name keys by label).
pub fn id_key(label: &str) -> KeyPair {
    KeyPair::from_seed(Hash::sha256(label.as_bytes()).0)
}

/// `label`'s identity key as a ban target.
pub fn key_target(label: &str) -> BanTarget {
    BanTarget::Key(id_key(label).public())
}

/// The loopback address a raw client labelled `label` connects from (127.0.x.y from a hash of
/// the label), so that raw clients model distinct hosts and address penalties stay apart.
pub fn ip_of(label: &str) -> std::net::Ipv4Addr {
    let h = Hash::sha256(format!("ip:{label}").as_bytes()).0;
    std::net::Ipv4Addr::new(127, 0, h[0], h[1].max(2))
}

/// The misbehaviour score of the identity labelled `label` on `net`.
pub fn score_of(net: &Network<TcpTransport>, label: &str) -> i32 {
    net.score(key_target(label))
}

pub fn config(node_id: &str) -> NetConfig {
    let mut c =
        NetConfig::new(node_id, genesis_hash(), "127.0.0.1:0").with_identity(id_key(node_id));
    c.handshake_timeout = Duration::from_secs(3);
    c.request_timeout = Duration::from_secs(3);
    c
}

pub async fn start_with(
    cfg: NetConfig,
    blocks: Vec<Block>,
) -> (Network<TcpTransport>, mpsc::Receiver<NetEvent>) {
    Network::start(cfg, TcpTransport, Arc::new(TestChain { blocks }))
        .await
        .expect("network starts")
}

pub async fn start(
    node_id: &str,
    blocks: Vec<Block>,
) -> (Network<TcpTransport>, mpsc::Receiver<NetEvent>) {
    start_with(config(node_id), blocks).await
}

/// Wait (at most `secs`) for an event matching `pred`; other events are skipped.
pub async fn wait_event(
    rx: &mut mpsc::Receiver<NetEvent>,
    secs: u64,
    pred: impl Fn(&NetEvent) -> bool,
) -> Option<NetEvent> {
    tokio::time::timeout(Duration::from_secs(secs), async {
        while let Some(ev) = rx.recv().await {
            if pred(&ev) {
                return Some(ev);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

/// Poll `cond` every 20 ms for at most `secs`.
pub async fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

pub type Raw = Framed<NoiseStream<TcpStream>, MessageCodec>;

pub fn hello(node_id: &str, genesis: Hash) -> Hello {
    Hello {
        protocol_version: pp_net::PROTOCOL_VERSION,
        genesis_hash: genesis,
        node_id: node_id.to_string(),
        listen_port: 0,
        tip_index: 0,
        tip_hash: genesis,
        headers_only: false,
    }
}

/// A plain TCP connection to `net` from `ip_of(label)`: no Noise, nothing sent.
pub async fn tcp_from(net: &Network<TcpTransport>, label: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::from((ip_of(label), 0)))
        .expect("bind a loopback source address");
    socket.connect(net.local_addr()).await.expect("connect")
}

/// A raw framed connection to `net` from `ip_of(label)` with identity `id_key(label)`, after
/// the Noise handshake but before any `hello`.
pub async fn raw_connect_as(net: &Network<TcpTransport>, label: &str) -> Raw {
    let s = tcp_from(net, label).await;
    let identity = NoiseIdentity::new(&id_key(label));
    let (stream, key) = tokio::time::timeout(
        Duration::from_secs(3),
        pp_net::noise::handshake(s, &identity, true),
    )
    .await
    .expect("noise handshake in time")
    .expect("noise handshake");
    assert_eq!(key, net.identity(), "the node proves its identity key");
    Framed::new(stream, MessageCodec::new(pp_net::DEFAULT_MAX_FRAME_BYTES))
}

/// A raw connection after the Noise handshake (as a client labelled "raw"), before `hello`.
pub async fn raw_connect(net: &Network<TcpTransport>) -> Raw {
    raw_connect_as(net, "raw").await
}

/// A raw connection that has completed the handshake (Noise and `hello`) as `label`.
pub async fn raw_handshaken(net: &Network<TcpTransport>, label: &str) -> Raw {
    let mut raw = raw_connect_as(net, label).await;
    raw.send(Message::Hello(hello(label, genesis_hash())))
        .await
        .expect("send hello");
    match next_msg(&mut raw, 3).await {
        Some(Ok(Message::Hello(h))) => assert_eq!(h.genesis_hash, genesis_hash()),
        other => panic!("expected hello, got {other:?}"),
    }
    raw
}

/// Next frame from a raw connection, at most `secs` to wait. `None` on EOF or timeout.
pub async fn next_msg(raw: &mut Raw, secs: u64) -> Option<Result<Message, pp_net::NetError>> {
    tokio::time::timeout(Duration::from_secs(secs), raw.next())
        .await
        .ok()
        .flatten()
}

/// Read frames until one that is not a ping (answering none), at most `secs`.
pub async fn next_non_ping(raw: &mut Raw, secs: u64) -> Option<Result<Message, pp_net::NetError>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, raw.next()).await.ok().flatten() {
            Some(Ok(Message::Ping { .. })) => continue,
            other => return other,
        }
    }
}

/// True if the peer closes the connection within `secs` (frames before the close are skipped).
pub async fn closed_within(raw: &mut Raw, secs: u64) -> bool {
    tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            match raw.next().await {
                None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            }
        }
    })
    .await
    .is_ok()
}
