//! Vapi server messages, typed. Every message is `{"message":{"type":…,"call":{…},"timestamp":…}}`
//! (Vapi API reference: `ServerMessageToolCalls`, `ServerMessageStatusUpdate`,
//! `ServerMessageEndOfCallReport`, `ServerMessageTransferDestinationRequest`,
//! `ServerMessageTransferUpdate`; tool-call request shape in https://docs.vapi.ai/tools-calling).
//! The types sfvapi acts on get their own arm; every other type (`transcript`, `speech-update`,
//! `conversation-update`, `hang`, `user-interrupted`, and anything Vapi adds later) is `Other`,
//! answered 200 and ignored, so a new message type can never break a live call.

use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::calls::MAX_STATUS_CHARS;
use crate::ids::{E164Phone, InvalidValue, SalesforceEventId, SalesforceId, VapiCallId};

/// Longest tool name kept (stored with a cached answer, logged).
pub const MAX_TOOL_NAME_CHARS: usize = 128;

/// At most `max` characters of `s` (whole characters, never a split UTF-8 sequence).
pub fn bounded(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

/// One parsed server message.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerMessage {
    /// `message.call`, when present and carrying an id.
    pub call: Option<CallRef>,
    /// `message.timestamp` (ms since epoch), when present.
    pub timestamp_ms: Option<i64>,
    pub kind: MessageKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum MessageKind {
    ToolCalls(Vec<ToolCall>),
    /// Legacy `function-call`: answered `{"result": …}`.
    FunctionCall(ToolCall),
    StatusUpdate(StatusUpdate),
    EndOfCallReport(Box<EndOfCallReport>),
    /// `assistant-request`: an inbound call asks which assistant answers it (`vapi::inbound`).
    AssistantRequest(AssistantRequest),
    /// `transfer-destination-request` (Vapi OpenAPI `ServerMessageTransferDestinationRequest`):
    /// the assistant's `transferCall` tool has no destination and asks where to transfer
    /// (`vapi::transfer`). Nothing of the message is kept: the answer comes from `call#`.
    TransferDestinationRequest,
    /// `transfer-update` (Vapi OpenAPI `ServerMessageTransferUpdate`): a transfer happened.
    TransferUpdate(TransferUpdate),
    /// Any other `message.type`, kept for the log line.
    Other(String),
}

/// The call a message belongs to, and what our `POST /call` put in its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct CallRef {
    pub id: VapiCallId,
    /// `call.assistantOverrides.metadata.sfvapiEventId`: ties a message to its event even before
    /// the worker has written `call#`. Absent or not ours → `None` (metadata is free-form).
    pub event_id: Option<SalesforceEventId>,
    pub contact_id: Option<SalesforceId>,
    pub case_id: Option<SalesforceId>,
    /// `metadata.sfvapiContextSig`: the worker's signature over the three ids above.
    pub context_sig: Option<String>,
    /// `call.type`, set by Vapi: whether the customer called us or we called them.
    pub direction: Option<CallDirection>,
    /// `call.customer.number` (Vapi OpenAPI `Call.customer`, `CreateCustomerDTO.number`): the
    /// number the customer is on, when it is a valid E.164 number.
    pub customer_number: Option<E164Phone>,
}

/// Who called whom (Vapi OpenAPI `Call.type`: `inboundPhoneCall`, `outboundPhoneCall`, `webCall`,
/// `vapi.websocketCall`). Only the phone calls are typed; anything else is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallDirection {
    /// The customer called the phone number (`inboundPhoneCall`).
    Inbound,
    /// sfvapi's worker placed the call (`outboundPhoneCall`).
    Outbound,
}

impl CallDirection {
    pub fn parse(call_type: &str) -> Option<Self> {
        match call_type {
            "inboundPhoneCall" => Some(Self::Inbound),
            "outboundPhoneCall" => Some(Self::Outbound),
            _ => None,
        }
    }
}

/// The caller's number of an `assistant-request`, parsed at the edge.
#[derive(Debug, Clone, PartialEq)]
pub enum CallerNumber {
    /// `call.customer.number` (or the message's `customer.number`) as E.164.
    Known(E164Phone),
    /// No number: withheld caller id, or a call without a customer.
    Withheld,
    /// A number that is not E.164 (`anonymous`, a SIP URI, …); never looked up.
    Unusable,
}

