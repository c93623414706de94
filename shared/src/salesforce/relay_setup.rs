//! `sfvapi-admin setup event-relay`: Salesforce Event Relay into the stack's EventBridge bus,
//! idempotent, every object matched by name. Through Salesforce's Tooling API
//! (<https://developer.salesforce.com/docs/platform/event-relay/guide/event-relay-config.html>):
//!
//! - one channel per kind of event, [`PLATFORM_CHANNEL`] (`channelType: event`, the `…__e`
//!   platform events) and [`CHANGE_CHANNEL`] (`channelType: data`, the `…ChangeEvent` change
//!   events): a channel holds one kind, a relay relays one channel
//!   (<https://developer.salesforce.com/docs/platform/event-relay/guide/create-channel.html>);
//! - a member per event, with its `filterExpression` when one is given (`--filter`); a changed
//!   filter is updated;
//! - the named credential [`NAMED_CREDENTIAL`] whose endpoint is `arn:aws:<REGION>:<account>`
//!   (<https://developer.salesforce.com/docs/platform/event-relay/guide/create-named-credential.html>);
//! - a relay per channel, `relayOption` `{"ReplayRecovery":"EARLIEST"}` (after an outage
//!   Salesforce re-sends what it kept; sfvapi dedups), created stopped
//!   (<https://developer.salesforce.com/docs/platform/event-relay/guide/create-event-relay-config.html>).
//!   Only `state` and `relayOption` of a relay can change: a relay on another channel or
//!   credential is reported with the Setup page to delete it on.
//!
//! Creating a relay makes Salesforce create a pending partner event source in the account,
//! named in the relay's `EventRelayFeedback.RemoteResource`
//! (`aws.partner/salesforce.com/<orgId>/<channel id>`); the source is associated with an event
//! bus of the same name (EventBridge `CreateEventBus` with `EventSourceName`,
//! <https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-saas.html>). With `start`, a
//! relay is set to `RUN` once the stack's rule exists on its bus (before that its events would
//! go nowhere). The report ends with the stack parameters to set.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::salesforce::rest::{ApiErrorEntry, RestError, SalesforceClient};
use crate::setup::{Action, Outcome};

// The names of the package in salesforce/event-relay (deployed with `sf project deploy`): the
// command and the package meet on the same objects.

/// The channel of the platform events (`…__e`).
pub const PLATFORM_CHANNEL: &str = "Sfvapi_Relay__chn";
/// The channel of the change events (`…ChangeEvent`).
pub const CHANGE_CHANNEL: &str = "Sfvapi_Changes__chn";
/// The named credential every relay sends through.
pub const NAMED_CREDENTIAL: &str = "Sfvapi_Event_Relay";
/// The relay's recovery option: after an outage, re-send what Salesforce kept (up to 3 days).
pub const RELAY_OPTION: &str = r#"{"ReplayRecovery":"EARLIEST"}"#;
/// How long to wait for Salesforce to create the partner event source after the relay.
pub const SOURCE_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum RelaySetupError {
    #[error("{0}")]
    Input(String),
    #[error("Salesforce answered {method} {path} with {status} {code}: {message}; {fix}")]
    Salesforce {
        method: &'static str,
        path: String,
        status: u16,
        code: String,
        message: String,
        fix: String,
    },
    #[error("Salesforce: {0}")]
    Rest(#[from] RestError),
    #[error("EventBridge {operation}: {detail}; {fix}")]
    Aws {
        operation: &'static str,
        detail: String,
        fix: String,
    },
    #[error("event relay {name}: {problem}; {fix}")]
    Conflict {
        name: String,
        problem: String,
        fix: String,
    },
}

/// Which channel an event goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Platform,
    Change,
}

impl Kind {
    fn channel(self) -> &'static str {
        match self {
            Self::Platform => PLATFORM_CHANNEL,
            Self::Change => CHANGE_CHANNEL,
        }
    }
    fn channel_type(self) -> &'static str {
        match self {
            Self::Platform => "event",
            Self::Change => "data",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Self::Platform => "sfvapi platform events",
            Self::Change => "sfvapi change events",
        }
    }
    /// The relay's DeveloperName.
    fn relay(self) -> &'static str {
        match self {
            Self::Platform => "Sfvapi_Relay",
            Self::Change => "Sfvapi_Changes_Relay",
        }
    }
}

