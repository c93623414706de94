//! The in-process ingest path for a 2 KB signed event: verify the v2 signature, parse the payload
//! into typed values and build the DynamoDB item — everything but the network.
//! Goal (issue "Walking skeleton"): p99 < 50 µs on the project's 2-core machine.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use criterion::Criterion;
use lambda_http::http::HeaderMap;
use sfvapi::config::{Env, IngestConfig};
use sfvapi::secrets::{IngestSecret, SecretString};

fn two_kb_event() -> Vec<u8> {
    let mut v = serde_json::json!({
        "eventId": "case-escalated-5005e00000AbCdEAAV-1",
        "contactId": "0035e00000XyZ12AAF",
        "caseId": "5005e00000AbCdEAAV",
        "priority": "High",
        "reason": "Payment failed twice; the customer asked for a call back about the refund and the fee.",
    });
    let body = v.to_string();
    // Pad with a field the parser ignores, as real Flows send extra context.
    v["context"] = serde_json::Value::String("x".repeat(2048 - body.len() - 13));
    let out = v.to_string().into_bytes();
    assert_eq!(out.len(), 2048);
    out
}

fn setup() -> (IngestConfig, IngestSecret, HeaderMap, Vec<u8>) {
    let vars: HashMap<&str, &str> =
        HashMap::from([("TABLE_NAME", "bench"), ("SF_INGEST_SECRET_ARN", "bench")]);
    let config =
        IngestConfig::from_env(&Env::new(|k| vars.get(k).map(|v| v.to_string()))).expect("config");
    let secret = IngestSecret {
        signing_secrets: vec![SecretString::new("bench-secret")],
        outbound_message_token: None,
    };
    let body = two_kb_event();
    let (ts, sig) =
        sfvapi::signature::sign_salesforce_v2(b"bench-secret", &body, sfvapi::now_secs());
    let mut headers = HeaderMap::new();
    headers.insert("x-sfvapi-timestamp", ts.parse().expect("ts"));
    headers.insert("x-sfvapi-signature", sig.parse().expect("sig"));
    (config, secret, headers, body)
}

fn percentiles() {
    let (config, secret, headers, body) = setup();
    let now = sfvapi::now_millis();
    let mut samples: Vec<u128> = Vec::with_capacity(50_000);
    for _ in 0..2_000 {
        let _ = black_box(sfvapi::ingest::prepare(
            &config, &secret, &headers, &body, now,
        ));
    }
    for _ in 0..50_000 {
        let t = Instant::now();
        let r = sfvapi::ingest::prepare(&config, &secret, &headers, black_box(&body), now);
        samples.push(t.elapsed().as_nanos());
        assert!(black_box(r).is_ok());
    }
    samples.sort_unstable();
    let p = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0;
    println!(
        "ingest_prepare_2kb: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs over {} runs (goal p99 < 50 µs: {})",
        p(0.50),
        p(0.99),
        p(1.0),
        samples.len(),
        if p(0.99) < 50.0 { "met" } else { "NOT met" }
    );
}

fn main() {
    let (config, secret, headers, body) = setup();
    let now = sfvapi::now_millis();
    let mut c = Criterion::default().configure_from_args();
    c.bench_function("ingest_prepare_2kb", |b| {
        b.iter(|| sfvapi::ingest::prepare(&config, &secret, &headers, black_box(&body), now))
    });
    c.final_summary();
    percentiles();
}
