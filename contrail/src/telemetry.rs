//! Logs, and the Prometheus recorder that renders every crate's metrics at
//! `/metrics` (the names live with their crates: `contrail_ingest::telemetry`,
//! `contrail_query::telemetry`, `contrail_warehouse::telemetry`).

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder (installed on first use, so tests that
/// build several apps in one process share it).
pub fn prometheus() -> PrometheusHandle {
    PROMETHEUS
        .get_or_init(|| {
            let seconds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(contrail_ingest::telemetry::BUFFER_GROUP_REQUESTS.into()),
                        &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0],
                    )
                })
                .expect("bucket lists are non-empty")
                .build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a test harness); the
            // handle then renders only what this recorder saw, which is none.
            let _ = metrics::set_global_recorder(recorder);
            contrail_ingest::telemetry::register();
            handle
        })
        .clone()
}

/// Default log filter: Contrail's own crates at `info`, dependencies at
/// `warn` (Delta's kernel logs every snapshot load at `info`).
const DEFAULT_FILTER: &str =
    "warn,contrail=info,contrail_ingest=info,contrail_query=info,contrail_warehouse=info,contrail_edge=info";

/// Installs the log subscriber (`RUST_LOG` overrides [`DEFAULT_FILTER`]).
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
