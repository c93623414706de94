//! The fake Salesforce: OAuth token/introspect/revoke and the REST calls sfvapi makes
//! (SOQL query of a Contact or Case, sObject reads, Case / Contact field updates, Task create /
//! upsert by external id, CaseComment create).
//!
//! Every behaviour names the Salesforce document it follows, next to the code. The main ones:
//! - OAuth token endpoint and its answer (no `expires_in`: the lifetime is the org's session
//!   timeout): <https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_refresh_token_flow.htm&type=5>;
//!   JWT bearer flow: <https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_jwt_flow.htm&type=5>;
//!   OAuth errors: <https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_flow_errors.htm&type=5>.
//! - REST error bodies `[{"message","errorCode","fields"?}]` and status codes (REST API Developer
//!   Guide, "Status Codes and Error Responses"):
//!   <https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm>;
//!   `INVALID_SESSION_ID` 401 and `REQUEST_LIMIT_EXCEEDED` 403 as in DESIGN.md's checked facts.
//! - Query: <https://developer.salesforce.com/docs/platform/api-rest/guide/resources-query.html>.
//! - Upsert by external id (201 `created:true`, 200 `created:false` from API 46.0, 300 on several
//!   matches): <https://developer.salesforce.com/docs/platform/api-rest/guide/dome-upsert.html>.
//! - Record update (`PATCH /sobjects/{Object}/{id}` → 204, no body): "Update a Record",
//!   <https://developer.salesforce.com/docs/platform/api-rest/guide/dome-update-fields.html>, and
//!   "If a field in the request body doesn't exist in the target object, the request fails with an
//!   error" (<https://developer.salesforce.com/docs/marketing/marketing-cloud-growth/guide/mc-manage-objects-update-rest.html>).
//! - Field properties (Task.TaskSubtype is Create but not Update; CaseComment.CommentBody is 4,000
//!   bytes): the Object Reference,
//!   <https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_task.htm>.
//! - SOSL phone search (`GET /search?q=FIND {…} IN PHONE FIELDS RETURNING Contact(…)`) and the
//!   open-Case query of an inbound caller: `search` (below), which cites its documents.
//! - Users (`GET /sobjects/User/{id}`, a Case owner's phone) and Salesforce Files
//!   (`ContentVersion`, `ContentDocumentLink`: a call's whole transcript): `files` (below), which
//!   cites its documents.

use std::collections::{HashMap, HashSet};

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::config::SalesforceConfig;
use crate::{lock, util, App, Req, Resp};

mod files;
mod search;
pub(crate) mod tooling;

pub(crate) use files::files_json;

const ORG_ID: &str = "00D5e000000SbXqEAK";
const USER_ID: &str = "0055e000001SbXqAAK";

/// A forced failure for the next `remaining` calls.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct FailNext {
    pub status: u16,
    pub remaining: u32,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct TokenFailure {
    pub error: String,
    pub remaining: u32,
}

struct Token {
    issued_at_ms: i64,
    scope: String,
}

struct Task {
    id: String,
    fields: Map<String, Value>,
}

pub(crate) struct State {
    tokens: HashMap<String, Token>,
    revoked_refresh_tokens: HashSet<String>,
    used_codes: HashSet<String>,
    pub fail_next: Option<FailNext>,
    pub token_error: Option<TokenFailure>,
    pub api_usage: u64,
    /// The next N REST calls answer only after `hang` (a slow Salesforce; the answer itself is
    /// the normal one).
    pub hang_next: u32,
    pub hang: std::time::Duration,
    contacts: Vec<Value>,
    cases: Vec<Value>,
    /// External id value → Task.
    tasks: HashMap<String, Task>,
    users: Vec<Value>,
    /// Salesforce Files: `ContentVersion`s and their `ContentDocumentLink`s (`files`).
    versions: Vec<files::Version>,
    links: Vec<files::Link>,
    next_record: u64,
    /// Whether the describe of Task says the external-id field is `unique` (as created by
    /// `salesforce/`; `false` shows `sfvapi-admin doctor` a field made without "Unique").
    pub task_external_id_unique: bool,
    /// Event Relay's Tooling records and feedback (`tooling`).
    pub tooling: tooling::Tooling,
}

impl State {
    pub fn new(_config: &SalesforceConfig) -> Self {
        Self {
            tokens: HashMap::new(),
            revoked_refresh_tokens: HashSet::new(),
            used_codes: HashSet::new(),
            fail_next: None,
            token_error: None,
            api_usage: 0,
            hang_next: 0,
            hang: std::time::Duration::from_secs(10),
            contacts: seed_contacts(),
            cases: seed_cases(),
            tasks: HashMap::new(),
            users: files::seed_users(),
            versions: Vec::new(),
            links: Vec::new(),
            next_record: 1,
            task_external_id_unique: true,
            tooling: tooling::Tooling::default(),
        }
    }

    /// Back to the startup switches; records, tokens and tasks are kept.
    pub fn reset_switches(&mut self) {
        self.fail_next = None;
        self.token_error = None;
        self.hang_next = 0;
        self.task_external_id_unique = true;
    }

    pub fn revoke_all_tokens(&mut self) {
        self.tokens.clear();
    }

    pub fn switches(&self) -> Value {
        json!({
            "fail_next": self.fail_next,
            "token_error": self.token_error,
            "api_usage": self.api_usage,
            "hang_next": self.hang_next,
            "hang_ms": self.hang.as_millis() as u64,
            "active_tokens": self.tokens.len(),
            "tasks": self.tasks.len(),
            "files": self.versions.len(),
            "task_external_id_unique": self.task_external_id_unique,
        })
    }

    fn next_id(&mut self, key_prefix: &str) -> String {
        self.next_record += 1;
        util::salesforce_id(key_prefix, self.next_record)
    }
}

