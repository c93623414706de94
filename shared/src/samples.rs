//! Sample API Gateway events (the files in `events/`, the demo's and the benchmark's), signed with the documented local test secret so
//! `cargo lambda invoke salesforce-ingest --data-file events/<file>.json` works against a local run.
//! v2 signatures expire after the tolerance window (300 s): re-run `make events` before invoking.

use crate::http::apigw_v2_event;
use crate::signature::sign_salesforce_v2;

/// The local, documented, NOT secret signing secret (README "Local secrets").
pub const LOCAL_SIGNING_SECRET: &str = "sfvapi-local-signing-secret";
/// The local Outbound Message path token.
pub const LOCAL_OM_TOKEN: &str = "local-outbound-token";

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
    ]
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
