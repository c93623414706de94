//! `sfvapi-admin setup vapi --webhook-url URL [--dry-run] [--events DIR]`: `sfvapi::vapi::setup`
//! with the stack's Vapi key (`VAPI_SECRET_ARN`) and server secret (`VAPI_SERVER_SECRET_ARN`; one
//! is generated and stored there when it has none),
//! the assistants of `DIR/assistant.json` and `DIR/assistant-inbound.json`, the phone number's
//! server (`--phone-number-id`, else `VAPI_PHONE_NUMBER_ID`), every body checked against Vapi's
//! schema (`vapi-schema`).

use serde_json::Value;
use sfvapi::secrets::SecretsCache;
use sfvapi::vapi::config::VapiSecret;
use sfvapi::vapi::setup::{self, Input};

use crate::flag;

fn var(name: &str) -> Result<String, String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            format!("{name} is not set: set it to the stack's secret ARN (stack outputs)")
        })
}

fn read_json(path: &str) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
}

pub async fn run(args: &[String]) -> Result<String, String> {
    match args.first().map(String::as_str) {
        Some("vapi") => vapi(&args[1..]).await,
        Some("event-relay") => Err("setup event-relay is not built yet (issue 22): follow README \"Connect Salesforce with Event Relay\"".into()),
        _ => Err("usage: sfvapi-admin setup vapi --webhook-url URL [--dry-run] [--events DIR]".into()),
    }
}

async fn vapi(args: &[String]) -> Result<String, String> {
    let webhook_url = flag(args, "--webhook-url")
        .or_else(|| std::env::var("VAPI_WEBHOOK_URL").ok())
        .ok_or("pass --webhook-url (the stack's VapiWebhookUrl output)")?;
    let dir = flag(args, "--events").unwrap_or_else(|| "events".into());
    let sdk = sfvapi::config::aws_sdk_config().await;
    let cache = SecretsCache::new(
        sfvapi::config::secrets_client(&sdk),
        std::time::Duration::ZERO,
    );
    let key_arn = var("VAPI_SECRET_ARN")?;
    let api_key = cache
        .get_json::<VapiSecret>(&key_arn)
        .await
        .map_err(|e| e.to_string())?
        .api_key
        .ok_or("VAPI_SECRET_ARN's api_key is empty: put the org's private API key there")?;
    let server_arn = var("VAPI_SERVER_SECRET_ARN")?;
    let dry_run = args.iter().any(|a| a == "--dry-run");
    let (server_secret, generated) = setup::server_secret(&cache, &server_arn, dry_run)
        .await
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    if generated {
        out.push_str(&format!(
            "server secret: {} a new one ({} characters) in {server_arn}'s server_secrets\n",
            if dry_run {
                "would generate and store"
            } else {
                "generated and stored"
            },
            setup::GENERATED_SECRET_CHARS
        ));
    }
    let mut assistants = Vec::new();
    for file in ["assistant.json", "assistant-inbound.json"] {
        let path = format!("{dir}/{file}");
        assistants.push((path.clone(), read_json(&path)?));
    }
    let input = Input {
        base_url: std::env::var("VAPI_BASE_URL")
            .unwrap_or_else(|_| sfvapi::vapi::client::DEFAULT_BASE_URL.into()),
        api_key,
        webhook_url,
        server_secret,
        assistants,
        phone_number_id: flag(args, "--phone-number-id")
            .or_else(|| std::env::var("VAPI_PHONE_NUMBER_ID").ok())
            .filter(|v| !v.trim().is_empty()),
        dry_run,
    };
    let report = setup::run(&input, &vapi_schema::validate)
        .await
        .map_err(|e| e.to_string())?;
    out.push_str(&report.to_text());
    Ok(out)
}
