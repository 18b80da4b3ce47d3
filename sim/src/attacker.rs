//! An eclipse attacker: many hosts of ONE address group (a public IPv4 /16) that speak the real
//! protocol (Noise handshake, `hello`, JSON frames over turmoil TCP), flood every `get_peers`
//! with [`MAX_PEERS_ACCEPTED`] addresses of their group, hold tarpits that accept connections and
//! never answer, and dial their targets over and over, each time claiming another listen port.
//!
//! turmoil gives a host the IP it is named by, so the attacker's hosts are named by public
//! addresses (`44.7.0.1`, …) while the honest nodes keep turmoil's 192.168.x.y (a private range,
//! so each honest node is its own group, as pp-net's admission defines groups). Addresses of the
//! /16 that no host holds are refused at once by turmoil (a dead address), those of a tarpit hang
//! until the dialer's timeout, those of a responder answer like a peer. None of these hosts is a
//! node of the [`Cluster`]: the invariants ignore them.
//!
//! [`MAX_PEERS_ACCEPTED`]: pp_net::message::MAX_PEERS_ACCEPTED

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use pp_ledger::{Hash, KeyPair};
use pp_net::codec::MessageCodec;
use pp_net::message::MAX_PEERS_ACCEPTED;
use pp_net::{noise, Hello, Message, NoiseIdentity, DEFAULT_MAX_FRAME_BYTES, PROTOCOL_VERSION};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::io::AsyncReadExt as _;
use tokio_util::codec::Framed;

use crate::cluster::{Cluster, P2P_PORT};

/// The shape of an eclipse attack.
#[derive(Debug, Clone)]
pub struct Attacker {
    /// The attacker's /16: every host and every address it announces is in it.
    pub prefix: [u8; 2],
    /// Hosts that speak the protocol, at `prefix.0.1`, `prefix.0.2`, …
    pub responders: u8,
    /// Hosts that accept TCP and never answer, at `prefix.1.1`, `prefix.1.2`, …
    pub tarpits: u8,
    /// Ports each host listens on: [`P2P_PORT`] and the next `ports - 1`.
    pub ports: u16,
    /// Hosts (names) every responder dials over and over.
    pub targets: Vec<String>,
    /// Pause between two dials of one responder (it cycles through `targets`).
    pub dial_every: Duration,
    /// How long a connection the attacker opened is kept before it is dropped.
    pub hold: Duration,
    /// Seeds the addresses announced.
    pub seed: u64,
}

impl Attacker {
    /// Four responders and two tarpits in 44.7.0.0/16, eight ports each, dialing `targets` every
    /// 250 ms (each responder) and holding each connection 5 s.
    pub fn new(seed: u64, targets: Vec<String>) -> Attacker {
        Attacker {
            prefix: [44, 7],
            responders: 4,
            tarpits: 2,
            ports: 8,
            targets,
            dial_every: Duration::from_millis(250),
            hold: Duration::from_secs(5),
            seed,
        }
    }

    /// The IP of responder `i` (0-based).
    pub fn responder_ip(&self, i: u8) -> Ipv4Addr {
        Ipv4Addr::new(self.prefix[0], self.prefix[1], 0, i + 1)
    }

    /// The IP of tarpit `i` (0-based).
    pub fn tarpit_ip(&self, i: u8) -> Ipv4Addr {
        Ipv4Addr::new(self.prefix[0], self.prefix[1], 1, i + 1)
    }

    /// The identity of the "node" at `ip:port`: one key per address (keys cost the attacker
    /// nothing), so that the victim sees as many nodes as addresses, and a feeler to a port the
    /// attacker claimed on a visit meets the key of that visit.
    fn identity(&self, ip: Ipv4Addr, port: u16) -> NoiseIdentity {
        let key = KeyPair::from_seed(
            Hash::blake2b_parts(&[
                b"pp-sim/attacker",
                &ip.octets(),
                &port.to_be_bytes(),
                &self.seed.to_be_bytes(),
            ])
            .0,
        );
        NoiseIdentity::new(&key)
    }

