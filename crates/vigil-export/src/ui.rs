//! The web UI: three static files compiled into the binary, so that the agent serves its own UI
//! with nothing to install and nothing fetched from elsewhere (no CDN, no build step). The page
//! reads the same `/api/v1/*` endpoints as any other client.

use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const STYLE_CSS: &str = include_str!("../ui/style.css");

/// Only this origin's own files may run or load: the page handles event data (paths, command
/// lines) that an attacker controls, and must not be made to fetch or execute anything else.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; \
                   frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            // The files change with the agent binary; never serve a stale copy after an upgrade.
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, CSP),
        ],
        body,
    )
}

/// `GET /` (the page), `GET /ui/app.js` and `GET /ui/style.css`. The files hold no data, so
/// they need no token; the page passes its `?token=` on to the API calls it makes.
pub fn router() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }),
        )
        .route(
            "/ui/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/ui/style.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE_CSS) }),
        )
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    /// Serves the router on a loopback port and returns the raw response to `GET path`.
    fn get(path: &str) -> String {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, router()).await });
            let path = path.to_string();
            tokio::task::spawn_blocking(move || {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                write!(
                    s,
                    "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).unwrap();
                out
            })
            .await
            .unwrap()
        })
    }

    #[test]
    fn serves_each_file_with_its_content_type() {
        for (path, ty, body) in [
            ("/", "text/html; charset=utf-8", INDEX_HTML),
            ("/ui/app.js", "text/javascript; charset=utf-8", APP_JS),
            ("/ui/style.css", "text/css; charset=utf-8", STYLE_CSS),
        ] {
            let r = get(path);
            assert!(r.starts_with("HTTP/1.1 200"), "{path}: {r}");
            assert!(
                r.contains(&format!("content-type: {ty}\r\n")),
                "{path}: {r}"
            );
            assert!(r.ends_with(body), "{path}: body");
        }
        assert!(get("/ui/nope.js").starts_with("HTTP/1.1 404"));
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for (name, text) in [
            ("index.html", INDEX_HTML),
            ("app.js", APP_JS),
            ("style.css", STYLE_CSS),
        ] {
            for needle in ["http://", "https://", "//cdn", "@import"] {
                // The SVG namespace is an identifier, not a fetch.
                let rest = text.replace("http://www.w3.org/2000/svg", "");
                assert!(!rest.contains(needle), "{name} contains {needle}");
            }
        }
        // Relative, so the UI also works behind a proxy that serves the agent under a prefix.
        assert!(INDEX_HTML.contains(r#"<script src="ui/app.js""#));
        assert!(INDEX_HTML.contains(r#"<link rel="stylesheet" href="ui/style.css">"#));
    }
}
