//! Each OAuth flow sends exactly what Salesforce's token endpoint expects, and answers are parsed
//! the Salesforce way (no `expires_in`; `issued_at` ms as a string; introspection `exp`).
//! Salesforce is a wiremock server on loopback.

use std::sync::Arc;

use sfvapi::salesforce::oauth::{
    s256, ConnectionSecret, JwtClaims, OAuthClient, OAuthErrorCode, TokenError, JWT_BEARER_GRANT,
};
use sfvapi_test_support::*;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN_PATH: &str = "/services/oauth2/token";

fn secret(v: serde_json::Value) -> ConnectionSecret {
    serde_json::from_value(v).unwrap()
}

fn client(cfg: sfvapi::config::SalesforceConfig) -> OAuthClient {
    let http = sfvapi::salesforce::http_client(&cfg).unwrap();
    OAuthClient::new(http, Arc::new(cfg))
}

async fn token_server(answer: serde_json::Value) -> MockServer {
    let server = MockServer::start().await;
    sf_token_answers(&server, json_answer(200, answer)).await;
    server
}

fn fixture_token() -> serde_json::Value {
    serde_json::from_slice(&fixture("salesforce/token-refresh-response.json")).unwrap()
}

#[tokio::test]
async fn refresh_token_flow_posts_the_refresh_grant_form() {
    let server = token_server(fixture_token()).await;
    let oauth = client(sf_config(&server.uri(), "arn", &[]));
    let grant = oauth.grant(&secret(sf_secret_json())).await.unwrap();
    assert_eq!(
        grant.token.access_token.expose(),
        "00D5e000000AbCd!AQ0AQFakeAccessTokenForTestsOnly"
    );
    let reqs = received_on(&server, TOKEN_PATH).await;
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(
        r.headers.get("content-type").unwrap().to_str().unwrap(),
        "application/x-www-form-urlencoded"
    );
    let form = form_of(r);
    assert_eq!(form.get("grant_type").unwrap(), "refresh_token");
    assert_eq!(form.get("refresh_token").unwrap(), SF_REFRESH_TOKEN);
    assert_eq!(form.get("client_id").unwrap(), SF_CLIENT_ID);
    assert_eq!(form.get("client_secret").unwrap(), SF_CLIENT_SECRET);
    assert_eq!(form.len(), 4, "{form:?}");
}

#[tokio::test]
async fn client_credentials_posts_to_my_domain_not_login() {
    let login = token_server(fixture_token()).await;
    let my_domain = token_server(fixture_token()).await;
    let oauth = client(sf_config(
        &login.uri(),
        "arn",
        &[
            ("SF_AUTH_FLOW", "client_credentials"),
            ("SF_MY_DOMAIN_URL", &my_domain.uri()),
        ],
    ));
    oauth.grant(&secret(sf_secret_json())).await.unwrap();
    assert!(received_on(&login, TOKEN_PATH).await.is_empty());
    let reqs = received_on(&my_domain, TOKEN_PATH).await;
    assert_eq!(reqs.len(), 1);
    let form = form_of(&reqs[0]);
    assert_eq!(form.get("grant_type").unwrap(), "client_credentials");
    assert_eq!(form.get("client_id").unwrap(), SF_CLIENT_ID);
    assert_eq!(form.get("client_secret").unwrap(), SF_CLIENT_SECRET);
    assert!(!form.contains_key("refresh_token"));
}

