//! The items the Vapi webhook writes: dedup records of server messages, and the `report` and `note`
//! jobs the worker runs (DESIGN.md, the `evt#vapi#…` row). Payloads are trimmed here, at the edge,
//! so every item stays far below DynamoDB's 400 KB limit whatever Vapi sends.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::{SalesforceEventId, SalesforceId, VapiCallId};
use crate::queue::item::{JobKind, JobStatus};
use crate::store::{attr, Item, EXPIRES_AT, PK};
use crate::vapi::messages::{CallDirection, EndOfCallReport, ToolCallId};

/// Salesforce's `Task.Description` holds 32,000 characters; a longer transcript is cut to fit.
pub const MAX_TRANSCRIPT_CHARS: usize = 32_000;
/// The longest transcript a `report` job keeps (for the file `jobs::transcript` attaches when the
/// Task's cut does not hold it all): at most 320 KB even in 4-byte characters, so the job item
/// stays within DynamoDB's 400 KB; a two-hour call's transcript is about 80,000 characters.
pub const MAX_STORED_TRANSCRIPT_CHARS: usize = 80_000;
pub const MAX_SUMMARY_CHARS: usize = 4_000;
pub const MAX_NOTE_CHARS: usize = 4_000;
const MAX_URL_CHARS: usize = 2_048;
const MAX_SHORT_CHARS: usize = 1_000;
pub const TRUNCATION_MARK: &str = "\n[… transcript truncated]";

/// `evt#vapi#<callId>#<suffix>`.
pub fn vapi_event_pk(call: &VapiCallId, suffix: &str) -> String {
    format!("evt#vapi#{call}#{suffix}")
}

pub fn report_pk(call: &VapiCallId) -> String {
    vapi_event_pk(call, "end-of-call-report")
}

pub fn status_pk(call: &VapiCallId, status: &str) -> String {
    vapi_event_pk(call, &format!("status-update#{status}"))
}

pub fn note_pk(call: &VapiCallId, tool_call: &ToolCallId) -> String {
    vapi_event_pk(call, &format!("tool#{tool_call}"))
}

/// The `payload` of a `report` job (JSON, camelCase): what a Salesforce Task needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportPayload {
    pub call_id: VapiCallId,
    /// From the call's metadata; `None` when the call was not placed by sfvapi's worker or the
    /// metadata was lost: the worker then reads `call#<callId>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<SalesforceEventId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<SalesforceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<SalesforceId>,
    /// Vapi's `endedReason`, verbatim up to `calls::MAX_STATUS_CHARS` characters (parse with
    /// `EndedReason::parse`).
    pub ended_reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// At most `MAX_STORED_TRANSCRIPT_CHARS` characters (the Task gets what fits of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transcript: Option<String>,
    #[serde(default)]
    pub transcript_truncated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_evaluation: Option<String>,
    /// `analysis.structuredData` (at most `messages::MAX_STRUCTURED_DATA_BYTES`), for the
    /// routing rule's write-back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_data: Option<serde_json::Map<String, serde_json::Value>>,
    /// ms since epoch: Vapi's message timestamp, or when we received it.
    pub reported_at: i64,
    /// Vapi's `call.type`: an inbound call gets an inbound Task and the inbound follow-up policy.
    /// Absent in reports queued before it existed, and for web calls: treated as outbound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<CallDirection>,
}

impl ReportPayload {
    pub fn new(
        call_id: VapiCallId,
        event_id: Option<SalesforceEventId>,
        contact_id: Option<SalesforceId>,
        case_id: Option<SalesforceId>,
        report: EndOfCallReport,
        reported_at: i64,
    ) -> Self {
        let (transcript, transcript_truncated) = match report.transcript {
            Some(t) => {
                let (t, cut) = truncate_chars(t, MAX_STORED_TRANSCRIPT_CHARS, TRUNCATION_MARK);
                (Some(t), cut)
            }
            None => (None, false),
        };
        Self {
            call_id,
            event_id,
            contact_id,
            case_id,
            // Parsing bounds it already; bounded again because this is what gets stored.
            ended_reason: truncate_chars(
                report.ended_reason.as_str().to_owned(),
                crate::calls::MAX_STATUS_CHARS,
                "",
            )
            .0,
            cost: report.cost.filter(|c| c.is_finite()),
            started_at: report.started_at.map(|s| truncate_chars(s, 64, "").0),
            ended_at: report.ended_at.map(|s| truncate_chars(s, 64, "").0),
            summary: report
                .summary
                .map(|s| truncate_chars(s, MAX_SUMMARY_CHARS, "…").0),
            transcript,
            transcript_truncated,
            // A cut URL is useless: drop one that does not fit.
            recording_url: report
                .recording_url
                .filter(|u| u.chars().count() <= MAX_URL_CHARS),
            success_evaluation: report
                .success_evaluation
                .map(|s| truncate_chars(s, MAX_SHORT_CHARS, "…").0),
            structured_data: report.structured_data,
            reported_at,
            direction: None,
        }
    }

