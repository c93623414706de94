//! The demo's story: per accepted Salesforce event, what happened and when (ms since the event was
//! accepted), rebuilt from the three records a run leaves — the table's items (`evt#sf#…`,
//! `call#…`, `evt#vapi#…`, `sms#…`, DESIGN.md), the stream as the pump saw it (job transitions),
//! and the sandbox's request log (what Salesforce, Vapi and Twilio were asked, and the server
//! messages Vapi sent). Nothing here trusts the worker's own account of itself.
//!
//! Phone numbers are shown masked (`+1******0123`).

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;
use sfvapi::ids::mask_phone;
use sfvapi::store::{attr, Item};

use crate::pump::Observed;

/// Whether a logged sandbox request is the read of Contact `id`: the one SOQL query
/// `GET …/query?q=SELECT … FROM Contact WHERE Id = '<id>'` sfvapi sends for it.
pub fn is_contact_read(entry: &Value, id: &str) -> bool {
    let is_query = entry["path"]
        .as_str()
        .is_some_and(|p| p.ends_with("/query"));
    is_query
        && entry["query"].as_str().is_some_and(|q| {
            url::form_urlencoded::parse(q.as_bytes()).any(|(k, v)| {
                k == "q" && v.contains(" FROM Contact ") && v.ends_with(&format!("Id = '{id}'"))
            })
        })
}

/// One request the demo sent to the runner.
#[derive(Debug, Clone)]
pub struct Sent {
    pub label: String,
    pub event_id: String,
    pub contact_id: String,
    pub status: u16,
    pub expect: u16,
    /// Unix ms when the answer arrived.
    pub at_ms: i64,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub at_ms: i64,
    pub what: String,
}

#[derive(Debug, Clone)]
pub struct EventStory {
    pub event_id: String,
    pub contact_id: String,
    pub accepted_at_ms: i64,
    pub status: String,
    pub call_ids: Vec<String>,
    pub steps: Vec<Step>,
}

impl EventStory {
    pub fn render(&self) -> String {
        let mut out = format!(
            "event {}  (contact {}, job {})\n",
            self.event_id, self.contact_id, self.status
        );
        for s in &self.steps {
            out.push_str(&format!(
                "  {:>+7} ms  {}\n",
                s.at_ms - self.accepted_at_ms,
                s.what
            ));
        }
        out
    }
}

/// What a run left behind.
pub struct Evidence<'a> {
    pub sent: &'a [Sent],
    pub items: &'a [Item],
    pub log: &'a [Value],
    pub tap: &'a [Observed],
}

impl<'a> Evidence<'a> {
    pub fn new(sent: &'a [Sent], items: &'a [Item], log: &'a [Value], tap: &'a [Observed]) -> Self {
        Self {
            sent,
            items,
            log,
            tap,
        }
    }
}

fn item<'a>(items: &'a [Item], pk: &str) -> Option<&'a Item> {
    items.iter().find(|i| attr::opt_s(i, "pk") == Some(pk))
}

fn json_of(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::Null)
}

/// `POST /call` requests the fake Vapi received for `event_id` (by the call's metadata).
pub fn call_requests<'a>(log: &'a [Value], event_id: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|e| {
            e["service"] == "vapi"
                && e["direction"] == "in"
                && e["method"] == "POST"
                && e["path"].as_str().map(|p| p.trim_end_matches('/')) == Some("/call")
                && json_of(e["body"].as_str().unwrap_or_default())["assistantOverrides"]["metadata"]
                    ["sfvapiEventId"]
                    == event_id
        })
        .collect()
}

/// Whether a logged request is a successful write of a Task: the create
/// (`POST /sobjects/Task`, 201) or the update by external id (`PATCH /sobjects/Task/<field>/<v>`).
fn is_task_write(e: &Value) -> bool {
    let path = e["path"].as_str().unwrap_or_default().trim_end_matches('/');
    e["service"] == "salesforce"
        && ((e["method"] == "POST" && path.ends_with("/sobjects/Task"))
            || (e["method"] == "PATCH" && path.contains("/sobjects/Task/")))
        && e["status"]
            .as_u64()
            .is_some_and(|s| (200..300).contains(&s))
}

