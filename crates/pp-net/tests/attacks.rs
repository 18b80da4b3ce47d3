//! The attacks of a stranger against the transport and peer admission, over real loopback TCP.
//! Each test is one attack that worked against protocol version 1 (plaintext, peers identified
//! by a claimed `node_id`); distinct 127.0.x.y source addresses model distinct hosts.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use common::*;
use futures::SinkExt;
use pp_ledger::{Block, Hash};
use pp_net::noise::NoiseIdentity;
use pp_net::{BanTarget, ChainView, Message, NetConfig, NetError, NetEvent, Network, TcpTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An impersonator labels itself with an honest node's `node_id` and misbehaves: the honest
/// node's connection is neither replaced nor penalised nor banned, because peers are their
/// proven keys, and the impersonator's own key and address take the blame.
#[tokio::test]
async fn an_impersonator_cannot_displace_penalise_or_ban_an_honest_peer() {
    let (a, mut ea) = start("a", vec![]).await;
    let (b, _eb) = start("b", vec![]).await;
    let honest = b.connect(&a.local_addr().to_string()).await.unwrap();
    assert!(eventually(3, || a.peer_count() == 1).await);
    let honest_at_a = a.peers()[0].clone();
    assert_eq!(honest_at_a.key, b.identity());

    for round in 0..2 {
        // Claims to be "b" in hello, but proves its own key (it cannot prove b's).
        let mut raw = raw_connect_as(&a, "mallory").await;
        raw.send(Message::Hello(hello("b", genesis_hash())))
            .await
            .unwrap();
        match next_msg(&mut raw, 3).await {
            Some(Ok(Message::Hello(_))) => {}
            other => panic!("round {round}: expected hello, got {other:?}"),
        }
        assert_eq!(a.peer_count(), 2, "both are connected side by side");
        raw.get_mut()
            .write_all(&[0, 0, 0, 3, b'x', b'y', b'z'])
            .await
            .unwrap();
        assert!(closed_within(&mut raw, 3).await);
    }
    // The honest connection is the same one, unscored, unbanned.
    assert!(eventually(3, || a.peer_count() == 1).await);
    assert_eq!(a.peers()[0].id, honest_at_a.id);
    assert_eq!(a.score(BanTarget::Key(b.identity())), 0);
    assert_eq!(b.peers()[0].id, honest.id);
    let bans: Vec<BanTarget> = a.bans().iter().map(|x| x.target).collect();
    assert!(bans.contains(&key_target("mallory")), "{bans:?}");
    assert!(bans.contains(&BanTarget::Ip(ip_of("mallory").into())));
    assert!(!bans.contains(&BanTarget::Key(b.identity())));
    // No disconnect event for the honest peer.
    while let Ok(ev) = ea.try_recv() {
        if let NetEvent::PeerDisconnected { peer, .. } = ev {
            assert_ne!(peer, honest_at_a.id, "the honest peer was dropped");
        }
    }

    a.shutdown().await;
    b.shutdown().await;
}

/// One IP holds every inbound slot (and answers nothing wrong): an honest newcomer from another
/// address still gets in, by evicting the youngest connection of the crowded address group.
#[tokio::test]
async fn one_address_holding_every_inbound_slot_does_not_keep_a_newcomer_out() {
    let mut cfg = config("a");
    cfg.max_peers = 8; // 4 outbound, 4 inbound
    cfg.max_inbound_per_group = 8; // let one address take them all
    let (a, _ea) = start_with(cfg, vec![]).await;
    let mut hogs = Vec::new();
    for i in 0..4 {
        // One source address, four identities.
        let s = tcp_from(&a, "hog").await;
        let identity = NoiseIdentity::new(&id_key(&format!("hog{i}")));
        let (stream, _) = pp_net::noise::handshake(s, &identity, true).await.unwrap();
        let mut raw = tokio_util::codec::Framed::new(
            stream,
            pp_net::MessageCodec::new(pp_net::DEFAULT_MAX_FRAME_BYTES),
        );
        raw.send(Message::Hello(hello(&format!("hog{i}"), genesis_hash())))
            .await
            .unwrap();
        assert!(matches!(
            next_msg(&mut raw, 3).await,
            Some(Ok(Message::Hello(_)))
        ));
        hogs.push(raw);
    }
    assert!(eventually(3, || a.peer_count() == 4).await);
    // A fifth from the same address finds no room that it could take from others.
    let (newcomer, _en) = start("newcomer", vec![]).await;
    let peer = newcomer
        .connect(&a.local_addr().to_string())
        .await
        .expect("the honest newcomer is admitted");
    assert!(eventually(3, || a.peers().iter().any(|p| p.key == newcomer.identity())).await);
    assert_eq!(a.peer_count(), 4, "one hog was evicted for it");
    assert_eq!(a.stats().evictions, 1);
    assert_eq!(newcomer.peers()[0].id, peer.id);
    a.shutdown().await;
    newcomer.shutdown().await;
}

/// Sockets that never start the handshake are held only against the handshake limits, never
/// against peer slots, and one address can hold only a few of those.
#[tokio::test]
async fn silent_sockets_in_the_handshake_do_not_keep_a_newcomer_out() {
    let (a, _ea) = start("a", vec![]).await;
    let mut silent = Vec::new();
    for _ in 0..31 {
        silent.push(tcp_from(&a, "silent").await);
    }
    assert!(eventually(3, || a.handshakes_in_progress() == 4).await);
    let (newcomer, _en) = start("newcomer", vec![]).await;
    let started = tokio::time::Instant::now();
    newcomer
        .connect(&a.local_addr().to_string())
        .await
        .expect("the newcomer is admitted while the silent sockets are open");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(a.stats().refused_handshake_limit >= 27);
    drop(silent);
    a.shutdown().await;
    newcomer.shutdown().await;
}

/// A chain of `n` blocks whose serving never ends: every `get_blocks` finds blocks.
struct BigChain {
    blocks: Vec<Block>,
}

impl ChainView for BigChain {
    fn tip(&self) -> (u64, Hash) {
        let b = &self.blocks[self.blocks.len() - 1];
        (b.header.index, b.hash())
    }
    fn get_blocks(&self, from_index: u64, count: u32) -> Vec<Block> {
        TestChain {
            blocks: self.blocks.clone(),
        }
        .get_blocks(from_index, count)
    }
    fn get_headers(&self, _: &[Hash], _: u32) -> Vec<pp_ledger::SignedHeader> {
        Vec::new()
    }
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// 30 connections pipeline `get_blocks(count = 500)` and never read. Each answer is capped at
/// 2 MiB and each send queue at 4 MiB, and a connection whose queue is full is not read, so the
/// node's memory grows by at most (inbound slots) × (4 + 2) MiB, however long they keep asking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_get_blocks_without_reading_keeps_memory_bounded() {
    let blocks = make_chain(120, 200); // about 70 KB a block, 8.4 MB in all
    let cfg = config("a");
    let inbound = cfg.max_inbound();
    let per_peer = cfg.queue_bytes() + cfg.max_blocks_answer_bytes;
    let (a, _ea) = Network::start(cfg, TcpTransport, Arc::new(BigChain { blocks }))
        .await
        .unwrap();
    let before = rss_bytes();
    let mut attackers = Vec::new();
    for i in 0..30 {
        let label = format!("pipeliner{i}");
        let Ok(mut raw) = tokio::time::timeout(Duration::from_secs(5), async {
            let mut raw = raw_connect_as(&a, &label).await;
            raw.send(Message::Hello(hello(&label, genesis_hash())))
                .await
                .unwrap();
            raw
        })
        .await
        else {
            continue;
        };
        // 40 requests of 500 blocks each: 40 × 8 MiB of answers if nothing capped them.
        for r in 0..40 {
            let m = Message::GetBlocks {
                request_id: r,
                from_index: 1,
                count: 500,
            };
            if tokio::time::timeout(Duration::from_millis(200), raw.send(m))
                .await
                .is_err()
            {
                break; // TCP pushes back: the node stopped reading us.
            }
        }
        attackers.push(raw);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let grown = rss_bytes().saturating_sub(before);
    let bound = (inbound * per_peer) as u64 + 64 * 1024 * 1024;
    println!(
        "RSS grew by {} MiB with {} pipelining peers (bound {} MiB)",
        grown >> 20,
        attackers.len(),
        bound >> 20
    );
    assert!(
        grown < bound,
        "RSS grew by {} MiB, bound {} MiB",
        grown >> 20,
        bound >> 20
    );
    drop(attackers);
    a.shutdown().await;
}

/// Answers to no request of ours (an unsolicited 1 MB `blocks` frame, say) score 25 each: four
/// get the sender's key and address banned.
#[tokio::test]
async fn unsolicited_answers_score_and_lead_to_a_ban() {
    let chain = make_chain(3, 100);
    let (a, _ea) = start("a", vec![]).await;
    let mut raw = raw_handshaken(&a, "spammer").await;
    for i in 0..4u64 {
        let r = raw
            .send(Message::Blocks {
                request_id: 1_000 + i,
                blocks: chain.clone(),
            })
            .await;
        if r.is_err() {
            break;
        }
    }
    assert!(closed_within(&mut raw, 3).await);
    assert!(a.score(key_target("spammer")) >= 100);
    let bans: Vec<BanTarget> = a.bans().iter().map(|x| x.target).collect();
    assert!(bans.contains(&key_target("spammer")), "{bans:?}");
    assert!(bans.contains(&BanTarget::Ip(ip_of("spammer").into())));
    a.shutdown().await;
}

/// Fresh identities do not dodge bans: bad frames also score the sender's address, so after two
/// the address is banned and every further connection from it is closed before the handshake,
/// however many keys it mints.
#[tokio::test]
async fn fresh_identities_from_one_address_are_banned_by_address() {
    let (a, _ea) = start("a", vec![]).await;
    let mut handshaken = 0;
    for i in 0..200 {
        let tcp = tcp_from(&a, "minter").await;
        let identity = NoiseIdentity::new(&id_key(&format!("minted{i}")));
        let Ok(Ok((stream, _))) = tokio::time::timeout(
            Duration::from_secs(3),
            pp_net::noise::handshake(tcp, &identity, true),
        )
        .await
        else {
            continue;
        };
        handshaken += 1;
        let mut raw = tokio_util::codec::Framed::new(
            stream,
            pp_net::MessageCodec::new(pp_net::DEFAULT_MAX_FRAME_BYTES),
        );
        let _ = raw
            .send(Message::Hello(hello(&format!("minted{i}"), genesis_hash())))
            .await;
        let _ = raw.get_mut().write_all(&[0, 0, 0, 1, b'!']).await;
        let _ = closed_within(&mut raw, 3).await;
    }
    assert_eq!(handshaken, 2, "the address is banned after two bad frames");
    assert!(a.stats().refused_banned >= 198);
    assert!(a
        .bans()
        .iter()
        .any(|b| b.target == BanTarget::Ip(ip_of("minter").into())));
    a.shutdown().await;
}

/// A peer that stops answering pings (a stalled TCP stream) is dropped after two ping
/// intervals, long before the idle timeout.
#[tokio::test]
async fn a_peer_that_does_not_answer_pings_is_dropped_within_two_intervals() {
    let mut cfg = config("a");
    cfg.ping_interval = Duration::from_millis(200);
    cfg.idle_timeout = Duration::from_secs(30);
    let (a, mut ea) = start_with(cfg, vec![]).await;
    let _raw = raw_handshaken(&a, "stalled").await;
    let started = tokio::time::Instant::now();
    match wait_event(&mut ea, 5, |e| {
        matches!(e, NetEvent::PeerDisconnected { .. })
    })
    .await
    {
        Some(NetEvent::PeerDisconnected { reason, .. }) => {
            assert!(reason.contains("no pong"), "{reason}")
        }
        other => panic!("expected a disconnect, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    a.shutdown().await;
}

/// A peer over its `new_tx` budget is not read until the budget allows it: what reaches the
/// owner is bounded by the rate, and keeping us waiting scores flooding.
#[tokio::test]
async fn a_flood_of_transactions_is_throttled_and_sustained_flooding_scores() {
    let mut cfg = config("a");
    cfg.message_rates.new_tx = 20;
    let (a, mut ea) = start_with(cfg, vec![]).await;
    let tx = make_chain(1, 1)[0].transactions[0].clone();
    let mut raw = raw_handshaken(&a, "flooder").await;
    let sender = tokio::spawn(async move {
        for _ in 0..200 {
            if raw.send(Message::NewTx { tx: tx.clone() }).await.is_err() {
                break;
            }
        }
        raw
    });
    let mut got = 0;
    let window = tokio::time::Instant::now();
    while window.elapsed() < Duration::from_secs(1) {
        if let Ok(Some(NetEvent::NewTx { .. })) =
            tokio::time::timeout(Duration::from_millis(50), ea.recv()).await
        {
            got += 1;
        }
    }
    // Burst 40, then 20/s: about 60 in the first second, far from 200.
    assert!((30..=70).contains(&got), "{got} transactions in one second");
    assert!(eventually(5, || a.score(key_target("flooder")) >= 10).await);
    assert!(a.peers()[0].stats.throttled > 0);
    assert!(a.stats().throttled > 0);
    drop(sender);
    a.shutdown().await;
}

/// A man in the middle flips one byte of an encrypted message: the receiver fails to decrypt,
/// closes the connection, and applies nothing of it.
#[tokio::test]
async fn a_flipped_byte_on_the_wire_closes_the_connection_and_applies_nothing() {
    let chain = make_chain(1, 1);
    let (a, mut ea) = start("a", vec![]).await;
    let (b, mut eb) = start("b", vec![]).await;
    // b dials a through a proxy that forwards both ways and, from b to a, flips a byte in the
    // fourth Noise message (1: e, 2: s+proof, 3: hello; 4: the next frame b sends).
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = proxy.local_addr().unwrap();
    let target = a.local_addr();
    tokio::spawn(async move {
        let (from_b, _) = proxy.accept().await.unwrap();
        let to_a = TcpStream::connect(target).await.unwrap();
        let (mut br, mut bw) = from_b.into_split();
        let (mut ar, mut aw) = to_a.into_split();
        tokio::spawn(async move {
            let _ = tokio::io::copy(&mut ar, &mut bw).await;
        });
        let mut index = 0;
        loop {
            let mut len = [0u8; 2];
            if br.read_exact(&mut len).await.is_err() {
                break;
            }
            let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if br.read_exact(&mut msg).await.is_err() {
                break;
            }
            index += 1;
            if index == 4 {
                let mid = msg.len() / 2;
                msg[mid] ^= 0x01;
            }
            let mut out = BytesMut::new();
            out.put_slice(&len);
            out.put_slice(&msg);
            if aw.write_all(&out).await.is_err() {
                break;
            }
        }
    });
    b.connect(&proxy_addr.to_string()).await.unwrap();
    assert!(eventually(3, || a.peer_count() == 1).await);
    b.broadcast_block(&chain[0], None);
    match wait_event(&mut ea, 3, |e| {
        matches!(
            e,
            NetEvent::PeerDisconnected { .. } | NetEvent::NewBlock { .. }
        )
    })
    .await
    {
        Some(NetEvent::PeerDisconnected { .. }) => {}
        other => panic!("expected the tampered connection to close, got {other:?}"),
    }
    assert!(
        wait_event(&mut ea, 1, |e| matches!(e, NetEvent::NewBlock { .. }))
            .await
            .is_none(),
        "nothing of the tampered message is applied"
    );
    assert!(wait_event(&mut eb, 3, |e| matches!(
        e,
        NetEvent::PeerDisconnected { .. }
    ))
    .await
    .is_some());
    // A third party's tampering is nobody's fault: the honest peer is not penalised.
    assert_eq!(a.score(BanTarget::Key(b.identity())), 0);
    a.shutdown().await;
    b.shutdown().await;
}

/// A plaintext (version 1) peer that sends its `hello` frame in the clear is dropped within the
/// handshake deadline and counted as a failed handshake; a peer of another network is told
/// `genesis_mismatch` and counted as the wrong network.
#[tokio::test]
async fn plaintext_and_foreign_peers_are_dropped_and_counted() {
    let mut cfg = config("a");
    cfg.handshake_timeout = Duration::from_millis(500);
    let (a, _ea) = start_with(cfg, vec![]).await;
    let mut tcp = tcp_from(&a, "old").await;
    let hello = serde_json::to_vec(&Message::Hello(hello("old", genesis_hash()))).unwrap();
    let mut frame = BytesMut::new();
    frame.put_u32(hello.len() as u32);
    frame.put_slice(&hello);
    tcp.write_all(&frame).await.unwrap();
    let mut buf = [0u8; 256];
    let started = tokio::time::Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(r.is_ok() && started.elapsed() < Duration::from_secs(2));
    let failed = |reason: &str| {
        a.stats()
            .handshakes_failed
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    };
    assert!(eventually(2, || failed("noise") == 1).await);

    let mut other = NetConfig::new("x", Hash::sha256(b"another"), "127.0.0.1:0");
    other.handshake_timeout = Duration::from_secs(2);
    let (x, _ex) = Network::start(other, TcpTransport, Arc::new(TestChain { blocks: vec![] }))
        .await
        .unwrap();
    assert!(matches!(
        x.connect(&a.local_addr().to_string()).await,
        Err(NetError::GenesisMismatch { .. })
    ));
    assert!(eventually(2, || failed("wrong_network") == 1).await);
    a.shutdown().await;
    x.shutdown().await;
}

/// Ask `raw_peer` (a raw client connected to `a`) for addresses, answer with `peers`, and
/// return what `get_peers` made of it.
async fn answer_get_peers(
    a: &Network<TcpTransport>,
    raw: &mut Raw,
    raw_peer: pp_net::PeerId,
    peers: Vec<String>,
) -> Result<Vec<String>, NetError> {
    let a2 = a.clone();
    let asking = tokio::spawn(async move { a2.get_peers(raw_peer).await });
    let id = match next_non_ping(raw, 3).await {
        Some(Ok(Message::GetPeers { request_id })) => request_id,
        other => panic!("expected get_peers, got {other:?}"),
    };
    raw.send(Message::Peers {
        request_id: id,
        peers,
    })
    .await
    .expect("send peers");
    asking.await.expect("get_peers task")
}

/// A liar answers `get_peers` with thousands of addresses: more than 1,000 in one answer is
/// refused whole and scored; 1,000 from one source fill at most the new buckets its group can
/// reach, and a second answer finds its address budget spent.
#[tokio::test]
async fn a_flood_of_addresses_is_capped_scored_and_bounded_in_the_book() {
    let (a, _ea) = start("a", vec![]).await;
    let mut raw = raw_handshaken(&a, "liar").await;
    assert!(eventually(3, || a.peer_count() == 1).await);
    let liar = a.peers()[0].id;
    let addrs = |n: u32, salt: u8| -> Vec<String> {
        (0..n)
            .map(|i| {
                let o = i.to_be_bytes();
                format!("{}.{}.{}.{}:7000", 11 + salt, o[1], o[2], o[3])
            })
            .collect()
    };

    let too_many = answer_get_peers(&a, &mut raw, liar, addrs(1001, 0)).await;
    assert!(too_many.is_err(), "1,001 addresses accepted: {too_many:?}");
    assert_eq!(a.score(key_target("liar")), 20);
    assert_eq!(a.book_counts().new, 0, "a refused answer teaches nothing");

    let ok = answer_get_peers(&a, &mut raw, liar, addrs(1000, 1)).await;
    assert_eq!(ok.map(|v| v.len()).ok(), Some(1000));
    let cap = pp_net::addrman::NEW_BUCKETS_PER_SOURCE_GROUP as usize * pp_net::addrman::BUCKET_SIZE;
    let after_first = a.book_counts().new;
    assert!(
        after_first > 0 && after_first <= cap,
        "{after_first} > {cap}"
    );
    // The budget (a burst of 1,000, then one address per 10 s) is spent: nothing more enters.
    answer_get_peers(&a, &mut raw, liar, addrs(1000, 2))
        .await
        .unwrap();
    assert_eq!(a.book_counts().new, after_first);
    a.shutdown().await;
}
