//! Warm transfer: who takes the call when the customer asks for a person.
//!
//! The assistants carry a `transferCall` tool without destinations (Vapi OpenAPI
//! `CreateTransferCallToolDTO.destinations` is optional). When the model uses it, Vapi asks the
//! server URL where to go with a `transfer-destination-request` server message (Vapi OpenAPI
//! `ServerMessageTransferDestinationRequest`; https://docs.vapi.ai/calls/call-dynamic-transfers)
//! and dials what the answer names (`ServerMessageResponseTransferDestinationRequest`:
//! `destination`, or a `message` spoken to the customer and an `error`).
//!
//! The destination is never taken from the message: a `transfer-destination-request` is answered
//! from the call's own `call#` snapshot, where the worker put the resolved `call.handoff` of its
//! routing rule at dial time (one GetItem, no Salesforce request; "Trust nothing a caller can
//! set"). The answer is a `TransferDestinationNumber` (`type: number`, E.164 `number`, `callerId`
//! = the customer's number, so the owner sees who is calling) with a `TransferPlan` whose `mode`
//! is `warm-transfer-say-summary` (Vapi OpenAPI `TransferPlan.mode`: the person hears a summary of
//! the call, made by `summaryPlan`, before the customer is connected;
//! https://docs.vapi.ai/calls/assistant-based-warm-transfer).
//!
//! No number (no hand-off in the rule, a queue-owned Case without a fallback, an owner without a
//! phone) or outside the rule's calling hours: the answer is a `ToolMessageFailed` message (Vapi
//! OpenAPI `ToolMessageFailed`, `type: request-failed`, `content` at most 1,000 characters) the
//! assistant says, offering a call back, and the owner gets a Task "customer asked to speak to
//! you" (the `handoff` job, `jobs::handoff`).

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::calls::{HandoffHours, HandoffSnapshot};
use crate::ids::{E164Phone, SalesforceId, VapiCallId};
use crate::policy::window::Window;
use crate::queue::item::{new_job_item, JobKind, JobStatus};
use crate::store::{attr, unavailable, Item, PutOutcome, Store, StoreError, EXPIRES_AT, PK};
use crate::telemetry::{metric, Unit};
use crate::vapi::messages::TransferUpdate;

/// Vapi OpenAPI `TransferPlan.mode`: the warm mode in which the person taking the call hears a
/// summary of the conversation (from `TransferPlan.summaryPlan`) before the customer is connected.
pub const WARM_MODE: &str = "warm-transfer-say-summary";

/// What the customer hears when nobody can take the call.
pub const UNAVAILABLE_MESSAGE: &str = "I'm sorry, nobody can take your call right now. \
I've let them know you asked to speak to them, and they will call you back.";

/// What the customer hears while the person is being dialled (`TransferDestinationNumber.message`).
pub const CONNECTING_MESSAGE: &str = "Please hold while I connect you.";

pub use crate::ids::{QUEUE_PREFIX, USER_PREFIX};

/// What the webhook does with a `transfer-destination-request`.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Dial `number` (E.164, whole), a warm transfer.
    Transfer {
        number: E164Phone,
        caller_id: Option<E164Phone>,
        /// `caseOwner`, `contactOwner`, `number` or `fallback`.
        source: String,
    },
    /// Nobody to transfer to: say so, and leave the owner (when known) a callback Task.
    Declined {
        reason: String,
        owner_id: Option<SalesforceId>,
    },
}