/// Successful writes of the call's Task: its create (the body carries the call id as the external
/// id) and any update by `PATCH /sobjects/Task/<field>/<callId>`.
pub fn task_upserts<'a>(log: &'a [Value], call_id: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|e| {
            is_task_write(e)
                && (e["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with(&format!("/{call_id}")))
                    || json_of(e["body"].as_str().unwrap_or_default())
                        .as_object()
                        .is_some_and(|o| o.values().any(|v| v == call_id)))
        })
        .collect()
}

/// Twilio Messages the fake Twilio accepted (201).
pub fn sms_sent(log: &[Value]) -> Vec<&Value> {
    log.iter()
        .filter(|e| {
            e["service"] == "twilio"
                && e["method"] == "POST"
                && e["path"]
                    .as_str()
                    .is_some_and(|p| p.ends_with("/Messages.json"))
                && e["status"] == 201
        })
        .collect()
}

fn first_seen(tap: &[Observed], pk: &str) -> Vec<(String, i64)> {
    let mut seen = HashSet::new();
    tap.iter()
        .filter(|o| o.pk == pk)
        .filter_map(|o| {
            let s = o.status.clone()?;
            seen.insert(s.clone()).then_some((s, o.seen_at_ms))
        })
        .collect()
}

/// The transitions a job item records: claimed, DIALING, and how it finished.
fn job_steps(job: &Item, name: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(at) = attr::opt_n(job, "claimed_at") {
        let attempt = attr::opt_n(job, "attempts").unwrap_or(1);
        steps.push(Step {
            at_ms: at,
            what: format!("{name} claimed (attempt {attempt})"),
        });
    }
    if let Some(at) = attr::opt_n(job, "dialing_at") {
        steps.push(Step {
            at_ms: at,
            what: format!("{name} DIALING (customer snapshot written; POST /call next)"),
        });
    }
    if let Some(at) = attr::opt_n(job, "finished_at") {
        let status = job_status(job);
        steps.push(Step {
            at_ms: at,
            what: format!("{name} {status}{}", outcome_detail(job)),
        });
    }
    steps
}

fn outcome_detail(it: &Item) -> String {
    // A DONE job may still carry the error of an earlier, retried attempt: show its result.
    let keys: &[&str] = if job_status(it) == "DONE" {
        &["detail"]
    } else {
        &["reason", "last_error", "detail"]
    };
    keys.iter()
        .find_map(|k| attr::opt_s(it, k).map(|v| format!(": {v}")))
        .unwrap_or_default()
}

/// The story of every accepted event, in the order they were sent.
pub fn stories(ev: &Evidence<'_>) -> Vec<EventStory> {
    let mut done = HashSet::new();
    let mut out = Vec::new();
    for s in ev.sent.iter().filter(|s| s.status == 202) {
        if !done.insert(s.event_id.clone()) {
            continue;
        }
        let pk = format!("evt#sf#{}", s.event_id);
        let Some(job) = item(ev.items, &pk) else {
            continue;
        };
        let t0 = attr::opt_n(job, "received_at").unwrap_or(s.at_ms);
        let mut steps = vec![Step {
            at_ms: t0,
            what: format!("accepted: {} → 202 queued, {pk} PENDING", s.label),
        }];
        for d in ev
            .sent
            .iter()
            .filter(|d| d.event_id == s.event_id && d.status == 200)
        {
            steps.push(Step {
                at_ms: d.at_ms,
                what: format!("deduped: {} → 200 duplicate (no second job)", d.label),
            });
        }
        // Delivery is seen on the stream; every later step is timed by the job item itself.
        if let Some((_, at)) = first_seen(ev.tap, &pk)
            .into_iter()
            .find(|(st, _)| st == "PENDING")
        {
            steps.push(Step {
                at_ms: at,
                what: "stream: delivered to the job worker".to_owned(),
            });
        }
        steps.extend(job_steps(job, "job"));
        for e in ev.log.iter().filter(|e| {
            e["service"] == "salesforce"
                && e["method"] == "GET"
                && is_contact_read(e, &s.contact_id)
                && e["time_ms"].as_i64().unwrap_or(0) >= t0
        }) {
            steps.push(Step {
                at_ms: e["time_ms"].as_i64().unwrap_or(t0),
                what: format!(
                    "Salesforce: Contact {} read → {}",
                    s.contact_id, e["status"]
                ),
            });
        }
        let mut call_ids = Vec::new();
        for e in call_requests(ev.log, &s.event_id) {
            let body = json_of(e["body"].as_str().unwrap_or_default());
            let resp = json_of(e["response_body"].as_str().unwrap_or_default());
            let number = mask_phone(body["customer"]["number"].as_str().unwrap_or("?"));
            let at = e["time_ms"].as_i64().unwrap_or(t0);
            if e["status"] == 201 {
                let id = resp["id"].as_str().unwrap_or("?").to_owned();
                steps.push(Step {
                    at_ms: at,
                    what: format!("Vapi: call placed to {number} → 201, call {id}"),
                });
                call_ids.push(id);
            } else {
                steps.push(Step {
                    at_ms: at,
                    what: format!(
                        "Vapi: POST /call to {number} → {} (will retry)",
                        e["status"]
                    ),
                });
            }
        }
        // A call recorded by the worker but missing from the log (log trimmed) still counts.
        for it in ev.items.iter().filter(|i| {
            attr::opt_s(i, "pk").is_some_and(|p| p.starts_with("call#"))
                && attr::opt_s(i, "event_id") == Some(s.event_id.as_str())
        }) {
            if let Some(id) = attr::opt_s(it, "call_id") {
                if !call_ids.iter().any(|c| c == id) {
                    call_ids.push(id.to_owned());
                }
            }
        }
        for call in &call_ids {
            steps.extend(call_steps(ev, call, t0));
        }
        steps.sort_by_key(|s| s.at_ms);
        out.push(EventStory {
            event_id: s.event_id.clone(),
            contact_id: s.contact_id.clone(),
            accepted_at_ms: t0,
            status: job_status(job).to_owned(),
            call_ids,
            steps,
        });
    }
    out
}

