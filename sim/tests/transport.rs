//! The turmoil transport alone under pp-net (no server): the `hello` handshake completes over
//! simulated TCP with random latency, requests get answers, and a peer on another genesis is
//! refused. Runs over the selected seeds (`PP_SIM_SEEDS`, `PP_SIM_SEED`).

use std::sync::Arc;
use std::time::Duration;

use pp_ledger::{Block, Genesis, Hash, KeyPair};
use pp_net::{ChainView, NetConfig, NetError, Network};
use pp_sim::{assert_all_passed, run_seeds, TurmoilTransport};

/// A chain of just the genesis block.
struct GenesisOnly(Block);

impl ChainView for GenesisOnly {
    fn tip(&self) -> (u64, Hash) {
        (0, self.0.hash())
    }
    fn get_blocks(&self, from_index: u64, count: u32) -> Vec<Block> {
        if from_index == 0 && count > 0 {
            vec![self.0.clone()]
        } else {
            Vec::new()
        }
    }
    fn get_headers(&self, _locator: &[Hash], _count: u32) -> Vec<pp_ledger::SignedHeader> {
        Vec::new()
    }
}

fn genesis(name: &str) -> Genesis {
    let mut g = Genesis::devnet(
        "node1",
        KeyPair::from_seed([1; 32]).public(),
        1_700_000_000_000,
    );
    g.network = name.into();
    g
}

async fn serve(g: Genesis) -> turmoil::Result {
    let view = Arc::new(GenesisOnly(g.block()));
    let (_net, mut events) = Network::start(
        NetConfig::new("server", g.hash(), "0.0.0.0:7000"),
        TurmoilTransport,
        view,
    )
    .await?;
    // Keep serving until the simulation ends.
    while events.recv().await.is_some() {}
    Ok(())
}

fn run_handshake(seed: u64) -> Result<String, String> {
    let mut sim = turmoil::Builder::new()
        .rng_seed(seed)
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(Duration::from_millis(200))
        .simulation_duration(Duration::from_secs(60))
        .build();
    let good = genesis("pp-sim-net");
    let other = genesis("pp-sim-other");
    let g = good.clone();
    sim.host("server", move || serve(g.clone()));
    let g = good.clone();
    sim.client("client", async move {
        let view = Arc::new(GenesisOnly(g.block()));
        let (net, _events) = Network::start(
            NetConfig::new("client", g.hash(), "0.0.0.0:7000"),
            TurmoilTransport,
            view,
        )
        .await?;
        let addr = format!("{}:7000", turmoil::lookup("server"));
        let peer = net.connect(&addr).await?;
        if peer.node_id != "server" || peer.tip_hash != g.block().hash() {
            return Err(format!("unexpected hello: {peer:?}").into());
        }
        let blocks = net.get_blocks(peer.id, 0, 10).await?;
        if blocks.len() != 1 || blocks[0].hash() != g.block().hash() {
            return Err(format!("expected the genesis block, got {} blocks", blocks.len()).into());
        }
        let rtt = net.ping(peer.id).await?;
        if rtt < Duration::from_millis(2) || rtt > Duration::from_millis(400) {
            return Err(format!("round trip {rtt:?} outside the simulated latency bounds").into());
        }
        net.shutdown().await;
        Ok(())
    });
    let o = other.clone();
    sim.client("stranger", async move {
        let view = Arc::new(GenesisOnly(o.block()));
        let (net, _events) = Network::start(
            NetConfig::new("stranger", o.hash(), "0.0.0.0:7000"),
            TurmoilTransport,
            view,
        )
        .await?;
        let addr = format!("{}:7000", turmoil::lookup("server"));
        match net.connect(&addr).await {
            Err(NetError::GenesisMismatch { .. }) => {}
            other => return Err(format!("a foreign genesis was not refused: {other:?}").into()),
        }
        net.shutdown().await;
        Ok(())
    });
    sim.run().map_err(|e| e.to_string())?;
    Ok(format!("{:?} simulated", sim.elapsed()))
}

#[test]
fn handshake_completes_over_simulated_tcp_and_foreign_genesis_is_refused() {
    let name = "handshake_completes_over_simulated_tcp_and_foreign_genesis_is_refused";
    let report = run_seeds(name, run_handshake);
    assert_all_passed(name, &report);
}
