//! `make bench`: every figure measured in one run on this machine, printed as one table and
//! written to target/bench/results.json. Run under scripts/services.sh (DynamoDB Local + moto).
//!
//! Sizes (env, with defaults): BENCH_EVENTS=2000 per concurrency level
//! (the peer), BENCH_CEILING_EVENTS=6000 per concurrency level and side (handler vs ceiling), BENCH_PREPARE_RUNS=50000,
//! BENCH_TOOL_CALLS=1000, BENCH_FN_INVOCATIONS=300, BENCH_INIT_STARTS=21, BENCH_PUMP_EVENTS=200, BENCH_RELAY_EVENTS=500;
//! BENCH_SKIP_FUNCTIONS=1
//! skips the release build and the binaries' figures, BENCH_NO_BUILD=1 uses the binaries as built.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};
use sfvapi::config::{Env, IngestConfig};
use sfvapi::ids::SalesforceId;
use sfvapi::salesforce::Connection;
use sfvapi::secrets::{IngestSecret, SecretString};
use sfvapi_bench::harness::*;
use sfvapi_bench::runtime_api::RuntimeApi;
use sfvapi_bench::stats::{fmt_us, Samples};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One line of the table.
struct Line {
    section: &'static str,
    metric: String,
    value: String,
    goal: String,
    met: Option<bool>,
}

#[derive(Default)]
struct Report {
    lines: Vec<Line>,
    json: serde_json::Map<String, Value>,
}

impl Report {
    fn add(&mut self, section: &'static str, metric: impl Into<String>, value: impl Into<String>) {
        self.lines.push(Line {
            section,
            metric: metric.into(),
            value: value.into(),
            goal: String::new(),
            met: None,
        });
    }
    fn goal(
        &mut self,
        section: &'static str,
        metric: impl Into<String>,
        value: impl Into<String>,
        goal: impl Into<String>,
        met: bool,
    ) {
        self.lines.push(Line {
            section,
            metric: metric.into(),
            value: value.into(),
            goal: goal.into(),
            met: Some(met),
        });
    }
    fn print(&self) {
        let w0 = self
            .lines
            .iter()
            .map(|l| l.section.len())
            .max()
            .unwrap_or(0);
        let w1 = self
            .lines
            .iter()
            .map(|l| l.metric.chars().count())
            .max()
            .unwrap_or(0);
        let w2 = self
            .lines
            .iter()
            .map(|l| l.value.chars().count())
            .max()
            .unwrap_or(0);
        let w3 = self
            .lines
            .iter()
            .map(|l| l.goal.chars().count())
            .max()
            .unwrap_or(0);
        let pad =
            |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count())));
        println!(
            "{} | {} | {} | {} | status",
            pad("section", w0),
            pad("metric", w1),
            pad("value", w2),
            pad("goal", w3)
        );
        println!("{}", "-".repeat(w0 + w1 + w2 + w3 + 20));
        for l in &self.lines {
            let status = match l.met {
                Some(true) => "met",
                Some(false) => "NOT met",
                None => "",
            };
            println!(
                "{} | {} | {} | {} | {status}",
                pad(l.section, w0),
                pad(&l.metric, w1),
                pad(&l.value, w2),
                pad(&l.goal, w3)
            );
        }
    }
}

// ---------------------------------------------------------------- in-process ingest path

fn in_process(r: &mut Report) {
    let runs = env_usize("BENCH_PREPARE_RUNS", 50_000);
    let vars: BTreeMap<&str, &str> =
        BTreeMap::from([("TABLE_NAME", "bench"), ("SF_INGEST_SECRET_ARN", "bench")]);
    let Ok(config) = IngestConfig::from_env(&Env::new(|k| vars.get(k).map(|v| v.to_string())))
    else {
        r.add("in-process", "ingest prepare", "config error");
        return;
    };
    let secret = IngestSecret {
        signing_secrets: vec![SecretString::new(SF_SECRET)],
        outbound_message_token: None,
    };
    let body = event_body("case-escalated-5005e00000AbCdEAAV-1", 2048);
    let (ts, sig) = sf_v2_headers(SF_SECRET, &body, sfvapi::now_secs());
    let mut headers = http::HeaderMap::new();
    if let (Ok(t), Ok(s)) = (ts.parse(), sig.parse()) {
        headers.insert("x-sfvapi-timestamp", t);
        headers.insert("x-sfvapi-signature", s);
    }
    let now = sfvapi::now_millis();
    for _ in 0..2_000 {
        let _ = black_box(sfvapi::ingest::prepare(
            &config, &secret, &headers, &body, now,
        ));
    }
    let mut s = Samples::with_capacity(runs);
    let mut ok = true;
    for _ in 0..runs {
        let t = Instant::now();
        let res = sfvapi::ingest::prepare(&config, &secret, &headers, black_box(&body), now);
        s.push(t.elapsed());
        ok &= black_box(res).is_ok();
    }
    let (p50, p99) = (s.quantile_us(0.5), s.quantile_us(0.99));
    r.add(
        "in-process",
        format!("ingest verify+parse+item, 2 KB event ({runs} runs) p50"),
        fmt_us(p50),
    );
    r.goal(
        "in-process",
        "ingest verify+parse+item, 2 KB event p99",
        fmt_us(p99),
        "< 50 µs",
        ok && p99 < 50.0,
    );
    r.json.insert(
        "in_process_ingest_2kb".into(),
        json!({"runs": runs, "p50_us": p50, "p99_us": p99, "all_ok": ok}),
    );
}

// ---------------------------------------------------------------- handler on DynamoDB Local

/// Runs `work` over `inputs` with `c` tasks taking the next input as they finish one: per-op
/// samples, answer statuses and the wall time of the whole batch.
async fn drive<T, F, Fut>(
    c: usize,
    inputs: Vec<T>,
    work: F,
) -> (Samples, BTreeMap<u16, usize>, Duration)
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = u16> + Send,
{
    let n = inputs.len();
    let inputs = Arc::new(std::sync::Mutex::new(
        inputs.into_iter().map(Some).collect::<Vec<_>>(),
    ));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..c {
        let (inputs, next, work) = (inputs.clone(), next.clone(), work.clone());
        set.spawn(async move {
            let mut s = Samples::with_capacity(n / c + 1);
            let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let input = {
                    let mut g = inputs.lock().unwrap_or_else(|p| p.into_inner());
                    match g.get_mut(i) {
                        Some(slot) => slot.take(),
                        None => break,
                    }
                };
                let Some(input) = input else { break };
                let t = Instant::now();
                let status = work(input).await;
                s.push(t.elapsed());
                *statuses.entry(status).or_default() += 1;
            }
            (s, statuses)
        });
    }
    let mut all = Samples::with_capacity(n);
    let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
    while let Some(Ok((s, st))) = set.join_next().await {
        all.extend(s);
        for (k, v) in st {
            *statuses.entry(k).or_default() += v;
        }
    }
    (all, statuses, started.elapsed())
}

