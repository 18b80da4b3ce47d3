//! The `ppd` command line as a user meets it: keygen, config errors, a single devnet node driven by
//! `ppd status` and `ppd tx transfer`, and a clean SIGTERM shutdown.

use std::time::Duration;

use pp_integration_tests::{
    balance, free_port_block, http, ppd, status, wait_all_up, wait_for, Node,
};

#[test]
fn keygen_writes_a_private_key_prints_its_account_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alice.key");
    let p = path.display().to_string();
    let out = ppd(&["keygen", "--out", &p]).unwrap().ok().unwrap();
    let account = out.last_word().unwrap().to_string();
    assert_eq!(account.len(), 64, "{out:?}");
    assert!(account.bytes().all(|b| b.is_ascii_hexdigit()));
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim().len(), 64);
    // The printed account is the public key of the seed in the file.
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).unwrap();
    assert_eq!(
        pp_ledger::KeyPair::from_seed(seed).public().to_hex(),
        account
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = ppd(&["keygen", "--out", &p]).unwrap();
    assert!(!again.status.success());
    assert!(again.stderr.contains("already exists"), "{again:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

#[test]
fn run_refuses_a_config_with_an_unknown_key_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ppd.toml");
    std::fs::write(&cfg, "data_dir = \".\"\npeer = [\"127.0.0.1:9000\"]\n").unwrap();
    let out = ppd(&["run", "--config", &cfg.display().to_string()]).unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("peer"), "{out:?}");
    assert!(
        !dir.path().join("chain.redb").exists(),
        "nothing may be started on a bad config"
    );
}

#[test]
fn run_refuses_peers_without_p2p() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let out = ppd(&["run", "--data-dir", &d, "--peer", "127.0.0.1:9"]).unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains("p2p"), "{out:?}");
}

#[test]
fn run_exits_1_naming_the_address_when_the_http_port_is_taken() {
    pp_integration_tests::ppd_bin();
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let d = dir.path().join("data").display().to_string();
    let out = ppd(&["run", "--data-dir", &d, "--http", &addr]).unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stderr.contains(&addr), "{out:?}");
}

#[test]
fn tx_transfer_to_an_unreachable_node_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    ppd(&["keygen", "--out", &key.display().to_string()])
        .unwrap()
        .ok()
        .unwrap();
    let port = free_port_block(1);
    let out = ppd(&[
        "tx",
        "transfer",
        "--key",
        &key.display().to_string(),
        "--to",
        &"ab".repeat(32),
        "--amount",
        "5",
        "--node",
        &format!("http://127.0.0.1:{port}"),
    ])
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_node_serves_status_accepts_cli_transfers_and_stops_cleanly_on_sigterm() {
    // Build ppd before the clock starts: a cold build must not eat the test's time bound.
    pp_integration_tests::ppd_bin();
    let test = async {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let port = free_port_block(1);
        let args: Vec<String> = vec![
            "run".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--http".into(),
            format!("127.0.0.1:{port}"),
        ];
        let mut node = Node::spawn("devnet", port, &args, &dir.path().join("ppd.log")).unwrap();
        let client = http();
        wait_all_up(
            &client,
            std::slice::from_ref(&node.url),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
        // A single-node devnet produces blocks on its own within seconds.
        wait_for(
            "the devnet to produce block 1",
            Duration::from_secs(15),
            Duration::from_millis(100),
            || async {
                (status(&client, &node.url).await.ok()?["height"].as_u64()? >= 1).then_some(())
            },
        )
        .await
        .unwrap();

        let st = ppd(&["status", "--node", &node.url, "--output", "json"])
            .unwrap()
            .ok()
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&st.stdout).unwrap();
        assert_eq!(v["p2p_enabled"], false, "{v}");
        assert!(
            v["genesis_hash"].as_str().is_some_and(|s| s.len() == 64),
            "{v}"
        );
        assert!(st.stdout.contains('\n'), "status is pretty-printed");

        // Transfer from the node's own (funded devnet) key to a new account, with the CLI.
        let node_key = data.join("node.key").display().to_string();
        let bob_key = dir.path().join("bob.key");
        let bob = ppd(&["keygen", "--out", &bob_key.display().to_string()])
            .unwrap()
            .ok()
            .unwrap()
            .last_word()
            .unwrap()
            .to_string();
        for _ in 0..2 {
            let out = ppd(&[
                "tx", "transfer", "--key", &node_key, "--to", &bob, "--amount", "7", "--node",
                &node.url,
            ])
            .unwrap()
            .ok()
            .unwrap();
            assert_eq!(out.last_word().unwrap().len(), 64, "{out:?}");
        }
        wait_for(
            "bob's balance to be 14",
            Duration::from_secs(20),
            Duration::from_millis(100),
            || async { (balance(&client, &node.url, &bob).await? == 14).then_some(()) },
        )
        .await
        .unwrap();

        // Bob cannot pay more than he has: the node's error reaches the user, exit code 1.
        let out = ppd(&[
            "tx",
            "transfer",
            "--key",
            &bob_key.display().to_string(),
            "--to",
            &"cd".repeat(32),
            "--amount",
            "1000",
            "--node",
            &node.url,
        ])
        .unwrap();
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(out.stderr.contains("node answered 4"), "{out:?}");

        let exit = node.terminate(Duration::from_secs(15)).unwrap();
        assert!(exit.success(), "ppd must exit 0 on SIGTERM, got {exit}");
        let log = node.log_text();
        assert!(log.contains("ppd stopped"), "{log}");
        assert!(log.contains("block produced"), "one line per block: {log}");
    };
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("test exceeded 120 s");
}
