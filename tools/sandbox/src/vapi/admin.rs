//! The fake Vapi's configuration API, what `sfvapi-admin doctor` and `setup` call: credentials
//! (`GET /credential`, `GET|PATCH|DELETE /credential/{id}`, `POST /credential`) and assistants
//! (`GET /assistant`, `PATCH|DELETE /assistant/{id}`; create and read are in `vapi`).
//!
//! Shapes as Vapi's API reference and OpenAPI schemas give them
//! (`tools/vapi-schema/vendor/openapi-schemas.json`): a credential is a `WebhookCredential`
//! (`provider: "webhook"`, `authenticationPlan` an `HMACAuthenticationPlan` with `secretKey` and
//! `algorithm`; docs/connect-vapi.md), created from `CreateWebhookCredentialDTO`
//! (<https://docs.vapi.ai/api-reference/credentials/create>), listed as an array
//! (<https://docs.vapi.ai/api-reference/credentials/list>); an assistant is updated with
//! `UpdateAssistantDTO`, the fields sent replacing the stored ones
//! (<https://docs.vapi.ai/api-reference/assistants/update>), and deleted with
//! `DELETE /assistant/{id}` answering the deleted assistant.
//!
//! Seeded at startup, as a deployer sets up Vapi (docs/connect-vapi.md): the HMAC credential
//! [`SEED_CREDENTIAL_ID`] with the configured server secret, and the outbound assistant
//! [`SEED_ASSISTANT_ID`] from `events/assistant.json` with `server.url` (the configured server
//! URL) and `credentialId` filled, and the phone number [`SEED_PHONE_NUMBER_ID`] (a Twilio number,
//! Vapi OpenAPI `TwilioPhoneNumber`) whose server is the configured server URL with that
//! credential and which has no assistant of its own (inbound calls ask its server:
//! `assistant-request`).
//!
//! The org (`GET /org/{id}`): its `concurrencyLimit` (Vapi OpenAPI `Org`).
//!
//! Phone numbers (`GET /phone-number`, `GET|PATCH /phone-number/{id}`;
//! <https://docs.vapi.ai/api-reference/phone-numbers/update>): the update body is the
//! `Update<Provider>PhoneNumberDTO` of the stored number's `provider` (the OpenAPI
//! `PhoneNumberController_update` request is a `oneOf` over the providers' update DTOs, mapped by
//! `provider`), each field sent replacing the stored one.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::{error, json_body, schema_problems};
use crate::config::VapiConfig;
use crate::{lock, util, App, Req, Resp};

/// The HMAC credential the sandbox starts with (it signs with the configured server secret).
pub const SEED_CREDENTIAL_ID: &str = "sandbox-credential";
/// Its name (what `setup vapi` matches credentials by).
pub const SEED_CREDENTIAL_NAME: &str = "sfvapi-webhook";
/// The outbound assistant the sandbox starts with (`VAPI_ASSISTANT_ID` of the local stack).
pub const SEED_ASSISTANT_ID: &str = "sandbox-assistant";
/// The phone number the sandbox starts with (`VAPI_PHONE_NUMBER_ID` of the local stack; the id
/// an inbound call names when none is given).
pub const SEED_PHONE_NUMBER_ID: &str = "sandbox-phone-number";
/// Its number (E.164).
pub const SEED_PHONE_NUMBER: &str = "+14155550100";

const OUTBOUND_ASSISTANT: &str = include_str!("../../../../events/assistant.json");

/// What the sandbox starts with, by id.
pub(crate) struct Seed {
    pub credentials: HashMap<String, Value>,
    pub assistants: HashMap<String, Value>,
    pub phone_numbers: HashMap<String, Value>,
}

