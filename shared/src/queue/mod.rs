//! The job queue on DynamoDB: claim, transitions, the retry sweep and redrive.
//!
//! Every transition is one conditional UpdateItem, so two workers (or a worker and the sweep)
//! can race on a job and exactly one wins. A claim writes a fresh `claim_token`; every later
//! write of that run is conditioned on it, so a worker that lost its lease cannot overwrite
//! the job's new owner.
//!
//! ```text
//! PENDING ─claim─► RUNNING ─► DIALING ─► DONE
//!    ▲                │          │  └──► NEEDS_REVIEW (outcome unknown; never re-dialed blindly)
//!    │                ├─► DONE | SKIPPED | FAILED
//!    └──sweep── RETRY ◄┘ (next_at, exponential backoff + jitter)
//! ```
//! Non-terminal jobs carry `retry_shard`/`next_at`, which puts them in the sparse `retry_due`
//! index: the sweep flips due RETRY jobs back to PENDING, rescues expired leases and re-kicks
//! PENDING jobs nobody claimed (a lost stream record), so nothing stays stuck.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use rand::Rng;

pub mod item;
pub mod skipped;

use crate::store::{applied, attr, unavailable, Item, Store, StoreError, RETRY_INDEX};
use item::{retry_shard, JobKind, JobStatus, RETRY_SHARDS, UNCLAIMED_GRACE_MS};

/// Timing of the queue, from the worker's config.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// How long a claim owns a job before the sweep may hand it to another worker.
    pub lease: Duration,
    /// How long a DIALING job may stay unresolved before it becomes NEEDS_REVIEW.
    pub dial_lease: Duration,
    /// Attempts (claims) before a retryable failure becomes FAILED.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(60),
            dial_lease: Duration::from_secs(120),
            max_attempts: 5,
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(15 * 60),
        }
    }
}

/// A job this worker now owns.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    pub pk: String,
    pub kind: JobKind,
    pub payload: String,
    /// Including this claim.
    pub attempts: u32,
    pub claim_token: String,
    pub received_at: i64,
    pub event_id: Option<String>,
    pub call_id: Option<String>,
    /// Set when an earlier dial's outcome is unknown: this run asks Vapi first (ms the dial began).
    pub verify_from: Option<i64>,
    /// How many times Vapi has been asked about that dial so far.
    pub verify_tries: u32,
    /// The customer snapshot written when the job went DIALING.
    pub snapshot: Option<String>,
    /// The Contact a dial resolved from the Case at dial time (written with DIALING), for a job
    /// whose payload names no Contact (a Change Data Capture event).
    pub contact_id: Option<String>,
}

impl ClaimedJob {
    /// The job's payload as `T`. A payload this worker cannot read never becomes readable, so
    /// the job is FAILED at once with why (rather than retried).
    pub fn payload_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, Outcome> {
        serde_json::from_str(&self.payload).map_err(|e| Outcome::Failed {
            error: format!("job payload unreadable: {e}"),
        })
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Done {
        call_id: Option<String>,
        detail: Option<String>,
    },
    Skipped {
        reason: String,
    },
    /// A retryable failure; becomes FAILED when attempts are used up.
    Retry {
        error: String,
        not_before: Option<i64>,
    },
    /// Not now, and not a failure (quiet hours): RETRY at `until` without using up an attempt.
    Defer {
        until: i64,
        reason: String,
    },
    Failed {
        error: String,
    },
    NeedsReview {
        why: String,
    },
    /// A dial whose outcome is unknown (a timeout, a gateway error, a worker that died while
    /// dialling): RETRY at `next` to ask Vapi whether the call exists before anything else,
    /// without using up an attempt (`crate::jobs::reconcile`).
    Verify {
        why: String,
        since: i64,
        next: i64,
    },
    /// DONE with a placed call, kept in the sweep index until `check_report_at`: if no
    /// end-of-call report has come by then, the sweep asks Vapi for the call.
    Placed {
        call_id: String,
        detail: Option<String>,
        check_report_at: i64,
    },
}

impl Outcome {
    pub fn status(&self) -> JobStatus {
        match self {
            Self::Done { .. } | Self::Placed { .. } => JobStatus::Done,
            Self::Skipped { .. } => JobStatus::Skipped,
            Self::Retry { .. } | Self::Defer { .. } | Self::Verify { .. } => JobStatus::Retry,
            Self::Failed { .. } => JobStatus::Failed,
            Self::NeedsReview { .. } => JobStatus::NeedsReview,
        }
    }
}

/// What the sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    pub requeued: u32,
    pub rescued: u32,
    pub kicked: u32,
    /// DIALING jobs whose worker died: sent to ask Vapi whether the call exists.
    pub verify: u32,
    /// Placed calls whose end-of-call report is overdue (job pks), for the worker to check.
    pub report_checks: Vec<String>,
}

