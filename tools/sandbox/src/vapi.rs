//! The fake Vapi: `POST /call`, `GET /call/{id}`, `POST /assistant`, `GET /assistant/{id}` (and
//! the credential and assistant administration of `admin`), then
//! each call's life as server messages sent to the configured server URL, signed like Vapi's
//! HMAC credential (Vapi OpenAPI `HMACAuthenticationPlan`, defaults): `x-timestamp: <unix ms>`,
//! `x-signature: hex(HMAC-SHA256(secret, "{timestamp}.{body}"))`.
//!
//! Requests are checked against Vapi's published contract (`vapi-schema`: `CreateCallDTO`,
//! `CreateAssistantDTO`, unknown properties rejected as Vapi's API does), plus the rules the
//! schema cannot say (an assistant, a phone number and a customer are needed; E.164 numbers).
//! Errors use Vapi's NestJS shape `{"message":[…],"error":"Bad Request","statusCode":400}`.
//!
//! Message order (scenario `normal`): `status-update` ringing, `status-update` in-progress,
//! `tool-calls` (lookupCustomer; `doNotCall` in scenario `opt-out`, whose report's
//! `analysis.structuredData.doNotCall` is true), `status-update` ended, then `end-of-call-report` (it comes
//! after post-processing, DESIGN.md "Vapi facts"). `no-answer` skips the middle two and ends with
//! `customer-did-not-answer`. Every message is built in Vapi's `ServerMessage*` shape and the
//! sandbox tests validate each one against it.
//!
//! Inbound calls (`POST /_sandbox/inbound-call`, `inbound`): the phone number's server gets an
//! `assistant-request`, then the call runs with the assistant it answered.
//!
//! Concurrency: a call is live from its 201 until the sandbox ends it; its slot is freed before
//! the `ended` status-update is sent (the call is over before Vapi reports it). Beyond
//! `concurrency_limit` live calls a `POST /call` is a 201 that placed nothing
//! (https://docs.vapi.ai/calls/call-concurrency: "New calls receive a `concurrencyBlocked: true`
//! response and do not connect").

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::config::{Scenario, VapiConfig, RETRY_EXCLUDED_STATUS};
use crate::log::{Check, Direction, Entry, Service};
use crate::salesforce::FailNext;
use crate::{lock, util, App, Req, Resp};

mod admin;
pub(crate) mod inbound;

pub use admin::{
    SEED_ASSISTANT_ID, SEED_CREDENTIAL_ID, SEED_CREDENTIAL_NAME, SEED_PHONE_NUMBER,
    SEED_PHONE_NUMBER_ID,
};

/// Vapi OpenAPI `ServerMessageTransferDestinationRequest.type`: what the `transfer` scenario
/// sends when its customer asks for a person.
const TRANSFER_REQUEST: &str = "transfer-destination-request";

/// The `destination` of an answer to `transfer-destination-request`, when it is one Vapi would
/// dial: the answer validates against `ServerMessageResponseTransferDestinationRequest` and names
/// a destination (a `message` alone means "nobody": the call goes on).
fn transfer_destination(answer: Option<&str>) -> Option<Value> {
    let v: Value = serde_json::from_str(answer?).ok()?;
    if let Err(problems) =
        vapi_schema::validate("ServerMessageResponseTransferDestinationRequest", &v)
    {
        tracing::warn!(
            "transfer-destination-request answer is not Vapi's shape: {}",
            problems.join("; ")
        );
        return None;
    }
    v.get("destination").filter(|d| d.is_object()).cloned()
}

/// The assistant's opt-out tool (`events/assistant.json`), which the `opt-out` scenario calls.
const DO_NOT_CALL: &str = "doNotCall";
/// `Call.endedReason` of a call refused by the org's concurrency limit (Vapi OpenAPI `Call`).
const CONCURRENCY_BLOCKED: &str = "call.start.error-subscription-concurrency-limit-reached";

pub(crate) struct State {
    pub scenario: Scenario,
    pub outage_count: u32,
    pub outage_remaining: u32,
    pub deliver_twice: bool,
    pub delay: Duration,
    pub fail_next: Option<FailNext>,
    pub concurrency_limit: u32,
    /// Calls between their 201 and their end.
    live: u32,
    peak_live: u32,
    /// Calls placed (201, not blocked) since start or the last reset.
    created: u64,
    /// `POST /call`s answered 201 with `concurrencyBlocked: true` since start or the last reset.
    blocked: u64,
    calls: HashMap<String, Value>,
    assistants: HashMap<String, Value>,
    /// Credentials by id (`admin`).
    credentials: HashMap<String, Value>,
    /// Phone numbers by id (`admin`).
    phone_numbers: HashMap<String, Value>,
    /// Place the call, then send no `end-of-call-report` (the call still ends, and
    /// `GET /call/{id}` shows its report fields): a report Vapi never delivered.
    pub drop_reports: bool,
    /// The next N `POST /call` create the call but answer only after `hang`: a client with a
    /// shorter timeout never learns the call exists (an ambiguous dial).
    pub hang_next: u32,
    pub hang: Duration,
    /// Size of each call's recording (`GET /recordings/<id>.wav`), WAV header included.
    pub recording_bytes: usize,
    /// Every recording answers 404: Vapi's retention has passed.
    pub recordings_gone: bool,
    /// The next N recording requests answer 503 (Vapi's storage briefly unavailable).
    pub recordings_fail_next: u32,
}

