//! The reliability suite: duplicate storms, a bad-input corpus, forged signatures and faults
//! (DynamoDB killed mid-run, a worker dying between claim and done, Vapi timeouts, Salesforce and
//! Twilio errors), each ending in a tally of what happened to every acknowledged event.
//! `Size::short()` runs inside `make test`; `Size::full()` is `make reliability`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sfvapi::store::{self, Store};
use tokio::task::JoinSet;
use wiremock::ResponseTemplate;

use crate::ddb_local::DynamoDbLocal;
use crate::harness::*;

#[derive(Debug, Clone, Copy)]
pub struct Size {
    /// identical events sent at once
    pub storm: usize,
    /// distinct events × copies of each, sent at once
    pub distinct: usize,
    pub copies: usize,
    /// generated cases per corpus family (truncations, UTF-8 breaks…)
    pub corpus_scale: usize,
    /// events the sender sends across the DynamoDB outage
    pub outage_events: usize,
}

impl Size {
    pub fn short() -> Self {
        Self {
            storm: 200,
            distinct: 20,
            copies: 10,
            corpus_scale: 1,
            outage_events: 60,
        }
    }
    pub fn full() -> Self {
        Self {
            storm: 1000,
            distinct: 100,
            copies: 10,
            corpus_scale: 4,
            outage_events: 400,
        }
    }
}

/// What happened to the events of one scenario.
#[derive(Debug, Clone, Default)]
pub struct Row {
    pub scenario: String,
    /// requests the endpoint acknowledged (202/200)
    pub acked: usize,
    /// distinct jobs those created
    pub jobs: usize,
    pub done: usize,
    pub skipped: usize,
    pub needs_review: usize,
    pub failed: usize,
    /// acknowledged but missing, or not settled in a final state
    pub lost: usize,
    pub dials: usize,
    pub expected_dials: usize,
    pub sms: usize,
    pub expected_sms: usize,
    pub note: String,
    pub ok: bool,
}

impl Row {
    fn new(scenario: &str) -> Self {
        Self {
            scenario: scenario.to_owned(),
            ..Self::default()
        }
    }

    /// Count the final states of `pks`; anything not final (or without a reason where one is
    /// owed) counts as lost.
    async fn settle(&mut self, w: &World, pks: &[String]) {
        self.jobs = pks.len();
        for pk in pks {
            let (status, reason) = w.status(pk).await;
            match status.as_str() {
                "DONE" => self.done += 1,
                "SKIPPED" if !reason.is_empty() => self.skipped += 1,
                "NEEDS_REVIEW" if !reason.is_empty() => self.needs_review += 1,
                "FAILED" if !reason.is_empty() => self.failed += 1,
                _ => self.lost += 1,
            }
        }
    }

    pub fn to_json(&self) -> Value {
        json!({
            "scenario": self.scenario, "acked": self.acked, "jobs": self.jobs, "done": self.done,
            "skipped": self.skipped, "needs_review": self.needs_review, "failed": self.failed,
            "lost": self.lost, "dials": self.dials, "expected_dials": self.expected_dials,
            "sms": self.sms, "expected_sms": self.expected_sms, "note": self.note, "ok": self.ok,
        })
    }
}

/// Counts of a corpus run (bad inputs or signatures).
#[derive(Debug, Clone, Default)]
pub struct CorpusReport {
    pub name: String,
    pub cases: usize,
    pub panics: usize,
    pub unexpected_5xx: usize,
    pub mismatches: Vec<String>,
    pub by_status: BTreeMap<u16, usize>,
}

impl CorpusReport {
    pub fn ok(&self) -> bool {
        self.panics == 0 && self.unexpected_5xx == 0 && self.mismatches.is_empty()
    }
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name, "cases": self.cases, "panics": self.panics,
            "unexpected_5xx": self.unexpected_5xx, "mismatches": self.mismatches,
            "by_status": self.by_status.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "ok": self.ok(),
        })
    }
}

fn pk_of(id: &str) -> String {
    format!("evt#sf#{id}")
}

/// Send `bodies` to the ingest handler all at once, then resend those answered 503 as a sender
/// would (at most 5 more rounds). Returns each body's last status and how many 503s were seen.
async fn send_all(app: &sfvapi::ingest::IngestApp, bodies: Vec<Vec<u8>>) -> (Vec<u16>, usize) {
    let mut out = vec![0u16; bodies.len()];
    let mut todo: Vec<usize> = (0..bodies.len()).collect();
    let mut refused = 0;
    for round in 0..6 {
        if todo.is_empty() {
            break;
        }
        if round > 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut set = JoinSet::new();
        for &i in &todo {
            let (app, body) = (app.clone(), bodies[i].clone());
            set.spawn(async move { (i, answer(app.handle(signed_ingest(&body)).await).0) });
        }
        while let Some(r) = set.join_next().await {
            if let Ok((i, s)) = r {
                out[i] = s;
            }
        }
        todo.retain(|&i| out[i] == 503);
        refused += todo.len();
    }
    (out, refused)
}

/// 200 (or more) concurrent identical events → one job, one dial.
pub async fn duplicate_storm(n: usize) -> Row {
    let mut row = Row::new(&format!("duplicate storm: {n} identical events at once"));
    let w = World::new(&[], true).await;
    w.mount_vapi(201, None, None).await;
    let id = unique("storm");
    let (statuses, refused) = send_all(&w.ingest, vec![event_body(&id, 400); n]).await;
    let queued = statuses.iter().filter(|s| **s == 202).count();
    let dups = statuses.iter().filter(|s| **s == 200).count();
    row.acked = queued + dups;
    // Two workers race on the record, then it is delivered again later.
    let (a, b) = (w.worker().await, w.worker().await);
    let pk = pk_of(&id);
    let batch = || stream_batch(&[(pk.as_str(), "PENDING")]);
    tokio::join!(a.handle(batch()), b.handle(batch()));
    a.handle(batch()).await;
    w.drive(&a, std::slice::from_ref(&pk), 3).await;
    row.settle(&w, std::slice::from_ref(&pk)).await;
    row.dials = w.calls().await;
    row.expected_dials = 1;
    row.note = format!("{queued}×202 {dups}×200, {refused}×503 resent");
    // A 202 whose answer was lost to a client timeout (503) makes every later copy a 200: at
    // most one 202, and every copy answered in the end.
    row.ok = queued <= 1 && row.acked == n && row.dials == 1 && row.done == 1 && row.lost == 0;
    row
}

