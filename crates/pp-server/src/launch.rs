//! Launch and supervision: starts a built node ([`crate::builder`]) — its network, its tasks,
//! its HTTP API — and stops them all again ([`Running::stop`], [`Running::abort`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use pp_net::{NetConfig, Network, Transport};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::builder::Built;
use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::node::Core;

/// How long a bootstrap dial waits for the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long shutdown waits for each task before aborting it.
const TASK_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A launched node's tasks and how to stop them.
pub(crate) struct Running {
    shutdown: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    /// The bound HTTP address, if the API is served.
    pub(crate) http_addr: Option<SocketAddr>,
    /// The bound P2P address, if P2P is on.
    pub(crate) p2p_addr: Option<SocketAddr>,
}

/// Starts `built`: its storage writer, its network if P2P is configured (with the saved bans
/// put back and the bootstrap peers dialed at once), the event, sync and consensus tasks, and
/// the HTTP API if `config.http_addr` is set. `shutdown` stops them all.
pub(crate) async fn launch<T: Transport>(
    built: Built,
    config: &ServerConfig,
    now_ms: u64,
    shutdown: watch::Sender<bool>,
    admin_token: &str,
    transport: T,
) -> Result<Running, ServerError> {
    let Built {
        core,
        writer_task,
        sync_rx,
        key,
    } = built;
    let shutdown_rx = shutdown.subscribe();
    // The writer is stopped last (see `stop_tasks`), after the tasks that queue changes.
    let writer_task = tokio::spawn(writer_task);
    let mut tasks = Vec::new();
    let mut p2p_addr = None;
    let net_cfg = &config.network;
    if net_cfg.enable_p2p {
        // The node's key is its network identity: peers know it by the key it proves in the
        // Noise handshake, never by its label.
        let mut nc = NetConfig::new(
            core.node_id().to_string(),
            core.genesis_hash(),
            net_cfg.listen_socket(),
        )
        .with_identity(key);
        nc.max_peers = net_cfg.max_peers.max(1);
        nc.compact_relay = net_cfg.compact_relay;
        // pp-net's timestamps start from the node's clock (virtual under pp-sim).
        nc.unix_time_ms = Some(now_ms);
        // pp-net decodes large frames and builds its large answers on the node's CPU pool
        // (inline under pp-sim).
        nc.blocking = core.cpu_pool();
        let nc_max_peers = nc.max_outbound();
        // The address book lives in the node's database (table `addr_book`).
        let started =
            Network::start_with_store(nc, transport, core.chain_view(), Some(core.book_store()))
                .await;
        let (network, events) = match started {
            Ok(x) => x,
            Err(e) => {
                core.close_storage();
                return Err(e.into());
            }
        };
        p2p_addr = Some(network.local_addr());
        // Bans hold across restarts: put back those that have not expired.
        for b in core.stored_bans() {
            if let Ok(target) = b.target.parse::<pp_net::BanTarget>() {
                network.restore_ban(target, &b.reason, b.expires_at_ms, b.manual);
            }
        }
        core.set_network(Arc::new(network.clone()));
        let mut known = net_cfg.bootstrap_peers.clone();
        for a in &known {
            network.add_known_addr(a);
        }
        tasks.push((
            "events",
            tokio::spawn(crate::tasks::event_loop(
                core.clone(),
                events,
                shutdown_rx.clone(),
            )),
        ));
        // Dial the bootstrap peers now rather than at the dialer's next tick (the saved anchors
        // are the dialer's first pick), so that a node is connected (and syncing, through the
        // `PeerConnected` event) as soon as they answer: a restarted node that reached only some
        // of its peers before its slot made blocks the others did not see in time (pp-sim
        // crash/restart scenario).
        known.sort();
        known.dedup();
        for a in known.into_iter().take(nc_max_peers) {
            let network = network.clone();
            let mut stop = shutdown_rx.clone();
            tasks.push((
                "bootstrap",
                tokio::spawn(async move {
                    tokio::select! {
                        _ = crate::tasks::stopped(&mut stop) => {}
                        r = tokio::time::timeout(CONNECT_TIMEOUT, network.connect(&a)) => {
                            if let Ok(Err(e)) = r {
                                tracing::info!(addr = %a, error = %e, "bootstrap peer not reached yet; will retry");
                            }
                        }
                    }
                }),
            ));
        }
    }
    tasks.push((
        "sync",
        tokio::spawn(crate::sync::run(
            core.clone(),
            sync_rx,
            core.cpu_pool(),
            shutdown_rx.clone(),
        )),
    ));
    tasks.push((
        "consensus",
        tokio::spawn(crate::tasks::consensus_loop(
            core.clone(),
            shutdown_rx.clone(),
        )),
    ));
    let mut http_addr = None;
    if let Some(addr) = config.http_addr {
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(source) => {
                abandon(&shutdown, tasks, &core).await;
                return Err(ServerError::HttpBind {
                    addr: addr.to_string(),
                    source,
                });
            }
        };
        let bound = listener.local_addr().unwrap_or(addr);
        http_addr = Some(bound);
        let app = crate::http::router(
            core.clone(),
            Some(crate::http::AdminToken(Arc::from(admin_token))),
        );
        let task = if config.http_threads == 0 {
            tokio::spawn(crate::http_serve::serve(listener, app, shutdown_rx.clone()))
        } else {
            match crate::http_serve::serve_on_own_runtime(
                listener,
                app,
                shutdown_rx.clone(),
                config.http_threads,
                tokio::runtime::Handle::current(),
            ) {
                Ok(task) => task,
                Err(source) => {
                    abandon(&shutdown, tasks, &core).await;
                    return Err(ServerError::HttpRuntime { source });
                }
            }
        };
        tasks.push(("http", task));
        tracing::info!(addr = %bound, threads = config.http_threads, "HTTP API listening");
    }
    if let Some(a) = p2p_addr {
        tracing::info!(addr = %a, "P2P listening");
    }
    tasks.push(("storage", writer_task));
    Ok(Running {
        shutdown,
        tasks,
        http_addr,
        p2p_addr,
    })
}

