//! The set-ups sfvapi's tests share, so that each test file reads as given / when / then.
//!
//! A dev-dependency of `shared` (the `sfvapi` crate) and of `tools/*`, for integration tests
//! (`tests/*.rs`) only: a unit test inside `shared/src` would see a second copy of `sfvapi`.
//! Everything is re-exported at the root, so a test file starts with
//! `use sfvapi_test_support::*;`.
//!
//! | module | what it sets up |
//! | --- | --- |
//! | [`services`] | DynamoDB Local and moto as `scripts/services.sh` starts them: a fresh table ([`fresh_store`]), secrets ([`create_secret`], [`read_secret`], [`secrets_cache`]), Secrets Manager failing writes ([`secrets_cache_failing_puts`]) |
//! | [`items`] | raw writes to an item as time or another writer would make them: [`age`] a job (its `next_at` / `lease_until` in the past), [`set_status`], any [`raw_update`] |
//! | [`logs`] | the JSON log lines a handler writes ([`LogCapture`]) |
//! | [`http`] | API Gateway v2 requests for the handlers ([`request`]) and their answers ([`answer`]); the fixtures in `shared/tests/fixtures` ([`fixture`], [`fixture_json`]) |
//! | [`ingest`] | the Salesforce ingest app on a fresh table ([`ingest()`]) and requests signed as sfvapi's Salesforce package signs them ([`signed_event`]) |
//! | [`vapi`] | server messages signed with Vapi's HMAC credential ([`vapi_signed_now`], [`vapi_hmac_headers`], [`vapi_webhook_request`]), the signed call context ([`sign_call_context`]), the webhook app ([`vapi_webhook_app`]) |
//! | [`world`] (`use sfvapi_test_support::world::*;`) | the job worker's world: a table, secrets, wiremock Salesforce / Vapi / Twilio, the worker, [`world::deliver`] |
//! | [`salesforce`] | a Salesforce connection's config and secret, token answers and token items ([`seed_sf_token`], [`seed_live_token`]), the Contact query ([`contact_query_mock`]) |
//! | [`mock`] | wiremock servers answering like the vendors: [`mount`] a route, read what a route received ([`received_on`], [`posts_to`], [`form_of`]), vendors' error bodies ([`json_error`]) |
//! | [`sandbox_server`] (feature `sandbox`; `use sfvapi_test_support::sandbox_server::*;`) | the sandbox (fake Salesforce, Vapi, Twilio) in-process on free ports: [`sandbox_server::start`], its request log, its control endpoint, a Salesforce token |

pub mod http;
pub mod ingest;
pub mod items;
pub mod logs;
pub mod mock;
pub mod salesforce;
#[cfg(feature = "sandbox")]
pub mod sandbox_server;
pub mod services;
pub mod vapi;
pub mod world;

pub use http::*;
pub use ingest::*;
pub use items::*;
pub use logs::*;
pub use mock::*;
pub use salesforce::*;
pub use services::*;
pub use vapi::*;