/// `assistant-request` (Vapi OpenAPI `ServerMessageAssistantRequest`): who is calling.
#[derive(Debug, Clone, PartialEq)]
pub struct AssistantRequest {
    pub caller: CallerNumber,
}

impl CallRef {
    /// The call with its metadata ids kept only if their signature holds under `key`
    /// (`crate::vapi::context`). `false` when metadata named ids that did not verify (dropped).
    pub fn trusted(mut self, key: Option<&crate::secrets::SecretString>) -> (Self, bool) {
        let named = self.event_id.is_some() || self.contact_id.is_some() || self.case_id.is_some();
        let holds = match (key, &self.event_id, &self.contact_id, &self.context_sig) {
            (Some(k), Some(e), Some(c), Some(sig)) => {
                crate::vapi::context::verify(k, e, c, self.case_id.as_ref(), sig)
            }
            _ => false,
        };
        if !holds {
            self.event_id = None;
            self.contact_id = None;
            self.case_id = None;
        }
        (self, holds || !named)
    }
}

/// Vapi's id of one tool call; part of DynamoDB keys, so `#` and whitespace are refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ToolCallId(String);

impl ToolCallId {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidValue> {
        if raw.is_empty()
            || raw.len() > 128
            || raw
                .chars()
                .any(|c| c == '#' || c.is_whitespace() || c.is_control())
        {
            return Err(InvalidValue::new(
                field,
                "must be 1 to 128 characters without '#' or whitespace",
            ));
        }
        Ok(Self(raw.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ToolCallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One tool (or legacy function) call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// `None` only for the legacy `function-call`, which has no id.
    pub id: Option<ToolCallId>,
    pub name: String,
    pub arguments: Arguments,
}

/// Tool arguments: Vapi sends an object, or the model's raw JSON text.
#[derive(Debug, Clone, PartialEq)]
pub enum Arguments {
    Object(Map<String, Value>),
    /// Text that is not a JSON object: the call is answered with an error entry, not a 400,
    /// because the other calls in the message are still answerable.
    Invalid(String),
}

impl Arguments {
    fn from_value(v: Option<&Value>) -> Self {
        match v {
            None | Some(Value::Null) => Self::Object(Map::new()),
            Some(Value::Object(m)) => Self::Object(m.clone()),
            Some(Value::String(s)) if s.trim().is_empty() => Self::Object(Map::new()),
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(m)) => Self::Object(m),
                _ => Self::Invalid("arguments are not a JSON object".into()),
            },
            Some(_) => Self::Invalid("arguments are not a JSON object".into()),
        }
    }

    /// A string argument, trimmed; `None` when absent or empty.
    pub fn str(&self, name: &str) -> Option<&str> {
        match self {
            Self::Object(m) => m
                .get(name)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty()),
            Self::Invalid(_) => None,
        }
    }
}

/// Vapi's call status. Open: an unknown value is kept, never rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallStatus {
    Scheduled,
    Queued,
    Ringing,
    InProgress,
    Forwarding,
    Ended,
    Other(String),
}

impl CallStatus {
    pub fn parse(raw: &str) -> Self {
        match raw {
            "scheduled" => Self::Scheduled,
            "queued" => Self::Queued,
            "ringing" => Self::Ringing,
            "in-progress" => Self::InProgress,
            "forwarding" => Self::Forwarding,
            "ended" => Self::Ended,
            other => Self::Other(other.to_owned()),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Queued => "queued",
            Self::Ringing => "ringing",
            Self::InProgress => "in-progress",
            Self::Forwarding => "forwarding",
            Self::Ended => "ended",
            Self::Other(s) => s,
        }
    }
}

/// Why a call ended. Vapi lists well over a hundred values (mostly pipeline errors) and adds more;
/// the ones sfvapi decides on are typed, the rest kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndedReason {
    CustomerEndedCall,
    CustomerDidNotAnswer,
    CustomerBusy,
    Voicemail,
    AssistantEndedCall,
    AssistantSaidEndCallPhrase,
    AssistantForwardedCall,
    SilenceTimedOut,
    ExceededMaxDuration,
    Other(String),
}

