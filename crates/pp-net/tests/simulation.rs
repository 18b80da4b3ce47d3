//! Deterministic simulation (turmoil): several nodes in one process on a simulated network,
//! through the same code paths as production, only the [`Transport`] swapped.

mod common;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{genesis_hash, make_chain, wait_event, TestChain};
use pp_net::{NetConfig, NetEvent, Network, Transport};

/// turmoil's simulated TCP behind the seam.
#[derive(Clone, Copy, Debug)]
struct SimTransport;

impl Transport for SimTransport {
    type Stream = turmoil::net::TcpStream;
    type Listener = turmoil::net::TcpListener;

    async fn bind(&self, addr: &str) -> io::Result<Self::Listener> {
        turmoil::net::TcpListener::bind(addr).await
    }
    async fn accept(listener: &Self::Listener) -> io::Result<(Self::Stream, SocketAddr)> {
        listener.accept().await
    }
    fn local_addr(listener: &Self::Listener) -> io::Result<SocketAddr> {
        listener.local_addr()
    }
    async fn connect(&self, addr: &str) -> io::Result<Self::Stream> {
        turmoil::net::TcpStream::connect(addr).await
    }
    fn peer_addr(stream: &Self::Stream) -> Option<SocketAddr> {
        stream.peer_addr().ok()
    }
}

fn sim_config(node_id: &str) -> NetConfig {
    let mut c = NetConfig::new(node_id, genesis_hash(), "0.0.0.0:7000");
    c.ping_interval = Duration::from_secs(1);
    c.idle_timeout = Duration::from_secs(3);
    c.request_timeout = Duration::from_secs(2);
    c.dial_interval = Duration::from_millis(200);
    c.dial_backoff_base = Duration::from_millis(500);
    c.dial_backoff_max = Duration::from_secs(2);
    // Answers and large frames on the calling task: tokio's blocking pool runs on real
    // threads, outside turmoil's virtual time.
    c.blocking = std::sync::Arc::new(pp_net::InlineBlocking);
    c
}

/// A node that serves `blocks`, dials `seeds`, and announces its last block every second.
async fn run_node(id: &str, blocks: usize, seeds: &[&str]) -> turmoil::Result {
    let chain = make_chain(blocks as u64, 1);
    let view = Arc::new(TestChain {
        blocks: chain.clone(),
    });
    let (net, mut events) = Network::start(sim_config(id), SimTransport, view).await?;
    for s in seeds {
        net.add_known_addr(s);
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Some(last) = chain.last() {
                    net.broadcast_block(last, None);
                }
            }
            ev = events.recv() => if ev.is_none() { return Ok(()) },
        }
    }
}

