//! The one HTTP/TLS stack of every function: rustls on ring, for the AWS SDK and for reqwest
//! (Salesforce, Vapi, Twilio). Built here so no client is made without it.

use std::sync::Once;

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// The AWS SDK's HTTPS client (hyper 1 + rustls on ring), for `SdkConfig::http_client`.
pub fn aws_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// A reqwest client builder on the same stack: ring is installed as rustls' process-wide
/// provider first (reqwest is built without one of its own).
pub fn reqwest_builder() -> reqwest::ClientBuilder {
    static PROVIDER: Once = Once::new();
    PROVIDER.call_once(|| {
        // Err only if another provider was installed first, which is then used: fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::builder()
}
