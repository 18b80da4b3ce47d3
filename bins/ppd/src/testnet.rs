//! `ppd testnet`: writes everything an N-node loopback network needs.
//!
//! Layout: `DIR/genesis.json`, and for each node I `DIR/nodeI/node.key` and `DIR/nodeI/ppd.toml`
//! (data_dir = ".", genesis = "../genesis.json", http 127.0.0.1:P+I, p2p 127.0.0.1:Q+I, node 0 as
//! the bootstrap peer of every other node). Every node is a stakeholder with equal stake and an
//! equal funded balance, so leadership rotates among all of them.
//!
//! Praos (the default; `--leader-mode classic` writes a classic network, whose nodes hold their
//! stakeholder keys as `node.key`): the stakeholder keys are cold keys, written to
//! `DIR/cold/nodeI.key` and never into a node's directory; each node gets its own network key
//! (`node.key`), a VRF key (`vrf.key`), a hot key (`hot.key`) and the certificate
//! `{hot key, counter 0, valid from epoch 0}` its cold key signed (`opcert.json`).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use pp_ledger::{
    Genesis, Hash, InitialBalance, InitialStakeholder, KeyPair, LeaderMode, PublicKey,
    DEVNET_ACTIVE_SLOT_COEFF,
};

use crate::cli::{TestnetArgs, TestnetLeaderMode};
use crate::config::FileConfig;

/// Most nodes a testnet may have: one machine's loopback, not a real deployment.
pub(crate) const MAX_TESTNET_NODES: usize = 64;
/// Stake of each testnet node.
pub(crate) const TESTNET_STAKE: u64 = 1_000;
/// Initial balance of each testnet node.
pub(crate) const TESTNET_BALANCE: u64 = 1_000_000_000;
/// Praos: the directory (under the testnet's) that holds the stakeholders' cold keys.
pub(crate) const COLD_DIR: &str = "cold";

/// What `ppd testnet` wrote.
#[derive(Debug)]
pub(crate) struct Written {
    /// The genesis file.
    pub(crate) genesis_path: PathBuf,
    /// The genesis.
    pub(crate) genesis: Genesis,
    /// Each node's config file.
    pub(crate) configs: Vec<PathBuf>,
}

/// Checks the arguments before anything is written.
fn check(args: &TestnetArgs) -> anyhow::Result<()> {
    if !(1..=MAX_TESTNET_NODES).contains(&args.nodes) {
        bail!(
            "--nodes {} is not between 1 and {MAX_TESTNET_NODES}",
            args.nodes
        );
    }
    let last = |base: u16, what: &str| -> anyhow::Result<u16> {
        if base == 0 {
            bail!("{what} must not be 0 (every node needs a fixed, known port)");
        }
        let last = u32::from(base) + args.nodes as u32 - 1;
        u16::try_from(last)
            .with_context(|| format!("{what} {base} + {} nodes passes port 65535", args.nodes))
    };
    let http_last = last(args.base_http_port, "--base-http-port")?;
    let p2p_last = last(args.base_p2p_port, "--base-p2p-port")?;
    let overlap = args.base_http_port <= p2p_last && args.base_p2p_port <= http_last;
    if overlap {
        bail!(
            "HTTP ports {}..={http_last} overlap P2P ports {}..={p2p_last}",
            args.base_http_port,
            args.base_p2p_port
        );
    }
    Ok(())
}

