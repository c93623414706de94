//! Building blocks: fresh tables on DynamoDB Local with request counters, secrets in moto, the
//! real handlers (`IngestApp`, `VapiWebhookApp`, `Worker`) built as a cold start builds them, signed
//! API Gateway v2 requests, and wiremock servers answering like Salesforce, Vapi and Twilio.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event as DynamodbEvent;
use serde_json::{json, Value};
use sfvapi::config::{Env, IngestConfig};
use sfvapi::ingest::IngestApp;
use sfvapi::jobs::config::WorkerConfig;
use sfvapi::jobs::worker::Worker;
use sfvapi::secrets::SecretsCache;
use sfvapi::store::{self, attr, RequestCounter, Store};
use sfvapi::vapi::config::VapiWebhookConfig;
use sfvapi::vapi::webhook::VapiWebhookApp;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const SF_SECRET: &str = "bench-sf-signing-secret-0123456789";
pub const VAPI_SECRET: &str = "bench-vapi-server-secret-0123456789";
pub const CONTACT: &str = "0035e00000XyZ12AAF";
pub const CASE: &str = "5005e00000AbCdEAAV";
pub const CALL_ID: &str = "c0ffee00-1111-4222-8333-444455556666";
pub const TWILIO_SID: &str = "AC0123456789abcdef0123456789abcdef";

/// Fixtures of the shared crate's tests (real API shapes), compiled in so the binaries run anywhere.
/// The shared test set-ups the benchmarks run on too (names unique per run, API Gateway requests).
pub use sfvapi_test_support::{request, unique};

pub mod fixtures {
    pub const CONTACT: &[u8] =
        include_bytes!("../../../shared/tests/fixtures/salesforce/contact.json");
    pub const SESSION_EXPIRED: &[u8] =
        include_bytes!("../../../shared/tests/fixtures/salesforce/session-expired.json");
    pub const REQUEST_LIMIT: &[u8] =
        include_bytes!("../../../shared/tests/fixtures/salesforce/request-limit-exceeded.json");
    pub const CALL_CREATED: &[u8] =
        include_bytes!("../../../shared/tests/fixtures/vapi/create-call-response.json");
    pub const TOOL_CALLS: &[u8] =
        include_bytes!("../../../shared/tests/fixtures/vapi/tool-calls.json");
    pub const END_OF_CALL: &[u8] =
        include_bytes!("../../../shared/tests/fixtures/vapi/end-of-call-report.json");
    pub const STATUS_UPDATE: &[u8] =
        include_bytes!("../../../shared/tests/fixtures/vapi/status-update.json");
    pub const SPEECH_UPDATE: &[u8] =
        include_bytes!("../../../shared/tests/fixtures/vapi/speech-update.json");
    pub const SMS_CREATED: &[u8] =
        include_bytes!("../../../shared/tests/fixtures/twilio/message-created.json");
    pub const SMS_429: &[u8] =
        include_bytes!("../../../shared/tests/fixtures/twilio/error-rate-limited.json");
}

pub fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

pub fn require_local_services() -> Result<(), String> {
    for var in [
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    ] {
        if std::env::var(var).is_err() {
            return Err(format!(
                "{var} is not set: run under scripts/services.sh (make bench / make reliability / make test)"
            ));
        }
    }
    Ok(())
}

pub async fn sdk() -> aws_config::SdkConfig {
    sfvapi::config::aws_sdk_config().await
}

/// The fixture's `POST /call` answer with a call id of its own: Vapi gives every call a new
/// UUID (`Call.id`, OpenAPI), and a fake that answered every dial with one id would make every
/// call after the first collide on `call#` (which belongs to one event for good).
pub fn created_call() -> Value {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let n = CALLS.fetch_add(1, Ordering::SeqCst);
    let mut call = json_of(fixtures::CALL_CREATED);
    call["id"] = Value::String(format!(
        "{:08x}-0000-4000-8000-{n:012x}",
        std::process::id()
    ));
    call
}

