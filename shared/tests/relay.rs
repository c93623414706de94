//! Event Relay on DynamoDB Local: relayed Platform Events and Change Data Capture events through
//! the real `RelayApp` (the `salesforce-relay` function's handler) with the example routing
//! document `events/routing-event-relay.yaml`, counting every DynamoDB request.

use std::collections::HashMap;

use serde_json::json;
use sfvapi::config::Env;
use sfvapi::relay::{EventOutcome, RelayApp, RelayConfig};
use sfvapi::salesforce::events::{DialRequest, EventSource};
use sfvapi::samples::{
    relay_cdc_case_update, relay_platform_event, relayed, LOCAL_RELAY_ORG_ID, OTHER_ORG_ID,
    RELAY_EVENT_UUID,
};
use sfvapi::store::{attr, RequestCounter, Store};
use sfvapi_test_support::*;

const CASE: &str = "5005e00000AbCdEAAV";
const CASE_2: &str = "5005e00000DnCa1AAF";
const CHARLES: &str = "0035e00000LowRvAAJ";

fn example_routing() -> String {
    format!(
        "{}/../events/routing-event-relay.yaml",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn config(table: &str, extra: &[(&str, &str)]) -> Result<RelayConfig, sfvapi::config::ConfigError> {
    let mut vars: HashMap<String, String> = [
        ("TABLE_NAME", table.to_owned()),
        ("SF_RELAY_ORG_IDS", LOCAL_RELAY_ORG_ID.to_owned()),
        ("ROUTING_FILE", example_routing()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in extra {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    RelayConfig::from_env(&Env::new(move |k| vars.get(k).cloned()))
}

async fn relay() -> (RelayApp, Store, RequestCounter) {
    let (store, counter) = fresh_store().await;
    let app = RelayApp::new(config(store.table(), &[]).unwrap(), store.clone());
    (app, store, counter)
}

fn jobs(outcome: &EventOutcome) -> Vec<(String, &'static str)> {
    match outcome {
        EventOutcome::Stored(j) => j.iter().map(|j| (j.event_id.clone(), j.status)).collect(),
        EventOutcome::Rejected(r) => panic!("rejected: {r}"),
    }
}

async fn item(store: &Store, event_id: &str) -> sfvapi::store::Item {
    store
        .get(&format!("evt#sf#{event_id}"))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("evt#sf#{event_id} stored"))
}

fn payload(item: &sfvapi::store::Item) -> DialRequest {
    serde_json::from_str(attr::opt_s(item, "payload").unwrap()).unwrap()
}

async fn count_items(store: &Store) -> i32 {
    scan_table(store).await.count()
}

#[tokio::test]
async fn a_relayed_platform_event_with_custom_fields_is_one_job_with_the_mapped_ids() {
    let (app, store, counter) = relay().await;
    let event = relay_platform_event(LOCAL_RELAY_ORG_ID, &unique("eb"));
    counter.reset();
    let out = app.handle_event(&event).await.unwrap();
    assert_eq!(jobs(&out), vec![(RELAY_EVENT_UUID.to_owned(), "queued")]);
    // The dedup and the enqueue: one conditional PutItem, nothing else.
    assert_eq!(
        counter.snapshot(),
        HashMap::from([("PutItem".to_owned(), 1)])
    );
    let job = item(&store, RELAY_EVENT_UUID).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("PENDING"));
    assert_eq!(attr::opt_s(&job, "kind"), Some("dial"));
    let dial = payload(&job);
    assert_eq!(dial.contact_id.as_ref().map(|c| c.as_str()), Some(CHARLES));
    assert_eq!(dial.case_id, None, "Case__c is null in the event");
    assert_eq!(dial.priority.as_ref().map(|p| p.as_str()), Some("Medium"));
    assert_eq!(
        dial.reason.as_deref(),
        Some("Card payment declined at checkout")
    );
    assert_eq!(dial.rule.as_deref(), Some("call-request"));
    assert_eq!(dial.source, EventSource::EventRelay);
    assert_eq!(count_items(&store).await, 1);
}

#[tokio::test]
async fn the_same_event_relayed_twice_with_new_eventbridge_ids_is_one_job() {
    let (app, store, counter) = relay().await;
    let first = relay_platform_event(LOCAL_RELAY_ORG_ID, &unique("eb-first"));
    // ReplayRecovery EARLIEST re-sends it; EventBridge gives the copy a new id.
    let again = relay_platform_event(LOCAL_RELAY_ORG_ID, &unique("eb-again"));
    assert_ne!(first["id"], again["id"]);
    assert_eq!(
        jobs(&app.handle_event(&first).await.unwrap()),
        vec![(RELAY_EVENT_UUID.to_owned(), "queued")]
    );
    counter.reset();
    assert_eq!(
        jobs(&app.handle_event(&again).await.unwrap()),
        vec![(RELAY_EVENT_UUID.to_owned(), "duplicate")]
    );
    assert_eq!(
        counter.snapshot(),
        HashMap::from([("PutItem".to_owned(), 1)])
    );
    // And as SQS delivers them: one batch with both copies, no failures, still one job.
    let batch = json!({"Records": [
        {"messageId": "m-1", "body": first.to_string(), "eventSource": "aws:sqs"},
        {"messageId": "m-2", "body": again.to_string(), "eventSource": "aws:sqs"},
    ]});
    let answer = app.handle(batch).await.unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}));
    assert_eq!(count_items(&store).await, 1);
    // Without Salesforce's UUID the EventBridge id is the last resort (and a copy would differ).
    let mut bare = relay_platform_event(LOCAL_RELAY_ORG_ID, "eb-last-resort-1");
    bare["detail"].as_object_mut().unwrap().remove("id");
    assert_eq!(
        jobs(&app.handle_event(&bare).await.unwrap()),
        vec![("eb:eb-last-resort-1".to_owned(), "queued")]
    );
}

