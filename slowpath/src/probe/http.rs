//! HTTP_GET and SSL_GET: each url answers with its `status_code` (any 2xx when none is given)
//! and, when a `digest` is given, a body whose MD5 matches. TLS certificates are not verified,
//! as keepalived does not verify them without a configured CA.

use std::net::SocketAddrV4;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncWrite};

use super::tcp::{connect, secs};
use super::describe;

/// Largest body read to check a digest; a bigger one is a failure (memory per check stays
/// bounded whatever a server sends).
pub(super) const MAX_BODY: usize = 1 << 20;

/// What every url of one check shares.
#[derive(Debug, Clone, Copy)]
pub(super) struct Request<'a> {
    pub target: SocketAddrV4,
    pub bind: Option<SocketAddrV4>,
    pub timeout: Duration,
    pub tls: bool,
    pub virtualhost: Option<&'a str>,
    pub protocol: kaconf::HttpProtocol,
    pub enable_sni: bool,
}

/// Fetches `url` and checks it, all within the check's `connect_timeout`.
pub(super) async fn check(req: &Request<'_>, url: &kaconf::Url) -> Result<(), String> {
    let scheme = if req.tls { "https" } else { "http" };
    let what = format!("{scheme}://{}{}", describe(req.target, req.bind), url.path);
    match tokio::time::timeout(req.timeout, fetch(req, url)).await {
        Ok(Ok((status, body))) => verdict(url, status, body.as_deref()).map_err(|e| format!("GET {what}: {e}")),
        Ok(Err(e)) => Err(format!("GET {what}: {e}")),
        Err(_) => Err(format!("GET {what}: no complete answer within {}", secs(req.timeout))),
    }
}

/// Whether a response passes: the status (exact, or 2xx) and the body's MD5.
pub(crate) fn verdict(url: &kaconf::Url, status: u16, body: Option<&[u8]>) -> Result<(), String> {
    match url.status_code {
        Some(want) if status != want => return Err(format!("status {status}, expected {want}")),
        None if !(200..300).contains(&status) => return Err(format!("status {status}, expected 2xx")),
        _ => {}
    }
    if let Some(want) = &url.digest {
        let got = md5_hex(body.unwrap_or_default());
        if !got.eq_ignore_ascii_case(want) {
            return Err(format!("body digest {got}, expected {}", want.to_ascii_lowercase()));
        }
    }
    Ok(())
}

fn md5_hex(body: &[u8]) -> String {
    Md5::digest(body).iter().map(|b| format!("{b:02x}")).collect()
}

async fn fetch(req: &Request<'_>, url: &kaconf::Url) -> Result<(u16, Option<Vec<u8>>), String> {
    let tcp = connect(req.target, req.bind, req.timeout).await?;
    let host = url.virtualhost.as_deref().or(req.virtualhost);
    if req.tls {
        let name = match host.filter(|_| req.enable_sni) {
            Some(h) => rustls::pki_types::ServerName::try_from(h.to_owned()).map_err(|e| format!("virtualhost {h:?}: {e}"))?,
            None => rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::V4(*req.target.ip()).into()),
        };
        let tls = tokio_rustls::TlsConnector::from(tls_config()).connect(name, tcp).await.map_err(|e| format!("TLS handshake: {e}"))?;
        exchange(tls, req, url, host).await
    } else {
        exchange(tcp, req, url, host).await
    }
}

