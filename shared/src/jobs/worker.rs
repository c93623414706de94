//! The job worker: takes PENDING jobs off the DynamoDB stream, claims each, runs it and records
//! the outcome on the item. Each record gets its own span; only records whose outcome could not
//! be recorded at all (DynamoDB unavailable) are reported in `batchItemFailures`, because a
//! failed record blocks its shard until it succeeds or its retries run out.

use std::sync::Arc;

use aws_lambda_events::event::dynamodb::Event as DynamodbEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use tracing::{error, info, info_span, warn, Instrument};

use super::config::WorkerConfig;
use super::queue::{ClaimedJob, JobQueue, Outcome, SweepReport};
use super::{JobKind, JobStatus};
use crate::config::{ConfigError, Env};
use crate::pacing::CallSlots;
use crate::policy::Clock;
use crate::salesforce::Connection;
use crate::secrets::SecretsCache;
use crate::store::{Store, StoreError};
use crate::telemetry::{metric, Unit};
use crate::twilio::TwilioClient;
use crate::vapi::client::VapiClient;

pub(crate) struct Inner {
    pub config: WorkerConfig,
    pub queue: JobQueue,
    pub secrets: SecretsCache,
    pub salesforce: Connection,
    pub vapi: VapiClient,
    pub twilio: TwilioClient,
    /// `None` without `RECORDINGS_BUCKET`.
    pub recordings: Option<crate::recording::Recordings>,
    pub slots: CallSlots,
    /// The calling policy's clock, as an offset from the system's (0 in production; see
    /// [`Worker::set_clock`]).
    pub clock_offset_ms: std::sync::atomic::AtomicI64,
}

/// Built once per cold start; cheap to clone into per-record tasks.
#[derive(Clone)]
pub struct Worker {
    pub(crate) inner: Arc<Inner>,
}

impl Worker {
    pub fn new(
        config: WorkerConfig,
        store: Store,
        secrets: SecretsCache,
    ) -> Result<Self, ConfigError> {
        let salesforce =
            Connection::new(config.salesforce.clone(), store.clone(), secrets.clone())?;
        let vapi = VapiClient::new(&config.vapi_base_url, config.vapi_timeout).map_err(|e| {
            ConfigError::Invalid {
                var: "VAPI_BASE_URL",
                reason: e.to_string(),
            }
        })?;
        let twilio =
            TwilioClient::new(&config.twilio_base_url, config.twilio_timeout).map_err(|e| {
                ConfigError::Invalid {
                    var: "TWILIO_BASE_URL",
                    reason: e.to_string(),
                }
            })?;
        let recordings = match &config.recordings {
            Some(settings) => Some(crate::recording::Recordings::new(settings.clone()).map_err(
                |reason| ConfigError::Invalid {
                    var: "RECORDINGS_BUCKET",
                    reason,
                },
            )?),
            None => None,
        };
        let slots = CallSlots::new(
            store.clone(),
            config.pacing.max_concurrent_calls,
            config.pacing.slot_hold,
        );
        let queue = JobQueue::new(store, config.queue.clone());
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                queue,
                secrets,
                salesforce,
                vapi,
                twilio,
                recordings,
                slots,
                clock_offset_ms: std::sync::atomic::AtomicI64::new(0),
            }),
        })
    }

    pub async fn from_env() -> Result<Self, ConfigError> {
        let config = WorkerConfig::from_env(&Env::process())?;
        let (store, secrets) = config.common.clients().await;
        Self::new(config, store, secrets)
    }

    /// The clock the calling policy reads: the system's, unless a test or the local demo moved it.
    pub fn clock(&self) -> Clock {
        Clock::offset(
            self.inner
                .clock_offset_ms
                .load(std::sync::atomic::Ordering::Relaxed),
        )
    }

    /// Run the calling policy at another time (tests, the local demo); production never calls it.
    pub fn set_clock(&self, clock: Clock) {
        self.inner
            .clock_offset_ms
            .store(clock.offset_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    pub fn queue(&self) -> &JobQueue {
        &self.inner.queue
    }

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
