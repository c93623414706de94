//! The token-refresher function's logic, driven with the events Lambda delivers: the scheduled
//! refresh (margin, terminal errors + metric) and the one-time connect (operator key, PKCE,
//! single-use state).

use std::collections::HashMap;

use serde_json::{json, Value};
use sfvapi::config::{Env, TokenRefresherConfig};
use sfvapi::salesforce::connect::{state_pk, RefresherApp};
use sfvapi::salesforce::oauth::{s256, TokenError};
use sfvapi::salesforce::token::read_item;
use sfvapi::store::Store;
use sfvapi_test_support::SF_TOKEN_PATH as TOKEN_PATH;
use sfvapi_test_support::*;
use wiremock::MockServer;

const REDIRECT: &str = "https://api.example.com/oauth/salesforce/callback";

struct Refresher {
    app: RefresherApp,
    store: Store,
    arn: String,
}

async fn refresher(server: &MockServer) -> Refresher {
    let (store, _) = fresh_store().await;
    let arn = create_secret(&sf_secret_json()).await;
    let operator_arn = create_secret(&json!({"operator_key": SF_OPERATOR_KEY})).await;
    let map: HashMap<String, String> = HashMap::from([
        ("TABLE_NAME".into(), store.table().into()),
        ("SF_LOGIN_URL".into(), server.uri()),
        ("SF_CONNECTION_SECRET_ARN".into(), arn.clone()),
        ("SF_OPERATOR_SECRET_ARN".into(), operator_arn),
        ("SF_OAUTH_REDIRECT_URI".into(), REDIRECT.into()),
    ]);
    let config = TokenRefresherConfig::from_env(&Env::new(move |k| map.get(k).cloned())).unwrap();
    let app = RefresherApp::new(config, store.clone(), secrets_cache().await).unwrap();
    Refresher { app, store, arn }
}

fn scheduled_event() -> Value {
    json!({
        "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2026-11-26T12:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/sfvapi-token-refresh"],
        "detail": {}
    })
}

fn http_event(path_: &str, query: &str, headers: &[(&str, &str)]) -> Value {
    let mut e = sfvapi::http::apigw_v2_event("GET", path_, headers, b"", false);
    e["rawQueryString"] = query.into();
    e["routeKey"] = format!("GET {path_}").into();
    e
}

#[tokio::test]
async fn schedule_refreshes_only_when_less_than_the_margin_is_left() {
    let server = MockServer::start().await;
    mount_sf_token(&server, "new-token").await;
    let r = refresher(&server).await;

    // 30 minutes left, margin 15: nothing to do.
    seed_sf_token(
        &r.store,
        "default",
        "old-token",
        &server.uri(),
        sfvapi::now_millis() + 30 * 60_000,
        4,
    )
    .await;
    let out = r.app.handle(scheduled_event()).await.unwrap();
    assert_eq!(out["connections"][0]["status"], "fresh", "{out}");
    assert!(received_on(&server, TOKEN_PATH).await.is_empty());

    // 10 minutes left: refresh, version + 1.
    seed_sf_token(
        &r.store,
        "default",
        "old-token",
        &server.uri(),
        sfvapi::now_millis() + 10 * 60_000,
        4,
    )
    .await;
    let out = r.app.handle(scheduled_event()).await.unwrap();
    assert_eq!(out["connections"][0]["status"], "refreshed", "{out}");
    assert_eq!(received_on(&server, TOKEN_PATH).await.len(), 1);
    let item = read_item(&r.store, "default").await.unwrap().unwrap();
    assert_eq!(item.token.access_token.expose(), "new-token");
    assert_eq!(item.version, 5);
    assert!(item.token.expires_at_ms > sfvapi::now_millis() + 7_000_000);
}