/// One side of the comparison at one concurrency, summed over its rounds.
#[derive(Default)]
struct Side {
    samples: Samples,
    statuses: BTreeMap<u16, usize>,
    wall: Duration,
    events: usize,
    /// events/s of each round, in order: a round's pair (handler, ceiling) ran back to back.
    round_eps: Vec<f64>,
}

impl Side {
    fn add(&mut self, (s, st, wall): (Samples, BTreeMap<u16, usize>, Duration), events: usize) {
        self.round_eps
            .push(events as f64 / wall.as_secs_f64().max(1e-9));
        self.samples.extend(s);
        for (k, v) in st {
            *self.statuses.entry(k).or_default() += v;
        }
        self.wall += wall;
        self.events += events;
    }
    fn json(&mut self, c: usize) -> Value {
        let eps = self.events as f64 / self.wall.as_secs_f64().max(1e-9);
        json!({"concurrency": c, "events": self.events, "events_per_s": eps,
            "p50_us": self.samples.quantile_us(0.5), "p99_us": self.samples.quantile_us(0.99),
            "statuses": self.statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_,_>>()})
    }
}

/// The ingest handler against its ceiling: a bare loop of the ingest's one conditional PutItem
/// (`Store::put_if_absent`, the same item a 2 KB event makes), with the same SDK client, on the
/// same table of the same DynamoDB Local, at the same concurrency. Nothing the handler adds
/// (signature, parse, secret cache, response) is in the ceiling, so handler ÷ ceiling is what
/// the handler costs.
///
/// Both run in alternating rounds (handler, ceiling, ceiling, handler, …) after one warm-up
/// each: DynamoDB Local slows down as its table grows and the JVM speeds up as it warms, so
/// whichever ran second in one block would win or lose by order alone.
async fn ingest_vs_ceiling(
    r: &mut Report,
    levels: &[usize],
    count: usize,
) -> (Vec<Value>, Vec<Value>) {
    let (store, _) = fresh_store().await;
    let app = ingest_app(&store, &ingest_secret().await).await;
    let item_of = |id: &str| {
        sfvapi::salesforce::events::parse_json_event(&event_body(id, 2048)).map(|req| {
            sfvapi::jobs::new_dial_job(&req, sfvapi::now_millis(), Duration::from_secs(86_400))
        })
    };
    let handler = {
        let app = app.clone();
        move |req: lambda_http::Request| {
            let app = app.clone();
            async move { app.handle(req).await.status().as_u16() }
        }
    };
    let ceiling = {
        let store = store.clone();
        move |item: sfvapi::store::Item| {
            let store = store.clone();
            async move {
                match store.put_if_absent(item).await {
                    Ok(_) => 202,
                    Err(_) => 503,
                }
            }
        }
    };
    let handler_batch = |tag: String, n: usize| -> Vec<lambda_http::Request> {
        (0..n)
            .map(|i| signed_ingest(&event_body(&unique(&format!("{tag}-{i}")), 2048)))
            .collect()
    };
    let ceiling_batch = |tag: String, n: usize| -> Vec<sfvapi::store::Item> {
        (0..n)
            .filter_map(|i| item_of(&unique(&format!("{tag}-{i}"))).ok())
            .collect()
    };
    // Warm-up: secret cached, connections open, both code paths run.
    drive(8, handler_batch("warm-h".into(), 200), handler.clone()).await;
    drive(8, ceiling_batch("warm-c".into(), 200), ceiling.clone()).await;

    let rounds = 20usize;
    let per_round = count.div_ceil(rounds);
    let (mut ours, mut ceil) = (Vec::new(), Vec::new());
    for &c in levels {
        let (mut h, mut k) = (Side::default(), Side::default());
        for round in 0..rounds {
            let reqs = handler_batch(format!("h{c}-{round}"), per_round);
            let items = ceiling_batch(format!("k{c}-{round}"), per_round);
            // ABBA: even rounds handler first, odd rounds ceiling first.
            if round % 2 == 0 {
                h.add(drive(c, reqs, handler.clone()).await, per_round);
                k.add(drive(c, items, ceiling.clone()).await, per_round);
            } else {
                k.add(drive(c, items, ceiling.clone()).await, per_round);
                h.add(drive(c, reqs, handler.clone()).await, per_round);
            }
        }
        let mut hj = h.json(c);
        // The ratio is the median of the rounds' own ratios (each pair ran back to back), so
        // one round hit by a JVM pause or a noisy neighbour moves it little.
        let mut pairs: Vec<f64> = h
            .round_eps
            .iter()
            .zip(&k.round_eps)
            .filter(|(_, k)| **k > 0.0)
            .map(|(h, k)| h / k)
            .collect();
        pairs.sort_by(f64::total_cmp);
        let median = match pairs.len() {
            0 => 0.0,
            n if n % 2 == 1 => pairs[n / 2],
            n => (pairs[n / 2 - 1] + pairs[n / 2]) / 2.0,
        };
        hj["ratio_to_ceiling"] = json!(median);
        hj["round_ratios"] = json!(pairs);
        r.add(
            "handler+DynamoDB Local",
            format!(
                "sfvapi IngestApp::handle, c={c}, {} events: events/s | p50 | p99",
                h.events
            ),
            format!(
                "{:.0}/s | {} | {}",
                hj["events_per_s"].as_f64().unwrap_or(0.0),
                fmt_us(hj["p50_us"].as_f64().unwrap_or(0.0)),
                fmt_us(hj["p99_us"].as_f64().unwrap_or(0.0))
            ),
        );
        ours.push(hj);
        ceil.push(k.json(c));
    }
    (ours, ceil)
}

fn run_peer(levels: &[usize], count: usize) -> Result<Value, String> {
    let root = sfvapi_bench::ddb_local::repo_root();
    let python = root.join(".tools/venv/bin/python");
    let script = root.join("scripts/bench_peer.py");
    let levels: Vec<String> = levels.iter().map(|c| c.to_string()).collect();
    let out = Command::new(&python)
        .arg(&script)
        .args([
            "--count",
            &count.to_string(),
            "--levels",
            &levels.join(","),
            "--size",
            "2048",
            "--secret",
            SF_SECRET,
        ])
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!("peer exited with {}", out.status));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|e| format!("peer output not JSON: {e}"))
}

