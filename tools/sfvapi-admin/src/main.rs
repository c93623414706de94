//! `sfvapi-admin`: operator commands against the table, and local helpers.
//!
//!   sfvapi-admin create-table                     create the table as template.yaml defines it
//!   sfvapi-admin jobs --status FAILED             list jobs in one status
//!   sfvapi-admin show <eventId>                   a job, its call and its timeline
//!   sfvapi-admin redrive <eventId> [--force]      FAILED (or, with --force, NEEDS_REVIEW) → PENDING
//!   sfvapi-admin reroute <eventId>… | --from T [--to T] [--dry-run] [--routing FILE]
//!                                                 SKIPPED jobs through the current routing, once
//!   sfvapi-admin sweep                            run the retry sweep once
//!   sfvapi-admin sign-events [DIR]                (re)write DIR/*.json API Gateway events, freshly signed
//!   sfvapi-admin setup vapi --webhook-url URL [--dry-run]
//!                                                 the Vapi credential, assistants and phone number, idempotent
//!   sfvapi-admin setup event-relay --event NAME… [--filter NAME=EXPR] [--start] [--dry-run]
//!                                                 Salesforce Event Relay into EventBridge, idempotent
//!   sfvapi-admin doctor [--json] [--webhook-url URL]
//!                                                 the deployment's checklist (exit 1 on a failure)
//!
//! Every table command takes `--table NAME` (default: `$TABLE_NAME`).
//!
//! AWS settings (region, credentials, endpoints) come from the environment like every AWS tool:
//! `AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000` points it at DynamoDB Local.
//!
//! Times print as UTC ISO-8601. A command writes its output at the end, once; a reader that
//! went away (`sfvapi-admin show <id> | head -4`) ends it quietly, never with a panic.

use std::io::Write;
use std::process::ExitCode;

mod doctor;
mod jobs;
mod setup;

const USAGE: &str = "usage:
  sfvapi-admin create-table [--table NAME]
  sfvapi-admin jobs --status FAILED|NEEDS_REVIEW|RETRY|PENDING|RUNNING|DIALING|DONE|SKIPPED [--table NAME]
  sfvapi-admin show <eventId> [--table NAME]
  sfvapi-admin redrive <eventId> [--force] [--table NAME]
  sfvapi-admin reroute <eventId>... [--dry-run] [--routing FILE] [--table NAME]
  sfvapi-admin reroute --from TIME [--to TIME] [--dry-run] [--routing FILE] [--table NAME]
      SKIPPED jobs through the current routing document (--routing, else $ROUTING_FILE, else
      the built-in routing.yaml); each job is rerouted at most once. TIME: 2026-12-06T03:00:00Z
  sfvapi-admin sweep [--table NAME]
  sfvapi-admin sign-events [DIR]             (default: events)
  sfvapi-admin setup vapi --webhook-url URL [--phone-number-id ID] [--dry-run] [--events DIR]
      create or update, matched by name, the HMAC credential (the secret: VAPI_SERVER_SECRET_ARN's
      first server_secrets) and the assistants of DIR/assistant.json and DIR/assistant-inbound.json
      (default DIR: events) with server.url and credentialId filled, and point the phone number's
      server (--phone-number-id, else $VAPI_PHONE_NUMBER_ID) at the webhook; the key: VAPI_SECRET_ARN
  sfvapi-admin setup event-relay --event NAME [--event NAME…] [--filter NAME=EXPR…]
                                 [--region R] [--account ID] [--start] [--dry-run]
      through Salesforce's Tooling API (the stack's SF_* connection and TABLE_NAME), create or
      reuse a channel per kind of event, a member per event (with its filterExpression), the
      named credential for the AWS account (default: STS) and region, a relay per channel
      (ReplayRecovery EARLIEST); associate each relay's partner event source with a bus; print
      the stack parameters; with --start set each relay to RUN once the stack's rule is on its bus
  sfvapi-admin doctor [--stack NAME] [--json] [--webhook-url URL]
      one checklist of the deployment (secrets, Salesforce, Vapi, Twilio), each line
      PASS / WARN / FAIL with the fix; exits 1 on any failure. Reads the stack's variables
      from the environment (TABLE_NAME, *_SECRET_ARN, VAPI_*, SF_*, TWILIO_*); --webhook-url
      (else $VAPI_WEBHOOK_URL) is the stack's VapiWebhookUrl output.
  --stack NAME (setup, doctor): read the stack's variables from its CloudFormation outputs and
      parameters (DescribeStacks) instead of the environment; the secrets from Secrets Manager.
The table defaults to $TABLE_NAME; AWS settings come from the environment.";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("create-table") => create_table(&args[1..]).await,
        Some("jobs") => jobs::list(&args[1..]).await,
        Some("show") => jobs::show(&args[1..]).await,
        Some("redrive") => jobs::redrive(&args[1..]).await,
        Some("reroute") => jobs::reroute(&args[1..]).await,
        Some("sweep") => jobs::sweep(&args[1..]).await,
        Some("sign-events") => sfvapi::samples::write_all(
            args.get(1).map(String::as_str).unwrap_or("events"),
        )
        .map(|paths| {
            paths
                .iter()
                .map(|p| format!("wrote {p}\n"))
                .collect::<String>()
        }),
        Some("setup" | "doctor") if args.iter().any(|a| a == "--stack") => {
            match load_stack(&args).await {
                Ok(()) if args[0] == "doctor" => return doctor::run(&args[1..]).await,
                Ok(()) => setup::run(&args[1..]).await,
                Err(e) => Err(e),
            }
        }
        Some("setup") => setup::run(&args[1..]).await,
        Some("doctor") => return doctor::run(&args[1..]).await,
        Some("-h" | "--help" | "help") => Ok(format!("{USAGE}\n")),
        _ => Err(format!("unknown command\n{USAGE}")),
    };
    match result {
        Ok(text) => emit(&text),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--stack NAME`: the deployed stack's variables (its outputs and parameters, CloudFormation
/// `DescribeStacks`) into this process's environment, where `setup` and `doctor` read the
/// stack's variables. Done before the command starts anything else.
async fn load_stack(args: &[String]) -> Result<(), String> {
    let name = flag(args, "--stack").ok_or("--stack needs the stack's name")?;
    let sdk = sfvapi::config::aws_sdk_config().await;
    let vars = sfvapi::stack::variables(&sdk, &name)
        .await
        .map_err(|e| e.to_string())?;
    for (k, v) in vars {
        std::env::set_var(k, v);
    }
    Ok(())
}

/// Write a command's output. A closed pipe (the reader took what it wanted) is not a failure.
fn emit(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: writing the output: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `say!(out, "…", …)`: one line onto a command's output.
#[macro_export]
macro_rules! say {
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

pub(crate) fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

pub(crate) fn table_name(args: &[String]) -> Result<String, String> {
    flag(args, "--table")
        .or_else(|| std::env::var("TABLE_NAME").ok())
        .ok_or_else(|| "no table: pass --table NAME or set TABLE_NAME".to_owned())
}

async fn create_table(args: &[String]) -> Result<String, String> {
    let table = table_name(args)?;
    let sdk = sfvapi::config::aws_sdk_config().await;
    let client = sfvapi::store::client(&sdk);
    sfvapi::store::create_table(&client, &table)
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!("table {table} is ready\n"))
}
