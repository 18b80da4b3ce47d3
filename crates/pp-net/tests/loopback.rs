//! Behaviour over real loopback TCP: requests, announcements, handshake refusals, limits,
//! timeouts, penalties and the dialer.

mod common;

use std::time::Duration;

use bytes::{BufMut, BytesMut};
use common::*;
use futures::{SinkExt, StreamExt};
use pp_ledger::Hash;
use pp_net::{codes, BanTarget, Direction, Message, Misbehaviour, NetError, NetEvent};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn requests_for_blocks_headers_peers_and_ping_are_answered() {
    let chain = make_chain(20, 1);
    let (a, _ea) = start("a", chain.clone()).await;
    let (b, mut eb) = start("b", vec![]).await;
    let (c, _ec) = start("c", vec![]).await;
    let pa = b.connect(&a.local_addr().to_string()).await.unwrap();
    assert_eq!(pa.node_id, "a");
    assert_eq!(pa.direction, Direction::Outbound);
    assert_eq!(pa.tip_index, 20, "hello carries the tip");
    assert_eq!(pa.tip_hash, chain[19].hash());
    assert!(wait_event(
        &mut eb,
        3,
        |e| matches!(e, NetEvent::PeerConnected(p) if p.node_id == "a")
    )
    .await
    .is_some());
    // a dials c: a completed handshake puts c's address in a's tried table.
    a.connect(&c.local_addr().to_string()).await.unwrap();

    let blocks = b.get_blocks(pa.id, 5, 3).await.unwrap();
    assert_eq!(blocks, chain[4..7].to_vec());
    assert!(b.get_blocks(pa.id, 100, 3).await.unwrap().is_empty());

    let headers = b
        .get_headers(pa.id, vec![chain[9].hash(), Hash::ZERO], 4)
        .await
        .unwrap();
    let want: Vec<_> = chain[10..14]
        .iter()
        .map(pp_ledger::SignedHeader::from)
        .collect();
    assert_eq!(headers, want);

    assert!(eventually(3, || a.peer_count() == 2).await);
    // a's `peers` answer holds its tried addresses (c; b too once a's feeler reached the port
    // b's hello claimed), except the requester's own.
    assert!(eventually(5, || a.book_counts().tried >= 1).await);
    let peers = b.get_peers(pa.id).await.unwrap();
    assert_eq!(
        peers,
        vec![c.local_addr().to_string()],
        "a tells b about c, not about b"
    );

    let rtt = b.ping(pa.id).await.unwrap();
    assert!(rtt < Duration::from_secs(1));
    for n in [&a, &b, &c] {
        n.shutdown().await;
    }
}

#[tokio::test]
async fn many_requests_in_flight_on_one_connection_are_matched_by_id() {
    let chain = make_chain(60, 0);
    let (a, _ea) = start("a", chain.clone()).await;
    let (b, _eb) = start("b", vec![]).await;
    let pa = b.connect(&a.local_addr().to_string()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 1..=50u64 {
        let b = b.clone();
        tasks.push(tokio::spawn(
            async move { (i, b.get_blocks(pa.id, i, 2).await) },
        ));
    }
    for t in tasks {
        let (i, r) = t.await.unwrap();
        let got = r.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].header.index, i,
            "response matched to the wrong request"
        );
    }
    assert_eq!(b.peer_count(), 1, "still one connection");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn server_caps_get_blocks_count_at_500() {
    let chain = make_chain(520, 0);
    let (a, _ea) = start("a", chain).await;
    let (b, _eb) = start("b", vec![]).await;
    let pa = b.connect(&a.local_addr().to_string()).await.unwrap();
    let mut raw = raw_handshaken(&a, "raw").await;
    raw.send(Message::GetBlocks {
        request_id: 77,
        from_index: 1,
        count: 10_000,
    })
    .await
    .unwrap();
    match next_non_ping(&mut raw, 5).await {
        Some(Ok(Message::Blocks {
            request_id: 77,
            blocks,
        })) => assert_eq!(blocks.len(), 500),
        other => panic!("expected blocks, got {other:?}"),
    }
    assert_eq!(b.get_blocks(pa.id, 1, u32::MAX).await.unwrap().len(), 500);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn broadcast_block_arrives_as_new_block_and_updates_the_senders_tip() {
    let chain = make_chain(3, 2);
    let (a, _ea) = start("a", chain[..2].to_vec()).await;
    let (b, mut eb) = start("b", vec![]).await;
    let (c, mut ec) = start("c", vec![]).await;
    let pa = b.connect(&a.local_addr().to_string()).await.unwrap();
    c.connect(&a.local_addr().to_string()).await.unwrap();
    assert!(eventually(3, || a.peer_count() == 2).await);
    a.broadcast_block(&chain[2], None);
    for rx in [&mut eb, &mut ec] {
        match wait_event(rx, 3, |e| matches!(e, NetEvent::NewBlock { .. })).await {
            Some(NetEvent::NewBlock { block, .. }) => assert_eq!(block, chain[2]),
            other => panic!("no new_block: {other:?}"),
        }
    }
    let tip = b.peers().into_iter().find(|p| p.id == pa.id).unwrap();
    assert_eq!((tip.tip_index, tip.tip_hash), (3, chain[2].hash()));

    // `except` skips that peer.
    let to_b = a.peers().into_iter().find(|p| p.node_id == "b").unwrap().id;
    a.broadcast_tx(&chain[2].transactions[0], Some(to_b));
    match wait_event(&mut ec, 3, |e| matches!(e, NetEvent::NewTx { .. })).await {
        Some(NetEvent::NewTx { tx, .. }) => assert_eq!(tx, chain[2].transactions[0]),
        other => panic!("no new_tx: {other:?}"),
    }
    assert!(
        wait_event(&mut eb, 1, |e| matches!(e, NetEvent::NewTx { .. }))
            .await
            .is_none()
    );
    for n in [&a, &b, &c] {
        n.shutdown().await;
    }
}

/// The next frame other than a ping or a `get_peers` of the node's own: a node with no outbound
/// peer asks its inbound peers (this raw client among them) for addresses at any time, and
/// the answers this test waits for are not affected by that.
async fn next_reply(raw: &mut Raw, secs: u64) -> Option<Result<Message, NetError>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_non_ping(raw, left.as_secs().max(1)).await {
            Some(Ok(Message::GetPeers { .. })) if !left.is_zero() => continue,
            other => return other,
        }
    }
}