/// A recording's default size: 1.5 s of 16 kHz 16-bit mono PCM and its 44-byte WAV header.
pub const DEFAULT_RECORDING_BYTES: usize = 44 + 48_000;
/// The most a recording may be made to weigh (`recording_bytes`): enough for a multipart copy.
pub const MAX_RECORDING_BYTES: usize = 64 * 1024 * 1024;

impl State {
    pub fn new(cfg: &VapiConfig, twilio_account_sid: &str) -> Self {
        let admin::Seed {
            credentials,
            assistants,
            phone_numbers,
        } = admin::seed(cfg, twilio_account_sid);
        Self {
            scenario: cfg.scenario,
            outage_count: cfg.outage_count,
            outage_remaining: if cfg.scenario == Scenario::Outage {
                cfg.outage_count
            } else {
                0
            },
            deliver_twice: cfg.deliver_twice,
            delay: cfg.message_delay,
            fail_next: None,
            concurrency_limit: cfg.concurrency_limit,
            live: 0,
            peak_live: 0,
            created: 0,
            blocked: 0,
            calls: HashMap::new(),
            assistants,
            credentials,
            phone_numbers,
            drop_reports: false,
            hang_next: 0,
            hang: Duration::from_secs(15),
            recording_bytes: DEFAULT_RECORDING_BYTES,
            recordings_gone: false,
            recordings_fail_next: 0,
        }
    }

    /// Switches back to the startup configuration; calls stay (live ones keep their slot), the
    /// counters start again.
    pub fn reset_switches(&mut self, cfg: &VapiConfig, twilio_account_sid: &str) {
        let calls = std::mem::take(&mut self.calls);
        let assistants = std::mem::take(&mut self.assistants);
        let credentials = std::mem::take(&mut self.credentials);
        let phone_numbers = std::mem::take(&mut self.phone_numbers);
        let live = self.live;
        *self = Self::new(cfg, twilio_account_sid);
        self.calls = calls;
        self.assistants = assistants;
        self.credentials = credentials;
        self.phone_numbers = phone_numbers;
        self.live = live;
        self.peak_live = live;
    }

    pub fn set_scenario(&mut self, scenario: Scenario) {
        self.scenario = scenario;
        self.outage_remaining = if scenario == Scenario::Outage {
            self.outage_count
        } else {
            0
        };
    }

    pub fn switches(&self) -> Value {
        json!({
            "scenario": self.scenario,
            "outage_count": self.outage_count,
            "outage_remaining": self.outage_remaining,
            "deliver_twice": self.deliver_twice,
            "delay_ms": self.delay.as_millis() as u64,
            "fail_next": self.fail_next,
            "concurrency_limit": self.concurrency_limit,
            "live": self.live,
            "peak_live": self.peak_live,
            "created": self.created,
            "blocked": self.blocked,
            "calls": self.calls.len(),
            "assistants": self.assistants.len(),
            "credentials": self.credentials.len(),
            "drop_reports": self.drop_reports,
            "hang_next": self.hang_next,
            "hang_ms": self.hang.as_millis() as u64,
            "recording_bytes": self.recording_bytes,
            "recordings_gone": self.recordings_gone,
            "recordings_fail_next": self.recordings_fail_next,
        })
    }
}

/// `GET /recordings/<call id>.wav`: the call's recording, as the end-of-call report's
/// `artifact.recordingUrl` names it (Vapi OpenAPI `Artifact.recordingUrl`: "the recording url
/// for the call"; a plain link, no API key). Vapi keeps recordings for a retention period and
/// then deletes them (docs.vapi.ai "Call recording"); a deleted or unknown one answers 404, as
/// the object storage behind the link does for a missing key. The body is a valid WAV (RIFF,
/// PCM 16 kHz mono) of silence, `recording_bytes` long.
fn recording(app: &Arc<App>, file: &str) -> Resp {
    let mut st = lock(&app.vapi);
    if st.recordings_fail_next > 0 {
        st.recordings_fail_next -= 1;
        return Resp {
            status: http::StatusCode::SERVICE_UNAVAILABLE,
            headers: vec![("content-type", "text/plain".into())],
            body: b"Service Unavailable".to_vec(),
            delay: None,
        };
    }
    let id = file.strip_suffix(".wav").unwrap_or_default();
    if st.recordings_gone || !st.calls.contains_key(id) {
        return Resp {
            status: http::StatusCode::NOT_FOUND,
            headers: vec![("content-type", "application/xml".into())],
            body: b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>".to_vec(),
            delay: None,
        };
    }
    let total = st.recording_bytes.max(44);
    let data = (total - 44) as u32;
    let mut body = Vec::with_capacity(total);
    body.extend_from_slice(b"RIFF");
    body.extend_from_slice(&(36 + data).to_le_bytes());
    body.extend_from_slice(b"WAVEfmt ");
    body.extend_from_slice(&16u32.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes()); // PCM
    body.extend_from_slice(&1u16.to_le_bytes()); // mono
    body.extend_from_slice(&16_000u32.to_le_bytes());
    body.extend_from_slice(&32_000u32.to_le_bytes()); // byte rate
    body.extend_from_slice(&2u16.to_le_bytes()); // block align
    body.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    body.extend_from_slice(b"data");
    body.extend_from_slice(&data.to_le_bytes());
    body.resize(total, 0);
    Resp {
        status: http::StatusCode::OK,
        headers: vec![("content-type", "audio/wav".into())],
        body,
        delay: None,
    }
}

