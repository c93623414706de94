//! `sfvapi-admin doctor` against the local stack (issue 22): everything as `Stack` sets it up
//! passes, and each way a deployment goes wrong breaks exactly its own check, with its fix.
//! `scripts/services.sh cargo test -p sfvapi-local --test doctor`.
//!
//! One stack for the whole story (a stack exports its variables into the process environment);
//! each case breaks one thing through the vendor's own API (Vapi's PATCH / DELETE, Secrets
//! Manager's PutSecretValue, a routing document) or the sandbox's switch, runs the checklist,
//! and puts the thing back.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use sfvapi::doctor::{Report, Status, Target};
use sfvapi_local::stack::{Stack, StackConfig};

struct Local {
    stack: Stack,
    sdk: aws_config::SdkConfig,
    http: reqwest::Client,
    api_key: String,
    server_secret: String,
}

impl Local {
    fn target(&self) -> Target {
        self.stack.doctor_target()
    }

    async fn doctor(&self, target: &Target) -> Report {
        let report = sfvapi::doctor::run(target, &self.sdk).await;
        let text = report.to_text();
        for secret in [
            self.api_key.as_str(),
            self.server_secret.as_str(),
            "sandbox-refresh-token",
        ] {
            assert!(!text.contains(secret), "a secret was printed:\n{text}");
            assert!(!report.to_json().to_string().contains(secret));
        }
        report
    }

    fn inbound(&self) -> String {
        self.stack.env["VAPI_INBOUND_ASSISTANT_ID"].clone()
    }

    async fn vapi(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.stack.vapi_url))
            .bearer_auth(&self.api_key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("the fake Vapi answers");
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path} → {status} {body}");
        body
    }

    async fn control(&self, body: Value) {
        let resp = self
            .http
            .post(format!("{}/_sandbox/control", self.stack.salesforce_url))
            .json(&body)
            .send()
            .await
            .expect("control");
        assert!(resp.status().is_success(), "{:?}", resp.text().await);
    }

    async fn put_secret(&self, kind_var: &str, value: Value) {
        sfvapi_test_support::put_secret(&self.stack.env[kind_var], &value).await;
    }
}

fn failed(report: &Report) -> BTreeSet<String> {
    report.failed().iter().map(|c| c.id.clone()).collect()
}

