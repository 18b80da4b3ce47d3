//! Initial sync across processes: a fresh node with an empty data dir joins a running network
//! and downloads 500+ blocks, ending with the same chain as the node it synced from.

use std::time::{Duration, Instant};

use pp_integration_tests::{
    block_hashes, free_port_block, height, http, wait_all_up, wait_for, write_follower_config,
    Node, Testnet,
};

const TARGET: u64 = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_node_with_empty_data_dir_syncs_500_blocks() {
    // Build ppd before the clock starts: a cold build must not eat the test's time bound.
    pp_integration_tests::ppd_bin();
    let test = async {
        // One stakeholder leading about half of the 10 ms slots (praos, f = 1/2) builds 500
        // blocks in about 10 s.
        let mut net = Testnet::write(1, &["--slot-ms", "10", "--start-delay-ms", "500"]).unwrap();
        net.start_all().unwrap();
        let source = net.urls()[0].clone();
        let client = http();
        wait_all_up(
            &client,
            std::slice::from_ref(&source),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        wait_for(
            &format!("the source to build {TARGET} blocks"),
            Duration::from_secs(90),
            Duration::from_millis(200),
            || async { (height(&client, &source).await? >= TARGET).then_some(()) },
        )
        .await
        .unwrap();

        let ports = free_port_block(2);
        let dir = net.dir.path().join("fresh");
        let cfg = write_follower_config(
            &dir,
            "fresh",
            &net.root().join("genesis.json"),
            ports,
            ports + 1,
            &[format!("127.0.0.1:{}", net.p2p_base)],
        )
        .unwrap();
        assert!(
            !dir.join("chain.redb").exists(),
            "the data dir starts empty"
        );
        let started = Instant::now();
        let fresh = Node::spawn_config("fresh", ports, &cfg).unwrap();
        wait_all_up(
            &client,
            std::slice::from_ref(&fresh.url),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
        wait_for(
            &format!("the fresh node to sync {TARGET} blocks"),
            Duration::from_secs(60),
            Duration::from_millis(50),
            || async { (height(&client, &fresh.url).await? >= TARGET).then_some(()) },
        )
        .await
        .unwrap();
        let took = started.elapsed();
        eprintln!(
            "fresh node synced {TARGET} blocks in {took:?} ({:.0} blocks/s incl. start-up)",
            TARGET as f64 / took.as_secs_f64()
        );
        let mine = block_hashes(&client, &fresh.url, TARGET).await.unwrap();
        let theirs = block_hashes(&client, &source, TARGET).await.unwrap();
        assert_eq!(mine.len(), TARGET as usize + 1);
        assert_eq!(mine, theirs, "the synced chain is the source's chain");
    };
    tokio::time::timeout(Duration::from_secs(170), test)
        .await
        .expect("test exceeded 170 s");
}
