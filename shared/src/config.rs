//! Typed configuration from environment variables, validated once at cold start.
//! A missing or invalid setting stops the function's init with a message naming the variable,
//! so a bad deploy fails loudly at the first invocation instead of misbehaving later.

use std::str::FromStr;
use std::time::Duration;

use crate::ids::SalesforceId;
use crate::signature::SalesforceScheme;

/// Why a function cannot start. Its `Debug` is its message: a bootstrap's `main` returns it, and
/// the runtime prints it with `{:?}` as the init error the function's log shows.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("environment variable {var} is required but not set ({hint})")]
    Missing {
        var: &'static str,
        hint: &'static str,
    },
    #[error("environment variable {var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
    /// The routing document (`routing.yaml` or `ROUTING_FILE`) is unreadable or invalid.
    #[error(transparent)]
    Routing(#[from] crate::routing::RoutingError),
    /// More than one of the above: every problem of a function's configuration, so one init
    /// (one `cargo lambda invoke`, one deploy) names them all instead of one per restart.
    #[error("{} configuration problems, fix them all before the next start:{}", .0.len(), list(.0))]
    Several(Vec<ConfigError>),
}

fn list(problems: &[ConfigError]) -> String {
    problems.iter().map(|p| format!("\n  - {p}")).collect()
}

impl ConfigError {
    /// The variables this error names (`Routing`: `ROUTING_FILE`), in order.
    pub fn vars(&self) -> Vec<&'static str> {
        match self {
            Self::Missing { var, .. } | Self::Invalid { var, .. } => vec![var],
            Self::Routing(_) => vec![crate::routing::ROUTING_FILE],
            Self::Several(all) => all.iter().flat_map(Self::vars).collect(),
        }
    }
}

/// Collects every problem of a configuration while it is read, so each variable is still
/// checked after an earlier one failed; [`Problems::finish`] answers them all at once.
#[derive(Debug, Default)]
pub struct Problems(Vec<ConfigError>);

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem (those of a nested configuration one by one).
    pub fn push(&mut self, e: ConfigError) {
        match e {
            ConfigError::Several(all) => self.0.extend(all),
            e => self.0.push(e),
        }
    }

    /// The value, or `None` after recording why.
    pub fn ok<T>(&mut self, r: Result<T, ConfigError>) -> Option<T> {
        r.map_err(|e| self.push(e)).ok()
    }

    /// The value, or `fallback` after recording why, so the checks after it still run. The
    /// fallback never leaves the configuration: [`Problems::finish`] then answers the problems.
    pub fn or<T>(&mut self, r: Result<T, ConfigError>, fallback: T) -> T {
        self.ok(r).unwrap_or(fallback)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `value` when nothing was wrong; else the one problem, or all of them.
    pub fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.into_error())
        }
    }

    /// The problems as one error: for a configuration that could not be built because a part
    /// of it (recorded here) is missing.
    pub fn into_error(mut self) -> ConfigError {
        match self.0.len() {
            1 => self.0.remove(0),
            _ => ConfigError::Several(self.0),
        }
    }
}

impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
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

/// `EVENT_TTL_DAYS` (default 7, at least 1) for the functions that store Salesforce events (the
/// ingest and the relay): how long an event, and so its dedup record, is kept.
pub fn event_ttl_days<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<u64, ConfigError> {
    let ttl_days: u64 = env.parse_or("EVENT_TTL_DAYS", 7)?;
    if ttl_days == 0 {
        return Err(ConfigError::Invalid {
            var: "EVENT_TTL_DAYS",
            reason: "must be at least 1".into(),
        });
    }
    Ok(ttl_days)
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

/// Reading the routing document named by the environment is configuration's job, so this
/// constructor lives here: `routing` itself knows nothing of `Env` (it sits below `config`).
impl crate::routing::Routing {
    /// The document the function runs with: `ROUTING_FILE` if set, else the built-in one.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        match env.optional(crate::routing::ROUTING_FILE) {
            None => Ok(Self::built_in()?),
            Some(path) => Ok(Self::load_file(&path)?),
        }
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
        let mut p = Problems::new();
        let c = Self::collect(env, &mut p);
        p.finish(c)
    }

    /// The settings, recording each problem in `p` (with a fallback in its place).
    pub fn collect<F: Fn(&str) -> Option<String>>(env: &Env<F>, p: &mut Problems) -> Self {
        Self {
            table_name: p.or(
                env.required("TABLE_NAME", "the DynamoDB table created by the stack"),
                String::new(),
            ),
            secrets_ttl: p.or(
                env.secs_or("SECRETS_CACHE_TTL_SECS", 300),
                Duration::from_secs(300),
            ),
        }
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
    /// The routing document (`ROUTING_FILE`, else the built-in `routing.yaml`).
    pub routing: std::sync::Arc<crate::routing::Routing>,
}

