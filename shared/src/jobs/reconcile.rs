//! Settling doubts by asking Vapi instead of a person.
//!
//! Two things can be left uncertain after a dial, and Vapi can answer both (DESIGN.md "Vapi
//! facts"; Vapi OpenAPI `CallController_findAll` / `CallController_findOne`):
//!
//! - **Was the call placed?** A dial whose answer never came (a timeout, a gateway 5xx, a worker
//!   that died while DIALING) goes to RETRY with `verify_from` = when the dial began. Its next
//!   run lists the assistant's calls created since then (`GET /call?assistantId&createdAtGe`) and
//!   looks for our event id in each call's metadata: found → DONE with that call id; absent once
//!   the grace period has passed → dial (safe: Vapi shows no call); Vapi unreachable → ask again
//!   with backoff, and only after `VAPI_VERIFY_MAX_TRIES` does the job need a person.
//! - **Did the call's report get lost?** A placed call stays in the sweep index until its maximum
//!   duration plus a margin. If no end-of-call report has arrived by then, the sweep fetches the
//!   call (`GET /call/{id}`); if it ended, its report job is created through the very conditional
//!   write the webhook uses, so the Task and the follow-up still happen exactly once (a late
//!   report from Vapi finds the job already there, and vice versa).

use aws_sdk_dynamodb::types::AttributeValue;
use tracing::{info, warn};

use super::dial::Extra;
use super::queue::{ClaimedJob, Outcome};
use super::worker::Worker;
use crate::calls::{record_call, CallSnapshot, NewCall};
use crate::ids::{SalesforceEventId, VapiCallId};
use crate::pacing::Acquired;
use crate::salesforce::events::DialRequest;
use crate::secrets::SecretString;
use crate::store::{applied, attr, PutOutcome, StoreError, PK};
use crate::telemetry::{metric, Unit};
use crate::vapi::client::{call_is_for_event, CallQuery, VapiReadError};
use crate::vapi::config::VapiSecret;
use crate::vapi::jobs::{new_report_job, report_pk, ReportPayload};

/// Calls created this long before the dial began still count (clocks differ).
const CLOCK_SKEW_MS: i64 = 60_000;
/// `GET /call` answers at most this many calls (Vapi OpenAPI: `limit` maximum 1000).
const LIST_LIMIT: u32 = 1000;
/// While a report is overdue but the call has not ended (or Vapi is unreachable), look again
/// after this long.
const REPORT_RECHECK_MS: i64 = 5 * 60_000;

/// What asking Vapi about an uncertain dial decided.
pub(crate) enum Verdict {
    /// The job's outcome is known (the call was found, or we must wait or ask a person).
    Settled(Outcome, Extra),
    /// Vapi shows no call for the event past the grace period: dialling is safe.
    Absent,
}

