//! The `call#<vapiCallId>` item: which Salesforce event, Contact and Case a Vapi call belongs to,
//! the customer snapshot the assistant's tools answer from, and the call's latest status.
//!
//! Written by the job worker right after `POST /call` succeeds (`record_call`), and by the Vapi
//! webhook as status updates arrive (`record_status`). Either may come first (a `status-update`
//! can beat the worker's write), so both are `UpdateItem`s that set only their own attributes.
//!
//! Attributes (all optional except `pk`):
//! | name | type | meaning |
//! |---|---|---|
//! | `pk` | S | `call#<vapiCallId>` |
//! | `call_id` | S | the Vapi call id |
//! | `event_id` | S | the Salesforce event (`evt#sf#<event_id>`) that placed the call |
//! | `contact_id`, `case_id` | S | Salesforce ids (15/18 chars) |
//! | `snapshot` | S | JSON of [`CallSnapshot`]: what `lookupCustomer` / `lookupCase` answer |
//! | `created_at` | N | ms, when the worker recorded the call |
//! | `call_status` | S | latest Vapi call status (`queued`, `ringing`, `in-progress`, `forwarding`, `ended`, …; at most [`MAX_STATUS_CHARS`]) |
//! | `status_at` | N | ms, Vapi's timestamp of that status (later statuses win) |
//! | `ended_reason` | S | Vapi's `endedReason`, once ended (at most [`MAX_STATUS_CHARS`]) |
//! | `transferred_to` | S | where Vapi transferred the call (`transfer-update`, masked; `vapi::transfer`) |
//!
//! Never `status`: that attribute is the job state the table's stream filter matches
//! (`status = PENDING` starts the worker), and a `call#` item is written from what Vapi (or
//! anyone holding a server secret) sends, so a forged `status-update` "PENDING" must not be able
//! to produce a stream record that looks like a job.
//! | `cost` | N | USD, written by the report job |
//! | `expires_at` | N | TTL, unix seconds |

use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use serde::{Deserialize, Serialize};

use crate::ids::{SalesforceEventId, SalesforceId, VapiCallId};
use crate::store::{attr, unavailable, Item, Store, StoreError, PK};

/// Attribute of Vapi's call status on `call#` (see the module doc for why not `status`).
pub const CALL_STATUS: &str = "call_status";
/// Longest status or ended reason stored: Vapi's values are enum strings (Vapi OpenAPI
/// `ServerMessageStatusUpdate.status`, `.endedReason`: the longest reason is 121 characters);
/// anything longer is not one of them.
pub const MAX_STATUS_CHARS: usize = 200;

/// Key of a call's item.
pub fn call_pk(id: &VapiCallId) -> String {
    format!("call#{id}")
}

/// What the assistant may know about the customer and the case, captured by the worker before
/// dialing so a tool call is answered from one GetItem. Every field is optional: an org without a
/// custom field simply leaves it out. Phone numbers are stored masked; the assistant never needs
/// the full number (Vapi already dials it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallSnapshot {
    #[serde(default)]
    pub customer: CustomerSnapshot,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<CaseSnapshot>,
    /// ms since epoch when the data was read from Salesforce.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_at: Option<i64>,
    /// Who takes the call when the customer asks for a person (the rule's `call.handoff`),
    /// resolved by the worker at dial time so Vapi's `transfer-destination-request` is answered
    /// from this item alone (`crate::vapi::transfer`). Never served to the assistant's tools
    /// (they answer `customer` and `case` only), so its numbers are kept whole: Vapi dials them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<HandoffSnapshot>,
}

/// The resolved `call.handoff` of a call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandoffSnapshot {
    /// Where the number came from: `caseOwner`, `contactOwner`, `number` or `fallback`.
    pub source: String,
    /// E.164, whole: the number Vapi dials. `None`: nobody to hand to (see `unavailable`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// The owner (a `User` `005…`, or a queue `00G…`) who gets the "asked to speak to you" Task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_id: Option<String>,
    /// The customer's number (E.164, whole), shown to the person taking the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_id: Option<String>,
    /// The rule's calling hours, when it sets them: outside them nobody is transferred.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<HandoffHours>,
    /// Why there is no number (a queue-owned Case, an owner without a phone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// A rule's `policy.hours` / `days` / `timeZone`, as the transfer checks them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandoffHours {
    /// Minutes after local midnight: open from `start` (inclusive) to `end` (exclusive).
    pub start: u32,
    pub end: u32,
    /// Monday first.
    pub days: [bool; 7],
    /// Local dates (`YYYY-MM-DD`) on which nobody is transferred (the rule's `policy.skip`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<String>,
    /// IANA zone name.
    pub time_zone: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerSnapshot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Masked (`+1******0123`), see `ids::mask_phone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_language: Option<String>,
    /// ISO date of the last interaction (seed: `Last_Contact_Date__c`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_interaction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_value: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseSnapshot {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What the worker records once Vapi has accepted a call.
#[derive(Debug, Clone)]
pub struct NewCall {
    pub call_id: VapiCallId,
    pub event_id: SalesforceEventId,
    pub contact_id: SalesforceId,
    pub case_id: Option<SalesforceId>,
    pub snapshot: CallSnapshot,
    pub created_at_ms: i64,
    /// The pacing slot the call holds (`crate::pacing`), released when the call ends.
    pub slot: Option<String>,
    /// Which call of its event this is: 1, or 2, 3 … in a retry cadence (`crate::policy::Retry`).
    pub call_number: u32,
}

/// A `call#` item as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRecord {
    pub call_id: String,
    pub event_id: Option<String>,
    pub contact_id: Option<String>,
    pub case_id: Option<String>,
    /// `None` when the item has no snapshot yet (a status update arrived first).
    pub snapshot: Option<CallSnapshot>,
    /// Vapi's latest call status (attribute `call_status`).
    pub call_status: Option<String>,
    pub ended_reason: Option<String>,
    /// Which call of its event this is (1 when the item does not say).
    pub call_number: u32,
    /// Where Vapi transferred the call (`transfer-update`, masked: `number +1******0100`).
    pub transferred_to: Option<String>,
}

