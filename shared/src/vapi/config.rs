//! The Vapi webhook's settings and secret, read once at cold start (see `config.rs` for the
//! conventions: a bad value stops init with the variable's name).

use std::time::Duration;

use serde::Deserialize;

use crate::config::{CommonConfig, ConfigError, Env, Problems};
use crate::secrets::SecretString;
use crate::signature::{PayloadFormat, VapiAuth, VapiHmac};

/// What the secret `VAPI_SERVER_SECRET_ARN` holds, read by the webhook and the worker:
/// `{"server_secrets": ["current", "previous"], "context_key": "…"}`.
/// `server_secrets` authenticate Vapi's server messages (the credential's secret, the
/// `X-Vapi-Secret` value or the bearer token, whichever modes are enabled); `context_key` is the
/// HMAC key the worker signs each call's context with and the webhook checks it with. Kept apart
/// from [`VapiSecret`] so the webhook, which faces the internet, cannot read the Vapi private key.
#[derive(Debug, Clone, Deserialize)]
pub struct VapiServerSecret {
    /// One string or a list (a generated secret is a single string); each ≥ 32 characters.
    #[serde(default, deserialize_with = "crate::secrets::server_secrets")]
    pub server_secrets: Vec<SecretString>,
    /// ≥ 32 characters.
    #[serde(default, deserialize_with = "crate::secrets::context_key")]
    pub context_key: Option<SecretString>,
}

/// What the secret `VAPI_SECRET_ARN` holds, read by the worker only:
/// `{"api_key": "<Vapi private API key>"}`, the key the worker sends to `POST /call`.
#[derive(Debug, Clone, Deserialize)]
pub struct VapiSecret {
    #[serde(default)]
    pub api_key: Option<SecretString>,
}

#[derive(Debug, Clone)]
pub struct VapiWebhookConfig {
    pub common: CommonConfig,
    /// `VAPI_SERVER_SECRET_ARN`: see [`VapiServerSecret`].
    pub secret_arn: String,
    /// `SF_LIVE_LOOKUPS` (default false): answer tool calls of calls without a snapshot with a
    /// live Salesforce read, using only the token the refresher keeps in the token item (the
    /// webhook cannot read the connection secret and never refreshes).
    pub live_lookups: bool,
    /// `VAPI_AUTH_MODES` (default `hmac`): any of `hmac,secret,bearer,legacy`, comma-separated;
    /// a request is accepted when any enabled mode accepts it.
    pub auth_modes: Vec<VapiAuth>,
    /// `VAPI_SIGNATURE_TOLERANCE_SECS` (default 300): allowed skew of the HMAC timestamp.
    pub tolerance_secs: i64,
    /// `VAPI_MAX_BODY_BYTES` (default 1048576): larger bodies get 413, except end-of-call
    /// reports (below). Larger than the ingest's 256 KB: Vapi's messages carry the conversation.
    pub max_body_bytes: usize,
    /// `VAPI_MAX_REPORT_BYTES` (default 5 MiB): an end-of-call report carries the transcript
    /// several times (text, messages, OpenAI-format messages) and refusing it would lose the
    /// call's outcome, so it is accepted up to what a Lambda invocation can carry (6 MB for the
    /// whole API Gateway event, whose JSON escaping of the body adds some).
    pub max_report_bytes: usize,
    /// `EVENT_TTL_DAYS` (default 7): how long dedup records, jobs and `call#` items are kept.
    pub event_ttl: Duration,
    /// `VAPI_TOOL_CACHE_TTL_SECS` (default 86400): how long a tool answer is replayed to retries.
    pub tool_cache_ttl: Duration,
    /// `VAPI_LIVE_LOOKUP_TIMEOUT_MS` (default 3000): deadline of a live Salesforce lookup, well
    /// under Vapi's tool timeout (`server.timeoutSeconds`, default 20 s).
    pub live_lookup_timeout: Duration,
    /// Inbound calls (`assistant-request`): on when `VAPI_INBOUND_ASSISTANT_ID` is set
    /// (`crate::vapi::inbound::InboundConfig`).
    pub inbound: Option<crate::vapi::inbound::InboundConfig>,
}

