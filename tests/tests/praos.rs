//! A praos network of real `ppd` processes: `ppd testnet --leader-mode praos` writes a genesis
//! with a VRF key per stakeholder, the stakeholders' cold keys apart from the nodes, and a
//! `vrf.key`, a hot key and an operational certificate in each node's directory; five nodes
//! produce version-6 headers carrying VRF evidence and the certificate, and agree on the tip and
//! the balances after transfers sent through different nodes.
//!
//! Then node 0's stakeholder rotates its hot key: `ppd keygen`, `ppd opcert issue` with counter
//! 1, restart. The node keeps producing and every node accepts its blocks under the new
//! certificate. A second process holding the old hot key and certificate (same stakeholder)
//! joins: it sees the revocation on its chain and does not produce; and a block signed under the
//! old certificate — with a valid VRF proof, on the current tip — sent to every node over P2P is
//! refused by each one as revoked (`pp_blocks_rejected_total{reason="opcert_revoked"}`) and held
//! by none.

use std::sync::Arc;
use std::time::Duration;

use pp_integration_tests::{
    balance, free_port_block, get_json, http, now_ms, ppd, status, wait_all_up, wait_for,
    wait_height, wait_peers, Node, Testnet,
};
use pp_ledger::{Block, BlockHeader, Chain, Genesis, Hash, Signature, Transaction};
use pp_ouroboros::{Ouroboros, SlotClock};

const UP: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_node_praos_testnet_agrees_on_tip_and_balances_after_transfers() {
    // Build ppd before the clock starts: a cold build must not eat the test's time bound.
    pp_integration_tests::ppd_bin();
    let test = async {
        let mut net = Testnet::write(
            5,
            &[
                "--slot-ms",
                "300",
                "--start-delay-ms",
                "3000",
                "--difficulty",
                "1",
                "--leader-mode",
                "praos",
            ],
        )
        .unwrap();
        for i in 0..5 {
            assert!(
                net.node_dir(i).join("vrf.key").exists(),
                "node{i} has no vrf.key"
            );
        }
        net.start_all().unwrap();
        let urls = net.urls();
        let client = http();
        wait_all_up(&client, &urls, UP).await.unwrap();
        wait_peers(&client, &urls, 1, UP).await.unwrap();
        wait_height(&client, &urls, 3, UP).await.unwrap();

        // Transfers from three nodes' keys, each sent through another node.
        let to = "0707070707070707070707070707070707070707070707070707070707070707";
        for (from, via, amount) in [(0usize, 3usize, 100u64), (1, 4, 200), (2, 0, 300)] {
            net.transfer(from, &urls[via], to, amount).unwrap();
        }
        let accounts: Vec<String> = (0..5)
            .map(|i| net.account(i).unwrap())
            .chain([to.to_string()])
            .collect();
        // Every node at one tip with the transfers applied, and the same balances everywhere,
        // read while no tip moved.
        let (height, tip, balances) = wait_for(
            "one tip and equal balances on all nodes, transfers applied",
            UP,
            Duration::from_millis(50),
            || async {
                let mut tips = Vec::new();
                for u in &urls {
                    let s = status(&client, u).await.ok()?;
                    tips.push((s["height"].as_u64()?, s["tip_hash"].as_str()?.to_string()));
                }
                if tips.iter().any(|t| *t != tips[0]) {
                    return None;
                }
                let mut all = Vec::new();
                for u in &urls {
                    let mut per = Vec::new();
                    for a in &accounts {
                        per.push(balance(&client, u, a).await);
                    }
                    all.push(per);
                }
                if all.iter().any(|b| *b != all[0]) || all[0][5] != Some(600) {
                    return None;
                }
                let again = status(&client, &urls[0]).await.ok()?;
                (again["tip_hash"].as_str()? == tips[0].1)
                    .then(|| (tips[0].0, tips[0].1.clone(), all))
            },
        )
        .await
        .unwrap();
        assert!(balances[0].iter().all(Option::is_some), "{balances:?}");

        // Every block is a version-6 header with a state root, VRF evidence and a certificate
        // (counter 0, from the testnet's cold keys), and more than one node produced.
        let mut producers = std::collections::BTreeSet::new();
        for i in 1..=height {
            let b = get_json(&client, &format!("{}/blocks/{i}", urls[0]))
                .await
                .unwrap();
            let header = &b["header"];
            assert_eq!(
                header["version"],
                pp_ledger::PRAOS_BLOCK_VERSION,
                "block {i}: {header}"
            );
            assert_eq!(header["state_root"].as_str().map(str::len), Some(64));
            assert_eq!(header["vrf"]["output"].as_str().map(str::len), Some(128));
            assert_eq!(header["vrf"]["proof"].as_str().map(str::len), Some(160));
            assert_eq!(header["ocert"]["counter"], 0, "block {i}: {header}");
            assert_ne!(header["ocert"]["hot_key"], header["producer"]);
            producers.insert(header["producer"].as_str().unwrap().to_string());
        }
        assert!(
            producers.len() >= 2,
            "one producer only up to {height} ({tip})"
        );
        for n in &mut net.nodes {
            assert!(n.exited().is_none(), "{} crashed", n.name);
        }
        rotate_and_revoke(&mut net, &client, height).await;
    };
    tokio::time::timeout(Duration::from_secs(180), test)
        .await
        .expect("test exceeded 180 s");
}

