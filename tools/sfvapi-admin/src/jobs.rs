//! Operator commands on jobs: list by status, show one event's story, redrive, sweep.

use sfvapi::jobs::queue::{JobQueue, QueueSettings, Redrive};
use sfvapi::jobs::JobStatus;
use sfvapi::store::{attr, Item, Store};

use crate::{flag, table_name};

async fn store(args: &[String]) -> Result<Store, String> {
    let table = table_name(args)?;
    let sdk = sfvapi::config::aws_sdk_config().await;
    Ok(Store::new(sfvapi::store::client(&sdk), table))
}

fn positional(args: &[String]) -> Option<&String> {
    let mut skip = false;
    args.iter().find(|a| {
        if skip {
            skip = false;
            return false;
        }
        if *a == "--table" || *a == "--status" {
            skip = true;
            return false;
        }
        !a.starts_with("--")
    })
}

fn parse_status(s: &str) -> Result<JobStatus, String> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_uppercase()))
        .map_err(|_| format!("unknown status {s:?}"))
}

fn event_pk(id: &str) -> Result<String, String> {
    if id.starts_with("evt#") {
        return Ok(id.to_owned());
    }
    let id = sfvapi::ids::SalesforceEventId::parse("eventId", id).map_err(|e| e.to_string())?;
    Ok(sfvapi::jobs::salesforce_event_pk(&id))
}

fn when(item: &Item, name: &str) -> String {
    attr::opt_n(item, name)
        .map(|ms| format!("{ms}"))
        .unwrap_or_else(|| "-".into())
}

pub async fn list(args: &[String]) -> Result<(), String> {
    let status = parse_status(&flag(args, "--status").ok_or("--status is required")?)?;
    let store = store(args).await?;
    let queue = JobQueue::new(store, QueueSettings::default());
    let items = queue.list(status).await.map_err(|e| e.to_string())?;
    println!(
        "{:<64} {:<7} {:>8} {:<14} why",
        "job", "kind", "attempts", "received_at"
    );
    for item in &items {
        let why = attr::opt_s(item, "last_error")
            .or_else(|| attr::opt_s(item, "reason"))
            .unwrap_or("");
        println!(
            "{:<64} {:<7} {:>8} {:<14} {}",
            attr::opt_s(item, "pk").unwrap_or("?"),
            attr::opt_s(item, "kind").unwrap_or("?"),
            attr::opt_n(item, "attempts").unwrap_or(0),
            when(item, "received_at"),
            why
        );
    }
    println!("{} job(s) {}", items.len(), status.as_str());
    Ok(())
}

pub async fn show(args: &[String]) -> Result<(), String> {
    let pk = event_pk(positional(args).ok_or("show needs an event id")?)?;
    let store = store(args).await?;
    let job = store
        .get(&pk)
        .await
        .map_err(|e| e.to_string())?
        .ok_or(format!("no job {pk}"))?;
    println!("job {pk}");
    for k in [
        "status",
        "kind",
        "reason",
        "last_error",
        "call_id",
        "phone_masked",
        "detail",
    ] {
        if let Some(v) = attr::opt_s(&job, k) {
            println!("  {k:<14} {v}");
        }
    }
    // The routing rule the event matched, and a Contact read from its Case at dial time.
    if let Some(rule) = attr::opt_s(&job, "payload")
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .and_then(|p| p["rule"].as_str().map(str::to_owned))
    {
        println!("  rule           {rule}");
    }
    if let Some(c) = attr::opt_s(&job, "contact_id") {
        println!("  contact        {c} (the Case's Contact)");
    }
    println!(
        "  attempts       {}",
        attr::opt_n(&job, "attempts").unwrap_or(0)
    );
    println!("  timeline (unix ms):");
    for k in [
        "received_at",
        "claimed_at",
        "contact_read_at",
        "dialing_at",
        "dialed_at",
        "finished_at",
        "redriven_at",
    ] {
        if let Some(ms) = attr::opt_n(&job, k) {
            println!("    {k:<16} {ms}");
        }
    }
    if let Some(call_id) = attr::opt_s(&job, "call_id") {
        if let Some(call) = store
            .get(&format!("call#{call_id}"))
            .await
            .map_err(|e| e.to_string())?
        {
            println!("call {call_id}");
            for k in [sfvapi::calls::CALL_STATUS, "ended_reason"] {
                if let Some(v) = attr::opt_s(&call, k) {
                    println!("  {k:<14} {v}");
                }
            }
            if let Some(cost) = call.get("cost").and_then(|c| c.as_n().ok()) {
                println!("  cost           {cost}");
            }
        }
        let report = format!("evt#vapi#{call_id}#end-of-call-report");
        if let Some(r) = store.get(&report).await.map_err(|e| e.to_string())? {
            println!(
                "report job {report}: {} {}",
                attr::opt_s(&r, "status").unwrap_or("?"),
                attr::opt_s(&r, "detail")
                    .or_else(|| attr::opt_s(&r, "last_error"))
                    .unwrap_or("")
            );
            // The rule's write-back: what Salesforce took, refused (with its words), or lacked.
            for k in ["writeback", "writeback_refused", "writeback_missing"] {
                if let Some(v) = attr::opt_s(&r, k) {
                    println!("  {k:<17} {v}");
                }
            }
        }
        if let Some(s) = store
            .get(&format!("sms#{call_id}"))
            .await
            .map_err(|e| e.to_string())?
        {
            println!(
                "follow-up: {} {}",
                attr::opt_s(&s, "status").unwrap_or("?"),
                attr::opt_s(&s, "twilio_sid").unwrap_or("")
            );
        }
    }
    calling_policy(&store, &pk, &job).await
}

