//! Logs, metrics and the saved log queries over them.
//!
//! Logs are JSON lines (`tracing`), shaped like the lines Lambda's own JSON logging writes
//! (`timestamp`, `level`, `message`, `requestId`), plus Powertools' `cold_start` and
//! `function_name`, and `span`: the fields of every enclosing span (`event_id`, `job_id`,
//! `call_id`, `route`, …), innermost winning. Metrics are CloudWatch Embedded Metric Format lines
//! on stdout, so recording one is a `println!`, never an API call on the hot path.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use json_subscriber::JsonLayer;
use tracing::field::{Field, Visit};
use tracing::span::Attributes;
use tracing::{Id, Level, Subscriber};
use tracing_subscriber::filter::{filter_fn, FilterExt, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The span `lambda_runtime` opens around every invocation (`lambda_runtime::layers::trace::
/// request_span`, also used by `lambda_http`), with the fields `requestId` and `xrayTraceId`.
pub const INVOCATION_SPAN: &str = "Lambda runtime invoke";

/// JSON logs to stdout, named after `AWS_LAMBDA_FUNCTION_NAME`, at the level [`log_filter`]
/// picks. Call once at cold start, before anything logs.
pub fn init() {
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into());
    let directives = log_filter(
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
    );
    let _ = tracing::subscriber::set_global_default(subscriber(
        &function,
        &directives,
        std::io::stdout,
    ));
}

/// What to log: `RUST_LOG` when set (the override, with per-crate directives), else the level
/// Lambda passes from the function's `LoggingConfig.ApplicationLogLevel` in
/// `AWS_LAMBDA_LOG_LEVEL`, else `info`. Lambda's `FATAL` is `tracing`'s `error`.
pub fn log_filter(rust_log: Option<&str>, lambda_level: Option<&str>) -> String {
    if let Some(directives) = rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        return directives.to_owned();
    }
    let level = match lambda_level
        .map(|l| l.trim().to_ascii_uppercase())
        .as_deref()
    {
        Some("TRACE") => "trace",
        Some("DEBUG") => "debug",
        Some("WARN") => "warn",
        Some("ERROR" | "FATAL") => "error",
        _ => "info",
    };
    level.to_owned()
}

/// The subscriber [`init`] installs, writing to `writer` (tests pass a capture). `directives` are
/// `target=level` pairs and a bare default level (`info,sfvapi=debug,aws=warn`); an invalid
/// string falls back to `info`. `Targets`, not `EnvFilter`: its span and field filters would link
/// a regex engine into every function (≈0.5 MB) for syntax nobody uses here.
pub fn subscriber<W>(function: &str, directives: &str, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let env: Targets = directives
        .parse()
        .unwrap_or_else(|_| Targets::new().with_default(Level::INFO));
    // Spans of INFO and above stay enabled whatever the level, so a WARN line still carries the
    // request id and the event, job and call ids of the spans it happened in.
    let filter = env.or(filter_fn(|m| m.is_span() && *m.level() <= Level::INFO));
    let seen = Arc::new(AtomicBool::new(false));
    let invocations = InvocationLayer { seen: seen.clone() };
    tracing_subscriber::registry().with(
        invocations
            .and_then(json_layer(function, seen, writer))
            .with_filter(filter),
    )
}

fn json_layer<S, W>(function: &str, seen: Arc<AtomicBool>, writer: W) -> JsonLayer<S, W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    let mut layer = JsonLayer::new(writer);
    // RFC 3339 in UTC: Lambda's log-level filtering uses a `timestamp` only in that form
    // (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html).
    layer.with_timer("timestamp", tracing_subscriber::fmt::time::SystemTime);
    layer.with_level("level");
    // `message` and the event's own fields at the top, as Lambda's and Powertools' lines have.
    layer.with_flattened_event();
    layer.with_flattened_span_fields("span");
    layer.add_static_field("function_name", serde_json::json!(function));
    layer.add_dynamic_field("requestId", |event, ctx| {
        invocation(event, ctx, |i| i.request_id.clone())
    });
    layer.add_dynamic_field("xray_trace_id", |event, ctx| {
        invocation(event, ctx, |i| i.xray_trace_id.clone()).flatten()
    });
    // Outside any invocation: true during init (before the first one), false after.
    layer.add_dynamic_field("cold_start", move |event, ctx| {
        Some(invocation(event, ctx, |i| i.cold_start).unwrap_or(!seen.load(Ordering::Relaxed)))
    });
    layer
}