impl VapiWebhookConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let mut p = Problems::new();
        let mut tolerance_secs: i64 = p.or(env.parse_or("VAPI_SIGNATURE_TOLERANCE_SECS", 300), 300);
        if !(1..=3600).contains(&tolerance_secs) {
            p.push(ConfigError::Invalid {
                var: "VAPI_SIGNATURE_TOLERANCE_SECS",
                reason: "must be between 1 and 3600 seconds".into(),
            });
            tolerance_secs = 300;
        }
        let ttl_days = p.or(crate::config::event_ttl_days(env), 7);
        let lookup_ms: u64 = p.or(env.parse_or("VAPI_LIVE_LOOKUP_TIMEOUT_MS", 3000), 3000);
        if !(100..=15_000).contains(&lookup_ms) {
            p.push(ConfigError::Invalid {
                var: "VAPI_LIVE_LOOKUP_TIMEOUT_MS",
                reason: "must be between 100 and 15000 ms (Vapi waits 20 s by default)".into(),
            });
        }
        let c = Self {
            common: CommonConfig::collect(env, &mut p),
            secret_arn: p.or(
                env.required(
                    "VAPI_SERVER_SECRET_ARN",
                    "the ARN or name of the Vapi server secret (server_secrets, context_key)",
                ),
                String::new(),
            ),
            live_lookups: p.or(env.parse_or("SF_LIVE_LOOKUPS", false), false),
            auth_modes: auth_modes(env, &mut p),
            tolerance_secs,
            max_body_bytes: p.or(env.parse_or("VAPI_MAX_BODY_BYTES", 1024 * 1024usize), 0),
            max_report_bytes: p.or(
                env.parse_or("VAPI_MAX_REPORT_BYTES", 5 * 1024 * 1024usize),
                0,
            ),
            event_ttl: Duration::from_secs(ttl_days * 86_400),
            tool_cache_ttl: p.or(
                env.secs_or("VAPI_TOOL_CACHE_TTL_SECS", 86_400),
                Duration::ZERO,
            ),
            live_lookup_timeout: Duration::from_millis(lookup_ms),
            inbound: p.or(crate::vapi::inbound::InboundConfig::from_env(env), None),
        };
        p.finish(c)
    }
}

/// `VAPI_AUTH_MODES` plus the options of the modes it enables:
/// `VAPI_HMAC_ALGORITHM` (sha256|sha512|sha1), `VAPI_HMAC_SIGNATURE_HEADER` (x-signature),
/// `VAPI_HMAC_TIMESTAMP_HEADER` (x-timestamp), `VAPI_HMAC_SIGNATURE_PREFIX` (none, e.g. `sha256=`),
/// `VAPI_HMAC_PAYLOAD_FORMAT` (`{timestamp}.{body}` or `{body}`), `VAPI_HMAC_ENCODING` (hex|base64),
/// `VAPI_BEARER_HEADER` (authorization).
fn auth_modes<F: Fn(&str) -> Option<String>>(env: &Env<F>, p: &mut Problems) -> Vec<VapiAuth> {
    let names = {
        let l = env.list("VAPI_AUTH_MODES");
        if l.is_empty() {
            vec!["hmac".to_owned()]
        } else {
            l
        }
    };
    let defaults = VapiHmac::default();
    let mut modes = Vec::new();
    for name in names {
        let mode = match name.to_ascii_lowercase().as_str() {
            "hmac" => VapiAuth::Hmac(VapiHmac {
                algorithm: p.or(
                    env.parse_or("VAPI_HMAC_ALGORITHM", defaults.algorithm),
                    defaults.algorithm,
                ),
                signature_header: header_name(
                    env,
                    p,
                    "VAPI_HMAC_SIGNATURE_HEADER",
                    &defaults.signature_header,
                ),
                timestamp_header: header_name(
                    env,
                    p,
                    "VAPI_HMAC_TIMESTAMP_HEADER",
                    &defaults.timestamp_header,
                ),
                signature_prefix: env
                    .optional("VAPI_HMAC_SIGNATURE_PREFIX")
                    .unwrap_or_default(),
                payload_format: p.or(
                    env.parse_or("VAPI_HMAC_PAYLOAD_FORMAT", PayloadFormat::TimestampDotBody),
                    PayloadFormat::TimestampDotBody,
                ),
                encoding: p.or(
                    env.parse_or("VAPI_HMAC_ENCODING", defaults.encoding),
                    defaults.encoding,
                ),
            }),
            "secret" => VapiAuth::Secret,
            "bearer" => VapiAuth::Bearer {
                header: header_name(env, p, "VAPI_BEARER_HEADER", "authorization"),
            },
            "legacy" => VapiAuth::Legacy,
            other => {
                p.push(ConfigError::Invalid {
                    var: "VAPI_AUTH_MODES",
                    reason: format!(
                        "unknown mode {other:?}, expected hmac, secret, bearer or legacy"
                    ),
                });
                continue;
            }
        };
        if !modes.contains(&mode) {
            modes.push(mode);
        }
    }
    modes
}

