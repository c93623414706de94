//! The Salesforce package (`salesforce/`, a Salesforce DX project) holds what the functions expect
//! of the org, and cannot drift from it:
//!
//! - every custom field the routing documents (`routing.yaml`, `events/routing-event-relay.yaml`)
//!   route or write back, read by sfvapi's own routing code, exists in the package on the object
//!   the rule reads it from; so do `SF_CONTACT_CUSTOM_FIELDS`' default fields and the Task's
//!   external id (`SF_TASK_EXTERNAL_ID_FIELD`), read by sfvapi's own configuration code;
//! - the Apex test's HMAC vectors are the ingest's: signed again here with the ingest's signing
//!   code, and listed in `fixtures/signature-vectors.json` (which `signature_vectors.rs` verifies).
//!
//! Each check is a function over the files, and each is shown to fail on a mutated copy.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sfvapi::config::{Env, SalesforceConfig};
use sfvapi::routing::{CaseSource, ContactSource, HttpRoute, Matcher, Predicate, Routing};
use sfvapi::signature::sign_salesforce_v2;
use sfvapi_test_support as support;

const ROUTING_DOCUMENTS: [&str; 2] = ["routing.yaml", "events/routing-event-relay.yaml"];
const APEX_TEST: &str = "force-app/main/default/classes/SfvapiEventSenderTest.cls";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn package_dir() -> PathBuf {
    repo().join("salesforce")
}

/// A field the functions need in the org, and who needs it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Needed {
    object: String,
    field: String,
    why: String,
    /// sfvapi writes it (a write-back, the Task's external id), so the integration user edits it.
    write: bool,
}

impl Needed {
    fn new(object: &str, field: &str, why: String) -> Self {
        Self {
            object: object.to_owned(),
            field: field.to_owned(),
            why,
            write: false,
        }
    }
    fn written(mut self) -> Self {
        self.write = true;
        self
    }
}

/// The object a relayed detail-type carries fields of: a Platform Event is its own object, a
/// change event (`CaseChangeEvent`, `Foo__ChangeEvent`) carries its object's fields.
fn relay_object(detail_type: &str) -> Option<String> {
    if detail_type.ends_with("__e") {
        Some(detail_type.to_owned())
    } else if let Some(custom) = detail_type.strip_suffix("__ChangeEvent") {
        Some(format!("{custom}__c"))
    } else {
        detail_type.strip_suffix("ChangeEvent").map(str::to_owned)
    }
}

/// The custom fields (`__c`) a routing document reads from Salesforce records or events, or
/// writes back. Standard fields (`Priority`, `ContactId`) exist in every org; the keys of a
/// signed HTTP body (`route: events`) are JSON, not fields.
fn routed_fields(source: &str, routing: &Routing) -> Vec<Needed> {
    let mut out = Vec::new();
    for rule in routing.rules() {
        let why = |what: &str| format!("{what} of rule {} in {source}", rule.id);
        let mut paths: Vec<(&str, String)> = Vec::new();
        for (p, _) in &rule.fields {
            paths.push((p.as_str(), why("when.fields")));
        }
        for p in &rule.event_id {
            paths.push((p.as_str(), why("eventId")));
        }
        for c in &rule.contact {
            if let ContactSource::Field(p) = c {
                paths.push((p.as_str(), why("contact")));
            }
        }
        for c in &rule.case {
            if let CaseSource::Field(p) = c {
                paths.push((p.as_str(), why("case")));
            }
        }
        for p in &rule.priority {
            paths.push((p.as_str(), why("priority")));
        }
        for p in &rule.reason {
            paths.push((p.as_str(), why("reason")));
        }
        // Which object the paths are fields of, and the prefix they carry.
        let objects: Vec<(String, &str)> = match &rule.matcher {
            Matcher::Relay {
                detail_types,
                changed,
                ..
            } => {
                for c in changed {
                    paths.push((c.as_str(), why("when.changed")));
                }
                detail_types
                    .iter()
                    .filter_map(|d| relay_object(d))
                    .map(|o| (o, ""))
                    .collect()
            }
            Matcher::Route(HttpRoute::OutboundMessage) => rule
                .fields
                .iter()
                .filter(|(p, _)| p.as_str() == "sObjectType")
                .flat_map(|(_, pred)| match pred {
                    Predicate::OneOf(types) => types.clone(),
                    _ => Vec::new(),
                })
                .map(|o| (o, "sObject."))
                .collect(),
            Matcher::Route(HttpRoute::Events) => Vec::new(),
        };
        for (object, prefix) in &objects {
            for (path, why) in &paths {
                let Some(field) = path.strip_prefix(prefix) else {
                    continue;
                };
                if field.ends_with("__c") && !field.contains('.') {
                    out.push(Needed::new(object, field, why.clone()));
                }
            }
        }
        for f in rule.policy.contact_fields() {
            if f.ends_with("__c") {
                out.push(Needed::new(
                    "Contact",
                    f,
                    why("policy (consent, timeZoneField)"),
                ));
            }
        }
        for w in &rule.write_back {
            if w.field.ends_with("__c") {
                out.push(
                    Needed::new(
                        w.object.as_str(),
                        &w.field,
                        why(&format!("writeBack ({})", w.source.describe())),
                    )
                    .written(),
                );
            }
        }
    }
    for f in routing.default_policy().contact_fields() {
        if f.ends_with("__c") {
            out.push(Needed::new(
                "Contact",
                f,
                format!("policy (consent, timeZoneField) of {source}"),
            ));
        }
    }
    out
}