/// The seeded records: (a) Ada, callable and high value; (b) a DoNotCall contact; (c) a contact
/// whose phone is not E.164; (d) a low-revenue contact reachable only on MobilePhone.
fn seed_contacts() -> Vec<Value> {
    let contact = |id: &str,
                   name: &str,
                   phone: Value,
                   mobile: Value,
                   email: &str,
                   dnc: bool,
                   status: &str,
                   lang: &str,
                   revenue: f64| {
        json!({
            "attributes": {"type": "Contact", "url": format!("/services/data/v62.0/sobjects/Contact/{id}")},
            "Id": id,
            "Name": name,
            "Phone": phone,
            "MobilePhone": mobile,
            // Contact's other phone fields (Contact object reference); null unless set below.
            "HomePhone": Value::Null,
            "OtherPhone": Value::Null,
            "AssistantPhone": Value::Null,
            "Email": email,
            "DoNotCall": dnc,
            "Account_Status__c": status,
            "Last_Contact_Date__c": "2026-11-01",
            "Preferred_Language__c": lang,
            "Account": {"attributes": {"type": "Account"}, "AnnualRevenue": revenue},
            // Where the demo's routing document writes a call's outcome (docs/routing.md); empty
            // until then.
            "Last_Call_Outcome__c": Value::Null,
            // The calling policy's consent checkbox and time-zone field (docs/calling-policy.md;
            // salesforce/force-app/main/default/objects/Contact/fields/): consent given
            // by the callable contacts, none by Alan and Mary; no zone unless set below.
            "Voice_Consent__c": !matches!(name, "Alan Turing" | "Mary Jackson"),
            "Time_Zone__c": Value::Null,
        })
    };
    let mut contacts = vec![
        contact(
            "0035e00000XyZ12AAF",
            "Ada Lovelace",
            json!("+14155550123"),
            Value::Null,
            "ada@example.com",
            false,
            "Past Due",
            "en",
            250_000.0,
        ),
        contact(
            "0035e00000DnCa1AAF",
            "Grace Hopper",
            json!("+14155550124"),
            Value::Null,
            "grace@example.com",
            true,
            "Active",
            "en",
            180_000.0,
        ),
        contact(
            "0035e00000BadPhAAJ",
            "Alan Turing",
            json!("555-0199"),
            json!("12345"),
            "alan@example.com",
            false,
            "Active",
            "en",
            90_000.0,
        ),
        contact(
            "0035e00000LowRvAAJ",
            "Charles Babbage",
            Value::Null,
            json!("+447700900123"),
            "charles@example.com",
            false,
            "Active",
            "en",
            50_000.0,
        ),
    ];
    // For inbound calls (the phone search): a number stored as a US user types it, with an
    // assistant on another number; and a family phone shared by two Contacts, stored in two
    // formats.
    let mut katherine = contact(
        "0035e00000KJohnAAD",
        "Katherine Johnson",
        json!("(415) 555-0142"),
        Value::Null,
        "katherine@example.com",
        false,
        "Active",
        "en",
        120_000.0,
    );
    katherine["AssistantPhone"] = json!("+1 415 555 0188");
    let mut mary = contact(
        "0035e00000MJackAAD",
        "Mary Jackson",
        Value::Null,
        json!("+14155550160"),
        "mary@example.com",
        false,
        "Active",
        "en",
        60_000.0,
    );
    mary["HomePhone"] = json!("+1 415-555-0177");
    let dorothy = contact(
        "0035e00000DVaugAAD",
        "Dorothy Vaughan",
        json!("(415) 555-0177"),
        Value::Null,
        "dorothy@example.com",
        false,
        "Active",
        "en",
        70_000.0,
    );
    contacts.extend([katherine, mary, dorothy]);
    contacts
}

fn seed_cases() -> Vec<Value> {
    let case = |id: &str,
                number: &str,
                subject: &str,
                status: &str,
                priority: &str,
                contact: &str| {
        json!({
            "attributes": {"type": "Case", "url": format!("/services/data/v62.0/sobjects/Case/{id}")},
            "Id": id,
            "CaseNumber": number,
            "Subject": subject,
            "Status": status,
            "Priority": priority,
            "ContactId": contact,
            // Case.OwnerId: a User (005) or a queue (00G); a hand-off dials the User's phone.
            "OwnerId": files::CASE_OWNER,
            // Standard fields an org leaves empty come back as null, not absent.
            "Description": Value::Null,
            // Case.IsClosed is set by Salesforce from the Status (Case object reference).
            "IsClosed": status == "Closed",
            "CreatedDate": "2026-11-20T09:00:00.000+0000",
            // The demo routing document's write-back fields (Text and Checkbox custom fields).
            "Call_Outcome__c": Value::Null,
            "Callback_Requested__c": false,
        })
    };
    vec![
        case(
            "5005e00000AbCdEAAV",
            "00001026",
            "Payment failed twice",
            "Escalated",
            "High",
            "0035e00000XyZ12AAF",
        ),
        // Owned by a queue: a hand-off goes to the rule's fallback.
        {
            let mut c = case(
                "5005e00000DnCa1AAF",
                "00001027",
                "Do not call me about my order",
                "New",
                "Medium",
                "0035e00000DnCa1AAF",
            );
            c["OwnerId"] = json!(files::QUEUE);
            c
        },
        case(
            "5005e00000BadPhAAJ",
            "00001028",
            "Cannot log in",
            "New",
            "High",
            "0035e00000BadPhAAJ",
        ),
        case(
            "5005e00000KJopnAAD",
            "00001031",
            "Invoice shows the wrong address",
            "Working",
            "Medium",
            "0035e00000KJohnAAD",
        ),
        // Newer, but closed: the open one above is her case.
        {
            let mut c = case(
                "5005e00000KJclsAAD",
                "00001035",
                "Password reset",
                "Closed",
                "Low",
                "0035e00000KJohnAAD",
            );
            c["CreatedDate"] = json!("2026-11-25T09:00:00.000+0000");
            c
        },
    ]
}

pub(crate) fn handle(app: &App, req: &Req) -> Resp {
    let path = req.path.trim_end_matches('/');
    match path {
        "/services/oauth2/token" => only_post(req, |req| token(app, req)),
        "/services/oauth2/introspect" => only_post(req, |req| introspect(app, req)),
        "/services/oauth2/revoke" => only_post(req, |req| revoke(app, req)),
        p if p.starts_with("/services/data/") => rest(app, req),
        _ => not_found(),
    }
}

fn only_post(req: &Req, f: impl FnOnce(&Req) -> Resp) -> Resp {
    if req.method == http::Method::POST {
        f(req)
    } else {
        Resp::json(
            405,
            &json!({"error": "invalid_request", "error_description": "must use HTTP POST"}),
        )
    }
}

