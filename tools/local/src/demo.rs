//! `sfvapi-local demo`: the whole flow, end to end, on the local stack.
//!
//! It starts everything as `serve` does (in-process), sends over real HTTP three signed Salesforce
//! events — a case escalation for Ada, the same event again, one for the DoNotCall contact Grace —
//! and a forged one, waits (bounded) until every accepted job is terminal and every placed call's
//! report job is done, then prints a timeline per event and a summary, and checks that the flow
//! really completed: one successful `POST /call` per dialable event, none for DoNotCall, one
//! Task upsert per call, SMS per the follow-up policy.

use std::time::Duration;

use serde_json::Value;
use sfvapi::samples::{flat_event, LOCAL_SIGNING_SECRET};
use sfvapi::signature::sign_salesforce_v2;
use sfvapi::store::{attr, Item, Store};

use crate::stack::{Stack, StackConfig};
use crate::timeline::{self, Evidence, Sent};

pub const ADA: &str = "0035e00000XyZ12AAF";
pub const GRACE_DO_NOT_CALL: &str = "0035e00000DnCa1AAF";
pub const CASE: &str = "5005e00000AbCdEAAV";
pub const ADA_EVENT: &str = "demo-case-escalated-5005e00000AbCdEAAV-1";
pub const GRACE_EVENT: &str = "demo-case-escalated-grace-1";
pub const FORGED_EVENT: &str = "demo-forged-1";

/// Job statuses nothing moves on from without a human or a redrive.
pub const TERMINAL: &[&str] = &["DONE", "SKIPPED", "FAILED", "NEEDS_REVIEW"];

pub struct DemoOptions {
    /// The sandbox's settings: the scenario and every other switch (`--deliver-twice`, …).
    pub sandbox: sandbox::Config,
    /// How long to wait for the flow to settle.
    pub timeout: Duration,
}

/// One request of the script.
pub struct Planned {
    pub label: &'static str,
    pub event_id: &'static str,
    pub contact_id: &'static str,
    pub secret: &'static str,
    pub expect: u16,
    /// Re-send the previous request byte for byte (a sender's retry).
    pub repeat: bool,
}

pub fn script() -> Vec<Planned> {
    vec![
        Planned {
            label: "case escalation for Ada",
            event_id: ADA_EVENT,
            contact_id: ADA,
            secret: LOCAL_SIGNING_SECRET,
            expect: 202,
            repeat: false,
        },
        Planned {
            label: "same event again",
            event_id: ADA_EVENT,
            contact_id: ADA,
            secret: LOCAL_SIGNING_SECRET,
            expect: 200,
            repeat: true,
        },
        Planned {
            label: "case escalation for Grace (DoNotCall)",
            event_id: GRACE_EVENT,
            contact_id: GRACE_DO_NOT_CALL,
            secret: LOCAL_SIGNING_SECRET,
            expect: 202,
            repeat: false,
        },
        Planned {
            label: "forged signature",
            event_id: FORGED_EVENT,
            contact_id: ADA,
            secret: "not-the-secret",
            expect: 401,
            repeat: false,
        },
    ]
}

/// Send the script to `runner_url` over HTTP; every answer is recorded.
pub async fn send_script(runner_url: &str) -> Result<Vec<Sent>, String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("{runner_url}/salesforce/events");
    let mut sent = Vec::new();
    let mut last: Option<(String, String, String)> = None;
    for p in script() {
        let (body, ts, sig) = match (&last, p.repeat) {
            (Some(prev), true) => prev.clone(),
            _ => {
                let body = flat_event(p.event_id, p.contact_id);
                let (ts, sig) =
                    sign_salesforce_v2(p.secret.as_bytes(), body.as_bytes(), sfvapi::now_secs());
                (body, ts, sig)
            }
        };
        last = Some((body.clone(), ts.clone(), sig.clone()));
        let (status, text) = post_signed(&http, &url, body, &ts, &sig).await?;
        sent.push(Sent {
            label: p.label.to_owned(),
            event_id: p.event_id.to_owned(),
            contact_id: p.contact_id.to_owned(),
            status,
            expect: p.expect,
            at_ms: sfvapi::now_millis(),
            body: text,
        });
    }
    Ok(sent)
}

