//! Contract tests against Vapi's published OpenAPI document (`tools/vapi-schema`, vendored):
//! every `POST /call` body the worker builds, the example assistant, every server message the
//! fixtures and `events/` hold, and every answer the webhook gives a tool call validate against
//! Vapi's own schemas, with unknown properties treated as errors (Vapi's API rejects them).
//! Each check has a negative twin: a mutated copy must be rejected, naming what is wrong.
//!
//! The webhook part drives the real handler on DynamoDB Local and moto
//! (`scripts/services.sh cargo test -p sfvapi --test contracts`).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Map, Value};
use sfvapi::calls::{record_call, CallSnapshot, CaseSnapshot, CustomerSnapshot, NewCall};
use sfvapi::ids::{E164Phone, SalesforceEventId, SalesforceId, VapiCallId};
use sfvapi::store::Store;
use sfvapi::vapi::client::CreateCall;
use sfvapi::vapi::webhook::VapiWebhookApp;
use sfvapi_test_support::*;

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn read_json(path: &str) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

fn assert_valid(schema: &str, value: &Value, what: &str) {
    if let Err(errors) = vapi_schema::validate(schema, value) {
        panic!(
            "{what} does not match Vapi's `{schema}`:\n  {}",
            errors.join("\n  ")
        );
    }
}

/// The validator rejects `value`, and one of its errors names `needle`.
fn assert_rejected(schema: &str, value: &Value, needle: &str) {
    match vapi_schema::validate(schema, value) {
        Ok(()) => panic!("`{schema}` accepted a value it must reject ({needle}): {value}"),
        Err(errors) => assert!(
            errors.iter().any(|e| e.contains(needle)),
            "`{schema}` rejected it, but no error names {needle:?}: {errors:?}"
        ),
    }
}

// ------------------------------------------------------------------ POST /call

/// Every key the dial job puts into `assistantOverrides.variableValues`
/// (`shared/src/jobs/dial.rs`, `variable_values`), with realistic values.
fn every_variable_value() -> Map<String, Value> {
    [
        ("customerName", "Ada Lovelace"),
        ("caseId", "5005e00000AbCdEAAV"),
        ("priority", "High"),
        ("reason", "Payment failed twice"),
        ("accountStatus", "Gold"),
        ("lastInteraction", "2026-11-20"),
        ("preferredLanguage", "en-GB"),
        ("caseNumber", "00001026"),
        ("caseSubject", "Refund not received"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), json!(v)))
    .collect()
}

fn full_call() -> CreateCall {
    CreateCall {
        assistant_id: "3f4b2b1e-6a0c-4f7e-9d55-2a3b4c5d6e7f".into(),
        phone_number_id: "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d".into(),
        customer_number: E164Phone::parse("phone", "+14155550123").expect("valid test phone"),
        customer_name: Some("Ada Lovelace".into()),
        event_id: SalesforceEventId::parse("e", "case-escalated-5005e00000AbCdEAAV-1")
            .expect("valid test event id"),
        contact_id: SalesforceId::parse("c", "0035e00000XyZ12AAF").expect("valid contact id"),
        case_id: Some(SalesforceId::parse("c", "5005e00000AbCdEAAV").expect("valid case id")),
        variable_values: every_variable_value(),
        context_sig: Some(format!("v1={}", "ab".repeat(32))),
    }
}

#[test]
fn every_post_call_body_the_worker_builds_matches_create_call_dto() {
    let full = full_call();
    let minimal = CreateCall {
        customer_name: None,
        case_id: None,
        variable_values: Map::new(),
        context_sig: None,
        ..full_call()
    };
    let long_names = CreateCall {
        customer_name: Some("Ada Augusta King, Countess of Lovelace, née Byron".into()),
        event_id: SalesforceEventId::parse("e", &format!("case-escalated-{}", "x".repeat(80)))
            .expect("valid long event id"),
        ..full_call()
    };
    let body = long_names.body();
    assert_eq!(body["name"].as_str().map(|n| n.chars().count()), Some(40));
    assert_eq!(
        body["customer"]["name"].as_str().map(|n| n.chars().count()),
        Some(40)
    );
    for (what, call) in [
        ("full context", &full),
        ("minimal context", &minimal),
        ("names over 40 characters", &long_names),
    ] {
        assert_valid("CreateCallDTO", &call.body(), what);
    }
}

