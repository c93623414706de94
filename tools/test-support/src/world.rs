//! The job worker's world (`shared/tests/worker.rs`): a fresh table, secrets in moto, and three
//! wiremock servers answering like Salesforce, Vapi and Twilio, plus the worker built on them as a
//! cold start builds it.
//!
//! A test reads as given / when / then:
//!
//! ```ignore
//! use sfvapi_test_support::world::*;
//!
//! let w = World::new(&[("MAX_ATTEMPTS", "2")]).await; // given: Salesforce answers normally
//! w.vapi_answers(500, None).await;                     // … and Vapi fails
//! let worker = w.worker().await;
//! let pk = w.enqueue("exhaust-1", ADA).await;
//! deliver(&worker, &pk).await;                         // when: the stream delivers the job
//! assert_eq!(w.status(&pk).await, "RETRY");            // then
//! ```
//!
//! A new helper a test needs goes here as a `World` method (a type of another crate cannot get
//! inherent methods in a test file) or as a free function in the test file.

use std::collections::HashMap;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event as DynamodbEvent;
use serde_json::{json, Value};
use sfvapi::jobs::config::WorkerConfig;
use sfvapi::jobs::worker::Worker;
use sfvapi::store::{attr, Store};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::{
    answer, contact_query_mock, create_secret, env_of, fixture_json, fresh_store, json_answer,
    json_error, mount, mount_sf_token, posts_to, received_on, secrets_cache, sf_secret_json,
    vapi_webhook_app,
};

// Salesforce's records in the world (what `salesforce_answers_normally` answers).

/// Ada Lovelace, the Contact of `salesforce/contact.json`.
pub const ADA: &str = "0035e00000XyZ12AAF";
/// Ada's escalated Case.
pub const CASE: &str = "5005e00000AbCdEAAV";
pub const CONTENT_VERSION: &str = "0685e00000AbCdEAAV";
/// A Task id with its checksum (the POST mock's `00T5e00000AbCdEAAV` has none, so the report
/// reads the Task by its external id to link the transcript file).
pub const TASK_ID: &str = "00T5e00000AbCdEEAV";
pub const CONTENT_DOCUMENT: &str = "0695e00000AbCdEAAV";

/// The worker's settings in every world (besides its table, servers and secrets); `extra` in
/// [`World::new`] overrides them.
const WORKER_SETTINGS: &[(&str, &str)] = &[
    ("VAPI_ASSISTANT_ID", "asst-test"),
    ("VAPI_PHONE_NUMBER_ID", "pn-test"),
    // These tests are about the worker, at any hour: the calling policy has its own
    // (shared/tests/policy.rs).
    ("CALL_HOURS", "00:00-24:00"),
    ("CALL_CAP", "none"),
    ("VAPI_HTTP_TIMEOUT_SECS", "1"),
    ("TWILIO_FROM", "+14155559999"),
    ("TWILIO_HTTP_TIMEOUT_SECS", "1"),
    ("RETRY_BASE_SECS", "0"),
    ("FOLLOWUP_HIGH_VALUE", "false"),
];

// Vapi's and Twilio's side of the world.

/// The call id of `vapi/create-call-response.json` and the report fixtures.
pub const CALL_ID: &str = "c0ffee00-1111-4222-8333-444455556666";
/// The Vapi server secret the webhook checks HMAC signatures with.
pub const VAPI_HOOK_SECRET: &str = "vapi-hook-secret-for-tests-0123456789";
/// The key the worker signs call context with and the webhook checks it with.
pub const CONTEXT_KEY: &str = "call-context-key-for-tests-0123456789";
/// The report job of [`CALL_ID`]'s end-of-call report.
pub const REPORT_PK: &str = "evt#vapi#c0ffee00-1111-4222-8333-444455556666#end-of-call-report";
/// Twilio's Messages resource for the test account.
pub const TWILIO_MESSAGES: &str =
    "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json";

/// A fresh table, the worker's secrets, and wiremock servers for Salesforce, Vapi and Twilio.
pub struct World {
    pub store: Store,
    pub sf: MockServer,
    pub vapi: MockServer,
    pub twilio: MockServer,
    /// The worker's environment (what [`World::worker`] reads).
    pub vars: HashMap<String, String>,
}

