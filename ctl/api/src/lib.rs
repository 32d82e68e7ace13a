//! The director's control API: the `lb.v1` protocol (generated from `proto/lb/v1/lb.proto`),
//! names shared by the server and `lbctl`, and a client that connects over lbd's Unix socket
//! or over TCP with a bearer token.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use hyper_util::rt::TokioIo;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Uri};

/// Generated messages, the `LoadBalancer` client and server.
#[allow(missing_docs, clippy::all, clippy::pedantic, missing_debug_implementations)]
pub mod pb {
    tonic::include_proto!("lb.v1");
}

/// lb.v1's encoded `FileDescriptorSet`, for gRPC server reflection (`grpcurl` without the
/// .proto).
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/lb_v1_descriptor.bin"));
pub use pb::load_balancer_client::LoadBalancerClient;
pub use pb::load_balancer_server::{LoadBalancer, LoadBalancerServer};
use pb::{ForwardMode, HealthState, Protocol, Scheduler};

/// The shared vocabulary (protocols, schedulers, forwarding modes) the API maps onto.
pub use lb_model;

/// Where lbd serves the API unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/lbd/lbd.sock";

/// Metadata key carrying the bearer token on TCP connections.
pub const AUTHORIZATION: &str = "authorization";

/// The model's scheduler as the API carries it. The matches here and in
/// [`scheduler_from_pb`] are exhaustive both ways, so a scheduler added to either side does not
/// build until it is mapped.
pub const fn scheduler_to_pb(s: lb_model::Scheduler) -> Scheduler {
    use lb_model::Scheduler as S;
    match s {
        S::Rr => Scheduler::Rr,
        S::Wrr => Scheduler::Wrr,
        S::Lc => Scheduler::Lc,
        S::Wlc => Scheduler::Wlc,
        S::Lblc => Scheduler::Lblc,
        S::Lblcr => Scheduler::Lblcr,
        S::Dh => Scheduler::Dh,
        S::Sh => Scheduler::Sh,
        S::Sed => Scheduler::Sed,
        S::Nq => Scheduler::Nq,
        S::Fo => Scheduler::Fo,
        S::Ovf => Scheduler::Ovf,
        S::Mh => Scheduler::Mh,
        S::Consh => Scheduler::Consh,
    }
}

/// An API scheduler value as the model's (`None` for unspecified or unknown numbers).
pub fn scheduler_from_pb(v: i32) -> Option<lb_model::Scheduler> {
    use lb_model::Scheduler as S;
    Some(match Scheduler::try_from(v).ok()? {
        Scheduler::Unspecified => return None,
        Scheduler::Rr => S::Rr,
        Scheduler::Wrr => S::Wrr,
        Scheduler::Lc => S::Lc,
        Scheduler::Wlc => S::Wlc,
        Scheduler::Lblc => S::Lblc,
        Scheduler::Lblcr => S::Lblcr,
        Scheduler::Dh => S::Dh,
        Scheduler::Sh => S::Sh,
        Scheduler::Sed => S::Sed,
        Scheduler::Nq => S::Nq,
        Scheduler::Fo => S::Fo,
        Scheduler::Ovf => S::Ovf,
        Scheduler::Mh => S::Mh,
        Scheduler::Consh => S::Consh,
    })
}

/// The model's protocol as the API carries it.
pub const fn protocol_to_pb(p: lb_model::Protocol) -> Protocol {
    match p {
        lb_model::Protocol::Tcp => Protocol::Tcp,
        lb_model::Protocol::Udp => Protocol::Udp,
    }
}

/// An API protocol value as the model's (`None` for unspecified or unknown numbers).
pub fn protocol_from_pb(v: i32) -> Option<lb_model::Protocol> {
    match Protocol::try_from(v).ok()? {
        Protocol::Unspecified => None,
        Protocol::Tcp => Some(lb_model::Protocol::Tcp),
        Protocol::Udp => Some(lb_model::Protocol::Udp),
    }
}

/// The model's forwarding mode as the API carries it.
pub const fn forward_to_pb(m: lb_model::ForwardMode) -> ForwardMode {
    match m {
        lb_model::ForwardMode::Fnat => ForwardMode::Fnat,
        lb_model::ForwardMode::Dr => ForwardMode::Dr,
        lb_model::ForwardMode::Nat => ForwardMode::Nat,
    }
}

/// An API forwarding mode as the model's (`None` for unspecified or unknown numbers).
pub fn forward_from_pb(v: i32) -> Option<lb_model::ForwardMode> {
    match ForwardMode::try_from(v).ok()? {
        ForwardMode::Unspecified => None,
        ForwardMode::Fnat => Some(lb_model::ForwardMode::Fnat),
        ForwardMode::Dr => Some(lb_model::ForwardMode::Dr),
        ForwardMode::Nat => Some(lb_model::ForwardMode::Nat),
    }
}

