//! Address-book poisoning against a node, over real loopback TCP, with a restart in between.
//!
//! The attacker (one IP, 127.0.0.66) opens 999 short connections, each with a `hello` that
//! claims a different `listen_port`. Every claimed port is a silent tarpit of the attacker's: a
//! listener that accepts TCP and never says a word. A node that takes claimed ports into its
//! address book spends its dials (and, if dials hold slots, its connection slots) on tarpits,
//! and saves the poisoned book for its next start. The node must instead keep its honest
//! connections working, inbound and outbound, before and after a restart, and dial at most a
//! feeler's worth of tarpits.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{wait_until, Empty};
use futures::{SinkExt, StreamExt};
use pp_ledger::{Hash, KeyPair};
use pp_net::noise::NoiseIdentity;
use pp_net::{Hello, Message, MessageCodec, NetConfig, Network, TcpTransport};
use pp_server::{NetworkConfig, Server};
use tokio::net::{TcpListener, TcpSocket};

const ATTACKER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 66);
const FAKE_PORTS: usize = 999;

/// Silent listeners on the attacker's IP; counts the connections the victim opens to them.
struct Tarpits {
    ports: Vec<u16>,
    dialed: Arc<AtomicUsize>,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
}

async fn tarpits(n: usize) -> Tarpits {
    let dialed = Arc::new(AtomicUsize::new(0));
    let mut ports = Vec::new();
    let mut tasks = Vec::new();
    for _ in 0..n {
        let l = TcpListener::bind(SocketAddr::from((ATTACKER, 0)))
            .await
            .unwrap();
        ports.push(l.local_addr().unwrap().port());
        let dialed = dialed.clone();
        tasks.push(tokio::spawn(async move {
            let mut held = Vec::new();
            // Accept and hold every connection without a word (bounded: the test ends).
            for _ in 0..10_000 {
                match l.accept().await {
                    Ok((s, _)) => {
                        dialed.fetch_add(1, Ordering::Relaxed);
                        held.push(s);
                    }
                    Err(_) => break,
                }
            }
        }));
    }
    Tarpits {
        ports,
        dialed,
        _tasks: tasks,
    }
}

/// One short connection from the attacker's IP: Noise, a `hello` claiming `port`, close.
async fn poison(victim: SocketAddr, genesis: Hash, identity: &NoiseIdentity, port: u16) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((ATTACKER, 0))).unwrap();
    let s = socket.connect(victim).await.unwrap();
    let (stream, _) = pp_net::noise::handshake(s, identity, true).await.unwrap();
    let mut raw =
        tokio_util::codec::Framed::new(stream, MessageCodec::new(pp_net::DEFAULT_MAX_FRAME_BYTES));
    raw.send(Message::Hello(Hello {
        protocol_version: pp_net::PROTOCOL_VERSION,
        genesis_hash: genesis,
        node_id: "mallory".into(),
        listen_port: port,
        tip_index: 0,
        tip_hash: genesis,
        headers_only: false,
    }))
    .await
    .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), raw.next()).await;
    assert!(
        matches!(answer, Ok(Some(Ok(Message::Hello(_))))),
        "the victim admits each short connection: {answer:?}"
    );
}

/// An honest node on its own loopback address.
async fn honest(label: &str, ip: [u8; 4], genesis: Hash) -> Network<TcpTransport> {
    let cfg = NetConfig::new(label, genesis, format!("{}:0", IpAddr::from(ip)))
        .with_identity(KeyPair::from_seed(Hash::sha256(label.as_bytes()).0));
    Network::start(cfg, TcpTransport, Arc::new(Empty))
        .await
        .unwrap()
        .0
}

/// A fresh honest node dials the victim: it must be admitted, on both sides.
async fn honest_inbound_works(victim: &Server, label: &str, ip: [u8; 4], genesis: Hash) {
    let newcomer = honest(label, ip, genesis).await;
    let p2p = victim.p2p_addr().unwrap().to_string();
    let result = newcomer.connect(&p2p).await;
    assert!(result.is_ok(), "{label} refused by the victim: {result:?}");
    assert!(
        wait_until(Duration::from_secs(5), || victim
            .connected_peers()
            .iter()
            .any(|p| p == label))
        .await,
        "the victim lists {label}: {:?}",
        victim.connected_peers()
    );
    newcomer.shutdown().await;
}

