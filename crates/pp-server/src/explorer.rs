//! The block explorer at `GET /`: three static files (HTML, CSS, JavaScript) compiled into the
//! binary, no build step. The page reads the node's own API (`/status`, `/blocks`, `/peers`,
//! lookups) and follows `GET /events` live, polling `/status` when the stream is unavailable.
//!
//! The files are served with a Content-Security-Policy that allows scripts, styles and
//! connections to this origin only, and no inline script, `eval` or framing; the script inserts
//! every value from the API as text (`textContent`), never as markup. The page is read-only: it
//! sends no `POST` (and could not, having no admin token).

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The page.
const INDEX_HTML: &str = include_str!("../assets/explorer/index.html");
/// Its script.
const APP_JS: &str = include_str!("../assets/explorer/app.js");
/// Its style sheet.
const APP_CSS: &str = include_str!("../assets/explorer/app.css");

/// The Content-Security-Policy of every explorer file: same-origin scripts, styles and
/// connections; no inline script or style, no `eval`, no plugins, no framing, no `<base>`.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The explorer's routes (no state: the files are constants).
pub(crate) fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/explorer/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/explorer/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
}

/// One static file with its type and the security headers.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // A new binary may bring new files: revalidate instead of caching them.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_only_its_own_files_and_has_no_inline_script_or_style() {
        assert!(INDEX_HTML.contains(r#"<script src="/explorer/app.js" defer></script>"#));
        assert!(INDEX_HTML.contains(r#"href="/explorer/app.css""#));
        // Every <script> has a src; no inline handlers or styles (the CSP would block them).
        assert_eq!(
            INDEX_HTML.matches("<script").count(),
            INDEX_HTML.matches("<script src=").count()
        );
        for bad in [
            " onclick=",
            " onload=",
            " onerror=",
            " style=",
            "javascript:",
        ] {
            assert!(!INDEX_HTML.contains(bad), "{bad}");
        }
        // The script never builds markup from strings or evaluates them.
        for bad in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ] {
            assert!(!APP_JS.contains(bad), "{bad}");
        }
    }
}
