//! A praos network of real `ppd` processes: `ppd testnet --leader-mode praos` writes a genesis
//! with a VRF key per stakeholder and a `vrf.key` next to each `node.key`; five nodes produce
//! version-3 headers carrying VRF evidence, and agree on the tip and the balances after
//! transfers sent through different nodes.

use std::time::Duration;

use pp_integration_tests::{
    balance, get_json, http, status, wait_all_up, wait_for, wait_height, wait_peers, Testnet,
};

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

        // Every block is a version-3 header with VRF evidence, and more than one node produced.
        let mut producers = std::collections::BTreeSet::new();
        for i in 1..=height {
            let b = get_json(&client, &format!("{}/blocks/{i}", urls[0]))
                .await
                .unwrap();
            let header = &b["header"];
            assert_eq!(header["version"], 3, "block {i}: {header}");
            assert_eq!(header["vrf"]["output"].as_str().map(str::len), Some(128));
            assert_eq!(header["vrf"]["proof"].as_str().map(str::len), Some(160));
            producers.insert(header["producer"].as_str().unwrap().to_string());
        }
        assert!(
            producers.len() >= 2,
            "one producer only up to {height} ({tip})"
        );
        for n in &mut net.nodes {
            assert!(n.exited().is_none(), "{} crashed", n.name);
        }
    };
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("test exceeded 120 s");
}
