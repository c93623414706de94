//! DynamoDB Local and moto (Secrets Manager) as `scripts/services.sh` starts them (`make test`),
//! reached through the AWS SDK's own endpoint variables: fresh tables, secrets and caches.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sfvapi::secrets::SecretsCache;
use sfvapi::store::{self, RequestCounter, Store};

fn require_local_services() {
    if std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_err()
        || std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER").is_err()
    {
        panic!(
            "these tests need DynamoDB Local and moto: run them with `make test` \
             (or `scripts/services.sh cargo test`)"
        );
    }
}

/// The SDK configuration the functions build, pointed at the local services.
pub async fn sdk() -> aws_config::SdkConfig {
    require_local_services();
    sfvapi::config::aws_sdk_config().await
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A name no other test (in this process or another) uses: `{prefix}-{pid}-{ms}-{seq}`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}-{}",
        std::process::id(),
        sfvapi::now_millis(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// A fresh table (as the template defines it) and a store whose DynamoDB requests are counted.
pub async fn fresh_store() -> (Store, RequestCounter) {
    let sdk = sdk().await;
    let table = unique("sfvapi-test");
    let admin = store::client(&sdk);
    store::create_table(&admin, &table)
        .await
        .expect("create table on DynamoDB Local");
    let counter = RequestCounter::default();
    (
        Store::new(store::client_with_counter(&sdk, counter.clone()), table),
        counter,
    )
}

async fn secrets_client() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&sdk().await)
}

/// Create a secret in moto; returns its ARN.
pub async fn create_secret(value: &serde_json::Value) -> String {
    let out = secrets_client()
        .await
        .create_secret()
        .name(unique("sfvapi/test"))
        .secret_string(value.to_string())
        .send()
        .await
        .expect("create secret in moto");
    out.arn().expect("arn").to_owned()
}

/// Replace a secret's value (as an operator editing it in the console would).
pub async fn put_secret(arn: &str, value: &serde_json::Value) {
    secrets_client()
        .await
        .put_secret_value()
        .secret_id(arn)
        .secret_string(value.to_string())
        .send()
        .await
        .expect("put secret in moto");
}

/// A secret's value as stored now.
pub async fn read_secret(arn: &str) -> serde_json::Value {
    let out = secrets_client()
        .await
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .expect("get secret from moto");
    serde_json::from_str(out.secret_string().expect("string secret")).expect("json secret")
}

/// A Secrets Manager cache as a cold start builds it (forced re-reads not rate-limited).
pub async fn secrets_cache() -> SecretsCache {
    cache_of(sfvapi::config::secrets_client(&sdk().await))
}

fn cache_of(client: aws_sdk_secretsmanager::Client) -> SecretsCache {
    SecretsCache::new(client, Duration::from_secs(300)).with_min_forced_interval(Duration::ZERO)
}

/// An SDK interceptor on the Secrets Manager client that fails the first `n` `PutSecretValue`
/// requests before they are sent (the operation read from `x-amz-target`, as the store's
/// `RequestCounter` does) and counts every one: Secrets Manager failing at the write, through
/// the real client's error path.
#[derive(Clone, Debug)]
pub struct FailPuts {
    left: Arc<AtomicU64>,
    pub seen: Arc<AtomicU64>,
}

impl FailPuts {
    pub fn new(n: u64) -> Self {
        Self {
            left: Arc::new(AtomicU64::new(n)),
            seen: Arc::new(AtomicU64::new(0)),
        }
    }
    /// How many `PutSecretValue` requests were tried (refused or not).
    pub fn puts(&self) -> u64 {
        self.seen.load(Ordering::SeqCst)
    }
}

impl aws_sdk_secretsmanager::config::Intercept for FailPuts {
    fn name(&self) -> &'static str {
        "test.FailPuts"
    }
    fn read_before_transmit(
        &self,
        context: &aws_sdk_secretsmanager::config::interceptors::BeforeTransmitInterceptorContextRef<
            '_,
        >,
        _rc: &aws_sdk_secretsmanager::config::RuntimeComponents,
        _cfg: &mut aws_sdk_secretsmanager::config::ConfigBag,
    ) -> Result<(), aws_sdk_secretsmanager::error::BoxError> {
        let op = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("");
        if op != "PutSecretValue" {
            return Ok(());
        }
        self.seen.fetch_add(1, Ordering::SeqCst);
        let failing = self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            Err("test: Secrets Manager refused PutSecretValue".into())
        } else {
            Ok(())
        }
    }
}

/// A secrets cache whose client fails the first `n` writes (see [`FailPuts`]).
pub async fn secrets_cache_failing_puts(n: u64) -> (SecretsCache, FailPuts) {
    let fail = FailPuts::new(n);
    let client = aws_sdk_secretsmanager::Client::from_conf(
        sfvapi::config::secrets_client_config(&sdk().await)
            .interceptor(fail.clone())
            .build(),
    );
    (cache_of(client), fail)
}

/// An `Env` over `vars` (a function's configuration read as Lambda would hand it over).
pub fn env_of(vars: &[(&str, &str)]) -> sfvapi::config::Env<impl Fn(&str) -> Option<String>> {
    let map: std::collections::HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    sfvapi::config::Env::new(move |k| map.get(k).cloned())
}

/// The start of a test that runs the local stack: `endpoint_var` (an SDK endpoint variable
/// `scripts/services.sh` sets, e.g. `AWS_ENDPOINT_URL_DYNAMODB`) must be set, or the test fails
/// saying how to run it; and metrics are off (their EMF lines are only stdout noise in a test).
pub fn local_services(endpoint_var: &str) {
    assert!(
        std::env::var(endpoint_var).is_ok(),
        "{endpoint_var} is not set: run through scripts/services.sh, which starts DynamoDB Local and moto"
    );
    std::env::set_var("SFVAPI_NO_METRICS", "1");
}