    /// True if `ip` is in the attacker's /16 (its one address group).
    pub fn owns(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(v4) => v4.octets()[..2] == self.prefix,
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .is_some_and(|v4| v4.octets()[..2] == self.prefix),
        }
    }

    /// One flood: [`MAX_PEERS_ACCEPTED`] addresses of the /16, a quarter on responders, a quarter
    /// on tarpits, half on addresses no host holds (thousands of distinct addresses over a run).
    fn flood(&self, rng: &mut StdRng) -> Vec<String> {
        (0..MAX_PEERS_ACCEPTED)
            .map(|_| {
                let port = P2P_PORT + rng.random_range(0..self.ports.max(1));
                let ip = match rng.random_range(0..4u8) {
                    0 if self.responders > 0 => {
                        self.responder_ip(rng.random_range(0..self.responders))
                    }
                    1 if self.tarpits > 0 => self.tarpit_ip(rng.random_range(0..self.tarpits)),
                    _ => Ipv4Addr::new(
                        self.prefix[0],
                        self.prefix[1],
                        rng.random_range(2..=255),
                        rng.random_range(1..=254),
                    ),
                };
                SocketAddr::from((ip, port)).to_string()
            })
            .collect()
    }
}

/// What the attacker did, counted across its hosts.
#[derive(Debug, Default)]
pub struct AttackStats {
    /// `peers` answers sent (each [`MAX_PEERS_ACCEPTED`] addresses).
    pub floods: AtomicU64,
    /// Connections the attacker dialed that completed the handshake and `hello`.
    pub dials_admitted: AtomicU64,
    /// Connections the attacker dialed that failed or were refused.
    pub dials_refused: AtomicU64,
    /// Connections accepted by a responder (the victim or an honest node dialed the attacker).
    pub accepted: AtomicU64,
    /// Connections accepted by a tarpit.
    pub tarpitted: AtomicU64,
}

impl Cluster {
    /// Adds the attacker's hosts (see the module docs). Returns its counters.
    pub fn add_attacker(&mut self, attacker: Attacker) -> Arc<AttackStats> {
        let genesis_hash = self.genesis().hash();
        let attacker = Arc::new(attacker);
        let stats = Arc::new(AttackStats::default());
        for i in 0..attacker.responders {
            let ip = attacker.responder_ip(i);
            let (attacker, stats) = (attacker.clone(), stats.clone());
            self.sim().host(IpAddr::V4(ip), move || {
                let (attacker, stats) = (attacker.clone(), stats.clone());
                async move {
                    responder(ip, i, attacker, stats, genesis_hash).await;
                    Ok(())
                }
            });
        }
        for i in 0..attacker.tarpits {
            let ip = attacker.tarpit_ip(i);
            let (attacker, stats) = (attacker.clone(), stats.clone());
            self.sim().host(IpAddr::V4(ip), move || {
                let (attacker, stats) = (attacker.clone(), stats.clone());
                async move {
                    tarpit(&attacker, stats).await?;
                    Ok(())
                }
            });
        }
        stats
    }
}

