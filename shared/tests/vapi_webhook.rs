//! The Vapi webhook through its real handler: API Gateway v2 events in, HTTP answers out, with
//! DynamoDB Local and moto behind it (run with `scripts/services.sh cargo test --test vapi_webhook`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use serde_json::{json, Value};
use sfvapi::calls::{record_call, CallSnapshot, CaseSnapshot, CustomerSnapshot, NewCall};
use sfvapi::ids::{SalesforceEventId, SalesforceId, VapiCallId};
use sfvapi::signature::{hmac_parts, Algorithm};
use sfvapi::store::{attr, RequestCounter, Store};
use sfvapi::vapi::tools::{BoxFuture, LiveLookup, LiveLookupError, LiveLookupRequest};
use sfvapi::vapi::webhook::VapiWebhookApp;
use sfvapi_test_support::vapi_webhook_request as req_with;
use sfvapi_test_support::*;

const SECRET: &str = "vapi-test-secret-do-not-use-0123456789";
const ROTATED: &str = "vapi-rotated-secret-do-not-use-0123456789";
const CALL_ID: &str = "c0ffee00-1111-4222-8333-444455556666";
const EVENT_ID: &str = "case-escalated-5005e00000AbCdEAAV-1";
const CASE_ID: &str = "5005e00000AbCdEAAV";
const CONTACT_ID: &str = "0035e00000XyZ12AAF";

struct Vapi {
    app: VapiWebhookApp,
    store: Store,
    counter: RequestCounter,
    secret_arn: String,
}

const CONTEXT_KEY: &str = "vapi-context-key-do-not-use-0123456789";

/// `body` carrying the call context the worker puts on a call: the ids and their signature
/// (`sfvapi::vapi::context`), signed with `key`.
fn with_context(body: &[u8], key: &str, contact: &str) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(body).unwrap();
    sign_call_context(&mut v, key, EVENT_ID, contact, CASE_ID);
    v.to_string().into_bytes()
}

/// A webhook app on a fresh table and secret, as a cold start builds it.
async fn vapi(extra: &[(&str, &str)]) -> Vapi {
    let (store, counter) = fresh_store().await;
    let secret_arn = create_secret(&json!({
        "server_secrets": [SECRET], "context_key": CONTEXT_KEY
    }))
    .await;
    let app = vapi_webhook_app(&store, &secret_arn, extra).await;
    Vapi {
        app,
        store,
        counter,
        secret_arn,
    }
}

/// A request signed the default way (HMAC-SHA256 over `"{ts}.{body}"`, hex, now).
fn signed(body: &[u8]) -> lambda_http::Request {
    req_with(&vapi_hmac_headers(SECRET, body, sfvapi::now_secs()), body)
}

async fn send(app: &VapiWebhookApp, body: &[u8]) -> Answer {
    answer(app.handle(signed(body)).await)
}

fn snapshot() -> CallSnapshot {
    CallSnapshot {
        customer: CustomerSnapshot {
            name: Some("Ada Lovelace".into()),
            phone: Some("+1******0123".into()),
            account_status: Some("Gold".into()),
            preferred_language: Some("en-GB".into()),
            last_interaction: Some("2026-11-20".into()),
            high_value: Some(true),
        },
        case: Some(CaseSnapshot {
            case_id: Some(CASE_ID.into()),
            case_number: Some("00001026".into()),
            subject: Some("Refund not received".into()),
            priority: Some("High".into()),
            status: Some("Escalated".into()),
            reason: Some("Payment failed twice".into()),
        }),
        captured_at: Some(1_795_690_000_000),
        handoff: None,
    }
}

async fn seed_call(store: &Store, snap: CallSnapshot) {
    record_call(
        store,
        &NewCall {
            call_number: 1,
            call_id: VapiCallId::parse("id", CALL_ID).unwrap(),
            event_id: SalesforceEventId::parse("e", EVENT_ID).unwrap(),
            contact_id: SalesforceId::parse("c", CONTACT_ID).unwrap(),
            case_id: Some(SalesforceId::parse("c", CASE_ID).unwrap()),
            snapshot: snap,
            created_at_ms: sfvapi::now_millis(),
            slot: None,
        },
        Duration::from_secs(86_400),
    )
    .await
    .unwrap();
}

fn speech_update() -> Vec<u8> {
    fixture("vapi/speech-update.json")
}

// ---------------------------------------------------------------- authentication

