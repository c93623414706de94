//! The `salesforce-relay` binary itself, run as Lambda runs it: through a Lambda Runtime API on
//! loopback (`sfvapi_bench::runtime_api`, the protocol `cargo lambda watch` serves to
//! `cargo lambda invoke`), on DynamoDB Local. Each sample of `events/` is invoked as
//! docs/connect-salesforce.md says and answers what it says; a broken routing document stops the init naming it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sfvapi::samples::{LOCAL_RELAY_ORG_ID, OTHER_ORG_ID, RELAY_EVENT_UUID};
use sfvapi_bench::runtime_api::RuntimeApi;
use tokio::process::{Child, Command};

fn repo() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn sample(name: &str) -> bytes::Bytes {
    bytes::Bytes::from(std::fs::read(repo().join("events").join(name)).unwrap())
}

async fn table() -> String {
    let sdk = sfvapi::config::aws_sdk_config().await;
    let name = format!("sfvapi-relay-invoke-{}", sfvapi::now_millis());
    sfvapi::store::create_table(&sfvapi::store::client(&sdk), &name)
        .await
        .expect("table on DynamoDB Local (run through scripts/services.sh)");
    name
}

fn spawn(api: &RuntimeApi, vars: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_salesforce-relay"))
        .env("AWS_LAMBDA_RUNTIME_API", api.host_port())
        .env("AWS_LAMBDA_FUNCTION_NAME", "salesforce-relay")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("SFVAPI_NO_METRICS", "1")
        .env("RUST_LOG", "error")
        .envs(vars.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the function")
}

async fn started(api: &RuntimeApi, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while api.first_next().is_none() {
        assert!(Instant::now() < deadline, "no init within 20 s");
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the function exited during init: {status}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn invoke(api: &mut RuntimeApi, id: &str, event: bytes::Bytes) -> Value {
    api.invoke(id.to_owned(), event);
    let c = api
        .completion(Duration::from_secs(20))
        .await
        .expect("an answer");
    assert!(
        c.ok,
        "{id}: invocation error {}",
        String::from_utf8_lossy(&c.body)
    );
    serde_json::from_slice(&c.body).unwrap()
}

#[tokio::test]
async fn each_relay_sample_answers_as_the_readme_says() {
    if std::env::var_os("AWS_ENDPOINT_URL_DYNAMODB").is_none() {
        panic!("run through scripts/services.sh (DynamoDB Local)");
    }
    let table = table().await;
    let routing = repo().join("events/routing-event-relay.yaml");
    let routing = routing.to_string_lossy();
    let mut api = RuntimeApi::start().await.unwrap();
    let mut child = spawn(
        &api,
        &[
            ("TABLE_NAME", &table),
            ("SF_RELAY_ORG_IDS", LOCAL_RELAY_ORG_ID),
            ("ROUTING_FILE", &routing),
        ],
    );
    started(&api, &mut child).await;

    let pe = invoke(&mut api, "pe", sample("relay-platform-event.json")).await;
    assert_eq!(
        pe,
        json!({"jobs": [{"eventId": RELAY_EVENT_UUID, "rule": "call-request", "status": "queued"}]})
    );
    let again = invoke(&mut api, "pe-again", sample("relay-platform-event.json")).await;
    assert_eq!(again["jobs"][0]["status"], "duplicate");
    let cdc = invoke(&mut api, "cdc", sample("relay-cdc-case-update.json")).await;
    assert_eq!(
        cdc,
        json!({"jobs": [{
            "eventId": "cdc:0004f2a1-7c3b-9d5e-8f61-2a3b4c5d6e7f:1:5005e00000AbCdEAAV",
            "rule": "case-priority-high",
            "status": "queued"
        }]})
    );
    let foreign = invoke(&mut api, "foreign", sample("relay-wrong-org.json")).await;
    assert_eq!(
        foreign,
        json!({"status": "rejected", "reason": format!("org {OTHER_ORG_ID} is not in SF_RELAY_ORG_IDS")})
    );
    // The production path: an SQS batch, answered with partial batch failures.
    let body = String::from_utf8(sample("relay-platform-event.json").to_vec()).unwrap();
    let batch = json!({"Records": [{"messageId": "m-1", "body": body, "eventSource": "aws:sqs"}]});
    let answer = invoke(&mut api, "sqs", bytes::Bytes::from(batch.to_string())).await;
    assert_eq!(answer, json!({"batchItemFailures": []}));
    let _ = child.kill().await;

    // With the built-in routing.yaml (no relay rules) the event is kept, as SKIPPED.
    let mut api = RuntimeApi::start().await.unwrap();
    let table = self::table().await;
    let mut child = spawn(
        &api,
        &[
            ("TABLE_NAME", &table),
            ("SF_RELAY_ORG_IDS", LOCAL_RELAY_ORG_ID),
        ],
    );
    started(&api, &mut child).await;
    let skipped = invoke(&mut api, "builtin", sample("relay-platform-event.json")).await;
    assert_eq!(skipped["jobs"][0]["status"], "skipped");
    assert!(skipped["jobs"][0]["reason"].as_str().unwrap().starts_with(
        "no routing rule matches this relayed event (detail-type \"Call_Request__e\""
    ));
    let _ = child.kill().await;
}

#[tokio::test]
async fn a_broken_routing_document_stops_the_functions_init_naming_it() {
    let dir = std::env::temp_dir().join(format!("sfvapi-relay-bad-{}", sfvapi::now_millis()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("routing.yaml");
    std::fs::write(
        &bad,
        "version: 1\nrules:\n  - id: requests\n    when: {detailType: Call_Request__e}\n    contact: Contact__c\n    writeBack: {Case: {Outcome__c: successEvaluation}}\n",
    )
    .unwrap();
    let bad = bad.to_string_lossy().into_owned();
    let api = RuntimeApi::start().await.unwrap();
    let child = spawn(
        &api,
        &[
            ("TABLE_NAME", "t"),
            ("SF_RELAY_ORG_IDS", LOCAL_RELAY_ORG_ID),
            ("ROUTING_FILE", &bad),
        ],
    );
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the function stops")
        .unwrap();
    assert!(!out.status.success(), "init must fail");
    assert!(api.first_next().is_none(), "no invocation was asked for");
    // Told to the runtime API, so the waiting `cargo lambda invoke` fails at once with it.
    let reported = api.init_error().expect("the init error is reported");
    assert!(
        reported.contains("writeBack.Case: the rule maps no case"),
        "{reported}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "routing document {bad} is invalid: rules[0] (id \"requests\"): writeBack.Case: the rule maps no case"
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_unconfigured_relay_reports_every_missing_variable_to_the_runtime_api_at_once() {
    let api = RuntimeApi::start().await.unwrap();
    let child = spawn(&api, &[("EVENT_TTL_DAYS", "0")]);
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the function stops")
        .unwrap();
    assert!(!out.status.success(), "init must fail");
    let reported: Value =
        serde_json::from_str(&api.init_error().expect("the init error is reported")).unwrap();
    assert_eq!(reported["errorType"], "Runtime.InitError");
    let message = reported["errorMessage"].as_str().unwrap();
    assert!(message.starts_with("3 configuration problems"), "{message}");
    for var in ["SF_RELAY_ORG_IDS", "EVENT_TTL_DAYS", "TABLE_NAME"] {
        assert!(
            message.contains(&format!("environment variable {var} ")),
            "{var}: {message}"
        );
    }
}
