//! Compiles `proto/lotse.proto` with protox (a protobuf compiler in pure Rust, so no `protoc`
//! binary is needed on any machine) and generates tonic client and server code from it.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/lotse.proto");
    let fds = protox::compile(["lotse.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