/// One event to relay, parsed from `--event NAME` and `--filter NAME=EXPR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSpec {
    pub name: String,
    pub kind: Kind,
    pub filter: Option<String>,
}

impl EventSpec {
    /// The member's FullName: `<Channel>_chn_<Event with "__" as "_">`, as Salesforce's guide
    /// names them (`MyChannel_chn_Carbon_Comparison_e`).
    fn member(&self) -> String {
        format!(
            "{}_chn_{}",
            developer_name(self.kind.channel()),
            self.name.replace("__", "_")
        )
    }
}

fn developer_name(full_name: &str) -> &str {
    full_name.strip_suffix("__chn").unwrap_or(full_name)
}

/// `--event` names and `--filter EVENT=EXPR` pairs → the events, each filter on its event.
pub fn parse_events(
    events: &[String],
    filters: &[String],
) -> Result<Vec<EventSpec>, RelaySetupError> {
    if events.is_empty() {
        return Err(RelaySetupError::Input(
            "name at least one event: --event Call_Request__e --event CaseChangeEvent".into(),
        ));
    }
    let mut out: Vec<EventSpec> = Vec::new();
    for name in events {
        let name = name.trim();
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let kind = if !valid {
            None
        } else if name.ends_with("__e") {
            Some(Kind::Platform)
        } else if name.ends_with("ChangeEvent") {
            Some(Kind::Change)
        } else {
            None
        };
        let Some(kind) = kind else {
            return Err(RelaySetupError::Input(format!(
                "--event {name}: not a platform event (API name ending in __e) or a change event (ending in ChangeEvent, e.g. CaseChangeEvent)"
            )));
        };
        if !out.iter().any(|e| e.name == name) {
            out.push(EventSpec {
                name: name.to_owned(),
                kind,
                filter: None,
            });
        }
    }
    for f in filters {
        let Some((event, expr)) = f.split_once('=') else {
            return Err(RelaySetupError::Input(format!(
                "--filter {f}: expected EVENT=EXPRESSION, e.g. CaseChangeEvent=Priority='High'"
            )));
        };
        let Some(spec) = out.iter_mut().find(|e| e.name == event.trim()) else {
            return Err(RelaySetupError::Input(format!(
                "--filter {f}: {} is not one of the --event names",
                event.trim()
            )));
        };
        spec.filter = Some(expr.trim().to_owned()).filter(|e| !e.is_empty());
    }
    Ok(out)
}

/// What to set up.
pub struct Input {
    pub events: Vec<EventSpec>,
    /// The stack's AWS region (`us-east-1`).
    pub region: String,
    /// The 12-digit AWS account.
    pub account: String,
    /// Start each relay whose bus has the stack's rule.
    pub start: bool,
    pub dry_run: bool,
}

impl Input {
    /// The named credential's endpoint: `arn:aws:<REGION IN CAPITALS>:<account>`.
    pub fn endpoint(&self) -> String {
        format!(
            "arn:aws:{}:{}",
            self.region.to_ascii_uppercase(),
            self.account
        )
    }
}

/// Everything set up, the buses found, and what to do next.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
    /// Each relay's bus (its partner event source's name), in channel order.
    pub buses: Vec<String>,
    pub org_id: Option<String>,
    pub detail_types: Vec<String>,
    /// What is left to do, each a sentence.
    pub next: Vec<String>,
}

impl Report {
    /// The `sam deploy` line for the stack's Event Relay parameters. The stack takes one bus:
    /// with two relays, the first (the platform events') and a note.
    pub fn sam_deploy_line(&self) -> String {
        format!(
            "sam deploy --parameter-overrides SalesforceEventBusName={} EventRelayOrgIds={} EventRelayDetailTypes={}",
            self.buses
                .first()
                .map(String::as_str)
                .unwrap_or("<the bus, created on a real run>"),
            self.org_id.as_deref().unwrap_or("<your org id>"),
            self.detail_types.join(",")
        )
    }