const DATA: &str = "/services/data/v62.0";

impl World {
    /// The world with the worker's variables plus `extra` (which override), Salesforce
    /// answering normally ([`World::salesforce_answers_normally`]), and Vapi and Twilio
    /// answering nothing yet.
    pub async fn new(extra: &[(&str, &str)]) -> Self {
        let (store, _) = fresh_store().await;
        let sf = MockServer::start().await;
        let vapi = MockServer::start().await;
        let twilio = MockServer::start().await;
        let sf_arn = create_secret(&sf_secret_json()).await;
        let vapi_arn = create_secret(&json!({"api_key": "vapi-private-key"})).await;
        // What the worker signs call context with and the webhook checks it with.
        let vapi_server_arn = create_secret(
            &json!({"server_secrets": [VAPI_HOOK_SECRET], "context_key": CONTEXT_KEY}),
        )
        .await;
        let twilio_arn = create_secret(&json!({"account_sid": "AC0123456789abcdef0123456789abcdef", "auth_token": "twilio-token"})).await;
        let dynamic = [
            ("TABLE_NAME", store.table().to_owned()),
            ("SF_LOGIN_URL", sf.uri()),
            ("SF_CONNECTION_SECRET_ARN", sf_arn),
            ("VAPI_SECRET_ARN", vapi_arn),
            ("VAPI_SERVER_SECRET_ARN", vapi_server_arn),
            ("VAPI_BASE_URL", vapi.uri()),
            ("TWILIO_SECRET_ARN", twilio_arn),
            ("TWILIO_BASE_URL", twilio.uri()),
        ];
        let fixed = WORKER_SETTINGS.iter().chain(extra);
        let vars: HashMap<String, String> = dynamic
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .chain(fixed.map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
            .collect();
        let w = Self {
            store,
            sf,
            vapi,
            twilio,
            vars,
        };
        w.salesforce_answers_normally().await;
        w
    }

    /// The worker's configuration from [`World::vars`].
    pub fn config(&self) -> WorkerConfig {
        let vars: Vec<(&str, &str)> = self
            .vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        WorkerConfig::from_env(&env_of(&vars)).expect("worker config")
    }

    /// A worker as a cold start builds it (its own secrets cache).
    pub async fn worker(&self) -> Worker {
        Worker::new(self.config(), self.store.clone(), secrets_cache().await).expect("worker")
    }

    /// Salesforce issues `tok-1`, reads Ada and her Case, creates Tasks, files (ContentVersion,
    /// ContentDocumentLink) and answers the Task by its external id.
    pub async fn salesforce_answers_normally(&self) {
        mount_sf_token(&self.sf, "tok-1").await;
        self.contact(ADA, fixture_json("salesforce/contact.json"))
            .await;
        let case = json!({
            "attributes": {"type": "Case"}, "Id": CASE, "CaseNumber": "00001026", "Subject": "Refund not received",
            "Status": "Escalated", "Priority": "High", "ContactId": ADA
        });
        self.sf_answers("GET", &format!("{DATA}/sobjects/Case/{CASE}"), 200, case)
            .await;
        // The Task is created first (POST, 201); only a DUPLICATE_VALUE leads to the PATCH.
        self.sf_creates("Task", "00T5e00000AbCdEAAV").await;
        // Files (the whole transcript): as Salesforce answers a create and a read.
        self.sf_creates("ContentVersion", CONTENT_VERSION).await;
        let version = json!({
            "attributes": {"type": "ContentVersion"}, "Id": CONTENT_VERSION,
            "ContentDocumentId": CONTENT_DOCUMENT
        });
        let version_path = format!("{DATA}/sobjects/ContentVersion/{CONTENT_VERSION}");
        self.sf_answers("GET", &version_path, 200, version).await;
        self.sf_creates("ContentDocumentLink", "06A5e00000AbCdEEAV")
            .await;
        // The Task by its external id (what the report reads when an id is not usable).
        let by_key = r"^/services/data/v62.0/sobjects/Task/Vapi_Call_Id__c/.+$";
        Mock::given(method("GET"))
            .and(path_regex(by_key))
            .respond_with(json_answer(
                200,
                json!({"attributes": {"type": "Task"}, "Id": TASK_ID}),
            ))
            .mount(&self.sf)
            .await;
        Mock::given(method("PATCH"))
            .and(path_regex(by_key))
            .respond_with(json_answer(
                201,
                json!({"id": "00T5e00000AbCdEAAV", "success": true, "errors": [], "created": true}),
            ))
            .mount(&self.sf)
            .await;
    }

    /// Salesforce answers `verb path` with `status` and `body`.
    pub async fn sf_answers(&self, verb: &str, route: &str, status: u16, body: Value) {
        mount(&self.sf, verb, route, json_answer(status, body)).await;
    }

    /// Salesforce creates `object` records (`POST …/sobjects/{object}` → 201 with `id`).
    pub async fn sf_creates(&self, object: &str, id: &str) {
        crate::mount_sf_create(&self.sf, object, id).await;
    }

    /// The Contact query for `id` answers `body` as its one record.
    pub async fn contact(&self, id: &str, body: Value) {
        contact_query_mock(id, Some(body)).mount(&self.sf).await;
    }

    /// Vapi answers `POST /call` with `status` (201: the create-call fixture; else Vapi's error
    /// body), for the first `times` calls or all of them.
    pub async fn vapi_answers(&self, status: u16, times: Option<u64>) {
        let resp = if status == 201 {
            json_answer(201, fixture_json("vapi/create-call-response.json"))
        } else {
            json_error(status, "Internal server error")
        };
        let mock = Mock::given(method("POST"))
            .and(path("/call"))
            .respond_with(resp);
        match times {
            Some(n) => mock.up_to_n_times(n).mount(&self.vapi).await,
            None => mock.mount(&self.vapi).await,
        }
    }

    /// Twilio answers every message 201, as in the fixture.
    pub async fn twilio_accepts(&self) {
        self.twilio_answers(json_answer(
            201,
            fixture_json("twilio/message-created.json"),
        ))
        .await;
    }

    /// The SMS requests Twilio received.
    pub async fn sms(&self) -> Vec<Request> {
        self.posts(&self.twilio, TWILIO_MESSAGES).await
    }

    /// Twilio answers every message with `resp`.
    pub async fn twilio_answers(&self, resp: ResponseTemplate) {
        mount(&self.twilio, "POST", TWILIO_MESSAGES, resp).await;
    }

    /// A dial job for `event_id` and `contact` (Ada's Case), as the ingest writes it; its pk.
    pub async fn enqueue(&self, event_id: &str, contact: &str) -> String {
        let body = json!({"eventId": event_id, "contactId": contact, "caseId": CASE, "priority": "High", "reason": "Payment failed twice"});
        let req = sfvapi::salesforce::events::parse_json_event(body.to_string().as_bytes())
            .expect("a flat event");
        let item =
            sfvapi::jobs::new_dial_job(&req, sfvapi::now_millis(), Duration::from_secs(86_400));
        self.store.put_if_absent(item).await.expect("put the job");
        format!("evt#sf#{event_id}")
    }

    /// The item `pk` (panics when there is none).
    pub async fn item(&self, pk: &str) -> sfvapi::store::Item {
        self.store
            .get(pk)
            .await
            .expect("read the item")
            .unwrap_or_else(|| panic!("{pk} missing"))
    }

    /// The item's `status` ("" when it has none).
    pub async fn status(&self, pk: &str) -> String {
        attr::opt_s(&self.item(pk).await, "status")
            .unwrap_or_default()
            .to_owned()
    }

    /// The writes (not GETs) `server` received on `p`.
    pub async fn posts(&self, server: &MockServer, p: &str) -> Vec<Request> {
        posts_to(server, p).await
    }

    /// The `POST /call` requests Vapi received.
    pub async fn calls(&self) -> Vec<Request> {
        self.posts(&self.vapi, "/call").await
    }

    /// Vapi answers every `POST /call` 201 with a fresh call id and `subscriptionLimits` (org
    /// limit 10); `blocked`: the call is blocked by the concurrency limit and ends at once.
    pub async fn vapi_creates_calls(&self, blocked: bool, times: Option<u64>) {
        let mock = Mock::given(method("POST"))
            .and(path("/call"))
            .respond_with(FreshCalls {
                seq: std::sync::atomic::AtomicU32::new(if blocked { 900 } else { 0 }),
                blocked,
                org_limit: 10,
            });
        match times {
            Some(n) => mock.up_to_n_times(n).mount(&self.vapi).await,
            None => mock.mount(&self.vapi).await,
        }
    }

    /// The call slots the worker paces with (`VAPI_MAX_CONCURRENT_CALLS`, default 10).
    pub fn slots(&self) -> sfvapi::pacing::CallSlots {
        let max = self
            .vars
            .get("VAPI_MAX_CONCURRENT_CALLS")
            .and_then(|v| v.parse().ok())
            .unwrap_or(10);
        sfvapi::pacing::CallSlots::new(self.store.clone(), max, Duration::from_secs(3600))
    }

    /// How many calls hold a slot now.
    pub async fn live(&self) -> u32 {
        self.slots()
            .live(sfvapi::now_millis())
            .await
            .expect("count live calls")
    }

    /// Vapi's `GET /call` answers this list.
    pub async fn vapi_lists(&self, calls: Value) {
        mount(&self.vapi, "GET", "/call", json_answer(200, calls)).await;
    }

    /// The GET requests Vapi received on `p`.
    pub async fn vapi_reads(&self, p: &str) -> Vec<Request> {
        received_on(&self.vapi, p)
            .await
            .into_iter()
            .filter(|r| r.method.as_str() == "GET")
            .collect()
    }

    /// Make a waiting job (or a report watch) due now.
    pub async fn age(&self, pk: &str) {
        crate::age(&self.store, pk).await;
    }

    /// `GET …/sobjects/Case/{id}` answers a Case of Ada's owned by `owner`.
    pub async fn case_owned_by(&self, case: &str, owner: &str) {
        let body = json!({
            "attributes": {"type": "Case"}, "Id": case, "CaseNumber": "00001030",
            "Subject": "Refund not received", "Status": "Escalated", "Priority": "High",
            "ContactId": ADA, "OwnerId": owner
        });
        self.sf_answers("GET", &format!("{DATA}/sobjects/Case/{case}"), 200, body)
            .await;
    }

    /// `GET …/sobjects/User/{id}` answers the User's phone fields, as Salesforce does.
    pub async fn user(&self, id: &str, phone: Value, mobile: Value) {
        let body = json!({
            "attributes": {"type": "User", "url": format!("{DATA}/sobjects/User/{id}")},
            "Id": id, "Phone": phone, "MobilePhone": mobile
        });
        self.sf_answers("GET", &format!("{DATA}/sobjects/User/{id}"), 200, body)
            .await;
    }

    /// The job's call id (the dial has run).
    pub async fn call_of(&self, pk: &str) -> String {
        attr::opt_s(&self.item(pk).await, "call_id")
            .unwrap_or_else(|| panic!("{pk} placed no call"))
            .to_owned()
    }

    /// The webhook's answer to Vapi's `transfer-destination-request` for `call_id`.
    pub async fn transfer_request(&self, call_id: &str) -> Value {
        // A destination in the message is Vapi's guess and never used.
        let body = json!({"message": {
            "type": "transfer-destination-request", "timestamp": sfvapi::now_millis(),
            "destination": {"type": "number", "number": "+19005550000"},
            "call": {"id": call_id, "orgId": "org-test"}
        }});
        let a = answer(
            webhook_app(self)
                .await
                .handle(vapi_signed(body.to_string().as_bytes()))
                .await,
        );
        assert_eq!(a.status, 200, "{}", a.body);
        a.json
    }
}

/// Vapi's 201 for each `POST /call`, with a fresh call id each time and the `subscriptionLimits`
/// Vapi returns (docs.vapi.ai/calls/call-concurrency, "View concurrency in call responses").
struct FreshCalls {
    seq: std::sync::atomic::AtomicU32,
    blocked: bool,
    org_limit: u32,
}

impl wiremock::Respond for FreshCalls {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut body = fixture_json("vapi/create-call-response.json");
        body["id"] = json!(format!("c0ffee00-1111-4222-8333-{n:012}"));
        body["subscriptionLimits"] = json!({
            "concurrencyBlocked": self.blocked,
            "concurrencyLimit": self.org_limit,
            "remainingConcurrentCalls": if self.blocked { 0 } else { self.org_limit.saturating_sub(1) },
        });
        if self.blocked {
            // A blocked call ends at once with this reason (Vapi OpenAPI `Call.endedReason`).
            body["status"] = json!("ended");
            body["endedReason"] = json!("call.start.error-subscription-concurrency-limit-reached");
        }
        ResponseTemplate::new(201).set_body_json(body)
    }
}