/// `k` distinct events × `copies` copies each, all at once → `k` jobs, `k` dials.
pub async fn distinct_storm(k: usize, copies: usize) -> Row {
    let mut row = Row::new(&format!("{k} distinct events × {copies} copies at once"));
    let w = World::new(&[], true).await;
    w.mount_vapi(201, None, None).await;
    let ids: Vec<String> = (0..k).map(|i| unique(&format!("distinct{i}"))).collect();
    // Interleaved, so copies of one event are not adjacent.
    let bodies: Vec<Vec<u8>> = (0..copies)
        .flat_map(|_| ids.iter().map(|id| event_body(id, 400)))
        .collect();
    let (statuses, refused) = send_all(&w.ingest, bodies).await;
    let queued = statuses.iter().filter(|s| **s == 202).count();
    let dups = statuses.iter().filter(|s| **s == 200).count();
    row.acked = queued + dups;
    let pks: Vec<String> = ids.iter().map(|i| pk_of(i)).collect();
    let worker = w.worker().await;
    // Every record delivered twice in one batch (a redelivered shard), then driven to the end.
    let doubled: Vec<(&str, &str)> = pks
        .iter()
        .chain(pks.iter())
        .map(|p| (p.as_str(), "PENDING"))
        .collect();
    worker.handle(stream_batch(&doubled)).await;
    w.drive(&worker, &pks, 5).await;
    row.settle(&w, &pks).await;
    row.dials = w.calls().await;
    row.expected_dials = k;
    row.note = format!("{queued}×202 {dups}×200, {refused}×503 resent");
    row.ok =
        queued <= k && row.acked == k * copies && row.dials == k && row.done == k && row.lost == 0;
    row
}

/// A case of the corpus: a request and the status it must get.
pub struct Case {
    pub name: String,
    pub req: lambda_http::Request,
    pub expect: u16,
}

fn raw_signed_ingest(body: &[u8], content_type: &str, base64: bool) -> lambda_http::Request {
    let (ts, sig) = sf_v2_headers(SF_SECRET, body, sfvapi::now_secs());
    request(
        "POST",
        "/salesforce/events",
        &[
            ("content-type", content_type),
            ("x-sfvapi-timestamp", &ts),
            ("x-sfvapi-signature", &sig),
        ],
        body,
        base64,
    )
}

fn raw_signed_vapi(body: &[u8], content_type: &str, base64: bool) -> lambda_http::Request {
    let (ts, sig) = vapi_hmac(VAPI_SECRET, body, sfvapi::now_secs());
    request(
        "POST",
        "/vapi/webhook",
        &[
            ("content-type", content_type),
            ("x-timestamp", &ts),
            ("x-signature", &sig),
        ],
        body,
        base64,
    )
}

/// Generic breakages of a valid JSON body: truncations, invalid UTF-8, nesting bombs, huge
/// numbers, non-object roots. All must be 400. `sign` builds the request (base64 delivery when the
/// body is not UTF-8, so the exact bytes arrive).
fn broken_json_cases(
    family: &str,
    valid: &[u8],
    scale: usize,
    num_field: &str,
    sign: fn(&[u8], &str, bool) -> lambda_http::Request,
) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut push = |name: String, body: Vec<u8>, b64: bool| {
        cases.push(Case {
            name: format!("{family}: {name}"),
            req: sign(&body, "application/json", b64),
            expect: 400,
        })
    };
    let n = 40 * scale;
    for i in 0..n {
        let cut = valid.len() * i / n;
        push(format!("truncated at {cut}"), valid[..cut].to_vec(), false);
    }
    let breakers: [&[u8]; 5] = [
        b"\xff",
        b"\xfe\xfe",
        b"\xc3\x28",
        b"\xe2\x82",
        b"\xed\xa0\x80",
    ];
    for i in 0..(20 * scale) {
        let at = 1 + (valid.len() - 2) * i / (20 * scale);
        let mut b = valid.to_vec();
        let bad = breakers[i % breakers.len()];
        b.splice(at..at, bad.iter().copied());
        push(format!("invalid UTF-8 at {at}"), b, true);
    }
    // The deepest stays under the ingest's 256 KB limit (5 bytes a level for objects).
    for depth in [130usize, 1_000, 10_000, 40_000] {
        push(
            format!("array nesting {depth}"),
            [vec![b'['; depth], vec![b']'; depth]].concat(),
            false,
        );
        let mut obj = "{\"a\":".repeat(depth);
        obj.push('1');
        obj.push_str(&"}".repeat(depth));
        push(format!("object nesting {depth}"), obj.into_bytes(), false);
    }
    // Numbers that do not fit, in the place of a field that must be a string/object.
    let mut rest = json_of(valid);
    if let Some(m) = rest.as_object_mut() {
        m.remove(num_field);
    }
    let rest = rest.to_string();
    for num in [
        "1e999999",
        "-1e400",
        "123456789012345678901234567890123456789012345678901234567890",
        "1.7976931348623157e309",
        "0x10",
        "NaN",
        "Infinity",
    ] {
        let b = format!("{{\"{num_field}\":{num},{}", rest.trim_start_matches('{'));
        push(format!("{num_field} = number {num}"), b.into_bytes(), false);
    }
    for root in [
        "[]", "null", "1", "\"s\"", "true", "", " ", "{", "}", "{}{}",
    ] {
        push(format!("root {root:?}"), root.as_bytes().to_vec(), false);
    }
    cases
}

