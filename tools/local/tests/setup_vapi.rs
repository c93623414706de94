//! `sfvapi-admin setup vapi` (issue 22) against the fake Vapi alone (no AWS services needed:
//! `cargo test -p sfvapi-local --test setup_vapi`): from nothing it creates the credential and
//! both assistants and points the phone number's server at the webhook, a second run changes
//! nothing, a changed webhook URL is updated and reported,
//! `--dry-run` prints the requests and sends none, and a body Vapi's schema refuses is never sent.

use serde_json::{json, Value};
use sfvapi::secrets::SecretString;
use sfvapi::vapi::setup::{self, Action, Input, Report, SetupError};
use sfvapi_local::demo::{sandbox_last_seq, sandbox_writes};

const OUTBOUND: &str = include_str!("../../../events/assistant.json");
const INBOUND: &str = include_str!("../../../events/assistant-inbound.json");
const WEBHOOK: &str = "https://abc123.execute-api.us-east-1.amazonaws.com/vapi/webhook";

struct Fake {
    sb: sandbox::Handles,
    api_key: String,
    secret: String,
    http: reqwest::Client,
}

impl Fake {
    async fn start() -> Self {
        let config = sandbox::Config::default();
        let (api_key, secret) = (
            config.vapi.api_key.clone(),
            config.vapi.server_secret.clone(),
        );
        let sb = sandbox::serve(config).await.expect("the sandbox starts");
        let fake = Self {
            sb,
            api_key,
            secret,
            http: reqwest::Client::new(),
        };
        // From nothing: what the sandbox seeds is removed through Vapi's own API.
        fake.call(
            reqwest::Method::DELETE,
            &format!("/assistant/{}", sandbox::SEED_ASSISTANT_ID),
        )
        .await;
        fake.call(
            reqwest::Method::DELETE,
            &format!("/credential/{}", sandbox::SEED_CREDENTIAL_ID),
        )
        .await;
        fake
    }

    async fn call(&self, method: reqwest::Method, path: &str) -> Value {
        let resp = self
            .http
            .request(method.clone(), format!("{}{path}", self.sb.vapi_url))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .expect("the fake Vapi answers");
        assert!(
            resp.status().is_success(),
            "{method} {path}: {}",
            resp.status()
        );
        resp.json().await.expect("JSON")
    }

    fn input(&self, webhook: &str, dry_run: bool) -> Input {
        Input {
            base_url: self.sb.vapi_url.clone(),
            api_key: SecretString::new(self.api_key.clone()),
            webhook_url: webhook.to_owned(),
            server_secret: SecretString::new(self.secret.clone()),
            assistants: vec![
                (
                    "events/assistant.json".into(),
                    serde_json::from_str(OUTBOUND).expect("events/assistant.json"),
                ),
                (
                    "events/assistant-inbound.json".into(),
                    serde_json::from_str(INBOUND).expect("events/assistant-inbound.json"),
                ),
            ],
            phone_number_id: Some(sandbox::SEED_PHONE_NUMBER_ID.into()),
            dry_run,
        }
    }

    async fn setup(&self, webhook: &str, dry_run: bool) -> Report {
        let report = setup::run(&self.input(webhook, dry_run), &vapi_schema::validate)
            .await
            .expect("setup succeeds");
        assert!(
            !report.to_text().contains(&self.secret),
            "the secret was printed"
        );
        report
    }

    /// The Vapi requests that change something since log entry `since`.
    async fn writes_since(&self, since: u64) -> Vec<String> {
        sandbox_writes(&self.sb.vapi_url, "vapi", since)
            .await
            .expect("log")
    }

    async fn last_seq(&self) -> u64 {
        sandbox_last_seq(&self.sb.vapi_url).await.expect("log")
    }
}

fn actions(report: &Report) -> Vec<(&'static str, Action)> {
    report
        .outcomes
        .iter()
        .map(|o| (o.kind, o.action.clone()))
        .collect()
}