#[test]
fn the_variables_tested_are_the_ones_the_assistant_uses() {
    // Every placeholder of the example assistant's prompt must be set by the dial job (else Vapi
    // speaks "{{x}}" or nothing), so the bodies above carry every one of them.
    let assistant = read_json(&format!("{REPO}/events/assistant.json")).to_string();
    let used: BTreeSet<String> = assistant
        .split("{{")
        .skip(1)
        .filter_map(|s| s.split_once("}}").map(|(name, _)| name.to_owned()))
        .collect();
    let tested: BTreeSet<String> = every_variable_value().keys().cloned().collect();
    assert!(used.len() >= 8, "{used:?}");
    assert!(
        used.is_subset(&tested),
        "not set: {:?}",
        used.difference(&tested).collect::<Vec<_>>()
    );
}

#[test]
fn a_post_call_body_with_an_unknown_property_is_rejected_naming_it() {
    let mut body = full_call().body();
    body["callbackUrl"] = json!("https://example.com");
    assert_rejected(
        "CreateCallDTO",
        &body,
        "property callbackUrl should not exist",
    );
    let mut body = full_call().body();
    body["customer"]["nickname"] = json!("Ada");
    assert_rejected(
        "CreateCallDTO",
        &body,
        "/customer: property nickname should not exist",
    );
    let mut body = full_call().body();
    body["name"] = json!("x".repeat(41));
    assert_rejected("CreateCallDTO", &body, "/name");
}

// ------------------------------------------------------------------ the assistant

fn assistant() -> Value {
    read_json(&format!("{REPO}/events/assistant.json"))
}

#[test]
fn the_example_assistant_matches_create_assistant_dto() {
    assert_valid("CreateAssistantDTO", &assistant(), "events/assistant.json");
}

#[test]
fn the_example_assistant_is_wired_for_production() {
    let a = assistant();
    let tools = a["model"]["tools"].as_array().cloned().unwrap_or_default();
    assert!(
        tools.iter().any(|t| t == &json!({"type": "endCall"})),
        "the end-call tool is model.tools[] {{\"type\":\"endCall\"}}: {tools:?}"
    );
    // Answering machines are only reported as `voicemail` when detection is on.
    assert!(
        a["voicemailDetection"].is_object(),
        "voicemailDetection off"
    );
    let server = &a["server"];
    assert!(server["credentialId"].is_string(), "server.credentialId");
    // Without a backoffPlan Vapi does not retry a failed server request (maxRetries defaults to 0).
    let plan = &server["backoffPlan"];
    assert!(plan["maxRetries"].as_u64().unwrap_or(0) > 0, "{plan}");
    let excluded: Vec<u64> = plan["excludedStatusCodes"]
        .as_array()
        .map(|c| c.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    for code in [400, 401, 403, 404, 413] {
        assert!(excluded.contains(&code), "{code} is retried: {plan}");
    }
    // A tool with a server of its own would be sent there, unsigned and never retried unless that
    // server repeats the credential and the plan; the example tools use the assistant's.
    for tool in &tools {
        if let Some(s) = tool.get("server") {
            assert!(
                s["credentialId"].is_string() && s["backoffPlan"].is_object(),
                "{tool}"
            );
        }
    }
}

#[test]
fn an_assistant_that_regains_an_unknown_property_is_rejected_naming_it() {
    let mut a = assistant();
    a["endCallFunctionEnabled"] = json!(true);
    assert_rejected(
        "CreateAssistantDTO",
        &a,
        "/: property endCallFunctionEnabled should not exist",
    );
    let mut a = assistant();
    a["server"]["secret"] = json!("s3cret");
    assert_rejected(
        "CreateAssistantDTO",
        &a,
        "/server: property secret should not exist",
    );
    let mut a = assistant();
    a["model"]["tools"][2]["function"]["parameters"]["properties"]["note"]["maxLength"] =
        json!(4000);
    assert_rejected(
        "CreateAssistantDTO",
        &a,
        "property maxLength should not exist",
    );
}

// ------------------------------------------------------------------ server messages

/// Every Vapi server message the project ships: the fixtures, and the `body` of every
/// `events/vapi-*.json` API Gateway event. The legacy `function-call` is left out: it is no longer
/// in Vapi's contract (see the test below), the webhook only still accepts it.
fn server_messages() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let dir = format!("{REPO}/shared/tests/fixtures/vapi");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    for name in names {
        // create-call-*: Vapi's answers to POST /call, checked below.
        if name.starts_with("create-call-") || name == "function-call-legacy.json" {
            continue;
        }
        out.push((
            format!("fixtures/vapi/{name}"),
            read_json(&format!("{dir}/{name}")),
        ));
    }
    let dir = format!("{REPO}/events");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("vapi-") && n != "vapi-function-call-legacy.json")
        .collect();
    names.sort();
    for name in names {
        let event = read_json(&format!("{dir}/{name}"));
        let body = event["body"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no body"));
        let message: Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{name}: body not JSON: {e}"));
        out.push((format!("events/{name}"), message));
    }
    out
}

