//! A customer's "stop calling me", said during a call: to the assistant's `doNotCall` tool, or
//! found by the end-of-call analysis (`analysis.structuredData.doNotCall: true`).
//!
//! Either way the same two steps, both idempotent: the local opt-out (`optout#` items, through
//! [`super::ledger::record_opt_out`]) blocks every later dial and follow-up to that Contact and
//! number from that moment, whatever Salesforce says or whether it answers; and one `optout` job
//! per Contact sets the Contact's `DoNotCall` in Salesforce, retried until Salesforce takes it
//! (`crate::jobs::optout::run`). Jobs of the Contact still waiting (a window, a cap, a retry cadence)
//! end SKIPPED "opted out on call <id>" when they next run, at the ledger.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{E164Phone, SalesforceId};
use crate::queue::item::{new_job_item, JobKind};
use crate::store::{attr, Item, PutOutcome, Store, StoreError};
use crate::telemetry::{metric, Unit};

/// The assistant's tool (see `events/assistant.json`).
pub const DO_NOT_CALL_TOOL: &str = "doNotCall";
/// The `analysis.structuredData` field that says the customer asked not to be called again.
pub const STRUCTURED_DATA_FIELD: &str = "doNotCall";
/// What the assistant tells the customer (the tool's answer).
pub const CONFIRMATION: &str =
    "Understood. We will not call this number again. The customer has been removed from our call list.";

/// The `optout` job: which Contact, and the call on which she said so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptOutPayload {
    pub contact_id: SalesforceId,
    pub call_id: String,
    /// `tool` or `analysis`.
    pub source: String,
}

/// One job per Contact: a second "no" (the tool and then the analysis) queues nothing more.
pub fn job_pk(contact: &SalesforceId) -> String {
    format!("job#optout#{contact}")
}

/// Record the opt-out and queue the Salesforce update. `Ok(true)`: this was the Contact's first.
pub async fn opt_out(
    store: &Store,
    contact: &SalesforceId,
    phone: Option<&E164Phone>,
    call_id: &str,
    source: &str,
    now_ms: i64,
    ttl: Duration,
) -> Result<bool, StoreError> {
    crate::policy::ledger::record_opt_out(store, contact, phone, call_id, now_ms).await?;
    let payload = OptOutPayload {
        contact_id: contact.clone(),
        call_id: call_id.to_owned(),
        source: source.to_owned(),
    };
    // Only typed ids and short strings: serialising cannot fail.
    let json = serde_json::to_string(&payload).unwrap_or_default();
    let mut item: Item = new_job_item(job_pk(contact), JobKind::OptOut, json, now_ms, ttl);
    item.insert("call_id".to_owned(), attr::s(call_id));
    let first = store.put_if_absent(item).await? == PutOutcome::Created;
    if first {
        metric("policy_opt_outs", 1.0, Unit::Count);
    }
    Ok(first)
}

/// Whether an end-of-call analysis says the customer asked not to be called again.
pub fn asked_in_analysis(structured: Option<&serde_json::Map<String, serde_json::Value>>) -> bool {
    structured
        .and_then(|m| m.get(STRUCTURED_DATA_FIELD))
        .is_some_and(|v| v.as_bool() == Some(true) || v.as_str() == Some("true"))
}
