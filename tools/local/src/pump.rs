//! The stream pump: Lambda's DynamoDB event source mapping, locally.
//!
//! It reads the table's stream on DynamoDB Local with the DynamoDB Streams API (DescribeTable →
//! `LatestStreamArn`, DescribeStream → shards, GetShardIterator, GetRecords in a loop, children
//! after their parents), turns each record into the JSON Lambda delivers and parses it into a
//! real `aws_lambda_events::event::dynamodb::Event`, applies the mapping's filter
//! ([`FILTER_PATTERN`]: `eventName` INSERT/MODIFY and `NewImage.status.S = "PENDING"`), and
//! hands batches of at most [`PumpConfig::batch_size`] records to the [`Sink`] — the job worker's
//! handler. As with `FunctionResponseTypes: [ReportBatchItemFailures]`, records listed in
//! `batchItemFailures` are redelivered from the lowest failed sequence number on, up to
//! [`PumpConfig::max_retries`] times; then they are dropped with an error log (where Lambda
//! would send them to the on-failure destination). A panicking sink fails its whole batch, as a
//! function error does.
//!
//! Besides the sink there are two more seams: a periodic [`Tick`] (the retry sweep the
//! schedule runs every minute in AWS; every second here) and a one-shot [`OnStart`] (the token
//! refresher's first run). Each is a boxed closure, so plugging a handler in is one line.
//!
//! Every record the pump sees, delivered or filtered out, is noted in the [`Tap`]: the demo's
//! timeline reads job transitions (PENDING → RUNNING → …) from it.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::Engine as _;
use serde_json::{json, Map, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The event source mapping's `FilterCriteria` pattern (what `template.yaml` must carry).
pub const FILTER_PATTERN: &str =
    r#"{"eventName":["INSERT","MODIFY"],"dynamodb":{"NewImage":{"status":{"S":["PENDING"]}}}}"#;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
/// The job worker's handler: one batch in, the records to retry out.
pub type Sink = Arc<dyn Fn(Event) -> BoxFuture<DynamoDbEventResponse> + Send + Sync>;
/// Called every [`PumpConfig::tick_interval`] (the retry sweep).
pub type Tick = Arc<dyn Fn() -> BoxFuture<()> + Send + Sync>;
/// Called once before the pump starts (the token refresher's first run).
pub type OnStart = Box<dyn FnOnce() -> BoxFuture<()> + Send>;

/// Wrap an async closure as a [`Sink`].
pub fn sink<F, Fut>(f: F) -> Sink
where
    F: Fn(Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = DynamoDbEventResponse> + Send + 'static,
{
    Arc::new(move |e| Box::pin(f(e)))
}

/// Wrap an async closure as a [`Tick`]; its output is dropped (the handler logs its own outcome).
pub fn tick<F, Fut>(f: F) -> Tick
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
{
    Arc::new(move || {
        let fut = f();
        Box::pin(async move {
            fut.await;
        })
    })
}

/// Wrap an async closure as an [`OnStart`].
pub fn on_start<F, Fut>(f: F) -> OnStart
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
{
    Box::new(move || {
        let fut = f();
        Box::pin(async move {
            fut.await;
        })
    })
}

/// Where reading starts on the shards open at startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    TrimHorizon,
    Latest,
}

#[derive(Debug, Clone)]
pub struct PumpConfig {
    /// `BatchSize` of the mapping (default 10).
    pub batch_size: usize,
    /// `MaximumRetryAttempts` (default 3): redeliveries of a failing record before it is dropped.
    pub max_retries: u32,
    /// Pause between GetRecords rounds that returned nothing.
    pub poll_interval: Duration,
    /// Pause before a redelivery.
    pub retry_delay: Duration,
    pub tick_interval: Duration,
    pub start: StartingPosition,
    /// `false`: the stream is not read at all, only the tick loop runs, for a caller that hands
    /// the jobs to a worker itself (the watch test drives the functions sample by sample, and a
    /// reader that first reads after a sample was written would run that job a second time).
    pub read_stream: bool,
}

impl Default for PumpConfig {
    fn default() -> Self {
        Self {
            batch_size: 10,
            max_retries: 3,
            poll_interval: Duration::from_millis(100),
            retry_delay: Duration::from_millis(200),
            tick_interval: Duration::from_secs(1),
            start: StartingPosition::TrimHorizon,
            read_stream: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PumpError {
    #[error(
        "table {0} has no stream: create it with sfvapi::store::create_table (stream NEW_IMAGE)"
    )]
    NoStream(String),
    #[error("DynamoDB Streams {op} failed: {detail}; is AWS_ENDPOINT_URL_DYNAMODB_STREAMS set (scripts/services.sh does)?")]
    Api { op: &'static str, detail: String },
}

fn api<E: std::error::Error + 'static>(op: &'static str, e: &E) -> PumpError {
    PumpError::Api {
        op,
        detail: sfvapi::secrets::error_chain(e),
    }
}

/// One stream record as the pump saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub pk: String,
    pub event_name: String,
    /// `NewImage.status`, if any.
    pub status: Option<String>,
    pub sequence_number: String,
    /// Unix ms when the pump read it.
    pub seen_at_ms: i64,
    /// Whether it passed the filter and went to the sink.
    pub delivered: bool,
}

/// Every record seen, in stream order per shard.
#[derive(Clone, Default)]
pub struct Tap(Arc<Mutex<Vec<Observed>>>);

impl Tap {
    pub fn all(&self) -> Vec<Observed> {
        lock(&self.0).clone()
    }
    fn push(&self, o: Observed) {
        lock(&self.0).push(o);
    }
}

/// Counters of what the pump did.
#[derive(Debug, Default)]
pub struct Stats {
    pub records_seen: AtomicU64,
    pub delivered: AtomicU64,
    pub redelivered: AtomicU64,
    pub dropped: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The running pump (and its tick loop).
pub struct Pump {
    pub tap: Tap,
    pub stats: Arc<Stats>,
    pub stream_arn: String,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Pump {
    /// Find the table's stream and start reading it; returns once the stream is found.
    pub async fn start(
        ddb: &aws_sdk_dynamodb::Client,
        streams: aws_sdk_dynamodbstreams::Client,
        table: &str,
        config: PumpConfig,
        sink: Sink,
        tick: Option<Tick>,
    ) -> Result<Self, PumpError> {
        let described = ddb
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| api("DescribeTable", &e))?;
        let stream_arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| PumpError::NoStream(table.to_owned()))?
            .to_owned();
        let region = streams
            .config()
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into());
        let (tx, rx) = watch::channel(false);
        let tap = Tap::default();
        let stats = Arc::new(Stats::default());
        let reader = Reader {
            client: streams,
            stream_arn: stream_arn.clone(),
            region,
            config: config.clone(),
            sink,
            tap: tap.clone(),
            stats: stats.clone(),
            shards: HashMap::new(),
            finished: HashSet::new(),
            first_describe: true,
        };
        let mut tasks = Vec::new();
        if config.read_stream {
            tasks.push(tokio::spawn(reader.run(rx.clone())));
        }
        if let Some(tick) = tick {
            tasks.push(tokio::spawn(tick_loop(tick, config.tick_interval, rx)));
        }
        Ok(Self {
            tap,
            stats,
            stream_arn,
            stop: tx,
            tasks,
        })
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

async fn tick_loop(tick: Tick, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                // A panicking sweep must not end the loop: the next tick tries again.
                if let Err(e) = tokio::spawn(tick()).await {
                    tracing::error!(error = %e, "pump: tick handler panicked");
                }
            }
            _ = stop.changed() => break,
        }
    }
}