/// The ingest corpus: broken JSON plus wrong types, missing/bad ids, oversize, content types,
/// base64 flags, methods and paths.
pub fn ingest_corpus(scale: usize) -> Vec<Case> {
    let valid = event_body("corpus-valid-1", 300);
    let mut cases = broken_json_cases("ingest", &valid, scale, "eventId", raw_signed_ingest);
    let base = json_of(&valid);
    let kinds = [
        json!(42),
        json!(-1),
        json!(1.5),
        json!([]),
        json!({}),
        json!(null),
        json!(true),
        json!(""),
    ];
    for field in ["eventId", "contactId"] {
        for (i, v) in kinds.iter().enumerate() {
            let mut b = base.clone();
            b[field] = v.clone();
            cases.push(Case {
                name: format!("ingest: {field} = {v} ({i})"),
                req: raw_signed_ingest(b.to_string().as_bytes(), "application/json", false),
                expect: 400,
            });
        }
    }
    for field in ["caseId", "priority"] {
        for v in [json!(42), json!([]), json!({}), json!(true)] {
            let mut b = base.clone();
            b[field] = v.clone();
            cases.push(Case {
                name: format!("ingest: {field} = {v}"),
                req: raw_signed_ingest(b.to_string().as_bytes(), "application/json", false),
                expect: 400,
            });
        }
    }
    for (name, id) in [
        ("eventId with space", "a b"),
        ("eventId 129 chars", &"e".repeat(129)),
        ("eventId unicode", "événement"),
        ("eventId slash", "a/b"),
        ("eventId hash", "a#b"),
    ] {
        let mut b = base.clone();
        b["eventId"] = json!(id);
        cases.push(Case {
            name: format!("ingest: {name}"),
            req: raw_signed_ingest(b.to_string().as_bytes(), "application/json", false),
            expect: 400,
        });
    }
    for (name, id) in [
        ("contactId 14 chars", "0035e00000XyZ1"),
        ("contactId 19 chars", "0035e00000XyZ12AAFX"),
        ("contactId symbols", "0035e00000XyZ-2AAF"),
    ] {
        let mut b = base.clone();
        b["contactId"] = json!(id);
        cases.push(Case {
            name: format!("ingest: {name}"),
            req: raw_signed_ingest(b.to_string().as_bytes(), "application/json", false),
            expect: 400,
        });
    }
    for field in ["eventId", "contactId"] {
        let mut b = base.clone();
        b.as_object_mut().map(|m| m.remove(field));
        cases.push(Case {
            name: format!("ingest: missing {field}"),
            req: raw_signed_ingest(b.to_string().as_bytes(), "application/json", false),
            expect: 400,
        });
    }
    for (name, body) in [
        (
            "platform event without payload",
            json!({"eventId": "pe-1", "data": {"event": {"replayId": 1}}}),
        ),
        (
            "platform event data string",
            json!({"eventId": "pe-2", "data": "x"}),
        ),
        (
            "platform event replayId negative",
            json!({"data": {"event": {"replayId": -5}, "payload": {"customerId": CONTACT}}}),
        ),
        (
            "platform event no id at all",
            json!({"data": {"payload": {"customerId": CONTACT}}}),
        ),
    ] {
        cases.push(Case {
            name: format!("ingest: {name}"),
            req: raw_signed_ingest(body.to_string().as_bytes(), "application/json", false),
            expect: 400,
        });
    }
    for size in [256 * 1024 + 1, 300 * 1024, 2 * 1024 * 1024] {
        cases.push(Case {
            name: format!("ingest: oversized {size} bytes"),
            req: raw_signed_ingest(&event_body("big-1", size), "application/json", false),
            expect: 413,
        });
    }
    for (ct, body) in [
        ("text/plain", b"hello".to_vec()),
        (
            "application/x-www-form-urlencoded",
            b"eventId=a&contactId=b".to_vec(),
        ),
        ("text/xml", b"<a>1</a>".to_vec()),
        (
            "multipart/form-data; boundary=x",
            b"--x\r\n\r\n--x--".to_vec(),
        ),
        ("application/octet-stream", vec![0, 1, 2, 3, 255]),
    ] {
        cases.push(Case {
            name: format!("ingest: content-type {ct} with a non-JSON body"),
            req: raw_signed_ingest(&body, ct, ct == "application/octet-stream"),
            expect: 400,
        });
    }
    // The MAC covers the bytes sent, not their base64 transport form.
    let ok = event_body(&unique("b64"), 300);
    cases.push(Case {
        name: "ingest: base64-encoded valid event".into(),
        req: raw_signed_ingest(&ok, "application/json", true),
        expect: 202,
    });
    {
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(&ok);
        let (ts, sig) = sf_v2_headers(SF_SECRET, encoded.as_bytes(), sfvapi::now_secs());
        cases.push(Case {
            name: "ingest: base64 body signed over its encoding".into(),
            req: request(
                "POST",
                "/salesforce/events",
                &[("x-sfvapi-timestamp", &ts), ("x-sfvapi-signature", &sig)],
                &ok,
                true,
            ),
            expect: 401,
        });
    }
    for m in ["GET", "PUT", "DELETE", "PATCH"] {
        cases.push(Case {
            name: format!("ingest: method {m}"),
            req: request(m, "/salesforce/events", &[], b"", false),
            expect: 405,
        });
    }
    for p in [
        "/salesforce/event",
        "/",
        "/salesforce/events/x",
        "/vapi/webhook",
    ] {
        cases.push(Case {
            name: format!("ingest: path {p}"),
            req: raw_signed_ingest(&valid, "application/json", false),
            expect: 404,
        });
        let last = cases.len() - 1;
        cases[last].req = request("POST", p, &[], &valid, false);
    }
    cases
}

