//! The assistant's built-in tools and how their answers are shaped and cached.
//!
//! Tools (define them on the assistant, see docs/connect-vapi.md):
//! - `lookupCustomer` / `lookupCase`: answered from the `call#` snapshot the worker captured before
//!   dialing (one read), or, when there is none, from a [`LiveLookup`] with a deadline.
//! - `logNote {note}`: enqueues a durable `note` job for the call's Case.
//! - `doNotCall {}`: the customer asked not to be called again: the local opt-out at once, and a
//!   durable `optout` job that sets the Contact's `DoNotCall` (`crate::jobs::optout`).
//!
//! Vapi expects `{"results":[{"name","toolCallId","result": "<string>"}|{"name","toolCallId",
//! "error": "…"}]}`, one entry per tool call, `result` a string (objects JSON-encoded) — Vapi
//! OpenAPI `ServerMessageResponseToolCalls` / `ToolCallResult` (`name` and `toolCallId` required),
//! and https://docs.vapi.ai/tools-calling.
//! Answers are cached under `tool#<toolCallId>` so a retried tool call replays the same answer.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::calls::{CallRecord, CallSnapshot};
use crate::ids::{SalesforceId, VapiCallId};
use crate::store::{attr, Item, EXPIRES_AT, PK};
use crate::vapi::messages::ToolCallId;

pub const LOOKUP_CUSTOMER: &str = "lookupCustomer";
pub const LOOKUP_CASE: &str = "lookupCase";
pub const LOG_NOTE: &str = "logNote";
pub const DO_NOT_CALL: &str = crate::policy::optout::DO_NOT_CALL_TOOL;

/// What the caller hears about when there is no customer context at all.
pub const NO_CONTEXT: &str = "no customer context for this call";

/// The tools sfvapi answers itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tool {
    LookupCustomer,
    LookupCase,
    LogNote,
    /// The customer asked not to be called again (`crate::jobs::optout`).
    DoNotCall,
    Unknown(String),
}

impl Tool {
    pub fn parse(name: &str) -> Self {
        match name {
            LOOKUP_CUSTOMER => Self::LookupCustomer,
            LOOKUP_CASE => Self::LookupCase,
            LOG_NOTE => Self::LogNote,
            DO_NOT_CALL => Self::DoNotCall,
            other => Self::Unknown(other.to_owned()),
        }
    }
    /// Whether the tool answers from the customer snapshot.
    pub fn needs_snapshot(&self) -> bool {
        matches!(self, Self::LookupCustomer | Self::LookupCase)
    }
}

/// One tool call's answer: serialises as `{"result": …}` or `{"error": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolOutcome {
    Result(String),
    Error(String),
}

impl ToolOutcome {
    /// A JSON value as Vapi wants it: a string, objects encoded as JSON text.
    pub fn json(v: &impl Serialize) -> Self {
        match serde_json::to_string(v) {
            Ok(s) => Self::Result(s),
            Err(_) => Self::Error("the answer could not be encoded".into()),
        }
    }

    /// `{"name": …, "toolCallId": …, "result"|"error": …}` (Vapi OpenAPI `ToolCallResult`:
    /// `name` and `toolCallId` are required).
    pub fn entry(&self, tool_call_id: &ToolCallId, tool_name: &str) -> Value {
        let id = tool_call_id.as_str();
        match self {
            Self::Result(r) => json!({"name": tool_name, "toolCallId": id, "result": r}),
            Self::Error(e) => json!({"name": tool_name, "toolCallId": id, "error": e}),
        }
    }

    /// The legacy `function-call` answer: `{"result": …}` (or `{"error": …}`).
    pub fn legacy(&self) -> Value {
        match self {
            Self::Result(r) => json!({"result": r}),
            Self::Error(e) => json!({"error": e}),
        }
    }
}

/// Answer a snapshot tool. Only this call's own Case can be read: a caller talking the model into
/// "look up case 500…" must not get another customer's data.
pub fn answer_from_snapshot(
    tool: &Tool,
    snapshot: &CallSnapshot,
    requested_case: Option<&str>,
) -> ToolOutcome {
    match tool {
        Tool::LookupCustomer => ToolOutcome::json(&snapshot.customer),
        Tool::LookupCase => {
            let Some(case) = &snapshot.case else {
                return ToolOutcome::Error("no case is linked to this call".into());
            };
            if let (Some(req), Some(own)) = (requested_case, case.case_id.as_deref()) {
                if !same_salesforce_id(req, own) {
                    return ToolOutcome::Error(
                        "only the case this call is about can be looked up".into(),
                    );
                }
            }
            ToolOutcome::json(case)
        }
        Tool::LogNote | Tool::DoNotCall | Tool::Unknown(_) => {
            ToolOutcome::Error("not a lookup tool".into())
        }
    }
}

/// 15- and 18-char forms of one id are the same record.
fn same_salesforce_id(a: &str, b: &str) -> bool {
    let short = |s: &str| s.trim().get(..15).map(str::to_owned);
    a.trim() == b.trim() || (short(a).is_some() && short(a) == short(b))
}