#[tokio::test]
async fn a_matching_cdc_update_is_one_job_per_record_with_the_contact_left_to_the_worker() {
    let (app, store, counter) = relay().await;
    let mut event = relay_cdc_case_update(&unique("eb"));
    // Salesforce merged the same change of two Cases into one event.
    event["detail"]["payload"]["ChangeEventHeader"]["recordIds"] = json!([CASE, CASE_2]);
    counter.reset();
    let out = app.handle_event(&event).await.unwrap();
    let tk = "0004f2a1-7c3b-9d5e-8f61-2a3b4c5d6e7f";
    assert_eq!(
        jobs(&out),
        vec![
            (format!("cdc:{tk}:1:{CASE}"), "queued"),
            (format!("cdc:{tk}:1:{CASE_2}"), "queued"),
        ]
    );
    // One write per job, nothing else (the Contact is read by the worker at dial time).
    assert_eq!(
        counter.snapshot(),
        HashMap::from([("PutItem".to_owned(), 2)])
    );
    for case in [CASE, CASE_2] {
        let job = item(&store, &format!("cdc:{tk}:1:{case}")).await;
        assert_eq!(attr::opt_s(&job, "status"), Some("PENDING"));
        let dial = payload(&job);
        assert_eq!(dial.case_id.as_ref().map(|c| c.as_str()), Some(case));
        assert_eq!(dial.contact_id, None, "no ContactId in the change");
        assert_eq!(dial.priority.as_ref().map(|p| p.as_str()), Some("High"));
        assert_eq!(dial.rule.as_deref(), Some("case-priority-high"));
        assert_eq!(dial.source, EventSource::ChangeEvent);
    }
    // Re-relayed: the same transaction key and sequence number, so the same two jobs.
    let again = app.handle_event(&event).await.unwrap();
    assert!(jobs(&again).iter().all(|(_, s)| *s == "duplicate"));
    assert_eq!(count_items(&store).await, 2);
}

