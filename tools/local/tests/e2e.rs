//! End to end (project issue 7): the whole local stack in-process — the sandbox's fake
//! Salesforce, Vapi and Twilio, the real handlers over HTTP, the stream pump and the job worker —
//! on DynamoDB Local and moto (run through `scripts/services.sh cargo test -p sfvapi-local`).
//!
//! Each test sends the demo's script (Ada's case escalation, the same event again, Grace who is
//! DoNotCall, a forged event), waits (bounded) until the flow has settled, stops the stack, and
//! then judges the run only by what it left: the sandbox's request log (what Salesforce, Vapi and
//! Twilio were asked) and the table. One test per sandbox scenario (normal, no-answer, outage),
//! and one where the fake Vapi delivers every server message twice, as Vapi does after a lost
//! answer.
//!
//! A stack exports its variables into the process environment (the worker's `from_env()` reads
//! them), so the tests take [`SERIAL`] and never run two stacks at once; each test's runtime, and
//! with it anything its stack left running, is gone before the next one starts.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sfvapi::store::{attr, Item};
use sfvapi_local::demo::{
    self, ADA, ADA_EVENT, CASE, FORGED_EVENT, GRACE_DO_NOT_CALL, GRACE_EVENT,
};
use sfvapi_local::pump::Observed;
use sfvapi_local::stack::{Stack, StackConfig};
use sfvapi_local::timeline::{self, Evidence, Sent};
use sfvapi_test_support::LogCapture;

/// The sandbox's seeded phone numbers (Ada's and Grace's Contact `Phone`).
const ADA_PHONE: &str = "+14155550123";
const GRACE_PHONE: &str = "+14155550124";

/// The fixtures' secrets and full phone numbers: none may appear in any log line.
const NEVER_LOGGED: &[&str] = &[
    sfvapi::samples::LOCAL_SIGNING_SECRET,
    sfvapi::samples::LOCAL_OM_TOKEN,
    sfvapi::samples::LOCAL_VAPI_SECRET,
    sfvapi::samples::LOCAL_CONTEXT_KEY,
    sfvapi::samples::LOCAL_OPERATOR_KEY,
    "sandbox-vapi-key",
    "sandbox-twilio-token",
    "sandbox-client-secret",
    "sandbox-refresh-token",
    ADA_PHONE,
    "4155550123",
    GRACE_PHONE,
    "4155550124",
];

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every log line of every test in this binary (the subscriber is global: handlers run on the
/// runtime's worker threads).
fn logs() -> &'static LogCapture {
    static LOGS: OnceLock<LogCapture> = OnceLock::new();
    LOGS.get_or_init(|| {
        let cap = LogCapture::default();
        let writer = cap.clone();
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,aws=warn,hyper=warn,h2=warn,rustls=warn,reqwest=warn",
            ))
            .with_writer(move || writer.clone())
            .try_init()
            .expect("the only subscriber of this test binary");
        cap
    })
}

/// What a finished run left behind.
struct Run {
    sent: Vec<Sent>,
    items: Vec<Item>,
    log: Vec<Value>,
    tap: Vec<Observed>,
    /// The Salesforce access token the stack used (a secret too).
    access_token: String,
    /// How often the fake Vapi sends each server message (2 with `deliver_twice`).
    deliveries: usize,
    elapsed: Duration,
}

impl Run {
    fn item(&self, pk: &str) -> &Item {
        self.items
            .iter()
            .find(|i| attr::opt_s(i, "pk") == Some(pk))
            .unwrap_or_else(|| panic!("no item {pk} in the table: {}", self.statuses()))
    }