#[tokio::test]
async fn hmac_mode_accepts_signed_and_rejects_tampered_wrong_stale_missing() {
    let v = vapi(&[("VAPI_AUTH_MODES", "hmac")]).await;
    let body = speech_update();
    let now = sfvapi::now_secs();
    assert_eq!(send(&v.app, &body).await.status, 200);
    // Milliseconds timestamps are accepted too (Vapi documents no unit).
    let ok_ms = req_with(&vapi_hmac_headers(SECRET, &body, now * 1000), &body);
    assert_eq!(answer(v.app.handle(ok_ms).await).status, 200);

    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let cases = [
        req_with(&vapi_hmac_headers(SECRET, &body, now), &tampered),
        req_with(&vapi_hmac_headers("wrong-secret", &body, now), &body),
        req_with(&vapi_hmac_headers(SECRET, &body, now - 301), &body),
        req_with(&vapi_hmac_headers(SECRET, &body, now)[..1], &body),
        req_with(&[], &body),
    ];
    for (i, req) in cases.into_iter().enumerate() {
        let a = answer(v.app.handle(req).await);
        assert_eq!(a.status, 401, "case {i}: {}", a.body);
        assert_eq!(a.json, json!({"error": "invalid_signature"}), "case {i}");
    }
}

#[tokio::test]
async fn hmac_options_algorithm_prefix_encoding_headers_payload() {
    let v = vapi(&[
        ("VAPI_AUTH_MODES", "hmac"),
        ("VAPI_HMAC_ALGORITHM", "sha512"),
        ("VAPI_HMAC_SIGNATURE_HEADER", "X-Vapi-Signature-512"),
        ("VAPI_HMAC_SIGNATURE_PREFIX", "sha512="),
        ("VAPI_HMAC_ENCODING", "base64"),
        ("VAPI_HMAC_PAYLOAD_FORMAT", "{body}"),
    ])
    .await;
    let body = speech_update();
    let sign = |secret: &str, b: &[u8]| {
        format!(
            "sha512={}",
            base64::engine::general_purpose::STANDARD.encode(hmac_parts(
                Algorithm::Sha512,
                secret.as_bytes(),
                &[b]
            ))
        )
    };
    let h = |sig: String| vec![("x-vapi-signature-512".to_owned(), sig)];
    assert_eq!(
        answer(v.app.handle(req_with(&h(sign(SECRET, &body)), &body)).await).status,
        200
    );
    let mut tampered = body.clone();
    tampered.push(b'\n');
    assert_eq!(
        answer(
            v.app
                .handle(req_with(&h(sign(SECRET, &body)), &tampered))
                .await
        )
        .status,
        401
    );
    assert_eq!(
        answer(
            v.app
                .handle(req_with(&h(sign("wrong", &body)), &body))
                .await
        )
        .status,
        401
    );
    // Without the configured prefix the signature is malformed.
    let no_prefix = sign(SECRET, &body).trim_start_matches("sha512=").to_owned();
    assert_eq!(
        answer(v.app.handle(req_with(&h(no_prefix), &body)).await).status,
        401
    );
}

#[tokio::test]
async fn secret_bearer_and_legacy_modes() {
    let v = vapi(&[
        ("VAPI_AUTH_MODES", "secret,bearer,legacy"),
        ("VAPI_BEARER_HEADER", "X-Vapi-Auth"),
    ])
    .await;
    let body = speech_update();
    let status = |a: Answer| a.status;
    let h = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
    let legacy = |secret: &str, b: &[u8]| {
        hex::encode(hmac_parts(Algorithm::Sha256, secret.as_bytes(), &[b]))
    };
    // Each mode accepts on its own.
    for hs in [
        h("x-vapi-secret", SECRET),
        h("x-vapi-auth", &format!("Bearer {SECRET}")),
        h("x-vapi-signature", &legacy(SECRET, &body)),
    ] {
        assert_eq!(
            status(answer(v.app.handle(req_with(&hs, &body)).await)),
            200,
            "{hs:?}"
        );
    }
    let mut tampered = body.clone();
    tampered.push(b' ');
    for hs in [
        h("x-vapi-secret", "wrong"),
        h("x-vapi-auth", "Bearer wrong"),
        h("x-vapi-auth", SECRET),                        // no "Bearer "
        h("authorization", &format!("Bearer {SECRET}")), // not the configured header
        h("x-vapi-signature", &legacy("wrong", &body)),
        h("x-signature", "00"), // hmac is not enabled here
        vec![],
    ] {
        assert_eq!(
            status(answer(v.app.handle(req_with(&hs, &body)).await)),
            401,
            "{hs:?}"
        );
    }
    let legacy_sig = h("x-vapi-signature", &legacy(SECRET, &body));
    assert_eq!(
        status(answer(v.app.handle(req_with(&legacy_sig, &tampered)).await)),
        401
    );
}

#[tokio::test]
async fn all_modes_together_and_a_rotated_secret_is_picked_up() {
    let v = vapi(&[("VAPI_AUTH_MODES", "hmac,secret,bearer,legacy")]).await;
    let body = speech_update();
    let h = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
    assert_eq!(send(&v.app, &body).await.status, 200);
    assert_eq!(
        answer(
            v.app
                .handle(req_with(
                    &h("authorization", &format!("Bearer {SECRET}")),
                    &body
                ))
                .await
        )
        .status,
        200
    );
    // Rotate: the cached secret no longer matches, the handler re-reads it once and accepts.
    put_secret(&v.secret_arn, &json!({"server_secrets": [ROTATED]})).await;
    let req = req_with(
        &vapi_hmac_headers(ROTATED, &body, sfvapi::now_secs()),
        &body,
    );
    assert_eq!(answer(v.app.handle(req).await).status, 200);
    assert_eq!(send(&v.app, &body).await.status, 401, "old secret retired");
}

