//! `GET /events`: the node's events ([`crate::events`]) as a Server-Sent Events stream.
//!
//! Each event is `event: <name>` and `data: <one line of JSON>`; a listener that fell more than
//! [`EVENT_BUFFER`](crate::EVENT_BUFFER) events behind gets `event: lagged` with
//! `{"missed": N}` and continues with the oldest event still held. A comment line (`: ping`) every
//! [`KEEP_ALIVE`] keeps proxies and browsers from closing an idle stream. The stream ends when the
//! node stops. Documented in `docs/http-api.md#get-events`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
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

/// The stream of a subscription, ending when the bus closes.
fn stream(sub: Subscription) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(sub, |mut sub| async move {
        let r = sub.next().await?;
        Some((Ok(to_sse(&r)), sub))
    })
}

/// `GET /events`.
pub(super) async fn events(State(core): State<Arc<Core>>) -> Result<Response, ApiError> {
    let sub = core.events().subscribe().map_err(|e| {
        let code = match e {
            SubscribeError::Full(_) => "too_many_event_clients",
            SubscribeError::Closed => "shutting_down",
        };
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, e.to_string())
    })?;
    let mut res = Sse::new(stream(sub))
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