#[tokio::test]
async fn setup_vapi_creates_everything_then_changes_nothing_then_updates_a_new_webhook_url() {
    let fake = Fake::start().await;

    // From nothing: the credential and both assistants are created.
    let first = fake.setup(WEBHOOK, false).await;
    assert_eq!(
        actions(&first),
        vec![
            ("credential", Action::Created),
            ("assistant", Action::Created),
            ("assistant", Action::Created),
            (
                "phone-number",
                Action::Updated(vec![
                    format!(
                        "server.credentialId: (none) → \"{}\"",
                        first.outcomes[0].id.as_deref().unwrap_or("?")
                    ),
                    format!("server.url: (none) → \"{WEBHOOK}\"")
                ])
            )
        ],
        "{}",
        first.to_text()
    );
    let credential_id = first.outcomes[0].id.clone().expect("credential id");
    let ids: Vec<String> = first.outcomes[1..3]
        .iter()
        .map(|o| o.id.clone().expect("assistant id"))
        .collect();
    let credential = fake
        .call(
            reqwest::Method::GET,
            &format!("/credential/{credential_id}"),
        )
        .await;
    assert_eq!(credential["authenticationPlan"]["type"], "hmac");
    assert_eq!(
        credential["authenticationPlan"]["secretKey"],
        json!(fake.secret)
    );
    for id in &ids {
        let a = fake
            .call(reqwest::Method::GET, &format!("/assistant/{id}"))
            .await;
        assert_eq!(a["server"]["url"], WEBHOOK);
        assert_eq!(a["server"]["credentialId"], json!(credential_id));
        assert!(a["server"]["backoffPlan"].is_object());
    }
    let number_path = format!("/phone-number/{}", sandbox::SEED_PHONE_NUMBER_ID);
    let number = fake.call(reqwest::Method::GET, &number_path).await;
    assert_eq!(number["server"]["url"], WEBHOOK);
    assert_eq!(number["server"]["credentialId"], json!(credential_id));
    // The number is shown masked, never whole.
    assert!(!first.to_text().contains(sandbox::SEED_PHONE_NUMBER));
    assert_eq!(
        first.sam_deploy_line(),
        format!(
            "sam deploy --parameter-overrides VapiAssistantId={} VapiInboundAssistantId={} VapiPhoneNumberId={}",
            ids[0], ids[1], sandbox::SEED_PHONE_NUMBER_ID
        )
    );
    assert!(first
        .to_text()
        .ends_with(&format!("{}\n", first.sam_deploy_line())));

    // A second run: unchanged, and nothing but reads sent.
    let seq = fake.last_seq().await;
    let second = fake.setup(WEBHOOK, false).await;
    assert_eq!(
        actions(&second),
        vec![
            ("credential", Action::Unchanged),
            ("assistant", Action::Unchanged),
            ("assistant", Action::Unchanged),
            ("phone-number", Action::Unchanged)
        ],
        "{}",
        second.to_text()
    );
    assert_eq!(second.to_text().matches(": unchanged").count(), 4);
    assert_eq!(fake.writes_since(seq).await, Vec::<String>::new());

    // A dry run with a new URL reports what it would change and sends nothing.
    let moved = "https://def456.execute-api.eu-west-1.amazonaws.com/vapi/webhook";
    let seq = fake.last_seq().await;
    let dry = fake.setup(moved, true).await;
    assert!(
        matches!(dry.outcomes[1].action, Action::WouldUpdate(_)),
        "{}",
        dry.to_text()
    );
    assert!(
        dry.to_text()
            .contains(&format!("PATCH /assistant/{} {{\"server\":", ids[0])),
        "{}",
        dry.to_text()
    );
    assert!(
        dry.to_text()
            .contains(&format!("PATCH {number_path} {{\"server\":")),
        "{}",
        dry.to_text()
    );
    assert_eq!(fake.writes_since(seq).await, Vec::<String>::new());

    // The webhook moved: both assistants and the number are updated with `server` alone, and
    // the change shown.
    let seq = fake.last_seq().await;
    let third = fake.setup(moved, false).await;
    let text = third.to_text();
    assert_eq!(third.outcomes[0].action, Action::Unchanged, "{text}");
    for o in &third.outcomes[1..4] {
        assert_eq!(
            o.action,
            Action::Updated(vec![format!("server.url: \"{WEBHOOK}\" → \"{moved}\"")]),
            "{text}"
        );
    }
    assert!(text.contains(": updated"), "{text}");
    assert_eq!(
        fake.writes_since(seq).await,
        ids.iter()
            .map(|id| format!("PATCH /assistant/{id}"))
            .chain([format!("PATCH {number_path}")])
            .collect::<Vec<_>>()
    );
    let number = fake.call(reqwest::Method::GET, &number_path).await;
    assert_eq!(number["server"]["url"], moved);
    for id in &ids {
        let a = fake
            .call(reqwest::Method::GET, &format!("/assistant/{id}"))
            .await;
        assert_eq!(a["server"]["url"], moved);
    }
    let fourth = fake.setup(moved, false).await;
    assert!(fourth
        .outcomes
        .iter()
        .all(|o| o.action == Action::Unchanged));

    fake.sb.shutdown().await;
}