/// Vapi's error body (NestJS): `{"message": "…" | ["…", …], "error": "<reason>", "statusCode": N}`
/// (the shape of `shared/tests/fixtures/vapi/create-call-error-400.json`).
fn error(status: u16, message: Value, error: &str) -> Resp {
    Resp::json(
        status,
        &json!({"message": message, "error": error, "statusCode": status}),
    )
}

pub(crate) fn handle(app: &Arc<App>, req: &Req) -> Resp {
    let path = req.path.trim_end_matches('/');
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    if let (&http::Method::GET, ["recordings", file]) = (&req.method, segs.as_slice()) {
        return recording(app, file);
    }
    let route = match (&req.method, segs.as_slice()) {
        (&http::Method::POST, ["call"]) => Route::CreateCall,
        (&http::Method::GET, ["call"]) => Route::ListCalls,
        (&http::Method::GET, ["call", id]) => Route::GetCall(id),
        (&http::Method::POST, ["assistant"]) => Route::CreateAssistant,
        (&http::Method::GET, ["assistant", id]) => Route::GetAssistant(id),
        (&http::Method::GET, ["assistant"]) => Route::ListAssistants,
        (&http::Method::PATCH, ["assistant", id]) => Route::UpdateAssistant(id),
        (&http::Method::DELETE, ["assistant", id]) => Route::DeleteAssistant(id),
        (&http::Method::GET, ["credential"]) => Route::ListCredentials,
        (&http::Method::POST, ["credential"]) => Route::CreateCredential,
        (&http::Method::GET, ["credential", id]) => Route::GetCredential(id),
        (&http::Method::PATCH, ["credential", id]) => Route::UpdateCredential(id),
        (&http::Method::DELETE, ["credential", id]) => Route::DeleteCredential(id),
        (&http::Method::GET, ["phone-number"]) => Route::ListPhoneNumbers,
        (&http::Method::GET, ["phone-number", id]) => Route::GetPhoneNumber(id),
        (&http::Method::PATCH, ["phone-number", id]) => Route::UpdatePhoneNumber(id),
        (&http::Method::GET, ["org", id]) => Route::GetOrg(id),
        _ => {
            return error(
                404,
                json!(format!("Cannot {} {}", req.method, req.path)),
                "Not Found",
            )
        }
    };
    if req.bearer() != Some(app.config.vapi.api_key.as_str()) {
        return error(
            401,
            json!("Invalid Key. Hot tip, you may be using the private key instead of the public key, or vice versa."),
            "Unauthorized",
        );
    }
    match route {
        // Vapi OpenAPI `GET /call/{id}` → 200 `Call`.
        Route::GetCall(id) => match lock(&app.vapi).calls.get(id) {
            Some(call) => Resp::json(200, call),
            None => error(404, json!("Call not found"), "Not Found"),
        },
        // Vapi OpenAPI `GET /assistant/{id}` → 200 `Assistant`.
        Route::GetAssistant(id) => match lock(&app.vapi).assistants.get(id) {
            Some(a) => Resp::json(200, a),
            None => error(404, json!("Assistant not found"), "Not Found"),
        },
        Route::ListCalls => list_calls(app, req),
        Route::CreateCall => create_call(app, req),
        Route::CreateAssistant => create_assistant(app, req),
        Route::ListAssistants => admin::list_assistants(app),
        Route::UpdateAssistant(id) => admin::update_assistant(app, req, id),
        Route::DeleteAssistant(id) => admin::delete_assistant(app, id),
        Route::ListCredentials => admin::list_credentials(app),
        Route::CreateCredential => admin::create_credential(app, req),
        Route::GetCredential(id) => admin::get_credential(app, id),
        Route::UpdateCredential(id) => admin::update_credential(app, req, id),
        Route::DeleteCredential(id) => admin::delete_credential(app, id),
        Route::ListPhoneNumbers => admin::list_phone_numbers(app),
        Route::GetPhoneNumber(id) => admin::get_phone_number(app, id),
        Route::UpdatePhoneNumber(id) => admin::update_phone_number(app, req, id),
        Route::GetOrg(id) => admin::get_org(app, id),
    }
}