fn job_status(it: &Item) -> &str {
    attr::opt_s(it, "status").unwrap_or("?")
}

/// The steps of one call: its server messages, its report job, its Task and follow-up.
pub fn call_steps(ev: &Evidence<'_>, call: &str, t0: i64) -> Vec<Step> {
    let mut steps = Vec::new();
    for e in ev
        .log
        .iter()
        .filter(|e| e["direction"] == "out" && e["call_id"] == call)
    {
        let at = e["time_ms"].as_i64().unwrap_or(t0);
        let msg = json_of(e["body"].as_str().unwrap_or_default());
        let answer = e["status"]
            .as_u64()
            .map_or("no answer".to_owned(), |s| s.to_string());
        let what = match e["message_type"].as_str().unwrap_or("?") {
            "status-update" => format!(
                "Vapi → webhook: status-update {} → {answer}",
                msg["message"]["status"].as_str().unwrap_or("?")
            ),
            "tool-calls" => format!(
                "Vapi → webhook: tool call answered → {answer}{}",
                e["check"]["detail"]
                    .as_str()
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            ),
            "end-of-call-report" => format!(
                "Vapi → webhook: end-of-call report ({}) → {answer}",
                msg["message"]["endedReason"].as_str().unwrap_or("?")
            ),
            "transfer-destination-request" => {
                let reply = json_of(e["response_body"].as_str().unwrap_or_default());
                let to = reply["destination"]["number"]
                    .as_str()
                    .map(|n| {
                        format!(
                            "transfer to {} ({})",
                            mask_phone(n),
                            reply["destination"]["transferPlan"]["mode"]
                                .as_str()
                                .unwrap_or("?")
                        )
                    })
                    .unwrap_or_else(|| "nobody to transfer to".into());
                format!("Vapi → webhook: the customer asks for a person → {answer}, {to}")
            }
            "transfer-update" => format!(
                "Vapi → webhook: transfer-update, call forwarded to {} → {answer}",
                mask_phone(
                    msg["message"]["destination"]["number"]
                        .as_str()
                        .unwrap_or("?")
                )
            ),
            other => format!("Vapi → webhook: {other} → {answer}"),
        };
        steps.push(Step { at_ms: at, what });
    }
    // The recording, as the report job left it on call#.
    if let Some(c) = item(ev.items, &format!("call#{call}")) {
        let at = attr::opt_n(c, "recording_at").unwrap_or(t0);
        if let (Some(key), Some(bucket)) = (
            attr::opt_s(c, "recording_key"),
            attr::opt_s(c, "recording_bucket"),
        ) {
            steps.push(Step {
                at_ms: at,
                what: format!(
                    "S3: recording stored s3://{bucket}/{key} ({} bytes, SSE-S3)",
                    attr::opt_n(c, "recording_bytes").unwrap_or(0)
                ),
            });
        } else if let Some(why) = attr::opt_s(c, "recording_missing") {
            steps.push(Step {
                at_ms: at,
                what: format!("recording not kept: {why}"),
            });
        }
    }
    let report_pk = format!("evt#vapi#{call}#end-of-call-report");
    if let Some(report) = item(ev.items, &report_pk) {
        steps.extend(job_steps(report, "report job"));
    }
    for e in task_upserts(ev.log, call) {
        steps.push(Step {
            at_ms: e["time_ms"].as_i64().unwrap_or(t0),
            what: if e["method"] == "POST" {
                format!("Salesforce: Task created for the call → {}", e["status"])
            } else {
                format!("Salesforce: Task updated by call id → {}", e["status"])
            },
        });
    }
    if let Some(sms) = item(ev.items, &format!("sms#{call}")) {
        let sid = attr::opt_s(sms, "twilio_sid").unwrap_or_default();
        for e in sms_sent(ev.log).into_iter().filter(|e| {
            !sid.is_empty()
                && json_of(e["response_body"].as_str().unwrap_or_default())["sid"] == sid
        }) {
            let to = url::form_urlencoded::parse(e["body"].as_str().unwrap_or_default().as_bytes())
                .find(|(k, _)| k == "To")
                .map(|(_, v)| mask_phone(&v))
                .unwrap_or_else(|| "?".into());
            steps.push(Step {
                at_ms: e["time_ms"].as_i64().unwrap_or(t0),
                what: format!("Twilio: follow-up SMS to {to} → 201 {sid}"),
            });
        }
        if sid.is_empty() {
            steps.push(Step {
                at_ms: t0,
                what: format!("SMS guard {}", attr::opt_s(sms, "status").unwrap_or("?")),
            });
        }
    }
    steps
}