/// The ipvsadm name of a scheduler ("?" for an unknown value).
pub fn scheduler_name(s: i32) -> &'static str {
    scheduler_from_pb(s).map_or("?", lb_model::Scheduler::name)
}

/// A scheduler by its ipvsadm name (`conhash` is read as `consh`, as keepalived does).
pub fn scheduler_from_name(name: &str) -> Option<Scheduler> {
    lb_model::Scheduler::from_name(name).map(scheduler_to_pb)
}

/// "TCP" / "UDP" ("?" for anything else), as ipvsadm prints them.
pub fn protocol_name(p: i32) -> &'static str {
    protocol_from_pb(p).map_or("?", lb_model::Protocol::name)
}

/// A real server's health: "up", "down", "unchecked" ("-" when lbd did not say).
pub fn health_name(h: i32) -> &'static str {
    match HealthState::try_from(h) {
        Ok(HealthState::Up) => "up",
        Ok(HealthState::Down) => "down",
        Ok(HealthState::Unchecked) => "unchecked",
        _ => "-",
    }
}

/// Whether a real server takes new connections as lbd reports it, and the weight ipvsadm's
/// view shows: `None` when it is down and not inhibited (it leaves the `-Ln` view, as
/// keepalived removes it from IPVS), the effective weight otherwise (0 when inhibited).
/// Servers from an lbd that reports no health show their configured weight.
pub fn shown_weight(s: &pb::Service, r: &pb::RealServer) -> Option<u32> {
    match HealthState::try_from(r.health) {
        Ok(HealthState::Down) if !r.inhibited => None,
        Ok(HealthState::Down) => Some(0),
        // Up, but the service lost its quorum and sends new connections to its sorry server.
        Ok(HealthState::Up | HealthState::Unchecked) if !s.quorum_up && !s.sorry_server.is_empty() => None,
        Ok(HealthState::Up | HealthState::Unchecked) => Some(r.effective_weight),
        _ => Some(r.weight),
    }
}

/// VRRP instance states as `VrrpInstanceStatus.state` spells them (keepalived's names).
pub const VRRP_STATES: &[&str] = &["MASTER", "BACKUP", "FAULT", "INIT"];

/// The ipvsadm -L "Forward" column: FullNat, Route, Masq.
pub fn forward_ipvsadm_name(f: i32) -> &'static str {
    forward_from_pb(f).map_or("?", lb_model::ForwardMode::ipvsadm_name)
}

/// The short name: fnat, dr, nat.
pub fn forward_name(f: i32) -> &'static str {
    forward_from_pb(f).map_or("?", lb_model::ForwardMode::short_name)
}

/// A forwarding mode by short name (or keepalived's or ipvsadm's), in any case.
pub fn forward_from_name(name: &str) -> Option<ForwardMode> {
    lb_model::ForwardMode::from_any_name(name).map(forward_to_pb)
}

impl std::fmt::Display for pb::ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}:{}", protocol_name(self.protocol), self.vip, self.port)
    }
}

/// Where the API is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// lbd's Unix socket.
    Unix(PathBuf),
    /// `host:port`, with the token lbd's `api_token` asks for; over TLS when `ca` names the
    /// PEM file of the certificate authority that signed lbd's `api_tls_cert` (whose names
    /// must include `host`).
    Tcp { addr: String, token: Option<String>, ca: Option<PathBuf> },
}

/// Why the API could not be reached.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot connect to lbd at {target}: {msg}")]
    Connect { target: String, msg: String },
    #[error("invalid API address {addr:?}: {msg}")]
    Address { addr: String, msg: String },
    #[error("invalid token: {0}")]
    Token(String),
    #[error("TLS: {0}")]
    Tls(String),
}

/// Adds `authorization: Bearer <token>` to every call when a token is set.
#[derive(Debug, Clone)]
pub struct Bearer(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert(AUTHORIZATION, v.clone());
        }
        Ok(req)
    }
}

/// A connected client.
pub type Client = LoadBalancerClient<InterceptedService<Channel, Bearer>>;

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Unix(p) => write!(f, "unix:{}", p.display()),
            Target::Tcp { addr, ca: None, .. } => write!(f, "tcp:{addr}"),
            Target::Tcp { addr, ca: Some(_), .. } => write!(f, "https://{addr}"),
        }
    }
}

/// Connects to lbd.
pub async fn connect(target: &Target) -> Result<Client, ConnectError> {
    Ok(LoadBalancerClient::new(connect_channel(target).await?))
}

