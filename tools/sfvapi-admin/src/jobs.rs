//! Operator commands on jobs: list by status, show one event's story, redrive, sweep.

use sfvapi::jobs::queue::{JobQueue, QueueSettings, Redrive};
use sfvapi::jobs::reroute::{Rerouter, Summary};
use sfvapi::jobs::JobStatus;
use sfvapi::routing::{Routing, ROUTING_FILE};
use sfvapi::store::{attr, Item, Store};

use crate::{flag, say, table_name};

async fn store(args: &[String]) -> Result<Store, String> {
    let table = table_name(args)?;
    let sdk = sfvapi::config::aws_sdk_config().await;
    Ok(Store::new(sfvapi::store::client(&sdk), table))
}

/// The flags that take a value.
const VALUED: [&str; 5] = ["--table", "--status", "--routing", "--from", "--to"];

/// The arguments that are not flags or their values.
fn positionals(args: &[String]) -> Vec<&String> {
    let mut skip = false;
    args.iter()
        .filter(|a| {
            if skip {
                skip = false;
                return false;
            }
            if VALUED.contains(&a.as_str()) {
                skip = true;
                return false;
            }
            !a.starts_with("--")
        })
        .collect()
}

fn positional(args: &[String]) -> Option<&String> {
    positionals(args).into_iter().next()
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
        .map(utc)
        .unwrap_or_else(|| "-".into())
}

/// Unix milliseconds as UTC ISO-8601 with milliseconds (`2026-12-06T03:20:11.123Z`).
pub fn utc(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| format!("{ms} (unix ms)"))
}

/// `--from`/`--to`: ISO-8601 (`2026-12-06T03:00:00Z`) or unix milliseconds.
fn instant(flag_name: &str, raw: &str) -> Result<i64, String> {
    if let Ok(ms) = raw.trim().parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.timestamp_millis())
        .map_err(|e| {
            format!("{flag_name} {raw:?}: {e}; give a UTC time such as 2026-12-06T03:00:00Z, or unix ms")
        })
}

pub async fn list(args: &[String]) -> Result<String, String> {
    let mut out = String::new();
    let status = parse_status(&flag(args, "--status").ok_or("--status is required")?)?;
    let store = store(args).await?;
    let queue = JobQueue::new(store, QueueSettings::default());
    let items = queue.list(status).await.map_err(|e| e.to_string())?;
    say!(
        out,
        "{:<64} {:<7} {:>8} {:<24} why",
        "job",
        "kind",
        "attempts",
        "received_at"
    );
    for item in &items {
        let why = attr::opt_s(item, "last_error")
            .or_else(|| attr::opt_s(item, "reason"))
            .unwrap_or("");
        say!(
            out,
            "{:<64} {:<7} {:>8} {:<24} {}",
            attr::opt_s(item, "pk").unwrap_or("?"),
            attr::opt_s(item, "kind").unwrap_or("?"),
            attr::opt_n(item, "attempts").unwrap_or(0),
            when(item, "received_at"),
            why
        );
    }
    say!(out, "{} job(s) {}", items.len(), status.as_str());
    Ok(out)
}