/// What the JSON lines know about the invocation they were logged in.
#[derive(Debug, Clone)]
struct Invocation {
    request_id: String,
    xray_trace_id: Option<String>,
    cold_start: bool,
}

fn invocation<S, T>(
    event: &tracing::Event<'_>,
    ctx: &Context<'_, S>,
    get: impl Fn(&Invocation) -> T,
) -> Option<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let span = ctx.event_span(event)?;
    let found = span
        .scope()
        .find_map(|s| s.extensions().get::<Invocation>().map(&get));
    found
}

/// Notes the request id of each [`INVOCATION_SPAN`], and whether it is the process's first.
struct InvocationLayer {
    seen: Arc<AtomicBool>,
}

impl<S> Layer<S> for InvocationLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != INVOCATION_SPAN {
            return;
        }
        let mut ids = InvocationIds::default();
        attrs.record(&mut ids);
        let cold_start = !self.seen.swap(true, Ordering::Relaxed);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Invocation {
                request_id: ids.request_id.unwrap_or_default(),
                xray_trace_id: ids.xray_trace_id,
                cold_start,
            });
        }
    }
}

#[derive(Default)]
struct InvocationIds {
    request_id: Option<String>,
    xray_trace_id: Option<String>,
}

impl Visit for InvocationIds {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "requestId" => self.request_id = Some(value.to_owned()),
            "xrayTraceId" => self.xray_trace_id = Some(value.to_owned()),
            _ => {}
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `lambda_runtime` passes `&String`, which arrives here rather than in `record_str`.
        let text = format!("{value:?}");
        let text = text.trim_matches('"').to_owned();
        match field.name() {
            "requestId" => self.request_id = Some(text),
            "xrayTraceId" => self.xray_trace_id = Some(text),
            _ => {}
        }
    }
}

/// CloudWatch namespace of every sfvapi metric.
pub const NAMESPACE: &str = "sfvapi";

/// Every metric name the code emits: the dashboard and the alarms may name only these, and
/// `shared/tests/ops.rs` fails when the sources emit a name that is not here.
pub const METRICS: &[&str] = &[
    // salesforce-ingest (also by `route`), vapi-webhook
    "events_accepted",
    "duplicates",
    "signature_failures",
    // salesforce-ingest, salesforce-relay: an event no rule can call stored as SKIPPED
    "events_skipped",
    // salesforce-relay: an event refused unstored (foreign org, not Event Relay), by `reason`
    "relay_rejected",
    // vapi-webhook
    "tool_calls",
    "reports_queued",
    // a call whose metadata named ids sfvapi did not sign (vapi/context.rs)
    "call_context_rejected",
    "call_slot_release_failed",
    // vapi-webhook, inbound calls (vapi/inbound.rs): how long the assistant-request answer took,
    // and whether the caller was known
    "assistant_request_ms",
    "inbound_calls_known",
    "inbound_calls_generic",
    // job-worker: `jobs_<status>` of every outcome it writes
    "jobs_done",
    "jobs_skipped",
    "jobs_retry",
    "jobs_failed",
    "jobs_needs_review",
    "dial_latency_ms",
    "dial_slot_waits",
    "dial_concurrency_blocked",
    "dial_limit_refused",
    "vapi_concurrency_limit",
    "vapi_remaining_concurrent_calls",
    // job-worker: settling doubts by asking Vapi (jobs/placed.rs, jobs/reconcile.rs)
    "dial_outcome_unknown",
    "dial_verified_absent",
    "dial_verified_placed",
    "reports_recovered",
    // job-worker: the calling policy's decisions (policy/, jobs/dial.rs, jobs/report.rs)
    "policy_wait_window",
    "policy_no_consent",
    "policy_capped",
    "policy_opted_out",
    "policy_retry_scheduled",
    "policy_zone_invalid",
    // vapi-webhook (the doNotCall tool), job-worker (the end-of-call analysis): opt-outs recorded
    "policy_opt_outs",
    // vapi-webhook: transfer-destination-request answered with the owner's (or fallback) number,
    // or declined (nobody to transfer to: the customer is told, the owner gets a callback Task)
    "transfers",
    "transfers_declined",
    // job-worker: a call's recording copied into the stack's bucket, or found gone at Vapi
    // (404/403/410) and recorded as missing (jobs/recording.rs)
    "recordings_stored",
    "recordings_missing",
    // every function that calls Salesforce's REST API (`Sforce-Limit-Info`)
    "sf_api_usage",
    "sf_api_limit",
    // token-refresher
    "token_refresh_terminal_error",
    "token_refresh_retryable_error",
    // a rotated refresh token the connection secret refused (kept in the token item meanwhile)
    "refresh_token_store_failed",
];

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
    emf_line_by(function, name, value, unit, None, timestamp_ms)
}