/// A channel to lbd with the token attached, for any of its services (the health service too).
pub async fn connect_channel(target: &Target) -> Result<InterceptedService<Channel, Bearer>, ConnectError> {
    let err = |e: tonic::transport::Error| {
        // The transport error says little; its sources say why (no such file, refused, ...).
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            let t = s.to_string();
            if !msg.contains(&t) {
                msg = format!("{msg}: {t}");
            }
            src = s.source();
        }
        ConnectError::Connect { target: target.to_string(), msg }
    };
    let (channel, token) = match target {
        Target::Unix(path) => {
            let path = path.clone();
            // The URI is not used: the connector always dials the socket.
            let ch = Endpoint::from_static("http://lbd.sock")
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
                }))
                .await
                .map_err(err)?;
            (ch, None)
        }
        Target::Tcp { addr, token, ca } => {
            let scheme = if ca.is_some() { "https" } else { "http" };
            let mut ep = Endpoint::from_shared(format!("{scheme}://{addr}"))
                .map_err(|e| ConnectError::Address { addr: addr.clone(), msg: e.to_string() })?;
            if let Some(ca) = ca {
                let pem = std::fs::read(ca).map_err(|e| ConnectError::Tls(format!("{}: {e}", ca.display())))?;
                let host = ep.uri().host().unwrap_or_default().trim_matches(['[', ']']).to_owned();
                let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)).domain_name(host);
                ep = ep.tls_config(tls).map_err(|e| ConnectError::Tls(e.to_string()))?;
            }
            (ep.connect().await.map_err(err)?, token.as_ref())
        }
    };
    let bearer = match token {
        Some(t) => Some(format!("Bearer {t}").parse().map_err(|_| ConnectError::Token("not printable ASCII".into()))?),
        None => None,
    };
    Ok(InterceptedService::new(channel, Bearer(bearer)))
}

/// The local-address group a service gets when addresses are added to it directly (DPVS's
/// `ipvsadm --add-laddr -t VIP:PORT`): `tcp-10.0.1.100-80`.
pub fn service_group_name(k: &pb::ServiceKey) -> String {
    format!("{}-{}-{}", protocol_name(k.protocol).to_ascii_lowercase(), k.vip, k.port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in lb_model::Scheduler::ALL {
            let s = scheduler_to_pb(m);
            assert_eq!(scheduler_from_pb(s as i32), Some(m));
            assert_eq!(scheduler_from_name(m.name()), Some(s));
            assert_eq!(scheduler_name(s as i32), m.name());
        }
        // Every value the API defines maps to the model (none is left unmapped).
        for v in 1..64 {
            if Scheduler::try_from(v).is_ok() {
                assert!(scheduler_from_pb(v).is_some(), "pb scheduler {v}");
            }
        }
        assert_eq!(scheduler_from_pb(0), None);
        for m in lb_model::ForwardMode::ALL {
            assert_eq!(forward_from_pb(forward_to_pb(m) as i32), Some(m));
        }
        for m in lb_model::Protocol::ALL {
            assert_eq!(protocol_from_pb(protocol_to_pb(m) as i32), Some(m));
        }
        assert_eq!(scheduler_from_name("conhash"), Some(Scheduler::Consh));
        assert_eq!(scheduler_from_name("xx"), None);
        for f in [ForwardMode::Fnat, ForwardMode::Dr, ForwardMode::Nat] {
            assert_eq!(forward_from_name(forward_name(f as i32)), Some(f));
            assert_eq!(forward_from_name(forward_ipvsadm_name(f as i32)), Some(f));
        }
        let k = pb::ServiceKey { vip: "10.0.0.1".into(), port: 80, protocol: Protocol::Tcp as i32 };
        assert_eq!(k.to_string(), "TCP 10.0.0.1:80");
    }

    #[test]
    fn shown_weights_follow_health() {
        let s = pb::Service { quorum_up: true, ..Default::default() };
        let rs = |health: HealthState, inhibited: bool| pb::RealServer { weight: 5, effective_weight: 3, health: health as i32, inhibited, ..Default::default() };
        assert_eq!(shown_weight(&s, &rs(HealthState::Up, false)), Some(3));
        assert_eq!(shown_weight(&s, &rs(HealthState::Unchecked, false)), Some(3));
        assert_eq!(shown_weight(&s, &rs(HealthState::Down, false)), None);
        assert_eq!(shown_weight(&s, &rs(HealthState::Down, true)), Some(0));
        assert_eq!(shown_weight(&s, &rs(HealthState::Unspecified, false)), Some(5), "an lbd without health");
        let sorry = pb::Service { quorum_up: false, sorry_server: "10.0.0.9:80".into(), ..Default::default() };
        assert_eq!(shown_weight(&sorry, &rs(HealthState::Up, false)), None);
        assert_eq!(health_name(HealthState::Down as i32), "down");
    }
}
