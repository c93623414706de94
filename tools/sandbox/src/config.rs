//! The sandbox's configuration: every flag, its environment variable and its default.
//!
//! Defaults are test values only, chosen so `sfvapi-sandbox` runs with no arguments; a flag wins
//! over its environment variable, which wins over the default.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// How the fake Vapi behaves after `POST /call`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// The customer answers, the assistant looks them up, the customer hangs up.
    Normal,
    /// Ringing, then `endedReason: customer-did-not-answer`; no tool call.
    NoAnswer,
    /// The first `outage_count` `POST /call` answer 500, then calls behave as `normal`.
    Outage,
    /// The customer answers and asks not to be called again: the assistant calls its
    /// `doNotCall` tool (docs/calling-policy.md), then she hangs up.
    OptOut,
    /// The customer answers and asks for a person: Vapi's `transferCall` tool (no destinations
    /// in `events/assistant.json`) sends `transfer-destination-request` to the server URL
    /// (Vapi OpenAPI `ServerMessageTransferDestinationRequest`); a `destination` in the answer is
    /// dialled (`transfer-update`, the call ends `assistant-forwarded-call`), a `message` is
    /// said and the call goes on.
    Transfer,
}

impl std::str::FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "normal" => Ok(Self::Normal),
            "no-answer" => Ok(Self::NoAnswer),
            "outage" => Ok(Self::Outage),
            "opt-out" => Ok(Self::OptOut),
            "transfer" => Ok(Self::Transfer),
            other => Err(format!(
                "unknown scenario {other:?}, expected normal, no-answer, outage, opt-out or transfer"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SalesforceConfig {
    pub client_id: String,
    pub client_secret: String,
    /// The user the issued tokens act as (also accepted as the JWT `sub`).
    pub username: String,
    /// The org's session timeout: how long an issued access token stays valid.
    pub session_timeout_secs: u64,
    /// The Task field `PATCH /sobjects/Task/{field}/{value}` may upsert by.
    pub task_external_id_field: String,
    /// The `M` of `Sforce-Limit-Info: api-usage=N/M`; calls beyond it answer 403.
    pub api_limit: u64,
    /// The `aud` a JWT bearer assertion must carry (Salesforce: `https://login.salesforce.com`,
    /// `https://test.salesforce.com` or an Experience Cloud site URL).
    pub jwt_audience: String,
    /// The org's id (an Event Relay's partner event source is named after it).
    pub org_id: String,
    /// EventBridge's endpoint (moto) where an event relay's partner event source is created, as
    /// Salesforce creates it in the named credential's account; none: not created.
    pub eventbridge_url: Option<String>,
}

/// The `excludedStatusCodes` of the example assistant's `server.backoffPlan`
/// (`events/assistant.json`): answers a retry would only repeat.
pub const RETRY_EXCLUDED_STATUS: &[u16] = &[400, 401, 403, 404, 413];

#[derive(Debug, Clone)]
pub struct VapiConfig {
    /// The private key `POST /call` requires as `Authorization: Bearer …`.
    pub api_key: String,
    /// Where server messages go (the assistant's server URL); none means calls stay silent.
    pub server_url: Option<String>,
    /// The HMAC credential's secret key.
    pub server_secret: String,
    /// Also send `X-Vapi-Secret: <server_secret>` (Vapi's plain-secret credential).
    pub send_secret_header: bool,
    pub scenario: Scenario,
    /// How many `POST /call` fail in the outage scenario before it recovers.
    pub outage_count: u32,
    /// Send every server message twice, as a Vapi that retries after a lost answer would.
    pub deliver_twice: bool,
    /// Pause before each server message.
    pub message_delay: Duration,
    /// Attempts per server message. 1 by default: Vapi does not retry a failed server request
    /// unless the assistant's `server.backoffPlan` says so (Vapi OpenAPI `BackoffPlan.maxRetries`,
    /// default 0). More than 1 acts like a backoff plan: any non-2xx answer not in
    /// [`RETRY_EXCLUDED_STATUS`] (and a failed connection) is tried again.
    pub delivery_attempts: u32,
    /// The org's concurrency limit: calls live at once (Vapi's default is 10,
    /// https://docs.vapi.ai/calls/call-concurrency). A `POST /call` beyond it is a 201 with
    /// `subscriptionLimits.concurrencyBlocked: true` and no call.
    pub concurrency_limit: u32,
    /// Vapi's `server.timeoutSeconds` (default 20 s).
    pub delivery_timeout: Duration,
    pub org_id: String,
}

#[derive(Debug, Clone)]
pub struct TwilioConfig {
    pub account_sid: String,
    pub auth_token: String,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Interface the three listeners bind (loopback by default).
    pub bind_host: IpAddr,
    /// Host put in the advertised base URLs (and Salesforce's `instance_url`); defaults to
    /// `bind_host`, or 127.0.0.1 when binding every interface.
    pub advertise_host: Option<String>,
    pub salesforce_port: u16,
    pub vapi_port: u16,
    pub twilio_port: u16,
    pub salesforce: SalesforceConfig,
    pub vapi: VapiConfig,
    pub twilio: TwilioConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            bind_host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            advertise_host: None,
            salesforce_port: 0,
            vapi_port: 0,
            twilio_port: 0,
            salesforce: SalesforceConfig {
                client_id: "sandbox-client-id".into(),
                client_secret: "sandbox-client-secret".into(),
                username: "integration@sandbox.example.com".into(),
                session_timeout_secs: 7200,
                task_external_id_field: "Vapi_Call_Id__c".into(),
                api_limit: 15_000,
                jwt_audience: "https://login.salesforce.com".into(),
                org_id: sfvapi::samples::LOCAL_RELAY_ORG_ID.into(),
                eventbridge_url: std::env::var("AWS_ENDPOINT_URL_EVENTBRIDGE")
                    .ok()
                    .filter(|u| !u.is_empty()),
            },
            vapi: VapiConfig {
                api_key: "sandbox-vapi-key".into(),
                server_url: None,
                // At least 32 characters: sfvapi refuses shorter server secrets at load.
                server_secret: "sandbox-vapi-secret-local-not-secret".into(),
                send_secret_header: false,
                scenario: Scenario::Normal,
                outage_count: 2,
                deliver_twice: false,
                message_delay: Duration::from_millis(100),
                delivery_attempts: 1,
                concurrency_limit: 10,
                delivery_timeout: Duration::from_secs(20),
                org_id: "org-sandbox".into(),
            },
            twilio: TwilioConfig {
                account_sid: "AC0123456789abcdef0123456789abcdef".into(),
                auth_token: "sandbox-twilio-token".into(),
            },
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("unknown flag {0}; run with --help for the list")]
    UnknownFlag(String),
    #[error("flag {0} needs a value")]
    MissingValue(String),
    #[error("{name} = {value:?}: {problem}")]
    Invalid {
        name: String,
        value: String,
        problem: String,
    },
    /// Not an error: the caller prints `USAGE` and exits 0.
    #[error("help requested")]
    Help,
}

/// (flag, env var, takes a value, help). One table drives parsing and `--help`.
const FLAGS: &[(&str, &str, bool, &str)] = &[
    (
        "--host",
        "SANDBOX_HOST",
        true,
        "interface to bind (default 127.0.0.1)",
    ),
    (
        "--advertise-host",
        "SANDBOX_ADVERTISE_HOST",
        true,
        "host in the printed URLs and instance_url (default: --host, or 127.0.0.1 for 0.0.0.0)",
    ),
    (
        "--salesforce-port",
        "SANDBOX_SALESFORCE_PORT",
        true,
        "fake Salesforce port (0 = pick a free one; default 0)",
    ),
    (
        "--vapi-port",
        "SANDBOX_VAPI_PORT",
        true,
        "fake Vapi port (default 0)",
    ),
    (
        "--twilio-port",
        "SANDBOX_TWILIO_PORT",
        true,
        "fake Twilio port (default 0)",
    ),
    (
        "--sf-client-id",
        "SANDBOX_SF_CLIENT_ID",
        true,
        "OAuth client id (default sandbox-client-id)",
    ),
    (
        "--sf-client-secret",
        "SANDBOX_SF_CLIENT_SECRET",
        true,
        "OAuth client secret (default sandbox-client-secret)",
    ),
    (
        "--sf-username",
        "SANDBOX_SF_USERNAME",
        true,
        "integration user (default integration@sandbox.example.com)",
    ),
    (
        "--sf-jwt-audience",
        "SANDBOX_SF_JWT_AUDIENCE",
        true,
        "the JWT bearer `aud` accepted (default https://login.salesforce.com)",
    ),
    (
        "--sf-session-timeout-secs",
        "SANDBOX_SF_SESSION_TIMEOUT_SECS",
        true,
        "access token lifetime (default 7200)",
    ),
    (
        "--sf-task-external-id-field",
        "SANDBOX_SF_TASK_EXTERNAL_ID_FIELD",
        true,
        "Task upsert field (default Vapi_Call_Id__c)",
    ),
    (
        "--sf-api-limit",
        "SANDBOX_SF_API_LIMIT",
        true,
        "daily API request limit (default 15000)",
    ),
    (
        "--vapi-api-key",
        "SANDBOX_VAPI_API_KEY",
        true,
        "private key POST /call requires (default sandbox-vapi-key)",
    ),
    (
        "--vapi-server-url",
        "SANDBOX_VAPI_SERVER_URL",
        true,
        "where server messages are sent (default: none, calls stay silent)",
    ),
    (
        "--vapi-secret",
        "SANDBOX_VAPI_SECRET",
        true,
        "HMAC secret for x-signature (default sandbox-vapi-secret-local-not-secret)",
    ),
    (
        "--vapi-send-secret-header",
        "SANDBOX_VAPI_SEND_SECRET_HEADER",
        false,
        "also send X-Vapi-Secret",
    ),
    (
        "--scenario",
        "SANDBOX_SCENARIO",
        true,
        "normal | no-answer | outage (default normal)",
    ),
    (
        "--outage-count",
        "SANDBOX_OUTAGE_COUNT",
        true,
        "POST /call failures in the outage scenario (default 2)",
    ),
    (
        "--deliver-twice",
        "SANDBOX_DELIVER_TWICE",
        false,
        "send every server message twice",
    ),
    (
        "--message-delay-ms",
        "SANDBOX_MESSAGE_DELAY_MS",
        true,
        "pause before each server message (default 100)",
    ),
    (
        "--delivery-attempts",
        "SANDBOX_DELIVERY_ATTEMPTS",
        true,
        "tries per server message (default 1: Vapi retries only with a server.backoffPlan; N > 1 retries like one)",
    ),
    (
        "--vapi-concurrency-limit",
        "SANDBOX_VAPI_CONCURRENCY_LIMIT",
        true,
        "calls live at once before POST /call answers concurrencyBlocked (default 10, Vapi's default)",
    ),
    (
        "--twilio-account-sid",
        "SANDBOX_TWILIO_ACCOUNT_SID",
        true,
        "Account SID (default AC0123456789abcdef0123456789abcdef)",
    ),
    (
        "--twilio-auth-token",
        "SANDBOX_TWILIO_AUTH_TOKEN",
        true,
        "Auth token (default sandbox-twilio-token)",
    ),
];

/// The `--help` text.
pub fn usage() -> String {
    let mut s = String::from(
        "sfvapi-sandbox: local fake Salesforce, Vapi and Twilio for the sfvapi demo and e2e tests.\n\
         Prints one JSON line with the three base URLs on stdout, then serves until Ctrl-C.\n\n\
         Flags (each also read from the environment variable shown):\n",
    );
    for (flag, env, takes, help) in FLAGS {
        let arg = if *takes { " <value>" } else { "" };
        s.push_str(&format!("  {flag}{arg}\n      {help} [{env}]\n"));
    }
    s
}

impl Config {
    /// Parse command-line arguments (without the program name) over environment variables.
    pub fn from_args(
        args: impl IntoIterator<Item = String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut given: Vec<(&'static str, String)> = Vec::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                return Err(ConfigError::Help);
            }
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (arg.clone(), None),
            };
            let Some((flag, _, takes, _)) = FLAGS.iter().find(|f| f.0 == name) else {
                return Err(ConfigError::UnknownFlag(arg));
            };
            let value = if *takes {
                match inline {
                    Some(v) => v,
                    None => args
                        .next()
                        .ok_or_else(|| ConfigError::MissingValue(name.clone()))?,
                }
            } else {
                inline.unwrap_or_else(|| "true".into())
            };
            given.push((flag, value));
        }
        let lookup = |flag: &str| -> Option<(String, String)> {
            if let Some((_, v)) = given.iter().rev().find(|(f, _)| *f == flag) {
                return Some((flag.to_owned(), v.clone()));
            }
            let (_, env_name, _, _) = FLAGS.iter().find(|f| f.0 == flag)?;
            env(env_name)
                .filter(|v| !v.is_empty())
                .map(|v| ((*env_name).to_owned(), v))
        };

        let mut c = Config::default();
        if let Some(v) = lookup("--host") {
            c.bind_host = parse(&v, "an IP address such as 127.0.0.1")?;
        }
        c.advertise_host = lookup("--advertise-host").map(|(_, v)| v);
        if let Some(v) = lookup("--salesforce-port") {
            c.salesforce_port = parse(&v, "a port number (0 = any free port)")?;
        }
        if let Some(v) = lookup("--vapi-port") {
            c.vapi_port = parse(&v, "a port number (0 = any free port)")?;
        }
        if let Some(v) = lookup("--twilio-port") {
            c.twilio_port = parse(&v, "a port number (0 = any free port)")?;
        }
        let sf = &mut c.salesforce;
        set_string(&mut sf.client_id, lookup("--sf-client-id"))?;
        set_string(&mut sf.client_secret, lookup("--sf-client-secret"))?;
        set_string(&mut sf.username, lookup("--sf-username"))?;
        set_string(&mut sf.jwt_audience, lookup("--sf-jwt-audience"))?;
        if let Some(v) = lookup("--sf-session-timeout-secs") {
            sf.session_timeout_secs = parse(&v, "whole seconds")?;
        }
        set_string(
            &mut sf.task_external_id_field,
            lookup("--sf-task-external-id-field"),
        )?;
        if let Some(v) = lookup("--sf-api-limit") {
            sf.api_limit = parse(&v, "a whole number")?;
        }
        let vapi = &mut c.vapi;
        set_string(&mut vapi.api_key, lookup("--vapi-api-key"))?;
        if let Some((name, value)) = lookup("--vapi-server-url") {
            let parsed = url::Url::parse(&value).map_err(|e| ConfigError::Invalid {
                name,
                value: value.clone(),
                problem: format!("not a URL ({e})"),
            })?;
            vapi.server_url = Some(parsed.to_string());
        }
        set_string(&mut vapi.server_secret, lookup("--vapi-secret"))?;
        if let Some(v) = lookup("--vapi-send-secret-header") {
            vapi.send_secret_header = parse_bool(&v)?;
        }
        if let Some(v) = lookup("--scenario") {
            vapi.scenario = parse(&v, "normal, no-answer or outage")?;
        }
        if let Some(v) = lookup("--outage-count") {
            vapi.outage_count = parse(&v, "a whole number")?;
        }
        if let Some(v) = lookup("--deliver-twice") {
            vapi.deliver_twice = parse_bool(&v)?;
        }
        if let Some(v) = lookup("--message-delay-ms") {
            vapi.message_delay = Duration::from_millis(parse(&v, "milliseconds")?);
        }
        if let Some(v) = lookup("--delivery-attempts") {
            let n: u32 = parse(&v, "a whole number from 1")?;
            if n == 0 {
                return Err(invalid(&v, "must be at least 1"));
            }
            vapi.delivery_attempts = n;
        }
        if let Some(v) = lookup("--vapi-concurrency-limit") {
            vapi.concurrency_limit = parse(&v, "a whole number")?;
        }
        set_string(&mut c.twilio.account_sid, lookup("--twilio-account-sid"))?;
        set_string(&mut c.twilio.auth_token, lookup("--twilio-auth-token"))?;
        Ok(c)
    }

    /// The host the base URLs advertise.
    pub fn advertised_host(&self) -> String {
        match (&self.advertise_host, self.bind_host) {
            (Some(h), _) => h.clone(),
            (None, ip) if ip.is_unspecified() => "127.0.0.1".into(),
            (None, IpAddr::V6(ip)) => format!("[{ip}]"),
            (None, ip) => ip.to_string(),
        }
    }
}

