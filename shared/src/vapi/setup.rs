//! `sfvapi-admin setup vapi`: the Vapi side of a deployment, made from what the repository ships
//! and the stack's secrets, idempotent. Matched by name, each of
//!
//! - the HMAC credential Vapi signs server messages with ([`CREDENTIAL_NAME`], the webhook's
//!   default HMAC settings, docs/connect-vapi.md), its secret the first of the stack's
//!   `server_secrets`;
//! - the outbound and the inbound assistant (`events/assistant.json`,
//!   `events/assistant-inbound.json`) with `server.url` = the stack's webhook and
//!   `server.credentialId` = that credential;
//! - the phone number (`VAPI_PHONE_NUMBER_ID`, matched by id: a number is bought or imported,
//!   never created here) with `server.url` = the webhook and `server.credentialId` = the
//!   credential, where Vapi asks which assistant answers an inbound call (`assistant-request`)
//!   and sends the messages of calls on that number that no assistant routes elsewhere
//!
//! is created when missing, updated with only the top-level fields that differ (each sent
//! whole), or left alone. Every body is validated against Vapi's schema before it is sent (the
//! caller passes the validator: `vapi-schema`). Vapi's API: `GET|POST /credential`,
//! `PATCH /credential/{id}`, `GET|POST /assistant`, `PATCH /assistant/{id}`,
//! `GET|PATCH /phone-number/{id}`
//! (<https://docs.vapi.ai/api-reference/credentials/create>,
//! <https://docs.vapi.ai/api-reference/assistants/update>,
//! <https://docs.vapi.ai/api-reference/phone-numbers/update>: the body is the
//! `Update<Provider>PhoneNumberDTO` of the number's `provider`).

use std::time::Duration;

use serde_json::{json, Map, Value};

use crate::secrets::SecretString;

/// The name the credential is found by.
pub const CREDENTIAL_NAME: &str = "sfvapi-webhook";

/// Checks a body against one of Vapi's schemas (`vapi_schema::validate`).
pub type Validate<'a> = &'a dyn Fn(&str, &Value) -> Result<(), Vec<String>>;

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{what} is not valid for Vapi ({schema}): {}; fix {source_file}", problems.join("; "))]
    Invalid {
        what: String,
        schema: &'static str,
        problems: Vec<String>,
        source_file: String,
    },
    #[error("Vapi answered {method} {path} with {status}: {message}; {fix}")]
    Vapi {
        method: &'static str,
        path: String,
        status: u16,
        message: String,
        fix: &'static str,
    },
    #[error("could not reach Vapi ({detail}): check VAPI_BASE_URL and the network")]
    Network { detail: String },
    #[error("{0}")]
    Input(String),
    #[error("the Vapi server secret: {0}")]
    Secret(#[from] crate::secrets::SecretsError),
}

/// Length of a generated server secret.
pub const GENERATED_SECRET_CHARS: usize = 48;

/// The stack's server secret (`VAPI_SERVER_SECRET_ARN`) as the credential's secret: its first
/// `server_secrets`; when it has none, a new one of [`GENERATED_SECRET_CHARS`] random letters and
/// digits, written into the secret next to the fields already there (`context_key` kept) unless
/// `dry_run`. Read uncached: an operator's edit is never overwritten with an older copy. The
/// second value says whether the secret was generated. The value is never printed.
pub async fn server_secret(
    cache: &crate::secrets::SecretsCache,
    arn: &str,
    dry_run: bool,
) -> Result<(SecretString, bool), SetupError> {
    use rand::Rng as _;
    let raw = cache.get_uncached(arn).await?;
    // Checked first as the webhook reads it (a short secret is refused, naming the field).
    let parsed: crate::vapi::config::VapiServerSecret = crate::secrets::parse_json(arn, &raw)?;
    if let Some(first) = parsed.server_secrets.into_iter().next() {
        return Ok((first, false));
    }
    let mut fields: Map<String, Value> = crate::secrets::parse_json(arn, &raw)?;
    let generated: String = rand::rng()
        .sample_iter(&rand::distr::Alphanumeric)
        .take(GENERATED_SECRET_CHARS)
        .map(char::from)
        .collect();
    fields.insert("server_secrets".into(), json!([generated]));
    if !dry_run {
        cache.put(arn, &Value::Object(fields).to_string()).await?;
    }
    Ok((SecretString::new(generated), true))
}