impl IngestConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let mut p = Problems::new();
        let mut tolerance_secs: i64 = p.or(env.parse_or("SF_SIGNATURE_TOLERANCE_SECS", 300), 300);
        if !(1..=3600).contains(&tolerance_secs) {
            p.push(ConfigError::Invalid {
                var: "SF_SIGNATURE_TOLERANCE_SECS",
                reason: "must be between 1 and 3600 seconds".into(),
            });
            tolerance_secs = 300;
        }
        let outbound_org_ids = env
            .list("SF_OUTBOUND_ORG_IDS")
            .iter()
            .filter_map(|id| {
                p.ok(SalesforceId::parse("SF_OUTBOUND_ORG_IDS", id).map_err(|e| {
                    ConfigError::Invalid {
                        var: "SF_OUTBOUND_ORG_IDS",
                        reason: format!("{id:?} {}", e.problem),
                    }
                }))
            })
            .collect();
        let max_body_bytes = p.or(env.parse_or("MAX_BODY_BYTES", 256 * 1024usize), 0);
        let ttl_days = p.or(event_ttl_days(env), 7);
        let common = CommonConfig::collect(env, &mut p);
        let secret_arn = p.or(
            env.required(
                "SF_INGEST_SECRET_ARN",
                "the ARN or name of the ingest secret",
            ),
            String::new(),
        );
        let scheme = p.or(
            env.parse_or("SF_SIGNATURE_SCHEME", SalesforceScheme::V2),
            SalesforceScheme::V2,
        );
        let Some(routing) = p.ok(crate::routing::Routing::from_env(env)) else {
            return Err(p.into_error());
        };
        p.finish(Self {
            common,
            secret_arn,
            scheme,
            tolerance_secs,
            outbound_org_ids,
            max_body_bytes,
            event_ttl: Duration::from_secs(ttl_days * 86_400),
            routing: std::sync::Arc::new(routing),
        })
    }
}

/// The AWS SDK configuration from the environment (region, credentials, and endpoint overrides
/// such as `AWS_ENDPOINT_URL_DYNAMODB`, which is how local runs reach DynamoDB Local and moto).
///
/// On Lambda the region and the function role's credentials are environment variables
/// (`AWS_REGION`; `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), the first
/// place the SDK's default chains look. When they are set, those providers are named directly:
/// the answer is the same, and the rest of the chains is not built at every cold start (profile
/// files, web identity with an STS client of its own, ECS, IMDS: ~2 M instructions, 8 % of the
/// ingest's init, `make bench`). Without them (a developer's profile, SSO) the default chains
/// run as before.
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    let env = Env::process();
    let set = |var: &'static str| env.optional(var).is_some();
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(crate::tls::aws_http_client());
    if set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY") {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    if set("AWS_REGION") || set("AWS_DEFAULT_REGION") {
        loader = loader.region(aws_config::environment::EnvironmentVariableRegionProvider::new());
    }
    loader.load().await
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

/// How a connection obtains access tokens (`SF_AUTH_FLOW`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SalesforceFlow {
    /// `refresh_token` (default): a refresh token in the connection secret, obtained once with
    /// the connect routes (`authorization_code` + PKCE) or by hand.
    RefreshToken,
    /// `client_credentials`: the Connected App's run-as user; posts to the My Domain URL.
    ClientCredentials,
    /// `jwt_bearer`: an RS256 assertion signed with the secret's `private_key_pem`.
    JwtBearer,
    /// `authorization_code`: same as `refresh_token` at run time; named for the one-time connect.
    AuthorizationCode,
}

impl FromStr for SalesforceFlow {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().replace('-', "_").as_str() {
            "refresh_token" => Ok(Self::RefreshToken),
            "client_credentials" => Ok(Self::ClientCredentials),
            "jwt_bearer" | "jwt" => Ok(Self::JwtBearer),
            "authorization_code" => Ok(Self::AuthorizationCode),
            other => Err(format!(
                "unknown flow {other:?}; use refresh_token, client_credentials, jwt_bearer or authorization_code"
            )),
        }
    }
}

