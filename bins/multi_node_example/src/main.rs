//! A bootstrap node and two joining nodes in one process, as in the original pp-ledger usage:
//! every node registers the same stakeholders (their well-known dev keys) with the same stakes,
//! slot duration and genesis time, so they all build the same genesis; the joiners dial the
//! bootstrap node. Transfers are submitted through different nodes; after a bounded number of
//! slots each node's height, tip and balances are printed, and the program exits 0 only if all
//! nodes agree (the same block at their common height, every transfer included everywhere).
//!
//! ```sh
//! cargo run --bin multi_node_example            # RUST_LOG=info to see the nodes' logs
//! ```

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use pp_ledger::{PublicKey, Transaction};
use pp_server::{dev_key, NetworkConfig, Server};
use tracing_subscriber::EnvFilter;

/// The nodes: the first is the bootstrap node, the others join it.
const NODES: [&str; 3] = ["bootstrap", "node1", "node2"];
/// Stake of every node (equal stakes: leadership rotates among all of them).
const STAKE: u64 = 1_000;
/// Proof-of-work difficulty.
const DIFFICULTY: u32 = 2;
/// Slot length.
const SLOT: Duration = Duration::from_millis(500);
/// Slots to run after the transfers are submitted.
const RUN_SLOTS: u32 = 12;
/// Attempts (one per slot) to see every node agree before giving up.
const AGREE_ATTEMPTS: u32 = 20;
/// Transfers: (from node, to node, amount, submitted through node).
const TRANSFERS: [(usize, usize, u64, usize); 3] =
    [(0, 1, 1_000, 1), (1, 2, 500, 2), (2, 0, 250, 0)];
/// Fee of every transfer.
const FEE: u64 = 1;

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match run().await {
        Ok(true) => {
            println!("OK: all {} nodes agree", NODES.len());
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!("FAILED: the nodes do not agree");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn now_ms() -> anyhow::Result<u64> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64)
}

async fn run() -> anyhow::Result<bool> {
    // Nodes must share the genesis time; a little in the future so all are up for slot 0.
    let genesis_time = now_ms()? + 1_500;
    let dirs = (0..NODES.len())
        .map(|_| tempfile::tempdir())
        .collect::<Result<Vec<_>, _>>()
        .context("cannot create data directories")?;
    let mut servers: Vec<Server> = Vec::new();
    let result = drive(&mut servers, &dirs, genesis_time).await;
    for s in &mut servers {
        s.shutdown().await;
    }
    result
}

async fn drive(
    servers: &mut Vec<Server>,
    dirs: &[tempfile::TempDir],
    genesis_time: u64,
) -> anyhow::Result<bool> {
    let mut bootstrap_addr: Option<String> = None;
    for (id, dir) in NODES.iter().zip(dirs) {
        let mut server = Server::new(DIFFICULTY);
        server.set_data_dir(dir.path());
        for n in NODES {
            server.register_stakeholder(n, STAKE)?;
        }
        server.set_slot_duration(SLOT);
        server.set_genesis_time(genesis_time);
        let net = NetworkConfig {
            enable_p2p: true,
            node_id: id.to_string(),
            bootstrap_peers: bootstrap_addr.iter().cloned().collect(),
            listen_addr: "127.0.0.1".into(),
            p2p_port: 0,
            max_peers: 8,
            ..NetworkConfig::default()
        };
        server
            .start_with_network(0, net)
            .await
            .with_context(|| format!("cannot start {id}"))?;
        let p2p = server.p2p_addr().context("P2P is on but has no address")?;
        println!(
            "started {id:<9} account {}  p2p {p2p}  http {}",
            server.public_key(),
            server
                .http_addr()
                .map(|a| a.to_string())
                .unwrap_or_default()
        );
        if bootstrap_addr.is_none() {
            bootstrap_addr = Some(p2p.to_string());
        }
        servers.push(server);
    }
    let genesis = servers[0].genesis().hash();
    if servers.iter().any(|s| s.genesis().hash() != genesis) {
        bail!("the nodes built different geneses from the same registrations");
    }

    // Wait (bounded) for every node to be connected.
    let mut connected = false;
    for _ in 0..100 {
        if servers.iter().all(|s| s.peer_count() >= 1) {
            connected = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !connected {
        bail!("not every node connected within 10 s");
    }

    let accounts: Vec<PublicKey> = NODES.iter().map(|n| dev_key(n).public()).collect();
    for (from, to, amount, via) in TRANSFERS {
        let key = dev_key(NODES[from]);
        let nonce = servers[via].next_nonce(&key.public())?;
        let tx = Transaction::transfer(&key, accounts[to], amount, FEE, nonce, &genesis);
        let id = servers[via].submit_transaction(tx)?;
        println!(
            "submitted {amount} from {} to {} via {}: {id}",
            NODES[from], NODES[to], NODES[via]
        );
    }

    tokio::time::sleep(SLOT * RUN_SLOTS).await;

    for attempt in 1..=AGREE_ATTEMPTS {
        let agreed = agree(servers, &accounts)?;
        print_nodes(servers, &accounts);
        if agreed {
            return Ok(true);
        }
        println!("attempt {attempt}/{AGREE_ATTEMPTS}: not in agreement yet; waiting a slot");
        tokio::time::sleep(SLOT).await;
    }
    Ok(false)
}

/// True iff every node holds the same block at their common height (>= 1), and every transfer
/// is included on every node (each sender's next nonce is past its transfer).
fn agree(servers: &[Server], accounts: &[PublicKey]) -> anyhow::Result<bool> {
    let common = servers.iter().map(Server::height).min().unwrap_or(0);
    if common == 0 {
        return Ok(false);
    }
    let hashes: Vec<_> = servers
        .iter()
        .map(|s| s.block_at(common).map(|b| b.hash()))
        .collect();
    if hashes.iter().any(|h| h.is_none() || *h != hashes[0]) {
        return Ok(false);
    }
    for s in servers {
        for (from, _, _, _) in TRANSFERS {
            if s.next_nonce(&accounts[from])? < 1 {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

fn print_nodes(servers: &[Server], accounts: &[PublicKey]) {
    for (id, s) in NODES.iter().zip(servers) {
        let balances: Vec<String> = NODES
            .iter()
            .zip(accounts)
            .map(|(n, a)| match s.balance(a) {
                Ok(b) => format!("{n}={b}"),
                Err(e) => format!("{n}=? ({e})"),
            })
            .collect();
        println!(
            "{id:<9} height {:>3}  tip {}  peers {}  balances {}",
            s.height(),
            s.tip_hash(),
            s.peer_count(),
            balances.join(" ")
        );
    }
}
