//! The light client's command line, one implementation for both `ppd light` and the slim
//! `pp-light` binary (whose dependency graph leaves out the full node, pp-server): the
//! arguments ([`LightArgs`]), the process set-up ([`limit_malloc_arenas`]) and the run until
//! SIGINT or SIGTERM ([`run`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use pp_ledger::Genesis;
use tokio::signal::unix::{signal, SignalKind};
use tracing::info;

use crate::{LightClient, LightConfig, LightError};

/// The arguments of `ppd light` and `pp-light`.
#[derive(Debug, Clone, clap::Args)]
pub struct LightArgs {
    /// A full node's p2p address to sync headers from.
    #[arg(long, value_name = "HOST:PORT")]
    pub peer: String,
    /// Where the light client's HTTP API listens.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8090")]
    pub http: SocketAddr,
    /// Where the verified headers are kept (in memory only if absent).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The network's genesis file (default: the built-in devnet; `pp-light` has none built in
    /// and needs this).
    #[arg(long, value_name = "FILE")]
    pub genesis: Option<PathBuf>,
    /// A full node's HTTP API, for proofs (http:// may be omitted).
    #[arg(long, value_name = "URL")]
    pub full_node: Option<String>,
    /// Ask full nodes for headers only (the default): they push no block or transaction, only
    /// each new block's signed header (wire protocol 6), which keeps memory flat under load.
    /// `--headers-only=false` has them relay it every block and transaction instead.
    #[arg(
        long,
        env = "PP_LIGHT_HEADERS_ONLY",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value_t = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new(),
    )]
    pub headers_only: bool,
}