struct ShardState {
    parent: Option<String>,
    iterator: Option<String>,
    /// Last sequence number handed on, to resume after an expired iterator.
    last_seq: Option<String>,
    /// Closed shards present at startup are skipped when starting at LATEST.
    skip: bool,
}

struct Reader {
    client: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    region: String,
    config: PumpConfig,
    sink: Sink,
    tap: Tap,
    stats: Arc<Stats>,
    shards: HashMap<String, ShardState>,
    finished: HashSet<String>,
    first_describe: bool,
}

impl Reader {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut since_describe: u32 = 0;
        loop {
            if *stop.borrow() {
                break;
            }
            // New shards appear when DynamoDB rolls a shard over: look every ~1 s.
            if since_describe == 0 || self.shards.is_empty() {
                if let Err(e) = self.describe().await {
                    tracing::warn!(error = %e, "pump: DescribeStream failed; retrying");
                }
            }
            since_describe = (since_describe + 1) % 10;
            let got = self.read_round().await;
            if got == 0 {
                tokio::select! {
                    _ = tokio::time::sleep(self.config.poll_interval) => {}
                    _ = stop.changed() => break,
                }
            }
        }
    }

    async fn describe(&mut self) -> Result<(), PumpError> {
        let mut start: Option<String> = None;
        let mut all = Vec::new();
        loop {
            let out = self
                .client
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start.clone())
                .send()
                .await
                .map_err(|e| api("DescribeStream", &e))?;
            let Some(desc) = out.stream_description() else {
                break;
            };
            all.extend(desc.shards().iter().cloned());
            match desc.last_evaluated_shard_id() {
                Some(last) => start = Some(last.to_owned()),
                None => break,
            }
        }
        let initial = std::mem::replace(&mut self.first_describe, false);
        for shard in all {
            let Some(id) = shard.shard_id() else { continue };
            if self.shards.contains_key(id) || self.finished.contains(id) {
                continue;
            }
            let closed = shard
                .sequence_number_range()
                .and_then(|r| r.ending_sequence_number())
                .is_some();
            let skip = initial && self.config.start == StartingPosition::Latest && closed;
            self.shards.insert(
                id.to_owned(),
                ShardState {
                    parent: shard.parent_shard_id().map(str::to_owned),
                    iterator: None,
                    last_seq: None,
                    skip,
                },
            );
        }
        Ok(())
    }

    /// One GetRecords per readable shard. Returns how many records were read.
    async fn read_round(&mut self) -> usize {
        let ids: Vec<String> = self.shards.keys().cloned().collect();
        let mut total = 0;
        for id in ids {
            let Some(state) = self.shards.get(&id) else {
                continue;
            };
            if state.skip {
                self.finish(&id);
                continue;
            }
            // Children wait until their parent is read to the end, so order per key holds.
            if let Some(parent) = &state.parent {
                if self.shards.contains_key(parent) && !self.finished.contains(parent) {
                    continue;
                }
            }
            match self.read_shard(&id).await {
                Ok(n) => total += n,
                Err(e) => {
                    tracing::warn!(shard = %id, error = %e, "pump: reading a shard failed; retrying")
                }
            }
        }
        total
    }

    fn finish(&mut self, id: &str) {
        self.shards.remove(id);
        self.finished.insert(id.to_owned());
    }

    async fn iterator(&self, id: &str, state: &ShardState) -> Result<Option<String>, PumpError> {
        let mut req = self
            .client
            .get_shard_iterator()
            .stream_arn(&self.stream_arn)
            .shard_id(id);
        req = match (&state.last_seq, self.config.start) {
            (Some(seq), _) => req
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(seq),
            (None, StartingPosition::Latest) if state.parent.is_none() => {
                req.shard_iterator_type(ShardIteratorType::Latest)
            }
            (None, _) => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let out = req.send().await.map_err(|e| api("GetShardIterator", &e))?;
        Ok(out.shard_iterator().map(str::to_owned))
    }

    async fn read_shard(&mut self, id: &str) -> Result<usize, PumpError> {
        let iterator = match self.shards.get(id).and_then(|s| s.iterator.clone()) {
            Some(it) => it,
            None => {
                let Some(state) = self.shards.get(id) else {
                    return Ok(0);
                };
                match self.iterator(id, state).await? {
                    Some(it) => it,
                    None => {
                        self.finish(id);
                        return Ok(0);
                    }
                }
            }
        };
        let out = match self
            .client
            .get_records()
            .shard_iterator(&iterator)
            .limit(100)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) => {
                // An expired or trimmed iterator is replaced on the next round.
                if let Some(s) = self.shards.get_mut(id) {
                    s.iterator = None;
                }
                return Err(api("GetRecords", &e));
            }
        };
        let records = out.records().to_vec();
        let next = out.next_shard_iterator().map(str::to_owned);
        let n = records.len();
        if !records.is_empty() {
            self.process(&records).await;
            if let Some(seq) = records
                .last()
                .and_then(|r| r.dynamodb())
                .and_then(|d| d.sequence_number())
            {
                if let Some(s) = self.shards.get_mut(id) {
                    s.last_seq = Some(seq.to_owned());
                }
            }
        }
        match next {
            Some(next) => {
                if let Some(s) = self.shards.get_mut(id) {
                    s.iterator = Some(next);
                }
            }
            None => self.finish(id),
        }
        Ok(n)
    }

    /// Filter, note, batch and deliver records in order.
    async fn process(&self, records: &[Record]) {
        let mut batch: Vec<Value> = Vec::new();
        for r in records {
            let json = lambda_record(r, &self.stream_arn, &self.region);
            let delivered = matches_filter(&json);
            self.stats.records_seen.fetch_add(1, Ordering::Relaxed);
            self.tap.push(Observed {
                pk: json["dynamodb"]["Keys"]["pk"]["S"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                event_name: json["eventName"].as_str().unwrap_or_default().to_owned(),
                status: json["dynamodb"]["NewImage"]["status"]["S"]
                    .as_str()
                    .map(str::to_owned),
                sequence_number: json["dynamodb"]["SequenceNumber"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                seen_at_ms: sfvapi::now_millis(),
                delivered,
            });
            if delivered {
                batch.push(json);
                if batch.len() >= self.config.batch_size.max(1) {
                    self.deliver(std::mem::take(&mut batch)).await;
                }
            }
        }
        if !batch.is_empty() {
            self.deliver(batch).await;
        }
    }

    async fn deliver(&self, batch: Vec<Value>) {
        let mut pending = batch;
        let mut retries = 0;
        loop {
            let event: Event = match serde_json::from_value(json!({ "Records": pending })) {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!(error = %e, "pump: built a stream event aws_lambda_events cannot parse; batch dropped");
                    self.stats
                        .dropped
                        .fetch_add(pending.len() as u64, Ordering::Relaxed);
                    return;
                }
            };
            let count = pending.len() as u64;
            self.stats.delivered.fetch_add(count, Ordering::Relaxed);
            let outcome = tokio::spawn((self.sink)(event)).await;
            let seqs: Vec<&str> = pending
                .iter()
                .map(|r| r["dynamodb"]["SequenceNumber"].as_str().unwrap_or_default())
                .collect();
            let failed_from = match outcome {
                Ok(resp) => first_failed(&seqs, &resp),
                Err(e) => {
                    tracing::error!(error = %e, "pump: the sink panicked; the whole batch is retried");
                    Some(0)
                }
            };
            let Some(from) = failed_from else { return };
            retries += 1;
            let left = pending.len() - from;
            if retries > self.config.max_retries {
                tracing::error!(
                    records = left,
                    first_sequence_number = seqs[from],
                    "pump: retries exhausted; records dropped (Lambda would send them to the on-failure destination)"
                );
                self.stats.dropped.fetch_add(left as u64, Ordering::Relaxed);
                return;
            }
            tracing::warn!(
                records = left,
                attempt = retries,
                "pump: batch item failures reported; redelivering"
            );
            self.stats
                .redelivered
                .fetch_add(left as u64, Ordering::Relaxed);
            pending.drain(..from);
            tokio::time::sleep(self.config.retry_delay).await;
        }
    }
}