enum Route<'a> {
    CreateCall,
    ListCalls,
    GetCall(&'a str),
    CreateAssistant,
    GetAssistant(&'a str),
    ListAssistants,
    UpdateAssistant(&'a str),
    DeleteAssistant(&'a str),
    ListCredentials,
    CreateCredential,
    GetCredential(&'a str),
    UpdateCredential(&'a str),
    DeleteCredential(&'a str),
    ListPhoneNumbers,
    GetPhoneNumber(&'a str),
    UpdatePhoneNumber(&'a str),
    GetOrg(&'a str),
}

/// The body as JSON, or Vapi's 400 for a body that is not.
fn json_body(req: &Req) -> Result<Value, Resp> {
    serde_json::from_slice(&req.body).map_err(|e| {
        error(
            400,
            json!(format!("Unexpected token in JSON: {e}")),
            "Bad Request",
        )
    })
}

/// Schema problems in Vapi's words: class-validator prefixes nested fields with their path
/// (`customer.property nickname should not exist`, `customer.number must be …`).
fn schema_problems(schema: &str, body: &Value) -> Vec<String> {
    match vapi_schema::problems(schema, body) {
        Ok(()) => Vec::new(),
        Err(problems) => problems
            .iter()
            .map(|p| {
                let at = p.dotted_path();
                match (at.is_empty(), p.problem.starts_with("property ")) {
                    (true, _) => p.problem.clone(),
                    (false, true) => format!("{at}.{}", p.problem),
                    (false, false) => format!("{at}: {}", p.problem),
                }
            })
            .collect(),
    }
}

/// `POST /call` checks: Vapi OpenAPI `CreateCallDTO` (types, `name` ≤ 40, no unknown property),
/// then what the schema leaves to Vapi's service (its messages as Vapi words them).
fn validate_call(body: &Value) -> Result<(), Vec<String>> {
    let Some(obj) = body.as_object() else {
        return Err(vec!["request body must be a JSON object".into()]);
    };
    let mut problems = schema_problems("CreateCallDTO", body);
    let has = |k: &str| obj.get(k).is_some_and(|v| !v.is_null());
    if !(has("assistantId") || has("assistant") || has("squadId") || has("squad")) {
        problems.push(
            "Couldn't Get Assistant. Need Either `assistant`, `assistantId`, `squad`, or `squadId`."
                .into(),
        );
    }
    if !(has("phoneNumberId") || has("phoneNumber")) {
        problems.push(
            "Couldn't Get Phone Number. Need Either `phoneNumberId` Or `phoneNumber`.".into(),
        );
    }
    match obj.get("customer") {
        None if has("customerId") || has("customers") => {}
        None | Some(Value::Null) => {
            problems.push("Couldn't Get Customer. Need Either `customer` Or `customerId`.".into())
        }
        Some(Value::Object(c)) => {
            let number = c.get("number").and_then(Value::as_str);
            // Vapi wants E.164 exactly (`CreateCustomerDTO.numberE164CheckEnabled` defaults on):
            // no spaces or punctuation.
            let e164 = number.is_some_and(|n| {
                sfvapi::ids::E164Phone::parse("customer.number", n).is_ok_and(|p| p.expose() == n)
            });
            if !e164 {
                problems.push("customer.number must be a valid phone number in the E.164 format. Hot tip, you may be missing the country code (Eg. US: +1).".into());
            }
        }
        Some(_) => {} // the schema already said "customer: … is not of type object"
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// `POST /assistant` (Vapi OpenAPI `CreateAssistantDTO` → 201 `Assistant`: the body plus `id`,
/// `orgId`, `createdAt`, `updatedAt`).
fn create_assistant(app: &Arc<App>, req: &Req) -> Resp {
    let body = match json_body(req) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let Some(fields) = body.as_object() else {
        return error(
            400,
            json!(["request body must be a JSON object"]),
            "Bad Request",
        );
    };
    let problems = schema_problems("CreateAssistantDTO", &body);
    if !problems.is_empty() {
        return error(400, json!(problems), "Bad Request");
    }
    let id = util::uuid_v4();
    let now = util::iso8601(sfvapi::now_millis());
    let mut assistant = fields.clone();
    assistant.insert("id".into(), json!(id));
    assistant.insert("orgId".into(), json!(app.config.vapi.org_id));
    assistant.insert("createdAt".into(), json!(now));
    assistant.insert("updatedAt".into(), json!(now));
    let assistant = Value::Object(assistant);
    lock(&app.vapi).assistants.insert(id, assistant.clone());
    Resp::json(201, &assistant)
}

/// `POST /call` → 201 `Call` (Vapi OpenAPI `CallController_create`), with the
/// `subscriptionLimits` object Vapi adds to every such answer
/// (https://docs.vapi.ai/calls/call-concurrency, "View concurrency in call responses"; the
/// OpenAPI document declares it only on `CallBatchResponse`). 400 for "client/policy failure
/// (limits, validation, missing resources)", 500 for a system failure.
/// Vapi OpenAPI `GET /call` (`CallController_findAll`) → 200 `Call[]`, with the filters sfvapi
/// uses: `assistantId`, `createdAtGe` / `createdAtGt` (ISO 8601) and `limit` (0..=1000, default
/// 100), newest first.
fn list_calls(app: &Arc<App>, req: &Req) -> Resp {
    let time = |k: &str| -> Result<Option<i64>, Resp> {
        match req.query_param(k) {
            None => Ok(None),
            Some(v) => sfvapi::jobs::report::parse_rfc3339_ms(&v)
                .map(Some)
                .ok_or_else(|| {
                    error(
                        400,
                        json!([format!("{k} must be a valid ISO 8601 date string")]),
                        "Bad Request",
                    )
                }),
        }
    };
    let (ge, gt) = match (time("createdAtGe"), time("createdAtGt")) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let limit = match req.query_param("limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if n <= 1000 => n,
        Some(_) => {
            return error(
                400,
                json!(["limit must not be greater than 1000"]),
                "Bad Request",
            )
        }
    };
    let assistant = req.query_param("assistantId");
    let created = |c: &Value| {
        c["createdAt"]
            .as_str()
            .and_then(sfvapi::jobs::report::parse_rfc3339_ms)
            .unwrap_or(0)
    };
    let mut calls: Vec<Value> = lock(&app.vapi)
        .calls
        .values()
        .filter(|c| assistant.as_deref().is_none_or(|a| c["assistantId"] == a))
        .filter(|c| ge.is_none_or(|t| created(c) >= t) && gt.is_none_or(|t| created(c) > t))
        .cloned()
        .collect();
    calls.sort_by_key(|c| std::cmp::Reverse(created(c)));
    calls.truncate(limit);
    Resp::json(200, &Value::Array(calls))
}

fn create_call(app: &Arc<App>, req: &Req) -> Resp {
    let mut st = lock(&app.vapi);
    if let Some(f) = st.fail_next.as_mut() {
        if f.remaining > 0 {
            f.remaining -= 1;
            let status = f.status;
            if f.remaining == 0 {
                st.fail_next = None;
            }
            return match status {
                // A limit refused as a 400 (the wording Vapi's users report; the shape is Vapi's).
                400 => error(400, json!(["Over Concurrency Limit."]), "Bad Request"),
                429 => error(429, json!("Too Many Requests"), "Too Many Requests"),
                503 => error(503, json!("Service Unavailable"), "Service Unavailable"),
                s => Resp::json(
                    s,
                    &json!({"message": "Internal server error", "statusCode": s}),
                ),
            };
        }
    }
    if st.scenario == Scenario::Outage && st.outage_remaining > 0 {
        st.outage_remaining -= 1;
        return Resp::json(
            500,
            &json!({"message": "Internal server error", "statusCode": 500}),
        );
    }
    let body = match json_body(req) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    if let Err(problems) = validate_call(&body) {
        return error(400, json!(problems), "Bad Request");
    }
    let id = util::uuid_v4();
    let now = sfvapi::now_millis();
    let limit = st.concurrency_limit;
    let blocked = st.live >= limit;
    // `SubscriptionLimits.remainingConcurrentCalls`: the slots still open once this call took
    // one (Vapi's example: limit 10, first call → 9); 0 when this call was refused.
    let remaining = if blocked { 0 } else { limit - st.live - 1 };
    let mut call = json!({
        "subscriptionLimits": {
            "concurrencyBlocked": blocked,
            "concurrencyLimit": limit,
            "remainingConcurrentCalls": remaining,
        },
        "id": id,
        "orgId": app.config.vapi.org_id,
        "type": "outboundPhoneCall",
        "status": if blocked { "ended" } else { "queued" },
        "createdAt": util::iso8601(now),
        "updatedAt": util::iso8601(now),
        "cost": 0,
        "phoneCallProvider": "twilio",
        "phoneCallTransport": "pstn",
        "monitor": {
            "listenUrl": format!("wss://sandbox.invalid/{id}/listen"),
            "controlUrl": format!("{}/call/{id}/control", app.urls.vapi),
        },
    });
    if let (Some(out), Some(src)) = (call.as_object_mut(), body.as_object()) {
        for k in [
            "assistantId",
            "assistant",
            "squadId",
            "phoneNumberId",
            "customer",
            "name",
            "assistantOverrides",
        ] {
            if let Some(v) = src.get(k) {
                out.insert(k.into(), v.clone());
            }
        }
        if blocked {
            out.insert("endedReason".into(), json!(CONCURRENCY_BLOCKED));
            out.insert("endedAt".into(), json!(util::iso8601(now)));
        }
    }
    // `subscriptionLimits` belongs to the answer, not to the stored call (`GET /call/{id}`).
    let mut stored = call.clone();
    if let Some(o) = stored.as_object_mut() {
        o.remove("subscriptionLimits");
    }
    st.calls.insert(id.clone(), stored.clone());
    if blocked {
        // Nothing was dialled, so nothing is reported: no server messages for this call.
        st.blocked += 1;
        drop(st);
        tracing::info!(call_id = %id, limit, "POST /call refused: concurrency limit reached");
        return Resp::json(201, &call);
    }
    st.live += 1;
    st.peak_live = st.peak_live.max(st.live);
    st.created += 1;
    let plan = Plan {
        scenario: if st.scenario == Scenario::Outage {
            Scenario::Normal
        } else {
            st.scenario
        },
        deliver_twice: st.deliver_twice,
        delay: st.delay,
    };
    drop(st);
    let url = app.config.vapi.server_url.clone();
    if url.is_none() {
        tracing::warn!(call_id = %id, "no --vapi-server-url: this call sends no server messages");
    }
    let hang = {
        let mut st = lock(&app.vapi);
        if st.hang_next > 0 {
            st.hang_next -= 1;
            Some(st.hang)
        } else {
            None
        }
    };
    tokio::spawn(run_call(app.clone(), url, stored, plan));
    let resp = Resp::json(201, &call);
    match hang {
        // The call exists and runs; only its answer is late (a timeout at the client).
        Some(d) => resp.after(d),
        None => resp,
    }
}

#[derive(Clone, Copy)]
struct Plan {
    scenario: Scenario,
    deliver_twice: bool,
    delay: Duration,
}

/// The call's timeline, as Vapi would report it. Without a server URL the call still runs (its
/// state and its concurrency slot change as usual), it just reports to no one.
async fn run_call(app: Arc<App>, url: Option<String>, mut call: Value, plan: Plan) {
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let started = sfvapi::now_millis();
    let mut steps: Vec<(&str, Option<&str>)> = vec![("status-update", Some("ringing"))];
    let mut ended_reason = match plan.scenario {
        Scenario::NoAnswer => "customer-did-not-answer",
        _ => {
            steps.push(("status-update", Some("in-progress")));
            steps.push(("tool-calls", None));
            "customer-ended-call"
        }
    };
    if plan.scenario == Scenario::Transfer {
        steps.push((TRANSFER_REQUEST, None));
    }
    // DESIGN.md "Vapi facts": `end-of-call-report` comes after `status-update` ended, once
    // post-processing is done.
    steps.push(("status-update", Some("ended")));
    steps.push(("end-of-call-report", None));
    let drop_report = lock(&app.vapi).drop_reports;
    let server_url = url
        .as_deref()
        .unwrap_or("https://sandbox.invalid/no-server-url");

    for (kind, status) in steps {
        tokio::time::sleep(plan.delay).await;
        if let Some(s) = status {
            set_call(&app, &id, &mut call, |c| {
                c.insert("status".into(), json!(s));
                if s == "ended" {
                    c.insert("endedReason".into(), json!(ended_reason));
                    c.insert("endedAt".into(), json!(util::iso8601(sfvapi::now_millis())));
                }
            });
            if s == "ended" {
                // The call is over before Vapi reports it: free its slot first, so a dialer that
                // paces on this message can dial again at once without being refused.
                let mut st = lock(&app.vapi);
                st.live = st.live.saturating_sub(1);
            }
        }
        if kind == TRANSFER_REQUEST {
            // Sent once, synchronously: Vapi waits for the answer before it dials anyone.
            let Some(url) = url.as_deref() else { continue };
            let message = json!({"message": base_message(TRANSFER_REQUEST, &call)});
            let answer = deliver(&app, url, &id, TRANSFER_REQUEST, &message, None, 1).await;
            if let Some(destination) = transfer_destination(answer.as_deref()) {
                tokio::time::sleep(plan.delay).await;
                let mut m = base_message("transfer-update", &call);
                m.insert("destination".into(), destination);
                deliver(
                    &app,
                    url,
                    &id,
                    "transfer-update",
                    &json!({"message": m}),
                    None,
                    1,
                )
                .await;
                ended_reason = "assistant-forwarded-call";
            }
            continue;
        }
        let (message, tool_call_id) = match kind {
            "status-update" => (
                status_update(&call, status.unwrap_or("ended"), ended_reason),
                None,
            ),
            "tool-calls" => {
                let tcid = format!("call_{}", util::alnum(24));
                let tool = if plan.scenario == Scenario::OptOut {
                    DO_NOT_CALL
                } else {
                    "lookupCustomer"
                };
                (tool_calls(&call, tool, &tcid, server_url), Some(tcid))
            }
            _ => {
                let ended = sfvapi::now_millis();
                let report = end_of_call_report(
                    &app.urls.vapi,
                    &call,
                    plan.scenario,
                    ended_reason,
                    started,
                    ended,
                );
                set_call(&app, &id, &mut call, |c| {
                    for k in [
                        "cost",
                        "startedAt",
                        "endedAt",
                        "endedReason",
                        "artifact",
                        "analysis",
                    ] {
                        if let Some(v) = report["message"].get(k) {
                            c.insert(k.into(), v.clone());
                        }
                    }
                });
                (report, None)
            }
        };
        let Some(url) = url.as_deref() else { continue };
        if drop_report && kind == "end-of-call-report" {
            tracing::info!(call_id = %id, "end-of-call-report dropped (drop_reports)");
            continue;
        }
        let deliveries = if plan.deliver_twice { 2 } else { 1 };
        for delivery in 1..=deliveries {
            deliver(
                &app,
                url,
                &id,
                kind,
                &message,
                tool_call_id.as_deref(),
                delivery,
            )
            .await;
        }
    }
}

fn set_call(
    app: &App,
    id: &str,
    call: &mut Value,
    f: impl FnOnce(&mut serde_json::Map<String, Value>),
) {
    if let Some(obj) = call.as_object_mut() {
        f(obj);
        obj.insert(
            "updatedAt".into(),
            json!(util::iso8601(sfvapi::now_millis())),
        );
    }
    lock(&app.vapi).calls.insert(id.to_owned(), call.clone());
}

/// What every server message carries (Vapi OpenAPI `ServerMessage*`: `type`, `timestamp` in ms,
/// `call` a `Call`, `customer` a `CreateCustomerDTO`). `phoneNumber` is left out: it is optional
/// and the sandbox has no phone-number object, only the id on the call.
fn base_message(kind: &str, call: &Value) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("type".into(), json!(kind));
    m.insert("timestamp".into(), json!(sfvapi::now_millis()));
    m.insert("call".into(), call.clone());
    if let Some(c) = call.get("customer") {
        m.insert("customer".into(), c.clone());
    }
    m
}

/// Vapi OpenAPI `ServerMessageStatusUpdate`: `status`, and `endedReason` once ended.
fn status_update(call: &Value, status: &str, ended_reason: &str) -> Value {
    let mut m = base_message("status-update", call);
    m.insert("status".into(), json!(status));
    if status == "ended" {
        m.insert("endedReason".into(), json!(ended_reason));
    }
    json!({"message": m})
}

/// Vapi OpenAPI `ServerMessageToolCalls`: both `toolCallList` (`ToolCall`: `id`, `type`,
/// `function{name, arguments}` with the arguments as JSON text) and `toolWithToolCallList`
/// (`FunctionToolWithToolCall`: the tool's definition plus its `toolCall`) are required.
fn tool_calls(call: &Value, tool: &str, tool_call_id: &str, server_url: &str) -> Value {
    let meta = call.pointer("/assistantOverrides/metadata");
    let customer_id = meta
        .and_then(|m| m.get("contactId"))
        .or_else(|| call.pointer("/assistantOverrides/variableValues/contactId"))
        .cloned()
        .unwrap_or(Value::Null);
    let arguments = if customer_id.is_null() || tool == DO_NOT_CALL {
        json!({})
    } else {
        json!({"customerId": customer_id})
    }
    .to_string();
    let tool_call = json!({
        "id": tool_call_id,
        "type": "function",
        "function": {"name": tool, "arguments": arguments},
    });
    let parameters = if tool == DO_NOT_CALL {
        json!({"type": "object", "properties": {}})
    } else {
        json!({"type": "object", "properties": {"customerId": {"type": "string"}}})
    };
    let mut m = base_message("tool-calls", call);
    m.insert("toolCallList".into(), json!([tool_call]));
    m.insert(
        "toolWithToolCallList".into(),
        json!([{
            "type": "function",
            "function": {"name": tool, "parameters": parameters},
            "server": {"url": server_url},
            "messages": [],
            "toolCall": tool_call,
        }]),
    );
    json!({"message": m})
}

/// Vapi OpenAPI `ServerMessageEndOfCallReport`: `endedReason`, `artifact` (`Artifact`:
/// `transcript`, `messages` as `BotMessage`/`UserMessage`, `recordingUrl`) and `analysis`
/// (`Analysis`: `summary`, `successEvaluation`, and `structuredData`, an object, what an
/// assistant whose analysis plan has a structured data schema gets) are required; `cost`,
/// `startedAt`, `endedAt`.
fn end_of_call_report(
    recordings: &str,
    call: &Value,
    scenario: Scenario,
    ended_reason: &str,
    started: i64,
    ended: i64,
) -> Value {
    let mut m = base_message("end-of-call-report", call);
    let first_name = call
        .pointer("/customer/name")
        .and_then(Value::as_str)
        .and_then(|n| n.split_whitespace().next())
        .unwrap_or("there")
        .to_owned();
    let answered = scenario != Scenario::NoAnswer;
    let (transcript, summary, cost, messages) = if scenario == Scenario::OptOut {
        let lines = [
            (
                "bot",
                format!("Hi {first_name}, this is Sarah calling about your case."),
            ),
            ("user", "Please stop calling me.".to_owned()),
            (
                "bot",
                "Understood. We will not call this number again.".to_owned(),
            ),
        ];
        let (transcript, messages) = conversation(&lines, started);
        (
            transcript,
            "The customer asked not to be called again.".to_owned(),
            0.08,
            messages,
        )
    } else if answered {
        let lines = [
            (
                "bot",
                format!("Hi {first_name}, this is Sarah calling about your case."),
            ),
            ("user", "Thanks, is it fixed?".to_owned()),
            ("bot", "Yes, the refund went out today.".to_owned()),
            ("user", "Great, thank you. Bye.".to_owned()),
        ];
        let (transcript, messages) = conversation(&lines, started);
        (
            transcript,
            "Customer was told the refund was issued.".to_owned(),
            0.21,
            messages,
        )
    } else {
        (String::new(), String::new(), 0.0, Vec::new())
    };
    m.insert("endedReason".into(), json!(ended_reason));
    m.insert("cost".into(), json!(cost));
    m.insert("startedAt".into(), json!(util::iso8601(started)));
    m.insert("endedAt".into(), json!(util::iso8601(ended)));
    let mut artifact = json!({"transcript": transcript, "messages": messages});
    if answered {
        let id = call.get("id").and_then(Value::as_str).unwrap_or_default();
        artifact["recordingUrl"] = json!(format!("{recordings}/recordings/{id}.wav"));
    }
    m.insert("artifact".into(), artifact);
    m.insert(
        "analysis".into(),
        json!({
            "summary": summary,
            "successEvaluation": if answered { "true" } else { "false" },
            // The fields the demo's routing document writes back (docs/routing.md).
            "structuredData": {"resolved": answered && scenario != Scenario::OptOut, "callbackRequested": !answered, "doNotCall": scenario == Scenario::OptOut},
        }),
    );
    json!({"message": m})
}

/// The headers of a server message signed like Vapi's HMAC credential (see the module doc),
/// plus `X-Vapi-Secret` with `--send-secret-header`.
fn signed_headers(cfg: &crate::config::VapiConfig, body: &str) -> http::HeaderMap {
    let ts = sfvapi::now_millis().to_string();
    let sig = hex::encode(sfvapi::signature::hmac_parts(
        sfvapi::signature::Algorithm::Sha256,
        cfg.server_secret.as_bytes(),
        &[ts.as_bytes(), b".", body.as_bytes()],
    ));
    let mut headers = http::HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&ts) {
        headers.insert("x-timestamp", v);
    }
    if let Ok(v) = http::HeaderValue::from_str(&sig) {
        headers.insert("x-signature", v);
    }
    if cfg.send_secret_header {
        if let Ok(v) = http::HeaderValue::from_str(&cfg.server_secret) {
            headers.insert("x-vapi-secret", v);
        }
    }
    headers
}

/// One delivery of a server message. Tried `delivery_attempts` times (1 by default: Vapi
/// does not retry without a `server.backoffPlan`, Vapi OpenAPI `BackoffPlan.maxRetries` default
/// 0); with more, like a backoff plan, a failed connection or a non-2xx answer not in
/// `RETRY_EXCLUDED_STATUS` is tried again after a short pause.
async fn deliver(
    app: &App,
    url: &str,
    call_id: &str,
    kind: &str,
    message: &Value,
    tool_call_id: Option<&str>,
    delivery: u32,
) -> Option<String> {
    let cfg = &app.config.vapi;
    let body = message.to_string();
    let path = url::Url::parse(url)
        .map(|u| u.path().to_owned())
        .unwrap_or_default();
    let mut answer = None;
    for attempt in 1..=cfg.delivery_attempts {
        let headers = signed_headers(cfg, &body);
        let mut entry = Entry::new(Service::Vapi, Direction::Out, "POST", &path);
        entry.url = Some(url.to_owned());
        entry.headers = crate::log::redacted_headers(&headers);
        entry.body = body.clone();
        entry.message_type = Some(kind.to_owned());
        entry.call_id = Some(call_id.to_owned());
        entry.delivery = Some(delivery);
        entry.attempt = Some(attempt);
        let started = std::time::Instant::now();
        let result = app
            .http
            .post(url)
            .headers(headers)
            .body(body.clone())
            .send()
            .await;
        let retry = match result {
            Err(e) => {
                entry.error = Some(sfvapi::secrets::error_chain(&e));
                true
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                entry.status = Some(status);
                let text = resp.text().await.unwrap_or_default();
                if let (Some(tcid), true) = (tool_call_id, status < 500) {
                    let check = check_tool_answer(status, &text, tcid);
                    if check.ok {
                        tracing::info!(
                            call_id,
                            delivery,
                            "tool-calls lookupCustomer: {}",
                            check.detail
                        );
                    } else {
                        tracing::warn!(
                            call_id,
                            delivery,
                            "tool-calls lookupCustomer: {}",
                            check.detail
                        );
                    }
                    entry.check = Some(check);
                }
                entry.response_body = text;
                if (200..300).contains(&status) {
                    answer = Some(entry.response_body.clone());
                }
                !(200..300).contains(&status) && !RETRY_EXCLUDED_STATUS.contains(&status)
            }
        };
        entry.duration_ms = started.elapsed().as_millis() as u64;
        let failed_status = entry.status;
        let failed_error = entry.error.clone();
        app.log.push(entry);
        if !retry {
            return answer;
        }
        if attempt < cfg.delivery_attempts {
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
        } else {
            tracing::warn!(
                call_id,
                kind,
                status = ?failed_status,
                error = ?failed_error,
                "server message not accepted after {attempt} attempt(s); giving up"
            );
        }
    }
    answer
}

/// Vapi's contract for a tool-call answer: 200 and a body that is a
/// `ServerMessageResponseToolCalls` (Vapi OpenAPI: `results[]` of `ToolCallResult`, each with
/// `name` and `toolCallId`, `result` a string), answering this tool call.
fn check_tool_answer(status: u16, text: &str, tool_call_id: &str) -> Check {
    let fail = |detail: String| Check { ok: false, detail };
    if status != 200 {
        return fail(format!("answered {status}, Vapi expects 200"));
    }
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return fail("answer is not JSON".into());
    };
    if let Err(problems) = vapi_schema::validate("ServerMessageResponseToolCalls", &v) {
        return fail(format!(
            "answer is not a ServerMessageResponseToolCalls: {}",
            problems.join("; ")
        ));
    }
    let Some(first) = v
        .get("results")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
    else {
        return fail("answer has no results[0]".into());
    };
    if first.get("toolCallId").and_then(Value::as_str) != Some(tool_call_id) {
        return fail(format!("results[0].toolCallId is not {tool_call_id}"));
    }
    match (first.get("result"), first.get("error")) {
        (Some(Value::String(r)), _) => Check {
            ok: true,
            detail: format!(
                "answered 200 for {tool_call_id} with a {}-character result",
                r.chars().count()
            ),
        },
        (_, Some(Value::String(e))) => fail(format!("answered an error for {tool_call_id}: {e}")),
        _ => fail("results[0] has neither result nor error".into()),
    }
}

/// A call's `artifact.transcript` and `artifact.messages` from its lines (role `bot`/`user`),
/// one second apart from `started` (ms): the shape of Vapi's end-of-call report artifact.
pub(crate) fn conversation(lines: &[(&str, String)], started: i64) -> (String, Vec<Value>) {
    let transcript = lines
        .iter()
        .map(|(role, text)| format!("{}: {text}", if *role == "bot" { "AI" } else { "User" }))
        .collect::<Vec<_>>()
        .join("\n");
    let messages = lines
        .iter()
        .enumerate()
        .map(|(i, (role, text))| {
            let time = started + 1000 * i as i64;
            json!({"role": role, "message": text, "time": time, "endTime": time + 900,
                   "secondsFromStart": i, "duration": 900})
        })
        .collect();
    (transcript, messages)
}