/// A call as Vapi's `GET /call` / `GET /call/{id}` return it (Vapi OpenAPI `Call`), placed for
/// `event_id`; `ended` gives it an `endedReason` and the report's parts.
pub fn vapi_call(id: &str, event_id: &str, ended: Option<&str>) -> Value {
    let mut c = json!({
        "id": id, "orgId": "org-test", "type": "outboundPhoneCall",
        "createdAt": "2026-11-26T10:00:00.000Z", "updatedAt": "2026-11-26T10:03:20.000Z",
        "assistantId": "asst-test", "phoneNumberId": "pn-test",
        "name": format!("sfvapi {event_id}").chars().take(40).collect::<String>(),
        "assistantOverrides": {"metadata": {"sfvapiEventId": event_id, "contactId": ADA, "caseId": CASE}},
        "status": "in-progress",
    });
    if let Some(reason) = ended {
        c["status"] = json!("ended");
        c["endedReason"] = json!(reason);
        c["startedAt"] = json!("2026-11-26T10:00:05.000Z");
        c["endedAt"] = json!("2026-11-26T10:00:35.000Z");
        c["cost"] = json!(0.04);
        c["artifact"] = json!({"transcript": "AI: Hello, is this Ada?", "recordingUrl": "https://storage.example.com/r.wav"});
        c["analysis"] = json!({"summary": "Nobody answered."});
    }
    c
}

