//! The `job-worker` binary's init, run as Lambda runs it: through a Lambda Runtime API on
//! loopback (`sfvapi_bench::runtime_api`, the protocol `cargo lambda watch` serves). Without its
//! configuration it names every missing variable in one report, not one per restart.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use sfvapi_bench::runtime_api::RuntimeApi;
use tokio::process::Command;

#[tokio::test]
async fn an_unconfigured_worker_reports_every_missing_variable_at_once() {
    let api = RuntimeApi::start().await.unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_job-worker"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", api.host_port())
        .env("AWS_LAMBDA_FUNCTION_NAME", "job-worker")
        .env("SFVAPI_NO_METRICS", "1")
        .env("RUST_LOG", "error")
        .env("QUIET_HOURS", "22:00")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the function");
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the function stops")
        .unwrap();
    assert!(!out.status.success(), "init must fail");
    assert!(api.first_next().is_none(), "no invocation was asked for");
    let reported: Value =
        serde_json::from_str(&api.init_error().expect("the init error is reported")).unwrap();
    assert_eq!(reported["errorType"], "Runtime.InitError");
    let message = reported["errorMessage"].as_str().unwrap();
    assert!(message.starts_with("6 configuration problems"), "{message}");
    for var in [
        "TABLE_NAME",
        "SF_CONNECTION_SECRET_ARN",
        "VAPI_SECRET_ARN",
        "VAPI_ASSISTANT_ID",
        "VAPI_PHONE_NUMBER_ID",
        "QUIET_HOURS",
    ] {
        assert!(
            message.contains(&format!("environment variable {var} ")),
            "{var}: {message}"
        );
    }
    // The function's own log says it too.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("VAPI_PHONE_NUMBER_ID"), "{stderr}");
}