/// What to set up.
pub struct Input {
    /// `https://api.vapi.ai` (or the sandbox).
    pub base_url: String,
    pub api_key: SecretString,
    /// The stack's `VapiWebhookUrl`.
    pub webhook_url: String,
    /// The secret the credential signs with (the stack's first `server_secrets`).
    pub server_secret: SecretString,
    /// `(source file, assistant JSON)`: outbound first, then inbound.
    pub assistants: Vec<(String, Value)>,
    /// The stack's `VapiPhoneNumberId`: its server is set too (none: no phone number touched).
    pub phone_number_id: Option<String>,
    /// Print what would be sent, send nothing.
    pub dry_run: bool,
}

pub use crate::setup::{Action, Outcome};

/// Everything set up, in order: the credential, then the assistants.
#[derive(Debug, Clone)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// The `sam deploy` line for the ids the stack needs.
    pub fn sam_deploy_line(&self) -> String {
        let id = |i: usize| {
            self.outcomes
                .iter()
                .filter(|o| o.kind == "assistant")
                .nth(i)
                .and_then(|o| o.id.clone())
                .unwrap_or_else(|| "<created on a real run>".into())
        };
        let mut line = format!(
            "sam deploy --parameter-overrides VapiAssistantId={} VapiInboundAssistantId={}",
            id(0),
            id(1)
        );
        if let Some(number) = self.outcomes.iter().find(|o| o.kind == "phone-number") {
            line.push_str(&format!(
                " VapiPhoneNumberId={}",
                number.id.as_deref().unwrap_or("?")
            ));
        }
        line
    }

    pub fn to_text(&self) -> String {
        let mut out: String = self.outcomes.iter().map(|o| format!("{o}\n")).collect();
        out.push_str(&self.sam_deploy_line());
        out.push('\n');
        out
    }
}

struct Api<'a> {
    http: reqwest::Client,
    input: &'a Input,
}

impl Api<'_> {
    async fn call(
        &self,
        method: &'static str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, SetupError> {
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| SetupError::Input(e.to_string()))?;
        let mut req = self
            .http
            .request(
                m,
                format!("{}{path}", self.input.base_url.trim_end_matches('/')),
            )
            .bearer_auth(self.input.api_key.expose());
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| SetupError::Network {
            detail: crate::secrets::error_chain(&e),
        })?;
        let status = resp.status().as_u16();
        let value: Value = resp.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let message = crate::vapi::client::message_of(&value).unwrap_or_else(|| format!("{value}"));
        Err(SetupError::Vapi {
            method,
            path: path.to_owned(),
            status,
            message,
            fix: match status {
                401 | 403 => "put the org's private API key (dashboard → API Keys) into VAPI_SECRET_ARN's api_key",
                400 => "the body is refused as shown: fix the file named, or report a schema change",
                404 => "check VAPI_BASE_URL",
                _ => "check Vapi's status page and run setup again (it is idempotent)",
            },
        })
    }

    async fn list(&self, path: &str) -> Result<Vec<Value>, SetupError> {
        match self.call("GET", path, None).await? {
            Value::Array(a) => Ok(a),
            other => Err(SetupError::Vapi {
                method: "GET",
                path: path.to_owned(),
                status: 200,
                message: format!("expected a list, got {}", short(&other)),
                fix: "check VAPI_BASE_URL",
            }),
        }
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// `path: old → new` for every leaf that differs between `have` and `want` (only the leaves
/// `want` sets; a `secretKey` shown as `(secret)`).
fn differences(path: &str, have: &Value, want: &Value, out: &mut Vec<String>) {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => {
            for (k, wv) in w {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                differences(&p, h.get(k).unwrap_or(&Value::Null), wv, out);
            }
        }
        (h, w) if h != w => {
            if path.ends_with("secretKey") {
                out.push(format!("{path}: (secret) → (the stack's secret)"));
            } else if h.is_null() {
                out.push(format!("{path}: (none) → {}", short(w)));
            } else {
                out.push(format!("{path}: {} → {}", short(h), short(w)));
            }
        }
        _ => {}
    }
}