/// What a redrive did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redrive {
    Requeued,
    NotFound,
    /// The job is NEEDS_REVIEW and `--force` was not given (it may dial again).
    NeedsForce,
    /// Only FAILED and NEEDS_REVIEW jobs can be redriven.
    NotRedrivable(String),
}

#[derive(Clone, Debug)]
pub struct JobQueue {
    store: Store,
    settings: QueueSettings,
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_owned())
}
fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl JobQueue {
    pub fn new(store: Store, settings: QueueSettings) -> Self {
        Self { store, settings }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    /// Take ownership of a job if it is claimable: PENDING, RETRY that is due, or RUNNING with
    /// an expired lease. `None` means another worker owns it or it is finished: not an error.
    pub async fn claim(&self, pk: &str, now_ms: i64) -> Result<Option<ClaimedJob>, StoreError> {
        let token = new_token();
        let lease_until = now_ms + self.settings.lease.as_millis() as i64;
        let res = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .key("pk", s(pk))
            .update_expression(
                "SET #s = :running, lease_until = :lease, claim_token = :token, claimed_at = :now, \
                 attempts = if_not_exists(attempts, :zero) + :one, retry_shard = :shard, next_at = :lease \
                 REMOVE last_kick",
            )
            .condition_expression(
                "attribute_exists(pk) AND (#s = :pending OR (#s = :retry AND next_at <= :now) \
                 OR (#s = :running AND lease_until < :now))",
            )
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":running", s(JobStatus::Running.as_str()))
            .expression_attribute_values(":pending", s(JobStatus::Pending.as_str()))
            .expression_attribute_values(":retry", s(JobStatus::Retry.as_str()))
            .expression_attribute_values(":lease", n(lease_until))
            .expression_attribute_values(":token", s(&token))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":shard", s(&retry_shard(pk)))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        let Some(out) = applied(res, "UpdateItem(claim)")? else {
            return Ok(None);
        };
        let item = out.attributes.unwrap_or_default();
        let kind = match attr::opt_s(&item, "kind") {
            Some("dial") => Some(JobKind::Dial),
            Some("report") => Some(JobKind::Report),
            Some("note") => Some(JobKind::Note),
            Some("optout") => Some(JobKind::OptOut),
            Some("handoff") => Some(JobKind::Handoff),
            _ => None,
        };
        let (Some(kind), Some(payload)) = (kind, attr::opt_s(&item, "payload")) else {
            // A job this worker cannot read will never become readable: fail it now rather than
            // let it bounce between the stream and the sweep forever.
            self.fail_unreadable(pk, &token, now_ms).await?;
            return Ok(None);
        };
        Ok(Some(ClaimedJob {
            pk: pk.to_owned(),
            kind,
            payload: payload.to_owned(),
            attempts: attr::opt_n(&item, "attempts").unwrap_or(1).max(1) as u32,
            claim_token: token,
            received_at: attr::opt_n(&item, "received_at").unwrap_or(now_ms),
            event_id: attr::opt_s(&item, "event_id").map(str::to_owned),
            call_id: attr::opt_s(&item, "call_id").map(str::to_owned),
            verify_from: attr::opt_n(&item, "verify_from"),
            verify_tries: attr::opt_n(&item, "verify_tries").unwrap_or(0).max(0) as u32,
            snapshot: attr::opt_s(&item, "snapshot").map(str::to_owned),
            contact_id: attr::opt_s(&item, "contact_id").map(str::to_owned),
        }))
    }

    async fn fail_unreadable(&self, pk: &str, token: &str, now_ms: i64) -> Result<(), StoreError> {
        let res = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .key("pk", s(pk))
            .update_expression(
                "SET #s = :failed, last_error = :err, finished_at = :now REMOVE retry_shard, next_at, lease_until",
            )
            .condition_expression("claim_token = :token")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":failed", s(JobStatus::Failed.as_str()))
            .expression_attribute_values(
                ":err",
                s("the job item has no known kind or no payload (edited by hand?)"),
            )
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        applied(res, "UpdateItem(fail)").map(|_| ())
    }

    /// RUNNING → DIALING, with the customer snapshot, only while this run still owns a live
    /// lease. `false`: ownership was lost, so this run must not dial. `contact` is the Contact
    /// read from the Case when the payload names none: kept on the job, so a later run that asks
    /// Vapi about this dial knows who was called.
    pub async fn mark_dialing(
        &self,
        job: &ClaimedJob,
        snapshot: &str,
        contact: Option<&crate::ids::SalesforceId>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let until = now_ms + self.settings.dial_lease.as_millis() as i64;
        let set_contact = if contact.is_some() {
            ", contact_id = :contact"
        } else {
            ""
        };
        let res = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .key("pk", s(&job.pk))
            .update_expression(format!(
                "SET #s = :dialing, #snap = :snap, dialing_at = :now, lease_until = :until, next_at = :until{set_contact} \
                 REMOVE verify_from, verify_tries"
            ))
            .condition_expression("#s = :running AND claim_token = :token AND lease_until > :now")
            // Set first: the values added below extend this map.
            .set_expression_attribute_values(
                contact.map(|c| HashMap::from([(":contact".to_owned(), s(c.as_str()))])),
            )
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#snap", "snapshot")
            .expression_attribute_values(":dialing", s(JobStatus::Dialing.as_str()))
            .expression_attribute_values(":running", s(JobStatus::Running.as_str()))
            .expression_attribute_values(":snap", s(snapshot))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":token", s(&job.claim_token))
            .send()
            .await;
        applied(res, "UpdateItem(dialing)").map(|o| o.is_some())
    }

    /// Record how this run ended. A retryable failure with attempts left becomes RETRY at a
    /// backed-off time; with none left, FAILED with the last error. `Ok(None)`: this run no
    /// longer owns the job (nothing written). Otherwise the status written.
    pub async fn finish(
        &self,
        job: &ClaimedJob,
        outcome: &Outcome,
        now_ms: i64,
        extra: &[(&str, AttributeValue)],
    ) -> Result<Option<JobStatus>, StoreError> {
        let mut names: HashMap<String, String> = HashMap::from([("#s".into(), "status".into())]);
        let mut values: HashMap<String, AttributeValue> = HashMap::from([
            (":token".into(), s(&job.claim_token)),
            (":running".into(), s(JobStatus::Running.as_str())),
            (":dialing".into(), s(JobStatus::Dialing.as_str())),
            (":review".into(), s(JobStatus::NeedsReview.as_str())),
            (":now".into(), n(now_ms)),
        ]);
        let mut sets = vec!["#s = :new".to_owned(), "finished_at = :now".to_owned()];
        let (status, remove_index) = match outcome {
            Outcome::Retry { error, not_before } if job.attempts < self.settings.max_attempts => {
                let next = not_before
                    .unwrap_or(0)
                    .max(now_ms + self.backoff(job.attempts).as_millis() as i64);
                values.insert(":next".into(), n(next));
                values.insert(":err".into(), s(error));
                values.insert(":shard".into(), s(&retry_shard(&job.pk)));
                // The sweep may have removed the index attributes (DIALING → NEEDS_REVIEW).
                sets.push("retry_shard = :shard".into());
                sets.push("next_at = :next".into());
                sets.push("last_error = :err".into());
                (JobStatus::Retry, false)
            }
            Outcome::Defer { until, reason } => {
                values.insert(":next".into(), n(*until));
                values.insert(":reason".into(), s(reason));
                values.insert(":shard".into(), s(&retry_shard(&job.pk)));
                sets.push("retry_shard = :shard".into());
                values.insert(":one".into(), n(1));
                sets.push("next_at = :next".into());
                sets.push("reason = :reason".into());
                sets.push("attempts = attempts - :one".into());
                (JobStatus::Retry, false)
            }
            Outcome::Verify { why, since, next } => {
                values.insert(":next".into(), n(*next));
                values.insert(":since".into(), n(*since));
                values.insert(":reason".into(), s(why));
                values.insert(":shard".into(), s(&retry_shard(&job.pk)));
                values.insert(":one".into(), n(1));
                sets.push("retry_shard = :shard".into());
                sets.push("next_at = :next".into());
                sets.push("verify_from = :since".into());
                sets.push("reason = :reason".into());
                sets.push("verify_tries = if_not_exists(verify_tries, :zero) + :one".into());
                values.insert(":zero".into(), n(0));
                sets.push("attempts = attempts - :one".into());
                (JobStatus::Retry, false)
            }
            Outcome::Placed {
                call_id,
                detail,
                check_report_at,
            } => {
                values.insert(":call".into(), s(call_id));
                values.insert(":check".into(), n(*check_report_at));
                values.insert(":shard".into(), s(&retry_shard(&job.pk)));
                sets.push("call_id = :call".into());
                sets.push("retry_shard = :shard".into());
                sets.push("next_at = :check".into());
                if let Some(d) = detail {
                    values.insert(":detail".into(), s(d));
                    sets.push("detail = :detail".into());
                }
                (JobStatus::Done, false)
            }
            Outcome::Retry { error, .. } => {
                let msg = format!("gave up after {} attempts: {error}", job.attempts);
                values.insert(":err".into(), s(&msg));
                sets.push("last_error = :err".into());
                (JobStatus::Failed, true)
            }
            Outcome::Failed { error } => {
                values.insert(":err".into(), s(error));
                sets.push("last_error = :err".into());
                (JobStatus::Failed, true)
            }
            Outcome::Skipped { reason } => {
                values.insert(":reason".into(), s(reason));
                sets.push("reason = :reason".into());
                (JobStatus::Skipped, true)
            }
            Outcome::NeedsReview { why } => {
                values.insert(":reason".into(), s(why));
                sets.push("reason = :reason".into());
                (JobStatus::NeedsReview, true)
            }
            Outcome::Done { call_id, detail } => {
                if let Some(c) = call_id {
                    values.insert(":call".into(), s(c));
                    sets.push("call_id = :call".into());
                }
                if let Some(d) = detail {
                    values.insert(":detail".into(), s(d));
                    sets.push("detail = :detail".into());
                }
                (JobStatus::Done, true)
            }
        };
        values.insert(":new".into(), s(status.as_str()));
        for (i, (name, value)) in extra.iter().enumerate() {
            names.insert(format!("#x{i}"), (*name).to_owned());
            values.insert(format!(":x{i}"), value.clone());
            sets.push(format!("#x{i} = :x{i}"));
        }
        let mut expr = format!("SET {}", sets.join(", "));
        if remove_index {
            expr.push_str(" REMOVE retry_shard, next_at, lease_until");
        }
        let res = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .key("pk", s(&job.pk))
            .update_expression(expr)
            // NEEDS_REVIEW is included: the sweep may have given up on a slow dial that then
            // succeeded, and the true outcome from the same run must win.
            .condition_expression("claim_token = :token AND #s IN (:running, :dialing, :review)")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        applied(res, "UpdateItem(finish)").map(|o| o.map(|_| status))
    }

    /// Exponential backoff with jitter: base·2^(attempt−1), capped, then a random point in
    /// its upper half, so a burst of failures does not come back as a burst.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .settings
            .backoff_base
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.settings.backoff_max);
        let half = exp / 2;
        half + Duration::from_millis(rand::rng().random_range(0..=half.as_millis() as u64))
    }

    /// One pass over the due part of the `retry_due` index. Each transition is conditional, so
    /// concurrent sweeps and workers are safe.
    pub async fn sweep(&self, now_ms: i64) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        for shard in 0..RETRY_SHARDS {
            let mut start: Option<HashMap<String, AttributeValue>> = None;
            loop {
                let out = self
                    .store
                    .client()
                    .query()
                    .table_name(self.store.table())
                    .index_name(RETRY_INDEX)
                    .key_condition_expression("retry_shard = :shard AND next_at <= :now")
                    .expression_attribute_values(":shard", s(&format!("s{shard}")))
                    .expression_attribute_values(":now", n(now_ms))
                    .set_exclusive_start_key(start.take())
                    .limit(200)
                    .send()
                    .await
                    .map_err(|e| unavailable("Query(retry_due)", &e))?;
                for item in out.items() {
                    self.sweep_one(item, now_ms, &mut report).await?;
                }
                match out.last_evaluated_key {
                    Some(k) if !k.is_empty() => start = Some(k),
                    _ => break,
                }
            }
        }
        Ok(report)
    }

    async fn sweep_one(
        &self,
        item: &Item,
        now_ms: i64,
        report: &mut SweepReport,
    ) -> Result<(), StoreError> {
        let Some(pk) = attr::opt_s(item, "pk") else {
            return Ok(());
        };
        let status = attr::opt_s(item, "status").unwrap_or_default();
        let grace = now_ms + UNCLAIMED_GRACE_MS;
        let (update, condition, new_status, counter): (&str, &str, JobStatus, &mut u32) =
            match status {
                "RETRY" => (
                    "SET #s = :new, next_at = :grace",
                    "#s = :old AND next_at <= :now",
                    JobStatus::Pending,
                    &mut report.requeued,
                ),
                "RUNNING" => (
                    "SET #s = :new, next_at = :grace REMOVE claim_token",
                    "#s = :old AND lease_until < :now",
                    JobStatus::Pending,
                    &mut report.rescued,
                ),
                // The worker died while dialling: ask Vapi whether the call exists before
                // anything else (crate::jobs::reconcile), instead of handing it to a person.
                "DIALING" => (
                    "SET #s = :new, reason = :why, next_at = :now, verify_from = if_not_exists(dialing_at, :now) \
                     REMOVE lease_until",
                    "#s = :old AND lease_until < :now",
                    JobStatus::Retry,
                    &mut report.verify,
                ),
                // A placed call whose report watch is due: the worker asks Vapi (no write here).
                "DONE" => {
                    report.report_checks.push(pk.to_owned());
                    return Ok(());
                }
                // Nobody claimed it in time: its stream record was lost. Touching it makes a new one.
                "PENDING" => (
                    "SET #s = :new, next_at = :grace, last_kick = :now ADD kicks :one",
                    "#s = :old AND next_at <= :now",
                    JobStatus::Pending,
                    &mut report.kicked,
                ),
                _ => return Ok(()),
            };
        let res = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .key("pk", s(pk))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#s", "status")
            .set_expression_attribute_values(Some(
                [
                    (":new".to_owned(), s(new_status.as_str())),
                    (":old".to_owned(), s(status)),
                    (":now".to_owned(), n(now_ms)),
                ]
                .into_iter()
                .chain(update.contains(":grace").then(|| (":grace".to_owned(), n(grace))))
                .chain(update.contains(":one").then(|| (":one".to_owned(), n(1))))
                .chain(update.contains(":why").then(|| {
                    (":why".to_owned(), s("the dial's outcome is unknown (the worker stopped while dialing): asking Vapi"))
                }))
                .collect(),
            ))
            .send()
            .await;
        if applied(res, "UpdateItem(sweep)")?.is_some() {
            *counter += 1;
        }
        Ok(())
    }

    /// FAILED (or, with `force`, NEEDS_REVIEW) → PENDING with a fresh set of attempts.
    pub async fn redrive(&self, pk: &str, force: bool, now_ms: i64) -> Result<Redrive, StoreError> {
        let Some(item) = self.store.get(pk).await? else {
            return Ok(Redrive::NotFound);
        };
        let status = attr::opt_s(&item, "status").unwrap_or_default().to_owned();
        match status.as_str() {
            "FAILED" => {}
            "NEEDS_REVIEW" if force => {}
            "NEEDS_REVIEW" => return Ok(Redrive::NeedsForce),
            other => return Ok(Redrive::NotRedrivable(other.to_owned())),
        }
        let res = self
            .store
            .client()
            .update_item()
            .table_name(self.store.table())
            .key("pk", s(pk))
            .update_expression(
                "SET #s = :pending, attempts = :zero, retry_shard = :shard, next_at = :grace, redriven_at = :now \
                 ADD redrives :one REMOVE claim_token, lease_until",
            )
            .condition_expression("#s = :old")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":pending", s(JobStatus::Pending.as_str()))
            .expression_attribute_values(":old", s(&status))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":shard", s(&retry_shard(pk)))
            .expression_attribute_values(":grace", n(now_ms + UNCLAIMED_GRACE_MS))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        Ok(match applied(res, "UpdateItem(redrive)")? {
            Some(_) => Redrive::Requeued,
            None => Redrive::NotRedrivable("changed meanwhile".into()),
        })
    }

    /// Jobs in one status (a Scan with a filter: an operator's command, not a hot path).
    pub async fn list(&self, status: JobStatus) -> Result<Vec<Item>, StoreError> {
        let mut out_items = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let out = self
                .store
                .client()
                .scan()
                .table_name(self.store.table())
                .filter_expression("#s = :st AND attribute_exists(kind) AND begins_with(pk, :evt)")
                .expression_attribute_names("#s", "status")
                .expression_attribute_values(":st", s(status.as_str()))
                .expression_attribute_values(":evt", s("evt#"))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| unavailable("Scan", &e))?;
            out_items.extend(out.items().iter().cloned());
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => break,
            }
        }
        Ok(out_items)
    }
}

fn new_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(payload: &str) -> ClaimedJob {
        ClaimedJob {
            pk: "evt#sf#t".into(),
            kind: JobKind::Dial,
            payload: payload.into(),
            attempts: 1,
            claim_token: "t".into(),
            received_at: 0,
            event_id: None,
            call_id: None,
            verify_from: None,
            verify_tries: 0,
            snapshot: None,
            contact_id: None,
        }
    }

    #[test]
    fn an_unreadable_payload_fails_the_job_saying_why() {
        let read: Result<serde_json::Value, Outcome> = job(r#"{"a": 1}"#).payload_as();
        assert_eq!(read, Ok(serde_json::json!({"a": 1})));
        let read: Result<serde_json::Value, Outcome> = job("{not json").payload_as();
        match read {
            Err(Outcome::Failed { error }) => {
                assert!(error.starts_with("job payload unreadable: "), "{error}")
            }
            other => panic!("{other:?}"),
        }
    }
}