async fn api_key(w: &Worker) -> Result<SecretString, String> {
    match w
        .inner
        .secrets
        .get_json::<VapiSecret>(&w.inner.config.vapi_secret_arn)
        .await
    {
        Ok(VapiSecret {
            api_key: Some(k), ..
        }) => Ok(k),
        Ok(_) => Err("the Vapi secret has no api_key".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Was the dial that began at `since` placed? See the module doc.
pub(crate) async fn verify_dial(
    w: &Worker,
    job: &ClaimedJob,
    req: &DialRequest,
    assistant_id: &str,
    since: i64,
) -> Result<Verdict, StoreError> {
    let inner = &w.inner;
    let cfg = &inner.config.reconcile;
    let now = crate::now_millis();
    let grace_end = since + cfg.verify_grace.as_millis() as i64;
    let tries = job.verify_tries + 1;
    let again = |why: String| {
        // Exponential backoff from the queue's settings, counted in verification tries.
        let next = now + inner.queue.backoff(tries).as_millis() as i64;
        if tries >= cfg.verify_max_tries {
            Outcome::NeedsReview {
                why: format!(
                    "{why}; Vapi could not be asked {tries} times whether the call for this event was placed: look for a call named \"sfvapi {}\" in Vapi before `sfvapi-admin redrive --force`",
                    req.event_id
                ),
            }
        } else {
            Outcome::Verify {
                why,
                since,
                next: next.max(now + 1_000),
            }
        }
    };
    let key = match api_key(w).await {
        Ok(k) => k,
        Err(e) => return Ok(Verdict::Settled(again(e), vec![])),
    };
    let query = CallQuery {
        assistant_id,
        created_at_ge_ms: since - CLOCK_SKEW_MS,
        limit: LIST_LIMIT,
    };
    let calls = match inner.vapi.list_calls(&key, &query).await {
        Ok(c) => c,
        Err(e @ VapiReadError::Unavailable { .. }) => {
            warn!(error = %e, "could not ask Vapi about the uncertain dial");
            return Ok(Verdict::Settled(again(e.to_string()), vec![]));
        }
        Err(e @ VapiReadError::Rejected { .. }) => {
            // A refused read (wrong key, wrong assistant) is a configuration a person must fix.
            return Ok(Verdict::Settled(
                Outcome::NeedsReview {
                    why: format!("asking Vapi whether the call was placed failed: {e}"),
                },
                vec![],
            ));
        }
    };
    let found = calls.iter().find(|c| call_is_for_event(c, &req.event_id));
    let Some(found) = found else {
        if calls.len() as u32 >= LIST_LIMIT {
            return Ok(Verdict::Settled(
                Outcome::NeedsReview {
                    why: format!(
                        "Vapi lists {LIST_LIMIT}+ calls of the assistant since the dial began, so absence cannot be proven: look for \"sfvapi {}\" in Vapi",
                        req.event_id
                    ),
                },
                vec![],
            ));
        }
        if now < grace_end {
            info!(
                grace_end,
                "no call for the event in Vapi yet: asking again after the grace period"
            );
            return Ok(Verdict::Settled(
                Outcome::Verify {
                    why: "dial outcome unknown; Vapi shows no call yet".into(),
                    since,
                    next: grace_end,
                },
                vec![],
            ));
        }
        info!("Vapi shows no call for the event: dialling is safe");
        metric("dial_verified_absent", 1.0, Unit::Count);
        return Ok(Verdict::Absent);
    };
    let Some(call_id) = found
        .get("id")
        .and_then(|v| v.as_str())
        .and_then(|s| VapiCallId::parse("id", s).ok())
    else {
        return Ok(Verdict::Settled(
            again("Vapi listed the call without a usable id".into()),
            vec![],
        ));
    };
    info!(call_id = %call_id, "the uncertain dial did place a call");
    metric("dial_verified_placed", 1.0, Unit::Count);
    // The call is live (or was): keep (or take) a pacing slot for it.
    let slot = match inner
        .slots
        .acquire(super::dial::slot_holder(job, req), now)
        .await?
    {
        Acquired::Slot(s) => {
            if let Err(e) = inner.slots.attach_call(&s, &call_id).await {
                warn!(error = %e, "call slot not tied to the call");
            }
            Some(s.pk)
        }
        Acquired::Full { .. } => None,
    };
    let snapshot: CallSnapshot = job
        .snapshot
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    // The dial went DIALING, which keeps the Contact it resolved, so one is known here; without
    // one, call# is not written and the webhook's signed context still ties the call.
    let recorded = match req.contact_id.clone() {
        Some(contact_id) => {
            let new_call = NewCall {
                call_number: super::call_number_of(&job.pk),
                call_id: call_id.clone(),
                event_id: req.event_id.clone(),
                contact_id,
                case_id: req.case_id.clone(),
                snapshot,
                created_at_ms: since,
                slot,
            };
            record_call(inner.queue.store(), &new_call, inner.config.ttl).await
        }
        None => Err(StoreError::Corrupt {
            pk: job.pk.clone(),
            detail: "no Contact recorded for the dial".into(),
        }),
    };
    if let Ok(true) = recorded {
        if let Err(e) = crate::pacing::release_for_call(inner.queue.store(), &call_id).await {
            warn!(error = %e, "call slot not released");
        }
    }
    Ok(Verdict::Settled(
        Outcome::Placed {
            call_id: call_id.as_str().to_owned(),
            detail: Some(format!(
                "the dial's answer was lost; Vapi shows call {call_id} for this event{}",
                if recorded.is_err() {
                    " (call# could not be written)"
                } else {
                    ""
                }
            )),
            check_report_at: since + inner.config.reconcile.report_after.as_millis() as i64,
        },
        vec![("dialed_at", AttributeValue::N(since.to_string()))],
    ))
}

/// The report watch of one placed call (the sweep found it due). See the module doc.
pub async fn check_report(w: &Worker, pk: &str) -> Result<(), StoreError> {
    let inner = &w.inner;
    let store = inner.queue.store();
    let Some(job) = store.get(pk).await? else {
        return Ok(());
    };
    let now = crate::now_millis();
    let call_id = attr::opt_s(&job, "call_id").and_then(|s| VapiCallId::parse("call_id", s).ok());
    let Some(call_id) = call_id.filter(|_| attr::opt_s(&job, "status") == Some("DONE")) else {
        return stop_watching(w, pk).await;
    };
    if store.get(&report_pk(&call_id)).await?.is_some() {
        return stop_watching(w, pk).await;
    }
    let key = match api_key(w).await {
        Ok(k) => k,
        Err(e) => {
            warn!(error = %e, "cannot ask Vapi for the overdue report");
            return watch_again(w, pk, now + REPORT_RECHECK_MS).await;
        }
    };
    let call = match inner.vapi.get_call(&key, &call_id).await {
        Ok(Some(c)) => c,
        Ok(None) => {
            warn!(call_id = %call_id, "Vapi does not know the placed call; no report to recover");
            return stop_watching(w, pk).await;
        }
        Err(e) => {
            warn!(call_id = %call_id, error = %e, "cannot ask Vapi for the overdue report");
            return watch_again(w, pk, now + REPORT_RECHECK_MS).await;
        }
    };
    let parsed = match crate::vapi::messages::report_from_call(&call) {
        Ok(p) => p,
        Err(e) => {
            warn!(call_id = %call_id, error = %e, "Vapi's call is unreadable as a report");
            return watch_again(w, pk, now + REPORT_RECHECK_MS).await;
        }
    };
    let Some((cref, report)) = parsed else {
        info!(call_id = %call_id, "the call has not ended yet; looking again later");
        return watch_again(w, pk, now + REPORT_RECHECK_MS).await;
    };
    // Ids from our own job win over the call's metadata (which a caller could set).
    let dial: Option<DialRequest> =
        attr::opt_s(&job, "payload").and_then(|p| serde_json::from_str(p).ok());
    let event_id = attr::opt_s(&job, "event_id")
        .and_then(|e| SalesforceEventId::parse("event_id", e).ok())
        .or(cref.event_id);
    let payload = ReportPayload::new(
        call_id.clone(),
        event_id,
        dial.as_ref()
            .and_then(|d| d.contact_id.clone())
            .or_else(|| {
                // A Contact read from the Case at dial time is kept on the job.
                attr::opt_s(&job, "contact_id")
                    .and_then(|c| crate::ids::SalesforceId::parse("contact_id", c).ok())
            })
            .or(cref.contact_id),
        dial.and_then(|d| d.case_id).or(cref.case_id),
        report,
        now,
    )
    // Only dial jobs are watched for a report: the call is one the worker placed.
    .with_direction(Some(crate::vapi::messages::CallDirection::Outbound));
    match store
        .put_if_absent(new_report_job(&payload, now, inner.config.ttl))
        .await?
    {
        PutOutcome::Created => {
            info!(call_id = %call_id, ended_reason = %payload.ended_reason, "the lost end-of-call report was recovered from Vapi");
            metric("reports_recovered", 1.0, Unit::Count);
        }
        PutOutcome::AlreadyExists => info!(call_id = %call_id, "the report arrived meanwhile"),
    }
    stop_watching(w, pk).await
}

async fn stop_watching(w: &Worker, pk: &str) -> Result<(), StoreError> {
    update_watch(
        w,
        pk,
        "REMOVE retry_shard, next_at SET report_checked_at = :at",
        crate::now_millis(),
    )
    .await
}

async fn watch_again(w: &Worker, pk: &str, next: i64) -> Result<(), StoreError> {
    update_watch(w, pk, "SET next_at = :at", next).await
}

/// One conditional write on a DONE dial job's report watch (a job changed meanwhile, e.g.
/// redriven, is left alone).
async fn update_watch(w: &Worker, pk: &str, update: &str, at: i64) -> Result<(), StoreError> {
    let store = w.inner.queue.store();
    let res = store
        .client()
        .update_item()
        .table_name(store.table())
        .key(PK, attr::s(pk))
        .update_expression(update)
        .condition_expression("#s = :done AND attribute_exists(retry_shard)")
        .expression_attribute_names("#s", "status")
        .expression_attribute_values(":done", attr::s("DONE"))
        .expression_attribute_values(":at", attr::n(at))
        .send()
        .await;
    applied(res, "UpdateItem(report watch)").map(|_| ())
}
