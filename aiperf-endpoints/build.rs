//! Compiles the KServe v2 protocol (`proto/grpc_service.proto`) into prost messages for the
//! `kserve` endpoint, with no system tool: protox parses the file in Rust and prost-build writes
//! `OUT_DIR/inference.rs`, which `src/kserve/proto.rs` includes.
//!
//! The encoded descriptors are also written to `OUT_DIR/kserve_descriptor_set.bin` and announced
//! to dependents' build scripts as `DEP_AIPERF_KSERVE_DESCRIPTOR_SET` (see `links` in
//! Cargo.toml): aiperf-cli generates its mock server's gRPC service from them, naming these
//! messages, so the repository holds one copy of the .proto and one set of message types.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    #[cfg(feature = "kserve")]
    if let Err(message) = kserve::compile() {
        for line in message.lines() {
            println!("cargo::error={line}");
        }
    }
}

#[cfg(feature = "kserve")]
mod kserve {
    use std::path::PathBuf;

    use prost::Message;

    /// The protocol file, relative to the package.
    const PROTO: &str = "proto/grpc_service.proto";

    pub(crate) fn compile() -> Result<(), String> {
        let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
        let out_dir = PathBuf::from(env("OUT_DIR")?);
        let proto = manifest_dir.join(PROTO);
        // prost-build's `compile_fds` reports no inputs to cargo: name the file here.
        println!("cargo::rerun-if-changed={}", proto.display());
        let descriptors = protox::compile([&proto], [manifest_dir.join("proto")])
            .map_err(|error| format!("cannot compile {PROTO}: {error:?}"))?;
        let descriptor_set = out_dir.join("kserve_descriptor_set.bin");
        std::fs::write(&descriptor_set, descriptors.encode_to_vec())
            .map_err(|error| format!("cannot write {}: {error}", descriptor_set.display()))?;
        prost_build::Config::new()
            .out_dir(&out_dir)
            .compile_fds(descriptors)
            .map_err(|error| {
                format!("cannot generate the KServe messages from {PROTO}: {error}")
            })?;
        println!(
            "cargo::metadata=descriptor_set={}",
            descriptor_set.display()
        );
        Ok(())
    }

    fn env(name: &str) -> Result<String, String> {
        std::env::var(name).map_err(|_| format!("cargo did not set {name} for the build script"))
    }
}