fn header_name<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    p: &mut Problems,
    var: &'static str,
    default: &str,
) -> String {
    let name = env
        .optional(var)
        .unwrap_or_else(|| default.to_owned())
        .to_ascii_lowercase();
    // Header lookups are by lower-case name; a bad name could never match.
    if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        p.push(ConfigError::Invalid {
            var,
            reason: format!("{name:?} is not a valid HTTP header name"),
        });
        return default.to_owned();
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::env;
    use crate::signature::{Algorithm, Encoding};

    #[test]
    fn defaults_and_modes() {
        let c = VapiWebhookConfig::from_env(&env(&[
            ("TABLE_NAME", "t"),
            ("VAPI_SERVER_SECRET_ARN", "s"),
        ]))
        .unwrap();
        assert_eq!(c.auth_modes, vec![VapiAuth::Hmac(VapiHmac::default())]);
        assert_eq!(c.tolerance_secs, 300);
        assert_eq!(c.max_body_bytes, 1_048_576);
        let c = VapiWebhookConfig::from_env(&env(&[
            ("TABLE_NAME", "t"),
            ("VAPI_SERVER_SECRET_ARN", "s"),
            ("VAPI_AUTH_MODES", "hmac, secret,bearer,legacy"),
            ("VAPI_HMAC_ALGORITHM", "sha512"),
            ("VAPI_HMAC_SIGNATURE_HEADER", "X-Sig"),
            ("VAPI_HMAC_SIGNATURE_PREFIX", "sha512="),
            ("VAPI_HMAC_PAYLOAD_FORMAT", "{body}"),
            ("VAPI_HMAC_ENCODING", "base64"),
            ("VAPI_BEARER_HEADER", "X-Auth"),
        ]))
        .unwrap();
        assert_eq!(c.auth_modes.len(), 4);
        let VapiAuth::Hmac(h) = &c.auth_modes[0] else {
            panic!()
        };
        assert_eq!(h.algorithm, Algorithm::Sha512);
        assert_eq!(h.signature_header, "x-sig");
        assert_eq!(h.signature_prefix, "sha512=");
        assert_eq!(h.payload_format, PayloadFormat::Body);
        assert_eq!(h.encoding, Encoding::Base64);
        assert_eq!(
            c.auth_modes[2],
            VapiAuth::Bearer {
                header: "x-auth".into()
            }
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (var, val) in [
            ("VAPI_AUTH_MODES", "hmac,magic"),
            ("VAPI_HMAC_ALGORITHM", "md5"),
            ("VAPI_HMAC_SIGNATURE_HEADER", "bad header"),
            ("VAPI_LIVE_LOOKUP_TIMEOUT_MS", "60000"),
        ] {
            let e = VapiWebhookConfig::from_env(&env(&[
                ("TABLE_NAME", "t"),
                ("VAPI_SERVER_SECRET_ARN", "s"),
                (var, val),
            ]))
            .unwrap_err();
            assert!(e.to_string().contains(var), "{e}");
        }
    }
}

#[cfg(test)]
mod secret_tests {
    use super::{VapiSecret, VapiServerSecret};

    const S1: &str = "server-secret-one-0123456789abcdef";
    const S2: &str = "server-secret-two-0123456789abcdef";

    #[test]
    fn server_secrets_may_be_one_string_or_a_list() {
        let one: VapiServerSecret =
            serde_json::from_str(&format!(r#"{{"server_secrets":"{S1}"}}"#)).unwrap();
        assert_eq!(one.server_secrets.len(), 1);
        let many: VapiServerSecret = serde_json::from_str(&format!(
            r#"{{"server_secrets":["{S1}","{S2}"],"context_key":"{S1}"}}"#
        ))
        .unwrap();
        assert_eq!(many.server_secrets.len(), 2);
        assert!(many.context_key.is_some());
        assert!(serde_json::from_str::<VapiServerSecret>(r#"{"server_secrets":3}"#).is_err());
    }

    #[test]
    fn short_server_secrets_and_context_keys_are_refused_naming_the_field() {
        let short = "short-but-not-empty";
        for (json, field) in [
            (
                format!(r#"{{"server_secrets":["{S1}","{short}"]}}"#),
                "server_secrets",
            ),
            (
                format!(r#"{{"server_secrets":"{S1}","context_key":"{short}"}}"#),
                "context_key",
            ),
        ] {
            let e = crate::secrets::parse_json::<VapiServerSecret>("arn:x", &json).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(field), "{msg}");
            assert!(!msg.contains(short), "{msg}");
        }
    }

    #[test]
    fn the_private_key_lives_in_its_own_secret() {
        let s: VapiSecret = serde_json::from_str(r#"{"api_key":"k"}"#).unwrap();
        assert!(s.api_key.is_some());
    }
}