#[tokio::test]
async fn a_cdc_update_that_matches_no_rule_is_skipped_with_the_reason() {
    let (app, store, counter) = relay().await;
    let mut event = relay_cdc_case_update(&unique("eb"));
    // Status changed, not Priority: the rule asks for `changed: [Priority]`.
    event["detail"]["payload"] = json!({
        "ChangeEventHeader": {
            "entityName": "Case", "recordIds": [CASE], "changeType": "UPDATE",
            "transactionKey": "0004f2a1-aaaa-bbbb-cccc-2a3b4c5d6e7f", "sequenceNumber": 3,
            "changedFields": ["Status", "LastModifiedDate"]
        },
        "Status": "Escalated"
    });
    counter.reset();
    let out = app.handle_event(&event).await.unwrap();
    let id = format!("cdc:0004f2a1-aaaa-bbbb-cccc-2a3b4c5d6e7f:3:{CASE}");
    assert_eq!(jobs(&out), vec![(id.clone(), "skipped")]);
    // Recorded, never dropped: one write, like any event.
    assert_eq!(
        counter.snapshot(),
        HashMap::from([("PutItem".to_owned(), 1)])
    );
    let job = item(&store, &id).await;
    assert_eq!(attr::opt_s(&job, "status"), Some("SKIPPED"));
    let reason = attr::opt_s(&job, "reason").unwrap();
    assert!(reason.contains("no routing rule matches"), "{reason}");
    assert!(reason.contains("CaseChangeEvent"), "{reason}");
    assert!(
        reason.contains("changed [Status, LastModifiedDate]"),
        "{reason}"
    );
    // Outside the sweep's index: the worker never picks it up.
    assert!(!job.contains_key("next_at"));
    // A relayed event of a type no rule knows is skipped the same way.
    let other = relayed(
        LOCAL_RELAY_ORG_ID,
        "Order_Shipped__e",
        json!({"payload": {"Order__c": "8015e00000AbCdEAAV"}, "id": "b7a1c2d3-0000-4000-8000-000000000001"}),
        &unique("eb"),
    );
    assert_eq!(
        jobs(&app.handle_event(&other).await.unwrap()),
        vec![("b7a1c2d3-0000-4000-8000-000000000001".to_owned(), "skipped")]
    );
    // A matching event whose mapped field is not an id: SKIPPED naming the field, not a panic.
    let mut bad = relay_platform_event(LOCAL_RELAY_ORG_ID, &unique("eb"));
    bad["detail"]["id"] = json!("c0c0c0c0-0000-4000-8000-000000000002");
    bad["detail"]["payload"]["Contact__c"] = json!("not-a-salesforce-id");
    let out = app.handle_event(&bad).await.unwrap();
    assert_eq!(jobs(&out)[0].1, "skipped");
    let job = item(&store, "c0c0c0c0-0000-4000-8000-000000000002").await;
    let reason = attr::opt_s(&job, "reason").unwrap();
    assert!(reason.contains("rule call-request"), "{reason}");
    assert!(
        reason.contains("Contact__c: must be a 15- or 18-character Salesforce id"),
        "{reason}"
    );
}

#[tokio::test]
async fn an_event_from_an_org_that_is_not_allowed_is_rejected_counted_and_not_stored() {
    sfvapi::telemetry::capture_metrics();
    let (app, store, counter) = relay().await;
    let event = relay_platform_event(OTHER_ORG_ID, &unique("eb"));
    counter.reset();
    let out = app.handle_event(&event).await.unwrap();
    match &out {
        EventOutcome::Rejected(r) => {
            assert_eq!(r.kind(), "org_not_allowed");
            assert!(r.to_string().contains(OTHER_ORG_ID), "{r}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        out.to_json()["status"],
        "rejected",
        "what cargo lambda invoke shows"
    );
    assert_eq!(counter.total(), 0, "nothing is written for a foreign org");
    assert!(sfvapi::telemetry::captured_metrics()
        .iter()
        .any(|m| m == "relay_rejected"));
    // Through SQS it is acknowledged (not a batch failure): retrying cannot make it allowed.
    let batch = json!({"Records": [
        {"messageId": "m-x", "body": event.to_string()},
        {"messageId": "m-y", "body": "not json at all"},
    ]});
    assert_eq!(
        app.handle(batch).await.unwrap(),
        json!({"batchItemFailures": []})
    );
    assert_eq!(count_items(&store).await, 0);
}

#[tokio::test]
async fn an_event_whose_write_fails_is_a_batch_item_failure_so_sqs_delivers_it_again() {
    let (store, _) = fresh_store().await;
    // A table that does not exist: DynamoDB refuses the write (as when it is unavailable).
    let gone = Store::new(store.client().clone(), format!("{}-missing", store.table()));
    let app = RelayApp::new(config(gone.table(), &[]).unwrap(), gone);
    let ok_org_event = relay_platform_event(LOCAL_RELAY_ORG_ID, &unique("eb"));
    let foreign = relay_platform_event(OTHER_ORG_ID, &unique("eb"));
    let answer = app
        .handle(json!({"Records": [
            {"messageId": "m-1", "body": ok_org_event.to_string()},
            {"messageId": "m-2", "body": foreign.to_string()},
        ]}))
        .await
        .unwrap();
    // Only the event that could not be stored is given back; the foreign one is final.
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "m-1"}]})
    );
    // Invoked directly (no SQS), the invocation fails, so the invoker retries.
    assert!(app.handle(ok_org_event).await.is_err());
}