/// Every field the package must hold: the routing documents', the configuration defaults'.
fn needed_fields() -> Vec<Needed> {
    let mut out = Vec::new();
    for doc in ROUTING_DOCUMENTS {
        let text = fs::read_to_string(repo().join(doc)).unwrap();
        let routing = Routing::parse(doc, &text).unwrap_or_else(|e| panic!("{doc}: {e:?}"));
        out.extend(routed_fields(doc, &routing));
    }
    let env = Env::new(|k: &str| (k == "SF_CONNECTION_SECRET_ARN").then(|| "s".to_owned()));
    let sf = SalesforceConfig::from_env(&env).expect("the defaults load");
    for f in &sf.contact_custom_fields {
        out.push(Needed::new(
            "Contact",
            f,
            "SF_CONTACT_CUSTOM_FIELDS default".into(),
        ));
    }
    // Task custom fields are Activity fields in metadata.
    out.push(
        Needed::new(
            "Activity",
            &sf.task_external_id_field,
            "SF_TASK_EXTERNAL_ID_FIELD default".into(),
        )
        .written(),
    );
    out.sort();
    out.dedup();
    out
}

/// The package's custom fields, `(object, field) → field file text`, over every package
/// directory of `sfdx-project.json`.
fn package_fields(package: &Path) -> BTreeMap<(String, String), String> {
    let project: Value =
        serde_json::from_str(&fs::read_to_string(package.join("sfdx-project.json")).unwrap())
            .unwrap();
    let mut out = BTreeMap::new();
    for dir in project["packageDirectories"].as_array().unwrap() {
        let objects = package
            .join(dir["path"].as_str().unwrap())
            .join("main/default/objects");
        let Ok(entries) = fs::read_dir(&objects) else {
            continue;
        };
        for object in entries.map(|e| e.unwrap().path()) {
            let Ok(fields) = fs::read_dir(object.join("fields")) else {
                continue;
            };
            let object_name = object.file_name().unwrap().to_string_lossy().into_owned();
            for f in fields.map(|e| e.unwrap().path()) {
                let name = f.file_name().unwrap().to_string_lossy().into_owned();
                if let Some(field) = name.strip_suffix(".field-meta.xml") {
                    out.insert(
                        (object_name.clone(), field.to_owned()),
                        fs::read_to_string(&f).unwrap(),
                    );
                }
            }
        }
    }
    out
}

/// The text of `<tag>…</tag>` in a metadata file (the first one).
fn element<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..end].trim())
}

/// What is missing from the package, one line each.
fn missing_fields(needed: &[Needed], package: &BTreeMap<(String, String), String>) -> Vec<String> {
    needed
        .iter()
        .filter(|n| {
            match package.get(&(n.object.clone(), n.field.clone())) {
                // The file's own name must agree with its path.
                Some(xml) => element(xml, "fullName") != Some(n.field.as_str()),
                None => true,
            }
        })
        .map(|n| {
            format!(
                "{}.{} ({}) is not in salesforce/ (objects/{}/fields/{}.field-meta.xml)",
                n.object, n.field, n.why, n.object, n.field
            )
        })
        .collect()
}

const INTEGRATION_PERMISSION_SET: &str =
    "force-app/main/default/permissionsets/Sfvapi_Integration.permissionset-meta.xml";

