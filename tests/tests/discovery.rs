//! An open network of real processes: ten `ppd` nodes, each on its own loopback address
//! (127.0.0.1 ..= 127.0.0.10, each its own address group, so they model ten hosts), are told of
//! one peer only: node0. Through peer exchange (`get_peers`/`peers`) and feelers they find each
//! other, every node reaches its outbound target, and all agree on the tip. Then node0 is
//! killed (SIGKILL): the other nine stay connected to each other and keep producing and
//! agreeing; node0 restarts from its data dir, rejoins, catches up and holds its target again.
//!
//! The targets. Two nodes share at most one connection (peers are identity keys), so ten nodes
//! have 45 possible connections and the outbound targets can sum to at most 45: 8 each (the
//! default, 80 in all) is impossible and 4 each would need 40 of the 45 pairs. Nodes 1..=9 run
//! with `max_peers = 7`, an ordinary operator setting: outbound target 3 and 4 inbound slots.
//! node0, the seed all nine dial first, runs with `max_peers = 9`: outbound target 4 and 5
//! inbound slots, one connection for each of the nine. The four it refuses for lack of room
//! become its feeler candidates and then its outbound peers, and each of those asks node0 (its
//! only peer, inbound) for addresses. With fewer slots than newcomers, a seed leaves some of
//! them with no peer until others happen to dial them, which at this size and these targets
//! (31 of 45 possible connections) may be never.

use std::time::{Duration, Instant};

use pp_integration_tests::{
    block_hash, get_json, height, http, status, wait_all_up, wait_common_block, wait_for, Testnet,
};
use serde_json::Value;

const NODES: usize = 10;
/// `max_peers` of nodes 1..=9: outbound target 3 (`min(8, 7 / 2)`), 4 inbound slots.
const MAX_PEERS: usize = 7;
const TARGET: u64 = 3;
/// `max_peers` of node0: outbound target 4, 5 inbound slots (9 in all: one per other node).
const SEED_MAX_PEERS: usize = 9;
const SEED_TARGET: u64 = 4;

/// The outbound target of node `i`.
fn target(i: usize) -> u64 {
    if i == 0 {
        SEED_TARGET
    } else {
        TARGET
    }
}
/// 250 ms: on the praos testnet (f = 1/2) a block about every 500 ms, as 500 ms classic slots gave.
const SLOT_MS: u64 = 250;
const UP: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(250);

/// The loopback address of node `i`: 127.0.0.(i+1).
fn ip(i: usize) -> String {
    format!("127.0.0.{}", i + 1)
}

/// One line per node: outbound/inbound/height and its address book, for failure messages.
/// `urls` are those of nodes `first..`.
async fn describe_from(client: &reqwest::Client, first: usize, urls: &[String]) -> String {
    let mut out = String::new();
    for (i, u) in (first..).zip(urls) {
        let s = status(client, u).await.ok();
        let k = get_json(client, &format!("{u}/peers/known")).await.ok();
        let f = |v: &Option<Value>, key: &str| {
            v.as_ref()
                .and_then(|v| v.get(key))
                .map_or("-".to_string(), Value::to_string)
        };
        out.push_str(&format!(
            "node{i}: out {} in {} height {} | book new {} tried {} groups {}\n",
            f(&s, "outbound"),
            f(&s, "inbound"),
            f(&s, "height"),
            f(&k, "new"),
            f(&k, "tried"),
            f(&k, "groups"),
        ));
    }
    out
}

/// [`describe_from`] for all nodes.
async fn describe(client: &reqwest::Client, urls: &[String]) -> String {
    describe_from(client, 0, urls).await
}

/// `(outbound, inbound)` of a node, or `None` if it does not answer.
async fn directions(client: &reqwest::Client, url: &str) -> Option<(u64, u64)> {
    let s = status(client, url).await.ok()?;
    Some((s["outbound"].as_u64()?, s["inbound"].as_u64()?))
}

