//! Generates the lb.v1 messages and the LoadBalancer client and server with protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/lb/v1/lb.proto");
    tonic_build::configure().build_client(true).build_server(true).compile_protos(&["proto/lb/v1/lb.proto"], &["proto"])?;
    Ok(())
}