impl EndedReason {
    pub fn parse(raw: &str) -> Self {
        match raw {
            "customer-ended-call" => Self::CustomerEndedCall,
            "customer-did-not-answer" => Self::CustomerDidNotAnswer,
            "customer-busy" => Self::CustomerBusy,
            "voicemail" => Self::Voicemail,
            "assistant-ended-call" => Self::AssistantEndedCall,
            "assistant-said-end-call-phrase" => Self::AssistantSaidEndCallPhrase,
            "assistant-forwarded-call" => Self::AssistantForwardedCall,
            "silence-timed-out" => Self::SilenceTimedOut,
            "exceeded-max-duration" => Self::ExceededMaxDuration,
            // Vapi's reasons are enum values (Vapi OpenAPI
            // `ServerMessageEndOfCallReport.endedReason`: 627 values, the longest 121 characters);
            // anything longer is cut, so a forged or broken message cannot make us store (or log)
            // a huge string.
            other => Self::Other(bounded(other, MAX_STATUS_CHARS)),
        }
    }
    pub fn as_str(&self) -> &str {
        match self {
            Self::CustomerEndedCall => "customer-ended-call",
            Self::CustomerDidNotAnswer => "customer-did-not-answer",
            Self::CustomerBusy => "customer-busy",
            Self::Voicemail => "voicemail",
            Self::AssistantEndedCall => "assistant-ended-call",
            Self::AssistantSaidEndCallPhrase => "assistant-said-end-call-phrase",
            Self::AssistantForwardedCall => "assistant-forwarded-call",
            Self::SilenceTimedOut => "silence-timed-out",
            Self::ExceededMaxDuration => "exceeded-max-duration",
            Self::Other(s) => s,
        }
    }
    /// The customer was not reached: the `not-reached` SMS follow-up policy.
    pub fn is_not_reached(&self) -> bool {
        matches!(
            self,
            Self::CustomerDidNotAnswer | Self::CustomerBusy | Self::Voicemail
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    pub status: CallStatus,
    pub ended_reason: Option<EndedReason>,
}

/// What a `transfer-update` says, for the call's timeline (Vapi OpenAPI
/// `ServerMessageTransferUpdate.destination`: a `TransferDestinationNumber`, `…Sip` or
/// `…Assistant`).
#[derive(Debug, Clone, PartialEq)]
pub struct TransferUpdate {
    /// `destination.type` (`number`, `sip`, `assistant`), at most 40 characters.
    pub destination_type: Option<String>,
    /// `destination.number`, masked (`+1******0100`): the timeline is not the place for a number.
    pub destination: Option<String>,
}

/// The parts of an end-of-call report that sfvapi keeps (everything else is dropped at the edge).
#[derive(Debug, Clone, PartialEq)]
pub struct EndOfCallReport {
    pub ended_reason: EndedReason,
    pub cost: Option<f64>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub summary: Option<String>,
    pub transcript: Option<String>,
    pub recording_url: Option<String>,
    /// Vapi sends a string, number or boolean depending on the rubric; kept as text.
    pub success_evaluation: Option<String>,
    /// `analysis.structuredData`: what the assistant's analysis plan extracted (Vapi OpenAPI
    /// `Analysis.structuredData`, an object); dropped when larger than
    /// [`MAX_STRUCTURED_DATA_BYTES`] (it is written back to Salesforce fields, not a document).
    pub structured_data: Option<Map<String, Value>>,
}

/// Largest `analysis.structuredData` kept, serialised.
pub const MAX_STRUCTURED_DATA_BYTES: usize = 8 * 1024;

/// Parse a request body. An error names the field (for the 400 `detail`).
pub fn parse(body: &[u8]) -> Result<ServerMessage, InvalidValue> {
    let mut root: Value = serde_json::from_slice(body).map_err(|e| {
        InvalidValue::new(
            "body",
            format!("not valid JSON (line {}, column {})", e.line(), e.column()),
        )
    })?;
    let mut msg = match root.get_mut("message").map(Value::take) {
        Some(Value::Object(m)) => m,
        _ => return Err(InvalidValue::new("message", "must be an object")),
    };
    let kind = match msg.get("type") {
        Some(Value::String(t)) => t.clone(),
        _ => return Err(InvalidValue::new("message.type", "must be a string")),
    };
    let timestamp_ms = msg
        .get("timestamp")
        .and_then(Value::as_f64)
        .map(|t| t as i64);
    let call = parse_call(msg.get("call"))?;
    let kind = match kind.as_str() {
        "tool-calls" => MessageKind::ToolCalls(parse_tool_calls(&msg)?),
        "function-call" => MessageKind::FunctionCall(parse_function_call(&msg)?),
        "status-update" => MessageKind::StatusUpdate(parse_status_update(&msg)?),
        "end-of-call-report" => {
            MessageKind::EndOfCallReport(Box::new(parse_report(&mut msg, call.as_ref())?))
        }
        "assistant-request" => MessageKind::AssistantRequest(parse_assistant_request(&msg)),
        "transfer-destination-request" => MessageKind::TransferDestinationRequest,
        "transfer-update" => MessageKind::TransferUpdate(parse_transfer_update(&msg)),
        _ => MessageKind::Other(kind),
    };
    Ok(ServerMessage {
        call,
        timestamp_ms,
        kind,
    })
}

impl ServerMessage {
    /// The call id, required by every message sfvapi records.
    pub fn require_call(&self) -> Result<&CallRef, InvalidValue> {
        self.call
            .as_ref()
            .ok_or_else(|| InvalidValue::new("message.call.id", "is required"))
    }
}

fn parse_call(call: Option<&Value>) -> Result<Option<CallRef>, InvalidValue> {
    let Some(call) = call.filter(|c| !c.is_null()) else {
        return Ok(None);
    };
    let Some(id) = call.get("id").and_then(Value::as_str) else {
        return Ok(None);
    };
    let id = VapiCallId::parse("message.call.id", id)?;
    let metadata = call.pointer("/assistantOverrides/metadata");
    let meta = |key: &str| metadata.and_then(|m| m.get(key)).and_then(Value::as_str);
    Ok(Some(CallRef {
        id,
        event_id: meta("sfvapiEventId")
            .and_then(|s| SalesforceEventId::parse("sfvapiEventId", s).ok()),
        contact_id: meta("contactId").and_then(|s| SalesforceId::parse("contactId", s).ok()),
        case_id: meta("caseId").and_then(|s| SalesforceId::parse("caseId", s).ok()),
        context_sig: meta(crate::vapi::context::SIG_FIELD)
            .filter(|s| s.len() <= 128)
            .map(str::to_owned),
        direction: call
            .get("type")
            .and_then(Value::as_str)
            .and_then(CallDirection::parse),
        customer_number: call
            .pointer("/customer/number")
            .and_then(Value::as_str)
            .filter(|n| n.len() <= 40)
            .and_then(|n| E164Phone::parse("call.customer.number", n.trim()).ok()),
    }))
}

/// Never an error: a `transfer-update` is a record of what Vapi did, kept as well as it reads.
fn parse_transfer_update(msg: &Map<String, Value>) -> TransferUpdate {
    let dest = msg.get("destination");
    let text = |key: &str| {
        dest.and_then(|d| d.get(key))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    TransferUpdate {
        destination_type: text("type").map(|t| bounded(t, 40)),
        destination: text("number")
            .or_else(|| text("sipUri"))
            .map(|n| crate::ids::mask_phone(&bounded(n, 64))),
    }
}

/// The caller of an inbound call: `call.customer.number` (Vapi OpenAPI `Call.customer`,
/// `CreateCustomerDTO.number`), else the message's own `customer.number`. Never an error: a call
/// whose number cannot be used is still answered (with the generic assistant).
fn parse_assistant_request(msg: &Map<String, Value>) -> AssistantRequest {
    let number = msg
        .get("call")
        .and_then(|c| c.pointer("/customer/number"))
        .or_else(|| msg.get("customer").and_then(|c| c.get("number")))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty());
    let caller = match number {
        None => CallerNumber::Withheld,
        // E.164 has at most 15 digits; anything much longer is not a number to look up.
        Some(n) if n.len() > 40 => CallerNumber::Unusable,
        Some(n) => match E164Phone::parse("customer.number", n) {
            Ok(p) => CallerNumber::Known(p),
            Err(_) => CallerNumber::Unusable,
        },
    };
    AssistantRequest { caller }
}

/// Both shapes Vapi sends: `toolCallList[{id, name, arguments}]` (also OpenAI-style
/// `{id, function{name, arguments}}`) and `toolWithToolCallList[{…, toolCall{id, function{name,
/// arguments|parameters}}}]`. When both are present they describe the same calls: merged by id,
/// in `toolCallList` order.
fn parse_tool_calls(msg: &Map<String, Value>) -> Result<Vec<ToolCall>, InvalidValue> {
    let mut calls: Vec<ToolCall> = Vec::new();
    let list = |key: &str| -> Result<Vec<Value>, InvalidValue> {
        match msg.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(a)) => Ok(a.clone()),
            Some(_) => Err(InvalidValue::new(
                if key == "toolCallList" {
                    "message.toolCallList"
                } else {
                    "message.toolWithToolCallList"
                },
                "must be an array",
            )),
        }
    };
    for entry in list("toolCallList")? {
        calls.push(tool_call_of(&entry, "message.toolCallList[].id")?);
    }
    for entry in list("toolWithToolCallList")? {
        let Some(tc) = entry.get("toolCall") else {
            return Err(InvalidValue::new(
                "message.toolWithToolCallList[].toolCall",
                "is required",
            ));
        };
        let mut call = tool_call_of(tc, "message.toolWithToolCallList[].toolCall.id")?;
        if call.name.is_empty() {
            // The tool definition beside the call names it too.
            if let Some(n) = entry
                .pointer("/function/name")
                .or_else(|| entry.get("name"))
                .and_then(Value::as_str)
            {
                call.name = bounded(n, MAX_TOOL_NAME_CHARS);
            }
        }
        if !calls.iter().any(|c| c.id == call.id) {
            calls.push(call);
        }
    }
    if calls.is_empty() {
        return Err(InvalidValue::new(
            "message.toolCallList",
            "must hold at least one tool call",
        ));
    }
    Ok(calls)
}

