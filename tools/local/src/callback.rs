//! `make demo SCENARIO=callback`: Ada misses sfvapi's call, then calls the number back.
//!
//! The story, on the local stack (real handlers, the sandbox's fake Salesforce, Vapi, Twilio):
//! 1. Ada's case escalates; the call is not answered (sandbox scenario `no-answer`): a Task and
//!    the "we tried to reach you" SMS, and the worker remembers the number (`sfvapi::callers`).
//! 2. Ada calls back (`POST /_sandbox/inbound-call`): the fake Vapi asks the webhook for an
//!    assistant (`assistant-request`); the webhook knows her from its own recent call, with no
//!    Salesforce request, and answers the inbound assistant with her context; the agent greets
//!    her by name about her case; her end-of-call report becomes a Task (CallType Inbound) on her
//!    Contact, and no SMS (inbound follow-up policy: never).
//! 3. A stranger calls from a number on no Contact: the generic assistant, no customer data, no
//!    Task.
//!
//! The helpers here ([`create_inbound_assistant`], [`call_in`], [`wait_inbound`]) are also what
//! the e2e tests (`tests/callback.rs`) and `make bench` (`BENCH_ONLY=callback`) use.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sfvapi::ids::mask_phone;
use sfvapi::store::{attr, Item};

use crate::demo::{sandbox_log, scan, settled, DemoOptions, ADA, ADA_EVENT, CASE, TERMINAL};
use crate::stack::{Stack, StackConfig};
use crate::timeline::{self, Evidence, Step};

/// The inbound assistant as shipped (docs/calls-back.md).
pub const INBOUND_ASSISTANT: &str = include_str!("../../../events/assistant-inbound.json");

/// The sandbox's seeded numbers: Ada's `Phone`; Katherine's `Phone` stored as "(415) 555-0142";
/// a family phone on two Contacts; Katherine's assistant's `AssistantPhone`; and one on no
/// Contact at all.
pub const ADA_PHONE: &str = "+14155550123";
pub const KATHERINE: &str = "0035e00000KJohnAAD";
pub const KATHERINE_PHONE: &str = "+14155550142";
pub const KATHERINE_OPEN_CASE: &str = "5005e00000KJopnAAD";
pub const SHARED_PHONE: &str = "+14155550177";
pub const ASSISTANT_PHONE: &str = "+14155550188";
pub const STRANGER_PHONE: &str = "+14155550999";

/// Create the inbound assistant in the fake Vapi (`POST /assistant`, checked against
/// `CreateAssistantDTO` there), its server pointed at `webhook_url`; its id.
pub async fn create_inbound_assistant(
    vapi_url: &str,
    api_key: &str,
    webhook_url: &str,
) -> Result<String, String> {
    let mut assistant: Value = serde_json::from_str(INBOUND_ASSISTANT)
        .map_err(|e| format!("events/assistant-inbound.json: {e}"))?;
    assistant["server"]["url"] = json!(webhook_url);
    // The HMAC credential the sandbox starts with, signing with the stack's server secret.
    assistant["server"]["credentialId"] = json!(sandbox::SEED_CREDENTIAL_ID);
    let resp = reqwest::Client::new()
        .post(format!("{vapi_url}/assistant"))
        .bearer_auth(api_key)
        .json(&assistant)
        .send()
        .await
        .map_err(|e| format!("POST /assistant: {}", sfvapi::secrets::error_chain(&e)))?;
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.map_err(|e| e.to_string())?;
    match (status, body["id"].as_str()) {
        (201, Some(id)) => Ok(id.to_owned()),
        _ => Err(format!("POST /assistant → {status} {body}")),
    }
}

