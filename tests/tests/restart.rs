//! Crash safety across processes: a node killed with SIGKILL and restarted from its own data dir
//! keeps every block it had reported (same hash at the same index) and catches up with the others.

use std::time::Duration;

use pp_integration_tests::{
    block_hashes, height, http, wait_all_up, wait_common_block, wait_height, Testnet,
};

const UP: Duration = Duration::from_secs(60);

/// The `height=N` of the first `node state loaded` line in `log` (the Server's start-up line).
fn loaded_height(log: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains("node state loaded"))?;
    let rest = &line[line.find(" height=")? + " height=".len()..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_killed_with_sigkill_keeps_every_block_it_had_and_catches_up() {
    // Build ppd before the clock starts: a cold build must not eat the test's time bound.
    pp_integration_tests::ppd_bin();
    let test = async {
        let mut net = Testnet::write(3, &["--slot-ms", "300", "--start-delay-ms", "3000"]).unwrap();
        net.start_all().unwrap();
        let urls = net.urls();
        let client = http();
        wait_all_up(&client, &urls, UP).await.unwrap();
        wait_height(&client, &urls, 8, UP).await.unwrap();

        // Everything node2 reports right before the kill is what it has acknowledged.
        let victim = urls[2].clone();
        let h_before = height(&client, &victim).await.unwrap();
        let before = block_hashes(&client, &victim, h_before).await.unwrap();
        net.nodes[2].kill9();
        assert!(height(&client, &victim).await.is_none(), "node2 is down");

        // The others go on without it.
        let survivors = &urls[..2];
        let h_down = height(&client, &urls[0]).await.unwrap();
        wait_height(&client, survivors, h_down + 3, UP)
            .await
            .unwrap();

        let log_before_restart = net.nodes[2].log_text().len();
        net.nodes[2].start().unwrap();
        wait_all_up(&client, std::slice::from_ref(&victim), UP)
            .await
            .unwrap();
        // The node loads its chain from its own disk before it talks to any peer; the height it
        // loaded proves the blocks survived the kill (rather than being fetched again).
        let restart_log = net.nodes[2]
            .log_text()
            .get(log_before_restart..)
            .unwrap_or_default()
            .to_string();
        let loaded = loaded_height(&restart_log)
            .unwrap_or_else(|| panic!("no `node state loaded` line after restart:\n{restart_log}"));
        assert!(
            loaded >= h_before,
            "node2 reloaded height {loaded} from disk but had reported {h_before}"
        );
        // Straight from its own disk: every block it had is still there, at the same index.
        let after = block_hashes(&client, &victim, h_before).await.unwrap();
        assert_eq!(after, before, "blocks changed across kill -9");

        // And it catches up: it reaches the others' height and agrees with them there.
        let target = height(&client, &urls[0]).await.unwrap();
        wait_height(&client, std::slice::from_ref(&victim), target, UP)
            .await
            .unwrap();
        let common = wait_common_block(&client, &urls, target, UP).await.unwrap();
        assert_eq!(common.len(), 64);
        // Nothing it had was lost in catching up either.
        let final_hashes = block_hashes(&client, &victim, h_before).await.unwrap();
        assert_eq!(final_hashes, before);
        assert!(
            net.nodes[2].exited().is_none(),
            "node2 crashed after catching up"
        );
    };
    tokio::time::timeout(Duration::from_secs(150), test)
        .await
        .expect("test exceeded 150 s");
}