fn tool_call_of(v: &Value, id_field: &'static str) -> Result<ToolCall, InvalidValue> {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| InvalidValue::new(id_field, "is required"))?;
    let id = ToolCallId::parse(id_field, id)?;
    let function = v.get("function");
    let name = v
        .get("name")
        .or_else(|| function.and_then(|f| f.get("name")))
        .and_then(Value::as_str)
        .map(|n| bounded(n, MAX_TOOL_NAME_CHARS))
        .unwrap_or_default();
    let args = v
        .get("arguments")
        .or_else(|| function.and_then(|f| f.get("arguments")))
        .or_else(|| function.and_then(|f| f.get("parameters")))
        .or_else(|| v.get("parameters"));
    Ok(ToolCall {
        id: Some(id),
        name,
        arguments: Arguments::from_value(args),
    })
}

fn parse_function_call(msg: &Map<String, Value>) -> Result<ToolCall, InvalidValue> {
    let fc = msg
        .get("functionCall")
        .filter(|v| v.is_object())
        .ok_or_else(|| InvalidValue::new("message.functionCall", "must be an object"))?;
    let name = fc
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| InvalidValue::new("message.functionCall.name", "is required"))?;
    Ok(ToolCall {
        id: None,
        name: bounded(name, MAX_TOOL_NAME_CHARS),
        arguments: Arguments::from_value(fc.get("parameters").or_else(|| fc.get("arguments"))),
    })
}