    pub fn to_text(&self) -> String {
        let mut out: String = self.outcomes.iter().map(|o| format!("{o}\n")).collect();
        for n in &self.next {
            out.push_str(&format!("next: {n}\n"));
        }
        out.push_str(&self.sam_deploy_line());
        out.push('\n');
        out
    }
}

struct Tooling<'a> {
    sf: &'a SalesforceClient,
}

/// Where a person does a step by hand when the API refuses it.
fn setup_page(sobject: &str) -> &'static str {
    match sobject {
        "NamedCredential" => "or create it by hand: Setup → Named Credentials → New Legacy (URL arn:aws:<REGION>:<account>, Identity Type Named Principal, No Authentication)",
        "EventRelayConfig" => "or do it by hand: Setup → Event Relays",
        _ => "channels and their members have no Setup page: give the integration user Customize Application and View Setup and Configuration, then run again",
    }
}

impl Tooling<'_> {
    async fn call(
        &self,
        method: &'static str,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        sobject: &str,
    ) -> Result<Value, RelaySetupError> {
        let m = Method::from_bytes(method.as_bytes())
            .map_err(|e| RelaySetupError::Input(e.to_string()))?;
        let (status, value) = self.sf.request(m, path, query, body).await?;
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let first: Option<ApiErrorEntry> = value
            .as_array()
            .and_then(|a| a.first())
            .and_then(|e| serde_json::from_value(e.clone()).ok());
        let (code, message) = first
            .map(|e| (e.error_code, e.message))
            .unwrap_or_else(|| (String::new(), value.to_string()));
        let fix = match status {
            403 => format!(
                "the integration user needs Customize Application; {}",
                setup_page(sobject)
            ),
            404 => "check SF_API_VERSION (Event Relay needs 56.0 or later)".to_owned(),
            _ => format!("fix what Salesforce names; {}", setup_page(sobject)),
        };
        Err(RelaySetupError::Salesforce {
            method,
            path: path.to_owned(),
            status,
            code,
            message,
            fix,
        })
    }

    /// The first record of `SELECT <fields> FROM <sobject> WHERE DeveloperName = '<name>'`.
    async fn find(
        &self,
        sobject: &str,
        fields: &str,
        name: &str,
    ) -> Result<Option<Value>, RelaySetupError> {
        let q = format!("SELECT Id, {fields} FROM {sobject} WHERE DeveloperName = '{name}'");
        let answer = self
            .call("GET", "/tooling/query", &[("q", q)], None, sobject)
            .await?;
        Ok(answer["records"]
            .as_array()
            .and_then(|r| r.first())
            .cloned())
    }

    /// Create `FullName` + `Metadata` unless `found`; an existing one is updated with
    /// `Metadata` when one of `compare`'s `(Field, metadata key)` differs.
    #[allow(clippy::too_many_arguments)]
    async fn converge(
        &self,
        kind: &'static str,
        sobject: &str,
        full_name: &str,
        metadata: Value,
        found: Option<Value>,
        compare: &[(&str, &str)],
        dry_run: bool,
    ) -> Result<Outcome, RelaySetupError> {
        let body = json!({"FullName": full_name, "Metadata": metadata});
        let path = format!("/tooling/sobjects/{sobject}");
        let Some(found) = found else {
            if dry_run {
                return Ok(outcome(
                    kind,
                    full_name,
                    None,
                    Action::WouldCreate,
                    Some(format!("POST {path} {body}")),
                ));
            }
            let created = self.call("POST", &path, &[], Some(&body), sobject).await?;
            let id = created["id"].as_str().map(str::to_owned);
            return Ok(outcome(kind, full_name, id, Action::Created, None));
        };
        let id = found["Id"].as_str().map(str::to_owned);
        let diff: Vec<String> = compare
            .iter()
            .filter_map(|(field, key)| {
                let want = &metadata[*key];
                let have = &found[*field];
                let same = have == want || (have.is_null() && want.as_str() == Some(""));
                (!same).then(|| format!("{field}: {} → {}", shown(have), shown(want)))
            })
            .collect();
        if diff.is_empty() {
            return Ok(outcome(kind, full_name, id, Action::Unchanged, None));
        }
        let patch = json!({"Metadata": metadata});
        let id_str = id.clone().unwrap_or_default();
        if dry_run {
            return Ok(outcome(
                kind,
                full_name,
                id,
                Action::WouldUpdate(diff),
                Some(format!("PATCH {path}/{id_str} {patch}")),
            ));
        }
        self.call(
            "PATCH",
            &format!("{path}/{id_str}"),
            &[],
            Some(&patch),
            sobject,
        )
        .await?;
        Ok(outcome(kind, full_name, id, Action::Updated(diff), None))
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        other => other.to_string(),
    }
}

