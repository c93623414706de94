//! `call.handoff` around a call: resolved by the dial job before the call is placed (who takes
//! the call, kept in the `call#` snapshot, [`resolve`]), and the `handoff` job that leaves the
//! owner a Task "Customer asked to speak to you" when nobody could be transferred to ([`run`],
//! queued by the webhook with [`queue_callback`], one per call).

use std::time::Duration;

use super::dial::{sf_outcome, Extra};
use super::queue::{ClaimedJob, Outcome};
use super::worker::Worker;
use super::{new_job_item, JobKind};
use crate::calls::{HandoffHours, HandoffSnapshot};
use crate::ids::{E164Phone, SalesforceId, VapiCallId};
use crate::policy::Policy;
use crate::routing::{Handoff, HandoffTarget};
use crate::salesforce::owner::{callback_task, OwnerPhone};
use crate::salesforce::rest::{Case, RestError, SalesforceClient};
use crate::store::{attr, PutOutcome, Store, StoreError};
use crate::vapi::transfer::{handoff_pk, HandoffPayload};

/// Who takes the call, read from Salesforce: the owner's `User` phone (a queue has none), else
/// the fallback. A retryable Salesforce error is returned (the dial retries): a call placed
/// without its hand-off would tell a customer asking for a person that nobody is there. A refusal
/// for good (the owner's record is gone or not readable by the connection user) does not stop the
/// call: the hand-off is then "unavailable", with Salesforce's reason.
pub async fn resolve(
    rest: &SalesforceClient,
    handoff: &Handoff,
    case: Option<&Case>,
    contact: &SalesforceId,
    customer: &E164Phone,
    policy: &Policy,
) -> Result<HandoffSnapshot, RestError> {
    let unreadable = |e: RestError| -> Result<String, RestError> {
        if e.is_retryable() {
            Err(e)
        } else {
            Ok(format!("the owner could not be read: {e}"))
        }
    };
    let mut problem = None;
    let owner = match &handoff.to {
        HandoffTarget::CaseOwner => case.and_then(|c| c.owner_id.clone()),
        HandoffTarget::ContactOwner => match rest.contact_owner(contact).await {
            Ok(o) => o,
            Err(e) => {
                problem = Some(unreadable(e)?);
                None
            }
        },
        HandoffTarget::Number(_) => None,
    };
    let (number, source, unavailable) = match (&handoff.to, &owner) {
        (HandoffTarget::Number(n), _) => (Some(n.clone()), "number", None),
        (_, None) => (
            None,
            handoff.to.as_str(),
            Some(problem.unwrap_or_else(|| "the record has no owner".to_owned())),
        ),
        (_, Some(o)) => match rest.owner_phone(o).await {
            Ok(OwnerPhone::Number(p)) => (Some(p), handoff.to.as_str(), None),
            Ok(OwnerPhone::None(why)) => (None, handoff.to.as_str(), Some(why)),
            Err(e) => (None, handoff.to.as_str(), Some(unreadable(e)?)),
        },
    };
    let (number, source, unavailable) = match (number, &handoff.fallback) {
        (Some(n), _) => (Some(n), source, None),
        (None, Some(f)) => (Some(f.clone()), "fallback", unavailable),
        (None, None) => (None, source, unavailable),
    };
    Ok(HandoffSnapshot {
        source: source.to_owned(),
        number: number.map(|n| n.expose().to_owned()),
        owner_id: owner.map(|o| o.as_str().to_owned()),
        caller_id: Some(customer.expose().to_owned()),
        hours: policy.hours_set.then(|| HandoffHours {
            start: policy.window.start,
            end: policy.window.end,
            days: policy.window.days,
            skip: policy
                .window
                .skip
                .iter()
                .map(|d| d.format("%Y-%m-%d").to_string())
                .collect(),
            time_zone: policy.time_zone.name().to_owned(),
        }),
        unavailable,
    })
}

/// Queue the owner's callback Task; a second request on the same call queues nothing more.
pub async fn queue_callback(
    store: &Store,
    payload: &HandoffPayload,
    now_ms: i64,
    ttl: Duration,
) -> Result<PutOutcome, StoreError> {
    // Typed ids and a short reason: serialising cannot fail.
    let json = serde_json::to_string(payload).unwrap_or_default();
    let mut item = new_job_item(
        handoff_pk(&payload.call_id),
        JobKind::Handoff,
        json,
        now_ms,
        ttl,
    );
    item.insert("call_id".to_owned(), attr::s(payload.call_id.as_str()));
    store.put_if_absent(item).await
}

/// The `handoff` job: `POST …/sobjects/Task` for the owner. A retry after an unknown outcome may
/// create a second Task, which a person can close; a lost callback cannot be undone.
pub(crate) async fn run(w: &Worker, job: &ClaimedJob) -> Result<(Outcome, Extra), StoreError> {
    let p: HandoffPayload = match job.payload_as() {
        Ok(p) => p,
        Err(unreadable) => return Ok((unreadable, vec![])),
    };
    let mut description = describe(&p.call_id, &p.reason);
    if let Some(summary) = &p.summary {
        description.push_str("\n\n");
        description.push_str(summary);
    }
    let fields = callback_task(
        &p.owner_id,
        p.case_id.as_ref(),
        p.contact_id.as_ref(),
        &description,
    );
    match w.inner.salesforce.rest.create_task(&fields).await {
        Ok(id) => Ok((
            Outcome::Done {
                call_id: None,
                detail: Some(format!("callback Task {id} for {}", p.owner_id.as_str())),
            },
            vec![],
        )),
        Err(e) => Ok((sf_outcome("creating the callback Task", &e), vec![])),
    }
}

fn describe(call: &VapiCallId, reason: &str) -> String {
    format!(
        "During the call {call} the customer asked to speak to you, and the call could not be transferred ({reason}). Please call them back."
    )
}