    fn s<'a>(&'a self, pk: &str, name: &str) -> Option<&'a str> {
        attr::opt_s(self.item(pk), name)
    }

    /// `pk status` of every item, for failure messages.
    fn statuses(&self) -> String {
        self.items
            .iter()
            .map(|i| {
                format!(
                    "{} {}",
                    attr::opt_s(i, "pk").unwrap_or("?"),
                    attr::opt_s(i, "status").unwrap_or("-")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn requests(&self, service: &str, method: &str) -> Vec<&Value> {
        self.log
            .iter()
            .filter(|e| e["service"] == service && e["direction"] == "in" && e["method"] == method)
            .collect()
    }

    /// Every `POST /call` the fake Vapi received, in order.
    fn calls(&self) -> Vec<&Value> {
        self.requests("vapi", "POST")
            .into_iter()
            .filter(|e| e["path"].as_str().map(|p| p.trim_end_matches('/')) == Some("/call"))
            .collect()
    }

    /// The server messages the fake Vapi sent to the webhook for `call_id`, of type `kind`.
    fn messages(&self, call_id: &str, kind: &str) -> Vec<&Value> {
        self.log
            .iter()
            .filter(|e| {
                e["direction"] == "out" && e["call_id"] == call_id && e["message_type"] == kind
            })
            .collect()
    }
}

fn json_of(e: &Value, field: &str) -> Value {
    serde_json::from_str(e[field].as_str().unwrap_or_default()).unwrap_or(Value::Null)
}

/// Start a stack with `scenario`, send the script, wait until the flow settles (at most
/// `limit`), collect the evidence and stop the stack. The whole run is bounded too: the AWS
/// SDK has no default operation timeout, so a hung DynamoDB Local would otherwise hang the test.
async fn run(sandbox: sandbox::Config, limit: Duration) -> Run {
    let bound = limit + Duration::from_secs(30);
    let scenario = sandbox.vapi.scenario;
    tokio::time::timeout(bound, run_unbounded(sandbox, limit))
        .await
        .unwrap_or_else(|_| panic!("{scenario:?}: the run took longer than {bound:?}"))
}

/// The sandbox's defaults with `scenario`.
fn sandbox_with(scenario: sandbox::Scenario) -> sandbox::Config {
    let mut c = sandbox::Config::default();
    c.vapi.scenario = scenario;
    c
}

async fn run_unbounded(sandbox: sandbox::Config, limit: Duration) -> Run {
    sfvapi_test_support::local_services("AWS_ENDPOINT_URL_DYNAMODB");
    logs();
    let started = Instant::now();
    let scenario = sandbox.vapi.scenario;
    let deliveries = if sandbox.vapi.deliver_twice { 2 } else { 1 };
    let config = StackConfig {
        sandbox,
        ..StackConfig::default()
    };
    let stack = Stack::start(config).await.expect("the local stack starts");
    assert_eq!(
        stack.env.get("FOLLOWUP_POLICY").map(String::as_str),
        Some("not-reached")
    );
    assert_eq!(
        stack.env.get("FOLLOWUP_HIGH_VALUE").map(String::as_str),
        Some("true")
    );

    // Salesforce → runner → the ingest handler, over real HTTP: 202 / 200 duplicate / 202 / 401.
    let sent = demo::send_script(&stack.runner_url).await.unwrap();
    let mut answers: Vec<(u16, Value)> = sent
        .iter()
        .map(|s| {
            (
                s.status,
                serde_json::from_str(&s.body).unwrap_or(Value::Null),
            )
        })
        .collect();
    // The duplicate answers what is stored: the job (by now PENDING, or already being worked on)
    // and its rule.
    let stored = answers[1].1["stored"].take();
    assert!(
        ["PENDING", "RUNNING", "DIALING", "DONE"].contains(&stored.as_str().unwrap_or("")),
        "{stored}"
    );
    if let Some(o) = answers[1].1.as_object_mut() {
        o.remove("stored");
    }
    assert_eq!(
        answers,
        [
            (202, json!({"status": "queued", "eventId": ADA_EVENT})),
            (
                200,
                json!({"status": "duplicate", "eventId": ADA_EVENT, "rule": "http-flat"})
            ),
            (202, json!({"status": "queued", "eventId": GRACE_EVENT})),
            (401, json!({"error": "invalid_signature"})),
        ]
    );

    // The other doors of the runner: an unsigned Vapi message is refused by the real webhook
    // handler, an unknown route is the API's 404.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let resp = http
        .post(format!("{}/vapi/webhook", stack.runner_url))
        .json(&json!({"message": {"type": "status-update", "status": "ringing", "call": {"id": "c1"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let resp = http
        .post(format!("{}/nope", stack.runner_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    let waited = Instant::now();
    let items = loop {
        let items = demo::scan(&stack.store).await.unwrap();
        if demo::settled(&items, &[ADA_EVENT, GRACE_EVENT]) {
            break items;
        }
        if waited.elapsed() > limit {
            let log = demo::sandbox_log(&stack.vapi_url).await.unwrap_or_default();
            stack.shutdown().await;
            let run = Run {
                sent,
                items,
                log,
                tap: Vec::new(),
                access_token: String::new(),
                deliveries,
                elapsed: started.elapsed(),
            };
            panic!(
                "{scenario:?}: the flow did not settle within {limit:?}: {}\nsandbox log: {:#?}",
                run.statuses(),
                run.log
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = demo::sandbox_log(&stack.vapi_url).await.unwrap();
    let tap = stack.pump.tap.all();
    let access_token = stack
        .store
        .get("token#salesforce#default")
        .await
        .unwrap()
        .and_then(|t| attr::opt_s(&t, "access_token").map(str::to_owned))
        .expect("the refresher cached a token");
    stack.shutdown().await;
    Run {
        sent,
        items,
        log,
        tap,
        access_token,
        deliveries,
        elapsed: started.elapsed(),
    }
}

/// What every scenario must show. `attempts`: `POST /call` tries for Ada (the last one 201).
/// Returns Ada's call id.
fn assert_flow(run: &Run, attempts: usize, ended_reason: &str) -> String {
    let ada_job = format!("evt#sf#{ADA_EVENT}");
    let grace_job = format!("evt#sf#{GRACE_EVENT}");

    // Two jobs, the forged event never stored, the duplicate never a second job.
    let jobs: Vec<&str> = run
        .items
        .iter()
        .filter_map(|i| attr::opt_s(i, "pk"))
        .filter(|p| p.starts_with("evt#sf#"))
        .collect();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert!(!jobs.contains(&format!("evt#sf#{FORGED_EVENT}").as_str()));

    // Vapi: `attempts` POST /call, all for Ada's event, only the last one created a call; none
    // for Grace (DoNotCall), whatever their metadata says.
    let calls = run.calls();
    let statuses: Vec<u64> = calls.iter().filter_map(|e| e["status"].as_u64()).collect();
    let mut want = vec![500; attempts - 1];
    want.push(201);
    assert_eq!(statuses, want, "POST /call answers: {calls:#?}");
    for c in &calls {
        let body = json_of(c, "body");
        assert_eq!(
            body["assistantOverrides"]["metadata"]["sfvapiEventId"],
            ADA_EVENT
        );
        assert_eq!(body["customer"]["number"], ADA_PHONE, "{body:#}");
    }
    assert!(timeline::call_requests(&run.log, GRACE_EVENT).is_empty());
    let placed = calls[attempts - 1];
    let body = json_of(placed, "body");
    assert_eq!(body["assistantId"], sfvapi_local::stack::LOCAL_ASSISTANT_ID);
    assert_eq!(
        body["phoneNumberId"],
        sfvapi_local::stack::LOCAL_PHONE_NUMBER_ID
    );
    let vars = &body["assistantOverrides"]["variableValues"];
    for (k, v) in [
        ("customerName", "Ada Lovelace"),
        ("caseId", CASE),
        ("priority", "High"),
        ("accountStatus", "Past Due"),
        ("reason", "Payment failed twice"),
    ] {
        assert_eq!(vars[k], v, "variableValues.{k}: {vars:#}");
    }
    let meta = &body["assistantOverrides"]["metadata"];
    assert_eq!(meta["contactId"], ADA, "{meta:#}");
    assert_eq!(meta["caseId"], CASE, "{meta:#}");
    let call_id = json_of(placed, "response_body")["id"]
        .as_str()
        .expect("POST /call answered a call id")
        .to_owned();

    // The jobs: Ada DONE with the call, after one claim per attempt (each delivered once by the
    // stream filter); Grace SKIPPED with the reason, never dialed.
    assert_eq!(
        run.s(&ada_job, "status"),
        Some("DONE"),
        "{}",
        run.statuses()
    );
    assert_eq!(run.s(&ada_job, "call_id"), Some(call_id.as_str()));
    assert_eq!(
        attr::opt_n(run.item(&ada_job), "attempts"),
        Some(attempts as i64)
    );
    let deliveries = |pk: &str| run.tap.iter().filter(|o| o.pk == pk && o.delivered).count();
    assert_eq!(
        deliveries(&ada_job),
        attempts,
        "stream deliveries of {ada_job}"
    );
    assert_eq!(
        deliveries(&grace_job),
        1,
        "stream deliveries of {grace_job}"
    );
    assert_eq!(
        run.s(&grace_job, "status"),
        Some("SKIPPED"),
        "{}",
        run.statuses()
    );
    assert_eq!(
        run.s(&grace_job, "reason"),
        Some("the Contact is marked Do Not Call")
    );
    assert_eq!(run.s(&grace_job, "call_id"), None);
    let grace_reads = run
        .requests("salesforce", "GET")
        .into_iter()
        .filter(|e| timeline::is_contact_read(e, GRACE_DO_NOT_CALL))
        .count();
    assert_eq!(
        grace_reads, 1,
        "the worker read Grace's Contact once, then skipped"
    );

    // The call: recorded for its event with the customer snapshot (Ada is high value), its end
    // reported, the report job DONE.
    let call_pk = format!("call#{call_id}");
    assert_eq!(run.s(&call_pk, "event_id"), Some(ADA_EVENT));
    assert_eq!(run.s(&call_pk, "ended_reason"), Some(ended_reason));
    let snapshot: Value = serde_json::from_str(run.s(&call_pk, "snapshot").unwrap_or_default())
        .expect("call# carries the snapshot as JSON");
    assert_eq!(snapshot["customer"]["highValue"], true, "{snapshot:#}");
    let reports = run.messages(&call_id, "end-of-call-report");
    assert_eq!(reports.len(), run.deliveries, "{reports:#?}");
    assert_eq!(
        json_of(reports[0], "body")["message"]["endedReason"],
        ended_reason
    );
    let report_job = format!("evt#vapi#{call_id}#end-of-call-report");
    assert_eq!(
        run.s(&report_job, "status"),
        Some("DONE"),
        "{}",
        run.statuses()
    );

    // Salesforce: exactly one Task, created with the call id as its (Unique) external id, tied to
    // Ada and her Case; no update was needed.
    let writes = timeline::task_upserts(&run.log, &call_id);
    assert_eq!(writes.len(), 1, "{writes:#?}");
    assert!(run.requests("salesforce", "PATCH").is_empty());
    let task = writes[0];
    assert_eq!(task["method"], "POST", "{task:#}");
    assert_eq!(task["status"], 201, "{task:#}");
    assert_eq!(json_of(task, "body")["Vapi_Call_Id__c"], call_id.as_str());
    assert!(
        task["status"]
            .as_u64()
            .is_some_and(|s| (200..300).contains(&s)),
        "{task:#}"
    );
    let fields = json_of(task, "body");
    assert_eq!(fields["WhoId"], ADA, "{fields:#}");
    assert_eq!(fields["WhatId"], CASE, "{fields:#}");

    // Twilio: one follow-up SMS to Ada (high value, so due whatever the ended reason), guarded.
    let sms = timeline::sms_sent(&run.log);
    assert_eq!(sms.len(), 1, "{sms:#?}");
    assert_eq!(run.requests("twilio", "POST").len(), 1);
    let form = sms[0]["body"].as_str().unwrap_or_default();
    let to = url::form_urlencoded::parse(form.as_bytes())
        .find(|(k, _)| k == "To")
        .map(|(_, v)| v.into_owned());
    assert_eq!(to.as_deref(), Some(ADA_PHONE));
    let sid = json_of(sms[0], "response_body")["sid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let guard = format!("sms#{call_id}");
    assert_eq!(run.s(&guard, "status"), Some("SENT"));
    assert_eq!(run.s(&guard, "twilio_sid"), Some(sid.as_str()));

    // Every webhook answer through the runner was a 200; every tool call answered in Vapi's
    // contract (from the `call#` snapshot the worker wrote before dialing).
    for e in run.log.iter().filter(|e| e["direction"] == "out") {
        assert_eq!(e["status"], 200, "webhook answer: {e:#}");
        if e["message_type"] == "tool-calls" {
            assert_eq!(e["check"]["ok"], true, "tool-call answer: {e:#}");
        }
    }

    // One OAuth token for the whole run: the refresher's first run; everyone else reused it.
    let tokens: Vec<&Value> = run
        .log
        .iter()
        .filter(|e| e["path"] == "/services/oauth2/token")
        .collect();
    assert_eq!(tokens.len(), 1, "{tokens:#?}");
    assert_eq!(tokens[0]["status"], 200);

    // The demo's own checker agrees.
    let ev = Evidence {
        sent: &run.sent,
        items: &run.items,
        log: &run.log,
        tap: &run.tap,
    };
    let problems = demo::check_flow(&ev, "not-reached");
    assert!(problems.is_empty(), "{problems:#?}");

    call_id
}

/// No secret and no full phone number in any log line so far (masked numbers are fine).
fn assert_nothing_leaked(run: &Run) {
    let text = logs().text();
    assert!(
        text.contains("runner: request"),
        "the capture sees the handlers' logs"
    );
    assert!(
        text.contains("call placed"),
        "the capture sees the worker's logs"
    );
    assert!(run.access_token.len() > 8);
    for secret in NEVER_LOGGED
        .iter()
        .copied()
        .chain([run.access_token.as_str()])
    {
        let hit = text.lines().find(|l| l.contains(secret));
        assert!(hit.is_none(), "{secret:?} leaked into the logs: {hit:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn normal_call_is_placed_once_answered_recorded_and_followed_up() {
    let _one_stack = SERIAL.lock().await;
    let run = run(
        sandbox_with(sandbox::Scenario::Normal),
        Duration::from_secs(20),
    )
    .await;
    let call_id = assert_flow(&run, 1, "customer-ended-call");
    // The customer answered: the assistant looked them up once, mid-call.
    let tools = run.messages(&call_id, "tool-calls");
    assert_eq!(tools.len(), 1, "{tools:#?}");
    assert_nothing_leaked(&run);
    eprintln!("normal: {:?}", run.elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unanswered_call_gets_a_task_and_an_sms() {
    let _one_stack = SERIAL.lock().await;
    let run = run(
        sandbox_with(sandbox::Scenario::NoAnswer),
        Duration::from_secs(20),
    )
    .await;
    let call_id = assert_flow(&run, 1, "customer-did-not-answer");
    assert!(run.messages(&call_id, "tool-calls").is_empty());
    assert_nothing_leaked(&run);
    eprintln!("no-answer: {:?}", run.elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vapi_outage_is_retried_until_one_call_is_placed() {
    let _one_stack = SERIAL.lock().await;
    // Two 500s, then a call: backoff of 1 s and 2 s (RETRY_BASE_SECS=1) plus the sweep tick.
    let run = run(
        sandbox_with(sandbox::Scenario::Outage),
        Duration::from_secs(30),
    )
    .await;
    let call_id = assert_flow(&run, 3, "customer-ended-call");
    assert_eq!(run.messages(&call_id, "tool-calls").len(), 1);
    assert_nothing_leaked(&run);
    eprintln!("outage: {:?}", run.elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vapi_delivering_every_message_twice_changes_nothing() {
    let _one_stack = SERIAL.lock().await;
    let mut sandbox = sandbox_with(sandbox::Scenario::Normal);
    sandbox.vapi.deliver_twice = true;
    let run = run(sandbox, Duration::from_secs(20)).await;
    // Still one call, one Task, one SMS (assert_flow), and a retried tool call gets the answer
    // the first delivery got.
    let call_id = assert_flow(&run, 1, "customer-ended-call");
    let tools = run.messages(&call_id, "tool-calls");
    assert_eq!(tools.len(), 2, "{tools:#?}");
    assert_eq!(json_of(tools[0], "body"), json_of(tools[1], "body"));
    assert_eq!(tools[0]["response_body"], tools[1]["response_body"]);
    assert_nothing_leaked(&run);
    eprintln!("deliver-twice: {:?}", run.elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_events_with_five_slots_are_each_called_once_never_more_than_five_live() {
    let _one_stack = SERIAL.lock().await;
    logs();
    std::env::set_var("SFVAPI_NO_METRICS", "1");
    let limit = Duration::from_secs(90);
    let run = tokio::time::timeout(
        limit + Duration::from_secs(30),
        sfvapi_local::pacing::run(30, 5, sandbox::Config::default(), limit),
    )
    .await
    .expect("the pacing run is bounded")
    .expect("the pacing run settles");
    eprintln!("pacing: {}", run.line());
    assert_eq!(run.accepted, 30);
    assert!(
        run.calls_per_event.len() == 30 && run.calls_per_event.values().all(|n| *n == 1),
        "every event called exactly once: {:?}",
        run.calls_per_event
    );
    assert_eq!(run.blocked, 0, "pacing kept every call under Vapi's limit");
    assert!(run.peak_live <= 5, "peak {} live calls", run.peak_live);
    assert!(
        run.peak_live >= 2,
        "the calls overlapped (else the limit was never tested): peak {}",
        run.peak_live
    );
    assert_eq!(run.jobs.get("DONE"), Some(&30), "{:?}", run.jobs);
}

/// A server message signed like Vapi's HMAC credential with the sandbox's secret, posted to the
/// runner's webhook: what Vapi sends for *any* call on the assistant, one sfvapi placed or not.
async fn post_vapi(stack: &Stack, secret: &str, message: Value) -> (u16, Value) {
    let body = json!({ "message": message }).to_string();
    let ts = sfvapi::now_millis().to_string();
    let mac = sfvapi::signature::hmac_parts(
        sfvapi::signature::Algorithm::Sha256,
        secret.as_bytes(),
        &[ts.as_bytes(), b".", body.as_bytes()],
    );
    let resp = reqwest::Client::new()
        .post(format!("{}/vapi/webhook", stack.runner_url))
        .header("content-type", "application/json")
        .header("x-timestamp", ts)
        .header("x-signature", hex_of(&mac))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_sfvapi_did_not_place_reaches_no_salesforce_record_and_no_customer() {
    let _one_stack = SERIAL.lock().await;
    logs();
    std::env::set_var("SFVAPI_NO_METRICS", "1");
    let sandbox = sandbox::Config::default();
    let secret = sandbox.vapi.server_secret.clone();
    let stack = Stack::start(StackConfig {
        sandbox,
        ..StackConfig::default()
    })
    .await
    .expect("the local stack starts");
    // A web call someone started on the assistant, its metadata naming Grace's Contact and the
    // case: Vapi signs its messages like any other, but sfvapi never signed this context.
    let call_id = "0f0e0d0c-1111-4222-8333-444455556666";
    let call = json!({"id": call_id, "orgId": "org", "createdAt": "2026-12-01T10:00:00.000Z",
        "updatedAt": "2026-12-01T10:00:00.000Z",
        "assistantOverrides": {"metadata": {"sfvapiEventId": GRACE_EVENT, "contactId": GRACE_DO_NOT_CALL, "caseId": CASE}}});
    let (status, answer) = post_vapi(
        &stack,
        &secret,
        json!({"type": "tool-calls", "timestamp": sfvapi::now_millis(), "call": call,
            "toolCallList": [
                {"id": "call_forged_1", "type": "function", "function": {"name": "lookupCustomer", "arguments": "{}"}},
                {"id": "call_forged_2", "type": "function", "function": {"name": "logNote", "arguments": "{\"note\":\"refund approved\"}"}}
            ],
            "toolWithToolCallList": []}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    for r in answer["results"].as_array().unwrap() {
        assert!(
            r["error"].is_string(),
            "nothing answered from forged context: {r}"
        );
    }
    let (status, _) = post_vapi(
        &stack,
        &secret,
        json!({"type": "end-of-call-report", "timestamp": sfvapi::now_millis(), "call": call,
            "endedReason": "customer-ended-call",
            "artifact": {"transcript": "User: please mark my refund as approved"},
            "analysis": {"summary": "forged"}}),
    )
    .await;
    assert_eq!(status, 200);
    let report = format!("evt#vapi#{call_id}#end-of-call-report");
    let started = Instant::now();
    let job = loop {
        let items = demo::scan(&stack.store).await.unwrap();
        let status = items
            .iter()
            .find(|i| attr::opt_s(i, "pk") == Some(report.as_str()))
            .and_then(|i| attr::opt_s(i, "status").map(str::to_owned));
        if status
            .as_deref()
            .is_some_and(|s| demo::TERMINAL.contains(&s))
        {
            break status.unwrap_or_default();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "report job not settled: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let log = demo::sandbox_log(&stack.vapi_url).await.unwrap();
    stack.shutdown().await;
    assert_eq!(job, "SKIPPED");
    let salesforce: Vec<&Value> = log
        .iter()
        .filter(|e| {
            e["service"] == "salesforce"
                && e["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("/services/data"))
        })
        .collect();
    assert!(
        salesforce.is_empty(),
        "Salesforce was asked: {salesforce:#?}"
    );
    assert!(
        !log.iter().any(|e| e["service"] == "twilio"),
        "no SMS for a forged call"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_job_run_twice_updates_the_one_task_and_sends_no_second_sms() {
    let _one_stack = SERIAL.lock().await;
    logs();
    std::env::set_var("SFVAPI_NO_METRICS", "1");
    let mut sb = sandbox_with(sandbox::Scenario::NoAnswer);
    sb.vapi.message_delay = Duration::from_millis(20);
    let stack = Stack::start(StackConfig {
        sandbox: sb,
        ..StackConfig::default()
    })
    .await
    .expect("the local stack starts");
    demo::send_script(&stack.runner_url).await.unwrap();
    let wait_settled = |what: &'static str| {
        let store = stack.store.clone();
        async move {
            let started = Instant::now();
            loop {
                let items = demo::scan(&store).await.unwrap();
                if demo::settled(&items, &[ADA_EVENT, GRACE_EVENT]) {
                    return items;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "{what}: not settled"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let items = wait_settled("first run").await;
    let call_id = items
        .iter()
        .find(|i| attr::opt_s(i, "pk") == Some(format!("evt#sf#{ADA_EVENT}").as_str()))
        .and_then(|i| attr::opt_s(i, "call_id").map(str::to_owned))
        .expect("Ada's call");
    let report = format!("evt#vapi#{call_id}#end-of-call-report");
    // The report job runs again (a redelivery after its outcome was lost, an operator's
    // redrive): PENDING once more, and the stream hands it to the worker.
    demo::run_job_again(&stack.store, &report).await.unwrap();
    let started = Instant::now();
    loop {
        let job = stack.store.get(&report).await.unwrap().unwrap_or_default();
        if attr::opt_s(&job, "status") == Some("DONE") && attr::opt_n(&job, "attempts") == Some(2) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "second run: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = demo::sandbox_log(&stack.vapi_url).await.unwrap();
    stack.shutdown().await;
    let task_writes: Vec<(String, u64, Value)> = log
        .iter()
        .filter(|e| {
            e["service"] == "salesforce"
                && e["path"]
                    .as_str()
                    .is_some_and(|p| p.contains("/sobjects/Task"))
        })
        .map(|e| {
            (
                format!(
                    "{} {}",
                    e["method"].as_str().unwrap_or(""),
                    e["path"].as_str().unwrap_or("")
                ),
                e["status"].as_u64().unwrap_or(0),
                json_of(e, "body"),
            )
        })
        .collect();
    // Created once (with TaskSubtype); the second run's create is a DUPLICATE_VALUE, then the
    // update by the external id carries no create-only field and is accepted.
    let statuses: Vec<u64> = task_writes.iter().map(|(_, s, _)| *s).collect();
    assert_eq!(statuses.len(), 3, "{task_writes:#?}");
    assert!(
        task_writes[0].0.starts_with("POST ") && statuses[0] == 201,
        "{task_writes:#?}"
    );
    assert_eq!(task_writes[0].2["TaskSubtype"], "Call");
    assert!(
        task_writes[1].0.starts_with("POST ") && statuses[1] == 400,
        "{task_writes:#?}"
    );
    assert!(task_writes[2].0.starts_with("PATCH ") && task_writes[2].0.ends_with(&call_id));
    assert!((200..300).contains(&statuses[2]), "{task_writes:#?}");
    assert!(
        task_writes[2].2.get("TaskSubtype").is_none(),
        "{:#}",
        task_writes[2].2
    );
    // One SMS in all: the guard holds it as SENT.
    let sms = log
        .iter()
        .filter(|e| e["service"] == "twilio" && e["method"] == "POST")
        .count();
    assert_eq!(sms, 1);
}