#[tokio::test]
async fn unavailable_secret_or_table_is_503() {
    let (store, _) = fresh_store().await;
    let missing_secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing";
    let app = vapi_webhook_app(&store, missing_secret, &[]).await;
    let a = send(&app, &speech_update()).await;
    assert_eq!(a.status, 503, "{}", a.body);

    let arn = create_secret(&json!({"server_secrets": [SECRET]})).await;
    let missing_table = Store::new(store.client().clone(), "no-such-table");
    let app = vapi_webhook_app(&missing_table, &arn, &[]).await;
    let a = send(&app, &fixture("vapi/end-of-call-report.json")).await;
    assert_eq!(a.status, 503, "{}", a.body);
    assert_eq!(a.json["error"], "unavailable");
}

// ---------------------------------------------------------------- contract edges

#[tokio::test]
async fn unknown_types_malformed_oversize_and_routes() {
    let v = vapi(&[]).await;
    for t in [
        "transcript",
        "conversation-update",
        "hang",
        "user-interrupted",
        "brand-new-type",
    ] {
        let body = json!({"message": {"type": t, "call": {"id": CALL_ID}}}).to_string();
        let a = send(&v.app, body.as_bytes()).await;
        assert_eq!(a.status, 200, "{t}: {}", a.body);
    }
    assert_eq!(send(&v.app, &speech_update()).await.status, 200);

    let a = send(&v.app, b"{not json").await;
    assert_eq!(a.status, 400);
    assert_eq!(a.json["error"], "invalid_payload");
    assert!(
        a.json["detail"].as_str().unwrap().contains("JSON"),
        "{}",
        a.body
    );
    let a = send(&v.app, br#"{"message":{"type":"status-update"}}"#).await;
    assert_eq!(a.status, 400);
    assert!(
        a.json["detail"]
            .as_str()
            .unwrap()
            .contains("message.status"),
        "{}",
        a.body
    );

    let big = vec![b' '; 1024 * 1024 + 1];
    let a = send(&v.app, &big).await;
    assert_eq!(a.status, 413);

    let body = speech_update();
    let hs = vapi_hmac_headers(SECRET, &body, sfvapi::now_secs());
    let h: Vec<(&str, &str)> = hs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(
        answer(
            v.app
                .handle(request("POST", "/vapi/other", &h, &body, false))
                .await
        )
        .status,
        404
    );
    assert_eq!(
        answer(
            v.app
                .handle(request("GET", "/vapi/webhook", &h, b"", false))
                .await
        )
        .status,
        405
    );
    // A base64-encoded gateway body is verified over the decoded bytes.
    let a = answer(
        v.app
            .handle(request("POST", "/vapi/webhook", &h, &body, true))
            .await,
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(v.counter.total(), 0, "ignored messages touch no table");
}

// ---------------------------------------------------------------- tool calls

#[tokio::test]
async fn one_tool_call_answered_from_the_snapshot_in_two_requests() {
    let v = vapi(&[]).await;
    seed_call(&v.store, snapshot()).await;
    v.counter.reset();
    let a = send(&v.app, &fixture("vapi/tool-calls.json")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let case = serde_json::to_string(&snapshot().case.unwrap()).unwrap();
    assert_eq!(
        a.json,
        json!({"results": [{"name": "lookupCase", "toolCallId": "call_lookup_1", "result": case}]})
    );
    // The result is a string holding JSON, as Vapi wants.
    let inner: Value =
        serde_json::from_str(a.json["results"][0]["result"].as_str().unwrap()).unwrap();
    assert_eq!(inner["subject"], "Refund not received");
    assert_eq!(
        v.counter.count("BatchGetItem"),
        1,
        "{:?}",
        v.counter.snapshot()
    );
    assert_eq!(v.counter.count("PutItem"), 1, "{:?}", v.counter.snapshot());
    assert_eq!(v.counter.total(), 2, "{:?}", v.counter.snapshot());
}

#[tokio::test]
async fn three_tool_calls_answered_in_order_and_the_note_is_a_job() {
    let v = vapi(&[]).await;
    seed_call(&v.store, snapshot()).await;
    let a = send(&v.app, &fixture("vapi/tool-calls-three.json")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let snap = snapshot();
    assert_eq!(
        a.json,
        json!({"results": [
            {"name": "lookupCustomer", "toolCallId": "call_customer_1", "result": serde_json::to_string(&snap.customer).unwrap()},
            {"name": "lookupCase", "toolCallId": "call_case_1", "result": serde_json::to_string(&snap.case.unwrap()).unwrap()},
            {"name": "logNote", "toolCallId": "call_note_1", "result": "The note will be added to the case."}
        ]})
    );
    let job = stored(&v.store, &format!("evt#vapi#{CALL_ID}#tool#call_note_1")).await;
    assert_eq!(attr::opt_s(&job, "kind"), Some("note"));
    assert_eq!(attr::opt_s(&job, "status"), Some("PENDING"));
    let payload: Value = serde_json::from_str(attr::opt_s(&job, "payload").unwrap()).unwrap();
    assert_eq!(payload["caseId"], CASE_ID);
    assert_eq!(payload["note"], "Customer confirmed the refund arrived.");
    assert_eq!(payload["callId"], CALL_ID);
}

#[tokio::test]
async fn string_arguments_in_tool_with_tool_call_list() {
    let v = vapi(&[]).await;
    seed_call(&v.store, snapshot()).await;
    let a = send(&v.app, &fixture("vapi/tool-calls-tool-with-list.json")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.json,
        json!({"results": [{"name": "lookupCustomer", "toolCallId": "call_customer_2",
            "result": serde_json::to_string(&snapshot().customer).unwrap()}]})
    );
    // String arguments in toolCallList are parsed too; a non-object is an error entry, not a 400.
    let body = json!({"message": {"type": "tool-calls", "call": {"id": CALL_ID}, "toolCallList": [
        {"id": "s1", "name": "lookupCase", "arguments": format!("{{\"caseId\":\"{CASE_ID}\"}}")},
        {"id": "s2", "name": "lookupCase", "arguments": "[1,2"}
    ]}});
    let a = send(&v.app, body.to_string().as_bytes()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.json["results"][0]["result"]
        .as_str()
        .unwrap()
        .contains("Refund not received"));
    assert_eq!(a.json["results"][1]["toolCallId"], "s2");
    assert!(a.json["results"][1]["error"]
        .as_str()
        .unwrap()
        .contains("not a JSON object"));
}

#[tokio::test]
async fn unknown_tool_is_an_error_entry_naming_it() {
    let v = vapi(&[]).await;
    seed_call(&v.store, snapshot()).await;
    let body = json!({"message": {"type": "tool-calls", "call": {"id": CALL_ID}, "toolCallList": [
        {"id": "u1", "name": "transferMoney", "arguments": {"amount": 100}}
    ]}});
    let a = send(&v.app, body.to_string().as_bytes()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.json,
        json!({"results": [{"name": "transferMoney", "toolCallId": "u1", "error": "unknown tool \"transferMoney\""}]})
    );
}

#[tokio::test]
async fn a_retried_tool_call_gets_the_same_answer_without_a_second_lookup() {
    let v = vapi(&[]).await;
    seed_call(&v.store, snapshot()).await;
    let body = fixture("vapi/tool-calls.json");
    let first = send(&v.app, &body).await;
    assert_eq!(first.status, 200);
    // Change the snapshot: a recomputed answer would differ, a replayed one cannot.
    let mut changed = snapshot();
    changed.case.as_mut().unwrap().status = Some("Closed".into());
    seed_call(&v.store, changed).await;
    v.counter.reset();
    let retry = send(&v.app, &body).await;
    assert_eq!(retry.status, 200);
    assert_eq!(retry.json, first.json);
    let ops = v.counter.snapshot();
    assert_eq!(v.counter.count("BatchGetItem"), 1, "{ops:?}");
    assert_eq!(v.counter.count("GetItem"), 0, "{ops:?}");
    assert_eq!(
        v.counter.count("PutItem"),
        0,
        "no second cache write: {ops:?}"
    );
    assert_eq!(v.counter.total(), 1, "{ops:?}");
}

#[tokio::test]
async fn a_tool_answer_is_replayed_only_to_its_own_call() {
    let v = vapi(&[]).await;
    seed_call(&v.store, snapshot()).await;
    let body = fixture("vapi/tool-calls.json");
    let first = send(&v.app, &body).await;
    assert_eq!(first.status, 200);
    // Another call (its own snapshot, another case) sends the same tool call id: the model
    // picks those ids, so they are not secret. It must get its own answer, not Ada's.
    let other = "0badca11-1111-4222-8333-444455556666";
    let mut theirs = snapshot();
    theirs.case.as_mut().unwrap().subject = Some("A different case".into());
    record_call(
        &v.store,
        &NewCall {
            call_number: 1,
            call_id: VapiCallId::parse("id", other).unwrap(),
            event_id: SalesforceEventId::parse("e", "another-event").unwrap(),
            contact_id: SalesforceId::parse("c", CONTACT_ID).unwrap(),
            case_id: Some(SalesforceId::parse("c", CASE_ID).unwrap()),
            snapshot: theirs,
            created_at_ms: sfvapi::now_millis(),
            slot: None,
        },
        Duration::from_secs(86_400),
    )
    .await
    .unwrap();
    let mut msg: Value = serde_json::from_slice(&body).unwrap();
    msg["message"]["call"]["id"] = json!(other);
    let a = send(&v.app, msg.to_string().as_bytes()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_ne!(a.json, first.json, "not replayed from another call's cache");
    let inner: Value =
        serde_json::from_str(a.json["results"][0]["result"].as_str().unwrap()).unwrap();
    assert_eq!(inner["subject"], "A different case");
    // A cache item under the right key but for another tool is not replayed either.
    let mut renamed: Value = serde_json::from_slice(&body).unwrap();
    for list in ["toolCallList", "toolWithToolCallList"] {
        if let Some(items) = renamed["message"][list].as_array_mut() {
            for it in items {
                for f in ["/function/name", "/toolCall/function/name", "/name"] {
                    if let Some(n) = it.pointer_mut(f) {
                        *n = json!("lookupCustomer");
                    }
                }
            }
        }
    }
    let b = send(&v.app, renamed.to_string().as_bytes()).await;
    assert_eq!(b.status, 200);
    assert_eq!(b.json["results"][0]["name"], "lookupCustomer");
    let inner: Value =
        serde_json::from_str(b.json["results"][0]["result"].as_str().unwrap()).unwrap();
    assert_eq!(inner["name"], "Ada Lovelace", "{inner}");
}

#[tokio::test]
async fn legacy_function_call_answers_result() {
    let v = vapi(&[]).await;
    seed_call(&v.store, snapshot()).await;
    let a = send(&v.app, &fixture("vapi/function-call-legacy.json")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.json,
        json!({"result": serde_json::to_string(&snapshot().customer).unwrap()})
    );
}

/// A stand-in for the Salesforce REST lookup: counts calls, answers after `delay`.
struct SlowLookup {
    delay: Duration,
    calls: AtomicU32,
}

impl LiveLookup for SlowLookup {
    fn lookup<'a>(
        &'a self,
        req: &'a LiveLookupRequest,
    ) -> BoxFuture<'a, Result<CallSnapshot, LiveLookupError>> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            let mut s = snapshot();
            s.customer.name = Some(format!("live {}", req.contact_id.as_ref().unwrap()));
            Ok(s)
        })
    }
}

#[tokio::test]
async fn without_a_snapshot_the_live_lookup_answers_or_the_call_gets_an_error() {
    let body = with_context(
        &fixture("vapi/tool-calls-three.json"),
        CONTEXT_KEY,
        CONTACT_ID,
    );
    // No call# item and no live lookup: lookups get the no-context error; the note still has
    // its case from the call's metadata.
    let v = vapi(&[]).await;
    let a = send(&v.app, &body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.json["results"][0],
        json!({"name": "lookupCustomer", "toolCallId": "call_customer_1", "error": "no customer context for this call"})
    );
    assert_eq!(
        a.json["results"][1],
        json!({"name": "lookupCase", "toolCallId": "call_case_1", "error": "no customer context for this call"})
    );
    assert_eq!(
        a.json["results"][2]["result"],
        "The note will be added to the case."
    );

    // A live lookup within the deadline answers, once for both lookups of the message.
    let live = Arc::new(SlowLookup {
        delay: Duration::from_millis(10),
        calls: AtomicU32::new(0),
    });
    let v = vapi(&[]).await;
    let app = v.app.clone().with_live_lookup(live.clone());
    let a = answer(app.handle(signed(&body)).await);
    let customer: Value =
        serde_json::from_str(a.json["results"][0]["result"].as_str().unwrap()).unwrap();
    assert_eq!(customer["name"], format!("live {CONTACT_ID}"));
    assert_eq!(live.calls.load(Ordering::SeqCst), 1);

    // Past the deadline: an error entry in time, not a hung tool call.
    let slow = Arc::new(SlowLookup {
        delay: Duration::from_secs(5),
        calls: AtomicU32::new(0),
    });
    let v = vapi(&[("VAPI_LIVE_LOOKUP_TIMEOUT_MS", "200")]).await;
    let app = v.app.clone().with_live_lookup(slow.clone());
    let started = std::time::Instant::now();
    let one = with_context(&fixture("vapi/tool-calls.json"), CONTEXT_KEY, CONTACT_ID);
    let a = answer(app.handle(signed(&one)).await);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(a.json["results"][0]["toolCallId"], "call_lookup_1");
    assert!(a.json["results"][0]["error"].is_string(), "{}", a.body);
    // Not cached: the retry tries again.
    let _ = answer(app.handle(signed(&one)).await);
    assert_eq!(slow.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn call_context_sfvapi_did_not_sign_reaches_nothing() {
    // A correctly signed Vapi message (Vapi signs every call's messages, a web call started by
    // anyone with the public key too) whose metadata names another Contact: unsigned, or
    // signed with another key. No call# exists for it.
    let other_contact = "0035e00000DnCa1AAF";
    for body in [
        {
            let mut v: Value =
                serde_json::from_slice(&fixture("vapi/tool-calls-three.json")).unwrap();
            v["message"]["call"]["assistantOverrides"]["metadata"] =
                json!({"sfvapiEventId": EVENT_ID, "contactId": other_contact, "caseId": CASE_ID});
            v.to_string().into_bytes()
        },
        with_context(
            &fixture("vapi/tool-calls-three.json"),
            "a-key-that-is-not-ours-0123456789abcdef",
            other_contact,
        ),
    ] {
        let live = Arc::new(SlowLookup {
            delay: Duration::from_millis(1),
            calls: AtomicU32::new(0),
        });
        let v = vapi(&[]).await;
        let app = v.app.clone().with_live_lookup(live.clone());
        let a = answer(app.handle(signed(&body)).await);
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(live.calls.load(Ordering::SeqCst), 0, "no Salesforce read");
        for r in a.json["results"].as_array().unwrap() {
            assert!(r["error"].is_string(), "no answer from forged context: {r}");
        }
        // No CaseComment job either: logNote has no case it may trust.
        let notes = v
            .store
            .client()
            .scan()
            .table_name(v.store.table())
            .filter_expression("kind = :k")
            .expression_attribute_values(":k", attr::s("note"))
            .send()
            .await
            .unwrap();
        assert_eq!(notes.count(), 0);
        // Its end-of-call report becomes a job that names no Contact, Case or event.
        let mut rep: Value =
            serde_json::from_slice(&fixture("vapi/end-of-call-report.json")).unwrap();
        rep["message"]["call"] =
            serde_json::from_slice::<Value>(&body).unwrap()["message"]["call"].clone();
        assert_eq!(send(&v.app, rep.to_string().as_bytes()).await.status, 200);
        let jobs = report_jobs(&v.store).await;
        let p: Value = serde_json::from_str(attr::opt_s(&jobs[0], "payload").unwrap()).unwrap();
        assert!(p.get("contactId").is_none_or(Value::is_null), "{p}");
        assert!(p.get("eventId").is_none_or(Value::is_null), "{p}");
    }
}

// ---------------------------------------------------------------- status updates and reports

fn status_body(status: &str, ts: i64, ended_reason: Option<&str>) -> Vec<u8> {
    let mut m = json!({"type": "status-update", "status": status, "timestamp": ts, "call": {"id": CALL_ID}});
    if let Some(r) = ended_reason {
        m["endedReason"] = json!(r);
    }
    json!({"message": m}).to_string().into_bytes()
}

#[tokio::test]
async fn status_updates_are_recorded_once_and_never_regress() {
    let v = vapi(&[]).await;
    seed_call(&v.store, snapshot()).await;
    let body = fixture("vapi/status-update.json");
    v.counter.reset();
    let a = send(&v.app, &body).await;
    assert_eq!(
        (a.status, a.json.clone()),
        (200, json!({"status": "recorded"}))
    );
    let a = send(&v.app, &body).await;
    assert_eq!(
        (a.status, a.json.clone()),
        (200, json!({"status": "duplicate"}))
    );
    assert_eq!(
        v.counter.count("UpdateItem"),
        1,
        "{:?}",
        v.counter.snapshot()
    );
    let call = v
        .store
        .get(&format!("call#{CALL_ID}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attr::opt_s(&call, "call_status"), Some("in-progress"));
    assert_eq!(attr::opt_n(&call, "status_at"), Some(1_795_690_105_000));
    assert_eq!(
        attr::opt_s(&call, "event_id"),
        Some(EVENT_ID),
        "worker's fields kept"
    );
    assert!(v
        .store
        .get(&format!("evt#vapi#{CALL_ID}#status-update#in-progress"))
        .await
        .unwrap()
        .is_some());

    // "ended" then a late "ringing": the later status stays.
    send(
        &v.app,
        &status_body("ended", 1_795_690_400_000, Some("customer-busy")),
    )
    .await;
    let a = send(&v.app, &status_body("ringing", 1_795_690_100_000, None)).await;
    assert_eq!(a.status, 200);
    let call = v
        .store
        .get(&format!("call#{CALL_ID}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(attr::opt_s(&call, "call_status"), Some("ended"));
    assert_eq!(attr::opt_s(&call, "ended_reason"), Some("customer-busy"));
}

async fn report_jobs(store: &Store) -> Vec<HashMap<String, AttributeValue>> {
    store
        .client()
        .scan()
        .table_name(store.table())
        .filter_expression("kind = :k")
        .expression_attribute_values(":k", attr::s("report"))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default()
}

#[tokio::test]
async fn an_end_of_call_report_delivered_three_times_is_one_job() {
    // No call# item: the report is tied to its event through the call's signed metadata.
    let v = vapi(&[]).await;
    let body = with_context(
        &fixture("vapi/end-of-call-report.json"),
        CONTEXT_KEY,
        CONTACT_ID,
    );
    let answers: Vec<Value> = {
        let mut out = Vec::new();
        for _ in 0..3 {
            v.counter.reset();
            let a = send(&v.app, &body).await;
            assert_eq!(a.status, 200, "{}", a.body);
            assert_eq!(
                v.counter.total(),
                1,
                "one conditional PutItem: {:?}",
                v.counter.snapshot()
            );
            out.push(a.json);
        }
        out
    };
    assert_eq!(answers[0], json!({"status": "queued"}));
    assert_eq!(answers[1], json!({"status": "duplicate"}));
    assert_eq!(answers[2], json!({"status": "duplicate"}));
    let jobs = report_jobs(&v.store).await;
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(
        attr::opt_s(job, "pk"),
        Some(format!("evt#vapi#{CALL_ID}#end-of-call-report").as_str())
    );
    assert_eq!(attr::opt_s(job, "status"), Some("PENDING"));
    assert_eq!(attr::opt_s(job, "event_id"), Some(EVENT_ID));
    let p: Value = serde_json::from_str(attr::opt_s(job, "payload").unwrap()).unwrap();
    assert_eq!(p["callId"], CALL_ID);
    assert_eq!(p["eventId"], EVENT_ID);
    assert_eq!(p["endedReason"], "customer-ended-call");
    assert_eq!(p["cost"], 0.21);
    assert_eq!(p["startedAt"], "2026-11-26T10:00:05.000Z");
    assert_eq!(p["endedAt"], "2026-11-26T10:03:20.000Z");
    assert_eq!(p["summary"], "Customer was told the refund was issued.");
    assert_eq!(
        p["recordingUrl"],
        "https://storage.example.com/recordings/c0ffee00.wav"
    );
    assert_eq!(p["successEvaluation"], "true");
    assert!(p["transcript"].as_str().unwrap().starts_with("AI: Hi Ada"));
    assert_eq!(p["transcriptTruncated"], false);
}

/// DynamoDB's item size: attribute names plus values (UTF-8 bytes for strings, ~1 byte per two
/// digits + 1 for numbers).
fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter()
        .map(|(k, v)| {
            k.len()
                + match v {
                    AttributeValue::S(s) => s.len(),
                    AttributeValue::N(n) => n.len() / 2 + 2,
                    _ => 64,
                }
        })
        .sum()
}

#[tokio::test]
async fn a_300kb_transcript_is_cut_to_fit_the_item_keeping_more_than_a_task_holds() {
    let v = vapi(&[]).await;
    let mut report: Value =
        serde_json::from_slice(&fixture("vapi/end-of-call-report.json")).unwrap();
    let line = "User: I would like to know when the refund arrives, it has been a while. ";
    let transcript: String = line.repeat(300 * 1024 / line.len() + 1);
    assert!(transcript.len() > 300 * 1024);
    report["message"]["artifact"]["transcript"] = json!(transcript);
    let body = report.to_string().into_bytes();
    assert!(
        body.len() > 256 * 1024,
        "a body larger than the ingest limit is still accepted"
    );
    let a = send(&v.app, &body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let job = v
        .store
        .get(&format!("evt#vapi#{CALL_ID}#end-of-call-report"))
        .await
        .unwrap()
        .unwrap();
    let size = item_size(&job);
    assert!(size < 400 * 1024, "item is {size} bytes");
    assert!(
        size < 100 * 1024,
        "item is {size} bytes, far below the limit"
    );
    let p: Value = serde_json::from_str(attr::opt_s(&job, "payload").unwrap()).unwrap();
    let t = p["transcript"].as_str().unwrap();
    // More than the Task holds (32,000): the rest goes into a file (jobs::transcript).
    assert_eq!(
        t.chars().count(),
        sfvapi::vapi::jobs::MAX_STORED_TRANSCRIPT_CHARS,
        "kept up to the stored limit"
    );
    assert!(t.starts_with(line));
    assert_eq!(p["transcriptTruncated"], true);
}

// ---------------------------------------------------------------- what a caller cannot do

#[tokio::test]
async fn a_message_with_150_tool_calls_is_read_in_chunks_and_every_call_answered() {
    let v = vapi(&[]).await;
    seed_call(&v.store, snapshot()).await;
    // Tool-call ids as Vapi sends them (Vapi OpenAPI `ToolCall.id`), 150 in one message.
    let list: Vec<Value> = (0..150)
        .map(|i| {
            json!({"id": format!("call_lookup_{i:03}"), "type": "function",
                        "function": {"name": "lookupCustomer", "arguments": {}}})
        })
        .collect();
    let body =
        json!({"message": {"type": "tool-calls", "call": {"id": CALL_ID}, "toolCallList": list}});
    v.counter.reset();
    let a = send(&v.app, body.to_string().as_bytes()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let results = a.json["results"].as_array().expect("results");
    assert_eq!(results.len(), 150);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["toolCallId"], format!("call_lookup_{i:03}"));
        assert!(
            r["result"].as_str().is_some_and(|t| t.contains("Ada")),
            "answered from the snapshot: {r}"
        );
    }
    // 151 keys (call# + 150 answers): two BatchGetItem requests of at most 100 keys.
    assert_eq!(
        v.counter.count("BatchGetItem"),
        2,
        "{:?}",
        v.counter.snapshot()
    );
}

#[tokio::test]
async fn a_100_kb_ended_reason_is_bounded_before_it_is_stored() {
    let v = vapi(&[]).await;
    seed_call(&v.store, snapshot()).await;
    let huge = "x".repeat(100 * 1024);
    let a = send(
        &v.app,
        &status_body("ended", 1_795_690_400_000, Some(&huge)),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let call = v
        .store
        .get(&format!("call#{CALL_ID}"))
        .await
        .unwrap()
        .unwrap();
    let stored = attr::opt_s(&call, "ended_reason").expect("ended_reason stored");
    assert_eq!(stored.chars().count(), 200, "bounded to 200 characters");

    // The same reason in an end-of-call report: the report job holds a bounded one.
    let report = json!({"message": {"type": "end-of-call-report", "endedReason": huge,
        "timestamp": 1_795_690_401_000i64, "call": {"id": CALL_ID}}});
    let a = send(&v.app, report.to_string().as_bytes()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let jobs = report_jobs(&v.store).await;
    assert_eq!(jobs.len(), 1);
    let payload: Value =
        serde_json::from_str(attr::opt_s(&jobs[0], "payload").expect("payload")).unwrap();
    assert_eq!(
        payload["endedReason"].as_str().unwrap().chars().count(),
        200
    );
}

#[tokio::test]
async fn a_forged_pending_status_never_puts_status_pending_on_call() {
    let v = vapi(&[]).await;
    seed_call(&v.store, snapshot()).await;
    let a = send(&v.app, &status_body("PENDING", 1_795_690_200_000, None)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let call = v
        .store
        .get(&format!("call#{CALL_ID}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        attr::opt_s(&call, "status"),
        None,
        "call# has no job status the stream filter could match"
    );
    assert_eq!(attr::opt_s(&call, "call_status"), Some("PENDING"));
    // No item anywhere carries status = PENDING (the stream filter's match).
    let all = scan_table(&v.store).await;
    let pending: Vec<_> = all
        .items()
        .iter()
        .filter(|i| attr::opt_s(i, "status") == Some("PENDING"))
        .filter_map(|i| attr::opt_s(i, "pk"))
        .collect();
    assert!(pending.is_empty(), "{pending:?}");
}

// ---------------------------------------------------------------- transfers (issue 24)

fn transfer_request() -> Vec<u8> {
    fixture("vapi/transfer-destination-request.json")
}

fn handoff(hours: Option<sfvapi::calls::HandoffHours>) -> CallSnapshot {
    CallSnapshot {
        handoff: Some(sfvapi::calls::HandoffSnapshot {
            source: "caseOwner".into(),
            number: Some("+14155550100".into()),
            owner_id: Some("0055e000001AbCdAAK".into()),
            caller_id: Some("+14155550123".into()),
            hours,
            unavailable: None,
        }),
        ..snapshot()
    }
}

#[tokio::test]
async fn a_transfer_is_answered_from_call_with_one_read_and_no_salesforce() {
    let v = vapi(&[]).await;
    seed_call(&v.store, handoff(None)).await;
    v.counter.reset();
    let started = std::time::Instant::now();
    let a = send(&v.app, &transfer_request()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(
        a.json["destination"]["number"], "+14155550100",
        "{}",
        a.body
    );
    assert_eq!(
        a.json["destination"]["transferPlan"]["mode"],
        "warm-transfer-say-summary"
    );
    assert_eq!(v.counter.total(), 1, "{:?}", v.counter.snapshot());
    assert_eq!(v.counter.count("GetItem"), 1);
}

#[tokio::test]
async fn out_of_hours_the_customer_is_told_and_the_owner_gets_one_callback_job() {
    let v = vapi(&[]).await;
    // Open on no day at all: always out of hours.
    seed_call(
        &v.store,
        handoff(Some(sfvapi::calls::HandoffHours {
            start: 9 * 60,
            end: 17 * 60,
            days: [false; 7],
            skip: vec![],
            time_zone: "America/New_York".into(),
        })),
    )
    .await;
    for _ in 0..2 {
        let a = send(&v.app, &transfer_request()).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert!(a.json.get("destination").is_none(), "{}", a.body);
        assert_eq!(a.json["message"]["type"], "request-failed");
        assert!(a.json["error"].as_str().unwrap().contains("hours"));
    }
    let job = stored(&v.store, &format!("evt#vapi#{CALL_ID}#handoff")).await;
    assert_eq!(attr::opt_s(&job, "kind"), Some("handoff"));
    assert_eq!(attr::opt_s(&job, "status"), Some("PENDING"));
    let p: Value = serde_json::from_str(attr::opt_s(&job, "payload").unwrap()).unwrap();
    assert_eq!(p["ownerId"], "0055e000001AbCdAAK");
    assert_eq!(p["caseId"], CASE_ID);
    assert!(p["summary"]
        .as_str()
        .unwrap()
        .contains("Refund not received"));
}

#[tokio::test]
async fn a_call_without_a_hand_off_or_a_record_transfers_nobody_and_queues_nothing() {
    let v = vapi(&[]).await;
    let a = send(&v.app, &transfer_request()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json["message"]["type"], "request-failed");
    assert!(v
        .store
        .get(&format!("evt#vapi#{CALL_ID}#handoff"))
        .await
        .unwrap()
        .is_none());
}
