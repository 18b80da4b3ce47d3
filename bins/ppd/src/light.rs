//! `ppd light`: a light client (crate pp-light) with its HTTP API, until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use pp_light::{LightClient, LightConfig};
use tokio::signal::unix::{signal, SignalKind};
use tracing::info;

use crate::cli::LightArgs;

/// Runs `ppd light` with `args`.
pub fn run(args: &LightArgs) -> anyhow::Result<()> {
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(filter).context("RUST_LOG")?)
        .try_init();
    let genesis = match &args.genesis {
        Some(path) => {
            let bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            pp_ledger::Genesis::from_json(&bytes)
                .with_context(|| format!("{} is not a valid genesis", path.display()))?
        }
        None => crate::devnet::genesis(),
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
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?
        .block_on(serve(config, args.http))
}

async fn serve(config: LightConfig, http: SocketAddr) -> anyhow::Result<()> {
    let mut sigint = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut sigterm = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let peer = config.peers.join(",");
    let client = Arc::new(
        LightClient::start(config)
            .await
            .context("cannot start the light client")?,
    );
    let listener = tokio::net::TcpListener::bind(http)
        .await
        .with_context(|| format!("cannot listen on {http}"))?;
    let addr = listener.local_addr()?;
    info!(http = %addr, peer = %peer, genesis = %client.genesis_hash(), "ppd light started");
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let app = pp_light::http::router(Arc::clone(&client));
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
    info!("ppd light stopped");
    Ok(())
}
