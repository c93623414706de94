//! The whole local stack in one process: the sandbox (fake Salesforce, Vapi, Twilio), the table
//! and secrets on DynamoDB Local and moto, the local runner serving the real HTTP handlers, and
//! the stream pump feeding the job seams. `serve`, `demo` and the e2e test all start it here.
//!
//! Configuration reaches the apps the way it does on Lambda: as environment variables
//! ([`Stack::env`], listed in [`env_vars`]). The HTTP apps are built from that map directly
//! (so two stacks in one process cannot mix them up); with [`StackConfig::export_env`] the
//! map is also written into the process environment, for constructors that read it themselves
//! (`from_env()`), such as the job worker's.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use sfvapi::config::{ConfigError, Env, IngestConfig, TokenRefresherConfig};
use sfvapi::ingest::IngestApp;
use sfvapi::salesforce::connect::RefresherApp;
use sfvapi::secrets::SecretsCache;
use sfvapi::store::{Store, StoreError};
use sfvapi::vapi::config::VapiWebhookConfig;
use sfvapi::vapi::webhook::VapiWebhookApp;

use crate::pump::{self, OnStart, Pump, PumpConfig, PumpError, Sink, Tick};
use crate::runner::{self, Apps, Runner};

/// The organisation allowed to send Outbound Messages locally (the fixture's).
pub const LOCAL_ORG_ID: &str = "00D5e000000AbCdEAK";
/// The Salesforce connection's refresh token the sandbox accepts (any non-revoked value works).
pub const LOCAL_REFRESH_TOKEN: &str = "sandbox-refresh-token";
/// Ids the fake Vapi requires on `POST /call` (any string).
pub const LOCAL_ASSISTANT_ID: &str = "sandbox-assistant";
pub const LOCAL_PHONE_NUMBER_ID: &str = "sandbox-phone-number";
/// Twilio's documented magic "From" test number.
pub const LOCAL_SMS_FROM: &str = "+15005550006";

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("AWS_ENDPOINT_URL_DYNAMODB is not set: run through scripts/services.sh (or `make demo`), which starts DynamoDB Local and moto")]
    NotLocal,
    #[error("configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("table: {0}")]
    Store(#[from] StoreError),
    #[error("creating secret {name} in moto: {detail}")]
    Secret { name: String, detail: String },
    #[error("cannot bind the local runner on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("sandbox: {0}")]
    Sandbox(#[from] sandbox::ServeError),
    #[error("stream pump: {0}")]
    Pump(#[from] PumpError),
    #[error("creating bucket {bucket} in moto's S3: {detail}")]
    Bucket { bucket: String, detail: String },
    #[error("creating the inbound assistant in the sandbox: {0}")]
    InboundAssistant(String),
}

pub struct StackConfig {
    /// Where the runner listens (loopback, any free port by default).
    pub runner_addr: SocketAddr,
    /// The sandbox's settings; its Vapi server URL is set to the runner's `/vapi/webhook`.
    pub sandbox: sandbox::Config,
    /// Table name; default `sfvapi-local-<unix ms>` (a fresh table each run).
    pub table: Option<String>,
    pub pump: PumpConfig,
    /// Also write [`Stack::env`] into the process environment (see the module doc).
    pub export_env: bool,
    /// Run the token refresher once before the pump starts.
    pub refresh_on_start: bool,
    /// Extra or overriding variables (e.g. `FOLLOWUP_POLICY=always`).
    pub extra_env: Vec<(String, String)>,
}

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            runner_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            sandbox: sandbox::Config::default(),
            table: None,
            pump: PumpConfig::default(),
            export_env: true,
            refresh_on_start: true,
            extra_env: Vec::new(),
        }
    }
}

/// What the pump drives: the worker's stream handler, its retry sweep, and the refresher's
/// first run.
struct Seams {
    worker: Arc<sfvapi::jobs::worker::Worker>,
    sink: Sink,
    tick: Tick,
    on_start: Option<OnStart>,
}