fn parse_status_update(msg: &Map<String, Value>) -> Result<StatusUpdate, InvalidValue> {
    let status = msg
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| InvalidValue::new("message.status", "is required"))?;
    // The status becomes part of a key (`…#status-update#<status>`).
    if status.is_empty()
        || status.len() > 64
        || !status
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(InvalidValue::new(
            "message.status",
            "must be 1 to 64 characters of A-Z a-z 0-9 - _",
        ));
    }
    Ok(StatusUpdate {
        status: CallStatus::parse(status),
        ended_reason: msg
            .get("endedReason")
            .and_then(Value::as_str)
            .map(EndedReason::parse),
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawArtifact {
    transcript: Option<String>,
    recording_url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawAnalysis {
    summary: Option<String>,
    success_evaluation: Option<Value>,
    structured_data: Option<Value>,
}

/// An ended call as `GET /call/{id}` returns it (Vapi OpenAPI `Call`: `endedReason`, `cost`,
/// `startedAt`, `endedAt`, `artifact`, `analysis`, `assistantOverrides`) read as the end-of-call
/// report it would have sent: the fields share their names and shapes, so one parser serves
/// both. `None` when the call has not ended (no `endedReason` yet).
pub fn report_from_call(call: &Value) -> Result<Option<(CallRef, EndOfCallReport)>, InvalidValue> {
    if call.get("endedReason").and_then(Value::as_str).is_none() {
        return Ok(None);
    }
    let Some(cref) = parse_call(Some(call))? else {
        return Err(InvalidValue::new("call.id", "is required"));
    };
    let mut msg = call.as_object().cloned().unwrap_or_default();
    let report = parse_report(&mut msg, Some(&cref))?;
    Ok(Some((cref, report)))
}

fn parse_report(
    msg: &mut Map<String, Value>,
    call: Option<&CallRef>,
) -> Result<EndOfCallReport, InvalidValue> {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let ended_reason = msg
        .get("endedReason")
        .and_then(Value::as_str)
        .map(EndedReason::parse)
        .ok_or_else(|| InvalidValue::new("message.endedReason", "is required"))?;
    if call.is_none() {
        return Err(InvalidValue::new("message.call.id", "is required"));
    }
    // `take` moves the (possibly huge) transcript out instead of copying it.
    let artifact: RawArtifact = msg
        .get_mut("artifact")
        .map(Value::take)
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let analysis: RawAnalysis = msg
        .get_mut("analysis")
        .map(Value::take)
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let call_field = |name: &str| msg.get("call").and_then(|c| c.get(name)).cloned();
    Ok(EndOfCallReport {
        ended_reason,
        cost: msg
            .get("cost")
            .and_then(Value::as_f64)
            .or_else(|| call_field("cost").and_then(|v| v.as_f64())),
        started_at: text(msg.get("startedAt")).or_else(|| text(call_field("startedAt").as_ref())),
        ended_at: text(msg.get("endedAt")).or_else(|| text(call_field("endedAt").as_ref())),
        // Older reports carried these at the top level.
        summary: analysis.summary.or_else(|| text(msg.get("summary"))),
        transcript: artifact.transcript.or_else(|| text(msg.get("transcript"))),
        recording_url: artifact
            .recording_url
            .or_else(|| text(msg.get("recordingUrl"))),
        success_evaluation: match analysis.success_evaluation {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
        },
        structured_data: match analysis.structured_data {
            Some(Value::Object(m))
                if serde_json::to_vec(&m).map_or(0, |v| v.len()) <= MAX_STRUCTURED_DATA_BYTES =>
            {
                Some(m)
            }
            _ => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_are_other() {
        let m = parse(br#"{"message":{"type":"speech-update","status":"started"}}"#).unwrap();
        assert_eq!(m.kind, MessageKind::Other("speech-update".into()));
        assert!(m.call.is_none());
    }

    #[test]
    fn transfer_messages_are_typed_and_keep_no_number_in_clear() {
        let m = parse(br#"{"message":{"type":"transfer-destination-request","call":{"id":"c-1"},"destination":{"type":"number","number":"+19995550000"}}}"#).unwrap();
        assert_eq!(m.kind, MessageKind::TransferDestinationRequest);
        assert_eq!(m.call.unwrap().id.as_str(), "c-1");
        let m = parse(br#"{"message":{"type":"transfer-update","timestamp":1795690000000,"call":{"id":"c-1"},"destination":{"type":"number","number":"+14155550100"}}}"#).unwrap();
        assert_eq!(
            m.kind,
            MessageKind::TransferUpdate(TransferUpdate {
                destination_type: Some("number".into()),
                destination: Some("+1******0100".into()),
            })
        );
        let m = parse(br#"{"message":{"type":"transfer-update","destination":7}}"#).unwrap();
        assert_eq!(
            m.kind,
            MessageKind::TransferUpdate(TransferUpdate {
                destination_type: None,
                destination: None
            })
        );
    }

    #[test]
    fn open_enums_keep_unknown_values() {
        assert_eq!(
            EndedReason::parse("pipeline-error-openai-llm-failed").as_str(),
            "pipeline-error-openai-llm-failed"
        );
        assert!(EndedReason::parse("voicemail").is_not_reached());
        assert_eq!(CallStatus::parse("in-progress"), CallStatus::InProgress);
        assert_eq!(CallStatus::parse("paused").as_str(), "paused");
    }

    #[test]
    fn arguments_as_string_or_object() {
        let m = parse(
            br#"{"message":{"type":"tool-calls","call":{"id":"c1"},"toolCallList":[
              {"id":"a","name":"x","arguments":"{\"k\":\"v\"}"},
              {"id":"b","function":{"name":"y","arguments":{"k":"w"}}},
              {"id":"c","name":"z","arguments":"not json"}]}}"#,
        )
        .unwrap();
        let MessageKind::ToolCalls(calls) = m.kind else {
            panic!()
        };
        assert_eq!(calls[0].arguments.str("k"), Some("v"));
        assert_eq!(calls[1].name, "y");
        assert_eq!(calls[1].arguments.str("k"), Some("w"));
        assert!(matches!(calls[2].arguments, Arguments::Invalid(_)));
    }

    #[test]
    fn an_assistant_request_names_its_caller_by_e164_number_or_none() {
        let m = parse(
            br#"{"message":{"type":"assistant-request","call":{"id":"c1","type":"inboundPhoneCall",
              "customer":{"number":"+1 (415) 555-0123"}},"customer":{"number":"+14155550999"}}}"#,
        )
        .unwrap();
        let MessageKind::AssistantRequest(req) = &m.kind else {
            panic!("{m:?}")
        };
        // call.customer.number first, parsed as E.164.
        assert_eq!(
            req.caller,
            CallerNumber::Known(E164Phone::parse("p", "+14155550123").unwrap())
        );
        assert_eq!(m.call.unwrap().direction, Some(CallDirection::Inbound));
        let only_message = parse(
            br#"{"message":{"type":"assistant-request","call":{"id":"c1"},"customer":{"number":"+14155550999"}}}"#,
        )
        .unwrap();
        assert!(matches!(
            only_message.kind,
            MessageKind::AssistantRequest(AssistantRequest {
                caller: CallerNumber::Known(_)
            })
        ));
        for (body, want) in [
            (
                r#"{"message":{"type":"assistant-request","call":{"id":"c1"}}}"#,
                CallerNumber::Withheld,
            ),
            (
                r#"{"message":{"type":"assistant-request","call":{"id":"c1","customer":{"number":"anonymous"}}}}"#,
                CallerNumber::Unusable,
            ),
            (
                r#"{"message":{"type":"assistant-request","call":{"id":"c1","customer":{"number":"4155550123"}}}}"#,
                CallerNumber::Unusable,
            ),
        ] {
            let m = parse(body.as_bytes()).unwrap();
            assert_eq!(
                m.kind,
                MessageKind::AssistantRequest(AssistantRequest { caller: want })
            );
        }
        let web = parse(br#"{"message":{"type":"status-update","status":"ended","call":{"id":"c1","type":"webCall"}}}"#).unwrap();
        assert_eq!(web.call.unwrap().direction, None);
    }

    #[test]
    fn bad_ids_are_rejected_with_the_field() {
        let e =
            parse(br#"{"message":{"type":"status-update","status":"ended","call":{"id":"a#b"}}}"#)
                .unwrap_err();
        assert_eq!(e.field, "message.call.id");
        let e = parse(
            br#"{"message":{"type":"tool-calls","call":{"id":"c"},"toolCallList":[{"name":"x"}]}}"#,
        )
        .unwrap_err();
        assert_eq!(e.field, "message.toolCallList[].id");
    }
}