#[test]
fn a_broken_routing_document_stops_the_init_naming_it_and_the_problem() {
    let path = routing_file("version: 1\nrules:\n  - id: cases\n    when: {detailType: CaseChangeEvent}\n    contact: case.ContactId\n");
    let bad = std::path::PathBuf::from(&path);
    let dir = bad.parent().expect("routing_file's folder").to_path_buf();
    let e = config("t", &[("ROUTING_FILE", &path)]).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(&path), "{msg}");
    assert!(msg.contains("rules[0] (id \"cases\")"), "{msg}");
    assert!(
        msg.contains("case.ContactId needs the rule to map case"),
        "{msg}"
    );
    // The same document stops the ingest and the worker too (they share it).
    let vars: HashMap<&str, String> = HashMap::from([
        ("TABLE_NAME", "t".to_owned()),
        ("SF_INGEST_SECRET_ARN", "s".to_owned()),
        ("SF_CONNECTION_SECRET_ARN", "s".to_owned()),
        ("VAPI_SECRET_ARN", "s".to_owned()),
        ("VAPI_ASSISTANT_ID", "a".to_owned()),
        ("VAPI_PHONE_NUMBER_ID", "p".to_owned()),
        ("ROUTING_FILE", path.clone()),
    ]);
    let env = Env::new(|k| vars.get(k).cloned());
    let e = sfvapi::config::IngestConfig::from_env(&env).unwrap_err();
    assert!(e.to_string().contains(&path), "{e}");
    let e = sfvapi::jobs::config::WorkerConfig::from_env(&env).unwrap_err();
    assert!(e.to_string().contains(&path), "{e}");
    // Not YAML at all, and a file that is not there.
    std::fs::write(&bad, "version: 1\nrules: [\n").unwrap();
    let e = config("t", &[("ROUTING_FILE", &path)]).unwrap_err();
    assert!(
        e.to_string().contains(&path) && e.to_string().contains("line"),
        "{e}"
    );
    let missing = dir.join("nope.yaml").to_string_lossy().into_owned();
    let e = config("t", &[("ROUTING_FILE", &missing)]).unwrap_err();
    assert!(
        e.to_string().contains(&missing) && e.to_string().contains("cannot be read"),
        "{e}"
    );
    // And the allowlist is required: an empty one would reject every event silently.
    let vars: HashMap<&str, &str> = HashMap::from([("TABLE_NAME", "t")]);
    let e = RelayConfig::from_env(&Env::new(|k| vars.get(k).map(|v| v.to_string()))).unwrap_err();
    assert!(e.to_string().contains("SF_RELAY_ORG_IDS"), "{e}");
}

#[test]
fn the_example_document_keeps_the_built_in_rules_first_and_unchanged() {
    let example = sfvapi::routing::Routing::load_file(&example_routing()).unwrap();
    let built_in = sfvapi::routing::Routing::built_in().unwrap();
    let n = built_in.rules().len();
    assert_eq!(&example.rules()[..n], built_in.rules());
    assert_eq!(
        example.detail_types(),
        vec!["Call_Request__e", "CaseChangeEvent"]
    );
}