fn outcome(
    kind: &'static str,
    name: &str,
    id: Option<String>,
    action: Action,
    request: Option<String>,
) -> Outcome {
    Outcome {
        kind,
        name: name.to_owned(),
        id,
        action,
        request,
    }
}

/// The org id of a partner event source `aws.partner/salesforce.com/<orgId>/<channel id>`.
pub fn org_of_source(source: &str) -> Option<&str> {
    let rest = source.strip_prefix("aws.partner/salesforce.com/")?;
    rest.split('/').next().filter(|o| !o.is_empty())
}

/// The relays' feedback (`EventRelayFeedback`, a standard object: the REST query):
/// `EventRelayConfigId`, `Status`, `RemoteResource`, `ErrorCode`, `ErrorMessage`, `ErrorTime`.
pub async fn feedback(sf: &SalesforceClient) -> Result<Vec<Value>, RelaySetupError> {
    let q = "SELECT EventRelayConfigId, Status, RemoteResource, ErrorCode, ErrorMessage, ErrorTime FROM EventRelayFeedback".to_owned();
    let t = Tooling { sf };
    let answer = t
        .call("GET", "/query", &[("q", q)], None, "EventRelayConfig")
        .await?;
    Ok(answer["records"].as_array().cloned().unwrap_or_default())
}

/// The event relays sfvapi manages (`Sfvapi_Relay`, `Sfvapi_Changes_Relay`) that exist:
/// `Id`, `DeveloperName`, `State`, `EventChannel`.
pub async fn relays(sf: &SalesforceClient) -> Result<Vec<Value>, RelaySetupError> {
    let t = Tooling { sf };
    let mut out = Vec::new();
    for kind in [Kind::Platform, Kind::Change] {
        if let Some(r) = t
            .find(
                "EventRelayConfig",
                "DeveloperName, State, EventChannel",
                kind.relay(),
            )
            .await?
        {
            out.push(r);
        }
    }
    Ok(out)
}

fn aws_error<E: std::error::Error + 'static>(
    operation: &'static str,
    e: E,
    fix: &str,
) -> RelaySetupError {
    RelaySetupError::Aws {
        operation,
        detail: crate::secrets::error_chain(&e),
        fix: fix.to_owned(),
    }
}

