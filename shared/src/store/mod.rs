//! The DynamoDB adapter: the one table, its items, and the conditional writes everything relies on.
//!
//! Dedup, the job queue and the token cache are all conditional writes on this table; nothing is
//! kept in memory between invocations except caches that are safe to lose.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::{BoxError, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;

use crate::secrets::error_chain;

pub type Item = HashMap<String, AttributeValue>;

/// The partition key attribute.
pub const PK: &str = "pk";
/// The TTL attribute (unix seconds).
pub const EXPIRES_AT: &str = "expires_at";
/// The sparse index the retry sweep queries: only items carrying `retry_shard` are in it.
pub const RETRY_INDEX: &str = "retry_due";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// DynamoDB did not answer or refused (throttling, network, IAM). Retry later; nothing was written
    /// that the caller should rely on.
    #[error("DynamoDB {op} failed: {detail}")]
    Unavailable { op: &'static str, detail: String },
    /// An item exists but lacks a field or has the wrong type: a bug or a manual edit.
    #[error("item {pk} is malformed: {detail}")]
    Corrupt { pk: String, detail: String },
}

/// The result of a conditional create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Created,
    /// An item with this key already exists; nothing was written.
    AlreadyExists,
}

/// The result of [`Store::put_if_absent_or_stored`].
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    Created,
    /// An item with this key already exists (here); nothing was written.
    Existing(Item),
}

/// Handle on the table. Cheap to clone; build once per cold start.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: Arc<str>,
}

impl Store {
    pub fn new(client: Client, table: impl Into<Arc<str>>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Write `item` only if no item has its key: dedup and enqueue in one request.
    pub async fn put_if_absent(&self, item: Item) -> Result<PutOutcome, StoreError> {
        let res = self
            .client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match res {
            Ok(_) => Ok(PutOutcome::Created),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(PutOutcome::AlreadyExists)
            }
            Err(e) => Err(unavailable("PutItem", &e)),
        }
    }

    /// [`Self::put_if_absent`] that, when the key is taken, also answers the stored item (from
    /// the same PutItem: `ReturnValuesOnConditionCheckFailure=ALL_OLD`, no extra read), so a
    /// duplicate's answer can say what is stored rather than what the event would become now.
    pub async fn put_if_absent_or_stored(&self, item: Item) -> Result<Stored, StoreError> {
        let pk = item
            .get(PK)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let res = self
            .client
            .put_item()
            .table_name(&*self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .send()
            .await;
        match res {
            Ok(_) => Ok(Stored::Created),
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                let old = match e.err() {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                        c.item().cloned()
                    }
                    _ => None,
                };
                match old {
                    Some(old) => Ok(Stored::Existing(old)),
                    // A store that does not return the old item: read it.
                    None => Ok(Stored::Existing(self.get(&pk).await?.unwrap_or_default())),
                }
            }
            Err(e) => Err(unavailable("PutItem", &e)),
        }
    }

    /// Strongly consistent read of one item.
    pub async fn get(&self, pk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&*self.table)
            .key(PK, AttributeValue::S(pk.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable("GetItem", &e))?;
        Ok(out.item)
    }
}

/// A conditional write's result: `Some(output)` if it was applied, `None` if its condition did
/// not hold (someone else changed the item: not an error), `Err` if DynamoDB failed.
pub fn applied<T, E>(res: Result<T, SdkError<E>>, op: &'static str) -> Result<Option<T>, StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    match res {
        Ok(out) => Ok(Some(out)),
        Err(e) if conditional_failed(&e) => Ok(None),
        Err(e) => Err(unavailable(op, &e)),
    }
}

fn conditional_failed<E>(e: &SdkError<E>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    matches!(e, SdkError::ServiceError(se) if se.err().code() == Some("ConditionalCheckFailedException"))
}

pub fn unavailable<E: std::error::Error + 'static>(op: &'static str, e: &E) -> StoreError {
    StoreError::Unavailable {
        op,
        detail: error_chain(e),
    }
}

/// DynamoDB client settings with timeouts suited to a request path: a hung endpoint becomes a 503
/// in seconds, well inside API Gateway's 30 s, instead of a gateway timeout.
pub fn client_config(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::config::Builder::from(sdk).timeout_config(crate::config::request_timeouts())
}

/// The table and the secrets cache, from the environment's AWS settings and the settings every
/// function shares: what every function builds once per cold start. It lives here, not in
/// `config`, because settings sit below the store (see the layering in `lib.rs`).
pub async fn connect(
    common: &crate::config::CommonConfig,
) -> (Store, crate::secrets::SecretsCache) {
    let sdk = crate::config::aws_sdk_config().await;
    let store = Store::new(client(&sdk), common.table_name.clone());
    let secrets =
        crate::secrets::SecretsCache::new(crate::config::secrets_client(&sdk), common.secrets_ttl);
    (store, secrets)
}

