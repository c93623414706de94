//! sfvapi-bench: the harness shared by `make bench` (`sfvapi-bench`), the full reliability suite
//! (`sfvapi-reliability`) and its short form in `tests/` (run by `make test`).
//!
//! Everything runs on loopback: DynamoDB Local and moto from `scripts/services.sh` (reached through
//! the AWS SDK's endpoint variables), wiremock servers that answer like Salesforce, Vapi and Twilio,
//! and a minimal Lambda Runtime API for the release binaries. Every loop is bounded in count and
//! time.

pub mod callback;
pub mod ddb_local;
pub mod harness;
pub mod policy;
pub mod relay;
pub mod reliability;
pub mod runtime_api;
pub mod stats;
pub mod transfer;