impl Running {
    /// Graceful stop: every task ends (each is awaited for up to [`TASK_STOP_TIMEOUT`], then
    /// aborted), the bans are saved, the network closes every connection and saves its address
    /// book, and the database is closed.
    pub(crate) async fn stop(self, core: &Core) {
        let _ = self.shutdown.send(true);
        // Open `GET /events` streams end now, so the HTTP server drains at once.
        core.events().close();
        stop_tasks(self.tasks).await;
        if let Err(e) = core.save_bans() {
            tracing::warn!(error = %e, "cannot save bans");
        }
        core.net().shutdown().await;
        core.close_storage();
        tracing::info!(node = %core.node_id(), height = core.height(), "node stopped");
    }

    /// Stop without waiting (for `Drop`): signals and aborts the tasks, closes the database, and
    /// asks the network to stop if a runtime is at hand.
    pub(crate) fn abort(self, core: &Core) {
        let _ = self.shutdown.send(true);
        for (_, h) in self.tasks {
            h.abort();
        }
        core.close_storage();
        // pp-net's tasks hold the listener; ask them to stop if a runtime is at hand.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let net = core.net().clone();
            rt.spawn(async move { net.shutdown().await });
        }
    }
}

/// Undoes a launch that failed half-way: stops the tasks started so far, the network and the
/// database.
async fn abandon(
    shutdown: &watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    core: &Core,
) {
    let _ = shutdown.send(true);
    stop_tasks(tasks).await;
    core.net().shutdown().await;
    core.close_storage();
}

async fn stop_tasks(tasks: Vec<(&'static str, JoinHandle<()>)>) {
    for (name, mut h) in tasks {
        if tokio::time::timeout(TASK_STOP_TIMEOUT, &mut h)
            .await
            .is_err()
        {
            tracing::warn!(task = name, "task did not stop in time; aborting it");
            h.abort();
        }
    }
}
