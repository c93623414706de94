//! The operator's view in template.yaml against the code: every sfvapi metric the dashboard or an
//! alarm names is one the code emits, every name the code emits is in `telemetry::METRICS`, the
//! saved queries are `telemetry::SAVED_QUERIES` word for word, and docs/operations.md (once
//! README) names them.
//! No services needed: it reads files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value as Json;
use serde_norway::Value as Yaml;
use sfvapi::telemetry::{METRICS, SAVED_QUERIES};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("shared/ sits in the repository")
        .to_owned()
}

fn template() -> Yaml {
    let text = std::fs::read_to_string(repo().join("template.yaml")).expect("template.yaml");
    // serde_norway keeps CloudFormation's short-form tags (!Sub, !Ref, …) as tagged values.
    serde_norway::from_str(&text).expect("template.yaml is YAML")
}

fn resources(t: &Yaml) -> Vec<(String, &Yaml)> {
    t["Resources"]
        .as_mapping()
        .expect("Resources")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap_or_default().to_owned(), v))
        .collect()
}

fn of_type<'a>(t: &'a Yaml, ty: &str) -> Vec<(String, &'a Yaml)> {
    resources(t)
        .into_iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(ty))
        .collect()
}

/// The string under a `!Sub` tag (short form) or `Fn::Sub` (long form).
fn sub_text(v: &Yaml) -> &str {
    match v {
        Yaml::Tagged(t) if t.tag == "Sub" => t.value.as_str().expect("!Sub of a string"),
        _ => v["Fn::Sub"].as_str().expect("a !Sub string"),
    }
}

/// Replace every `${Name}` / `${Name.Attr}` of a `!Sub` by what `value` gives, checking each
/// names a parameter, a resource or a pseudo parameter.
fn substitute(text: &str, known: &BTreeSet<String>, value: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        let end = rest[i..].find('}').expect("closed ${…}") + i;
        let name = &rest[i + 2..end];
        let base = name.split('.').next().unwrap_or(name);
        assert!(
            known.contains(base) || base.starts_with("AWS::"),
            "${{{name}}} names nothing in the template"
        );
        out.push_str(&value(name));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn names(t: &Yaml) -> BTreeSet<String> {
    let mut known: BTreeSet<String> = resources(t).into_iter().map(|(k, _)| k).collect();
    if let Some(p) = t["Parameters"].as_mapping() {
        known.extend(p.keys().filter_map(|k| k.as_str().map(str::to_owned)));
    }
    known
}

/// The dashboard body as JSON; a `${…}` becomes the name it references (a number for the pacing
/// parameter, which sits in a number's place).
/// The operations dashboard (the one every stack has).
fn dashboard(t: &Yaml) -> Json {
    let dashboards = all_dashboards(t);
    let ops: Vec<_> = dashboards
        .into_iter()
        .filter(|(name, _, _)| name == "OperationsDashboard")
        .collect();
    assert_eq!(ops.len(), 1, "one operations dashboard");
    ops.into_iter().next().map(|(_, body, _)| body).unwrap()
}

/// Every dashboard: its resource name, its body, and its `Condition` (a conditional dashboard
/// may name only resources made under the same condition).
fn all_dashboards(t: &Yaml) -> Vec<(String, Json, Option<String>)> {
    of_type(t, "AWS::CloudWatch::Dashboard")
        .into_iter()
        .map(|(name, d)| {
            let body = sub_text(&d["Properties"]["DashboardBody"]);
            let text = substitute(body, &names(t), |n| match n {
                "VapiMaxConcurrentCalls" => "10".into(),
                other => other.into(),
            });
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{name} body is JSON: {e}\n{text}"));
            (name, json, d["Condition"].as_str().map(str::to_owned))
        })
        .collect()
}

const FUNCTIONS: &[&str] = &[
    "SalesforceIngestFunction",
    "SalesforceRelayFunction",
    "VapiWebhookFunction",
    "TokenRefresherFunction",
    "JobWorkerFunction",
];

/// Metric names the sources pass to `metric(` / `metric_by(`: string literals, and the
/// worker's `jobs_<status>` for each status a finished job is written with.
fn emitted() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut files = vec![repo().join("shared/src")];
    while let Some(p) = files.pop() {
        if p.is_dir() {
            files.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            continue;
        }
        if p.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for call in ["metric(", "metric_by("] {
            for (i, _) in text.match_indices(call) {
                let before = text[..i].chars().next_back().unwrap_or(' ');
                let line_start = text[..i].rfind('\n').map_or(0, |n| n + 1);
                let line = text[line_start..i].trim_start();
                if before.is_alphanumeric()
                    || before == '_'
                    || line.starts_with("//")
                    || line.ends_with("fn ")
                {
                    continue;
                }
                let arg = text[i + call.len()..].trim_start();
                if let Some(lit) = arg.strip_prefix('"') {
                    found.insert(lit[..lit.find('"').unwrap()].to_owned());
                } else if arg.starts_with("&format!(\"jobs_{}\"") {
                    use sfvapi::jobs::JobStatus::*;
                    for s in [Done, Skipped, Retry, Failed, NeedsReview] {
                        found.insert(format!("jobs_{}", s.as_str().to_ascii_lowercase()));
                    }
                } else {
                    panic!(
                        "{}: a metric name this test cannot read ({}…): use a literal, or teach \
                         emitted() the pattern",
                        p.display(),
                        &arg[..arg.len().min(40)]
                    );
                }
            }
        }
    }
    found
}

