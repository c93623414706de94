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

/// `show` says what the calling policy decided: when a waiting job calls (its reason, in the
/// customer's time and UTC, and the next try), the next call of a retry cadence, an opt-out.
#[tokio::test]
async fn show_explains_the_calling_policy() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok(),
        "needs DynamoDB Local: run under `make test`"
    );
    let table = format!("sfvapi-admin-policy-{}", sfvapi::now_millis());
    let (ok, out) = admin(&table, &["create-table"]);
    assert!(ok, "{out}");
    let sdk = sfvapi::config::aws_sdk_config().await;
    let store = sfvapi::store::Store::new(sfvapi::store::client(&sdk), table.clone());
    let req = sfvapi::salesforce::events::parse_json_event(
        br#"{"eventId":"cli-policy-1","contactId":"0035e00000XyZ12AAF"}"#,
    )
    .unwrap();
    let due = 1_784_127_600_000; // 2026-07-15T15:00:00Z
    let reason = "outside the calling window 08:00-21:00 (America/Los_Angeles from the number's area (+1415)): calls at 08:00 PDT on Wed 2026-07-15 (2026-07-15T15:00:00Z)";
    let mut item = sfvapi::jobs::new_dial_job(
        &req,
        sfvapi::now_millis(),
        std::time::Duration::from_secs(3600),
    );
    item.insert("status".into(), sfvapi::store::attr::s("RETRY"));
    item.insert("next_at".into(), sfvapi::store::attr::n(due));
    item.insert("reason".into(), sfvapi::store::attr::s(reason));
    store.put_if_absent(item).await.unwrap();
    let next = sfvapi::jobs::new_retry_dial_job(
        &req,
        2,
        due + 7_200_000,
        "call 2 of at most 3: call 1 ended customer-did-not-answer (c1)",
        sfvapi::now_millis(),
        std::time::Duration::from_secs(3600),
    );
    store.put_if_absent(next).await.unwrap();
    let ada = sfvapi::ids::SalesforceId::parse("c", "0035e00000XyZ12AAF").unwrap();
    sfvapi::policy::ledger::record_opt_out(&store, &ada, None, "call-said-no", due)
        .await
        .unwrap();

    let (ok, out) = admin(&table, &["show", "cli-policy-1"]);
    assert!(ok, "{out}");
    assert!(out.contains(reason), "{out}");
    assert!(out.contains("next try       2026-07-15T15:00:00Z"), "{out}");
    assert!(
        out.contains("call 2 of the cadence (evt#sf#cli-policy-1#2): RETRY")
            && out.contains("call 1 ended customer-did-not-answer"),
        "{out}"
    );
    assert!(
        out.contains("opted out: Contact 0035e00000XyZ12AAF on call call-said-no"),
        "{out}"
    );
}
