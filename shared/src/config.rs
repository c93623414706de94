//! Typed configuration from environment variables, validated once at cold start.
//! A missing or invalid setting stops the function's init with a message naming the variable,
//! so a bad deploy fails loudly at the first invocation instead of misbehaving later.

use std::str::FromStr;
use std::time::Duration;

use crate::ids::SalesforceId;
use crate::signature::SalesforceScheme;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {var} is required but not set ({hint})")]
    Missing {
        var: &'static str,
        hint: &'static str,
    },
    #[error("environment variable {var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// Reads variables through a lookup function, so tests can configure without touching the
/// process environment.
pub struct Env<F: Fn(&str) -> Option<String>> {
    lookup: F,
}

impl Env<fn(&str) -> Option<String>> {
    pub fn process() -> Self {
        Env {
            lookup: |k| std::env::var(k).ok(),
        }
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn new(lookup: F) -> Self {
        Env { lookup }
    }

    fn get(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&self, var: &'static str, hint: &'static str) -> Result<String, ConfigError> {
        self.get(var).ok_or(ConfigError::Missing { var, hint })
    }

    pub fn optional(&self, var: &'static str) -> Option<String> {
        self.get(var)
    }

    pub fn parse_or<T: FromStr>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(var) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|e: T::Err| ConfigError::Invalid {
                var,
                reason: e.to_string(),
            }),
        }
    }

    /// A comma-separated list; empty entries are ignored.
    pub fn list(&self, var: &'static str) -> Vec<String> {
        self.get(var)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn secs_or(&self, var: &'static str, default: u64) -> Result<Duration, ConfigError> {
        self.parse_or(var, default).map(Duration::from_secs)
    }
}

/// Settings every function shares.
#[derive(Debug, Clone)]
pub struct CommonConfig {
    /// `TABLE_NAME`: the one DynamoDB table (events, jobs, calls, tokens).
    pub table_name: String,
    /// `SECRETS_CACHE_TTL_SECS` (default 300): how long a secret is used before it is re-read.
    pub secrets_ttl: Duration,
}

impl CommonConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            table_name: env.required("TABLE_NAME", "the DynamoDB table created by the stack")?,
            secrets_ttl: env.secs_or("SECRETS_CACHE_TTL_SECS", 300)?,
        })
    }
}

/// The Salesforce ingest function's settings.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    pub common: CommonConfig,
    /// `SF_INGEST_SECRET_ARN`: JSON `{"signing_secrets":[…],"outbound_message_token":"…"}`.
    pub secret_arn: String,
    /// `SF_SIGNATURE_SCHEME` (default `v2`): `v2` timestamped hex, or the legacy `v1` base64.
    pub scheme: SalesforceScheme,
    /// `SF_SIGNATURE_TOLERANCE_SECS` (default 300): allowed clock skew for v2 timestamps.
    pub tolerance_secs: i64,
    /// `SF_OUTBOUND_ORG_IDS`: organisation ids allowed to send Outbound Messages (comma-separated).
    pub outbound_org_ids: Vec<SalesforceId>,
    /// `MAX_BODY_BYTES` (default 262144): larger bodies get 413.
    pub max_body_bytes: usize,
    /// `EVENT_TTL_DAYS` (default 7): how long an event (and so its dedup record) is kept.
    pub event_ttl: Duration,
}

impl IngestConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let tolerance_secs: i64 = env.parse_or("SF_SIGNATURE_TOLERANCE_SECS", 300)?;
        if !(1..=3600).contains(&tolerance_secs) {
            return Err(ConfigError::Invalid {
                var: "SF_SIGNATURE_TOLERANCE_SECS",
                reason: "must be between 1 and 3600 seconds".into(),
            });
        }
        let outbound_org_ids = env
            .list("SF_OUTBOUND_ORG_IDS")
            .iter()
            .map(|id| {
                SalesforceId::parse("SF_OUTBOUND_ORG_IDS", id).map_err(|e| ConfigError::Invalid {
                    var: "SF_OUTBOUND_ORG_IDS",
                    reason: e.problem,
                })
            })
            .collect::<Result<_, _>>()?;
        let max_body_bytes = env.parse_or("MAX_BODY_BYTES", 256 * 1024usize)?;
        let ttl_days: u64 = env.parse_or("EVENT_TTL_DAYS", 7)?;
        if ttl_days == 0 {
            return Err(ConfigError::Invalid {
                var: "EVENT_TTL_DAYS",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            common: CommonConfig::from_env(env)?,
            secret_arn: env.required(
                "SF_INGEST_SECRET_ARN",
                "the ARN or name of the ingest secret",
            )?,
            scheme: env.parse_or("SF_SIGNATURE_SCHEME", SalesforceScheme::V2)?,
            tolerance_secs,
            outbound_org_ids,
            max_body_bytes,
            event_ttl: Duration::from_secs(ttl_days * 86_400),
        })
    }
}

/// The AWS SDK configuration from the environment (region, credentials, and endpoint overrides
/// such as `AWS_ENDPOINT_URL_DYNAMODB`, which is how local runs reach DynamoDB Local and moto).
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// Timeouts for AWS calls on a request path: connect 1 s, attempt 2 s, whole operation 6 s.
pub fn request_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(6))
        .build()
}

/// Secrets Manager client settings with the same short timeouts.
pub fn secrets_client_config(
    sdk: &aws_config::SdkConfig,
) -> aws_sdk_secretsmanager::config::Builder {
    aws_sdk_secretsmanager::config::Builder::from(sdk).timeout_config(request_timeouts())
}

pub fn secrets_client(sdk: &aws_config::SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::from_conf(secrets_client_config(sdk).build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::new(move |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply() {
        let c = IngestConfig::from_env(&env(&[("TABLE_NAME", "t"), ("SF_INGEST_SECRET_ARN", "s")]))
            .unwrap();
        assert_eq!(c.scheme, SalesforceScheme::V2);
        assert_eq!(c.tolerance_secs, 300);
        assert_eq!(c.max_body_bytes, 262_144);
        assert_eq!(c.event_ttl, Duration::from_secs(7 * 86_400));
        assert!(c.outbound_org_ids.is_empty());
    }

    #[test]
    fn errors_name_the_variable() {
        let e = IngestConfig::from_env(&env(&[("SF_INGEST_SECRET_ARN", "s")])).unwrap_err();
        assert!(e.to_string().contains("TABLE_NAME"), "{e}");
        let e = IngestConfig::from_env(&env(&[("TABLE_NAME", "t")])).unwrap_err();
        assert!(e.to_string().contains("SF_INGEST_SECRET_ARN"), "{e}");
        let e = IngestConfig::from_env(&env(&[
            ("TABLE_NAME", "t"),
            ("SF_INGEST_SECRET_ARN", "s"),
            ("SF_SIGNATURE_SCHEME", "v3"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("SF_SIGNATURE_SCHEME"), "{e}");
        let e = IngestConfig::from_env(&env(&[
            ("TABLE_NAME", "t"),
            ("SF_INGEST_SECRET_ARN", "s"),
            ("SF_OUTBOUND_ORG_IDS", "00D5e000000AbCdEAK, nope"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("SF_OUTBOUND_ORG_IDS"), "{e}");
    }
}