/// THE place the job worker is wired. Everything it needs is in the environment by now
/// (see [`env_vars`]).
async fn job_seams(
    refresher: Arc<RefresherApp>,
    refresh_on_start: bool,
) -> Result<Seams, StackError> {
    let w = Arc::new(sfvapi::jobs::worker::Worker::from_env().await?);
    let (h, s, worker) = (w.clone(), w.clone(), w);
    let on_start = refresh_on_start.then(|| {
        pump::on_start(move || async move {
            for report in refresher.run_schedule().await {
                tracing::info!(report = %report.to_json(), "token refresher: first run");
            }
        })
    });
    Ok(Seams {
        worker,
        sink: pump::sink(move |e| {
            let h = h.clone();
            async move { h.handle(e).await }
        }),
        tick: pump::tick(move || {
            let s = s.clone();
            async move { s.sweep().await }
        }),
        on_start,
    })
}

/// The running stack.
pub struct Stack {
    pub runner_url: String,
    pub salesforce_url: String,
    pub vapi_url: String,
    pub twilio_url: String,
    pub table: String,
    /// Every variable the functions read, as set for this stack.
    pub env: BTreeMap<String, String>,
    pub store: Store,
    pub pump: Pump,
    pub scenario: sandbox::Scenario,
    /// The job worker the pump drives (its policy clock is what `SCENARIO=calling-policy` moves).
    pub worker: Arc<sfvapi::jobs::worker::Worker>,
    runner: Runner,
    sandbox: sandbox::Handles,
}

/// The secrets as JSON, consistent with the sandbox's credentials.
pub fn secret_values(sb: &sandbox::Config) -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::json;
    vec![
        (
            "ingest",
            json!({"signing_secrets": [sfvapi::samples::LOCAL_SIGNING_SECRET], "outbound_message_token": sfvapi::samples::LOCAL_OM_TOKEN}),
        ),
        // The webhook reads only the server secret; the private key is the worker's alone.
        (
            "vapi-server",
            json!({"server_secrets": [sb.vapi.server_secret], "context_key": sfvapi::samples::LOCAL_CONTEXT_KEY}),
        ),
        ("vapi", json!({"api_key": sb.vapi.api_key})),
        (
            "twilio",
            json!({"account_sid": sb.twilio.account_sid, "auth_token": sb.twilio.auth_token}),
        ),
        (
            "salesforce",
            json!({"client_id": sb.salesforce.client_id, "client_secret": sb.salesforce.client_secret, "refresh_token": LOCAL_REFRESH_TOKEN}),
        ),
        // Read by the token refresher only.
        (
            "operator",
            json!({"operator_key": sfvapi::samples::LOCAL_OPERATOR_KEY}),
        ),
    ]
}

