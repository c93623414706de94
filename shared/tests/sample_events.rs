//! The files in `events/` stay usable: each parses as the event its function receives, and the
//! same samples, freshly signed, get the documented answers from the real handlers.

use std::collections::HashMap;

use sfvapi::jobs::worker::WorkerEvent;
use sfvapi_test_support::*;

fn events_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

#[test]
fn every_committed_event_parses_as_its_functions_input() {
    let mut seen = 0;
    for entry in std::fs::read_dir(events_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        if name.ends_with(".yaml") {
            // An example routing document: it loads as the functions would load it.
            sfvapi::routing::Routing::load_file(&path.to_string_lossy())
                .unwrap_or_else(|e| panic!("{e}"));
            continue;
        }
        if name == "assistant.json" || name == "assistant-inbound.json" {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert!(v["model"]["messages"][0]["content"]
                .as_str()
                .unwrap()
                .contains("{{customerName}}"));
            assert!(v["stopSpeakingPlan"].is_object(), "barge-in is configured");
            continue;
        }
        if name.starts_with("relay-") {
            // What an EventBridge rule on the partner bus delivers (salesforce-relay's input).
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let local =
                [
                    sfvapi::ids::SalesforceId::parse("org", sfvapi::samples::LOCAL_RELAY_ORG_ID)
                        .unwrap(),
                ];
            let parsed = sfvapi::relay::RelayedEvent::parse(&v, &local);
            assert_eq!(
                parsed.is_ok(),
                name != "relay-wrong-org.json",
                "{name}: {parsed:?}"
            );
        } else if name.starts_with("job-worker") || name == "schedule.json" {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let parsed = WorkerEvent::parse(v).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                matches!(parsed, WorkerEvent::Sweep),
                name == "schedule.json",
                "{name}"
            );
        } else {
            lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        // The committed files are exactly what `make events` writes (modulo fresh signatures).
        let stem = name.as_str();
        assert!(
            sfvapi::samples::all().iter().any(|(n, _)| *n == stem)
                || stem == "assistant.json"
                || stem == "assistant-inbound.json",
            "{name} is not produced by sfvapi::samples::all()"
        );
        seen += 1;
    }
    assert_eq!(
        seen,
        sfvapi::samples::all().len(),
        "every sample is committed: run `make events`"
    );
}

#[tokio::test]
async fn fresh_ingest_samples_get_their_documented_answers() {
    let (store, _) = fresh_store().await;
    let arn = create_secret(&serde_json::json!({
        "signing_secrets": [sfvapi::samples::LOCAL_SIGNING_SECRET],
        "outbound_message_token": sfvapi::samples::LOCAL_OM_TOKEN
    }))
    .await;
    let app = sfvapi::ingest::IngestApp::new(
        ingest_config(store.table(), &arn, &[]),
        store.clone(),
        secrets_cache().await,
    );
    let expect: HashMap<&str, u16> = HashMap::from([
        ("salesforce-new-event.json", 202),
        ("salesforce-duplicate.json", 200),
        ("salesforce-platform-event.json", 202),
        ("salesforce-base64-body.json", 202),
        ("salesforce-bad-signature.json", 401),
        ("salesforce-malformed.json", 400),
        ("salesforce-outbound-message.json", 200),
    ]);
    // In the order a reader runs them: the duplicate after the new event.
    for (name, event) in sfvapi::samples::all()
        .into_iter()
        .filter(|(n, _)| n.starts_with("salesforce"))
    {
        let req = lambda_http::request::from_str(&event.to_string()).unwrap();
        let a = answer(app.handle(req).await);
        assert_eq!(a.status, expect[name], "{name}: {}", a.body);
    }
}

#[tokio::test]
async fn fresh_vapi_samples_get_their_documented_answers() {
    let (store, _) = fresh_store().await;
    let arn =
        create_secret(&serde_json::json!({"server_secrets": [sfvapi::samples::LOCAL_VAPI_SECRET]}))
            .await;
    let vars: HashMap<&str, String> = HashMap::from([
        ("TABLE_NAME", store.table().to_owned()),
        ("VAPI_SERVER_SECRET_ARN", arn),
    ]);
    let config =
        sfvapi::vapi::config::VapiWebhookConfig::from_env(&sfvapi::config::Env::new(|k| {
            vars.get(k).cloned()
        }))
        .unwrap();
    let app = sfvapi::vapi::webhook::VapiWebhookApp::new(config, store, secrets_cache().await);
    for (name, event) in sfvapi::samples::all()
        .into_iter()
        .filter(|(n, _)| n.starts_with("vapi"))
    {
        let req = lambda_http::request::from_str(&event.to_string()).unwrap();
        let a = answer(app.handle(req).await);
        let want = if name == "vapi-bad-signature.json" {
            401
        } else {
            200
        };
        assert_eq!(a.status, want, "{name}: {}", a.body);
    }
}