/// One EMF line; with `by = Some((key, value))` the metric is recorded under two dimension sets,
/// `[function]` (what the alarms read) and `[function, key]` (what the dashboard splits by).
pub fn emf_line_by(
    function: &str,
    name: &str,
    value: f64,
    unit: Unit,
    by: Option<(&str, &str)>,
    timestamp_ms: i64,
) -> String {
    let mut dimensions = vec![serde_json::json!(["function"])];
    if let Some((key, _)) = by {
        dimensions.push(serde_json::json!(["function", key]));
    }
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": [{"Name": name, "Unit": unit.as_str()}]
            }]
        },
        "function": function,
        name: value
    });
    if let (Some((key, v)), Some(obj)) = (by, line.as_object_mut()) {
        obj.insert(key.to_owned(), serde_json::json!(v));
    }
    line.to_string()
}

/// Emit a metric now. `AWS_LAMBDA_FUNCTION_NAME` names the function when it is set.
pub fn metric(name: &str, value: f64, unit: Unit) {
    emit(name, value, unit, None);
}

/// Emit a metric now, also split by one more dimension (e.g. `("route", "events")`).
pub fn metric_by(name: &str, value: f64, unit: Unit, key: &str, dimension: &str) {
    emit(name, value, unit, Some((key, dimension)));
}

fn emit(name: &str, value: f64, unit: Unit, by: Option<(&str, &str)>) {
    if let Ok(mut c) = CAPTURED.lock() {
        if let Some(names) = c.as_mut() {
            names.push(name.to_owned());
        }
    }
    if std::env::var_os("SFVAPI_NO_METRICS").is_some() {
        return;
    }
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into());
    let line = emf_line_by(&function, name, value, unit, by, crate::now_millis());
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// A CloudWatch Logs Insights query saved in the stack (`AWS::Logs::QueryDefinition` in
/// template.yaml, named `<stack>/<name>`; `shared/tests/ops.rs` checks the template holds this
/// exact text).
#[derive(Debug, Clone, Copy)]
pub struct SavedQuery {
    pub name: &'static str,
    pub query: &'static str,
}

/// Stands for the event id in [`FOLLOW_EVENT`]: a saved query has no parameters, so the operator
/// replaces it (and `make demo` prints it filled in, see [`follow_event_query`]).
pub const EVENT_ID_PLACEHOLDER: &str = "EVENT_ID";

/// Every line of one Salesforce event across the four functions: the ingest, the dial job, the
/// call's webhooks, the report job and its follow-up (each job and webhook span carries the
/// event id from the job item or the call's metadata).
pub const FOLLOW_EVENT: SavedQuery = SavedQuery {
    name: "follow-one-event",
    query: "fields @timestamp, function_name, level, message, span.job_id, span.call_id, requestId
| filter span.event_id = \"EVENT_ID\"
| sort @timestamp asc
| limit 1000",
};

/// Jobs that ended FAILED or NEEDS_REVIEW, with the outcome that says why (set the time range to
/// the last 24 hours: a saved query keeps no time range).
pub const FAILED_JOBS: SavedQuery = SavedQuery {
    name: "failed-and-needs-review-jobs",
    query: "fields @timestamp, span.event_id, span.job_id, span.kind, status, outcome
| filter message = \"job finished\" and status in [\"FAILED\", \"NEEDS_REVIEW\"]
| sort @timestamp desc
| limit 500",
};

/// 401 answers by route and source address, from the HTTP API's access log (every route's
/// signature, path-token and org checks answer 401; the functions' lines say which check).
pub const SIGNATURE_FAILURES: SavedQuery = SavedQuery {
    name: "signature-failures-by-route-and-source",
    query: "fields @timestamp, route, ip
| filter status = \"401\"
| stats count(*) as rejected by route, ip
| sort rejected desc",
};

