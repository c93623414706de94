//! Test harness: real DynamoDB Local and moto (Secrets Manager) started by `scripts/services.sh`
//! (`make test`), reached through the AWS SDK's own endpoint variables.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sfvapi::config::{Env, IngestConfig};
use sfvapi::ingest::IngestApp;
use sfvapi::secrets::SecretsCache;
use sfvapi::store::{self, RequestCounter, Store};

/// Test secrets are ≥ 32 characters: shorter ones are refused at load.
pub const SF_SECRET: &str = "sf-test-secret-do-not-use-0123456789";
pub const OM_TOKEN: &str = "om-path-token-for-tests-0123456789";
pub const ORG_ID: &str = "00D5e000000AbCdEAK";

pub fn fixture(path: &str) -> Vec<u8> {
    let p = format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("fixture {p}: {e}"))
}

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

pub async fn sdk() -> aws_config::SdkConfig {
    require_local_services();
    sfvapi::config::aws_sdk_config().await
}

static SEQ: AtomicU64 = AtomicU64::new(0);

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

/// Create a secret in moto; returns its ARN.
pub async fn create_secret(value: &serde_json::Value) -> String {
    let sdk = sdk().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let out = client
        .create_secret()
        .name(unique("sfvapi/test"))
        .secret_string(value.to_string())
        .send()
        .await
        .expect("create secret in moto");
    out.arn().expect("arn").to_owned()
}

pub async fn put_secret(arn: &str, value: &serde_json::Value) {
    let client = aws_sdk_secretsmanager::Client::new(&sdk().await);
    client
        .put_secret_value()
        .secret_id(arn)
        .secret_string(value.to_string())
        .send()
        .await
        .expect("put secret in moto");
}

pub fn ingest_secret_json(secrets: &[&str]) -> serde_json::Value {
    serde_json::json!({"signing_secrets": secrets, "outbound_message_token": OM_TOKEN})
}

pub fn ingest_config(table: &str, arn: &str, extra: &[(&str, &str)]) -> IngestConfig {
    let mut map: HashMap<String, String> = HashMap::from([
        ("TABLE_NAME".into(), table.into()),
        ("SF_INGEST_SECRET_ARN".into(), arn.into()),
        ("SF_OUTBOUND_ORG_IDS".into(), ORG_ID.into()),
    ]);
    for (k, v) in extra {
        map.insert((*k).into(), (*v).into());
    }
    IngestConfig::from_env(&Env::new(move |k| map.get(k).cloned())).expect("test config")
}

pub struct Ingest {
    pub app: IngestApp,
    pub store: Store,
    pub counter: RequestCounter,
    pub secret_arn: String,
}

/// An ingest app on a fresh table with a fresh secret, as a cold start would build it.
pub async fn ingest(extra: &[(&str, &str)]) -> Ingest {
    let (store, counter) = fresh_store().await;
    let secret_arn = create_secret(&ingest_secret_json(&[SF_SECRET])).await;
    let config = ingest_config(store.table(), &secret_arn, extra);
    let secrets = SecretsCache::new(
        sfvapi::config::secrets_client(&sdk().await),
        Duration::from_secs(300),
    )
    .with_min_forced_interval(Duration::ZERO);
    let app = IngestApp::new(config, store.clone(), secrets);
    Ingest {
        app,
        store,
        counter,
        secret_arn,
    }
}

/// A v2-signed API Gateway request for `body`, timestamped now.
pub fn signed_event(body: &[u8]) -> lambda_http::Request {
    signed_event_with(SF_SECRET, body, sfvapi::now_secs())
}

pub fn signed_event_with(secret: &str, body: &[u8], ts: i64) -> lambda_http::Request {
    let (ts, sig) = sfvapi::signature::sign_salesforce_v2(secret.as_bytes(), body, ts);
    request(
        "POST",
        "/salesforce/events",
        &[
            ("content-type", "application/json"),
            ("x-sfvapi-timestamp", &ts),
            ("x-sfvapi-signature", &sig),
        ],
        body,
        false,
    )
}

pub fn request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    base64: bool,
) -> lambda_http::Request {
    let event = sfvapi::http::apigw_v2_event(method, path, headers, body, base64);
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}

pub struct Answer {
    pub status: u16,
    pub body: String,
    pub json: serde_json::Value,
}

pub fn answer(resp: lambda_http::Response<lambda_http::Body>) -> Answer {
    let status = resp.status().as_u16();
    let body = String::from_utf8_lossy(sfvapi::http::body_bytes(resp.body())).into_owned();
    let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    Answer { status, body, json }
}

pub fn flat_event(id: &str) -> Vec<u8> {
    serde_json::json!({
        "eventId": id,
        "contactId": "0035e00000XyZ12AAF",
        "caseId": "5005e00000AbCdEAAV",
        "priority": "High",
        "reason": "Payment failed twice"
    })
    .to_string()
    .into_bytes()
}

// ---- Salesforce connection helpers (salesforce_*.rs) ----

pub const SF_CLIENT_ID: &str = "3MVG9-test-client-id";
pub const SF_CLIENT_SECRET: &str = "test-client-secret-do-not-use";
pub const SF_REFRESH_TOKEN: &str = "5Aep-test-refresh-token-1";
pub const SF_OPERATOR_KEY: &str = "operator-key-for-tests-0123456789";