/// The Vapi webhook corpus: broken JSON, wrong shapes, unknown message types (200), oversize.
pub fn vapi_corpus(scale: usize) -> Vec<Case> {
    let valid = json_of(fixtures::TOOL_CALLS).to_string().into_bytes();
    let mut cases = broken_json_cases("vapi", &valid, scale, "message", raw_signed_vapi);
    let push_json = |cases: &mut Vec<Case>, name: String, body: Value, expect: u16| {
        cases.push(Case {
            name: format!("vapi: {name}"),
            req: raw_signed_vapi(body.to_string().as_bytes(), "application/json", false),
            expect,
        })
    };
    for v in [json!("x"), json!(1), json!([]), json!(null), json!(true)] {
        push_json(
            &mut cases,
            format!("message = {v}"),
            json!({"message": v}),
            400,
        );
    }
    push_json(
        &mut cases,
        "no message".into(),
        json!({"type": "tool-calls"}),
        400,
    );
    push_json(&mut cases, "empty object".into(), json!({}), 400);
    for v in [json!(1), json!(null), json!([]), json!({})] {
        push_json(
            &mut cases,
            format!("type = {v}"),
            json!({"message": {"type": v, "call": {"id": CALL_ID}}}),
            400,
        );
    }
    for i in 0..(20 * scale) {
        push_json(
            &mut cases,
            format!("unknown type x-future-{i}"),
            json!({"message": {"type": format!("x-future-{i}"), "call": {"id": CALL_ID}, "timestamp": 1795690123456i64, "whatever": [i]}}),
            200,
        );
    }
    for t in [
        "transcript",
        "speech-update",
        "conversation-update",
        "hang",
        "user-interrupted",
        "model-output",
        "voice-input",
    ] {
        push_json(
            &mut cases,
            format!("ignored type {t}"),
            json!({"message": {"type": t, "call": {"id": CALL_ID}, "timestamp": 1795690123456i64}}),
            200,
        );
    }
    for size in [1024 * 1024 + 1, 3 * 1024 * 1024] {
        let mut v = json_of(fixtures::SPEECH_UPDATE);
        v["message"]["padding"] = json!("x".repeat(size));
        push_json(&mut cases, format!("oversized {size} bytes"), v, 413);
    }
    cases.push(Case {
        name: "vapi: base64-encoded speech-update".into(),
        req: raw_signed_vapi(fixtures::SPEECH_UPDATE, "application/json", true),
        expect: 200,
    });
    for (ct, body) in [
        ("text/plain", b"hello".to_vec()),
        ("application/x-www-form-urlencoded", b"message=x".to_vec()),
        ("text/xml", b"<message/>".to_vec()),
    ] {
        cases.push(Case {
            name: format!("vapi: content-type {ct} with a non-JSON body"),
            req: raw_signed_vapi(&body, ct, false),
            expect: 400,
        });
    }
    for m in ["GET", "PUT", "DELETE"] {
        cases.push(Case {
            name: format!("vapi: method {m}"),
            req: request(m, "/vapi/webhook", &[], b"", false),
            expect: 405,
        });
    }
    cases
}

/// Run `cases` through `handle`, each in its own task so a panic is caught and counted.
pub async fn run_cases<F, Fut>(name: &str, cases: Vec<Case>, handle: F) -> CorpusReport
where
    F: Fn(lambda_http::Request) -> Fut,
    Fut: std::future::Future<Output = lambda_http::Response<lambda_http::Body>> + Send + 'static,
{
    let mut report = CorpusReport {
        name: name.to_owned(),
        cases: cases.len(),
        ..CorpusReport::default()
    };
    for case in cases {
        let fut = handle(case.req);
        let joined = tokio::time::timeout(Duration::from_secs(20), tokio::spawn(fut)).await;
        match joined {
            Err(_) => report.mismatches.push(format!("{}: timed out", case.name)),
            Ok(Err(e)) if e.is_panic() => {
                report.panics += 1;
                report.mismatches.push(format!("{}: PANIC", case.name));
            }
            Ok(Err(e)) => report.mismatches.push(format!("{}: {e}", case.name)),
            Ok(Ok(resp)) => {
                let status = resp.status().as_u16();
                *report.by_status.entry(status).or_default() += 1;
                if status >= 500 && case.expect < 500 {
                    report.unexpected_5xx += 1;
                }
                if status != case.expect {
                    report.mismatches.push(format!(
                        "{}: got {status}, expected {}",
                        case.name, case.expect
                    ));
                }
            }
        }
    }
    report
}

/// Both corpora against the real handlers on one table.
pub async fn bad_input(scale: usize) -> Vec<CorpusReport> {
    let (store, _) = fresh_store().await;
    let ingest = ingest_app(&store, &ingest_secret().await).await;
    let vapi = vapi_app(&store, &vapi_secret().await).await;
    seed_call(&store).await;
    let a = run_cases("bad input → ingest", ingest_corpus(scale), move |r| {
        let app = ingest.clone();
        async move { app.handle(r).await }
    })
    .await;
    let b = run_cases("bad input → vapi webhook", vapi_corpus(scale), move |r| {
        let app = vapi.clone();
        async move { app.handle(r).await }
    })
    .await;
    vec![a, b]
}

/// A case name, its headers and its body.
type NamedRequest = (String, Vec<(String, String)>, Vec<u8>);

