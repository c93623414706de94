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

/// A table `sfvapi-admin create-table` made on DynamoDB Local (named `{prefix}-{ms}`), and a
/// store on it.
async fn admin_table(prefix: &str) -> (String, sfvapi::store::Store) {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok(),
        "needs DynamoDB Local: run under `make test`"
    );
    let table = format!("{prefix}-{}", sfvapi::now_millis());
    let (ok, out) = admin(&table, &["create-table"]);
    assert!(ok, "{out}");
    let sdk = sfvapi::config::aws_sdk_config().await;
    let store = sfvapi::store::Store::new(sfvapi::store::client(&sdk), table.clone());
    (table, store)
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
    let (table, _) = admin_table("sfvapi-admin").await;
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
    // Times as UTC ISO-8601, not unix milliseconds.
    let received = out
        .lines()
        .find(|l| l.trim_start().starts_with("received_at"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(received.ends_with('Z'), "{out}");
    let at = chrono::DateTime::parse_from_rfc3339(received).expect("ISO-8601");
    assert!(
        (at.timestamp_millis() - sfvapi::now_millis()).abs() < 60_000,
        "{out}"
    );
    let (ok, out) = admin(&table, &["jobs", "--status", "FAILED"]);
    assert!(ok && out.contains(&received[..16]), "{out}");

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
    put_job(&table, "cli-skipped-1", "SKIPPED").await;
    let (ok, out) = admin(&table, &["redrive", "cli-skipped-1"]);
    assert!(!ok && out.contains("sfvapi-admin reroute"), "{out}");
    let (ok, out) = admin(&table, &["frobnicate"]);
    assert!(!ok && out.contains("usage"), "{out}");
}

/// `sfvapi-admin show <id> | head -4`: the reader goes away before the output is written; the
/// command ends quietly (no panic, no backtrace), as any well-behaved CLI does.
#[tokio::test]
async fn a_closed_pipe_ends_the_command_quietly() {
    let (table, _) = admin_table("sfvapi-admin-pipe").await;
    put_job(&table, "cli-pipe-1", "FAILED").await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sfvapi-admin"))
        .args(["show", "cli-pipe-1"])
        .env("TABLE_NAME", &table)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run sfvapi-admin");
    // Close the reading end before the command has read the table (it is still connecting).
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
}

/// `reroute`: a relayed event SKIPPED under the built-in routing (it has no relay rule) is
/// rerouted under the example document once: the dry run writes nothing, the second run finds
/// nothing to do, and each run counts its outcomes.
#[tokio::test]
async fn reroute_requeues_a_skipped_job_once_with_a_dry_run_first() {
    let (table, store) = admin_table("sfvapi-admin-reroute").await;
    let vars = [
        ("TABLE_NAME", table.clone()),
        (
            "SF_RELAY_ORG_IDS",
            sfvapi::samples::LOCAL_RELAY_ORG_ID.to_owned(),
        ),
    ];
    let config = sfvapi::relay::RelayConfig::from_env(&sfvapi::config::Env::new(move |k| {
        vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())
    }))
    .unwrap();
    let relay = sfvapi::relay::RelayApp::new(config, store.clone());
    let event = sfvapi::samples::relay_platform_event(sfvapi::samples::LOCAL_RELAY_ORG_ID, "eb-1");
    let answer = relay.handle_event(&event).await.unwrap().to_json();
    assert_eq!(answer["jobs"][0]["status"], "skipped", "{answer}");
    let id = sfvapi::samples::RELAY_EVENT_UUID;
    let routing = format!(
        "{}/../../events/routing-event-relay.yaml",
        env!("CARGO_MANIFEST_DIR")
    );

    let (ok, out) = admin(&table, &["reroute", id, "--routing", &routing, "--dry-run"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("would be rerouted by rule call-request (dry run)"),
        "{out}"
    );
    assert!(out.contains("1 job(s): would reroute 1"), "{out}");
    let (_, out) = admin(&table, &["jobs", "--status", "SKIPPED"]);
    assert!(out.contains(id), "a dry run writes nothing: {out}");

    // Without --routing: the built-in document still has no rule for it.
    let (ok, out) = admin(&table, &["reroute", id]);
    assert!(ok, "{out}");
    assert!(
        out.contains("still skipped: no routing rule matches"),
        "{out}"
    );

    let from = "2020-01-01T00:00:00Z";
    let (ok, out) = admin(&table, &["reroute", "--from", from, "--routing", &routing]);
    assert!(ok, "{out}");
    assert!(
        out.contains("rerouted: PENDING, rule call-request"),
        "{out}"
    );
    assert!(out.contains("1 job(s): rerouted 1"), "{out}");
    let (_, out) = admin(&table, &["jobs", "--status", "PENDING"]);
    assert!(out.contains(id), "{out}");

    // Twice: the range finds no SKIPPED job, the id is rerouted already.
    let (ok, out) = admin(&table, &["reroute", "--from", from, "--routing", &routing]);
    assert!(ok && out.contains("0 job(s): no job"), "{out}");
    let (ok, out) = admin(&table, &["reroute", id, "--routing", &routing]);
    assert!(ok, "{out}");
    assert!(out.contains("1 job(s): already rerouted 1"), "{out}");

    let (ok, out) = admin(&table, &["reroute", "--from", "yesterday"]);
    assert!(!ok && out.contains("--from \"yesterday\""), "{out}");
}

/// `show` says what the calling policy decided: when a waiting job calls (its reason, in the
/// customer's time and UTC, and the next try), the next call of a retry cadence, an opt-out.
#[tokio::test]
async fn show_explains_the_calling_policy() {
    let (table, store) = admin_table("sfvapi-admin-policy").await;
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
    assert!(
        out.contains("next try       2026-07-15T15:00:00.000Z"),
        "{out}"
    );
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
