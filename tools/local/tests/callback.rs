//! When the customer calls back (project issue 16), end to end on the local stack: the sandbox's
//! fake Salesforce, Vapi and Twilio, the real handlers over HTTP, the stream pump and the job
//! worker, on DynamoDB Local and moto (`scripts/services.sh cargo test -p sfvapi-local --test
//! callback`).
//!
//! Each inbound call is placed by the fake Vapi (`POST /_sandbox/inbound-call`): it sends the
//! `assistant-request` to the webhook, judges the answer as Vapi would (a 200
//! `ServerMessageResponseAssistantRequest` naming an assistant it has, within 7.5 s), then runs the
//! call with that assistant. The tests judge by what the run left: the answer, the sandbox's
//! request log (what Salesforce and Twilio were asked) and the table.
//!
//! A stack exports its variables into the process environment (the worker's `from_env()` reads
//! them), so the tests take [`SERIAL`] and run one stack at a time.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sfvapi::ids::{SalesforceEventId, SalesforceId};
use sfvapi::secrets::SecretString;
use sfvapi::store::{attr, Item};
use sfvapi_local::callback::{
    call_in, searches_between, task_bodies, wait_inbound, InboundCall, ADA_PHONE, ASSISTANT_PHONE,
    KATHERINE, KATHERINE_OPEN_CASE, KATHERINE_PHONE, SHARED_PHONE, STRANGER_PHONE,
};
use sfvapi_local::demo::{sandbox_log, scan, settled, ADA, ADA_EVENT, CASE};
use sfvapi_local::stack::{Stack, StackConfig};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const LIMIT: Duration = Duration::from_secs(30);

async fn stack(scenario: sandbox::Scenario, extra_env: &[(&str, &str)]) -> Stack {
    sfvapi_test_support::local_services("AWS_ENDPOINT_URL_DYNAMODB");
    let mut sb = sfvapi_test_support::sandbox_server::quick_sandbox();
    sb.vapi.scenario = scenario;
    let config = StackConfig {
        sandbox: sb,
        extra_env: extra_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        ..StackConfig::default()
    };
    Stack::start(config).await.expect("the local stack starts")
}

fn item<'a>(items: &'a [Item], pk: &str) -> Option<&'a Item> {
    items.iter().find(|i| attr::opt_s(i, "pk") == Some(pk))
}

fn vars(call: &InboundCall) -> &Value {
    &call.overrides()["variableValues"]
}

/// The answer is Vapi's `ServerMessageResponseAssistantRequest`, and the fake Vapi took it.
fn assert_valid_answer(call: &InboundCall) {
    assert_eq!(call.status, Some(200), "{call:?}");
    if let Err(e) = vapi_schema::validate("ServerMessageResponseAssistantRequest", &call.answer) {
        panic!("{}: {e:?}", call.answer);
    }
    assert!(call.check_ok, "{}", call.check);
    assert_eq!(call.ended_reason, None, "{call:?}");
}

/// The generic assistant: the inbound assistant, nothing about anyone.
fn assert_generic(call: &InboundCall, stack: &Stack) {
    assert_valid_answer(call);
    assert_eq!(
        call.answer["assistantId"].as_str(),
        stack
            .env
            .get("VAPI_INBOUND_ASSISTANT_ID")
            .map(String::as_str)
    );
    assert!(
        !call.carries_customer_data(),
        "customer data in a generic answer: {}",
        call.answer
    );
    assert_eq!(vars(call)["callerKnown"], "no");
    // The agent opens with the assistant's own generic first message.
    assert_eq!(
        call.first_message.as_deref(),
        Some("Thanks for calling customer support, this is Sarah. How can I help you today?")
    );
}

