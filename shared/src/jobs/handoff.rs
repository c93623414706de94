//! The `handoff` job: it leaves the owner a Task "Customer asked to speak to you" when nobody could
//! be transferred to ([`run`], queued by the webhook with `crate::vapi::transfer::queue_callback`,
//! one per call). Who takes the call is resolved by the dial job before the call is placed
//! (`crate::salesforce::owner::resolve_handoff`, kept in the `call#` snapshot).

use super::context::Worker;
use super::outcome::{sf_outcome, Extra};
use crate::ids::VapiCallId;
use crate::queue::{ClaimedJob, Outcome};
use crate::salesforce::owner::callback_task;
use crate::store::StoreError;
use crate::vapi::transfer::HandoffPayload;

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
