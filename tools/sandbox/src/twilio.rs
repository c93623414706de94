//! The fake Twilio: `Messages.json` (SMS) and `Calls.json` (voice with inline TwiML or a URL)
//! under `/2010-04-01/Accounts/{AccountSid}/`, HTTP Basic auth, Twilio's error body
//! `{"code","message","more_info","status"}` (codes from <https://www.twilio.com/docs/api/errors>).

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::salesforce::FailNext;
use crate::{lock, util, App, Req, Resp};

#[derive(Default)]
pub(crate) struct State {
    pub fail_next: Option<FailNext>,
    pub messages: u64,
    pub calls: u64,
}

impl State {
    pub fn reset_switches(&mut self) {
        self.fail_next = None;
    }
    pub fn switches(&self) -> Value {
        json!({"fail_next": self.fail_next, "messages_created": self.messages, "calls_created": self.calls})
    }
}

fn error(status: u16, code: u32, message: &str) -> Resp {
    Resp::json(
        status,
        &json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        }),
    )
}

pub(crate) fn handle(app: &App, req: &Req) -> Resp {
    let segs: Vec<&str> = req.path.trim_matches('/').split('/').collect();
    if let ["2010-04-01", "Accounts", account_json] = segs.as_slice() {
        return fetch_account(app, req, account_json);
    }
    let (account, resource) = match segs.as_slice() {
        ["2010-04-01", "Accounts", account, resource] => (*account, *resource),
        _ => {
            return error(
                404,
                20404,
                &format!("The requested resource {} was not found", req.path),
            )
        }
    };
    let kind = match resource {
        "Messages.json" => Kind::Message,
        "Calls.json" => Kind::Call,
        _ => {
            return error(
                404,
                20404,
                &format!("The requested resource {} was not found", req.path),
            )
        }
    };
    let cfg = &app.config.twilio;
    if !basic_auth_ok(req, &cfg.account_sid, &cfg.auth_token) {
        return error(401, 20003, "Authenticate");
    }
    if account != cfg.account_sid {
        return error(
            404,
            20404,
            &format!("The requested resource {} was not found", req.path),
        );
    }
    if req.method != http::Method::POST {
        // Listing is not faked: sfvapi only creates.
        return error(405, 20004, "Method not allowed");
    }
    let mut st = lock(&app.twilio);
    if let Some(f) = st.fail_next.as_mut() {
        if f.remaining > 0 {
            f.remaining -= 1;
            let status = f.status;
            if f.remaining == 0 {
                st.fail_next = None;
            }
            return match status {
                429 => error(429, 20429, "Too Many Requests"),
                503 => error(503, 20503, "Service Unavailable"),
                s => error(s, 20500, "Internal Server Error"),
            };
        }
    }
    let form = util::parse_form(&req.body);
    let result = match kind {
        Kind::Message => create_message(&cfg.account_sid, &form),
        Kind::Call => create_call(&cfg.account_sid, &form),
    };
    match result {
        Ok(body) => {
            match kind {
                Kind::Message => st.messages += 1,
                Kind::Call => st.calls += 1,
            }
            Resp::json(201, &body)
        }
        Err(resp) => resp,
    }
}

enum Kind {
    Message,
    Call,
}

fn basic_auth_ok(req: &Req, user: &str, password: &str) -> bool {
    let Some(encoded) = req
        .header("authorization")
        .and_then(|v| v.trim().strip_prefix("Basic "))
    else {
        return false;
    };
    let Some(decoded) = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return false;
    };
    matches!(decoded.split_once(':'), Some((u, p)) if u == user && p == password)
}

fn e164(raw: &str) -> bool {
    sfvapi::ids::E164Phone::parse("To", raw).is_ok()
}

/// A sender id: E.164, a short code (5–6 digits) or an alphanumeric sender (≤ 11 chars, a letter).
fn valid_from(raw: &str) -> bool {
    let short_code = (5..=6).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_digit());
    let alnum_sender = (1..=11).contains(&raw.len())
        && raw.bytes().any(|b| b.is_ascii_alphabetic())
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ');
    e164(raw) || short_code || alnum_sender
}

fn get<'a>(form: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    form.get(k).map(|s| s.trim()).filter(|s| !s.is_empty())
}

