//! `secret.*`: every secret the stack names exists, is JSON in its shape, and every field a
//! function needs is filled (keys at least [`MIN_SECRET_CHARS`] long). The shapes are the
//! functions' own types, parsed the way the functions parse them; errors name a field, never a
//! value.

use crate::config::SalesforceFlow;
use crate::salesforce::connect::OperatorSecret;
use crate::salesforce::oauth::ConnectionSecret;
use crate::secrets::{parse_json, IngestSecret, SecretString, SecretsCache, MIN_SECRET_CHARS};
use crate::twilio::{TwilioCredentials, TwilioSecret};
use crate::vapi::config::{VapiSecret, VapiServerSecret};

use super::{Check, Target};

/// What later checks use from the secrets read here.
#[derive(Default)]
pub struct Read {
    pub checks: Vec<Check>,
    pub vapi_api_key: Option<SecretString>,
    pub server_secrets: Vec<SecretString>,
    pub twilio: Option<TwilioCredentials>,
}

/// The fix for one field of one secret, naming the field and never a value.
fn put_fix(arn: &str, fields: &str) -> String {
    format!(
        "write {fields} into the secret (keys: {MIN_SECRET_CHARS}+ characters, e.g. `openssl rand -hex 32`): \
         aws secretsmanager put-secret-value --secret-id {arn} --secret-string file://secret.json \
         (the whole JSON object, every field)"
    )
}

fn blank(s: &Option<SecretString>) -> bool {
    s.as_ref().is_none_or(|s| s.expose().trim().is_empty())
}

pub async fn check_all(target: &Target, cache: &SecretsCache) -> Read {
    let mut read = Read::default();
    let env = target.lookup();
    let flow = crate::config::SalesforceConfig::from_env(&env)
        .map(|c| c.flow)
        .unwrap_or(SalesforceFlow::RefreshToken);
    // (variable, check id, required)
    let specs: [(&str, &str, bool); 6] = [
        ("SF_INGEST_SECRET_ARN", "secret.ingest", true),
        ("VAPI_SERVER_SECRET_ARN", "secret.vapi-server", true),
        ("VAPI_SECRET_ARN", "secret.vapi", true),
        ("SF_CONNECTION_SECRET_ARN", "secret.salesforce", true),
        ("TWILIO_SECRET_ARN", "secret.twilio", false),
        ("SF_OPERATOR_SECRET_ARN", "secret.operator", false),
    ];
    for (var, id, required) in specs {
        let Some(arn) = target.var(var) else {
            if required {
                read.checks.push(Check::fail(
                    id,
                    format!("{var} is not set"),
                    format!("set {var} to the secret's ARN (the stack's outputs name it)"),
                ));
            } else {
                read.checks.push(Check::warn(
                    id,
                    format!("{var} is not set: what it serves is off"),
                    format!("set {var} to turn it on (docs/configuration.md)"),
                ));
            }
            continue;
        };
        let raw = match cache.get(arn).await {
            Ok(raw) => raw,
            Err(e) => {
                read.checks.push(Check::fail(
                    id,
                    format!("{var}: {e}"),
                    "create the secret or fix the ARN, and check the endpoint and IAM policy",
                ));
                continue;
            }
        };
        let check = match var {
            "SF_INGEST_SECRET_ARN" => parse_json::<IngestSecret>(arn, &raw).map(|s| {
                if s.signing_secrets.is_empty() {
                    Err("signing_secrets is empty".to_owned())
                } else {
                    Ok(format!(
                        "signing_secrets ({}){}",
                        s.signing_secrets.len(),
                        if s.outbound_message_token.is_some() {
                            ", outbound_message_token"
                        } else {
                            ""
                        }
                    ))
                }
            }),
            "VAPI_SERVER_SECRET_ARN" => parse_json::<VapiServerSecret>(arn, &raw).map(|s| {
                let mut empty = Vec::new();
                if s.server_secrets.is_empty() {
                    empty.push("server_secrets");
                }
                if s.context_key.is_none() {
                    empty.push("context_key");
                }
                read.server_secrets = s.server_secrets.clone();
                if empty.is_empty() {
                    Ok(format!(
                        "server_secrets ({}), context_key",
                        s.server_secrets.len()
                    ))
                } else {
                    Err(format!("{} empty", empty.join(" and ")))
                }
            }),
            "VAPI_SECRET_ARN" => parse_json::<VapiSecret>(arn, &raw).map(|s| {
                if blank(&s.api_key) {
                    Err("api_key is empty".to_owned())
                } else {
                    read.vapi_api_key = s.api_key;
                    Ok("api_key".to_owned())
                }
            }),
            "SF_CONNECTION_SECRET_ARN" => parse_json::<ConnectionSecret>(arn, &raw).map(|s| {
                let mut empty = Vec::new();
                if s.client_id.trim().is_empty() {
                    empty.push("client_id");
                }
                let needs = match flow {
                    SalesforceFlow::JwtBearer => ("private_key_pem", &s.private_key_pem),
                    SalesforceFlow::ClientCredentials => ("client_secret", &s.client_secret),
                    _ => ("refresh_token", &s.refresh_token),
                };
                if blank(needs.1) {
                    empty.push(needs.0);
                }
                if empty.is_empty() {
                    Ok(format!("client_id, {}", needs.0))
                } else {
                    Err(format!("{} empty", empty.join(" and ")))
                }
            }),
            "TWILIO_SECRET_ARN" => parse_json::<TwilioSecret>(arn, &raw).map(|s| {
                if blank(&s.auth_token) && blank(&s.api_key_secret) {
                    return Err("auth_token (or api_key_secret) is empty".to_owned());
                }
                match TwilioCredentials::from_secret(&s) {
                    Ok(c) => {
                        read.twilio = Some(c);
                        Ok("account_sid, credentials".to_owned())
                    }
                    Err(e) => Err(e.to_string()),
                }
            }),
            _ => parse_json::<OperatorSecret>(arn, &raw).map(|s| {
                if s.operator_key.is_none() {
                    Err("operator_key is empty".to_owned())
                } else {
                    Ok("operator_key".to_owned())
                }
            }),
        };
        read.checks.push(match check {
            Ok(Ok(fields)) => Check::pass(id, format!("{var}: {fields} filled")),
            // An operator key is optional: without it the connect routes are off.
            Ok(Err(problem)) if var == "SF_OPERATOR_SECRET_ARN" => Check::warn(
                id,
                format!("{var}: {problem}: the connect routes are off"),
                put_fix(arn, "operator_key"),
            ),
            Ok(Err(problem)) => Check::fail(
                id,
                format!("{var}: {problem}"),
                put_fix(arn, problem.split(' ').next().unwrap_or("the field")),
            ),
            Err(e) => Check::fail(
                id,
                format!("{var}: {e}"),
                put_fix(arn, "every field named above"),
            ),
        });
    }
    read
}
