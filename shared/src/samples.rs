//! Sample API Gateway events (the files in `events/`, the demo's and the benchmark's), signed with the documented local test secret so
//! `cargo lambda invoke salesforce-ingest --data-file events/<file>.json` works against a local run.
//! v2 signatures expire after the tolerance window (300 s): re-run `make events` before invoking.

use crate::http::apigw_v2_event;
use crate::signature::sign_salesforce_v2;

/// The local, documented, NOT secret signing secret (README "Local secrets").
/// Every secret is at least 32 characters: shorter ones are refused at load
/// (`secrets::MIN_SECRET_CHARS`).
pub const LOCAL_SIGNING_SECRET: &str = "sfvapi-local-signing-secret-not-secret";
/// The local Outbound Message path token.
pub const LOCAL_OM_TOKEN: &str = "local-outbound-token-not-a-secret";
/// The local Vapi server secret (HMAC credential), also the sandbox's default.
pub const LOCAL_VAPI_SECRET: &str = "sandbox-vapi-secret-local-not-secret";
/// The local key that signs each call's context (`context_key` of the Vapi server secret).
pub const LOCAL_CONTEXT_KEY: &str = "sfvapi-local-context-key-not-secret";
/// The local operator key of the connect routes (`SF_OPERATOR_SECRET_ARN`).
pub const LOCAL_OPERATOR_KEY: &str = "sfvapi-local-operator-key-not-secret";

const VAPI_TOOL_CALLS: &str = include_str!("../tests/fixtures/vapi/tool-calls.json");
const VAPI_STATUS_UPDATE: &str = include_str!("../tests/fixtures/vapi/status-update.json");
const VAPI_END_OF_CALL: &str = include_str!("../tests/fixtures/vapi/end-of-call-report.json");
const VAPI_FUNCTION_CALL: &str = include_str!("../tests/fixtures/vapi/function-call-legacy.json");
const VAPI_SPEECH_UPDATE: &str = include_str!("../tests/fixtures/vapi/speech-update.json");
const VAPI_ASSISTANT_REQUEST: &str = include_str!("../tests/fixtures/vapi/assistant-request.json");

const OUTBOUND_MESSAGE: &str = include_str!("../tests/fixtures/salesforce/outbound-message.xml");
const PLATFORM_EVENT: &str = include_str!("../tests/fixtures/salesforce/platform-event.json");

pub fn flat_event(event_id: &str, contact_id: &str) -> String {
    serde_json::json!({
        "eventId": event_id,
        "contactId": contact_id,
        "caseId": "5005e00000AbCdEAAV",
        "priority": "High",
        "reason": "Payment failed twice"
    })
    .to_string()
}

/// A v2-signed `POST /salesforce/events` event for `body`.
pub fn signed(body: &str, secret: &str, base64: bool) -> serde_json::Value {
    let (ts, sig) = sign_salesforce_v2(secret.as_bytes(), body.as_bytes(), crate::now_secs());
    apigw_v2_event(
        "POST",
        "/salesforce/events",
        &[
            ("content-type", "application/json"),
            ("x-sfvapi-timestamp", &ts),
            ("x-sfvapi-signature", &sig),
        ],
        body.as_bytes(),
        base64,
    )
}

pub fn outbound_message(token: &str) -> serde_json::Value {
    apigw_v2_event(
        "POST",
        &format!("/salesforce/outbound-message/{token}"),
        &[
            ("content-type", "text/xml; charset=utf-8"),
            ("soapaction", "\"\""),
        ],
        OUTBOUND_MESSAGE.as_bytes(),
        false,
    )
}

/// A `POST /vapi/webhook` event signed like Vapi's HMAC credential (default settings:
/// `x-timestamp` in ms, `x-signature` = hex HMAC-SHA256 of `"{timestamp}.{body}"`).
pub fn vapi_signed(body: &str, secret: &str) -> serde_json::Value {
    let ts = crate::now_millis().to_string();
    let mac = crate::signature::hmac_parts(
        crate::signature::Algorithm::Sha256,
        secret.as_bytes(),
        &[ts.as_bytes(), b".", body.as_bytes()],
    );
    apigw_v2_event(
        "POST",
        "/vapi/webhook",
        &[
            ("content-type", "application/json"),
            ("x-timestamp", &ts),
            ("x-signature", &hex::encode(mac)),
        ],
        body.as_bytes(),
        false,
    )
}