async fn exchange<S>(io: S, req: &Request<'_>, url: &kaconf::Url, host: Option<&str>) -> Result<(u16, Option<Vec<u8>>), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(io)).await.map_err(|e| e.to_string())?;
    // The connection is driven in this task, beside the request (no second task per probe).
    let mut conn = std::pin::pin!(conn);
    let host = host.map_or_else(|| if req.target.port() == if req.tls { 443 } else { 80 } { req.target.ip().to_string() } else { req.target.to_string() }, str::to_owned);
    let (version, close) = match req.protocol {
        kaconf::HttpProtocol::Http10 => (hyper::Version::HTTP_10, false),
        kaconf::HttpProtocol::Http10Close => (hyper::Version::HTTP_10, true),
        kaconf::HttpProtocol::Http11 => (hyper::Version::HTTP_11, true),
    };
    let mut b = hyper::Request::get(url.path.as_str()).version(version).header(hyper::header::HOST, host).header(hyper::header::USER_AGENT, "lb-slowpath");
    if close {
        b = b.header(hyper::header::CONNECTION, "close");
    }
    let request = b.body(Empty::new()).map_err(|e| format!("bad request for path {:?}: {e}", url.path))?;
    let exchange = async {
        let resp = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let body = if url.digest.is_some() {
            let collected = Limited::new(resp.into_body(), MAX_BODY).collect().await.map_err(|e| format!("reading the body: {e}"))?;
            Some(collected.to_bytes().to_vec())
        } else {
            None
        };
        Ok((status, body))
    };
    let mut exchange = std::pin::pin!(exchange);
    tokio::select! {
        r = &mut exchange => r,
        c = &mut conn => match c {
            // The connection ended first (a close-delimited body): the response may be whole.
            Ok(()) => exchange.await,
            Err(e) => Err(e.to_string()),
        },
    }
}

