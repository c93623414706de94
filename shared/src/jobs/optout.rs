//! The `optout` job: `DoNotCall = true` on the Contact in Salesforce, for a customer who said
//! "stop calling me" during a call. Recording the opt-out and queueing this job is
//! `crate::policy::optout` (re-exported here), which the webhook and the report job both call.

use super::context::Worker;
use super::outcome::{sf_outcome, Extra};
pub use crate::policy::optout::*;
use crate::queue::{ClaimedJob, Outcome};
use crate::salesforce::rest::UpdateOutcome;
use crate::store::StoreError;

/// The `optout` job: `DoNotCall = true` on the Contact. Setting it again changes nothing, so a
/// retry is harmless; Salesforce down → RETRY (and FAILED after the attempts, for a redrive: the
/// local opt-out keeps blocking meanwhile).
pub(crate) async fn run(w: &Worker, job: &ClaimedJob) -> Result<(Outcome, Extra), StoreError> {
    let p: OptOutPayload = match job.payload_as() {
        Ok(p) => p,
        Err(unreadable) => return Ok((unreadable, vec![])),
    };
    let fields =
        serde_json::Map::from_iter([("DoNotCall".to_owned(), serde_json::Value::Bool(true))]);
    match w
        .inner
        .salesforce
        .rest
        .update_record("Contact", &p.contact_id, &fields)
        .await
    {
        Ok(UpdateOutcome::Updated) => Ok((
            Outcome::Done {
                call_id: None,
                detail: Some(format!(
                    "Contact {} DoNotCall = true (opted out on call {})",
                    p.contact_id, p.call_id
                )),
            },
            vec![],
        )),
        Ok(UpdateOutcome::Refused {
            status,
            code,
            message,
            ..
        }) => Ok((
            Outcome::Failed {
                error: format!(
                    "Salesforce refused DoNotCall on Contact {} ({status} {code}: {message}); the local opt-out still blocks every call: give the integration user edit access to Contact.DoNotCall, then `sfvapi-admin redrive`",
                    p.contact_id
                ),
            },
            vec![],
        )),
        Err(e) => Ok((sf_outcome("setting DoNotCall on the Contact", &e), vec![])),
    }
}