/// A Salesforce connection config whose login URL is `login_url` (a wiremock server), plus
/// `extra` variables.
pub fn sf_config(
    login_url: &str,
    secret_arn: &str,
    extra: &[(&str, &str)],
) -> sfvapi::config::SalesforceConfig {
    let mut map: HashMap<String, String> = HashMap::from([
        ("SF_LOGIN_URL".into(), login_url.into()),
        ("SF_CONNECTION_SECRET_ARN".into(), secret_arn.into()),
    ]);
    for (k, v) in extra {
        map.insert((*k).into(), (*v).into());
    }
    sfvapi::config::SalesforceConfig::from_env(&Env::new(move |k| map.get(k).cloned()))
        .expect("test salesforce config")
}

pub fn sf_secret_json() -> serde_json::Value {
    serde_json::json!({
        "client_id": SF_CLIENT_ID,
        "client_secret": SF_CLIENT_SECRET,
        "refresh_token": SF_REFRESH_TOKEN
    })
}

/// A Secrets Manager cache as a cold start builds it (forced re-reads not rate-limited).
pub async fn secrets_cache() -> SecretsCache {
    SecretsCache::new(
        sfvapi::config::secrets_client(&sdk().await),
        Duration::from_secs(300),
    )
    .with_min_forced_interval(Duration::ZERO)
}

pub async fn read_secret(arn: &str) -> serde_json::Value {
    let client = aws_sdk_secretsmanager::Client::new(&sdk().await);
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .expect("get secret from moto");
    serde_json::from_str(out.secret_string().expect("string secret")).expect("json secret")
}

/// A token endpoint answer like Salesforce's: no `expires_in`, `issued_at` as a string of ms.
pub fn sf_token_response(
    access_token: &str,
    instance_url: &str,
    issued_at_ms: i64,
) -> serde_json::Value {
    serde_json::json!({
        "access_token": access_token,
        "signature": "dGVzdC1zaWduYXR1cmUtbm90LXJlYWw=",
        "scope": "refresh_token api",
        "instance_url": instance_url,
        "id": "https://login.salesforce.com/id/00D5e000000AbCdEAK/0055e000001AbCdAAK",
        "token_type": "Bearer",
        "issued_at": issued_at_ms.to_string()
    })
}

/// Put a token item as another function would have left it.
pub async fn seed_sf_token(
    store: &Store,
    connection: &str,
    access_token: &str,
    instance_url: &str,
    expires_at_ms: i64,
    version: i64,
) {
    use aws_sdk_dynamodb::types::AttributeValue as A;
    store
        .client()
        .put_item()
        .table_name(store.table())
        .item("pk", A::S(sfvapi::salesforce::token::token_pk(connection)))
        .item("access_token", A::S(access_token.into()))
        .item("instance_url", A::S(instance_url.into()))
        .item("issued_at", A::N(sfvapi::now_millis().to_string()))
        .item("expires_at_ms", A::N(expires_at_ms.to_string()))
        .item("version", A::N(version.to_string()))
        .send()
        .await
        .expect("seed token item");
}

/// Requests a wiremock server received on `path`.
pub async fn received_on(server: &wiremock::MockServer, path: &str) -> Vec<wiremock::Request> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == path)
        .collect()
}

/// The form fields of a request body.
pub fn form_of(req: &wiremock::Request) -> HashMap<String, String> {
    url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect()
}

/// Path of Salesforce's SOQL query resource (API v62.0, the tests' default).
pub const SF_QUERY_PATH: &str = "/services/data/v62.0/query";

/// A `GET /query` answer holding `records` (Query resource,
/// https://developer.salesforce.com/docs/platform/api-rest/guide/dome-query.html).
pub fn sf_query_answer(records: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({"totalSize": records.len(), "done": true, "records": records})
}

/// Matches the one SOQL query that reads Contact `id` (path + `q` naming `FROM Contact` and the id).
pub struct ContactQuery(pub String);

impl wiremock::Match for ContactQuery {
    fn matches(&self, req: &wiremock::Request) -> bool {
        req.url.path() == SF_QUERY_PATH
            && req.url.query_pairs().any(|(k, v)| {
                k == "q"
                    && v.contains(" FROM Contact WHERE Id = '")
                    && v.ends_with(&format!("'{}'", self.0))
            })
    }
}

/// A mock answering the Contact query for `id` with `record` (or no record when `None`).
pub fn contact_query_mock(id: &str, record: Option<serde_json::Value>) -> wiremock::Mock {
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(ContactQuery(id.to_owned()))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(sf_query_answer(record.into_iter().collect())),
        )
}

/// The `q` of every SOQL query a wiremock server received.
pub async fn soql_received(server: &wiremock::MockServer) -> Vec<String> {
    received_on(server, SF_QUERY_PATH)
        .await
        .iter()
        .filter_map(|r| {
            r.url
                .query_pairs()
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.into_owned())
        })
        .collect()
}

/// An SDK interceptor on the Secrets Manager client that fails the first `n` `PutSecretValue`
/// requests before they are sent (the operation read from `x-amz-target`, as the store's
/// `RequestCounter` does) and counts every one: Secrets Manager failing at the write, through
/// the real client's error path.
#[derive(Clone, Debug)]
pub struct FailPuts {
    left: std::sync::Arc<AtomicU64>,
    pub seen: std::sync::Arc<AtomicU64>,
}

impl FailPuts {
    pub fn new(n: u64) -> Self {
        Self {
            left: std::sync::Arc::new(AtomicU64::new(n)),
            seen: std::sync::Arc::new(AtomicU64::new(0)),
        }
    }
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
    (
        SecretsCache::new(client, Duration::from_secs(300))
            .with_min_forced_interval(Duration::ZERO),
        fail,
    )
}

/// The token item's attributes as stored.
pub async fn raw_token_item(
    store: &Store,
    connection: &str,
) -> HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    store
        .get(&sfvapi::salesforce::token::token_pk(connection))
        .await
        .expect("read token item")
        .expect("token item exists")
}
