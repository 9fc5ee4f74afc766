//! The KServe v2 messages (package `inference`), generated at build time by `build.rs` from
//! `proto/grpc_service.proto` with protox and prost-build: no protoc, no generated file in the
//! repository. Public because `aiperf mock-server` serves the same messages.

include!(concat!(env!("OUT_DIR"), "/inference.rs"));

/// The gRPC method paths of the service (`/inference.GRPCInferenceService/<Method>`).
pub mod method {
    /// One request, one response.
    pub const MODEL_INFER: &str = "/inference.GRPCInferenceService/ModelInfer";
    /// A bidirectional stream; each request may get several responses.
    pub const MODEL_STREAM_INFER: &str = "/inference.GRPCInferenceService/ModelStreamInfer";
}