/// Forged, stale, future, replayed-with-changed-body and wrong-scheme requests: all 401.
pub async fn signatures() -> CorpusReport {
    let (store, counter) = fresh_store().await;
    let ingest = ingest_app(&store, &ingest_secret().await).await;
    let vapi = vapi_app(&store, &vapi_secret().await).await;
    let now = sfvapi::now_secs();
    let body = event_body("sig-1", 300);
    let other = event_body("sig-2", 300);
    let sf = |secret: &str, b: &[u8], ts: i64| sf_v2_headers(secret, b, ts);
    let mut ingest_cases: Vec<NamedRequest> = Vec::new();
    let mut add = |name: &str, h: Vec<(&str, String)>, b: &[u8]| {
        ingest_cases.push((
            name.to_owned(),
            h.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            b.to_vec(),
        ))
    };
    let (ts, sig) = sf("not-the-secret", &body, now);
    add(
        "forged (wrong secret)",
        vec![("x-sfvapi-timestamp", ts), ("x-sfvapi-signature", sig)],
        &body,
    );
    let (ts, sig) = sf(SF_SECRET, &body, now - 301);
    add(
        "stale (301 s old)",
        vec![("x-sfvapi-timestamp", ts), ("x-sfvapi-signature", sig)],
        &body,
    );
    let (ts, sig) = sf(SF_SECRET, &body, now - 86_400);
    add(
        "stale (1 day old)",
        vec![("x-sfvapi-timestamp", ts), ("x-sfvapi-signature", sig)],
        &body,
    );
    let (ts, sig) = sf(SF_SECRET, &body, now + 600);
    add(
        "future (301 s ahead)",
        vec![("x-sfvapi-timestamp", ts), ("x-sfvapi-signature", sig)],
        &body,
    );
    let (ts, sig) = sf(SF_SECRET, &body, now);
    add(
        "replayed headers, changed body",
        vec![
            ("x-sfvapi-timestamp", ts.clone()),
            ("x-sfvapi-signature", sig.clone()),
        ],
        &other,
    );
    add(
        "timestamp changed",
        vec![
            ("x-sfvapi-timestamp", (now - 1).to_string()),
            ("x-sfvapi-signature", sig.clone()),
        ],
        &body,
    );
    add(
        "no signature",
        vec![("x-sfvapi-timestamp", ts.clone())],
        &body,
    );
    add(
        "no timestamp",
        vec![("x-sfvapi-signature", sig.clone())],
        &body,
    );
    add(
        "empty signature",
        vec![
            ("x-sfvapi-timestamp", ts.clone()),
            ("x-sfvapi-signature", String::new()),
        ],
        &body,
    );
    add(
        "wrong scheme v2=",
        vec![
            ("x-sfvapi-timestamp", ts.clone()),
            ("x-sfvapi-signature", sig.replacen("v1=", "v2=", 1)),
        ],
        &body,
    );
    add(
        "wrong scheme: no prefix",
        vec![
            ("x-sfvapi-timestamp", ts.clone()),
            (
                "x-sfvapi-signature",
                sig.trim_start_matches("v1=").to_owned(),
            ),
        ],
        &body,
    );
    {
        use base64::Engine as _;
        let raw = hex::decode(sig.trim_start_matches("v1=")).unwrap_or_default();
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        add(
            "wrong scheme: base64 MAC",
            vec![
                ("x-sfvapi-timestamp", ts.clone()),
                ("x-sfvapi-signature", format!("v1={b64}")),
            ],
            &body,
        );
        // The legacy v1 header is not accepted when the deployment is on v2.
        let legacy =
            base64::engine::general_purpose::STANDARD.encode(sfvapi::signature::hmac_parts(
                sfvapi::signature::Algorithm::Sha256,
                SF_SECRET.as_bytes(),
                &[&body],
            ));
        add(
            "wrong scheme: legacy v1 header",
            vec![("x-salesforce-signature", legacy)],
            &body,
        );
    }
    add(
        "timestamp not a number",
        vec![
            ("x-sfvapi-timestamp", "soon".into()),
            ("x-sfvapi-signature", sig.clone()),
        ],
        &body,
    );
    add(
        "timestamp in ms",
        vec![
            ("x-sfvapi-timestamp", (now * 1000).to_string()),
            ("x-sfvapi-signature", sig.clone()),
        ],
        &body,
    );

    let mut cases: Vec<Case> = ingest_cases
        .into_iter()
        .map(|(name, h, b)| {
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            Case {
                name: format!("ingest: {name}"),
                req: request("POST", "/salesforce/events", &h, &b, false),
                expect: 401,
            }
        })
        .collect();
    let report_ingest = {
        let app = ingest.clone();
        run_cases(
            "signatures → ingest",
            std::mem::take(&mut cases),
            move |r| {
                let app = app.clone();
                async move { app.handle(r).await }
            },
        )
        .await
    };

    let vbody = fixtures::SPEECH_UPDATE.to_vec();
    let mut vbody2 = json_of(&vbody);
    vbody2["message"]["changed"] = json!(true);
    let vbody2 = vbody2.to_string().into_bytes();
    let vcase = |name: &str, h: Vec<(&str, String)>, b: &[u8]| {
        let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Case {
            name: format!("vapi: {name}"),
            req: request("POST", "/vapi/webhook", &h, b, false),
            expect: 401,
        }
    };
    let (ts, sig) = vapi_hmac("not-the-secret", &vbody, now);
    cases.push(vcase(
        "forged",
        vec![("x-timestamp", ts), ("x-signature", sig)],
        &vbody,
    ));
    let (ts, sig) = vapi_hmac(VAPI_SECRET, &vbody, now - 301);
    cases.push(vcase(
        "stale (s)",
        vec![("x-timestamp", ts), ("x-signature", sig)],
        &vbody,
    ));
    let (ts, sig) = vapi_hmac(VAPI_SECRET, &vbody, (now - 301) * 1000);
    cases.push(vcase(
        "stale (ms)",
        vec![("x-timestamp", ts), ("x-signature", sig)],
        &vbody,
    ));
    let (ts, sig) = vapi_hmac(VAPI_SECRET, &vbody, now + 600);
    cases.push(vcase(
        "future",
        vec![("x-timestamp", ts), ("x-signature", sig)],
        &vbody,
    ));
    let (ts, sig) = vapi_hmac(VAPI_SECRET, &vbody, now);
    cases.push(vcase(
        "replayed headers, changed body",
        vec![("x-timestamp", ts.clone()), ("x-signature", sig.clone())],
        &vbody2,
    ));
    cases.push(vcase(
        "no signature",
        vec![("x-timestamp", ts.clone())],
        &vbody,
    ));
    cases.push(vcase(
        "no timestamp",
        vec![("x-signature", sig.clone())],
        &vbody,
    ));
    cases.push(vcase(
        "wrong scheme: X-Vapi-Secret when only hmac is on",
        vec![("x-vapi-secret", VAPI_SECRET.into())],
        &vbody,
    ));
    cases.push(vcase(
        "wrong scheme: bearer when only hmac is on",
        vec![("authorization", format!("Bearer {VAPI_SECRET}"))],
        &vbody,
    ));
    cases.push(vcase(
        "wrong scheme: sha256= prefix",
        vec![
            ("x-timestamp", ts.clone()),
            ("x-signature", format!("sha256={sig}")),
        ],
        &vbody,
    ));
    {
        use base64::Engine as _;
        let b64 =
            base64::engine::general_purpose::STANDARD.encode(hex::decode(&sig).unwrap_or_default());
        cases.push(vcase(
            "wrong scheme: base64 MAC",
            vec![("x-timestamp", ts.clone()), ("x-signature", b64)],
            &vbody,
        ));
    }
    let legacy = hex::encode(sfvapi::signature::hmac_parts(
        sfvapi::signature::Algorithm::Sha256,
        VAPI_SECRET.as_bytes(),
        &[&vbody],
    ));
    cases.push(vcase(
        "wrong scheme: legacy x-vapi-signature",
        vec![("x-vapi-signature", legacy)],
        &vbody,
    ));
    let report_vapi = run_cases("signatures → vapi", cases, move |r| {
        let app = vapi.clone();
        async move { app.handle(r).await }
    })
    .await;
    let mut r = report_ingest;
    r.name = "signatures (forged/stale/future/replayed/wrong scheme)".into();
    r.cases += report_vapi.cases;
    r.panics += report_vapi.panics;
    r.unexpected_5xx += report_vapi.unexpected_5xx;
    r.mismatches.extend(report_vapi.mismatches);
    for (k, v) in report_vapi.by_status {
        *r.by_status.entry(k).or_default() += v;
    }
    // Nothing a rejected request sent may reach the table.
    if counter.count("PutItem") > 0 {
        r.mismatches.push(format!(
            "{} writes from rejected requests",
            counter.count("PutItem")
        ));
    }
    r
}

