//! `GET /events`: the node's events ([`crate::events`]) as a Server-Sent Events stream.
//!
//! Each event is `event: <name>` and `data: <one line of JSON>`; a listener that fell more than
//! [`EVENT_BUFFER`](crate::EVENT_BUFFER) events behind gets `event: lagged` with
//! `{"missed": N}` and continues with the oldest event still held. A comment line (`: ping`) every
//! [`KEEP_ALIVE`] keeps proxies and browsers from closing an idle stream. The stream ends when the
//! node stops. `?types=block,peer_up` keeps only the named events, dropped before they are
//! serialized, so that a client following blocks costs the node nothing per transaction.
//! Documented in `docs/http-api.md#get-events`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;

use super::ApiError;
use crate::events::{Received, SubscribeError, Subscription};
use crate::node::Core;

/// Interval of the keep-alive comments on an idle stream.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The SSE form of what a subscription received.
fn to_sse(r: &Received) -> Event {
    let (name, data) = match r {
        Received::Event(ev) => (ev.name(), serde_json::to_string(ev)),
        Received::Lagged(n) => ("lagged", Ok(format!("{{\"missed\":{n}}}"))),
    };
    // Serializing these plain structs cannot fail; an empty object would still be valid JSON.
    Event::default()
        .event(name)
        .data(data.unwrap_or_else(|_| "{}".into()))
}

/// The event names a client may ask for (`lagged` is always sent).
const EVENT_TYPES: [&str; 4] = ["block", "tx", "peer_up", "peer_down"];

/// Which events a stream carries: every one, or those named in `?types=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Wanted([bool; EVENT_TYPES.len()]);

impl Wanted {
    const ALL: Wanted = Wanted([true; EVENT_TYPES.len()]);

    /// Parses `types`: a comma-separated, non-empty list of known event names.
    fn parse(types: &str) -> Result<Wanted, String> {
        let mut wanted = [false; EVENT_TYPES.len()];
        for name in types.split(',') {
            let Some(i) = EVENT_TYPES.iter().position(|t| *t == name) else {
                return Err(format!(
                    "unknown event type {name:?} in types (known: {})",
                    EVENT_TYPES.join(", ")
                ));
            };
            wanted[i] = true;
        }
        Ok(Wanted(wanted))
    }

    /// Whether `r` goes to the client (a `lagged` notice always does).
    fn keeps(&self, r: &Received) -> bool {
        match r {
            Received::Event(ev) => EVENT_TYPES
                .iter()
                .position(|t| *t == ev.name())
                .is_some_and(|i| self.0[i]),
            Received::Lagged(_) => true,
        }
    }
}

/// The query of `GET /events`.
#[derive(serde::Deserialize)]
pub(super) struct EventsQuery {
    types: Option<String>,
}

/// The stream of a subscription, ending when the bus closes; events `wanted` does not keep are
/// skipped before they are serialized.
fn stream(sub: Subscription, wanted: Wanted) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(sub, move |mut sub| async move {
        loop {
            let r = sub.next().await?;
            if wanted.keeps(&r) {
                return Some((Ok(to_sse(&r)), sub));
            }
        }
    })
}

/// `GET /events[?types=a,b]`.
pub(super) async fn events(
    State(core): State<Arc<Core>>,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let wanted = match q.types.as_deref() {
        None => Wanted::ALL,
        Some(t) => {
            Wanted::parse(t).map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "bad_query", m))?
        }
    };
    let sub = core.events().subscribe().map_err(|e| {
        let code = match e {
            SubscribeError::Full(_) => "too_many_event_clients",
            SubscribeError::Closed => "shutting_down",
        };
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, e.to_string())
    })?;
    let mut res = Sse::new(stream(sub, wanted))
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("ping"))
        .into_response();
    // Tell reverse proxies (nginx) not to buffer the stream.
    res.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{NodeEvent, EVENT_BUFFER};
    use axum::body::Body;
    use axum::http::Request;
    use futures::StreamExt as _;
    use pp_ledger::{Hash, KeyPair};
    use tower::ServiceExt as _;

    fn tx(n: usize) -> NodeEvent {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&(n as u64).to_be_bytes());
        NodeEvent::Tx { id: Hash(id) }
    }

    #[tokio::test]
    async fn a_client_that_does_not_read_is_told_how_many_events_it_missed() {
        let dir = tempfile::tempdir().unwrap();
        let core = crate::node::testing::core(dir.path(), &KeyPair::from_seed([81u8; 32]));
        let app = super::super::router(core.clone(), None);
        let req = Request::get("/events").body(Body::empty()).unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
        // The client reads nothing while twice the ring's size and 10 more are published: the
        // node holds the newest EVENT_BUFFER, not more.
        let published = 2 * EVENT_BUFFER + 10;
        core.events().publish((0..published).map(tx));
        let mut body = res.into_body().into_data_stream();
        let mut text = String::new();
        while text.matches("\n\n").count() < 2 {
            let chunk = body.next().await.unwrap().unwrap();
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        let missed = published - EVENT_BUFFER;
        let first = format!("event: lagged\ndata: {{\"missed\":{missed}}}\n\n");
        assert!(text.starts_with(&first), "{text}");
        // Then the oldest event still held.
        let next = format!(
            "event: tx\ndata: {}\n\n",
            serde_json::to_string(&tx(missed)).unwrap()
        );
        assert!(text[first.len()..].starts_with(&next), "{text}");
    }

    #[tokio::test]
    async fn a_client_asking_for_some_types_gets_only_those_and_bad_types_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let core = crate::node::testing::core(dir.path(), &KeyPair::from_seed([83u8; 32]));
        let app = super::super::router(core.clone(), None);
        for bad in ["nope", "", "block,", "block,TX"] {
            let req = Request::get(format!("/events?types={bad}"))
                .body(Body::empty())
                .unwrap();
            let res = app.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "types={bad}");
            let body = axum::body::to_bytes(res.into_body(), 4096).await.unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["error"]["code"], "bad_query", "types={bad}");
        }
        let req = Request::get("/events?types=block,peer_down")
            .body(Body::empty())
            .unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let block = |index: u64| NodeEvent::Block {
            index,
            hash: Hash([index as u8; 32]),
            slot: index,
            tx_count: 1,
        };
        // Transactions around and between the blocks: the client sees the blocks alone.
        core.events().publish((0..5).map(tx));
        core.events().publish([block(1)]);
        core.events().publish((5..10).map(tx));
        core.events().publish([block(2)]);
        let mut body = res.into_body().into_data_stream();
        let mut text = String::new();
        while text.matches("\n\n").count() < 2 {
            let chunk = body.next().await.unwrap().unwrap();
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        let want: String = [block(1), block(2)]
            .iter()
            .map(|b| {
                format!(
                    "event: block\ndata: {}\n\n",
                    serde_json::to_string(b).unwrap()
                )
            })
            .collect();
        assert_eq!(text, want);
    }

    #[tokio::test]
    async fn a_stopping_node_refuses_new_streams_and_ends_open_ones() {
        let dir = tempfile::tempdir().unwrap();
        let core = crate::node::testing::core(dir.path(), &KeyPair::from_seed([82u8; 32]));
        let app = super::super::router(core.clone(), None);
        let req = Request::get("/events").body(Body::empty()).unwrap();
        let res = app.clone().oneshot(req).await.unwrap();
        core.events().close();
        let mut body = res.into_body().into_data_stream();
        assert!(body.next().await.is_none(), "the open stream ends");
        let req = Request::get("/events").body(Body::empty()).unwrap();
        let res = app.oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