impl CallRecord {
    pub fn from_item(item: &Item) -> Result<Self, StoreError> {
        let pk = attr::get_s(item, PK, PK)?;
        let snapshot = match attr::opt_s(item, "snapshot") {
            None => None,
            Some(raw) => Some(serde_json::from_str(raw).map_err(|e| StoreError::Corrupt {
                pk: pk.to_owned(),
                detail: format!("snapshot is not valid JSON: {e}"),
            })?),
        };
        let own = |name: &str| attr::opt_s(item, name).map(str::to_owned);
        Ok(Self {
            call_id: own("call_id").unwrap_or_else(|| pk.trim_start_matches("call#").to_owned()),
            event_id: own("event_id"),
            contact_id: own("contact_id"),
            case_id: own("case_id"),
            snapshot,
            call_status: own(CALL_STATUS),
            ended_reason: own("ended_reason"),
            call_number: attr::opt_n(item, "call_number")
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(1),
            transferred_to: own("transferred_to"),
        })
    }
}

/// Write the call ↔ event mapping and the snapshot. Merges into an item a status update may have
/// created already, and never touches `call_status`. Safe to repeat; refused (`Corrupt`) when the
/// item already names another event. `Ok(true)` when that status is
/// already `ended` (a short call's `ended` can beat this write; the caller then releases the
/// call's slot itself, since the webhook found no slot to release).
pub async fn record_call(store: &Store, call: &NewCall, ttl: Duration) -> Result<bool, StoreError> {
    // The snapshot holds only strings and options: serialising it cannot fail.
    let snapshot = serde_json::to_string(&call.snapshot).unwrap_or_else(|_| "{}".into());
    let expires_at = call.created_at_ms / 1000 + ttl.as_secs() as i64;
    let mut update = String::from(
        "SET call_id = :call, event_id = :evt, contact_id = :contact, #snap = :snap, \
         created_at = :created, expires_at = :exp",
    );
    let mut req = store
        .client()
        .update_item()
        .table_name(store.table())
        .key(PK, attr::s(call_pk(&call.call_id)))
        // SNAPSHOT is a DynamoDB reserved word.
        .expression_attribute_names("#snap", "snapshot")
        .expression_attribute_values(":call", attr::s(call.call_id.as_str()))
        .expression_attribute_values(":evt", attr::s(call.event_id.as_str()))
        .expression_attribute_values(":contact", attr::s(call.contact_id.as_str()))
        .expression_attribute_values(":snap", attr::s(snapshot))
        .expression_attribute_values(":created", attr::n(call.created_at_ms))
        .expression_attribute_values(":exp", attr::n(expires_at));
    if let Some(case_id) = &call.case_id {
        update.push_str(", case_id = :case");
        req = req.expression_attribute_values(":case", attr::s(case_id.as_str()));
    }
    if let Some(slot) = &call.slot {
        update.push_str(", slot = :slot");
        req = req.expression_attribute_values(":slot", attr::s(slot));
    }
    if call.call_number > 1 {
        update.push_str(", call_number = :number");
        req = req.expression_attribute_values(":number", attr::n(call.call_number));
    }
    // A call belongs to one event for good: a write naming another event (an inbound call's
    // context landing on an outbound call's id, which Vapi's unique ids make impossible unless
    // something is badly wrong) is refused rather than mixing two customers' snapshots.
    let out = match req
        .update_expression(update)
        .condition_expression("attribute_not_exists(event_id) OR event_id = :evt")
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
        .send()
        .await
    {
        Ok(out) => out,
        Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
            return Err(StoreError::Corrupt {
                pk: call_pk(&call.call_id),
                detail: "call# already belongs to another event; not overwritten".into(),
            })
        }
        Err(e) => return Err(unavailable("UpdateItem", &e)),
    };
    Ok(out
        .attributes
        .as_ref()
        .and_then(|a| attr::opt_s(a, CALL_STATUS))
        == Some("ended"))
}

