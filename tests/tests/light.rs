//! A light client (`ppd light`) follows a 3-node praos testnet of real `ppd` processes: its tip
//! stays within 2 slots of the full nodes' and on their chain, the transactions of a transfer
//! load are proven included in the very blocks the full nodes hold, and after a restart it
//! continues from the headers it stored. Account answers are refused with `no_state_root`
//! while headers commit to no state (docs/light-client.md, "What it does not do yet").

use std::time::Duration;

use pp_integration_tests::{
    block_hash, free_port_block, get_json, http, status, wait_all_up, wait_for, wait_height,
    wait_peers, Node, Testnet,
};

const UP: Duration = Duration::from_secs(60);

async fn light_status(client: &reqwest::Client, url: &str) -> Option<(u64, String, u64)> {
    let s = status(client, url).await.ok()?;
    assert_eq!(s["light"], true);
    Some((
        s["tip"]["height"].as_u64()?,
        s["tip"]["hash"].as_str()?.to_string(),
        s["tip"]["slot"].as_u64()?,
    ))
}

/// VmRSS of process `pid`, in kB.
fn rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        total += if p.is_dir() {
            dir_bytes(&p)
        } else {
            e.metadata().map_or(0, |m| m.len())
        };
    }
    total
}

fn spawn_light(net: &Testnet, http_port: u16, data: &std::path::Path) -> Node {
    let args: Vec<String> = [
        "light",
        "--peer",
        &format!("127.0.0.1:{}", net.p2p_base),
        "--genesis",
        &net.root().join("genesis.json").display().to_string(),
        "--full-node",
        &format!("http://127.0.0.1:{}", net.http_base + 1),
        "--data-dir",
        &data.display().to_string(),
        "--http",
        &format!("127.0.0.1:{http_port}"),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    Node::spawn("light", http_port, &args, &data.with_extension("log")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_client_follows_a_three_node_testnet_and_proves_its_transactions() {
    pp_integration_tests::ppd_bin();
    let test = async {
        let slot_ms = 500u64;
        let mut net = Testnet::write(
            3,
            &[
                "--slot-ms",
                "500",
                "--start-delay-ms",
                "3000",
                "--difficulty",
                "1",
                // Short epochs: the light client checks leaders with η_e and SD_e of epochs
                // 2, 3, ... (nonces folded from the headers it verified).
                "--slots-per-epoch",
                "10",
            ],
        )
        .unwrap();
        net.start_all().unwrap();
        let urls = net.urls();
        let client = http();
        wait_all_up(&client, &urls, UP).await.unwrap();
        wait_peers(&client, &urls, 1, UP).await.unwrap();
        wait_height(&client, &urls, 3, UP).await.unwrap();

        let light_port = free_port_block(1);
        let data = net.dir.path().join("light");
        let mut light = spawn_light(&net, light_port, &data);
        let lurl = light.url.clone();

        // A transfer load through the three nodes.
        let to = "0707070707070707070707070707070707070707070707070707070707070707";
        let mut ids = Vec::new();
        for round in 0..3u64 {
            for from in 0..3usize {
                let id = net
                    .transfer(from, &urls[(from + 1) % 3], to, 10 + round)
                    .unwrap();
                ids.push(id);
            }
        }

        // The light client catches up: its tip is node0's.
        wait_for(
            "the light client at node0's tip",
            UP,
            Duration::from_millis(100),
            || async {
                let s = status(&client, &urls[0]).await.ok()?;
                let (_, lhash, _) = light_status(&client, &lurl).await?;
                (s["tip_hash"].as_str()? == lhash).then_some(())
            },
        )
        .await
        .unwrap();

        // Sampled over 40 slots: the light tip is on node0's chain and at most 2 slots behind
        // node0's tip slot.
        let mut max_lag = 0u64;
        let mut forks = 0;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(slot_ms / 2)).await;
            let s = status(&client, &urls[0]).await.unwrap();
            let node_h = s["height"].as_u64().unwrap();
            let node_tip = get_json(&client, &format!("{}/blocks/{node_h}", urls[0]))
                .await
                .unwrap();
            let node_slot = node_tip["header"]["slot"].as_u64().unwrap();
            let (h, hash, slot) = light_status(&client, &lurl).await.unwrap();
            if h <= node_h && block_hash(&client, &urls[0], h).await.as_deref() != Some(&hash) {
                // A praos slot with two leaders: node0 and the client may be a tie-break apart
                // for a moment. A slot later they must agree.
                tokio::time::sleep(Duration::from_millis(slot_ms)).await;
                let (h, hash, _) = light_status(&client, &lurl).await.unwrap();
                assert_eq!(
                    block_hash(&client, &urls[0], h).await.as_deref(),
                    Some(hash.as_str()),
                    "the light tip {h} is not on node0's chain a slot later"
                );
                forks += 1;
            }
            max_lag = max_lag.max(node_slot.saturating_sub(slot));
        }
        eprintln!(
            "light client: max lag behind node0's tip over 40 samples: {max_lag} slots; \
             {forks} samples a tie-break apart"
        );
        assert!(max_lag <= 2, "the light client lagged {max_lag} slots");
        // Into epoch 3 and on node0's chain there.
        wait_for(
            "the light tip in epoch 3",
            UP,
            Duration::from_millis(100),
            || async {
                let (h, hash, slot) = light_status(&client, &lurl).await?;
                (slot >= 30 && block_hash(&client, &urls[0], h).await? == hash).then_some(())
            },
        )
        .await
        .unwrap();

        // Sizes, for the record (a short chain: issue 13 asks for 10,000 blocks).
        let light_rss = rss_kb(light.pid().unwrap());
        let node_rss = rss_kb(net.nodes[0].pid().unwrap());
        let light_disk = dir_bytes(&data);
        let node_disk = dir_bytes(&net.node_dir(0));
        let (h, _, _) = light_status(&client, &lurl).await.unwrap();
        eprintln!(
            "at height {h}: light client RSS {light_rss} kB, disk {light_disk} B; node0 RSS \
             {node_rss} kB, disk {node_disk} B"
        );
        assert!(light_disk < node_disk, "{light_disk} B >= {node_disk} B");

        // Every transfer: included, in the block every full node holds at that index.
        let mut proven = 0;
        for id in &ids {
            let t = wait_for(
                "a proven inclusion",
                UP,
                Duration::from_millis(200),
                || async {
                    let v = get_json(&client, &format!("{lurl}/transactions/{id}"))
                        .await
                        .ok()?;
                    (v["included"] == true).then_some(v)
                },
            )
            .await
            .unwrap();
            assert_eq!(t["verified"], true);
            let index = t["block"]["index"].as_u64().unwrap();
            for u in &urls {
                assert_eq!(
                    block_hash(&client, u, index).await.as_deref(),
                    t["block"]["hash"].as_str(),
                    "{id}: the light client's block is not {u}'s"
                );
            }
            proven += 1;
        }
        assert_eq!(proven, ids.len());

        // An unknown transaction is an error, not a value.
        let bad = get_json(&client, &format!("{lurl}/transactions/{}", "ab".repeat(32))).await;
        assert!(bad.is_err(), "{bad:?}");

        // Accounts: headers carry no state root yet, so no balance is answered.
        let r = client
            .get(format!("{lurl}/accounts/{to}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 501);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "no_state_root", "{v}");

        // Restart: the stored headers are re-verified and syncing continues from them.
        let (before, _, _) = light_status(&client, &lurl).await.unwrap();
        let st = light.terminate(Duration::from_secs(10)).unwrap();
        assert!(st.success(), "ppd light exited with {st}");
        light.start().unwrap();
        let (after, _, _) = wait_for(
            "the light client back",
            UP,
            Duration::from_millis(50),
            || light_status(&client, &lurl),
        )
        .await
        .unwrap();
        assert!(after >= before, "restarted at {after}, had {before}");
        let st = light.terminate(Duration::from_secs(10)).unwrap();
        assert!(st.success());
    };
    tokio::time::timeout(Duration::from_secs(240), test)
        .await
        .expect("light client test timed out");
}
