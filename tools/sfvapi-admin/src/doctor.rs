//! `sfvapi-admin doctor [--json] [--webhook-url URL]`: the checklist of `sfvapi::doctor` for the
//! stack whose variables are in this process's environment.

use std::process::ExitCode;

use sfvapi::doctor::{Report, Target};

use crate::flag;

/// The variables a stack's functions read that doctor looks at (every other one is ignored).
fn stack_env() -> std::collections::BTreeMap<String, String> {
    std::env::vars()
        .filter(|(k, _)| {
            k == "TABLE_NAME"
                || k == "ROUTING_FILE"
                || k.starts_with("SF_")
                || k.starts_with("VAPI_")
                || k.starts_with("TWILIO_")
        })
        .collect()
}

pub async fn run(args: &[String]) -> ExitCode {
    let json = args.iter().any(|a| a == "--json");
    let target = Target {
        env: stack_env(),
        webhook_url: flag(args, "--webhook-url").or_else(|| std::env::var("VAPI_WEBHOOK_URL").ok()),
    };
    let sdk = sfvapi::config::aws_sdk_config().await;
    let report = sfvapi::doctor::run(&target, &sdk).await;
    let code = crate::emit(&render(&report, json));
    if report.ok() {
        code
    } else {
        ExitCode::FAILURE
    }
}

pub fn render(report: &Report, json: bool) -> String {
    if json {
        format!("{}\n", report.to_json())
    } else {
        report.to_text()
    }
}
