//! `salesforce.*`: the connection the functions use works, and the org has the fields sfvapi
//! reads and writes, as the org's describe (`GET /sobjects/{object}/describe`) says.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::config::SalesforceConfig;
use crate::routing::Routing;
use crate::salesforce::{token, Connection};
use crate::secrets::SecretsCache;
use crate::store::Store;

use super::{Check, Target};

/// How to create sfvapi's fields: the package in `salesforce/` (docs/connect-salesforce.md, "Install in Salesforce").
const DEPLOY_PACKAGE: &str =
    "deploy the package in salesforce/ (`sf project deploy start -d salesforce/force-app`) or create the field in Setup → Object Manager";

/// One describe's fields by name (lower case: Salesforce's names are case-insensitive).
type Fields = BTreeMap<String, Value>;

fn fields_of(describe: &Value) -> Fields {
    describe["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| Some((f["name"].as_str()?.to_ascii_lowercase(), f.clone())))
        .collect()
}

fn flag(field: &Value, name: &str) -> bool {
    field[name].as_bool().unwrap_or(false)
}

pub async fn check(
    target: &Target,
    sdk: &aws_config::SdkConfig,
    cache: &SecretsCache,
) -> Vec<Check> {
    let mut out = Vec::new();
    let env = target.lookup();
    let config = match SalesforceConfig::from_env(&env) {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::fail(
                "salesforce.config",
                e.to_string(),
                "fix the variables named (template.yaml's parameters set them)",
            ));
            return out;
        }
    };
    let Some(table) = target.var("TABLE_NAME") else {
        out.push(Check::fail(
            "salesforce.token",
            "TABLE_NAME is not set: the token item cannot be read",
            "set TABLE_NAME to the stack's table",
        ));
        return out;
    };
    let store = Store::new(crate::store::client(sdk), table.to_owned());
    let now = crate::now_millis();
    match token::read_item(&store, &config.connection).await {
        Ok(Some(t)) if t.token.expires_at_ms > now => out.push(Check::pass(
            "salesforce.token",
            format!(
                "token item {} fresh for {} more minutes",
                token::token_pk(&config.connection),
                (t.token.expires_at_ms - now) / 60_000
            ),
        )),
        Ok(Some(_)) => out.push(Check::fail(
            "salesforce.token",
            format!("token item {} has expired", token::token_pk(&config.connection)),
            "the token refresher keeps it fresh: check its schedule and logs (`make logs FUNCTION=token-refresher`), or invoke it once",
        )),
        Ok(None) => out.push(Check::fail(
            "salesforce.token",
            format!("no token item {}", token::token_pk(&config.connection)),
            "connect Salesforce (docs/connect-salesforce.md), then invoke the token refresher once",
        )),
        Err(e) => out.push(Check::fail(
            "salesforce.token",
            format!("reading the token item: {e}"),
            "check TABLE_NAME, the endpoint and the IAM policy",
        )),
    }
    let task_field = config.task_external_id_field.clone();
    let contact_custom = config.contact_custom_fields.clone();
    // Only the token item, never a refresh: doctor changes nothing.
    let conn = match Connection::token_reader(config, store, cache.clone()) {
        Ok(c) => c,
        Err(e) => {
            out.push(Check::fail(
                "salesforce.rest",
                e.to_string(),
                "fix the variable named",
            ));
            return out;
        }
    };
    let mut describes: BTreeMap<&'static str, Fields> = BTreeMap::new();
    let mut usage = None;
    for object in ["Task", "Contact", "Case"] {
        match conn.rest.describe(object).await {
            Ok((d, u)) => {
                describes.insert(object, fields_of(&d));
                usage = u.or(usage);
            }
            Err(e) => {
                out.push(Check::fail(
                    "salesforce.rest",
                    format!("GET /sobjects/{object}/describe: {e}"),
                    "fix what the error names (token, Connected App policies, the user's access to the object)",
                ));
                return out;
            }
        }
    }
    out.push(Check::pass(
        "salesforce.rest",
        "REST calls work (describe of Task, Contact, Case)",
    ));

    out.push(api_usage(usage));

    // The Task upsert key.
    let id = "salesforce.task-external-id";
    out.push(match describes.get("Task").and_then(|f| f.get(&task_field.to_ascii_lowercase())) {
        None => Check::fail(
            id,
            format!("Task has no field {task_field} (SF_TASK_EXTERNAL_ID_FIELD)"),
            DEPLOY_PACKAGE,
        ),
        Some(f) if flag(f, "externalId") && flag(f, "unique") => {
            Check::pass(id, format!("Task.{task_field} is External ID and Unique"))
        }
        Some(f) => {
            let missing: Vec<&str> = [("externalId", "External ID"), ("unique", "Unique")]
                .into_iter()
                .filter(|(k, _)| !flag(f, k))
                .map(|(_, label)| label)
                .collect();
            Check::fail(
                id,
                format!("Task.{task_field} is not {}: a retried report could write a second Task", missing.join(" and ")),
                format!("Setup → Object Manager → Activity → Fields → {task_field}: tick {} (the package in salesforce/ creates it so)", missing.join(" and ")),
            )
        }
    });

    // The Contact fields read: SF_CONTACT_CUSTOM_FIELDS and the routing policy's.
    let routing = match Routing::from_env(&target.lookup()) {
        Ok(r) => Some(r),
        Err(e) => {
            out.push(Check::fail(
                "salesforce.routing",
                e.to_string(),
                "fix the routing document (ROUTING_FILE, else the built-in routing.yaml)",
            ));
            None
        }
    };
    let mut read: Vec<String> = contact_custom;
    for f in routing.iter().flat_map(Routing::policy_contact_fields) {
        if !read.contains(&f) {
            read.push(f);
        }
    }
    let contact = describes.get("Contact").cloned().unwrap_or_default();
    let missing: Vec<&String> = read
        .iter()
        // A relationship path (`Account.AnnualRevenue`) is not a Contact field of its own.
        .filter(|f| !f.contains('.') && !contact.contains_key(&f.to_ascii_lowercase()))
        .collect();
    out.push(if missing.is_empty() {
        Check::pass(
            "salesforce.contact-fields",
            format!("Contact has every field read ({})", read.join(", ")),
        )
    } else {
        Check::fail(
            "salesforce.contact-fields",
            format!(
                "Contact has no field {} (read through SF_CONTACT_CUSTOM_FIELDS or the routing policy)",
                missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
            format!("{DEPLOY_PACKAGE}, or take the field out of SF_CONTACT_CUSTOM_FIELDS / the routing document"),
        )
    });

    // Every writeBack field: exists and updateable.
    for rule in routing.iter().flat_map(|r| r.rules()) {
        for wb in &rule.write_back {
            let object = wb.object.as_str();
            let id = format!("salesforce.write-back.{}.{object}.{}", rule.id, wb.field);
            let field = describes
                .get(object)
                .and_then(|f| f.get(&wb.field.to_ascii_lowercase()));
            out.push(match field {
                None => Check::fail(
                    id,
                    format!("rule {} writes {object}.{} but {object} has no such field", rule.id, wb.field),
                    format!("{DEPLOY_PACKAGE}, or fix writeBack.{object} in the routing document"),
                ),
                Some(f) if !flag(f, "updateable") => Check::fail(
                    id,
                    format!("{object}.{} is not updateable (Salesforce computes it, or the user may not edit it)", wb.field),
                    format!("write into another field, or give the integration user Edit on {object}.{} (field-level security)", wb.field),
                ),
                Some(f) => write_back_type(&id, object, &wb.field, &wb.source, f["type"].as_str().unwrap_or("?")),
            });
        }
    }
    out.extend(event_relays(target, &conn.rest).await);
    out
}

