//! The operator CLI against DynamoDB Local (run under `make test`): create the table, find a
//! FAILED job, redrive it, refuse a NEEDS_REVIEW one without --force.

use std::process::Command;

fn admin(table: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sfvapi-admin"))
        .args(args)
        .env("TABLE_NAME", table)
        .output()
        .expect("run sfvapi-admin");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn put_job(table: &str, event_id: &str, status: &str) {
    let sdk = sfvapi::config::aws_sdk_config().await;
    let store = sfvapi::store::Store::new(sfvapi::store::client(&sdk), table.to_owned());
    let req = sfvapi::salesforce::events::parse_json_event(
        format!(r#"{{"eventId":"{event_id}","contactId":"0035e00000XyZ12AAF"}}"#).as_bytes(),
    )
    .unwrap();
    let mut item = sfvapi::jobs::new_dial_job(
        &req,
        sfvapi::now_millis(),
        std::time::Duration::from_secs(3600),
    );
    item.insert("status".into(), sfvapi::store::attr::s(status));
    item.insert(
        "last_error".into(),
        sfvapi::store::attr::s("Vapi rejected the call (HTTP 400): bad number"),
    );
    store.put_if_absent(item).await.unwrap();
}

#[tokio::test]
async fn operator_finds_and_redrives_a_failed_job() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok(),
        "needs DynamoDB Local: run under `make test`"
    );
    let table = format!("sfvapi-admin-{}", sfvapi::now_millis());
    let (ok, out) = admin(&table, &["create-table"]);
    assert!(ok, "{out}");
    put_job(&table, "cli-failed-1", "FAILED").await;
    put_job(&table, "cli-review-1", "NEEDS_REVIEW").await;

    let (ok, out) = admin(&table, &["jobs", "--status", "FAILED"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("evt#sf#cli-failed-1") && out.contains("bad number"),
        "{out}"
    );
    assert!(!out.contains("cli-review-1"), "{out}");

    let (ok, out) = admin(&table, &["show", "cli-failed-1"]);
    assert!(
        ok && out.contains("FAILED") && out.contains("received_at"),
        "{out}"
    );

    let (ok, out) = admin(&table, &["redrive", "cli-failed-1"]);
    assert!(ok, "{out}");
    let (_, out) = admin(&table, &["jobs", "--status", "PENDING"]);
    assert!(out.contains("evt#sf#cli-failed-1"), "{out}");

    let (ok, out) = admin(&table, &["redrive", "cli-review-1"]);
    assert!(!ok && out.contains("--force"), "{out}");
    let (ok, out) = admin(&table, &["redrive", "cli-review-1", "--force"]);
    assert!(ok, "{out}");

    let (ok, out) = admin(&table, &["redrive", "no-such-event"]);
    assert!(!ok && out.contains("no job"), "{out}");
    let (ok, out) = admin(&table, &["frobnicate"]);
    assert!(!ok && out.contains("usage"), "{out}");
}
