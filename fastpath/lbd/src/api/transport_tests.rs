//! What the API offers besides its own calls: gRPC server reflection (so grpcurl and other
//! tools work without the .proto), through a real reflection client on the Unix socket.

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
