//! `ppd run` (and `ppd` with no arguments): start a node and run it until SIGINT/SIGTERM.

use std::io::IsTerminal as _;

use anyhow::Context as _;
use pp_server::{NetworkConfig, Server, ServerConfig};
use tokio::signal::unix::{signal, SignalKind};
use tracing::info;
use tracing_subscriber::EnvFilter;

use crate::cli::RunArgs;
use crate::config::{load_genesis, Settings};

/// Sets up logging: RUST_LOG if set, else the config's `log`, else `info`.
fn init_logging(config_filter: Option<&str>) -> anyhow::Result<()> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::try_new(v).context("RUST_LOG is invalid")?,
        _ => EnvFilter::try_new(config_filter.unwrap_or("info"))
            .context("config value `log` is not a valid log filter")?,
    };
    // Logs go to stderr so that stdout stays free for machine-readable output.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only on a terminal: redirected logs (files, journald) stay plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}

/// Translates validated settings into the Server's configuration.
fn server_config(settings: &Settings) -> anyhow::Result<ServerConfig> {
    let genesis = match &settings.genesis {
        Some(path) => Some(load_genesis(path)?),
        None => None,
    };
    let mut config = ServerConfig::new(settings.data_dir.clone());
    // The defaults of ServerConfig::new are the devnet's; ppd only overrides what it was told.
    config.genesis = genesis;
    config.http_addr = Some(settings.http);
    config.mempool_min_fee = settings.min_fee;
    config.db_cache_mb = settings.db_cache_mb;
    if let Some(id) = &settings.node_id {
        config.node_id = id.clone();
    }
    config.network = match settings.p2p {
        Some(p2p) => NetworkConfig {
            enable_p2p: true,
            node_id: config.node_id.clone(),
            bootstrap_peers: settings.peers.clone(),
            listen_addr: p2p.ip().to_string(),
            p2p_port: p2p.port(),
            max_peers: settings.max_peers,
        },
        None => NetworkConfig {
            node_id: config.node_id.clone(),
            max_peers: settings.max_peers,
            ..NetworkConfig::default()
        },
    };
    Ok(config)
}

/// Runs a node with `args` until a signal arrives, then shuts it down cleanly.
pub(crate) fn run(args: &RunArgs) -> anyhow::Result<()> {
    // Settings are validated before logging starts so a config error is one clear line.
    let settings = Settings::from_args(args)?;
    init_logging(settings.log.as_deref())?;
    raise_open_file_limit();
    let config = server_config(&settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(serve(config))
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

async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    let mut sigint = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let data_dir = config.data_dir.clone().unwrap_or_default();
    let mut server = Server::with_config(config);
    server
        .start_configured()
        .await
        .with_context(|| format!("cannot start the node (data dir {})", data_dir.display()))?;
    info!(
        node_id = %server.node_id(),
        account = %server.public_key(),
        genesis = %server.genesis().hash(),
        network = %server.genesis().network,
        http = %addr_or_off(server.http_addr()),
        p2p = %addr_or_off(server.p2p_addr()),
        data_dir = %data_dir.display(),
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

    fn settings() -> Settings {
        Settings::merge(None, &RunArgs::default()).unwrap()
    }

    #[test]
    fn default_settings_give_a_devnet_server_with_p2p_off() {
        let c = server_config(&settings()).unwrap();
        assert_eq!(c.data_dir, Some("ppd-data".into()));
        assert_eq!(c.http_addr, Some("127.0.0.1:8080".parse().unwrap()));
        assert!(
            c.genesis.is_none(),
            "the Server resolves the built-in devnet genesis"
        );
        assert!(!c.network.enable_p2p);
        assert_eq!(c.effective_node_id(), "node0");
    }

    #[test]
    fn p2p_address_turns_p2p_on_with_peers_node_id_and_limits() {
        let mut s = settings();
        s.p2p = Some("127.0.0.1:9001".parse().unwrap());
        s.peers = vec!["127.0.0.1:9000".into()];
        s.node_id = Some("node1".into());
        s.max_peers = 5;
        let c = server_config(&s).unwrap();
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
        let mut s = settings();
        s.genesis = Some(path.clone());
        assert_eq!(server_config(&s).unwrap().genesis, Some(g));
        std::fs::write(&path, "{}").unwrap();
        assert!(server_config(&s).is_err());
    }
}