/// DynamoDB Local killed while a sender is sending: 503s during the outage, and every event
/// acknowledged before, during or after it is in the table after the restart.
pub async fn dynamodb_outage(events: usize) -> Row {
    let mut row = Row::new(&format!("DynamoDB killed mid-run ({events} events)"));
    let mut db = match DynamoDbLocal::start().await {
        Ok(db) => db,
        Err(e) => {
            row.note = format!("could not start DynamoDB Local: {e}");
            return row;
        }
    };
    let sdk = sdk().await;
    let client = aws_sdk_dynamodb::Client::from_conf(
        store::client_config(&sdk)
            .endpoint_url(db.endpoint())
            .build(),
    );
    let table = unique("sfvapi-outage");
    if let Err(e) = store::create_table(&client, &table).await {
        row.note = format!("create table: {e}");
        return row;
    }
    let st = Store::new(client, table);
    let app = ingest_app(&st, &ingest_secret().await).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, u16)>();
    let sender = {
        let app = app.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut retry: Vec<String> = Vec::new();
            let mut i = 0;
            // Bounded: `events` new ids, then up to 10 passes over the refused ones, 120 s max.
            while i < events && started.elapsed() < Duration::from_secs(120) {
                let id = format!("outage-{i}-{}", sfvapi::now_millis());
                let s = answer(app.handle(signed_ingest(&event_body(&id, 300))).await).0;
                if s == 503 {
                    retry.push(id.clone());
                }
                let _ = tx.send((id, s));
                i += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            for _ in 0..10 {
                if retry.is_empty() || started.elapsed() > Duration::from_secs(120) {
                    break;
                }
                let mut still = Vec::new();
                for id in retry {
                    let s = answer(app.handle(signed_ingest(&event_body(&id, 300))).await).0;
                    if s == 503 {
                        still.push(id.clone());
                    }
                    let _ = tx.send((id, s));
                }
                retry = still;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
    };
    let mut answers: Vec<(String, u16)> = Vec::new();
    let mut phase = 0; // 0 = up, 1 = down, 2 = up again
                       // The outage lasts until the sender has been refused this many times.
    let min_refused = (events / 40).max(5);
    let mut refused_during = 0usize;
    let mut accepted_during = 0usize;
    let deadline = Instant::now() + Duration::from_secs(150);
    while let Ok(Some(a)) = tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
        if phase == 1 {
            if a.1 == 503 {
                refused_during += 1;
            } else if a.1 == 202 {
                accepted_during += 1;
            }
        }
        answers.push(a);
        let acked = answers.iter().filter(|a| a.1 == 202).count();
        if phase == 0 && acked >= events / 3 {
            db.kill().await;
            phase = 1;
        } else if phase == 1 && refused_during >= min_refused {
            if let Err(e) = db.restart().await {
                row.note = format!("restart failed: {e}");
                break;
            }
            phase = 2;
        }
        if Instant::now() > deadline {
            break;
        }
    }
    let _ = sender.await;
    let mut acked_ids: Vec<&str> = answers
        .iter()
        .filter(|a| a.1 == 202 || a.1 == 200)
        .map(|a| a.0.as_str())
        .collect();
    acked_ids.sort_unstable();
    acked_ids.dedup();
    row.acked = acked_ids.len();
    row.jobs = row.acked;
    for id in &acked_ids {
        match st.get(&pk_of(id)).await {
            Ok(Some(_)) => row.done += 1,
            _ => row.lost += 1,
        }
    }
    let other: Vec<u16> = answers
        .iter()
        .map(|a| a.1)
        .filter(|s| ![200, 202, 503].contains(s))
        .collect();
    let refused = answers.iter().filter(|a| a.1 == 503).count();
    let distinct: std::collections::HashSet<&str> = answers.iter().map(|a| a.0.as_str()).collect();
    let never = distinct.len() - row.acked;
    row.note = format!(
        "{} answers: {} × 503 ({refused_during} while down), other statuses {:?}; stored = acknowledged (done column); {never} ids never acknowledged",
        answers.len(),
        refused,
        other
    );
    row.ok = phase == 2
        && refused_during >= min_refused
        && accepted_during == 0
        && other.is_empty()
        && row.lost == 0
        && never == 0;
    row
}

/// A worker claims a job and dies; after the lease the sweep rescues it; it completes once.
pub async fn dead_worker() -> Row {
    let mut row = Row::new("worker killed between claim and done");
    let w = World::new(&[("JOB_LEASE_SECS", "1")], true).await;
    w.mount_vapi(201, None, None).await;
    let id = unique("dead");
    row.acked =
        (answer(w.ingest.handle(signed_ingest(&event_body(&id, 300))).await).0 == 202) as usize;
    let pk = pk_of(&id);
    let worker = w.worker().await;
    let claimed = worker.queue().claim(&pk, sfvapi::now_millis()).await;
    let claimed = matches!(claimed, Ok(Some(_)));
    drop(worker); // the "dead" worker
    let worker = w.worker().await;
    worker
        .handle(stream_batch(&[(pk.as_str(), "PENDING")]))
        .await;
    let held = w.status(&pk).await.0 == "RUNNING";
    tokio::time::sleep(Duration::from_millis(1100)).await;
    w.drive(&worker, std::slice::from_ref(&pk), 4).await;
    row.settle(&w, std::slice::from_ref(&pk)).await;
    row.dials = w.calls().await;
    row.expected_dials = 1;
    row.note = format!("claimed={claimed}, lease held against redelivery={held}");
    row.ok = claimed && held && row.done == 1 && row.dials == 1;
    row
}

