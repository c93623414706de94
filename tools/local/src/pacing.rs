//! The dial-pacing scenario: many events at once against a Vapi org with a small concurrency
//! limit. The worker must call every event exactly once, never run more live calls than
//! `VAPI_MAX_CONCURRENT_CALLS`, and so never be blocked by Vapi. Used by the e2e test and by
//! `make bench` (the "dial pacing" line).
//!
//! The sandbox's fake Vapi enforces the same limit the way Vapi does (a 201 with
//! `subscriptionLimits.concurrencyBlocked: true`, docs.vapi.ai/calls/call-concurrency) and counts
//! live, peak and blocked calls; this module reads those counts from its control state.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sfvapi::samples::{flat_event, LOCAL_SIGNING_SECRET};
use sfvapi::signature::sign_salesforce_v2;

use crate::demo::{sandbox_log, scan, settled, ADA};
use crate::stack::{Stack, StackConfig};

/// What one pacing run showed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PacingRun {
    pub events: usize,
    pub max_concurrent_calls: u32,
    /// Accepted by the ingest (202).
    pub accepted: usize,
    /// `POST /call` answered 201 and not blocked, per event id.
    pub calls_per_event: BTreeMap<String, usize>,
    /// The most calls the fake Vapi had live at once.
    pub peak_live: u64,
    /// `POST /call`s the fake Vapi answered with `concurrencyBlocked`.
    pub blocked: u64,
    /// Dial jobs by final status.
    pub jobs: BTreeMap<String, usize>,
    pub wall_ms: u128,
}

impl PacingRun {
    /// The line `make bench` prints.
    pub fn line(&self) -> String {
        format!(
            "{} events, VAPI_MAX_CONCURRENT_CALLS={}: {} calls ({} events called exactly once), peak {} live, {} blocked, {:.1} s",
            self.events,
            self.max_concurrent_calls,
            self.calls_per_event.values().sum::<usize>(),
            self.calls_per_event.values().filter(|n| **n == 1).count(),
            self.peak_live,
            self.blocked,
            self.wall_ms as f64 / 1000.0
        )
    }
}

/// Start a stack whose worker and fake Vapi both allow `max` live calls, send `events` distinct
/// signed events for Ada, wait (at most `limit`) until every job and every call has settled,
/// and report. `sandbox` carries the other switches (its concurrency limit is set to `max`).
pub async fn run(
    events: usize,
    max: u32,
    mut sandbox: sandbox::Config,
    limit: Duration,
) -> Result<PacingRun, String> {
    // Calls long enough to overlap: each message of a call is this far apart.
    sandbox.vapi.message_delay = sandbox.vapi.message_delay.max(Duration::from_millis(60));
    let config = StackConfig {
        sandbox,
        extra_env: vec![
            ("VAPI_MAX_CONCURRENT_CALLS".into(), max.to_string()),
            ("VAPI_SLOT_WAIT_SECS".into(), "1".into()),
        ],
        ..StackConfig::default()
    };
    let stack = Stack::start(config).await.map_err(|e| e.to_string())?;
    let result = drive(&stack, events, max, limit).await;
    stack.shutdown().await;
    result
}

async fn drive(
    stack: &Stack,
    events: usize,
    max: u32,
    limit: Duration,
) -> Result<PacingRun, String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    control(
        &http,
        &stack.vapi_url,
        json!({"vapi": {"concurrency_limit": max}}),
    )
    .await?;

    let started = Instant::now();
    let ids: Vec<String> = (1..=events).map(|n| format!("pacing-{n:03}")).collect();
    let mut accepted = Vec::new();
    for id in &ids {
        let body = flat_event(id, ADA);
        let (ts, sig) = sign_salesforce_v2(
            LOCAL_SIGNING_SECRET.as_bytes(),
            body.as_bytes(),
            sfvapi::now_secs(),
        );
        let resp = http
            .post(format!("{}/salesforce/events", stack.runner_url))
            .header("content-type", "application/json")
            .header("x-sfvapi-timestamp", ts)
            .header("x-sfvapi-signature", sig)
            .body(body)
            .send()
            .await
            .map_err(|e| format!("POST /salesforce/events: {e}"))?;
        if resp.status().as_u16() == 202 {
            accepted.push(id.as_str());
        }
    }
    let items = loop {
        let items = scan(&stack.store).await?;
        if settled(&items, &accepted) {
            break items;
        }
        if started.elapsed() > limit {
            return Err(format!(
                "the pacing run did not settle within {} s",
                limit.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let wall_ms = started.elapsed().as_millis();

    let state = control(&http, &stack.vapi_url, json!({})).await?;
    let vapi = &state["state"]["vapi"];
    let count = |k: &str| {
        vapi[k]
            .as_u64()
            .ok_or_else(|| format!("the sandbox's control state has no vapi.{k}: {vapi}"))
    };
    let log = sandbox_log(&stack.vapi_url).await?;
    let mut calls_per_event: BTreeMap<String, usize> =
        ids.iter().map(|id| (id.clone(), 0)).collect();
    for e in log.iter().filter(|e| {
        e["service"] == "vapi"
            && e["direction"] == "in"
            && e["method"] == "POST"
            && e["path"].as_str().map(|p| p.trim_end_matches('/')) == Some("/call")
            && e["status"] == 201
    }) {
        let body: Value =
            serde_json::from_str(e["body"].as_str().unwrap_or_default()).unwrap_or(Value::Null);
        let resp: Value = serde_json::from_str(e["response_body"].as_str().unwrap_or_default())
            .unwrap_or(Value::Null);
        if resp["subscriptionLimits"]["concurrencyBlocked"] == true {
            continue;
        }
        if let Some(id) = body["assistantOverrides"]["metadata"]["sfvapiEventId"].as_str() {
            *calls_per_event.entry(id.to_owned()).or_default() += 1;
        }
    }
    let mut jobs = BTreeMap::new();
    for i in &items {
        let pk = sfvapi::store::attr::opt_s(i, "pk").unwrap_or_default();
        if pk.starts_with("evt#sf#pacing-") {
            let st = sfvapi::store::attr::opt_s(i, "status").unwrap_or("-");
            *jobs.entry(st.to_owned()).or_default() += 1;
        }
    }
    Ok(PacingRun {
        events,
        max_concurrent_calls: max,
        accepted: accepted.len(),
        calls_per_event,
        peak_live: count("peak_live")?,
        blocked: count("blocked")?,
        jobs,
        wall_ms,
    })
}

/// `POST /_sandbox/control` (an empty object only reads the state).
async fn control(http: &reqwest::Client, vapi_url: &str, body: Value) -> Result<Value, String> {
    let url = format!("{vapi_url}/_sandbox/control");
    let resp = http
        .post(&url)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.map_err(|e| format!("POST {url}: {e}"))?;
    if status != 200 {
        return Err(format!("POST {url} → {status}: {v}"));
    }
    Ok(v)
}