    /// The call's direction, as Vapi's `call.type` says.
    pub fn with_direction(mut self, direction: Option<CallDirection>) -> Self {
        self.direction = direction;
        self
    }

    pub fn is_inbound(&self) -> bool {
        self.direction == Some(CallDirection::Inbound)
    }
}

/// The `payload` of a `note` job (JSON, camelCase).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotePayload {
    pub call_id: VapiCallId,
    pub case_id: SalesforceId,
    /// At most `MAX_NOTE_CHARS` characters.
    pub note: String,
    pub tool_call_id: String,
}

/// A PENDING job item (same attributes as a dial job, see `jobs::new_dial_job`).
fn job_item(
    pk: String,
    kind: JobKind,
    call: &VapiCallId,
    event_id: Option<&SalesforceEventId>,
    payload: String,
    received_at_ms: i64,
    ttl: Duration,
) -> Item {
    let mut item = crate::queue::item::new_job_item(pk, kind, payload, received_at_ms, ttl);
    item.insert("call_id".to_owned(), attr::s(call.as_str()));
    if let Some(e) = event_id {
        item.insert("event_id".to_owned(), attr::s(e.as_str()));
    }
    item
}

/// The item that dedups an end-of-call report and enqueues its `report` job.
pub fn new_report_job(payload: &ReportPayload, received_at_ms: i64, ttl: Duration) -> Item {
    // Only strings, numbers and typed ids: serialising cannot fail.
    let json = serde_json::to_string(payload).unwrap_or_default();
    job_item(
        report_pk(&payload.call_id),
        JobKind::Report,
        &payload.call_id,
        payload.event_id.as_ref(),
        json,
        received_at_ms,
        ttl,
    )
}

/// The item that dedups a `logNote` tool call and enqueues its `note` job.
pub fn new_note_job(
    payload: &NotePayload,
    tool_call: &ToolCallId,
    received_at_ms: i64,
    ttl: Duration,
) -> Item {
    let json = serde_json::to_string(payload).unwrap_or_default();
    job_item(
        note_pk(&payload.call_id, tool_call),
        JobKind::Note,
        &payload.call_id,
        None,
        json,
        received_at_ms,
        ttl,
    )
}

/// The dedup record of one status of one call. Not a job: its status is already terminal, so the
/// stream filter (`status = PENDING`) never hands it to the worker. It doubles as the call's
/// timeline (one item per status, with Vapi's timestamp).
pub fn new_status_record(
    call: &VapiCallId,
    status: &str,
    status_at_ms: i64,
    received_at_ms: i64,
    ttl: Duration,
) -> Item {
    Item::from([
        (PK.to_owned(), attr::s(status_pk(call, status))),
        ("call_id".to_owned(), attr::s(call.as_str())),
        ("kind".to_owned(), attr::s("status-update")),
        ("status".to_owned(), attr::s(JobStatus::Done.as_str())),
        ("call_status".to_owned(), attr::s(status)),
        ("status_at".to_owned(), attr::n(status_at_ms)),
        ("received_at".to_owned(), attr::n(received_at_ms)),
        (
            EXPIRES_AT.to_owned(),
            attr::n(received_at_ms / 1000 + ttl.as_secs() as i64),
        ),
    ])
}

/// Cut `s` to at most `max` characters (on a char boundary), ending with `mark` when cut.
pub fn truncate_chars(s: String, max: usize, mark: &str) -> (String, bool) {
    if s.chars().count() <= max {
        return (s, false);
    }
    let keep = max.saturating_sub(mark.chars().count());
    let end = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
    let mut out = String::with_capacity(end + mark.len());
    out.push_str(&s[..end]);
    out.push_str(mark);
    (out, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_counts_chars_not_bytes() {
        let (t, cut) = truncate_chars("héllo wörld".into(), 5, "");
        assert_eq!((t.as_str(), cut), ("héllo", true));
        let (t, cut) = truncate_chars("ab".into(), 5, "…");
        assert_eq!((t.as_str(), cut), ("ab", false));
        let (t, _) = truncate_chars("é".repeat(40_000), MAX_TRANSCRIPT_CHARS, TRUNCATION_MARK);
        assert_eq!(t.chars().count(), MAX_TRANSCRIPT_CHARS);
        assert!(t.ends_with("truncated]"));
    }
}
