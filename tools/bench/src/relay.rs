//! `make bench` part `relay` (`BENCH_ONLY=relay`): the EventBridge ingest path — the
//! `salesforce-relay` handler (`sfvapi::relay::RelayApp`) with the example routing document — on
//! DynamoDB Local, with every DynamoDB request counted per event by the client's own request
//! counter (`sfvapi::store::RequestCounter`, an SDK interceptor: retries included) and the
//! table's item count checked afterwards.
//!
//! Figures: requests per new relayed Platform Event (the goal: exactly 1 write, 0 reads, for
//! every event, not on average), per re-relayed copy (a new EventBridge id), per new
//! single-record CDC event, per event from a foreign org (0); the handler's latency p50/p99 and
//! sequential events/s; one SQS batch of 10 new events (10 writes, no batch failure).

use std::collections::HashMap;
use std::time::Instant;

use serde_json::{json, Value};
use sfvapi::config::Env;
use sfvapi::relay::{EventOutcome, RelayApp, RelayConfig};
use sfvapi::samples::{
    relay_cdc_case_update, relay_platform_event_with, LOCAL_RELAY_ORG_ID, OTHER_ORG_ID,
};

use crate::harness::fresh_store;
use crate::stats::{fmt_us, Samples};

/// One line of the bench table: `(metric, value, goal, met)`; an empty goal is a plain figure.
pub type Line = (String, String, String, Option<bool>);

/// What the part measured.
pub struct RelayBench {
    pub lines: Vec<Line>,
    pub json: Value,
}

fn example_routing() -> String {
    crate::ddb_local::repo_root()
        .join("events/routing-event-relay.yaml")
        .to_string_lossy()
        .into_owned()
}

fn statuses(out: &EventOutcome) -> Vec<&'static str> {
    match out {
        EventOutcome::Stored(jobs) => jobs.iter().map(|j| j.status).collect(),
        EventOutcome::Rejected(_) => vec!["rejected"],
    }
}

/// The request counts of one kind of event: each event's own snapshot, so "exactly one write
/// per event" is checked event by event.
#[derive(Default)]
struct Counts {
    per_event: Vec<HashMap<String, u64>>,
    latency: Samples,
    wrong_status: usize,
}

impl Counts {
    fn exactly(&self, op: &str, n: u64) -> bool {
        !self.per_event.is_empty()
            && self
                .per_event
                .iter()
                .all(|m| m.get(op).copied() == Some(n) && m.values().sum::<u64>() == n)
    }
    fn describe(&self) -> String {
        let mut kinds: Vec<String> = Vec::new();
        for m in &self.per_event {
            let mut v: Vec<String> = m.iter().map(|(k, n)| format!("{n} {k}")).collect();
            v.sort();
            let s = if v.is_empty() {
                "none".to_owned()
            } else {
                v.join(" + ")
            };
            if !kinds.contains(&s) {
                kinds.push(s);
            }
        }
        format!(
            "{} (every one of {} events{})",
            kinds.join(" | "),
            self.per_event.len(),
            if self.wrong_status > 0 {
                format!("; {} with an unexpected outcome", self.wrong_status)
            } else {
                String::new()
            }
        )
    }
    fn json(&mut self) -> Value {
        json!({
            "events": self.per_event.len(),
            "requests": self.per_event.first(),
            "all_equal": self.per_event.windows(2).all(|w| w[0] == w[1]),
            "unexpected_outcomes": self.wrong_status,
            "p50_us": self.latency.quantile_us(0.5),
            "p99_us": self.latency.quantile_us(0.99),
        })
    }
}