/// A DynamoDB Local of its own for one part of `make bench`, in memory, with
/// `AWS_ENDPOINT_URL_DYNAMODB(_STREAMS)` pointed at it until the guard is dropped (then it stops
/// and the endpoints point back). Why: DynamoDB Local answers several times slower once it has
/// taken tens of thousands of writes (a bare PutItem 1 ms → 9 ms), even with every table
/// deleted, so each part's figures depended on the parts run before it. `None` (and the shared
/// one stays) if it cannot start.
pub async fn fresh_dynamodb() -> Option<FreshDynamoDb> {
    const VARS: [&str; 2] = [
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
    ];
    let db = match crate::ddb_local::DynamoDbLocal::start_in_memory().await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("bench: a fresh DynamoDB Local did not start ({e}); using the shared one");
            return None;
        }
    };
    let previous = VARS.map(std::env::var_os);
    // Set between parts, while no request is in flight; every endpoint of the bench is an IP
    // literal, so no other thread is inside getaddrinfo (which reads the environment) meanwhile.
    for v in VARS {
        std::env::set_var(v, db.endpoint());
    }
    Some(FreshDynamoDb {
        _db: db,
        previous: VARS.into_iter().zip(previous).collect(),
    })
}

pub struct FreshDynamoDb {
    _db: crate::ddb_local::DynamoDbLocal,
    previous: Vec<(&'static str, Option<std::ffi::OsString>)>,
}

impl Drop for FreshDynamoDb {
    fn drop(&mut self) {
        for (var, value) in &self.previous {
            match value {
                Some(v) => std::env::set_var(var, v),
                None => std::env::remove_var(var),
            }
        }
    }
}

/// A fresh sfvapi table and a store whose DynamoDB requests are counted.
pub async fn fresh_store() -> (Store, RequestCounter) {
    let sdk = sdk().await;
    let table = unique("sfvapi-bench");
    store::create_table(&store::client(&sdk), &table)
        .await
        .expect("create table on DynamoDB Local");
    let counter = RequestCounter::default();
    (
        Store::new(store::client_with_counter(&sdk, counter.clone()), table),
        counter,
    )
}

pub async fn create_secret(value: &Value) -> String {
    let client = aws_sdk_secretsmanager::Client::new(&sdk().await);
    client
        .create_secret()
        .name(unique("sfvapi/bench"))
        .secret_string(value.to_string())
        .send()
        .await
        .expect("create secret in moto")
        .arn()
        .expect("arn")
        .to_owned()
}

pub async fn secrets_cache() -> SecretsCache {
    SecretsCache::new(
        sfvapi::config::secrets_client(&sdk().await),
        Duration::from_secs(300),
    )
}

fn env_of(map: HashMap<String, String>) -> Env<impl Fn(&str) -> Option<String>> {
    Env::new(move |k| map.get(k).cloned())
}

fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub async fn ingest_secret() -> String {
    create_secret(&json!({"signing_secrets": [SF_SECRET], "outbound_message_token": "om-token-for-the-bench-0123456789"}))
        .await
}

/// The ingest handler on `store`, as a cold start builds it.
pub async fn ingest_app(store: &Store, secret_arn: &str) -> IngestApp {
    let config = IngestConfig::from_env(&env_of(vars(&[
        ("TABLE_NAME", store.table()),
        ("SF_INGEST_SECRET_ARN", secret_arn),
        ("SF_OUTBOUND_ORG_IDS", "00D5e000000AbCdEAK"),
    ])))
    .expect("ingest config");
    IngestApp::new(config, store.clone(), secrets_cache().await)
}

/// One secret in both Vapi roles (server secret for the webhook, private key for the worker):
/// the bench has no IAM to separate them.
/// The key the worker signs call context with (`sfvapi::vapi::context`).
pub const CONTEXT_KEY: &str = "bench-call-context-key-0123456789ab";

pub async fn vapi_secret() -> String {
    create_secret(&json!({"server_secrets": [VAPI_SECRET], "context_key": CONTEXT_KEY, "api_key": "vapi-private-key"}))
        .await
}

/// Put the call context the worker signs on a server message (event, Contact, Case + signature).
pub fn sign_context(message: &mut Value, event: &str) {
    let meta = &mut message["message"]["call"]["assistantOverrides"]["metadata"];
    meta["sfvapiEventId"] = json!(event);
    meta["contactId"] = json!(CONTACT);
    meta["caseId"] = json!(CASE);
    let sig = match (
        sfvapi::ids::SalesforceEventId::parse("e", event),
        sfvapi::ids::SalesforceId::parse("c", CONTACT),
        sfvapi::ids::SalesforceId::parse("c", CASE),
    ) {
        (Ok(e), Ok(c), Ok(k)) => sfvapi::vapi::context::sign(
            &sfvapi::secrets::SecretString::new(CONTEXT_KEY),
            &e,
            &c,
            Some(&k),
        ),
        _ => None,
    };
    meta["sfvapiContextSig"] = json!(sig);
}

/// The Vapi webhook handler on `store` (HMAC mode, the default).
pub async fn vapi_app(store: &Store, secret_arn: &str) -> VapiWebhookApp {
    let config = VapiWebhookConfig::from_env(&env_of(vars(&[
        ("TABLE_NAME", store.table()),
        ("VAPI_SERVER_SECRET_ARN", secret_arn),
    ])))
    .expect("vapi config");
    VapiWebhookApp::new(config, store.clone(), secrets_cache().await)
}

/// A flat Salesforce event padded to exactly `size` bytes with a field the parser ignores.
pub fn event_body(id: &str, size: usize) -> Vec<u8> {
    let mut v = json!({
        "eventId": id,
        "contactId": CONTACT,
        "caseId": CASE,
        "priority": "High",
        "reason": "Payment failed twice; the customer asked for a call back about the refund and the fee.",
        "context": "",
    });
    let base = v.to_string().len();
    if size > base {
        v["context"] = Value::String("x".repeat(size - base));
    }
    v.to_string().into_bytes()
}

/// Signature headers of the v2 scheme for `body` at `ts`.
pub fn sf_v2_headers(secret: &str, body: &[u8], ts: i64) -> (String, String) {
    sfvapi::signature::sign_salesforce_v2(secret.as_bytes(), body, ts)
}

/// A v2-signed `POST /salesforce/events`, as a Flow would send it.
pub fn signed_ingest(body: &[u8]) -> lambda_http::Request {
    sfvapi_test_support::signed_event_with(SF_SECRET, body, sfvapi::now_secs())
}

/// Vapi's default HMAC headers (`x-timestamp`, hex `x-signature` over `"{ts}.{body}"`).
pub fn vapi_hmac(secret: &str, body: &[u8], ts: i64) -> (String, String) {
    let ts = ts.to_string();
    let mac = sfvapi::signature::hmac_parts(
        sfvapi::signature::Algorithm::Sha256,
        secret.as_bytes(),
        &[ts.as_bytes(), b".", body],
    );
    (ts, hex::encode(mac))
}

pub fn signed_vapi(body: &[u8]) -> lambda_http::Request {
    let (ts, sig) = vapi_hmac(VAPI_SECRET, body, sfvapi::now_secs());
    request(
        "POST",
        "/vapi/webhook",
        &[
            ("content-type", "application/json"),
            ("x-timestamp", &ts),
            ("x-signature", &sig),
        ],
        body,
        false,
    )
}

/// Status and JSON body of a handler's answer.
pub fn answer(resp: lambda_http::Response<lambda_http::Body>) -> (u16, Value) {
    let status = resp.status().as_u16();
    let json = serde_json::from_slice(sfvapi::http::body_bytes(resp.body())).unwrap_or(Value::Null);
    (status, json)
}

/// A tool-calls message for the seeded call with its own tool call id (a retried id would be
/// answered from the tool-answer cache instead).
pub fn tool_call_body(tool_call_id: &str) -> Vec<u8> {
    let mut v = json_of(fixtures::TOOL_CALLS);
    // Both lists carry the call (Vapi OpenAPI `ServerMessageToolCalls` requires both).
    v["message"]["toolCallList"][0]["id"] = json!(tool_call_id);
    v["message"]["toolWithToolCallList"][0]["toolCall"]["id"] = json!(tool_call_id);
    v["message"]["timestamp"] = json!(sfvapi::now_millis());
    v.to_string().into_bytes()
}

/// Write the `call#` item with a customer snapshot, as the worker does after POST /call.
pub async fn seed_call(store: &Store) {
    use sfvapi::calls::*;
    use sfvapi::ids::*;
    let snapshot = CallSnapshot {
        customer: CustomerSnapshot {
            name: Some("Ada Lovelace".into()),
            phone: Some("+1******0123".into()),
            account_status: Some("Gold".into()),
            preferred_language: Some("en-GB".into()),
            last_interaction: Some("2026-11-20".into()),
            high_value: Some(true),
        },
        case: Some(CaseSnapshot {
            case_id: Some(CASE.into()),
            case_number: Some("00001026".into()),
            subject: Some("Refund not received".into()),
            priority: Some("High".into()),
            status: Some("Escalated".into()),
            reason: Some("Payment failed twice".into()),
        }),
        captured_at: Some(sfvapi::now_millis()),
        handoff: None,
    };
    record_call(
        store,
        &NewCall {
            call_number: 1,
            call_id: VapiCallId::parse("id", CALL_ID).expect("call id"),
            event_id: SalesforceEventId::parse("e", "bench-event-1").expect("event id"),
            contact_id: SalesforceId::parse("c", CONTACT).expect("contact id"),
            case_id: Some(SalesforceId::parse("c", CASE).expect("case id")),
            snapshot,
            created_at_ms: sfvapi::now_millis(),
            slot: None,
        },
        Duration::from_secs(86_400),
    )
    .await
    .expect("seed call# item");
}

/// Salesforce's token answer for `access_token`, issued now.
pub fn sf_token_response(access_token: &str, instance_url: &str) -> Value {
    sfvapi_test_support::sf_token_response(access_token, instance_url, sfvapi::now_millis())
}

pub fn sf_secret_json() -> Value {
    json!({
        "client_id": "3MVG9-bench-client-id",
        "client_secret": "bench-client-secret",
        "refresh_token": "5Aep-bench-refresh-token"
    })
}

pub const SMS_PATH: &str = "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json";
pub const TOKEN_PATH: &str = "/services/oauth2/token";

/// The Contact is read with one SOQL query (`GET /query?q=SELECT … FROM Contact WHERE Id = '…'`);
/// it is the only query sfvapi sends, so the path alone identifies it here.
pub fn contact_path(_id: &str) -> String {
    "/services/data/v62.0/query".to_owned()
}

/// A `GET /query` answer holding one record (Query resource,
/// https://developer.salesforce.com/docs/platform/api-rest/guide/dome-query.html).
pub fn query_answer(record: Value) -> Value {
    json!({"totalSize": 1, "done": true, "records": [record]})
}

/// A table, an ingest app and a worker wired to wiremock Salesforce, Vapi and Twilio.
pub struct World {
    pub store: Store,
    pub counter: RequestCounter,
    pub sf: MockServer,
    pub vapi: MockServer,
    pub twilio: MockServer,
    pub vars: HashMap<String, String>,
    pub ingest: IngestApp,
}

impl World {
    /// `normal_salesforce`: mount the token endpoint and the usual Contact/Case/Task answers.
    pub async fn new(extra: &[(&str, &str)], normal_salesforce: bool) -> Self {
        let (store, counter) = fresh_store().await;
        let (sf, vapi, twilio) = tokio::join!(
            MockServer::start(),
            MockServer::start(),
            MockServer::start()
        );
        let sf_arn = create_secret(&sf_secret_json()).await;
        let vapi_arn = vapi_secret().await;
        let twilio_arn =
            create_secret(&json!({"account_sid": TWILIO_SID, "auth_token": "twilio-token"})).await;
        let mut vars = vars(&[
            ("TABLE_NAME", store.table()),
            ("SF_LOGIN_URL", &sf.uri()),
            ("SF_CONNECTION_SECRET_ARN", &sf_arn),
            ("VAPI_SECRET_ARN", &vapi_arn),
            ("VAPI_SERVER_SECRET_ARN", &vapi_arn),
            ("VAPI_BASE_URL", &vapi.uri()),
            ("VAPI_ASSISTANT_ID", "asst-bench"),
            ("VAPI_PHONE_NUMBER_ID", "pn-bench"),
            ("VAPI_HTTP_TIMEOUT_SECS", "1"),
            // Thousands of dials to a few sample customers, at any hour: the window and the cap
            // would hold them back (the policy's own cost is its own bench part).
            ("CALL_HOURS", "00:00-24:00"),
            ("CALL_CAP", "none"),
            ("TWILIO_SECRET_ARN", &twilio_arn),
            ("TWILIO_BASE_URL", &twilio.uri()),
            ("TWILIO_FROM", "+14155559999"),
            ("TWILIO_HTTP_TIMEOUT_SECS", "1"),
            ("RETRY_BASE_SECS", "0"),
            ("FOLLOWUP_HIGH_VALUE", "false"),
            // The storms dial up to 200 events whose calls (wiremock) never end: pacing is
            // measured on its own (tools/local pacing), not here.
            ("VAPI_MAX_CONCURRENT_CALLS", "200"),
        ]);
        for (k, v) in extra {
            vars.insert((*k).to_owned(), (*v).to_owned());
        }
        let ingest = ingest_app(&store, &ingest_secret().await).await;
        let w = Self {
            store,
            counter,
            sf,
            vapi,
            twilio,
            vars,
            ingest,
        };
        if normal_salesforce {
            w.mount_token().await;
            w.mount_contact(200, json_of(fixtures::CONTACT), None).await;
            w.mount_case_and_task().await;
        }
        w
    }

