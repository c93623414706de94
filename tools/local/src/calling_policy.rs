//! `make demo SCENARIO=calling-policy`: the calling policy's paths on the local stack.
//!
//! The worker's policy clock is set so that it is 07:59:55 in Los Angeles when the story starts
//! (production reads the real clock; only this demo and the tests move it), and the stack runs
//! with a routing document of its own (below):
//! 1. **Window** — Ada (+1 415, Los Angeles) at 07:59:55 Pacific: her job waits, saying when it
//!    will call in her time and in UTC; five seconds later the sweep hands it back and she is
//!    called.
//! 2. **Consent** — Mary has not agreed to automated calls (`Voice_Consent__c` false): SKIPPED,
//!    never dialled.
//! 3. **Retry cadence** — Charles (+44) does not answer (sandbox scenario `no-answer`): call 2 of
//!    the same event three seconds later, also unanswered, then the one follow-up SMS.
//! 4. **Cap** — a third event for Charles within the hour: the cap (2 per hour) holds it, waiting.
//! 5. **Opt-out** — Ada, called again, says "please stop calling me" (sandbox scenario
//!    `opt-out`): the assistant's `doNotCall` tool; her `DoNotCall` is set in Salesforce.
//! 6. A later event for Ada while Salesforce answers 503: SKIPPED, "opted out on call …", never
//!    dialled (the local opt-out decides without Salesforce).

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sfvapi::store::{attr, Item};

use crate::demo::{sandbox_log, scan, DemoOptions, ADA};
use crate::stack::{Stack, StackConfig};

pub const MARY: &str = "0035e00000MJackAAD";
pub const CHARLES: &str = "0035e00000LowRvAAJ";
const CHARLES_PHONE: &str = "+447700900123";

/// The scenario's routing document: the HTTP route with a policy of its own.
pub const DOCUMENT: &str = r#"version: 1
policy:
  hours: "08:00-21:00"            # in each customer's own zone
  cap: { calls: 2, per: 1h, onCap: wait }
rules:
  - id: calling-policy-demo
    when: { route: events }
    eventId: eventId
    contact: contactId
    case: caseId
    priority: priority
    reason: reason
    policy:
      consent: { field: Voice_Consent__c, values: [true] }
      retry: { on: [no-answer, busy, voicemail], after: [3s], maxCalls: 2, followUp: after-last }
"#;

/// A stack with the scenario's routing document (written to a temporary file).
pub fn stack_config(sandbox: sandbox::Config) -> Result<StackConfig, String> {
    crate::stack::with_routing(sandbox, "policy", DOCUMENT)
}

/// One step of the story: what was sent, and the job as it stood when the step was over.
pub struct Step {
    pub title: &'static str,
    pub event_id: String,
    pub status: String,
    pub reason: String,
    pub ok: bool,
    pub expect: String,
}

async fn send(runner_url: &str, event_id: &str, contact: &str) -> Result<u16, String> {
    Ok(crate::demo::send_flat_event(runner_url, event_id, contact)
        .await?
        .0)
}

/// A change of the sandbox's behaviour (`POST /_sandbox/control`).
async fn control(stack: &Stack, body: Value) -> Result<(), String> {
    let url = format!("{}/_sandbox/control", stack.vapi_url);
    let resp = reqwest::Client::new()
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("POST {url} {body}: {}", resp.status()))
    }
}

/// The sandbox's Salesforce answers the next `count` REST requests 503.
async fn salesforce_down(stack: &Stack, count: u32) -> Result<(), String> {
    control(
        stack,
        json!({"salesforce": {"fail_next": {"status": 503, "count": count}}}),
    )
    .await
}

async fn sandbox_scenario(stack: &Stack, scenario: &str) -> Result<(), String> {
    control(stack, json!({"vapi": {"scenario": scenario}})).await
}

fn item<'a>(items: &'a [Item], pk: &str) -> Option<&'a Item> {
    items.iter().find(|i| attr::opt_s(i, "pk") == Some(pk))
}

