//! Generates the lb.v1 messages and the LoadBalancer client and server with protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/lb/v1/lb.proto");
    // The encoded descriptors also feed lbd's gRPC reflection service.
    let descriptors = std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("lb_v1_descriptor.bin");
    tonic_build::configure()
        .build_client(true)
        .build_server(true)
        .file_descriptor_set_path(descriptors)
        .compile_protos(&["proto/lb/v1/lb.proto"], &["proto"])?;
    Ok(())
}
