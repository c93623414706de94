//! `make bench` part `callback` (`BENCH_ONLY=callback`): how fast an inbound call's
//! `assistant-request` is answered, by the real webhook handler (`VapiWebhookApp::handle`,
//! in process, wired as on Lambda) on DynamoDB Local, on each of its paths:
//!
//! - **snapshot**: the caller's number is in sfvapi's recent-callers index (`phone#` → `call#`):
//!   two GetItems and the inbound call's `call#` write, no Salesforce request;
//! - **search**: a number sfvapi never called, stored in Salesforce as "(415) 555-0142": the SOSL
//!   search and the open-Case query against the sandbox's fake Salesforce over loopback HTTP, then
//!   the `call#` write;
//! - **generic**: a number on no Contact: the index miss and the search that finds nobody.
//!
//! The local stack (`sfvapi_local::stack`) provides the table, the secrets, the sandbox and the
//! Salesforce token; every request is a fresh call id, signed like Vapi's HMAC credential.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sfvapi::calls::{record_call, CallSnapshot, CaseSnapshot, CustomerSnapshot, NewCall};
use sfvapi::config::Env;
use sfvapi::ids::{E164Phone, SalesforceEventId, SalesforceId, VapiCallId};
use sfvapi::samples::{vapi_signed, LOCAL_CONTEXT_KEY, LOCAL_VAPI_SECRET};
use sfvapi::secrets::{SecretString, SecretsCache};
use sfvapi::vapi::config::VapiWebhookConfig;
use sfvapi::vapi::webhook::VapiWebhookApp;
use sfvapi_local::callback::{ADA_PHONE, KATHERINE_PHONE, STRANGER_PHONE};
use sfvapi_local::demo::ADA;
use sfvapi_local::stack::{Stack, StackConfig};

use crate::stats::Samples;

/// One path's figures.
#[derive(Debug, Clone)]
pub struct PathLatency {
    pub path: &'static str,
    pub requests: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// Answers that carried the expected outcome (her context, or none for the generic path).
    pub as_expected: usize,
    /// Salesforce REST requests per answer (from the sandbox's log).
    pub sf_requests_per_answer: f64,
}

impl PathLatency {
    /// A path's figures from its samples.
    pub fn of(
        path: &'static str,
        mut samples: Samples,
        requests: usize,
        as_expected: usize,
        sf_requests_per_answer: f64,
    ) -> Self {
        Self {
            path,
            requests,
            p50_us: samples.quantile_us(0.5),
            p99_us: samples.quantile_us(0.99),
            max_us: samples.quantile_us(1.0),
            as_expected,
            sf_requests_per_answer,
        }
    }

    pub fn json(&self) -> Value {
        json!({
            "requests": self.requests, "p50_us": self.p50_us, "p99_us": self.p99_us,
            "max_us": self.max_us, "as_expected": self.as_expected,
            "sf_requests_per_answer": self.sf_requests_per_answer,
        })
    }
}

#[derive(Debug, Clone)]
pub struct CallbackBench {
    pub deadline_ms: u64,
    pub paths: Vec<PathLatency>,
}

impl CallbackBench {
    pub fn json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("deadline_ms".into(), json!(self.deadline_ms));
        for p in &self.paths {
            m.insert(p.path.into(), p.json());
        }
        Value::Object(m)
    }
}

fn request(call_id: &str, from: &str) -> lambda_http::Request {
    let body = json!({"message": {
        "type": "assistant-request",
        "timestamp": sfvapi::now_millis(),
        "call": {
            "id": call_id, "orgId": "org-bench", "type": "inboundPhoneCall", "status": "ringing",
            "createdAt": "2026-11-26T10:00:00.000Z", "updatedAt": "2026-11-26T10:00:00.000Z",
            "customer": {"number": from},
        },
        "customer": {"number": from},
    }})
    .to_string();
    let event = vapi_signed(&body, LOCAL_VAPI_SECRET);
    // The sample builder's own JSON always parses as an API Gateway v2 event.
    lambda_http::request::from_str(&event.to_string())
        .unwrap_or_else(|_| lambda_http::Request::default())
}

