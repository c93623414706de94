//! Everything Vapi: the server messages it sends us (`messages`), the webhook that answers them
//! (`webhook`, with the built-in `tools`), the job items it writes (`jobs`), its settings
//! (`config`), the `POST /call` client (`client`), and the answer to an inbound call's
//! `assistant-request` (`inbound`).

pub mod client;
pub mod config;
pub mod context;
pub mod inbound;
pub mod jobs;
pub mod messages;
pub mod setup;
pub mod tools;
pub mod transfer;
pub mod webhook;