impl Decision {
    /// Decide from the call's snapshot (`None`: the call has no `call.handoff`, or no snapshot).
    pub fn from_snapshot(handoff: Option<&HandoffSnapshot>, now: DateTime<Utc>) -> Self {
        let Some(h) = handoff else {
            return Self::Declined {
                reason: "this call's routing rule has no call.handoff".into(),
                owner_id: None,
            };
        };
        let owner_id = h
            .owner_id
            .as_deref()
            .and_then(|o| SalesforceId::parse("ownerId", o).ok());
        if let Some(hours) = &h.hours {
            match is_open(hours, now) {
                Ok(true) => {}
                Ok(false) => {
                    return Self::Declined {
                        reason: "outside the rule's calling hours".into(),
                        owner_id,
                    }
                }
                Err(e) => {
                    return Self::Declined {
                        reason: format!("the rule's hours cannot be checked: {e}"),
                        owner_id,
                    }
                }
            }
        }
        match h
            .number
            .as_deref()
            .and_then(|n| E164Phone::parse("handoff.number", n).ok())
        {
            Some(number) => Self::Transfer {
                number,
                caller_id: h
                    .caller_id
                    .as_deref()
                    .and_then(|n| E164Phone::parse("handoff.callerId", n).ok()),
                source: h.source.clone(),
            },
            None => Self::Declined {
                reason: h
                    .unavailable
                    .clone()
                    .unwrap_or_else(|| "no number to transfer to".into()),
                owner_id,
            },
        }
    }

    /// The answer to Vapi (`ServerMessageResponseTransferDestinationRequest`).
    pub fn answer(&self) -> Value {
        match self {
            Self::Transfer {
                number, caller_id, ..
            } => {
                let mut destination = json!({
                    "type": "number",
                    "number": number.expose(),
                    "message": CONNECTING_MESSAGE,
                    "description": "the person who owns the customer's case",
                    "transferPlan": {
                        "mode": WARM_MODE,
                        // Vapi OpenAPI `SummaryPlan` (`enabled`, `messages`; `{{transcript}}` is
                        // the call so far): the summary the person hears before connecting.
                        "summaryPlan": {
                            "enabled": true,
                            "messages": [
                                {"role": "system", "content": "Summarise this support call in two sentences for the colleague taking it over: who is calling, about what, and what they want now."},
                                {"role": "user", "content": "Here is the transcript:\n\n{{transcript}}\n\n"}
                            ]
                        }
                    }
                });
                if let (Some(c), Value::Object(d)) = (caller_id, &mut destination) {
                    // `TransferDestinationNumber.callerId`: the number the person sees.
                    d.insert("callerId".into(), Value::String(c.expose().to_owned()));
                }
                json!({ "destination": destination })
            }
            Self::Declined { reason, .. } => json!({
                "message": {
                    "type": "request-failed",
                    "role": "assistant",
                    "content": UNAVAILABLE_MESSAGE,
                },
                "error": crate::vapi::messages::bounded(reason, 500),
            }),
        }
    }
}

fn is_open(hours: &HandoffHours, now: DateTime<Utc>) -> Result<bool, String> {
    let tz = chrono_tz::Tz::from_str(&hours.time_zone)
        .map_err(|_| format!("{:?} is not an IANA time zone", hours.time_zone))?;
    let mut skip = Vec::with_capacity(hours.skip.len());
    for d in &hours.skip {
        skip.push(
            NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| format!("{d:?} is not a date"))?,
        );
    }
    skip.sort();
    let window = Window {
        start: hours.start,
        end: hours.end,
        days: hours.days,
        skip,
    };
    Ok(window.is_open_in(tz, now))
}

/// The `handoff` job's payload: a Task for the owner, "customer asked to speak to you".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandoffPayload {
    pub call_id: VapiCallId,
    /// The `User` (or queue) the Task is assigned to.
    pub owner_id: SalesforceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<SalesforceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<SalesforceId>,
    /// Why nobody was transferred.
    pub reason: String,
    /// What the call is about, from the snapshot (the Case's number, subject and the event's
    /// reason): the end-of-call summary comes later, on the call's own Task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// What the call is about, for the callback Task.
pub fn summary_of(snapshot: &crate::calls::CallSnapshot) -> Option<String> {
    let case = snapshot.case.as_ref()?;
    let mut parts = Vec::new();
    if let Some(n) = &case.case_number {
        parts.push(format!("Case {n}"));
    }
    if let Some(s) = &case.subject {
        parts.push(s.clone());
    }
    if let Some(r) = &case.reason {
        parts.push(format!("called about: {r}"));
    }
    (!parts.is_empty()).then(|| crate::vapi::messages::bounded(&parts.join(" — "), 2_000))
}