#[test]
fn the_metrics_list_is_exactly_what_the_code_emits() {
    let listed: BTreeSet<String> = METRICS.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(listed.len(), METRICS.len(), "METRICS has a name twice");
    let emitted = emitted();
    let unlisted: Vec<_> = emitted.difference(&listed).collect();
    assert!(
        unlisted.is_empty(),
        "emitted but not in telemetry::METRICS (add them, and to the dashboard): {unlisted:?}"
    );
    let dead: Vec<_> = listed.difference(&emitted).collect();
    assert!(
        dead.is_empty(),
        "in telemetry::METRICS but nothing emits them: {dead:?}"
    );
}

#[test]
fn every_dashboard_metric_is_emitted_with_the_dimensions_it_reads() {
    let t = template();
    let body = dashboard(&t);
    let widgets = body["widgets"].as_array().expect("widgets");
    let mut seen = BTreeSet::new();
    let mut aws = 0;
    for w in widgets {
        let Some(metrics) = w["properties"]["metrics"].as_array() else {
            continue;
        };
        for m in metrics {
            let m = m.as_array().expect("a metric row is an array");
            // An expression row ([{expression}]) reads the ids of the other rows.
            let Some(namespace) = m[0].as_str() else {
                assert!(m[0]["expression"].is_string(), "{m:?}");
                continue;
            };
            let name = m[1].as_str().expect("metric name");
            let dims: Vec<&str> = m[2..].iter().filter_map(Json::as_str).collect();
            assert!(
                dims.chunks(2).all(|p| p.len() == 2),
                "dimension pairs in {m:?}"
            );
            let dims: Vec<(&str, &str)> = dims.chunks(2).map(|p| (p[0], p[1])).collect();
            match namespace {
                "sfvapi" => {
                    assert!(METRICS.contains(&name), "{name}: nothing emits it");
                    seen.insert(name.to_owned());
                    let function = dims.iter().find(|(k, _)| *k == "function");
                    assert!(
                        function.is_some_and(|(_, f)| FUNCTIONS.contains(f)),
                        "{name}: dimension function must be one of the functions: {m:?}"
                    );
                    for (k, v) in &dims {
                        match *k {
                            "function" => {}
                            "route" => assert!(
                                [
                                    sfvapi::ingest::ROUTE_EVENTS,
                                    sfvapi::ingest::ROUTE_OUTBOUND,
                                    "vapi-webhook"
                                ]
                                .contains(v),
                                "{name}: no emission has route {v}"
                            ),
                            other => panic!("{name}: no emission has dimension {other}"),
                        }
                    }
                }
                "AWS/Lambda" => {
                    aws += 1;
                    assert!(
                        [
                            "Invocations",
                            "Errors",
                            "Throttles",
                            "Duration",
                            "IteratorAge"
                        ]
                        .contains(&name),
                        "{name}"
                    );
                    assert_eq!(dims.len(), 1);
                    assert_eq!(dims[0].0, "FunctionName");
                    assert!(FUNCTIONS.contains(&dims[0].1), "{m:?}");
                }
                "AWS/ApiGateway" => {
                    assert!(["4xx", "5xx", "Count"].contains(&name), "{name}");
                    assert_eq!(dims, [("ApiId", "HttpApi")]);
                }
                "AWS/SQS" => {
                    assert_eq!(name, "ApproximateNumberOfMessagesVisible");
                    assert_eq!(dims, [("QueueName", "JobStreamDlq.QueueName")]);
                }
                other => panic!("unexpected namespace {other}"),
            }
        }
    }
    assert!(
        aws >= 17,
        "invocations/errors/throttles/duration of 4 functions + iterator age"
    );
    // What the issue asks the dashboard to show.
    for must in [
        "events_accepted",
        "duplicates",
        "signature_failures",
        "jobs_done",
        "jobs_skipped",
        "jobs_retry",
        "jobs_failed",
        "jobs_needs_review",
        "dial_latency_ms",
        "vapi_concurrency_limit",
        "vapi_remaining_concurrent_calls",
        "sf_api_usage",
        "sf_api_limit",
    ] {
        assert!(seen.contains(must), "the dashboard lacks {must}");
    }
    // The pacing limit is drawn from the parameter the worker paces by.
    let text =
        sub_text(&of_type(&t, "AWS::CloudWatch::Dashboard")[0].1["Properties"]["DashboardBody"]);
    assert!(text.contains("\"value\": ${VapiMaxConcurrentCalls}"));
}

