//! Jobs: what the worker does with each kind of job, and the worker that dispatches them.
//!
//! The job itself (its item, status and queue) lives in `crate::queue`; it is re-exported here
//! under its old paths (`jobs::JobStatus`, `jobs::queue::JobQueue`) for the tools and tests.

pub mod config;
pub mod context;
pub mod dial;
pub mod handoff;
pub mod optout;
pub mod outcome;
pub mod placed;
pub mod reconcile;
pub mod recording;
pub mod report;
pub mod reroute;
pub mod transcript;
pub mod worker;
pub mod writeback;

pub use crate::queue;
pub use crate::queue::item::*;
pub use crate::queue::skipped::*;
