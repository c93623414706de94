//! `sfvapi-admin setup event-relay` (issue 22) against the sandbox's Tooling API and moto's
//! EventBridge: from nothing it creates the named credential, both channels, their members, both
//! relays (stopped) and — once Salesforce has created each pending partner event source in moto —
//! a bus per source; a second run changes nothing; a changed filter is updated and shown; `--start`
//! waits for the stack's rule on the bus, then sets the relay to RUN.
//! `scripts/services.sh cargo test -p sfvapi-local --test setup_event_relay`.
//!
//! What moto cannot serve: `ListRules` and `PutRule` on a partner event bus. moto 5 reads the
//! `EventBusName` of those calls through `_normalize_event_bus_arn`, which keeps only the text
//! after the last `/`, so a bus named `aws.partner/salesforce.com/<org>/<channel>` (the name AWS
//! gives a partner bus: <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-saas.html>)
//! is "Event bus <channel> does not exist". [`RulesProxy`] answers those two calls as EventBridge
//! documents them (<https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_ListRules.html>,
//! <https://docs.aws.amazon.com/eventbridge/latest/APIReference/API_PutRule.html>; JSON 1.1
//! protocol, `X-Amz-Target: AWSEvents.<Action>`), asking moto whether the bus exists, and passes
//! every other request to moto unchanged.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use sfvapi::salesforce::relay_setup::{self, Input, Report};
use sfvapi::setup::Action;
use sfvapi_local::demo::{sandbox_last_seq, sandbox_writes};
use sfvapi_local::stack::{Stack, StackConfig};

/// moto's account for any credentials it does not know.
const ACCOUNT: &str = "123456789012";

/// Rules by bus name.
type Rules = Arc<Mutex<BTreeMap<String, Vec<Value>>>>;

/// Between the EventBridge client and moto: `ListRules` / `PutRule` answered here (see the module
/// doc), everything else forwarded.
struct RulesProxy {
    url: String,
}

