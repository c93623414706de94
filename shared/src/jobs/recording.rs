//! The report job's recording step: copy the call's recording into the stack's bucket once per
//! call (`crate::recording`), and record the outcome on `call#<id>`, which is also what makes a
//! second run of the report job copy nothing:
//!
//! | attribute on `call#` | meaning |
//! |---|---|
//! | `recording_key` | S, the object's key in `recording_bucket` (stored) |
//! | `recording_bucket` | S |
//! | `recording_bytes` | N |
//! | `recording_missing` | S, why nothing was stored (gone at Vapi, refused URL…): final |
//! | `recording_at` | N, ms, when either was written |

use tracing::{info, warn};

use super::context::Worker;
use crate::calls::call_pk;
use crate::ids::VapiCallId;
use crate::recording::{CopyError, Stored};
use crate::store::{attr, unavailable, StoreError, PK};
use crate::telemetry::{metric, Unit};

/// What became of the call's recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// In the bucket (now, or by an earlier run). `console` is the object's S3 console page.
    Stored { stored: Stored, console: String },
    /// Nothing stored, for good (the reason is on `call#` and the job).
    Missing(String),
    /// Not stored yet: a 5xx, a network or S3 failure. The job retries.
    Later(String),
}

impl Kept {
    /// The Task's line about the recording.
    pub fn task_line(&self, vapi_url: &str) -> String {
        match self {
            Self::Stored { stored, console } => format!(
                "Recording: {} (kept in the stack's bucket; open it in the AWS console: {console})",
                stored.s3_uri()
            ),
            Self::Missing(why) => format!("Recording: not kept ({why})"),
            Self::Later(_) => format!(
                "Recording: {vapi_url} (at Vapi for now; being copied to the stack's bucket)"
            ),
        }
    }
}

/// Copy `url` for `call` unless `call#` says it was done (or found missing) before.
pub(crate) async fn keep(
    w: &Worker,
    call: &VapiCallId,
    at_ms: i64,
    url: &str,
) -> Result<Option<Kept>, StoreError> {
    let Some(recordings) = w.inner.recordings.as_ref() else {
        return Ok(None);
    };
    let store = w.inner.queue.store();
    let pk = call_pk(call);
    if let Some(item) = store.get(&pk).await? {
        if let (Some(key), Some(bucket)) = (
            attr::opt_s(&item, "recording_key"),
            attr::opt_s(&item, "recording_bucket"),
        ) {
            info!(key, "recording already stored by an earlier run");
            let stored = Stored {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                bytes: attr::opt_n(&item, "recording_bytes")
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(0),
            };
            let console = stored.console_url(&recordings.region().await);
            return Ok(Some(Kept::Stored { stored, console }));
        }
        if let Some(why) = attr::opt_s(&item, "recording_missing") {
            return Ok(Some(Kept::Missing(why.to_owned())));
        }
    }
    match recordings.copy(call, at_ms, url).await {
        Ok(stored) => {
            record(
                w,
                &pk,
                "SET recording_key = :k, recording_bucket = :b, recording_bytes = :n, recording_at = :at, expires_at = if_not_exists(expires_at, :exp)",
                &[
                    (":k", attr::s(&stored.key)),
                    (":b", attr::s(&stored.bucket)),
                    (":n", attr::n(stored.bytes)),
                ],
            )
            .await?;
            metric("recordings_stored", 1.0, Unit::Count);
            let console = stored.console_url(&recordings.region().await);
            Ok(Some(Kept::Stored { stored, console }))
        }
        Err(e) if e.is_final() => {
            let why = e.to_string();
            warn!(reason = %why, "recording not kept");
            record(
                w,
                &pk,
                "SET recording_missing = :m, recording_at = :at, expires_at = if_not_exists(expires_at, :exp)",
                &[(":m", attr::s(&why))],
            )
            .await?;
            metric("recordings_missing", 1.0, Unit::Count);
            Ok(Some(Kept::Missing(why)))
        }
        Err(e @ (CopyError::Fetch(_) | CopyError::Store(_))) => {
            warn!(error = %e, "recording not copied yet");
            Ok(Some(Kept::Later(e.to_string())))
        }
        Err(e) => Ok(Some(Kept::Later(e.to_string()))),
    }
}

async fn record(
    w: &Worker,
    pk: &str,
    update: &str,
    values: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
) -> Result<(), StoreError> {
    let store = w.inner.queue.store();
    let now = crate::now_millis();
    let mut req = store
        .client()
        .update_item()
        .table_name(store.table())
        .key(PK, attr::s(pk))
        .update_expression(update)
        .expression_attribute_values(":at", attr::n(now))
        .expression_attribute_values(
            ":exp",
            attr::n(now / 1000 + w.inner.config.ttl.as_secs() as i64),
        );
    for (name, value) in values {
        req = req.expression_attribute_values(*name, value.clone());
    }
    req.send()
        .await
        .map_err(|e| unavailable("UpdateItem(call# recording)", &e))?;
    Ok(())
}
