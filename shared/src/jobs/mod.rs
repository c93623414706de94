//! Jobs: the durable work items of sfvapi and their state machine.
//!
//! A Salesforce event is a `dial` job from the moment it is written (`evt#sf#<id>`, status PENDING);
//! the DynamoDB stream hands PENDING jobs to the worker. Every transition is a conditional write.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ids::SalesforceEventId;
use crate::salesforce::events::DialRequest;
use crate::store::{attr, Item, EXPIRES_AT, PK};

pub mod config;
pub mod dial;
pub mod handoff;
pub mod optout;
pub mod queue;
pub mod reconcile;
pub mod recording;
pub mod report;
pub mod reroute;
pub mod transcript;
pub mod worker;
pub mod writeback;

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
    /// Set a Contact's `DoNotCall` after she asked not to be called again (`jobs::optout`).
    #[serde(rename = "optout")]
    OptOut,
    /// Leave the Case's owner a Task "Customer asked to speak to you" when a transfer found
    /// nobody (`jobs::handoff`).
    Handoff,
}

impl JobKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dial => "dial",
            Self::Note => "note",
            Self::OptOut => "optout",
            Self::Handoff => "handoff",
            Self::Report => "report",
        }
    }
}

/// Key of a Salesforce event's job item.
pub fn salesforce_event_pk(id: &SalesforceEventId) -> String {
    format!("evt#sf#{id}")
}

/// How many partitions the `retry_due` index spreads jobs over; the sweep queries each.
pub const RETRY_SHARDS: u32 = 4;

/// A new job is swept back onto the stream if nobody claimed it within this time (a lost or
/// dead-lettered stream record must not leave a job PENDING forever).
pub const UNCLAIMED_GRACE_MS: i64 = 5 * 60 * 1000;

/// The `retry_due` partition of a job: a stable hash of its key, so one job always lives in one.
pub fn retry_shard(pk: &str) -> String {
    // FNV-1a: stable across processes and releases, unlike std's randomised hasher.
    let h = pk.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("s{}", h % u64::from(RETRY_SHARDS))
}

/// A new PENDING job item. Every job kind has these attributes; it also enters the sparse
/// `retry_due` index, so the sweep re-kicks it if its stream record is ever lost.
pub fn new_job_item(
    pk: String,
    kind: JobKind,
    payload: String,
    received_at_ms: i64,
    ttl: Duration,
) -> Item {
    let expires_at = received_at_ms / 1000 + ttl.as_secs() as i64;
    Item::from([
        ("retry_shard".to_owned(), attr::s(retry_shard(&pk))),
        (
            "next_at".to_owned(),
            attr::n(received_at_ms + UNCLAIMED_GRACE_MS),
        ),
        (PK.to_owned(), attr::s(pk)),
        ("kind".to_owned(), attr::s(kind.as_str())),
        ("status".to_owned(), attr::s(JobStatus::Pending.as_str())),
        ("payload".to_owned(), attr::s(payload)),
        ("received_at".to_owned(), attr::n(received_at_ms)),
        ("attempts".to_owned(), attr::n(0)),
        (EXPIRES_AT.to_owned(), attr::n(expires_at)),
    ])
}

/// The item that both dedups a Salesforce event and enqueues its dial job.
pub fn new_dial_job(req: &DialRequest, received_at_ms: i64, ttl: Duration) -> Item {
    // DialRequest holds only typed, already-validated values: serialising it cannot fail.
    let payload = serde_json::to_string(req).unwrap_or_default();
    let mut item = new_job_item(
        salesforce_event_pk(&req.event_id),
        JobKind::Dial,
        payload,
        received_at_ms,
        ttl,
    );
    item.insert("event_id".to_owned(), attr::s(req.event_id.as_str()));
    item
}

/// Key of call `n` of an event: call 1 is the event's own job (`evt#sf#<id>`), calls 2, 3 … of a
/// retry cadence (`crate::policy::Retry`) are `evt#sf#<id>#<n>` (event ids hold no `#`).
pub fn call_job_pk(id: &SalesforceEventId, n: u32) -> String {
    if n <= 1 {
        salesforce_event_pk(id)
    } else {
        format!("{}#{n}", salesforce_event_pk(id))
    }
}

/// Which call of its event a dial job places (1 for the event's own job).
pub fn call_number_of(pk: &str) -> u32 {
    pk.strip_prefix("evt#sf#")
        .and_then(|rest| rest.split_once('#'))
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(1)
}

/// Call `n` of a retry cadence: the event's dial job again under its own key, waiting in RETRY
/// until `due_ms` (the sweep hands it to the worker then; no attempt is used). Its own key makes it
/// exactly once: a report job run twice schedules it once.
pub fn new_retry_dial_job(
    req: &DialRequest,
    n: u32,
    due_ms: i64,
    reason: &str,
    now_ms: i64,
    ttl: Duration,
) -> Item {
    let payload = serde_json::to_string(req).unwrap_or_default();
    let mut item = new_job_item(
        call_job_pk(&req.event_id, n),
        JobKind::Dial,
        payload,
        now_ms,
        ttl,
    );
    item.insert("event_id".to_owned(), attr::s(req.event_id.as_str()));
    item.insert("status".to_owned(), attr::s(JobStatus::Retry.as_str()));
    item.insert("next_at".to_owned(), attr::n(due_ms));
    item.insert("reason".to_owned(), attr::s(reason));
    // The job expires a TTL after it is due, not after it was written.
    item.insert(
        EXPIRES_AT.to_owned(),
        attr::n(due_ms / 1000 + ttl.as_secs() as i64),
    );
    item
}

/// The item that records an event sfvapi will not act on (e.g. an Outbound Message notification
/// without a Contact id), with why. Same key, dedup and attributes as [`new_dial_job`], but
/// already SKIPPED and outside the `retry_due` index, so the worker never picks it up and
/// `sfvapi-admin show` explains it. `payload` is what is known about the event (no field values);
/// the caller may add what the routing saw (`reroute::RoutingInput::keep_on`, attribute `input`,
/// gone with the item) so `sfvapi-admin reroute` can route it again once the document is fixed.
pub fn skipped_event_item(
    id: &SalesforceEventId,
    payload: String,
    reason: &str,
    received_at_ms: i64,
    ttl: Duration,
) -> Item {
    let mut item = new_job_item(
        salesforce_event_pk(id),
        JobKind::Dial,
        payload,
        received_at_ms,
        ttl,
    );
    item.remove("retry_shard");
    item.remove("next_at");
    item.insert("status".to_owned(), attr::s(JobStatus::Skipped.as_str()));
    item.insert("reason".to_owned(), attr::s(reason));
    item.insert("finished_at".to_owned(), attr::n(received_at_ms));
    item.insert("event_id".to_owned(), attr::s(id.as_str()));
    item
}

/// What a stored job says about itself: its status, the routing rule it was made by (none for a
/// SKIPPED event that matched no rule) and, when SKIPPED, why. What a duplicate's answer reports,
/// so it describes what is stored, not what the event would become under today's routing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredJob {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl StoredJob {
    pub fn of(item: &Item) -> Self {
        let rule = attr::opt_s(item, "payload")
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|p| p.get("rule").and_then(|r| r.as_str()).map(str::to_owned));
        let status = attr::opt_s(item, "status").unwrap_or("UNKNOWN").to_owned();
        let reason = (status == JobStatus::Skipped.as_str())
            .then(|| attr::opt_s(item, "reason").map(str::to_owned))
            .flatten();
        Self {
            status,
            rule,
            reason,
        }
    }
}
