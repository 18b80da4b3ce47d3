//! Serving the HTTP API to strangers: hyper's HTTP/1 server driven directly (axum's `serve` has
//! no connection limit and no header-read timeout), so that idle or slow clients cannot take the
//! process's file descriptors or hold connections open forever.
//!
//! * At most [`MAX_HTTP_CONNECTIONS`] connections are served at once; a connection accepted
//!   above that is closed at once, so the API never holds more descriptors than that.
//! * A request's head must arrive within [`HEADER_READ_TIMEOUT`] of the connection (or of the
//!   previous response on a kept-alive connection) starting to wait for it: slowloris clients and
//!   idle connections are closed then.
//! * Accept errors (EMFILE, ENFILE, ENOBUFS) back off from [`ACCEPT_BACKOFF_START`] doubling up
//!   to [`ACCEPT_BACKOFF_MAX`].
//! * On shutdown the listener closes, idle connections close, in-flight requests get
//!   [`DRAIN_TIMEOUT`] to finish, then the rest are aborted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

/// Most HTTP connections served at once.
pub const MAX_HTTP_CONNECTIONS: usize = 512;
/// Time a client has to send a request's complete head (request line and headers), counted from
/// when the server starts waiting for it: on a new connection, and after each response on a
/// kept-alive one (so an idle keep-alive connection is also closed after this long).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// First pause after a failed `accept` (e.g. EMFILE).
pub(crate) const ACCEPT_BACKOFF_START: Duration = Duration::from_millis(10);
/// Longest pause after failed `accept`s.
pub(crate) const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How long shutdown waits for in-flight requests before aborting their connections.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(3);
/// Most threads reading storage for the API (`/blocks`, proofs) when it runs on a runtime of
/// its own ([`ServerConfig::http_threads`](crate::ServerConfig::http_threads)).
pub const HTTP_BLOCKING_THREADS: usize = 2;

/// Errors of `accept` that concern only the one connection being accepted (the peer reset it
/// before we took it): accept again at once.
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    )
}

/// Serves `app` on `listener` until `stop` turns true (see the module docs for the limits).
/// Handlers can extract `ConnectInfo<SocketAddr>` (the client's address).
pub(crate) async fn serve(listener: TcpListener, app: Router, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(MAX_HTTP_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let mut conns = JoinSet::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true);
    let mut backoff = ACCEPT_BACKOFF_START;
    let mut over_limit: u64 = 0;
    loop {
        // Reap finished connections so the set stays as small as the live ones.
        while conns.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = crate::tasks::stopped(&mut stop) => break,
            r = listener.accept() => r,
        };
        let (stream, client) = match accepted {
            Ok(x) => {
                backoff = ACCEPT_BACKOFF_START;
                x
            }
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    backoff_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX),
                    "HTTP accept failed"
                );
                tokio::select! {
                    _ = crate::tasks::stopped(&mut stop) => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = backoff.saturating_mul(2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Full: close it now rather than hold a descriptor for it.
            over_limit = over_limit.saturating_add(1);
            if over_limit.is_power_of_two() {
                tracing::warn!(
                    %client,
                    limit = MAX_HTTP_CONNECTIONS,
                    refused_so_far = over_limit,
                    "HTTP connection limit reached; closing new connections"
                );
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(client));
            app.clone().oneshot(req)
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        conns.spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%client, error = %e, "HTTP connection ended with an error");
            }
            // The slot is free once the connection (and its descriptor) is gone.
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            open = conns.len(),
            "HTTP connections still busy after the drain timeout; closing them"
        );
    }
    conns.shutdown().await;
}

/// Serves `app` as [`serve`] does, on a tokio runtime of its own with `threads` workers (at
/// least 1; one is a current-thread runtime), on threads named `pp-http`: requests are parsed
/// and reads answered there, never waiting for the node's runtime workers, and the API can use
/// at most `threads` cores plus [`HTTP_BLOCKING_THREADS`] for storage reads. Requests other than
/// reads run on `node` (the node's runtime, see [`crate::http::writes_on_node_runtime`]). The
/// returned task, on the caller's runtime, ends when the API has stopped (after `stop`).
pub(crate) fn serve_on_own_runtime(
    listener: TcpListener,
    app: Router,
    stop: watch::Receiver<bool>,
    threads: usize,
    node: tokio::runtime::Handle,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let app = crate::http::writes_on_node_runtime(app, node);
    let listener = listener.into_std()?;
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    let rt = builder
        .enable_all()
        .thread_name("pp-http")
        .max_blocking_threads(HTTP_BLOCKING_THREADS)
        .build()?;
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("pp-http".into())
        .spawn(move || {
            rt.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(l) => serve(l, app, stop).await,
                    Err(e) => tracing::error!(error = %e, "the HTTP API cannot take its listener"),
                }
            });
            // Reads still running on the blocking threads get a moment, then are left.
            rt.shutdown_timeout(DRAIN_TIMEOUT);
            let _ = done_tx.send(());
        })?;
    Ok(tokio::spawn(async move {
        let _ = done_rx.await;
    }))
}
