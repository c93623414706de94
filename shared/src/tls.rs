//! The one HTTP/TLS stack of every function: rustls on ring, for the AWS SDK and for reqwest
//! (Salesforce, Vapi, Twilio), both trusting the platform's root certificates.
//!
//! Why reqwest's roots are read here: left alone, every reqwest client (through
//! rustls-platform-verifier) reads and parses the platform's whole store when it is built, and
//! the job worker builds three (Salesforce, Vapi, Twilio) beside the SDK's own: four reads of the
//! store in its cold start, each ~150 certificates decoded from PEM and parsed (`make bench`,
//! cold init). Here the store is read once per process, on the first reqwest client, and every
//! client shares one rustls configuration. The SDK's client keeps its own read (its connector
//! takes no parsed roots, only PEM it would decode and parse again). Both read the same store
//! the same way (rustls-native-certs: `SSL_CERT_FILE` / `SSL_CERT_DIR` when set, else the
//! platform's bundle and certificate directories), so an operator's CA reaches both.

use std::sync::{Arc, LazyLock};

use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use rustls::RootCertStore;

/// The AWS SDK's HTTPS client (hyper 1 + rustls on ring, the platform's roots), for
/// `SdkConfig::http_client`.
pub fn aws_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The platform's root certificates, read once per process on first use.
pub fn platform_roots() -> Arc<RootCertStore> {
    static ROOTS: LazyLock<Arc<RootCertStore>> = LazyLock::new(|| {
        let loaded = rustls_native_certs::load_native_certs();
        if !loaded.errors.is_empty() {
            tracing::warn!(errors = ?loaded.errors, "some root certificates could not be read");
        }
        let mut store = RootCertStore::empty();
        let (_, unusable) = store.add_parsable_certificates(loaded.certs);
        if store.is_empty() {
            // Not fatal: local runs talk plain HTTP to loopback; every HTTPS call would fail
            // with an unknown-issuer error that this line explains.
            tracing::warn!(
                unusable,
                "no trusted root certificates found: HTTPS calls will fail (set SSL_CERT_FILE)"
            );
        }
        Arc::new(store)
    });
    ROOTS.clone()
}

/// The TLS settings of every reqwest client, built once: ring, TLS 1.2/1.3, [`platform_roots`].
fn reqwest_tls() -> &'static rustls::ClientConfig {
    static CONFIG: LazyLock<rustls::ClientConfig> = LazyLock::new(|| {
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring's provider supports TLS 1.2 and 1.3")
        .with_root_certificates(platform_roots())
        .with_no_client_auth()
    });
    &CONFIG
}

/// A reqwest client builder on the same stack (reqwest is built without a provider or roots of
/// its own): every client of the process shares one rustls configuration and its roots.
pub fn reqwest_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().tls_backend_preconfigured(reqwest_tls().clone())
}