fn oauth_error(status: u16, error: &str, description: &str) -> Resp {
    Resp::json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

/// Token errors and their descriptions as Salesforce's OAuth error responses list them
/// (https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_flow_errors.htm&type=5;
/// DESIGN.md "Token errors", checked): 400 for grant problems, 401 `invalid_client`.
fn token_failure_description(error: &str) -> Option<(u16, &'static str)> {
    match error {
        "invalid_grant" => Some((400, "expired access/refresh token")),
        "inactive_user" => Some((400, "user is inactive")),
        "inactive_org" => Some((400, "organization is locked, closed or suspended")),
        "rate_limit_exceeded" => Some((400, "ip/client rate limit exceeded")),
        "invalid_client" => Some((401, "invalid client credentials")),
        _ => None,
    }
}

pub(crate) fn is_token_error(error: &str) -> bool {
    token_failure_description(error).is_some()
}

/// Client credentials from the form or from HTTP Basic (both are accepted by Salesforce).
fn client_credentials(
    req: &Req,
    form: &HashMap<String, String>,
) -> (Option<String>, Option<String>) {
    if let Some(basic) = req
        .header("authorization")
        .and_then(|v| v.trim().strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
    {
        if let Some((id, secret)) = basic.split_once(':') {
            return (Some(id.to_owned()), Some(secret.to_owned()));
        }
    }
    (
        form.get("client_id").cloned(),
        form.get("client_secret").cloned(),
    )
}

/// `POST /services/oauth2/token` (refresh_token, client_credentials, authorization_code, JWT
/// bearer). The answer has `access_token`, `instance_url`, `id`, `token_type`, `issued_at` (ms, as
/// a string), `signature`, `scope` and no `expires_in`; `refresh_token` only from the code flow
/// (https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_refresh_token_flow.htm&type=5,
/// DESIGN.md "OAuth token endpoint", checked).
fn token(app: &App, req: &Req) -> Resp {
    let cfg = &app.config.salesforce;
    let form = util::parse_form(&req.body);
    let mut st = lock(&app.sf);
    if let Some(f) = st.token_error.as_mut() {
        if f.remaining > 0 {
            f.remaining -= 1;
            let error = f.error.clone();
            if f.remaining == 0 {
                st.token_error = None;
            }
            let (status, description) =
                token_failure_description(&error).unwrap_or((400, "unknown error"));
            return oauth_error(status, &error, description);
        }
    }
    let grant = form.get("grant_type").map(String::as_str).unwrap_or("");
    let (client_id, client_secret) = client_credentials(req, &form);
    let id_ok = client_id.as_deref() == Some(cfg.client_id.as_str());
    let secret_ok = client_secret.as_deref() == Some(cfg.client_secret.as_str());
    let bad_client = || oauth_error(401, "invalid_client", "invalid client credentials");
    let mut refresh_token = None;
    match grant {
        "refresh_token" => {
            // A connected app may waive the secret for this flow; a wrong one is still refused.
            if !id_ok || (client_secret.is_some() && !secret_ok) {
                return bad_client();
            }
            let rt = form.get("refresh_token").map(String::as_str).unwrap_or("");
            if rt.is_empty() || st.revoked_refresh_tokens.contains(rt) {
                return oauth_error(400, "invalid_grant", "expired access/refresh token");
            }
        }
        "client_credentials" => {
            if !id_ok || !secret_ok {
                return bad_client();
            }
        }
        "authorization_code" => {
            if !id_ok || !secret_ok {
                return bad_client();
            }
            let code = form.get("code").map(String::as_str).unwrap_or("");
            if code.is_empty() || !st.used_codes.insert(code.to_owned()) {
                return oauth_error(400, "invalid_grant", "invalid authorization code");
            }
            if form.get("redirect_uri").is_none_or(|r| r.is_empty()) {
                return oauth_error(
                    400,
                    "redirect_uri_mismatch",
                    "redirect_uri must match configuration",
                );
            }
            refresh_token = Some(format!("5Aep861{}", util::alnum(80)));
        }
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            if let Err(resp) = check_assertion(cfg, form.get("assertion").map(String::as_str)) {
                return resp;
            }
        }
        "" => return oauth_error(400, "unsupported_grant_type", "grant type not supported"),
        _ => return oauth_error(400, "unsupported_grant_type", "grant type not supported"),
    }
    let issued_at = sfvapi::now_millis();
    let access_token = format!("{}!AQ0AQ{}", &ORG_ID[..15], util::alnum(96));
    let scope = "refresh_token api".to_owned();
    st.tokens.insert(
        access_token.clone(),
        Token {
            issued_at_ms: issued_at,
            scope: scope.clone(),
        },
    );
    drop(st);
    let id = format!("{}/id/{ORG_ID}/{USER_ID}", app.urls.salesforce);
    // Salesforce's `signature`: base64 HMAC-SHA256 of id + issued_at keyed by the client secret.
    let signature =
        base64::engine::general_purpose::STANDARD.encode(sfvapi::signature::hmac_parts(
            sfvapi::signature::Algorithm::Sha256,
            cfg.client_secret.as_bytes(),
            &[id.as_bytes(), issued_at.to_string().as_bytes()],
        ));
    let mut body = json!({
        "access_token": access_token,
        "signature": signature,
        "scope": scope,
        "instance_url": app.urls.salesforce,
        "id": id,
        "token_type": "Bearer",
        "issued_at": issued_at.to_string(),
    });
    if let (Some(rt), Some(obj)) = (refresh_token, body.as_object_mut()) {
        obj.insert("refresh_token".into(), Value::String(rt));
    }
    Resp::json(200, &body)
}

/// The JWT bearer flow's checks on the assertion's claims. The RS256 signature is not verified:
/// the sandbox has no certificate to check it against.
fn check_assertion(cfg: &SalesforceConfig, assertion: Option<&str>) -> Result<(), Resp> {
    let invalid = |d: &str| Err(oauth_error(400, "invalid_grant", d));
    let Some(assertion) = assertion.filter(|a| !a.is_empty()) else {
        return invalid("invalid assertion");
    };
    let parts: Vec<&str> = assertion.split('.').collect();
    if parts.len() != 3 {
        return invalid("invalid assertion");
    }
    let Some(claims) = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1].trim_end_matches('='))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    else {
        return invalid("invalid assertion");
    };
    if claims.get("iss").and_then(Value::as_str) != Some(cfg.client_id.as_str()) {
        return Err(oauth_error(
            400,
            "invalid_client_id",
            "client identifier invalid",
        ));
    }
    if claims
        .get("sub")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return invalid("invalid assertion");
    }
    // `aud` is https://login.salesforce.com, https://test.salesforce.com or an Experience Cloud
    // site URL, never the token endpoint's My Domain; a wrong one answers
    // 400 {"error":"invalid_grant","error_description":"audience is invalid"}
    // (https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_jwt_flow.htm&type=5,
    // https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_flow_errors.htm&type=5).
    if claims.get("aud").and_then(Value::as_str) != Some(cfg.jwt_audience.trim_end_matches('/'))
        && claims.get("aud").and_then(Value::as_str) != Some(cfg.jwt_audience.as_str())
    {
        return invalid("audience is invalid");
    }
    let now = sfvapi::now_secs();
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp >= now => Ok(()),
        _ => invalid("expired authorization code"),
    }
}

