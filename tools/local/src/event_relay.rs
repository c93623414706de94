//! `make demo SCENARIO=event-relay`: Salesforce Event Relay, end to end, on the local stack.
//!
//! The sample files `events/relay-*.json` (what an EventBridge rule on the partner event bus
//! delivers) go through the real `salesforce-relay` handler (`sfvapi::relay::RelayApp`, the
//! function's whole logic) with the example routing document `events/routing-event-relay.yaml`:
//! a `Call_Request__e` Platform Event for Charles, the same event re-relayed by Salesforce (a new
//! EventBridge id, delivered through SQS as in production), a Change Data Capture update of
//! Ada's Case (Priority → High; the Contact comes from the Case, read by the worker) and an
//! event from an org that is not allowed. Then the stack does the rest as for the signed HTTP
//! route — stream, worker, sandbox Vapi, webhook, report job — and the demo checks the run by
//! what it left: one call per relayed event, the Task, the write-back PATCHes onto the Contact
//! and the Case, the follow-up SMS the rule asks for, nothing stored for the foreign org.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{json, Value};
use sfvapi::config::Env;
use sfvapi::relay::{RelayApp, RelayConfig};
use sfvapi::samples::{LOCAL_RELAY_ORG_ID, OTHER_ORG_EVENT_UUID, RELAY_EVENT_UUID};
use sfvapi::store::{attr, Item};

use crate::demo::{sandbox_log, scan, settled, DemoOptions};
use crate::stack::{Stack, StackConfig};
use crate::timeline::{self, Evidence, Sent, Step};

/// Ada's Case (the CDC sample's record) and her Contact; Charles, the Platform Event's Contact.
pub const CASE: &str = "5005e00000AbCdEAAV";
pub const ADA: &str = "0035e00000XyZ12AAF";
pub const CHARLES: &str = "0035e00000LowRvAAJ";
/// The CDC sample's job id: `cdc:<transactionKey>:<sequenceNumber>:<recordId>`.
pub const CDC_EVENT: &str = "cdc:0004f2a1-7c3b-9d5e-8f61-2a3b4c5d6e7f:1:5005e00000AbCdEAAV";

/// The repository's `events/` directory.
pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

/// The example routing document the scenario runs with.
pub fn routing_file() -> String {
    events_dir()
        .join("routing-event-relay.yaml")
        .to_string_lossy()
        .into_owned()
}

/// The variables a stack needs for the relay (on top of the usual ones).
pub fn relay_env(routing: &str) -> Vec<(String, String)> {
    vec![
        ("ROUTING_FILE".into(), routing.to_owned()),
        ("SF_RELAY_ORG_IDS".into(), LOCAL_RELAY_ORG_ID.into()),
    ]
}

/// The relay handler as the function builds it, from the stack's variables and table.
pub fn relay_app(stack: &Stack) -> Result<RelayApp, String> {
    let env = stack.env.clone();
    let config = RelayConfig::from_env(&Env::new(move |k: &str| env.get(k).cloned()))
        .map_err(|e| e.to_string())?;
    Ok(RelayApp::new(config, stack.store.clone()))
}

fn load(name: &str) -> Result<Value, String> {
    let path = events_dir().join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// One delivery to the relay handler and its answer.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub label: &'static str,
    pub file: &'static str,
    pub answer: Value,
    pub expect: &'static str,
    pub ok: bool,
}

/// What a relay run left behind.
pub struct RelayRun {
    pub deliveries: Vec<Delivery>,
    pub sent: Vec<Sent>,
    pub items: Vec<Item>,
    pub log: Vec<Value>,
    pub tap: Vec<crate::pump::Observed>,
    pub settled: bool,
}