fn set(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

/// Exactly `ids` fail, each with a fix containing `fix_says`.
fn assert_breaks(report: &Report, ids: &[&str], fix_says: &str) {
    assert_eq!(failed(report), set(ids), "{}", report.to_text());
    for id in ids {
        let check = report.get(id).expect("the check ran");
        let fix = check.fix.as_deref().unwrap_or_default();
        assert!(
            fix.contains(fix_says),
            "{id}: fix {fix:?} should say {fix_says:?}"
        );
    }
    assert!(!report.ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_on_the_local_stack_and_each_break_fails_its_own_check() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok(),
        "run through scripts/services.sh, which starts DynamoDB Local and moto"
    );
    std::env::set_var("SFVAPI_NO_METRICS", "1");
    let sb = sandbox::Config::default();
    let (api_key, server_secret) = (sb.vapi.api_key.clone(), sb.vapi.server_secret.clone());
    let stack = Stack::start(StackConfig {
        sandbox: sb,
        ..StackConfig::default()
    })
    .await
    .expect("the local stack starts");
    let local = Local {
        stack,
        sdk: sfvapi::config::aws_sdk_config().await,
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client"),
        api_key,
        server_secret,
    };
    let target = local.target();
    let outbound = sandbox::SEED_ASSISTANT_ID;
    let inbound = local.inbound();

    // 1. Everything as the local stack sets it up passes.
    let report = local.doctor(&target).await;
    assert!(report.ok(), "{}", report.to_text());
    let passing: Vec<String> = [
        "secret.ingest",
        "secret.vapi-server",
        "secret.vapi",
        "secret.salesforce",
        "secret.twilio",
        "salesforce.token",
        "salesforce.rest",
        "salesforce.task-external-id",
        "salesforce.contact-fields",
        "salesforce.api-usage",
        "vapi.key",
        "twilio.account",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([
        format!("vapi.assistant.{outbound}.server-url"),
        format!("vapi.assistant.{outbound}.backoff-plan"),
        format!("vapi.assistant.{outbound}.server-messages"),
        format!("vapi.assistant.{outbound}.credential"),
        format!("vapi.assistant.{inbound}.server-url"),
        format!("vapi.assistant.{inbound}.credential"),
        format!("vapi.credential.{}.secret", sandbox::SEED_CREDENTIAL_ID),
    ])
    .collect();
    for id in &passing {
        assert_eq!(
            report.get(id).map(|c| c.status),
            Some(Status::Pass),
            "{id}:\n{}",
            report.to_text()
        );
    }

    // 2. The Task external-id field is not Unique.
    local
        .control(json!({"salesforce": {"task_external_id_unique": false}}))
        .await;
    let report = local.doctor(&target).await;
    assert_breaks(&report, &["salesforce.task-external-id"], "tick Unique");
    local
        .control(json!({"salesforce": {"task_external_id_unique": true}}))
        .await;

    // 2b. The org's API allowance nearly used up: a warning, not a failure.
    local
        .control(json!({"salesforce": {"api_usage": 13_000}}))
        .await;
    let report = local.doctor(&target).await;
    assert!(report.ok(), "{}", report.to_text());
    let warned: Vec<&str> = report
        .with(Status::Warn)
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(warned, vec!["salesforce.api-usage"], "{}", report.to_text());
    assert!(
        report.to_text().contains("of 15000"),
        "{}",
        report.to_text()
    );
    local.control(json!({"salesforce": {"api_usage": 0}})).await;

    // 3. A write-back field that does not exist (next to one that does).
    let dir = std::env::temp_dir().join(format!("sfvapi-doctor-{}", sfvapi::now_millis()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let routing = dir.join("routing.yaml");
    std::fs::write(
        &routing,
        "version: 1\nrules:\n  - id: flat\n    when:\n      route: events\n    eventId: eventId\n    contact: contactId\n    writeBack:\n      Contact:\n        Last_Call_Outcome__c: summary\n        No_Such_Field__c: successEvaluation\n",
    )
    .expect("write the routing document");
    let mut with_doc = target.clone();
    with_doc
        .env
        .insert("ROUTING_FILE".into(), routing.display().to_string());
    let report = local.doctor(&with_doc).await;
    assert_breaks(
        &report,
        &["salesforce.write-back.flat.Contact.No_Such_Field__c"],
        "fix writeBack.Contact",
    );
    assert_eq!(
        report
            .get("salesforce.write-back.flat.Contact.Last_Call_Outcome__c")
            .map(|c| c.status),
        Some(Status::Pass)
    );

    // 4. The outbound assistant sends to another URL (someone edited it in the dashboard).
    let original = local
        .vapi(
            reqwest::Method::GET,
            &format!("/assistant/{outbound}"),
            None,
        )
        .await["server"]
        .clone();
    let mut elsewhere = original.clone();
    elsewhere["url"] = json!("https://elsewhere.example.com/vapi/webhook");
    local
        .vapi(
            reqwest::Method::PATCH,
            &format!("/assistant/{outbound}"),
            Some(json!({"server": elsewhere})),
        )
        .await;
    let report = local.doctor(&target).await;
    assert_breaks(
        &report,
        &[format!("vapi.assistant.{outbound}.server-url").as_str()],
        "sfvapi-admin setup vapi",
    );
    assert!(report.to_text().contains("elsewhere.example.com"));

    // 5. No backoffPlan.
    let mut no_plan = original.clone();
    if let Some(server) = no_plan.as_object_mut() {
        server.remove("backoffPlan");
    }
    local
        .vapi(
            reqwest::Method::PATCH,
            &format!("/assistant/{outbound}"),
            Some(json!({"server": no_plan})),
        )
        .await;
    let report = local.doctor(&target).await;
    assert_breaks(
        &report,
        &[format!("vapi.assistant.{outbound}.backoff-plan").as_str()],
        "backoffPlan",
    );
    local
        .vapi(
            reqwest::Method::PATCH,
            &format!("/assistant/{outbound}"),
            Some(json!({"server": original})),
        )
        .await;
    assert!(local.doctor(&target).await.ok());

    // 5b. No end-of-call reports asked for: the outcome never reaches Salesforce.
    local
        .vapi(
            reqwest::Method::PATCH,
            &format!("/assistant/{outbound}"),
            Some(json!({"serverMessages": ["tool-calls", "status-update"]})),
        )
        .await;
    let report = local.doctor(&target).await;
    assert_breaks(
        &report,
        &[format!("vapi.assistant.{outbound}.server-messages").as_str()],
        "add end-of-call-report",
    );
    local
        .vapi(
            reqwest::Method::PATCH,
            &format!("/assistant/{outbound}"),
            Some(json!({"serverMessages": ["tool-calls", "status-update", "end-of-call-report"]})),
        )
        .await;

    // 6. An empty secret: the server secret's context_key blanked.
    let good_server = json!({"server_secrets": [local.server_secret], "context_key": sfvapi::samples::LOCAL_CONTEXT_KEY});
    local
        .put_secret(
            "VAPI_SERVER_SECRET_ARN",
            json!({"server_secrets": [local.server_secret], "context_key": ""}),
        )
        .await;
    let report = local.doctor(&target).await;
    assert_breaks(&report, &["secret.vapi-server"], "put-secret-value");
    assert!(
        report
            .get("secret.vapi-server")
            .is_some_and(|c| c.detail.contains("context_key")),
        "{}",
        report.to_text()
    );

    // 7. A wrong server secret: the stack accepts another secret than Vapi signs with.
    local
        .put_secret(
            "VAPI_SERVER_SECRET_ARN",
            json!({"server_secrets": ["another-secret-another-secret-another-secret"], "context_key": sfvapi::samples::LOCAL_CONTEXT_KEY}),
        )
        .await;
    let report = local.doctor(&target).await;
    assert_breaks(
        &report,
        &[format!("vapi.credential.{}.secret", sandbox::SEED_CREDENTIAL_ID).as_str()],
        "server_secrets",
    );
    local
        .put_secret("VAPI_SERVER_SECRET_ARN", good_server)
        .await;
    assert!(local.doctor(&target).await.ok());

    // 8. The credential the assistants sign with is gone: both assistants' credential check.
    local
        .vapi(
            reqwest::Method::DELETE,
            &format!("/credential/{}", sandbox::SEED_CREDENTIAL_ID),
            None,
        )
        .await;
    let report = local.doctor(&target).await;
    assert_breaks(
        &report,
        &[
            format!("vapi.assistant.{outbound}.credential").as_str(),
            format!("vapi.assistant.{inbound}.credential").as_str(),
        ],
        "sfvapi-admin setup vapi",
    );

    let _ = std::fs::remove_dir_all(&dir);
    local.stack.shutdown().await;
}
