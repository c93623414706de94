//! The Salesforce ingest function on a fresh table with a fresh secret, and requests signed as
//! sfvapi's Salesforce package signs them (v2: HMAC-SHA256 over timestamp and body).

use sfvapi::config::IngestConfig;
use sfvapi::ingest::IngestApp;
use sfvapi::store::{RequestCounter, Store};

use crate::{create_secret, env_of, fresh_store, request, secrets_cache};

/// Test secrets are ≥ 32 characters: shorter ones are refused at load.
pub const SF_SECRET: &str = "sf-test-secret-do-not-use-0123456789";
pub const OM_TOKEN: &str = "om-path-token-for-tests-0123456789";
pub const ORG_ID: &str = "00D5e000000AbCdEAK";

/// The ingest secret's JSON: the signing secrets (newest first) and the Outbound Message token.
pub fn ingest_secret_json(secrets: &[&str]) -> serde_json::Value {
    serde_json::json!({"signing_secrets": secrets, "outbound_message_token": OM_TOKEN})
}

/// The ingest configuration for `table` and secret `arn`, plus `extra` variables.
pub fn ingest_config(table: &str, arn: &str, extra: &[(&str, &str)]) -> IngestConfig {
    let mut vars = vec![
        ("TABLE_NAME", table),
        ("SF_INGEST_SECRET_ARN", arn),
        ("SF_OUTBOUND_ORG_IDS", ORG_ID),
    ];
    vars.extend_from_slice(extra);
    IngestConfig::from_env(&env_of(&vars)).expect("test config")
}

/// An ingest app and what it writes to.
pub struct Ingest {
    pub app: IngestApp,
    pub store: Store,
    pub counter: RequestCounter,
    pub secret_arn: String,
}

/// An ingest app on a fresh table with a fresh secret, as a cold start would build it.
pub async fn ingest(extra: &[(&str, &str)]) -> Ingest {
    let (store, counter) = fresh_store().await;
    let secret_arn = create_secret(&ingest_secret_json(&[SF_SECRET])).await;
    let config = ingest_config(store.table(), &secret_arn, extra);
    let app = IngestApp::new(config, store.clone(), secrets_cache().await);
    Ingest {
        app,
        store,
        counter,
        secret_arn,
    }
}

/// A v2-signed API Gateway request for `body`, timestamped now.
pub fn signed_event(body: &[u8]) -> lambda_http::Request {
    signed_event_with(SF_SECRET, body, sfvapi::now_secs())
}

/// A v2-signed `POST /salesforce/events` with `secret` at `ts` (seconds).
pub fn signed_event_with(secret: &str, body: &[u8], ts: i64) -> lambda_http::Request {
    let (ts, sig) = sfvapi::signature::sign_salesforce_v2(secret.as_bytes(), body, ts);
    request(
        "POST",
        "/salesforce/events",
        &[
            ("content-type", "application/json"),
            ("x-sfvapi-timestamp", &ts),
            ("x-sfvapi-signature", &sig),
        ],
        body,
        false,
    )
}

/// A flat JSON event (the package's shape) for Ada's escalated Case.
pub fn flat_event(id: &str) -> Vec<u8> {
    serde_json::json!({
        "eventId": id,
        "contactId": "0035e00000XyZ12AAF",
        "caseId": "5005e00000AbCdEAAV",
        "priority": "High",
        "reason": "Payment failed twice"
    })
    .to_string()
    .into_bytes()
}

/// The field names an event body is read by (flat events, the relay's payload, the built-in
/// routing): what the property tests build JSON objects from, so most cases reach the mapping.
pub const EVENT_FIELD_NAMES: &[&str] = &[
    "eventId",
    "contactId",
    "caseId",
    "priority",
    "reason",
    "data",
    "event",
    "payload",
    "customerId",
    "replayId",
];
