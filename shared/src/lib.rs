//! sfvapi: turn Salesforce events into Vapi phone calls, and calls back into Salesforce records.
//!
//! Everything with logic lives here; the crates in `functions/` only bootstrap a Lambda and hand each
//! request to one function of this library. See `DESIGN.md` in the repository for the data model.
//!
//! # Layers
//!
//! The modules read top-down: a module may use modules of its own layer or of a lower one, never
//! of a higher one, and no two modules use each other, directly or round a circle. A module's
//! layer is that of the longest name listed here that starts its path (`policy::spec` is in
//! layer 1, `policy::ledger` in layer 2 through `policy`). `shared/tests/layering.rs` reads this
//! list and every `crate::` / `super::` path outside `#[cfg(test)]` code, and fails on an upward
//! use, a circle or a module listed nowhere; a new module gets its line here first.
//!
//! - layer 0, what everything uses: `ids`, `secrets`, `tls`, `telemetry`, `http`, `signature`, `samples`, `setup`
//! - layer 1, settings: `config`, `stack`, `routing`, `policy::spec`, `policy::window`, `policy::zones`, `policy::followup`
//! - layer 2, state and vendor clients: `store`, `queue`, `recording`, `calls`, `pacing`, `callers`, `policy`, `salesforce`, `vapi::client`, `vapi::context`, `vapi::messages`, `twilio`
//! - layer 3, the work and the HTTP apps: `jobs`, `ingest`, `relay`, `vapi`, `salesforce::lookup`, `salesforce::search`, `salesforce::connect`, `salesforce::relay_setup`, `doctor`
//! - layer 4, start-up: `bootstrap`
//!
//! Two more rules keep the top layer apart: the vendor modules (`salesforce`, `vapi`) never use
//! `jobs`, and the job handlers (`jobs::dial`, `jobs::reconcile`, `jobs::report`, `jobs::handoff`,
//! `jobs::optout`, `jobs::reroute`) never use one another: `jobs::worker` dispatches to them, and
//! what two of them share lives in `jobs::context`, `jobs::outcome`, `jobs::placed` or lower.
//! The items of this file (`now_millis`, `now_secs`) are in layer 0.

pub mod bootstrap;
pub mod callers;
pub mod calls;
pub mod config;
pub mod doctor;
pub mod http;
pub mod ids;
pub mod ingest;
pub mod jobs;
pub mod pacing;
pub mod policy;
pub mod queue;
pub mod recording;
pub mod relay;
pub mod routing;
pub mod salesforce;
pub mod samples;
pub mod secrets;
pub mod setup;
pub mod signature;
pub mod stack;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod twilio;
pub mod vapi;

/// Unix time now, in whole seconds and in milliseconds. One place, so every timestamp agrees.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn now_secs() -> i64 {
    now_millis() / 1000
}