/// The numbers of the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub sent: usize,
    pub accepted: usize,
    pub duplicates: usize,
    pub forged: usize,
    pub call_attempts: usize,
    pub calls: usize,
    pub tasks: usize,
    pub sms: usize,
    pub jobs: BTreeMap<String, usize>,
}

pub fn summary(ev: &Evidence<'_>) -> Summary {
    let vapi_calls: Vec<&Value> = ev
        .log
        .iter()
        .filter(|e| {
            e["service"] == "vapi"
                && e["direction"] == "in"
                && e["method"] == "POST"
                && e["path"].as_str().map(|p| p.trim_end_matches('/')) == Some("/call")
        })
        .collect();
    let mut jobs = BTreeMap::new();
    for it in ev.items {
        if attr::opt_s(it, "pk").is_some_and(|p| p.starts_with("evt#sf#")) {
            *jobs.entry(job_status(it).to_owned()).or_insert(0) += 1;
        }
    }
    Summary {
        sent: ev.sent.len(),
        accepted: ev.sent.iter().filter(|s| s.status == 202).count(),
        duplicates: ev.sent.iter().filter(|s| s.status == 200).count(),
        forged: ev.sent.iter().filter(|s| s.status == 401).count(),
        call_attempts: vapi_calls.len(),
        calls: vapi_calls.iter().filter(|e| e["status"] == 201).count(),
        tasks: ev.log.iter().filter(|e| is_task_write(e)).count(),
        sms: sms_sent(ev.log).len(),
        jobs,
    }
}

impl Summary {
    pub fn render(&self) -> String {
        let jobs = self
            .jobs
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = [
            ("events sent", self.sent.to_string()),
            ("accepted (202)", self.accepted.to_string()),
            ("duplicates rejected (200)", self.duplicates.to_string()),
            ("forged rejected (401)", self.forged.to_string()),
            (
                "calls placed (POST /call 201)",
                format!("{} of {} attempts", self.calls, self.call_attempts),
            ),
            ("Tasks upserted", self.tasks.to_string()),
            ("SMS sent", self.sms.to_string()),
            (
                "dial jobs by status",
                if jobs.is_empty() { "-".into() } else { jobs },
            ),
        ];
        let mut out =
            String::from("  ┌───────────────────────────────┬──────────────────────────┐\n");
        for (k, v) in rows {
            out.push_str(&format!("  │ {k:<29} │ {v:<24} │\n"));
        }
        out.push_str("  └───────────────────────────────┴──────────────────────────┘\n");
        out
    }
}