#[tokio::test]
async fn jwt_bearer_assertion_has_the_claims_salesforce_checks() {
    let server = token_server(fixture_token()).await;
    let oauth = client(sf_config(
        &server.uri(),
        "arn",
        &[("SF_AUTH_FLOW", "jwt_bearer")],
    ));
    let pem = String::from_utf8(fixture("salesforce/jwt-test-only-private-key.pem")).unwrap();
    let s = secret(serde_json::json!({
        "client_id": SF_CLIENT_ID,
        "private_key_pem": pem,
        "username": "integration@example.com"
    }));
    let before = sfvapi::now_secs();
    oauth.grant(&s).await.unwrap();
    let reqs = received_on(&server, TOKEN_PATH).await;
    assert_eq!(reqs.len(), 1);
    let form = form_of(&reqs[0]);
    assert_eq!(form.get("grant_type").unwrap(), JWT_BEARER_GRANT);
    assert_eq!(form.len(), 2, "only grant_type and assertion: {form:?}");
    let assertion = form.get("assertion").unwrap();

    let public = fixture("salesforce/jwt-test-only-public-key.pem");
    let key = jsonwebtoken::DecodingKey::from_rsa_pem(&public).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    // The token request goes to SF_LOGIN_URL (this server), but `aud` is Salesforce's audience,
    // never the token endpoint (https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_jwt_flow.htm&type=5).
    validation.set_audience(&["https://login.salesforce.com"]);
    validation.set_issuer(&[SF_CLIENT_ID]);
    validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
    let data = jsonwebtoken::decode::<JwtClaims>(assertion, &key, &validation).unwrap();
    assert_eq!(data.header.alg, jsonwebtoken::Algorithm::RS256);
    assert_eq!(data.claims.sub, "integration@example.com");
    assert_eq!(data.claims.aud, "https://login.salesforce.com");
    assert!(data.claims.exp > before, "exp in the future");
    assert!(
        data.claims.exp <= sfvapi::now_secs() + 180,
        "exp at most 3 minutes ahead"
    );

    // A different key must not verify it (the test would pass with any signature otherwise).
    let other = jsonwebtoken::DecodingKey::from_secret(b"x");
    assert!(jsonwebtoken::decode::<JwtClaims>(assertion, &other, &validation).is_err());
}

#[tokio::test]
async fn jwt_bearer_without_a_key_is_a_terminal_config_error() {
    let oauth = client(sf_config(
        "http://127.0.0.1:9",
        "arn",
        &[("SF_AUTH_FLOW", "jwt_bearer")],
    ));
    let err = oauth
        .grant(&secret(
            serde_json::json!({"client_id": "x", "username": "u"}),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TokenError::MissingCredential {
                what: "private_key_pem",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_terminal());
}

#[tokio::test]
async fn authorization_code_exchange_sends_code_verifier_and_redirect_uri() {
    let mut answer = fixture_token();
    answer["refresh_token"] = "5Aep-new-refresh-token".into();
    let server = token_server(answer).await;
    let oauth = client(sf_config(&server.uri(), "arn", &[]));
    let grant = oauth
        .exchange_code(
            &secret(sf_secret_json()),
            "aPrx-code",
            "verifier-0123456789-0123456789-0123456789-abc",
            "https://api.example.com/oauth/salesforce/callback",
        )
        .await
        .unwrap();
    assert_eq!(
        grant.refresh_token.unwrap().expose(),
        "5Aep-new-refresh-token"
    );
    let form = form_of(&received_on(&server, TOKEN_PATH).await[0]);
    assert_eq!(form.get("grant_type").unwrap(), "authorization_code");
    assert_eq!(form.get("code").unwrap(), "aPrx-code");
    assert_eq!(
        form.get("code_verifier").unwrap(),
        "verifier-0123456789-0123456789-0123456789-abc"
    );
    assert_eq!(
        form.get("redirect_uri").unwrap(),
        "https://api.example.com/oauth/salesforce/callback"
    );
    assert_eq!(form.get("client_id").unwrap(), SF_CLIENT_ID);
    assert_eq!(form.get("client_secret").unwrap(), SF_CLIENT_SECRET);
}

#[tokio::test]
async fn authorize_url_carries_pkce_s256_and_state() {
    let oauth = client(sf_config("https://login.salesforce.com", "arn", &[]));
    let u = url::Url::parse(&oauth.authorize_url(
        SF_CLIENT_ID,
        "https://api.example.com/oauth/salesforce/callback",
        "state-123",
        &s256("the-verifier"),
    ))
    .unwrap();
    assert_eq!(u.path(), "/services/oauth2/authorize");
    let q: std::collections::HashMap<_, _> = u.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], SF_CLIENT_ID);
    assert_eq!(q["state"], "state-123");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"], s256("the-verifier"));
    assert_eq!(q["scope"], "api refresh_token");
}