/// The best-chain blocks of the node at `url` from index `from` to its tip, as JSON.
async fn blocks_from(client: &reqwest::Client, url: &str, from: u64) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut next = from;
    // Bounded: a test chain is far below 100 pages.
    for _ in 0..100 {
        let Ok(page) = get_json(client, &format!("{url}/blocks?from={next}&count=100")).await
        else {
            break;
        };
        let Some(blocks) = page["blocks"].as_array() else {
            break;
        };
        if blocks.is_empty() {
            break;
        }
        next += blocks.len() as u64;
        out.extend(blocks.iter().cloned());
    }
    out
}

/// A block from its API form (`{"hash","header","signature","transactions"}`).
fn block_of(v: &serde_json::Value) -> Block {
    Block {
        header: serde_json::from_value::<BlockHeader>(v["header"].clone()).unwrap(),
        signature: serde_json::from_value::<Signature>(v["signature"].clone()).unwrap(),
        transactions: serde_json::from_value::<Vec<Transaction>>(v["transactions"].clone())
            .unwrap(),
    }
}

/// The hashes of the best-chain blocks at `url` (from `from`) produced by `producer` under
/// certificate `counter`.
async fn blocks_under(
    client: &reqwest::Client,
    url: &str,
    from: u64,
    producer: &str,
    counter: u64,
) -> Vec<String> {
    blocks_from(client, url, from)
        .await
        .iter()
        .filter(|b| {
            b["header"]["producer"].as_str() == Some(producer)
                && b["header"]["ocert"]["counter"].as_u64() == Some(counter)
        })
        .filter_map(|b| b["hash"].as_str().map(str::to_string))
        .collect()
}

fn metric(text: &str, line_prefix: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(line_prefix)?.trim().parse().ok())
        .unwrap_or(0)
}

