//! The JSON lines of one ingest and one worker invocation, through the real handlers on DynamoDB
//! Local and moto, carry what CloudWatch users expect on every line (Lambda request id, cold-start
//! flag, function name, timestamp, level, message), and the fields the saved "follow one event"
//! query reads.
//!
//! The invocation span is the one `lambda_runtime` itself opens around every invocation
//! (`lambda_runtime::layers::trace::request_span`, used by `lambda_http` too), so this is what the
//! deployed functions log.

use std::collections::HashMap;

use serde_json::{json, Value};
use sfvapi::config::Env;
use sfvapi::jobs::config::WorkerConfig;
use sfvapi::jobs::worker::Worker;
use sfvapi::telemetry::{self, FOLLOW_EVENT};
use sfvapi_test_support::*;
use tracing::Instrument;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The ingest handles `body` (signed) inside the invocation span of `request_id`.
async fn ingest_in(t: &Ingest, body: &[u8], request_id: &str) -> Answer {
    answer(
        t.app
            .handle(signed_event(body))
            .instrument(invocation(request_id))
            .await,
    )
}

/// The invocation span the runtime opens for `request_id`.
fn invocation(request_id: &str) -> tracing::Span {
    let mut ctx = lambda_runtime::Context::default();
    ctx.request_id = request_id.to_owned();
    lambda_runtime::layers::trace::request_span(&ctx)
}

/// `a.b` of a JSON line, if present.
fn field<'a>(line: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted
        .split('.')
        .try_fold(line, |v, k| v.get(k))
        .filter(|v| !v.is_null())
}

fn assert_every_line_is_cloudwatch_ready(lines: &[Value], function: &str) {
    assert!(!lines.is_empty(), "{function} logged nothing");
    for l in lines {
        assert_eq!(l["function_name"], function, "{l}");
        let ts = l["timestamp"].as_str().unwrap_or_default();
        assert!(
            ts.len() >= 20 && ts.as_bytes()[10] == b'T' && ts.ends_with('Z'),
            "RFC 3339 UTC timestamp: {l}"
        );
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
                .contains(&l["level"].as_str().unwrap_or("")),
            "{l}"
        );
        assert!(l["message"].is_string(), "{l}");
        assert!(l["cold_start"].is_boolean(), "{l}");
        assert!(l["requestId"].is_string(), "{l}");
    }
}

