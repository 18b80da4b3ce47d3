//! The Noise test vector in docs/protocol.md ("Encrypted transport (Noise)") is normative: this
//! implementation must reproduce every documented message byte for byte from the documented
//! inputs, and accept the documented messages from the other side.
//!
//! To regenerate the vector after a deliberate change of the wire format:
//! `cargo test -p pp-net --test noise_vector -- --ignored --nocapture print_vector`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use pp_ledger::{Hash, KeyPair};
use pp_net::noise::{handshake_with_ephemeral, NoiseIdentity};
use pp_net::{encode_message, Hello, Message, MessageCodec, DEFAULT_MAX_FRAME_BYTES};
use tokio::io::{duplex, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::FramedRead;

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/protocol.md");
    std::fs::read_to_string(path).expect("docs/protocol.md exists")
}

/// The `name: hex` entries of the ```noise-vector block; a value may continue on following
/// indented lines.
fn vector(doc: &str) -> BTreeMap<String, Vec<u8>> {
    let mut lines = doc.lines().skip_while(|l| l.trim() != "```noise-vector");
    assert!(lines.next().is_some(), "no ```noise-vector block");
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut current = None;
    for line in lines {
        if line.trim() == "```" {
            return out
                .into_iter()
                .map(|(k, v)| {
                    let bytes = hex::decode(&v).unwrap_or_else(|e| panic!("{k}: {e}"));
                    (k, bytes)
                })
                .collect();
        }
        if line.starts_with(char::is_whitespace) {
            let key: &String = current.as_ref().expect("continuation after a key");
            out.get_mut(key)
                .expect("key inserted above")
                .push_str(line.trim());
        } else {
            let (k, v) = line.split_once(':').expect("name: hex");
            current = Some(k.trim().to_string());
            assert!(
                out.insert(k.trim().to_string(), v.trim().to_string())
                    .is_none(),
                "duplicate {k}"
            );
        }
    }
    panic!("unterminated ```noise-vector block");
}

fn b32(v: &BTreeMap<String, Vec<u8>>, k: &str) -> [u8; 32] {
    v.get(k)
        .unwrap_or_else(|| panic!("missing {k}"))
        .as_slice()
        .try_into()
        .unwrap_or_else(|_| panic!("{k} is not 32 bytes"))
}

fn get<'a>(v: &'a BTreeMap<String, Vec<u8>>, k: &str) -> &'a [u8] {
    v.get(k).unwrap_or_else(|| panic!("missing {k}"))
}

/// The inputs of the vector (the values printed by `print_vector`).
struct Inputs {
    initiator_identity_seed: [u8; 32],
    initiator_static_secret: [u8; 32],
    initiator_ephemeral_secret: [u8; 32],
    responder_identity_seed: [u8; 32],
    responder_static_secret: [u8; 32],
    responder_ephemeral_secret: [u8; 32],
}

fn seq(start: u8) -> [u8; 32] {
    std::array::from_fn(|i| start + i as u8)
}

/// The inputs chosen for the documented vector: 00..1f, 20..3f, ... as byte sequences.
fn chosen_inputs() -> Inputs {
    Inputs {
        initiator_identity_seed: seq(0x00),
        responder_identity_seed: seq(0x20),
        initiator_static_secret: seq(0x40),
        responder_static_secret: seq(0x60),
        initiator_ephemeral_secret: seq(0x80),
        responder_ephemeral_secret: seq(0xa0),
    }
}

fn doc_inputs(v: &BTreeMap<String, Vec<u8>>) -> Inputs {
    Inputs {
        initiator_identity_seed: b32(v, "initiator_identity_seed"),
        initiator_static_secret: b32(v, "initiator_static_secret"),
        initiator_ephemeral_secret: b32(v, "initiator_ephemeral_secret"),
        responder_identity_seed: b32(v, "responder_identity_seed"),
        responder_static_secret: b32(v, "responder_static_secret"),
        responder_ephemeral_secret: b32(v, "responder_ephemeral_secret"),
    }
}

fn identities(i: &Inputs) -> (NoiseIdentity, NoiseIdentity) {
    (
        NoiseIdentity::from_static_secret(
            &KeyPair::from_seed(i.initiator_identity_seed),
            i.initiator_static_secret,
        ),
        NoiseIdentity::from_static_secret(
            &KeyPair::from_seed(i.responder_identity_seed),
            i.responder_static_secret,
        ),
    )
}

const HELLO_JSON: &str = concat!(
    r#"{"type":"hello","protocol_version":2,"#,
    r#""genesis_hash":"0000000000000000000000000000000000000000000000000000000000000000","#,
    r#""node_id":"initiator","listen_port":9000,"tip_index":0,"#,
    r#""tip_hash":"0000000000000000000000000000000000000000000000000000000000000000"}"#
);

