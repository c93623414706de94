//! `sfvapi-local`: run sfvapi locally (through `scripts/services.sh`, which starts DynamoDB Local
//! and moto).
//!
//! - `serve`: the whole stack — sandbox, local runner with the real handlers, stream pump — until
//!   Ctrl-C / SIGTERM; prints one JSON line with the URLs (and, with `SFVAPI_LOCAL_ENV_FILE`,
//!   writes the stack's variables there).
//! - `demo`: the scripted end-to-end flow with a timeline per event; exits 0 only if it completed.
//! - `demo-ingest`: the sample events through the ingest handler alone.
//! - `watch`: the stack's table, secrets and sandbox for `cargo lambda watch`, which it runs with
//!   their environment written to `.local/watch.env` (`make watch`, `sfvapi_local::watch`).
//!
//! Options: `--port P` (runner port, default any free one), `--timeout-secs N` (demo wait,
//! default 30), `--scenario normal|no-answer|outage|callback|event-relay|calling-policy|handoff` (also `SCENARIO`;
//! `callback` is the customer calling back, `sfvapi_local::callback`; `event-relay` runs
//! `sfvapi_local::event_relay` on a normal sandbox; `calling-policy` runs `sfvapi_local::calling_policy`; `handoff` runs `sfvapi_local::handoff`), and any `sfvapi-sandbox` flag
//! (`--deliver-twice`, `--outage-count 2`, …, or their `SANDBOX_*` variables).

mod ingest_demo;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use sfvapi_local::demo::{self, DemoOptions};
use sfvapi_local::stack::{Stack, StackConfig};

const USAGE: &str = "usage: sfvapi-local serve|demo|demo-ingest|watch [--port P] [--timeout-secs N] [--scenario normal|no-answer|outage|callback|event-relay|calling-policy|handoff] [sandbox flags]\n(run it through scripts/services.sh, or `make demo`)";

/// Demo stories that are not sandbox scenarios: the customer calling back
/// (`tools/local/src/callback.rs`) and the relayed events (`tools/local/src/event_relay.rs`).
const CALLBACK: &str = "callback";
const EVENT_RELAY: &str = "event-relay";
const CALLING_POLICY: &str = "calling-policy";
const HANDOFF: &str = "handoff";
const STORIES: [&str; 4] = [CALLBACK, EVENT_RELAY, CALLING_POLICY, HANDOFF];

struct Args {
    command: String,
    port: u16,
    timeout: Duration,
    sandbox: sandbox::Config,
    /// `SCENARIO=callback|event-relay`: a demo story of its own (not a sandbox scenario).
    story: Option<&'static str>,
}

fn parse_args(mut raw: Vec<String>) -> Result<Args, String> {
    if raw.is_empty() {
        return Err(USAGE.into());
    }
    let command = raw.remove(0);
    let mut port = 0;
    let mut timeout = Duration::from_secs(30);
    let mut rest = Vec::new();
    let story_of = |s: &str| STORIES.iter().copied().find(|k| *k == s.trim());
    let scenario = std::env::var("SCENARIO")
        .ok()
        .filter(|s| !s.trim().is_empty());
    if let Some(s) = &scenario {
        sfvapi_local::check_scenario("SCENARIO", s)?;
    }
    let mut story = scenario.and_then(|s| story_of(&s));
    let mut it = raw.into_iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (a.clone(), None),
        };
        let value = |it: &mut std::vec::IntoIter<String>| {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "--port" => {
                port = value(&mut it)?
                    .parse()
                    .map_err(|_| "--port: expected a port number".to_owned())?
            }
            "--timeout-secs" => {
                timeout = Duration::from_secs(
                    value(&mut it)?
                        .parse()
                        .map_err(|_| "--timeout-secs: expected whole seconds".to_owned())?,
                )
            }
            "--scenario" if inline.as_deref().and_then(story_of).is_some() => {
                story = inline.as_deref().and_then(story_of)
            }
            "--scenario"
                if inline.is_none()
                    && it.as_slice().first().and_then(|s| story_of(s)).is_some() =>
            {
                story = it.next().as_deref().and_then(story_of);
            }
            "--scenario" => {
                let v = value(&mut it)?;
                sfvapi_local::check_scenario("--scenario", &v)?;
                rest.push(format!("--scenario={v}"));
            }
            _ => rest.push(a),
        }
    }
    // `SCENARIO` is the short form the Makefile documents; the sandbox's own variable wins.
    let sandbox = sandbox::Config::from_args(rest, |k| {
        std::env::var(k).ok().or_else(|| {
            (k == "SANDBOX_SCENARIO")
                .then(|| std::env::var("SCENARIO").ok())
                .flatten()
                .filter(|s| !STORIES.contains(&s.trim()))
        })
    })
    .map_err(|e| match e {
        sandbox::ConfigError::Help => format!("{USAGE}\n\n{}", sandbox::config::usage()),
        e => e.to_string(),
    })?;
    Ok(Args {
        command,
        port,
        timeout,
        sandbox,
        story,
    })
}

fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1).collect()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let command = args.command.clone();
    let result = match command.as_str() {
        "serve" => {
            init_logs("info");
            serve(args).await
        }
        "demo" => {
            // The callback story has an unidentified caller whose tool call is (rightly) answered
            // with an error, which the fake Vapi reports as a warning: not news in that demo.
            init_logs(if args.story == Some(CALLBACK) {
                "warn,sandbox=error"
            } else {
                "warn"
            });
            // The EMF metric lines would drown the timeline on stdout.
            std::env::set_var("SFVAPI_NO_METRICS", "1");
            let opts = DemoOptions {
                sandbox: args.sandbox,
                timeout: args.timeout,
            };
            if args.story == Some(CALLBACK) {
                sfvapi_local::callback::run(opts).await
            } else if args.story == Some(EVENT_RELAY) {
                sfvapi_local::event_relay::run(opts).await
            } else if args.story == Some(CALLING_POLICY) {
                sfvapi_local::calling_policy::run(opts).await
            } else if args.story == Some(HANDOFF) {
                sfvapi_local::handoff::run(opts).await
            } else {
                demo::run(opts).await
            }
        }
        "demo-ingest" => ingest_demo::run().await,
        "watch" => {
            init_logs("warn");
            watch(args).await
        }
        _ => Err(USAGE.into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\n{command} failed:\n{e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: Args) -> Result<(), String> {
    let config = StackConfig {
        runner_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.port),
        sandbox: args.sandbox,
        ..StackConfig::default()
    };
    let stack = Stack::start(config).await.map_err(|e| e.to_string())?;
    // `SFVAPI_LOCAL_ENV_FILE=PATH`: the stack's variables as `KEY=VALUE` lines, for commands run
    // beside it (`sfvapi-admin setup` / `doctor`, scripts/first-call.sh).
    if let Ok(path) = std::env::var("SFVAPI_LOCAL_ENV_FILE") {
        let text: String = stack
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        std::fs::write(&path, text).map_err(|e| format!("{path}: {e}"))?;
    }
    println!("{}", stack.urls_json());
    wait_for_signal().await;
    eprintln!("stopping");
    stack.shutdown().await;
    Ok(())
}

/// `make watch`: the local stack, its environment written to `.local/watch.env`, and
/// `cargo lambda watch --env-file` on it until Ctrl-C or SIGTERM, which stop both.
async fn watch(args: Args) -> Result<(), String> {
    let config = StackConfig {
        runner_addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.port),
        sandbox: args.sandbox,
        ..StackConfig::default()
    };
    let stack = Stack::start(config).await.map_err(|e| e.to_string())?;
    let path = sfvapi_local::watch::ENV_FILE;
    if let Some(dir) = std::path::Path::new(path).parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, sfvapi_local::watch::env_file(&stack.env))
        .map_err(|e| format!("{path}: {e}"))?;
    eprintln!(
        "local stack up (table {}); the functions' environment is in {path}\n         invoke with: make invoke FN=salesforce-ingest EVENT=salesforce-new-event.json",
        stack.table
    );
    let mut child = tokio::process::Command::new("cargo")
        .args(["lambda", "watch", "--env-file", path])
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!(
                "cargo lambda watch: {e} (is .tools/venv/bin on PATH? `make watch` puts it there)"
            )
        })?;
    let outcome = tokio::select! {
        status = child.wait() => match status {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("cargo lambda watch ended: {s}")),
            Err(e) => Err(format!("cargo lambda watch: {e}")),
        },
        () = wait_for_signal() => {
            eprintln!("stopping");
            Ok(())
        }
    };
    // SIGTERM first, so cargo lambda watch stops the functions it started; then for sure.
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .await;
    }
    if tokio::time::timeout(std::time::Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    stack.shutdown().await;
    outcome
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
