//! Settling doubts by asking Vapi instead of a person: did a placed call's report get lost?
//!
//! (The other doubt, "was the call placed?", is `crate::jobs::placed`, asked by the dial job.)
//! A placed call stays in the sweep index until its maximum duration plus a margin. If no
//! end-of-call report has arrived by then, the sweep fetches the call (`GET /call/{id}`, Vapi
//! OpenAPI `CallController_findOne`); if it ended, its report job is created through the very
//! conditional write the webhook uses, so the Task and the follow-up still happen exactly once (a
//! late report from Vapi finds the job already there, and vice versa).

use tracing::{info, warn};

use super::context::Worker;
use crate::ids::{SalesforceEventId, VapiCallId};
use crate::salesforce::events::DialRequest;
use crate::store::{applied, attr, PutOutcome, StoreError, PK};
use crate::telemetry::{metric, Unit};
use crate::vapi::jobs::{new_report_job, report_pk, ReportPayload};

/// While a report is overdue but the call has not ended (or Vapi is unreachable), look again
/// after this long.
const REPORT_RECHECK_MS: i64 = 5 * 60_000;

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
    let key = match w.vapi_api_key().await {
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