/// `POST /services/oauth2/introspect` (RFC 7662 shape: `active`, `exp`, …; an unknown or expired
/// token is `{"active": false}`), as DESIGN.md's checked OAuth facts describe it.
fn introspect(app: &App, req: &Req) -> Resp {
    let cfg = &app.config.salesforce;
    let form = util::parse_form(&req.body);
    let (id, secret) = client_credentials(req, &form);
    if id.as_deref() != Some(cfg.client_id.as_str())
        || secret.as_deref() != Some(cfg.client_secret.as_str())
    {
        return oauth_error(401, "invalid_client", "invalid client credentials");
    }
    let token = form.get("token").map(String::as_str).unwrap_or("");
    let st = lock(&app.sf);
    let now = sfvapi::now_millis();
    match st.tokens.get(token) {
        Some(t) if !expired(t, cfg, now) => {
            let iat = t.issued_at_ms / 1000;
            Resp::json(
                200,
                &json!({
                    "active": true,
                    "scope": t.scope,
                    "client_id": cfg.client_id,
                    "username": cfg.username,
                    "sub": format!("{}/id/{ORG_ID}/{USER_ID}", app.urls.salesforce),
                    "token_type": "access_token",
                    "exp": iat + cfg.session_timeout_secs as i64,
                    "iat": iat,
                    "nbf": iat,
                }),
            )
        }
        _ => Resp::json(200, &json!({"active": false})),
    }
}

/// `POST /services/oauth2/revoke`: 200 and the token (access or refresh) stops working
/// (RFC 7009 semantics, as Salesforce documents its revoke endpoint).
fn revoke(app: &App, req: &Req) -> Resp {
    let form = util::parse_form(&req.body);
    let token = form.get("token").cloned().unwrap_or_default();
    let mut st = lock(&app.sf);
    if st.tokens.remove(&token).is_none() {
        st.revoked_refresh_tokens.insert(token);
    }
    Resp::empty(200)
}

fn expired(t: &Token, cfg: &SalesforceConfig, now_ms: i64) -> bool {
    now_ms > t.issued_at_ms + (cfg.session_timeout_secs as i64) * 1000
}

pub(super) fn sf_error(status: u16, code: &str, message: &str) -> Resp {
    Resp::json(status, &json!([{"message": message, "errorCode": code}]))
}

pub(super) fn not_found() -> Resp {
    sf_error(404, "NOT_FOUND", "The requested resource does not exist")
}

pub(super) fn method_not_allowed(method: &http::Method, allowed: &str) -> Resp {
    sf_error(
        405,
        "METHOD_NOT_ALLOWED",
        &format!("HTTP Method '{method}' not allowed. Allowed are {allowed}"),
    )
}

/// The failure a `fail_next` switch forces: 401 `INVALID_SESSION_ID` "Session expired or invalid"
/// and 403 `REQUEST_LIMIT_EXCEEDED` as DESIGN.md checked them, 503 `SERVER_UNAVAILABLE`, else
/// `UNKNOWN_EXCEPTION` (REST status codes:
/// https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm).
fn forced_failure(status: u16) -> Resp {
    match status {
        401 => sf_error(401, "INVALID_SESSION_ID", "Session expired or invalid"),
        403 => sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
        503 => sf_error(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable, try again later"),
        s => sf_error(
            s,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please include this ErrorId if you contact support: 1234567890-12345 (-1234567890)",
        ),
    }
}

fn rest(app: &App, req: &Req) -> Resp {
    let cfg = &app.config.salesforce;
    let mut st = lock(&app.sf);
    st.api_usage += 1;
    // Sforce-Limit-Info: `;`-separated parts, the per-app quota after the org's usage
    // (https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm).
    let usage = format!(
        "api-usage={}/{}; per-app-api-usage={}/{}(appName=sfvapi)",
        st.api_usage, cfg.api_limit, st.api_usage, cfg.api_limit
    );
    let resp = rest_inner(app, &mut st, req).with_header("sforce-limit-info", usage);
    if st.hang_next > 0 {
        st.hang_next -= 1;
        return resp.after(st.hang);
    }
    resp
}

fn rest_inner(app: &App, st: &mut State, req: &Req) -> Resp {
    let cfg = &app.config.salesforce;
    if let Some(f) = st.fail_next.as_mut() {
        if f.remaining > 0 {
            f.remaining -= 1;
            let status = f.status;
            if f.remaining == 0 {
                st.fail_next = None;
            }
            return forced_failure(status);
        }
    }
    let now = sfvapi::now_millis();
    let authorized = req
        .bearer()
        .and_then(|t| st.tokens.get(t))
        .is_some_and(|t| !expired(t, cfg, now));
    if !authorized {
        return forced_failure(401);
    }
    if st.api_usage > cfg.api_limit {
        return forced_failure(403);
    }
    let rest = req.path.strip_prefix("/services/data/").unwrap_or("");
    let segs: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let Some((version, segs)) = segs.split_first() else {
        return not_found();
    };
    if !is_api_version(version) {
        return not_found();
    }
    let method = &req.method;
    match segs {
        ["tooling", rest @ ..] => {
            let (resp, partner) = tooling::handle(&mut st.tooling, &cfg.org_id, rest, req);
            if let (Some(p), Some(url)) = (partner, cfg.eventbridge_url.clone()) {
                tokio::spawn(create_partner_source(url, p));
            }
            resp
        }
        ["query"] => match *method {
            http::Method::GET => query(st, req),
            _ => method_not_allowed(method, "GET,HEAD"),
        },
        ["search"] => match *method {
            http::Method::GET => search::sosl(st, req),
            _ => method_not_allowed(method, "GET,HEAD"),
        },
        ["sobjects", object, "describe"] => match *method {
            http::Method::GET => describe(cfg, st, object),
            _ => method_not_allowed(method, "GET,HEAD"),
        },
        ["sobjects", "Contact", id] => match *method {
            http::Method::GET => get_record(&st.contacts, "Contact", "003", id, req),
            http::Method::PATCH => update_record(&mut st.contacts, "Contact", "003", id, req),
            _ => method_not_allowed(method, "GET,HEAD,PATCH,DELETE"),
        },
        ["sobjects", "Case", id] => match *method {
            http::Method::GET => get_record(&st.cases, "Case", "500", id, req),
            http::Method::PATCH => update_record(&mut st.cases, "Case", "500", id, req),
            _ => method_not_allowed(method, "GET,HEAD,PATCH,DELETE"),
        },
        ["sobjects", "Task", field, value] => match *method {
            http::Method::PATCH => upsert_task(cfg, st, field, value, req),
            http::Method::GET => get_task_by_external_id(cfg, st, field, value),
            _ => method_not_allowed(method, "GET,HEAD,PATCH,DELETE,POST"),
        },
        ["sobjects", "Task"] => match *method {
            http::Method::POST => create_task(cfg, st, req),
            _ => method_not_allowed(method, "GET,HEAD,POST"),
        },
        ["sobjects", "Task", id] => match *method {
            http::Method::GET => {
                let found = st.tasks.values().find(|t| same_id(&t.id, id));
                match found {
                    Some(t) => Resp::json(200, &task_json(t)),
                    None => not_found(),
                }
            }
            _ => method_not_allowed(method, "GET,HEAD,PATCH,DELETE"),
        },
        ["sobjects", "User", id] => match *method {
            http::Method::GET => files::get_user(st, id, req),
            _ => method_not_allowed(method, "GET,HEAD,PATCH"),
        },
        ["sobjects", "ContentVersion"] => match *method {
            http::Method::POST => files::create_version(st, req),
            _ => method_not_allowed(method, "GET,HEAD,POST"),
        },
        ["sobjects", "ContentVersion", id] => match *method {
            http::Method::GET => files::get_version(st, id, req),
            _ => method_not_allowed(method, "GET,HEAD,PATCH"),
        },
        ["sobjects", "ContentDocumentLink"] => match *method {
            http::Method::POST => files::create_link(st, req),
            _ => method_not_allowed(method, "GET,HEAD,POST"),
        },
        ["sobjects", "CaseComment"] => match *method {
            http::Method::POST => create_case_comment(st, req),
            _ => method_not_allowed(method, "GET,HEAD,POST"),
        },
        _ => not_found(),
    }
}

/// What Salesforce does after creating an event relay: create the pending partner event source
/// in the named credential's account and region (EventBridge `CreatePartnerEventSource`, the
/// partner's API: <https://docs.aws.amazon.com/eventbridge/latest/onboarding/partner_apis.html>),
/// here against moto, which serves it. Signed only as far as moto reads it (the region from the
/// credential scope).
async fn create_partner_source(url: String, p: tooling::PartnerSource) {
    let result = reqwest::Client::new()
        .post(url)
        .header("x-amz-target", "AWSEvents.CreatePartnerEventSource")
        .header("content-type", "application/x-amz-json-1.1")
        .header(
            "authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=sandbox/20261206/{}/events/aws4_request, SignedHeaders=host, Signature=0",
                p.region
            ),
        )
        .body(json!({"Name": p.name, "Account": p.account}).to_string())
        .send()
        .await;
    match result {
        Ok(r) if r.status().is_success() => {
            tracing::info!(source = %p.name, "sandbox: partner event source created in EventBridge")
        }
        Ok(r) => tracing::warn!(status = %r.status(), "sandbox: CreatePartnerEventSource refused"),
        Err(e) => tracing::warn!(error = %e, "sandbox: CreatePartnerEventSource failed"),
    }
}