impl RulesProxy {
    async fn start(moto: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let rules: Rules = Arc::default();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (moto, rules) = (moto.clone(), rules.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let (moto, rules) = (moto.clone(), rules.clone());
                        async move { Ok::<_, Infallible>(proxy(&moto, &rules, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { url }
    }
}

fn aws_json(status: u16, body: &Value) -> hyper::Response<Full<bytes::Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .body(Full::new(bytes::Bytes::from(body.to_string())))
        .expect("response")
}

async fn proxy(
    moto: &str,
    rules: &Rules,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<bytes::Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let http = reqwest::Client::new();
    let forward = |target: &str, body: bytes::Bytes| {
        let mut r = http.post(moto).body(body);
        for (k, v) in &parts.headers {
            if k != "host" && k != "content-length" && k != "x-amz-target" {
                r = r.header(k, v);
            }
        }
        r.header("x-amz-target", target).send()
    };
    if matches!(target.as_str(), "AWSEvents.ListRules" | "AWSEvents.PutRule") {
        let input: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let bus = input["EventBusName"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        // The bus must exist (moto's DescribeEventBus reads a partner bus's name whole).
        let exists = forward(
            "AWSEvents.DescribeEventBus",
            bytes::Bytes::from(json!({"Name": bus}).to_string()),
        )
        .await
        .is_ok_and(|r| r.status().is_success());
        if !exists {
            return aws_json(
                400,
                &json!({"__type": "ResourceNotFoundException", "message": format!("Event bus {bus} does not exist.")}),
            );
        }
        let mut all = rules.lock().expect("rules");
        let on_bus = all.entry(bus.clone()).or_default();
        if target == "AWSEvents.ListRules" {
            return aws_json(200, &json!({"Rules": on_bus}));
        }
        let name = input["Name"].as_str().unwrap_or_default();
        let arn = format!("arn:aws:events:us-east-1:{ACCOUNT}:rule/{bus}/{name}");
        on_bus.push(json!({
            "Name": name,
            "Arn": arn,
            "EventBusName": bus,
            "EventPattern": input["EventPattern"],
            "State": input["State"].as_str().unwrap_or("ENABLED"),
        }));
        return aws_json(200, &json!({"RuleArn": arn}));
    }
    match forward(&target, body).await {
        Ok(r) => {
            let status = r.status().as_u16();
            let text = r.bytes().await.unwrap_or_default();
            hyper::Response::builder()
                .status(status)
                .header("content-type", "application/x-amz-json-1.1")
                .body(Full::new(text))
                .expect("response")
        }
        Err(e) => aws_json(502, &json!({"message": e.to_string()})),
    }
}

struct Env {
    stack: Stack,
    conn: sfvapi::salesforce::Connection,
    events: aws_sdk_eventbridge::Client,
}

impl Env {
    async fn setup(&self, filter: Option<&str>, start: bool, dry_run: bool) -> Report {
        let filters: Vec<String> = filter
            .map(|f| format!("CaseChangeEvent={f}"))
            .into_iter()
            .collect();
        let input = Input {
            events: relay_setup::parse_events(
                &["Call_Request__e".into(), "CaseChangeEvent".into()],
                &filters,
            )
            .expect("valid events"),
            region: "us-east-1".into(),
            account: ACCOUNT.into(),
            start,
            dry_run,
        };
        relay_setup::run(&self.conn.rest, &self.events, &input)
            .await
            .expect("setup succeeds")
    }

    async fn last_seq(&self) -> u64 {
        sandbox_last_seq(&self.stack.salesforce_url)
            .await
            .expect("log")
    }

    /// The Tooling writes (POST / PATCH) since `since`.
    async fn writes_since(&self, since: u64) -> Vec<String> {
        sandbox_writes(&self.stack.salesforce_url, "salesforce", since)
            .await
            .expect("log")
    }
}

fn actions(report: &Report) -> Vec<(&'static str, String, Action)> {
    report
        .outcomes
        .iter()
        .map(|o| (o.kind, o.name.clone(), o.action.clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_event_relay_creates_everything_then_changes_nothing_then_starts_once_the_rule_exists(
) {
    sfvapi_test_support::local_services("AWS_ENDPOINT_URL_EVENTBRIDGE");
    let stack = Stack::start(StackConfig::default())
        .await
        .expect("the local stack starts");
    let sdk = sfvapi::config::aws_sdk_config().await;
    let moto = std::env::var("AWS_ENDPOINT_URL_EVENTBRIDGE").unwrap_or_default();
    let rules = RulesProxy::start(moto).await;
    let events = aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&sdk)
            .endpoint_url(&rules.url)
            .build(),
    );
    let env = Env {
        conn: relay_setup::connection_from_env(&sdk).expect("the stack's connection"),
        events,

        stack,
    };

    // A dry run from nothing: everything would be created, nothing is sent.
    let seq = env.last_seq().await;
    let dry = env.setup(Some("Priority='High'"), false, true).await;
    assert!(
        dry.outcomes
            .iter()
            .all(|o| o.action == Action::WouldCreate && o.request.is_some()),
        "{}",
        dry.to_text()
    );
    assert!(dry.to_text().contains(
        r#"POST /tooling/sobjects/NamedCredential {"FullName":"Sfvapi_Event_Relay","Metadata":{"endpoint":"arn:aws:US-EAST-1:123456789012""#
    ), "{}", dry.to_text());
    assert_eq!(env.writes_since(seq).await, Vec::<String>::new());

    // From nothing.
    let first = env.setup(Some("Priority='High'"), false, false).await;
    let text = first.to_text();
    let created: Vec<(&str, &str)> = first
        .outcomes
        .iter()
        .filter(|o| o.action == Action::Created)
        .map(|o| (o.kind, o.name.as_str()))
        .collect();
    assert_eq!(
        created,
        vec![
            ("named-credential", "Sfvapi_Event_Relay"),
            ("channel", "Sfvapi_Relay__chn"),
            ("channel-member", "Sfvapi_Relay_chn_Call_Request_e"),
            ("event-relay", "Sfvapi_Relay"),
            ("event-bus", first.buses[0].as_str()),
            ("channel", "Sfvapi_Changes__chn"),
            ("channel-member", "Sfvapi_Changes_chn_CaseChangeEvent"),
            ("event-relay", "Sfvapi_Changes_Relay"),
            ("event-bus", first.buses[1].as_str()),
        ],
        "{text}"
    );
    let org = sfvapi::samples::LOCAL_RELAY_ORG_ID;
    for bus in &first.buses {
        assert!(
            bus.starts_with(&format!("aws.partner/salesforce.com/{org}/0YL")),
            "{bus}"
        );
        // The bus is in moto, fed by the partner event source Salesforce created.
        let found = env
            .events
            .describe_event_bus()
            .name(bus)
            .send()
            .await
            .expect("the bus exists in moto");
        assert_eq!(found.name(), Some(bus.as_str()));
    }
    assert_eq!(
        first.sam_deploy_line(),
        format!(
            "sam deploy --parameter-overrides SalesforceEventBusName={} EventRelayOrgIds={org} EventRelayDetailTypes=Call_Request__e,CaseChangeEvent",
            first.buses[0]
        )
    );
    assert!(
        text.contains("run again with --start to set Sfvapi_Relay to RUN"),
        "{text}"
    );
    assert!(text.contains("the stack takes one bus"), "{text}");
    // Both relays are stopped: nothing relays before the stack's rule exists.
    let relays = relay_setup::relays(&env.conn.rest).await.expect("relays");
    assert_eq!(relays.len(), 2);
    assert!(relays.iter().all(|r| r["State"] == "STOP"), "{relays:?}");

    // A second run: unchanged, nothing written.
    let seq = env.last_seq().await;
    let second = env.setup(Some("Priority='High'"), false, false).await;
    assert!(
        second
            .outcomes
            .iter()
            .all(|o| o.action == Action::Unchanged),
        "{}",
        second.to_text()
    );
    assert_eq!(env.writes_since(seq).await, Vec::<String>::new());
    assert_eq!(second.buses, first.buses);

    // A changed filter is updated and shown.
    let seq = env.last_seq().await;
    let third = env.setup(Some("Priority='Critical'"), false, false).await;
    let changed: Vec<_> = actions(&third)
        .into_iter()
        .filter(|(_, _, a)| *a != Action::Unchanged)
        .collect();
    assert_eq!(
        changed,
        vec![(
            "channel-member",
            "Sfvapi_Changes_chn_CaseChangeEvent".to_owned(),
            Action::Updated(vec![
                r#"FilterExpression: "Priority='High'" → "Priority='Critical'""#.to_owned()
            ])
        )],
        "{}",
        third.to_text()
    );
    assert_eq!(env.writes_since(seq).await.len(), 1);

    // --start before the stack's rule exists: the relays stay stopped, and it says why.
    let early = env.setup(Some("Priority='Critical'"), true, false).await;
    assert!(
        early.to_text().contains("has no rule yet"),
        "{}",
        early.to_text()
    );
    let relays = relay_setup::relays(&env.conn.rest).await.expect("relays");
    assert!(relays.iter().all(|r| r["State"] == "STOP"), "{relays:?}");

    // The stack's rule on the first bus (as `sam deploy` makes it): that relay starts.
    env.events
        .put_rule()
        .name("sfvapi-relay")
        .event_bus_name(&first.buses[0])
        .event_pattern(r#"{"source":[{"prefix":"aws.partner/salesforce.com"}]}"#)
        .send()
        .await
        .expect("moto creates the rule");
    let started = env.setup(Some("Priority='Critical'"), true, false).await;
    let states: Vec<_> = actions(&started)
        .into_iter()
        .filter(|(k, _, _)| *k == "relay-state")
        .collect();
    assert_eq!(
        states,
        vec![(
            "relay-state",
            "Sfvapi_Relay".to_owned(),
            Action::Updated(vec![r#"State: "STOP" → "RUN""#.to_owned()])
        )],
        "{}",
        started.to_text()
    );
    let relays = relay_setup::relays(&env.conn.rest).await.expect("relays");
    let state_of = |name: &str| {
        relays
            .iter()
            .find(|r| r["DeveloperName"] == name)
            .map(|r| r["State"].clone())
    };
    assert_eq!(state_of("Sfvapi_Relay"), Some("RUN".into()));
    assert_eq!(state_of("Sfvapi_Changes_Relay"), Some("STOP".into()));
    let feedback = relay_setup::feedback(&env.conn.rest)
        .await
        .expect("feedback");
    assert!(
        feedback.iter().any(|f| f["Status"] == "RUNNING"),
        "{feedback:?}"
    );

    // And again: nothing to do.
    let seq = env.last_seq().await;
    let again = env.setup(Some("Priority='Critical'"), true, false).await;
    assert!(
        again
            .outcomes
            .iter()
            .filter(|o| o.name == "Sfvapi_Relay")
            .all(|o| o.action == Action::Unchanged),
        "{}",
        again.to_text()
    );
    assert_eq!(env.writes_since(seq).await, Vec::<String>::new());

    env.stack.shutdown().await;
}
