//! Where `sfvapi::config::aws_sdk_config` takes the region and credentials from: the environment
//! when it holds them (Lambda: the function role's keys and `AWS_REGION`), else the SDK's
//! default chains (here: a profile in the shared config files, as on a developer's machine).
//!
//! One test in its own binary: it changes the process's environment.

use aws_credential_types::provider::ProvideCredentials;
use aws_credential_types::Credentials;

/// The SDK configuration as the functions build it: its region and the credentials it resolves.
async fn resolved() -> (Option<String>, Credentials) {
    let sdk = sfvapi::config::aws_sdk_config().await;
    let creds = sdk
        .credentials_provider()
        .expect("a credentials provider")
        .provide_credentials()
        .await
        .expect("credentials");
    (sdk.region().map(|r| r.as_ref().to_owned()), creds)
}

#[tokio::test]
async fn credentials_and_region_come_from_the_environment_else_from_the_default_chains() {
    let dir = std::env::temp_dir().join(format!("sfvapi-sdk-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("config");
    let credentials = dir.join("credentials");
    std::fs::write(&config, "[default]\nregion = ap-southeast-2\n").expect("config");
    std::fs::write(
        &credentials,
        "[default]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n",
    )
    .expect("credentials");
    std::env::set_var("AWS_CONFIG_FILE", &config);
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &credentials);
    std::env::remove_var("AWS_PROFILE");
    std::env::remove_var("AWS_DEFAULT_REGION");

    // As on Lambda: the role's temporary keys and the region in the environment win.
    std::env::set_var("AWS_ACCESS_KEY_ID", "ASIALAMBDAROLE");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "lambda-secret");
    std::env::set_var("AWS_SESSION_TOKEN", "lambda-session-token");
    std::env::set_var("AWS_REGION", "eu-west-3");
    let (region, creds) = resolved().await;
    assert_eq!(region.as_deref(), Some("eu-west-3"));
    assert_eq!(creds.access_key_id(), "ASIALAMBDAROLE");
    assert_eq!(creds.secret_access_key(), "lambda-secret");
    assert_eq!(creds.session_token(), Some("lambda-session-token"));

    // Without them, the default chains still find the profile.
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
    ] {
        std::env::remove_var(var);
    }
    let (region, creds) = resolved().await;
    assert_eq!(region.as_deref(), Some("ap-southeast-2"));
    assert_eq!(creds.access_key_id(), "AKIDPROFILE");
    let _ = std::fs::remove_dir_all(&dir);
}
