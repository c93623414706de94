//! `make bench` part `transfer` (`BENCH_ONLY=transfer`): how fast Vapi's
//! `transfer-destination-request` is answered by the real webhook handler
//! (`VapiWebhookApp::handle`, in process, wired as on Lambda) on DynamoDB Local, from the call's
//! `call#` snapshot (one GetItem, no Salesforce request; `sfvapi::vapi::transfer`):
//!
//! - **transfer**: the snapshot names the Case owner's number: a warm transfer is answered;
//! - **declined**: the Case is owned by a queue and the rule has no fallback: the answer is the
//!   message the agent says, and the owner's callback Task is queued (one conditional PutItem).
//!
//! Every answer is checked for what it must carry (the owner's number and the warm mode, or the
//! message); the goal is a p99 under 50 ms, far inside Vapi's wait for the answer.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sfvapi::calls::{record_call, CallSnapshot, CustomerSnapshot, HandoffSnapshot, NewCall};
use sfvapi::ids::{SalesforceEventId, SalesforceId, VapiCallId};
use sfvapi::samples::{vapi_signed, LOCAL_VAPI_SECRET};
use sfvapi::vapi::webhook::VapiWebhookApp;
use sfvapi_local::demo::ADA;
use sfvapi_local::pump::PumpConfig;
use sfvapi_local::stack::{Stack, StackConfig};

use crate::callback::PathLatency;
use crate::stats::Samples;

/// The goal: p99 under this, in µs.
pub const GOAL_P99_US: f64 = 50_000.0;

const OWNER_PHONE: &str = "+14155550100";

#[derive(Debug, Clone)]
pub struct TransferBench {
    pub paths: Vec<PathLatency>,
}

impl TransferBench {
    pub fn json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("goal_p99_us".into(), json!(GOAL_P99_US));
        for p in &self.paths {
            m.insert(p.path.into(), p.json());
        }
        Value::Object(m)
    }
}

fn request(call_id: &str) -> lambda_http::Request {
    // Vapi OpenAPI `ServerMessageTransferDestinationRequest` (the shape of
    // shared/tests/fixtures/vapi/transfer-destination-request.json).
    let body = json!({"message": {
        "type": "transfer-destination-request",
        "timestamp": sfvapi::now_millis(),
        "call": {
            "id": call_id, "orgId": "org-bench", "type": "outboundPhoneCall",
            "status": "in-progress",
            "createdAt": "2026-11-26T10:00:00.000Z", "updatedAt": "2026-11-26T10:03:20.000Z",
        },
    }})
    .to_string();
    let event = vapi_signed(&body, LOCAL_VAPI_SECRET);
    lambda_http::request::from_str(&event.to_string())
        .unwrap_or_else(|_| lambda_http::Request::default())
}

/// Write `call#<id>` as the worker does at dial time, with `handoff`.
async fn seed(stack: &Stack, id: &str, handoff: HandoffSnapshot) -> Result<(), String> {
    let ada = SalesforceId::parse("c", ADA).map_err(|e| e.to_string())?;
    let snapshot = CallSnapshot {
        customer: CustomerSnapshot {
            name: Some("Ada Lovelace".into()),
            ..Default::default()
        },
        case: None,
        captured_at: Some(sfvapi::now_millis()),
        handoff: Some(handoff),
    };
    record_call(
        &stack.store,
        &NewCall {
            call_number: 1,
            call_id: VapiCallId::parse("id", id).map_err(|e| e.to_string())?,
            event_id: SalesforceEventId::parse("e", &format!("bench-transfer-{id}"))
                .map_err(|e| e.to_string())?,
            contact_id: ada,
            case_id: None,
            snapshot,
            created_at_ms: sfvapi::now_millis(),
            slot: None,
        },
        Duration::from_secs(86_400),
    )
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}

async fn measure(
    app: &VapiWebhookApp,
    stack: &Stack,
    path: &'static str,
    handoff: HandoffSnapshot,
    n: usize,
    expected: impl Fn(&Value) -> bool,
) -> Result<PathLatency, String> {
    // Each request is its own call (the declined path queues one callback Task per call).
    let ids: Vec<String> = (0..n + 30)
        .map(|i| format!("bench-{path}-{i}-{}", sfvapi::now_millis()))
        .collect();
    for id in &ids {
        seed(stack, id, handoff.clone()).await?;
    }
    // Warm up DynamoDB Local's JVM and the connection pools, as a warm Lambda would be.
    for id in &ids[..30] {
        let _ = app.handle(request(id)).await;
    }
    let mut s = Samples::with_capacity(n);
    let mut as_expected = 0;
    for id in &ids[30..] {
        let req = request(id);
        let t = Instant::now();
        let (status, body) = crate::harness::answer(app.handle(req).await);
        s.push(t.elapsed());
        let valid =
            vapi_schema::validate("ServerMessageResponseTransferDestinationRequest", &body).is_ok();
        if status == 200 && valid && expected(&body) {
            as_expected += 1;
        }
    }
    // Answered from call# alone: nothing reaches Salesforce on either path.
    Ok(PathLatency::of(path, s, n, as_expected, 0.0))
}

/// Start a stack, then measure each path `n` times. The stack's stream pump does not read the
/// stream (and sweeps once at start, then not for an hour): on Lambda the job worker that runs the queued callback
/// Task is another function, so its Salesforce requests must not share these two cores with
/// the webhook being measured.
pub async fn run(n: usize) -> Result<TransferBench, String> {
    let idle = Duration::from_secs(3600);
    let stack = Stack::start(StackConfig {
        pump: PumpConfig {
            read_stream: false,
            poll_interval: idle,
            tick_interval: idle,
            ..PumpConfig::default()
        },
        ..StackConfig::default()
    })
    .await
    .map_err(|e| e.to_string())?;
    let result = measure_all(&stack, n).await;
    stack.shutdown().await;
    result
}

async fn measure_all(stack: &Stack, n: usize) -> Result<TransferBench, String> {
    let (app, _) = crate::callback::webhook_app(stack).await?;
    let owner = HandoffSnapshot {
        source: "caseOwner".into(),
        number: Some(OWNER_PHONE.into()),
        owner_id: Some("0055e000001AbCdAAK".into()),
        caller_id: Some("+14155550123".into()),
        hours: None,
        unavailable: None,
    };
    let queue = HandoffSnapshot {
        source: "caseOwner".into(),
        number: None,
        owner_id: Some("00G5e000000AbCdEAK".into()),
        caller_id: Some("+14155550123".into()),
        hours: None,
        unavailable: Some("the Case is owned by a queue, which has no phone".into()),
    };
    let transfer = measure(&app, stack, "transfer", owner, n, |b| {
        b["destination"]["number"] == OWNER_PHONE
            && b["destination"]["transferPlan"]["mode"] == sfvapi::vapi::transfer::WARM_MODE
    })
    .await?;
    let declined = measure(&app, stack, "declined", queue, n, |b| {
        b.get("destination").is_none() && b.get("message").is_some()
    })
    .await?;
    Ok(TransferBench {
        paths: vec![transfer, declined],
    })
}