/// The dials that waited longest between the event's arrival and `POST /call`.
pub const SLOWEST_DIALS: SavedQuery = SavedQuery {
    name: "slowest-dials",
    query: "fields @timestamp, span.event_id, span.job_id, latency_ms
| filter message = \"placing the call\"
| sort latency_ms desc
| limit 50",
};

/// Every saved query, in the order docs/operations.md lists them.
pub const SAVED_QUERIES: &[SavedQuery] =
    &[FOLLOW_EVENT, FAILED_JOBS, SIGNATURE_FAILURES, SLOWEST_DIALS];

/// [`FOLLOW_EVENT`] for one event id, ready to paste into Logs Insights. Quotes and backslashes
/// in the id are escaped so the query stays one string literal.
pub fn follow_event_query(event_id: &str) -> String {
    let escaped = event_id.replace('\\', "\\\\").replace('"', "\\\"");
    FOLLOW_EVENT.query.replace(EVENT_ID_PLACEHOLDER, &escaped)
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
    #[test]
    fn a_split_metric_keeps_the_function_only_dimension_set_the_alarms_read() {
        let line = emf_line_by(
            "ingest",
            "signature_failures",
            1.0,
            Unit::Count,
            Some(("route", "events")),
            42,
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["function"], ["function", "route"]])
        );
        assert_eq!(v["route"], "events");
        assert_eq!(v["function"], "ingest");
        assert_eq!(v["signature_failures"], 1.0);
    }

    #[test]
    fn rust_log_overrides_the_lambda_log_level() {
        assert_eq!(log_filter(None, None), "info");
        assert_eq!(log_filter(None, Some("DEBUG")), "debug");
        assert_eq!(log_filter(None, Some("WARN")), "warn");
        assert_eq!(log_filter(None, Some("FATAL")), "error");
        assert_eq!(log_filter(None, Some("nonsense")), "info");
        assert_eq!(
            log_filter(Some("sfvapi=debug,aws=warn"), Some("ERROR")),
            "sfvapi=debug,aws=warn"
        );
        assert_eq!(log_filter(Some("  "), Some("ERROR")), "error");
    }

    #[test]
    fn the_follow_query_names_the_event_as_one_string() {
        let q = follow_event_query("EVT-1");
        assert!(q.contains(r#"filter span.event_id = "EVT-1""#), "{q}");
        assert!(!q.contains(EVENT_ID_PLACEHOLDER));
        let q = follow_event_query(r#"a"b\c"#);
        assert!(q.contains(r#"= "a\"b\\c""#), "{q}");
    }

    /// A writer that keeps what it is given.
    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Lines {
        fn json(&self) -> Vec<serde_json::Value> {
            String::from_utf8_lossy(&self.0.lock().unwrap())
                .lines()
                .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
                .collect()
        }
    }

    fn invoke(request_id: &str) -> tracing::Span {
        let mut ctx = lambda_runtime::Context::default();
        ctx.request_id = request_id.to_owned();
        lambda_runtime::layers::trace::request_span(&ctx)
    }

    #[test]
    fn at_warn_a_line_still_carries_the_request_and_the_spans_it_was_logged_in() {
        let lines = Lines::default();
        let w = lines.clone();
        let sub = subscriber("job-worker", "warn", move || w.clone());
        tracing::subscriber::with_default(sub, || {
            tracing::warn!("during init");
            invoke("req-1").in_scope(|| {
                tracing::info_span!("job", job_id = "evt#sf#E1", event_id = "E1").in_scope(|| {
                    tracing::info!("filtered out");
                    tracing::warn!(attempt = 2, "kept");
                })
            });
            invoke("req-2").in_scope(|| tracing::error!("second"));
        });
        let got = lines.json();
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(got[0]["message"], "during init");
        assert_eq!(got[0]["cold_start"], true);
        assert!(got[0].get("requestId").is_none());
        let kept = &got[1];
        assert_eq!(kept["message"], "kept");
        assert_eq!(kept["level"], "WARN");
        assert_eq!(kept["attempt"], 2);
        assert_eq!(kept["requestId"], "req-1");
        assert_eq!(kept["cold_start"], true);
        assert_eq!(kept["function_name"], "job-worker");
        assert_eq!(kept["span"]["event_id"], "E1");
        assert_eq!(kept["span"]["job_id"], "evt#sf#E1");
        let ts = kept["timestamp"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.contains('T'), "RFC 3339 UTC: {ts}");
        assert_eq!(got[2]["requestId"], "req-2");
        assert_eq!(got[2]["cold_start"], false);
    }
}
