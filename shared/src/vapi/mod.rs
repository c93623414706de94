//! Everything Vapi: the server messages it sends us (`messages`), the webhook that answers them
//! (`webhook`, with the built-in `tools`), the job items it writes (`jobs`), its settings
//! (`config`), and the `POST /call` client (`client`).

pub mod client;
pub mod config;
pub mod context;
pub mod jobs;
pub mod messages;
pub mod tools;
pub mod webhook;
