//! The Noise transport (`pp_net::noise`): handshakes both ways, data round trips through
//! `NoiseStream` in arbitrary chunkings, rogue peers (bad proofs, garbage, plaintext peers) and
//! tampering in transit. Rogue peers are scripted with `snow` directly.

use std::sync::LazyLock;

use futures::{SinkExt, StreamExt};
use pp_ledger::{KeyPair, PublicKey};
use pp_net::noise::{
    handshake, NoiseIdentity, IDENTITY_CONTEXT, MAX_PLAINTEXT_CHUNK, NOISE_PARAMS, PROLOGUE,
};
use pp_net::{Message, MessageCodec, NetError, DEFAULT_MAX_FRAME_BYTES};
use proptest::prelude::*;
use tokio::io::{duplex, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio_util::codec::{FramedRead, FramedWrite};

/// The honest initiator and responder of the rogue-peer tests.
static ALICE: LazyLock<NoiseIdentity> = LazyLock::new(|| identity(1, 11));
static BOB: LazyLock<NoiseIdentity> = LazyLock::new(|| identity(2, 22));

fn identity(seed: u8, static_seed: u8) -> NoiseIdentity {
    NoiseIdentity::from_static_secret(&KeyPair::from_seed([seed; 32]), [static_seed; 32])
}

async fn write_msg<S: AsyncWrite + Unpin>(s: &mut S, msg: &[u8]) {
    let mut out = (msg.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(msg);
    s.write_all(&out).await.expect("in-memory pipe");
}

async fn read_msg<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await?;
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut msg).await?;
    Ok(msg)
}

/// A proof as the real implementation builds it, but over an arbitrary static key.
fn proof_over(identity: &KeyPair, static_public: &[u8]) -> Vec<u8> {
    let mut m = IDENTITY_CONTEXT.to_vec();
    m.extend_from_slice(static_public);
    let mut proof = identity.public().0.to_vec();
    proof.extend_from_slice(&identity.sign(&m).0);
    proof
}

fn builder(static_secret: &[u8; 32]) -> snow::Builder<'_> {
    snow::Builder::new(NOISE_PARAMS.parse().expect("valid noise parameters"))
        .local_private_key(static_secret)
        .expect("valid noise parameters")
        .prologue(PROLOGUE)
        .expect("valid noise parameters")
}

/// A scripted responder that sends `proof` as message 2's payload. Returns what it read as
/// message 3 (if the initiator sent one).
async fn rogue_responder(mut s: DuplexStream, static_secret: [u8; 32], proof: Vec<u8>) {
    let mut hs = builder(&static_secret)
        .build_responder()
        .expect("scripted noise peer");
    let m1 = read_msg(&mut s).await.expect("in-memory pipe");
    let mut buf = vec![0u8; 65535];
    hs.read_message(&m1, &mut buf).expect("scripted noise peer");
    let n = hs
        .write_message(&proof, &mut buf)
        .expect("scripted noise peer");
    write_msg(&mut s, &buf[..n]).await;
    // The initiator must hang up instead of sending message 3.
    assert!(read_msg(&mut s).await.is_err(), "initiator sent message 3");
}

/// A scripted initiator that sends `proof` as message 3's payload.
async fn rogue_initiator(mut s: DuplexStream, static_secret: [u8; 32], proof: Vec<u8>) {
    let mut hs = builder(&static_secret)
        .build_initiator()
        .expect("scripted noise peer");
    let mut buf = vec![0u8; 65535];
    let n = hs
        .write_message(&[], &mut buf)
        .expect("scripted noise peer");
    write_msg(&mut s, &buf[..n]).await;
    let m2 = read_msg(&mut s).await.expect("in-memory pipe");
    hs.read_message(&m2, &mut buf).expect("scripted noise peer");
    let n = hs
        .write_message(&proof, &mut buf)
        .expect("scripted noise peer");
    write_msg(&mut s, &buf[..n]).await;
}

#[tokio::test]
async fn handshake_both_ways_each_side_learns_the_others_identity() {
    for initiator_first in [true, false] {
        let (a, b) = duplex(4096);
        let (ia, ib) = (identity(1, 11), identity(2, 22));
        let (ra, rb) = tokio::join!(
            handshake(a, &ia, initiator_first),
            handshake(b, &ib, !initiator_first)
        );
        let (sa, peer_of_a) = ra.unwrap();
        let (sb, peer_of_b) = rb.unwrap();
        assert_eq!(peer_of_a, ib.public_key());
        assert_eq!(peer_of_b, ia.public_key());
        assert_eq!(sa.remote_identity(), ib.public_key());
        assert_eq!(sb.remote_identity(), ia.public_key());
    }
}