/// Field types a text value can be written into (describe `type`s:
/// <https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/field_types.htm>).
const TEXT_TYPES: &[&str] = &[
    "string",
    "textarea",
    "picklist",
    "multipicklist",
    "combobox",
    "encryptedstring",
];

/// Whether the report's value for `source` fits a field of `kind`: the summary and the ended
/// reason are text; `successEvaluation` is text whose shape the rubric decides (a number or
/// true/false fits a number or checkbox field only with such a rubric: a warning); a
/// `structuredData` value has the type the analysis plan gives it (not checked).
fn write_back_type(
    id: &str,
    object: &str,
    field: &str,
    source: &crate::routing::OutcomeSource,
    kind: &str,
) -> Check {
    use crate::routing::OutcomeSource as S;
    let text = TEXT_TYPES.contains(&kind);
    let detail = format!("{object}.{field} exists and is updateable ({kind})");
    match source {
        S::StructuredData(_) => Check::pass(id, detail),
        _ if text => Check::pass(id, detail),
        S::SuccessEvaluation
            if matches!(kind, "boolean" | "double" | "int" | "percent" | "currency") =>
        {
            Check::warn(
                id,
                format!("{object}.{field} is {kind}; successEvaluation is text, written as it comes"),
                "use a rubric answering true/false or a number (analysisPlan.successEvaluationRubric), or write into a text field",
            )
        }
        _ => Check::fail(
            id,
            format!(
                "{object}.{field} is {kind}, which cannot hold {}: Salesforce refuses every write",
                source.describe()
            ),
            format!("write {} into a text field (Text, Text Area, Picklist), or change writeBack.{object} in the routing document", source.describe()),
        ),
    }
}

