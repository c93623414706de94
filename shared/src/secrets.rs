//! Secrets Manager reader with a TTL cache: one read per cold start, re-read when the TTL runs out
//! or, rate-limited, when a caller suspects a rotation (a signature failed with the cached secrets).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

/// A secret value. `Debug`/`Display` never print it; `expose()` is the one explicit way out.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}
impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(***)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("Secrets Manager is unavailable for {arn}: {detail} (check the endpoint, network and IAM policy)")]
    Unavailable { arn: String, detail: String },
    #[error("secret {arn} has no string value (store it as JSON text)")]
    NotText { arn: String },
    #[error("secret {arn} is not in the expected shape: {detail}")]
    Invalid { arn: String, detail: String },
}

struct Entry {
    value: Arc<str>,
    fetched_at: Instant,
}

/// Caches secret strings by id/ARN. Clone-cheap handle; build once per cold start.
#[derive(Clone)]
pub struct SecretsCache {
    client: aws_sdk_secretsmanager::Client,
    ttl: Duration,
    min_forced_interval: Duration,
    inner: Arc<Mutex<HashMap<String, Entry>>>,
}

impl SecretsCache {
    pub fn new(client: aws_sdk_secretsmanager::Client, ttl: Duration) -> Self {
        Self {
            client,
            ttl,
            min_forced_interval: Duration::from_secs(30),
            inner: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Sets how often a forced re-read may happen (default 30 s), so forged requests cannot turn
    /// into a flood of Secrets Manager calls.
    pub fn with_min_forced_interval(mut self, d: Duration) -> Self {
        self.min_forced_interval = d;
        self
    }

    /// The secret's string, from the cache while it is fresh. The lock is held across the read,
    /// so concurrent cold callers make a single GetSecretValue.
    pub async fn get(&self, arn: &str) -> Result<Arc<str>, SecretsError> {
        let mut map = self.inner.lock().await;
        if let Some(e) = map.get(arn) {
            if e.fetched_at.elapsed() < self.ttl {
                return Ok(e.value.clone());
            }
        }
        let value = self.fetch(arn).await?;
        map.insert(
            arn.to_owned(),
            Entry {
                value: value.clone(),
                fetched_at: Instant::now(),
            },
        );
        Ok(value)
    }

    /// Re-read the secret unless it was fetched within the minimum interval. Returns the fresh value
    /// when a re-read happened, `None` when it was rate-limited.
    pub async fn refresh(&self, arn: &str) -> Result<Option<Arc<str>>, SecretsError> {
        let mut map = self.inner.lock().await;
        if let Some(e) = map.get(arn) {
            if e.fetched_at.elapsed() < self.min_forced_interval {
                return Ok(None);
            }
        }
        let value = self.fetch(arn).await?;
        map.insert(
            arn.to_owned(),
            Entry {
                value: value.clone(),
                fetched_at: Instant::now(),
            },
        );
        Ok(Some(value))
    }

    /// Read the secret from Secrets Manager now, bypassing both the TTL cache and the forced
    /// re-read rate limit, and keep the result as the cached value. For read-modify-write of a
    /// secret (storing a rotated refresh token): merging into a cached copy would overwrite an
    /// operator's edit made since the cache was filled.
    pub async fn get_uncached(&self, arn: &str) -> Result<Arc<str>, SecretsError> {
        let value = self.fetch(arn).await?;
        let mut map = self.inner.lock().await;
        map.insert(
            arn.to_owned(),
            Entry {
                value: value.clone(),
                fetched_at: Instant::now(),
            },
        );
        Ok(value)
    }

    /// Parse the secret's JSON text into `T`.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        arn: &str,
    ) -> Result<T, SecretsError> {
        let raw = self.get(arn).await?;
        parse_json(arn, &raw)
    }

    /// Write a new version of a secret (e.g. a rotated refresh token) and update the cache.
    pub async fn put(&self, arn: &str, value: &str) -> Result<(), SecretsError> {
        self.client
            .put_secret_value()
            .secret_id(arn)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| SecretsError::Unavailable {
                arn: arn.to_owned(),
                detail: error_chain(&e),
            })?;
        let mut map = self.inner.lock().await;
        map.insert(
            arn.to_owned(),
            Entry {
                value: Arc::from(value),
                fetched_at: Instant::now(),
            },
        );
        Ok(())
    }

