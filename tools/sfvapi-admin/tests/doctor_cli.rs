//! `sfvapi-admin doctor` and `setup` as commands, with nothing configured (no services needed):
//! doctor exits 1 with every failure and its fix, in text and in `--json`; `setup` names what
//! it needs.

use std::process::Command;

fn admin(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sfvapi-admin"))
        .args(args)
        // No stack at all: none of the variables a stack sets.
        .env_clear()
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("run sfvapi-admin");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn doctor_without_a_stack_fails_each_missing_secret_with_its_fix() {
    let (ok, text, _) = admin(&["doctor"]);
    assert!(!ok, "a failure exits non-zero:\n{text}");
    assert!(
        text.contains("FAIL  secret.ingest: SF_INGEST_SECRET_ARN is not set"),
        "{text}"
    );
    assert!(
        text.contains("      fix: set SF_INGEST_SECRET_ARN"),
        "{text}"
    );
    assert!(text.contains("WARN  secret.twilio"), "{text}");
    assert!(text.ends_with("failed\n"), "{text}");

    let (ok, json, _) = admin(&["doctor", "--json"]);
    assert!(!ok);
    let v: serde_json::Value = serde_json::from_str(&json).expect("one JSON document");
    assert_eq!(v["ok"], false);
    let failed: Vec<&str> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["status"] == "fail")
        .filter_map(|c| c["id"].as_str())
        .collect();
    for id in [
        "secret.ingest",
        "secret.vapi-server",
        "secret.vapi",
        "secret.salesforce",
        "salesforce.config",
    ] {
        assert!(failed.contains(&id), "{id} in {failed:?}");
    }
}

#[test]
fn setup_names_what_it_needs() {
    let (ok, _, err) = admin(&["setup"]);
    assert!(!ok);
    assert!(
        err.contains("usage:\n  sfvapi-admin setup vapi --webhook-url URL"),
        "{err}"
    );
    assert!(
        err.contains("\n  sfvapi-admin setup event-relay --event NAME"),
        "{err}"
    );
    let (ok, _, err) = admin(&["setup", "vapi"]);
    assert!(!ok);
    assert!(err.contains("pass --webhook-url"), "{err}");
    let (ok, _, err) = admin(&["setup", "event-relay"]);
    assert!(!ok);
    assert!(err.contains("name at least one event"), "{err}");
    let (ok, _, err) = admin(&["setup", "event-relay", "--event", "Contact"]);
    assert!(!ok);
    assert!(
        err.contains("--event Contact: not a platform event"),
        "{err}"
    );
    // `--stack` when CloudFormation cannot be reached (a closed loopback port): the stack
    // named, and what to check; exit 1.
    let out = Command::new(env!("CARGO_BIN_EXE_sfvapi-admin"))
        .args(["doctor", "--stack", "no-such-stack"])
        .env_clear()
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_ENDPOINT_URL_CLOUDFORMATION", "http://127.0.0.1:9")
        .output()
        .expect("run sfvapi-admin");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("CloudFormation DescribeStacks no-such-stack")
            && err.contains("check the stack name"),
        "{err}"
    );
}