#[tokio::test]
async fn random_static_keys_differ_and_still_handshake() {
    let k = KeyPair::from_seed([5; 32]);
    let (x, y) = (NoiseIdentity::new(&k), NoiseIdentity::new(&k));
    assert_ne!(x.static_public(), y.static_public());
    assert_eq!(x.public_key(), k.public());
    let (a, b) = duplex(4096);
    let (ra, rb) = tokio::join!(handshake(a, &x, true), handshake(b, &y, false));
    assert_eq!(ra.unwrap().1, k.public());
    assert_eq!(rb.unwrap().1, k.public());
}

/// Writes `data` in chunks of the given sizes (cycled) and shuts down.
async fn write_chunked<W: AsyncWrite + Unpin>(w: &mut W, data: &[u8], chunks: &[usize]) {
    let mut pos = 0;
    let mut i = 0;
    while pos < data.len() {
        let end = (pos + chunks[i % chunks.len()]).min(data.len());
        w.write_all(&data[pos..end]).await.expect("in-memory pipe");
        pos = end;
        i += 1;
    }
    w.shutdown().await.expect("in-memory pipe");
}

/// Reads until EOF with reads of the given sizes (cycled).
async fn read_chunked<R: AsyncRead + Unpin>(r: &mut R, reads: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let mut buf = vec![0u8; reads[i % reads.len()]];
        let n = r.read(&mut buf).await.expect("in-memory pipe");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
        i += 1;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// 0..300 KB each way at once, in random write and read sizes (many larger than one Noise
    /// message), through a small pipe: both sides receive exactly what the other sent.
    #[test]
    fn data_round_trips_exactly_in_any_chunking(
        len_ab in 0usize..300_000,
        len_ba in 0usize..300_000,
        writes in prop::collection::vec(1usize..150_000, 1..8),
        reads in prop::collection::vec(1usize..100_000, 1..8),
        pipe in 64usize..100_000,
        seed in any::<u8>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async move {
            let data_ab: Vec<u8> = (0..len_ab).map(|i| (i as u8).wrapping_mul(31) ^ seed).collect();
            let data_ba: Vec<u8> = (0..len_ba).map(|i| (i as u8).wrapping_mul(17) ^ seed).collect();
            let (a, b) = duplex(pipe);
            let (ia, ib) = (identity(1, 11), identity(2, 22));
            let (ra, rb) = tokio::join!(handshake(a, &ia, true), handshake(b, &ib, false));
            let (sa, _) = ra.unwrap();
            let (sb, _) = rb.unwrap();
            let (mut ra, mut wa) = tokio::io::split(sa);
            let (mut rb, mut wb) = tokio::io::split(sb);
            let (_, _, got_ab, got_ba) = tokio::join!(
                write_chunked(&mut wa, &data_ab, &writes),
                write_chunked(&mut wb, &data_ba, &writes),
                read_chunked(&mut rb, &reads),
                read_chunked(&mut ra, &reads),
            );
            assert!(got_ab == data_ab, "a -> b differs ({} vs {} bytes)", got_ab.len(), data_ab.len());
            assert!(got_ba == data_ba, "b -> a differs ({} vs {} bytes)", got_ba.len(), data_ba.len());
        });
    }
}

#[tokio::test]
async fn frames_larger_than_one_noise_message_pass_through_the_frame_codec() {
    let (a, b) = duplex(8192);
    let (ia, ib) = (identity(1, 11), identity(2, 22));
    let (ra, rb) = tokio::join!(handshake(a, &ia, true), handshake(b, &ib, false));
    let (_ra, wa) = tokio::io::split(ra.unwrap().0);
    let (rb, _wb) = tokio::io::split(rb.unwrap().0);
    let mut writer = FramedWrite::new(wa, MessageCodec::new(DEFAULT_MAX_FRAME_BYTES));
    let mut reader = FramedRead::new(rb, MessageCodec::new(DEFAULT_MAX_FRAME_BYTES));
    let msgs: Vec<Message> = [10usize, 70_000, 3, 250_000, 65_515]
        .iter()
        .map(|&n| Message::Error {
            request_id: Some(n as u64),
            code: "internal".into(),
            message: "x".repeat(n),
        })
        .collect();
    let send = async {
        for m in &msgs {
            writer.send(m).await.unwrap();
        }
    };
    let recv = async {
        let mut got = Vec::new();
        for _ in 0..msgs.len() {
            got.push(reader.next().await.unwrap().unwrap());
        }
        got
    };
    let ((), got) = tokio::join!(send, recv);
    assert_eq!(got, msgs);
}

