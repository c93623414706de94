//! The fake Vapi: `POST /call` (and `GET /call/{id}`), then the call's life as server messages
//! sent to the configured server URL, signed like Vapi's HMAC credential:
//! `x-timestamp: <unix ms>`, `x-signature: hex(HMAC-SHA256(secret, "{timestamp}.{body}"))`.
//!
//! Message order (scenario `normal`): `status-update` ringing, `status-update` in-progress,
//! `tool-calls` (lookupCustomer), `end-of-call-report`, `status-update` ended. `no-answer` skips
//! the middle two and ends with `customer-did-not-answer`. Errors use Vapi's NestJS shape
//! `{"message","error","statusCode"}`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::config::{Scenario, VapiConfig};
use crate::log::{Check, Direction, Entry, Service};
use crate::salesforce::FailNext;
use crate::{lock, util, App, Req, Resp};

pub(crate) struct State {
    pub scenario: Scenario,
    pub outage_count: u32,
    pub outage_remaining: u32,
    pub deliver_twice: bool,
    pub delay: Duration,
    pub fail_next: Option<FailNext>,
    calls: HashMap<String, Value>,
}

impl State {
    pub fn new(cfg: &VapiConfig) -> Self {
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
            calls: HashMap::new(),
        }
    }

    pub fn reset_switches(&mut self, cfg: &VapiConfig) {
        let calls = std::mem::take(&mut self.calls);
        *self = Self::new(cfg);
        self.calls = calls;
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
            "calls": self.calls.len(),
        })
    }
}

fn error(status: u16, message: Value, error: &str) -> Resp {
    Resp::json(
        status,
        &json!({"message": message, "error": error, "statusCode": status}),
    )
}

pub(crate) fn handle(app: &Arc<App>, req: &Req) -> Resp {
    let path = req.path.trim_end_matches('/');
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let route = match (&req.method, segs.as_slice()) {
        (&http::Method::POST, ["call"]) => Route::Create,
        (&http::Method::GET, ["call", id]) => Route::Get(id),
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
        Route::Get(id) => match lock(&app.vapi).calls.get(id) {
            Some(call) => Resp::json(200, call),
            None => error(404, json!("Call not found"), "Not Found"),
        },
        Route::Create => create_call(app, req),
    }
}

enum Route<'a> {
    Create,
    Get(&'a str),
}

/// Top-level properties `POST /call` accepts; Vapi rejects others ("property X should not exist").
const KNOWN_PROPERTIES: &[&str] = &[
    "assistantId",
    "assistant",
    "assistantOverrides",
    "squadId",
    "squad",
    "workflowId",
    "workflow",
    "workflowOverrides",
    "phoneNumberId",
    "phoneNumber",
    "customerId",
    "customer",
    "customers",
    "name",
    "schedulePlan",
    "transport",
];