#[tokio::test]
async fn raw_client_exchanges_every_message_type_with_a_node() {
    let chain = make_chain(4, 1);
    let (a, mut ea) = start("a", chain.clone()).await;
    let (b, _eb) = start("b", vec![]).await;
    b.connect(&a.local_addr().to_string()).await.unwrap();
    // hello both ways.
    let mut raw = raw_handshaken(&a, "raw").await;
    assert!(eventually(3, || a.peer_count() == 2).await);

    raw.send(Message::GetBlocks {
        request_id: 1,
        from_index: 2,
        count: 2,
    })
    .await
    .unwrap();
    assert_eq!(
        next_reply(&mut raw, 3).await.unwrap().unwrap(),
        Message::Blocks {
            request_id: 1,
            blocks: chain[1..3].to_vec()
        }
    );
    raw.send(Message::GetHeaders {
        request_id: 2,
        locator: vec![chain[2].hash()],
        count: 9,
    })
    .await
    .unwrap();
    assert_eq!(
        next_reply(&mut raw, 3).await.unwrap().unwrap(),
        Message::Headers {
            request_id: 2,
            headers: vec![pp_ledger::SignedHeader::from(&chain[3])]
        }
    );
    // b's listen address is in a's tried table once a's feeler reached it.
    assert!(eventually(5, || a.book_counts().tried == 1).await);
    raw.send(Message::GetPeers { request_id: 3 }).await.unwrap();
    assert_eq!(
        next_reply(&mut raw, 3).await.unwrap().unwrap(),
        Message::Peers {
            request_id: 3,
            peers: vec![b.local_addr().to_string()]
        }
    );
    raw.send(Message::Ping { request_id: 4 }).await.unwrap();
    assert_eq!(
        next_reply(&mut raw, 3).await.unwrap().unwrap(),
        Message::Pong { request_id: 4 }
    );
    raw.send(Message::GetHeaders {
        request_id: 5,
        locator: vec![Hash::ZERO; 65],
        count: 1,
    })
    .await
    .unwrap();
    match next_reply(&mut raw, 3).await {
        Some(Ok(Message::Error {
            request_id: Some(5),
            code,
            ..
        })) => assert_eq!(code, codes::BAD_REQUEST),
        other => panic!("expected error for a 65-hash locator, got {other:?}"),
    }

    // Announcements the node sends.
    a.broadcast_block(&chain[3], None);
    assert_eq!(
        next_reply(&mut raw, 3).await.unwrap().unwrap(),
        Message::new_block(&chain[3])
    );
    a.broadcast_tx(&chain[0].transactions[0], None);
    assert_eq!(
        next_reply(&mut raw, 3).await.unwrap().unwrap(),
        Message::NewTx {
            tx: chain[0].transactions[0].clone()
        }
    );
    // Announcements the node receives.
    raw.send(Message::new_block(&chain[1])).await.unwrap();
    assert!(wait_event(
        &mut ea,
        3,
        |e| matches!(e, NetEvent::NewBlock { block, .. } if *block == chain[1])
    )
    .await
    .is_some());
    raw.send(Message::NewTx {
        tx: chain[1].transactions[0].clone(),
    })
    .await
    .unwrap();
    assert!(
        wait_event(&mut ea, 3, |e| matches!(e, NetEvent::NewTx { .. }))
            .await
            .is_some()
    );
    // The node's own requests reach the raw client, and pong/peers/headers/blocks answers work.
    let raw_peer = a
        .peers()
        .into_iter()
        .find(|p| p.node_id == "raw")
        .unwrap()
        .id;
    let a2 = a.clone();
    let asking = tokio::spawn(async move { a2.get_blocks(raw_peer, 1, 1).await });
    let id = match next_reply(&mut raw, 3).await {
        Some(Ok(Message::GetBlocks {
            request_id,
            from_index: 1,
            count: 1,
        })) => request_id,
        other => panic!("expected get_blocks from the node, got {other:?}"),
    };
    raw.send(Message::Blocks {
        request_id: id,
        blocks: vec![chain[0].clone()],
    })
    .await
    .unwrap();
    assert_eq!(asking.await.unwrap().unwrap(), vec![chain[0].clone()]);
    let a2 = a.clone();
    let mut asking = tokio::spawn(async move { a2.get_peers(raw_peer).await });
    // The node may also ask on its own (it has no outbound peer): every `get_peers` gets the
    // error, until the one asked here has its answer.
    let mut answer = None;
    for _ in 0..4 {
        let id = match next_non_ping(&mut raw, 3).await {
            Some(Ok(Message::GetPeers { request_id })) => request_id,
            other => panic!("expected get_peers, got {other:?}"),
        };
        raw.send(Message::error(
            Some(id),
            codes::INTERNAL,
            "no peers for you",
        ))
        .await
        .unwrap();
        if let Ok(r) = tokio::time::timeout(Duration::from_millis(500), &mut asking).await {
            answer = Some(r.unwrap());
            break;
        }
    }
    match answer.expect("the node's get_peers was never answered") {
        Err(NetError::RemoteError { code, message }) => {
            assert_eq!(code, codes::INTERNAL);
            assert_eq!(message, "no peers for you");
        }
        other => panic!("expected RemoteError, got {other:?}"),
    }
    // An error frame without request id closes the connection.
    raw.send(Message::error(None, codes::SHUTTING_DOWN, "bye"))
        .await
        .unwrap();
    // A peer that says it is shutting down left cleanly: the reason says so, and is not worded
    // as an error (the node logs it).
    match wait_event(
        &mut ea,
        3,
        |e| matches!(e, NetEvent::PeerDisconnected { peer, .. } if *peer == raw_peer),
    )
    .await
    {
        Some(NetEvent::PeerDisconnected { reason, .. }) => {
            assert_eq!(reason, "peer shut down (shutting_down)");
        }
        other => panic!("expected a disconnect, got {other:?}"),
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn wrong_genesis_hash_is_refused_with_an_error_frame() {
    let (a, _ea) = start("a", vec![]).await;
    let mut cfg = config("b");
    cfg.genesis_hash = Hash::sha256(b"another network");
    let (b, _eb) = start_with(cfg, vec![]).await;
    match b.connect(&a.local_addr().to_string()).await {
        Err(NetError::GenesisMismatch { ours, theirs }) => {
            assert_eq!(ours, Hash::sha256(b"another network"));
            assert_eq!(theirs, genesis_hash());
        }
        other => panic!("expected GenesisMismatch, got {other:?}"),
    }
    assert_eq!(a.peer_count(), 0);
    assert_eq!(b.peer_count(), 0);

    let mut raw = raw_connect(&a).await;
    raw.send(Message::Hello(hello("raw", Hash::sha256(b"x"))))
        .await
        .unwrap();
    assert!(matches!(
        next_msg(&mut raw, 3).await,
        Some(Ok(Message::Hello(_)))
    ));
    match next_msg(&mut raw, 3).await {
        Some(Ok(Message::Error { code, .. })) => assert_eq!(code, codes::GENESIS_MISMATCH),
        other => panic!("expected error frame, got {other:?}"),
    }
    assert!(closed_within(&mut raw, 3).await);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn wrong_protocol_version_is_refused() {
    let (a, _ea) = start("a", vec![]).await;
    let mut cfg = config("b");
    cfg.protocol_version = 1;
    let (b, _eb) = start_with(cfg, vec![]).await;
    assert!(matches!(
        b.connect(&a.local_addr().to_string()).await,
        Err(NetError::VersionMismatch {
            ours: 1,
            theirs: pp_net::PROTOCOL_VERSION
        })
    ));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn first_frame_other_than_hello_is_refused() {
    let (a, _ea) = start("a", vec![]).await;
    let mut raw = raw_connect(&a).await;
    raw.send(Message::GetPeers { request_id: 1 }).await.unwrap();
    match next_msg(&mut raw, 3).await {
        Some(Ok(Message::Error { code, .. })) => assert_eq!(code, codes::BAD_HELLO),
        other => panic!("expected bad_hello, got {other:?}"),
    }
    assert!(closed_within(&mut raw, 3).await);
    assert_eq!(a.peer_count(), 0);
    a.shutdown().await;
}

#[tokio::test]
async fn max_peers_is_enforced_with_an_error_frame() {
    // max_peers = 1: one inbound slot and, separately, one outbound slot.
    let mut cfg = config("a");
    cfg.max_peers = 1;
    let (a, _ea) = start_with(cfg, vec![]).await;
    let (b, _eb) = start("b", vec![]).await;
    let (c, _ec) = start("c", vec![]).await;
    let (d, _ed) = start("d", vec![]).await;
    b.connect(&a.local_addr().to_string()).await.unwrap();
    // b is alone in its address group, so a newcomer cannot evict it.
    assert!(matches!(
        c.connect(&a.local_addr().to_string()).await,
        Err(NetError::TooManyPeers { .. })
    ));
    let mut raw = raw_connect(&a).await;
    raw.send(Message::Hello(hello("raw", genesis_hash())))
        .await
        .unwrap();
    match next_msg(&mut raw, 3).await {
        Some(Ok(Message::Error { code, .. })) => assert_eq!(code, codes::TOO_MANY_PEERS),
        other => panic!("expected too_many_peers, got {other:?}"),
    }
    assert!(closed_within(&mut raw, 3).await);
    assert_eq!(a.peer_count(), 1);
    // Outbound slots never count against inbound: a can still dial one peer, and only one.
    assert!(a.connect(&c.local_addr().to_string()).await.is_ok());
    assert!(matches!(
        a.connect(&d.local_addr().to_string()).await,
        Err(NetError::TooManyPeers { max: 1 })
    ));
    // When the inbound slot frees up, a new peer is admitted.
    b.shutdown().await;
    assert!(eventually(3, || a.peer_count() == 1).await);
    assert!(d.connect(&a.local_addr().to_string()).await.is_ok());
    a.shutdown().await;
    c.shutdown().await;
    d.shutdown().await;
}

#[tokio::test]
async fn silent_peer_times_out_during_the_handshake() {
    let mut cfg = config("a");
    cfg.handshake_timeout = Duration::from_millis(300);
    let (a, _ea) = start_with(cfg, vec![]).await;
    // Plain TCP that never starts the Noise handshake: dropped at the deadline (no error frame
    // can be sent before the session exists).
    let mut tcp = tcp_from(&a, "silent").await;
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::io::AsyncReadExt::read(&mut tcp, &mut buf),
    )
    .await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert_eq!(a.handshakes_in_progress(), 0);
    a.shutdown().await;
}

#[tokio::test]
async fn dialing_a_silent_listener_fails_with_handshake_timeout() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let mut cfg = config("a");
    cfg.handshake_timeout = Duration::from_millis(300);
    let (a, _ea) = start_with(cfg, vec![]).await;
    // The kernel completes the TCP connect; the listener simply never says hello.
    assert!(matches!(
        a.connect(&addr).await,
        Err(NetError::HandshakeTimeout { ms: 300 })
    ));
    drop(silent);
    a.shutdown().await;
}

#[tokio::test]
async fn silent_peer_is_dropped_after_the_idle_timeout() {
    let mut cfg = config("a");
    cfg.idle_timeout = Duration::from_millis(400);
    cfg.ping_interval = Duration::from_secs(60);
    let (a, mut ea) = start_with(cfg, vec![]).await;
    let mut raw = raw_handshaken(&a, "quiet").await;
    assert!(eventually(2, || a.peer_count() == 1).await);
    match wait_event(&mut ea, 3, |e| {
        matches!(e, NetEvent::PeerDisconnected { .. })
    })
    .await
    {
        Some(NetEvent::PeerDisconnected { reason, .. }) => {
            assert!(reason.contains("idle"), "{reason}")
        }
        other => panic!("expected a disconnect, got {other:?}"),
    }
    match next_non_ping(&mut raw, 3).await {
        Some(Ok(Message::Error { code, .. })) => assert_eq!(code, codes::TIMEOUT),
        other => panic!("expected timeout error frame, got {other:?}"),
    }
    assert_eq!(a.peer_count(), 0);
    a.shutdown().await;
}

#[tokio::test]
async fn keepalive_pings_keep_a_quiet_connection_open() {
    let mut cfg_a = config("a");
    cfg_a.ping_interval = Duration::from_millis(100);
    cfg_a.idle_timeout = Duration::from_millis(500);
    let cfg_b = cfg_a.clone();
    let mut cfg_b = cfg_b;
    cfg_b.node_id = "b".into();
    cfg_b.identity = id_key("b");
    let (a, _ea) = start_with(cfg_a, vec![]).await;
    let (b, _eb) = start_with(cfg_b, vec![]).await;
    let p = b.connect(&a.local_addr().to_string()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(a.peer_count(), 1);
    assert_eq!(
        b.peers().first().map(|x| x.id),
        Some(p.id),
        "same connection, not a redial"
    );
    a.shutdown().await;
    b.shutdown().await;
}

async fn expect_penalised_close(raw: &mut Raw, code: &str) {
    match next_non_ping(raw, 3).await {
        Some(Ok(Message::Error { code: c, .. })) => assert_eq!(c, code),
        other => panic!("expected error {code}, got {other:?}"),
    }
    assert!(closed_within(raw, 3).await);
}

#[tokio::test]
async fn oversized_length_prefix_closes_the_connection_and_penalises_the_peer() {
    let (a, _ea) = start("a", vec![]).await;
    let mut raw = raw_handshaken(&a, "big").await;
    let mut buf = BytesMut::new();
    buf.put_u32(0xFFFF_FFF0);
    buf.put_slice(b"{\"type\":\"ping\"");
    raw.get_mut().write_all(&buf).await.unwrap();
    expect_penalised_close(&mut raw, codes::FRAME_TOO_LARGE).await;
    assert!(score_of(&a, "big") >= 50);
    assert!(eventually(2, || a.peer_count() == 0).await);
    a.shutdown().await;
}

#[tokio::test]
async fn garbage_frame_closes_the_connection_and_penalises_the_peer() {
    let (a, _ea) = start("a", vec![]).await;
    let mut raw = raw_handshaken(&a, "junk").await;
    let mut buf = BytesMut::new();
    buf.put_u32(7);
    buf.put_slice(b"garbage");
    raw.get_mut().write_all(&buf).await.unwrap();
    expect_penalised_close(&mut raw, codes::BAD_FRAME).await;
    assert_eq!(score_of(&a, "junk"), 50);
    a.shutdown().await;
}

#[tokio::test]
async fn unknown_message_type_closes_the_connection_and_penalises_the_peer() {
    let (a, _ea) = start("a", vec![]).await;
    let mut raw = raw_handshaken(&a, "odd").await;
    let payload = br#"{"type":"teleport","to":"mars"}"#;
    let mut buf = BytesMut::new();
    buf.put_u32(payload.len() as u32);
    buf.put_slice(payload);
    raw.get_mut().write_all(&buf).await.unwrap();
    expect_penalised_close(&mut raw, codes::BAD_FRAME).await;
    assert_eq!(score_of(&a, "odd"), 50);
    a.shutdown().await;
}

#[tokio::test]
async fn zero_length_and_bad_utf8_frames_are_rejected() {
    let (a, _ea) = start("a", vec![]).await;
    let mut raw = raw_handshaken(&a, "zero").await;
    raw.get_mut().write_all(&[0, 0, 0, 0]).await.unwrap();
    expect_penalised_close(&mut raw, codes::BAD_FRAME).await;
    let mut raw = raw_handshaken(&a, "utf").await;
    raw.get_mut()
        .write_all(&[0, 0, 0, 2, 0xC3, 0x28])
        .await
        .unwrap();
    expect_penalised_close(&mut raw, codes::BAD_FRAME).await;
    assert_eq!(score_of(&a, "utf"), 50);
    a.shutdown().await;
}

#[tokio::test]
async fn truncated_frame_then_close_is_a_clean_disconnect_without_panic() {
    let (a, mut ea) = start("a", vec![]).await;
    let mut raw = raw_handshaken(&a, "cut").await;
    raw.get_mut()
        .write_all(&[0, 0, 0, 50, b'{', b'"'])
        .await
        .unwrap();
    drop(raw);
    assert!(wait_event(&mut ea, 3, |e| matches!(
        e,
        NetEvent::PeerDisconnected { .. }
    ))
    .await
    .is_some());
    assert_eq!(a.peer_count(), 0);
    // The node still works.
    let (b, _eb) = start("b", vec![]).await;
    assert!(b.connect(&a.local_addr().to_string()).await.is_ok());
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn two_malformed_frames_ban_the_key_and_the_address() {
    let (a, _ea) = start("a", vec![]).await;
    for _ in 0..2 {
        let mut raw = raw_handshaken(&a, "repeat").await;
        raw.get_mut().write_all(&[0, 0, 0, 1, b'x']).await.unwrap();
        expect_penalised_close(&mut raw, codes::BAD_FRAME).await;
    }
    let bans = a.bans();
    let targets: Vec<BanTarget> = bans.iter().map(|b| b.target).collect();
    assert_eq!(
        targets.len(),
        2,
        "the key and its address are banned: {bans:?}"
    );
    assert!(targets.contains(&key_target("repeat")));
    assert!(targets.contains(&BanTarget::Ip(ip_of("repeat").into())));
    assert!(bans.iter().all(|b| b.remaining_ms > 3_000_000 && !b.manual));
    // From the banned address, the connection is closed before any handshake.
    let mut tcp = tcp_from(&a, "repeat").await;
    let mut buf = [0u8; 8];
    let read = tokio::time::timeout(
        Duration::from_secs(3),
        tokio::io::AsyncReadExt::read(&mut tcp, &mut buf),
    )
    .await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
    a.shutdown().await;
}

#[tokio::test]
async fn new_block_with_a_false_summary_is_penalised_and_not_delivered() {
    let chain = make_chain(2, 0);
    let (a, mut ea) = start("a", vec![]).await;
    let mut raw = raw_handshaken(&a, "liar").await;
    let mut lie = Message::new_block(&chain[1]);
    if let Message::NewBlock { hash, .. } = &mut lie {
        *hash = Hash([0xAB; 32]);
    }
    raw.send(lie).await.unwrap();
    raw.send(Message::Ping { request_id: 1 }).await.unwrap();
    assert_eq!(
        next_non_ping(&mut raw, 3).await.unwrap().unwrap(),
        Message::Pong { request_id: 1 }
    );
    assert_eq!(score_of(&a, "liar"), 50);
    assert!(
        wait_event(&mut ea, 1, |e| matches!(e, NetEvent::NewBlock { .. }))
            .await
            .is_none()
    );
    a.shutdown().await;
}

#[tokio::test]
async fn a_second_hello_is_a_protocol_violation() {
    let (a, _ea) = start("a", vec![]).await;
    let mut raw = raw_handshaken(&a, "twice").await;
    raw.send(Message::Hello(hello("twice", genesis_hash())))
        .await
        .unwrap();
    expect_penalised_close(&mut raw, codes::PROTOCOL_VIOLATION).await;
    assert_eq!(score_of(&a, "twice"), 20);
    a.shutdown().await;
}

#[tokio::test]
async fn connecting_to_self_is_refused() {
    let (a, _ea) = start("a", vec![]).await;
    match a.connect(&a.local_addr().to_string()).await {
        Err(NetError::SelfConnection { key }) => assert_eq!(key, a.identity().to_hex()),
        other => panic!("expected SelfConnection, got {other:?}"),
    }
    assert_eq!(a.peer_count(), 0);
    // The dialer learns the address is ours and stops dialing it.
    a.add_known_addr(&a.local_addr().to_string());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(a.peer_count(), 0);
    assert!(a.known_addrs().is_empty());
    a.shutdown().await;
}

#[tokio::test]
async fn connecting_twice_to_the_same_node_returns_the_existing_peer() {
    // "a" dials "z"; the labels are ordered so that the dialer has the smaller identity key.
    let (lo, hi) = if id_key("a").public() < id_key("z").public() {
        ("a", "z")
    } else {
        ("z", "a")
    };
    let (a, _ea) = start(lo, vec![]).await;
    let (z, _ez) = start(hi, vec![]).await;
    let addr = z.local_addr().to_string();
    let first = a.connect(&addr).await.unwrap();
    let second = a.connect(&addr).await.unwrap();
    assert_eq!(first.id, second.id);
    assert_eq!(a.peer_count(), 1);
    // A second connection from "z" (its own key) to "a": "a" already has the one it dialed
    // itself, and the tie-break keeps the connection dialed by the smaller key ("a"'s), so this
    // one is refused.
    let mut raw = raw_connect_as(&a, hi).await;
    raw.send(Message::Hello(hello(hi, genesis_hash())))
        .await
        .unwrap();
    let mut saw_refusal = false;
    for _ in 0..3 {
        match next_msg(&mut raw, 3).await {
            Some(Ok(Message::Error { code, .. })) => {
                assert_eq!(code, codes::ALREADY_CONNECTED);
                saw_refusal = true;
                break;
            }
            Some(Ok(_)) => continue,
            _ => break,
        }
    }
    assert!(saw_refusal);
    assert_eq!(a.peer_count(), 1);
    assert_eq!(
        a.peers()[0].id,
        first.id,
        "the original connection survives"
    );
    assert_eq!(z.peer_count(), 1);
    a.shutdown().await;
    z.shutdown().await;
}

#[tokio::test]
async fn concurrent_connects_to_one_address_share_one_connection() {
    let (a, _ea) = start("a", vec![]).await;
    let (b, _eb) = start("b", vec![]).await;
    let addr = a.local_addr().to_string();
    b.add_known_addr(&addr); // the dialer may race the explicit connects too
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (b, addr) = (b.clone(), addr.clone());
        tasks.push(tokio::spawn(async move { b.connect(&addr).await }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap().unwrap().id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "all callers got the same connection");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!((a.peer_count(), b.peer_count()), (1, 1));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn nodes_that_dial_each_other_end_with_exactly_one_connection() {
    let mut ca = config("a");
    ca.dial_interval = Duration::from_millis(20);
    let mut cb = config("b");
    cb.dial_interval = Duration::from_millis(20);
    let (a, _ea) = start_with(ca, vec![]).await;
    let (b, _eb) = start_with(cb, vec![]).await;
    a.add_known_addr(&b.local_addr().to_string());
    b.add_known_addr(&a.local_addr().to_string());
    assert!(eventually(5, || a.peer_count() == 1 && b.peer_count() == 1).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!((a.peer_count(), b.peer_count()), (1, 1));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn dialer_keeps_retrying_with_backoff_until_the_peer_appears() {
    // Reserve a port, free it, and give it to the dialer before anything listens there.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    let mut ca = config("a");
    ca.dial_interval = Duration::from_millis(20);
    ca.dial_backoff_base = Duration::from_millis(50);
    ca.dial_backoff_max = Duration::from_millis(200);
    let (a, _ea) = start_with(ca, vec![]).await;
    a.add_known_addr(&addr);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(a.peer_count(), 0);
    assert_eq!(a.known_addrs(), vec![addr.clone()]);
    let book = a.address_book();
    assert!(book[0].failures >= 2, "failed dials are counted: {book:?}");
    assert!(book[0].retry_in_ms <= 200, "backoff is capped: {book:?}");
    let mut cb = config("b");
    cb.listen_addr = addr.clone();
    let (b, _eb) = start_with(cb, vec![]).await;
    assert!(
        eventually(3, || a.peer_count() == 1).await,
        "dialer did not reconnect"
    );
    assert_eq!(a.peers()[0].listen_addr.map(|x| x.to_string()), Some(addr));
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn penalize_past_the_threshold_bans_and_disconnects() {
    let (a, mut ea) = start("a", vec![]).await;
    let (b, _eb) = start("b", vec![]).await;
    b.connect(&a.local_addr().to_string()).await.unwrap();
    let pb = a.peers()[0].id;
    // Offences an honest node can commit score only its key (20 points each here).
    for i in 0..4 {
        a.penalize(pb, Misbehaviour::BadSyncAnswer, &format!("bad answer {i}"));
    }
    assert_eq!(a.peer_count(), 1);
    a.penalize(pb, Misbehaviour::BadSyncAnswer, "bad answer again");
    match wait_event(&mut ea, 3, |e| {
        matches!(e, NetEvent::PeerDisconnected { .. })
    })
    .await
    {
        Some(NetEvent::PeerDisconnected { reason, .. }) => {
            assert!(reason.contains("banned"), "{reason}")
        }
        other => panic!("expected disconnect, got {other:?}"),
    }
    let bans = a.bans();
    assert_eq!(bans.len(), 1, "the key only, not the address: {bans:?}");
    assert_eq!(bans[0].target, key_target("b"));
    assert_eq!(bans[0].reason, "bad_sync_answer: bad answer again");
    assert!(eventually(3, || b.peer_count() == 0).await);
    match b.connect(&a.local_addr().to_string()).await {
        Err(NetError::RemoteError { code, .. }) => assert_eq!(code, codes::BANNED),
        other => panic!("expected banned refusal, got {other:?}"),
    }
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn request_to_an_unresponsive_peer_times_out_and_a_late_answer_is_ignored() {
    let mut cfg = config("a");
    cfg.request_timeout = Duration::from_millis(300);
    let (a, _ea) = start_with(cfg, vec![]).await;
    let mut raw = raw_handshaken(&a, "mute").await;
    let p = a.peers()[0].id;
    let started = tokio::time::Instant::now();
    match a.get_blocks(p, 0, 1).await {
        Err(NetError::RequestTimeout { ms, .. }) => assert_eq!(ms, 300),
        other => panic!("expected RequestTimeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    // The late answer is ignored (not penalised), and the connection stays up.
    let id = match next_non_ping(&mut raw, 1).await {
        Some(Ok(Message::GetBlocks { request_id, .. })) => request_id,
        other => panic!("{other:?}"),
    };
    raw.send(Message::Blocks {
        request_id: id,
        blocks: vec![],
    })
    .await
    .unwrap();
    raw.send(Message::Ping { request_id: 9 }).await.unwrap();
    assert_eq!(
        next_non_ping(&mut raw, 3).await.unwrap().unwrap(),
        Message::Pong { request_id: 9 }
    );
    assert_eq!(score_of(&a, "mute"), 0);
    assert_eq!(a.peer_count(), 1);
    a.shutdown().await;
}

#[tokio::test]
async fn requests_to_a_gone_peer_fail_fast() {
    let (a, _ea) = start("a", vec![]).await;
    assert!(matches!(
        a.get_blocks(pp_net::PeerId(999), 0, 1).await,
        Err(NetError::PeerGone(999))
    ));
    a.shutdown().await;
}

#[tokio::test]
async fn a_peer_that_does_not_read_cannot_grow_our_memory() {
    // The raw peer never reads; we broadcast far more than the queue holds. Broadcasts beyond
    // the queue (and the socket buffers) are dropped and counted instead of buffered.
    let mut cfg = config("a");
    cfg.outbound_queue = 8;
    let (a, _ea) = start_with(cfg, vec![]).await;
    let _raw = raw_handshaken(&a, "sleepy").await;
    let chain = make_chain(1, 200);
    for _ in 0..2_000 {
        a.broadcast_block(&chain[0], None);
    }
    assert!(a.dropped_broadcasts() > 0);
    a.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_connections_and_stops_accepting() {
    let (a, _ea) = start("a", vec![]).await;
    let (b, mut eb) = start("b", vec![]).await;
    b.connect(&a.local_addr().to_string()).await.unwrap();
    let addr = a.local_addr();
    tokio::time::timeout(Duration::from_secs(5), a.shutdown())
        .await
        .expect("shutdown finishes");
    match wait_event(&mut eb, 3, |e| {
        matches!(e, NetEvent::PeerDisconnected { .. })
    })
    .await
    {
        Some(NetEvent::PeerDisconnected { reason, .. }) => {
            assert!(reason.contains(codes::SHUTTING_DOWN), "{reason}")
        }
        other => panic!("expected disconnect, got {other:?}"),
    }
    assert_eq!(a.peer_count(), 0);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "listener still open"
    );
    assert!(matches!(
        a.connect(&b.local_addr().to_string()).await,
        Err(NetError::Shutdown)
    ));
    b.shutdown().await;
}

#[tokio::test]
async fn every_message_type_crosses_a_raw_tcp_connection_intact() {
    use pp_net::MessageCodec;
    use tokio_util::codec::Framed;
    let chain = make_chain(2, 3);
    let b = &chain[1];
    let msgs = vec![
        Message::Hello(hello("n", genesis_hash())),
        Message::GetBlocks {
            request_id: 1,
            from_index: 0,
            count: 10,
        },
        Message::Blocks {
            request_id: 1,
            blocks: chain.clone(),
        },
        Message::new_block(b),
        Message::GetHeaders {
            request_id: 2,
            locator: vec![b.hash()],
            count: 5,
        },
        Message::Headers {
            request_id: 2,
            headers: vec![pp_ledger::SignedHeader::from(b)],
        },
        Message::NewTx {
            tx: b.transactions[0].clone(),
        },
        Message::GetPeers { request_id: 3 },
        Message::Peers {
            request_id: 3,
            peers: vec!["127.0.0.1:1".into()],
        },
        Message::Ping { request_id: 4 },
        Message::Pong { request_id: 4 },
        Message::error(Some(5), codes::BAD_REQUEST, "x"),
    ];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = msgs.clone();
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.unwrap();
        let mut f = Framed::new(s, MessageCodec::new(1 << 20));
        let mut got = Vec::new();
        while let Some(m) = f.next().await {
            let m = m.unwrap();
            f.send(&m).await.unwrap(); // echo
            got.push(m);
        }
        got
    });
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut f = Framed::new(s, MessageCodec::new(1 << 20));
    for m in &sent {
        f.send(m).await.unwrap();
        assert_eq!(&f.next().await.unwrap().unwrap(), m, "echo of {}", m.kind());
    }
    drop(f);
    assert_eq!(server.await.unwrap(), msgs);
}

#[tokio::test]
async fn blocks_answers_are_trimmed_to_fit_the_frame_limit() {
    let chain = make_chain(10, 1);
    let mut ca = config("a");
    ca.max_frame_bytes = 4096;
    let mut cb = config("b");
    cb.max_frame_bytes = 4096;
    let (a, _ea) = start_with(ca, chain.clone()).await;
    let (b, _eb) = start_with(cb, vec![]).await;
    let p = b.connect(&a.local_addr().to_string()).await.unwrap();
    let first = b.get_blocks(p.id, 1, 10).await.unwrap();
    assert!(!first.is_empty() && first.len() < 10, "got {}", first.len());
    assert_eq!(first[..], chain[..first.len()]);
    // Paging from where the answer ended fetches the rest.
    let mut all = first;
    for _ in 0..10 {
        if all.len() == 10 {
            break;
        }
        let next = b.get_blocks(p.id, all.len() as u64 + 1, 10).await.unwrap();
        assert!(!next.is_empty());
        all.extend(next);
    }
    assert_eq!(all, chain);
    assert_eq!(b.peer_count(), 1, "no frame error closed the connection");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn node_survives_random_bytes_after_the_handshake_and_keeps_serving() {
    use rand::{Rng, SeedableRng};
    let chain = make_chain(3, 0);
    let (a, _ea) = start("a", chain.clone()).await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    for i in 0..20 {
        let mut raw = raw_handshaken(&a, &format!("fuzz{i}")).await;
        let len = rng.random_range(1..4096);
        let mut junk = vec![0u8; len];
        rng.fill(&mut junk[..]);
        // Half the time, a plausible small length prefix so the JSON parser sees the junk.
        if i % 2 == 0 && len > 4 {
            let n = (len - 4) as u32;
            junk[..4].copy_from_slice(&n.to_be_bytes());
        }
        let _ = raw.get_mut().write_all(&junk).await;
        assert!(
            closed_within(&mut raw, 3).await,
            "junk #{i} did not close the connection"
        );
    }
    let (b, _eb) = start("b", vec![]).await;
    let p = b.connect(&a.local_addr().to_string()).await.unwrap();
    assert_eq!(b.get_blocks(p.id, 1, 3).await.unwrap(), chain);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn dropping_every_handle_stops_the_network() {
    let (a, ea) = start("a", vec![]).await;
    let (b, mut eb) = start("b", vec![]).await;
    let addr = a.local_addr();
    b.connect(&addr.to_string()).await.unwrap();
    let a2 = a.clone();
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(a2.peer_count(), 1, "a clone keeps it running");
    drop(a2);
    drop(ea);
    assert!(
        wait_event(&mut eb, 3, |e| matches!(
            e,
            NetEvent::PeerDisconnected { .. }
        ))
        .await
        .is_some(),
        "connections close when the last handle is dropped"
    );
    let listener_closed = eventually(3, || std::net::TcpStream::connect(addr).is_err()).await;
    assert!(listener_closed, "listener still accepting");
    b.shutdown().await;
}

/// A blocking seam that counts the jobs it is given, then runs them on tokio's pool.
#[derive(Default)]
struct CountingSeam(std::sync::atomic::AtomicUsize);

impl pp_net::Blocking for CountingSeam {
    fn spawn(&self, job: pp_net::blocking::BlockingJob) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        pp_net::TokioBlocking.spawn(job);
    }
}

impl CountingSeam {
    fn jobs(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The answers to `get_blocks` and `get_headers` are built on the answering network's blocking
/// seam, and a frame of `OFFLOAD_FRAME_BYTES` or more is decoded on the receiving network's,
/// so that no runtime worker reads storage or parses megabytes of JSON in one poll; a small
/// frame is decoded where it is read (the hand-off would cost more than the parse).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_answers_and_large_frames_are_handled_on_the_blocking_seam() {
    let chain = make_chain(12, 200); // about 70 KB a block
    let (seam_a, seam_b) = (
        std::sync::Arc::new(CountingSeam::default()),
        std::sync::Arc::new(CountingSeam::default()),
    );
    let mut ca = config("a");
    ca.blocking = seam_a.clone();
    let mut cb = config("b");
    cb.blocking = seam_b.clone();
    let (a, _ea) = start_with(ca, chain.clone()).await;
    let (b, _eb) = start_with(cb, vec![]).await;
    let pa = b.connect(&a.local_addr().to_string()).await.unwrap();
    let (a0, b0) = (seam_a.jobs(), seam_b.jobs());

    // A few headers: built on a's seam; the answer (a few KB) decoded in place at b.
    let headers = b
        .get_headers(pa.id, vec![chain[3].hash()], 2)
        .await
        .unwrap();
    assert_eq!(headers.len(), 2);
    assert_eq!(
        seam_a.jobs(),
        a0 + 1,
        "the headers answer is built on the seam"
    );
    assert_eq!(
        seam_b.jobs(),
        b0,
        "a small frame is decoded where it is read"
    );

    // Three blocks, about 210 KB: built on a's seam, decoded on b's.
    let blocks = b.get_blocks(pa.id, 1, 3).await.unwrap();
    assert_eq!(blocks, chain[0..3].to_vec());
    assert_eq!(
        seam_a.jobs(),
        a0 + 2,
        "the blocks answer is built on the seam"
    );
    assert_eq!(
        seam_b.jobs(),
        b0 + 1,
        "a large frame is decoded on the seam"
    );
    a.shutdown().await;
    b.shutdown().await;
}