fn create_message(account: &str, form: &HashMap<String, String>) -> Result<Value, Resp> {
    let Some(to) = get(form, "To") else {
        return Err(error(400, 21604, "A 'To' phone number is required."));
    };
    if !e164(to) {
        return Err(error(
            400,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        ));
    }
    let from = get(form, "From");
    let service = get(form, "MessagingServiceSid");
    if from.is_none() && service.is_none() {
        return Err(error(400, 21603, "A 'From' phone number is required."));
    }
    if let Some(f) = from.filter(|f| !valid_from(f)) {
        return Err(error(
            400,
            21212,
            &format!("The 'From' number {f} is not a valid phone number, shortcode, or alphanumeric sender ID."),
        ));
    }
    if let Some(s) = service.filter(|s| !(s.starts_with("MG") && s.len() == 34)) {
        return Err(error(
            400,
            21701,
            &format!("The Messaging Service Sid {s} is invalid."),
        ));
    }
    let body = get(form, "Body");
    if body.is_none() && get(form, "MediaUrl").is_none() {
        return Err(error(400, 21602, "Message body is required."));
    }
    let body = body.unwrap_or("");
    if body.chars().count() > 1600 {
        return Err(error(
            400,
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        ));
    }
    let sid = util::twilio_sid("SM");
    let now = util::rfc2822(sfvapi::now_millis());
    // Through a Messaging Service without From, Twilio answers "accepted" and picks the sender later.
    let status = if from.is_none() { "accepted" } else { "queued" };
    let segments = body.chars().count().div_ceil(153).max(1);
    Ok(json!({
        "account_sid": account,
        "api_version": "2010-04-01",
        "body": body,
        "date_created": now,
        "date_sent": null,
        "date_updated": now,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": from,
        "messaging_service_sid": service,
        "num_media": "0",
        "num_segments": segments.to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": sid,
        "status": status,
        "subresource_uris": {"media": format!("/2010-04-01/Accounts/{account}/Messages/{sid}/Media.json")},
        "to": to,
        "uri": format!("/2010-04-01/Accounts/{account}/Messages/{sid}.json"),
    }))
}

fn create_call(account: &str, form: &HashMap<String, String>) -> Result<Value, Resp> {
    let Some(to) = get(form, "To") else {
        return Err(error(400, 21201, "No 'To' number is specified"));
    };
    if !e164(to) {
        return Err(error(
            400,
            21211,
            &format!("The 'To' number {to} is not a valid phone number."),
        ));
    }
    let Some(from) = get(form, "From") else {
        return Err(error(400, 21213, "No 'From' number is specified"));
    };
    if !e164(from) {
        return Err(error(
            400,
            21212,
            &format!("The 'From' number {from} is not a valid phone number, shortcode, or alphanumeric sender ID."),
        ));
    }
    let twiml = get(form, "Twiml");
    let url = get(form, "Url");
    if twiml.is_none() && url.is_none() && get(form, "ApplicationSid").is_none() {
        return Err(error(
            400,
            21205,
            "Either Url, Twiml or ApplicationSid is required.",
        ));
    }
    if let Some(u) = url.filter(|u| url::Url::parse(u).is_err()) {
        return Err(error(400, 21205, &format!("Url is not a valid URL: {u}")));
    }
    if let Some(t) = twiml.filter(|t| t.chars().count() > 4000) {
        return Err(error(
            400,
            13299,
            &format!(
                "Twiml is {} characters; the limit is 4000.",
                t.chars().count()
            ),
        ));
    }
    let sid = util::twilio_sid("CA");
    let now = util::rfc2822(sfvapi::now_millis());
    Ok(json!({
        "account_sid": account,
        "annotation": null,
        "answered_by": null,
        "api_version": "2010-04-01",
        "caller_name": null,
        "date_created": now,
        "date_updated": now,
        "direction": "outbound-api",
        "duration": null,
        "end_time": null,
        "forwarded_from": null,
        "from": from,
        "from_formatted": from,
        "group_sid": null,
        "parent_call_sid": null,
        "phone_number_sid": null,
        "price": null,
        "price_unit": "USD",
        "sid": sid,
        "start_time": null,
        "status": "queued",
        "subresource_uris": {},
        "to": to,
        "to_formatted": to,
        "trunk_sid": null,
        "uri": format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json"),
        "queue_time": "0",
    }))
}

/// `GET /2010-04-01/Accounts/{AccountSid}.json` → 200, the Account resource
/// (<https://www.twilio.com/docs/iam/api/account#fetch-an-account-resource>): `sid`,
/// `friendly_name`, `status` (`active`), `type`; 401 code 20003 for wrong credentials, 404 code
/// 20404 for another account. What `sfvapi-admin doctor` checks the credentials with.
fn fetch_account(app: &App, req: &Req, account_json: &str) -> Resp {
    let cfg = &app.config.twilio;
    let not_found = || {
        error(
            404,
            20404,
            &format!("The requested resource {} was not found", req.path),
        )
    };
    let Some(account) = account_json.strip_suffix(".json") else {
        return not_found();
    };
    if !basic_auth_ok(req, &cfg.account_sid, &cfg.auth_token) {
        return error(401, 20003, "Authenticate");
    }
    if account != cfg.account_sid {
        return not_found();
    }
    if req.method != http::Method::GET {
        return error(405, 20004, "Method not allowed");
    }
    Resp::json(
        200,
        &json!({
            "sid": account,
            "friendly_name": "sfvapi sandbox",
            "status": "active",
            "type": "Full",
            "uri": format!("/2010-04-01/Accounts/{account}.json"),
        }),
    )
}