/// `POST /salesforce/events` with a body signed as Salesforce's sender signs it (scheme v2):
/// the status and the answer's text.
pub async fn post_signed(
    http: &reqwest::Client,
    url: &str,
    body: String,
    ts: &str,
    sig: &str,
) -> Result<(u16, String), String> {
    let resp = http
        .post(url)
        .header("content-type", "application/json")
        .header("x-sfvapi-timestamp", ts)
        .header("x-sfvapi-signature", sig)
        .body(body)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {}", sfvapi::secrets::error_chain(&e)))?;
    let status = resp.status().as_u16();
    Ok((status, resp.text().await.unwrap_or_default()))
}

/// Send Ada's case escalation (signed like Salesforce's sender) as one event of a story: its
/// answer, to be shown and checked on the story's timeline.
pub async fn escalate_ada(runner_url: &str, label: &str) -> Result<Sent, String> {
    let (status, body) = send_flat_event(runner_url, ADA_EVENT, ADA).await?;
    Ok(Sent {
        label: label.into(),
        event_id: ADA_EVENT.into(),
        contact_id: ADA.into(),
        status,
        expect: 202,
        at_ms: sfvapi::now_millis(),
        body,
    })
}

/// Ada's kind of event (`samples::flat_event`) for `contact`, signed with the local secret now.
pub async fn send_flat_event(
    runner_url: &str,
    event_id: &str,
    contact: &str,
) -> Result<(u16, String), String> {
    let body = flat_event(event_id, contact);
    let (ts, sig) = sign_salesforce_v2(
        sfvapi::samples::LOCAL_SIGNING_SECRET.as_bytes(),
        body.as_bytes(),
        sfvapi::now_secs(),
    );
    let url = format!("{runner_url}/salesforce/events");
    post_signed(&reqwest::Client::new(), &url, body, &ts, &sig).await
}

/// Run a finished job once more (a redelivery after its outcome was lost, an operator's
/// redrive): PENDING again, so the stream hands it to the worker.
pub async fn run_job_again(store: &Store, pk: &str) -> Result<(), String> {
    store
        .client()
        .update_item()
        .table_name(store.table())
        .key("pk", attr::s(pk))
        .update_expression("SET #s = :p REMOVE claim_token")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":p", attr::s("PENDING"))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("requeueing {pk}: {}", sfvapi::secrets::error_chain(&e)))
}

/// Every item of the table (a local table is small).
pub async fn scan(store: &Store) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = store
            .client()
            .scan()
            .table_name(store.table())
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| sfvapi::secrets::error_chain(&e))?;
        items.extend(out.items().iter().cloned());
        match out.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => break,
        }
    }
    Ok(items)
}

/// The sandbox's request log.
pub async fn sandbox_log(sandbox_url: &str) -> Result<Vec<Value>, String> {
    let url = format!("{sandbox_url}/_sandbox/requests");
    reqwest::get(&url)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?
        .json::<Vec<Value>>()
        .await
        .map_err(|e| format!("GET {url}: {e}"))
}

/// `METHOD path` of each request other than a read (GET) the sandbox logged for `service`
/// (`salesforce`, `vapi`, `twilio`) after sequence number `since`: what a command changed.
pub async fn sandbox_writes(
    sandbox_url: &str,
    service: &str,
    since: u64,
) -> Result<Vec<String>, String> {
    let url = format!("{sandbox_url}/_sandbox/requests?service={service}&since={since}");
    let log: Vec<Value> = reqwest::get(&url)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?
        .json()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    Ok(log
        .iter()
        .filter(|e| e["method"] != "GET")
        .map(|e| {
            format!(
                "{} {}",
                e["method"].as_str().unwrap_or("?"),
                e["path"].as_str().unwrap_or("?")
            )
        })
        .collect())
}