#[tokio::test]
async fn expiry_without_expires_in_is_issued_at_plus_session_timeout() {
    // The fixture has no expires_in and issued_at "1795690000000".
    let server = token_server(fixture_token()).await;
    let oauth = client(sf_config(
        &server.uri(),
        "arn",
        &[("SF_SESSION_TIMEOUT_SECS", "3600")],
    ));
    let t = oauth.grant(&secret(sf_secret_json())).await.unwrap().token;
    assert_eq!(t.issued_at_ms, 1_795_690_000_000);
    assert_eq!(t.expires_at_ms, 1_795_690_000_000 + 3_600_000);
    assert_eq!(t.instance_url, "https://example.my.salesforce.com");
    // The default is the org default of 2 hours.
    let oauth = client(sf_config(&server.uri(), "arn", &[]));
    let t = oauth.grant(&secret(sf_secret_json())).await.unwrap().token;
    assert_eq!(t.expires_at_ms, 1_795_690_000_000 + 7_200_000);
}

#[tokio::test]
async fn introspection_exp_sets_the_expiry() {
    let server = token_server(fixture_token()).await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/introspect"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "active": true, "scope": "api refresh_token", "client_id": SF_CLIENT_ID,
            "username": "u@example.com", "sub": "https://login.salesforce.com/id/00D/005",
            "token_type": "access_token", "exp": 1_795_691_800i64, "iat": 1_795_690_000i64,
            "nbf": 1_795_690_000i64
        })))
        .expect(1)
        .mount(&server)
        .await;
    let oauth = client(sf_config(
        &server.uri(),
        "arn",
        &[("SF_TOKEN_INTROSPECTION", "true")],
    ));
    let t = oauth.grant(&secret(sf_secret_json())).await.unwrap().token;
    assert_eq!(t.expires_at_ms, 1_795_691_800_000);
    let form = form_of(&received_on(&server, "/services/oauth2/introspect").await[0]);
    assert_eq!(
        form.get("token").unwrap(),
        "00D5e000000AbCd!AQ0AQFakeAccessTokenForTestsOnly"
    );
    assert_eq!(form.get("token_type_hint").unwrap(), "access_token");
    assert_eq!(form.get("client_id").unwrap(), SF_CLIENT_ID);
}

#[tokio::test]
async fn token_errors_are_typed_terminal_or_retryable() {
    let server = MockServer::start().await;
    sf_token_answers(
        &server,
        fixture_answer(400, "salesforce/token-invalid-grant.json"),
    )
    .await;
    let oauth = client(sf_config(&server.uri(), "arn", &[]));
    let err = oauth.grant(&secret(sf_secret_json())).await.unwrap_err();
    match &err {
        TokenError::Rejected { status, code, .. } => {
            assert_eq!(*status, 400);
            assert_eq!(*code, OAuthErrorCode::InvalidGrant);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_terminal());
    assert!(!err.to_string().contains(SF_REFRESH_TOKEN));

    let server = MockServer::start().await;
    sf_token_answers(
        &server,
        ResponseTemplate::new(503).set_body_string("<html>maintenance</html>"),
    )
    .await;
    let err = client(sf_config(&server.uri(), "arn", &[]))
        .grant(&secret(sf_secret_json()))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");

    let server = MockServer::start().await;
    sf_token_answers(
        &server,
        ResponseTemplate::new(200)
            .set_body_json(fixture_token())
            .set_delay(std::time::Duration::from_secs(3)),
    )
    .await;
    let err = client(sf_config(
        &server.uri(),
        "arn",
        &[("SF_HTTP_TIMEOUT_SECS", "1")],
    ))
    .grant(&secret(sf_secret_json()))
    .await
    .unwrap_err();
    assert!(matches!(err, TokenError::Timeout), "{err:?}");
    assert!(err.is_retryable());
}
