//! Generates the server side of KServe v2 `GRPCInferenceService` for `aiperf mock-server`
//! (feature `grpc`), apart from the plugin table.
//!
//! The protocol is compiled once, by aiperf-endpoints' build script, which also writes its
//! descriptors and announces them as `DEP_AIPERF_KSERVE_DESCRIPTOR_SET` (its `links` key). From
//! them tonic-prost-build writes only the service trait and server (`OUT_DIR/inference.rs`,
//! included by `src/mock_server/grpc.rs`); the messages it names are aiperf-endpoints'
//! (`aiperf_endpoints::kserve::proto`), so client and server share one set of types and the
//! repository one copy of the .proto. No protoc is involved.

use std::path::Path;

use prost::Message;

/// Where aiperf-endpoints announces the descriptor file.
const DESCRIPTOR_SET_VAR: &str = "DEP_AIPERF_KSERVE_DESCRIPTOR_SET";

/// Writes `out_dir/inference.rs`.
pub fn generate(out_dir: &Path) -> Result<(), String> {
    let path = std::env::var(DESCRIPTOR_SET_VAR).map_err(|_| {
        format!(
            "{DESCRIPTOR_SET_VAR} is not set: aiperf-endpoints' build script, with its `kserve` \
             feature, provides it (the `grpc` feature of aiperf-cli enables that feature)"
        )
    })?;
    // tonic-prost-build reports no inputs to cargo.
    println!("cargo::rerun-if-changed={path}");
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let descriptors = prost_types::FileDescriptorSet::decode(bytes.as_slice())
        .map_err(|e| format!("{path} does not hold protobuf descriptors: {e}"))?;
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .build_transport(false)
        .extern_path(".inference", "::aiperf_endpoints::kserve::proto")
        .out_dir(out_dir)
        .compile_fds(descriptors)
        .map_err(|e| format!("cannot generate the KServe v2 gRPC service: {e}"))
}