/// Read a call's item (one GetItem).
pub async fn read_call(store: &Store, id: &VapiCallId) -> Result<Option<CallRecord>, StoreError> {
    store
        .get(&call_pk(id))
        .await?
        .map(|item| CallRecord::from_item(&item))
        .transpose()
}

/// Whether a status write changed the item.
#[derive(Debug, Clone, PartialEq)]
pub enum StatusWrite {
    /// The `call#` item as it is now.
    Recorded(Item),
    /// The item already holds a status with a later timestamp (messages arrive out of order).
    Superseded,
}

/// Record a call status on `call#<id>` unless a later one is already there. Creates the item when
/// the worker has not written it yet; it then expires after `ttl` unless the worker refreshes it.
pub async fn record_status(
    store: &Store,
    id: &VapiCallId,
    status: &str,
    status_at_ms: i64,
    ended_reason: Option<&str>,
    ttl: Duration,
) -> Result<StatusWrite, StoreError> {
    // Bounded here too, whatever the caller parsed: the item is read back on every tool call.
    let status = bounded(status);
    let ended_reason = ended_reason.map(bounded);
    let mut update = String::from(
        "SET #st = :st, status_at = :at, call_id = :call, \
         expires_at = if_not_exists(expires_at, :exp)",
    );
    let expires_at = crate::now_secs() + ttl.as_secs() as i64;
    let mut req = store
        .client()
        .update_item()
        .table_name(store.table())
        .key(PK, attr::s(call_pk(id)))
        .condition_expression("attribute_not_exists(status_at) OR status_at <= :at")
        .expression_attribute_names("#st", CALL_STATUS)
        .expression_attribute_values(":st", attr::s(status))
        .expression_attribute_values(":at", attr::n(status_at_ms))
        .expression_attribute_values(":call", attr::s(id.as_str()))
        .expression_attribute_values(":exp", attr::n(expires_at));
    if let Some(reason) = ended_reason {
        update.push_str(", ended_reason = :reason");
        req = req.expression_attribute_values(":reason", attr::s(reason));
    }
    match req
        .update_expression(update)
        .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
        .send()
        .await
    {
        Ok(out) => Ok(StatusWrite::Recorded(out.attributes.unwrap_or_default())),
        Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
            Ok(StatusWrite::Superseded)
        }
        Err(e) => Err(unavailable("UpdateItem", &e)),
    }
}

fn bounded(s: &str) -> &str {
    match s.char_indices().nth(MAX_STATUS_CHARS) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Record the call's cost (the report job does, once Vapi has reported it).
pub async fn record_cost(
    store: &Store,
    id: &VapiCallId,
    cost: f64,
    ttl: Duration,
) -> Result<(), StoreError> {
    // This may create the item (a call sfvapi did not place): give it an expiry too.
    let expires_at = crate::now_secs() + ttl.as_secs() as i64;
    store
        .client()
        .update_item()
        .table_name(store.table())
        .key(PK, attr::s(call_pk(id)))
        .update_expression("SET #cost = :cost, expires_at = if_not_exists(expires_at, :exp)")
        .expression_attribute_names("#cost", "cost")
        .expression_attribute_values(":cost", attr::n(cost))
        .expression_attribute_values(":exp", attr::n(expires_at))
        .send()
        .await
        .map_err(|e| unavailable("UpdateItem", &e))?;
    Ok(())
}

impl CallSnapshot {
    /// The snapshot of a Contact (and its Case) as read from Salesforce. Custom fields are read
    /// by the seed's names; an org without them just leaves those parts out.
    pub fn from_salesforce(
        contact: &crate::salesforce::rest::Contact,
        case: Option<&crate::salesforce::rest::Case>,
        reason: Option<&str>,
        high_value_revenue: f64,
        now_ms: i64,
    ) -> Self {
        let text = |field: &str| match contact.custom.get(field) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        CallSnapshot {
            customer: CustomerSnapshot {
                name: Some(contact.name.clone()).filter(|n| !n.is_empty()),
                phone: contact.best_phone().map(|p| p.masked()),
                account_status: text("Account_Status__c"),
                preferred_language: text("Preferred_Language__c"),
                last_interaction: text("Last_Contact_Date__c"),
                high_value: contact.annual_revenue.map(|r| r >= high_value_revenue),
            },
            case: case.map(|c| CaseSnapshot {
                case_id: Some(c.id.as_str().to_owned()),
                case_number: c.case_number.clone(),
                subject: c.subject.clone(),
                priority: c.priority.as_ref().map(|p| p.as_str().to_owned()),
                status: c.status.clone(),
                reason: reason.map(str::to_owned),
            }),
            captured_at: Some(now_ms),
            handoff: None,
        }
    }
}