/// The sandbox log's last sequence number (0 when empty).
pub async fn sandbox_last_seq(sandbox_url: &str) -> Result<u64, String> {
    Ok(sandbox_log(sandbox_url)
        .await?
        .iter()
        .filter_map(|e| e["seq"].as_u64())
        .max()
        .unwrap_or(0))
}

/// Whether the flow is over: every accepted job terminal, and for every placed call the report
/// job terminal (the `end-of-call-report` is Vapi's last message, after `status-update` ended)
/// and the `ended` status recorded, so nothing is still on its way to the runner when the stack
/// stops.
pub fn settled(items: &[Item], accepted: &[&str]) -> bool {
    let find = |pk: &str| items.iter().find(|i| attr::opt_s(i, "pk") == Some(pk));
    let terminal = |pk: &str| {
        find(pk)
            .and_then(|i| attr::opt_s(i, "status"))
            .is_some_and(|s| TERMINAL.contains(&s))
    };
    accepted.iter().all(|id| {
        let job = format!("evt#sf#{id}");
        if !terminal(&job) {
            return false;
        }
        // The job's own call id, and any `call#` recorded for the event (a NEEDS_REVIEW dial
        // may have placed a call the job could not note).
        let job_call = find(&job).and_then(|j| attr::opt_s(j, "call_id"));
        let recorded = items.iter().filter_map(|i| {
            let is_call = attr::opt_s(i, "pk").is_some_and(|p| p.starts_with("call#"))
                && attr::opt_s(i, "event_id") == Some(id);
            is_call.then(|| attr::opt_s(i, "call_id")).flatten()
        });
        job_call.into_iter().chain(recorded).all(|cid| {
            // The `ended` status as recorded on `call#` itself: the webhook writes its dedup
            // record first, so that record alone can be seen before `call#` is updated.
            terminal(&format!("evt#vapi#{cid}#end-of-call-report"))
                && find(&format!("call#{cid}"))
                    .and_then(|c| attr::opt_s(c, sfvapi::calls::CALL_STATUS))
                    == Some("ended")
        })
    })
}

/// Whether a follow-up SMS is due for a call that ended with `ended_reason`: per `policy` (the
/// stack's `FOLLOWUP_POLICY`), or because the customer is high value (the stack sets
/// `FOLLOWUP_HIGH_VALUE=true`).
pub fn sms_due(policy: &str, ended_reason: &str, high_value: bool) -> bool {
    high_value
        || match policy {
            "always" => true,
            "never" => false,
            _ => matches!(
                ended_reason,
                "customer-did-not-answer" | "customer-busy" | "voicemail"
            ),
        }
}

/// The demo's checks on a finished run; each failure is one readable line.
pub fn check_flow(ev: &Evidence<'_>, sms_policy: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for s in ev.sent {
        if s.status != s.expect {
            problems.push(format!(
                "{}: expected {}, got {} {}",
                s.label, s.expect, s.status, s.body
            ));
        }
    }
    let ok_calls = |id: &str| {
        timeline::call_requests(ev.log, id)
            .into_iter()
            .filter(|e| e["status"] == 201)
            .count()
    };
    let ada = ok_calls(ADA_EVENT);
    if ada != 1 {
        problems.push(format!("expected 1 POST /call for {ADA_EVENT}, saw {ada}"));
    }
    let grace = timeline::call_requests(ev.log, GRACE_EVENT).len();
    if grace != 0 {
        problems.push(format!(
            "the DoNotCall contact was dialed: {grace} POST /call for {GRACE_EVENT}"
        ));
    }
    let mut due = 0;
    for story in timeline::stories(ev) {
        for call in &story.call_ids {
            let tasks = timeline::task_upserts(ev.log, call).len();
            if tasks != 1 {
                problems.push(format!(
                    "expected 1 Task upsert for call {call}, saw {tasks}"
                ));
            }
            let call_item = ev
                .items
                .iter()
                .find(|i| attr::opt_s(i, "pk") == Some(&format!("call#{call}")));
            let reason = call_item
                .and_then(|i| attr::opt_s(i, "ended_reason"))
                .unwrap_or_default();
            let high_value = call_item
                .and_then(|i| attr::opt_s(i, "snapshot"))
                .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
                .is_some_and(|s| s["customer"]["highValue"] == true);
            if sms_due(sms_policy, reason, high_value) {
                due += 1;
            }
        }
    }
    let sms = timeline::sms_sent(ev.log).len();
    if sms != due {
        problems.push(format!(
            "SMS policy {sms_policy}: expected {due} follow-up SMS, saw {sms}"
        ));
    }
    problems
}