/// One inbound call as the sandbox placed it: what the webhook answered, and how fast.
#[derive(Debug, Clone)]
pub struct InboundCall {
    pub call_id: String,
    pub from: Option<String>,
    /// The webhook's HTTP status (`None`: no answer in Vapi's 7.5 s).
    pub status: Option<u16>,
    /// The `assistant-request` round trip as the fake Vapi timed it.
    pub duration_ms: u64,
    /// The webhook's answer (`ServerMessageResponseAssistantRequest`).
    pub answer: Value,
    /// What the agent says first.
    pub first_message: Option<String>,
    /// Set when the call ended at once (no usable assistant).
    pub ended_reason: Option<String>,
    /// The fake Vapi's judgement of the answer.
    pub check_ok: bool,
    pub check: String,
    /// Unix ms when the call came in.
    pub at_ms: i64,
    /// Unix ms when the sandbox's answer came back: every request the call caused while it was
    /// being answered (the assistant-request and any Salesforce search) falls between the two.
    /// Not `at_ms + duration_ms`: the sandbox starts its own clock only when it sends the
    /// assistant-request, so on a loaded machine that window missed the search.
    pub answered_at_ms: i64,
}

impl InboundCall {
    pub fn overrides(&self) -> &Value {
        &self.answer["assistantOverrides"]
    }
    /// Whether the answer carries any customer data: a context, a name, a case.
    pub fn carries_customer_data(&self) -> bool {
        let o = self.overrides();
        !o["metadata"].is_null()
            || o["firstMessage"].is_string()
            || o["variableValues"]
                .as_object()
                .is_some_and(|v| v.keys().any(|k| k != "callerKnown" && k != "recentCall"))
    }
}

