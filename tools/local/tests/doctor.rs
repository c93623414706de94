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

/// A CloudFormation stack in moto carrying the local stack's variables as a deployed stack
/// carries them (outputs and parameters), read back with `sfvapi::stack::variables`; what no
/// stack holds (the sandbox's Vapi URL, …) comes from the environment as the CLI keeps it.
async fn stack_target(local: &Local, target: &Target) -> Target {
    let mut env = target.env.clone();
    env.insert(
        "VAPI_WEBHOOK_URL".into(),
        target.webhook_url.clone().unwrap_or_default(),
    );
    let mut parameters = serde_json::Map::new();
    let mut given = Vec::new();
    for (param, var) in sfvapi::stack::PARAMETERS {
        if let Some(v) = env.get(*var) {
            parameters.insert((*param).into(), json!({"Type": "String"}));
            given.push(
                aws_sdk_cloudformation::types::Parameter::builder()
                    .parameter_key(*param)
                    .parameter_value(v)
                    .build(),
            );
        }
    }
    let mut outputs = serde_json::Map::new();
    for (output, var) in sfvapi::stack::OUTPUTS {
        let value = env.get(*var).cloned().unwrap_or_default();
        outputs.insert((*output).into(), json!({"Value": value}));
    }
    let template = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": parameters,
        "Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": outputs,
    });
    let cfn = aws_sdk_cloudformation::Client::new(&local.sdk);
    let name = format!("sfvapi-doctor-{}", sfvapi::now_millis());
    cfn.create_stack()
        .stack_name(&name)
        .template_body(template.to_string())
        .set_parameters(Some(given))
        .send()
        .await
        .expect("moto creates the stack");
    let vars = sfvapi::stack::variables(&local.sdk, &name)
        .await
        .expect("the stack's variables");
    for (_, var) in sfvapi::stack::OUTPUTS {
        assert_eq!(vars.get(*var), env.get(*var), "{var} from the stack");
    }
    let mut from_stack = target.clone();
    from_stack.webhook_url = vars.get("VAPI_WEBHOOK_URL").cloned();
    // What the stack holds replaces the environment's; the rest stays.
    for var in sfvapi::stack::OUTPUTS
        .iter()
        .chain(sfvapi::stack::PARAMETERS)
        .map(|(_, v)| *v)
    {
        from_stack.env.remove(var);
    }
    from_stack.env.extend(vars);
    from_stack.env.remove("VAPI_WEBHOOK_URL");
    from_stack
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
    sfvapi_test_support::local_services("AWS_ENDPOINT_URL_DYNAMODB");
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
        "vapi.phone-number",
        "vapi.phone-number.server-url",
        "vapi.phone-number.assistant",
        "vapi.concurrency",
        "webhook.signed",
        "webhook.unsigned",
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

    // 1b. `--stack NAME`: the same stack as CloudFormation describes it (a stack in moto with the
    // outputs and parameters template.yaml gives a deployed stack) passes the same checklist.
    let from_stack = stack_target(&local, &target).await;
    let report = local.doctor(&from_stack).await;
    assert!(report.ok(), "{}", report.to_text());
    assert_eq!(failed(&report), BTreeSet::new(), "{}", report.to_text());
    assert_eq!(
        report.checks.len(),
        local.doctor(&target).await.checks.len(),
        "the stack's variables reach every check"
    );

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

    // 3b. A write-back field of a type the value cannot go into: the summary (text) into the
    // DoNotCall checkbox.
    std::fs::write(
        &routing,
        "version: 1\nrules:\n  - id: flat\n    when:\n      route: events\n    eventId: eventId\n    contact: contactId\n    writeBack:\n      Contact:\n        DoNotCall: summary\n",
    )
    .expect("write the routing document");
    let report = local.doctor(&with_doc).await;
    assert_breaks(
        &report,
        &["salesforce.write-back.flat.Contact.DoNotCall"],
        "into a text field",
    );

    // 3c. Event Relay: the stack's relay (set up as `setup event-relay` does, then started
    // through the Tooling API) passes; stopped, with an error, or from an org the stack does not
    // accept, it fails its own check.
    let relay_target = event_relay(&local, &target).await;
    let report = local.doctor(&relay_target).await;
    assert!(report.ok(), "{}", report.to_text());
    for check in ["state", "feedback", "org"] {
        let id = format!("salesforce.event-relay.Sfvapi_Relay.{check}");
        assert_eq!(
            report.get(&id).map(|c| c.status),
            Some(Status::Pass),
            "{id}:\n{}",
            report.to_text()
        );
    }
    set_relay_state(&local, "STOP").await;
    let report = local.doctor(&relay_target).await;
    assert_breaks(
        &report,
        &["salesforce.event-relay.Sfvapi_Relay.state"],
        "--start",
    );
    set_relay_state(&local, "RUN").await;
    local
        .control(json!({"salesforce": {"relay_error": {"code": "PARTNER_EVENT_SOURCE_NOT_FOUND", "message": "the partner event source was deleted"}}}))
        .await;
    let report = local.doctor(&relay_target).await;
    assert_breaks(
        &report,
        &["salesforce.event-relay.Sfvapi_Relay.feedback"],
        "Setup → Event Relays",
    );
    assert!(report.to_text().contains("PARTNER_EVENT_SOURCE_NOT_FOUND"));
    local
        .control(json!({"salesforce": {"relay_error": null}}))
        .await;
    let mut other_org = relay_target.clone();
    other_org
        .env
        .insert("SF_RELAY_ORG_IDS".into(), "00D000000000001AAA".into());
    let report = local.doctor(&other_org).await;
    assert_breaks(
        &report,
        &["salesforce.event-relay.Sfvapi_Relay.org"],
        "EventRelayOrgIds",
    );
    assert!(local.doctor(&relay_target).await.ok());

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
    local
        .put_secret("VAPI_SERVER_SECRET_ARN", good_server)
        .await;

    // 7. A wrong server secret: Vapi's credential signs with another secret than the stack
    // accepts (pasted wrong in Vapi's dashboard). The stack's own secret is untouched, so the
    // webhook still takes a message signed with it (`webhook.signed` passes).
    let credential_path = format!("/credential/{}", sandbox::SEED_CREDENTIAL_ID);
    let plan = local
        .vapi(reqwest::Method::GET, &credential_path, None)
        .await["authenticationPlan"]
        .clone();
    let mut wrong = plan.clone();
    wrong["secretKey"] = json!("another-secret-another-secret-another-secret");
    local
        .vapi(
            reqwest::Method::PATCH,
            &credential_path,
            Some(json!({"authenticationPlan": wrong})),
        )
        .await;
    let report = local.doctor(&target).await;
    assert_breaks(
        &report,
        &[format!("vapi.credential.{}.secret", sandbox::SEED_CREDENTIAL_ID).as_str()],
        "server_secrets",
    );
    local
        .vapi(
            reqwest::Method::PATCH,
            &credential_path,
            Some(json!({"authenticationPlan": plan})),
        )
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

    // 9. The phone number answers with an assistant of its own: inbound never asks the webhook.
    local
        .vapi(
            reqwest::Method::PATCH,
            &format!("/phone-number/{}", sandbox::SEED_PHONE_NUMBER_ID),
            Some(json!({"assistantId": inbound})),
        )
        .await;
    let report = local.doctor(&target).await;
    assert!(
        failed(&report).contains("vapi.phone-number.assistant"),
        "{}",
        report.to_text()
    );
    assert!(report
        .get("vapi.phone-number.assistant")
        .and_then(|c| c.fix.as_deref())
        .is_some_and(|f| f.contains("remove the assistant")));

    let _ = std::fs::remove_dir_all(&dir);
    local.stack.shutdown().await;
}