async fn ingest_requests(r: &mut Report) {
    let (store, counter) = fresh_store().await;
    let app = ingest_app(&store, &ingest_secret().await).await;
    let _ = app
        .handle(signed_ingest(&event_body("count-warm", 2048)))
        .await;
    let body = event_body(&unique("count"), 2048);
    counter.reset();
    let s1 = answer(app.handle(signed_ingest(&body)).await).0;
    let new = counter.snapshot();
    counter.reset();
    let s2 = answer(app.handle(signed_ingest(&body)).await).0;
    let dup = counter.snapshot();
    let fmt = |m: &std::collections::HashMap<String, u64>| {
        let mut v: Vec<String> = m.iter().map(|(k, n)| format!("{n} {k}")).collect();
        v.sort();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(", ")
        }
    };
    let reads = |m: &std::collections::HashMap<String, u64>| {
        m.iter()
            .filter(|(k, _)| k.contains("Get") || k.contains("Query") || k.contains("Scan"))
            .map(|(_, n)| *n)
            .sum::<u64>()
    };
    let writes = |m: &std::collections::HashMap<String, u64>| m.values().sum::<u64>() - reads(m);
    r.goal(
        "DynamoDB requests",
        format!("sfvapi per new event ({s1})"),
        fmt(&new),
        "1 write, 0 reads",
        s1 == 202 && writes(&new) == 1 && reads(&new) == 0,
    );
    r.goal(
        "DynamoDB requests",
        format!("sfvapi per duplicate ({s2})"),
        fmt(&dup),
        "1 write attempt, 0 reads",
        s2 == 200 && writes(&dup) == 1 && reads(&dup) == 0,
    );
    r.json.insert(
        "sfvapi_requests".into(),
        json!({"new": new, "duplicate": dup, "statuses": [s1, s2]}),
    );
}

// ---------------------------------------------------------------- Vapi tool calls, token path

async fn tool_calls(r: &mut Report) {
    let n = env_usize("BENCH_TOOL_CALLS", 1000);
    let (store, counter) = fresh_store().await;
    let app = vapi_app(&store, &vapi_secret().await).await;
    seed_call(&store).await;
    for i in 0..20 {
        let _ = app
            .handle(signed_vapi(&tool_call_body(&format!("warm_{i}"))))
            .await;
    }
    let reqs: Vec<_> = (0..n)
        .map(|i| {
            signed_vapi(&tool_call_body(&format!(
                "call_{i}_{}",
                sfvapi::now_millis()
            )))
        })
        .collect();
    counter.reset();
    let mut s = Samples::with_capacity(n);
    let mut ok = 0usize;
    for req in reqs {
        let t = Instant::now();
        let (status, body) = answer(app.handle(req).await);
        s.push(t.elapsed());
        if status == 200
            && body["results"][0]["result"]
                .as_str()
                .is_some_and(|r| r.contains("00001026"))
        {
            ok += 1;
        }
    }
    let (p50, p99) = (s.quantile_us(0.5), s.quantile_us(0.99));
    let per_call = counter.total() as f64 / n as f64;
    r.add(
        "Vapi tool call",
        format!("VapiWebhookApp::handle from call# snapshot ({n} calls) p50"),
        fmt_us(p50),
    );
    r.goal(
        "Vapi tool call",
        format!("p99 ({ok}/{n} answered from the snapshot; {per_call:.1} DynamoDB requests/call)"),
        fmt_us(p99),
        "< 20 ms",
        ok == n && p99 < 20_000.0,
    );
    r.json.insert("tool_call".into(), json!({"calls": n, "p50_us": p50, "p99_us": p99, "answered": ok, "ddb_requests_per_call": per_call, "ops": counter.snapshot()}));
}

async fn token_path(r: &mut Report) {
    let (store, counter) = fresh_store().await;
    let sf = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(sf_token_response("live-token", &sf.uri())),
        )
        .mount(&sf)
        .await;
    Mock::given(method("GET"))
        .and(path(contact_path(CONTACT)))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            sfvapi_bench::harness::query_answer(json_of(sfvapi_bench::harness::fixtures::CONTACT)),
        ))
        .mount(&sf)
        .await;
    let arn = create_secret(&sf_secret_json()).await;
    let vars: BTreeMap<&str, String> = BTreeMap::from([
        ("SF_LOGIN_URL", sf.uri()),
        ("SF_CONNECTION_SECRET_ARN", arn),
        ("TABLE_NAME", store.table().to_owned()),
    ]);
    let config =
        match sfvapi::config::SalesforceConfig::from_env(&Env::new(|k| vars.get(k).cloned())) {
            Ok(c) => c,
            Err(e) => {
                r.add("token path", "config", e.to_string());
                return;
            }
        };
    let Ok(conn) = Connection::new(config, store.clone(), secrets_cache().await) else {
        r.add("token path", "connection", "error");
        return;
    };
    let Ok(id) = SalesforceId::parse("id", CONTACT) else {
        return;
    };
    let cold_ok = conn.rest.get_contact(&id).await.is_ok();
    let oauth_cold = World::posts(&sf, TOKEN_PATH).await;
    counter.reset();
    let warm = 100;
    let mut ok = 0;
    let mut s = Samples::with_capacity(warm);
    for _ in 0..warm {
        let t = Instant::now();
        ok += conn.rest.get_contact(&id).await.is_ok() as usize;
        s.push(t.elapsed());
    }
    let oauth_warm = World::posts(&sf, TOKEN_PATH).await - oauth_cold;
    let reads = counter.total();
    r.goal(
        "token path",
        format!("{warm} warm Salesforce calls ({ok} ok; cold: {oauth_cold} OAuth, ok={cold_ok}): OAuth calls / token reads"),
        format!("{oauth_warm} / {reads}"),
        "0 / 0",
        oauth_warm == 0 && reads == 0 && ok == warm,
    );
    r.json.insert("token_path".into(), json!({"warm_calls": warm, "ok": ok, "oauth_calls_warm": oauth_warm, "ddb_requests_warm": reads, "oauth_calls_cold": oauth_cold, "warm_p50_us": s.quantile_us(0.5)}));
}

// ---------------------------------------------------------------- the release binaries

/// A function's environment, the events it is fed, and what a good answer looks like.
type FnLoad = (Vec<(String, String)>, Vec<Bytes>, fn(&Value) -> bool);

const FUNCTIONS: [&str; 5] = [
    "salesforce-ingest",
    "salesforce-relay",
    "vapi-webhook",
    "job-worker",
    "token-refresher",
];

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| sfvapi_bench::ddb_local::repo_root().join("target"))
}

fn release_build() -> Result<Duration, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(sfvapi_bench::ddb_local::repo_root())
        .args(["build", "--release", "--quiet"]);
    for f in FUNCTIONS {
        cmd.args(["-p", f]);
    }
    let t = Instant::now();
    let status = cmd.status().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("cargo build --release exited with {status}"));
    }
    Ok(t.elapsed())
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