#[tokio::test]
async fn a_responder_proof_signed_over_another_static_key_is_rejected() {
    let (a, b) = duplex(4096);
    let rogue_key = KeyPair::from_seed([9; 32]);
    let other_static = identity(9, 99).static_public();
    let proof = proof_over(&rogue_key, &other_static);
    let (r, ()) = tokio::join!(
        handshake(a, &ALICE, true),
        rogue_responder(b, [33; 32], proof)
    );
    assert!(
        matches!(r, Err(NetError::BadIdentityProof { .. })),
        "{:?}",
        r.map(|x| x.1)
    );
}

#[tokio::test]
async fn an_initiator_proof_signed_over_another_static_key_is_rejected() {
    let (a, b) = duplex(4096);
    let rogue_key = KeyPair::from_seed([9; 32]);
    let proof = proof_over(&rogue_key, &identity(9, 99).static_public());
    let (r, ()) = tokio::join!(
        handshake(b, &BOB, false),
        rogue_initiator(a, [33; 32], proof)
    );
    assert!(matches!(r, Err(NetError::BadIdentityProof { .. })));
}

#[tokio::test]
async fn the_right_proof_from_a_scripted_peer_is_accepted() {
    // Control for the two tests above: the rogue peers' mechanics are sound.
    let (a, b) = duplex(4096);
    let key = KeyPair::from_seed([9; 32]);
    let static_secret = [33u8; 32];
    let static_public = NoiseIdentity::from_static_secret(&key, static_secret).static_public();
    let proof = proof_over(&key, &static_public);
    let (r, ()) = tokio::join!(
        handshake(b, &BOB, false),
        rogue_initiator(a, static_secret, proof)
    );
    assert_eq!(r.unwrap().1, key.public());
}

#[tokio::test]
async fn wrong_length_proofs_are_rejected_both_ways() {
    let key = KeyPair::from_seed([9; 32]);
    let static_secret = [33u8; 32];
    let static_public = NoiseIdentity::from_static_secret(&key, static_secret).static_public();
    let good = proof_over(&key, &static_public);
    let mut long = good.clone();
    long.push(0);
    for proof in [Vec::new(), good[..95].to_vec(), long, good[..32].to_vec()] {
        let (a, b) = duplex(4096);
        let (r, ()) = tokio::join!(
            handshake(a, &ALICE, true),
            rogue_responder(b, static_secret, proof.clone())
        );
        assert!(
            matches!(r, Err(NetError::BadIdentityProof { .. })),
            "{} bytes",
            proof.len()
        );
        let (a, b) = duplex(4096);
        let (r, ()) = tokio::join!(
            handshake(b, &BOB, false),
            rogue_initiator(a, static_secret, proof.clone())
        );
        assert!(matches!(r, Err(NetError::BadIdentityProof { .. })));
    }
}

/// Feeds `bytes` to a responder (then closes) and returns its result.
async fn responder_fed(bytes: &[u8]) -> Result<PublicKey, NetError> {
    let (a, mut b) = duplex(1 << 17);
    b.write_all(bytes).await.expect("in-memory pipe");
    b.shutdown().await.expect("in-memory pipe");
    let r = handshake(a, &BOB, false).await.map(|x| x.1);
    drop(b);
    r
}