/// The victim dials a fresh honest node (as an operator's `POST /peers` does): it must get an
/// outbound slot, not find them all held by dials to tarpits.
async fn honest_outbound_works(victim: &Server, label: &str, ip: [u8; 4], genesis: Hash) {
    let target = honest(label, ip, genesis).await;
    let result = victim
        .connect_to_peer(&target.local_addr().to_string())
        .await;
    assert!(result.is_ok(), "the victim cannot dial {label}: {result:?}");
    target.shutdown().await;
}

async fn http_get(s: &Server, path: &str) -> serde_json::Value {
    let url = format!("http://{}{path}", s.http_addr().unwrap());
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

fn victim(dir: &std::path::Path, key: &KeyPair, bootstrap: &str) -> Server {
    let mut s = common::single(dir, key);
    s.set_network(NetworkConfig::p2p("victim", 0).with_bootstrap(&[bootstrap]));
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claimed_listen_ports_do_not_poison_the_address_book_before_or_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([77u8; 32]);
    let mut s = common::single(dir.path(), &key);
    s.start(0).await.unwrap();
    let genesis = s.genesis().hash();
    s.shutdown().await;

    // An honest peer the victim is configured with.
    let friend = honest("friend", [127, 0, 0, 21], genesis).await;
    let friend_addr = friend.local_addr().to_string();
    let mut s = victim(dir.path(), &key, &friend_addr);
    s.start_configured().await.unwrap();
    let p2p = s.p2p_addr().unwrap();
    assert!(wait_until(Duration::from_secs(10), || s.peer_count() == 1).await);

    let pits = tarpits(FAKE_PORTS).await;
    let mallory = NoiseIdentity::new(&KeyPair::from_seed([66u8; 32]));
    for &port in &pits.ports {
        poison(p2p, genesis, &mallory, port).await;
    }

    // Give the victim's dialer time to act on what it was told.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let dialed = pits.dialed.load(Ordering::Relaxed);
    assert!(
        dialed <= 2,
        "the victim dialed {dialed} tarpits: claimed ports entered its address book"
    );
    // The book holds the configured friend (tried) and at most the one candidate the attacker's
    // IP got, never its 999 claimed ports.
    let known = http_get(&s, "/peers/known").await;
    assert!(known["tried"].as_u64().unwrap() >= 1, "{known}");
    assert!(
        known["new"].as_u64().unwrap() + known["tried"].as_u64().unwrap() <= 2,
        "{known}"
    );
    let status = http_get(&s, "/status").await;
    assert_eq!(status["outbound"], 1, "{status}");
    honest_outbound_works(&s, "honest-out-1", [127, 0, 0, 41], genesis).await;
    honest_inbound_works(&s, "honest-1", [127, 0, 0, 31], genesis).await;
    assert!(
        s.connected_peers().iter().any(|p| p == "friend"),
        "the configured honest peer stays connected"
    );

    // Restart: nothing of the attack was saved.
    s.shutdown().await;
    let mut s = victim(dir.path(), &key, &friend_addr);
    s.start_configured().await.unwrap();
    let before = pits.dialed.load(Ordering::Relaxed);
    assert!(
        wait_until(Duration::from_secs(10), || s
            .connected_peers()
            .iter()
            .any(|p| p == "friend"))
        .await
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after = pits.dialed.load(Ordering::Relaxed) - before;
    assert_eq!(
        after, 0,
        "after the restart the victim dialed {after} tarpits"
    );
    honest_outbound_works(&s, "honest-out-2", [127, 0, 0, 42], genesis).await;
    honest_inbound_works(&s, "honest-2", [127, 0, 0, 32], genesis).await;
    let peers = s.connected_peers();
    assert!(!peers.iter().any(|p| p == "mallory"), "{peers:?}");
    s.shutdown().await;
    friend.shutdown().await;
}