#[test]
fn every_alarm_is_on_the_dashboard_and_reads_an_emitted_metric() {
    let t = template();
    // Alarm → the condition of the dashboard that shows it.
    let mut on_dashboard: std::collections::BTreeMap<String, Option<String>> = Default::default();
    for (_, body, condition) in all_dashboards(&t) {
        for a in body["widgets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["type"] == "alarm")
            .flat_map(|w| {
                w["properties"]["alarms"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|a| a.as_str().map(|s| s.trim_end_matches(".Arn").to_owned()))
        {
            on_dashboard.insert(a, condition.clone());
        }
    }
    let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
    assert!(alarms.len() >= 13);
    for (name, alarm) in &alarms {
        let shown = on_dashboard.get(name);
        assert!(shown.is_some(), "{name} is not on a dashboard");
        assert_eq!(
            shown.cloned().flatten(),
            alarm["Condition"].as_str().map(str::to_owned),
            "{name} is on a dashboard made under another condition"
        );
        let p = &alarm["Properties"];
        let mut reads = vec![(p["Namespace"].as_str(), p["MetricName"].as_str())];
        for m in p["Metrics"].as_sequence().into_iter().flatten() {
            let metric = &m["MetricStat"]["Metric"];
            reads.push((metric["Namespace"].as_str(), metric["MetricName"].as_str()));
        }
        for (ns, metric) in reads {
            if ns == Some("sfvapi") {
                let metric = metric.unwrap_or_default();
                assert!(
                    METRICS.contains(&metric),
                    "{name} reads {metric}: nothing emits it"
                );
            }
        }
    }
    for (name, want) in [
        ("JobStreamIteratorAgeAlarm", "IteratorAge"),
        (
            "TokenRefreshRetryableErrorAlarm",
            "token_refresh_retryable_error",
        ),
    ] {
        let a = alarms.iter().find(|(n, _)| n == name).expect(name).1;
        assert_eq!(a["Properties"]["MetricName"].as_str(), Some(want));
    }
}

#[test]
fn the_saved_queries_are_the_ones_the_code_and_the_demo_print() {
    let t = template();
    let defs = of_type(&t, "AWS::Logs::QueryDefinition");
    assert_eq!(defs.len(), SAVED_QUERIES.len());
    // The operations manual moved from README to docs/operations.md (issue 25).
    let readme = std::fs::read_to_string(repo().join("docs/operations.md")).unwrap();
    for q in SAVED_QUERIES {
        let (id, def) = defs
            .iter()
            .find(|(_, d)| sub_text(&d["Properties"]["Name"]).ends_with(&format!("/{}", q.name)))
            .unwrap_or_else(|| panic!("no QueryDefinition named …/{}", q.name));
        assert_eq!(
            def["Properties"]["QueryString"].as_str().map(str::trim_end),
            Some(q.query),
            "{id}: the template's text differs from sfvapi::telemetry"
        );
        assert!(readme.contains(q.name), "README does not name {}", q.name);
        let groups = def["Properties"]["LogGroupNames"].as_sequence().expect(id);
        assert!(!groups.is_empty());
    }
    assert!(readme.contains("-operations"), "README names the dashboard");
}

#[test]
fn the_level_follows_logging_config_and_nothing_overrides_it() {
    let t = template();
    assert!(
        t["Globals"]["Function"]["Environment"]["Variables"]["RUST_LOG"].is_null(),
        "a global RUST_LOG would override ApplicationLogLevel"
    );
    for f in FUNCTIONS {
        let lc = &t["Resources"][*f]["Properties"]["LoggingConfig"];
        assert_eq!(lc["LogFormat"].as_str(), Some("JSON"), "{f}");
        assert!(!lc["ApplicationLogLevel"].is_null(), "{f}");
        assert!(!lc["SystemLogLevel"].is_null(), "{f}");
    }
}

/// The calling-policy example (docs/calling-policy.md, once README's) is a document sfvapi
/// accepts, and says what it reads: the defaults and the rule's own keys as the policy module
/// parses them.
#[test]
fn the_readmes_calling_policy_example_is_a_valid_document() {
    // The section moved from README to its own page, docs/calling-policy.md (issue 25).
    let readme = std::fs::read_to_string(repo().join("docs/calling-policy.md")).unwrap();
    let section = &readme[readme.find("# Calling policy").expect("the section")..];
    let start = section.find("```yaml\n").expect("its example") + "```yaml\n".len();
    let yaml = &section[start..start + section[start..].find("```").unwrap()];
    let routing = sfvapi::routing::Routing::parse("docs/calling-policy.md", yaml)
        .unwrap_or_else(|e| panic!("README's example: {e}"));
    let rule = routing.rule("payment-failed").expect("the example rule");
    let p = &rule.policy;
    assert_eq!(
        p.time_zone,
        chrono_tz::America::New_York,
        "from the defaults"
    );
    assert!(p.consent.is_some(), "from the defaults");
    assert_eq!((p.window.start, p.window.end), (9 * 60, 20 * 60));
    assert_eq!(p.retry.as_ref().map(|r| r.max_calls), Some(3));
    assert_eq!(routing.rule("vip").unwrap().policy.consent, None);
}
