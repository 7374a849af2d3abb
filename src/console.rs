//! The web console and GraphiQL, served from files embedded in the binary at build time
//! (`build.rs` lists `console/`): the server needs no network and no other files to serve
//! them, which is what an air-gapped data centre needs.
//!
//! Routes: `GET /` and `GET /ui/...` answer the console's single page, `GET /ui/assets/<path>`
//! answers `console/<path>`, and `GET /graphql` (asked for by a browser) answers GraphiQL.
//! Every page carries a Content-Security-Policy that allows only this origin, so a page
//! cannot load or send anything elsewhere even if a bug tried to.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Every file under `console/`, by its path there, sorted by path.
static ASSETS: &[(&str, &[u8])] = include!(concat!(env!("OUT_DIR"), "/console_assets.rs"));

/// The console's own pages: scripts and styles from this origin only, API calls to this
/// origin only, no framing.
const CONSOLE_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// GraphiQL sets inline styles (its editor positions elements with them); everything else
/// is as strict as the console's policy.
const GRAPHIQL_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The embedded file at `path` (relative to `console/`).
pub fn asset(path: &str) -> Option<&'static [u8]> {
    ASSETS
        .binary_search_by(|(name, _)| (*name).cmp(path))
        .ok()
        .map(|at| ASSETS[at].1)
}

/// The media type a browser needs for a file: ES modules are refused under any type but a
/// JavaScript one.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => "text/plain; charset=utf-8",
    }
}

/// A strong validator per asset, computed once: browsers revalidate (`no-cache`) and get a
/// 304 while the binary is the same, and the new files as soon as it is upgraded.
fn etag(index: usize) -> &'static str {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        use sha2::{Digest, Sha256};
        ASSETS
            .iter()
            .map(|(_, bytes)| {
                let digest = Sha256::digest(bytes);
                let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
                format!("\"{hex}\"")
            })
            .collect()
    });
    &tags[index]
}

/// The answer for one embedded file, or 404.
fn serve(path: &str, policy: Option<&'static str>, request: &HeaderMap) -> Response {
    let Ok(index) = ASSETS.binary_search_by(|(name, _)| (*name).cmp(path)) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "not found",
        )
            .into_response();
    };
    let tag = etag(index);
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, content_type(path))],
            ASSETS[index].1,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, HeaderValue::from_static(tag));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Some(policy) = policy {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(policy),
        );
    }
    response
}

/// `GET /` and `GET /ui/...`: the console's single page (its routes live in the hash).
pub async fn page(request: HeaderMap) -> Response {
    serve("index.html", Some(CONSOLE_POLICY), &request)
}

/// `GET /ui/assets/<path>`: one of the console's files.
pub async fn file(Path(path): Path<String>, request: HeaderMap) -> Response {
    serve(&path, None, &request)
}

/// GraphiQL, from the same embedded files, for a browser's `GET /graphql`.
pub fn graphiql(request: &HeaderMap) -> Response {
    serve("graphiql.html", Some(GRAPHIQL_POLICY), request)
}

#[cfg(test)]
mod tests {
    use super::{ASSETS, asset, content_type};

    #[test]
    fn the_console_is_embedded_sorted_and_typed() {
        assert!(ASSETS.windows(2).all(|pair| pair[0].0 < pair[1].0));
        for needed in [
            "index.html",
            "app.js",
            "graphiql.html",
            "vendor/graphiql/graphiql.min.js",
            "vendor/react/react.production.min.js",
        ] {
            assert!(asset(needed).is_some_and(|b| !b.is_empty()), "{needed}");
        }
        assert!(asset("../Cargo.toml").is_none());
        assert_eq!(
            content_type("pages/ci.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("style.css"), "text/css; charset=utf-8");
        assert_eq!(
            content_type("vendor/VENDORED.md"),
            "text/plain; charset=utf-8"
        );
    }
}
