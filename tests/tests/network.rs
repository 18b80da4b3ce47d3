//! Multi-process network behaviour: real `ppd` nodes on loopback, written by `ppd testnet`.
//!
//! - a 3-node testnet reaches the same tip and the same balances after transfers;
//! - a block produced on one node is on all the others within 2 slots;
//! - a node with another genesis is refused, while a node with the same genesis is accepted.

use std::time::Duration;

use pp_integration_tests::{
    balance, block_hash, free_port_block, get_json, height, http, peer_count, ppd, status,
    wait_all_up, wait_for, wait_height, wait_peers, write_follower_config, Node, Testnet,
};
use serde_json::Value;

const UP: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(100);

/// A consistent snapshot: every node at the same height with the same tip, and the balances of
/// `accounts` read while the tips did not move. `None` if the nodes moved or disagree this time.
async fn snapshot(
    client: &reqwest::Client,
    urls: &[String],
    accounts: &[String],
) -> Option<(u64, String, Vec<Vec<Option<u64>>>)> {
    let tips = async {
        let mut tips = Vec::new();
        for u in urls {
            let s = status(client, u).await.ok()?;
            tips.push((s["height"].as_u64()?, s["tip_hash"].as_str()?.to_string()));
        }
        Some(tips)
    };
    let before = tips.await?;
    if before.iter().any(|t| *t != before[0]) {
        return None;
    }
    let mut balances = Vec::new();
    for u in urls {
        let mut per_node = Vec::new();
        for a in accounts {
            per_node.push(balance(client, u, a).await);
        }
        balances.push(per_node);
    }
    let after = async {
        let mut tips = Vec::new();
        for u in urls {
            let s = status(client, u).await.ok()?;
            tips.push((s["height"].as_u64()?, s["tip_hash"].as_str()?.to_string()));
        }
        Some(tips)
    }
    .await?;
    (after == before).then(|| (before[0].0, before[0].1.clone(), balances))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_node_testnet_reaches_the_same_tip_and_balances_after_transfers() {
    // Build ppd before the clock starts: a cold build must not eat the test's time bound.
    pp_integration_tests::ppd_bin();
    let test = async {
        let mut net = Testnet::write(3, &["--slot-ms", "500", "--start-delay-ms", "3000"]).unwrap();
        net.start_all().unwrap();
        let urls = net.urls();
        let client = http();
        wait_all_up(&client, &urls, UP).await.unwrap();
        wait_peers(&client, &urls, 1, UP).await.unwrap();
        wait_height(&client, &urls, 2, UP).await.unwrap();

        // Two fresh accounts receive transfers sent through different nodes with the CLI; the
        // transaction from node0's key is submitted to node2, so it must be relayed to reach
        // whichever node leads next.
        let dir = tempfile::tempdir().unwrap();
        let mut fresh = Vec::new();
        for name in ["carol", "dave"] {
            let p = dir.path().join(name).display().to_string();
            let out = ppd(&["keygen", "--out", &p]).unwrap().ok().unwrap();
            fresh.push(out.last_word().unwrap().to_string());
        }
        let sends = [
            (0usize, 2usize, &fresh[0], 100u64),
            (1, 0, &fresh[0], 200),
            (2, 1, &fresh[1], 300),
        ];
        for (from, via, to, amount) in sends {
            net.transfer(from, &urls[via], to, amount).unwrap();
        }
        for (account, expected) in [(&fresh[0], 300u64), (&fresh[1], 300u64)] {
            wait_for(
                "the transfers to be applied on every node",
                UP,
                POLL,
                || async {
                    for u in &urls {
                        if balance(&client, u, account).await? != expected {
                            return None;
                        }
                    }
                    Some(())
                },
            )
            .await
            .unwrap();
        }

        // Same tip and same balances of every account, read at one consistent moment.
        let mut accounts: Vec<String> = (0..3).map(|i| net.account(i).unwrap()).collect();
        accounts.extend(fresh.iter().cloned());
        let (h, tip, balances) = wait_for(
            "a consistent snapshot of all nodes",
            UP,
            Duration::from_millis(50),
            || snapshot(&client, &urls, &accounts),
        )
        .await
        .unwrap();
        for (i, b) in balances.iter().enumerate() {
            assert_eq!(
                b, &balances[0],
                "node{i} disagrees on balances at height {h} tip {tip}"
            );
        }
        assert!(balances[0].iter().all(Option::is_some), "{balances:?}");
        assert_eq!(balances[0][3], Some(300));
        assert_eq!(balances[0][4], Some(300));
        for n in &mut net.nodes {
            assert!(n.exited().is_none(), "{} crashed", n.name);
        }
    };
    tokio::time::timeout(Duration::from_secs(150), test)
        .await
        .expect("test exceeded 150 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn block_produced_on_one_node_is_on_all_others_within_two_slots() {
    // Build ppd before the clock starts: a cold build must not eat the test's time bound.
    pp_integration_tests::ppd_bin();
    const SLOT_MS: u64 = 1000;
    let test = async {
        let slot = SLOT_MS.to_string();
        let mut net = Testnet::write(3, &["--slot-ms", &slot, "--start-delay-ms", "3000"]).unwrap();
        net.start_all().unwrap();
        let urls = net.urls();
        let client = http();
        wait_all_up(&client, &urls, UP).await.unwrap();
        wait_peers(&client, &urls, 1, UP).await.unwrap();
        wait_height(&client, &urls, 1, UP).await.unwrap();

        let mut h0 = 0;
        for u in &urls {
            h0 = h0.max(height(&client, u).await.unwrap_or(0));
        }
        let mut producers = std::collections::BTreeSet::new();
        // Five consecutive new blocks, whoever produces them.
        for index in h0 + 1..=h0 + 5 {
            let hash = wait_for(
                &format!("block {index} on every node"),
                Duration::from_secs(30),
                Duration::from_millis(10),
                || async {
                    let mut first: Option<String> = None;
                    for u in &urls {
                        let h = block_hash(&client, u, index).await?;
                        if first.as_ref().is_some_and(|f| *f != h) {
                            return None;
                        }
                        first = Some(h);
                    }
                    first
                },
            )
            .await
            .unwrap();
            let on_all_at = pp_integration_tests::now_ms();
            let block: Value = get_json(&client, &format!("{}/blocks/{index}", urls[0]))
                .await
                .unwrap();
            assert_eq!(block["hash"], hash.as_str());
            let produced_at = block["header"]["timestamp"].as_u64().unwrap();
            producers.insert(block["header"]["producer"].as_str().unwrap().to_string());
            let delay = on_all_at.saturating_sub(produced_at);
            eprintln!("block {index}: on every node {delay} ms after production");
            assert!(
                delay <= 2 * SLOT_MS,
                "block {index} reached the last node {delay} ms after production (> 2 slots)"
            );
        }
        assert!(!producers.is_empty());
    };
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("test exceeded 120 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_with_another_genesis_is_refused_while_same_genesis_is_accepted() {
    // Build ppd before the clock starts: a cold build must not eat the test's time bound.
    pp_integration_tests::ppd_bin();
    let test = async {
        let client = http();
        // Network A: one node. Network B: another genesis, one node told to dial A.
        let mut a = Testnet::write(1, &["--slot-ms", "500", "--start-delay-ms", "1000"]).unwrap();
        let b = Testnet::write(1, &["--slot-ms", "500", "--start-delay-ms", "1000"]).unwrap();
        let a_p2p = format!("127.0.0.1:{}", a.p2p_base);
        let b_cfg = b.node_dir(0).join("ppd.toml");
        let mut text = std::fs::read_to_string(&b_cfg).unwrap();
        assert!(
            !text.contains("peers"),
            "node0 of a testnet has no peers: {text}"
        );
        text.push_str(&format!("peers = [{a_p2p:?}]\n"));
        std::fs::write(&b_cfg, text).unwrap();

        a.start_all().unwrap();
        let a_url = a.urls()[0].clone();
        // A answers HTTP only after its P2P listener is up, so B's first dial reaches A.
        wait_all_up(&client, std::slice::from_ref(&a_url), UP)
            .await
            .unwrap();
        let b_node = Node::spawn_config("other-genesis", b.http_base, &b_cfg).unwrap();
        // Control: a node with A's genesis joins A the same way and is accepted.
        let ports = free_port_block(2);
        let c_dir = a.dir.path().join("follower");
        let c_cfg = write_follower_config(
            &c_dir,
            "follower",
            &a.root().join("genesis.json"),
            ports,
            ports + 1,
            std::slice::from_ref(&a_p2p),
        )
        .unwrap();
        let c_node = Node::spawn_config("follower", ports, &c_cfg).unwrap();
        let all = vec![a_url.clone(), b_node.url.clone(), c_node.url.clone()];
        wait_all_up(&client, &all, UP).await.unwrap();
        wait_peers(&client, std::slice::from_ref(&c_node.url), 1, UP)
            .await
            .unwrap();

        let a_genesis = status(&client, &a_url).await.unwrap()["genesis_hash"].clone();
        let b_genesis = status(&client, &b_node.url).await.unwrap()["genesis_hash"].clone();
        assert_ne!(a_genesis, b_genesis);
        // For three seconds (B keeps redialing meanwhile) B never has a peer and A only has C.
        for _ in 0..30 {
            assert_eq!(
                peer_count(&client, &b_node.url).await,
                Some(0),
                "B must stay alone"
            );
            assert_eq!(
                peer_count(&client, &a_url).await,
                Some(1),
                "A must only have C"
            );
            tokio::time::sleep(POLL).await;
        }
        // The follower has A's chain; B has its own.
        wait_height(&client, std::slice::from_ref(&c_node.url), 1, UP)
            .await
            .unwrap();
        let c_one = block_hash(&client, &c_node.url, 1).await;
        assert_eq!(c_one, block_hash(&client, &a_url, 1).await);
        // B was told why: its dial of A failed on the handshake's genesis check.
        let b_log = b_node.log_text();
        assert!(
            b_log.contains("genesis mismatch"),
            "B's log names the refusal:\n{b_log}"
        );
    };
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("test exceeded 120 s");
}
