//! `make watch`'s environment, from nothing: the local stack it starts (table, secrets, sandbox)
//! and the env file it writes for `cargo lambda watch` (`sfvapi_local::watch::env_file`). Every
//! function is built from that file alone, as its `main.rs` does from the environment, and answers
//! one sample of `events/` (freshly signed, as `make invoke` sends it). In-process handlers, not
//! through `cargo lambda`: what is checked is that the file is complete and right for all five.
//! Run through `scripts/services.sh` (DynamoDB Local and moto).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use sfvapi::config::{Env, IngestConfig, TokenRefresherConfig};
use sfvapi::secrets::SecretsCache;
use sfvapi::store::Store;
use sfvapi_local::stack::{Stack, StackConfig};

fn sample(name: &str) -> Value {
    sfvapi::samples::all()
        .into_iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no sample {name}"))
        .1
}

fn request(name: &str) -> lambda_http::Request {
    lambda_http::request::from_str(&sample(name).to_string()).expect("an API Gateway v2 event")
}

#[tokio::test]
async fn the_watch_environment_answers_one_sample_of_each_function() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok(),
        "run through scripts/services.sh (DynamoDB Local and moto)"
    );
    let stack = Stack::start(StackConfig::default())
        .await
        .expect("the local stack");
    let text = sfvapi_local::watch::env_file(&stack.env);
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let vars: BTreeMap<String, String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=VALUE: {l}"));
            // cargo lambda watch runs the functions from the repository root.
            let v = if k == "ROUTING_FILE" {
                repo.join(v).to_string_lossy().into_owned()
            } else {
                v.to_owned()
            };
            (k.to_owned(), v)
        })
        .collect();
    let env = {
        let vars = vars.clone();
        Env::new(move |k: &str| vars.get(k).cloned())
    };
    let sdk = sfvapi::config::aws_sdk_config().await;
    let store = Store::new(sfvapi::store::client(&sdk), vars["TABLE_NAME"].clone());
    let secrets = || {
        SecretsCache::new(
            sfvapi::config::secrets_client(&sdk),
            Duration::from_secs(300),
        )
    };

    let ingest = sfvapi::ingest::IngestApp::new(
        IngestConfig::from_env(&env).expect("ingest configuration"),
        store.clone(),
        secrets(),
    );
    let answer = ingest.handle(request("salesforce-new-event.json")).await;
    assert_eq!(answer.status(), 202, "salesforce-ingest");

    let relay = sfvapi::relay::RelayApp::new(
        sfvapi::relay::RelayConfig::from_env(&env).expect("relay configuration"),
        store.clone(),
    );
    let answer = relay
        .handle(sample("relay-platform-event.json"))
        .await
        .unwrap();
    assert_eq!(answer["jobs"][0]["status"], "queued", "{answer}");
    assert_eq!(answer["jobs"][0]["rule"], "call-request", "{answer}");

    let webhook_config =
        sfvapi::vapi::config::VapiWebhookConfig::from_env(&env).expect("webhook configuration");
    let webhook = sfvapi::vapi::webhook::VapiWebhookApp::wired(
        &env,
        webhook_config,
        store.clone(),
        secrets(),
    )
    .expect("webhook");
    let answer = webhook.handle(request("vapi-status-update.json")).await;
    assert_eq!(answer.status(), 200, "vapi-webhook");

    let refresher = sfvapi::salesforce::connect::RefresherApp::new(
        TokenRefresherConfig::from_env(&env).expect("refresher configuration"),
        store.clone(),
        secrets(),
    )
    .expect("refresher");
    let answer = refresher.handle(sample("schedule.json")).await.unwrap();
    assert_eq!(answer["connections"][0]["status"], "fresh", "{answer}");

    let worker = sfvapi::jobs::worker::Worker::new(
        sfvapi::jobs::config::WorkerConfig::from_env(&env).expect("worker configuration"),
        store.clone(),
        secrets(),
    )
    .expect("worker");
    match sfvapi::jobs::worker::WorkerEvent::parse(sample("schedule.json")).unwrap() {
        sfvapi::jobs::worker::WorkerEvent::Sweep => {
            worker.sweep().await.expect("the sweep");
        }
        _ => panic!("schedule.json is the worker's sweep"),
    }
    stack.shutdown().await;
}