/// POST /call times out after Vapi created the call: the worker asks Vapi (GET /call), finds
/// the call and is DONE with it: no second POST, no person.
pub async fn vapi_timeout() -> Row {
    let mut row = Row::new("Vapi POST /call times out after creating");
    let w = World::new(&[], true).await;
    w.mount_vapi_calls(Some(Duration::from_secs(3))).await;
    let id = unique("vto");
    row.acked =
        (answer(w.ingest.handle(signed_ingest(&event_body(&id, 300))).await).0 == 202) as usize;
    let pk = pk_of(&id);
    let worker = w.worker().await;
    w.drive(&worker, std::slice::from_ref(&pk), 4).await;
    // Redelivered and swept again: still no second POST.
    worker
        .handle(stream_batch(&[(pk.as_str(), "PENDING")]))
        .await;
    let _ = worker.sweep().await;
    row.settle(&w, std::slice::from_ref(&pk)).await;
    row.dials = w.calls().await;
    row.expected_dials = 1;
    row.ok = row.done == 1 && row.needs_review == 0 && row.dials == 1;
    row
}

/// The worker dies after DIALING, once its POST /call reached Vapi: the sweep sends the job to
/// ask Vapi, which shows the call: DONE, one dial, no person.
pub async fn dead_after_dialing() -> Row {
    let mut row = Row::new("worker killed after DIALING (call placed)");
    let w = World::new(&[], true).await;
    w.mount_vapi_calls(None).await;
    let id = unique("dialdead");
    row.acked =
        (answer(w.ingest.handle(signed_ingest(&event_body(&id, 300))).await).0 == 202) as usize;
    let pk = pk_of(&id);
    let worker = w.worker().await;
    let q = worker.queue();
    let now = sfvapi::now_millis();
    let dying = match q.claim(&pk, now).await {
        Ok(Some(job)) => q.mark_dialing(&job, "{}", None, now).await.unwrap_or(false),
        _ => false,
    };
    // What the dying worker sent before it died: its POST /call.
    let event = sfvapi::ids::SalesforceEventId::parse("e", &id);
    let placed = match event {
        Ok(event_id) => {
            let client =
                sfvapi::vapi::client::VapiClient::new(&w.vapi.uri(), Duration::from_secs(5));
            let call = sfvapi::vapi::client::CreateCall {
                assistant_id: "asst-bench".into(),
                phone_number_id: "pn-bench".into(),
                customer_number: sfvapi::ids::E164Phone::parse("p", "+14155550123")
                    .expect("a valid number"),
                customer_name: None,
                event_id,
                contact_id: sfvapi::ids::SalesforceId::parse("c", CONTACT).expect("an id"),
                case_id: None,
                variable_values: Default::default(),
                context_sig: None,
            };
            match client {
                Ok(c) => c
                    .create_call(
                        &sfvapi::secrets::SecretString::new("vapi-private-key"),
                        &call,
                    )
                    .await
                    .is_ok(),
                Err(_) => false,
            }
        }
        Err(_) => false,
    };
    // Its dial lease runs out.
    let _ = w
        .store
        .client()
        .update_item()
        .table_name(w.store.table())
        .key("pk", sfvapi::store::attr::s(&pk))
        .update_expression("SET lease_until = :past, next_at = :past")
        .expression_attribute_values(":past", sfvapi::store::attr::n(sfvapi::now_millis() - 1))
        .send()
        .await;
    let worker = w.worker().await;
    w.drive(&worker, std::slice::from_ref(&pk), 4).await;
    row.settle(&w, std::slice::from_ref(&pk)).await;
    row.dials = w.calls().await;
    row.expected_dials = 1;
    row.note = format!("died while dialing={dying}, call reached Vapi={placed}");
    row.ok = dying && placed && row.done == 1 && row.needs_review == 0 && row.dials == 1;
    row
}

/// Vapi never delivers the end-of-call report: past the call's maximum duration the sweep fetches
/// the ended call and queues its report job; one Task, no person.
pub async fn report_never_delivered() -> Row {
    let mut row = Row::new("end-of-call report never delivered");
    let w = World::new(&[], true).await;
    let calls = w.mount_vapi_calls(None).await;
    let id = unique("noreport");
    row.acked =
        (answer(w.ingest.handle(signed_ingest(&event_body(&id, 300))).await).0 == 202) as usize;
    let pk = pk_of(&id);
    let worker = w.worker().await;
    w.drive(&worker, std::slice::from_ref(&pk), 3).await;
    calls.end_all("customer-ended-call");
    // The call's maximum duration has passed without a report.
    let _ = w
        .store
        .client()
        .update_item()
        .table_name(w.store.table())
        .key("pk", sfvapi::store::attr::s(&pk))
        .update_expression("SET next_at = :past")
        .expression_attribute_values(":past", sfvapi::store::attr::n(sfvapi::now_millis() - 1))
        .send()
        .await;
    let recovered = worker
        .sweep()
        .await
        .map(|r| r.report_checks.len())
        .unwrap_or(0);
    let call_id = w
        .store
        .get(&pk)
        .await
        .ok()
        .flatten()
        .and_then(|i| sfvapi::store::attr::opt_s(&i, "call_id").map(str::to_owned))
        .unwrap_or_default();
    let report = format!("evt#vapi#{call_id}#end-of-call-report");
    w.drive(&worker, std::slice::from_ref(&report), 3).await;
    let both = [pk.clone(), report];
    row.settle(&w, &both).await;
    row.dials = w.calls().await;
    row.expected_dials = 1;
    let tasks = w.tasks().await;
    row.note = format!("overdue reports checked={recovered}, Tasks={tasks}");
    row.ok = row.done == 2 && row.needs_review == 0 && row.dials == 1 && tasks == 1;
    row
}

/// One Salesforce fault on the Contact read, mounted before the normal answer so it happens once.
pub async fn salesforce_fault(name: &str, status: u16, body: Value) -> Row {
    let mut row = Row::new(&format!("Salesforce {name} on Contact"));
    let w = World::new(&[], false).await;
    w.mount_token().await;
    w.mount_contact(status, body, Some(1)).await;
    w.mount_contact(200, json_of(fixtures::CONTACT), None).await;
    w.mount_case_and_task().await;
    w.mount_vapi(201, None, None).await;
    let id = unique("sf");
    row.acked =
        (answer(w.ingest.handle(signed_ingest(&event_body(&id, 300))).await).0 == 202) as usize;
    let pk = pk_of(&id);
    let worker = w.worker().await;
    w.drive(&worker, std::slice::from_ref(&pk), 5).await;
    row.settle(&w, std::slice::from_ref(&pk)).await;
    row.dials = w.calls().await;
    row.expected_dials = 1;
    row.note = format!("OAuth calls {}", w.oauth_calls().await);
    row.ok = row.done == 1 && row.dials == 1;
    row
}

