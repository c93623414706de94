//! Logs and metrics. Logs are JSON lines (`tracing`), one span per request or job carrying
//! `event_id` / `job_id` / `call_id`; metrics are CloudWatch Embedded Metric Format lines on
//! stdout, so recording one is a `println!`, never an API call on the hot path.

use std::io::Write;

use tracing_subscriber::EnvFilter;

/// JSON logs at the level of `RUST_LOG` (default `info`). Call once at cold start.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// CloudWatch namespace of every sfvapi metric.
pub const NAMESPACE: &str = "sfvapi";

/// A metric unit CloudWatch understands.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Count,
    Milliseconds,
    Percent,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
            Self::Percent => "Percent",
        }
    }
}

/// One EMF line for one metric, with the function name as its single dimension.
pub fn emf_line(function: &str, name: &str, value: f64, unit: Unit, timestamp_ms: i64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [["function"]],
                "Metrics": [{"Name": name, "Unit": unit.as_str()}]
            }]
        },
        "function": function,
        name: value
    })
    .to_string()
}

/// Emit a metric now. `AWS_LAMBDA_FUNCTION_NAME` names the function when it is set.
pub fn metric(name: &str, value: f64, unit: Unit) {
    if let Ok(mut c) = CAPTURED.lock() {
        if let Some(names) = c.as_mut() {
            names.push(name.to_owned());
        }
    }
    if std::env::var_os("SFVAPI_NO_METRICS").is_some() {
        return;
    }
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into());
    let line = emf_line(&function, name, value, unit, crate::now_millis());
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// Metric names recorded since [`capture_metrics`] was called; `None` (the default) records
/// nothing, so production keeps no growing list.
static CAPTURED: std::sync::Mutex<Option<Vec<String>>> = std::sync::Mutex::new(None);

/// Start recording the names of emitted metrics (tests assert that an alarm metric is emitted).
pub fn capture_metrics() {
    if let Ok(mut c) = CAPTURED.lock() {
        c.get_or_insert_with(Vec::new);
    }
}

/// The metric names emitted since [`capture_metrics`].
pub fn captured_metrics() -> Vec<String> {
    CAPTURED
        .lock()
        .ok()
        .and_then(|c| c.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_line_is_what_cloudwatch_parses() {
        let v: serde_json::Value =
            serde_json::from_str(&emf_line("ingest", "events_accepted", 1.0, Unit::Count, 42))
                .unwrap();
        assert_eq!(v["_aws"]["Timestamp"], 42);
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "sfvapi");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            "events_accepted"
        );
        assert_eq!(v["events_accepted"], 1.0);
        assert_eq!(v["function"], "ingest");
    }
}