/// The variables every function reads, for a stack whose table, secrets and sandbox are known.
/// `arns` maps `ingest|vapi-server|vapi|twilio|salesforce|operator` to the secret's ARN.
pub fn env_vars(
    table: &str,
    arns: &BTreeMap<&str, String>,
    sandbox: &sandbox::Handles,
) -> BTreeMap<String, String> {
    let arn = |k: &str| arns.get(k).cloned().unwrap_or_default();
    [
        ("TABLE_NAME", table.to_owned()),
        // salesforce-ingest
        ("SF_INGEST_SECRET_ARN", arn("ingest")),
        ("SF_OUTBOUND_ORG_IDS", LOCAL_ORG_ID.to_owned()),
        // vapi-webhook (+ the worker, which signs call context with its context_key)
        ("VAPI_SERVER_SECRET_ARN", arn("vapi-server")),
        // the worker's POST /call (its private key; the webhook has no access)
        ("VAPI_SECRET_ARN", arn("vapi")),
        ("VAPI_AUTH_MODES", "hmac".to_owned()),
        ("VAPI_BASE_URL", sandbox.vapi_url.clone()),
        ("VAPI_ASSISTANT_ID", LOCAL_ASSISTANT_ID.to_owned()),
        ("VAPI_PHONE_NUMBER_ID", LOCAL_PHONE_NUMBER_ID.to_owned()),
        // The local scenarios call the sample customers at any hour and as often as they run;
        // `SCENARIO=calling-policy` shows the calling policy itself (its own routing document).
        ("CALL_HOURS", "00:00-24:00".to_owned()),
        ("CALL_CAP", "none".to_owned()),
        // Twilio (the worker's follow-up SMS)
        ("TWILIO_BASE_URL", sandbox.twilio_url.clone()),
        ("TWILIO_SECRET_ARN", arn("twilio")),
        ("TWILIO_FROM", LOCAL_SMS_FROM.to_owned()),
        ("FOLLOWUP_POLICY", "not-reached".to_owned()),
        ("FOLLOWUP_HIGH_VALUE", "true".to_owned()),
        // Seconds, not the production 30 s, so the outage scenario recovers while you watch.
        ("RETRY_BASE_SECS", "1".to_owned()),
        ("RETRY_MAX_SECS", "4".to_owned()),
        ("HIGH_VALUE_REVENUE", "100000".to_owned()),
        // Salesforce connection (token refresher, worker, live lookups)
        ("SF_LOGIN_URL", sandbox.salesforce_url.clone()),
        ("SF_CONNECTION_SECRET_ARN", arn("salesforce")),
        ("SF_AUTH_FLOW", "refresh_token".to_owned()),
        ("SF_SESSION_TIMEOUT_SECS", "7200".to_owned()),
        ("SF_OPERATOR_SECRET_ARN", arn("operator")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// A stack that runs with its own routing document `doc` (written to a temporary file named
/// after `name`), as a demo story does.
pub fn with_routing(
    sandbox: sandbox::Config,
    name: &str,
    doc: &str,
) -> Result<StackConfig, String> {
    let dir = std::env::temp_dir().join(format!("sfvapi-{name}-{}", sfvapi::now_millis()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let path = dir.join("routing.yaml");
    std::fs::write(&path, doc).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(StackConfig {
        sandbox,
        extra_env: vec![("ROUTING_FILE".into(), path.to_string_lossy().into_owned())],
        ..StackConfig::default()
    })
}

/// Create `bucket` in the S3 the SDK reaches (moto, under `scripts/services.sh`).
pub async fn create_bucket(sdk: &aws_config::SdkConfig, bucket: &str) -> Result<(), StackError> {
    let s3 = aws_sdk_s3::Client::new(sdk);
    let mut req = s3.create_bucket().bucket(bucket);
    // us-east-1 takes no location constraint; every other region needs its own.
    if let Some(region) = sdk.region().map(|r| r.as_ref().to_owned()) {
        if region != "us-east-1" {
            req = req.create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                        region.as_str(),
                    ))
                    .build(),
            );
        }
    }
    req.send().await.map_err(|e| StackError::Bucket {
        bucket: bucket.to_owned(),
        detail: aws_smithy_types::error::display::DisplayErrorContext(&e).to_string(),
    })?;
    Ok(())
}

impl Stack {
    pub async fn start(mut config: StackConfig) -> Result<Self, StackError> {
        if std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_err() {
            return Err(StackError::NotLocal);
        }
        let sdk = sfvapi::config::aws_sdk_config().await;

        // The runner's port first: the fake Vapi must know where to send server messages.
        let bound = runner::Bound::bind(config.runner_addr)
            .await
            .map_err(|source| StackError::Bind {
                addr: config.runner_addr,
                source,
            })?;
        config.sandbox.vapi.server_url = Some(format!("{}/vapi/webhook", bound.url));
        let scenario = config.sandbox.vapi.scenario;
        let secrets_json = secret_values(&config.sandbox);
        let vapi_key = config.sandbox.vapi.api_key.clone();
        let sandbox = sandbox::serve(config.sandbox).await?;

        let table = config
            .table
            .unwrap_or_else(|| format!("sfvapi-local-{}", sfvapi::now_millis()));
        let ddb = sfvapi::store::client(&sdk);
        sfvapi::store::create_table(&ddb, &table).await?;
        let sm = sfvapi::config::secrets_client(&sdk);
        let mut arns = BTreeMap::new();
        for (kind, value) in secrets_json {
            let name = format!("sfvapi/local/{table}/{kind}");
            let out = sm
                .create_secret()
                .name(&name)
                .secret_string(value.to_string())
                .send()
                .await
                .map_err(|e| StackError::Secret {
                    name: name.clone(),
                    detail: sfvapi::secrets::error_chain(&e),
                })?;
            arns.insert(kind, out.arn().map(str::to_owned).unwrap_or(name));
        }
        let mut env = env_vars(&table, &arns, &sandbox);
        // The recordings bucket, in moto's S3 (the stack's RecordingsBucket): only where S3 is
        // local too, so a local run never writes to an account's real S3.
        if std::env::var("AWS_ENDPOINT_URL_S3").is_ok() {
            let bucket = format!("sfvapi-local-recordings-{}", sfvapi::now_millis());
            create_bucket(&sdk, &bucket).await?;
            env.insert("RECORDINGS_BUCKET".into(), bucket);
            // The sandbox serves the recordings over plain http on loopback.
            let host = url::Url::parse(&sandbox.vapi_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| "127.0.0.1".into());
            env.insert("RECORDING_SOURCE_HOSTS".into(), host);
        }
        // The assistant inbound calls get, created in the fake Vapi from events/ as a deployer
        // creates it in Vapi (docs/calls-back.md).
        let inbound = crate::callback::create_inbound_assistant(
            &sandbox.vapi_url,
            &vapi_key,
            &format!("{}/vapi/webhook", bound.url),
        )
        .await
        .map_err(StackError::InboundAssistant)?;
        env.insert("VAPI_INBOUND_ASSISTANT_ID".into(), inbound);
        env.extend(config.extra_env);
        if config.export_env {
            for (k, v) in &env {
                // Set once, before any handler that reads the environment is built.
                std::env::set_var(k, v);
            }
        }
        let lookup = {
            let env = env.clone();
            Env::new(move |k: &str| env.get(k).cloned())
        };

        let store = Store::new(ddb.clone(), table.clone());
        let cache = |ttl: Duration| SecretsCache::new(sfvapi::config::secrets_client(&sdk), ttl);
        let ingest_cfg = IngestConfig::from_env(&lookup)?;
        let ttl = ingest_cfg.common.secrets_ttl;
        let ingest = IngestApp::new(ingest_cfg, store.clone(), cache(ttl));
        let vapi_cfg = VapiWebhookConfig::from_env(&lookup)?;
        let ttl = vapi_cfg.common.secrets_ttl;
        // Wired as on Lambda: the Salesforce search for inbound callers included.
        let vapi = VapiWebhookApp::wired(&lookup, vapi_cfg, store.clone(), cache(ttl))?;
        let refresher_cfg = TokenRefresherConfig::from_env(&lookup)?;
        let ttl = refresher_cfg.common.secrets_ttl;
        let refresher = Arc::new(RefresherApp::new(refresher_cfg, store.clone(), cache(ttl))?);

        let runner = bound.serve(Arc::new(Apps {
            ingest,
            vapi,
            refresher: Some(refresher.clone()),
        }));

        let seams = job_seams(refresher, config.refresh_on_start).await?;
        if let Some(first) = seams.on_start {
            first().await;
        }
        let pump = Pump::start(
            &ddb,
            aws_sdk_dynamodbstreams::Client::new(&sdk),
            &table,
            config.pump,
            seams.sink,
            Some(seams.tick),
        )
        .await?;

        Ok(Self {
            runner_url: runner.url.clone(),
            salesforce_url: sandbox.salesforce_url.clone(),
            vapi_url: sandbox.vapi_url.clone(),
            twilio_url: sandbox.twilio_url.clone(),
            table,
            env,
            store,
            pump,
            scenario,
            worker: seams.worker,
            runner,
            sandbox,
        })
    }

    /// What `sfvapi-admin doctor` checks for this stack: its variables and its webhook.
    pub fn doctor_target(&self) -> sfvapi::doctor::Target {
        sfvapi::doctor::Target {
            env: self.env.clone(),
            webhook_url: Some(format!("{}/vapi/webhook", self.runner_url)),
        }
    }

    /// `sfvapi-admin doctor`'s checklist of this stack.
    pub async fn doctor(&self) -> sfvapi::doctor::Report {
        let sdk = sfvapi::config::aws_sdk_config().await;
        sfvapi::doctor::run(&self.doctor_target(), &sdk).await
    }

    /// The line `serve` prints.
    pub fn urls_json(&self) -> serde_json::Value {
        serde_json::json!({
            "runner": self.runner_url,
            "salesforce_events": format!("{}/salesforce/events", self.runner_url),
            "outbound_message": format!("{}/salesforce/outbound-message/<token>", self.runner_url),
            "vapi_webhook": format!("{}/vapi/webhook", self.runner_url),
            "sandbox": {
                "salesforce": self.salesforce_url,
                "vapi": self.vapi_url,
                "twilio": self.twilio_url,
                "requests": format!("{}/_sandbox/requests", self.vapi_url),
            },
            "table": self.table,
        })
    }

    /// Stop the pump, the runner and the sandbox (in that order: no new work, then no callers).
    pub async fn shutdown(self) {
        self.pump.shutdown().await;
        self.runner.shutdown().await;
        self.sandbox.shutdown().await;
    }
}