async fn rotate_and_revoke(net: &mut Testnet, client: &reqwest::Client, height: u64) {
    let root = net.root();
    let node0 = net.node_dir(0);
    let stakeholder = net.account(0).unwrap();
    let urls = net.urls();
    let genesis_path = root.join("genesis.json");

    // Rotation, as an operator does it: stop the node, keep the old hot key and certificate
    // aside, make a new hot key, issue certificate 1 with the cold key, restart.
    net.nodes[0].terminate(Duration::from_secs(10)).unwrap();
    let old = net.dir.path().join("old0");
    std::fs::create_dir(&old).unwrap();
    for f in ["hot.key", "opcert.json"] {
        std::fs::rename(node0.join(f), old.join(f)).unwrap();
    }
    let hot = node0.join("hot.key").display().to_string();
    let keygen = ppd(&["keygen", "--out", &hot]).unwrap().ok().unwrap();
    let hot_public = keygen.last_word().unwrap().to_string();
    let cold = root.join("cold/node0.key").display().to_string();
    let cert = node0.join("opcert.json").display().to_string();
    let g = genesis_path.display().to_string();
    ppd(&[
        "opcert",
        "issue",
        "--cold-key",
        &cold,
        "--hot-key",
        &hot_public,
        "--counter",
        "1",
        "--genesis",
        &g,
        "--out",
        &cert,
    ])
    .unwrap()
    .ok()
    .unwrap();
    net.nodes[0].start().unwrap();

    // It keeps producing: two blocks under certificate 1 on every node's best chain.
    let new_blocks = wait_for(
        "two blocks of node0 under certificate 1 on every node",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async {
            let mut seen = Vec::new();
            for u in &urls {
                let b = blocks_under(client, u, height, &stakeholder, 1).await;
                if b.len() < 2 {
                    return None;
                }
                seen.push(b[..2].to_vec());
            }
            seen.iter().all(|s| *s == seen[0]).then(|| seen[0].clone())
        },
    )
    .await
    .unwrap();
    let first_new = get_json(
        client,
        &format!("{}/blocks/hash/{}", urls[1], new_blocks[0]),
    )
    .await
    .unwrap();
    assert_eq!(first_new["header"]["ocert"]["hot_key"], hot_public.as_str());

    // A second process with the old hot key and certificate of the same stakeholder: once its
    // chain carries certificate 1 it refuses to produce under certificate 0.
    let ghost_dir = net.dir.path().join("ghost");
    std::fs::create_dir(&ghost_dir).unwrap();
    for f in ["hot.key", "opcert.json"] {
        std::fs::copy(old.join(f), ghost_dir.join(f)).unwrap();
    }
    std::fs::copy(node0.join("vrf.key"), ghost_dir.join("vrf.key")).unwrap();
    let ports = free_port_block(2);
    let args: Vec<String> = [
        "run",
        "--data-dir",
        &ghost_dir.display().to_string(),
        "--genesis",
        &g,
        "--node-id",
        "ghost",
        "--http",
        &format!("127.0.0.1:{ports}"),
        "--p2p",
        &format!("127.0.0.1:{}", ports + 1),
        "--peer",
        &format!("127.0.0.1:{}", net.p2p_base + 1),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut ghost = Node::spawn("ghost", ports, &args, &ghost_dir.join("ppd.log")).unwrap();
    wait_for(
        "the old-certificate process to see its certificate revoked and not produce",
        Duration::from_secs(60),
        Duration::from_millis(200),
        || async {
            let log = ghost.log_text();
            (log.contains("not producing: the operational certificate is not valid")
                && log.contains("is revoked"))
            .then_some(())
        },
    )
    .await
    .unwrap();
    ghost.terminate(Duration::from_secs(10)).unwrap();

    // A block under the old certificate, otherwise valid (VRF proof of a slot the stakeholder
    // leads, on the current tip, signed by the old hot key), sent to every node over P2P.
    let genesis = Genesis::from_json(&std::fs::read(&genesis_path).unwrap()).unwrap();
    let gh = genesis.hash();
    let mut chain = Chain::new(genesis.clone(), Ouroboros::new(&genesis).unwrap()).unwrap();
    for b in blocks_from(client, &urls[1], 1).await {
        chain.verify_and_add(block_of(&b), now_ms()).unwrap();
    }
    let clock = SlotClock::from_genesis(&genesis).unwrap();
    let vrf = pp_server::praos::load_vrf_key_file(&node0.join("vrf.key")).unwrap();
    let me = pp_ledger::PublicKey::from_hex(&stakeholder).unwrap();
    let now_slot = clock.slot_at(now_ms()).unwrap();
    let (slot, evidence) = (now_slot + 1..now_slot + 400)
        .find_map(|s| {
            let st = chain.state_for_next(s);
            chain
                .rules()
                .prove_slot(&st, s, &me, &vrf)
                .unwrap()
                .map(|e| (s, e))
        })
        .expect("node0's stakeholder leads a slot within 400");
    let start = clock.slot_start_ms(slot);
    tokio::time::sleep(Duration::from_millis(start.saturating_sub(now_ms()))).await;
    let old_cert = pp_server::opcert::load_cert_file(&old.join("opcert.json")).unwrap();
    assert_eq!(old_cert.cert.counter, 0);
    let old_hot = pp_server::keys::load_key_file(&old.join("hot.key")).unwrap();
    let revoked = Block::produce_praos(
        &chain.tip().header,
        slot,
        start,
        genesis.difficulty,
        Vec::new(),
        chain.state_root_after(&chain.tip_hash(), &me, &[]).unwrap(),
        me,
        evidence,
        old_cert.cert,
        &old_hot,
        &gh,
        1 << 24,
    )
    .unwrap();
    // Stateless checks pass: it is the chain's counter that refuses it.
    chain.check_detached(&revoked).unwrap();
    assert!(matches!(
        chain.verify_and_add(revoked.clone(), now_ms()),
        Err(pp_ledger::ChainError::Block(
            pp_ledger::BlockError::OpCertRevoked {
                counter: 0,
                highest: 1,
                ..
            }
        ))
    ));
    let peer = send_to_all(net, gh, &revoked).await;
    let hash = revoked.hash().to_hex();
    wait_for(
        "every node to refuse the block as revoked",
        Duration::from_secs(30),
        Duration::from_millis(100),
        || async {
            for u in &urls {
                let text = client
                    .get(format!("{u}/metrics"))
                    .send()
                    .await
                    .ok()?
                    .text()
                    .await
                    .ok()?;
                if metric(&text, "pp_blocks_rejected_total{reason=\"opcert_revoked\"}") < 1 {
                    return None;
                }
            }
            Some(())
        },
    )
    .await
    .unwrap();
    for u in &urls {
        let res = client
            .get(format!("{u}/blocks/hash/{hash}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{u} holds the revoked block");
    }
    // After the first block under certificate 1, no block of the stakeholder under 0 is on the
    // chain (the old-certificate process produced none that anyone took).
    let first_index = first_new["header"]["index"].as_u64().unwrap();
    assert!(blocks_under(client, &urls[2], first_index, &stakeholder, 0)
        .await
        .is_empty());
    peer.shutdown().await;
}

/// Connects a raw pp-net peer (empty chain view) to every node and broadcasts `block`; returns
/// the peer, to shut down once the nodes have judged the block.
async fn send_to_all(
    net: &Testnet,
    gh: Hash,
    block: &Block,
) -> pp_net::Network<pp_net::TcpTransport> {
    struct Empty;
    impl pp_net::ChainView for Empty {
        fn tip(&self) -> (u64, Hash) {
            (0, Hash::ZERO)
        }
        fn get_blocks(&self, _from: u64, _count: u32) -> Vec<Block> {
            Vec::new()
        }
        fn get_headers(&self, _locator: &[Hash], _count: u32) -> Vec<pp_ledger::SignedHeader> {
            Vec::new()
        }
    }
    let cfg = pp_net::NetConfig::new("old-cert", gh, "127.0.0.1:0");
    let (peer, _events) = pp_net::Network::start(cfg, pp_net::TcpTransport, Arc::new(Empty))
        .await
        .unwrap();
    for i in 0..net.size {
        peer.connect(&format!("127.0.0.1:{}", net.p2p_base + i as u16))
            .await
            .unwrap();
    }
    peer.broadcast_block(block, None);
    peer
}
