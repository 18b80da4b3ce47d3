//! `ppd run` (and `ppd` with no arguments): start a node and run it until SIGINT/SIGTERM.
//!
//! Before anything is written, the settings are validated and the listen ports are tried: a
//! port clash or a bad setting leaves no data dir behind. The network is, in order: `--genesis`;
//! the genesis the data dir already holds; the built-in devnet ([`crate::devnet`]).

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;
use pp_ledger::Genesis;
use pp_server::{NetworkConfig, Server, ServerConfig};
use tokio::signal::unix::{signal, SignalKind};
use tracing::info;
use tracing_subscriber::EnvFilter;

use ppd::cli::{KeySpec, LogFormat, RunArgs};
use ppd::config::{load_genesis, Settings};
use ppd::devnet;

/// Sets up logging: `--log`/PPD_LOG if set, else RUST_LOG, else the config's `log`, else `info`;
/// in the configured format. Logs go to stderr so that stdout stays free for machine output.
fn init_logging(settings: &Settings) -> anyhow::Result<()> {
    let filter = match (&settings.log_override, std::env::var("RUST_LOG")) {
        (Some(f), _) => {
            EnvFilter::try_new(f).context("--log (PPD_LOG) is not a valid log filter")?
        }
        (None, Ok(v)) if !v.trim().is_empty() => {
            EnvFilter::try_new(v).context("RUST_LOG is not a valid log filter")?
        }
        _ => EnvFilter::try_new(settings.log.as_deref().unwrap_or("info"))
            .context("config value `log` is not a valid log filter")?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match settings.log_format {
        // One JSON object per line, fields flattened, for log collectors (never coloured).
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        // Colours only on a terminal: redirected logs (files, journald) stay plain text.
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}

/// The network a node will run, decided before start.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Network {
    /// `--genesis FILE` (or the config's `genesis`).
    File(Genesis),
    /// The built-in devnet (a new data dir, or one that already holds it): the praos devnet,
    /// or the classic one of an older `ppd` that the data dir holds (it keeps running that).
    BuiltInDevnet(Genesis),
    /// Whatever other genesis the data dir holds (the Server reads it).
    Stored(Genesis),
}

/// Decides the network from the settings and what the data dir holds (reads only).
fn choose_network(settings: &Settings) -> anyhow::Result<Network> {
    if let Some(path) = &settings.genesis {
        return Ok(Network::File(load_genesis(path)?));
    }
    let stored = settings.data_dir.join(pp_server::GENESIS_FILE);
    if !stored.exists() {
        return Ok(Network::BuiltInDevnet(devnet::genesis()));
    }
    let g = load_genesis(&stored)?;
    Ok(if devnet::is_built_in(&g) {
        Network::BuiltInDevnet(g)
    } else {
        Network::Stored(g)
    })
}

/// Translates validated settings into the Server's configuration.
fn server_config(settings: &Settings, network: &Network) -> anyhow::Result<ServerConfig> {
    let mut config = ServerConfig::new(settings.data_dir.clone());
    config.genesis = match network {
        Network::File(g) => Some(g.clone()),
        Network::BuiltInDevnet(g) => Some(g.clone()),
        Network::Stored(_) => None,
    };
    config.http_addr = Some(settings.http);
    config.mempool_min_fee = settings.min_fee;
    config.db_cache_mb = settings.db_cache_mb;
    config.cpu_priority = settings.cpu_priority;
    config.http_threads = settings.http_threads;
    if let Some(spec) = &settings.key {
        config.key = Some(spec.load()?);
    }
    match (&settings.node_id, network) {
        (Some(id), _) => config.node_id = id.clone(),
        // On the devnet a node is named after its dev key; without a key it is alice, whose dev
        // key the Server then picks (she is the genesis stakeholder of that name) and writes to
        // node.key, unless the data dir already has one.
        (None, Network::BuiltInDevnet(_)) => {
            config.node_id = match &settings.key {
                Some(KeySpec::Dev(name)) => name.clone(),
                Some(KeySpec::File(_)) => config.node_id.clone(),
                None => devnet::DEV_PRODUCER.to_string(),
            }
        }
        (None, _) => {}
    }
    config.network = match settings.p2p {
        Some(p2p) => NetworkConfig {
            enable_p2p: true,
            node_id: config.node_id.clone(),
            bootstrap_peers: settings.peers.clone(),
            listen_addr: p2p.ip().to_string(),
            p2p_port: p2p.port(),
            max_peers: settings.max_peers,
            ..NetworkConfig::default()
        },
        None => NetworkConfig {
            node_id: config.node_id.clone(),
            max_peers: settings.max_peers,
            ..NetworkConfig::default()
        },
    };
    Ok(config)
}

/// Tries to bind each listen address (port 0 excepted) and releases it at once, so that a port
/// already in use is reported, naming the address, before the data dir is created.
fn check_ports(settings: &Settings) -> anyhow::Result<()> {
    let mut wanted: Vec<(&str, &str, SocketAddr)> = vec![("HTTP", "--http", settings.http)];
    if let Some(p2p) = settings.p2p {
        if p2p == settings.http && p2p.port() != 0 {
            anyhow::bail!(
                "the HTTP and P2P addresses are the same ({p2p}); give them different ports"
            );
        }
        wanted.push(("P2P", "--p2p", p2p));
    }
    for (what, flag, addr) in wanted {
        if addr.port() == 0 {
            continue;
        }
        if let Err(e) = std::net::TcpListener::bind(addr) {
            anyhow::bail!(
                "cannot listen for {what} on {addr}: {e} (is another node running there? choose \
                 another address with {flag})"
            );
        }
    }
    Ok(())
}

/// Runs a node with `args` until a signal arrives, then shuts it down cleanly.
pub(crate) fn run(args: &RunArgs) -> anyhow::Result<()> {
    // Settings are validated before logging starts so a config error is one clear line.
    let settings = Settings::from_args(args)?;
    let network = choose_network(&settings)?;
    let config = server_config(&settings, &network)?;
    check_ports(&settings)?;
    init_logging(&settings)?;
    if let Network::Stored(g) = &network {
        if g.network == devnet::DEVNET_NETWORK {
            tracing::warn!(
                data_dir = %settings.data_dir.display(),
                genesis = %g.hash(),
                built_in = %devnet::genesis().hash(),
                "the data dir holds a devnet made by an older ppd (random keys), not the built-in \
                 devnet; it keeps running as before. To switch to the built-in devnet, reset it: \
                 ppd purge --data-dir {}",
                settings.data_dir.display()
            );
        }
    }
    if let Network::BuiltInDevnet(g) = &network {
        if *g == devnet::classic_genesis() {
            tracing::warn!(
                data_dir = %settings.data_dir.display(),
                genesis = %g.hash(),
                built_in = %devnet::genesis().hash(),
                "the data dir holds the classic built-in devnet of an older ppd; it keeps \
                 running as before (classic leader election). New devnets use Praos; to switch, \
                 reset it: ppd purge --data-dir {}",
                settings.data_dir.display()
            );
        }
    }
    warn_short_nonce_tail(&network);
    raise_open_file_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(config, matches!(network, Network::BuiltInDevnet(_))))
}