#[tokio::test]
async fn a_body_vapis_schema_refuses_is_never_sent() {
    let fake = Fake::start().await;
    let mut input = fake.input(WEBHOOK, false);
    input.assistants[0].1["nickname"] = json!("not a Vapi property");
    let seq = fake.last_seq().await;
    let err = setup::run(&input, &vapi_schema::validate)
        .await
        .expect_err("the schema refuses the assistant");
    assert!(matches!(err, SetupError::Invalid { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("nickname") && msg.contains("events/assistant.json"),
        "{msg}"
    );
    // The credential was set up; the refused assistant was not sent.
    assert_eq!(
        fake.writes_since(seq).await,
        vec!["POST /credential".to_owned()]
    );
    fake.sb.shutdown().await;
}

#[tokio::test]
async fn a_dry_run_from_nothing_prints_the_requests_and_sends_none() {
    let fake = Fake::start().await;
    let seq = fake.last_seq().await;
    let dry = fake.setup(WEBHOOK, true).await;
    assert_eq!(
        actions(&dry),
        vec![
            ("credential", Action::WouldCreate),
            ("assistant", Action::WouldCreate),
            ("assistant", Action::WouldCreate),
            (
                "phone-number",
                Action::WouldUpdate(vec![
                    "server.credentialId: (none) → \"<the credential's id>\"".to_owned(),
                    format!("server.url: (none) → \"{WEBHOOK}\"")
                ])
            )
        ]
    );
    let text = dry.to_text();
    assert!(text.contains("POST /credential {"), "{text}");
    assert!(text.contains(r#""secretKey":"(secret)""#), "{text}");
    assert_eq!(text.matches("POST /assistant {").count(), 2, "{text}");
    assert!(
        text.contains("VapiAssistantId=<created on a real run>"),
        "{text}"
    );
    assert_eq!(fake.writes_since(seq).await, Vec::<String>::new());
    fake.sb.shutdown().await;
}

#[tokio::test]
async fn a_phone_number_vapi_does_not_have_is_named_with_the_fix() {
    let fake = Fake::start().await;
    let mut input = fake.input(WEBHOOK, false);
    input.phone_number_id = Some("no-such-number".into());
    let err = setup::run(&input, &vapi_schema::validate)
        .await
        .expect_err("Vapi answers 404");
    let msg = err.to_string();
    assert!(
        msg.contains("no phone number no-such-number") && msg.contains("VAPI_PHONE_NUMBER_ID"),
        "{msg}"
    );
    fake.sb.shutdown().await;
}