#[tokio::test]
async fn schedule_with_invalid_grant_returns_the_terminal_error_and_emits_the_metric() {
    sfvapi::telemetry::capture_metrics();
    let server = MockServer::start().await;
    sf_token_answers(
        &server,
        fixture_answer(400, "salesforce/token-invalid-grant.json"),
    )
    .await;
    let r = refresher(&server).await;
    let reports = r.app.run_schedule().await;
    assert_eq!(reports.len(), 1);
    let err = reports[0].result.as_ref().unwrap_err();
    assert!(matches!(err, TokenError::Rejected { .. }), "{err:?}");
    assert!(err.is_terminal());
    assert_eq!(
        received_on(&server, TOKEN_PATH).await.len(),
        1,
        "no retry loop"
    );
    assert!(
        sfvapi::telemetry::captured_metrics().contains(&"token_refresh_terminal_error".to_owned())
    );
    // Through the Lambda entry point the run answers (no invocation error → no async retries).
    let out = r.app.handle(scheduled_event()).await.unwrap();
    assert_eq!(out["connections"][0]["status"], "terminal_error", "{out}");
}

#[tokio::test]
async fn unknown_events_are_rejected() {
    let server = MockServer::start().await;
    let r = refresher(&server).await;
    assert!(r.app.handle(json!({"hello": "world"})).await.is_err());
    let out = r.app.handle(json!({"action": "refresh"})).await.unwrap();
    assert!(out["connections"][0]["status"].is_string(), "{out}");
}

#[tokio::test]
async fn login_requires_the_operator_key() {
    let server = MockServer::start().await;
    let r = refresher(&server).await;
    for (query, headers) in [
        ("", vec![]),
        ("key=wrong", vec![]),
        ("", vec![("x-sfvapi-operator-key", "wrong")]),
    ] {
        let out = r
            .app
            .handle(http_event("/oauth/salesforce/login", query, &headers))
            .await
            .unwrap();
        assert_eq!(out["statusCode"], 403, "{query} {headers:?}");
        assert!(out["headers"].get("location").is_none());
    }
}

/// Start a connect; returns (state, code_challenge) from the redirect.
async fn start_connect(r: &Refresher) -> (String, String) {
    let out = r
        .app
        .handle(http_event(
            "/oauth/salesforce/login",
            "",
            &[("x-sfvapi-operator-key", SF_OPERATOR_KEY)],
        ))
        .await
        .unwrap();
    assert_eq!(out["statusCode"], 302, "{out}");
    let location = url::Url::parse(out["headers"]["location"].as_str().unwrap()).unwrap();
    assert_eq!(location.path(), "/services/oauth2/authorize");
    let q: HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], SF_CLIENT_ID);
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["code_challenge_method"], "S256");
    (q["state"].clone(), q["code_challenge"].clone())
}

#[tokio::test]
async fn connect_stores_the_refresh_token_once_and_a_replayed_state_gets_400() {
    let server = MockServer::start().await;
    let answer = sf_token_rotating(
        "first-access",
        &server.uri(),
        "5Aep-connected-refresh-token",
    );
    sf_token_answers(&server, json_answer(200, answer)).await;
    let r = refresher(&server).await;
    let (state, challenge) = start_connect(&r).await;
    let item = stored(&r.store, &state_pk(&state)).await;
    assert!(item.contains_key("expires_at"), "state has a TTL");

    let callback = http_event(
        "/oauth/salesforce/callback",
        &format!("code=aPrx-code&state={state}"),
        &[],
    );
    let out = r.app.handle(callback.clone()).await.unwrap();
    assert_eq!(out["statusCode"], 200, "{out}");
    assert!(out["body"].as_str().unwrap().contains("connected"));
    assert!(
        !out["body"].as_str().unwrap().contains("5Aep"),
        "no token on the page"
    );

    // The code was exchanged with the verifier matching the challenge sent to Salesforce.
    let reqs = received_on(&server, TOKEN_PATH).await;
    assert_eq!(reqs.len(), 1);
    let form = form_of(&reqs[0]);
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "aPrx-code");
    assert_eq!(s256(&form["code_verifier"]), challenge);
    assert_eq!(form["redirect_uri"], REDIRECT);
    assert_eq!(
        read_secret(&r.arn).await["refresh_token"],
        "5Aep-connected-refresh-token"
    );
    assert!(
        r.store.get(&state_pk(&state)).await.unwrap().is_none(),
        "state consumed"
    );

    // Replay: 400, no second exchange, nothing stored again.
    put_secret(&r.arn, &sf_secret_json()).await;
    let out = r.app.handle(callback).await.unwrap();
    assert_eq!(out["statusCode"], 400, "{out}");
    assert_eq!(received_on(&server, TOKEN_PATH).await.len(), 1);
    assert_eq!(read_secret(&r.arn).await["refresh_token"], SF_REFRESH_TOKEN);
}