/// The index from which a batch is retried: the lowest failed record. An identifier that is
/// empty or not in the batch fails the whole batch, as Lambda treats it.
pub fn first_failed(seqs: &[&str], resp: &DynamoDbEventResponse) -> Option<usize> {
    let mut first: Option<usize> = None;
    for f in &resp.batch_item_failures {
        let idx = match f.item_identifier.as_deref() {
            Some(id) if !id.is_empty() => seqs.iter().position(|s| *s == id).unwrap_or(0),
            _ => 0,
        };
        first = Some(first.map_or(idx, |f| f.min(idx)));
    }
    first
}

/// The mapping's filter, evaluated on the record as Lambda sees it.
pub fn matches_filter(record: &Value) -> bool {
    matches!(record["eventName"].as_str(), Some("INSERT" | "MODIFY"))
        && record["dynamodb"]["NewImage"]["status"]["S"].as_str() == Some("PENDING")
}

/// One stream record in the JSON shape of a Lambda DynamoDB event record.
pub fn lambda_record(r: &Record, stream_arn: &str, region: &str) -> Value {
    let mut change = Map::new();
    if let Some(d) = r.dynamodb() {
        if let Some(t) = d.approximate_creation_date_time() {
            change.insert(
                "ApproximateCreationDateTime".into(),
                json!(t.as_secs_f64().floor()),
            );
        }
        if let Some(k) = d.keys() {
            change.insert("Keys".into(), image(k));
        }
        if let Some(i) = d.new_image() {
            change.insert("NewImage".into(), image(i));
        }
        if let Some(i) = d.old_image() {
            change.insert("OldImage".into(), image(i));
        }
        if let Some(s) = d.sequence_number() {
            change.insert("SequenceNumber".into(), json!(s));
        }
        change.insert("SizeBytes".into(), json!(d.size_bytes().unwrap_or(0)));
        if let Some(v) = d.stream_view_type() {
            change.insert("StreamViewType".into(), json!(v.as_str()));
        }
    }
    json!({
        "eventID": r.event_id().unwrap_or_default(),
        "eventName": r.event_name().map(|n| n.as_str()).unwrap_or_default(),
        "eventVersion": r.event_version().unwrap_or("1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": Value::Object(change),
        "eventSourceARN": stream_arn,
    })
}

fn image(m: &HashMap<String, AttributeValue>) -> Value {
    Value::Object(m.iter().map(|(k, v)| (k.clone(), attribute(v))).collect())
}

/// A Streams `AttributeValue` in DynamoDB's JSON wire format (what Lambda puts in the event).
pub fn attribute(v: &AttributeValue) -> Value {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    match v {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": b64(b.as_ref())}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(b) => json!({"NULL": b}),
        AttributeValue::Ss(v) => json!({"SS": v}),
        AttributeValue::Ns(v) => json!({"NS": v}),
        AttributeValue::Bs(v) => {
            json!({"BS": v.iter().map(|b| b64(b.as_ref())).collect::<Vec<_>>()})
        }
        AttributeValue::L(v) => json!({"L": v.iter().map(attribute).collect::<Vec<_>>()}),
        AttributeValue::M(m) => json!({"M": image(m)}),
        // A type newer than this SDK: NULL keeps the record parseable, and the log says so.
        _ => {
            tracing::warn!("pump: unknown attribute type in a stream record");
            json!({"NULL": true})
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lambda_events::event::streams::DynamoDbBatchItemFailure;
    use aws_sdk_dynamodbstreams::types::{OperationType, StreamRecord, StreamViewType};

    fn record(status: &str, name: OperationType, seq: &str) -> Record {
        Record::builder()
            .event_id("e1")
            .event_name(name)
            .dynamodb(
                StreamRecord::builder()
                    .keys("pk", AttributeValue::S("evt#sf#a".into()))
                    .new_image("pk", AttributeValue::S("evt#sf#a".into()))
                    .new_image("status", AttributeValue::S(status.into()))
                    .new_image("attempts", AttributeValue::N("0".into()))
                    .new_image(
                        "m",
                        AttributeValue::M(HashMap::from([(
                            "l".into(),
                            AttributeValue::L(vec![AttributeValue::Bool(true)]),
                        )])),
                    )
                    .sequence_number(seq)
                    .size_bytes(42)
                    .stream_view_type(StreamViewType::NewImage)
                    .approximate_creation_date_time(aws_smithy_types::DateTime::from_secs(
                        1_795_690_000,
                    ))
                    .build(),
            )
            .build()
    }

    #[test]
    fn records_become_real_lambda_events_and_the_filter_matches_the_template() {
        let r = lambda_record(
            &record("PENDING", OperationType::Insert, "100"),
            "arn:s",
            "us-east-1",
        );
        assert!(matches_filter(&r));
        let event: Event = serde_json::from_value(json!({ "Records": [r] })).unwrap();
        let rec = &event.records[0];
        assert_eq!(rec.event_name, "INSERT");
        assert_eq!(rec.event_source.as_deref(), Some("aws:dynamodb"));
        assert_eq!(rec.change.sequence_number.as_deref(), Some("100"));
        #[derive(serde::Deserialize)]
        struct Img {
            status: String,
            attempts: i64,
        }
        let img: Img = serde_dynamo::from_item(rec.change.new_image.clone()).unwrap();
        assert_eq!((img.status.as_str(), img.attempts), ("PENDING", 0));
        assert_eq!(
            serde_json::to_value(&rec.change.keys).unwrap()["pk"]["S"],
            "evt#sf#a"
        );

        for (status, name) in [
            ("RUNNING", OperationType::Modify),
            ("PENDING", OperationType::Remove),
        ] {
            let r = lambda_record(&record(status, name, "1"), "arn:s", "us-east-1");
            assert!(!matches_filter(&r));
        }
        assert!(matches_filter(&lambda_record(
            &record("PENDING", OperationType::Modify, "1"),
            "a",
            "r"
        )));
    }

    #[test]
    fn redelivery_starts_at_the_lowest_failed_record() {
        let fail = |ids: &[Option<&str>]| {
            let mut r = DynamoDbEventResponse::default();
            r.batch_item_failures = ids
                .iter()
                .map(|id| {
                    let mut f = DynamoDbBatchItemFailure::default();
                    f.item_identifier = id.map(str::to_owned);
                    f
                })
                .collect();
            r
        };
        let seqs = ["1", "2", "3"];
        assert_eq!(first_failed(&seqs, &fail(&[])), None);
        assert_eq!(first_failed(&seqs, &fail(&[Some("3"), Some("2")])), Some(1));
        assert_eq!(first_failed(&seqs, &fail(&[Some("9")])), Some(0));
        assert_eq!(first_failed(&seqs, &fail(&[None])), Some(0));
    }
}