/// Warns when a praos network's nonce window leaves a settled tail shorter than the stability
/// window (docs/leader-election.md §10.4): the network runs, but a rollback within `k` can still
/// change the next epoch's nonce. A warning, not a genesis error: the devnet and testnet
/// parameters (short epochs for fast tests, k = 100) have such a tail by design. On the built-in
/// devnet, whose parameters the operator cannot choose, it is an info line.
fn warn_short_nonce_tail(network: &Network) {
    let (Network::File(g) | Network::BuiltInDevnet(g) | Network::Stored(g)) = network;
    let Some((tail, stability)) = pp_ouroboros::short_nonce_tail(g) else {
        return;
    };
    let message = format!(
        "praos nonce window: the last {tail} slots of an epoch are settled before the next \
         nonce is used, fewer than the stability window 3k/f = {stability} slots; a rollback the \
         rules allow (up to k = {} blocks) can still replace blocks whose VRF outputs make that \
         nonce. Fine for a devnet; a public network wants slots_per_epoch >= 9k/f \
         (docs/leader-election.md §10.4)",
        g.k
    );
    if matches!(network, Network::BuiltInDevnet(_)) {
        info!(
            slots_per_epoch = g.slots_per_epoch,
            k = g.k,
            settled_tail_slots = tail,
            stability_window_slots = stability,
            "{message}"
        );
    } else {
        tracing::warn!(
            slots_per_epoch = g.slots_per_epoch,
            k = g.k,
            settled_tail_slots = tail,
            stability_window_slots = stability,
            "{message}"
        );
    }
}

