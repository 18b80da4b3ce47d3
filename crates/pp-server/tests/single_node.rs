//! One node: block production through the Server API, transfers, restart from disk, the
//! mempool journal, and genesis checks.
#![allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.

mod common;

use std::time::Duration;

use common::{fast_genesis, single, wait_until, SLOT};
use pp_ledger::{Genesis, InitialBalance, KeyPair, Transaction};
use pp_server::{dev_key, Server, ServerError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_produces_blocks_through_the_server_api() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([1u8; 32]);
    let mut s = single(dir.path(), &key);
    s.start(0).await.unwrap();
    assert!(s.http_addr().is_some());
    assert!(!s.is_p2p_enabled());
    assert!(
        wait_until(Duration::from_secs(15), || s.height() >= 3).await,
        "height stayed at {}",
        s.height()
    );
    assert_eq!(s.block_count(), s.height() + 1);
    assert!(s.current_slot() >= 3);
    let b = s.block_at(1).unwrap();
    assert_eq!(b.header.producer, key.public());
    assert!(b.hash().to_hex().starts_with('0'), "difficulty 1 PoW");
    assert_eq!(s.public_key(), key.public());
    assert!(dir.path().join("genesis.json").exists());
    assert!(dir.path().join("chain.redb").exists());
    assert!(matches!(s.start(0).await, Err(ServerError::AlreadyStarted)));
    assert!(matches!(
        s.connect_to_peer("127.0.0.1:1").await,
        Err(ServerError::P2pDisabled)
    ));
    s.shutdown().await;
    s.shutdown().await; // idempotent
    assert!(!s.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_is_included_and_changes_balances() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([2u8; 32]);
    let bob = KeyPair::from_seed([3u8; 32]).public();
    let mut s = single(dir.path(), &key);
    s.start(0).await.unwrap();
    let gh = s.genesis().hash();
    let before = s.balance(&key.public()).unwrap();
    assert!(matches!(s.balance(&bob), Err(ServerError::UnknownAccount(k)) if k == bob));
    let tx = Transaction::transfer(&key, bob, 1234, 5, 0, &gh);
    let id = s.submit_transaction(tx.clone()).unwrap();
    assert_eq!(id, tx.id());
    // Resubmitting the same transaction is not an error and does not queue it twice.
    assert_eq!(s.submit_transaction(tx).unwrap(), id);
    // A second one with the next nonce is accepted while the first is pending or just included.
    let tx2 = Transaction::transfer(&key, bob, 1, 5, 1, &gh);
    s.submit_transaction(tx2).unwrap();
    assert!(
        wait_until(Duration::from_secs(15), || s.balance(&bob).ok()
            == Some(1235))
        .await,
        "bob's balance: {:?}",
        s.balance(&bob)
    );
    assert_eq!(s.pending_transaction_count(), 0);
    // Producer pays 1235 + 10 in fees, which come back to it, and earns block rewards.
    let after = s.balance(&key.public()).unwrap();
    assert!(after + 1235 >= before, "before {before}, after {after}");
    // A replayed nonce is refused with the rule named.
    let replay = Transaction::transfer(&key, bob, 1, 1, 0, &gh);
    match s.submit_transaction(replay) {
        Err(ServerError::Rejected(e)) => assert_eq!(e.code(), "bad_nonce"),
        other => panic!("expected bad_nonce, got {other:?}"),
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_from_same_data_dir_keeps_every_block() {
    let dir = tempfile::tempdir().unwrap();
    // No key configured: a random one is created in node.key on the first start.
    let mut s = Server::new(1);
    s.set_data_dir(dir.path());
    s.set_slot_duration(SLOT);
    s.start(0).await.unwrap();
    let key = s.public_key();
    assert!(dir.path().join("node.key").exists());
    assert!(wait_until(Duration::from_secs(15), || s.height() >= 4).await);
    s.shutdown().await;
    let height = s.height();
    let tip = s.tip_hash();
    drop(s);

    // No key and no genesis configured: both come from the data dir.
    let mut again = Server::new(1);
    again.set_data_dir(dir.path());
    again.start(0).await.unwrap();
    assert!(again.height() >= height, "{} < {height}", again.height());
    assert_eq!(again.block_at(height).unwrap().hash(), tip);
    assert_eq!(again.public_key(), key);
    // And it keeps producing on top of what it had.
    assert!(wait_until(Duration::from_secs(15), || again.height() > height).await);
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_transaction_survives_a_restart() {
    // The only stakeholder is someone else, so this node never produces and the transaction
    // stays pending.
    let dir = tempfile::tempdir().unwrap();
    let alice = KeyPair::from_seed([5u8; 32]);
    let mut g = fast_genesis("other", &dev_key("other"));
    g.initial_balances.push(InitialBalance {
        account: alice.public(),
        amount: 1_000,
    });
    let gh = g.hash();
    let mut s = Server::new(1);
    s.set_data_dir(dir.path());
    s.set_genesis(g.clone());
    s.start(0).await.unwrap();
    let tx = Transaction::transfer(
        &alice,
        KeyPair::from_seed([6u8; 32]).public(),
        10,
        1,
        0,
        &gh,
    );
    s.submit_transaction(tx.clone()).unwrap();
    assert_eq!(s.pending_transaction_count(), 1);
    s.shutdown().await;
    drop(s);

    let mut again = Server::new(1);
    again.set_data_dir(dir.path());
    again.start(0).await.unwrap();
    assert_eq!(again.pending_transaction_count(), 1);
    assert_eq!(again.next_nonce(&alice.public()).unwrap(), 1);
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_start_with_a_different_genesis_on_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([7u8; 32]);
    let mut s = single(dir.path(), &key);
    s.start(0).await.unwrap();
    let g = s.genesis();
    s.shutdown().await;
    drop(s);
    let mut other: Genesis = g.clone();
    other.network = "another-net".into();
    let mut again = Server::new(1);
    again.set_data_dir(dir.path());
    again.set_genesis(other);
    match again.start(0).await {
        Err(ServerError::GenesisMismatch { stored, .. }) => assert_eq!(stored, g.hash()),
        other => panic!("expected GenesisMismatch, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_dev_stakeholder_uses_its_dev_key_and_produces() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::new(1);
    s.set_data_dir(dir.path());
    s.set_slot_duration(SLOT);
    s.register_stakeholder("alice", 100).unwrap();
    assert!(s.register_stakeholder("alice", 5).is_err());
    assert!(s.register_stakeholder("bad id!", 5).is_err());
    assert!(s.register_stakeholder("bob", 0).is_err());
    let net = pp_server::NetworkConfig {
        node_id: "alice".into(),
        ..Default::default()
    };
    s.start_with_network(0, net).await.unwrap();
    assert_eq!(s.public_key(), dev_key("alice").public());
    assert_eq!(s.node_id(), "alice");
    assert!(wait_until(Duration::from_secs(15), || s.height() >= 2).await);
    assert!(matches!(
        s.register_stakeholder("late", 1),
        Err(ServerError::AlreadyStarted)
    ));
    s.shutdown().await;
}

/// The scheduling policy of each of this process's threads whose name starts with `prefix`, as
/// the kernel reports it (`/proc/self/task/*/stat`, field 41: 0 normal, 5 `SCHED_IDLE`).
#[cfg(target_os = "linux")]
fn policies_of(prefix: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if !comm.trim_end().starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        // Fields from 3 (state) on; the policy is field 41.
        if let Some(p) = after.split_whitespace().nth(41 - 3) {
            out.push(p.parse().unwrap());
        }
    }
    out
}

/// At `cpu_priority` idle the node's bulk work runs in `SCHED_IDLE`: the CPU pool and the
/// storage writer's commit thread (one), and the node still produces and stores blocks.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_idle_priority_the_cpu_pool_and_the_commits_run_in_sched_idle() {
    let dir = tempfile::tempdir().unwrap();
    let key = KeyPair::from_seed([61; 32]);
    let mut s = single(dir.path(), &key);
    s.set_cpu_priority(pp_server::CpuPriority::Idle);
    s.start(0).await.unwrap();
    assert!(wait_until(Duration::from_secs(15), || s.height() >= 2).await);
    let (cpu, commit) = (policies_of("pp-cpu"), policies_of("pp-commit"));
    s.shutdown().await;
    // (Other tests of this binary run nodes at `normal` meanwhile, with `pp-cpu` threads of
    // policy 0 and no `pp-commit` thread.)
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let idle = cpu.iter().filter(|&&p| p == 5).count();
    assert!(
        idle >= cores,
        "pp-cpu policies {cpu:?}: {cores} in SCHED_IDLE wanted"
    );
    assert_eq!(commit, vec![5], "pp-commit");
    // Stored: a restart finds the blocks.
    let mut again = single(dir.path(), &key);
    again.start(0).await.unwrap();
    assert!(
        again.height() >= 2,
        "height after restart {}",
        again.height()
    );
    again.shutdown().await;
}