#[tokio::test]
async fn one_ingest_and_one_worker_invocation_log_what_cloudwatch_users_expect() {
    let event_id = unique("ops-logs");

    // --- salesforce-ingest: the event, then the sender's retry (a warm invocation) ---
    let ingest_logs = LogCapture::default();
    let t = ingest(&[]).await;
    {
        let w = ingest_logs.clone();
        let _guard = tracing::subscriber::set_default(telemetry::subscriber(
            "sfvapi-salesforce-ingest",
            "info",
            move || w.clone(),
        ));
        let body = flat_event(&event_id);
        let first = ingest_in(&t, &body, "req-ingest-1").await;
        assert_eq!(first.status, 202, "{}", first.body);
        let again = ingest_in(&t, &body, "req-ingest-2").await;
        assert_eq!(again.status, 200, "{}", again.body);
    }
    let ingest_lines = ingest_logs.lines();
    assert_every_line_is_cloudwatch_ready(&ingest_lines, "sfvapi-salesforce-ingest");
    let queued = ingest_lines
        .iter()
        .find(|l| l["message"] == "event queued")
        .expect("the ingest logs the queued event");
    assert_eq!(queued["requestId"], "req-ingest-1");
    assert_eq!(queued["cold_start"], true);
    assert_eq!(queued["span"]["event_id"], event_id.as_str());
    assert_eq!(queued["span"]["route"], "events");
    let duplicate = ingest_lines
        .iter()
        .find(|l| l["message"] == "duplicate event")
        .expect("the retry is logged as a duplicate");
    assert_eq!(duplicate["requestId"], "req-ingest-2");
    assert_eq!(
        duplicate["cold_start"], false,
        "the second invocation is warm"
    );

    // --- job-worker: the stream record of that job; Salesforce has no such Contact ---
    let sf = MockServer::start().await;
    mount_sf_token(&sf, "tok-1").await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/services/data/v62.0/sobjects/Contact/.+$"))
        .respond_with(ResponseTemplate::new(404).set_body_json(
            json!([{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]),
        ))
        .mount(&sf)
        .await;
    let sf_arn = create_secret(&sf_secret_json()).await;
    let vapi_arn = create_secret(&json!({"server_secrets": ["s"], "api_key": "k"})).await;
    let vars: HashMap<String, String> = [
        ("TABLE_NAME", t.store.table().to_owned()),
        ("SF_LOGIN_URL", sf.uri()),
        ("SF_CONNECTION_SECRET_ARN", sf_arn),
        ("VAPI_SECRET_ARN", vapi_arn),
        ("VAPI_BASE_URL", "http://127.0.0.1:9".to_owned()),
        ("VAPI_ASSISTANT_ID", "asst-test".into()),
        ("VAPI_PHONE_NUMBER_ID", "pn-test".into()),
        ("CALL_HOURS", "00:00-24:00".into()),
        ("CALL_CAP", "none".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config =
        WorkerConfig::from_env(&Env::new(move |k| vars.get(k).cloned())).expect("worker config");
    let worker = Worker::new(config, t.store.clone(), secrets_cache().await).expect("worker");
    let pk = format!("evt#sf#{event_id}");
    // The mapping's NEW_IMAGE is the whole item; the sample batch carries only pk and status, so
    // add what the job item holds and the worker's span reads.
    let mut batch = sfvapi::samples::stream_batch(&[(&pk, "PENDING")]);
    let image = &mut batch["Records"][0]["dynamodb"]["NewImage"];
    image["event_id"] = json!({"S": event_id});
    image["kind"] = json!({"S": "dial"});
    let batch = serde_json::from_value(batch).expect("a stream batch");

    let worker_logs = LogCapture::default();
    {
        let w = worker_logs.clone();
        let _guard = tracing::subscriber::set_default(telemetry::subscriber(
            "sfvapi-job-worker",
            "info",
            move || w.clone(),
        ));
        let resp = worker
            .handle(batch)
            .instrument(invocation("req-worker-1"))
            .await;
        assert!(resp.batch_item_failures.is_empty());
    }
    let worker_lines = worker_logs.lines();
    assert_every_line_is_cloudwatch_ready(&worker_lines, "sfvapi-job-worker");
    let finished = worker_lines
        .iter()
        .find(|l| l["message"] == "job finished")
        .unwrap_or_else(|| panic!("the worker logs the outcome: {worker_lines:#?}"));
    assert_eq!(finished["requestId"], "req-worker-1");
    assert_eq!(finished["cold_start"], true);
    assert_eq!(finished["status"], "FAILED", "{finished}");
    assert_eq!(finished["span"]["job_id"], pk.as_str());
    assert_eq!(finished["span"]["event_id"], event_id.as_str());

    // --- the saved query finds both functions' lines, and reads fields they have ---
    let all: Vec<&Value> = ingest_lines.iter().chain(&worker_lines).collect();
    let hits: Vec<&&Value> = all
        .iter()
        .filter(|l| field(l, "span.event_id") == Some(&json!(event_id)))
        .collect();
    assert!(hits
        .iter()
        .any(|l| l["function_name"] == "sfvapi-salesforce-ingest"));
    assert!(hits
        .iter()
        .any(|l| l["function_name"] == "sfvapi-job-worker"));
    let first_line = FOLLOW_EVENT.query.lines().next().unwrap_or_default();
    let fields = first_line
        .strip_prefix("fields ")
        .expect("the query starts with its fields");
    for f in fields
        .split(',')
        .map(str::trim)
        .filter(|f| !f.starts_with('@'))
    {
        assert!(
            hits.iter().any(|l| field(l, f).is_some()),
            "the follow-one-event query reads {f}, which no line of the event has"
        );
    }
    assert!(FOLLOW_EVENT.query.contains("filter span.event_id ="));
}
