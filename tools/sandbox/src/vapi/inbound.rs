//! Inbound calls on the fake Vapi: a customer calls the phone number.
//!
//! `POST /_sandbox/inbound-call` with `{"from": "+14155550123", "phoneNumberId"?: "…"}` (`from`
//! absent or null: a withheld number) does what Vapi does for a phone number without an assistant
//! of its own but with a server URL (docs.vapi.ai/server-url/events, "Retrieving Assistants"):
//!
//! 1. it sends `assistant-request` (Vapi OpenAPI `ServerMessageAssistantRequest`: `type`,
//!    `timestamp`, `call` — a `Call` with `type: inboundPhoneCall`, `status: ringing`, the
//!    `customer` — and `customer`), signed like every server message, to the server URL
//!    (`--vapi-server-url`: the phone number's server, which is also the assistant's), and waits at
//!    most 7.5 s ("You must respond to the `assistant-request` webhook within 7.5 seconds
//!    end-to-end", same page);
//! 2. the answer must be a 200 `ServerMessageResponseAssistantRequest` naming an assistant this
//!    fake Vapi has (`POST /assistant`); otherwise the call ends at once with the matching
//!    `Call.endedReason` of Vapi's OpenAPI: `assistant-request-failed` (no 2xx in time, or not
//!    JSON), `assistant-request-returned-error` (`error`), `assistant-request-returned-invalid-assistant`
//!    (not the schema), `assistant-request-returned-no-assistant`, `assistant-not-found`;
//! 3. the call runs with that assistant and its `assistantOverrides` on the call object: the first
//!    message (`assistantOverrides.firstMessage`, else the assistant's) rendered with
//!    `variableValues` (`{{name}}`; an unset variable renders empty, as LiquidJS does,
//!    docs.vapi.ai/assistants/dynamic-variables), `status-update` in-progress, `tool-calls`
//!    (lookupCustomer), `status-update` ended (`customer-ended-call`), `end-of-call-report` whose
//!    transcript opens with that first message.
//!
//! The control call answers once the assistant is settled (the rest of the call runs on):
//! `{"ok": true, "callId", "assistantRequest": {"status", "durationMs", "answer", "check"},
//! "firstMessage"?, "endedReason"?}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{json, Value};

use super::{
    base_message, conversation, deliver, set_call, signed_headers, status_update, tool_calls,
};
use crate::log::{Check, Direction, Entry, Service};
use crate::{lock, util, App, Req, Resp};

/// Vapi's fixed limit for the `assistant-request` answer (docs.vapi.ai/server-url/events).
pub const ASSISTANT_REQUEST_TIMEOUT: Duration = Duration::from_millis(7_500);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Place {
    from: Option<String>,
    phone_number_id: Option<String>,
}

fn bad(detail: impl Into<String>) -> Resp {
    Resp::json(
        400,
        &json!({"error": "invalid_inbound_call", "detail": detail.into()}),
    )
}

/// What the phone number's server answered.
struct Answered {
    status: Option<u16>,
    body: String,
    duration_ms: u64,
    check: Check,
    /// The assistant and its overrides, when the answer names one the fake Vapi has.
    accepted: Result<(Value, Value), &'static str>,
}

