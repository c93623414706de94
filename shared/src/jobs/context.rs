//! What every job handler has: the worker's settings and the clients built once per cold start
//! ([`Worker`]). Handlers (`dial`, `reconcile`, `report`, …) take a `&Worker` from here; the
//! dispatch that calls them lives in `worker`, above them all.

use std::sync::Arc;

use super::config::WorkerConfig;
use crate::config::{ConfigError, Env};
use crate::pacing::CallSlots;
use crate::policy::Clock;
use crate::queue::JobQueue;
use crate::salesforce::Connection;
use crate::secrets::{SecretString, SecretsCache};
use crate::store::Store;
use crate::twilio::TwilioClient;
use crate::vapi::client::VapiClient;
use crate::vapi::config::VapiSecret;

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
        let (store, secrets) = crate::store::connect(&config.common).await;
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
}

impl Worker {
    /// The Vapi private key from the worker's secret (cached), or why it cannot be had.
    pub(crate) async fn vapi_api_key(&self) -> Result<SecretString, String> {
        match self
            .inner
            .secrets
            .get_json::<VapiSecret>(&self.inner.config.vapi_secret_arn)
            .await
        {
            Ok(VapiSecret {
                api_key: Some(k), ..
            }) => Ok(k),
            Ok(_) => Err("the Vapi secret has no api_key".into()),
            Err(e) => Err(e.to_string()),
        }
    }
}