/// A stream batch as Lambda delivers it: the NEW_IMAGE of each job.
pub fn batch(images: &[(&str, &str)]) -> DynamodbEvent {
    serde_json::from_value(sfvapi::samples::stream_batch(images)).expect("stream event")
}

/// The stream delivers job `pk` (PENDING) to `worker`; the batch item failures it reports.
pub async fn deliver(worker: &Worker, pk: &str) -> Vec<String> {
    let resp = worker.handle(batch(&[(pk, "PENDING")])).await;
    resp.batch_item_failures
        .into_iter()
        .filter_map(|f| f.item_identifier)
        .collect()
}

/// Put the call context the worker signs (`sfvapi::vapi::context`) on a server message, signed
/// with [`CONTEXT_KEY`].
pub fn sign_context(v: &mut Value, event: &str, contact: &str, case: &str) {
    crate::sign_call_context(v, CONTEXT_KEY, event, contact, case);
}

/// The webhook handler on the world's table, with the Vapi server secret the worker signs with.
pub async fn webhook_app(w: &World) -> sfvapi::vapi::webhook::VapiWebhookApp {
    vapi_webhook_app(&w.store, &w.vars["VAPI_SERVER_SECRET_ARN"], &[]).await
}

/// Deliver the report through the real webhook handler (HMAC-signed), as Vapi would.
pub async fn webhook_delivers(w: &World, body: &[u8]) -> u16 {
    answer(webhook_app(w).await.handle(vapi_signed(body)).await).status
}

/// A server message signed like Vapi's default HMAC credential with [`VAPI_HOOK_SECRET`], as API
/// Gateway delivers it.
pub fn vapi_signed(body: &[u8]) -> lambda_http::Request {
    let event = sfvapi::samples::vapi_signed(&String::from_utf8_lossy(body), VAPI_HOOK_SECRET);
    lambda_http::request::from_str(&event.to_string()).expect("API Gateway v2 event")
}