#[tokio::test]
async fn garbage_instead_of_message_1_fails_the_handshake() {
    let garbage = vec![
        // Too short to hold an ephemeral key.
        [&[0u8, 16][..], &[0xab; 16]].concat(),
        // 200 bytes: a key followed by a payload, which message 1 must not have.
        [&[0u8, 200][..], &[0x5a; 200]].concat(),
        // Length 0.
        vec![0, 0, 1, 2, 3],
    ];
    for g in garbage {
        let r = responder_fed(&g).await;
        assert!(
            matches!(r, Err(NetError::HandshakeFailed { .. })),
            "{g:?}: {r:?}"
        );
    }
    // Cut off before the announced length, or nothing at all: the peer went away, which proves
    // nothing against it (an I/O error, not a failed handshake).
    for g in [vec![0, 32, 1, 2, 3], Vec::new()] {
        let r = responder_fed(&g).await;
        assert!(
            matches!(&r, Err(NetError::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof),
            "{g:?}: {r:?}"
        );
    }
}

#[tokio::test]
async fn a_plaintext_peer_sending_hello_fails_the_handshake() {
    let payload = pp_net::encode_message(
        &Message::Hello(pp_net::Hello {
            protocol_version: 1,
            genesis_hash: pp_ledger::Hash::ZERO,
            node_id: "old".into(),
            listen_port: 9000,
            tip_index: 0,
            tip_hash: pp_ledger::Hash::ZERO,
            headers_only: false,
        }),
        DEFAULT_MAX_FRAME_BYTES,
    )
    .unwrap();
    // A version-1 frame: 4-byte big-endian length, then the JSON.
    let hello = [&(payload.len() as u32).to_be_bytes()[..], &payload].concat();
    // The old dialer: its hello arrives where message 1 is expected.
    let r = responder_fed(&hello).await;
    assert!(matches!(r, Err(NetError::HandshakeFailed { .. })), "{r:?}");

    // The old acceptor: it reads our message 1 as a frame header and answers with a frame.
    let (a, mut b) = duplex(1 << 16);
    let old = async move {
        let mut head = [0u8; 4];
        b.read_exact(&mut head).await.unwrap();
        b.write_all(&hello).await.unwrap();
        b
    };
    let (r, _b) = tokio::join!(handshake(a, &ALICE, true), old);
    assert!(
        matches!(r, Err(NetError::HandshakeFailed { .. })),
        "{:?}",
        r.map(|x| x.1)
    );
}

/// Forwards Noise messages from `from` to `to`, flipping bit 0 of byte `byte` of message
/// number `target` (0-based, counting handshake messages too).
async fn tampering_relay<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut from: R,
    mut to: W,
    target: usize,
    byte: usize,
) {
    let mut i = 0;
    while let Ok(mut msg) = read_msg(&mut from).await {
        if i == target {
            msg[byte] ^= 1;
        }
        write_msg(&mut to, &msg).await;
        i += 1;
    }
    let _ = to.shutdown().await;
}

/// Two ends connected through a relay: initiator -> responder traffic goes through
/// `tampering_relay(.., target, byte)`, the other direction is copied unchanged.
fn tampered_pipe(target: usize, byte: usize) -> (DuplexStream, DuplexStream) {
    let (a, a_far) = duplex(1 << 17);
    let (b_far, b) = duplex(1 << 17);
    let (a_far_r, mut a_far_w) = tokio::io::split(a_far);
    let (mut b_far_r, b_far_w) = tokio::io::split(b_far);
    tokio::spawn(tampering_relay(a_far_r, b_far_w, target, byte));
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut b_far_r, &mut a_far_w).await;
        let _ = a_far_w.shutdown().await;
    });
    (a, b)
}

#[tokio::test]
async fn a_tampered_transport_message_fails_the_read_and_all_later_reads() {
    // Initiator -> responder messages: 0 = message 1, 1 = message 3, 2.. = transport. Tamper with
    // the second transport message (3): its ciphertext (bytes 0, 1000) or its tag (1215).
    for byte in [0usize, 1000, 1215] {
        let (a, b) = tampered_pipe(3, byte);
        let (ia, ib) = (identity(1, 11), identity(2, 22));
        let (ra, rb) = tokio::join!(handshake(a, &ia, true), handshake(b, &ib, false));
        let (mut sa, _) = ra.unwrap();
        let (mut sb, _) = rb.unwrap();
        let first = vec![1u8; 1200];
        let second = vec![2u8; 1200];
        sa.write_all(&first).await.unwrap();
        sa.flush().await.unwrap();
        sa.write_all(&second).await.unwrap();
        sa.flush().await.unwrap();

        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let err = loop {
            match sb.read(&mut buf).await {
                Ok(0) => panic!("EOF instead of an error"),
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) => break e,
            }
        };
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(
            got, first,
            "only the untampered message's plaintext is returned"
        );
        // Later messages are intact, but the stream never resumes after a failed decryption.
        sa.write_all(&[3u8; 100]).await.unwrap();
        sa.flush().await.unwrap();
        for _ in 0..3 {
            assert_eq!(
                sb.read(&mut buf).await.unwrap_err().kind(),
                std::io::ErrorKind::InvalidData
            );
        }
    }
}

#[tokio::test]
async fn a_tampered_handshake_message_fails_the_handshake() {
    // Flip a byte of message 3 (the initiator's second message): the responder fails.
    let (a, b) = tampered_pipe(1, 100);
    let (ia, ib) = (identity(1, 11), identity(2, 22));
    let (_ra, rb) = tokio::join!(handshake(a, &ia, true), handshake(b, &ib, false));
    assert!(matches!(rb, Err(NetError::HandshakeFailed { .. })));
}

#[test]
fn plaintext_chunk_leaves_room_for_the_tag() {
    assert_eq!(MAX_PLAINTEXT_CHUNK + 16, 65_535);
}