struct FnRun {
    init: Option<Duration>,
    hwm_kb: Option<u64>,
    ok: usize,
    invocations: usize,
    error: Option<String>,
}

/// `cmd` with the environment Lambda gives a function (Runtime API, function name, version,
/// memory, log group) and `envs`.
fn lambda_command(mut cmd: Command, api: &RuntimeApi, envs: &[(String, String)]) -> Command {
    cmd.env("AWS_LAMBDA_RUNTIME_API", api.host_port())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
        .env("RUST_LOG", "error")
        .env("SFVAPI_NO_METRICS", "1")
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

/// Waits, polling every `poll`, until the function asks for its first `/next` (its init is
/// done) or `within` has passed; `Some(reason)` if its init failed first (an `/init/error`, or
/// the process exited). Reaching neither leaves `first_next()` empty and returns `None`.
async fn wait_for_init(
    api: &RuntimeApi,
    child: &mut std::process::Child,
    within: Duration,
    poll: Duration,
) -> Option<String> {
    let deadline = Instant::now() + within;
    while api.first_next().is_none() && Instant::now() < deadline {
        if let Some(e) = api.init_error() {
            return Some(format!("init error: {e}"));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Some(format!("exited during init: {status}"));
        }
        tokio::time::sleep(poll).await;
    }
    None
}

/// Instructions `bin` executes from exec to its first `/next` (its whole init), counted by
/// valgrind's callgrind: the same count for the same binary and environment whatever else the
/// machine does, so two binaries compare exactly where wall-clock init moves by ±30 % here.
/// The process is stopped with SIGTERM once it waits on `/next`; callgrind writes its totals
/// on the way out.
async fn init_instructions(bin: &Path, envs: &[(String, String)]) -> Result<u64, String> {
    let api = RuntimeApi::start()
        .await
        .map_err(|e| format!("runtime API: {e}"))?;
    let out = std::env::temp_dir().join(format!(
        "sfvapi-bench-callgrind-{}-{}.out",
        std::process::id(),
        sfvapi::now_millis()
    ));
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(bin);
    let mut child = lambda_command(cmd, &api, envs)
        .spawn()
        .map_err(|e| format!("valgrind: {e}"))?;
    let failed = wait_for_init(
        &api,
        &mut child,
        Duration::from_secs(120),
        Duration::from_millis(5),
    )
    .await;
    let reached = api.first_next().is_some();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let text = std::fs::read_to_string(&out).map_err(|e| format!("callgrind output: {e}"));
    let _ = std::fs::remove_file(&out);
    if let Some(e) = failed {
        return Err(e);
    }
    if !reached {
        return Err("no /next within 120 s".into());
    }
    text?
        .lines()
        .find_map(|l| l.strip_prefix("summary:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| "no summary line in the callgrind output".into())
}

/// Spawn `bin` against a fresh Runtime API: time spawn → first `/next`, then feed `events` one by
/// one and read VmHWM.
async fn run_function(
    bin: &Path,
    envs: &[(String, String)],
    events: Vec<Bytes>,
    ok_if: fn(&Value) -> bool,
) -> FnRun {
    let mut run = FnRun {
        init: None,
        hwm_kb: None,
        ok: 0,
        invocations: events.len(),
        error: None,
    };
    let Ok(mut api) = RuntimeApi::start().await else {
        run.error = Some("runtime API did not start".into());
        return run;
    };
    let started = Instant::now();
    let child = lambda_command(Command::new(bin), &api, envs).spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            run.error = Some(format!("spawn {}: {e}", bin.display()));
            return run;
        }
    };
    let pid = child.id();
    run.error = wait_for_init(
        &api,
        &mut child,
        Duration::from_secs(20),
        Duration::from_micros(200),
    )
    .await;
    run.init = api.first_next().map(|t| t.duration_since(started));
    if run.init.is_some() {
        for (i, e) in events.into_iter().enumerate() {
            api.invoke(format!("req-{i}"), e);
            match api.completion(Duration::from_secs(20)).await {
                Some(c)
                    if c.ok
                        && serde_json::from_slice::<Value>(&c.body)
                            .map(|v| ok_if(&v))
                            .unwrap_or(false) =>
                {
                    run.ok += 1
                }
                Some(c) if run.error.is_none() => {
                    run.error = Some(format!(
                        "first bad answer: {}",
                        String::from_utf8_lossy(&c.body)
                            .chars()
                            .take(200)
                            .collect::<String>()
                    ))
                }
                Some(_) => {}
                None => {
                    run.error = Some(format!("invocation {i} timed out"));
                    break;
                }
            }
        }
        run.hwm_kb = vm_hwm_kb(pid);
    }
    let _ = child.kill();
    let _ = child.wait();
    run
}

fn apigw(req_method: &str, p: &str, headers: &[(&str, &str)], body: &[u8]) -> Bytes {
    Bytes::from(sfvapi::http::apigw_v2_event(req_method, p, headers, body, false).to_string())
}

async fn functions(r: &mut Report) {
    if std::env::var_os("BENCH_SKIP_FUNCTIONS").is_some() {
        r.add("release binaries", "skipped", "BENCH_SKIP_FUNCTIONS set");
        return;
    }
    let build = match if std::env::var_os("BENCH_NO_BUILD").is_some() {
        Ok(Duration::ZERO)
    } else {
        release_build()
    } {
        Ok(d) => d,
        Err(e) => {
            r.add("release binaries", "cargo build --release", e);
            return;
        }
    };
    r.add(
        "release binaries",
        "cargo build --release -p <5 functions> (one invocation; no-op when fresh)",
        format!("{:.1} s", build.as_secs_f64()),
    );
    let n = env_usize("BENCH_FN_INVOCATIONS", 300);
    // Shared fixtures for the five functions.
    let (store, _) = fresh_store().await;
    seed_call(&store).await;
    let sf = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(sf_token_response("tok", &sf.uri())))
        .mount(&sf)
        .await;
    let ingest_arn = ingest_secret().await;
    let vapi_arn = vapi_secret().await;
    let sf_arn = create_secret(&sf_secret_json()).await;
    let table = store.table().to_owned();
    let common = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut v = vec![("TABLE_NAME".to_owned(), table.clone())];
        v.extend(
            extra
                .iter()
                .map(|(k, val)| ((*k).to_owned(), (*val).to_owned())),
        );
        v
    };
    let relay_routing = sfvapi_bench::ddb_local::repo_root()
        .join("events/routing-event-relay.yaml")
        .to_string_lossy()
        .into_owned();
    let mut loads: Vec<(&str, PathBuf, FnLoad)> = Vec::new();
    for f in FUNCTIONS {
        let bin = target_dir().join("release").join(f);
        let load: FnLoad = match f {
            "salesforce-ingest" => (
                common(&[("SF_INGEST_SECRET_ARN", &ingest_arn)]),
                (0..n)
                    .map(|i| {
                        let body = event_body(&unique(&format!("fn{i}")), 2048);
                        let (ts, sig) = sf_v2_headers(SF_SECRET, &body, sfvapi::now_secs());
                        apigw(
                            "POST",
                            "/salesforce/events",
                            &[("x-sfvapi-timestamp", &ts), ("x-sfvapi-signature", &sig)],
                            &body,
                        )
                    })
                    .collect(),
                |v| v["statusCode"] == 202,
            ),
            // SQS batches of one relayed Platform Event each, as the relay queue delivers them.
            "salesforce-relay" => (
                common(&[
                    ("SF_RELAY_ORG_IDS", sfvapi::samples::LOCAL_RELAY_ORG_ID),
                    ("ROUTING_FILE", &relay_routing),
                ]),
                (0..n)
                    .map(|i| {
                        let e = sfvapi::samples::relay_platform_event_with(
                            sfvapi::samples::LOCAL_RELAY_ORG_ID,
                            &format!("eb-fn-{i}"),
                            &unique(&format!("fn-relay-{i}")),
                        );
                        let batch = json!({"Records": [{"messageId": format!("m-{i}"), "body": e.to_string()}]});
                        Bytes::from(batch.to_string())
                    })
                    .collect(),
                |v| {
                    v["batchItemFailures"]
                        .as_array()
                        .is_some_and(|a| a.is_empty())
                },
            ),
            "vapi-webhook" => (
                common(&[("VAPI_SERVER_SECRET_ARN", &vapi_arn)]),
                (0..n)
                    .map(|i| {
                        let body = tool_call_body(&format!("fn_{i}_{}", sfvapi::now_millis()));
                        let (ts, sig) = vapi_hmac(VAPI_SECRET, &body, sfvapi::now_secs());
                        apigw(
                            "POST",
                            "/vapi/webhook",
                            &[("x-timestamp", &ts), ("x-signature", &sig)],
                            &body,
                        )
                    })
                    .collect(),
                |v| v["statusCode"] == 200,
            ),
            "job-worker" => (
                common(&[
                    ("SF_LOGIN_URL", &sf.uri()),
                    ("SF_CONNECTION_SECRET_ARN", &sf_arn),
                    ("VAPI_SECRET_ARN", &vapi_arn),
                    ("VAPI_ASSISTANT_ID", "asst-bench"),
                    ("VAPI_PHONE_NUMBER_ID", "pn-bench"),
                ]),
                // Records of jobs that are not claimable (absent): one conditional claim each.
                (0..n)
                    .map(|i| {
                        let pk = format!("evt#sf#absent-{i}");
                        Bytes::from(stream_batch_json(&[(pk.as_str(), "PENDING")]).to_string())
                    })
                    .collect(),
                |v| {
                    v["batchItemFailures"]
                        .as_array()
                        .is_some_and(|a| a.is_empty())
                },
            ),
            _ => (
                common(&[
                    ("SF_LOGIN_URL", &sf.uri()),
                    ("SF_CONNECTION_SECRET_ARN", &sf_arn),
                ]),
                (0..n)
                    .map(|_| Bytes::from_static(br#"{"action":"refresh"}"#))
                    .collect(),
                |v| {
                    matches!(
                        v["connections"][0]["status"].as_str(),
                        Some("refreshed" | "fresh")
                    )
                },
            ),
        };
        loads.push((f, bin, load));
    }
    // Cold init: fresh processes with no invocation, the five functions taken in turn round after
    // round so that a noisy moment of the machine falls on all of them alike; then one process
    // of each under load (its start counted too). BENCH_BEFORE_DIR=<dir of release binaries of
    // an earlier commit> starts those too, in the same rounds and with the same environment
    // (order flipped every round), for a before/after from one run.
    let starts = env_usize("BENCH_INIT_STARTS", 21);
    let before_dir = std::env::var_os("BENCH_BEFORE_DIR").map(PathBuf::from);
    let befores: Vec<Option<PathBuf>> = loads
        .iter()
        .map(|(f, _, _)| {
            before_dir
                .as_ref()
                .map(|d| d.join(f))
                .filter(|p| p.is_file())
        })
        .collect();
    let mut inits: Vec<Samples> = loads
        .iter()
        .map(|_| Samples::with_capacity(starts + 1))
        .collect();
    let mut before_inits: Vec<Samples> = loads
        .iter()
        .map(|_| Samples::with_capacity(starts))
        .collect();
    // An earlier version may read a setting under an older name (the webhook once read
    // VAPI_SECRET_ARN): a before binary gets its function's variables plus every other
    // function's that its own do not name.
    let before_envs: Vec<Vec<(String, String)>> = loads
        .iter()
        .map(|(_, _, (envs, _, _))| {
            let mut all = envs.clone();
            for (_, _, (other, _, _)) in &loads {
                for (k, v) in other {
                    if !all.iter().any(|(name, _)| name == k) {
                        all.push((k.clone(), v.clone()));
                    }
                }
            }
            all
        })
        .collect();
    for round in 0..starts {
        for (i, (_, bin, (envs, _, ok_if))) in loads.iter().enumerate() {
            let mut order = vec![(bin.as_path(), envs, false)];
            if let Some(b) = &befores[i] {
                order.push((b.as_path(), &before_envs[i], true));
                if round % 2 == 1 {
                    order.reverse();
                }
            }
            for (exe, envs, is_before) in order {
                if let Some(d) = run_function(exe, envs, Vec::new(), *ok_if).await.init {
                    if is_before {
                        before_inits[i].push(d);
                    } else {
                        inits[i].push(d);
                    }
                }
            }
        }
    }
    // Init instructions (callgrind), when valgrind is installed: one start each is exact.
    let has_valgrind = Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let mut instructions: Vec<Option<u64>> = Vec::new();
    let mut before_instructions: Vec<Option<u64>> = Vec::new();
    for (i, (f, bin, (envs, _, _))) in loads.iter().enumerate() {
        let count = |exe: PathBuf, envs: Vec<(String, String)>| async move {
            if !has_valgrind {
                return None;
            }
            match init_instructions(&exe, &envs).await {
                Ok(n) => Some(n),
                Err(e) => {
                    eprintln!("bench: {f}: {}: init instructions: {e}", exe.display());
                    None
                }
            }
        };
        instructions.push(count(bin.clone(), envs.clone()).await);
        before_instructions.push(match &befores[i] {
            Some(b) => count(b.clone(), before_envs[i].clone()).await,
            None => None,
        });
    }
    let fmt_instr = |n: Option<u64>| {
        n.map(|n| format!("{:.2} M instructions", n as f64 / 1e6))
            .unwrap_or_else(|| "—".into())
    };
    for (i, (f, _, _)) in loads.iter().enumerate() {
        if let Some(b) = &befores[i] {
            let size = std::fs::metadata(b).map(|m| m.len()).unwrap_or(0);
            let p50 = (!before_inits[i].is_empty()).then(|| before_inits[i].quantile_us(0.5));
            r.add(
                "release binaries",
                format!(
                    "before ({}): {f}: stripped size | cold init, same rounds",
                    b.display()
                ),
                format!(
                    "{:.2} MB | init p50 {} ({} starts) | {}",
                    size as f64 / 1e6,
                    p50.map(fmt_us).unwrap_or_else(|| "—".into()),
                    before_inits[i].len(),
                    fmt_instr(before_instructions[i])
                ),
            );
            let entry = json!({"path": b.display().to_string(), "size_bytes": size, "init_p50_us": p50, "init_starts": before_inits[i].len(), "init_instructions": before_instructions[i]});
            r.json
                .entry("functions_before")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .map(|m| m.insert((*f).to_owned(), entry));
        }
    }
    let mut json_fns = serde_json::Map::new();
    for (((f, bin, (envs, events, ok_if)), mut inits), instructions) in
        loads.into_iter().zip(inits).zip(instructions)
    {
        let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
        let run = run_function(&bin, &envs, events, ok_if).await;
        if let Some(d) = run.init {
            inits.push(d);
        }
        let init_p50 = (!inits.is_empty()).then(|| inits.quantile_us(0.5));
        let init_max = inits.quantile_us(1.0);
        let init = init_p50
            .map(|p| {
                format!(
                    "init p50 {} (max {}, {} starts)",
                    fmt_us(p),
                    fmt_us(init_max),
                    inits.len()
                )
            })
            .unwrap_or_else(|| "init —".into());
        let hwm = run
            .hwm_kb
            .map(|k| format!("{:.1} MB", k as f64 / 1024.0))
            .unwrap_or_else(|| "—".into());
        let mut value = format!(
            "{:.2} MB | {init} | {} | peak RSS {hwm} | {}/{} ok",
            size as f64 / 1e6,
            fmt_instr(instructions),
            run.ok,
            run.invocations
        );
        if let Some(e) = &run.error {
            value.push_str(&format!(" | {e}"));
        }
        r.add(
            "release binaries",
            format!("{f}: stripped size | cold init (no network) | init instructions | VmHWM after {n} invocations"),
            value,
        );
        json_fns.insert(
            f.into(),
            json!({"size_bytes": size, "init_p50_us": init_p50, "init_max_us": init_max, "init_starts": inits.len(), "init_instructions": instructions, "vm_hwm_kb": run.hwm_kb, "invocations": run.invocations, "ok": run.ok, "error": run.error}),
        );
    }
    r.json
        .insert("release_build_s".into(), json!(build.as_secs_f64()));
    r.json.insert("functions".into(), Value::Object(json_fns));
}

// ---------------------------------------------------------------- accepted → POST /call

/// Notes when each POST /call arrives, by the event id in its metadata.
struct DialClock {
    seen: Arc<std::sync::Mutex<BTreeMap<String, Instant>>>,
}

impl wiremock::Respond for DialClock {
    fn respond(&self, req: &wiremock::Request) -> ResponseTemplate {
        let now = Instant::now();
        if let Ok(v) = serde_json::from_slice::<Value>(&req.body) {
            if let Some(id) = v["assistantOverrides"]["metadata"]["sfvapiEventId"].as_str() {
                self.seen
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .entry(id.to_owned())
                    .or_insert(now);
            }
        }
        ResponseTemplate::new(201).set_body_json(sfvapi_bench::harness::created_call())
    }
}

/// A minimal stream pump over DynamoDB Local's real stream: poll every shard (GetRecords, 10 ms
/// apart when idle, as a bench stand-in for Lambda's event source mapping), pass PENDING images
/// to `Worker::handle` as Lambda would, and time each event from its 202 to its POST /call.
async fn accepted_to_dial(r: &mut Report) {
    let n = env_usize("BENCH_PUMP_EVENTS", 200);
    let w = World::new(&[], true).await;
    let seen = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    Mock::given(method("POST"))
        .and(path("/call"))
        .respond_with(DialClock { seen: seen.clone() })
        .mount(&w.vapi)
        .await;
    let worker = w.worker().await;
    let sdk = sdk().await;
    // The same pump `make demo` runs (tools/local): DescribeStream/GetShardIterator/GetRecords,
    // the template's filter, real DynamodbEvent batches; polled every 10 ms here.
    let config = sfvapi_local::pump::PumpConfig {
        poll_interval: Duration::from_millis(10),
        ..Default::default()
    };
    let sink = {
        let worker = worker.clone();
        sfvapi_local::pump::sink(move |e| {
            let worker = worker.clone();
            async move { worker.handle(e).await }
        })
    };
    let pump = match sfvapi_local::pump::Pump::start(
        w.store.client(),
        aws_sdk_dynamodbstreams::Client::new(&sdk),
        w.store.table(),
        config,
        sink,
        None,
    )
    .await
    {
        Ok(p) => p,
        Err(e) => {
            r.add("stream pump", "event accepted → POST /call", e.to_string());
            return;
        }
    };
    let mut accepted: BTreeMap<String, Instant> = BTreeMap::new();
    for i in 0..n {
        let id = unique(&format!("pump{i}"));
        let (status, _) = answer(w.ingest.handle(signed_ingest(&event_body(&id, 2048))).await);
        if status == 202 {
            accepted.insert(id, Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wait_until = Instant::now() + Duration::from_secs(60);
    while Instant::now() < wait_until && seen.lock().map(|m| m.len()).unwrap_or(0) < accepted.len()
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    pump.shutdown().await;
    let seen = seen.lock().map(|m| m.clone()).unwrap_or_default();
    let mut s = Samples::with_capacity(n);
    for (id, t) in &accepted {
        if let Some(d) = seen.get(id) {
            s.push(d.saturating_duration_since(*t));
        }
    }
    let dialed = s.len();
    let (p50, p95) = (s.quantile_us(0.5), s.quantile_us(0.95));
    r.add(
        "stream pump",
        format!("accepted (202) → POST /call via the DynamoDB Local stream (tools/local pump, 10 ms poll), {dialed}/{} dialed: p50 | p95", accepted.len()),
        format!("{} | {}", fmt_us(p50), fmt_us(p95)),
    );
    r.json.insert(
        "accepted_to_dial".into(),
        json!({"events": accepted.len(), "dialed": dialed, "p50_us": p50, "p95_us": p95, "pump": "tools/local stream pump over DynamoDB Local streams (GetRecords, 10 ms idle poll)"}),
    );
}

// ---------------------------------------------------------------- dial pacing

/// 30 events against a Vapi org (the sandbox) that allows 5 live calls, with
/// `VAPI_MAX_CONCURRENT_CALLS=5`: every event called once, never more than 5 live, 0 blocked.
async fn dial_pacing(r: &mut Report) {
    let events = env_usize("BENCH_PACING_EVENTS", 30);
    let max = 5;
    match sfvapi_local::pacing::run(events, max, Default::default(), Duration::from_secs(120)).await
    {
        Ok(run) => {
            let once = run.calls_per_event.values().filter(|n| **n == 1).count();
            r.goal(
                "dial pacing",
                format!(
                    "{events} events, VAPI_MAX_CONCURRENT_CALLS={max}, sandbox org limit {max}: calls | peak live | blocked | wall time"
                ),
                format!(
                    "{} ({once} events exactly once) | {} | {} | {:.1} s",
                    run.calls_per_event.values().sum::<usize>(),
                    run.peak_live,
                    run.blocked,
                    run.wall_ms as f64 / 1000.0
                ),
                format!("each once, ≤ {max} live, 0 blocked"),
                once == events && run.peak_live <= u64::from(max) && run.blocked == 0,
            );
            r.json.insert(
                "dial_pacing".into(),
                serde_json::to_value(&run).unwrap_or(Value::Null),
            );
        }
        Err(e) => r.add("dial pacing", format!("{events} events, 5 slots"), e),
    }
}

/// An inbound call's `assistant-request` (tools/bench/src/callback.rs): p50/p99 per path.
async fn callback(r: &mut Report) {
    let n = env_usize("BENCH_CALLBACK_REQUESTS", 300);
    let n_search = env_usize("BENCH_CALLBACK_SEARCH_REQUESTS", 100);
    match sfvapi_bench::callback::run(n, n_search).await {
        Ok(b) => {
            let limit_us = b.deadline_ms as f64 * 1000.0;
            for p in &b.paths {
                let what = match p.path {
                    "snapshot" => {
                        "from sfvapi's recent call (phone# → call#, no Salesforce request)"
                    }
                    "search" => "by the Salesforce search (sandbox, loopback HTTP)",
                    _ => "a number on no Contact (generic assistant)",
                };
                r.goal(
                    "inbound assistant-request",
                    format!(
                        "{what}: {} answers, {}/{} as expected, {:.1} Salesforce requests each: p50 | p99",
                        p.requests, p.as_expected, p.requests, p.sf_requests_per_answer
                    ),
                    format!("{} | {}", fmt_us(p.p50_us), fmt_us(p.p99_us)),
                    format!("p99 < deadline {} ms (Vapi: 7.5 s)", b.deadline_ms),
                    p.as_expected == p.requests && p.p99_us < limit_us,
                );
            }
            r.json.insert("callback".into(), b.json());
        }
        Err(e) => r.add("inbound assistant-request", "not run", e),
    }
}

/// `transfer-destination-request`, answered from the call's snapshot.
async fn transfer(r: &mut Report) {
    let n = env_usize("BENCH_TRANSFER_REQUESTS", 300);
    match sfvapi_bench::transfer::run(n).await {
        Ok(b) => {
            for p in &b.paths {
                let what = match p.path {
                    "transfer" => {
                        "warm transfer to the Case owner (from call#, no Salesforce request)"
                    }
                    _ => "nobody to transfer to: the message, and the owner's callback Task queued",
                };
                r.goal(
                    "transfer-destination-request",
                    format!(
                        "{what}: {} answers, {}/{} valid and as expected: p50 | p99",
                        p.requests, p.as_expected, p.requests
                    ),
                    format!("{} | {}", fmt_us(p.p50_us), fmt_us(p.p99_us)),
                    "p99 < 50 ms",
                    p.as_expected == p.requests && p.p99_us < sfvapi_bench::transfer::GOAL_P99_US,
                );
            }
            r.json.insert("transfer".into(), b.json());
        }
        Err(e) => r.add("transfer-destination-request", "not run", e),
    }
}

fn main() -> std::process::ExitCode {
    // EMF metric lines would bury the table; set before any thread exists.
    std::env::set_var("SFVAPI_NO_METRICS", "1");
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(bench()),
        Err(e) => {
            eprintln!("error: tokio runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn bench() -> std::process::ExitCode {
    if let Err(e) = require_local_services() {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(2);
    }
    let t0 = Instant::now();
    let mut r = Report::default();
    let count = env_usize("BENCH_EVENTS", 2000);
    let levels = [1usize, 8, 32];
    // BENCH_ONLY=pacing,ceiling runs only those parts (a quick look; a full `make bench` runs all).
    let only = std::env::var("BENCH_ONLY").ok();
    let want = |part: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|p| p.trim() == part))
    };

    if want("in-process") {
        eprintln!("bench: in-process ingest path…");
        in_process(&mut r);
    }
    if want("requests") {
        let _ddb = fresh_dynamodb().await;
        ingest_requests(&mut r).await;
        eprintln!("bench: Vapi tool calls and the token path…");
        tool_calls(&mut r).await;
        token_path(&mut r).await;
    }
    if want("functions") {
        let _ddb = fresh_dynamodb().await;
        eprintln!("bench: release binaries…");
        functions(&mut r).await;
    }
    if want("pump") {
        let _ddb = fresh_dynamodb().await;
        eprintln!("bench: accepted → POST /call through the stream…");
        accepted_to_dial(&mut r).await;
    }
    if want("pacing") {
        let _ddb = fresh_dynamodb().await;
        eprintln!("bench: dial pacing (30 events, 5 live calls at most)…");
        dial_pacing(&mut r).await;
    }
    if want("policy") {
        let _ddb = fresh_dynamodb().await;
        eprintln!("bench: the calling policy (in process, and DynamoDB requests per dial)…");
        match sfvapi_bench::policy::run(
            env_usize("BENCH_POLICY_CHECKS", 20_000),
            env_usize("BENCH_POLICY_DIALS", 20),
        )
        .await
        {
            Ok(b) => {
                for (metric, value, goal, met) in b.lines() {
                    r.goal("calling policy", metric, value, goal, met);
                }
                r.json.insert("policy".into(), b.json());
            }
            Err(e) => r.add("calling policy", "policy part", format!("not run: {e}")),
        }
    }
    if want("callback") {
        let _ddb = fresh_dynamodb().await;
        eprintln!("bench: assistant-request of an inbound call (snapshot, search, generic)…");
        callback(&mut r).await;
    }
    if want("transfer") {
        let _ddb = fresh_dynamodb().await;
        eprintln!("bench: transfer-destination-request (warm transfer, declined)…");
        transfer(&mut r).await;
    }
    if want("relay") {
        let _ddb = fresh_dynamodb().await;
        eprintln!("bench: the EventBridge ingest path (salesforce-relay)…");
        match sfvapi_bench::relay::measure(env_usize("BENCH_RELAY_EVENTS", 500)).await {
            Ok(b) => {
                for (metric, value, goal, met) in b.lines {
                    match met {
                        Some(met) => r.goal("Event Relay", metric, value, goal, met),
                        None => r.add("Event Relay", metric, value),
                    }
                }
                r.json.insert("relay".into(), b.json);
            }
            Err(e) => r.add("Event Relay", "relay part", format!("not run: {e}")),
        }
    }
    // Every part runs on a DynamoDB Local of its own (`fresh_dynamodb`), so no part's figures
    // depend on what the parts before it wrote; the peer gets one too.
    let (ours, ceiling) = if want("ceiling") {
        let _ddb = fresh_dynamodb().await;
        eprintln!("bench: ingest handler on DynamoDB Local…");
        eprintln!(
            "bench: … against the ceiling, a bare conditional-PutItem loop, in alternating rounds"
        );
        // More events than the peer's: a round of a few hundred events moves by ±30 % here
        // (JVM pauses, the two cores shared with DynamoDB Local), so the ratio needs many rounds.
        ingest_vs_ceiling(&mut r, &levels, env_usize("BENCH_CEILING_EVENTS", 6000)).await
    } else {
        (Vec::new(), Vec::new())
    };
    for (o, c) in ours.iter().zip(&ceiling) {
        let level = c["concurrency"].as_u64().unwrap_or(0);
        let (oe, ce) = (
            o["events_per_s"].as_f64().unwrap_or(0.0),
            c["events_per_s"].as_f64().unwrap_or(0.0),
        );
        r.add(
            "handler+DynamoDB Local",
            format!("ceiling: bare conditional PutItem loop (same client, item, concurrency), c={level}: events/s | p50 | p99"),
            format!(
                "{ce:.0}/s | {} | {}",
                fmt_us(c["p50_us"].as_f64().unwrap_or(0.0)),
                fmt_us(c["p99_us"].as_f64().unwrap_or(0.0))
            ),
        );
        let ratio = o["ratio_to_ceiling"]
            .as_f64()
            .unwrap_or(if ce > 0.0 { oe / ce } else { 0.0 });
        r.goal(
            "handler+DynamoDB Local",
            format!("ratio sfvapi/ceiling, c={level}: events/s, median of the rounds' ratios"),
            format!("{ratio:.2}"),
            "≥ 0.90",
            ratio >= 0.9,
        );
    }
    let ceiling_eps: Vec<f64> = ceiling
        .iter()
        .map(|c| c["events_per_s"].as_f64().unwrap_or(0.0))
        .collect();
    r.json
        .insert("putitem_ceiling".into(), Value::Array(ceiling));
    eprintln!("bench: Powertools peer…");
    let peer = if want("peer") {
        let _ddb = fresh_dynamodb().await;
        run_peer(&levels, count)
    } else {
        Err("skipped (BENCH_ONLY)".into())
    };
    match peer {
        Ok(peer) => {
            let empty = vec![];
            let plevels = peer["levels"].as_array().unwrap_or(&empty);
            for ((o, p), ceil) in ours.iter().zip(plevels).zip(&ceiling_eps) {
                let c = o["concurrency"].as_u64().unwrap_or(0);
                let (oe, pe) = (
                    o["events_per_s"].as_f64().unwrap_or(0.0),
                    p["events_per_s"].as_f64().unwrap_or(0.0),
                );
                r.add(
                    "handler+DynamoDB Local",
                    format!("peer (Powertools idempotent_function), c={c}: events/s | p50 | p99"),
                    format!(
                        "{pe:.0}/s | {} | {}",
                        fmt_us(p["p50_us"].as_f64().unwrap_or(0.0)),
                        fmt_us(p["p99_us"].as_f64().unwrap_or(0.0))
                    ),
                );
                r.add(
                    "handler+DynamoDB Local",
                    format!("ratio to the ceiling, c={c}: sfvapi | peer"),
                    format!(
                        "{:.2} | {:.2}",
                        if *ceil > 0.0 { oe / ceil } else { 0.0 },
                        if *ceil > 0.0 { pe / ceil } else { 0.0 }
                    ),
                );
                r.add(
                    "handler+DynamoDB Local",
                    format!("ratio sfvapi/peer, c={c}: events/s | p99 (peer/sfvapi)"),
                    format!(
                        "{:.1}× | {:.1}×",
                        if pe > 0.0 { oe / pe } else { 0.0 },
                        o["p99_us"]
                            .as_f64()
                            .map(|x| p["p99_us"].as_f64().unwrap_or(0.0) / x.max(1e-9))
                            .unwrap_or(0.0)
                    ),
                );
            }
            let fmt = |v: &Value| {
                v.as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, n)| format!("{n} {k}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default()
            };
            r.add(
                "DynamoDB requests",
                "peer per new event",
                fmt(&peer["requests_new"]),
            );
            r.add(
                "DynamoDB requests",
                "peer per duplicate",
                fmt(&peer["requests_duplicate"]),
            );
            r.json.insert("peer".into(), peer);
        }
        Err(e) => r.add("handler+DynamoDB Local", "peer", format!("not run: {e}")),
    }
    r.json.insert("sfvapi_handler".into(), Value::Array(ours));
    let elapsed = t0.elapsed();
    r.add(
        "run",
        "bench wall time",
        format!("{:.1} s", elapsed.as_secs_f64()),
    );
    r.json
        .insert("bench_wall_s".into(), json!(elapsed.as_secs_f64()));
    r.json.insert(
        "goals".into(),
        Value::Array(
            r.lines
                .iter()
                .filter_map(|l| {
                    l.met.map(
                        |m| json!({"metric": l.metric, "value": l.value, "goal": l.goal, "met": m}),
                    )
                })
                .collect(),
        ),
    );
    println!();
    r.print();
    let root = sfvapi_bench::ddb_local::repo_root();
    let dir = std::fs::canonicalize(&root)
        .unwrap_or(root)
        .join("target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let file = dir.join("results.json");
    match serde_json::to_string_pretty(&Value::Object(r.json)) {
        Ok(s) => match std::fs::write(&file, s) {
            Ok(()) => eprintln!("wrote {}", file.display()),
            Err(e) => eprintln!("could not write {}: {e}", file.display()),
        },
        Err(e) => eprintln!("could not encode results: {e}"),
    }
    std::process::ExitCode::SUCCESS
}
