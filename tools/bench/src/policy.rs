//! `make bench` part `policy`: what the calling policy costs.
//!
//! - In process: `sfvapi::policy::check` (consent, the customer's zones, the window) for a mix of
//!   customers (one zone, a two-zone area code, a Contact zone field, a number abroad, consent
//!   required) at instants spread over a year, so both the "open now" and the "wait until" paths
//!   are timed. No network. The first call of a process also reads libphonenumber's zone map;
//!   it is timed on its own.
//! - DynamoDB requests of one dial, by operation, through the real worker on DynamoDB Local (a
//!   request counter on the client): the policy adds one `TransactWriteItems` (the opt-outs and
//!   the caps), whatever the cap. Without it, a dial made what it made before.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sfvapi::ids::{E164Phone, SalesforceId};
use sfvapi::policy::{check, Consent, Policy, Verdict};
use sfvapi::salesforce::rest::Contact;

use crate::harness::{World, CONTACT};
use crate::stats::{fmt_us, Samples};

pub struct PolicyBench {
    pub first_call_us: f64,
    pub checks: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub waits: usize,
    /// Requests of one dial by operation (the policy's `TransactWriteItems` included).
    pub per_dial: std::collections::BTreeMap<String, f64>,
    pub per_dial_total: f64,
    pub per_dial_with_cap_total: f64,
    pub dials: usize,
}

impl PolicyBench {
    pub fn json(&self) -> Value {
        json!({
            "first_check_us": self.first_call_us,
            "checks": self.checks, "p50_us": self.p50_us, "p99_us": self.p99_us, "waits": self.waits,
            "ddb_requests_per_dial": self.per_dial_total,
            "ddb_requests_per_dial_with_cap": self.per_dial_with_cap_total,
            "ddb_requests_per_dial_by_op": self.per_dial,
            "dials": self.dials,
        })
    }

    /// (metric, value, goal, met) lines for the report.
    pub fn lines(&self) -> Vec<(String, String, String, bool)> {
        let tx = self
            .per_dial
            .get("TransactWriteItems")
            .copied()
            .unwrap_or(0.0);
        vec![
            (
                format!(
                    "policy decision in process ({} checks, {} of them waits): p50 | p99 (first check of a process, reading the zone map: {})",
                    self.checks,
                    self.waits,
                    fmt_us(self.first_call_us)
                ),
                format!("{} | {}", fmt_us(self.p50_us), fmt_us(self.p99_us)),
                "p99 < 50 µs".into(),
                self.p99_us < 50.0,
            ),
            (
                format!(
                    "DynamoDB requests per dial (mean of {} dials after a first): without the policy's ledger | with it (no cap | a cap of 10/1h)",
                    self.dials
                ),
                format!(
                    "{:.1} | {:.1} | {:.1}",
                    self.per_dial_total - tx,
                    self.per_dial_total,
                    self.per_dial_with_cap_total
                ),
                "at most one more".into(),
                self.per_dial_total - (self.per_dial_total - tx) <= 1.0
                    && self.per_dial_with_cap_total <= self.per_dial_total,
            ),
        ]
    }
}

fn contact(phone: &str, custom: &[(&str, Value)]) -> (Contact, E164Phone) {
    let p = E164Phone::parse("Phone", phone).expect("a valid sample number");
    let c = Contact {
        id: SalesforceId::parse("contactId", CONTACT).expect("the sample id"),
        name: "Ada Lovelace".into(),
        phone: Some(p.clone()),
        mobile: None,
        phone_problems: Default::default(),
        email: None,
        do_not_call: false,
        annual_revenue: None,
        custom: custom
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    };
    (c, p)
}