fn is_api_version(v: &str) -> bool {
    v.strip_prefix('v')
        .and_then(|n| n.split_once('.'))
        .is_some_and(|(a, b)| {
            !a.is_empty() && !b.is_empty() && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit())
        })
}

/// Salesforce ids compare on their 15 case-sensitive characters; the suffix only adds case-safety.
fn same_id(a: &str, b: &str) -> bool {
    a.len() >= 15 && b.len() >= 15 && a[..15] == b[..15]
}

/// How Salesforce answers a record URL whose id segment is not an id of `object`: a segment
/// that is not id-shaped is read as an external id field name (404 NOT_FOUND), an id of another
/// object (key prefix) is a 400 MALFORMED_ID.
fn refuse_record_id(object: &str, key_prefix: &str, id: &str) -> Option<Resp> {
    let id_shaped =
        (id.len() == 15 || id.len() == 18) && id.bytes().all(|b| b.is_ascii_alphanumeric());
    if !id_shaped {
        return Some(sf_error(
            404,
            "NOT_FOUND",
            &format!("Provided external ID field does not exist or is not accessible: {id}"),
        ));
    }
    if !id.starts_with(key_prefix) {
        return Some(sf_error(
            400,
            "MALFORMED_ID",
            &format!("{object} ID: id value of incorrect type: {id}"),
        ));
    }
    None
}

fn get_record(records: &[Value], object: &str, key_prefix: &str, id: &str, req: &Req) -> Resp {
    if let Some(refused) = refuse_record_id(object, key_prefix, id) {
        return refused;
    }
    let Some(record) = records.iter().find(|r| {
        r.get("Id")
            .and_then(Value::as_str)
            .is_some_and(|rid| same_id(rid, id))
    }) else {
        return not_found();
    };
    match req.query_param("fields") {
        None => Resp::json(200, record),
        Some(fields) => {
            // `fields` takes the object's own fields; "If you specify fields that don't exist …, a
            // 400 error response is returned"
            // (https://developer.salesforce.com/docs/platform/api-rest/guide/dome-get-field-values.html).
            // Relationship fields (`Account.X`) are a SOQL feature, so they get the same 400.
            if let Some(rel) = fields.split(',').map(str::trim).find(|f| f.contains('.')) {
                return invalid_field(object, rel);
            }
            match project(record, object, &fields) {
                Ok(v) => Resp::json(200, &v),
                Err(resp) => resp,
            }
        }
    }
}

/// Fields of the seeded records that Salesforce computes itself (`Id`, auto numbers, audit
/// fields, relationships): an update that sets one is refused.
const READ_ONLY_FIELDS: &[&str] = &[
    "Id",
    "CaseNumber",
    "Name",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "Account",
];

