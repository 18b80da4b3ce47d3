//! Hostile peers for sync scenarios: a host that speaks the real protocol (Noise handshake,
//! `hello`, JSON frames) but lies about its chain. It is not a node of the [`Cluster`]: the
//! invariants and the convergence checks ignore it.

use std::sync::Arc;

use futures::{SinkExt as _, StreamExt as _};
use pp_ledger::{Hash, KeyPair, SignedHeader};
use pp_net::codec::MessageCodec;
use pp_net::{noise, Hello, Message, NoiseIdentity, DEFAULT_MAX_FRAME_BYTES, PROTOCOL_VERSION};
use tokio_util::codec::Framed;

use crate::cluster::{Cluster, P2P_PORT};

/// How a liar lies.
#[derive(Debug, Clone)]
pub enum Liar {
    /// Claims a best block at index 2^64 − 1 in `hello`, and never answers `get_headers` or
    /// `get_blocks` (it answers pings, so it looks alive).
    HugeTip,
    /// Claims the tip of `headers` (a real chain from genesis) and answers `get_headers` from
    /// it, but never answers `get_blocks`.
    Withholder(Vec<SignedHeader>),
}

impl Liar {
    fn tip(&self) -> (u64, Hash) {
        match self {
            Liar::HugeTip => (u64::MAX, Hash::blake2b_parts(&[b"pp-sim/liar-tip"])),
            Liar::Withholder(h) => h
                .last()
                .map_or((0, Hash::ZERO), |h| (h.header.index, h.hash())),
        }
    }

    /// The answer to `get_headers`, if this liar answers at all: the headers after the first
    /// locator hash it holds (genesis is `headers[0].prev_hash`).
    fn headers_after(&self, locator: &[Hash], count: u32) -> Option<Vec<SignedHeader>> {
        let Liar::Withholder(hs) = self else {
            return None;
        };
        let start = locator.iter().find_map(|l| {
            if hs.first().is_some_and(|h| h.header.prev_hash == *l) {
                return Some(0);
            }
            hs.iter().position(|h| h.hash() == *l).map(|i| i + 1)
        })?;
        Some(
            hs.iter()
                .skip(start)
                .take(count.min(2_000) as usize)
                .cloned()
                .collect(),
        )
    }
}

impl Cluster {
    /// Adds a host `name` that listens on the P2P port and lies as `liar` to every node that
    /// dials it (see [`Cluster::add_newcomer_dialing`]).
    pub fn add_liar(&mut self, name: &str, liar: Liar) {
        let genesis_hash = self.genesis().hash();
        let key = KeyPair::from_seed(Hash::blake2b_parts(&[b"pp-sim/liar", name.as_bytes()]).0);
        let identity = Arc::new(NoiseIdentity::new(&key));
        let liar = Arc::new(liar);
        let label = name.to_string();
        self.sim().host(name, move || {
            let (identity, liar, label) = (identity.clone(), liar.clone(), label.clone());
            async move {
                let listener = turmoil::net::TcpListener::bind(("0.0.0.0", P2P_PORT)).await?;
                loop {
                    let (stream, _) = listener.accept().await?;
                    let (identity, liar, label) = (identity.clone(), liar.clone(), label.clone());
                    tokio::spawn(async move {
                        let _ = lie(stream, &identity, &liar, &label, genesis_hash).await;
                    });
                }
            }
        });
    }
}

/// One connection of a liar: handshake, `hello` with the lie, then answers only what the lie
/// allows, until the peer closes.
async fn lie(
    stream: turmoil::net::TcpStream,
    identity: &NoiseIdentity,
    liar: &Liar,
    label: &str,
    genesis_hash: Hash,
) -> Result<(), pp_net::NetError> {
    let (stream, _) = noise::handshake(stream, identity, false).await?;
    let mut framed = Framed::new(stream, MessageCodec::new(DEFAULT_MAX_FRAME_BYTES));
    let (tip_index, tip_hash) = liar.tip();
    framed
        .send(Message::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            genesis_hash,
            node_id: label.to_string(),
            listen_port: P2P_PORT,
            tip_index,
            tip_hash,
            headers_only: false,
        }))
        .await?;
    while let Some(msg) = framed.next().await {
        let answer = match msg? {
            Message::Ping { request_id } => Message::Pong { request_id },
            Message::GetPeers { request_id } => Message::Peers {
                request_id,
                peers: Vec::new(),
            },
            Message::GetHeaders {
                request_id,
                locator,
                count,
            } => match liar.headers_after(&locator, count) {
                Some(headers) => Message::Headers {
                    request_id,
                    headers,
                },
                None => continue,
            },
            _ => continue,
        };
        framed.send(answer).await?;
    }
    Ok(())
}