/// The stack's Event Relay as `setup event-relay` leaves it (moto's EventBridge gets the bus),
/// the platform-event relay then started with the Tooling API's own PATCH; the target names its
/// bus and org as `--stack` would (`SalesforceEventBusName`, `EventRelayOrgIds`).
async fn event_relay(local: &Local, target: &Target) -> Target {
    use sfvapi::salesforce::relay_setup;
    let conn = relay_setup::connection_from_env(&local.sdk).expect("connection");
    let input = relay_setup::Input {
        events: relay_setup::parse_events(&["Call_Request__e".into()], &[]).expect("events"),
        region: "us-east-1".into(),
        account: "123456789012".into(),
        start: false,
        dry_run: false,
    };
    let report = relay_setup::run(
        &conn.rest,
        &relay_setup::eventbridge_client(&local.sdk),
        &input,
    )
    .await
    .expect("setup event-relay");
    set_relay_state(local, "RUN").await;
    let mut t = target.clone();
    t.env
        .insert("SF_RELAY_EVENT_BUS".into(), report.buses[0].clone());
    t.env.insert(
        "SF_RELAY_ORG_IDS".into(),
        report.org_id.clone().expect("org id"),
    );
    t
}

/// `PATCH …/tooling/sobjects/EventRelayConfig/{id}` with the relay's `Metadata.state`.
async fn set_relay_state(local: &Local, state: &str) {
    use sfvapi::salesforce::relay_setup;
    let conn = relay_setup::connection_from_env(&local.sdk).expect("connection");
    let relays = relay_setup::relays(&conn.rest).await.expect("relays");
    let relay = relays
        .iter()
        .find(|r| r["DeveloperName"] == "Sfvapi_Relay")
        .expect("the relay exists");
    let id = relay["Id"].as_str().expect("id");
    let (status, body) = conn
        .rest
        .request(
            reqwest::Method::PATCH,
            &format!("/tooling/sobjects/EventRelayConfig/{id}"),
            &[],
            Some(&json!({"Metadata": {"state": state}})),
        )
        .await
        .expect("Salesforce answers");
    assert_eq!(status, 204, "{body}");
}
