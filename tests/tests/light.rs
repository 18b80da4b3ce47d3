//! A light client (`ppd light`, and beside it the slim `pp-light` binary built without the full
//! node) follows a 3-node praos testnet of real `ppd` processes: its tip stays within 2 slots of
//! the full nodes' and on their chain, the transactions of a transfer load are proven included
//! in the very blocks the full nodes hold, the balances of every account the load touched,
//! proven against its own headers, equal the full nodes', and after a restart it continues from
//! the headers it stored. Stake snapshots of every epoch boundary
//! are proven from the full node (10-slot epochs).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use pp_ledger::state_tree::AccountLeaf;
use pp_ledger::{Decode as _, Encode as _};

use pp_integration_tests::{
    balance, block_hash, free_port_block, get_json, http, status, wait_all_up, wait_for,
    wait_height, wait_peers, Node, Testnet,
};

const UP: Duration = Duration::from_secs(60);

/// The tests of this file run one at a time: two testnets at once on a 2-core machine starve
/// each other's slots, and the lag bound measures the client, not the machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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

/// Which binary runs the light client.
#[derive(Clone, Copy, Debug)]
enum LightBin {
    /// `ppd light`.
    Ppd,
    /// `pp-light` (crate pp-light, without pp-server).
    Slim,
}

