//! `sfvapi-admin doctor`: one checklist of what a deployment needs to place its first call, each
//! line pass / warn / fail with the fix. The checks read the stack as its functions do (their
//! environment variables, [`Target::env`]) and ask each service with the stack's own secrets:
//!
//! - `secret.*`: every secret the stack names is there, in its shape, every field filled and
//!   at least [`crate::secrets::MIN_SECRET_CHARS`] long where a key must be ([`secrets`]);
//! - `salesforce.*`: the token item is fresh, a REST call works, the Task external-id field is
//!   External ID + Unique, every Contact field read exists, every `writeBack` field exists and
//!   is updateable ([`salesforce`]);
//! - `vapi.*`: the key works, each assistant exists, sends to the stack's webhook through an
//!   existing HMAC credential signing with a secret the stack accepts, has a backoff plan and
//!   asks for the server messages sfvapi acts on
//!   ([`vapi`]);
//! - `twilio.*`: the credentials work and the account is active.
//!
//! A secret's value is never part of a check's text: only the names of its fields.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::config::Env;
use crate::secrets::SecretsCache;

pub mod salesforce;
pub mod secrets;
pub mod twilio;
pub mod vapi;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Self::Pass => "PASS",
            Self::Warn => "WARN",
            Self::Fail => "FAIL",
        }
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable, dotted: `secret.vapi-server`, `salesforce.task-external-id`,
    /// `vapi.assistant.<id>.server-url`…
    pub id: String,
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// What to do (failures and warnings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(id: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
        }
    }
    pub fn warn(id: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            status: Status::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    pub fn fail(id: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// The whole checklist.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn ok(&self) -> bool {
        !self.checks.iter().any(|c| c.status == Status::Fail)
    }

    pub fn failed(&self) -> Vec<&Check> {
        self.with(Status::Fail)
    }

    pub fn with(&self, status: Status) -> Vec<&Check> {
        self.checks.iter().filter(|c| c.status == status).collect()
    }

    pub fn get(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// The checklist as a person reads it: one line per check, the fix under each failure or
    /// warning, a count at the end.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            out.push_str(&format!("{}  {}: {}\n", c.status.label(), c.id, c.detail));
            if let Some(fix) = &c.fix {
                out.push_str(&format!("      fix: {fix}\n"));
            }
        }
        out.push_str(&format!(
            "{} passed, {} warnings, {} failed\n",
            self.with(Status::Pass).len(),
            self.with(Status::Warn).len(),
            self.with(Status::Fail).len()
        ));
        out
    }

    /// `{"ok": bool, "checks": [{"id","status","detail","fix"?}]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({"ok": self.ok(), "checks": self.checks})
    }
}

/// What is checked: the stack's variables (as its functions see them) and its public webhook.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `TABLE_NAME`, the `*_SECRET_ARN`s, `VAPI_BASE_URL`, `VAPI_ASSISTANT_ID`,
    /// `VAPI_INBOUND_ASSISTANT_ID`, `SF_*`, `TWILIO_*`, `ROUTING_FILE`…
    pub env: BTreeMap<String, String>,
    /// The stack's `…/vapi/webhook` URL, what every assistant's `server.url` must be.
    pub webhook_url: Option<String>,
}

impl Target {
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    pub fn lookup(&self) -> Env<impl Fn(&str) -> Option<String> + '_> {
        Env::new(move |k: &str| self.var(k).map(str::to_owned))
    }
}

/// Run every check against `target`, reading secrets and the table through `sdk`.
pub async fn run(target: &Target, sdk: &aws_config::SdkConfig) -> Report {
    // No caching across checks: each read is the secret as it is now.
    let cache = SecretsCache::new(crate::config::secrets_client(sdk), Duration::ZERO);
    let mut report = Report::default();
    let read = secrets::check_all(target, &cache).await;
    report.checks.extend(read.checks);
    report
        .checks
        .extend(salesforce::check(target, sdk, &cache).await);
    report
        .checks
        .extend(vapi::check(target, read.vapi_api_key.as_ref(), &read.server_secrets).await);
    report
        .checks
        .extend(twilio::check(target, read.twilio.as_ref()).await);
    report
}