/// One Salesforce connection: where to authenticate, how, and what to read and write.
#[derive(Debug, Clone)]
pub struct SalesforceConfig {
    /// `SF_CONNECTION` (default `default`): names the token item `token#salesforce#<connection>`.
    pub connection: String,
    /// `SF_CONNECTION_SECRET_ARN`: JSON `{"client_id","client_secret"?,"refresh_token"?,
    /// "private_key_pem"?,"username"?}`. Empty for a token reader ([`Self::for_token_reader`]).
    pub secret_arn: String,
    /// `SF_AUTH_FLOW` (default `refresh_token`).
    pub flow: SalesforceFlow,
    /// `SF_LOGIN_URL` (default `https://login.salesforce.com`; `https://test.salesforce.com` for
    /// sandboxes, or the org's My Domain URL): token endpoint of the refresh, JWT and code flows.
    pub login_url: url::Url,
    /// `SF_JWT_AUDIENCE`: the JWT bearer assertion's `aud`. Salesforce wants
    /// `https://login.salesforce.com`, `https://test.salesforce.com` or an Experience Cloud site
    /// URL there, never a My Domain URL, so it is kept apart from the token endpoint
    /// (<https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_jwt_flow.htm&type=5>).
    /// Default: `https://test.salesforce.com` when `SF_LOGIN_URL` is the test host, else
    /// `https://login.salesforce.com`. Stored without a trailing slash, as sent.
    pub jwt_audience: String,
    /// `SF_MY_DOMAIN_URL` (e.g. `https://acme.my.salesforce.com`): required by `client_credentials`.
    pub my_domain_url: Option<url::Url>,
    /// `SF_API_VERSION` (default `v62.0`).
    pub api_version: String,
    /// `SF_SESSION_TIMEOUT_SECS` (default 7200): the org's session timeout, i.e. token lifetime,
    /// because Salesforce's token response has no `expires_in`.
    pub session_timeout: Duration,
    /// `SF_TOKEN_INTROSPECTION` (default false): learn each token's `exp` from
    /// `POST /services/oauth2/introspect` instead of trusting the configured timeout.
    pub introspection: bool,
    /// `SF_CONTACT_CUSTOM_FIELDS` (default `Account_Status__c,Last_Contact_Date__c,Preferred_Language__c`).
    pub contact_custom_fields: Vec<String>,
    /// `SF_TASK_EXTERNAL_ID_FIELD` (default `Vapi_Call_Id__c`): the Task upsert key.
    pub task_external_id_field: String,
    /// `SF_REFRESH_MARGIN_SECS` (default 900): the scheduled refresher renews tokens with less left.
    pub refresh_margin: Duration,
    /// `SF_HTTP_TIMEOUT_SECS` (default 10): whole-request timeout for OAuth and REST calls.
    pub http_timeout: Duration,
    /// `SF_OAUTH_REDIRECT_URI`: the connect callback as registered in the Connected App
    /// (`https://<api>/oauth/salesforce/callback`); unset disables the connect routes.
    pub redirect_uri: Option<url::Url>,
    /// `SF_OAUTH_SCOPES` (default `api refresh_token`): scopes asked for by the connect flow.
    pub scopes: String,
}

fn parse_base_url(var: &'static str, raw: &str) -> Result<url::Url, ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        var,
        reason: reason.to_owned(),
    };
    let u = url::Url::parse(raw.trim_end_matches('/')).map_err(|e| invalid(&e.to_string()))?;
    let loopback = matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    // Plain http only reaches a local sandbox; anything else would send tokens in clear.
    if u.scheme() != "https" && !(u.scheme() == "http" && loopback) {
        return Err(invalid("must be an https URL"));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(invalid("must not have a query or fragment"));
    }
    Ok(u)
}

