//! sfvapi-local: the real handlers run locally as one stack, for `make demo` and the e2e test.
//!
//! - [`runner`]: the Lambdas' HTTP handlers (`IngestApp`, `VapiWebhookApp`, the refresher's
//!   connect routes) served over real HTTP on loopback, each request converted into the exact
//!   API Gateway HTTP API v2 event the function would get.
//! - [`pump`]: the DynamoDB stream → job worker event source mapping (filter, batches, partial
//!   batch failures and redelivery), plus the retry-sweep tick and the refresher's first run.
//! - [`stack`]: starts the sandbox, the table and secrets, the runner and the pump together.
//! - [`demo`] and [`timeline`]: the scripted flow and its per-event timeline.
//! - [`pacing`]: many events against a small Vapi concurrency limit (e2e and `make bench`).
//! - [`callback`]: the customer calls back (`make demo SCENARIO=callback`, e2e and `make bench`).
//! - [`event_relay`]: `SCENARIO=event-relay`, the relayed samples through the relay handler.
//! - [`calling_policy`]: `SCENARIO=calling-policy`, the calling policy's paths (window, consent,
//!   retry cadence, cap, opt-out) with a moved policy clock.
//!
//! # Why a local runner and not `cargo lambda watch`
//! `cargo lambda watch` emulates the Lambda runtime API per function: one process and one build
//! per function, its own ports, and for the stream-driven worker nothing at all (there is no local
//! DynamoDB stream event source; `sam local` would need Docker, which this machine and CI lack).
//! The runner calls the very same library functions the bootstraps in `functions/*` call, behind
//! the same API Gateway v2 event shape, so what is tested is the handler code, not an emulator:
//! one process, one build, ports chosen by the OS and printed (no collisions between parallel
//! runs), and the e2e test starts the whole stack in-process and tears it down deterministically.
//! What it does not cover — the bootstrap `main.rs` files and the runtime API — is a few lines
//! each, exercised by `cargo lambda invoke` against `events/`.

pub mod callback;
pub mod calling_policy;
pub mod demo;
pub mod event_relay;
pub mod handoff;
pub mod pacing;
pub mod pump;
pub mod runner;
pub mod stack;
pub mod timeline;
pub mod watch;

/// Every value `SCENARIO` (or `--scenario`) takes: the sandbox's scenarios, then the demo
/// stories of their own (`callback`, `event-relay`, `calling-policy`, `handoff`). The sandbox's
/// `opt-out` and `transfer` serve the stories and tests (`SANDBOX_SCENARIO`), not the demo's
/// own checks.
pub const SCENARIOS: [&str; 7] = [
    "normal",
    "no-answer",
    "outage",
    "callback",
    "event-relay",
    "calling-policy",
    "handoff",
];

/// `Ok` when `value` is one of [`SCENARIOS`]; else what to do, naming where the value came from
/// (`SCENARIO`, `--scenario`) and every scenario.
pub fn check_scenario(source: &str, value: &str) -> Result<(), String> {
    if SCENARIOS.contains(&value.trim()) {
        return Ok(());
    }
    Err(format!(
        "{source} = {value:?} is not a scenario: use one of {} (e.g. make demo SCENARIO=no-answer)",
        SCENARIOS.join(", ")
    ))
}