/// What template.yaml makes for Event Relay: nothing lost (target retries + DLQ, queue redrive,
/// partial batch failures), nothing more allowed than one PutItem of `evt#sf#` items.
#[test]
fn the_template_delivers_relayed_events_without_loss_and_with_least_privilege() {
    use serde_norway::Value as Yaml;
    let text = std::fs::read_to_string(format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR")))
        .unwrap();
    let t: Yaml = serde_norway::from_str(&text).unwrap();
    let r = &t["Resources"];
    let tag = |v: &Yaml| match v {
        Yaml::Tagged(t) => (t.tag.to_string(), t.value.clone()),
        other => (String::new(), other.clone()),
    };
    assert_eq!(
        t["Parameters"]["SalesforceEventBusName"]["Default"].as_str(),
        Some("")
    );
    for name in [
        "RelayRule",
        "RelayQueue",
        "RelayDeadLetterQueue",
        "RelayQueuePolicy",
        "SalesforceRelayFunction",
        "RelayDeadLetterQueueAlarm",
        "RelayRejectedAlarm",
    ] {
        assert_eq!(
            r[name]["Condition"].as_str(),
            Some("HasEventRelay"),
            "{name}"
        );
    }
    let rule = &r["RelayRule"]["Properties"];
    assert_eq!(
        tag(&rule["EventBusName"]).1.as_str(),
        Some("SalesforceEventBusName")
    );
    assert_eq!(
        rule["EventPattern"]["source"][0]["prefix"].as_str(),
        Some("aws.partner/salesforce.com/")
    );
    assert_eq!(
        tag(&rule["EventPattern"]["detail-type"]).1.as_str(),
        Some("EventRelayDetailTypes")
    );
    let target = &rule["Targets"][0];
    assert_eq!(
        target["RetryPolicy"]["MaximumEventAgeInSeconds"].as_u64(),
        Some(86_400)
    );
    assert_eq!(
        target["RetryPolicy"]["MaximumRetryAttempts"].as_u64(),
        Some(185)
    );
    assert_eq!(
        tag(&target["DeadLetterConfig"]["Arn"]).1.as_str(),
        Some("RelayDeadLetterQueue.Arn")
    );
    assert_eq!(
        r["RelayQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"].as_u64(),
        Some(15)
    );
    // The default detail-types are the example document's.
    let defaults = t["Parameters"]["EventRelayDetailTypes"]["Default"]
        .as_str()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect::<Vec<_>>();
    let example = sfvapi::routing::Routing::load_file(&example_routing()).unwrap();
    assert_eq!(defaults, example.detail_types());
    let f = &r["SalesforceRelayFunction"]["Properties"];
    let event = &f["Events"]["Relay"];
    assert_eq!(event["Type"].as_str(), Some("SQS"));
    assert_eq!(
        event["Properties"]["FunctionResponseTypes"][0].as_str(),
        Some("ReportBatchItemFailures")
    );
    // Least privilege: PutItem of evt#sf# items, polling its queue; no secret, no read.
    let policies = f["Policies"].as_sequence().unwrap();
    let stmt = &policies[0]["Statement"][0];
    assert_eq!(stmt["Action"].as_str(), Some("dynamodb:PutItem"));
    assert_eq!(
        stmt["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"][0].as_str(),
        Some("evt#sf#*")
    );
    assert_eq!(policies[0]["Statement"].as_sequence().unwrap().len(), 1);
    assert!(policies[1].get("SQSPollerPolicy").is_some());
    assert_eq!(
        policies.len(),
        2,
        "no other policy (no secret: nothing to verify with)"
    );
    // Only the rule may send to the queues.
    let stmt = &r["RelayQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0];
    assert_eq!(
        stmt["Principal"]["Service"].as_str(),
        Some("events.amazonaws.com")
    );
    assert_eq!(
        tag(&stmt["Condition"]["ArnEquals"]["aws:SourceArn"])
            .1
            .as_str(),
        Some("RelayRule.Arn")
    );
}