pub(crate) async fn place(app: &Arc<App>, req: &Req) -> Resp {
    if req.method != http::Method::POST {
        return Resp::json(405, &json!({"error": "method_not_allowed"}));
    }
    let place: Place = match serde_json::from_slice(&req.body) {
        Ok(p) => p,
        Err(e) => return bad(e.to_string()),
    };
    // Vapi OpenAPI `CreateCustomerDTO.number`: 3 to 40 characters.
    if let Some(n) = &place.from {
        if !(3..=40).contains(&n.chars().count()) {
            return bad("from: 3 to 40 characters (CreateCustomerDTO.number)");
        }
    }
    let Some(url) = app.config.vapi.server_url.clone() else {
        return Resp::json(
            409,
            &json!({"error": "no_server_url", "detail": "start the sandbox with --vapi-server-url: the phone number's server"}),
        );
    };
    let id = util::uuid_v4();
    let now = sfvapi::now_millis();
    let mut call = json!({
        "id": id,
        "orgId": app.config.vapi.org_id,
        "type": "inboundPhoneCall",
        "status": "ringing",
        "createdAt": util::iso8601(now),
        "updatedAt": util::iso8601(now),
        "phoneNumberId": place.phone_number_id.as_deref().unwrap_or(super::SEED_PHONE_NUMBER_ID),
        "phoneCallProvider": "twilio",
        "phoneCallTransport": "pstn",
    });
    if let Some(n) = &place.from {
        call["customer"] = json!({"number": n});
    }
    lock(&app.vapi).calls.insert(id.clone(), call.clone());
    let message = json!({"message": base_message("assistant-request", &call)});
    let answered = ask(app, &url, &id, &message).await;
    let mut out = json!({
        "ok": true,
        "callId": id,
        "assistantRequest": {
            "status": answered.status,
            "durationMs": answered.duration_ms,
            "answer": serde_json::from_str::<Value>(&answered.body).unwrap_or(Value::Null),
            "check": {"ok": answered.check.ok, "detail": answered.check.detail},
        },
    });
    let (assistant, overrides) = match answered.accepted {
        Ok(a) => a,
        Err(reason) => {
            set_call(app, &id, &mut call, |c| {
                c.insert("status".into(), json!("ended"));
                c.insert("endedReason".into(), json!(reason));
                c.insert("endedAt".into(), json!(util::iso8601(sfvapi::now_millis())));
            });
            out["endedReason"] = json!(reason);
            return Resp::json(200, &out);
        }
    };
    let vars = overrides
        .get("variableValues")
        .cloned()
        .unwrap_or(Value::Null);
    let template = overrides
        .get("firstMessage")
        .or_else(|| assistant.get("firstMessage"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let first = render(template, &vars);
    out["firstMessage"] = json!(first);
    set_call(app, &id, &mut call, |c| {
        c.insert("assistantId".into(), assistant["id"].clone());
        if !overrides.is_null() {
            c.insert("assistantOverrides".into(), overrides.clone());
        }
        c.insert("status".into(), json!("in-progress"));
        c.insert(
            "startedAt".into(),
            json!(util::iso8601(sfvapi::now_millis())),
        );
    });
    let delay = {
        let mut st = lock(&app.vapi);
        // An inbound call holds one of the org's concurrent calls like any other
        // (docs.vapi.ai/calls/call-concurrency).
        st.live += 1;
        st.peak_live = st.peak_live.max(st.live);
        st.delay
    };
    tokio::spawn(run(app.clone(), url, call, first, delay));
    Resp::json(200, &out)
}

/// Send the `assistant-request` and judge the answer as Vapi would.
async fn ask(app: &App, url: &str, call_id: &str, message: &Value) -> Answered {
    let body = message.to_string();
    let headers = signed_headers(&app.config.vapi, &body);
    let mut entry = Entry::new(
        Service::Vapi,
        Direction::Out,
        "POST",
        &url::Url::parse(url)
            .map(|u| u.path().to_owned())
            .unwrap_or_default(),
    );
    entry.url = Some(url.to_owned());
    entry.headers = crate::log::redacted_headers(&headers);
    entry.body = body.clone();
    entry.message_type = Some("assistant-request".into());
    entry.call_id = Some(call_id.to_owned());
    entry.delivery = Some(1);
    entry.attempt = Some(1);
    let started = Instant::now();
    let sent = app
        .http
        .post(url)
        .headers(headers)
        .timeout(ASSISTANT_REQUEST_TIMEOUT)
        .body(body)
        .send()
        .await;
    let (status, text) = match sent {
        Ok(resp) => {
            let status = resp.status().as_u16();
            (Some(status), resp.text().await.unwrap_or_default())
        }
        Err(e) => {
            entry.error = Some(sfvapi::secrets::error_chain(&e));
            (None, String::new())
        }
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    let accepted = judge(app, status, &text);
    let check = Check {
        ok: accepted.is_ok(),
        detail: match (&accepted, status) {
            (Ok((a, _)), _) => format!(
                "answered {} in {duration_ms} ms with assistant {}",
                status.unwrap_or(0),
                a["id"].as_str().unwrap_or("?")
            ),
            (Err(reason), Some(s)) => {
                format!("answered {s} in {duration_ms} ms: the call ends ({reason})")
            }
            (Err(reason), None) => format!(
                "no answer within {} ms: the call ends ({reason})",
                ASSISTANT_REQUEST_TIMEOUT.as_millis()
            ),
        },
    };
    entry.status = status;
    entry.response_body = text.clone();
    entry.duration_ms = duration_ms;
    entry.check = Some(check.clone());
    app.log.push(entry);
    Answered {
        status,
        body: text,
        duration_ms,
        check,
        accepted,
    }
}

/// The assistant (as `GET /assistant/{id}` has it) and the overrides, or the call's
/// `endedReason` (Vapi OpenAPI `Call.endedReason` values).
fn judge(app: &App, status: Option<u16>, text: &str) -> Result<(Value, Value), &'static str> {
    if !status.is_some_and(|s| (200..300).contains(&s)) {
        return Err("assistant-request-failed");
    }
    let v: Value = serde_json::from_str(text).map_err(|_| "assistant-request-failed")?;
    if v.get("error").and_then(Value::as_str).is_some() {
        return Err("assistant-request-returned-error");
    }
    if vapi_schema::validate("ServerMessageResponseAssistantRequest", &v).is_err() {
        return Err("assistant-request-returned-invalid-assistant");
    }
    let Some(id) = v.get("assistantId").and_then(Value::as_str) else {
        // A transient `assistant`, a squad or a workflow is valid for Vapi, not for this fake.
        return Err("assistant-request-returned-no-assistant");
    };
    let assistant = lock(&app.vapi)
        .assistants
        .get(id)
        .cloned()
        .ok_or("assistant-not-found")?;
    Ok((
        assistant,
        v.get("assistantOverrides").cloned().unwrap_or(Value::Null),
    ))
}

/// `{{ name }}` → the variable's value, or nothing when it is not set.
pub fn render(template: &str, vars: &Value) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = rest[start + 2..start + end].trim();
        if let Some(v) = vars.get(name).and_then(Value::as_str) {
            out.push_str(v);
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

/// The call after its assistant is known: in progress, one tool call, the caller hangs up, then
/// the report.
async fn run(app: Arc<App>, url: String, mut call: Value, first: String, delay: Duration) {
    let id = call["id"].as_str().unwrap_or_default().to_owned();
    let started = sfvapi::now_millis();
    let reason = "customer-ended-call";
    tokio::time::sleep(delay).await;
    let m = status_update(&call, "in-progress", reason);
    deliver(&app, &url, &id, "status-update", &m, None, 1).await;
    tokio::time::sleep(delay).await;
    let tcid = format!("call_{}", util::alnum(24));
    let m = tool_calls(&call, "lookupCustomer", &tcid, &url);
    deliver(&app, &url, &id, "tool-calls", &m, Some(&tcid), 1).await;
    tokio::time::sleep(delay).await;
    set_call(&app, &id, &mut call, |c| {
        c.insert("status".into(), json!("ended"));
        c.insert("endedReason".into(), json!(reason));
        c.insert("endedAt".into(), json!(util::iso8601(sfvapi::now_millis())));
    });
    {
        let mut st = lock(&app.vapi);
        st.live = st.live.saturating_sub(1);
    }
    let m = status_update(&call, "ended", reason);
    deliver(&app, &url, &id, "status-update", &m, None, 1).await;
    tokio::time::sleep(delay).await;
    let report = report(
        &app.urls.vapi,
        &call,
        &first,
        reason,
        started,
        sfvapi::now_millis(),
    );
    set_call(&app, &id, &mut call, |c| {
        for k in ["cost", "startedAt", "endedAt", "artifact", "analysis"] {
            if let Some(v) = report["message"].get(k) {
                c.insert(k.into(), v.clone());
            }
        }
    });
    if lock(&app.vapi).drop_reports {
        tracing::info!(call_id = %id, "end-of-call-report dropped (drop_reports)");
        return;
    }
    deliver(&app, &url, &id, "end-of-call-report", &report, None, 1).await;
}

/// Vapi OpenAPI `ServerMessageEndOfCallReport` of the inbound call (the shape of the outbound
/// one: `endedReason`, `artifact`, `analysis`, `cost`, `startedAt`, `endedAt`).
fn report(
    recordings: &str,
    call: &Value,
    first: &str,
    reason: &str,
    started: i64,
    ended: i64,
) -> Value {
    let mut m = base_message("end-of-call-report", call);
    let lines = [
        ("bot", first.to_owned()),
        (
            "user",
            "Hi, I saw a missed call from you. Is this about my case?".to_owned(),
        ),
        (
            "bot",
            "Yes, it is. It is being handled and you will hear from us by tomorrow.".to_owned(),
        ),
        ("user", "Great, thanks. Bye.".to_owned()),
    ];
    let (transcript, messages) = conversation(&lines, started);
    let id = call.get("id").and_then(Value::as_str).unwrap_or_default();
    m.insert("endedReason".into(), json!(reason));
    m.insert("cost".into(), json!(0.12));
    m.insert("startedAt".into(), json!(util::iso8601(started)));
    m.insert("endedAt".into(), json!(util::iso8601(ended)));
    m.insert(
        "artifact".into(),
        json!({"transcript": transcript, "messages": messages,
               "recordingUrl": format!("{recordings}/recordings/{id}.wav")}),
    );
    m.insert(
        "analysis".into(),
        json!({"summary": "The customer called back about their case and was told it is being handled.", "successEvaluation": "true"}),
    );
    json!({"message": m})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_fills_known_variables_and_drops_unknown_ones() {
        let vars = json!({"customerFirstName": "Ada"});
        assert_eq!(
            render("Hi {{ customerFirstName }}, about {{caseSubject}}.", &vars),
            "Hi Ada, about ."
        );
        assert_eq!(render("no variables", &vars), "no variables");
        assert_eq!(render("broken {{ end", &vars), "broken {{ end");
    }
}
