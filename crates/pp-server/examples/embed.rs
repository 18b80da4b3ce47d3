//! Embedding pp-ledger: a bootstrap node and a joining node in one process, a transfer built,
//! signed and submitted through the joining node, and the balance read on both.
//! Run: `cargo run -p pp-server --example embed` (add `RUST_LOG=info` for the nodes' logs).
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pp_ledger::Transaction;
use pp_server::{dev_key, NetworkConfig, Server, ServerError};

/// Every node of a network must build the same genesis: the same stakeholders with the same
/// stakes, slot length and genesis time. A registered stakeholder's key is its well-known
/// development key (`dev_key`): fine for a devnet, never for real value.
fn configure(node: &mut Server, genesis_time_ms: u64) -> Result<(), ServerError> {
    node.set_genesis_time(genesis_time_ms);
    node.set_slot_duration(Duration::from_millis(500));
    node.register_stakeholder("alice", 100)?;
    node.register_stakeholder("bob", 100)?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The nodes log through `tracing`; this prints their logs on stderr per RUST_LOG.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as u64;
    let genesis_time_ms = now_ms + 1_000; // slot 0 starts in a second

    // `Server::new` keeps its data (chain, genesis.json, node.key, admin.token) in a fresh
    // temporary directory that is deleted when the `Server` is dropped; call
    // `set_data_dir(path)` before starting to keep the chain across runs.
    let mut alice = Server::new(2); // proof-of-work difficulty 2
    configure(&mut alice, genesis_time_ms)?;
    // Node id "alice" signs blocks with alice's dev key. P2P and HTTP on free ports (0).
    alice
        .start_with_network(0, NetworkConfig::p2p("alice", 0))
        .await?;
    let bootstrap = alice
        .p2p_addr()
        .ok_or("alice has no P2P address")?
        .to_string();

    let mut bob = Server::new(2);
    configure(&mut bob, genesis_time_ms)?;
    let net = NetworkConfig::p2p("bob", 0).with_bootstrap(&[bootstrap.as_str()]);
    bob.start_with_network(0, net).await?;
    for (name, node) in [("alice", &alice), ("bob", &bob)] {
        let http = node.http_addr().ok_or("no HTTP address")?;
        println!("{name}: explorer and HTTP API at http://{http}/");
    }

    // Alice pays carol 1,000 coins (fee 1). A transaction is signed for one network (its
    // genesis hash) and carries the sender's next nonce, counting its pending transactions.
    let alice_key = dev_key("alice");
    let carol = dev_key("carol").public();
    let genesis_hash = bob.genesis().hash();
    let nonce = bob.next_nonce(&alice_key.public())?;
    let tx = Transaction::transfer(&alice_key, carol, 1_000, 1, nonce, &genesis_hash);
    let id = bob.submit_transaction(tx)?; // admitted, journaled and relayed to alice
    println!("submitted transfer {id} through bob");

    // Wait (at most 60 slots) until a block including it reached both nodes.
    let mut balances = (0, 0);
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        balances = (
            alice.balance(&carol).unwrap_or(0),
            bob.balance(&carol).unwrap_or(0),
        );
        if balances == (1_000, 1_000) {
            break;
        }
    }
    println!(
        "carol's balance: {} on alice, {} on bob; height {} / {}, peers {} / {}",
        balances.0,
        balances.1,
        alice.height(),
        bob.height(),
        alice.peer_count(),
        bob.peer_count()
    );
    bob.shutdown().await;
    alice.shutdown().await;
    if balances != (1_000, 1_000) {
        return Err("the transfer did not reach both nodes within 60 slots".into());
    }
    Ok(())
}