/// Raises the soft limit on open files to the hard limit, so that many peers and HTTP clients
/// never starve the listeners of descriptors (the HTTP API bounds its own connections too).
/// Logs the result once; a failure is only a warning.
fn raise_open_file_limit() {
    let before = rlimit::Resource::NOFILE.get().ok();
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => info!(
            soft_before = before.map_or(0, |(s, _)| s),
            soft = soft,
            hard = before.map_or(0, |(_, h)| h),
            "open-file limit"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

fn addr_or_off(a: Option<std::net::SocketAddr>) -> String {
    a.map_or_else(|| "off".to_string(), |a| a.to_string())
}

/// Removes `dir` if this start created it (it did not exist before) and the start failed, so that
/// a failed first start (a port taken meanwhile, a bad key) leaves no half-made data dir.
fn remove_new_dir(dir: &Path, existed: bool) {
    if !existed {
        let _ = std::fs::remove_dir_all(dir);
    }
}

async fn serve(config: ServerConfig, built_in_devnet: bool) -> anyhow::Result<()> {
    let mut sigint = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let data_dir = config.data_dir.clone().unwrap_or_default();
    let existed = data_dir.exists();
    let mut server = Server::with_config(config);
    if let Err(e) = server.start_configured().await {
        remove_new_dir(&data_dir, existed);
        return Err(anyhow::Error::new(e).context(format!(
            "cannot start the node (data dir {})",
            data_dir.display()
        )));
    }
    if built_in_devnet && server.public_key() != devnet::dev_key(devnet::DEV_PRODUCER).public() {
        info!(
            account = %server.public_key(),
            "this node's key is not dev:alice, the built-in devnet's only producer: it follows \
             the chain and produces no blocks"
        );
    }
    info!(
        node_id = %server.node_id(),
        account = %server.public_key(),
        genesis = %server.genesis().hash(),
        network = %server.genesis().network,
        http = %addr_or_off(server.http_addr()),
        p2p = %addr_or_off(server.p2p_addr()),
        data_dir = %data_dir.display(),
        cpu_priority = %server.config().cpu_priority,
        http_threads = server.config().http_threads,
        "ppd started"
    );
    // The node logs a line per block itself; the daemon waits for a signal, or for the node to
    // fail-stop on a storage error.
    let mut watch = tokio::time::interval(FAILURE_POLL);
    let failure = loop {
        tokio::select! {
            _ = sigint.recv() => { info!("SIGINT received, shutting down"); break None }
            _ = sigterm.recv() => { info!("SIGTERM received, shutting down"); break None }
            _ = watch.tick() => if let Some(reason) = server.storage_failure() {
                break Some(reason);
            },
        }
    };
    if let Some(reason) = failure {
        // `/health` answers 503 with the reason meanwhile, so that a supervisor sees why.
        tracing::error!(error = %reason, grace_s = FAILURE_EXIT_GRACE.as_secs(), "storage failed: the node stopped; exiting");
        tokio::select! {
            _ = sigint.recv() => {}
            _ = sigterm.recv() => {}
            _ = tokio::time::sleep(FAILURE_EXIT_GRACE) => {}
        }
        server.shutdown().await;
        anyhow::bail!(
            "storage failed: {reason} (restart the node once the disk is fixed: it resumes from \
             what the disk holds)"
        );
    }
    server.shutdown().await;
    info!("ppd stopped");
    Ok(())
}

/// How often the daemon checks the node for a storage failure.
const FAILURE_POLL: std::time::Duration = std::time::Duration::from_millis(500);
/// How long a failed node keeps answering `/health` (with the failure) before the daemon exits.
const FAILURE_EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_in(dir: &Path) -> Settings {
        let mut s = Settings::merge(None, &RunArgs::default()).unwrap();
        s.data_dir = dir.join("data");
        s
    }

    #[test]
    fn default_settings_give_the_built_in_devnet_with_alice_and_p2p_off() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings_in(dir.path());
        let n = choose_network(&s).unwrap();
        assert_eq!(n, Network::BuiltInDevnet(devnet::genesis()));
        let c = server_config(&s, &n).unwrap();
        assert_eq!(c.http_addr, Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(c.genesis, Some(devnet::genesis()));
        assert!(!c.network.enable_p2p);
        // Named alice, the Server picks her dev key (the genesis stakeholder of that name).
        assert_eq!(c.effective_node_id(), "alice");
        assert!(c.key.is_none());
        assert!(!dir.path().join("data").exists(), "deciding writes nothing");
    }

    #[test]
    fn a_dev_key_names_the_devnet_node_and_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings_in(dir.path());
        s.key = Some(KeySpec::Dev("bob".into()));
        let c = server_config(&s, &Network::BuiltInDevnet(devnet::genesis())).unwrap();
        assert_eq!(c.effective_node_id(), "bob");
        assert_eq!(
            c.key.map(|k| k.public()),
            Some(devnet::dev_key("bob").public())
        );
        s.key = Some(KeySpec::File(dir.path().join("missing.key")));
        let e = server_config(&s, &Network::BuiltInDevnet(devnet::genesis())).unwrap_err();
        assert!(e.to_string().contains("missing.key"), "{e}");
    }

    #[test]
    fn a_data_dir_holding_another_genesis_keeps_it_and_one_holding_the_devnet_is_the_devnet() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings_in(dir.path());
        std::fs::create_dir_all(&s.data_dir).unwrap();
        let old = pp_ledger::Genesis::devnet(
            "node0",
            pp_ledger::KeyPair::from_seed([5; 32]).public(),
            1_700_000_000_000,
        );
        let path = s.data_dir.join(pp_server::GENESIS_FILE);
        std::fs::write(&path, old.to_json_pretty()).unwrap();
        let n = choose_network(&s).unwrap();
        assert_eq!(n, Network::Stored(old));
        let c = server_config(&s, &n).unwrap();
        assert!(c.genesis.is_none(), "the Server reads the stored genesis");
        assert_eq!(c.effective_node_id(), "node0");
        std::fs::write(&path, devnet::genesis().to_json_pretty()).unwrap();
        assert_eq!(
            choose_network(&s).unwrap(),
            Network::BuiltInDevnet(devnet::genesis())
        );
        // The classic devnet of an older ppd keeps running as itself, named alice as before.
        let classic = devnet::classic_genesis();
        std::fs::write(&path, classic.to_json_pretty()).unwrap();
        let n = choose_network(&s).unwrap();
        assert_eq!(n, Network::BuiltInDevnet(classic.clone()));
        let c = server_config(&s, &n).unwrap();
        assert_eq!(c.genesis, Some(classic));
        assert_eq!(c.effective_node_id(), "alice");
        std::fs::write(&path, "{}").unwrap();
        assert!(
            choose_network(&s).is_err(),
            "a broken stored genesis is an error"
        );
    }

    #[test]
    fn p2p_address_turns_p2p_on_with_peers_node_id_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings_in(dir.path());
        s.p2p = Some("127.0.0.1:9001".parse().unwrap());
        s.peers = vec!["127.0.0.1:9000".into()];
        s.node_id = Some("node1".into());
        s.max_peers = 5;
        let c = server_config(&s, &Network::BuiltInDevnet(devnet::genesis())).unwrap();
        assert!(c.network.enable_p2p);
        assert_eq!(c.network.listen_socket(), "127.0.0.1:9001");
        assert_eq!(c.network.bootstrap_peers, vec!["127.0.0.1:9000"]);
        assert_eq!(c.network.max_peers, 5);
        assert_eq!(c.effective_node_id(), "node1");
    }

    #[test]
    fn genesis_file_is_loaded_and_a_bad_one_is_refused_before_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.json");
        let g = pp_ledger::Genesis::devnet(
            "node0",
            pp_ledger::KeyPair::from_seed([5; 32]).public(),
            1_700_000_000_000,
        );
        std::fs::write(&path, g.to_json_pretty()).unwrap();
        let mut s = settings_in(dir.path());
        s.genesis = Some(path.clone());
        let n = choose_network(&s).unwrap();
        assert_eq!(server_config(&s, &n).unwrap().genesis, Some(g));
        std::fs::write(&path, "{}").unwrap();
        assert!(choose_network(&s).is_err());
    }

    #[test]
    fn a_taken_port_is_reported_with_its_address_and_the_same_address_twice_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let mut s = settings_in(dir.path());
        s.http = addr;
        let m = check_ports(&s).unwrap_err().to_string();
        assert!(m.contains(&addr.to_string()) && m.contains("HTTP"), "{m}");
        s.http = "127.0.0.1:0".parse().unwrap();
        s.p2p = Some(addr);
        let m = check_ports(&s).unwrap_err().to_string();
        assert!(m.contains(&addr.to_string()) && m.contains("P2P"), "{m}");
        drop(taken);
        s.http = addr;
        assert!(check_ports(&s).is_err(), "same address for both");
        s.http = "127.0.0.1:0".parse().unwrap();
        check_ports(&s).unwrap();
    }
}