/// Poll the table until `done` says the step is over (or `timeout`).
async fn wait_for(
    stack: &Stack,
    timeout: Duration,
    done: impl Fn(&[Item]) -> bool,
) -> Result<Vec<Item>, String> {
    let until = Instant::now() + timeout;
    loop {
        let items = scan(&stack.store).await?;
        if done(&items) || Instant::now() > until {
            return Ok(items);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn status_of(items: &[Item], pk: &str) -> (String, String) {
    let i = item(items, pk);
    let text = |k: &str| {
        i.and_then(|i| attr::opt_s(i, k))
            .unwrap_or_default()
            .to_owned()
    };
    // A finished job says what it did (`detail`); a waiting or skipped one why (`reason`).
    let reason = match (text("status").as_str(), text("detail"), text("call_id")) {
        ("DONE", d, _) if !d.is_empty() => d,
        ("DONE", _, call) => format!("call {call} placed"),
        _ => text("reason"),
    };
    (text("status"), reason)
}

/// Every call's report job done (the webhook has delivered everything of the event's calls).
fn reports_done(items: &[Item], event_id: &str) -> bool {
    let calls: Vec<&str> = items
        .iter()
        .filter(|i| {
            attr::opt_s(i, "pk").is_some_and(|p| p.starts_with("call#"))
                && attr::opt_s(i, "event_id") == Some(event_id)
        })
        .filter_map(|i| attr::opt_s(i, "call_id"))
        .collect();
    !calls.is_empty()
        && calls.iter().all(|c| {
            item(items, &format!("evt#vapi#{c}#end-of-call-report"))
                .and_then(|r| attr::opt_s(r, "status"))
                == Some("DONE")
        })
}

fn step(
    title: &'static str,
    items: &[Item],
    event_id: &str,
    pk: &str,
    expect: &str,
    ok: impl Fn(&str, &str) -> bool,
) -> Step {
    let (status, reason) = status_of(items, pk);
    Step {
        title,
        event_id: event_id.to_owned(),
        ok: ok(&status, &reason),
        status,
        reason,
        expect: expect.to_owned(),
    }
}

/// The story; each step's outcome, and the sandbox's log of what Vapi, Salesforce and Twilio saw.
pub async fn drive(stack: &Stack, timeout: Duration) -> Result<(Vec<Step>, Vec<Value>), String> {
    let run = sfvapi::now_millis();
    let id = |name: &str| format!("policy-{name}-{run}");
    // 07:59:55 in Los Angeles today (on the policy's clock).
    let la = chrono_tz::America::Los_Angeles;
    let today = chrono::Utc::now().with_timezone(&la).date_naive();
    let eight =
        chrono::TimeZone::from_local_datetime(&la, &today.and_hms_opt(8, 0, 0).unwrap_or_default())
            .earliest()
            .ok_or("no 08:00 in Los Angeles today")?;
    stack.worker.set_clock(sfvapi::policy::Clock::starting_at(
        eight.with_timezone(&chrono::Utc) - chrono::Duration::seconds(5),
    ));
    let mut steps = Vec::new();

    // 1. The window.
    let e = id("window");
    let pk = format!("evt#sf#{e}");
    send(&stack.runner_url, &e, ADA).await?;
    let items = wait_for(stack, timeout, |i| status_of(i, &pk).0 == "RETRY").await?;
    steps.push(step(
        "Ada at 07:59:55 Pacific: waits for her window",
        &items,
        &e,
        &pk,
        "RETRY, calls at 08:00 PDT/PST",
        |s, r| s == "RETRY" && r.contains("calls at 08:00 P"),
    ));
    let items = wait_for(stack, timeout, |i| reports_done(i, &e)).await?;
    steps.push(step(
        "… 08:00 Pacific: called",
        &items,
        &e,
        &pk,
        "DONE, one call",
        |s, _| s == "DONE",
    ));

    // 2. Consent.
    let e = id("consent");
    let pk = format!("evt#sf#{e}");
    send(&stack.runner_url, &e, MARY).await?;
    let items = wait_for(stack, timeout, |i| status_of(i, &pk).0 == "SKIPPED").await?;
    steps.push(step(
        "Mary, who gave no consent",
        &items,
        &e,
        &pk,
        "SKIPPED, never dialled",
        |s, r| s == "SKIPPED" && r.starts_with("no consent"),
    ));

    // 3. The retry cadence.
    sandbox_scenario(stack, "no-answer").await?;
    let e = id("retry");
    let pk = format!("evt#sf#{e}");
    let second = format!("{pk}#2");
    send(&stack.runner_url, &e, CHARLES).await?;
    let items = wait_for(stack, timeout, |i| {
        status_of(i, &second).0 == "DONE"
            && reports_done(i, &e)
            && i.iter()
                .filter(|x| attr::opt_s(x, "event_id") == Some(e.as_str()))
                .filter(|x| attr::opt_s(x, "pk").is_some_and(|p| p.starts_with("call#")))
                .count()
                == 2
    })
    .await?;
    steps.push(step(
        "Charles does not answer: call 1",
        &items,
        &e,
        &pk,
        "DONE (call 1)",
        |s, _| s == "DONE",
    ));
    steps.push(step(
        "… call 2 of the same event, 3 s later",
        &items,
        &e,
        &second,
        "DONE (call 2, the last)",
        |s, _| s == "DONE",
    ));

    // 4. The cap.
    sandbox_scenario(stack, "normal").await?;
    let e = id("cap");
    let pk = format!("evt#sf#{e}");
    send(&stack.runner_url, &e, CHARLES).await?;
    let items = wait_for(stack, timeout, |i| status_of(i, &pk).0 == "RETRY").await?;
    steps.push(step(
        "a third event for Charles within the hour",
        &items,
        &e,
        &pk,
        "RETRY, cap reached (2 per 1h)",
        |s, r| s == "RETRY" && r.starts_with("cap reached: 2 call(s) per 1h"),
    ));

    // 5. The opt-out.
    sandbox_scenario(stack, "opt-out").await?;
    let e = id("optout");
    let pk = format!("evt#sf#{e}");
    let job = format!("job#optout#{ADA}");
    send(&stack.runner_url, &e, ADA).await?;
    let items = wait_for(stack, timeout, |i| {
        reports_done(i, &e) && status_of(i, &job).0 == "DONE"
    })
    .await?;
    steps.push(step(
        "Ada, called again, asks not to be called",
        &items,
        &e,
        &pk,
        "DONE (the call)",
        |s, _| s == "DONE",
    ));
    steps.push(step(
        "… her DoNotCall set in Salesforce",
        &items,
        &e,
        &job,
        "DONE",
        |s, r| s == "DONE" && r.contains("DoNotCall = true"),
    ));

    // 6. After the opt-out, with Salesforce down: the local opt-out decides.
    sandbox_scenario(stack, "normal").await?;
    salesforce_down(stack, 3).await?;
    let e = id("after");
    let pk = format!("evt#sf#{e}");
    send(&stack.runner_url, &e, ADA).await?;
    let items = wait_for(stack, timeout, |i| status_of(i, &pk).0 == "SKIPPED").await?;
    steps.push(step(
        "a later event for Ada, Salesforce down (503)",
        &items,
        &e,
        &pk,
        "SKIPPED, opted out",
        |s, r| s == "SKIPPED" && r.starts_with("opted out on call"),
    ));
    let log = sandbox_log(&stack.salesforce_url).await?;
    Ok((steps, log))
}

/// What the sandbox saw, counted: calls placed per event (in the order of the steps), SMS per
/// number, `DoNotCall` PATCHes of Ada.
pub fn counts(log: &[Value], steps: &[Step]) -> (Vec<(String, usize)>, Vec<String>, usize) {
    let mut per_event: Vec<(String, usize)> = Vec::new();
    for s in steps {
        if !per_event.iter().any(|(e, _)| *e == s.event_id) {
            let n = crate::timeline::call_requests(log, &s.event_id).len();
            per_event.push((s.event_id.clone(), n));
        }
    }
    let sms_to: Vec<String> = crate::timeline::sms_sent(log)
        .iter()
        .filter_map(|e| {
            e["body"]
                .as_str()
                .and_then(|b| b.split('&').find_map(|kv| kv.strip_prefix("To=")))
                .map(|to| to.replace("%2B", "+"))
        })
        .collect();
    let dnc = log
        .iter()
        .filter(|e| {
            e["service"] == "salesforce"
                && e["method"] == "PATCH"
                && e["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(&format!("/sobjects/Contact/{ADA}")))
                && e["body"].as_str().is_some_and(|b| b.contains("DoNotCall"))
        })
        .count();
    (per_event, sms_to, dnc)
}

/// `sfvapi-local demo` with `SCENARIO=calling-policy`: `Ok(())` only when every step went as the
/// policy says.
pub async fn run(opts: DemoOptions) -> Result<(), String> {
    let stack = Stack::start(stack_config(opts.sandbox.clone())?)
        .await
        .map_err(|e| e.to_string())?;
    let result = async {
        println!(
            "sfvapi demo, scenario calling-policy — the stack on {} (table {}), its routing document:\n\n{DOCUMENT}",
            stack.runner_url, stack.table
        );
        println!("The worker's policy clock starts at 07:59:55 in Los Angeles (production reads the real clock).\n");
        let (steps, log) = drive(&stack, opts.timeout).await?;
        for s in &steps {
            let mark = if s.ok { "ok " } else { "!! " };
            println!("{mark} {:<48} {:<8} {}", s.title, s.status, s.reason);
            if !s.ok {
                println!("    expected: {}", s.expect);
            }
        }
        let (per_event, sms_to, dnc) = counts(&log, &steps);
        let calls: Vec<usize> = per_event.iter().map(|(_, n)| *n).collect();
        let charles_sms = sms_to.iter().filter(|t| t.as_str() == CHARLES_PHONE).count();
        let masked: Vec<String> = sms_to.iter().map(|t| sfvapi::ids::mask_phone(t)).collect();
        println!(
            "\nCalls placed per step's event: {calls:?}; follow-up SMS to: {masked:?}; DoNotCall PATCHes to Salesforce: {dnc}"
        );
        // Ada's first call was answered (high value: a thank-you SMS); Charles gets one message
        // after his last unanswered call; nobody is messaged after opting out.
        let expected_calls = [1usize, 0, 2, 0, 1, 0];
        if steps.iter().all(|s| s.ok) && calls == expected_calls && charles_sms == 1 && sms_to.len() == 2 && dnc == 1 {
            println!("\ncalling policy: every path behaved as the policy says");
            Ok(())
        } else {
            Err(format!(
                "the calling policy did not behave as expected (calls per event {calls:?}, expected {expected_calls:?}; SMS to Charles {charles_sms}, expected 1, in all {}, expected 2; DoNotCall PATCHes {dnc}, expected 1)",
                sms_to.len()
            ))
        }
    }
    .await;
    stack.shutdown().await;
    result
}