#[test]
fn every_server_message_shipped_matches_server_message() {
    let messages = server_messages();
    assert!(messages.len() >= 13, "{} messages", messages.len());
    for (what, message) in &messages {
        assert_valid("ServerMessage", message, what);
    }
}

#[test]
fn the_legacy_function_call_is_not_in_vapis_contract_any_more() {
    // Kept in the webhook for old assistants only; if Vapi ever documents it again, this fails
    // and the fixture joins the checked messages.
    let legacy = read_json(&format!(
        "{REPO}/shared/tests/fixtures/vapi/function-call-legacy.json"
    ));
    assert_rejected(
        "ServerMessage",
        &legacy,
        "/message/type: \"function-call\" is not one of",
    );
}

#[test]
fn a_drifted_server_message_is_rejected_naming_the_drift() {
    let tool_calls = read_json(&format!(
        "{REPO}/shared/tests/fixtures/vapi/tool-calls.json"
    ));
    let mut m = tool_calls.clone();
    m["message"]["toolCallList"][0]["name"] = json!("lookupCase");
    assert_rejected(
        "ServerMessage",
        &m,
        "/message/toolCallList/0: property name should not exist",
    );
    let mut m = tool_calls.clone();
    if let Some(msg) = m["message"].as_object_mut() {
        msg.remove("toolWithToolCallList");
    }
    assert_rejected(
        "ServerMessage",
        &m,
        "\"toolWithToolCallList\" is a required",
    );
    let mut m = read_json(&format!(
        "{REPO}/shared/tests/fixtures/vapi/end-of-call-report.json"
    ));
    if let Some(call) = m["message"]["call"].as_object_mut() {
        call.remove("orgId");
    }
    assert_rejected(
        "ServerMessage",
        &m,
        "/message/call: \"orgId\" is a required",
    );
    let mut m = read_json(&format!(
        "{REPO}/shared/tests/fixtures/vapi/status-update.json"
    ));
    m["message"]["status"] = json!("finished");
    assert_rejected("ServerMessage", &m, "/message/status");
}

#[test]
fn vapis_answer_to_post_call_matches_call() {
    let created = read_json(&format!(
        "{REPO}/shared/tests/fixtures/vapi/create-call-response.json"
    ));
    assert_valid("Call", &created, "fixtures/vapi/create-call-response.json");
}

// ------------------------------------------------------------------ the webhook's answers

const SECRET: &str = "vapi-test-secret-do-not-use-0123456789";
const CALL_ID: &str = "c0ffee00-1111-4222-8333-444455556666";
const CASE_ID: &str = "5005e00000AbCdEAAV";

async fn webhook() -> (VapiWebhookApp, Store) {
    let (store, _counter) = fresh_store().await;
    let arn = create_secret(&json!({"server_secrets": [SECRET]})).await;
    let config = vapi_webhook_config(store.table(), &arn, &[]);
    let secrets = secrets_cache().await;
    record_call(
        &store,
        &NewCall {
            call_number: 1,
            call_id: VapiCallId::parse("id", CALL_ID).expect("call id"),
            event_id: SalesforceEventId::parse("e", "case-escalated-5005e00000AbCdEAAV-1")
                .expect("event id"),
            contact_id: SalesforceId::parse("c", "0035e00000XyZ12AAF").expect("contact id"),
            case_id: Some(SalesforceId::parse("c", CASE_ID).expect("case id")),
            snapshot: CallSnapshot {
                customer: CustomerSnapshot {
                    name: Some("Ada Lovelace".into()),
                    account_status: Some("Gold".into()),
                    ..Default::default()
                },
                case: Some(CaseSnapshot {
                    case_id: Some(CASE_ID.into()),
                    subject: Some("Refund not received".into()),
                    ..Default::default()
                }),
                captured_at: Some(sfvapi::now_millis()),
                handoff: None,
            },
            created_at_ms: sfvapi::now_millis(),
            slot: None,
        },
        Duration::from_secs(3600),
    )
    .await
    .expect("seed call#");
    (VapiWebhookApp::new(config, store.clone(), secrets), store)
}