/// `SF_JWT_AUDIENCE` must be an https URL (Salesforce compares it as a string, so it is kept as
/// given, minus a trailing slash).
fn parse_jwt_audience(raw: &str) -> Result<String, ConfigError> {
    let raw = raw.trim().trim_end_matches('/');
    let invalid = |reason: String| ConfigError::Invalid {
        var: "SF_JWT_AUDIENCE",
        reason,
    };
    let u = url::Url::parse(raw).map_err(|e| invalid(format!("not a URL ({e})")))?;
    if u.scheme() != "https" || u.host_str().is_none() {
        return Err(invalid(
            "must be an https URL such as https://login.salesforce.com".into(),
        ));
    }
    Ok(raw.to_owned())
}

/// A field API name as it may appear in a URL: letters, digits, `_`, and `.` for relationships.
fn is_field_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 80
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
}

impl SalesforceConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let mut p = Problems::new();
        let c = Self::collect(env, &mut p);
        p.finish(c)
    }

    /// [`Self::from_env`], recording each problem in `p` (with a fallback in its place).
    pub fn collect<F: Fn(&str) -> Option<String>>(env: &Env<F>, p: &mut Problems) -> Self {
        let secret_arn = p.or(
            env.required(
                "SF_CONNECTION_SECRET_ARN",
                "the ARN or name of the Salesforce connection secret",
            ),
            String::new(),
        );
        Self::with_secret(env, secret_arn, p)
    }

    /// The settings of a function that only reads the shared token item and never refreshes
    /// (the Vapi webhook's live lookups): no connection secret.
    pub fn for_token_reader<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Self, ConfigError> {
        let mut p = Problems::new();
        let c = Self::with_secret(env, String::new(), &mut p);
        p.finish(c)
    }

    fn with_secret<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
        secret_arn: String,
        p: &mut Problems,
    ) -> Self {
        let invalid = |var: &'static str, reason: &str| ConfigError::Invalid {
            var,
            reason: reason.to_owned(),
        };
        let mut connection = env
            .optional("SF_CONNECTION")
            .unwrap_or_else(|| "default".into());
        if connection.len() > 64
            || !connection
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            p.push(invalid(
                "SF_CONNECTION",
                "must be 1 to 64 characters of A-Z a-z 0-9 - _",
            ));
            connection = "default".into();
        }
        let flow: SalesforceFlow = p.or(
            env.parse_or("SF_AUTH_FLOW", SalesforceFlow::RefreshToken),
            SalesforceFlow::RefreshToken,
        );
        let default_login =
            || url::Url::parse("https://login.salesforce.com").expect("a constant, valid URL");
        let login_url = match env.optional("SF_LOGIN_URL") {
            None => default_login(),
            Some(raw) => p
                .ok(parse_base_url("SF_LOGIN_URL", &raw))
                .unwrap_or_else(default_login),
        };
        let jwt_audience = match env.optional("SF_JWT_AUDIENCE") {
            Some(v) => p.or(parse_jwt_audience(&v), String::new()),
            None if login_url.host_str() == Some("test.salesforce.com") => {
                "https://test.salesforce.com".to_owned()
            }
            None => "https://login.salesforce.com".to_owned(),
        };
        let my_domain_url = env
            .optional("SF_MY_DOMAIN_URL")
            .and_then(|v| p.ok(parse_base_url("SF_MY_DOMAIN_URL", &v)));
        if flow == SalesforceFlow::ClientCredentials && env.optional("SF_MY_DOMAIN_URL").is_none() {
            p.push(ConfigError::Missing {
                var: "SF_MY_DOMAIN_URL",
                hint: "the client_credentials flow posts to the org's My Domain URL",
            });
        }
        let api_version = env
            .optional("SF_API_VERSION")
            .unwrap_or_else(|| "v62.0".into());
        let mut api_version = if api_version.starts_with('v') {
            api_version
        } else {
            format!("v{api_version}")
        };
        if !api_version[1..]
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            || !api_version.contains('.')
        {
            p.push(invalid("SF_API_VERSION", "must look like v62.0"));
            api_version = "v62.0".into();
        }
        let mut session_secs: u64 = p.or(env.parse_or("SF_SESSION_TIMEOUT_SECS", 7200), 7200);
        if !(300..=86_400).contains(&session_secs) {
            p.push(invalid(
                "SF_SESSION_TIMEOUT_SECS",
                "must be between 300 and 86400 (Salesforce session timeouts)",
            ));
            session_secs = 7200;
        }
        let mut custom = env.list("SF_CONTACT_CUSTOM_FIELDS");
        if env.optional("SF_CONTACT_CUSTOM_FIELDS").is_none() {
            custom = [
                "Account_Status__c",
                "Last_Contact_Date__c",
                "Preferred_Language__c",
            ]
            .map(String::from)
            .to_vec();
        }
        if let Some(bad) = custom.iter().find(|f| !is_field_name(f)) {
            p.push(ConfigError::Invalid {
                var: "SF_CONTACT_CUSTOM_FIELDS",
                reason: format!("{bad:?} is not a field API name"),
            });
        }
        let task_external_id_field = env
            .optional("SF_TASK_EXTERNAL_ID_FIELD")
            .unwrap_or_else(|| "Vapi_Call_Id__c".into());
        if !is_field_name(&task_external_id_field) || task_external_id_field.contains('.') {
            p.push(invalid(
                "SF_TASK_EXTERNAL_ID_FIELD",
                "must be a field API name",
            ));
        }
        let refresh_margin = p.or(
            env.secs_or("SF_REFRESH_MARGIN_SECS", 900),
            Duration::from_secs(900),
        );
        if refresh_margin.as_secs() >= session_secs {
            p.push(invalid(
                "SF_REFRESH_MARGIN_SECS",
                "must be shorter than SF_SESSION_TIMEOUT_SECS",
            ));
        }
        let http_timeout = p.or(
            env.secs_or("SF_HTTP_TIMEOUT_SECS", 10),
            Duration::from_secs(10),
        );
        if http_timeout.is_zero() || http_timeout.as_secs() > 60 {
            p.push(invalid("SF_HTTP_TIMEOUT_SECS", "must be between 1 and 60"));
        }
        let redirect_uri = env.optional("SF_OAUTH_REDIRECT_URI").and_then(|v| {
            p.ok(url::Url::parse(&v).map_err(|e| ConfigError::Invalid {
                var: "SF_OAUTH_REDIRECT_URI",
                reason: e.to_string(),
            }))
        });
        let introspection = p.or(env.parse_or("SF_TOKEN_INTROSPECTION", false), false);
        Self {
            connection,
            secret_arn,
            flow,
            login_url,
            jwt_audience,
            my_domain_url,
            api_version,
            session_timeout: Duration::from_secs(session_secs),
            introspection,
            contact_custom_fields: custom,
            task_external_id_field,
            refresh_margin,
            http_timeout,
            redirect_uri,
            scopes: env
                .optional("SF_OAUTH_SCOPES")
                .unwrap_or_else(|| "api refresh_token".into()),
        }
    }
}