    async fn fetch(&self, arn: &str) -> Result<Arc<str>, SecretsError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(arn)
            .send()
            .await
            .map_err(|e| SecretsError::Unavailable {
                arn: arn.to_owned(),
                detail: error_chain(&e),
            })?;
        let s = out.secret_string().ok_or_else(|| SecretsError::NotText {
            arn: arn.to_owned(),
        })?;
        Ok(Arc::from(s))
    }
}

pub fn parse_json<T: serde::de::DeserializeOwned>(arn: &str, raw: &str) -> Result<T, SecretsError> {
    // serde's message names the field but never echoes a value, so it is safe to log.
    serde_json::from_str(raw).map_err(|e| SecretsError::Invalid {
        arn: arn.to_owned(),
        detail: format!(
            "{} (line {}, column {})",
            classify(&e),
            e.line(),
            e.column()
        ),
    })
}

fn classify(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Data => {
            // Data errors name the missing/invalid field; strip any quoted value just in case.
            let msg = e.to_string();
            scrub_quoted(msg.split(" at line").next().unwrap_or("invalid field"))
        }
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            "not valid JSON".into()
        }
        serde_json::error::Category::Io => "unreadable".into(),
    }
}

/// serde quotes offending values (`invalid type: string "hunter2"`); keep the words, drop the value.
fn scrub_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut inside = false;
    for c in msg.chars() {
        if c == '"' {
            if !inside {
                out.push_str("\"…\"");
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

/// The full `source()` chain of an error on one line: SDK errors put the useful part deep inside.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// The shortest secret accepted as an HMAC key, path token or operator key: 32 characters (a
/// generated 32-character secret or `openssl rand -hex 16` and up). A shorter one is refused when
/// the secret is read, with the field's name, never its value.
pub const MIN_SECRET_CHARS: usize = 32;

/// What the ingest function reads from its secret (`SF_INGEST_SECRET_ARN`):
/// `{"signing_secrets": ["current", "previous"], "outbound_message_token": "…"}`.
#[derive(Debug, Clone, Deserialize)]
pub struct IngestSecret {
    /// Every secret that may sign an event; more than one during a rotation. A single string is
    /// accepted too (what CloudFormation's GenerateSecretString produces).
    #[serde(deserialize_with = "signing_secrets")]
    pub signing_secrets: Vec<SecretString>,
    /// The path token of the Outbound Message endpoint; absent disables that endpoint.
    #[serde(default, deserialize_with = "outbound_message_token")]
    pub outbound_message_token: Option<SecretString>,
}

/// Deserializers that name their field in the error (serde does not say which field a custom
/// error came from) and never echo a value.
macro_rules! key_fields {
    ($($many:ident),* ; $($one:ident),*) => {
        $(pub(crate) fn $many<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Vec<SecretString>, D::Error> {
            keys(d, stringify!($many))
        })*
        $(pub(crate) fn $one<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<Option<SecretString>, D::Error> {
            key(d, stringify!($one))
        })*
    };
}
key_fields!(signing_secrets, server_secrets; outbound_message_token, context_key, operator_key);

/// `field` must hold one string or a list of strings, each at least [`MIN_SECRET_CHARS`] long;
/// blank entries are dropped (an empty secret would make a MAC anyone can compute).
fn keys<'de, D: serde::Deserializer<'de>>(
    d: D,
    field: &'static str,
) -> Result<Vec<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(SecretString),
        Many(Vec<SecretString>),
    }
    let all = match OneOrMany::deserialize(d) {
        Ok(OneOrMany::One(s)) => vec![s],
        Ok(OneOrMany::Many(v)) => v,
        // The untagged error would not name the field; this one does, and never echoes the value.
        Err(_) => {
            return Err(serde::de::Error::custom(format!(
                "{field} must be a string or an array of strings"
            )))
        }
    };
    let kept: Vec<SecretString> = all
        .into_iter()
        .filter(|s| !s.expose().trim().is_empty())
        .collect();
    if kept
        .iter()
        .any(|s| s.expose().chars().count() < MIN_SECRET_CHARS)
    {
        return Err(too_short(field));
    }
    Ok(kept)
}

fn key<'de, D: serde::Deserializer<'de>>(
    d: D,
    field: &'static str,
) -> Result<Option<SecretString>, D::Error> {
    let Ok(v) = Option::<SecretString>::deserialize(d) else {
        return Err(serde::de::Error::custom(format!(
            "{field} must be a string"
        )));
    };
    match v {
        Some(s) if s.expose().trim().is_empty() => Ok(None),
        Some(s) if s.expose().chars().count() < MIN_SECRET_CHARS => Err(too_short(field)),
        other => Ok(other),
    }
}

fn too_short<E: serde::de::Error>(field: &str) -> E {
    E::custom(format!(
        "{field} is shorter than {MIN_SECRET_CHARS} characters: generate a longer one \
         (e.g. `openssl rand -hex 32`)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_strings_never_print() {
        let s: IngestSecret = serde_json::from_str(
            r#"{"signing_secrets":["abc123-abc123-abc123-abc123-abc123"],"outbound_message_token":"tok-tok-tok-tok-tok-tok-tok-tok-tok"}"#,
        )
        .unwrap();
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("abc123") && !dbg.contains("tok-"), "{dbg}");
    }

    #[test]
    fn invalid_secret_shape_names_the_field_not_the_value() {
        let err =
            parse_json::<IngestSecret>("arn:x", r#"{"signing_secret":"hunter2"}"#).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("signing_secrets"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        let err = parse_json::<IngestSecret>("arn:x", r#"{"signing_secrets":7}"#).unwrap_err();
        assert!(err.to_string().contains("signing_secrets"), "{err}");
        let one: IngestSecret = parse_json(
            "arn:x",
            r#"{"signing_secrets":"hunter2-hunter2-hunter2-hunter2-hunter2"}"#,
        )
        .unwrap();
        assert_eq!(one.signing_secrets.len(), 1);
        // An empty secret would let anyone compute a valid MAC: it is dropped.
        let blank: IngestSecret = parse_json(
            "arn:x",
            r#"{"signing_secrets":["new-new-new-new-new-new-new-new-new"," ",""]}"#,
        )
        .unwrap();
        assert_eq!(blank.signing_secrets.len(), 1);
    }

    #[test]
    fn secrets_shorter_than_32_characters_are_refused_naming_the_field() {
        let long = "x".repeat(MIN_SECRET_CHARS);
        let short = "hunter2-is-31-characters-long!!";
        assert_eq!(short.len(), 31);
        for (json, field) in [
            (
                format!(r#"{{"signing_secrets":["{long}","{short}"]}}"#),
                "signing_secrets",
            ),
            (
                format!(r#"{{"signing_secrets":"{short}"}}"#),
                "signing_secrets",
            ),
            (
                format!(r#"{{"signing_secrets":"{long}","outbound_message_token":"{short}"}}"#),
                "outbound_message_token",
            ),
        ] {
            let err = parse_json::<IngestSecret>("arn:x", &json).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains(field) && msg.contains("32"), "{msg}");
            assert!(!msg.contains("hunter2"), "the value never appears: {msg}");
        }
        let ok: IngestSecret = parse_json(
            "arn:x",
            &format!(r#"{{"signing_secrets":"{long}","outbound_message_token":"{long}"}}"#),
        )
        .unwrap();
        assert!(ok.outbound_message_token.is_some());
    }
}