/// Builds the genesis for `keys` (node I is stakeholder `nodeI`); in praos mode node I
/// registers the VRF key of `vrf_seeds[I]`.
pub(crate) fn build_genesis(
    args: &TestnetArgs,
    keys: &[KeyPair],
    vrf_seeds: &[[u8; 32]],
    genesis_time: u64,
) -> anyhow::Result<Genesis> {
    let first = keys.first().context("a testnet needs at least one node")?;
    let mut g = Genesis::devnet("node0", first.public(), genesis_time);
    g.network = args.network.clone();
    g.slot_duration_ms = args.slot_ms;
    g.slots_per_epoch = args.slots_per_epoch;
    g.difficulty = args.difficulty;
    // A fresh nonce per testnet: two testnets written at different times never share a genesis
    // even if someone reused keys.
    g.epoch_nonce = Hash::blake2b_parts(&[
        b"pp-testnet epoch nonce 0",
        args.network.as_bytes(),
        &genesis_time.to_be_bytes(),
    ]);
    g.initial_balances = keys
        .iter()
        .map(|k| InitialBalance {
            account: k.public(),
            amount: TESTNET_BALANCE,
        })
        .collect();
    g.initial_stakeholders = keys
        .iter()
        .enumerate()
        .map(|(i, k)| InitialStakeholder {
            id: format!("node{i}"),
            public_key: k.public(),
            stake: TESTNET_STAKE,
            vrf_key: None,
        })
        .collect();
    if args.leader_mode == TestnetLeaderMode::Praos {
        let vrf_keys: Vec<PublicKey> = vrf_seeds
            .iter()
            .map(|s| pp_server::praos::vrf_public_of(*s))
            .collect();
        g = g.into_praos(DEVNET_ACTIVE_SLOT_COEFF, &vrf_keys);
    }
    g.validate().context("the testnet genesis is invalid")?;
    Ok(g)
}

/// Writes the testnet described by `args`; refuses to touch a directory that already holds one.
pub(crate) fn write(args: &TestnetArgs) -> anyhow::Result<Written> {
    check(args)?;
    let dir = &args.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let genesis_path = dir.join("genesis.json");
    if genesis_path.exists() {
        bail!(
            "{} already exists; refusing to overwrite a testnet (pick another --dir)",
            genesis_path.display()
        );
    }
    for i in 0..args.nodes {
        let node_dir = dir.join(format!("node{i}"));
        if node_dir.exists() {
            bail!(
                "{} already exists; refusing to overwrite a node",
                node_dir.display()
            );
        }
    }
    let keys: Vec<KeyPair> = (0..args.nodes)
        .map(|_| pp_server::keys::random_key())
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("system clock is before 1970")?
        .as_millis() as u64;
    let vrf_seeds: Vec<[u8; 32]> = (0..args.nodes)
        .map(|_| pp_server::keys::random_key().secret_bytes())
        .collect();
    let genesis = build_genesis(
        args,
        &keys,
        &vrf_seeds,
        now.saturating_add(args.start_delay_ms),
    )?;

    let praos = genesis.leader_mode == LeaderMode::Praos;
    let cold_dir = dir.join(COLD_DIR);
    if praos {
        std::fs::create_dir_all(&cold_dir)
            .with_context(|| format!("cannot create {}", cold_dir.display()))?;
    }
    let mut configs = Vec::with_capacity(args.nodes);
    for (i, key) in keys.iter().enumerate() {
        let node_dir = dir.join(format!("node{i}"));
        std::fs::create_dir(&node_dir)
            .with_context(|| format!("cannot create {}", node_dir.display()))?;
        if praos {
            // The stakeholder key is the cold key: kept out of the node's directory. The node
            // holds a network key, its VRF key, a hot key and the cold key's certificate for it.
            pp_server::keys::save_key_file(&cold_dir.join(format!("node{i}.key")), key)?;
            pp_server::keys::write_key(&node_dir, &pp_server::keys::random_key())?;
            pp_server::praos::write_vrf_seed(&node_dir, vrf_seeds[i])?;
            let hot = pp_server::keys::random_key();
            let cert = pp_server::opcert::issue(key, hot.public(), 0, 0, &genesis.hash());
            pp_server::opcert::write_node_files(&node_dir, &hot, &cert)?;
        } else {
            // The node reads its key from its data dir ("." = node_dir): write it the Server's
            // way.
            pp_server::keys::write_key(&node_dir, key)?;
        }
        let config = node_config(args, i);
        let path = node_dir.join("ppd.toml");
        std::fs::write(&path, config.to_toml())
            .with_context(|| format!("cannot write {}", path.display()))?;
        configs.push(path);
    }
    // The genesis is written last: its presence marks a complete testnet directory.
    std::fs::write(&genesis_path, genesis.to_json_pretty())
        .with_context(|| format!("cannot write {}", genesis_path.display()))?;
    Ok(Written {
        genesis_path,
        genesis,
        configs,
    })
}