/// What the integration user must be granted, field by field (`Object.Field`, edit?, why): the
/// fields of the package it reads or writes, the standard Contact fields every call reads
/// (`rest::CONTACT_FIELDS`, `search::OWN_PHONE_FIELDS`), and `DoNotCall`, which it edits.
/// Platform Event fields have no field-level security; `Id` and `Name` are always readable.
fn needed_grants(needed: &[Needed]) -> Vec<(String, bool, String)> {
    let mut out: Vec<(String, bool, String)> = needed
        .iter()
        .filter(|n| !n.object.ends_with("__e"))
        .map(|n| (format!("{}.{}", n.object, n.field), n.write, n.why.clone()))
        .collect();
    let standard = sfvapi::salesforce::rest::CONTACT_FIELDS
        .iter()
        .chain(sfvapi::salesforce::search::OWN_PHONE_FIELDS)
        .filter(|f| !matches!(**f, "Id" | "Name"));
    for f in standard {
        let name = if f.contains('.') {
            (*f).to_owned()
        } else {
            format!("Contact.{f}")
        };
        let edit = name == "Contact.DoNotCall";
        out.push((name, edit, "read for every call".into()));
    }
    out.sort();
    out.dedup_by(|a, b| {
        a.0 == b.0 && {
            b.1 |= a.1;
            true
        }
    });
    out
}

/// `Object.Field → (readable, editable)` of a permission set's `fieldPermissions`.
fn field_grants(permission_set: &str) -> BTreeMap<String, (bool, bool)> {
    permission_set
        .split("<fieldPermissions>")
        .skip(1)
        .filter_map(|block| {
            let block = block.split("</fieldPermissions>").next()?;
            Some((
                element(block, "field")?.to_owned(),
                (
                    element(block, "readable") == Some("true"),
                    element(block, "editable") == Some("true"),
                ),
            ))
        })
        .collect()
}

/// What the permission set does not grant, one line each.
fn missing_grants(
    needed: &[(String, bool, String)],
    grants: &BTreeMap<String, (bool, bool)>,
) -> Vec<String> {
    needed
        .iter()
        .filter_map(|(field, edit, why)| {
            let (read, can_edit) = grants.get(field).copied().unwrap_or((false, false));
            if !read {
                Some(format!(
                    "Sfvapi_Integration does not grant read on {field} ({why})"
                ))
            } else if *edit && !can_edit {
                Some(format!(
                    "Sfvapi_Integration does not grant edit on {field} ({why})"
                ))
            } else {
                None
            }
        })
        .collect()
}

/// `static final String NAME = '…';` and `static final Long NAME = 123L;` of an Apex class,
/// string literals unescaped (`\n`, `\'`, `\\`).
fn apex_constants(src: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in src.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix("static final ") else {
            continue;
        };
        let Some((decl, value)) = rest.split_once(" = ") else {
            continue;
        };
        let name = decl.split_whitespace().last().unwrap().to_owned();
        let value = value.trim_end_matches(';');
        let parsed = if let Some(lit) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\''))
        {
            let mut s = String::new();
            let mut chars = lit.chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    s.push(c);
                    continue;
                }
                match chars.next() {
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some(o) => s.push(o),
                    None => s.push('\\'),
                }
            }
            s
        } else {
            value.trim_end_matches('L').to_owned()
        };
        out.insert(name, parsed);
    }
    out
}