fn validate(body: &Value) -> Result<(), Vec<String>> {
    let Some(obj) = body.as_object() else {
        return Err(vec!["request body must be a JSON object".into()]);
    };
    let mut problems = Vec::new();
    for k in obj.keys() {
        if !KNOWN_PROPERTIES.contains(&k.as_str()) {
            problems.push(format!("property {k} should not exist"));
        }
    }
    let has = |k: &str| obj.get(k).is_some_and(|v| !v.is_null());
    if !(has("assistantId") || has("assistant") || has("squadId") || has("squad")) {
        problems.push(
            "Couldn't Get Assistant. Need Either `assistant`, `assistantId`, `squad`, or `squadId`."
                .into(),
        );
    }
    if obj.get("assistantId").is_some_and(|v| !v.is_string()) {
        problems.push("assistantId must be a string".into());
    }
    if !(has("phoneNumberId") || has("phoneNumber")) {
        problems.push(
            "Couldn't Get Phone Number. Need Either `phoneNumberId` Or `phoneNumber`.".into(),
        );
    }
    if obj.get("phoneNumberId").is_some_and(|v| !v.is_string()) {
        problems.push("phoneNumberId must be a string".into());
    }
    match obj.get("customer") {
        None if has("customerId") || has("customers") => {}
        None | Some(Value::Null) => {
            problems.push("Couldn't Get Customer. Need Either `customer` Or `customerId`.".into())
        }
        Some(Value::Object(c)) => {
            let number = c.get("number").and_then(Value::as_str);
            // Vapi wants E.164 exactly: no spaces or punctuation.
            let e164 = number.is_some_and(|n| {
                sfvapi::ids::E164Phone::parse("customer.number", n).is_ok_and(|p| p.expose() == n)
            });
            if !e164 {
                problems.push("customer.number must be a valid phone number in the E.164 format. Hot tip, you may be missing the country code (Eg. US: +1).".into());
            }
        }
        Some(_) => problems.push("customer must be an object".into()),
    }
    if obj
        .get("name")
        .is_some_and(|n| n.as_str().is_none_or(|s| s.chars().count() > 40))
    {
        problems.push("name must be shorter than or equal to 40 characters".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
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
    let body: Value = match serde_json::from_slice(&req.body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                400,
                json!(format!("Unexpected token in JSON: {e}")),
                "Bad Request",
            )
        }
    };
    if let Err(problems) = validate(&body) {
        return error(400, json!(problems), "Bad Request");
    }
    let id = util::uuid_v4();
    let now = sfvapi::now_millis();
    let mut call = json!({
        "id": id,
        "orgId": app.config.vapi.org_id,
        "type": "outboundPhoneCall",
        "status": "queued",
        "createdAt": util::iso8601(now),
        "updatedAt": util::iso8601(now),
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
    }
    st.calls.insert(id.clone(), call.clone());
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
    match app.config.vapi.server_url.clone() {
        Some(url) => {
            tokio::spawn(run_call(app.clone(), url, call.clone(), plan));
        }
        None => {
            tracing::warn!(call_id = %id, "no --vapi-server-url: this call sends no server messages")
        }
    }
    Resp::json(201, &call)
}

#[derive(Clone, Copy)]
struct Plan {
    scenario: Scenario,
    deliver_twice: bool,
    delay: Duration,
}

/// The call's timeline, as Vapi would report it.
async fn run_call(app: Arc<App>, url: String, mut call: Value, plan: Plan) {
    let id = call
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let started = sfvapi::now_millis();
    let mut steps: Vec<(&str, Option<&str>)> = vec![("status-update", Some("ringing"))];
    let ended_reason = match plan.scenario {
        Scenario::NoAnswer => "customer-did-not-answer",
        _ => {
            steps.push(("status-update", Some("in-progress")));
            steps.push(("tool-calls", None));
            "customer-ended-call"
        }
    };
    steps.push(("end-of-call-report", None));
    steps.push(("status-update", Some("ended")));

    for (kind, status) in steps {
        tokio::time::sleep(plan.delay).await;
        if let Some(s) = status {
            set_call(&app, &id, &mut call, |c| {
                c.insert("status".into(), json!(s));
                if s == "ended" {
                    c.insert("endedReason".into(), json!(ended_reason));
                }
            });
        }
        let (message, tool_call_id) = match kind {
            "status-update" => (
                status_update(&call, status.unwrap_or("ended"), ended_reason),
                None,
            ),
            "tool-calls" => {
                let tcid = format!("call_{}", util::alnum(24));
                (tool_calls(&call, &tcid, &url), Some(tcid))
            }
            _ => {
                let ended = sfvapi::now_millis();
                let report = end_of_call_report(&call, plan.scenario, ended_reason, started, ended);
                set_call(&app, &id, &mut call, |c| {
                    for k in ["cost", "startedAt", "endedAt", "endedReason"] {
                        if let Some(v) = report["message"].get(k) {
                            c.insert(k.into(), v.clone());
                        }
                    }
                });
                (report, None)
            }
        };
        let deliveries = if plan.deliver_twice { 2 } else { 1 };
        for delivery in 1..=deliveries {
            deliver(
                &app,
                &url,
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

fn base_message(kind: &str, call: &Value) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("type".into(), json!(kind));
    m.insert("timestamp".into(), json!(sfvapi::now_millis()));
    m.insert("call".into(), call.clone());
    if let Some(c) = call.get("customer") {
        m.insert("customer".into(), c.clone());
    }
    if let Some(p) = call.get("phoneNumberId") {
        m.insert("phoneNumber".into(), json!({"id": p}));
    }
    m
}

fn status_update(call: &Value, status: &str, ended_reason: &str) -> Value {
    let mut m = base_message("status-update", call);
    m.insert("status".into(), json!(status));
    if status == "ended" {
        m.insert("endedReason".into(), json!(ended_reason));
    }
    json!({"message": m})
}

fn tool_calls(call: &Value, tool_call_id: &str, server_url: &str) -> Value {
    let meta = call.pointer("/assistantOverrides/metadata");
    let customer_id = meta
        .and_then(|m| m.get("contactId"))
        .or_else(|| call.pointer("/assistantOverrides/variableValues/contactId"))
        .cloned()
        .unwrap_or(Value::Null);
    let arguments = if customer_id.is_null() {
        json!({})
    } else {
        json!({"customerId": customer_id})
    };
    let mut m = base_message("tool-calls", call);
    m.insert(
        "toolCallList".into(),
        json!([{
            "id": tool_call_id,
            "type": "function",
            "name": "lookupCustomer",
            "arguments": arguments,
            "function": {"name": "lookupCustomer", "arguments": arguments},
        }]),
    );
    m.insert(
        "toolWithToolCallList".into(),
        json!([{
            "type": "function",
            "function": {
                "name": "lookupCustomer",
                "parameters": {"type": "object", "properties": {"customerId": {"type": "string"}}},
            },
            "server": {"url": server_url},
            "toolCall": {
                "id": tool_call_id,
                "type": "function",
                "function": {"name": "lookupCustomer", "arguments": arguments},
            },
        }]),
    );
    json!({"message": m})
}

fn end_of_call_report(
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
    let (transcript, summary, cost, messages) = if answered {
        let lines = [
            (
                "bot",
                format!("Hi {first_name}, this is Sarah calling about your case."),
            ),
            ("user", "Thanks, is it fixed?".to_owned()),
            ("bot", "Yes, the refund went out today.".to_owned()),
            ("user", "Great, thank you. Bye.".to_owned()),
        ];
        let transcript = lines
            .iter()
            .map(|(role, text)| format!("{}: {text}", if *role == "bot" { "AI" } else { "User" }))
            .collect::<Vec<_>>()
            .join("\n");
        let messages: Vec<Value> = lines
            .iter()
            .enumerate()
            .map(|(i, (role, text))| {
                json!({"role": role, "message": text, "time": started + 1000 * i as i64, "secondsFromStart": i})
            })
            .collect();
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
    m.insert(
        "durationSeconds".into(),
        json!(((ended - started) as f64) / 1000.0),
    );
    let mut artifact = json!({"transcript": transcript, "messages": messages});
    if answered {
        let id = call.get("id").and_then(Value::as_str).unwrap_or_default();
        let recording = format!("https://storage.sandbox.invalid/recordings/{id}.wav");
        artifact["recordingUrl"] = json!(recording);
        m.insert("recordingUrl".into(), json!(recording));
    }
    m.insert("artifact".into(), artifact);
    m.insert("transcript".into(), json!(transcript));
    m.insert("summary".into(), json!(summary));
    m.insert(
        "analysis".into(),
        json!({"summary": summary, "successEvaluation": if answered { "true" } else { "false" }}),
    );
    json!({"message": m})
}

/// One delivery of a server message, retried on 5xx and connection errors with a short backoff.
async fn deliver(
    app: &App,
    url: &str,
    call_id: &str,
    kind: &str,
    message: &Value,
    tool_call_id: Option<&str>,
    delivery: u32,
) {
    let cfg = &app.config.vapi;
    let body = message.to_string();
    let path = url::Url::parse(url)
        .map(|u| u.path().to_owned())
        .unwrap_or_default();
    for attempt in 1..=cfg.delivery_attempts {
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
                status >= 500
            }
        };
        entry.duration_ms = started.elapsed().as_millis() as u64;
        let failed_status = entry.status;
        let failed_error = entry.error.clone();
        app.log.push(entry);
        if !retry {
            return;
        }
        if attempt < cfg.delivery_attempts {
            tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
        } else {
            tracing::warn!(
                call_id,
                kind,
                status = ?failed_status,
                error = ?failed_error,
                "server message not accepted after {attempt} attempts; giving up"
            );
        }
    }
}

/// Vapi's contract for a tool-call answer: 200, `results[].toolCallId` matching, `result` a string.
fn check_tool_answer(status: u16, text: &str, tool_call_id: &str) -> Check {
    let fail = |detail: String| Check { ok: false, detail };
    if status != 200 {
        return fail(format!("answered {status}, Vapi expects 200"));
    }
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return fail("answer is not JSON".into());
    };
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
        (Some(_), _) => fail("results[0].result is not a string (JSON-encode objects)".into()),
        _ => fail("results[0] has neither result nor error".into()),
    }
}