#[test]
fn simulated_nodes_connect_sync_gossip_and_recover_from_a_partition() {
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(120))
        .rng_seed(7)
        .build();
    sim.host("hub", || run_node("hub", 30, &[]));
    sim.host("n2", || run_node("n2", 0, &["hub:7000"]));
    sim.host("n3", || run_node("n3", 0, &["hub:7000", "n2:7000"]));

    sim.client("observer", async {
        let view = Arc::new(TestChain { blocks: vec![] });
        let (net, mut events) = Network::start(sim_config("observer"), SimTransport, view).await?;
        let hub = net.connect("hub:7000").await?;
        assert_eq!(hub.node_id, "hub");
        assert_eq!(hub.tip_index, 30);

        // Sync: fetch the whole chain in pages, as a syncing node does.
        let mut got = Vec::new();
        while got.len() < 30 {
            let page = net.get_blocks(hub.id, got.len() as u64 + 1, 7).await?;
            assert!(!page.is_empty());
            got.extend(page);
        }
        assert_eq!(got, make_chain(30, 1));

        // Gossip: the hub's announcement reaches us.
        let ev = wait_event(&mut events, 5, |e| matches!(e, NetEvent::NewBlock { .. })).await;
        assert!(matches!(ev, Some(NetEvent::NewBlock { block, .. }) if block.header.index == 30));

        // The other nodes found the hub through their dialers; peer exchange tells us about them.
        let mut others = Vec::new();
        for _ in 0..50 {
            others = net.get_peers(hub.id).await?;
            if others.len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_eq!(others.len(), 2, "hub knows n2 and n3: {others:?}");
        assert!(others.iter().all(|a| a.ends_with(":7000")));

        // Partition us from the hub: keepalives stop, the idle timeout drops the connection.
        turmoil::partition("observer", "hub");
        let gone = wait_event(&mut events, 10, |e| {
            matches!(e, NetEvent::PeerDisconnected { .. })
        })
        .await;
        assert!(gone.is_some(), "silent peer was not dropped");
        assert!(net.peers().iter().all(|p| p.node_id != "hub"));

        // Heal it: the dialer remembers the address `connect` used and reconnects on its own.
        // (The hub's answer also put n2 and n3 in our address book; the dialer may have
        // connected to them meanwhile, which does not change the hub's fate.)
        turmoil::repair("observer", "hub");
        assert!(net.known_addrs().contains(&"hub:7000".to_string()));
        let back = wait_event(
            &mut events,
            15,
            |e| matches!(e, NetEvent::PeerConnected(p) if p.node_id == "hub"),
        )
        .await;
        assert!(
            back.is_some(),
            "dialer did not reconnect after the partition healed"
        );
        net.shutdown().await;
        Ok(())
    });

    sim.run().expect("simulation succeeds");
}

/// A node that knows only `seeds` and parks its network in `slot` for the test to read.
async fn run_member(
    id: String,
    seeds: Vec<String>,
    slot: std::rc::Rc<std::cell::RefCell<Option<Network<SimTransport>>>>,
) -> turmoil::Result {
    let view = Arc::new(TestChain { blocks: vec![] });
    let (net, mut events) = Network::start(sim_config(&id), SimTransport, view).await?;
    for s in &seeds {
        net.add_known_addr(s);
    }
    *slot.borrow_mut() = Some(net);
    while events.recv().await.is_some() {}
    Ok(())
}

/// Twelve nodes join at once, each knowing only the hub. The hub's book is still empty when they
/// first ask it for addresses; a node short of its outbound target asks again soon
/// (`BELOW_TARGET_EXCHANGE_INTERVAL`), not only at the 5-minute exchange, so within a
/// minute every node has found most of the others.
#[test]
fn nodes_that_join_together_from_one_seed_find_each_other_within_a_minute() {
    use pp_net::Direction;
    let mut sim = turmoil::Builder::new()
        .simulation_duration(Duration::from_secs(300))
        .rng_seed(11)
        .build();
    let names: Vec<String> = std::iter::once("hub".to_string())
        .chain((1..12).map(|i| format!("m{i}")))
        .collect();
    let mut slots = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let slot = std::rc::Rc::new(std::cell::RefCell::new(None));
        slots.push(slot.clone());
        let seeds: Vec<String> = if i == 0 {
            vec![]
        } else {
            vec!["hub:7000".into()]
        };
        let id = name.clone();
        sim.host(name.as_str(), move || {
            run_member(id.clone(), seeds.clone(), slot.clone())
        });
    }
    while sim.elapsed() < Duration::from_secs(60) {
        sim.step().expect("simulation step");
    }
    let degrees: Vec<(usize, usize)> = slots
        .iter()
        .map(|s| {
            s.borrow()
                .as_ref()
                .map_or((0, 0), |n: &Network<SimTransport>| {
                    (n.count(Direction::Outbound), n.peer_count())
                })
        })
        .collect();
    eprintln!("(outbound, peers) per node after 60 s: {degrees:?}");
    for (name, &(out, peers)) in names.iter().zip(&degrees).skip(1) {
        assert!(
            peers >= 6 && out >= 2,
            "{name} holds {out} outbound and {peers} peers in all after 60 s: {degrees:?}"
        );
    }
}