/// One client configuration for every SSL_GET: any certificate is accepted (keepalived does
/// not verify without a CA); signatures are still checked with ring's algorithms.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    Arc::clone(CONFIG.get_or_init(|| {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = Arc::new(AnyCertificate(Arc::clone(&provider)));
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map(|b| b.dangerous().with_custom_certificate_verifier(verifier).with_no_client_auth());
        // ring's default provider supports the safe default versions; no other outcome exists.
        Arc::new(cfg.unwrap_or_else(|_| rustls::ClientConfig::builder().dangerous().with_custom_certificate_verifier(Arc::new(AnyCertificate(Arc::new(rustls::crypto::ring::default_provider())))).with_no_client_auth()))
    }))
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn url(path: &str, status: Option<u16>, digest: Option<&str>) -> kaconf::Url {
        kaconf::Url { path: path.into(), status_code: status, digest: digest.map(str::to_owned), virtualhost: None }
    }

    #[test]
    fn verdicts() {
        // MD5("hello") = 5d41402abc4b2a76b9719d911017c592
        let d = "5d41402abc4b2a76b9719d911017c592";
        assert_eq!(verdict(&url("/", None, None), 204, None), Ok(()));
        assert_eq!(verdict(&url("/", None, None), 301, None), Err("status 301, expected 2xx".into()));
        assert_eq!(verdict(&url("/", Some(404), None), 404, None), Ok(()));
        assert_eq!(verdict(&url("/", Some(200), None), 404, None), Err("status 404, expected 200".into()));
        assert_eq!(verdict(&url("/", Some(200), Some(d)), 200, Some(b"hello")), Ok(()));
        assert_eq!(verdict(&url("/", Some(200), Some(&d.to_uppercase())), 200, Some(b"hello")), Ok(()));
        assert_eq!(
            verdict(&url("/", None, Some(d)), 200, Some(b"hellO")),
            Err(format!("body digest {}, expected {d}", md5_hex(b"hellO")))
        );
    }

    /// A one-shot HTTP server on loopback answering `reply` to the first request; returns its
    /// address and what it received.
    async fn server(reply: &'static [u8]) -> (SocketAddrV4, tokio::task::JoinHandle<String>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let std::net::SocketAddr::V4(addr) = l.local_addr().unwrap() else { unreachable!() };
        let h = tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let mut got = Vec::new();
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(reply).await.unwrap();
            s.shutdown().await.unwrap();
            String::from_utf8_lossy(&got).into_owned()
        });
        (addr, h)
    }

    fn req(target: SocketAddrV4, protocol: kaconf::HttpProtocol) -> Request<'static> {
        Request { target, bind: None, timeout: Duration::from_secs(3), tls: false, virtualhost: Some("www.example"), protocol, enable_sni: false }
    }

    #[tokio::test]
    async fn http10_request_and_digest_over_a_closed_body() {
        let (addr, h) = server(b"HTTP/1.0 200 OK\r\nServer: t\r\n\r\nhello").await;
        let r = check(&req(addr, kaconf::HttpProtocol::Http10), &url("/healthz", Some(200), Some("5d41402abc4b2a76b9719d911017c592"))).await;
        assert_eq!(r, Ok(()));
        let sent = h.await.unwrap();
        assert!(sent.starts_with("GET /healthz HTTP/1.0\r\n"), "{sent}");
        assert!(sent.to_ascii_lowercase().contains("host: www.example\r\n"), "{sent}");
    }

    #[tokio::test]
    async fn chunked_body_and_status_mismatch() {
        let (addr, _h) = server(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n").await;
        let r = check(&req(addr, kaconf::HttpProtocol::Http11), &url("/", None, Some("5d41402abc4b2a76b9719d911017c592"))).await;
        assert_eq!(r, Ok(()));
        let (addr, _h) = server(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").await;
        let r = check(&req(addr, kaconf::HttpProtocol::Http11), &url("/x", Some(200), None)).await;
        assert_eq!(r, Err(format!("GET http://{addr}/x: status 404, expected 200")));
    }

    /// SSL_GET against a TLS server with a self-signed certificate (accepted, as keepalived
    /// does without a CA), with SNI from the virtualhost.
    #[tokio::test]
    async fn ssl_get_over_rustls() {
        let cert = rcgen::generate_simple_self_signed(vec!["www.example".into()]).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_cfg));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let std::net::SocketAddr::V4(addr) = l.local_addr().unwrap() else { unreachable!() };
        let h = tokio::spawn(async move {
            let (tcp, _) = l.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let sni = tls.get_ref().1.server_name().map(str::to_owned);
            let mut buf = vec![0u8; 4096];
            let n = tls.read(&mut buf).await.unwrap();
            tls.write_all(b"HTTP/1.0 200 OK\r\n\r\nhello").await.unwrap();
            tls.shutdown().await.unwrap();
            (sni, String::from_utf8_lossy(&buf[..n]).into_owned())
        });
        let mut rq = req(addr, kaconf::HttpProtocol::Http10);
        rq.tls = true;
        rq.enable_sni = true;
        let r = check(&rq, &url("/", Some(200), Some("5d41402abc4b2a76b9719d911017c592"))).await;
        assert_eq!(r, Ok(()));
        let (sni, sent) = h.await.unwrap();
        assert_eq!(sni.as_deref(), Some("www.example"));
        assert!(sent.starts_with("GET / HTTP/1.0\r\n"), "{sent}");
        // A plain-HTTP server is a TLS failure, not a pass.
        let (addr, _h) = server(b"HTTP/1.0 200 OK\r\n\r\nhello").await;
        let mut rq = req(addr, kaconf::HttpProtocol::Http10);
        rq.tls = true;
        let r = check(&rq, &url("/", None, None)).await;
        assert!(r.as_ref().is_err_and(|e| e.starts_with(&format!("GET https://{addr}/: "))), "{r:?}");
    }

    #[tokio::test]
    async fn garbage_and_silence_are_failures_not_panics() {
        let (addr, _h) = server(b"\x00\x01garbage\r\n\r\n").await;
        let r = check(&req(addr, kaconf::HttpProtocol::Http10), &url("/", None, None)).await;
        assert!(r.is_err(), "{r:?}");
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let std::net::SocketAddr::V4(addr) = l.local_addr().unwrap() else { unreachable!() };
        let mut rq = req(addr, kaconf::HttpProtocol::Http10);
        rq.timeout = Duration::from_millis(300);
        let r = check(&rq, &url("/", None, None)).await;
        assert_eq!(r, Err(format!("GET http://{addr}/: no complete answer within 0.3 s")));
    }
}
