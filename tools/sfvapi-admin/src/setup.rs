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
        Some("event-relay") => event_relay(&args[1..]).await,
        _ => Err(format!("usage:\n  {VAPI_USAGE}\n  {RELAY_USAGE}")),
    }
}

const VAPI_USAGE: &str =
    "sfvapi-admin setup vapi --webhook-url URL [--phone-number-id ID] [--dry-run] [--events DIR]";
const RELAY_USAGE: &str = "sfvapi-admin setup event-relay --event NAME [--event NAME…] [--filter NAME=EXPR…] [--region R] [--account ID] [--start] [--dry-run]";

/// Every value of a repeatable flag.
fn all(args: &[String], name: &str) -> Vec<String> {
    args.iter()
        .enumerate()
        .filter(|(_, a)| *a == name)
        .filter_map(|(i, _)| args.get(i + 1).cloned())
        .collect()
}

/// `setup event-relay`: `sfvapi::salesforce::relay_setup` with the stack's Salesforce
/// connection (its `SF_*` variables and `TABLE_NAME`) and this process's AWS account and region.
async fn event_relay(args: &[String]) -> Result<String, String> {
    use sfvapi::salesforce::relay_setup;
    let events = relay_setup::parse_events(&all(args, "--event"), &all(args, "--filter"))
        .map_err(|e| format!("{e}\nusage: {RELAY_USAGE}"))?;
    let sdk = sfvapi::config::aws_sdk_config().await;
    let region = match flag(args, "--region") {
        Some(r) => r,
        None => sdk
            .region()
            .map(|r| r.to_string())
            .ok_or("no AWS region: set AWS_REGION or pass --region")?,
    };
    let account = match flag(args, "--account") {
        Some(a) => a,
        None => relay_setup::caller_account(&sdk)
            .await
            .map_err(|e| e.to_string())?,
    };
    let input = relay_setup::Input {
        events,
        region,
        account,
        start: args.iter().any(|a| a == "--start"),
        dry_run: args.iter().any(|a| a == "--dry-run"),
    };
    let conn = relay_setup::connection_from_env(&sdk).map_err(|e| e.to_string())?;
    let report = relay_setup::run(&conn.rest, &relay_setup::eventbridge_client(&sdk), &input)
        .await
        .map_err(|e| e.to_string())?;
    Ok(report.to_text())
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
