//! `sfvapi-admin setup vapi` with a server secret that has no `server_secrets` (issue 22): one of
//! 48 random characters is generated and stored next to the `context_key`, which is kept; a dry
//! run stores nothing; a filled secret is used as it is. Against moto:
//! `scripts/services.sh cargo test -p sfvapi-local --test setup_secret`.

use std::time::Duration;

use serde_json::{json, Value};
use sfvapi::secrets::SecretsCache;
use sfvapi::vapi::setup::{server_secret, GENERATED_SECRET_CHARS};

const CONTEXT_KEY: &str = "context-key-context-key-context-key-0001";

async fn stored(cache: &SecretsCache, arn: &str) -> Value {
    serde_json::from_str(&cache.get_uncached(arn).await.expect("read")).expect("JSON")
}

#[tokio::test]
async fn an_empty_server_secret_is_generated_and_stored_next_to_the_context_key() {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER").is_ok(),
        "run through scripts/services.sh, which starts moto"
    );
    let sdk = sfvapi::config::aws_sdk_config().await;
    let client = sfvapi::config::secrets_client(&sdk);
    let name = format!("sfvapi/test/setup-secret-{}", sfvapi::now_millis());
    let arn = client
        .create_secret()
        .name(&name)
        .secret_string(json!({"context_key": CONTEXT_KEY}).to_string())
        .send()
        .await
        .expect("moto creates the secret")
        .arn()
        .map(str::to_owned)
        .unwrap_or(name);
    let cache = SecretsCache::new(client, Duration::ZERO);

    // A dry run generates one to show, and stores nothing.
    let (_, generated) = server_secret(&cache, &arn, true).await.expect("dry run");
    assert!(generated);
    assert_eq!(
        stored(&cache, &arn).await,
        json!({"context_key": CONTEXT_KEY})
    );

    let (secret, generated) = server_secret(&cache, &arn, false).await.expect("generated");
    assert!(generated);
    assert_eq!(secret.expose().chars().count(), GENERATED_SECRET_CHARS);
    assert!(secret.expose().chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(
        stored(&cache, &arn).await,
        json!({"context_key": CONTEXT_KEY, "server_secrets": [secret.expose()]})
    );

    // The next run uses it as it is.
    let (again, generated) = server_secret(&cache, &arn, false).await.expect("read");
    assert!(!generated);
    assert_eq!(again.expose(), secret.expose());
}