async fn sf_requests(stack: &Stack) -> usize {
    sfvapi_local::demo::sandbox_log(&stack.vapi_url)
        .await
        .unwrap_or_default()
        .iter()
        .filter(|e| {
            e["service"] == "salesforce"
                && e["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with("/services/data/"))
        })
        .count()
}

async fn measure(
    app: &VapiWebhookApp,
    stack: &Stack,
    path: &'static str,
    from: &str,
    n: usize,
    expect_contact: Option<&str>,
) -> PathLatency {
    // Warm up DynamoDB Local's JVM and the connection pools, as a warm Lambda would be.
    for i in 0..30 {
        let _ = app.handle(request(&format!("warm-{path}-{i}"), from)).await;
    }
    let before = sf_requests(stack).await;
    let mut s = Samples::with_capacity(n);
    let mut as_expected = 0;
    for i in 0..n {
        let req = request(&format!("bench-{path}-{i}-{}", sfvapi::now_millis()), from);
        let t = Instant::now();
        let (status, body) = crate::harness::answer(app.handle(req).await);
        s.push(t.elapsed());
        let contact = body["assistantOverrides"]["metadata"]["contactId"].as_str();
        if status == 200 && contact == expect_contact {
            as_expected += 1;
        }
    }
    let sf = sf_requests(stack).await.saturating_sub(before);
    PathLatency::of(path, s, n, as_expected, sf as f64 / n.max(1) as f64)
}

/// Seed what the worker writes when it calls Ada: her `call#` snapshot and the `phone#` entry.
async fn seed_ada(stack: &Stack) -> Result<(), String> {
    let call = VapiCallId::parse("id", "bench-outbound-ada").map_err(|e| e.to_string())?;
    let ada = SalesforceId::parse("c", ADA).map_err(|e| e.to_string())?;
    let case = SalesforceId::parse("c", "5005e00000AbCdEAAV").map_err(|e| e.to_string())?;
    let snapshot = CallSnapshot {
        customer: CustomerSnapshot {
            name: Some("Ada Lovelace".into()),
            account_status: Some("Past Due".into()),
            preferred_language: Some("en".into()),
            last_interaction: Some("2026-11-01".into()),
            ..Default::default()
        },
        case: Some(CaseSnapshot {
            case_id: Some(case.as_str().into()),
            case_number: Some("00001026".into()),
            subject: Some("Payment failed twice".into()),
            priority: Some("High".into()),
            status: Some("Escalated".into()),
            reason: Some("Payment failed twice".into()),
        }),
        captured_at: Some(sfvapi::now_millis()),
        handoff: None,
    };
    record_call(
        &stack.store,
        &NewCall {
            call_number: 1,
            call_id: call.clone(),
            event_id: SalesforceEventId::parse("e", "bench-case-escalated-1")
                .map_err(|e| e.to_string())?,
            contact_id: ada.clone(),
            case_id: Some(case),
            snapshot,
            created_at_ms: sfvapi::now_millis(),
            slot: None,
        },
        Duration::from_secs(86_400),
    )
    .await
    .map_err(|e| e.to_string())?;
    let phone = E164Phone::parse("p", ADA_PHONE).map_err(|e| e.to_string())?;
    sfvapi::callers::record_outbound(
        &stack.store,
        &SecretString::new(LOCAL_CONTEXT_KEY),
        &sfvapi::callers::OutboundCall {
            phone: &phone,
            call_id: &call,
            contact_id: &ada,
            placed_at_ms: sfvapi::now_millis(),
        },
        Duration::from_secs(86_400),
    )
    .await
    .map_err(|e| e.to_string())
}

/// Start a stack, then measure each path `n` times (the search path `n_search` times).
pub async fn run(n: usize, n_search: usize) -> Result<CallbackBench, String> {
    let stack = Stack::start(StackConfig::default())
        .await
        .map_err(|e| e.to_string())?;
    let result = measure_all(&stack, n, n_search).await;
    stack.shutdown().await;
    result
}

/// The webhook wired as on Lambda from the stack's variables, and its configuration.
pub async fn webhook_app(stack: &Stack) -> Result<(VapiWebhookApp, VapiWebhookConfig), String> {
    let env = {
        let vars = stack.env.clone();
        Env::new(move |k: &str| vars.get(k).cloned())
    };
    let config = VapiWebhookConfig::from_env(&env).map_err(|e| e.to_string())?;
    let sdk = sfvapi::config::aws_sdk_config().await;
    let secrets = SecretsCache::new(
        sfvapi::config::secrets_client(&sdk),
        config.common.secrets_ttl,
    );
    let app = VapiWebhookApp::wired(&env, config.clone(), stack.store.clone(), secrets)
        .map_err(|e| e.to_string())?;
    Ok((app, config))
}

async fn measure_all(stack: &Stack, n: usize, n_search: usize) -> Result<CallbackBench, String> {
    let (app, config) = webhook_app(stack).await?;
    let deadline_ms = config
        .inbound
        .as_ref()
        .map_or(0, |i| i.deadline.as_millis() as u64);
    seed_ada(stack).await?;
    let paths = vec![
        measure(&app, stack, "snapshot", ADA_PHONE, n, Some(ADA)).await,
        measure(
            &app,
            stack,
            "search",
            KATHERINE_PHONE,
            n_search,
            Some(sfvapi_local::callback::KATHERINE),
        )
        .await,
        measure(&app, stack, "generic", STRANGER_PHONE, n_search, None).await,
    ];
    Ok(CallbackBench { deadline_ms, paths })
}
