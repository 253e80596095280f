//! Podman's REST API over its unix socket: `GET /v4.0.0/libpod/containers/{id}/json`
//! (`podman container inspect`), one HTTP/1.1 connection per lookup.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use http::{header, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::UnixStream;
use vigil_identity::Runtime;

use crate::meta::ContainerInfo;
use crate::LookupError;

/// The fields read from an inspect answer (Podman 4 and 5 spell them the same).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Inspect {
    id: String,
    name: String,
    /// The image as the user named it, normalised (`docker.io/library/busybox:latest`).
    #[serde(default)]
    image_name: String,
    /// The image's id, for containers whose image has no name.
    #[serde(default)]
    image: String,
    #[serde(default)]
    config: Option<InspectConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectConfig {
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// The container `id` (64 hex digits, as in Podman's cgroup names); `Ok(None)`: Podman does
/// not know it.
pub(crate) async fn inspect(socket: &Path, id: &str) -> Result<Option<ContainerInfo>, LookupError> {
    // Checked so that a caller's id can never change the request path.
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(LookupError::PodmanId(id.to_owned()));
    }
    let stream = UnixStream::connect(socket)
        .await
        .map_err(LookupError::PodmanConnect)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(LookupError::PodmanHttp)?;
    let conn = tokio::spawn(conn);
    let req = Request::get(format!("/v4.0.0/libpod/containers/{id}/json"))
        .header(header::HOST, "podman")
        .body(Empty::<Bytes>::new())
        .expect("a valid request: fixed method, checked path");
    let resp = sender
        .send_request(req)
        .await
        .map_err(LookupError::PodmanHttp)?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(LookupError::PodmanHttp)?
        .to_bytes();
    drop(sender);
    conn.abort();
    match status {
        StatusCode::OK => parse(&body).map(Some),
        StatusCode::NOT_FOUND => Ok(None),
        _ => Err(LookupError::PodmanStatus(
            status,
            String::from_utf8_lossy(&body[..body.len().min(512)])
                .trim()
                .to_owned(),
        )),
    }
}

fn parse(body: &[u8]) -> Result<ContainerInfo, LookupError> {
    let i: Inspect = serde_json::from_slice(body).map_err(LookupError::PodmanJson)?;
    let image = if i.image_name.is_empty() {
        i.image
    } else {
        i.image_name
    };
    Ok(ContainerInfo {
        runtime: Runtime::Podman,
        id: i.id,
        name: i.name,
        image,
        labels: i.config.and_then(|c| c.labels).unwrap_or_default(),
        namespace: None,
        pod: None,
        sandbox: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_answer() {
        let c = parse(
            br#"{"Id":"ab","Name":"web","ImageName":"docker.io/library/busybox:latest",
                 "Image":"f00","Config":{"Labels":{"app":"shop"},"Env":[]},"State":{}}"#,
        )
        .unwrap();
        assert_eq!(
            (c.name.as_str(), c.image.as_str()),
            ("web", "docker.io/library/busybox:latest")
        );
        assert_eq!(c.labels["app"], "shop");
        // A rootfs container: no image name, no labels (`null`).
        let c =
            parse(br#"{"Id":"ab","Name":"x","ImageName":"","Image":"","Config":{"Labels":null}}"#)
                .unwrap();
        assert!(c.image.is_empty() && c.labels.is_empty());
        assert!(matches!(parse(b"{}"), Err(LookupError::PodmanJson(_))));
    }
}