/// A responder host: serves every port and dials its targets in turn, forever.
async fn responder(
    ip: Ipv4Addr,
    index: u8,
    attacker: Arc<Attacker>,
    stats: Arc<AttackStats>,
    genesis_hash: Hash,
) {
    let conn_seq = Arc::new(AtomicU64::new(0));
    let rng_for = {
        let (attacker, conn_seq) = (attacker.clone(), conn_seq.clone());
        move || {
            let n = conn_seq.fetch_add(1, Ordering::Relaxed);
            StdRng::seed_from_u64(
                attacker.seed ^ (u64::from(u32::from(ip)) << 20) ^ n.wrapping_mul(0x9e37_79b9),
            )
        }
    };
    for p in 0..attacker.ports.max(1) {
        let port = P2P_PORT + p;
        let Ok(listener) = turmoil::net::TcpListener::bind(("0.0.0.0", port)).await else {
            continue;
        };
        let (attacker, stats, rng_for) = (attacker.clone(), stats.clone(), rng_for.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                stats.accepted.fetch_add(1, Ordering::Relaxed);
                let (attacker, stats) = (attacker.clone(), stats.clone());
                let mut rng = rng_for();
                tokio::spawn(async move {
                    let _ = serve(
                        stream,
                        false,
                        ip,
                        port,
                        &attacker,
                        &stats,
                        &mut rng,
                        genesis_hash,
                    )
                    .await;
                });
            }
        });
    }
    // The dialer: one target after another, each connection held for `hold`.
    let mut turn = usize::from(index);
    loop {
        tokio::time::sleep(attacker.dial_every).await;
        if attacker.targets.is_empty() {
            continue;
        }
        let target = attacker.targets[turn % attacker.targets.len()].clone();
        turn += 1;
        let (attacker, stats) = (attacker.clone(), stats.clone());
        let mut rng = rng_for();
        tokio::spawn(async move {
            let addr = format!("{}:{P2P_PORT}", turmoil::lookup(target.as_str()));
            let Ok(stream) = turmoil::net::TcpStream::connect(addr.as_str()).await else {
                stats.dials_refused.fetch_add(1, Ordering::Relaxed);
                return;
            };
            // Each visit claims another of the ports the host serves.
            let claimed = P2P_PORT + rng.random_range(0..attacker.ports.max(1));
            let hold = attacker.hold;
            let _ = tokio::time::timeout(
                hold,
                serve(
                    stream,
                    true,
                    ip,
                    claimed,
                    &attacker,
                    &stats,
                    &mut rng,
                    genesis_hash,
                ),
            )
            .await;
        });
    }
}

/// One connection of a responder: handshake, `hello` (a node at genesis listening on
/// `listen_port`), then pongs, empty `headers` and a full flood for every `get_peers`.
#[allow(clippy::too_many_arguments)]
async fn serve(
    stream: turmoil::net::TcpStream,
    initiator: bool,
    local_ip: Ipv4Addr,
    listen_port: u16,
    attacker: &Attacker,
    stats: &AttackStats,
    rng: &mut StdRng,
    genesis_hash: Hash,
) -> Result<(), pp_net::NetError> {
    let identity = attacker.identity(local_ip, listen_port);
    let (stream, _) = noise::handshake(stream, &identity, initiator).await?;
    let mut framed = Framed::new(stream, MessageCodec::new(DEFAULT_MAX_FRAME_BYTES));
    framed
        .send(Message::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            genesis_hash,
            node_id: format!("peer-{}", rng.random::<u32>()),
            listen_port,
            tip_index: 0,
            tip_hash: genesis_hash,
            headers_only: false,
        }))
        .await?;
    let mut admitted = !initiator;
    while let Some(msg) = framed.next().await {
        let answer = match msg? {
            Message::Hello(_) => {
                if !admitted {
                    admitted = true;
                    stats.dials_admitted.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
            Message::Error { .. } if !admitted => {
                stats.dials_refused.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Message::Ping { request_id } => Message::Pong { request_id },
            Message::GetPeers { request_id } => {
                stats.floods.fetch_add(1, Ordering::Relaxed);
                Message::Peers {
                    request_id,
                    peers: attacker.flood(rng),
                }
            }
            Message::GetHeaders { request_id, .. } => Message::Headers {
                request_id,
                headers: Vec::new(),
            },
            _ => continue,
        };
        framed.send(answer).await?;
    }
    Ok(())
}

/// A tarpit host: accepts on every port and reads whatever comes, never answering, until the
/// dialer gives up.
async fn tarpit(attacker: &Attacker, stats: Arc<AttackStats>) -> std::io::Result<()> {
    let mut listeners = Vec::new();
    for p in 0..attacker.ports.max(1) {
        listeners.push(turmoil::net::TcpListener::bind(("0.0.0.0", P2P_PORT + p)).await?);
    }
    for listener in listeners {
        let stats = stats.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                stats.tarpitted.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                });
            }
        });
    }
    std::future::pending::<()>().await;
    Ok(())
}