/// `evt#vapi#<callId>#handoff`: one callback Task per call, however often the model asks.
pub fn handoff_pk(call: &VapiCallId) -> String {
    crate::vapi::jobs::vapi_event_pk(call, "handoff")
}

/// `evt#vapi#<callId>#transfer-update#<n>`: one timeline record per `transfer-update`.
pub fn transfer_update_pk(call: &VapiCallId, at_ms: i64) -> String {
    crate::vapi::jobs::vapi_event_pk(call, &format!("transfer-update#{at_ms}"))
}

/// Answer a `transfer-destination-request` from `call#` (one GetItem). Never an error: whatever
/// fails, the customer hears that nobody can take the call rather than silence; a declined
/// transfer with a known owner queues the owner's callback Task (once per call).
pub async fn answer_request(
    store: &Store,
    call: &VapiCallId,
    now_ms: i64,
    ttl: Duration,
) -> (Value, Decision) {
    let record = match crate::calls::read_call(store, call).await {
        Ok(r) => r,
        Err(e) => {
            warn!(error = %e, "call# unreadable: transfer declined");
            let d = Decision::Declined {
                reason: "the call's record is not available right now".into(),
                owner_id: None,
            };
            return (d.answer(), d);
        }
    };
    let snapshot = record.as_ref().and_then(|r| r.snapshot.as_ref());
    let now = DateTime::<Utc>::from_timestamp_millis(now_ms).unwrap_or_else(Utc::now);
    let decision = Decision::from_snapshot(snapshot.and_then(|s| s.handoff.as_ref()), now);
    match &decision {
        Decision::Transfer { number, source, .. } => {
            info!(to = %number, source, "transfer: warm, to the rule's hand-off");
            metric("transfers", 1.0, Unit::Count);
        }
        Decision::Declined { reason, owner_id } => {
            info!(reason, "transfer declined");
            metric("transfers_declined", 1.0, Unit::Count);
            if let Some(owner) = owner_id {
                let id = |v: Option<&String>| v.and_then(|s| SalesforceId::parse("id", s).ok());
                let payload = HandoffPayload {
                    call_id: call.clone(),
                    owner_id: owner.clone(),
                    case_id: id(record.as_ref().and_then(|r| r.case_id.as_ref())),
                    contact_id: id(record.as_ref().and_then(|r| r.contact_id.as_ref())),
                    reason: reason.clone(),
                    summary: snapshot.and_then(summary_of),
                };
                match queue_callback(store, &payload, now_ms, ttl).await {
                    Ok(o) => info!(
                        duplicate = (o == PutOutcome::AlreadyExists),
                        "callback Task queued for the owner"
                    ),
                    Err(e) => warn!(error = %e, "callback Task not queued"),
                }
            }
        }
    }
    (decision.answer(), decision)
}

/// Record a `transfer-update` on the call's timeline (one item per update, deduplicated by
/// Vapi's timestamp, like a status record: `status` DONE so the stream never takes it for a job)
/// and on `call#` (`transferred_to`, masked), where the report's Task says who took the call.
pub async fn record_update(
    store: &Store,
    call: &VapiCallId,
    update: &TransferUpdate,
    at_ms: i64,
    now_ms: i64,
    ttl: Duration,
) -> Result<PutOutcome, StoreError> {
    let to = describe_destination(update);
    let item = Item::from([
        (PK.to_owned(), attr::s(transfer_update_pk(call, at_ms))),
        ("call_id".to_owned(), attr::s(call.as_str())),
        ("kind".to_owned(), attr::s("transfer-update")),
        ("status".to_owned(), attr::s(JobStatus::Done.as_str())),
        ("call_status".to_owned(), attr::s("transferred")),
        ("transferred_to".to_owned(), attr::s(&to)),
        ("status_at".to_owned(), attr::n(at_ms)),
        ("received_at".to_owned(), attr::n(now_ms)),
        (
            EXPIRES_AT.to_owned(),
            attr::n(now_ms / 1000 + ttl.as_secs() as i64),
        ),
    ]);
    let outcome = store.put_if_absent(item).await?;
    if outcome == PutOutcome::Created {
        store
            .client()
            .update_item()
            .table_name(store.table())
            .key(PK, attr::s(crate::calls::call_pk(call)))
            .update_expression(
                "SET transferred_to = :to, expires_at = if_not_exists(expires_at, :exp)",
            )
            .expression_attribute_values(":to", attr::s(&to))
            .expression_attribute_values(":exp", attr::n(now_ms / 1000 + ttl.as_secs() as i64))
            .send()
            .await
            .map_err(|e| unavailable("UpdateItem", &e))?;
    }
    Ok(outcome)
}