/// The token refresher's settings: the table and the connection(s) it keeps fresh.
#[derive(Debug, Clone)]
pub struct TokenRefresherConfig {
    pub common: CommonConfig,
    pub salesforce: SalesforceConfig,
    /// `SF_OAUTH_STATE_TTL_SECS` (default 600): how long a started connect may take.
    pub oauth_state_ttl: Duration,
    /// `SF_OPERATOR_SECRET_ARN`: `{"operator_key":"…"}` (≥ 32 characters), required to start a
    /// connect. Its own secret, read by the refresher only. Unset disables the connect routes.
    pub operator_secret_arn: Option<String>,
}

impl TokenRefresherConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let mut p = Problems::new();
        let c = Self {
            common: CommonConfig::collect(env, &mut p),
            salesforce: SalesforceConfig::collect(env, &mut p),
            oauth_state_ttl: p.or(
                env.secs_or("SF_OAUTH_STATE_TTL_SECS", 600),
                Duration::from_secs(600),
            ),
            operator_secret_arn: env.optional("SF_OPERATOR_SECRET_ARN"),
        };
        p.finish(c)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(crate) fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
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

    #[test]
    fn every_problem_is_named_at_once() {
        let e = IngestConfig::from_env(&env(&[
            ("SF_SIGNATURE_SCHEME", "v3"),
            ("MAX_BODY_BYTES", "lots"),
            ("SF_OUTBOUND_ORG_IDS", "nope"),
        ]))
        .unwrap_err();
        assert_eq!(
            e.vars(),
            [
                "SF_OUTBOUND_ORG_IDS",
                "MAX_BODY_BYTES",
                "TABLE_NAME",
                "SF_INGEST_SECRET_ARN",
                "SF_SIGNATURE_SCHEME"
            ]
        );
        let text = e.to_string();
        assert!(
            text.starts_with("5 configuration problems, fix them all before the next start:"),
            "{text}"
        );
        for var in e.vars() {
            assert!(
                text.contains(&format!("\n  - environment variable {var} ")),
                "{text}"
            );
        }
        // The hint of a missing variable says what to put there.
        assert!(
            text.contains("the DynamoDB table created by the stack"),
            "{text}"
        );

        let e = TokenRefresherConfig::from_env(&env(&[
            ("SF_AUTH_FLOW", "client_credentials"),
            ("SF_SESSION_TIMEOUT_SECS", "5"),
            ("SF_HTTP_TIMEOUT_SECS", "0"),
        ]))
        .unwrap_err();
        assert_eq!(
            e.vars(),
            [
                "TABLE_NAME",
                "SF_CONNECTION_SECRET_ARN",
                "SF_MY_DOMAIN_URL",
                "SF_SESSION_TIMEOUT_SECS",
                "SF_HTTP_TIMEOUT_SECS"
            ]
        );
        // One problem reads as before: no list around it.
        let e = IngestConfig::from_env(&env(&[("TABLE_NAME", "t")])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("environment variable SF_INGEST_SECRET_ARN is required"),
            "{e}"
        );
    }

    #[test]
    fn salesforce_defaults_and_validation() {
        let c = SalesforceConfig::from_env(&env(&[("SF_CONNECTION_SECRET_ARN", "s")])).unwrap();
        assert_eq!(c.connection, "default");
        assert_eq!(c.flow, SalesforceFlow::RefreshToken);
        assert_eq!(c.api_version, "v62.0");
        assert_eq!(c.session_timeout, Duration::from_secs(7200));
        assert_eq!(c.refresh_margin, Duration::from_secs(900));
        assert_eq!(c.task_external_id_field, "Vapi_Call_Id__c");
        assert_eq!(c.contact_custom_fields.len(), 3);
        assert_eq!(c.login_url.as_str(), "https://login.salesforce.com/");
        let e = SalesforceConfig::from_env(&env(&[
            ("SF_CONNECTION_SECRET_ARN", "s"),
            ("SF_AUTH_FLOW", "client_credentials"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("SF_MY_DOMAIN_URL"), "{e}");
        let e = SalesforceConfig::from_env(&env(&[
            ("SF_CONNECTION_SECRET_ARN", "s"),
            ("SF_LOGIN_URL", "http://login.salesforce.com"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("SF_LOGIN_URL"), "{e}");
        let e = SalesforceConfig::from_env(&env(&[
            ("SF_CONNECTION_SECRET_ARN", "s"),
            ("SF_CONTACT_CUSTOM_FIELDS", "Ok__c,bad/field"),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("SF_CONTACT_CUSTOM_FIELDS"), "{e}");
        assert!(SalesforceConfig::from_env(&env(&[
            ("SF_CONNECTION_SECRET_ARN", "s"),
            ("SF_LOGIN_URL", "http://127.0.0.1:8080"),
        ]))
        .is_ok());
    }

    #[test]
    fn jwt_audience_is_kept_apart_from_the_token_endpoint() {
        let aud = |vars: &[(&str, &str)]| {
            let mut all = vec![("SF_CONNECTION_SECRET_ARN", "s")];
            all.extend_from_slice(vars);
            SalesforceConfig::from_env(&env(&all)).map(|c| c.jwt_audience)
        };
        assert_eq!(aud(&[]).unwrap(), "https://login.salesforce.com");
        // A My Domain token endpoint still signs for login.salesforce.com.
        assert_eq!(
            aud(&[("SF_LOGIN_URL", "https://acme.my.salesforce.com")]).unwrap(),
            "https://login.salesforce.com"
        );
        assert_eq!(
            aud(&[("SF_LOGIN_URL", "https://test.salesforce.com")]).unwrap(),
            "https://test.salesforce.com"
        );
        assert_eq!(
            aud(&[("SF_JWT_AUDIENCE", "https://acme.my.site.com/customers/")]).unwrap(),
            "https://acme.my.site.com/customers"
        );
        for bad in [
            "login.salesforce.com",
            "http://login.salesforce.com",
            "https://",
        ] {
            let e = aud(&[("SF_JWT_AUDIENCE", bad)]).unwrap_err();
            assert!(e.to_string().contains("SF_JWT_AUDIENCE"), "{bad:?}: {e}");
        }
    }
}
