//! Was the call placed? Asked of Vapi when a dial's answer never came (DESIGN.md "Vapi facts";
//! Vapi OpenAPI `CallController_findAll`).
//!
//! A dial whose answer never came (a timeout, a gateway 5xx, a worker that died while DIALING)
//! goes to RETRY with `verify_from` = when the dial began. Its next run lists the assistant's
//! calls created since then (`GET /call?assistantId&createdAtGe`) and looks for our event id in
//! each call's metadata: found → DONE with that call id; absent once the grace period has passed
//! → dial (safe: Vapi shows no call); Vapi unreachable → ask again with backoff, and only after
//! `VAPI_VERIFY_MAX_TRIES` does the job need a person. The dial handler asks it; the report
//! watch (`reconcile`) is the other half of settling doubts by asking Vapi.

use aws_sdk_dynamodb::types::AttributeValue;
use tracing::{info, warn};

use super::context::Worker;
use super::outcome::Extra;
use crate::calls::{record_call, CallSnapshot, NewCall};
use crate::ids::VapiCallId;
use crate::pacing::Acquired;
use crate::queue::{ClaimedJob, Outcome};
use crate::salesforce::events::DialRequest;
use crate::store::StoreError;
use crate::telemetry::{metric, Unit};
use crate::vapi::client::{call_is_for_event, CallQuery, VapiReadError};

/// Calls created this long before the dial began still count (clocks differ).
const CLOCK_SKEW_MS: i64 = 60_000;
/// `GET /call` answers at most this many calls (Vapi OpenAPI: `limit` maximum 1000).
const LIST_LIMIT: u32 = 1000;
/// What asking Vapi about an uncertain dial decided.
pub(crate) enum Verdict {
    /// The job's outcome is known (the call was found, or we must wait or ask a person).
    Settled(Outcome, Extra),
    /// Vapi shows no call for the event past the grace period: dialling is safe.
    Absent,
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
    let key = match w.vapi_api_key().await {
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
        .acquire(super::outcome::slot_holder(job, req), now)
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
                call_number: crate::queue::item::call_number_of(&job.pk),
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