/// Run the part with `n` events of each kind.
pub async fn measure(n: usize) -> Result<RelayBench, String> {
    let (store, counter) = fresh_store().await;
    let vars: HashMap<&str, String> = HashMap::from([
        ("TABLE_NAME", store.table().to_owned()),
        ("SF_RELAY_ORG_IDS", LOCAL_RELAY_ORG_ID.to_owned()),
        ("ROUTING_FILE", example_routing()),
    ]);
    let config =
        RelayConfig::from_env(&Env::new(|k| vars.get(k).cloned())).map_err(|e| e.to_string())?;
    let app = RelayApp::new(config, store.clone());
    let run_id = sfvapi::now_millis();
    let uuid = |i: usize| format!("{run_id:x}-bench-{i:06}");

    // Warm the connection (not counted).
    let warm = relay_platform_event_with(LOCAL_RELAY_ORG_ID, "warm", &uuid(999_999));
    app.handle_event(&warm).await.map_err(|e| e.to_string())?;

    let run = |want: &'static str| {
        let counter = counter.clone();
        let app = app.clone();
        move |event: Value| {
            let counter = counter.clone();
            let app = app.clone();
            async move {
                counter.reset();
                let t = Instant::now();
                let out = app.handle_event(&event).await.map_err(|e| e.to_string())?;
                Ok::<_, String>((t.elapsed(), counter.snapshot(), statuses(&out) == [want]))
            }
        }
    };
    let mut new = Counts::default();
    // Interleaved with each relayed event: a bare conditional PutItem of the same kind of item on
    // the same client (the floor any handler stands on), so the two are timed under the same load.
    let mut bare = Samples::with_capacity(n);
    let mut relay_time = std::time::Duration::ZERO;
    let once = run("queued");
    for i in 0..n {
        let e = relay_platform_event_with(LOCAL_RELAY_ORG_ID, &format!("eb-new-{i}"), &uuid(i));
        let (d, c, ok) = once(e).await?;
        relay_time += d;
        new.latency.push(d);
        new.per_event.push(c);
        new.wrong_status += usize::from(!ok);
        let dial = sfvapi::salesforce::events::DialRequest {
            event_id: sfvapi::ids::SalesforceEventId::parse("id", &uuid(300_000 + i))
                .map_err(|e| e.to_string())?,
            contact_id: Some(
                sfvapi::ids::SalesforceId::parse("c", "0035e00000LowRvAAJ")
                    .map_err(|e| e.to_string())?,
            ),
            case_id: None,
            priority: None,
            reason: Some("Card payment declined at checkout".into()),
            source: sfvapi::salesforce::events::EventSource::EventRelay,
            rule: Some("call-request".into()),
        };
        let item = sfvapi::jobs::new_dial_job(
            &dial,
            sfvapi::now_millis(),
            std::time::Duration::from_secs(7 * 86_400),
        );
        let t = Instant::now();
        store.put_if_absent(item).await.map_err(|e| e.to_string())?;
        bare.push(t.elapsed());
    }
    let eps = n as f64 / relay_time.as_secs_f64().max(1e-9);
    let mut dup = Counts::default();
    let again = run("duplicate");
    for i in 0..n {
        // The same events re-relayed: EventBridge gives each copy a new id.
        let e = relay_platform_event_with(LOCAL_RELAY_ORG_ID, &format!("eb-again-{i}"), &uuid(i));
        let (d, c, ok) = again(e).await?;
        dup.latency.push(d);
        dup.per_event.push(c);
        dup.wrong_status += usize::from(!ok);
    }
    let mut cdc = Counts::default();
    let changed = run("queued");
    for i in 0..n {
        let mut e = relay_cdc_case_update(&format!("eb-cdc-{i}"));
        e["detail"]["payload"]["ChangeEventHeader"]["transactionKey"] =
            json!(format!("{run_id:x}-tx-{i:06}"));
        let (d, c, ok) = changed(e).await?;
        cdc.latency.push(d);
        cdc.per_event.push(c);
        cdc.wrong_status += usize::from(!ok);
    }
    let mut foreign = Counts::default();
    let refused = run("rejected");
    for i in 0..n.min(50) {
        let e = relay_platform_event_with(OTHER_ORG_ID, &format!("eb-x-{i}"), &uuid(500_000 + i));
        let (d, c, ok) = refused(e).await?;
        foreign.latency.push(d);
        foreign.per_event.push(c);
        foreign.wrong_status += usize::from(!ok);
    }
    // The production path: one SQS batch of 10 new events.
    let records: Vec<Value> = (0..10)
        .map(|i| {
            let e = relay_platform_event_with(
                LOCAL_RELAY_ORG_ID,
                &format!("eb-sqs-{i}"),
                &uuid(700_000 + i),
            );
            json!({"messageId": format!("m-{i}"), "body": e.to_string(), "eventSource": "aws:sqs"})
        })
        .collect();
    counter.reset();
    let answer = app
        .handle(json!({"Records": records}))
        .await
        .map_err(|e| e.to_string())?;
    let batch = counter.snapshot();
    let batch_ok = answer == json!({"batchItemFailures": []})
        && batch.get("PutItem").copied() == Some(10)
        && batch.values().sum::<u64>() == 10;

    // The table agrees: one item per distinct event (+1 warm-up, + the bare PutItems).
    let items = count_items(&store).await?;
    let expected_items = 1 + n + n + 10 + n;

    let one_write = new.exactly("PutItem", 1) && new.wrong_status == 0;
    let mut lines: Vec<Line> = vec![
        (
            "DynamoDB requests per new relayed Platform Event".into(),
            new.describe(),
            "1 write, 0 reads".into(),
            Some(one_write),
        ),
        (
            "per re-relayed copy (new EventBridge id)".into(),
            dup.describe(),
            "1 write attempt, 0 reads".into(),
            Some(dup.exactly("PutItem", 1) && dup.wrong_status == 0),
        ),
        (
            "per new CDC event (one record)".into(),
            cdc.describe(),
            "1 write, 0 reads".into(),
            Some(cdc.exactly("PutItem", 1) && cdc.wrong_status == 0),
        ),
        (
            "per event from a foreign org".into(),
            foreign.describe(),
            "0".into(),
            Some(
                foreign
                    .per_event
                    .iter()
                    .all(|m| m.values().sum::<u64>() == 0)
                    && foreign.wrong_status == 0,
            ),
        ),
        (
            "SQS batch of 10 new events".into(),
            format!(
                "{} PutItem, answer {answer}",
                batch.get("PutItem").copied().unwrap_or(0)
            ),
            "10 writes, no failure".into(),
            Some(batch_ok),
        ),
        (
            "table items after the run".into(),
            format!("{items} (expected {expected_items})"),
            "one per distinct event".into(),
            Some(items == expected_items),
        ),
    ];
    let (relay_p50, bare_p50) = (new.latency.quantile_us(0.5), bare.quantile_us(0.5));
    lines.push((
        "relay handler on DynamoDB Local, sequential: p50 | p99 | events/s".into(),
        format!(
            "{} | {} | {eps:.0}/s",
            fmt_us(relay_p50),
            fmt_us(new.latency.quantile_us(0.99))
        ),
        String::new(),
        None,
    ));
    lines.push((
        "a bare conditional PutItem of a job item, interleaved: p50 | p99; relay p50 / bare p50"
            .into(),
        format!(
            "{} | {} | {:.2}",
            fmt_us(bare_p50),
            fmt_us(bare.quantile_us(0.99)),
            relay_p50 / bare_p50.max(1e-9)
        ),
        String::new(),
        None,
    ));
    let json = json!({
        "events_per_kind": n,
        "new_platform_event": new.json(),
        "re_relayed": dup.json(),
        "new_cdc_single_record": cdc.json(),
        "foreign_org": foreign.json(),
        "sqs_batch_of_10": {"requests": batch, "answer": answer, "ok": batch_ok},
        "table_items": items,
        "expected_items": expected_items,
        "events_per_s_sequential": eps,
        "bare_putitem_interleaved": {"p50_us": bare_p50, "p99_us": bare.quantile_us(0.99)},
        "relay_p50_over_bare_p50": relay_p50 / bare_p50.max(1e-9),
        "one_write_per_new_event": one_write,
    });
    Ok(RelayBench { lines, json })
}

async fn count_items(store: &sfvapi::store::Store) -> Result<usize, String> {
    let mut n = 0usize;
    let mut start = None;
    loop {
        let out = store
            .client()
            .scan()
            .table_name(store.table())
            .consistent_read(true)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| sfvapi::secrets::error_chain(&e))?;
        n += out.count() as usize;
        match out.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return Ok(n),
        }
    }
}