/// Sends `body` signed like Vapi's default HMAC credential; the answer must be 200.
async fn tool_answer(app: &VapiWebhookApp, body: &Value) -> Value {
    let body = body.to_string();
    let a = answer(app.handle(vapi_signed_now(body.as_bytes(), SECRET)).await);
    assert_eq!(a.status, 200, "{}", a.body);
    a.json
}

fn fixture_json(path: &str) -> Value {
    serde_json::from_slice(&fixture(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn every_tool_call_answer_matches_server_message_response_tool_calls() {
    let (app, _store) = webhook().await;
    let one = fixture_json("vapi/tool-calls.json");
    let three = fixture_json("vapi/tool-calls-three.json");
    // An unknown tool, in the schema's own shape.
    let mut unknown = one.clone();
    for pointer in [
        "/message/toolCallList/0/function/name",
        "/message/toolWithToolCallList/0/function/name",
        "/message/toolWithToolCallList/0/toolCall/function/name",
    ] {
        if let Some(name) = unknown.pointer_mut(pointer) {
            *name = json!("transferMoney");
        }
    }
    for pointer in [
        "/message/toolCallList/0/id",
        "/message/toolWithToolCallList/0/toolCall/id",
    ] {
        if let Some(id) = unknown.pointer_mut(pointer) {
            *id = json!("call_unknown_1");
        }
    }
    assert_valid("ServerMessage", &unknown, "the unknown-tool message");

    let first = tool_answer(&app, &one).await;
    let cases = [
        ("one tool call", one.clone(), first.clone(), 1),
        (
            "three tool calls",
            three.clone(),
            tool_answer(&app, &three).await,
            3,
        ),
        (
            "an unknown tool",
            unknown.clone(),
            tool_answer(&app, &unknown).await,
            1,
        ),
        // A retried tool call is replayed from the cache: the same answer, still valid.
        (
            "a retried tool call",
            one.clone(),
            tool_answer(&app, &one).await,
            1,
        ),
    ];
    for (what, message, answer, n) in cases {
        assert_valid("ServerMessageResponseToolCalls", &answer, what);
        let results = answer["results"].as_array().cloned().unwrap_or_default();
        assert_eq!(results.len(), n, "{what}: {answer}");
        for (i, r) in results.iter().enumerate() {
            let call = &message["message"]["toolCallList"][i];
            assert_eq!(r["toolCallId"], call["id"], "{what}: {r}");
            assert_eq!(r["name"], call["function"]["name"], "{what}: {r}");
            assert!(
                r["result"].is_string() != r["error"].is_string(),
                "{what}: {r}"
            );
        }
    }
    let retried = tool_answer(&app, &one).await;
    assert_eq!(retried, first);
    let unknown_answer = tool_answer(&app, &unknown).await;
    assert_eq!(
        unknown_answer["results"][0]["error"],
        "unknown tool \"transferMoney\""
    );
}

#[test]
fn a_tool_call_answer_without_name_is_rejected_naming_it() {
    let answer = json!({"results": [{"toolCallId": "call_lookup_1", "result": "{}"}]});
    assert_rejected(
        "ServerMessageResponseToolCalls",
        &answer,
        "/results/0: \"name\" is a required property",
    );
    let answer =
        json!({"results": [{"name": "lookupCase", "toolCallId": "t", "result": {"a": 1}}]});
    assert_rejected(
        "ServerMessageResponseToolCalls",
        &answer,
        "/results/0/result",
    );
}

// ------------------------------------------------------------------ inbound calls

fn inbound_assistant() -> Value {
    read_json(&format!("{REPO}/events/assistant-inbound.json"))
}

#[test]
fn the_inbound_assistant_matches_create_assistant_dto_and_is_wired_like_the_outbound_one() {
    let a = inbound_assistant();
    assert_valid("CreateAssistantDTO", &a, "events/assistant-inbound.json");
    let outbound = assistant();
    // The same server (URL, credential, backoff plan), tools and server messages: an inbound
    // call's tool calls and report are handled exactly like an outbound call's.
    assert_eq!(a["server"], outbound["server"]);
    assert_eq!(a["model"]["tools"], outbound["model"]["tools"]);
    assert_eq!(a["serverMessages"], outbound["serverMessages"]);
    // Its own first message names nobody: it is what an unidentified caller hears.
    let first = a["firstMessage"].as_str().unwrap_or_default();
    assert!(!first.contains("{{"), "{first}");
    let mut drifted = a.clone();
    drifted["server"]["secret"] = json!("s3cret");
    assert_rejected(
        "CreateAssistantDTO",
        &drifted,
        "/server: property secret should not exist",
    );
}

#[test]
fn every_variable_of_the_inbound_assistant_is_set_for_a_known_caller() {
    let text = inbound_assistant().to_string();
    let used: BTreeSet<String> = text
        .split("{{")
        .skip(1)
        .filter_map(|s| s.split_once("}}").map(|(name, _)| name.trim().to_owned()))
        .collect();
    let snapshot = CallSnapshot {
        customer: CustomerSnapshot {
            name: Some("Ada Lovelace".into()),
            account_status: Some("Past Due".into()),
            preferred_language: Some("en".into()),
            last_interaction: Some("2026-11-01".into()),
            ..Default::default()
        },
        case: Some(CaseSnapshot {
            case_id: Some(CASE_ID.into()),
            case_number: Some("00001026".into()),
            subject: Some("Payment failed twice".into()),
            priority: Some("High".into()),
            status: Some("Escalated".into()),
            reason: Some("Payment failed twice".into()),
        }),
        captured_at: None,
        handoff: None,
    };
    let set: BTreeSet<String> = sfvapi::vapi::inbound::variable_values(
        &snapshot,
        sfvapi::vapi::inbound::Source::RecentCall,
    )
    .keys()
    .cloned()
    .collect();
    assert!(used.len() >= 10, "{used:?}");
    assert!(
        used.is_subset(&set),
        "not set: {:?}",
        used.difference(&set).collect::<Vec<_>>()
    );
}

const INBOUND_ASSISTANT_ID: &str = "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9";
const CONTEXT_KEY: &str = "context-key-for-contract-tests-0123456789";

/// The webhook with inbound calls configured (no Salesforce search: the recent-callers index
/// only), and Ada's number known from a recent outbound call.
async fn inbound_webhook(inbound: bool) -> VapiWebhookApp {
    let (store, _counter) = fresh_store().await;
    let arn = create_secret(&json!({"server_secrets": [SECRET], "context_key": CONTEXT_KEY})).await;
    let inbound_vars = [
        ("VAPI_INBOUND_ASSISTANT_ID", INBOUND_ASSISTANT_ID),
        ("INBOUND_SALESFORCE_SEARCH", "false"),
    ];
    let extra: &[(&str, &str)] = if inbound { &inbound_vars } else { &[] };
    let config = vapi_webhook_config(store.table(), &arn, extra);
    let secrets = secrets_cache().await;
    let outbound = VapiCallId::parse("id", CALL_ID).expect("call id");
    let ada = SalesforceId::parse("c", "0035e00000XyZ12AAF").expect("contact id");
    record_call(
        &store,
        &NewCall {
            call_number: 1,
            call_id: outbound.clone(),
            event_id: SalesforceEventId::parse("e", "case-escalated-5005e00000AbCdEAAV-1")
                .expect("event id"),
            contact_id: ada.clone(),
            case_id: Some(SalesforceId::parse("c", CASE_ID).expect("case id")),
            snapshot: CallSnapshot {
                customer: CustomerSnapshot {
                    name: Some("Ada Lovelace".into()),
                    ..Default::default()
                },
                case: Some(CaseSnapshot {
                    case_id: Some(CASE_ID.into()),
                    case_number: Some("00001026".into()),
                    subject: Some("Refund not received".into()),
                    reason: Some("Payment failed twice".into()),
                    ..Default::default()
                }),
                captured_at: Some(sfvapi::now_millis()),
                handoff: None,
            },
            created_at_ms: sfvapi::now_millis(),
            slot: None,
        },
        Duration::from_secs(3600),
    )
    .await
    .expect("seed call#");
    sfvapi::callers::record_outbound(
        &store,
        &sfvapi::secrets::SecretString::new(CONTEXT_KEY),
        &sfvapi::callers::OutboundCall {
            phone: &E164Phone::parse("p", "+14155550123").expect("phone"),
            call_id: &outbound,
            contact_id: &ada,
            placed_at_ms: sfvapi::now_millis(),
        },
        Duration::from_secs(86_400),
    )
    .await
    .expect("seed phone#");
    VapiWebhookApp::new(config, store, secrets)
}

fn assistant_request(from: Option<&str>) -> Value {
    let mut m = fixture_json("vapi/assistant-request.json");
    match from {
        Some(n) => {
            m["message"]["call"]["customer"]["number"] = json!(n);
            m["message"]["customer"]["number"] = json!(n);
        }
        None => {
            if let Some(c) = m["message"]["call"].as_object_mut() {
                c.remove("customer");
            }
            if let Some(c) = m["message"].as_object_mut() {
                c.remove("customer");
            }
        }
    }
    m
}

#[tokio::test]
async fn every_assistant_request_answer_matches_server_message_response_assistant_request() {
    let app = inbound_webhook(true).await;
    let known = assistant_request(Some("+14155550123"));
    let stranger = assistant_request(Some("+14155550999"));
    let withheld = assistant_request(None);
    let anonymous = assistant_request(Some("anonymous"));
    for (what, m) in [
        ("Ada's number", &known),
        ("a stranger's number", &stranger),
        ("no number", &withheld),
        ("a number that is not E.164", &anonymous),
    ] {
        assert_valid("ServerMessage", m, what);
        let answer = tool_answer(&app, m).await;
        assert_valid("ServerMessageResponseAssistantRequest", &answer, what);
        assert_eq!(answer["assistantId"], INBOUND_ASSISTANT_ID, "{what}");
        let overrides = &answer["assistantOverrides"];
        if what == "Ada's number" {
            assert_eq!(overrides["metadata"]["contactId"], "0035e00000XyZ12AAF");
            assert_eq!(overrides["variableValues"]["customerName"], "Ada Lovelace");
            let greeting = overrides["firstMessage"].as_str().unwrap_or_default();
            assert!(
                greeting.starts_with("Hi Ada,") && greeting.contains("Refund not received"),
                "{greeting}"
            );
        } else {
            assert!(overrides["metadata"].is_null(), "{what}: {answer}");
            assert!(overrides["firstMessage"].is_null(), "{what}: {answer}");
            assert_eq!(
                overrides["variableValues"],
                json!({"callerKnown": "no", "recentCall": "no"}),
                "{what}"
            );
        }
    }
    // Without VAPI_INBOUND_ASSISTANT_ID the call is refused in Vapi's words, still a valid answer.
    let off = inbound_webhook(false).await;
    let answer = tool_answer(&off, &known).await;
    assert_valid(
        "ServerMessageResponseAssistantRequest",
        &answer,
        "not configured",
    );
    assert!(answer["error"].is_string(), "{answer}");
}

#[test]
fn an_assistant_request_answer_that_drifts_is_rejected_naming_it() {
    let answer = json!({"assistantId": "a", "assistantOverrides": {"variableValues": {}, "callerName": "Ada"}});
    assert_rejected(
        "ServerMessageResponseAssistantRequest",
        &answer,
        "property callerName should not exist",
    );
    let answer = json!({"assistantId": "a", "assistantOverrides": {"firstMessage": 3}});
    assert_rejected(
        "ServerMessageResponseAssistantRequest",
        &answer,
        "/assistantOverrides/firstMessage",
    );
}

#[test]
fn the_phone_number_update_in_the_readme_matches_vapis_update_dto() {
    // docs/calls-back.md, step 2: the body that points a phone number's server at the webhook.
    let body = json!({"provider": "vapi", "server": {
        "url": "https://abc123.execute-api.eu-west-1.amazonaws.com/vapi/webhook",
        "credentialId": "5f0c1b2a-3d4e-4f50-8a6b-7c8d9e0f1a2b"}});
    assert_valid(
        "UpdateVapiPhoneNumberDTO",
        &body,
        "README phone-number PATCH",
    );
    let mut twilio = body.clone();
    twilio["provider"] = json!("twilio");
    assert_valid(
        "UpdateTwilioPhoneNumberDTO",
        &twilio,
        "the same for a Twilio number",
    );
    // Clearing the assistant with null is not in the contract: docs/calls-back.md says to remove it.
    let mut null_assistant = body.clone();
    null_assistant["assistantId"] = Value::Null;
    assert_rejected("UpdateVapiPhoneNumberDTO", &null_assistant, "/assistantId");
}

#[tokio::test]
async fn an_assistant_request_reusing_another_calls_id_gets_no_context_and_changes_nothing() {
    let app = inbound_webhook(true).await;
    // Ada's number, but the call id of the outbound call whose call# holds her snapshot under
    // another event: the inbound context must not be written over it, nor handed out.
    let mut m = assistant_request(Some("+14155550123"));
    m["message"]["call"]["id"] = json!(CALL_ID);
    let answer = tool_answer(&app, &m).await;
    assert_valid(
        "ServerMessageResponseAssistantRequest",
        &answer,
        "reused id",
    );
    assert!(
        answer["assistantOverrides"]["metadata"].is_null(),
        "{answer}"
    );
    let call = sfvapi::calls::read_call(app.store(), &VapiCallId::parse("c", CALL_ID).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        call.event_id.as_deref(),
        Some("case-escalated-5005e00000AbCdEAAV-1")
    );
}

// ------------------------------------------------------------------ the calling policy

/// The ended reasons the policy's `retry.on` accepts are Vapi's, exactly: the copy in
/// `shared/data/vapi-ended-reasons.txt` holds every value of the schema's enum and nothing else.
#[test]
fn the_policys_ended_reasons_are_vapis_enum() {
    let schema = vapi_schema::Contract::vapi()
        .schema("ServerMessageEndOfCallReport")
        .expect("ServerMessageEndOfCallReport")
        .clone();
    let mut from_schema: Vec<String> = schema["properties"]["endedReason"]["enum"]
        .as_array()
        .expect("endedReason is an enum")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    from_schema.sort();
    from_schema.dedup();
    let text =
        std::fs::read_to_string(format!("{REPO}/shared/data/vapi-ended-reasons.txt")).unwrap();
    let mut ours: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    ours.sort();
    assert_eq!(ours, from_schema);
    // The short names map into it.
    for (_, full) in sfvapi::policy::spec::ALIASES {
        assert!(from_schema.iter().any(|r| r == full), "{full}");
    }
    for reason in ["customer-did-not-answer", "customer-busy", "voicemail"] {
        assert!(from_schema.iter().any(|r| r == reason), "{reason}");
    }
}

/// Both example assistants carry the doNotCall tool and tell the agent when to use it (and still
/// validate, above); its answer is a `ToolCallResult`.
#[test]
fn the_assistants_offer_do_not_call_and_its_answer_is_a_tool_call_result() {
    for (what, a) in [("outbound", assistant()), ("inbound", inbound_assistant())] {
        let tools = a["model"]["tools"].as_array().cloned().unwrap_or_default();
        let tool = tools
            .iter()
            .find(|t| t["function"]["name"] == "doNotCall")
            .unwrap_or_else(|| panic!("{what}: no doNotCall tool"));
        assert_eq!(tool["type"], "function");
        let prompt = a["model"]["messages"][0]["content"]
            .as_str()
            .unwrap_or_default();
        assert!(
            prompt.contains("doNotCall"),
            "{what}: the prompt never says when to call it"
        );
    }
    let id = sfvapi::vapi::messages::ToolCallId::parse("t", "call_dnc_1").unwrap();
    let entry = sfvapi::vapi::tools::ToolOutcome::Result(sfvapi::jobs::optout::CONFIRMATION.into())
        .entry(&id, "doNotCall");
    assert_valid("ToolCallResult", &entry, "the doNotCall answer");
    assert_valid(
        "ServerMessageResponseToolCalls",
        &json!({"results": [entry]}),
        "the doNotCall answer",
    );
}

// ------------------------------------------------------------------ transfers (issue 24)

const TRANSFER_CALL_ID: &str = "c0ffee00-7777-4222-8333-444455556666";

#[test]
fn the_assistants_offer_a_transfer_whose_destination_is_decided_at_call_time() {
    for (what, a) in [("outbound", assistant()), ("inbound", inbound_assistant())] {
        let tools = a["model"]["tools"].as_array().cloned().unwrap_or_default();
        let tool = tools
            .iter()
            .find(|t| t["type"] == "transferCall")
            .unwrap_or_else(|| panic!("{what}: no transferCall tool"));
        // No destinations: Vapi then sends transfer-destination-request to the server URL.
        assert_eq!(tool["destinations"], json!([]), "{what}: {tool}");
        assert_valid("CreateTransferCallToolDTO", tool, what);
        let messages = a["serverMessages"].as_array().cloned().unwrap_or_default();
        for m in ["transfer-destination-request", "transfer-update"] {
            assert!(
                messages.contains(&json!(m)),
                "{what}: serverMessages lack {m}"
            );
        }
        let prompt = a["model"]["messages"][0]["content"]
            .as_str()
            .unwrap_or_default();
        assert!(
            prompt.contains("transferCall"),
            "{what}: the prompt never says when"
        );
    }
    // Negative twin: a transfer tool given a function, as a custom tool would have, is refused.
    let bad = json!({"type": "transferCall", "function": {"name": "transfer"}});
    assert_rejected(
        "CreateTransferCallToolDTO",
        &bad,
        "property function should not exist",
    );
}

async fn seed_transfer_call(store: &Store, handoff: sfvapi::calls::HandoffSnapshot) {
    record_call(
        store,
        &NewCall {
            call_number: 1,
            call_id: VapiCallId::parse("id", TRANSFER_CALL_ID).expect("call id"),
            event_id: SalesforceEventId::parse("e", "case-escalated-5005e00000AbCdEAAV-7")
                .expect("event id"),
            contact_id: SalesforceId::parse("c", "0035e00000XyZ12AAF").expect("contact id"),
            case_id: Some(SalesforceId::parse("c", CASE_ID).expect("case id")),
            snapshot: CallSnapshot {
                handoff: Some(handoff),
                ..Default::default()
            },
            created_at_ms: sfvapi::now_millis(),
            slot: None,
        },
        Duration::from_secs(3600),
    )
    .await
    .expect("seed call#");
}

fn transfer_request(call_id: &str) -> Value {
    json!({"message": {
        "type": "transfer-destination-request",
        "timestamp": sfvapi::now_millis(),
        // A destination in the message is ignored: the answer comes from call#.
        "destination": {"type": "number", "number": "+19005550000"},
        "call": {"id": call_id, "orgId": "org-test"}
    }})
}

#[tokio::test]
async fn every_transfer_destination_answer_matches_server_message_response_transfer_destination_request(
) {
    let (app, store) = webhook().await;
    seed_transfer_call(
        &store,
        sfvapi::calls::HandoffSnapshot {
            source: "caseOwner".into(),
            number: Some("+14155550100".into()),
            owner_id: Some("0055e000001AbCdAAK".into()),
            caller_id: Some("+14155550123".into()),
            hours: None,
            unavailable: None,
        },
    )
    .await;
    let schema = "ServerMessageResponseTransferDestinationRequest";

    // The Case owner, warm, the customer's number as caller id.
    let a = tool_answer(&app, &transfer_request(TRANSFER_CALL_ID)).await;
    assert_valid(schema, &a, "the transfer to the Case owner");
    let d = &a["destination"];
    assert_eq!(d["type"], "number");
    assert_eq!(d["number"], "+14155550100", "from call#, never the message");
    assert_eq!(d["callerId"], "+14155550123");
    let mode = d["transferPlan"]["mode"].as_str().unwrap_or_default();
    assert!(mode.starts_with("warm-transfer-"), "{mode}");
    assert_eq!(d["transferPlan"]["summaryPlan"]["enabled"], true);

    // Negative twin: a mode Vapi does not have is rejected.
    let mut bad = a.clone();
    bad["destination"]["transferPlan"]["mode"] = json!("warm");
    assert_rejected(schema, &bad, "/destination");

    // A call without call.handoff (CALL_ID): a message for the customer, no destination.
    let a = tool_answer(&app, &transfer_request(CALL_ID)).await;
    assert_valid(schema, &a, "the declined transfer");
    assert!(a.get("destination").is_none(), "{a}");
    assert_eq!(a["message"]["type"], "request-failed");
    assert!(a["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .contains("call you back"));
    // Negative twin: the message as bare text is not what Vapi reads.
    let mut bad = a.clone();
    bad["message"] = json!("nobody is available");
    assert_rejected(schema, &bad, "/message");
}
