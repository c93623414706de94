//! Jobs: the durable work items of sfvapi and their state machine.
//!
//! A Salesforce event is a `dial` job from the moment it is written (`evt#sf#<id>`, status PENDING);
//! the DynamoDB stream hands PENDING jobs to the worker. Every transition is a conditional write.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::SalesforceEventId;
use crate::salesforce::events::DialRequest;
use crate::store::{attr, Item, EXPIRES_AT, PK};

/// Where a job is in its life. Stored as the upper-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Pending,
    Running,
    Dialing,
    Done,
    Skipped,
    Retry,
    Failed,
    NeedsReview,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Dialing => "DIALING",
            Self::Done => "DONE",
            Self::Skipped => "SKIPPED",
            Self::Retry => "RETRY",
            Self::Failed => "FAILED",
            Self::NeedsReview => "NEEDS_REVIEW",
        }
    }
}

/// What a job does when it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Place one Vapi call for a Salesforce event.
    Dial,
    /// Append a note the assistant took (`logNote`) to the call's Case.
    Note,
    /// Turn an end-of-call report into a Salesforce Task (and maybe a follow-up SMS).
    Report,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dial => "dial",
            Self::Note => "note",
            Self::Report => "report",
        }
    }
}

/// Key of a Salesforce event's job item.
pub fn salesforce_event_pk(id: &SalesforceEventId) -> String {
    format!("evt#sf#{id}")
}

/// The item that both dedups a Salesforce event and enqueues its dial job.
pub fn new_dial_job(req: &DialRequest, received_at_ms: i64, ttl: Duration) -> Item {
    // DialRequest holds only typed, already-validated values: serialising it cannot fail.
    let payload = serde_json::to_string(req).unwrap_or_default();
    let expires_at = received_at_ms / 1000 + ttl.as_secs() as i64;
    Item::from([
        (PK.to_owned(), attr::s(salesforce_event_pk(&req.event_id))),
        ("event_id".to_owned(), attr::s(req.event_id.as_str())),
        ("kind".to_owned(), attr::s(JobKind::Dial.as_str())),
        ("status".to_owned(), attr::s(JobStatus::Pending.as_str())),
        ("payload".to_owned(), attr::s(payload)),
        ("received_at".to_owned(), attr::n(received_at_ms)),
        ("attempts".to_owned(), attr::n(0)),
        (EXPIRES_AT.to_owned(), attr::n(expires_at)),
    ])
}