    pub async fn mount_token(&self) {
        Mock::given(method("POST"))
            .and(path(TOKEN_PATH))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(sf_token_response("tok-1", &self.sf.uri())),
            )
            .mount(&self.sf)
            .await;
    }

    /// Contact answers `status` with `body`, at most `times` times when given (wiremock tries
    /// mocks in mount order, so a limited mock mounted first is a transient fault).
    pub async fn mount_contact(&self, status: u16, body: Value, times: Option<u64>) {
        // A 200 carries the record inside the query answer; an error is Salesforce's error array.
        let body = if status == 200 {
            query_answer(body)
        } else {
            body
        };
        let m = Mock::given(method("GET"))
            .and(path(contact_path(CONTACT)))
            .respond_with(ResponseTemplate::new(status).set_body_json(body));
        match times {
            Some(n) => m.up_to_n_times(n).mount(&self.sf).await,
            None => m.mount(&self.sf).await,
        }
    }

    pub async fn mount_case_and_task(&self) {
        Mock::given(method("GET"))
            .and(path(format!("/services/data/v62.0/sobjects/Case/{CASE}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({
                "attributes": {"type": "Case"}, "Id": CASE, "CaseNumber": "00001026",
                "Subject": "Refund not received", "Status": "Escalated", "Priority": "High", "ContactId": CONTACT
            })))
            .mount(&self.sf)
            .await;
        // The Task is created first; the PATCH only follows a DUPLICATE_VALUE.
        Mock::given(method("POST"))
            .and(path("/services/data/v62.0/sobjects/Task"))
            .respond_with(
                ResponseTemplate::new(201).set_body_json(
                    json!({"id": "00T5e00000AbCdEAAV", "success": true, "errors": []}),
                ),
            )
            .mount(&self.sf)
            .await;
        Mock::given(method("PATCH"))
            .and(path_regex(
                r"^/services/data/v62.0/sobjects/Task/Vapi_Call_Id__c/.+$",
            ))
            .respond_with(ResponseTemplate::new(201).set_body_json(
                json!({"id": "00T5e00000AbCdEAAV", "success": true, "errors": [], "created": true}),
            ))
            .mount(&self.sf)
            .await;
    }

    /// Vapi's POST /call answers 201 with the fixture's call object under a new call id each
    /// time ([`created_call`]), or `status` with Vapi's error body. Dials are counted as the
    /// POSTs wiremock received.
    pub async fn mount_vapi(&self, status: u16, times: Option<u64>, delay: Option<Duration>) {
        let m = Mock::given(method("POST")).and(path("/call"));
        let m = if status == 201 {
            m.respond_with(move |_: &wiremock::Request| {
                let resp = ResponseTemplate::new(201).set_body_json(created_call());
                match delay {
                    Some(d) => resp.set_delay(d),
                    None => resp,
                }
            })
        } else {
            let resp = ResponseTemplate::new(status)
                .set_body_json(json!({"message": "Internal server error", "statusCode": status}));
            m.respond_with(match delay {
                Some(d) => resp.set_delay(d),
                None => resp,
            })
        };
        match times {
            Some(n) => m.up_to_n_times(n).mount(&self.vapi).await,
            None => m.mount(&self.vapi).await,
        }
    }

    pub async fn mount_twilio(&self, resp: ResponseTemplate, times: Option<u64>) {
        let m = Mock::given(method("POST"))
            .and(path(SMS_PATH))
            .respond_with(resp);
        match times {
            Some(n) => m.up_to_n_times(n).mount(&self.twilio).await,
            None => m.mount(&self.twilio).await,
        }
    }

    pub async fn worker(&self) -> Worker {
        let config = WorkerConfig::from_env(&env_of(self.vars.clone())).expect("worker config");
        Worker::new(config, self.store.clone(), secrets_cache().await).expect("worker")
    }

    pub async fn webhook(&self) -> VapiWebhookApp {
        let arn = self
            .vars
            .get("VAPI_SECRET_ARN")
            .cloned()
            .unwrap_or_default();
        vapi_app(&self.store, &arn).await
    }

    pub async fn status(&self, pk: &str) -> (String, String) {
        let item = self.store.get(pk).await.ok().flatten().unwrap_or_default();
        let reason = attr::opt_s(&item, "reason")
            .or_else(|| attr::opt_s(&item, "last_error"))
            .unwrap_or_default()
            .to_owned();
        (
            attr::opt_s(&item, "status").unwrap_or("MISSING").to_owned(),
            reason,
        )
    }

    pub async fn posts(server: &MockServer, p: &str) -> usize {
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == p && r.method.as_str() == "POST")
            .count()
    }

    pub async fn calls(&self) -> usize {
        Self::posts(&self.vapi, "/call").await
    }

    pub async fn sms(&self) -> usize {
        Self::posts(&self.twilio, SMS_PATH).await
    }

    pub async fn oauth_calls(&self) -> usize {
        Self::posts(&self.sf, TOKEN_PATH).await
    }

    /// A Vapi that remembers every call it creates, even when its answer comes too late for the
    /// client (`create_delay`), and lists / returns them as Vapi does (Vapi OpenAPI
    /// `CallController_create` / `findAll` with `assistantId`, `createdAtGe` / `findOne`).
    pub async fn mount_vapi_calls(&self, create_delay: Option<Duration>) -> VapiCalls {
        let calls = VapiCalls::default();
        Mock::given(method("POST"))
            .and(path("/call"))
            .respond_with(CreateCall {
                calls: calls.clone(),
                delay: create_delay,
            })
            .mount(&self.vapi)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/call/?$"))
            .respond_with(ListCalls(calls.clone()))
            .mount(&self.vapi)
            .await;
        Mock::given(method("GET"))
            .and(path_regex(r"^/call/[^/]+$"))
            .respond_with(GetCall(calls.clone()))
            .mount(&self.vapi)
            .await;
        calls
    }

    /// Tasks written (created) in Salesforce.
    pub async fn tasks(&self) -> usize {
        Self::posts(&self.sf, "/services/data/v62.0/sobjects/Task").await
    }

    /// Run jobs until each is settled: deliver as the stream would, sweep as the schedule would.
    /// Bounded: `rounds` passes at most.
    pub async fn drive(&self, worker: &Worker, pks: &[String], rounds: usize) {
        for _ in 0..rounds {
            let _ = worker.sweep().await;
            let mut pending = Vec::new();
            for pk in pks {
                let (s, _) = self.status(pk).await;
                if s == "PENDING" || s == "RETRY" || s == "RUNNING" {
                    pending.push(pk.clone());
                }
            }
            if pending.is_empty() {
                return;
            }
            let refs: Vec<(&str, &str)> = pending.iter().map(|p| (p.as_str(), "PENDING")).collect();
            let _ = worker.handle(stream_batch(&refs)).await;
        }
    }
}