/// The seeded credentials, assistants and phone numbers.
pub(crate) fn seed(cfg: &VapiConfig, twilio_account_sid: &str) -> Seed {
    let now = util::iso8601(sfvapi::now_millis());
    let credential = json!({
        "id": SEED_CREDENTIAL_ID,
        "orgId": cfg.org_id,
        "provider": "webhook",
        "name": SEED_CREDENTIAL_NAME,
        // The webhook's defaults (docs/connect-vapi.md).
        "authenticationPlan": {
            "type": "hmac",
            "secretKey": cfg.server_secret,
            "algorithm": "sha256",
            "signatureHeader": "x-signature",
            "timestampHeader": "x-timestamp",
            "payloadFormat": "{timestamp}.{body}",
            "signatureEncoding": "hex",
        },
        // Required in `WebhookCredential`; an HMAC credential has no OAuth session: empty.
        "authenticationSession": {},
        "createdAt": now,
        "updatedAt": now,
    });
    let mut assistants = HashMap::new();
    if let Ok(Value::Object(mut a)) = serde_json::from_str::<Value>(OUTBOUND_ASSISTANT) {
        if let Some(Value::Object(server)) = a.get_mut("server") {
            match &cfg.server_url {
                Some(url) => server.insert("url".into(), json!(url)),
                None => server.remove("url"),
            };
            server.insert("credentialId".into(), json!(SEED_CREDENTIAL_ID));
        }
        a.insert("id".into(), json!(SEED_ASSISTANT_ID));
        a.insert("orgId".into(), json!(cfg.org_id));
        a.insert("createdAt".into(), json!(now));
        a.insert("updatedAt".into(), json!(now));
        assistants.insert(SEED_ASSISTANT_ID.to_owned(), Value::Object(a));
    }
    let credentials = HashMap::from([(SEED_CREDENTIAL_ID.to_owned(), credential)]);
    // Vapi OpenAPI `TwilioPhoneNumber`: required provider, id, orgId, createdAt, updatedAt,
    // number, twilioAccountSid.
    let mut number = json!({
        "id": SEED_PHONE_NUMBER_ID,
        "orgId": cfg.org_id,
        "provider": "twilio",
        "number": SEED_PHONE_NUMBER,
        "twilioAccountSid": twilio_account_sid,
        "name": "sfvapi inbound",
        "status": "active",
        "createdAt": now,
        "updatedAt": now,
    });
    if let Some(url) = &cfg.server_url {
        number["server"] = json!({"url": url, "credentialId": SEED_CREDENTIAL_ID});
    }
    let phone_numbers = HashMap::from([(SEED_PHONE_NUMBER_ID.to_owned(), number)]);
    Seed {
        credentials,
        assistants,
        phone_numbers,
    }
}

/// `GET /org/{id}` → 200 `Org` (Vapi OpenAPI `Org`: required `id`, `createdAt`,
/// `updatedAt`; `concurrencyLimit` the calls live at once, the sandbox's `concurrency_limit`).
/// The org of another id is 404, as for an org the key does not belong to.
pub(crate) fn get_org(app: &Arc<App>, id: &str) -> Resp {
    let cfg = &app.config.vapi;
    if id != cfg.org_id {
        return error(404, json!("Org not found"), "Not Found");
    }
    let limit = lock(&app.vapi).concurrency_limit;
    let now = util::iso8601(sfvapi::now_millis());
    Resp::json(
        200,
        &json!({"id": cfg.org_id, "name": "sandbox", "concurrencyLimit": limit, "createdAt": now, "updatedAt": now}),
    )
}

/// `GET /phone-number` → 200, every phone number (a JSON array).
pub(crate) fn list_phone_numbers(app: &Arc<App>) -> Resp {
    let st = lock(&app.vapi);
    let mut all: Vec<&Value> = st.phone_numbers.values().collect();
    all.sort_by_key(|n| n["createdAt"].as_str().unwrap_or_default().to_owned());
    Resp::json(200, &json!(all))
}

/// `GET /phone-number/{id}` → 200, the phone number (`TwilioPhoneNumber`, `VapiPhoneNumber`…).
pub(crate) fn get_phone_number(app: &Arc<App>, id: &str) -> Resp {
    match lock(&app.vapi).phone_numbers.get(id) {
        Some(n) => Resp::json(200, n),
        None => error(404, json!("Phone Number not found"), "Not Found"),
    }
}

/// `PATCH /phone-number/{id}` → 200, the phone number; the body is checked against the update
/// DTO of the stored number's provider (`UpdateTwilioPhoneNumberDTO` for a Twilio number).
pub(crate) fn update_phone_number(app: &Arc<App>, req: &Req, id: &str) -> Resp {
    let provider = match lock(&app.vapi).phone_numbers.get(id) {
        Some(n) => n["provider"].as_str().unwrap_or_default().to_owned(),
        None => return error(404, json!("Phone Number not found"), "Not Found"),
    };
    let schema = match provider.as_str() {
        "twilio" => "UpdateTwilioPhoneNumberDTO",
        "vapi" => "UpdateVapiPhoneNumberDTO",
        "vonage" => "UpdateVonagePhoneNumberDTO",
        "telnyx" => "UpdateTelnyxPhoneNumberDTO",
        _ => "UpdateByoPhoneNumberDTO",
    };
    update(app, req, id, schema, Kind::PhoneNumber)
}

/// `GET /credential` → 200, every credential (Vapi's list answer: a JSON array).
pub(crate) fn list_credentials(app: &Arc<App>) -> Resp {
    let st = lock(&app.vapi);
    let mut all: Vec<&Value> = st.credentials.values().collect();
    all.sort_by_key(|c| c["createdAt"].as_str().unwrap_or_default().to_owned());
    Resp::json(200, &json!(all))
}