/// The config of node `i`.
fn node_config(args: &TestnetArgs, i: usize) -> FileConfig {
    // `check` proved base + nodes - 1 fits in u16.
    let port = |base: u16| u32::from(base) + i as u32;
    FileConfig {
        data_dir: Some(PathBuf::from(".")),
        genesis: Some(PathBuf::from("../genesis.json")),
        node_id: Some(format!("node{i}")),
        http: Some(format!("127.0.0.1:{}", port(args.base_http_port))),
        p2p: Some(format!("127.0.0.1:{}", port(args.base_p2p_port))),
        peers: (i > 0).then(|| vec![format!("127.0.0.1:{}", args.base_p2p_port)]),
        max_peers: None,
        min_fee: None,
        db_cache_mb: None,
        cpu_priority: None,
        http_threads: None,
        log: None,
        log_format: None,
    }
}

/// Prints what was written, with the command to start each node.
pub(crate) fn report(w: &Written) {
    println!(
        "wrote {} (network {}, genesis {}, {} stakeholders)",
        w.genesis_path.display(),
        w.genesis.network,
        w.genesis.hash(),
        w.genesis.initial_stakeholders.len()
    );
    for (s, c) in w.genesis.initial_stakeholders.iter().zip(&w.configs) {
        println!(
            "  {}: account {}  ->  ppd run --config {}",
            s.id,
            s.public_key,
            c.display()
        );
    }
    if w.genesis.leader_mode == LeaderMode::Praos {
        if let Some(root) = w.genesis_path.parent() {
            println!(
                "  cold keys (the stakeholders' accounts, not needed by the nodes): {}",
                root.join(COLD_DIR).display()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FileConfig, Settings};
    use std::path::Path;

    fn args(dir: &Path, nodes: usize) -> TestnetArgs {
        TestnetArgs {
            nodes,
            dir: dir.to_path_buf(),
            base_http_port: 18080,
            base_p2p_port: 19000,
            slot_ms: 200,
            start_delay_ms: 3000,
            difficulty: 1,
            slots_per_epoch: 30,
            network: "pp-testnet".into(),
            leader_mode: TestnetLeaderMode::Classic,
        }
    }

    #[test]
    fn praos_testnet_writes_a_vrf_key_per_node_registered_in_the_genesis() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(dir.path(), 3);
        a.leader_mode = TestnetLeaderMode::Praos;
        let w = write(&a).unwrap();
        assert_eq!(w.genesis.leader_mode, LeaderMode::Praos);
        assert_eq!(w.genesis.active_slot_coeff, Some(DEVNET_ACTIVE_SLOT_COEFF));
        pp_ouroboros::Ouroboros::new(&w.genesis).expect("valid VRF keys");
        for (i, s) in w.genesis.initial_stakeholders.iter().enumerate() {
            let node = dir.path().join(format!("node{i}"));
            let vrf = pp_server::praos::load_vrf_key_file(&node.join("vrf.key")).unwrap();
            assert_eq!(s.vrf_key, Some(PublicKey(*vrf.public().as_bytes())));
            // The cold key is outside the node's directory; the node holds a certificate from
            // it for its hot key, and a network key that is neither.
            let cold =
                pp_server::keys::load_key_file(&dir.path().join(format!("cold/node{i}.key")))
                    .unwrap();
            assert_eq!(cold.public(), s.public_key);
            let hot = pp_server::keys::load_key_file(&node.join("hot.key")).unwrap();
            let cert_path = node.join("opcert.json");
            let cert = pp_server::opcert::load_cert_file(&cert_path).unwrap();
            assert_eq!(cert.cold_key, s.public_key);
            assert_eq!((cert.cert.counter, cert.cert.valid_from), (0, 0));
            pp_server::opcert::check_cert(&cert_path, &cert, &hot, &w.genesis.hash()).unwrap();
            let node_key = pp_server::keys::load_key_file(&node.join("node.key")).unwrap();
            assert!(node_key.public() != s.public_key && node_key.public() != hot.public());
            let in_node_dir: Vec<_> = std::fs::read_dir(&node)
                .unwrap()
                .map(|e| std::fs::read(e.unwrap().path()).unwrap())
                .collect();
            let cold_hex = hex::encode(cold.secret_bytes());
            assert!(in_node_dir
                .iter()
                .all(|b| !String::from_utf8_lossy(b).contains(&cold_hex)));
        }
        // A classic testnet writes none.
        let c = tempfile::tempdir().unwrap();
        write(&args(c.path(), 1)).unwrap();
        assert!(!c.path().join("node0/vrf.key").exists());
    }

    #[test]
    fn writes_genesis_keys_and_configs_that_load_back() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("net");
        let w = write(&args(&root, 3)).unwrap();
        let g = crate::config::load_genesis(&root.join("genesis.json")).unwrap();
        assert_eq!(g, w.genesis);
        assert_eq!(g.slot_duration_ms, 200);
        assert_eq!(g.initial_stakeholders.len(), 3);
        for i in 0..3 {
            let node = root.join(format!("node{i}"));
            let key = pp_server::keys::load_key_file(&node.join("node.key")).unwrap();
            let sh = &g.initial_stakeholders[i];
            assert_eq!(sh.public_key, key.public());
            assert_eq!(sh.id, format!("node{i}"));
            assert_eq!(sh.stake, TESTNET_STAKE);
            assert!(g
                .initial_balances
                .iter()
                .any(|b| b.account == key.public() && b.amount == TESTNET_BALANCE));
            let cfg = node.join("ppd.toml");
            let s = Settings::from_args(&crate::cli::RunArgs {
                config: Some(cfg.clone()),
                ..Default::default()
            })
            .unwrap();
            assert_eq!(s.data_dir, node.join("."));
            assert_eq!(s.genesis, Some(node.join("../genesis.json")));
            assert_eq!(s.http.port(), 18080 + i as u16);
            assert_eq!(s.p2p.map(|a| a.port()), Some(19000 + i as u16));
            assert_eq!(s.node_id, Some(format!("node{i}")));
            let expected_peers: Vec<String> = if i == 0 {
                vec![]
            } else {
                vec!["127.0.0.1:19000".into()]
            };
            assert_eq!(s.peers, expected_peers);
            // The file itself has exactly the documented keys.
            let raw = FileConfig::load(&cfg).unwrap();
            assert_eq!(raw.genesis, Some(PathBuf::from("../genesis.json")));
        }
    }

    #[test]
    fn genesis_time_is_in_the_future_by_the_start_delay() {
        let dir = tempfile::tempdir().unwrap();
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let w = write(&args(dir.path(), 1)).unwrap();
        assert!(w.genesis.genesis_time >= before + 3000);
        assert!(w.genesis.genesis_time <= before + 3000 + 60_000);
    }

    #[test]
    fn refuses_to_overwrite_an_existing_testnet() {
        let dir = tempfile::tempdir().unwrap();
        write(&args(dir.path(), 2)).unwrap();
        let key_before = std::fs::read(dir.path().join("node0/node.key")).unwrap();
        assert!(write(&args(dir.path(), 2)).is_err());
        assert_eq!(
            std::fs::read(dir.path().join("node0/node.key")).unwrap(),
            key_before
        );
    }

    #[test]
    fn rejects_bad_node_counts_and_port_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let mut a = args(dir.path(), 0);
        assert!(write(&a).is_err());
        a.nodes = MAX_TESTNET_NODES + 1;
        assert!(write(&a).is_err());
        a.nodes = 3;
        a.base_http_port = 65534;
        assert!(write(&a).is_err());
        a.base_http_port = 9001;
        a.base_p2p_port = 9000;
        assert!(
            write(&a).is_err(),
            "overlapping port ranges must be refused"
        );
        a.base_http_port = 8080;
        a.slot_ms = 1;
        assert!(write(&a).is_err(), "slot below the genesis minimum");
        assert!(!dir.path().join("genesis.json").exists());
    }

    #[test]
    fn two_testnets_have_different_genesis_hashes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let ga = write(&args(a.path(), 2)).unwrap().genesis;
        let gb = write(&args(b.path(), 2)).unwrap().genesis;
        assert_ne!(ga.hash(), gb.hash());
    }
}
