//! sfvapi: turn Salesforce events into Vapi phone calls, and calls back into Salesforce records.
//!
//! Everything with logic lives here; the crates in `functions/` only bootstrap a Lambda and hand each
//! request to one function of this library. See `DESIGN.md` in the repository for the data model.

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
pub mod recording;
pub mod relay;
pub mod routing;
pub mod salesforce;
pub mod samples;
pub mod secrets;
pub mod signature;
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