/// What the calling policy decided about this event: when a waiting job calls, the calls of its
/// retry cadence, and a Contact's opt-out.
async fn calling_policy(store: &sfvapi::store::Store, pk: &str, job: &Item) -> Result<(), String> {
    if attr::opt_s(job, "status") == Some("RETRY") {
        if let Some(ms) = attr::opt_n(job, "next_at") {
            println!(
                "  next try       {} (UTC; the reason above says why, in the customer's time too)",
                sfvapi::policy::utc_text(ms)
            );
        }
    }
    // The report job's decisions about the next call and the follow-up.
    if let Some(call_id) = attr::opt_s(job, "call_id") {
        let report = format!("evt#vapi#{call_id}#end-of-call-report");
        if let Some(r) = store.get(&report).await.map_err(|e| e.to_string())? {
            for k in ["retry", "followup", "opted_out"] {
                if let Some(v) = attr::opt_s(&r, k) {
                    println!("  {k:<17} {v}");
                }
            }
        }
    }
    // Calls 2, 3 … of the event's retry cadence.
    for n in 2..=sfvapi::policy::spec::MAX_RETRY_CALLS {
        let Some(next) = store
            .get(&format!("{pk}#{n}"))
            .await
            .map_err(|e| e.to_string())?
        else {
            break;
        };
        println!(
            "call {n} of the cadence ({pk}#{n}): {} {} {}",
            attr::opt_s(&next, "status").unwrap_or("?"),
            attr::opt_s(&next, "call_id").unwrap_or(""),
            attr::opt_s(&next, "reason")
                .or_else(|| attr::opt_s(&next, "last_error"))
                .unwrap_or("")
        );
    }
    let contact = attr::opt_s(job, "payload")
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .and_then(|p| p["contactId"].as_str().map(str::to_owned))
        .or_else(|| attr::opt_s(job, "contact_id").map(str::to_owned));
    if let Some(contact) = contact {
        if let Some(o) = store
            .get(&format!("optout#contact#{contact}"))
            .await
            .map_err(|e| e.to_string())?
        {
            println!(
                "opted out: Contact {contact} on call {} at {}; no call or follow-up reaches her",
                attr::opt_s(&o, "call_id").unwrap_or("?"),
                attr::opt_n(&o, "opted_out_at")
                    .map(sfvapi::policy::utc_text)
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

pub async fn redrive(args: &[String]) -> Result<(), String> {
    let pk = event_pk(positional(args).ok_or("redrive needs an event id")?)?;
    let force = args.iter().any(|a| a == "--force");
    let queue = JobQueue::new(store(args).await?, QueueSettings::default());
    match queue.redrive(&pk, force, sfvapi::now_millis()).await.map_err(|e| e.to_string())? {
        Redrive::Requeued => {
            println!("{pk}: PENDING again; the stream hands it to the worker");
            Ok(())
        }
        Redrive::NotFound => Err(format!("no job {pk}")),
        Redrive::NeedsForce => Err(format!(
            "{pk} is NEEDS_REVIEW: its call or SMS may have happened. Check Vapi/Twilio, then pass --force"
        )),
        Redrive::NotRedrivable(s) => Err(format!("{pk} is {s}; only FAILED and NEEDS_REVIEW jobs are redriven")),
    }
}

pub async fn sweep(args: &[String]) -> Result<(), String> {
    let queue = JobQueue::new(store(args).await?, QueueSettings::default());
    let r = queue
        .sweep(sfvapi::now_millis())
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "requeued {} · rescued {} · sent to ask Vapi {} · kicked {} · reports overdue {}",
        r.requeued,
        r.rescued,
        r.verify,
        r.kicked,
        r.report_checks.len()
    );
    Ok(())
}
