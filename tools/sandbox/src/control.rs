//! The `/_sandbox` endpoints: the request log and the switches (see the crate doc for the API).

use serde::Deserialize;
use serde_json::{json, Value};

use crate::config::Scenario;
use crate::log::Service;
use crate::salesforce::{FailNext, TokenFailure};
use crate::{lock, App, Req, Resp};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Control {
    #[serde(default)]
    reset: bool,
    salesforce: Option<SalesforceControl>,
    vapi: Option<VapiControl>,
    twilio: Option<TwilioControl>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FailNextControl {
    status: u16,
    #[serde(default = "one")]
    count: u32,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenErrorControl {
    error: String,
    #[serde(default = "one")]
    count: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SalesforceControl {
    fail_next: Option<FailNextControl>,
    token_error: Option<TokenErrorControl>,
    #[serde(default)]
    revoke_tokens: bool,
    api_usage: Option<u64>,
    /// The next N REST calls answer only after `hang_ms` (default 10 s): a slow Salesforce.
    hang_next: Option<u32>,
    hang_ms: Option<u64>,
    /// Whether Task's describe says the external-id field is Unique (default true).
    task_external_id_unique: Option<bool>,
    /// Every event relay's feedback reports this error (`{"code","message"}`), or `null`: none.
    #[serde(default, deserialize_with = "some")]
    relay_error: Option<Option<RelayErrorControl>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RelayErrorControl {
    code: String,
    message: String,
}

/// A present field, even `null`, is `Some` (`null` clears the switch).
fn some<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VapiControl {
    scenario: Option<Scenario>,
    outage_count: Option<u32>,
    deliver_twice: Option<bool>,
    delay_ms: Option<u64>,
    fail_next: Option<FailNextControl>,
    concurrency_limit: Option<u32>,
    /// Send no end-of-call reports from now on (a report Vapi never delivered).
    drop_reports: Option<bool>,
    /// The next N `POST /call` create the call but answer only after `hang_ms` (default 15 s).
    hang_next: Option<u32>,
    hang_ms: Option<u64>,
    /// Size of each call's recording, WAV header included (at most 64 MiB).
    recording_bytes: Option<usize>,
    /// Every recording answers 404 (Vapi's retention has passed).
    recordings_gone: Option<bool>,
    /// The next N recording requests answer 503.
    recordings_fail_next: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TwilioControl {
    fail_next: Option<FailNextControl>,
}

fn bad(detail: impl Into<String>) -> Resp {
    Resp::json(
        400,
        &json!({"error": "invalid_control", "detail": detail.into()}),
    )
}

pub(crate) fn handle(app: &App, req: &Req) -> Resp {
    let path = req.path.trim_end_matches('/');
    match (req.method.as_str(), path) {
        ("GET", "/_sandbox/health") => Resp::json(200, &json!({"ok": true})),
        ("GET", "/_sandbox/requests") => {
            let service = match req.query_param("service") {
                None => None,
                Some(s) => match Service::parse(&s) {
                    Some(s) => Some(s),
                    None => {
                        return bad(format!(
                            "service {s:?}: expected salesforce, vapi or twilio"
                        ))
                    }
                },
            };
            let since = match req.query_param("since").map(|s| s.parse::<u64>()) {
                None => 0,
                Some(Ok(n)) => n,
                Some(Err(_)) => return bad("since: expected a sequence number"),
            };
            let entries = app.log.query(service, since);
            Resp::json(
                200,
                &serde_json::to_value(entries).unwrap_or(Value::Array(Vec::new())),
            )
        }
        ("DELETE", "/_sandbox/requests") => Resp::json(200, &json!({"cleared": app.log.clear()})),
        // The files the fake Salesforce keeps (a call's whole transcript) and their links.
        ("GET", "/_sandbox/salesforce/files") => {
            Resp::json(200, &crate::salesforce::files_json(&lock(&app.sf)))
        }
        ("GET", "/_sandbox/control") => Resp::json(200, &json!({"ok": true, "state": state(app)})),
        ("POST", "/_sandbox/control") => match serde_json::from_slice::<Control>(&req.body) {
            Err(e) => bad(e.to_string()),
            Ok(c) => match apply(app, c) {
                Ok(()) => Resp::json(200, &json!({"ok": true, "state": state(app)})),
                Err(detail) => bad(detail),
            },
        },
        (_, "/_sandbox/health" | "/_sandbox/requests" | "/_sandbox/control") => {
            Resp::json(405, &json!({"error": "method_not_allowed"}))
        }
        _ => Resp::json(
            404,
            &json!({"error": "not_found", "detail": "see the sandbox crate doc for /_sandbox routes"}),
        ),
    }
}

fn state(app: &App) -> Value {
    json!({
        "salesforce": lock(&app.sf).switches(),
        "vapi": lock(&app.vapi).switches(),
        "twilio": lock(&app.twilio).switches(),
    })
}

fn fail_next(
    f: FailNextControl,
    allowed: &[u16],
    service: &str,
) -> Result<Option<FailNext>, String> {
    if f.count == 0 {
        return Ok(None);
    }
    if !allowed.contains(&f.status) {
        return Err(format!(
            "{service}.fail_next.status {}: expected one of {allowed:?}",
            f.status
        ));
    }
    Ok(Some(FailNext {
        status: f.status,
        remaining: f.count,
    }))
}

/// Validate everything first, then apply, so a bad request changes nothing.
fn apply(app: &App, c: Control) -> Result<(), String> {
    let mut sf_fail = None;
    let mut sf_token = None;
    if let Some(sf) = &c.salesforce {
        if let Some(f) = &sf.fail_next {
            sf_fail = Some(fail_next(
                FailNextControl {
                    status: f.status,
                    count: f.count,
                },
                &[401, 403, 500, 503],
                "salesforce",
            )?);
        }
        if let Some(t) = &sf.token_error {
            if !crate::salesforce::is_token_error(&t.error) {
                return Err(format!(
                    "salesforce.token_error.error {:?}: expected invalid_grant, inactive_user, inactive_org, rate_limit_exceeded or invalid_client",
                    t.error
                ));
            }
            sf_token = Some((t.count > 0).then(|| TokenFailure {
                error: t.error.clone(),
                remaining: t.count,
            }));
        }
    }
    let mut vapi_fail = None;
    if let Some(f) = c.vapi.as_ref().and_then(|v| v.fail_next.as_ref()) {
        vapi_fail = Some(fail_next(
            FailNextControl {
                status: f.status,
                count: f.count,
            },
            &[400, 429, 500, 503],
            "vapi",
        )?);
    }
    let mut twilio_fail = None;
    if let Some(f) = c.twilio.as_ref().and_then(|t| t.fail_next.as_ref()) {
        twilio_fail = Some(fail_next(
            FailNextControl {
                status: f.status,
                count: f.count,
            },
            &[429, 500, 503],
            "twilio",
        )?);
    }

    if c.reset {
        lock(&app.sf).reset_switches();
        lock(&app.vapi).reset_switches(&app.config.vapi, &app.config.twilio.account_sid);
        lock(&app.twilio).reset_switches();
    }
    if let Some(sf) = c.salesforce {
        let mut st = lock(&app.sf);
        if let Some(f) = sf_fail {
            st.fail_next = f;
        }
        if let Some(t) = sf_token {
            st.token_error = t;
        }
        if sf.revoke_tokens {
            st.revoke_all_tokens();
        }
        if let Some(n) = sf.api_usage {
            st.api_usage = n;
        }
        if let Some(n) = sf.hang_next {
            st.hang_next = n;
        }
        if let Some(ms) = sf.hang_ms {
            st.hang = std::time::Duration::from_millis(ms);
        }
        if let Some(b) = sf.task_external_id_unique {
            st.task_external_id_unique = b;
        }
        if let Some(e) = &sf.relay_error {
            st.tooling
                .set_relay_error(e.as_ref().map(|e| (e.code.as_str(), e.message.as_str())));
        }
    }
    if let Some(v) = c.vapi {
        let mut st = lock(&app.vapi);
        if let Some(n) = v.outage_count {
            st.outage_count = n;
        }
        if let Some(s) = v.scenario {
            st.set_scenario(s);
        }
        if let Some(b) = v.deliver_twice {
            st.deliver_twice = b;
        }
        if let Some(ms) = v.delay_ms {
            st.delay = std::time::Duration::from_millis(ms);
        }
        if let Some(f) = vapi_fail {
            st.fail_next = f;
        }
        if let Some(n) = v.concurrency_limit {
            st.concurrency_limit = n;
        }
        if let Some(b) = v.drop_reports {
            st.drop_reports = b;
        }
        if let Some(n) = v.hang_next {
            st.hang_next = n;
        }
        if let Some(ms) = v.hang_ms {
            st.hang = std::time::Duration::from_millis(ms);
        }
        if let Some(n) = v.recording_bytes {
            st.recording_bytes = n.min(crate::vapi::MAX_RECORDING_BYTES);
        }
        if let Some(b) = v.recordings_gone {
            st.recordings_gone = b;
        }
        if let Some(n) = v.recordings_fail_next {
            st.recordings_fail_next = n;
        }
    }
    if twilio_fail.is_some() {
        lock(&app.twilio).fail_next = twilio_fail.flatten();
    }
    Ok(())
}
