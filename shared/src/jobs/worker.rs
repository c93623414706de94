//! The job worker: takes PENDING jobs off the DynamoDB stream, claims each, runs it and records
//! the outcome on the item. Each record gets its own span; only records whose outcome could not
//! be recorded at all (DynamoDB unavailable) are reported in `batchItemFailures`, because a
//! failed record blocks its shard until it succeeds or its retries run out.

use aws_lambda_events::event::dynamodb::Event as DynamodbEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use tracing::{error, info, info_span, warn, Instrument};

use crate::queue::item::{JobKind, JobStatus};
use crate::queue::{ClaimedJob, Outcome, SweepReport};
use crate::store::StoreError;
use crate::telemetry::{metric, Unit};

pub use super::context::Worker;

impl Worker {
    /// The Lambda handler for a stream batch. Records run concurrently; a job's own outcome
    /// (DONE, RETRY, FAILED…) is written on its item, so only a store failure fails a record.
    pub async fn handle(&self, event: DynamodbEvent) -> DynamoDbEventResponse {
        let mut tasks = tokio::task::JoinSet::new();
        for record in event.records {
            let seq = record.change.sequence_number.clone().unwrap_or_default();
            let image = &record.change.new_image;
            let text = |k: &str| match image.get(k) {
                Some(serde_dynamo::AttributeValue::S(s)) => Some(s.clone()),
                _ => None,
            };
            let (Some(pk), status) = (text("pk"), text("status")) else {
                warn!(sequence = %seq, "stream record without pk: ignored");
                continue;
            };
            // The stream filter passes only PENDING images; anything else is not ours to run.
            if status.as_deref() != Some(JobStatus::Pending.as_str()) {
                continue;
            }
            let span = info_span!("job", job_id = %pk, event_id = text("event_id").unwrap_or_default(), call_id = text("call_id").unwrap_or_default(), kind = text("kind").unwrap_or_default());
            let worker = self.clone();
            tasks.spawn(async move { (seq, worker.process(&pk).await) }.instrument(span));
        }
        let mut response = DynamoDbEventResponse::default();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((_, Ok(_))) => {}
                Ok((seq, Err(e))) => {
                    error!(error = %e, "job outcome not recorded; the record will be retried");
                    let mut failure = DynamoDbBatchItemFailure::default();
                    failure.item_identifier = Some(seq);
                    response.batch_item_failures.push(failure);
                }
                // A panic inside a job is a bug; its record is not reported so the shard moves
                // on, and the job's lease expiry brings it back through the sweep.
                Err(e) => error!(error = %e, "job task panicked"),
            }
        }
        response
    }

    /// Claim the job and run it. `Ok(None)`: not claimable (another worker has it, or it is done).
    pub async fn process(&self, pk: &str) -> Result<Option<JobStatus>, StoreError> {
        let now = crate::now_millis();
        let Some(job) = self.inner.queue.claim(pk, now).await? else {
            info!("job not claimable (owned by another worker or finished)");
            return Ok(None);
        };
        info!(attempt = job.attempts, "job claimed");
        if job.attempts > self.inner.config.queue.max_attempts {
            let outcome = Outcome::Failed {
                error: format!(
                    "claimed {} times without finishing (the worker keeps dying on it)",
                    job.attempts
                ),
            };
            return self.record(&job, outcome, &[]).await;
        }
        let (outcome, extra) = match job.kind {
            JobKind::Dial => Box::pin(super::dial::run(self, &job)).await?,
            JobKind::Report => Box::pin(super::report::run_report(self, &job)).await?,
            JobKind::Note => Box::pin(super::report::run_note(self, &job)).await?,
            JobKind::OptOut => Box::pin(super::optout::run(self, &job)).await?,
            JobKind::Handoff => Box::pin(super::handoff::run(self, &job)).await?,
        };
        self.record(&job, outcome, &extra).await
    }

    async fn record(
        &self,
        job: &ClaimedJob,
        outcome: Outcome,
        extra: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
    ) -> Result<Option<JobStatus>, StoreError> {
        let written = self
            .inner
            .queue
            .finish(job, &outcome, crate::now_millis(), extra)
            .await?;
        match written {
            Some(status) => {
                info!(status = status.as_str(), outcome = ?outcome, "job finished");
                metric(
                    &format!("jobs_{}", status.as_str().to_ascii_lowercase()),
                    1.0,
                    Unit::Count,
                );
            }
            None => warn!("job changed owner before its outcome was written; outcome dropped"),
        }
        Ok(written)
    }

    /// The scheduled sweep (DESIGN.md, "Delayed retries").
    pub async fn sweep(&self) -> Result<SweepReport, StoreError> {
        let report = self.inner.queue.sweep(crate::now_millis()).await?;
        if report != SweepReport::default() {
            info!(?report, "sweep moved jobs");
        }
        // Placed calls whose end-of-call report is overdue: ask Vapi for each (one failing check
        // does not stop the others; the next sweep tries it again).
        for pk in &report.report_checks {
            let span = info_span!("report_check", job_id = %pk);
            if let Err(e) = super::reconcile::check_report(self, pk)
                .instrument(span)
                .await
            {
                warn!(job_id = %pk, error = %e, "report check not done; the next sweep retries it");
            }
        }
        Ok(report)
    }
}

/// What the job-worker function is invoked with.
#[derive(Debug)]
pub enum WorkerEvent {
    Stream(DynamodbEvent),
    /// The EventBridge schedule (or `{"action":"sweep"}` by hand).
    Sweep,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unrecognised event for the job worker: {0} (expected a DynamoDB stream batch or a schedule)"
)]
pub struct UnknownEvent(String);

impl WorkerEvent {
    pub fn parse(v: serde_json::Value) -> Result<Self, UnknownEvent> {
        if v.get("Records").is_some() {
            return serde_json::from_value(v)
                .map(Self::Stream)
                .map_err(|e| UnknownEvent(e.to_string()));
        }
        let scheduled = v.get("source").and_then(|s| s.as_str()) == Some("aws.events")
            || v.get("detail-type").and_then(|s| s.as_str()) == Some("Scheduled Event")
            || v.get("action").and_then(|s| s.as_str()) == Some("sweep");
        if scheduled {
            Ok(Self::Sweep)
        } else {
            Err(UnknownEvent("neither Records nor a schedule".into()))
        }
    }
}