fn invalid((name, value): &(String, String), problem: &str) -> ConfigError {
    ConfigError::Invalid {
        name: name.clone(),
        value: value.clone(),
        problem: problem.into(),
    }
}

fn parse<T: std::str::FromStr>(v: &(String, String), expected: &str) -> Result<T, ConfigError> {
    v.1.trim()
        .parse()
        .map_err(|_| invalid(v, &format!("expected {expected}")))
}

fn parse_bool(v: &(String, String)) -> Result<bool, ConfigError> {
    match v.1.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(v, "expected true or false")),
    }
}

fn set_string(slot: &mut String, v: Option<(String, String)>) -> Result<(), ConfigError> {
    if let Some(v) = v {
        if v.1.trim().is_empty() {
            return Err(invalid(&v, "must not be empty"));
        }
        *slot = v.1.trim().to_owned();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_beat_env_and_env_beats_defaults() {
        let env = |k: &str| match k {
            "SANDBOX_VAPI_PORT" => Some("7001".to_string()),
            "SANDBOX_SCENARIO" => Some("outage".to_string()),
            _ => None,
        };
        let c = Config::from_args(
            args(&[
                "--vapi-port",
                "7002",
                "--deliver-twice",
                "--twilio-port=7003",
            ]),
            env,
        )
        .unwrap();
        assert_eq!(c.vapi_port, 7002);
        assert_eq!(c.twilio_port, 7003);
        assert_eq!(c.vapi.scenario, Scenario::Outage);
        assert!(c.vapi.deliver_twice);
        assert_eq!(c.salesforce_port, 0);
    }

    #[test]
    fn vapi_defaults_follow_vapi_and_are_switchable() {
        // Vapi's defaults: no retry without a backoffPlan, 10 concurrent calls.
        let c = Config::from_args(args(&[]), |_| None).unwrap();
        assert_eq!(c.vapi.delivery_attempts, 1);
        assert_eq!(c.vapi.concurrency_limit, 10);
        let env = |k: &str| (k == "SANDBOX_VAPI_CONCURRENCY_LIMIT").then(|| "3".to_string());
        let c = Config::from_args(args(&["--delivery-attempts", "4"]), env).unwrap();
        assert_eq!(c.vapi.delivery_attempts, 4);
        assert_eq!(c.vapi.concurrency_limit, 3);
        let e = Config::from_args(args(&["--vapi-concurrency-limit", "-1"]), |_| None);
        assert!(e.is_err_and(|e| e.to_string().contains("--vapi-concurrency-limit")));
    }

    #[test]
    fn bad_values_name_the_flag() {
        let e = Config::from_args(args(&["--scenario", "chaos"]), |_| None).unwrap_err();
        assert!(e.to_string().contains("--scenario"), "{e}");
        let e = Config::from_args(args(&["--vapi-port"]), |_| None).unwrap_err();
        assert_eq!(e, ConfigError::MissingValue("--vapi-port".into()));
        let e = Config::from_args(args(&["--nope"]), |_| None).unwrap_err();
        assert!(matches!(e, ConfigError::UnknownFlag(_)));
        let e = Config::from_args(args(&["--vapi-server-url", "not a url"]), |_| None);
        assert!(e.is_err());
    }
}