/// The in-process decision, `n` times over a mix of customers and instants.
pub fn in_process(n: usize) -> (f64, Samples, usize) {
    let plain = Policy::default();
    let strict = Policy {
        time_zone_field: Some("Time_Zone__c".into()),
        consent: Some(Consent::Field {
            field: "Voice_Consent__c".into(),
            values: vec!["true".into()],
        }),
        ..Policy::default()
    };
    let customers = [
        (&plain, contact("+14155550123", &[])),
        // Idaho's 208: Boise and Los Angeles.
        (&plain, contact("+12083325555", &[])),
        (&plain, contact("+447700900123", &[])),
        (
            &strict,
            contact(
                "+12125550100",
                &[
                    ("Time_Zone__c", json!("America/Chicago")),
                    ("Voice_Consent__c", json!(true)),
                ],
            ),
        ),
    ];
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_default();
    let (c0, p0) = &customers[0].1;
    let t = Instant::now();
    let _ = check(customers[0].0, None, c0, p0, start);
    let first = t.elapsed().as_secs_f64() * 1e6;
    let mut samples = Samples::with_capacity(n);
    let mut waits = 0;
    for i in 0..n {
        let (policy, (c, p)) = &customers[i % customers.len()];
        // Every 37 minutes and a bit over the year: all hours, days and both DST changes.
        let at = start + chrono::Duration::seconds((i as i64 * 2_237) % (365 * 86_400));
        let t = Instant::now();
        let v = check(policy, None, c, p, at);
        samples.push(t.elapsed());
        if matches!(v, Verdict::Wait { .. }) {
            waits += 1;
        }
        std::hint::black_box(v);
    }
    (first, samples, waits)
}

/// Requests per dial through the worker (distinct events, one Contact), by operation: the mean
/// of `dials` dials after a first one (which also reads the Salesforce token and warms caches).
async fn requests_per_dial(
    extra: &[(&str, &str)],
    dials: usize,
) -> Result<(f64, std::collections::BTreeMap<String, f64>), String> {
    let w = World::new(extra, true).await;
    w.mount_vapi(201, None, None).await;
    let worker = w.worker().await;
    let mut by_op: std::collections::BTreeMap<String, f64> = Default::default();
    let mut total = 0u64;
    for i in 0..=dials {
        let body = json!({"eventId": format!("policy-bench-{i}"), "contactId": CONTACT, "priority": "High"});
        let req = sfvapi::salesforce::events::parse_json_event(body.to_string().as_bytes())
            .map_err(|e| e.to_string())?;
        let item =
            sfvapi::jobs::new_dial_job(&req, sfvapi::now_millis(), Duration::from_secs(86_400));
        w.store
            .put_if_absent(item)
            .await
            .map_err(|e| e.to_string())?;
        w.counter.reset();
        let status = worker
            .process(&format!("evt#sf#policy-bench-{i}"))
            .await
            .map_err(|e| e.to_string())?;
        if status != Some(sfvapi::jobs::JobStatus::Done) {
            return Err(format!("dial {i} ended {status:?}"));
        }
        if i == 0 {
            continue;
        }
        total += w.counter.total();
        for (op, n) in w.counter.snapshot() {
            *by_op.entry(op).or_default() += n as f64;
        }
    }
    for v in by_op.values_mut() {
        *v /= dials as f64;
    }
    Ok((total as f64 / dials as f64, by_op))
}

pub async fn run(checks: usize, dials: usize) -> Result<PolicyBench, String> {
    let (first_call_us, mut samples, waits) = in_process(checks);
    let (per_dial_total, per_dial) = requests_per_dial(
        &[("CALL_CAP", "none"), ("CALL_HOURS", "00:00-24:00")],
        dials,
    )
    .await?;
    // The same with a cap: the transaction holds four items instead of two, still one request
    // (10 per hour, the most a cap allows, so that every dial of the one Contact is admitted).
    let capped = dials.min(9);
    let (per_dial_with_cap_total, _) = requests_per_dial(
        &[("CALL_CAP", "10/1h"), ("CALL_HOURS", "00:00-24:00")],
        capped,
    )
    .await?;
    Ok(PolicyBench {
        first_call_us,
        checks: samples.len(),
        p50_us: samples.quantile_us(0.5),
        p99_us: samples.quantile_us(0.99),
        waits,
        per_dial,
        per_dial_total,
        per_dial_with_cap_total,
        dials,
    })
}