/// `PATCH /sobjects/{Object}/{id}`: set fields on one record, all or nothing (Salesforce applies
/// a single-record update as one DML operation). 204 and no body on success; an unknown field
/// is 400 INVALID_FIELD naming no field ("No such column …", as for reads), a field Salesforce
/// computes is 400 INVALID_FIELD_FOR_INSERT_UPDATE naming it (as for the Task's create-only
/// field above); a body that is not a JSON object is 400 JSON_PARSER_ERROR.
fn update_record(
    records: &mut [Value],
    object: &str,
    key_prefix: &str,
    id: &str,
    req: &Req,
) -> Resp {
    if let Some(refused) = refuse_record_id(object, key_prefix, id) {
        return refused;
    }
    let fields = match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return sf_error(
                400,
                "JSON_PARSER_ERROR",
                &format!("Cannot deserialize instance of {object} from a non-object value"),
            )
        }
        Err(e) => {
            return sf_error(
                400,
                "JSON_PARSER_ERROR",
                &format!("Unexpected character: {e}"),
            )
        }
    };
    let Some(record) = records.iter_mut().find(|r| {
        r.get("Id")
            .and_then(Value::as_str)
            .is_some_and(|rid| same_id(rid, id))
    }) else {
        return not_found();
    };
    let Some(obj) = record.as_object_mut() else {
        return not_found();
    };
    let mut updates = Vec::new();
    for (name, value) in fields {
        if READ_ONLY_FIELDS
            .iter()
            .any(|f| f.eq_ignore_ascii_case(&name))
        {
            return Resp::json(
                400,
                &json!([{
                    "message": format!("Unable to create/update fields: {name}. Please check the security settings of this field and verify that it is read/write for your profile or permission set."),
                    "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
                    "fields": [name],
                }]),
            );
        }
        let Some(key) = obj
            .keys()
            .find(|k| k.eq_ignore_ascii_case(&name) && k.as_str() != "attributes")
            .cloned()
        else {
            return Resp::json(
                400,
                &json!([{
                    "message": format!("No such column '{name}' on sobject of type {object}"),
                    "errorCode": "INVALID_FIELD",
                }]),
            );
        };
        updates.push((key, value));
    }
    for (k, v) in updates {
        obj.insert(k, v);
    }
    Resp::empty(204)
}

/// Salesforce's INVALID_FIELD answer for a field the object does not have.
fn invalid_field(object: &str, f: &str) -> Resp {
    sf_error(
        400,
        "INVALID_FIELD",
        &format!(
            "\nNo such column '{f}' on entity '{object}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
        ),
    )
}

fn malformed_query(detail: &str) -> Resp {
    sf_error(400, "MALFORMED_QUERY", detail)
}

/// `GET /query?q=SELECT <fields> FROM Contact|Case WHERE Id = '<id>'`: the one SOQL shape sfvapi
/// sends. Anything else is MALFORMED_QUERY, an unknown field INVALID_FIELD (both 400). The answer
/// is `{"totalSize","done","records":[…]}`, with an empty `records` when nothing matches
/// (https://developer.salesforce.com/docs/platform/api-rest/guide/resources-query.html,
/// https://developer.salesforce.com/docs/platform/api-rest/guide/dome-query.html).
fn query(st: &State, req: &Req) -> Resp {
    let Some(q) = req.query_param("q").filter(|q| !q.trim().is_empty()) else {
        return malformed_query("A query string has to be specified");
    };
    if let Some(resp) = search::open_case_query(st, &q) {
        return resp;
    }
    if let Some(resp) = tooling::answer(&st.tooling, &q, false) {
        return resp;
    }
    let Some(parsed) = parse_soql(&q) else {
        return malformed_query(&format!(
            "\n{q}\n^\nERROR at Row:1:Column:1\nunexpected token: the sandbox understands only SELECT <fields> FROM Contact|Case WHERE Id = '<id>'"
        ));
    };
    let records = match parsed.object {
        "Contact" => &st.contacts,
        _ => &st.cases,
    };
    let found = records.iter().find(|r| {
        r.get("Id")
            .and_then(Value::as_str)
            .is_some_and(|rid| same_id(rid, &parsed.id))
    });
    // Field names are checked even when no record matches, as Salesforce compiles the query first.
    let probe = found
        .cloned()
        .unwrap_or_else(|| records.first().cloned().unwrap_or(Value::Null));
    let projected = match project(&probe, parsed.object, &parsed.fields.join(",")) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let out: Vec<Value> = found.map(|_| projected).into_iter().collect();
    Resp::json(
        200,
        &json!({"totalSize": out.len(), "done": true, "records": out}),
    )
}

struct Soql {
    fields: Vec<String>,
    object: &'static str,
    id: String,
}

/// Parse exactly `SELECT f1, f2 FROM Contact|Case WHERE Id = '<15/18-char id>'` (keywords in any
/// case, as in SOQL).
fn parse_soql(q: &str) -> Option<Soql> {
    let q = q.trim();
    let upper = q.to_ascii_uppercase();
    let rest = upper.strip_prefix("SELECT ")?;
    let from = rest.find(" FROM ")?;
    let fields_raw = &q[7..7 + from];
    let after = q[7 + from + 6..].trim_start();
    let (object_raw, cond) = after.split_once(char::is_whitespace)?;
    let object = match object_raw {
        o if o.eq_ignore_ascii_case("Contact") => "Contact",
        o if o.eq_ignore_ascii_case("Case") => "Case",
        _ => return None,
    };
    let cond = cond.trim();
    let cond_rest = cond
        .get(..5)
        .filter(|w| w.eq_ignore_ascii_case("WHERE"))
        .map(|_| cond[5..].trim_start())?;
    let cond_rest = cond_rest
        .get(..2)
        .filter(|w| w.eq_ignore_ascii_case("Id"))
        .map(|_| cond_rest[2..].trim_start())?;
    let literal = cond_rest.strip_prefix('=')?.trim();
    let id = literal.strip_prefix('\'')?.strip_suffix('\'')?;
    let id_shaped =
        (id.len() == 15 || id.len() == 18) && id.bytes().all(|b| b.is_ascii_alphanumeric());
    if !id_shaped {
        return None;
    }
    let fields: Vec<String> = fields_raw.split(',').map(|f| f.trim().to_owned()).collect();
    if fields.iter().any(|f| {
        f.is_empty()
            || !f
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
    }) {
        return None;
    }
    Some(Soql {
        fields,
        object,
        id: id.to_owned(),
    })
}