/// What a live lookup gets to go on: the call and whatever ids the call's metadata carried.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveLookupRequest {
    pub call_id: VapiCallId,
    pub event_id: Option<String>,
    pub contact_id: Option<SalesforceId>,
    pub case_id: Option<SalesforceId>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LiveLookupError {
    /// Salesforce has no such record, or the request names none: nothing to answer with.
    #[error("no such customer or case: {0}")]
    NotFound(String),
    /// Salesforce did not answer in time or failed; a later tool call may succeed.
    #[error("Salesforce is unavailable: {0}")]
    Unavailable(String),
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Extension point: a live Salesforce read used when a call has no snapshot (the worker had not
/// written `call#` yet, or the call was not placed by sfvapi). The webhook applies the deadline
/// (`VAPI_LIVE_LOOKUP_TIMEOUT_MS`); an implementation should still set its own HTTP timeouts.
/// The Salesforce REST client implements this; without one, such tool calls get [`NO_CONTEXT`].
pub trait LiveLookup: Send + Sync {
    fn lookup<'a>(
        &'a self,
        req: &'a LiveLookupRequest,
    ) -> BoxFuture<'a, Result<CallSnapshot, LiveLookupError>>;
}

/// Key of a cached tool answer.
/// The cache key of one tool call's answer: the call and the tool call together, so an answer
/// is only ever replayed to the call it was computed for (tool call ids are chosen by the model
/// and are not secret: another call could send the same one).
pub fn tool_pk(call: Option<&VapiCallId>, id: &ToolCallId) -> String {
    match call {
        Some(c) => format!("tool#{}#{id}", c.as_str()),
        None => format!("tool#-#{id}"),
    }
}

/// The cached answer of one tool call.
pub fn answer_item(
    id: &ToolCallId,
    call: Option<&VapiCallId>,
    tool: &str,
    outcome: &ToolOutcome,
    now_ms: i64,
    ttl: Duration,
) -> Item {
    let mut item = Item::from([
        (PK.to_owned(), attr::s(tool_pk(call, id))),
        ("tool".to_owned(), attr::s(tool)),
        (
            "answer".to_owned(),
            attr::s(serde_json::to_string(outcome).unwrap_or_default()),
        ),
        ("created_at".to_owned(), attr::n(now_ms)),
        (
            EXPIRES_AT.to_owned(),
            attr::n(now_ms / 1000 + ttl.as_secs() as i64),
        ),
    ]);
    if let Some(c) = call {
        item.insert("call_id".to_owned(), attr::s(c.as_str()));
    }
    item
}

/// The answer stored in a cache item, if it was stored for this very call and tool; `None` if
/// it was not, or the item is unreadable (then it is recomputed).
pub fn cached_outcome(item: &Item, call: Option<&VapiCallId>, tool: &str) -> Option<ToolOutcome> {
    let same_call = attr::opt_s(item, "call_id") == call.map(|c| c.as_str());
    let same_tool = attr::opt_s(item, "tool") == Some(tool);
    if !(same_call && same_tool) {
        return None;
    }
    attr::opt_s(item, "answer").and_then(|s| serde_json::from_str(s).ok())
}

/// The ids a live lookup can use: `call#` first, then the call's metadata.
pub fn live_request(
    call_id: &VapiCallId,
    record: Option<&CallRecord>,
    meta_event: Option<&str>,
    meta_contact: Option<&SalesforceId>,
    meta_case: Option<&SalesforceId>,
) -> LiveLookupRequest {
    let parse = |field, s: Option<&String>| s.and_then(|s| SalesforceId::parse(field, s).ok());
    LiveLookupRequest {
        call_id: call_id.clone(),
        event_id: record
            .and_then(|r| r.event_id.clone())
            .or_else(|| meta_event.map(str::to_owned)),
        contact_id: parse("contactId", record.and_then(|r| r.contact_id.as_ref()))
            .or_else(|| meta_contact.cloned()),
        case_id: parse("caseId", record.and_then(|r| r.case_id.as_ref()))
            .or_else(|| meta_case.cloned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::{CaseSnapshot, CustomerSnapshot};

    #[test]
    fn outcomes_serialise_as_vapi_expects() {
        let id = ToolCallId::parse("id", "t1").unwrap();
        assert_eq!(
            ToolOutcome::Result("ok".into()).entry(&id, "lookupCase"),
            json!({"name":"lookupCase","toolCallId":"t1","result":"ok"})
        );
        assert_eq!(
            ToolOutcome::Error("no".into()).entry(&id, "logNote"),
            json!({"name":"logNote","toolCallId":"t1","error":"no"})
        );
        let o: ToolOutcome =
            serde_json::from_str(&serde_json::to_string(&ToolOutcome::Error("x".into())).unwrap())
                .unwrap();
        assert_eq!(o, ToolOutcome::Error("x".into()));
    }

    #[test]
    fn lookup_case_only_for_this_calls_case() {
        let snap = CallSnapshot {
            customer: CustomerSnapshot::default(),
            case: Some(CaseSnapshot {
                case_id: Some("5005e00000AbCdEAAV".into()),
                subject: Some("Refund".into()),
                ..Default::default()
            }),
            captured_at: None,
            handoff: None,
        };
        let ok = answer_from_snapshot(&Tool::LookupCase, &snap, Some("5005e00000AbCdE"));
        assert!(matches!(ok, ToolOutcome::Result(r) if r.contains("Refund")));
        let other = answer_from_snapshot(&Tool::LookupCase, &snap, Some("5005e00000ZzZzZAAA"));
        assert!(matches!(other, ToolOutcome::Error(_)));
    }
}