/// Waits until every node in `urls` (nodes `first..`) holds its outbound target; returns how
/// long it took.
async fn wait_targets(
    client: &reqwest::Client,
    first: usize,
    urls: &[String],
    timeout: Duration,
) -> Duration {
    let start = Instant::now();
    let r = wait_for(
        "every node to hold its outbound target",
        timeout,
        POLL,
        || async {
            for (i, u) in (first..).zip(urls) {
                if directions(client, u).await?.0 < target(i) {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    if let Err(e) = r {
        panic!("{e}\n{}", describe_from(client, first, urls).await);
    }
    start.elapsed()
}

/// The highest height among `urls`.
async fn max_height(client: &reqwest::Client, urls: &[String]) -> u64 {
    let mut h = 0;
    for u in urls {
        h = h.max(height(client, u).await.unwrap_or(0));
    }
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_nodes_told_only_of_node0_find_each_other_reach_their_target_and_survive_its_restart() {
    // Build ppd before the clock starts: a cold build must not eat the test's time bound.
    pp_integration_tests::ppd_bin();
    let test = async {
        let slot = SLOT_MS.to_string();
        let mut net =
            Testnet::write(NODES, &["--slot-ms", &slot, "--start-delay-ms", "4000"]).unwrap();
        // Each node on its own address, told only of node0, with the smaller target.
        let seed = format!("{}:{}", ip(0), net.p2p_base);
        for i in 0..NODES {
            let path = net.node_dir(i).join("ppd.toml");
            let text = std::fs::read_to_string(&path).unwrap();
            let mut lines: Vec<String> = text
                .lines()
                .filter(|l| !l.starts_with("p2p") && !l.starts_with("peers"))
                .map(str::to_string)
                .collect();
            lines.push(format!("p2p = \"{}:{}\"", ip(i), net.p2p_base + i as u16));
            if i > 0 {
                lines.push(format!("peers = [{seed:?}]"));
            }
            let max_peers = if i == 0 { SEED_MAX_PEERS } else { MAX_PEERS };
            lines.push(format!("max_peers = {max_peers}"));
            std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        }
        let t0 = Instant::now();
        net.start_all().unwrap();
        let urls = net.urls();
        let client = http();
        wait_all_up(&client, &urls, UP).await.unwrap();

        // 1. Discovery: every node reaches its outbound target.
        let took = wait_targets(&client, 0, &urls, Duration::from_secs(60)).await;
        eprintln!(
            "all {NODES} nodes at their outbound target {:.1} s after start ({:.1} s after all answered)\n{}",
            t0.elapsed().as_secs_f64(),
            took.as_secs_f64(),
            describe(&client, &urls).await
        );
        // Each connection is outbound at one end and inbound at the other, and every node
        // learnt of others beyond node0.
        let mut out_sum = 0;
        let mut in_sum = 0;
        for (n, u) in urls.iter().enumerate() {
            let (o, i) = directions(&client, u).await.unwrap();
            let s = status(&client, u).await.unwrap();
            assert_eq!(s["peers"].as_u64(), Some(o + i), "{s}");
            assert!(o <= target(n), "node{n} exceeds its outbound target: {s}");
            out_sum += o;
            in_sum += i;
            let known = get_json(&client, &format!("{u}/peers/known"))
                .await
                .unwrap();
            let tried = known["tried"].as_u64().unwrap();
            assert!(tried >= TARGET, "{u} reached {TARGET} peers: {known}");
            assert!(known["groups"].as_u64().unwrap() >= TARGET, "{known}");
        }
        assert_eq!(
            out_sum, in_sum,
            "outbound and inbound ends of the same links"
        );

        // 2. Agreement on the tip: the same block at a common height on every node.
        let h = max_height(&client, &urls).await + 2;
        let hash = wait_common_block(&client, &urls, h, Duration::from_secs(30))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        eprintln!("all agree on block {h} ({hash})");

        // 3. node0 dies. The others stay connected among themselves and keep producing and
        // agreeing.
        net.nodes[0].kill9();
        let survivors = urls[1..].to_vec();
        let down_at = max_height(&client, &survivors).await;
        wait_for(
            "every survivor to hold a peer with node0 down",
            UP,
            POLL,
            || async {
                for u in &survivors {
                    if status(&client, u).await.ok()?["peers"].as_u64()? == 0 {
                        return None;
                    }
                }
                Some(())
            },
        )
        .await
        .unwrap();
        let h_down = down_at + 4;
        if let Err(e) =
            wait_common_block(&client, &survivors, h_down, Duration::from_secs(30)).await
        {
            panic!("{e}\n{}", describe_from(&client, 1, &survivors).await);
        }
        // They refill the outbound slot node0 held from their address books.
        wait_targets(&client, 1, &survivors, Duration::from_secs(30)).await;
        eprintln!(
            "node0 down: the other nine agree on block {h_down} and hold their targets\n{}",
            describe_from(&client, 1, &survivors).await
        );

        // 4. node0 restarts from its data dir, rejoins and catches up.
        let before = net.nodes[0].log_text().len();
        net.nodes[0].start().unwrap();
        wait_all_up(&client, std::slice::from_ref(&urls[0]), UP)
            .await
            .unwrap();
        let h_back = max_height(&client, &urls).await + 2;
        if let Err(e) = wait_common_block(&client, &urls, h_back, Duration::from_secs(40)).await {
            let log = net.nodes[0].log_text();
            panic!(
                "{e}\n{}\nnode0 since restart:\n{}",
                describe(&client, &urls).await,
                log.get(before..).unwrap_or_default()
            );
        }
        wait_targets(&client, 0, &urls, Duration::from_secs(30)).await;
        assert!(
            block_hash(&client, &urls[0], h_down).await.is_some(),
            "node0 fetched what was produced while it was down"
        );
        eprintln!(
            "node0 back: all agree on block {h_back}; {:.1} s in all\n{}",
            t0.elapsed().as_secs_f64(),
            describe(&client, &urls).await
        );
        for n in &mut net.nodes {
            assert!(n.exited().is_none(), "{} crashed", n.name);
        }
    };
    tokio::time::timeout(Duration::from_secs(240), test)
        .await
        .expect("test exceeded 240 s");
}