/// The initiator's `hello` frame (4-byte length + JSON) that the first transport message carries.
fn hello_frame() -> Vec<u8> {
    let json = encode_message(
        &Message::Hello(Hello {
            protocol_version: 2,
            genesis_hash: Hash::ZERO,
            node_id: "initiator".into(),
            listen_port: 9000,
            tip_index: 0,
            tip_hash: Hash::ZERO,
            headers_only: false,
        }),
        DEFAULT_MAX_FRAME_BYTES,
    )
    .expect("encodes");
    assert_eq!(&json[..], HELLO_JSON.as_bytes(), "serde field order");
    [&(json.len() as u32).to_be_bytes()[..], &json].concat()
}

async fn read_msg<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await?;
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut msg).await?;
    Ok([&len[..], &msg].concat())
}

/// Forwards whole messages (with their prefixes), recording each.
async fn recording_relay<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut from: R,
    mut to: W,
    log: Arc<Mutex<Vec<Vec<u8>>>>,
) {
    while let Ok(m) = read_msg(&mut from).await {
        log.lock().expect("lock not poisoned").push(m.clone());
        if to.write_all(&m).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}

/// Runs both sides of this implementation against each other through recording relays and
/// returns (message 1, message 2, message 3, first transport message), each with its prefix.
async fn live_transcript(i: &Inputs) -> [Vec<u8>; 4] {
    let (ini, res) = identities(i);
    let (a, a_far) = duplex(1 << 16);
    let (b_far, b) = duplex(1 << 16);
    let (a_far_r, a_far_w) = tokio::io::split(a_far);
    let (b_far_r, b_far_w) = tokio::io::split(b_far);
    let forward = Arc::new(Mutex::new(Vec::new()));
    let backward = Arc::new(Mutex::new(Vec::new()));
    let f = tokio::spawn(recording_relay(a_far_r, b_far_w, forward.clone()));
    let g = tokio::spawn(recording_relay(b_far_r, a_far_w, backward.clone()));
    let (ra, rb) = tokio::join!(
        handshake_with_ephemeral(a, &ini, true, Some(i.initiator_ephemeral_secret)),
        handshake_with_ephemeral(b, &res, false, Some(i.responder_ephemeral_secret)),
    );
    let (mut sa, peer_of_a) = ra.expect("handshake");
    let (sb, peer_of_b) = rb.expect("handshake");
    assert_eq!(peer_of_a, res.public_key());
    assert_eq!(peer_of_b, ini.public_key());
    // The whole frame in one write: one transport message.
    sa.write_all(&hello_frame()).await.expect("in-memory pipe");
    sa.flush().await.expect("in-memory pipe");
    let mut frames = FramedRead::new(sb, MessageCodec::new(DEFAULT_MAX_FRAME_BYTES));
    assert!(matches!(
        frames.next().await.expect("a frame").expect("decodes"),
        Message::Hello(_)
    ));
    sa.shutdown().await.expect("in-memory pipe");
    drop(sa);
    drop(frames);
    f.await.expect("relay task");
    g.await.expect("relay task");
    let fw = forward.lock().expect("lock not poisoned").clone();
    let bw = backward.lock().expect("lock not poisoned").clone();
    assert_eq!(fw.len(), 3, "message 1, message 3, one transport message");
    assert_eq!(bw.len(), 1, "message 2");
    [fw[0].clone(), bw[0].clone(), fw[1].clone(), fw[2].clone()]
}

fn wrap(hex: &str) -> String {
    hex.as_bytes()
        .chunks(64)
        .map(|c| format!("  {}", std::str::from_utf8(c).expect("hex is ASCII")))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
#[ignore = "prints the vector block for docs/protocol.md"]
async fn print_vector() {
    let i = chosen_inputs();
    let (ini, res) = identities(&i);
    let [m1, m2, m3, t1] = live_transcript(&i).await;
    let mut out = String::from("```noise-vector\n");
    for (k, v) in [
        ("initiator_identity_seed", &i.initiator_identity_seed[..]),
        ("initiator_static_secret", &i.initiator_static_secret),
        ("initiator_ephemeral_secret", &i.initiator_ephemeral_secret),
        ("responder_identity_seed", &i.responder_identity_seed),
        ("responder_static_secret", &i.responder_static_secret),
        ("responder_ephemeral_secret", &i.responder_ephemeral_secret),
        ("initiator_identity_public", &ini.public_key().0),
        ("initiator_static_public", &ini.static_public()),
        ("responder_identity_public", &res.public_key().0),
        ("responder_static_public", &res.static_public()),
    ] {
        out.push_str(&format!("{k}: {}\n", hex::encode(v)));
    }
    for (k, v) in [
        ("message_1", &m1),
        ("message_2", &m2),
        ("message_3", &m3),
        ("transport_1", &t1),
    ] {
        out.push_str(&format!("{k}:\n{}\n", wrap(&hex::encode(v))));
    }
    out.push_str("```\n");
    let frame = hello_frame();
    let prefix: Vec<String> = frame[..4].iter().map(|b| format!("{b:02x}")).collect();
    println!(
        "```frame\n{}\n{}\n```\n\n{out}",
        prefix.join(" "),
        std::str::from_utf8(&frame[4..]).unwrap()
    );
}

#[test]
fn the_documented_keys_follow_from_the_documented_secrets() {
    let v = vector(&doc());
    let (ini, res) = identities(&doc_inputs(&v));
    assert_eq!(get(&v, "initiator_identity_public"), ini.public_key().0);
    assert_eq!(get(&v, "initiator_static_public"), ini.static_public());
    assert_eq!(get(&v, "responder_identity_public"), res.public_key().0);
    assert_eq!(get(&v, "responder_static_public"), res.static_public());
}

#[test]
fn the_documented_hello_frame_is_the_plaintext_of_transport_1() {
    let doc = doc();
    let frame = hello_frame();
    assert!(
        doc.contains(&format!("\n{HELLO_JSON}\n```\n\n```noise-vector")),
        "the hello frame right before the vector block"
    );
    assert_eq!(frame.len(), 4 + HELLO_JSON.len());
}

#[tokio::test]
async fn this_implementation_reproduces_the_vector_byte_for_byte() {
    let v = vector(&doc());
    let [m1, m2, m3, t1] = live_transcript(&doc_inputs(&v)).await;
    assert_eq!(
        hex::encode(m1),
        hex::encode(get(&v, "message_1")),
        "message 1"
    );
    assert_eq!(
        hex::encode(m2),
        hex::encode(get(&v, "message_2")),
        "message 2"
    );
    assert_eq!(
        hex::encode(m3),
        hex::encode(get(&v, "message_3")),
        "message 3"
    );
    assert_eq!(
        hex::encode(t1),
        hex::encode(get(&v, "transport_1")),
        "transport 1"
    );
}

/// A responder fed the documented initiator messages answers with exactly the documented
/// message 2, accepts message 3 and decrypts the documented `hello`.
#[tokio::test]
async fn a_responder_accepts_the_documented_initiator_messages() {
    let v = vector(&doc());
    let inputs = doc_inputs(&v);
    let (_, res) = identities(&inputs);
    let (ours, mut peer) = duplex(1 << 16);
    let script = async {
        peer.write_all(get(&v, "message_1")).await.unwrap();
        let m2 = read_msg(&mut peer).await.unwrap();
        assert_eq!(hex::encode(m2), hex::encode(get(&v, "message_2")));
        peer.write_all(get(&v, "message_3")).await.unwrap();
        peer.write_all(get(&v, "transport_1")).await.unwrap();
        peer
    };
    let (r, _peer) = tokio::join!(
        handshake_with_ephemeral(ours, &res, false, Some(inputs.responder_ephemeral_secret)),
        script
    );
    let (stream, initiator) = r.unwrap();
    assert_eq!(initiator.0, get(&v, "initiator_identity_public"));
    let mut frames = FramedRead::new(stream, MessageCodec::new(DEFAULT_MAX_FRAME_BYTES));
    let hello = frames.next().await.unwrap().unwrap();
    assert_eq!(
        serde_json::to_string(&hello).unwrap(),
        HELLO_JSON,
        "decrypted hello"
    );
}

/// An initiator fed the documented message 2 accepts it and sends exactly the documented
/// messages 1 and 3 and transport message.
#[tokio::test]
async fn an_initiator_accepts_the_documented_responder_message() {
    let v = vector(&doc());
    let inputs = doc_inputs(&v);
    let (ini, _) = identities(&inputs);
    let (ours, mut peer) = duplex(1 << 16);
    let script = async {
        let m1 = read_msg(&mut peer).await.unwrap();
        assert_eq!(hex::encode(m1), hex::encode(get(&v, "message_1")));
        peer.write_all(get(&v, "message_2")).await.unwrap();
        let m3 = read_msg(&mut peer).await.unwrap();
        assert_eq!(hex::encode(m3), hex::encode(get(&v, "message_3")));
        peer
    };
    let (r, mut peer) = tokio::join!(
        handshake_with_ephemeral(ours, &ini, true, Some(inputs.initiator_ephemeral_secret)),
        script
    );
    let (mut stream, responder) = r.unwrap();
    assert_eq!(responder.0, get(&v, "responder_identity_public"));
    stream.write_all(&hello_frame()).await.unwrap();
    stream.flush().await.unwrap();
    let t1 = read_msg(&mut peer).await.unwrap();
    assert_eq!(hex::encode(t1), hex::encode(get(&v, "transport_1")));
}