/// The top-level fields of `want` whose value `have` does not have (each sent whole).
fn changed_fields(have: &Value, want: &Map<String, Value>) -> Map<String, Value> {
    want.iter()
        .filter(|(k, v)| !contains(have.get(k.as_str()).unwrap_or(&Value::Null), v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Whether `have` holds everything `want` sets (Vapi adds defaults and ids of its own).
fn contains(have: &Value, want: &Value) -> bool {
    match (have, want) {
        (Value::Object(h), Value::Object(w)) => w
            .iter()
            .all(|(k, wv)| contains(h.get(k).unwrap_or(&Value::Null), wv)),
        _ => have == want,
    }
}

/// Create `want` or bring the object named like it up to date.
#[allow(clippy::too_many_arguments)]
async fn converge(
    api: &Api<'_>,
    validate: Validate<'_>,
    kind: &'static str,
    collection: &str,
    existing: &[Value],
    want: Map<String, Value>,
    schemas: (&'static str, &'static str),
    source_file: &str,
) -> Result<Outcome, SetupError> {
    let name = want
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| SetupError::Input(format!("{source_file}: the {kind} has no name")))?
        .to_owned();
    let found = existing
        .iter()
        .find(|e| e["name"].as_str() == Some(name.as_str()));
    let check = |schema: &'static str, body: &Value| {
        validate(schema, body).map_err(|problems| SetupError::Invalid {
            what: format!("{kind} {name:?}"),
            schema,
            problems,
            source_file: source_file.to_owned(),
        })
    };
    let Some(found) = found else {
        let body = Value::Object(want);
        check(schemas.0, &body)?;
        if api.input.dry_run {
            return Ok(Outcome {
                kind,
                name,
                id: None,
                action: Action::WouldCreate,
                request: Some(format!("POST /{collection} {}", redacted(&body))),
            });
        }
        let created = api
            .call("POST", &format!("/{collection}"), Some(&body))
            .await?;
        let id = created["id"].as_str().map(str::to_owned);
        return Ok(Outcome {
            kind,
            name,
            id,
            action: Action::Created,
            request: None,
        });
    };
    let id = found["id"].as_str().map(str::to_owned);
    let mut changes = changed_fields(found, &want);
    // Vapi may not show a stored credential's secret: an absent secretKey is not a difference
    // (the plan is then sent, secret included, only when another of its settings differs).
    let secret_hidden = found["authenticationPlan"].get("secretKey").is_none();
    if let (true, Some(Value::Object(plan))) = (secret_hidden, changes.get("authenticationPlan")) {
        let mut shown = plan.clone();
        shown.remove("secretKey");
        if contains(&found["authenticationPlan"], &Value::Object(shown)) {
            changes.remove("authenticationPlan");
        }
    }
    if changes.is_empty() {
        return Ok(Outcome {
            kind,
            name,
            id,
            action: Action::Unchanged,
            request: None,
        });
    }
    let mut diff = Vec::new();
    for (k, v) in &changes {
        differences(
            k,
            found.get(k.as_str()).unwrap_or(&Value::Null),
            v,
            &mut diff,
        );
    }
    let body = Value::Object(changes);
    check(schemas.1, &body)?;
    if api.input.dry_run {
        let request = format!(
            "PATCH /{collection}/{} {}",
            id.as_deref().unwrap_or("?"),
            redacted(&body)
        );
        return Ok(Outcome {
            kind,
            name,
            id,
            action: Action::WouldUpdate(diff),
            request: Some(request),
        });
    }
    let Some(id_str) = id.as_deref() else {
        return Err(SetupError::Input(format!(
            "{kind} {name:?} has no id in Vapi's answer"
        )));
    };
    api.call("PATCH", &format!("/{collection}/{id_str}"), Some(&body))
        .await?;
    Ok(Outcome {
        kind,
        name,
        id,
        action: Action::Updated(diff),
        request: None,
    })
}

/// A body as a dry run prints it: the credential's secret as `(secret)`.
fn redacted(body: &Value) -> String {
    let mut b = body.clone();
    if let Some(k) = b
        .get_mut("authenticationPlan")
        .and_then(|p| p.get_mut("secretKey"))
    {
        *k = json!("(secret)");
    }
    b.to_string()
}

/// The credential as sfvapi's webhook checks it by default (`VAPI_AUTH_MODES=hmac`).
pub fn credential_body(secret: &SecretString) -> Map<String, Value> {
    let v = json!({
        "provider": "webhook",
        "name": CREDENTIAL_NAME,
        "authenticationPlan": {
            "type": "hmac",
            "secretKey": secret.expose(),
            "algorithm": "sha256",
            "signatureHeader": "x-signature",
            "timestampHeader": "x-timestamp",
            "payloadFormat": "{timestamp}.{body}",
            "signatureEncoding": "hex",
        },
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The update schema of a phone number of `provider` (the discriminator mapping of Vapi's
/// `PATCH /phone-number/{id}` request body).
pub fn phone_number_update_schema(provider: &str) -> Option<&'static str> {
    Some(match provider {
        "twilio" => "UpdateTwilioPhoneNumberDTO",
        "vapi" => "UpdateVapiPhoneNumberDTO",
        "vonage" => "UpdateVonagePhoneNumberDTO",
        "telnyx" => "UpdateTelnyxPhoneNumberDTO",
        "byo-phone-number" => "UpdateByoPhoneNumberDTO",
        _ => return None,
    })
}

fn server_before(have: &Value) -> Map<String, Value> {
    match have {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    }
}

/// Point the phone number's server at the webhook, signed with the credential. The number's
/// other server settings (timeout, backoff plan, headers) are kept: `server` is sent whole.
async fn phone_number(
    api: &Api<'_>,
    validate: Validate<'_>,
    id: &str,
    credential_id: &str,
) -> Result<Outcome, SetupError> {
    let path = format!("/phone-number/{id}");
    let found = match api.call("GET", &path, None).await {
        Err(SetupError::Vapi { status: 404, .. }) => {
            return Err(SetupError::Input(format!(
                "Vapi has no phone number {id}: set VAPI_PHONE_NUMBER_ID (--phone-number-id) to the id in Vapi's dashboard → Phone Numbers"
            )))
        }
        other => other?,
    };
    let name = found["number"]
        .as_str()
        .or(found["name"].as_str())
        .map(crate::ids::mask_phone)
        .unwrap_or_else(|| id.to_owned());
    let provider = found["provider"].as_str().unwrap_or_default();
    let schema = phone_number_update_schema(provider).ok_or_else(|| {
        SetupError::Input(format!(
            "phone number {id} has provider {provider:?}, which Vapi's schema does not list"
        ))
    })?;
    let wanted = json!({"credentialId": credential_id, "url": api.input.webhook_url});
    let have = &found["server"];
    let outcome = |action, request| Outcome {
        kind: "phone-number",
        name: name.clone(),
        id: Some(id.to_owned()),
        action,
        request,
    };
    if contains(have, &wanted) {
        return Ok(outcome(Action::Unchanged, None));
    }
    let mut server = server_before(have);
    if let Value::Object(w) = &wanted {
        server.extend(w.clone());
    }
    let body = json!({"server": server});
    validate(schema, &body).map_err(|problems| SetupError::Invalid {
        what: format!("phone number {id}"),
        schema,
        problems,
        source_file: "the webhook URL and credential".into(),
    })?;
    let mut diff = Vec::new();
    // Leaf by leaf even when the number has no server yet.
    let have_object = Value::Object(server_before(have));
    differences("server", &have_object, &wanted, &mut diff);
    if api.input.dry_run {
        return Ok(outcome(
            Action::WouldUpdate(diff),
            Some(format!("PATCH {path} {body}")),
        ));
    }
    api.call("PATCH", &path, Some(&body)).await?;
    Ok(outcome(Action::Updated(diff), None))
}

/// Set up the credential, the assistants and the phone number's server.
pub async fn run(input: &Input, validate: Validate<'_>) -> Result<Report, SetupError> {
    if input.server_secret.expose().chars().count() < crate::secrets::MIN_SECRET_CHARS {
        return Err(SetupError::Input(format!(
            "the Vapi server secret's server_secrets is empty or shorter than {} characters: fill it first (`sfvapi-admin doctor` says how)",
            crate::secrets::MIN_SECRET_CHARS
        )));
    }
    let http = crate::tls::reqwest_builder()
        .timeout(Duration::from_secs(20))
        .build()
        .map_err(|e| SetupError::Network {
            detail: e.to_string(),
        })?;
    let api = Api { http, input };
    let mut outcomes = Vec::new();

    let credentials = api.list("/credential").await?;
    let credential = converge(
        &api,
        validate,
        "credential",
        "credential",
        &credentials,
        credential_body(&input.server_secret),
        ("CreateWebhookCredentialDTO", "UpdateWebhookCredentialDTO"),
        "the stack's Vapi server secret",
    )
    .await?;
    let credential_id = credential
        .id
        .clone()
        .unwrap_or_else(|| "<the credential's id>".into());
    outcomes.push(credential);

    let assistants = api.list("/assistant").await?;
    for (source_file, assistant) in &input.assistants {
        let Value::Object(mut want) = assistant.clone() else {
            return Err(SetupError::Input(format!(
                "{source_file}: not a JSON object"
            )));
        };
        let server = want
            .entry("server")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(server) = server else {
            return Err(SetupError::Input(format!(
                "{source_file}: server is not an object"
            )));
        };
        server.insert("url".into(), json!(input.webhook_url));
        server.insert("credentialId".into(), json!(credential_id));
        outcomes.push(
            converge(
                &api,
                validate,
                "assistant",
                "assistant",
                &assistants,
                want,
                ("CreateAssistantDTO", "UpdateAssistantDTO"),
                source_file,
            )
            .await?,
        );
    }
    if let Some(id) = input.phone_number_id.as_deref().filter(|i| !i.is_empty()) {
        outcomes.push(phone_number(&api, validate, id, &credential_id).await?);
    }
    Ok(Report { outcomes })
}