/// Keep `attributes`, `Id` and the requested fields (`Account.AnnualRevenue` keeps the nested
/// object). Field names match case-insensitively, as in SOQL; an unknown one is a 400.
fn project(record: &Value, object: &str, fields: &str) -> Result<Value, Resp> {
    let Some(src) = record.as_object() else {
        return Ok(record.clone());
    };
    let find = |obj: &Map<String, Value>, name: &str| -> Option<(String, Value)> {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name) && k.as_str() != "attributes")
            .map(|(k, v)| (k.clone(), v.clone()))
    };
    let invalid = |f: &str| invalid_field(object, f);
    let mut out = Map::new();
    if let Some(a) = src.get("attributes") {
        out.insert("attributes".into(), a.clone());
    }
    for f in fields.split(',').map(str::trim).filter(|f| !f.is_empty()) {
        match f.split_once('.') {
            None => {
                let (k, v) = find(src, f).ok_or_else(|| invalid(f))?;
                out.insert(k, v);
            }
            Some((rel, sub)) => {
                let (rk, rv) = find(src, rel).ok_or_else(|| invalid(f))?;
                match rv {
                    Value::Object(robj) => {
                        let (sk, sv) = find(&robj, sub).ok_or_else(|| invalid(f))?;
                        let entry = out
                            .entry(rk)
                            .or_insert_with(|| json!({"attributes": robj.get("attributes").cloned().unwrap_or(Value::Null)}));
                        if let Some(o) = entry.as_object_mut() {
                            o.insert(sk, sv);
                        }
                    }
                    // A null lookup stays null, as Salesforce returns it.
                    _ => {
                        out.insert(rk, Value::Null);
                    }
                }
            }
        }
    }
    if let Some(id) = src.get("Id") {
        out.entry("Id").or_insert(id.clone());
    }
    Ok(Value::Object(out))
}

/// Field lengths Salesforce enforces on the Task fields sfvapi writes (Task object reference:
/// Description 32,000 characters, Subject and CallObject 255).
const TASK_LIMITS: &[(&str, usize)] = &[
    ("Description", 32_000),
    ("Subject", 255),
    ("CallObject", 255),
];

/// Task fields that have the Create property but not Update in the Task object reference
/// (https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_task.htm).
const TASK_CREATE_ONLY: &[&str] = &["TaskSubtype"];

/// A Task body: a JSON object whose string fields fit their lengths, or Salesforce's 400.
fn task_body(req: &Req) -> Result<Map<String, Value>, Resp> {
    let fields = match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return Err(sf_error(
                400,
                "JSON_PARSER_ERROR",
                "Cannot deserialize instance of Task from a non-object value",
            ))
        }
        Err(e) => {
            return Err(sf_error(
                400,
                "JSON_PARSER_ERROR",
                &format!("Unexpected character: {e}"),
            ))
        }
    };
    for (name, limit) in TASK_LIMITS {
        let len = fields
            .get(*name)
            .and_then(Value::as_str)
            .map(|s| s.chars().count());
        if let Some(len) = len.filter(|l| l > limit) {
            return Err(Resp::json(
                400,
                &json!([{
                    "message": format!("{name}: data value too large: {len} characters (max length={limit})"),
                    "errorCode": "STRING_TOO_LONG",
                    "fields": [name],
                }]),
            ));
        }
    }
    Ok(fields)
}

/// The stored Task whose external id field holds `value`.
fn task_key(value: &str) -> String {
    format!("ext:{value}")
}