/// A DynamoDB stream batch as the job worker receives it: the NEW_IMAGE of each `(pk, status)`,
/// with sequence numbers 100, 101, … (what a test names in `batchItemFailures`).
pub fn stream_batch(images: &[(&str, &str)]) -> serde_json::Value {
    let records: Vec<serde_json::Value> = images
        .iter()
        .enumerate()
        .map(|(i, (pk, status))| {
            serde_json::json!({
                "eventID": format!("e{i}"), "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1795690000,
                    "Keys": {"pk": {"S": pk}},
                    "NewImage": {"pk": {"S": pk}, "status": {"S": status}},
                    "SequenceNumber": format!("{}", 100 + i), "SizeBytes": 50, "StreamViewType": "NEW_IMAGE"
                },
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/sfvapi/stream/2026-11-26T00:00:00.000"
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// An EventBridge scheduled event (the sweep and the token refresher run on these).
pub fn scheduled_event() -> serde_json::Value {
    serde_json::json!({
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-11-26T12:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/sfvapi-schedule"], "detail": {}
    })
}

/// Every sample, by file name.
pub fn all() -> Vec<(&'static str, serde_json::Value)> {
    let new = flat_event("case-escalated-5005e00000AbCdEAAV-1", "0035e00000XyZ12AAF");
    vec![
        (
            "salesforce-new-event.json",
            signed(&new, LOCAL_SIGNING_SECRET, false),
        ),
        (
            "salesforce-duplicate.json",
            signed(&new, LOCAL_SIGNING_SECRET, false),
        ),
        (
            "salesforce-platform-event.json",
            signed(PLATFORM_EVENT, LOCAL_SIGNING_SECRET, false),
        ),
        (
            "salesforce-base64-body.json",
            signed(
                &flat_event("sample-base64-1", "0035e00000XyZ12AAF"),
                LOCAL_SIGNING_SECRET,
                true,
            ),
        ),
        (
            "salesforce-bad-signature.json",
            signed(
                &flat_event("sample-forged-1", "0035e00000XyZ12AAF"),
                "not-the-secret",
                false,
            ),
        ),
        (
            "salesforce-malformed.json",
            signed(
                r#"{"eventId":"sample-malformed-1","contactId":"not-an-id"}"#,
                LOCAL_SIGNING_SECRET,
                false,
            ),
        ),
        (
            "salesforce-outbound-message.json",
            outbound_message(LOCAL_OM_TOKEN),
        ),
        (
            "vapi-tool-calls.json",
            vapi_signed(VAPI_TOOL_CALLS, LOCAL_VAPI_SECRET),
        ),
        (
            "vapi-status-update.json",
            vapi_signed(VAPI_STATUS_UPDATE, LOCAL_VAPI_SECRET),
        ),
        (
            "vapi-end-of-call-report.json",
            vapi_signed(VAPI_END_OF_CALL, LOCAL_VAPI_SECRET),
        ),
        (
            "vapi-function-call-legacy.json",
            vapi_signed(VAPI_FUNCTION_CALL, LOCAL_VAPI_SECRET),
        ),
        (
            "vapi-speech-update.json",
            vapi_signed(VAPI_SPEECH_UPDATE, LOCAL_VAPI_SECRET),
        ),
        (
            "vapi-assistant-request.json",
            vapi_signed(VAPI_ASSISTANT_REQUEST, LOCAL_VAPI_SECRET),
        ),
        (
            "vapi-bad-signature.json",
            vapi_signed(VAPI_STATUS_UPDATE, "not-the-secret"),
        ),
        (
            "job-worker-dial.json",
            stream_batch(&[("evt#sf#case-escalated-5005e00000AbCdEAAV-1", "PENDING")]),
        ),
        (
            "job-worker-report.json",
            stream_batch(&[(
                "evt#vapi#c0ffee00-1111-4222-8333-444455556666#end-of-call-report",
                "PENDING",
            )]),
        ),
        ("schedule.json", scheduled_event()),
        ("oauth-callback.json", oauth_callback()),
    ]
}

/// The connect callback as Salesforce redirects the operator's browser to it.
fn oauth_callback() -> serde_json::Value {
    let mut event = apigw_v2_event("GET", "/oauth/salesforce/callback", &[], b"", false);
    event["rawQueryString"] = "code=aPrx-sample-code&state=sample-state".into();
    event["queryStringParameters"] =
        serde_json::json!({"code": "aPrx-sample-code", "state": "sample-state"});
    event
}

pub fn write_all(dir: &str) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{dir}: {e}"))?;
    for (name, event) in all() {
        let path = format!("{dir}/{name}");
        let text = serde_json::to_string_pretty(&event).map_err(|e| e.to_string())?;
        std::fs::write(&path, text + "\n").map_err(|e| format!("{path}: {e}"))?;
        println!("wrote {path}");
    }
    Ok(())
}
