//! What every job handler returns besides its outcome, and the pieces of an outcome that dial,
//! reconcile, report, hand-off and opt-out share, so that no handler imports another.

use aws_sdk_dynamodb::types::AttributeValue;

use crate::queue::{ClaimedJob, Outcome};
use crate::salesforce::events::DialRequest;
use crate::salesforce::rest::RestError;

/// Attributes a handler asks to be written on the job's item with its outcome.
pub(crate) type Extra = Vec<(&'static str, AttributeValue)>;

/// A Salesforce failure as a job outcome: retryable errors come back later, the rest fail with
/// Salesforce's message.
pub(crate) fn sf_outcome(what: &str, e: &RestError) -> Outcome {
    if e.is_retryable() {
        Outcome::Retry {
            error: format!("{what}: {e}"),
            not_before: None,
        }
    } else {
        Outcome::Failed {
            error: format!("{what}: {e}"),
        }
    }
}

/// Who holds a call's pacing slot: the event (its first call), or `<event>#<n>` for call n of a
/// retry cadence.
pub(crate) fn slot_holder<'a>(job: &'a ClaimedJob, req: &'a DialRequest) -> &'a str {
    job.pk
        .strip_prefix("evt#sf#")
        .unwrap_or(req.event_id.as_str())
}