#[tokio::test]
async fn state_mismatch_gets_400_and_stores_nothing() {
    let server = MockServer::start().await;
    let answer = sf_token_rotating("x", &server.uri(), "5Aep-should-never-be-stored");
    sf_token_answers(&server, json_answer(200, answer)).await;
    let r = refresher(&server).await;
    let (state, _) = start_connect(&r).await;
    for query in [
        "code=c&state=not-the-state".to_owned(),
        format!("code=c&state={state}x"),
        "code=c".to_owned(),
        format!("error=access_denied&state={state}"),
    ] {
        let out = r
            .app
            .handle(http_event("/oauth/salesforce/callback", &query, &[]))
            .await
            .unwrap();
        assert_eq!(out["statusCode"], 400, "{query}: {out}");
    }
    assert!(received_on(&server, TOKEN_PATH).await.is_empty());
    assert_eq!(read_secret(&r.arn).await["refresh_token"], SF_REFRESH_TOKEN);
    assert!(read_item(&r.store, "default").await.unwrap().is_none());
}

#[tokio::test]
async fn an_expired_state_gets_400() {
    let server = MockServer::start().await;
    let r = refresher(&server).await;
    let (state, _) = start_connect(&r).await;
    // Age the state past its TTL (DynamoDB's TTL deletion is lazy, so the check must be ours).
    r.store
        .client()
        .update_item()
        .table_name(r.store.table())
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(state_pk(&state)),
        )
        .update_expression("SET expires_at = :past")
        .expression_attribute_values(
            ":past",
            aws_sdk_dynamodb::types::AttributeValue::N((sfvapi::now_secs() - 1).to_string()),
        )
        .send()
        .await
        .unwrap();
    let out = r
        .app
        .handle(http_event(
            "/oauth/salesforce/callback",
            &format!("code=c&state={state}"),
            &[],
        ))
        .await
        .unwrap();
    assert_eq!(out["statusCode"], 400, "{out}");
    assert!(received_on(&server, TOKEN_PATH).await.is_empty());
}

#[tokio::test]
async fn a_reconnect_replaces_the_cached_access_token_of_the_old_connection() {
    let server = MockServer::start().await;
    let answer = sf_token_rotating(
        "first-access-of-new",
        &server.uri(),
        "5Aep-reconnected-refresh-token",
    );
    sf_token_answers(&server, json_answer(200, answer)).await;
    let r = refresher(&server).await;
    // The old connection's token, valid for another hour, is in the item and in memory.
    seed_live_token(&r.store, "old-connection-token", &server.uri(), 4).await;
    let before = r.app.tokens().access_token().await.unwrap();
    assert_eq!(before.access_token.expose(), "old-connection-token");

    let (state, _) = start_connect(&r).await;
    let out = r
        .app
        .handle(http_event(
            "/oauth/salesforce/callback",
            &format!("code=aPrx-code&state={state}"),
            &[],
        ))
        .await
        .unwrap();
    assert_eq!(out["statusCode"], 200, "{out}");

    let item = read_item(&r.store, "default").await.unwrap().unwrap();
    assert_eq!(item.token.access_token.expose(), "first-access-of-new");
    assert_eq!(item.version, 5, "version + 1, so other functions adopt it");
    let after = r.app.tokens().access_token().await.unwrap();
    assert_eq!(
        after.access_token.expose(),
        "first-access-of-new",
        "the in-memory token of the old connection was dropped"
    );
    assert_eq!(
        received_on(&server, TOKEN_PATH).await.len(),
        1,
        "no refresh needed"
    );
}
