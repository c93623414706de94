//! Everything Salesforce: the events it sends us (`events`), OAuth flows (`oauth`), the shared
//! token cache (`token`), the REST client (`rest`), finding a caller by phone number (`search`),
//! setting up Event Relay through the Tooling API (`relay_setup`)
//! and the token refresher / connect routes (`connect`).

pub mod connect;
pub mod consent;
pub mod events;
pub mod files;
pub mod lookup;
pub mod oauth;
pub mod owner;
pub mod relay_setup;
pub mod rest;
pub mod search;
pub mod token;

use std::sync::Arc;

use crate::config::{ConfigError, SalesforceConfig};
use crate::secrets::SecretsCache;
use crate::store::Store;

/// The HTTP client for Salesforce: rustls, a connect timeout and a whole-request timeout. Built
/// once per cold start so connections are reused across warm invocations.
pub fn http_client(config: &SalesforceConfig) -> Result<reqwest::Client, ConfigError> {
    crate::tls::reqwest_builder()
        .connect_timeout(std::time::Duration::from_secs(3).min(config.http_timeout))
        .timeout(config.http_timeout)
        .pool_idle_timeout(std::time::Duration::from_secs(50))
        .user_agent(concat!("sfvapi/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ConfigError::Invalid {
            var: "SF_HTTP_TIMEOUT_SECS",
            reason: format!("cannot build the HTTP client: {e}"),
        })
}

/// One connection's token cache and REST client, sharing one HTTP client.
#[derive(Clone)]
pub struct Connection {
    pub tokens: Arc<token::TokenProvider>,
    pub rest: rest::SalesforceClient,
}

impl Connection {
    pub fn new(
        config: SalesforceConfig,
        store: Store,
        secrets: SecretsCache,
    ) -> Result<Self, ConfigError> {
        Self::build(config, store, secrets, token::TokenProvider::new)
    }

    /// A connection that only reads the shared token item and never refreshes (no connection
    /// secret: see [`token::TokenProvider::reader`]).
    pub fn token_reader(
        config: SalesforceConfig,
        store: Store,
        secrets: SecretsCache,
    ) -> Result<Self, ConfigError> {
        Self::build(config, store, secrets, token::TokenProvider::reader)
    }

    fn build(
        config: SalesforceConfig,
        store: Store,
        secrets: SecretsCache,
        provider: fn(Store, SecretsCache, oauth::OAuthClient) -> token::TokenProvider,
    ) -> Result<Self, ConfigError> {
        let http = http_client(&config)?;
        let oauth = oauth::OAuthClient::new(http.clone(), Arc::new(config));
        let tokens = Arc::new(provider(store, secrets, oauth));
        Ok(Self {
            rest: rest::SalesforceClient::new(http, tokens.clone()),
            tokens,
        })
    }
}