pub async fn show(args: &[String]) -> Result<String, String> {
    let mut out = String::new();
    let pk = event_pk(positional(args).ok_or("show needs an event id")?)?;
    let store = store(args).await?;
    let job = store
        .get(&pk)
        .await
        .map_err(|e| e.to_string())?
        .ok_or(format!("no job {pk}"))?;
    say!(out, "job {pk}");
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
            say!(out, "  {k:<14} {v}");
        }
    }
    // The routing rule the event matched, and a Contact read from its Case at dial time.
    if let Some(rule) = attr::opt_s(&job, "payload")
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
        .and_then(|p| p["rule"].as_str().map(str::to_owned))
    {
        say!(out, "  rule           {rule}");
    }
    if let Some(c) = attr::opt_s(&job, "contact_id") {
        say!(out, "  contact        {c} (the Case's Contact)");
    }
    say!(
        out,
        "  attempts       {}",
        attr::opt_n(&job, "attempts").unwrap_or(0)
    );
    // UTC, and how long after the event arrived each step came.
    say!(out, "  timeline (UTC, +ms since received_at):");
    let received = attr::opt_n(&job, "received_at");
    for k in [
        "received_at",
        "claimed_at",
        "contact_read_at",
        "dialing_at",
        "dialed_at",
        "finished_at",
        "redriven_at",
        "rerouted_at",
    ] {
        if let Some(ms) = attr::opt_n(&job, k) {
            match received.filter(|_| k != "received_at") {
                Some(r) => say!(out, "    {k:<16} {}  (+{} ms)", utc(ms), ms - r),
                None => say!(out, "    {k:<16} {}", utc(ms)),
            }
        }
    }
    if let Some(call_id) = attr::opt_s(&job, "call_id") {
        if let Some(call) = store
            .get(&format!("call#{call_id}"))
            .await
            .map_err(|e| e.to_string())?
        {
            say!(out, "call {call_id}");
            for k in [sfvapi::calls::CALL_STATUS, "ended_reason"] {
                if let Some(v) = attr::opt_s(&call, k) {
                    say!(out, "  {k:<14} {v}");
                }
            }
            if let Some(cost) = call.get("cost").and_then(|c| c.as_n().ok()) {
                say!(out, "  cost           {cost}");
            }
        }
        let report = format!("evt#vapi#{call_id}#end-of-call-report");
        if let Some(r) = store.get(&report).await.map_err(|e| e.to_string())? {
            say!(
                out,
                "report job {report}: {} {}",
                attr::opt_s(&r, "status").unwrap_or("?"),
                attr::opt_s(&r, "detail")
                    .or_else(|| attr::opt_s(&r, "last_error"))
                    .unwrap_or("")
            );
            // The rule's write-back: what Salesforce took, refused (with its words), or lacked.
            for k in ["writeback", "writeback_refused", "writeback_missing"] {
                if let Some(v) = attr::opt_s(&r, k) {
                    say!(out, "  {k:<17} {v}");
                }
            }
        }
        if let Some(s) = store
            .get(&format!("sms#{call_id}"))
            .await
            .map_err(|e| e.to_string())?
        {
            say!(
                out,
                "follow-up: {} {}",
                attr::opt_s(&s, "status").unwrap_or("?"),
                attr::opt_s(&s, "twilio_sid").unwrap_or("")
            );
        }
    }
    calling_policy(&store, &pk, &job, &mut out).await?;
    Ok(out)
}

