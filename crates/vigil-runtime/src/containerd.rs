//! containerd's gRPC API over its unix socket: `Containers.Get` and `Namespaces.List`.
//!
//! The messages are written by hand with prost's derive, with only the fields read: protobuf
//! decoding skips the others, so this stays compatible with every containerd API v1 (1.x and
//! 2.x), and the build needs no protoc. Field numbers are those of containerd's
//! `api/services/containers/v1/containers.proto` and `api/services/namespaces/v1/namespace.proto`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};
use tonic::Code;
use tonic_prost::ProstCodec;

use crate::meta::ContainerInfo;
use crate::LookupError;

/// The gRPC metadata key that selects the namespace of a request.
const NAMESPACE_HEADER: &str = "containerd-namespace";
const GET: &str = "/containerd.services.containers.v1.Containers/Get";
const LIST_NAMESPACES: &str = "/containerd.services.namespaces.v1.Namespaces/List";

#[derive(Clone, PartialEq, prost::Message)]
struct GetContainerRequest {
    #[prost(string, tag = "1")]
    id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct GetContainerResponse {
    #[prost(message, optional, tag = "1")]
    container: Option<Container>,
}

/// `containerd.services.containers.v1.Container`, without runtime, spec, snapshot, times,
/// extensions and sandbox.
#[derive(Clone, PartialEq, prost::Message)]
struct Container {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(map = "string, string", tag = "2")]
    labels: HashMap<String, String>,
    #[prost(string, tag = "3")]
    image: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListNamespacesRequest {
    #[prost(string, tag = "1")]
    filter: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ListNamespacesResponse {
    #[prost(message, repeated, tag = "1")]
    namespaces: Vec<Namespace>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Namespace {
    #[prost(string, tag = "1")]
    name: String,
}

/// A lazily connected client: the first call connects, and a broken connection is re-made
/// by the next call (containerd restarts do not need the agent to restart).
#[derive(Debug, Clone)]
pub(crate) struct Client {
    channel: Channel,
    namespaces: Vec<String>,
}

impl Client {
    /// Must be called inside a tokio runtime (the channel spawns its connection task there).
    pub(crate) fn new(
        socket: &Path,
        namespaces: Vec<String>,
    ) -> Result<Self, tonic::transport::Error> {
        let channel = Endpoint::from_shared(format!("unix://{}", socket.display()))?.connect_lazy();
        Ok(Client {
            channel,
            namespaces,
        })
    }

    /// The container `id`, searched in `hint` (the namespace its cgroup path names), then the
    /// configured namespaces, then every other namespace containerd has. `Ok(None)`: in none.
    pub(crate) async fn get(
        &self,
        id: &str,
        hint: Option<&str>,
    ) -> Result<Option<ContainerInfo>, LookupError> {
        let mut tried: Vec<&str> = Vec::new();
        for ns in hint
            .into_iter()
            .chain(self.namespaces.iter().map(String::as_str))
        {
            if tried.contains(&ns) {
                continue;
            }
            tried.push(ns);
            if let Some(c) = self.get_in(ns, id).await? {
                return Ok(Some(c));
            }
        }
        for ns in self.list_namespaces().await? {
            if !tried.contains(&ns.as_str()) {
                if let Some(c) = self.get_in(&ns, id).await? {
                    return Ok(Some(c));
                }
            }
        }
        Ok(None)
    }

    async fn get_in(&self, ns: &str, id: &str) -> Result<Option<ContainerInfo>, LookupError> {
        let req = GetContainerRequest { id: id.to_owned() };
        match self.unary::<_, GetContainerResponse>(ns, GET, req).await {
            Ok(resp) => Ok(resp.container.map(|c| {
                ContainerInfo::from_containerd(
                    c.id,
                    ns.to_owned(),
                    c.image,
                    c.labels.into_iter().collect::<BTreeMap<_, _>>(),
                )
            })),
            Err(s) if s.code() == Code::NotFound => Ok(None),
            Err(s) => Err(LookupError::Containerd(s)),
        }
    }

    async fn list_namespaces(&self) -> Result<Vec<String>, LookupError> {
        // The namespaces service itself is not namespaced; containerd ignores the header.
        let resp = self
            .unary::<_, ListNamespacesResponse>(
                "default",
                LIST_NAMESPACES,
                ListNamespacesRequest::default(),
            )
            .await
            .map_err(LookupError::Containerd)?;
        Ok(resp.namespaces.into_iter().map(|n| n.name).collect())
    }

    async fn unary<Req, Resp>(
        &self,
        ns: &str,
        path: &'static str,
        msg: Req,
    ) -> Result<Resp, tonic::Status>
    where
        Req: prost::Message + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        let ns = MetadataValue::try_from(ns)
            .map_err(|_| tonic::Status::invalid_argument(format!("namespace {ns:?}")))?;
        let mut req = tonic::Request::new(msg);
        req.metadata_mut().insert(NAMESPACE_HEADER, ns);
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready()
            .await
            .map_err(|e| tonic::Status::unavailable(format!("connecting: {e}")))?;
        let resp = grpc
            .unary(
                req,
                PathAndQuery::from_static(path),
                ProstCodec::<Req, Resp>::default(),
            )
            .await?;
        Ok(resp.into_inner())
    }
}
