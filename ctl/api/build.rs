//! Generates the lb.v1 messages and the LoadBalancer client and server with protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/lb/v1/lb.proto");
    // The encoded descriptors also feed lbd's gRPC reflection service.
    let descriptors = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("lb_v1_descriptor.bin");
    // Every message knows its proto name (prost::Name) and serializes with serde, so lbctl's
    // `-o json` is generated from the messages and shaped by the descriptor, not hand-kept.
    let mut config = prost_build::Config::new();
    config.enable_type_names();
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        .type_attribute(".", "#[derive(serde::Serialize)]")
        .file_descriptor_set_path(descriptors)
        .compile_protos_with_config(config, &["proto/lb/v1/lb.proto"], &["proto"])?;
    Ok(())
}