/// What the calling policy decided about this event: when a waiting job calls, the calls of its
/// retry cadence, and a Contact's opt-out.
async fn calling_policy(
    store: &sfvapi::store::Store,
    pk: &str,
    job: &Item,
    out: &mut String,
) -> Result<(), String> {
    if attr::opt_s(job, "status") == Some("RETRY") {
        if let Some(ms) = attr::opt_n(job, "next_at") {
            say!(
                out,
                "  next try       {} (UTC; the reason above says why, in the customer's time too)",
                utc(ms)
            );
        }
    }
    // The report job's decisions about the next call and the follow-up.
    if let Some(call_id) = attr::opt_s(job, "call_id") {
        let report = format!("evt#vapi#{call_id}#end-of-call-report");
        if let Some(r) = store.get(&report).await.map_err(|e| e.to_string())? {
            for k in ["retry", "followup", "opted_out"] {
                if let Some(v) = attr::opt_s(&r, k) {
                    say!(out, "  {k:<17} {v}");
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
        say!(
            out,
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
            say!(
                out,
                "opted out: Contact {contact} on call {} at {}; no call or follow-up reaches her",
                attr::opt_s(&o, "call_id").unwrap_or("?"),
                attr::opt_n(&o, "opted_out_at").map(utc).unwrap_or_default()
            );
        }
    }
    Ok(())
}

pub async fn redrive(args: &[String]) -> Result<String, String> {
    let pk = event_pk(positional(args).ok_or("redrive needs an event id")?)?;
    let force = args.iter().any(|a| a == "--force");
    let queue = JobQueue::new(store(args).await?, QueueSettings::default());
    match queue.redrive(&pk, force, sfvapi::now_millis()).await.map_err(|e| e.to_string())? {
        Redrive::Requeued => Ok(format!(
            "{pk}: PENDING again; the stream hands it to the worker\n"
        )),
        Redrive::NotFound => Err(format!("no job {pk}")),
        Redrive::NeedsForce => Err(format!(
            "{pk} is NEEDS_REVIEW: its call or SMS may have happened. Check Vapi/Twilio, then pass --force"
        )),
        Redrive::NotRedrivable(s) if s == "SKIPPED" => Err(format!("{pk} is SKIPPED; redrive takes FAILED and NEEDS_REVIEW jobs. A job SKIPPED by the routing is rerouted: sfvapi-admin reroute {pk}")),
        Redrive::NotRedrivable(s) => Err(format!("{pk} is {s}; only FAILED and NEEDS_REVIEW jobs are redriven")),
    }
}

pub async fn sweep(args: &[String]) -> Result<String, String> {
    let mut out = String::new();
    let queue = JobQueue::new(store(args).await?, QueueSettings::default());
    let r = queue
        .sweep(sfvapi::now_millis())
        .await
        .map_err(|e| e.to_string())?;
    say!(
        out,
        "requeued {} · rescued {} · sent to ask Vapi {} · kicked {} · reports overdue {}",
        r.requeued,
        r.rescued,
        r.verify,
        r.kicked,
        r.report_checks.len()
    );
    Ok(out)
}

/// `reroute <eventId>… | --from T [--to T]` `[--dry-run] [--routing FILE]`: SKIPPED jobs through
/// the current routing document, each at most once, one line per job and a count per outcome.
pub async fn reroute(args: &[String]) -> Result<String, String> {
    let mut out = String::new();
    let dry_run = args.iter().any(|a| a == "--dry-run");
    let routing_file = flag(args, "--routing").or_else(|| std::env::var(ROUTING_FILE).ok());
    let routing = Routing::from_env(&sfvapi::config::Env::new(|k: &str| {
        (k == ROUTING_FILE).then(|| routing_file.clone()).flatten()
    }))
    .map_err(|e| e.to_string())?;
    let store = store(args).await?;
    let rerouter = Rerouter {
        store: &store,
        routing: &routing,
        dry_run,
    };
    let ids = positionals(args);
    let pks: Vec<String> = match (ids.is_empty(), flag(args, "--from")) {
        (false, None) => ids
            .iter()
            .map(|id| event_pk(id))
            .collect::<Result<_, _>>()?,
        (true, Some(from)) => {
            let from = instant("--from", &from)?;
            let to = match flag(args, "--to") {
                Some(t) => instant("--to", &t)?,
                None => sfvapi::now_millis(),
            };
            if to <= from {
                return Err("--to must be after --from".into());
            }
            say!(
                out,
                "SKIPPED jobs received from {} to {}",
                utc(from),
                utc(to)
            );
            rerouter
                .skipped_between(from, to)
                .await
                .map_err(|e| e.to_string())?
        }
        _ => {
            return Err(
                "reroute takes event ids, or --from TIME [--to TIME], not both (see --help)".into(),
            )
        }
    };
    say!(
        out,
        "routing {}{}",
        routing.source_name(),
        if dry_run {
            " (dry run: nothing is written)"
        } else {
            ""
        }
    );
    let mut summary = Summary::default();
    for pk in &pks {
        let outcome = rerouter
            .reroute(pk, sfvapi::now_millis())
            .await
            .map_err(|e| e.to_string())?;
        say!(out, "{pk}: {outcome}");
        summary.add(&outcome);
    }
    say!(out, "{} job(s): {summary}", pks.len());
    Ok(out)
}