/// Run the demo; `Ok(())` only when the flow really completed.
pub async fn run(opts: DemoOptions) -> Result<(), String> {
    let config = StackConfig {
        sandbox: opts.sandbox.clone(),
        ..StackConfig::default()
    };
    let stack = Stack::start(config).await.map_err(|e| e.to_string())?;
    let result = drive(&stack, &opts).await;
    stack.shutdown().await;
    result
}

async fn drive(stack: &Stack, opts: &DemoOptions) -> Result<(), String> {
    println!(
        "sfvapi demo — real handlers on {} (table {}), sandbox Salesforce {} / Vapi {} / Twilio {}, scenario {:?}\n",
        stack.runner_url, stack.table, stack.salesforce_url, stack.vapi_url, stack.twilio_url, stack.scenario
    );
    // First the deployment's checklist, as an operator runs it after `sam deploy`.
    let checklist = stack.doctor().await;
    println!(
        "sfvapi-admin doctor --webhook-url {}/vapi/webhook\n{}",
        stack.runner_url,
        checklist.to_text()
    );
    if !checklist.ok() {
        return Err(format!(
            "doctor: {} check(s) failed on the local stack (above); the demo would not be meaningful",
            checklist.failed().len()
        ));
    }
    let sent = send_script(&stack.runner_url).await?;
    for s in &sent {
        let mark = if s.status == s.expect { "ok " } else { "!! " };
        println!(
            "{mark} {:<40} POST /salesforce/events → {} {}",
            s.label, s.status, s.body
        );
    }
    let accepted: Vec<&str> = {
        let mut v: Vec<&str> = sent
            .iter()
            .filter(|s| s.status == 202)
            .map(|s| s.event_id.as_str())
            .collect();
        v.dedup();
        v
    };

    let started = std::time::Instant::now();
    let (items, settled_ok) = loop {
        let items = scan(&stack.store).await?;
        if settled(&items, &accepted) {
            break (items, true);
        }
        if started.elapsed() > opts.timeout {
            break (items, false);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let log = sandbox_log(&stack.vapi_url).await?;
    let tap = stack.pump.tap.all();
    let ev = Evidence::new(&sent, &items, &log, &tap);
    for e in log
        .iter()
        .filter(|e| e["service"] == "salesforce" && e["path"] == "/services/oauth2/token")
    {
        println!(
            "\ntoken refresher (on start): POST /services/oauth2/token → {}",
            e["status"]
        );
    }
    println!("\nTimeline (ms since the event was accepted):");
    for story in timeline::stories(&ev) {
        print!("{}", story.render());
    }
    println!("\nSummary:");
    print!("{}", timeline::summary(&ev).render());
    println!(
        "\nThe same story in CloudWatch: saved query <stack>/{} (Logs Insights), for {ADA_EVENT}:\n",
        sfvapi::telemetry::FOLLOW_EVENT.name
    );
    println!("{}", sfvapi::telemetry::follow_event_query(ADA_EVENT));

    if !settled_ok {
        return Err(format!(
            "the flow did not settle within {} s (jobs not terminal or reports not done)",
            opts.timeout.as_secs()
        ));
    }
    let policy = stack
        .env
        .get("FOLLOWUP_POLICY")
        .cloned()
        .unwrap_or_else(|| "not-reached".into());
    let problems = check_flow(&ev, &policy);
    if problems.is_empty() {
        println!("\nflow complete: every check passed");
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}
