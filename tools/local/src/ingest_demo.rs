//! `sfvapi-local demo-ingest`: the ingest handler alone on DynamoDB Local and moto.
//!
//! It creates a table and the ingest secret, hands the signed sample events (new, duplicate,
//! Platform Event, base64 body, forged, malformed, Outbound Message) to the same
//! `IngestApp::handle` the Lambda runs, prints each answer, then the items in the table.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sfvapi::config::{Env, IngestConfig};
use sfvapi::ingest::IngestApp;
use sfvapi::samples::{self, LOCAL_OM_TOKEN, LOCAL_SIGNING_SECRET};
use sfvapi::secrets::SecretsCache;
use sfvapi::store::{attr, Store};

const ORG_ID: &str = "00D5e000000AbCdEAK";

struct Step {
    label: &'static str,
    file: &'static str,
    expect: u16,
}

pub async fn run() -> Result<(), String> {
    if std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_err() {
        return Err(
            "AWS_ENDPOINT_URL_DYNAMODB is not set: run `make demo`, which starts DynamoDB Local"
                .into(),
        );
    }
    let sdk = sfvapi::config::aws_sdk_config().await;
    let table = format!("sfvapi-demo-{}", sfvapi::now_millis());
    sfvapi::store::create_table(&sfvapi::store::client(&sdk), &table)
        .await
        .map_err(|e| e.to_string())?;
    let secret = serde_json::json!({"signing_secrets": [LOCAL_SIGNING_SECRET], "outbound_message_token": LOCAL_OM_TOKEN});
    let created = aws_sdk_secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(format!("sfvapi/demo/ingest-{}", sfvapi::now_millis()))
        .secret_string(secret.to_string())
        .send()
        .await
        .map_err(|e| {
            format!(
                "creating the ingest secret in moto: {}",
                sfvapi::secrets::error_chain(&e)
            )
        })?;
    let arn = created.arn().unwrap_or_default().to_owned();

    let vars: HashMap<&str, String> = HashMap::from([
        ("TABLE_NAME", table.clone()),
        ("SF_INGEST_SECRET_ARN", arn),
        ("SF_OUTBOUND_ORG_IDS", ORG_ID.to_owned()),
    ]);
    let config =
        IngestConfig::from_env(&Env::new(|k| vars.get(k).cloned())).map_err(|e| e.to_string())?;
    let store = Store::new(sfvapi::store::client(&sdk), table.clone());
    let app = IngestApp::new(
        config,
        store.clone(),
        SecretsCache::new(
            sfvapi::config::secrets_client(&sdk),
            Duration::from_secs(300),
        ),
    );

    println!("sfvapi demo — Salesforce ingest on DynamoDB Local (table {table}) with secrets from moto\n");
    let steps = [
        Step {
            label: "new case escalation",
            file: "salesforce-new-event.json",
            expect: 202,
        },
        Step {
            label: "same event again",
            file: "salesforce-duplicate.json",
            expect: 200,
        },
        Step {
            label: "Platform Event shape",
            file: "salesforce-platform-event.json",
            expect: 202,
        },
        Step {
            label: "base64-encoded body",
            file: "salesforce-base64-body.json",
            expect: 202,
        },
        Step {
            label: "forged signature",
            file: "salesforce-bad-signature.json",
            expect: 401,
        },
        Step {
            label: "malformed payload",
            file: "salesforce-malformed.json",
            expect: 400,
        },
        Step {
            label: "Outbound Message (SOAP)",
            file: "salesforce-outbound-message.json",
            expect: 200,
        },
    ];
    let events: HashMap<&str, serde_json::Value> = samples::all().into_iter().collect();
    let mut failures = 0;
    for step in &steps {
        let event = events
            .get(step.file)
            .ok_or_else(|| format!("no sample {}", step.file))?;
        let req = lambda_http::request::from_str(&event.to_string()).map_err(|e| e.to_string())?;
        let path = req.uri().path().replace(LOCAL_OM_TOKEN, "<token>");
        let started = Instant::now();
        let resp = app.handle(req).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let status = resp.status().as_u16();
        let body = String::from_utf8_lossy(sfvapi::http::body_bytes(resp.body())).into_owned();
        let shown = if body.starts_with("<?xml") {
            summarize_xml(&body)
        } else {
            body
        };
        let mark = if status == step.expect { "ok " } else { "!! " };
        if status != step.expect {
            failures += 1;
        }
        println!(
            "{mark} {:<26} POST {path:<38} → {status} {shown}  ({ms:.1} ms)",
            step.label
        );
    }

    println!("\nItems in the table (one per accepted event; each is a PENDING dial job):");
    let scan = store
        .client()
        .scan()
        .table_name(&table)
        .send()
        .await
        .map_err(|e| sfvapi::secrets::error_chain(&e))?;
    let mut items = scan.items().to_vec();
    items.sort_by(|a, b| attr::opt_s(a, "pk").cmp(&attr::opt_s(b, "pk")));
    println!(
        "  {:<48} {:<8} {:<5} {:<18} {:<18} {:<9} source",
        "pk", "status", "kind", "contactId", "caseId", "priority"
    );
    for item in &items {
        let payload: serde_json::Value = attr::opt_s(item, "payload")
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_default();
        let s = |k: &str| payload[k].as_str().unwrap_or("-").to_owned();
        println!(
            "  {:<48} {:<8} {:<5} {:<18} {:<18} {:<9} {}",
            attr::opt_s(item, "pk").unwrap_or("?"),
            attr::opt_s(item, "status").unwrap_or("?"),
            attr::opt_s(item, "kind").unwrap_or("?"),
            s("contactId"),
            s("caseId"),
            s("priority"),
            s("source"),
        );
    }
    let expected_items = 4;
    if items.len() != expected_items {
        failures += 1;
        println!("!! expected {expected_items} items, found {}", items.len());
    }
    println!(
        "\nsummary: {} requests, {} queued, 1 duplicate rejected, 1 forged rejected, 1 malformed rejected, {} items stored",
        steps.len(),
        items.len(),
        items.len()
    );
    if failures > 0 {
        return Err(format!(
            "{failures} step(s) did not give the expected answer"
        ));
    }
    Ok(())
}

fn summarize_xml(body: &str) -> String {
    if body.contains("<Ack>true</Ack>") {
        "SOAP <Ack>true</Ack>".into()
    } else {
        "SOAP fault".into()
    }
}