/// `GET /assistant` → 200, every assistant (a JSON array, newest first).
pub(crate) fn list_assistants(app: &Arc<App>) -> Resp {
    let st = lock(&app.vapi);
    let mut all: Vec<&Value> = st.assistants.values().collect();
    all.sort_by_key(|a| std::cmp::Reverse(a["createdAt"].as_str().unwrap_or_default().to_owned()));
    Resp::json(200, &json!(all))
}

pub(crate) fn get_credential(app: &Arc<App>, id: &str) -> Resp {
    match lock(&app.vapi).credentials.get(id) {
        Some(c) => Resp::json(200, c),
        None => error(404, json!("Credential not found"), "Not Found"),
    }
}

/// `DELETE /credential/{id}` → 200, the deleted credential.
pub(crate) fn delete_credential(app: &Arc<App>, id: &str) -> Resp {
    match lock(&app.vapi).credentials.remove(id) {
        Some(c) => Resp::json(200, &c),
        None => error(404, json!("Credential not found"), "Not Found"),
    }
}

/// `DELETE /assistant/{id}` → 200, the deleted assistant.
pub(crate) fn delete_assistant(app: &Arc<App>, id: &str) -> Resp {
    match lock(&app.vapi).assistants.remove(id) {
        Some(a) => Resp::json(200, &a),
        None => error(404, json!("Assistant not found"), "Not Found"),
    }
}

/// `POST /credential` (`CreateWebhookCredentialDTO`) → 201 `WebhookCredential` (the body plus
/// `id`, `orgId`, `authenticationSession`, `createdAt`, `updatedAt`, its required fields).
pub(crate) fn create_credential(app: &Arc<App>, req: &Req) -> Resp {
    let body = match json_body(req) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let problems = schema_problems("CreateWebhookCredentialDTO", &body);
    if !problems.is_empty() {
        return error(400, json!(problems), "Bad Request");
    }
    let Value::Object(mut c) = body else {
        return error(
            400,
            json!(["request body must be a JSON object"]),
            "Bad Request",
        );
    };
    let id = util::uuid_v4();
    let now = util::iso8601(sfvapi::now_millis());
    c.insert("id".into(), json!(id));
    c.insert("orgId".into(), json!(app.config.vapi.org_id));
    c.entry("authenticationSession")
        .or_insert_with(|| json!({}));
    c.insert("createdAt".into(), json!(now));
    c.insert("updatedAt".into(), json!(now));
    let c = Value::Object(c);
    lock(&app.vapi).credentials.insert(id, c.clone());
    Resp::json(201, &c)
}

/// `PATCH /credential/{id}` (`UpdateWebhookCredentialDTO`) → 200, the credential with the fields
/// sent replacing its own.
pub(crate) fn update_credential(app: &Arc<App>, req: &Req, id: &str) -> Resp {
    update(app, req, id, "UpdateWebhookCredentialDTO", Kind::Credential)
}

/// `PATCH /assistant/{id}` (`UpdateAssistantDTO`) → 200 `Assistant`.
pub(crate) fn update_assistant(app: &Arc<App>, req: &Req, id: &str) -> Resp {
    update(app, req, id, "UpdateAssistantDTO", Kind::Assistant)
}

#[derive(Clone, Copy)]
enum Kind {
    Credential,
    Assistant,
    PhoneNumber,
}

fn update(app: &Arc<App>, req: &Req, id: &str, schema: &str, kind: Kind) -> Resp {
    let body = match json_body(req) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let problems = schema_problems(schema, &body);
    if !problems.is_empty() {
        return error(400, json!(problems), "Bad Request");
    }
    let Value::Object(fields) = body else {
        return error(
            400,
            json!(["request body must be a JSON object"]),
            "Bad Request",
        );
    };
    let mut st = lock(&app.vapi);
    let (map, missing) = match kind {
        Kind::Credential => (&mut st.credentials, "Credential not found"),
        Kind::Assistant => (&mut st.assistants, "Assistant not found"),
        Kind::PhoneNumber => (&mut st.phone_numbers, "Phone Number not found"),
    };
    let Some(Value::Object(stored)) = map.get_mut(id) else {
        return error(404, json!(missing), "Not Found");
    };
    merge(stored, fields);
    stored.insert(
        "updatedAt".into(),
        json!(util::iso8601(sfvapi::now_millis())),
    );
    Resp::json(200, &Value::Object(stored.clone()))
}

/// Each top-level field sent replaces the stored one whole (a `server` sent without
/// `backoffPlan` leaves none). `setup vapi` always sends a changed top-level field whole, so a
/// deep merge on Vapi's side would end the same.
fn merge(stored: &mut Map<String, Value>, fields: Map<String, Value>) {
    for (k, v) in fields {
        stored.insert(k, v);
    }
}