/// Twilio answers 429 once: the report job retries and sends exactly one SMS.
pub async fn twilio_429() -> Row {
    let mut row = Row::new("Twilio 429 on the follow-up SMS");
    let w = World::new(&[], true).await;
    w.mount_twilio(
        ResponseTemplate::new(429).set_body_json(json_of(fixtures::SMS_429)),
        Some(1),
    )
    .await;
    w.mount_twilio(
        ResponseTemplate::new(201).set_body_json(json_of(fixtures::SMS_CREATED)),
        None,
    )
    .await;
    let mut report = json_of(fixtures::END_OF_CALL);
    report["message"]["endedReason"] = json!("customer-did-not-answer");
    sign_context(&mut report, "case-escalated-5005e00000AbCdEAAV-1");
    let body = report.to_string().into_bytes();
    let hook = w.webhook().await;
    for _ in 0..3 {
        if answer(hook.handle(signed_vapi(&body)).await).0 == 200 {
            row.acked += 1;
        }
    }
    let pk = format!("evt#vapi#{CALL_ID}#end-of-call-report");
    let worker = w.worker().await;
    w.drive(&worker, std::slice::from_ref(&pk), 5).await;
    row.settle(&w, std::slice::from_ref(&pk)).await;
    let posts = w.sms().await;
    // The 429 created no message; every other POST did.
    row.sms = posts.saturating_sub(1);
    row.expected_sms = 1;
    row.note = format!("{posts} POSTs to Twilio (one answered 429)");
    row.ok = row.done == 1 && row.sms == 1;
    row
}

pub async fn faults(size: Size) -> Vec<Row> {
    vec![
        dynamodb_outage(size.outage_events).await,
        dead_worker().await,
        vapi_timeout().await,
        dead_after_dialing().await,
        report_never_delivered().await,
        salesforce_fault(
            "401 INVALID_SESSION_ID",
            401,
            json_of(include_bytes!(
                "../../../shared/tests/fixtures/salesforce/session-expired.json"
            )),
        )
        .await,
        salesforce_fault(
            "503",
            503,
            json!([{"errorCode": "SERVER_UNAVAILABLE", "message": "Service unavailable"}]),
        )
        .await,
        salesforce_fault(
            "403 REQUEST_LIMIT_EXCEEDED",
            403,
            json_of(fixtures::REQUEST_LIMIT),
        )
        .await,
        twilio_429().await,
    ]
}

/// The whole suite's result.
pub struct Suite {
    pub rows: Vec<Row>,
    pub corpora: Vec<CorpusReport>,
    pub elapsed: Duration,
}

impl Suite {
    pub fn ok(&self) -> bool {
        self.rows.iter().all(|r| r.ok) && self.corpora.iter().all(|c| c.ok())
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:<48} {:>6} {:>5} {:>5} {:>5} {:>6} {:>6} {:>5} {:>11} {:>7}  {}\n",
            "scenario",
            "acked",
            "jobs",
            "DONE",
            "SKIP",
            "REVIEW",
            "FAILED",
            "lost",
            "dials/exp",
            "sms/exp",
            "result"
        ));
        for r in &self.rows {
            out.push_str(&format!(
                "{:<48} {:>6} {:>5} {:>5} {:>5} {:>6} {:>6} {:>5} {:>11} {:>7}  {}{}\n",
                r.scenario,
                r.acked,
                r.jobs,
                r.done,
                r.skipped,
                r.needs_review,
                r.failed,
                r.lost,
                format!("{}/{}", r.dials, r.expected_dials),
                format!("{}/{}", r.sms, r.expected_sms),
                if r.ok { "ok" } else { "FAIL" },
                if r.note.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", r.note)
                }
            ));
        }
        out.push('\n');
        out.push_str(&format!(
            "{:<56} {:>6} {:>7} {:>15} {:>10}  {}\n",
            "corpus", "cases", "panics", "unexpected 5xx", "mismatch", "statuses"
        ));
        for c in &self.corpora {
            let statuses: Vec<String> = c
                .by_status
                .iter()
                .map(|(k, v)| format!("{k}×{v}"))
                .collect();
            out.push_str(&format!(
                "{:<56} {:>6} {:>7} {:>15} {:>10}  {}  {}\n",
                c.name,
                c.cases,
                c.panics,
                c.unexpected_5xx,
                c.mismatches.len(),
                statuses.join(" "),
                if c.ok() { "ok" } else { "FAIL" }
            ));
            for m in c.mismatches.iter().take(20) {
                out.push_str(&format!("    ! {m}\n"));
            }
        }
        let lost: usize = self.rows.iter().map(|r| r.lost).sum();
        let double_calls = self
            .rows
            .iter()
            .filter(|r| r.dials > r.expected_dials)
            .count();
        let double_sms = self.rows.iter().filter(|r| r.sms > r.expected_sms).count();
        let needs_review: usize = self.rows.iter().map(|r| r.needs_review).sum();
        out.push_str(&format!(
            "\nzero lost: {}   zero double calls: {}   zero double SMS: {}   NEEDS_REVIEW: {needs_review}   suite: {}   ({:.1} s)\n",
            yes(lost == 0),
            yes(double_calls == 0),
            yes(double_sms == 0),
            if self.ok() { "PASS" } else { "FAIL" },
            self.elapsed.as_secs_f64()
        ));
        out
    }

    pub fn to_json(&self) -> Value {
        json!({
            "ok": self.ok(),
            "needs_review": self.rows.iter().map(|r| r.needs_review).sum::<usize>(),
            "elapsed_s": self.elapsed.as_secs_f64(),
            "scenarios": self.rows.iter().map(Row::to_json).collect::<Vec<_>>(),
            "corpora": self.corpora.iter().map(CorpusReport::to_json).collect::<Vec<_>>(),
        })
    }
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "NO"
    }
}

/// Every scenario at `size`.
pub async fn run(size: Size) -> Suite {
    let started = Instant::now();
    let mut rows = vec![
        duplicate_storm(size.storm).await,
        distinct_storm(size.distinct, size.copies).await,
    ];
    let mut corpora = bad_input(size.corpus_scale).await;
    corpora.push(signatures().await);
    rows.extend(faults(size).await);
    Suite {
        rows,
        corpora,
        elapsed: started.elapsed(),
    }
}