/// `POST /sobjects/Task`: create (sObject Basic Information,
/// https://developer.salesforce.com/docs/platform/api-rest/guide/resources-sobject-retrieve.html
/// "To create new records, use the sObject Basic Information … resources"). The external id field
/// is Unique (docs/connect-salesforce.md), so a second Task with the same value is refused with the API's
/// status code DUPLICATE_VALUE (400); the message mirrors Salesforce's usual
/// "duplicate value found: <field> duplicates value on record with id: <id>" (its wording is not
/// re-checked against a doc; sfvapi matches on `errorCode` only).
fn create_task(cfg: &SalesforceConfig, st: &mut State, req: &Req) -> Resp {
    let mut fields = match task_body(req) {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let ext_name = fields
        .keys()
        .find(|k| k.eq_ignore_ascii_case(&cfg.task_external_id_field))
        .cloned();
    let ext_value = ext_name
        .as_ref()
        .and_then(|k| fields.remove(k))
        .and_then(|v| v.as_str().map(str::to_owned))
        .filter(|v| !v.is_empty());
    if let Some(v) = &ext_value {
        if let Some(existing) = st.tasks.get(&task_key(v)) {
            let field = &cfg.task_external_id_field;
            return Resp::json(
                400,
                &json!([{
                    "message": format!("duplicate value found: {field} duplicates value on record with id: {}", existing.id),
                    "errorCode": "DUPLICATE_VALUE",
                    "fields": [field],
                }]),
            );
        }
    }
    let id = st.next_id("00T");
    let key = match &ext_value {
        Some(v) => {
            fields.insert(cfg.task_external_id_field.clone(), Value::String(v.clone()));
            task_key(v)
        }
        None => format!("id:{id}"),
    };
    st.tasks.insert(
        key,
        Task {
            id: id.clone(),
            fields,
        },
    );
    Resp::json(201, &json!({"id": id, "success": true, "errors": []}))
}

/// `PATCH /sobjects/Task/{field}/{value}`: upsert by external id. Creating accepts create-only
/// fields; updating an existing Task with one answers 400 INVALID_FIELD_FOR_INSERT_UPDATE, as
/// Salesforce does for a field that is not updateable.
fn upsert_task(
    cfg: &SalesforceConfig,
    st: &mut State,
    field: &str,
    value: &str,
    req: &Req,
) -> Resp {
    if !field.eq_ignore_ascii_case(&cfg.task_external_id_field) {
        return sf_error(
            404,
            "NOT_FOUND",
            &format!("Provided external ID field does not exist or is not accessible: {field}"),
        );
    }
    let fields = match task_body(req) {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    if let Some(task) = st.tasks.get_mut(&task_key(value)) {
        let refused: Vec<&str> = TASK_CREATE_ONLY
            .iter()
            .copied()
            .filter(|f| fields.keys().any(|k| k.eq_ignore_ascii_case(f)))
            .collect();
        if !refused.is_empty() {
            return Resp::json(
                400,
                &json!([{
                    "message": format!("Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.", refused.join(", ")),
                    "errorCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
                    "fields": refused,
                }]),
            );
        }
        for (k, v) in fields {
            task.fields.insert(k, v);
        }
        return Resp::json(
            200,
            &json!({"id": task.id, "success": true, "errors": [], "created": false}),
        );
    }
    let id = st.next_id("00T");
    let mut all = fields;
    all.insert(
        cfg.task_external_id_field.clone(),
        Value::String(value.to_owned()),
    );
    st.tasks.insert(
        task_key(value),
        Task {
            id: id.clone(),
            fields: all,
        },
    );
    Resp::json(
        201,
        &json!({"id": id, "success": true, "errors": [], "created": true}),
    )
}

fn get_task_by_external_id(cfg: &SalesforceConfig, st: &State, field: &str, value: &str) -> Resp {
    if !field.eq_ignore_ascii_case(&cfg.task_external_id_field) {
        return sf_error(
            404,
            "NOT_FOUND",
            &format!("Provided external ID field does not exist or is not accessible: {field}"),
        );
    }
    match st.tasks.get(&task_key(value)) {
        Some(t) => Resp::json(200, &task_json(t)),
        None => not_found(),
    }
}

fn task_json(t: &Task) -> Value {
    let mut m = t.fields.clone();
    m.insert(
        "attributes".into(),
        json!({"type": "Task", "url": format!("/services/data/v62.0/sobjects/Task/{}", t.id)}),
    );
    m.insert("Id".into(), Value::String(t.id.clone()));
    Value::Object(m)
}

/// `POST /sobjects/CaseComment`: 201 `{"id","success","errors"}`; a missing ParentId is
/// REQUIRED_FIELD_MISSING, an unknown one FIELD_INTEGRITY_EXCEPTION, a CommentBody over 4,000 bytes
/// STRING_TOO_LONG (CaseComment object reference; https://help.salesforce.com/s/articleView?id=000382141&type=1).
fn create_case_comment(st: &mut State, req: &Req) -> Resp {
    let fields = match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(m)) => m,
        Ok(_) | Err(_) => {
            return sf_error(
                400,
                "JSON_PARSER_ERROR",
                "The request body must be a JSON object",
            )
        }
    };
    let parent = fields.get("ParentId").and_then(Value::as_str).unwrap_or("");
    if parent.is_empty() {
        return Resp::json(
            400,
            &json!([{"message": "Required fields are missing: [ParentId]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["ParentId"]}]),
        );
    }
    // CommentBody holds 4,000 bytes, not characters (CaseComment object reference;
    // https://help.salesforce.com/s/articleView?id=000382141&type=1).
    let bytes = fields
        .get("CommentBody")
        .and_then(Value::as_str)
        .map_or(0, str::len);
    if bytes > 4_000 {
        return Resp::json(
            400,
            &json!([{"message": format!("Body: data value too large: {bytes} bytes (max length=4000)"), "errorCode": "STRING_TOO_LONG", "fields": ["CommentBody"]}]),
        );
    }
    let known = st.cases.iter().any(|c| {
        c.get("Id")
            .and_then(Value::as_str)
            .is_some_and(|id| same_id(id, parent))
    });
    if !known {
        return Resp::json(
            400,
            &json!([{"message": format!("Parent ID: id value of incorrect type: {parent}"), "errorCode": "FIELD_INTEGRITY_EXCEPTION", "fields": ["ParentId"]}]),
        );
    }
    let id = st.next_id("00a");
    Resp::json(201, &json!({"id": id, "success": true, "errors": []}))
}

/// Task fields (Task object reference,
/// <https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_task.htm>)
/// with their describe `type`; the configured external-id field is added by [`describe`].
const TASK_DESCRIBE: &[(&str, &str)] = &[
    ("Id", "id"),
    ("Subject", "combobox"),
    ("Status", "picklist"),
    ("Priority", "picklist"),
    ("Description", "textarea"),
    ("WhoId", "reference"),
    ("WhatId", "reference"),
    ("ActivityDate", "date"),
    ("TaskSubtype", "picklist"),
    ("CallDurationInSeconds", "int"),
    ("CallType", "picklist"),
    ("CallDisposition", "string"),
    ("CallObject", "string"),
];

/// A describe `type` for a seeded record's value.
fn describe_type(name: &str, value: &Value) -> &'static str {
    match value {
        _ if name == "Id" => "id",
        _ if name.ends_with("Id") => "reference",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "double",
        Value::Object(_) => "reference",
        _ if name.ends_with("Date") || name.ends_with("Date__c") => "date",
        _ => "string",
    }
}

/// One `fields[]` entry of a describe answer: the properties sfvapi reads (`name`, `type`,
/// `externalId`, `unique`, `updateable`, `createable`, `nillable`).
fn describe_field(name: &str, kind: &str, updateable: bool, external: bool, unique: bool) -> Value {
    json!({
        "name": name,
        "label": name.trim_end_matches("__c").replace('_', " "),
        "type": kind,
        "externalId": external,
        "unique": unique,
        "updateable": updateable,
        "createable": updateable || TASK_CREATE_ONLY.contains(&name),
        "nillable": name != "Id",
        "custom": name.ends_with("__c"),
    })
}

/// `GET /sobjects/{Object}/describe` → 200 with `name` and `fields[]` (REST API "sObject
/// Describe",
/// <https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm>;
/// field properties as the `Field` type of the SOAP describe,
/// <https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_describesobjects_describesobjectresult.htm>).
/// Contact and Case list the seeded records' fields (relationships and computed fields not
/// updateable), Task the object reference's and the external-id field (External ID, Unique
/// unless switched off). Another object is 404 NOT_FOUND, as for an object the org lacks.
fn describe(cfg: &SalesforceConfig, st: &State, object: &str) -> Resp {
    let fields: Vec<Value> = match object {
        "Contact" | "Case" => {
            let records = if object == "Contact" {
                &st.contacts
            } else {
                &st.cases
            };
            let mut names: Vec<(String, &'static str)> = Vec::new();
            for r in records {
                for (k, v) in r.as_object().into_iter().flatten() {
                    if k != "attributes" && !names.iter().any(|(n, _)| n == k) {
                        names.push((k.clone(), describe_type(k, v)));
                    }
                }
            }
            names
                .iter()
                .filter(|(n, _)| n != "Account")
                .map(|(n, t)| {
                    describe_field(n, t, !READ_ONLY_FIELDS.contains(&n.as_str()), false, false)
                })
                .collect()
        }
        "Task" => TASK_DESCRIBE
            .iter()
            .map(|(n, t)| {
                describe_field(
                    n,
                    t,
                    *n != "Id" && !TASK_CREATE_ONLY.contains(n),
                    false,
                    false,
                )
            })
            .chain(std::iter::once(describe_field(
                &cfg.task_external_id_field,
                "string",
                true,
                true,
                st.task_external_id_unique,
            )))
            .collect(),
        _ => return not_found(),
    };
    Resp::json(
        200,
        &json!({"name": object, "label": object, "custom": false, "updateable": true, "fields": fields}),
    )
}