fn spawn_light(net: &Testnet, http_port: u16, data: &std::path::Path, bin: LightBin) -> Node {
    let (path, sub): (&std::path::Path, &[&str]) = match bin {
        LightBin::Ppd => (pp_integration_tests::ppd_bin(), &["light"]),
        LightBin::Slim => (pp_integration_tests::pp_light_bin(), &[]),
    };
    let args: Vec<String> = sub
        .iter()
        .chain(&[
            "--peer",
            &format!("127.0.0.1:{}", net.p2p_base),
            "--genesis",
            &net.root().join("genesis.json").display().to_string(),
            "--full-node",
            &format!("http://127.0.0.1:{}", net.http_base),
            "--data-dir",
            &data.display().to_string(),
            "--http",
            &format!("127.0.0.1:{http_port}"),
        ])
        .map(|s| s.to_string())
        .collect();
    let name = format!("{bin:?}").to_lowercase();
    Node::spawn_bin(path, &name, http_port, &args, &data.with_extension("log")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn light_client_follows_a_three_node_testnet_and_proves_its_transactions() {
    let _one = ONE_AT_A_TIME.lock().await;
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

        let light_port = free_port_block(2);
        let data = net.dir.path().join("light");
        let mut light = spawn_light(&net, light_port, &data, LightBin::Ppd);
        let lurl = light.url.clone();
        // The slim binary beside it, checked the same way (one testnet for both).
        let slim_data = net.dir.path().join("slim");
        let mut slim = spawn_light(&net, light_port + 1, &slim_data, LightBin::Slim);
        let surl = slim.url.clone();

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

        // The light clients catch up: their tip is node0's.
        for u in [&lurl, &surl] {
            wait_for(
                "the light client at node0's tip",
                UP,
                Duration::from_millis(100),
                || async {
                    let s = status(&client, &urls[0]).await.ok()?;
                    let (_, lhash, _) = light_status(&client, u).await?;
                    (s["tip_hash"].as_str()? == lhash).then_some(())
                },
            )
            .await
            .unwrap();
        }

        // Sampled over 40 slots: each light tip is on node0's chain and no block of node0's is
        // missing from it for more than 2 slots. The lag of a sample is the current slot minus
        // the slot of node0's first block the client lacks (0 when it lacks none): a client one
        // block behind for the few milliseconds an announcement takes is not stale, whatever the
        // empty slots before that block (CI once sampled node0's block of slot 11, after slots
        // 7-10 were empty, before the client had its header, and counted 5 slots). (Headers-only,
        // the default: full nodes push the light clients no block, only each new block's signed
        // header, `new_header`.)
        let mut max_lag = [0u64; 2];
        let mut forks = 0;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(slot_ms / 2)).await;
            for (i, u) in [&lurl, &surl].into_iter().enumerate() {
                let s = status(&client, &urls[0]).await.unwrap();
                let node_h = s["height"].as_u64().unwrap();
                let now_slot = s["slot"].as_u64().unwrap();
                let (h, hash, _) = light_status(&client, u).await.unwrap();
                if h <= node_h && block_hash(&client, &urls[0], h).await.as_deref() != Some(&hash) {
                    // A praos slot with two or three leaders: node0 and the client may be a
                    // tie-break apart for a moment, and so may the next slot's tips (CI once
                    // sampled the next slot inside its own 2 ms switch window). Within 4 slots
                    // there must be a sample where the client's tip is node0's block at that
                    // height; a client stuck on a losing fork never gets one.
                    let agreed = wait_for(
                        "the light tip on node0's chain",
                        Duration::from_millis(4 * slot_ms),
                        Duration::from_millis(25),
                        || async {
                            let (h, hash, _) = light_status(&client, u).await?;
                            let node = block_hash(&client, &urls[0], h).await;
                            (node.as_deref() == Some(hash.as_str())).then_some(())
                        },
                    )
                    .await;
                    assert!(
                        agreed.is_ok(),
                        "the light tip of {u} was never on node0's chain in the 4 slots after a \
                         sample at height {h} ({hash}): {agreed:?}"
                    );
                    forks += 1;
                }
                if h < node_h {
                    let missing = get_json(&client, &format!("{}/blocks/{}", urls[0], h + 1))
                        .await
                        .unwrap();
                    let missing_slot = missing["header"]["slot"].as_u64().unwrap();
                    max_lag[i] = max_lag[i].max(now_slot.saturating_sub(missing_slot));
                }
            }
        }
        eprintln!(
            "light clients (ppd light, pp-light): max slots a block of node0 was missing, over 40 samples: \
             {max_lag:?} slots; {forks} samples a tie-break apart"
        );
        assert!(
            max_lag[0] <= 2,
            "ppd light lagged {} slots; its log:\n{}",
            max_lag[0],
            light.log_tail(60)
        );
        assert!(
            max_lag[1] <= 2,
            "pp-light lagged {} slots; its log:\n{}",
            max_lag[1],
            slim.log_tail(60)
        );
        // The tips followed the announced headers (not only the half-slot polls).
        for u in [&lurl, &surl] {
            let s = status(&client, u).await.unwrap();
            let announced = s["sync"]["announced"].as_u64().unwrap_or(0);
            eprintln!("{u}: {announced} headers taken from announcements");
            assert!(announced > 0, "{u} took no announced header: {s}");
        }
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

        // Sizes, for the record (a short chain: issue 13 asks for 10,000 blocks;
        // scripts/light-sizes.sh measures them).
        let light_rss = rss_kb(light.pid().unwrap());
        let slim_rss = rss_kb(slim.pid().unwrap());
        let node_rss = rss_kb(net.nodes[0].pid().unwrap());
        let light_disk = dir_bytes(&data);
        let node_disk = dir_bytes(&net.node_dir(0));
        let (h, _, _) = light_status(&client, &lurl).await.unwrap();
        eprintln!(
            "at height {h}: light client RSS {light_rss} kB (pp-light {slim_rss} kB), disk \
             {light_disk} B; node0 RSS {node_rss} kB, disk {node_disk} B"
        );
        assert!(light_disk < node_disk, "{light_disk} B >= {node_disk} B");

        // Every transfer: included, in the block every full node holds at that index, for both
        // light clients.
        let mut proven = 0;
        for (id, u) in ids.iter().flat_map(|id| [(id, &lurl), (id, &surl)]) {
            let t = wait_for(
                "a proven inclusion",
                UP,
                Duration::from_millis(200),
                || async {
                    let v = get_json(&client, &format!("{u}/transactions/{id}"))
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
        assert_eq!(proven, 2 * ids.len());

        // An unknown transaction is an error, not a value.
        let bad = get_json(&client, &format!("{lurl}/transactions/{}", "ab".repeat(32))).await;
        assert!(bad.is_err(), "{bad:?}");

        // Balances of every account the transfers touched, proven against the light client's
        // own headers, equal the full nodes' (the load is over: read when no tip moves the
        // balances any more; the producers' rewards keep moving theirs, so compare at the
        // block the light client checked against).
        let touched: Vec<String> = (0..3)
            .map(|i| net.account(i).unwrap())
            .chain([to.to_string()])
            .collect();
        for a in &touched {
            let v = get_json(&client, &format!("{lurl}/accounts/{a}"))
                .await
                .unwrap();
            assert_eq!(v["verified"], true, "{v}");
            let at = v["block"]["hash"].as_str().unwrap();
            for u in &urls {
                let n = get_json(&client, &format!("{u}/proofs/accounts/{a}?block={at}"))
                    .await
                    .unwrap();
                assert_eq!(v["balance"], n["leaf"]["balance"], "{a} at {at} on {u}");
            }
        }
        for u in [&lurl, &surl] {
            let v = get_json(&client, &format!("{u}/accounts/{to}"))
                .await
                .unwrap();
            assert_eq!(v["verified"], true, "{v}");
            assert_eq!(v["balance"], 3 * (10 + 11 + 12), "{u}: {v}");
        }
        let st = slim.terminate(Duration::from_secs(10)).unwrap();
        assert!(st.success(), "pp-light exited with {st}");

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

/// How the proxy in front of the full node lies about `GET /proofs/accounts/...`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Lie {
    Honest,
    /// The leaf's balance raised by 1,000 (value re-encoded, proof unchanged).
    Balance,
    /// The proof at the block before the one asked, answered as it is.
    OtherBlock,
    /// The proof at the block before the one asked, dressed as the block asked (its hash,
    /// header and state root).
    OtherBlockDisguised,
}

/// A tampering HTTP proxy in front of `node` (real HTTP both ways).
async fn lying_proxy(node: String, lie: Arc<Mutex<Lie>>) -> String {
    use axum::extract::{OriginalUri, State};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = (node, lie, http());
    let app = axum::Router::new()
        .fallback(
            |State((node, lie, client)): State<(String, Arc<Mutex<Lie>>, reqwest::Client)>,
             OriginalUri(uri): OriginalUri| async move {
                let lie = *lie.lock().unwrap();
                let mut path = uri.to_string();
                let account_proof = path.starts_with("/proofs/accounts/");
                let asked = path.split("block=").nth(1).map(str::to_string);
                if account_proof && matches!(lie, Lie::OtherBlock | Lie::OtherBlockDisguised) {
                    let asked = asked.clone().unwrap();
                    let b = get_json(&client, &format!("{node}/blocks/hash/{asked}")).await.unwrap();
                    let parent = b["header"]["prev_hash"].as_str().unwrap().to_string();
                    path = path.replace(&asked, &parent);
                }
                let mut v: serde_json::Value =
                    match get_json(&client, &format!("{node}{path}")).await {
                        Ok(v) => v,
                        Err(e) => {
                            return (
                                axum::http::StatusCode::NOT_FOUND,
                                axum::Json(serde_json::json!({"error": {"code": "not_found", "message": e.to_string()}})),
                            )
                        }
                    };
                if account_proof {
                    match lie {
                        Lie::Honest | Lie::OtherBlock => {}
                        Lie::Balance => {
                            let bytes = hex::decode(v["value"].as_str().unwrap()).unwrap();
                            let mut leaf = AccountLeaf::from_canonical_bytes(&bytes).unwrap();
                            leaf.balance += 1_000;
                            v["value"] = hex::encode(leaf.to_canonical_bytes()).into();
                            v["leaf"]["balance"] = leaf.balance.into();
                        }
                        Lie::OtherBlockDisguised => {
                            let asked = asked.unwrap();
                            let b = get_json(&client, &format!("{node}/blocks/hash/{asked}")).await.unwrap();
                            v["block"]["hash"] = asked.into();
                            v["block"]["index"] = b["header"]["index"].clone();
                            v["block"]["header"] = b["header"].clone();
                            v["state_root"] = b["header"]["state_root"].clone();
                        }
                    }
                }
                (axum::http::StatusCode::OK, axum::Json(v))
            },
        )
        .with_state(state);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// Lies about balances, by a full node behind a tampering proxy, to an embedded
/// `pp_light::LightClient` that syncs headers from the real node: a raised balance, a proof
/// for another block (as it is, and dressed as the block asked) are each refused with the
/// check they fail; the honest answer equals the full node's balance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn balance_lies_by_a_full_node_are_refused() {
    let _one = ONE_AT_A_TIME.lock().await;
    pp_integration_tests::ppd_bin();
    let test = async {
        let mut net = Testnet::write(
            1,
            &[
                "--slot-ms",
                "300",
                "--start-delay-ms",
                "2000",
                "--difficulty",
                "1",
            ],
        )
        .unwrap();
        net.start_all().unwrap();
        let urls = net.urls();
        let client = http();
        wait_all_up(&client, &urls, UP).await.unwrap();
        wait_height(&client, &urls, 2, UP).await.unwrap();
        let to = "0808080808080808080808080808080808080808080808080808080808080808";
        let id = net.transfer(0, &urls[0], to, 77).unwrap();
        wait_for(
            "the transfer included",
            UP,
            Duration::from_millis(100),
            || async {
                let v = get_json(&client, &format!("{}/transactions/{id}", urls[0]))
                    .await
                    .ok()?;
                (v["status"] == "included").then_some(())
            },
        )
        .await
        .unwrap();

        let lie = Arc::new(Mutex::new(Lie::Honest));
        let proxy = lying_proxy(urls[0].clone(), lie.clone()).await;
        let genesis =
            pp_ledger::Genesis::from_json(&std::fs::read(net.root().join("genesis.json")).unwrap())
                .unwrap();
        let mut config = pp_light::LightConfig::new(genesis, format!("127.0.0.1:{}", net.p2p_base));
        config.full_node = Some(proxy);
        let light = pp_light::LightClient::start(config).await.unwrap();
        let node_h = status(&client, &urls[0]).await.unwrap()["height"]
            .as_u64()
            .unwrap();
        wait_for(
            "the light client synced",
            UP,
            Duration::from_millis(50),
            || async { (light.tip().height >= node_h).then_some(()) },
        )
        .await
        .unwrap();
        let account = pp_ledger::PublicKey::from_hex(to).unwrap();

        let honest = light.account(&account).await.unwrap();
        assert_eq!(honest.leaf.as_ref().map(|l| l.balance), Some(77));
        assert_eq!(balance(&client, &urls[0], to).await, Some(77));

        *lie.lock().unwrap() = Lie::Balance;
        let e = light.account(&account).await.unwrap_err().to_string();
        assert!(e.contains("bad proof"), "{e}");

        *lie.lock().unwrap() = Lie::OtherBlock;
        let e = light.account(&account).await.unwrap_err().to_string();
        assert!(e.contains("proof for another block"), "{e}");

        *lie.lock().unwrap() = Lie::OtherBlockDisguised;
        let e = light.account(&account).await.unwrap_err().to_string();
        assert!(e.contains("bad proof") || e.contains("wrong root"), "{e}");

        light.shutdown().await;
    };
    tokio::time::timeout(Duration::from_secs(180), test)
        .await
        .expect("balance lie test timed out");
}

/// A light client that starts more than `k` blocks after epoch boundaries still syncs: the full
/// node's tree versions of those boundary blocks are pruned, and it proves their stake
/// snapshots from the answers it kept (docs/http-api.md, `GET /proofs/stake`). A 1-node classic
/// testnet with `k` = 3 and 5-slot epochs; the client starts at height ≥ 16, when the blocks
/// ending epochs 0 and 1 (the snapshot blocks of epochs 2 and 3) are more than `k` deep, and
/// must verify every leader of epochs 2 and 3 to reach the node's tip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_client_starting_late_proves_old_stake_snapshots() {
    let _one = ONE_AT_A_TIME.lock().await;
    pp_integration_tests::ppd_bin();
    let test = async {
        let mut net = Testnet::write(
            1,
            &[
                "--slot-ms",
                "300",
                "--start-delay-ms",
                "2000",
                "--difficulty",
                "1",
                "--slots-per-epoch",
                "5",
                // Classic: the genesis is all there is to rewrite below (a praos testnet's
                // operational certificates sign the genesis hash).
                "--leader-mode",
                "classic",
            ],
        )
        .unwrap();
        let path = net.root().join("genesis.json");
        let mut g = pp_ledger::Genesis::from_json(&std::fs::read(&path).unwrap()).unwrap();
        g.k = 3;
        std::fs::write(&path, g.to_json_pretty()).unwrap();
        net.start_all().unwrap();
        let urls = net.urls();
        let client = http();
        wait_all_up(&client, &urls, UP).await.unwrap();
        wait_height(&client, &urls, 16, UP).await.unwrap();
        let node_h = status(&client, &urls[0]).await.unwrap()["height"]
            .as_u64()
            .unwrap();

        let genesis = pp_ledger::Genesis::from_json(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(genesis.k, 3);
        let mut config = pp_light::LightConfig::new(genesis, format!("127.0.0.1:{}", net.p2p_base));
        config.full_node = Some(urls[0].clone());
        let light = pp_light::LightClient::start(config).await.unwrap();
        wait_for(
            "the late light client past the node's height at its start, in epoch 3 or later",
            UP,
            Duration::from_millis(50),
            || async {
                let t = light.tip();
                (t.height >= node_h && t.slot >= 15).then_some(())
            },
        )
        .await
        .unwrap();
        let t = light.tip();
        assert_eq!(
            block_hash(&client, &urls[0], t.height).await,
            Some(t.hash.to_string()),
            "the light tip is on the node's chain"
        );
        light.shutdown().await;
    };
    tokio::time::timeout(Duration::from_secs(180), test)
        .await
        .expect("late light client test timed out");
}