impl RelayRun {
    pub fn evidence(&self) -> Evidence<'_> {
        Evidence {
            sent: &self.sent,
            items: &self.items,
            log: &self.log,
            tap: &self.tap,
        }
    }

    pub fn item(&self, pk: &str) -> Option<&Item> {
        self.items.iter().find(|i| attr::opt_s(i, "pk") == Some(pk))
    }

    /// PATCHes of a record's fields the fake Salesforce answered, with their bodies.
    pub fn record_updates(&self, object: &str, id: &str) -> Vec<(u64, Value)> {
        self.log
            .iter()
            .filter(|e| {
                e["service"] == "salesforce"
                    && e["method"] == "PATCH"
                    && e["path"]
                        .as_str()
                        .is_some_and(|p| p.ends_with(&format!("/sobjects/{object}/{id}")))
            })
            .map(|e| {
                (
                    e["status"].as_u64().unwrap_or(0),
                    serde_json::from_str(e["body"].as_str().unwrap_or_default())
                        .unwrap_or(Value::Null),
                )
            })
            .collect()
    }
}

fn queued_ids(answer: &Value) -> Vec<String> {
    answer["jobs"]
        .as_array()
        .map(|jobs| {
            jobs.iter()
                .filter(|j| j["status"] == "queued")
                .filter_map(|j| j["eventId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Deliver the samples, wait (bounded) until the flow settled, and collect the evidence.
pub async fn drive(stack: &Stack, relay: &RelayApp, timeout: Duration) -> Result<RelayRun, String> {
    let pe = load("relay-platform-event.json")?;
    let mut again = pe.clone();
    again["id"] = json!("3a9f0c51-8e2d-4b7a-9c16-d4e5f6a7b8c9");
    let sqs = json!({"Records": [{
        "messageId": "5f1b2c3d-sqs-message-1",
        "receiptHandle": "local",
        "body": again.to_string(),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:sfvapi-relay",
    }]});
    let plan: Vec<(&'static str, &'static str, Value, &'static str)> = vec![
        (
            "relayed Platform Event Call_Request__e",
            "relay-platform-event.json",
            pe,
            "queued",
        ),
        (
            "the same event re-relayed (new EventBridge id, via SQS)",
            "relay-platform-event.json",
            sqs,
            "no batch failure",
        ),
        (
            "relayed CDC: Case Priority changed to High",
            "relay-cdc-case-update.json",
            load("relay-cdc-case-update.json")?,
            "queued",
        ),
        (
            "relayed from an org that is not allowed",
            "relay-wrong-org.json",
            load("relay-wrong-org.json")?,
            "rejected",
        ),
    ];
    let mut deliveries = Vec::new();
    let mut sent = Vec::new();
    for (label, file, event, expect) in plan {
        let answer = relay
            .handle(event)
            .await
            .map_err(|e| format!("{label}: the relay handler failed: {e}"))?;
        let now = sfvapi::now_millis();
        let queued = queued_ids(&answer);
        let ok = match expect {
            "queued" => !queued.is_empty(),
            "rejected" => answer["status"] == "rejected",
            _ => answer == json!({"batchItemFailures": []}),
        };
        for id in &queued {
            sent.push(Sent {
                label: label.to_owned(),
                event_id: id.clone(),
                contact_id: String::new(),
                status: 202,
                expect: 202,
                at_ms: now,
                body: answer.to_string(),
            });
        }
        deliveries.push(Delivery {
            label,
            file,
            answer,
            expect,
            ok,
        });
    }
    let accepted: Vec<String> = sent.iter().map(|s| s.event_id.clone()).collect();
    let accepted_refs: Vec<&str> = accepted.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    let (items, settled_ok) = loop {
        let items = scan(&stack.store).await?;
        if settled(&items, &accepted_refs) {
            break (items, true);
        }
        if started.elapsed() > timeout {
            break (items, false);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // The Contact each job called: named by the event, or read from the Case at dial time.
    for s in &mut sent {
        let job = items
            .iter()
            .find(|i| attr::opt_s(i, "pk") == Some(&format!("evt#sf#{}", s.event_id)));
        s.contact_id = job
            .and_then(|j| {
                attr::opt_s(j, "contact_id").map(str::to_owned).or_else(|| {
                    attr::opt_s(j, "payload")
                        .and_then(|p| serde_json::from_str::<Value>(p).ok())
                        .and_then(|p| p["contactId"].as_str().map(str::to_owned))
                })
            })
            .unwrap_or_default();
    }
    let log = sandbox_log(&stack.vapi_url).await?;
    Ok(RelayRun {
        deliveries,
        sent,
        items,
        log,
        tap: stack.pump.tap.all(),
        settled: settled_ok,
    })
}

/// The run's stories, with the steps only the relay has: the Case read for the Contact and the
/// write-back PATCHes.
pub fn stories(run: &RelayRun) -> Vec<timeline::EventStory> {
    let mut stories = timeline::stories(&run.evidence());
    for story in &mut stories {
        let t0 = story.accepted_at_ms;
        for e in run
            .log
            .iter()
            .filter(|e| e["service"] == "salesforce" && e["time_ms"].as_i64().unwrap_or(0) >= t0)
        {
            let path = e["path"].as_str().unwrap_or_default();
            let at = e["time_ms"].as_i64().unwrap_or(t0);
            let status = &e["status"];
            let record = path.rsplit('/').next().unwrap_or_default();
            let case_read = e["method"] == "GET"
                && path.contains("/sobjects/Case/")
                && story.event_id.starts_with("cdc:")
                && story.event_id.ends_with(record);
            if case_read {
                story.steps.push(Step {
                    at_ms: at,
                    what: format!(
                        "Salesforce: Case {record} read (its Contact is called) → {status}"
                    ),
                });
            }
            let is_update = e["method"] == "PATCH"
                && (path.contains("/sobjects/Case/") || path.contains("/sobjects/Contact/"));
            let ours = record == story.contact_id || story.event_id.ends_with(record);
            if is_update && ours {
                let body: Value = serde_json::from_str(e["body"].as_str().unwrap_or_default())
                    .unwrap_or_default();
                let fields: Vec<String> = body
                    .as_object()
                    .map(|o| o.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_default();
                let object = if path.contains("/sobjects/Case/") {
                    "Case"
                } else {
                    "Contact"
                };
                story.steps.push(Step {
                    at_ms: at,
                    what: format!(
                        "Salesforce: write-back {object} {record} {} → {status}",
                        fields.join(", ")
                    ),
                });
            }
        }
        story.steps.sort_by_key(|s| s.at_ms);
    }
    stories
}

/// The scenario's checks; each failure is one readable line.
pub fn check(run: &RelayRun) -> Vec<String> {
    let mut problems = Vec::new();
    for d in &run.deliveries {
        if !d.ok {
            problems.push(format!(
                "{} ({}): expected {}, got {}",
                d.label, d.file, d.expect, d.answer
            ));
        }
    }
    let ok_calls = |id: &str| {
        timeline::call_requests(&run.log, id)
            .into_iter()
            .filter(|e| e["status"] == 201)
            .count()
    };
    for id in [RELAY_EVENT_UUID, CDC_EVENT] {
        let n = ok_calls(id);
        if n != 1 {
            problems.push(format!("expected 1 POST /call for {id}, saw {n}"));
        }
    }
    let jobs = |prefix: &str| {
        run.items
            .iter()
            .filter(|i| attr::opt_s(i, "pk").is_some_and(|p| p.starts_with(prefix)))
            .count()
    };
    if jobs(&format!("evt#sf#{RELAY_EVENT_UUID}")) != 1 {
        problems.push("the re-relayed Platform Event is not exactly one job".into());
    }
    if jobs(&format!("evt#sf#{OTHER_ORG_EVENT_UUID}")) != 0 {
        problems.push("the event from a foreign org was stored".into());
    }
    // The CDC job called the Case's Contact, found by reading the Case.
    match run.item(&format!("evt#sf#{CDC_EVENT}")) {
        Some(job) if attr::opt_s(job, "contact_id") == Some(ADA) => {}
        other => problems.push(format!(
            "the CDC job did not record Ada (the Case's Contact): {:?}",
            other.and_then(|j| attr::opt_s(j, "contact_id"))
        )),
    }
    for story in stories(run) {
        for call in &story.call_ids {
            let tasks = timeline::task_upserts(&run.log, call).len();
            if tasks != 1 {
                problems.push(format!(
                    "expected 1 Task upsert for call {call}, saw {tasks}"
                ));
            }
        }
    }
    // The write-backs the routing document maps, as Salesforce accepted them (204).
    let case = run.record_updates("Case", CASE);
    let case_ok = case.iter().any(|(s, b)| {
        *s == 204 && b.get("Call_Outcome__c").is_some() && b.get("Callback_Requested__c").is_some()
    });
    if !case_ok {
        problems.push(format!(
            "no accepted write-back PATCH of Case {CASE}: {case:?}"
        ));
    }
    let contact = run.record_updates("Contact", CHARLES);
    if !contact
        .iter()
        .any(|(s, b)| *s == 204 && b.get("Last_Call_Outcome__c").is_some())
    {
        problems.push(format!(
            "no accepted write-back PATCH of Contact {CHARLES}: {contact:?}"
        ));
    }
    // followUp: always for the escalated Case; Charles answered and is not high value.
    let sms = timeline::sms_sent(&run.log).len();
    if sms != 1 {
        problems.push(format!(
            "expected 1 follow-up SMS (the CDC rule's followUp: always), saw {sms}"
        ));
    }
    problems
}

/// `sfvapi-local demo` with `SCENARIO=event-relay`: `Ok(())` only when the flow completed.
pub async fn run(opts: DemoOptions) -> Result<(), String> {
    let config = StackConfig {
        sandbox: opts.sandbox.clone(),
        extra_env: relay_env(&routing_file()),
        ..StackConfig::default()
    };
    let stack = Stack::start(config).await.map_err(|e| e.to_string())?;
    let result = async {
        let relay = relay_app(&stack)?;
        println!(
            "sfvapi demo, scenario event-relay — the salesforce-relay handler with {} (org {LOCAL_RELAY_ORG_ID} allowed), the stack on {} (table {}), sandbox Salesforce {} / Vapi {} / Twilio {}\n",
            relay.config().routing,
            stack.runner_url,
            stack.table,
            stack.salesforce_url,
            stack.vapi_url,
            stack.twilio_url
        );
        let run = drive(&stack, &relay, opts.timeout).await?;
        for d in &run.deliveries {
            let mark = if d.ok { "ok " } else { "!! " };
            println!("{mark} {:<58} {} → {}", d.label, d.file, d.answer);
        }
        println!("\nTimeline (ms since the event was stored):");
        for story in stories(&run) {
            print!("{}", story.render());
        }
        let calls: usize = stories(&run).iter().map(|s| s.call_ids.len()).sum();
        println!(
            "\nSummary: {} deliveries, {} jobs queued, {} calls, {} Tasks, {} write-backs, {} SMS, the foreign org's event rejected and not stored",
            run.deliveries.len(),
            run.sent.len(),
            calls,
            run.log.iter().filter(|e| e["service"] == "salesforce" && e["method"] == "POST" && e["path"].as_str().is_some_and(|p| p.ends_with("/sobjects/Task"))).count(),
            run.log.iter().filter(|e| e["service"] == "salesforce" && e["method"] == "PATCH" && e["status"] == 204).count(),
            timeline::sms_sent(&run.log).len(),
        );
        if !run.settled {
            return Err(format!(
                "the flow did not settle within {} s (jobs not terminal or reports not done)",
                opts.timeout.as_secs()
            ));
        }
        let problems = check(&run);
        if problems.is_empty() {
            println!("\nevent relay flow complete: every check passed");
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
    .await;
    stack.shutdown().await;
    result
}