/// Why [`run`] stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `RUST_LOG` is not a valid filter.
    #[error("RUST_LOG: {0}")]
    LogFilter(String),
    /// No `--genesis` and no built-in one.
    #[error(
        "--genesis FILE is needed: this binary has no built-in devnet genesis (`ppd light` has)"
    )]
    NoGenesis,
    /// The genesis file cannot be read or is not a genesis.
    #[error("{path}: {reason}")]
    Genesis {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The tokio runtime or a signal handler could not be set up.
    #[error("{what}: {source}")]
    Io {
        /// What was being set up.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The light client could not start.
    #[error("cannot start the light client: {0}")]
    Start(#[from] LightError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// glibc malloc arenas the light client runs with when the operator did not set
/// `MALLOC_ARENA_MAX`: its heap is a few hundred KB of headers and buffers, and each extra arena
/// costs touched pages (side by side at 6,378 blocks of 25 ms slots: 4.7 MB of anonymous memory
/// with one arena, 5.0 MB with glibc's default; docs/testing.md, "Light client sizes").
pub const LIGHT_MALLOC_ARENAS: &str = "1";

/// Make `arenas` the process' default number of glibc malloc arenas: when `MALLOC_ARENA_MAX` is
/// unset, re-execute this same binary (same pid, arguments and `argv[0]`) with it set, since
/// glibc reads it only at start-up and the workspace forbids the `unsafe` a `mallopt` call would
/// need. An operator's own `MALLOC_ARENA_MAX` always stands. Call it before any thread exists.
/// If the exec fails (the binary was replaced or removed under us), the process runs on with
/// glibc's default, and says so on stderr. Does nothing off glibc.
pub fn limit_malloc_arenas(arenas: &str) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt as _;
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        let exe = match std::env::current_exe() {
            Ok(exe) => exe,
            Err(e) => {
                eprintln!("warning: cannot find this binary to set MALLOC_ARENA_MAX ({e}); running with glibc's default malloc arenas");
                return;
            }
        };
        let mut args = std::env::args_os();
        let mut cmd = std::process::Command::new(exe);
        if let Some(arg0) = args.next() {
            cmd.arg0(arg0);
        }
        // `exec` returns only on failure.
        let e = cmd.args(args).env("MALLOC_ARENA_MAX", arenas).exec();
        eprintln!("warning: cannot re-execute with MALLOC_ARENA_MAX={arenas} ({e}); running with glibc's default malloc arenas");
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

/// Runs a light client with `args` and its HTTP API until SIGINT or SIGTERM, then shuts both
/// down. Without `--genesis`, `default_genesis` gives the network (`ppd light`: the built-in
/// devnet); `None` makes `--genesis` required. Logs go to stderr, filtered by `RUST_LOG`
/// (default `info`).
///
/// The runtime is a current-thread one: the client's work (one sync loop, a few HTTP requests,
/// header checks of milliseconds) does not need a worker per core, and every worker thread costs
/// its own stack and malloc caches.
pub fn run(args: &LightArgs, default_genesis: Option<fn() -> Genesis>) -> Result<(), RunError> {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| RunError::LogFilter(e.to_string()))?;
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    let genesis = match &args.genesis {
        Some(path) => {
            let bad = |reason: String| RunError::Genesis {
                path: path.clone(),
                reason,
            };
            let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
            Genesis::from_json(&bytes).map_err(|e| bad(format!("not a valid genesis: {e}")))?
        }
        None => default_genesis.ok_or(RunError::NoGenesis)?(),
    };
    let mut config = LightConfig::new(genesis, args.peer.clone());
    config.full_node = args.full_node.as_ref().map(|u| {
        if u.contains("://") {
            u.clone()
        } else {
            format!("http://{u}")
        }
    });
    config.data_dir = args.data_dir.clone();
    config.headers_only = args.headers_only;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("cannot start the runtime"))?
        .block_on(serve(config, args.http))
}

async fn serve(config: LightConfig, http: SocketAddr) -> Result<(), RunError> {
    let mut sigint = signal(SignalKind::interrupt()).map_err(io("cannot listen for SIGINT"))?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(io("cannot listen for SIGTERM"))?;
    let peer = config.peers.join(",");
    let client = Arc::new(LightClient::start(config).await?);
    let listener = match tokio::net::TcpListener::bind(http).await {
        Ok(l) => l,
        Err(e) => {
            client.shutdown().await;
            return Err(io(format!("cannot listen on {http}"))(e));
        }
    };
    let addr = listener.local_addr().map_err(io("the HTTP address"))?;
    info!(http = %addr, peer = %peer, genesis = %client.genesis_hash(), "light client started");
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let app = crate::http::router(Arc::clone(&client));
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            })
            .await
    });
    tokio::select! {
        _ = sigint.recv() => info!("SIGINT received, shutting down"),
        _ = sigterm.recv() => info!("SIGTERM received, shutting down"),
    }
    let _ = stop_tx.send(true);
    let _ = server.await;
    client.shutdown().await;
    info!("light client stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(genesis: Option<PathBuf>) -> LightArgs {
        LightArgs {
            peer: "127.0.0.1:1".into(),
            http: "127.0.0.1:0".parse().unwrap(),
            data_dir: None,
            genesis,
            full_node: None,
            headers_only: true,
        }
    }

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        light: LightArgs,
    }

    fn headers_only(argv: &[&str]) -> Result<bool, clap::Error> {
        use clap::Parser;
        let base = ["pp-light", "--peer", "127.0.0.1:1"];
        Cli::try_parse_from(base.iter().chain(argv)).map(|c| c.light.headers_only)
    }

    #[test]
    fn headers_only_is_the_default_and_can_be_turned_off() {
        // (PP_LIGHT_HEADERS_ONLY, the same switch's variable, is not set in the tests.)
        assert!(headers_only(&[]).unwrap(), "on by default");
        assert!(
            headers_only(&["--headers-only"]).unwrap(),
            "the old flag still parses"
        );
        assert!(headers_only(&["--headers-only=true"]).unwrap());
        assert!(
            !headers_only(&["--headers-only=false"]).unwrap(),
            "the opt-out"
        );
        assert!(!headers_only(&["--headers-only=no"]).unwrap());
        assert!(headers_only(&["--headers-only=maybe"]).is_err());
    }

    #[test]
    fn without_a_genesis_file_or_a_built_in_one_it_refuses_to_start() {
        assert!(matches!(run(&args(None), None), Err(RunError::NoGenesis)));
    }

    #[test]
    fn a_genesis_file_that_is_not_a_genesis_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.json");
        std::fs::write(&path, b"{}").unwrap();
        match run(&args(Some(path.clone())), None) {
            Err(RunError::Genesis { path: p, reason }) => {
                assert_eq!(p, path);
                assert!(reason.contains("not a valid genesis"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
