//! Traces over OTLP, configured by OpenTelemetry's standard variables and
//! only when one names an endpoint: without `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) no layer is installed and the debug
//! spans of the hot path stay disabled, so tracing costs what it did.
//!
//! Exported: each request's span (`request`, with its `request_id`) and, on
//! the notify route, `verify`, `batch_wait` and `commit` below it; each call
//! to Finpay (`finpay_call`); each reconciliation check (`reconcile`). The
//! exporter's own variables (`OTEL_EXPORTER_OTLP_HEADERS`, `…_TIMEOUT`,
//! `OTEL_BSP_*`) are read by the OpenTelemetry SDK itself.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{filter_fn, FilterFn};

/// The wire protocol, from `OTEL_EXPORTER_OTLP_PROTOCOL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    HttpProtobuf,
    Grpc,
}

/// What the environment asks for: `None` when no endpoint is set.
pub fn requested(env: impl Fn(&str) -> Option<String>) -> Result<Option<Wire>, String> {
    let set = |k: &str| env(k).is_some_and(|v| !v.trim().is_empty());
    if !set("OTEL_EXPORTER_OTLP_ENDPOINT") && !set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
        return Ok(None);
    }
    let protocol = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| env("OTEL_EXPORTER_OTLP_PROTOCOL"));
    match protocol.as_deref().map(str::trim) {
        None | Some("") | Some("http/protobuf") => Ok(Some(Wire::HttpProtobuf)),
        Some("grpc") => Ok(Some(Wire::Grpc)),
        Some(other) => Err(format!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={other:?} is not supported: use http/protobuf or grpc"
        )),
    }
}

/// Exports spans in batches from the SDK's own thread. Hold it while
/// serving; [`Traces::shutdown`] sends what is left.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Builds the exporter; gRPC needs to be called inside the tokio runtime.
    pub fn start(wire: Wire) -> Result<Self, String> {
        let exporter = match wire {
            Wire::HttpProtobuf => SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .build(),
            Wire::Grpc => SpanExporter::builder().with_tonic().build(),
        }
        .map_err(|e| format!("OTLP trace exporter: {e}"))?;
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("finpay-qris");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        Ok(Self { provider })
    }

    pub fn tracer(&self) -> opentelemetry_sdk::trace::Tracer {
        self.provider.tracer("finpay-qris")
    }

    /// Exports the spans still buffered, then stops the exporter.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("finpay-qris: OTLP trace export did not finish: {e}");
        }
    }
}

/// What becomes a span in the trace: this crate's spans down to DEBUG (the
/// notify route's are debug so that they cost nothing when not exported),
/// and its events from INFO (recorded as span events).
pub fn span_filter() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    filter_fn(exported)
}

fn exported(m: &Metadata<'_>) -> bool {
    m.target().starts_with("finpay_qris")
        && if m.is_span() {
            *m.level() <= Level::DEBUG
        } else {
            *m.level() <= Level::INFO
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn without_an_endpoint_nothing_is_exported() {
        assert_eq!(requested(env(&[])), Ok(None));
        assert_eq!(requested(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")])), Ok(None));
        assert_eq!(requested(env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])), Ok(None));
    }

    #[test]
    fn the_protocol_variable_picks_http_protobuf_or_grpc() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        assert_eq!(requested(env(&[endpoint])), Ok(Some(Wire::HttpProtobuf)));
        let http = ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
        assert_eq!(requested(env(&[endpoint, http])), Ok(Some(Wire::HttpProtobuf)));
        let grpc = ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
        assert_eq!(requested(env(&[endpoint, grpc])), Ok(Some(Wire::Grpc)));
        let traces_only = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://collector:4317");
        let traces_grpc = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc");
        assert_eq!(requested(env(&[traces_only, traces_grpc])), Ok(Some(Wire::Grpc)));
    }

    #[test]
    fn an_unsupported_protocol_is_refused_by_name() {
        let e = requested(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ]))
        .unwrap_err();
        assert!(e.contains("http/json") && e.contains("grpc"), "{e}");
    }
}