/// The Apex test's vectors (`FIXTURE_*`, `SENT_*`) against the ingest: each signature is what
/// the ingest's signing code gives for the test's secret, timestamp and body, and each is an
/// accepted Salesforce v2 vector of `signature-vectors.json` with the same secret, timestamp and
/// body bytes.
fn check_apex_vectors(
    apex_src: &str,
    vectors: &Value,
    fixture: impl Fn(&str) -> Vec<u8>,
) -> Result<(), Vec<String>> {
    let c = apex_constants(apex_src);
    let get = |k: &str| c.get(k).cloned().ok_or(format!("the Apex test has no {k}"));
    let mut errors = Vec::new();
    let (secret, ts) = match (get("SECRET"), get("TIMESTAMP")) {
        (Ok(s), Ok(t)) => (s, t),
        (s, t) => {
            return Err([s.err(), t.err()].into_iter().flatten().collect());
        }
    };
    let Ok(ts_secs) = ts.parse::<i64>() else {
        return Err(vec![format!("TIMESTAMP {ts:?} is not a number")]);
    };
    for prefix in ["FIXTURE", "SENT"] {
        let (body, sig) = match (
            get(&format!("{prefix}_BODY")),
            get(&format!("{prefix}_SIGNATURE")),
        ) {
            (Ok(b), Ok(s)) => (b, s),
            (b, s) => {
                errors.extend([b.err(), s.err()].into_iter().flatten());
                continue;
            }
        };
        let (_, expected) = sign_salesforce_v2(secret.as_bytes(), body.as_bytes(), ts_secs);
        if sig != expected {
            errors.push(format!(
                "{prefix}_SIGNATURE in the Apex test is {sig}, the ingest's signing code gives {expected} for its SECRET, TIMESTAMP and {prefix}_BODY"
            ));
        }
        let listed = vectors["vectors"].as_array().unwrap().iter().any(|v| {
            v["scheme"] == "salesforce-v2"
                && v["expect"] == "accept"
                && v["secret"] == secret.as_str()
                && v["headers"]["X-Sfvapi-Timestamp"] == ts.as_str()
                && v["headers"]["X-Sfvapi-Signature"] == sig.as_str()
                && fixture(v["body_file"].as_str().unwrap()) == body.as_bytes()
        });
        if !listed {
            errors.push(format!(
                "{prefix}_SIGNATURE / {prefix}_BODY of the Apex test are no accepted salesforce-v2 vector of signature-vectors.json (same secret, timestamp, signature and body bytes)"
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn vectors() -> Value {
    serde_json::from_slice(&support::fixture("signature-vectors.json")).unwrap()
}

fn apex_test_source() -> String {
    fs::read_to_string(package_dir().join(APEX_TEST)).unwrap()
}

/// A copy of `salesforce/` in a fresh temporary directory (removed by the caller).
fn copy_package() -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for e in fs::read_dir(from).unwrap().map(Result::unwrap) {
            let target = to.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                copy(&e.path(), &target);
            } else {
                fs::copy(e.path(), target).unwrap();
            }
        }
    }
    let dir = std::env::temp_dir().join(support::unique("sfvapi-salesforce-package"));
    copy(&package_dir(), &dir);
    dir
}

#[test]
fn every_field_the_functions_route_read_or_write_back_is_in_the_package() {
    let needed = needed_fields();
    let missing = missing_fields(&needed, &package_fields(&package_dir()));
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}

#[test]
fn the_needed_fields_come_from_the_documents_and_the_configuration() {
    // Not vacuous: the relay example's event fields, its write-backs on both objects, the
    // configuration's Contact and Task fields.
    let needed: BTreeSet<String> = needed_fields()
        .into_iter()
        .map(|n| format!("{}.{}", n.object, n.field))
        .collect();
    for f in [
        "Call_Request__e.Contact__c",
        "Call_Request__e.Case__c",
        "Call_Request__e.Priority__c",
        "Call_Request__e.Reason__c",
        "Call_Request__e.Test__c",
        "Contact.Last_Call_Outcome__c",
        "Case.Call_Outcome__c",
        "Case.Callback_Requested__c",
        "Contact.Account_Status__c",
        "Contact.Last_Contact_Date__c",
        "Contact.Preferred_Language__c",
        "Activity.Vapi_Call_Id__c",
    ] {
        assert!(needed.contains(f), "{f} not derived; got {needed:?}");
    }
}

#[test]
fn a_routed_field_removed_from_the_package_is_reported() {
    let copy = copy_package();
    for (object, field) in [
        ("Call_Request__e", "Reason__c"),
        ("Contact", "Last_Call_Outcome__c"),
        ("Contact", "Preferred_Language__c"),
        ("Activity", "Vapi_Call_Id__c"),
    ] {
        let file = copy.join(format!(
            "force-app/main/default/objects/{object}/fields/{field}.field-meta.xml"
        ));
        let text = fs::read_to_string(&file).unwrap();
        fs::remove_file(&file).unwrap();
        let missing = missing_fields(&needed_fields(), &package_fields(&copy));
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(
            missing[0].starts_with(&format!("{object}.{field} (")),
            "{}",
            missing[0]
        );
        // A file under the right name that declares another field does not count either.
        fs::write(&file, text.replace(field, "Other__c")).unwrap();
        assert_eq!(
            missing_fields(&needed_fields(), &package_fields(&copy)).len(),
            1
        );
        fs::write(&file, text).unwrap();
    }
    let missing = missing_fields(&needed_fields(), &package_fields(&copy));
    fs::remove_dir_all(&copy).unwrap();
    assert!(missing.is_empty(), "{missing:?}");
}

#[test]
fn a_routed_field_says_which_rule_needs_it() {
    let text = fs::read_to_string(repo().join("events/routing-event-relay.yaml")).unwrap();
    let routing = Routing::parse("relay.yaml", &text).unwrap();
    let needed = routed_fields("relay.yaml", &routing);
    let missing = missing_fields(&needed, &BTreeMap::new());
    assert!(
        missing.contains(
            &"Case.Callback_Requested__c (writeBack (structuredData.callbackRequested) of rule case-priority-high in relay.yaml) is not in salesforce/ (objects/Case/fields/Callback_Requested__c.field-meta.xml)".to_owned()
        ),
        "{missing:#?}"
    );
    assert!(
        missing
            .iter()
            .any(|m| m.starts_with("Call_Request__e.Test__c (when.fields of rule call-request")),
        "{missing:#?}"
    );
}

#[test]
fn the_apex_test_signs_the_ingests_vectors() {
    check_apex_vectors(&apex_test_source(), &vectors(), support::fixture)
        .unwrap_or_else(|e| panic!("{}", e.join("\n")));
}

#[test]
fn an_apex_vector_that_no_longer_matches_is_reported() {
    let src = apex_test_source();
    let c = apex_constants(&src);
    let sent = c["SENT_SIGNATURE"].clone();
    // One hex digit of the request's expected signature changed.
    let last = sent.chars().last().unwrap();
    let flipped = format!(
        "{}{}",
        &sent[..sent.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let err = check_apex_vectors(&src.replace(&sent, &flipped), &vectors(), support::fixture)
        .unwrap_err();
    assert!(
        err[0].starts_with(&format!(
            "SENT_SIGNATURE in the Apex test is {flipped}, the ingest's signing code gives {sent}"
        )),
        "{err:?}"
    );
    // The body the sender is expected to send changed (and its signature with it): signed
    // consistently, but no longer a vector the ingest verifies.
    let body = &c["SENT_BODY"];
    let new_body = body.replace("Payment failed twice", "Payment failed thrice");
    let (_, new_sig) = sign_salesforce_v2(
        c["SECRET"].as_bytes(),
        new_body.as_bytes(),
        c["TIMESTAMP"].parse().unwrap(),
    );
    let mutated = src.replace(body, &new_body).replace(&sent, &new_sig);
    let err = check_apex_vectors(&mutated, &vectors(), support::fixture).unwrap_err();
    assert_eq!(err.len(), 1, "{err:?}");
    assert!(
        err[0].starts_with("SENT_SIGNATURE / SENT_BODY of the Apex test are no accepted"),
        "{err:?}"
    );
    // Another timestamp, and a test without its secret.
    let err = check_apex_vectors(
        &src.replace("1795690000L", "1795690001L"),
        &vectors(),
        support::fixture,
    )
    .unwrap_err();
    assert_eq!(err.len(), 4, "{err:?}");
    let err = check_apex_vectors(
        &src.replace("static final String SECRET", "static final String KEY"),
        &vectors(),
        support::fixture,
    )
    .unwrap_err();
    assert_eq!(err, vec!["the Apex test has no SECRET".to_owned()]);
}

#[test]
fn the_apex_literals_are_read_as_apex_reads_them() {
    let c = apex_constants(&apex_test_source());
    assert_eq!(
        c["FIXTURE_BODY"].as_bytes(),
        support::fixture("salesforce/flat-event.json")
    );
    assert_eq!(
        c["SENT_BODY"].as_bytes(),
        support::fixture("salesforce/apex-sender-event.json")
    );
    assert_eq!(c["TIMESTAMP"], "1795690000");
}

#[test]
fn the_fields_sfvapi_relies_on_have_the_properties_it_relies_on() {
    let fields = package_fields(&package_dir());
    let f = |o: &str, n: &str| fields[&(o.to_owned(), n.to_owned())].as_str();
    // The Task upsert relies on Salesforce refusing a second Task with DUPLICATE_VALUE.
    let task_id = f("Activity", "Vapi_Call_Id__c");
    assert_eq!(element(task_id, "type"), Some("Text"));
    assert_eq!(element(task_id, "externalId"), Some("true"));
    assert_eq!(element(task_id, "unique"), Some("true"));
    // The calling policy: a consent checkbox, an IANA time-zone id (the longest are < 40).
    assert_eq!(
        element(f("Contact", "Voice_Consent__c"), "type"),
        Some("Checkbox")
    );
    assert_eq!(element(f("Contact", "Time_Zone__c"), "type"), Some("Text"));
    assert_eq!(element(f("Contact", "Time_Zone__c"), "length"), Some("40"));
    // A rolled-back transaction publishes no Call_Request__e.
    let event = fs::read_to_string(
        package_dir()
            .join("force-app/main/default/objects/Call_Request__e/Call_Request__e.object-meta.xml"),
    )
    .unwrap();
    assert_eq!(
        element(&event, "publishBehavior"),
        Some("PublishAfterCommit")
    );
    // The signing secret sits in a protected custom setting.
    let setting = fs::read_to_string(package_dir().join(
        "force-app/main/default/objects/Sfvapi_Setting__c/Sfvapi_Setting__c.object-meta.xml",
    ))
    .unwrap();
    assert_eq!(element(&setting, "visibility"), Some("Protected"));
    assert!(fields.contains_key(&("Sfvapi_Setting__c".into(), "Signing_Secret__c".into())));
}

#[test]
fn the_apex_sender_posts_to_the_ingests_route() {
    let sender = fs::read_to_string(
        package_dir().join("force-app/main/default/classes/SfvapiEventSender.cls"),
    )
    .unwrap();
    let template = fs::read_to_string(repo().join("template.yaml")).unwrap();
    assert!(sender.contains("'callout:Sfvapi/salesforce/events'"));
    assert!(template.contains("RouteKey: ANY /salesforce/events"));
    for header in ["'X-Sfvapi-Timestamp'", "'X-Sfvapi-Signature'"] {
        assert!(sender.contains(header), "{header}");
    }
    assert_eq!(
        sfvapi::signature::SF_V2_SIGNATURE,
        "x-sfvapi-signature",
        "the ingest reads the header the sender sets"
    );
}

#[test]
fn the_integration_user_may_read_and_write_what_sfvapi_reads_and_writes() {
    let xml = fs::read_to_string(package_dir().join(INTEGRATION_PERMISSION_SET)).unwrap();
    let grants = field_grants(&xml);
    let needed = needed_grants(&needed_fields());
    let missing = missing_grants(&needed, &grants);
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    // Not vacuous: the write-backs and DoNotCall are edits, the configuration's fields reads.
    for (field, edit) in [
        ("Contact.DoNotCall", true),
        ("Contact.Last_Call_Outcome__c", true),
        ("Case.Callback_Requested__c", true),
        ("Activity.Vapi_Call_Id__c", true),
        ("Contact.Preferred_Language__c", false),
        ("Account.AnnualRevenue", false),
    ] {
        assert!(
            needed.iter().any(|(f, e, _)| f == field && *e == edit),
            "{field} edit={edit} not derived: {needed:?}"
        );
    }
}

#[test]
fn a_missing_or_read_only_grant_is_reported() {
    let xml = fs::read_to_string(package_dir().join(INTEGRATION_PERMISSION_SET)).unwrap();
    let needed = needed_grants(&needed_fields());
    // The write-back field made read-only.
    let block = "<editable>true</editable>\n        <field>Case.Call_Outcome__c</field>";
    assert!(xml.contains(block));
    let read_only = xml.replace(
        block,
        "<editable>false</editable>\n        <field>Case.Call_Outcome__c</field>",
    );
    assert_eq!(
        missing_grants(&needed, &field_grants(&read_only)),
        vec!["Sfvapi_Integration does not grant edit on Case.Call_Outcome__c (writeBack (successEvaluation) of rule case-priority-high in events/routing-event-relay.yaml)".to_owned()]
    );
    // A configuration default's grant removed.
    let gone = xml.replace(
        "<field>Contact.Account_Status__c</field>",
        "<field>Contact.Gone__c</field>",
    );
    assert_eq!(
        missing_grants(&needed, &field_grants(&gone)),
        vec!["Sfvapi_Integration does not grant read on Contact.Account_Status__c (SF_CONTACT_CUSTOM_FIELDS default)".to_owned()]
    );
}
