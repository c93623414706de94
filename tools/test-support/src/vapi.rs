//! Vapi's side of the webhook: server messages signed as Vapi's HMAC credential signs them, the
//! signed call context the worker puts on a call, and the webhook app on a table.

use serde_json::{json, Value};
use sfvapi::ids::{SalesforceEventId, SalesforceId};
use sfvapi::secrets::SecretString;
use sfvapi::signature::{hmac_parts, Algorithm};
use sfvapi::store::Store;
use sfvapi::vapi::config::VapiWebhookConfig;
use sfvapi::vapi::webhook::VapiWebhookApp;

use crate::{env_of, request, secrets_cache};

/// The headers of Vapi's default HMAC credential: `x-timestamp` = `ts` and `x-signature` =
/// hex HMAC-SHA256 of `"{ts}.{body}"` with `secret`.
pub fn vapi_hmac_headers(secret: &str, body: &[u8], ts: i64) -> Vec<(String, String)> {
    let ts = ts.to_string();
    let mac = hmac_parts(
        Algorithm::Sha256,
        secret.as_bytes(),
        &[ts.as_bytes(), b".", body],
    );
    vec![
        ("x-timestamp".into(), ts),
        ("x-signature".into(), hex::encode(mac)),
    ]
}

/// `POST /vapi/webhook` with `body` as JSON and `headers` (e.g. from [`vapi_hmac_headers`]).
pub fn vapi_webhook_request(headers: &[(String, String)], body: &[u8]) -> lambda_http::Request {
    let mut h: Vec<(&str, &str)> = vec![("content-type", "application/json")];
    h.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    request("POST", "/vapi/webhook", &h, body, false)
}

/// A server message signed with `secret` now, as Vapi's default HMAC credential sends it.
pub fn vapi_signed_now(body: &[u8], secret: &str) -> lambda_http::Request {
    vapi_webhook_request(&vapi_hmac_headers(secret, body, sfvapi::now_secs()), body)
}

/// Puts the call context the worker signs (`sfvapi::vapi::context`) on a server message: the
/// event, Contact and Case ids in the call's metadata, signed with `key`.
pub fn sign_call_context(message: &mut Value, key: &str, event: &str, contact: &str, case: &str) {
    let sig = sfvapi::vapi::context::sign(
        &SecretString::new(key),
        &SalesforceEventId::parse("e", event).expect("event id"),
        &SalesforceId::parse("c", contact).expect("contact id"),
        Some(&SalesforceId::parse("c", case).expect("case id")),
    )
    .expect("context signature");
    let meta = &mut message["message"]["call"]["assistantOverrides"]["metadata"];
    meta["sfvapiEventId"] = json!(event);
    meta["contactId"] = json!(contact);
    meta["caseId"] = json!(case);
    meta["sfvapiContextSig"] = json!(sig);
}

/// The webhook's configuration on `table` with server secret `arn`, plus `extra` variables.
pub fn vapi_webhook_config(table: &str, arn: &str, extra: &[(&str, &str)]) -> VapiWebhookConfig {
    let mut vars = vec![("TABLE_NAME", table), ("VAPI_SERVER_SECRET_ARN", arn)];
    vars.extend_from_slice(extra);
    VapiWebhookConfig::from_env(&env_of(&vars)).expect("test config")
}

/// The webhook app on `store` with the server secret `arn`, as a cold start builds it.
pub async fn vapi_webhook_app(store: &Store, arn: &str, extra: &[(&str, &str)]) -> VapiWebhookApp {
    VapiWebhookApp::new(
        vapi_webhook_config(store.table(), arn, extra),
        store.clone(),
        secrets_cache().await,
    )
}