/// `number +1******0100` (masked), `sip`, `assistant`, or `unknown`.
pub fn describe_destination(update: &TransferUpdate) -> String {
    match (&update.destination_type, &update.destination) {
        (Some(t), Some(d)) => format!("{t} {d}"),
        (Some(t), None) => t.clone(),
        (None, Some(d)) => d.clone(),
        (None, None) => "unknown".into(),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> HandoffSnapshot {
        HandoffSnapshot {
            source: "caseOwner".into(),
            number: Some("+14155550100".into()),
            owner_id: Some("0055e000001AbCdAAK".into()),
            caller_id: Some("+14155550123".into()),
            hours: None,
            unavailable: None,
        }
    }

    fn at(rfc: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(rfc)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_owner_is_dialled_warm_with_the_customers_number() {
        let d = Decision::from_snapshot(Some(&snapshot()), at("2026-12-07T15:00:00Z"));
        let a = d.answer();
        assert_eq!(a["destination"]["type"], "number");
        assert_eq!(a["destination"]["number"], "+14155550100");
        assert_eq!(a["destination"]["callerId"], "+14155550123");
        assert_eq!(a["destination"]["transferPlan"]["mode"], WARM_MODE);
        assert!(a.get("error").is_none());
    }

    #[test]
    fn no_number_no_hand_off_or_closed_hours_decline_and_name_the_owner() {
        let mut queue = snapshot();
        queue.number = None;
        queue.owner_id = Some("00G5e000000AbCdEAK".into());
        queue.unavailable = Some("the Case is owned by a queue".into());
        let now = at("2026-12-07T15:00:00Z");
        match Decision::from_snapshot(Some(&queue), now) {
            Decision::Declined { reason, owner_id } => {
                assert!(reason.contains("queue"));
                assert_eq!(owner_id.unwrap().as_str(), "00G5e000000AbCdEAK");
            }
            d => panic!("{d:?}"),
        }
        let a = Decision::from_snapshot(None, now).answer();
        assert_eq!(a["message"]["type"], "request-failed");
        assert!(a.get("destination").is_none());

        // 09:00–17:00 Mon–Fri in New York: Monday 15:00 UTC is 10:00 there, Sunday is closed.
        let mut hours = snapshot();
        hours.hours = Some(HandoffHours {
            start: 9 * 60,
            end: 17 * 60,
            days: [true, true, true, true, true, false, false],
            skip: vec![],
            time_zone: "America/New_York".into(),
        });
        assert!(matches!(
            Decision::from_snapshot(Some(&hours), at("2026-12-07T15:00:00Z")),
            Decision::Transfer { .. }
        ));
        match Decision::from_snapshot(Some(&hours), at("2026-12-06T15:00:00Z")) {
            Decision::Declined { reason, owner_id } => {
                assert!(reason.contains("hours"), "{reason}");
                assert!(owner_id.is_some());
            }
            d => panic!("{d:?}"),
        }
        // A holiday closes the day; a zone that is not one fails closed.
        hours.hours.as_mut().unwrap().skip = vec!["2026-12-07".into()];
        assert!(matches!(
            Decision::from_snapshot(Some(&hours), at("2026-12-07T15:00:00Z")),
            Decision::Declined { .. }
        ));
        hours.hours.as_mut().unwrap().time_zone = "Mars/Olympus".into();
        assert!(matches!(
            Decision::from_snapshot(Some(&hours), at("2026-12-07T15:00:00Z")),
            Decision::Declined { .. }
        ));
    }
}
