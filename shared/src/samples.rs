//! Sample events (the files in `events/`, the demo's and the benchmark's): API Gateway events
//! signed with the documented local test secret, stream batches, schedules and relayed
//! EventBridge events, so
//! `cargo lambda invoke salesforce-ingest --data-file events/<file>.json` works against a local run.
//! v2 signatures expire after the tolerance window (300 s): re-run `make events` before invoking.

use crate::http::apigw_v2_event;
use crate::signature::sign_salesforce_v2;

/// The local, documented, NOT secret signing secret (docs/local-development.md).
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

/// The org the local relay samples come from (the Outbound Message fixture's org; the local
/// stack's `SF_RELAY_ORG_IDS`).
pub const LOCAL_RELAY_ORG_ID: &str = "00D5e000000AbCdEAK";
/// An org no local setting allows.
pub const OTHER_ORG_ID: &str = "00D5e000000WrOnEAK";
/// The Event Relay channel id of the samples (`0YL…`, the relay's channel).
pub const LOCAL_RELAY_CHANNEL: &str = "0YL5e0000000001GAA";
/// The UUID Salesforce gave the sample Platform Event (its dedup id).
pub const RELAY_EVENT_UUID: &str = "4c5d2a8e-1b7f-4e8a-9d3c-6f0e1a2b3c4d";

/// An EventBridge event as an Event Relay rule delivers it: `source` is the partner event
/// source `aws.partner/salesforce.com/<OrgId>/<channel>`, `detail-type` the event's API name,
/// `detail.payload` its fields (EventBridge event structure, Amazon EventBridge User Guide
/// "Events"; Event Relay: DESIGN.md "Salesforce facts"). `eventbridge_id` is what EventBridge
/// gives each copy.
pub fn relayed(
    org: &str,
    detail_type: &str,
    detail: serde_json::Value,
    eventbridge_id: &str,
) -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": eventbridge_id,
        "detail-type": detail_type,
        "source": format!("aws.partner/salesforce.com/{org}/{LOCAL_RELAY_CHANNEL}"),
        "account": "123456789012",
        "time": "2026-12-01T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
    })
}

/// The UUID of the sample event from an org that is not allowed.
pub const OTHER_ORG_EVENT_UUID: &str = "e1d2c3b4-a596-4788-9aab-bccddeeff001";

/// The sample relayed Platform Event: `Call_Request__e` with the org's own `__c` fields.
pub fn relay_platform_event(org: &str, eventbridge_id: &str) -> serde_json::Value {
    relay_platform_event_with(org, eventbridge_id, RELAY_EVENT_UUID)
}

/// The same, with its own event UUID.
pub fn relay_platform_event_with(org: &str, eventbridge_id: &str, uuid: &str) -> serde_json::Value {
    relayed(
        org,
        "Call_Request__e",
        serde_json::json!({
            "payload": {
                "Contact__c": "0035e00000LowRvAAJ",
                "Case__c": null,
                "Priority__c": "Medium",
                "Reason__c": "Card payment declined at checkout",
                "Test__c": false,
                "CreatedDate": "2026-12-01T09:59:58.412Z",
                "CreatedById": "0055e000001SbXqAAK"
            },
            "schemaId": "Y5HzTgTTMxUn1P2dw9P6Ng",
            "id": uuid
        }),
        eventbridge_id,
    )
}

/// The sample relayed Change Data Capture event: Case 5005e00000AbCdEAAV's Priority changed to
/// High (only changed fields are sent; the header names the record, the transaction and the
/// change; Change Data Capture Developer Guide, "Change Event Message Structure").
pub fn relay_cdc_case_update(eventbridge_id: &str) -> serde_json::Value {
    relayed(
        LOCAL_RELAY_ORG_ID,
        "CaseChangeEvent",
        serde_json::json!({
            "payload": {
                "ChangeEventHeader": {
                    "entityName": "Case",
                    "recordIds": ["5005e00000AbCdEAAV"],
                    "changeType": "UPDATE",
                    "changeOrigin": "com/salesforce/api/rest/62.0",
                    "transactionKey": "0004f2a1-7c3b-9d5e-8f61-2a3b4c5d6e7f",
                    "sequenceNumber": 1,
                    "commitTimestamp": 1796119200000_i64,
                    "commitNumber": 11634812345678_i64,
                    "commitUser": "0055e000001SbXqAAK",
                    "nulledFields": [],
                    "diffFields": [],
                    "changedFields": ["Priority", "LastModifiedDate"]
                },
                "Priority": "High",
                "LastModifiedDate": "2026-12-01T10:00:00.000Z"
            },
            "schemaId": "Wm3kQ1fD0pRt5sYbLx8eJg",
            "id": "8d0f6e2a-5c4b-4a39-b1e7-2f9a8c7d6e5b"
        }),
        eventbridge_id,
    )
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
        (
            "relay-platform-event.json",
            relay_platform_event(LOCAL_RELAY_ORG_ID, "0b7d5c1a-9e3f-4d2b-8a6c-5e4f3a2b1c0d"),
        ),
        (
            "relay-cdc-case-update.json",
            relay_cdc_case_update("6f2e4d8c-1a3b-4c5d-9e7f-0a1b2c3d4e5f"),
        ),
        (
            "relay-wrong-org.json",
            relay_platform_event_with(
                OTHER_ORG_ID,
                "9c8b7a6f-5e4d-4c3b-8a29-1f0e9d8c7b6a",
                OTHER_ORG_EVENT_UUID,
            ),
        ),
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

/// The paths written, in order.
pub fn write_all(dir: &str) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{dir}: {e}"))?;
    let mut written = Vec::new();
    for (name, event) in all() {
        let path = format!("{dir}/{name}");
        let text = serde_json::to_string_pretty(&event).map_err(|e| e.to_string())?;
        std::fs::write(&path, text + "\n").map_err(|e| format!("{path}: {e}"))?;
        written.push(path);
    }
    Ok(written)
}