pub fn client(sdk: &aws_config::SdkConfig) -> Client {
    Client::from_conf(client_config(sdk).build())
}

/// Same, with a request counter attached (tests and benchmarks count DynamoDB round trips).
pub fn client_with_counter(sdk: &aws_config::SdkConfig, counter: RequestCounter) -> Client {
    Client::from_conf(client_config(sdk).interceptor(counter).build())
}

/// Counts every HTTP request the DynamoDB client sends, by operation (`PutItem`, `GetItem`, …),
/// retries included: the number a bill and a latency budget care about.
#[derive(Clone, Debug, Default)]
pub struct RequestCounter {
    total: Arc<AtomicU64>,
    by_op: Arc<Mutex<HashMap<String, u64>>>,
}

impl RequestCounter {
    pub fn total(&self) -> u64 {
        self.total.load(Ordering::SeqCst)
    }
    pub fn count(&self, op: &str) -> u64 {
        self.by_op
            .lock()
            .map(|m| m.get(op).copied().unwrap_or(0))
            .unwrap_or(0)
    }
    pub fn snapshot(&self) -> HashMap<String, u64> {
        self.by_op.lock().map(|m| m.clone()).unwrap_or_default()
    }
    pub fn reset(&self) {
        self.total.store(0, Ordering::SeqCst);
        if let Ok(mut m) = self.by_op.lock() {
            m.clear();
        }
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "sfvapi.RequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let op = context
            .request()
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("unknown")
            .to_owned();
        self.total.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut m) = self.by_op.lock() {
            *m.entry(op).or_default() += 1;
        }
        Ok(())
    }
}

/// Create the table as the SAM template defines it (used locally and in tests; production tables
/// come from `template.yaml`). Waits until it is ACTIVE; an existing table is left as it is.
pub async fn create_table(client: &Client, table: &str) -> Result<(), StoreError> {
    let attr = |name: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(t)
            .build()
    };
    let key = |name: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(t)
            .build()
    };
    let built = (|| {
        Ok::<_, aws_sdk_dynamodb::error::BuildError>((
            vec![
                attr(PK, ScalarAttributeType::S)?,
                attr("retry_shard", ScalarAttributeType::S)?,
                attr("next_at", ScalarAttributeType::N)?,
            ],
            key(PK, KeyType::Hash)?,
            GlobalSecondaryIndex::builder()
                .index_name(RETRY_INDEX)
                .key_schema(key("retry_shard", KeyType::Hash)?)
                .key_schema(key("next_at", KeyType::Range)?)
                .projection(
                    // The sweep decides each transition from these without reading the item.
                    Projection::builder()
                        .projection_type(ProjectionType::Include)
                        .non_key_attributes("status")
                        .non_key_attributes("lease_until")
                        .build(),
                )
                .build()?,
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::NewImage)
                .build()?,
            TimeToLiveSpecification::builder()
                .attribute_name(EXPIRES_AT)
                .enabled(true)
                .build()?,
        ))
    })()
    .map_err(|e| StoreError::Unavailable {
        op: "CreateTable",
        detail: e.to_string(),
    })?;
    let (attrs, pk, gsi, stream, ttl) = built;
    let res = client
        .create_table()
        .table_name(table)
        .set_attribute_definitions(Some(attrs))
        .key_schema(pk)
        .global_secondary_indexes(gsi)
        .billing_mode(BillingMode::PayPerRequest)
        .stream_specification(stream)
        .send()
        .await;
    match res {
        Ok(_) => {}
        Err(SdkError::ServiceError(e)) if e.err().is_resource_in_use_exception() => return Ok(()),
        Err(e) => return Err(unavailable("CreateTable", &e)),
    }
    for _ in 0..100 {
        let d = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| unavailable("DescribeTable", &e))?;
        if d.table().and_then(|t| t.table_status())
            == Some(&aws_sdk_dynamodb::types::TableStatus::Active)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(ttl)
        .send()
        .await
        .map_err(|e| unavailable("UpdateTimeToLive", &e))?;
    Ok(())
}

/// Small helpers for reading typed attributes out of an item.
pub mod attr {
    use super::{AttributeValue, Item, StoreError};

    pub fn s(v: impl Into<String>) -> AttributeValue {
        AttributeValue::S(v.into())
    }
    pub fn n(v: impl ToString) -> AttributeValue {
        AttributeValue::N(v.to_string())
    }

    pub fn get_s<'a>(item: &'a Item, pk: &str, name: &str) -> Result<&'a str, StoreError> {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
            .ok_or_else(|| StoreError::Corrupt {
                pk: pk.to_owned(),
                detail: format!("string attribute {name} missing"),
            })
    }
    pub fn opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
        item.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    }
    pub fn opt_n(item: &Item, name: &str) -> Option<i64> {
        item.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
    }
}