/// A customer calls the number from `from` (`None`: withheld).
pub async fn call_in(sandbox_url: &str, from: Option<&str>) -> Result<InboundCall, String> {
    let at_ms = sfvapi::now_millis();
    let url = format!("{sandbox_url}/_sandbox/inbound-call");
    let resp = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .map_err(|e| e.to_string())?
        .post(&url)
        .json(&json!({"from": from, "phoneNumberId": crate::stack::LOCAL_PHONE_NUMBER_ID}))
        .send()
        .await
        .map_err(|e| format!("POST {url}: {}", sfvapi::secrets::error_chain(&e)))?;
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.map_err(|e| e.to_string())?;
    let answered_at_ms = sfvapi::now_millis();
    if status != 200 {
        return Err(format!("POST {url} → {status} {v}"));
    }
    let ar = &v["assistantRequest"];
    Ok(InboundCall {
        call_id: v["callId"].as_str().unwrap_or_default().to_owned(),
        from: from.map(str::to_owned),
        status: ar["status"].as_u64().map(|s| s as u16),
        duration_ms: ar["durationMs"].as_u64().unwrap_or(0),
        answer: ar["answer"].clone(),
        first_message: v["firstMessage"].as_str().map(str::to_owned),
        ended_reason: v["endedReason"].as_str().map(str::to_owned),
        check_ok: ar["check"]["ok"] == true,
        check: ar["check"]["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        at_ms,
        answered_at_ms,
    })
}

/// Whether an inbound call is over for sfvapi: `ended` recorded on its `call#` and its report
/// job terminal.
pub fn inbound_settled(items: &[Item], call_id: &str) -> bool {
    let find = |pk: String| items.iter().find(|i| attr::opt_s(i, "pk") == Some(&pk));
    let report_done = find(format!("evt#vapi#{call_id}#end-of-call-report"))
        .and_then(|i| attr::opt_s(i, "status"))
        .is_some_and(|s| TERMINAL.contains(&s));
    let ended = find(format!("call#{call_id}"))
        .and_then(|i| attr::opt_s(i, sfvapi::calls::CALL_STATUS))
        == Some("ended");
    report_done && ended
}

/// Wait (at most `limit`) until every call in `calls` has settled; the table's items.
pub async fn wait_inbound(
    stack: &Stack,
    calls: &[&str],
    limit: Duration,
) -> Result<Vec<Item>, String> {
    let started = Instant::now();
    loop {
        let items = scan(&stack.store).await?;
        if calls.iter().all(|c| inbound_settled(&items, c)) {
            return Ok(items);
        }
        if started.elapsed() > limit {
            return Err(format!(
                "inbound calls {calls:?} did not settle within {} s",
                limit.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The Task writes of a call, with their bodies.
pub fn task_bodies(log: &[Value], call_id: &str) -> Vec<Value> {
    timeline::task_upserts(log, call_id)
        .into_iter()
        .map(|e| {
            serde_json::from_str(e["body"].as_str().unwrap_or_default()).unwrap_or(Value::Null)
        })
        .collect()
}

/// Salesforce searches (`GET …/search`) the fake Salesforce answered between two instants.
pub fn searches_between(log: &[Value], from_ms: i64, to_ms: i64) -> usize {
    log.iter()
        .filter(|e| {
            e["service"] == "salesforce"
                && e["path"].as_str().is_some_and(|p| p.ends_with("/search"))
                && e["time_ms"]
                    .as_i64()
                    .is_some_and(|t| t >= from_ms && t <= to_ms)
        })
        .count()
}

/// Run the scenario; `Ok(())` only when every check passed.
pub async fn run(opts: DemoOptions) -> Result<(), String> {
    let mut sandbox = opts.sandbox.clone();
    sandbox.vapi.scenario = sandbox::Scenario::NoAnswer;
    let config = StackConfig {
        sandbox,
        ..StackConfig::default()
    };
    let stack = Stack::start(config).await.map_err(|e| e.to_string())?;
    let result = drive(&stack, &opts).await;
    stack.shutdown().await;
    result
}

async fn drive(stack: &Stack, opts: &DemoOptions) -> Result<(), String> {
    println!(
        "sfvapi demo, scenario callback — real handlers on {} (table {}), sandbox Salesforce {} / Vapi {} / Twilio {}\n",
        stack.runner_url, stack.table, stack.salesforce_url, stack.vapi_url, stack.twilio_url
    );
    let sent = vec![crate::demo::escalate_ada(&stack.runner_url, "case escalation for Ada").await?];
    println!(
        "ok  {:<40} POST /salesforce/events → {} {}",
        sent[0].label, sent[0].status, sent[0].body
    );
    let started = Instant::now();
    loop {
        let items = scan(&stack.store).await?;
        if settled(&items, &[ADA_EVENT]) {
            break;
        }
        if started.elapsed() > opts.timeout {
            return Err("Ada's missed call did not settle in time".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "ok  {:<40} (the call rang out: Task + SMS)",
        "Ada misses the call"
    );

    let ada = call_in(&stack.vapi_url, Some(ADA_PHONE)).await?;
    println!(
        "ok  {:<40} POST /_sandbox/inbound-call → call {}",
        "Ada calls the number back", ada.call_id
    );
    wait_inbound(stack, &[&ada.call_id], opts.timeout).await?;
    let stranger = call_in(&stack.vapi_url, Some(STRANGER_PHONE)).await?;
    println!(
        "ok  {:<40} POST /_sandbox/inbound-call → call {}",
        "a stranger calls the number", stranger.call_id
    );
    let items = wait_inbound(stack, &[&ada.call_id, &stranger.call_id], opts.timeout).await?;
    let log = sandbox_log(&stack.vapi_url).await?;
    let tap = stack.pump.tap.all();
    let ev = Evidence::new(&sent, &items, &log, &tap);

    println!("\nTimeline (ms since the event, or since the inbound call came in):");
    for story in timeline::stories(&ev) {
        print!("{}", story.render());
    }
    for call in [&ada, &stranger] {
        print!("{}", inbound_story(&ev, call));
    }
    let ada_tasks = task_bodies(&log, &ada.call_id);
    let stranger_tasks = task_bodies(&log, &stranger.call_id);
    let sms = timeline::sms_sent(&log).len();
    println!(
        "\n  │ outbound calls 1 │ inbound calls 2 (1 known, 1 generic) │ Tasks {} │ SMS {sms} │",
        timeline::summary(&ev).tasks
    );

    let mut problems = Vec::new();
    let greeting = ada.first_message.clone().unwrap_or_default();
    if !(greeting.contains("Ada") && greeting.contains("Payment failed twice")) {
        problems.push(format!(
            "the agent did not greet Ada about her case: {greeting:?}"
        ));
    }
    if ada.overrides()["metadata"]["contactId"] != ADA
        || ada.overrides()["metadata"]["caseId"] != CASE
    {
        problems.push(format!(
            "Ada's call does not carry her context: {}",
            ada.answer
        ));
    }
    if ada.overrides()["variableValues"]["recentCall"] != "yes" {
        problems.push("Ada was not known from sfvapi's own recent call".into());
    }
    let window_end = ada.answered_at_ms;
    if searches_between(&log, ada.at_ms, window_end) != 0 {
        problems.push("Ada's assistant-request searched Salesforce".into());
    }
    match ada_tasks.as_slice() {
        [t] if t["CallType"] == "Inbound" && t["WhoId"] == ADA => {}
        other => problems.push(format!(
            "expected one inbound Task on Ada's Contact, saw {other:?}"
        )),
    }
    if stranger.carries_customer_data() {
        problems.push(format!(
            "the stranger got customer data: {}",
            stranger.answer
        ));
    }
    if !stranger_tasks.is_empty() {
        problems.push("the stranger's call wrote a Task".into());
    }
    if sms != 1 {
        problems.push(format!("expected 1 SMS (the missed call's), saw {sms}"));
    }
    if !(ada.check_ok && stranger.check_ok) {
        problems.push(format!(
            "the fake Vapi refused an answer: {} / {}",
            ada.check, stranger.check
        ));
    }
    if problems.is_empty() {
        println!("\ncallback complete: every check passed");
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// One inbound call's story, rebuilt from the sandbox's log and the table like the event stories.
pub fn inbound_story(ev: &Evidence<'_>, call: &InboundCall) -> String {
    let from = call
        .from
        .as_deref()
        .map(mask_phone)
        .unwrap_or_else(|| "a withheld number".into());
    let o = call.overrides();
    let who = match o["metadata"]["contactId"].as_str() {
        Some(c) => format!(
            "{} (Contact {c}), known from {}",
            o["variableValues"]["customerName"].as_str().unwrap_or("?"),
            if o["variableValues"]["recentCall"] == "yes" {
                "sfvapi's recent call to this number: no Salesforce request"
            } else {
                "the Salesforce search"
            }
        ),
        None => "not identified: the generic assistant, no customer data".into(),
    };
    let t0 = ev
        .log
        .iter()
        .find(|e| e["call_id"] == call.call_id.as_str() && e["message_type"] == "assistant-request")
        .and_then(|e| e["time_ms"].as_i64())
        .unwrap_or(call.at_ms);
    let mut steps: Vec<Step> = timeline::call_steps(ev, &call.call_id, t0)
        .into_iter()
        .filter(|s| !s.what.starts_with("Vapi → webhook: assistant-request"))
        .collect();
    steps.push(Step {
        at_ms: t0,
        what: format!(
            "Vapi → webhook: assistant-request (caller {from}) → {} in {} ms: {}",
            call.status.map_or("no answer".into(), |s| s.to_string()),
            call.duration_ms,
            if o["metadata"].is_object() {
                "the inbound assistant with her context"
            } else {
                "the inbound assistant, generic"
            }
        ),
    });
    if let Some(first) = &call.first_message {
        steps.push(Step {
            at_ms: t0 + call.duration_ms as i64,
            what: format!("agent: \"{first}\""),
        });
    }
    for t in task_bodies(ev.log, &call.call_id) {
        if let Some(step) = steps
            .iter_mut()
            .find(|s| s.what.starts_with("Salesforce: Task"))
        {
            step.what = format!(
                "{} (CallType {}, on Contact {}, Case {})",
                step.what,
                t["CallType"].as_str().unwrap_or("?"),
                t["WhoId"].as_str().unwrap_or("-"),
                t["WhatId"].as_str().unwrap_or("-")
            );
        }
    }
    steps.sort_by_key(|s| s.at_ms);
    let mut out = format!("inbound call {}  (from {from}: {who})\n", call.call_id);
    for s in steps {
        out.push_str(&format!("  {:>+7} ms  {}\n", s.at_ms - t0, s.what));
    }
    out
}