/// A DynamoDB stream batch as Lambda delivers it: the NEW_IMAGE of each job.
/// The calls a [`World::mount_vapi_calls`] Vapi created.
#[derive(Clone, Default)]
pub struct VapiCalls(std::sync::Arc<std::sync::Mutex<Vec<Value>>>);

impl VapiCalls {
    fn all(&self) -> Vec<Value> {
        self.0.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Every call ends with `reason` and the parts an end-of-call report carries.
    pub fn end_all(&self, reason: &str) {
        if let Ok(mut calls) = self.0.lock() {
            for c in calls.iter_mut() {
                c["status"] = json!("ended");
                c["endedReason"] = json!(reason);
                c["startedAt"] = c["createdAt"].clone();
                c["endedAt"] = c["createdAt"].clone();
                c["artifact"] =
                    json!({"transcript": "AI: Hello, this is the support team.", "messages": []});
                c["analysis"] = json!({"summary": "The customer was told about the case."});
            }
        }
    }
}

struct CreateCall {
    calls: VapiCalls,
    delay: Option<Duration>,
}

impl wiremock::Respond for CreateCall {
    fn respond(&self, req: &wiremock::Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let mut call = json_of(fixtures::CALL_CREATED);
        let n = self.calls.0.lock().map(|c| c.len()).unwrap_or(0);
        call["id"] = json!(format!("c0ffee00-1111-4222-8333-{n:012}"));
        let now = sfvapi::vapi::client::iso_millis(sfvapi::now_millis());
        call["createdAt"] = json!(now);
        call["updatedAt"] = json!(now);
        for k in [
            "assistantId",
            "phoneNumberId",
            "customer",
            "name",
            "assistantOverrides",
        ] {
            if let Some(v) = body.get(k) {
                call[k] = v.clone();
            }
        }
        if let Ok(mut calls) = self.calls.0.lock() {
            calls.push(call.clone());
        }
        let resp = ResponseTemplate::new(201).set_body_json(call);
        match self.delay {
            Some(d) => resp.set_delay(d),
            None => resp,
        }
    }
}

struct ListCalls(VapiCalls);

impl wiremock::Respond for ListCalls {
    fn respond(&self, req: &wiremock::Request) -> ResponseTemplate {
        let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
        let since = q
            .get("createdAtGe")
            .and_then(|s| sfvapi::jobs::report::parse_rfc3339_ms(s))
            .unwrap_or(0);
        let calls: Vec<Value> = self
            .0
            .all()
            .into_iter()
            .filter(|c| {
                q.get("assistantId")
                    .is_none_or(|a| c["assistantId"] == a.as_str())
            })
            .filter(|c| {
                c["createdAt"]
                    .as_str()
                    .and_then(sfvapi::jobs::report::parse_rfc3339_ms)
                    .is_some_and(|t| t >= since)
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(calls)
    }
}

struct GetCall(VapiCalls);

impl wiremock::Respond for GetCall {
    fn respond(&self, req: &wiremock::Request) -> ResponseTemplate {
        let id = req.url.path().rsplit('/').next().unwrap_or_default();
        match self.0.all().into_iter().find(|c| c["id"] == id) {
            Some(c) => ResponseTemplate::new(200).set_body_json(c),
            None => ResponseTemplate::new(404).set_body_json(
                json!({"message": "Call not found", "error": "Not Found", "statusCode": 404}),
            ),
        }
    }
}

pub fn stream_batch(images: &[(&str, &str)]) -> DynamodbEvent {
    serde_json::from_value(stream_batch_json(images)).expect("stream event")
}

pub fn stream_batch_json(images: &[(&str, &str)]) -> Value {
    sfvapi::samples::stream_batch(images)
}
