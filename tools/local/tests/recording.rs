//! The recording kept (project issue 24, part 3), end to end on the local stack: the sandbox's
//! fake Vapi serves each call's recording at the end-of-call report's `recordingUrl`, the report
//! job streams it into the recordings bucket in moto's S3, and the Task links the object
//! (`scripts/services.sh cargo test -p sfvapi-local --test recording`).
//!
//! A stack exports its variables into the process environment (the worker's `from_env()` reads
//! them), so the tests take [`SERIAL`] and run one stack at a time.

use std::time::{Duration, Instant};

use serde_json::Value;
use sfvapi::ids::VapiCallId;
use sfvapi::store::{attr, Item};
use sfvapi_local::demo::{sandbox_log, scan, send_flat_event, settled, ADA, ADA_EVENT};
use sfvapi_local::stack::{Stack, StackConfig};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const LIMIT: Duration = Duration::from_secs(60);

async fn stack() -> Stack {
    sfvapi_test_support::local_services("AWS_ENDPOINT_URL_S3");
    Stack::start(StackConfig {
        sandbox: sfvapi_test_support::sandbox_server::quick_sandbox(),
        ..StackConfig::default()
    })
    .await
    .expect("the local stack starts")
}

/// Set the fake Vapi's switches (`POST /_sandbox`).
async fn vapi_switches(stack: &Stack, switches: Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/_sandbox/control", stack.vapi_url))
        .json(&serde_json::json!({ "vapi": switches }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{:?}", resp.text().await);
}

/// Ada's event, then wait until the call, its report job and its `ended` have settled. The
/// call's id and the table.
async fn call_ada(stack: &Stack) -> (String, Vec<Item>) {
    let (status, body) = send_flat_event(&stack.runner_url, ADA_EVENT, ADA)
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    let started = Instant::now();
    loop {
        let items = scan(&stack.store).await.unwrap();
        if settled(&items, &[ADA_EVENT]) {
            let call = item(&items, &format!("evt#sf#{ADA_EVENT}"))
                .and_then(|j| attr::opt_s(j, "call_id"))
                .expect("Ada's call")
                .to_owned();
            return (call, items);
        }
        assert!(started.elapsed() < LIMIT, "the call did not settle");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn item<'a>(items: &'a [Item], pk: &str) -> Option<&'a Item> {
    items.iter().find(|i| attr::opt_s(i, "pk") == Some(pk))
}

async fn s3() -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::new(&sfvapi::config::aws_sdk_config().await)
}

/// How many objects the bucket holds under `recordings/`.
async fn recordings_in(bucket: &str) -> i32 {
    s3().await
        .list_objects_v2()
        .bucket(bucket)
        .prefix("recordings/")
        .send()
        .await
        .unwrap()
        .key_count()
        .unwrap_or(0)
}

/// The Task bodies written for `call` (create, then any update), as JSON.
fn task_writes(log: &[Value], call: &str) -> Vec<Value> {
    sfvapi_local::timeline::task_upserts(log, call)
        .into_iter()
        .filter(|e| (200..300).contains(&e["status"].as_u64().unwrap_or(0)))
        .map(|e| serde_json::from_str(e["body"].as_str().unwrap_or("{}")).unwrap_or_default())
        .collect()
}

/// The recording GETs the fake Vapi answered for `call`.
fn recording_gets(log: &[Value], call: &str) -> usize {
    log.iter()
        .filter(|e| {
            e["service"] == "vapi"
                && e["method"] == "GET"
                && e["path"] == format!("/recordings/{call}.wav")
        })
        .count()
}

/// Run the report job once more (a redelivery, an operator's redrive) and wait for its DONE.
async fn run_report_again(stack: &Stack, report: &str) {
    sfvapi_local::demo::run_job_again(&stack.store, report)
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let job = stack.store.get(report).await.unwrap().unwrap_or_default();
        if attr::opt_s(&job, "status") == Some("DONE") && attr::opt_n(&job, "attempts") == Some(2) {
            return;
        }
        assert!(started.elapsed() < LIMIT, "second run: {job:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_is_streamed_into_the_bucket_encrypted_linked_from_the_task_and_copied_once() {
    let _one = SERIAL.lock().await;
    let stack = stack().await;
    // Larger than one part (8 MiB): the copy is a multipart upload of two parts.
    let size: usize = 9 * 1024 * 1024 + 1_000;
    vapi_switches(&stack, serde_json::json!({ "recording_bytes": size })).await;
    let before = sfvapi::now_millis();
    let (call, items) = call_ada(&stack).await;
    let after = sfvapi::now_millis();
    let bucket = stack.env["RECORDINGS_BUCKET"].clone();
    let report = format!("evt#vapi#{call}#end-of-call-report");
    let job = item(&items, &report).expect("the report job");
    assert_eq!(attr::opt_s(job, "status"), Some("DONE"), "{job:?}");

    // The object: where the call's month and id say, SSE-S3, every byte.
    let id = VapiCallId::parse("call", &call).unwrap();
    let key = attr::opt_s(
        item(&items, &format!("call#{call}")).unwrap(),
        "recording_key",
    )
    .expect("call# records the key")
    .to_owned();
    let expected = [before, after].map(|t| sfvapi::recording::object_key(&id, t, "wav"));
    assert!(expected.contains(&key), "{key} not in {expected:?}");
    let s3 = s3().await;
    // One GET: the object's metadata and its bytes.
    let head = s3
        .get_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .expect("the recording is in the bucket");
    assert_eq!(
        head.server_side_encryption(),
        Some(&aws_sdk_s3::types::ServerSideEncryption::Aes256)
    );
    assert_eq!(head.content_length(), Some(size as i64));
    assert_eq!(head.content_type(), Some("audio/wav"));
    assert!(
        head.e_tag()
            .is_some_and(|e| e.trim_matches('"').ends_with("-2")),
        "a two-part multipart upload: {:?}",
        head.e_tag()
    );
    let body = head.body.collect().await.unwrap().into_bytes();
    assert_eq!(&body[..4], b"RIFF");
    assert_eq!(body.len(), size);

    // The Task links the object (its S3 URI and console page), not Vapi's URL.
    let log = sandbox_log(&stack.vapi_url).await.unwrap();
    let tasks = task_writes(&log, &call);
    let description = tasks
        .last()
        .and_then(|t| t["Description"].as_str())
        .expect("the Task")
        .to_owned();
    assert!(
        description.contains(&format!("Recording: s3://{bucket}/{key}")),
        "{description}"
    );
    assert!(
        description.contains("https://console.aws.amazon.com/s3/object/"),
        "{description}"
    );
    assert!(!description.contains("/recordings/c"), "{description}");
    assert_eq!(recording_gets(&log, &call), 1);

    // The report job again: the Task is written again, the recording is not copied again.
    run_report_again(&stack, &report).await;
    let log = sandbox_log(&stack.vapi_url).await.unwrap();
    stack.shutdown().await;
    assert_eq!(
        recording_gets(&log, &call),
        1,
        "downloaded (and copied) once"
    );
    let tasks = task_writes(&log, &call);
    assert!(tasks.len() >= 2, "{tasks:#?}");
    assert!(tasks
        .last()
        .and_then(|t| t["Description"].as_str())
        .is_some_and(|d| d.contains(&format!("s3://{bucket}/{key}"))));
    assert_eq!(recordings_in(&bucket).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_gone_at_vapi_leaves_the_task_written_and_the_job_done_with_the_reason() {
    let _one = SERIAL.lock().await;
    let stack = stack().await;
    // Vapi's retention has passed: every recording URL answers 404.
    vapi_switches(&stack, serde_json::json!({ "recordings_gone": true })).await;
    let (call, items) = call_ada(&stack).await;
    let bucket = stack.env["RECORDINGS_BUCKET"].clone();
    let report = format!("evt#vapi#{call}#end-of-call-report");
    let job = item(&items, &report).expect("the report job");
    assert_eq!(attr::opt_s(job, "status"), Some("DONE"), "{job:?}");
    assert_eq!(attr::opt_n(job, "attempts"), Some(1), "not retried");
    let reason = attr::opt_s(job, "recording_missing").unwrap_or_default();
    assert!(reason.contains("HTTP 404"), "{job:?}");
    assert!(
        attr::opt_s(job, "detail").is_some_and(|d| d.contains("recording missing")),
        "{job:?}"
    );
    let call_item = item(&items, &format!("call#{call}")).unwrap();
    assert_eq!(attr::opt_s(call_item, "recording_missing"), Some(reason));
    assert_eq!(attr::opt_s(call_item, "recording_key"), None);

    let log = sandbox_log(&stack.vapi_url).await.unwrap();
    stack.shutdown().await;
    let tasks = task_writes(&log, &call);
    let description = tasks
        .last()
        .and_then(|t| t["Description"].as_str())
        .expect("the Task is written");
    assert!(
        description.contains("Recording: not kept (the recording is gone at its source (HTTP 404)"),
        "{description}"
    );
    assert_eq!(recordings_in(&bucket).await, 0, "nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_vapi_cannot_serve_for_a_moment_is_retried_and_the_task_then_links_the_copy() {
    let _one = SERIAL.lock().await;
    let stack = stack().await;
    // Vapi's storage answers 503 once: the first run writes the Task with Vapi's link and
    // retries; the retry (RETRY_BASE_SECS=1 on the local stack) stores it and links the copy.
    vapi_switches(&stack, serde_json::json!({ "recordings_fail_next": 1 })).await;
    let (call, _) = call_ada(&stack).await;
    let report = format!("evt#vapi#{call}#end-of-call-report");
    let started = Instant::now();
    let job = loop {
        let job = stack.store.get(&report).await.unwrap().unwrap_or_default();
        if attr::opt_s(&job, "status") == Some("DONE") {
            break job;
        }
        assert!(started.elapsed() < LIMIT, "not retried to DONE: {job:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(attr::opt_n(&job, "attempts"), Some(2), "{job:?}");
    assert!(
        attr::opt_s(&job, "recording").is_some_and(|r| r.starts_with("s3://")),
        "{job:?}"
    );
    let log = sandbox_log(&stack.vapi_url).await.unwrap();
    stack.shutdown().await;
    assert_eq!(recording_gets(&log, &call), 2, "the 503, then the copy");
    let tasks = task_writes(&log, &call);
    let first = tasks[0]["Description"].as_str().unwrap_or_default();
    assert!(
        first.contains(&format!("/recordings/{call}.wav (at Vapi for now")),
        "{first}"
    );
    let last = tasks
        .last()
        .and_then(|t| t["Description"].as_str())
        .unwrap_or_default();
    assert!(last.contains("Recording: s3://"), "{last}");
}
