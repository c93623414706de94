//! Event Relay end to end (`make demo SCENARIO=event-relay`'s flow as tests): the sample files
//! `events/relay-*.json` through the real relay handler, then the whole local stack — stream,
//! worker, the sandbox's Salesforce, Vapi and Twilio, the webhook, the report job — on DynamoDB
//! Local and moto. Judged by the sandbox's request log and the table.
//!
//! A stack exports its variables into the process environment (the worker's `from_env()` reads
//! them), so the tests take [`SERIAL`].

use std::time::Duration;

use sfvapi::store::attr;
use sfvapi_local::event_relay::{self, RelayRun, ADA, CASE, CDC_EVENT, CHARLES};
use sfvapi_local::stack::{Stack, StackConfig};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn run_with(routing: &str) -> RelayRun {
    let config = StackConfig {
        extra_env: event_relay::relay_env(routing),
        ..StackConfig::default()
    };
    let stack = Stack::start(config).await.expect("stack");
    let relay = event_relay::relay_app(&stack).expect("relay handler");
    let run = event_relay::drive(&stack, &relay, Duration::from_secs(40)).await;
    stack.shutdown().await;
    let run = run.expect("run");
    assert!(run.settled, "the flow settled");
    run
}

fn job<'a>(run: &'a RelayRun, id: &str) -> &'a sfvapi::store::Item {
    run.item(&format!("evt#sf#{id}"))
        .unwrap_or_else(|| panic!("job {id} stored"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_events_become_calls_tasks_write_backs_and_the_rules_follow_up() {
    let _serial = SERIAL.lock().await;
    let run = run_with(&event_relay::routing_file()).await;
    let problems = event_relay::check(&run);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The CDC event named no Contact: the worker read the Case, then called its Contact.
    let case_read = run.log.iter().position(|e| {
        e["service"] == "salesforce"
            && e["method"] == "GET"
            && e["path"]
                .as_str()
                .is_some_and(|p| p.ends_with(&format!("/sobjects/Case/{CASE}")))
    });
    let ada_call = run.log.iter().position(|e| {
        e["service"] == "vapi"
            && e["method"] == "POST"
            && e["body"]
                .as_str()
                .is_some_and(|b| b.contains(CDC_EVENT) && b.contains(ADA))
    });
    assert!(
        matches!((case_read, ada_call), (Some(r), Some(c)) if r < c),
        "Case read before the call to its Contact: {case_read:?} {ada_call:?}"
    );
    // The rule's prompt variable reached Vapi.
    let calls = sfvapi_local::timeline::call_requests(&run.log, CDC_EVENT);
    let body: serde_json::Value =
        serde_json::from_str(calls[0]["body"].as_str().unwrap_or_default()).unwrap();
    assert_eq!(
        body["assistantOverrides"]["variableValues"]["campaign"],
        "escalation"
    );
    // What was written back, as the example document maps it.
    let case = run.record_updates("Case", CASE);
    assert_eq!(case.len(), 1, "one PATCH of the Case: {case:?}");
    assert_eq!(case[0].0, 204);
    assert_eq!(case[0].1["Call_Outcome__c"], "true");
    assert_eq!(case[0].1["Callback_Requested__c"], false);
    let cdc = job(&run, CDC_EVENT);
    assert_eq!(attr::opt_s(cdc, "status"), Some("DONE"));
    let contact = run.record_updates("Contact", CHARLES);
    assert_eq!(contact.len(), 1, "{contact:?}");
    assert_eq!(contact[0].1["Last_Call_Outcome__c"], "true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_salesforce_refuses_is_recorded_on_the_job_while_the_task_and_sms_still_happen() {
    let _serial = SERIAL.lock().await;
    // The example document, with two fields Salesforce will refuse on the Case: one it does
    // not have, one it computes itself.
    let text = std::fs::read_to_string(event_relay::routing_file()).unwrap();
    let mapped = "        Callback_Requested__c: structuredData.callbackRequested\n";
    assert!(text.contains(mapped));
    let text = text.replace(
        mapped,
        &format!("{mapped}        Bogus_Field__c: summary\n        CaseNumber: endedReason\n"),
    );
    let dir = std::env::temp_dir().join(format!("sfvapi-relay-{}", sfvapi::now_millis()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("routing.yaml");
    std::fs::write(&path, text).unwrap();
    let run = run_with(&path.to_string_lossy()).await;

    let report_pk = |call: &str| format!("evt#vapi#{call}#end-of-call-report");
    let call = attr::opt_s(job(&run, CDC_EVENT), "call_id")
        .expect("the CDC job placed a call")
        .to_owned();
    let report = run.item(&report_pk(&call)).expect("report job");
    assert_eq!(attr::opt_s(report, "status"), Some("DONE"));
    let refused = attr::opt_s(report, "writeback_refused").unwrap_or_default();
    assert!(
        refused.contains(
            "Case.Bogus_Field__c: INVALID_FIELD No such column 'Bogus_Field__c' on sobject of type Case"
        ),
        "{refused}"
    );
    assert!(
        refused.contains("Case.CaseNumber: INVALID_FIELD_FOR_INSERT_UPDATE"),
        "{refused}"
    );
    let written = attr::opt_s(report, "writeback").unwrap_or_default();
    assert!(
        written.contains("Case.Call_Outcome__c") && written.contains("Case.Callback_Requested__c"),
        "the fields Salesforce accepts are still written: {written}"
    );
    // The accepted fields landed; the refused ones did not.
    let accepted: Vec<_> = run
        .record_updates("Case", CASE)
        .into_iter()
        .filter(|(s, _)| *s == 204)
        .collect();
    assert!(accepted
        .iter()
        .any(|(_, b)| b.get("Call_Outcome__c").is_some()));
    assert!(!accepted
        .iter()
        .any(|(_, b)| b.get("Bogus_Field__c").is_some() || b.get("CaseNumber").is_some()));
    // The Task and the follow-up SMS happened anyway.
    assert_eq!(
        sfvapi_local::timeline::task_upserts(&run.log, &call).len(),
        1
    );
    assert!(attr::opt_s(report, "followup_sid").is_some(), "SMS sent");
    assert_eq!(sfvapi_local::timeline::sms_sent(&run.log).len(), 1);
}
