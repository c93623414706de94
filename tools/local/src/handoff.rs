//! `make demo SCENARIO=handoff`: hand-off and records on the local stack
//! (docs/handoff-and-records.md).
//!
//! The stack runs with a routing document whose rule hands the customer to the Case's owner
//! (below), and the fake Vapi in its `transfer` scenario: Ada answers, asks for a person, Vapi
//! sends `transfer-destination-request`, the webhook answers from the call's snapshot with the
//! owner's number and a warm mode, Vapi forwards the call (`transfer-update`, ended
//! `assistant-forwarded-call`). The report job then keeps the call's recording in the stack's
//! recordings bucket (moto's S3) and the Task says who took the call and where the recording is.
//! The timeline shows each step; the demo fails unless all of them happened.

use std::time::{Duration, Instant};

use sfvapi::store::attr;

use crate::demo::{sandbox_log, scan, settled, DemoOptions, ADA_EVENT};
use crate::stack::{Stack, StackConfig};
use crate::timeline::{self, Evidence};

/// The story's routing document: the HTTP route, handing off to the Case's owner.
pub const DOCUMENT: &str = r#"version: 1
rules:
  - id: handoff-demo
    when: { route: events }
    eventId: eventId
    contact: contactId
    case: caseId
    priority: priority
    reason: reason
    call:
      handoff:
        to: caseOwner               # the Case owner's Phone (else MobilePhone)
        fallback: "+14155550199"    # a queue-owned Case, or an owner without a number
"#;

/// The Case owner's desk phone in the sandbox (`User.Phone` "+1 (415) 555-0100"), masked.
const OWNER_PHONE_MASKED: &str = "+1******0100";

/// A stack with the story's routing document (written to a temporary file), the fake Vapi in
/// its `transfer` scenario.
pub fn stack_config(mut sandbox: sandbox::Config) -> Result<StackConfig, String> {
    sandbox.vapi.scenario = sandbox::Scenario::Transfer;
    crate::stack::with_routing(sandbox, "handoff", DOCUMENT)
}

pub async fn run(opts: DemoOptions) -> Result<(), String> {
    let stack = Stack::start(stack_config(opts.sandbox.clone())?)
        .await
        .map_err(|e| e.to_string())?;
    let result = drive(&stack, opts.timeout).await;
    stack.shutdown().await;
    result
}

/// Send Ada's event, print the timeline and the Task, and check every step (the demo and the test).
pub async fn drive(stack: &Stack, timeout: Duration) -> Result<(), String> {
    println!(
        "sfvapi demo, scenario handoff — the stack on {} (table {}), recordings bucket {}, its routing document:\n\n{DOCUMENT}",
        stack.runner_url,
        stack.table,
        stack
            .env
            .get("RECORDINGS_BUCKET")
            .map(String::as_str)
            .unwrap_or("(none: S3 is not local)")
    );
    let escalated = crate::demo::escalate_ada(&stack.runner_url, "Ada's case escalated").await?;
    println!(
        "Ada's case escalated: POST /salesforce/events → {} {}",
        escalated.status, escalated.body
    );
    let sent = vec![escalated];
    let started = Instant::now();
    let items = loop {
        let items = scan(&stack.store).await?;
        if settled(&items, &[ADA_EVENT]) {
            break items;
        }
        if started.elapsed() > timeout {
            return Err(format!(
                "the hand-off did not settle within {} s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let log = sandbox_log(&stack.vapi_url).await?;
    let tap = stack.pump.tap.all();
    let ev = Evidence::new(&sent, &items, &log, &tap);
    println!("\nTimeline (ms since the event was accepted):");
    let stories = timeline::stories(&ev);
    for story in &stories {
        print!("{}", story.render());
    }

    // The checks: a warm transfer to the owner, the recording kept, the Task saying both.
    let mut problems = Vec::new();
    let call = stories
        .first()
        .and_then(|s| s.call_ids.first())
        .cloned()
        .ok_or("no call was placed")?;
    let steps: Vec<&str> = stories
        .iter()
        .flat_map(|s| s.steps.iter().map(|st| st.what.as_str()))
        .collect();
    if !steps
        .iter()
        .any(|s| s.contains("asks for a person") && s.contains("warm-transfer"))
    {
        problems.push("the transfer-destination-request was not answered with a warm transfer");
    }
    // The sandbox's Case owner (Grace Hopper) has the desk phone +1 (415) 555-0100.
    if !steps
        .iter()
        .any(|s| s.contains("transfer-update") && s.contains(OWNER_PHONE_MASKED))
    {
        problems
            .push("Vapi did not forward the call to the Case owner's phone (no transfer-update)");
    }
    let call_item = items
        .iter()
        .find(|i| attr::opt_s(i, "pk") == Some(format!("call#{call}").as_str()));
    let key = call_item.and_then(|c| attr::opt_s(c, "recording_key"));
    if key.is_none() {
        problems.push("the recording was not stored in the recordings bucket");
    }
    let description = timeline::task_upserts(&log, &call)
        .last()
        .and_then(|e| serde_json::from_str::<serde_json::Value>(e["body"].as_str()?).ok())
        .and_then(|b| b["Description"].as_str().map(str::to_owned))
        .unwrap_or_default();
    if !description.contains("Transferred to:") {
        problems.push("the Task does not say who took the call");
    }
    if key.is_some_and(|k| !description.contains(k)) {
        problems.push("the Task does not link the stored recording");
    }
    println!("\nThe Task's description:\n{description}");
    if problems.is_empty() {
        println!(
            "\nhand-off complete: transferred warm to the Case owner, recording kept and linked"
        );
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
