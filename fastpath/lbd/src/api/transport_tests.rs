//! What the API offers besides its own calls: gRPC server reflection (so grpcurl and other
//! tools work without the .proto), through a real reflection client on the Unix socket; TLS
//! on api_listen, through lb-api's real client.

use std::path::Path;
use std::sync::Arc;

use lb_api::Target;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

use super::start;
use crate::config::Config;
use crate::control::tests::{control_with, CONF};

type Reflection = ServerReflectionClient<tonic::codegen::InterceptedService<tonic::transport::Channel, lb_api::Bearer>>;

/// One reflection question, one answer (or the stream's error status).
async fn ask(c: &mut Reflection, q: MessageRequest) -> Result<MessageResponse, tonic::Status> {
    let req = ServerReflectionRequest { host: String::new(), message_request: Some(q) };
    let mut answers = c.server_reflection_info(tokio_stream::iter([req])).await?.into_inner();
    let a = answers.message().await?.expect("an answer, not the end");
    Ok(a.message_response.expect("a response"))
}

#[test]
fn reflection_lists_the_services_and_describes_them() {
    let dir = std::env::temp_dir().join(format!("lbd-api-reflection-{}", std::process::id()));
    let sock = dir.join("lbd.sock");
    let text = format!("api_socket = \"{}\"\n[[port]]\nname = 'a'\nvdev = 'net_ring0'\n", sock.display());
    let cfg = Config::parse(&text, Path::new("t.toml")).unwrap();
    let handle = start(&cfg, Arc::new(control_with(CONF, None))).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let ch = lb_api::connect_channel(&Target::Unix(sock.clone())).await.unwrap();
        let mut c = ServerReflectionClient::new(ch);
        let MessageResponse::ListServicesResponse(l) = ask(&mut c, MessageRequest::ListServices(String::new())).await.unwrap() else { panic!("not a service list") };
        let mut names: Vec<String> = l.service.into_iter().map(|s| s.name).collect();
        names.sort();
        assert_eq!(names, ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "lb.v1.LoadBalancer"]);
        let MessageResponse::FileDescriptorResponse(f) = ask(&mut c, MessageRequest::FileContainingSymbol("lb.v1.LoadBalancer".into())).await.unwrap() else { panic!("no descriptor") };
        let file = prost_types_name(&f.file_descriptor_proto[0]);
        assert_eq!(file, "lb/v1/lb.proto");
        let e = ask(&mut c, MessageRequest::FileContainingSymbol("lb.v1.Nope".into())).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::NotFound);
    });
    handle.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The file name of an encoded `FileDescriptorProto` (field 1, a string), read without
/// prost-types.
fn prost_types_name(encoded: &[u8]) -> String {
    assert_eq!(encoded.first(), Some(&0x0a), "field 1, length-delimited");
    let len = usize::from(encoded[1]);
    String::from_utf8(encoded[2..2 + len].to_vec()).unwrap()
}

/// A CA, and a certificate for 127.0.0.1 it signed, as PEM: (ca, cert, key).
fn tls_files() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap().signed_by(&key, &ca, &ca_key).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

const TOKEN: &str = "0123456789abcdef";

/// `api_tls_cert` / `api_tls_key` put TLS on api_listen: a client trusting the CA gets
/// answers (the token still required), a clear-text client and one trusting another CA get
/// nothing; unreadable or unusable files stop the start with the file named.
#[test]
fn tls_on_api_listen() {
    let dir = std::env::temp_dir().join(format!("lbd-api-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = tls_files();
    let (other_ca, _, _) = tls_files();
    for (name, pem) in [("ca.pem", &ca), ("cert.pem", &cert), ("key.pem", &key), ("other-ca.pem", &other_ca)] {
        std::fs::write(dir.join(name), pem).unwrap();
    }
    let port = free_port();
    let conf = |cert: &str, key: &str| {
        let text = format!(
            "api_socket = \"{}\"\napi_listen = \"127.0.0.1:{port}\"\napi_token = \"{TOKEN}\"\napi_tls_cert = \"{}\"\napi_tls_key = \"{}\"\n[[port]]\nname = 'a'\nvdev = 'net_ring0'\n",
            dir.join("lbd.sock").display(),
            dir.join(cert).display(),
            dir.join(key).display()
        );
        Config::parse(&text, Path::new("t.toml")).unwrap()
    };
    let e = start(&conf("cert.pem", "missing.pem"), Arc::new(control_with(CONF, None))).unwrap_err().to_string();
    assert!(e.starts_with(&format!("api_tls_key {}", dir.join("missing.pem").display())), "{e}");
    let e = start(&conf("cert.pem", "ca.pem"), Arc::new(control_with(CONF, None))).unwrap_err().to_string();
    assert!(e.starts_with("api_tls_cert "), "a CA certificate is no private key: {e}");
    let handle = start(&conf("cert.pem", "key.pem"), Arc::new(control_with(CONF, None))).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let target = |ca: Option<&str>, token: Option<&str>| Target::Tcp { addr: format!("127.0.0.1:{port}"), token: token.map(str::to_owned), ca: ca.map(|c| dir.join(c)) };
        let mut c = lb_api::connect(&target(Some("ca.pem"), Some(TOKEN))).await.unwrap();
        let l = c.list_services(lb_api::pb::ListServicesRequest { stats: false }).await.unwrap().into_inner();
        assert_eq!(l.services.len(), 2);
        let mut c = lb_api::connect(&target(Some("ca.pem"), None)).await.unwrap();
        let e = c.list_services(lb_api::pb::ListServicesRequest { stats: false }).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unauthenticated, "TLS does not replace the token");
        // Clear text to a TLS listener: no answer.
        let plain = match lb_api::connect(&target(None, Some(TOKEN))).await {
            Err(_) => true,
            Ok(mut c) => c.list_services(lb_api::pb::ListServicesRequest { stats: false }).await.is_err(),
        };
        assert!(plain, "a clear-text client was answered");
        let Err(e) = lb_api::connect(&target(Some("other-ca.pem"), Some(TOKEN))).await else { panic!("a server signed by another CA was trusted") };
        assert!(e.to_string().contains("certificate"), "{e}");
    });
    handle.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