/// Associate the pending partner event source `source` with a bus of its name (waiting up to
/// [`SOURCE_WAIT`] for Salesforce to create it).
async fn bus(
    events: &aws_sdk_eventbridge::Client,
    source: &str,
    input: &Input,
) -> Result<Outcome, RelaySetupError> {
    let done = |arn: Option<&str>, action| {
        Ok(outcome(
            "event-bus",
            source,
            arn.map(str::to_owned),
            action,
            None,
        ))
    };
    match events.describe_event_bus().name(source).send().await {
        Ok(found) => return done(found.arn(), Action::Unchanged),
        Err(e) => {
            let missing = e
                .as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception());
            if !missing {
                return Err(aws_error(
                    "DescribeEventBus",
                    e,
                    "check the AWS credentials and region",
                ));
            }
        }
    }
    if input.dry_run {
        return Ok(outcome(
            "event-bus",
            source,
            None,
            Action::WouldCreate,
            Some(format!(
                "EventBridge CreateEventBus Name={source} EventSourceName={source}"
            )),
        ));
    }
    let deadline = tokio::time::Instant::now() + SOURCE_WAIT;
    loop {
        match events
            .create_event_bus()
            .name(source)
            .event_source_name(source)
            .send()
            .await
        {
            Ok(created) => return done(created.event_bus_arn(), Action::Created),
            Err(e) => {
                let pending = e
                    .as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception());
                if !pending || tokio::time::Instant::now() >= deadline {
                    return Err(aws_error(
                        "CreateEventBus",
                        e,
                        &format!(
                            "Salesforce creates the partner event source {source} in the named credential's account and region ({}): check {NAMED_CREDENTIAL}'s URL, then EventBridge console → Partner event sources → the source → Associate with event bus",
                            input.endpoint()
                        ),
                    ));
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Set up the channels, members, named credential and relays, then the buses; start the relays
/// whose bus has a rule when `input.start`.
pub async fn run(
    sf: &SalesforceClient,
    events: &aws_sdk_eventbridge::Client,
    input: &Input,
) -> Result<Report, RelaySetupError> {
    if input.account.len() != 12 || !input.account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(RelaySetupError::Input(format!(
            "the AWS account {:?} is not 12 digits",
            input.account
        )));
    }
    let t = Tooling { sf };
    let mut report = Report {
        detail_types: input.events.iter().map(|e| e.name.clone()).collect(),
        ..Report::default()
    };
    let mut kinds: Vec<Kind> = input.events.iter().map(|e| e.kind).collect();
    kinds.sort();
    kinds.dedup();

    // The named credential first: a relay needs it.
    let nc_meta = json!({
        "endpoint": input.endpoint(),
        "label": "sfvapi Event Relay",
        "principalType": "NamedUser",
        "protocol": "NoAuthentication",
        "generateAuthorizationHeader": true,
    });
    let found = t
        .find(
            "NamedCredential",
            "DeveloperName, Endpoint",
            NAMED_CREDENTIAL,
        )
        .await?;
    report.outcomes.push(
        t.converge(
            "named-credential",
            "NamedCredential",
            NAMED_CREDENTIAL,
            nc_meta,
            found,
            &[("Endpoint", "endpoint")],
            input.dry_run,
        )
        .await?,
    );

    for kind in kinds {
        let channel = kind.channel();
        let found = t
            .find(
                "PlatformEventChannel",
                "DeveloperName, ChannelType",
                developer_name(channel),
            )
            .await?;
        if let Some(f) = &found {
            if f["ChannelType"].as_str() != Some(kind.channel_type()) {
                return Err(RelaySetupError::Conflict {
                    name: channel.to_owned(),
                    problem: format!("the channel exists with channelType {}, not {}", f["ChannelType"], kind.channel_type()),
                    fix: format!("delete it (DELETE …/tooling/sobjects/PlatformEventChannel/{}) and run again", f["Id"].as_str().unwrap_or("?")),
                });
            }
        }
        let meta = json!({"channelType": kind.channel_type(), "label": kind.label()});
        report.outcomes.push(
            t.converge(
                "channel",
                "PlatformEventChannel",
                channel,
                meta,
                found,
                &[],
                input.dry_run,
            )
            .await?,
        );
        for e in input.events.iter().filter(|e| e.kind == kind) {
            let member = e.member();
            let found = t
                .find(
                    "PlatformEventChannelMember",
                    "DeveloperName, SelectedEntity, FilterExpression",
                    &member,
                )
                .await?;
            let mut meta = json!({"eventChannel": channel, "selectedEntity": e.name});
            // Sent even when empty: a filter taken away is cleared.
            meta["filterExpression"] = json!(e.filter.clone().unwrap_or_default());
            report.outcomes.push(
                t.converge(
                    "channel-member",
                    "PlatformEventChannelMember",
                    &member,
                    meta,
                    found,
                    &[("FilterExpression", "filterExpression")],
                    input.dry_run,
                )
                .await?,
            );
        }

        let relay = kind.relay();
        let found = t
            .find(
                "EventRelayConfig",
                "DeveloperName, EventChannel, DestinationResourceName, State, RelayOption",
                relay,
            )
            .await?;
        let destination = format!("callout:{NAMED_CREDENTIAL}");
        let state = found
            .as_ref()
            .and_then(|f| f["State"].as_str())
            .unwrap_or("STOP")
            .to_owned();
        if let Some(f) = &found {
            if f["EventChannel"].as_str() != Some(channel)
                || f["DestinationResourceName"].as_str() != Some(destination.as_str())
            {
                return Err(RelaySetupError::Conflict {
                    name: relay.to_owned(),
                    problem: format!(
                        "it relays {} through {}, not {channel} through {destination}, and Salesforce cannot change either",
                        f["EventChannel"], f["DestinationResourceName"]
                    ),
                    fix: "delete it in Setup → Event Relays (its partner event source goes with it) and run again".into(),
                });
            }
        }
        let meta = json!({
            "eventChannel": channel,
            "destinationResourceName": destination,
            "label": format!("sfvapi {}", kind.label()),
            "relayOption": RELAY_OPTION,
            "state": state,
        });
        let relay_outcome = t
            .converge(
                "event-relay",
                "EventRelayConfig",
                relay,
                meta,
                found,
                &[("RelayOption", "relayOption")],
                input.dry_run,
            )
            .await?;
        let relay_id = relay_outcome.id.clone();
        report.outcomes.push(relay_outcome);

        // The partner event source Salesforce created for the relay.
        let Some(relay_id) = relay_id else {
            report.next.push(format!(
                "after a real run, associate {relay}'s partner event source with a bus (this command does it)"
            ));
            continue;
        };
        let source = source_of(sf, &relay_id).await?;
        let Some(source) = source else {
            report.next.push(format!(
                "Salesforce shows no partner event source for {relay} yet (EventRelayFeedback.RemoteResource): run again in a minute"
            ));
            continue;
        };
        if report.org_id.is_none() {
            report.org_id = org_of_source(&source).map(str::to_owned);
        }
        let bus_outcome = bus(events, &source, input).await?;
        let bus_exists = !matches!(bus_outcome.action, Action::WouldCreate);
        report.outcomes.push(bus_outcome);
        report.buses.push(source.clone());

        if state == "RUN" {
            report.outcomes.push(outcome(
                "relay-state",
                relay,
                Some(relay_id),
                Action::Unchanged,
                None,
            ));
            continue;
        }
        if !input.start {
            report.next.push(format!(
                "deploy with the parameters below, then run again with --start to set {relay} to RUN"
            ));
            continue;
        }
        let has_rule = bus_exists
            && events
                .list_rules()
                .event_bus_name(&source)
                .send()
                .await
                .map_err(|e| aws_error("ListRules", e, "check the AWS credentials and region"))?
                .rules()
                .iter()
                .any(|r| r.state().map(|s| s.as_str()) != Some("DISABLED"));
        if !has_rule {
            report.next.push(format!(
                "{relay} stays stopped: the bus {source} has no rule yet (its events would go nowhere); deploy with the parameters below, then run again with --start"
            ));
            continue;
        }
        let patch = json!({"Metadata": {
            "eventChannel": channel,
            "destinationResourceName": format!("callout:{NAMED_CREDENTIAL}"),
            "label": format!("sfvapi {}", kind.label()),
            "relayOption": RELAY_OPTION,
            "state": "RUN",
        }});
        let path = format!("/tooling/sobjects/EventRelayConfig/{relay_id}");
        let diff = vec![format!("State: \"{state}\" → \"RUN\"")];
        if input.dry_run {
            report.outcomes.push(outcome(
                "relay-state",
                relay,
                Some(relay_id),
                Action::WouldUpdate(diff),
                Some(format!("PATCH {path} {patch}")),
            ));
            continue;
        }
        t.call("PATCH", &path, &[], Some(&patch), "EventRelayConfig")
            .await?;
        report.outcomes.push(outcome(
            "relay-state",
            relay,
            Some(relay_id),
            Action::Updated(diff),
            None,
        ));
    }
    if let Some((first, others)) = report.buses.split_first() {
        if !others.is_empty() {
            report.next.push(format!(
                "the stack takes one bus (SalesforceEventBusName={first}); the events on {} reach sfvapi only with a rule of their own on that bus sending to the stack's RelayQueueArn, or a second stack",
                others.join(", ")
            ));
        }
    }
    Ok(report)
}

/// The stack's Salesforce connection as its functions build it (`SF_*`, `TABLE_NAME` for the
/// shared token item, the connection secret to refresh it), from this process's environment.
pub fn connection_from_env(
    sdk: &aws_config::SdkConfig,
) -> Result<crate::salesforce::Connection, RelaySetupError> {
    let env = crate::config::Env::process();
    let config = crate::config::SalesforceConfig::from_env(&env)
        .map_err(|e| RelaySetupError::Input(e.to_string()))?;
    let table = env.optional("TABLE_NAME").ok_or_else(|| {
        RelaySetupError::Input(
            "TABLE_NAME is not set: the stack's table holds the Salesforce token".into(),
        )
    })?;
    let store = crate::store::Store::new(crate::store::client(sdk), table);
    let cache =
        crate::secrets::SecretsCache::new(crate::config::secrets_client(sdk), Duration::ZERO);
    crate::salesforce::Connection::new(config, store, cache)
        .map_err(|e| RelaySetupError::Input(e.to_string()))
}

/// EventBridge with the SDK's settings (`AWS_ENDPOINT_URL_EVENTBRIDGE` points it at moto).
pub fn eventbridge_client(sdk: &aws_config::SdkConfig) -> aws_sdk_eventbridge::Client {
    aws_sdk_eventbridge::Client::new(sdk)
}

/// The AWS account the credentials belong to (STS `GetCallerIdentity`).
pub async fn caller_account(sdk: &aws_config::SdkConfig) -> Result<String, RelaySetupError> {
    let sts = aws_sdk_sts::Client::new(sdk);
    let who = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| RelaySetupError::Aws {
            operation: "STS GetCallerIdentity",
            detail: crate::secrets::error_chain(&e),
            fix: "check the AWS credentials, or pass --account".into(),
        })?;
    who.account()
        .map(str::to_owned)
        .ok_or_else(|| RelaySetupError::Input("STS named no account: pass --account".into()))
}

/// The relay's partner event source (`EventRelayFeedback.RemoteResource`).
async fn source_of(
    sf: &SalesforceClient,
    relay_id: &str,
) -> Result<Option<String>, RelaySetupError> {
    let t = Tooling { sf };
    let q = format!(
        "SELECT EventRelayConfigId, RemoteResource FROM EventRelayFeedback WHERE EventRelayConfigId = '{relay_id}'"
    );
    let answer = t
        .call("GET", "/query", &[("q", q)], None, "EventRelayConfig")
        .await?;
    Ok(answer["records"]
        .as_array()
        .and_then(|r| r.first())
        .and_then(|r| r["RemoteResource"].as_str())
        .map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_parsed_by_kind_with_their_filters() {
        let events = parse_events(
            &["Call_Request__e".into(), "CaseChangeEvent".into()],
            &["CaseChangeEvent=Priority='High'".into()],
        )
        .expect("valid");
        assert_eq!(events[0].kind, Kind::Platform);
        assert_eq!(events[0].member(), "Sfvapi_Relay_chn_Call_Request_e");
        assert_eq!(events[1].kind, Kind::Change);
        assert_eq!(events[1].filter.as_deref(), Some("Priority='High'"));
        assert_eq!(events[1].member(), "Sfvapi_Changes_chn_CaseChangeEvent");
    }

    #[test]
    fn bad_events_and_filters_say_what_is_expected() {
        let e = parse_events(&["Contact".into()], &[]).expect_err("not an event");
        assert!(e.to_string().contains("ending in __e"), "{e}");
        let e = parse_events(&["X' OR 1=1__e".into()], &[]).expect_err("not a name");
        assert!(e.to_string().contains("not a platform event"), "{e}");
        let e = parse_events(&["A__e".into()], &["B__e=x".into()]).expect_err("no such event");
        assert!(
            e.to_string().contains("not one of the --event names"),
            "{e}"
        );
        let e = parse_events(&[], &[]).expect_err("none");
        assert!(e.to_string().contains("at least one event"), "{e}");
    }

    #[test]
    fn the_org_is_read_from_the_partner_event_source() {
        assert_eq!(
            org_of_source("aws.partner/salesforce.com/00DRM000000Fxts2AC/0YLRM0000004Dfg4AE"),
            Some("00DRM000000Fxts2AC")
        );
        assert_eq!(org_of_source("aws.partner/other/x"), None);
    }
}