/// After the call: no Task, no SMS, and the report job says why.
async fn assert_nothing_written(stack: &Stack, call: &InboundCall) {
    let items = wait_inbound(stack, &[&call.call_id], LIMIT).await.unwrap();
    let log = sandbox_log(&stack.vapi_url).await.unwrap();
    assert!(
        task_bodies(&log, &call.call_id).is_empty(),
        "a Task was written"
    );
    assert!(item(&items, &format!("sms#{}", call.call_id)).is_none());
    let report = item(
        &items,
        &format!("evt#vapi#{}#end-of-call-report", call.call_id),
    )
    .unwrap();
    assert_eq!(attr::opt_s(report, "status"), Some("SKIPPED"));
    // The assistant's lookupCustomer got no customer either.
    let tool = log
        .iter()
        .find(|e| e["call_id"] == call.call_id.as_str() && e["message_type"] == "tool-calls")
        .expect("the call's tool call");
    let answer: Value =
        serde_json::from_str(tool["response_body"].as_str().unwrap_or_default()).unwrap();
    assert_eq!(
        answer["results"][0]["error"], "no customer context for this call",
        "{answer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ada_calls_back_after_a_missed_call_and_gets_her_context_then_an_inbound_task_and_no_sms() {
    let _serial = SERIAL.lock().await;
    let stack = stack(sandbox::Scenario::NoAnswer, &[]).await;
    let result = async {
        // The missed call: the worker dials Ada, nobody answers, a Task and the SMS.
        let body = sfvapi::samples::flat_event(ADA_EVENT, ADA);
        let (ts, sig) = sfvapi::signature::sign_salesforce_v2(
            sfvapi::samples::LOCAL_SIGNING_SECRET.as_bytes(),
            body.as_bytes(),
            sfvapi::now_secs(),
        );
        let resp = reqwest::Client::new()
            .post(format!("{}/salesforce/events", stack.runner_url))
            .header("content-type", "application/json")
            .header("x-sfvapi-timestamp", ts)
            .header("x-sfvapi-signature", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
        let started = Instant::now();
        while !settled(&scan(&stack.store).await.unwrap(), &[ADA_EVENT]) {
            assert!(started.elapsed() < LIMIT, "the missed call did not settle");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let sms_before =
            sfvapi_local::timeline::sms_sent(&sandbox_log(&stack.vapi_url).await.unwrap()).len();
        assert_eq!(sms_before, 1, "the missed call's SMS");

        // Ada calls back.
        let ada = call_in(&stack.vapi_url, Some(ADA_PHONE)).await.unwrap();
        assert_valid_answer(&ada);
        let o = ada.overrides();
        assert_eq!(
            ada.answer["assistantId"].as_str(),
            stack
                .env
                .get("VAPI_INBOUND_ASSISTANT_ID")
                .map(String::as_str)
        );
        // Her context: the variables, the greeting, and the signed call context.
        assert_eq!(vars(&ada)["customerName"], "Ada Lovelace");
        assert_eq!(vars(&ada)["caseSubject"], "Payment failed twice");
        assert_eq!(vars(&ada)["recentCall"], "yes");
        assert_eq!(vars(&ada)["reason"], "Payment failed twice");
        assert_eq!(
            ada.first_message.as_deref(),
            Some("Hi Ada, thanks for calling us back about your case, Payment failed twice. How can I help?")
        );
        let meta = &o["metadata"];
        assert_eq!(meta["contactId"], ADA);
        assert_eq!(meta["caseId"], CASE);
        let event = format!("inbound-{}", ada.call_id);
        assert_eq!(meta["sfvapiEventId"], event.as_str());
        let key = SecretString::new(sfvapi::samples::LOCAL_CONTEXT_KEY);
        assert!(sfvapi::vapi::context::verify(
            &key,
            &SalesforceEventId::parse("e", &event).unwrap(),
            &SalesforceId::parse("c", ADA).unwrap(),
            Some(&SalesforceId::parse("c", CASE).unwrap()),
            meta["sfvapiContextSig"].as_str().unwrap(),
        ));
        // Known from sfvapi's own call: not one Salesforce request while answering.
        let log = sandbox_log(&stack.vapi_url).await.unwrap();
        let window = (ada.at_ms, ada.answered_at_ms);
        let sf_requests = log
            .iter()
            .filter(|e| {
                e["service"] == "salesforce"
                    && e["time_ms"]
                        .as_i64()
                        .is_some_and(|t| t >= window.0 && t <= window.1)
            })
            .count();
        assert_eq!(sf_requests, 0, "Salesforce was asked while answering");

        // The call runs: her tool call is answered from the snapshot, her report becomes an
        // inbound Task on her Contact and Case, and no SMS follows.
        let items = wait_inbound(&stack, &[&ada.call_id], LIMIT).await.unwrap();
        let log = sandbox_log(&stack.vapi_url).await.unwrap();
        let tool = log
            .iter()
            .find(|e| e["call_id"] == ada.call_id.as_str() && e["message_type"] == "tool-calls")
            .expect("her tool call");
        assert!(
            tool["response_body"]
                .as_str()
                .unwrap_or_default()
                .contains("Ada Lovelace"),
            "{tool}"
        );
        let tasks = task_bodies(&log, &ada.call_id);
        assert_eq!(tasks.len(), 1, "{tasks:?}");
        assert_eq!(tasks[0]["CallType"], "Inbound");
        assert_eq!(tasks[0]["WhoId"], ADA);
        assert_eq!(tasks[0]["WhatId"], CASE);
        assert!(tasks[0]["Subject"]
            .as_str()
            .unwrap_or_default()
            .starts_with("Vapi inbound call"));
        assert!(item(&items, &format!("sms#{}", ada.call_id)).is_none());
        assert_eq!(
            sfvapi_local::timeline::sms_sent(&log).len(),
            sms_before,
            "no SMS"
        );
        let report = item(
            &items,
            &format!("evt#vapi#{}#end-of-call-report", ada.call_id),
        )
        .unwrap();
        assert_eq!(attr::opt_s(report, "status"), Some("DONE"));
        assert_eq!(attr::opt_s(report, "followup"), Some("not needed"));
    };
    tokio::time::timeout(Duration::from_secs(90), result)
        .await
        .expect("bounded");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_search_finds_numbers_stored_in_other_formats_and_only_the_contacts_own() {
    let _serial = SERIAL.lock().await;
    let stack = stack(sandbox::Scenario::Normal, &[]).await;
    let result = async {
        // Katherine's Phone is stored as "(415) 555-0142"; sfvapi never called her.
        let k = call_in(&stack.vapi_url, Some(KATHERINE_PHONE))
            .await
            .unwrap();
        assert_valid_answer(&k);
        assert_eq!(k.overrides()["metadata"]["contactId"], KATHERINE);
        assert_eq!(vars(&k)["customerName"], "Katherine Johnson");
        assert_eq!(vars(&k)["recentCall"], "no");
        // Her most recent open Case, not the newer closed one.
        assert_eq!(k.overrides()["metadata"]["caseId"], KATHERINE_OPEN_CASE);
        assert_eq!(vars(&k)["caseNumber"], "00001031");
        let log = sandbox_log(&stack.vapi_url).await.unwrap();
        assert_eq!(
            searches_between(&log, k.at_ms, k.answered_at_ms),
            1,
            "one search"
        );
        let search = log
            .iter()
            .find(|e| e["path"].as_str().is_some_and(|p| p.ends_with("/search")))
            .unwrap();
        let q = search["query"].as_str().unwrap_or_default();
        let q: String = url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "q")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        assert!(
            q.starts_with("FIND {14155550142 OR 4155550142} IN PHONE FIELDS RETURNING Contact("),
            "{q}"
        );
        // Her assistant's number is one of her phone fields too, but not hers: the search finds
        // Katherine, the confirmation does not take the caller for her.
        let assistant = call_in(&stack.vapi_url, Some(ASSISTANT_PHONE))
            .await
            .unwrap();
        assert_generic(&assistant, &stack);
        let items = wait_inbound(&stack, &[&k.call_id, &assistant.call_id], LIMIT)
            .await
            .unwrap();
        let log = sandbox_log(&stack.vapi_url).await.unwrap();
        let tasks = task_bodies(&log, &k.call_id);
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0]["WhoId"], KATHERINE);
        assert_eq!(tasks[0]["CallType"], "Inbound");
        assert!(item(&items, &format!("call#{}", k.call_id))
            .and_then(|i| attr::opt_s(i, "snapshot"))
            .is_some_and(|s| s.contains("Katherine Johnson")));
        assert!(task_bodies(&log, &assistant.call_id).is_empty());
    };
    tokio::time::timeout(Duration::from_secs(90), result)
        .await
        .expect("bounded");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_number_an_unknown_number_and_a_withheld_one_get_no_customer_data() {
    let _serial = SERIAL.lock().await;
    let stack = stack(sandbox::Scenario::Normal, &[]).await;
    let result = async {
        // Two Contacts (Mary's HomePhone "+1 415-555-0177", Dorothy's Phone "(415) 555-0177").
        let shared = call_in(&stack.vapi_url, Some(SHARED_PHONE)).await.unwrap();
        assert_generic(&shared, &stack);
        // A caller who is not a Contact.
        let stranger = call_in(&stack.vapi_url, Some(STRANGER_PHONE))
            .await
            .unwrap();
        assert_generic(&stranger, &stack);
        // No caller id: nothing to look up.
        let withheld = call_in(&stack.vapi_url, None).await.unwrap();
        assert_generic(&withheld, &stack);
        let log = sandbox_log(&stack.vapi_url).await.unwrap();
        assert_eq!(
            searches_between(&log, withheld.at_ms, withheld.answered_at_ms),
            0,
            "a withheld number is not searched"
        );
        for call in [&shared, &stranger, &withheld] {
            assert_nothing_written(&stack, call).await;
        }
        assert!(
            sfvapi_local::timeline::sms_sent(&sandbox_log(&stack.vapi_url).await.unwrap())
                .is_empty()
        );
    };
    tokio::time::timeout(Duration::from_secs(90), result)
        .await
        .expect("bounded");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_timing_out_gets_the_generic_assistant_within_the_deadline() {
    let _serial = SERIAL.lock().await;
    let deadline = Duration::from_millis(1_000);
    let stack = stack(
        sandbox::Scenario::Normal,
        &[("VAPI_ASSISTANT_REQUEST_DEADLINE_MS", "1000")],
    )
    .await;
    let result = async {
        // The next Salesforce request (the search) answers only after 5 s.
        let resp = reqwest::Client::new()
            .post(format!("{}/_sandbox/control", stack.vapi_url))
            .json(&json!({"salesforce": {"hang_next": 1, "hang_ms": 5000}}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let k = call_in(&stack.vapi_url, Some(KATHERINE_PHONE))
            .await
            .unwrap();
        assert_generic(&k, &stack);
        // Within the deadline (and so well within Vapi's 7.5 s), with room for the loopback hop.
        assert!(
            Duration::from_millis(k.duration_ms) < deadline + Duration::from_millis(400),
            "answered in {} ms",
            k.duration_ms
        );
        assert_nothing_written(&stack, &k).await;
        // Salesforce answering again, the next call of hers gets her context.
        let again = call_in(&stack.vapi_url, Some(KATHERINE_PHONE))
            .await
            .unwrap();
        assert_eq!(again.overrides()["metadata"]["contactId"], KATHERINE);
        wait_inbound(&stack, &[&again.call_id], LIMIT)
            .await
            .unwrap();
    };
    tokio::time::timeout(Duration::from_secs(90), result)
        .await
        .expect("bounded");
    stack.shutdown().await;
}