/// How recent a relay error must be to fail the check.
pub const RELAY_ERROR_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// `salesforce.event-relay.<relay>.*`: each event relay the stack expects — the one feeding
/// `SF_RELAY_EVENT_BUS` (the stack's `SalesforceEventBusName`), else, when `SF_RELAY_ORG_IDS`
/// is set, the relays `setup event-relay` manages — is in state `RUN`, has no error in its
/// `EventRelayFeedback` of the last 24 hours, and relays an org the stack accepts.
async fn event_relays(
    target: &Target,
    rest: &crate::salesforce::rest::SalesforceClient,
) -> Vec<Check> {
    use crate::salesforce::relay_setup;
    let bus = target.var("SF_RELAY_EVENT_BUS");
    let orgs: Vec<String> = target
        .var("SF_RELAY_ORG_IDS")
        .map(|v| {
            v.split(',')
                .map(|o| o.trim().to_owned())
                .filter(|o| !o.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if bus.is_none() && orgs.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let (relays, feedback) = match (
        relay_setup::relays(rest).await,
        relay_setup::feedback(rest).await,
    ) {
        (Ok(r), Ok(f)) => (r, f),
        (Err(e), _) | (_, Err(e)) => {
            out.push(Check::fail(
                "salesforce.event-relay",
                format!("reading the event relays (Tooling API EventRelayConfig, EventRelayFeedback): {e}"),
                "the integration user needs View Setup and Configuration",
            ));
            return out;
        }
    };
    let feedback_of = |id: &str| {
        feedback.iter().find(|f| {
            f["EventRelayConfigId"]
                .as_str()
                .is_some_and(|f| same_id(f, id))
        })
    };
    let expected: Vec<&serde_json::Value> = relays
        .iter()
        .filter(|r| match bus {
            Some(b) => {
                r["Id"]
                    .as_str()
                    .and_then(&feedback_of)
                    .and_then(|f| f["RemoteResource"].as_str())
                    == Some(b)
            }
            None => true,
        })
        .collect();
    if expected.is_empty() {
        out.push(Check::fail(
            "salesforce.event-relay",
            match bus {
                Some(b) => format!("no event relay of sfvapi's feeds the stack's bus {b}"),
                None => "SF_RELAY_ORG_IDS is set but the org has no event relay of sfvapi's".into(),
            },
            "run `sfvapi-admin setup event-relay --event <EventName> … --start` (docs/connect-salesforce.md)",
        ));
        return out;
    }
    let now = crate::now_millis();
    for r in expected {
        let name = r["DeveloperName"].as_str().unwrap_or("?");
        let id = r["Id"].as_str().unwrap_or_default();
        let prefix = format!("salesforce.event-relay.{name}");
        let state = r["State"].as_str().unwrap_or("?");
        out.push(if state == "RUN" {
            Check::pass(format!("{prefix}.state"), format!("event relay {name} is running"))
        } else {
            Check::fail(
                format!("{prefix}.state"),
                format!("event relay {name} is in state {state}: Salesforce relays nothing"),
                format!("`sfvapi-admin setup event-relay --event … --start`, or Setup → Event Relays → {name} → Start"),
            )
        });
        let fb = feedback_of(id);
        let error_ms = fb
            .and_then(|f| f["ErrorTime"].as_str())
            .and_then(parse_sf_time);
        let status = fb.and_then(|f| f["Status"].as_str()).unwrap_or("?");
        let recent = status == "ERROR" || error_ms.is_some_and(|t| now - t < RELAY_ERROR_WINDOW_MS);
        out.push(if recent {
            Check::fail(
                format!("{prefix}.feedback"),
                format!(
                    "event relay {name} reported {} {} (EventRelayFeedback, status {status})",
                    fb.and_then(|f| f["ErrorCode"].as_str()).unwrap_or("an error"),
                    fb.and_then(|f| f["ErrorMessage"].as_str()).unwrap_or(""),
                ),
                format!("fix what the error names (the named credential's account and region, the partner event source's bus), then start it again: Setup → Event Relays → {name}"),
            )
        } else {
            Check::pass(format!("{prefix}.feedback"), format!("no relay error in the last 24 hours (status {status})"))
        });
        let org = fb
            .and_then(|f| f["RemoteResource"].as_str())
            .and_then(relay_setup::org_of_source);
        out.push(match org {
            Some(o) if orgs.iter().any(|a| same_id(a, o)) => {
                Check::pass(format!("{prefix}.org"), format!("org {o} is in EventRelayOrgIds"))
            }
            Some(o) => Check::fail(
                format!("{prefix}.org"),
                format!("event relay {name} relays org {o}, which EventRelayOrgIds does not list: the relay function rejects every event"),
                format!("add {o} to the stack's EventRelayOrgIds (sam deploy --parameter-overrides EventRelayOrgIds=…)"),
            ),
            None => Check::warn(
                format!("{prefix}.org"),
                format!("event relay {name} shows no partner event source yet"),
                "run `sfvapi-admin setup event-relay` again in a minute",
            ),
        });
    }
    out
}

/// Salesforce ids compare on their first 15 characters.
fn same_id(a: &str, b: &str) -> bool {
    a.len() >= 15 && b.len() >= 15 && a[..15] == b[..15]
}

/// A Salesforce dateTime (`2026-12-06T05:00:00.000+0000` or RFC 3339) in epoch ms.
fn parse_sf_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .or_else(|_| chrono::DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|t| t.timestamp_millis())
}

/// At or above this share of the org's 24-hour API allowance, `salesforce.api-usage` warns.
pub const API_USAGE_WARN_PERCENT: u64 = 80;

/// The org's API usage against its 24-hour limit, from `Sforce-Limit-Info: api-usage=N/M`
/// (<https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm>).
fn api_usage(usage: Option<(u64, u64)>) -> Check {
    let id = "salesforce.api-usage";
    match usage {
        None => Check::warn(
            id,
            "Salesforce sent no Sforce-Limit-Info header",
            "check the org's API usage in Setup → Company Information",
        ),
        Some((used, max))
            if max > 0
                && used.saturating_mul(100) >= max.saturating_mul(API_USAGE_WARN_PERCENT) =>
        {
            Check::warn(
                id,
                format!(
                    "API usage {used} of {max} in the last 24 hours ({}%)",
                    used.saturating_mul(100) / max
                ),
                "at the limit Salesforce answers 403 REQUEST_LIMIT_EXCEEDED and jobs wait: find the heavy API user (Setup → System Overview) or raise the limit",
            )
        }
        Some((used, max)) => Check::pass(
            id,
            format!("API usage {used} of {max} in the last 24 hours"),
        ),
    }
}
