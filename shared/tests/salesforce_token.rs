//! The shared token cache against DynamoDB Local + moto and a wiremock Salesforce: warm calls
//! make no token I/O, a wave of 401s makes one OAuth call (in one process and across two),
//! terminal errors are not retried in a loop, and rotated refresh tokens are stored back.

use std::sync::Arc;
use std::time::Duration;

use sfvapi::ids::SalesforceId;
use sfvapi::salesforce::rest::RestError;
use sfvapi::salesforce::token::read_item;
use sfvapi::salesforce::Connection;
use sfvapi_test_support::*;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN_PATH: &str = "/services/oauth2/token";
const CONTACT_ID: &str = "0035e00000XyZ12AAF";
/// The Contact is read with one SOQL query (see `salesforce_rest.rs`).
const CONTACT_PATH: &str = SF_QUERY_PATH;

fn contact_answer() -> serde_json::Value {
    sf_query_answer(vec![serde_json::from_slice(&fixture(
        "salesforce/contact.json",
    ))
    .unwrap()])
}

fn contact_id() -> SalesforceId {
    SalesforceId::parse("id", CONTACT_ID).unwrap()
}

/// Salesforce that rejects `old` with INVALID_SESSION_ID, accepts `new`, and issues `new` from
/// its token endpoint (slowly, so concurrent callers really overlap).
async fn salesforce(old: &str, new: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(CONTACT_PATH))
        .and(header("authorization", format!("Bearer {old}").as_str()))
        .respond_with(fixture_answer(401, "salesforce/session-expired.json"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(CONTACT_PATH))
        .and(header("authorization", format!("Bearer {new}").as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(contact_answer())
                .insert_header("Sforce-Limit-Info", "api-usage=42/15000"),
        )
        .mount(&server)
        .await;
    sf_token_answers(
        &server,
        ResponseTemplate::new(200)
            .set_body_json(sf_token_response(new, &server.uri(), sfvapi::now_millis()))
            .set_delay(Duration::from_millis(150)),
    )
    .await;
    server
}

async fn connection(store: &sfvapi::store::Store, server: &MockServer, arn: &str) -> Connection {
    Connection::new(
        sf_config(&server.uri(), arn, &[]),
        store.clone(),
        secrets_cache().await,
    )
    .unwrap()
}

#[tokio::test]
async fn warm_path_makes_no_token_reads_and_no_oauth_calls() {
    let (store, counter) = fresh_store().await;
    let server = salesforce("dead-token", "live-token").await;
    let arn = create_secret(&sf_secret_json()).await;
    let conn = connection(&store, &server, &arn).await;

    // Cold: no item, so one OAuth call, and the token is shared through DynamoDB.
    let c = conn.rest.get_contact(&contact_id()).await.unwrap();
    assert_eq!(c.name, "Ada Lovelace");
    assert_eq!(received_on(&server, TOKEN_PATH).await.len(), 1);
    let item = read_item(&store, "default").await.unwrap().unwrap();
    assert_eq!(item.token.access_token.expose(), "live-token");
    assert_eq!(item.version, 1);

    counter.reset();
    conn.rest.get_contact(&contact_id()).await.unwrap();
    assert_eq!(
        counter.total(),
        0,
        "warm call touched DynamoDB: {:?}",
        counter.snapshot()
    );
    assert_eq!(
        received_on(&server, TOKEN_PATH).await.len(),
        1,
        "warm call called OAuth"
    );
    assert_eq!(received_on(&server, CONTACT_PATH).await.len(), 2);
}

#[tokio::test]
async fn a_second_lambda_reuses_the_stored_token_without_oauth() {
    let (store, _) = fresh_store().await;
    let server = salesforce("dead-token", "live-token").await;
    let arn = create_secret(&sf_secret_json()).await;
    seed_live_token(&store, "live-token", &server.uri(), 3).await;
    let conn = connection(&store, &server, &arn).await;
    conn.rest.get_contact(&contact_id()).await.unwrap();
    assert!(received_on(&server, TOKEN_PATH).await.is_empty());
}

#[tokio::test]
async fn fifty_concurrent_401s_make_exactly_one_oauth_call() {
    let (store, _) = fresh_store().await;
    let server = salesforce("dead-token", "live-token").await;
    let arn = create_secret(&sf_secret_json()).await;
    seed_live_token(&store, "dead-token", &server.uri(), 7).await;
    let conn = Arc::new(connection(&store, &server, &arn).await);

    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let conn = conn.clone();
            tokio::spawn(async move { conn.rest.get_contact(&contact_id()).await })
        })
        .collect();
    for t in tasks {
        let c = t
            .await
            .unwrap()
            .expect("every request succeeds after the retry");
        assert_eq!(c.name, "Ada Lovelace");
    }
    assert_eq!(received_on(&server, TOKEN_PATH).await.len(), 1);
    let gets = received_on(&server, CONTACT_PATH).await.len();
    assert_eq!(gets, 100, "each request: one 401 and one retry");
    let item = read_item(&store, "default").await.unwrap().unwrap();
    assert_eq!(item.token.access_token.expose(), "live-token");
    assert_eq!(item.version, 8, "written as version = old + 1");
}

#[tokio::test]
async fn two_lambdas_sharing_dynamodb_make_exactly_one_oauth_call() {
    let (store, _) = fresh_store().await;
    let server = salesforce("dead-token", "live-token").await;
    let arn = create_secret(&sf_secret_json()).await;
    seed_live_token(&store, "dead-token", &server.uri(), 1).await;
    // Two independent cold starts: separate memory, mutex, HTTP and secrets caches.
    let a = Arc::new(connection(&store, &server, &arn).await);
    let b = Arc::new(connection(&store, &server, &arn).await);

    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let conn = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { conn.rest.get_contact(&contact_id()).await })
        })
        .collect();
    for t in tasks {
        t.await
            .unwrap()
            .expect("every request succeeds after the retry");
    }
    assert_eq!(received_on(&server, TOKEN_PATH).await.len(), 1);
    assert_eq!(
        read_item(&store, "default").await.unwrap().unwrap().version,
        2
    );
}

#[tokio::test]
async fn invalid_grant_is_terminal_and_not_retried_in_a_loop() {
    let (store, _) = fresh_store().await;
    let server = MockServer::start().await;
    mount(
        &server,
        "GET",
        CONTACT_PATH,
        fixture_answer(401, "salesforce/session-expired.json"),
    )
    .await;
    sf_token_answers(
        &server,
        fixture_answer(400, "salesforce/token-invalid-grant.json"),
    )
    .await;
    let arn = create_secret(&sf_secret_json()).await;
    seed_live_token(&store, "dead-token", &server.uri(), 1).await;
    let conn = Arc::new(connection(&store, &server, &arn).await);

    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let conn = conn.clone();
            tokio::spawn(async move { conn.rest.get_contact(&contact_id()).await })
        })
        .collect();
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert!(matches!(err, RestError::Token(_)), "{err:?}");
        assert!(err.is_terminal(), "{err:?}");
        assert!(err.to_string().contains("invalid_grant"), "{err}");
    }
    assert_eq!(
        received_on(&server, TOKEN_PATH).await.len(),
        1,
        "one token request, then the failure is remembered"
    );
    assert_eq!(
        received_on(&server, CONTACT_PATH).await.len(),
        10,
        "no retry without a new token"
    );
    // The lease is released so the next attempt (after a reconnect) is not blocked.
    let item = store
        .get(&sfvapi::salesforce::token::token_pk("default"))
        .await
        .unwrap()
        .unwrap();
    assert!(!item.contains_key("lease_until"));
}

#[tokio::test]
async fn a_second_401_with_a_fresh_token_is_a_config_error_not_a_loop() {
    let (store, _) = fresh_store().await;
    let server = MockServer::start().await;
    mount(
        &server,
        "GET",
        CONTACT_PATH,
        fixture_answer(401, "salesforce/session-expired.json"),
    )
    .await;
    mount_sf_token(&server, "also-rejected").await;
    let arn = create_secret(&sf_secret_json()).await;
    seed_live_token(&store, "dead-token", &server.uri(), 1).await;
    let conn = connection(&store, &server, &arn).await;
    let err = conn.rest.get_contact(&contact_id()).await.unwrap_err();
    assert!(
        matches!(err, RestError::Unauthorized { ref code } if code == "INVALID_SESSION_ID"),
        "{err:?}"
    );
    assert!(err.is_terminal());
    assert_eq!(received_on(&server, TOKEN_PATH).await.len(), 1);
    assert_eq!(received_on(&server, CONTACT_PATH).await.len(), 2);
}

#[tokio::test]
async fn a_rotated_refresh_token_is_stored_back_in_secrets_manager() {
    let (store, _) = fresh_store().await;
    let server = MockServer::start().await;
    let answer = sf_token_rotating("live-token", &server.uri(), "5Aep-rotated-refresh-token-2");
    sf_token_answers(&server, json_answer(200, answer)).await;
    mount(
        &server,
        "GET",
        CONTACT_PATH,
        json_answer(200, contact_answer()),
    )
    .await;
    let arn = create_secret(&sf_secret_json()).await;
    let conn = connection(&store, &server, &arn).await;
    conn.rest.get_contact(&contact_id()).await.unwrap();
    let stored = read_secret(&arn).await;
    assert_eq!(stored["refresh_token"], "5Aep-rotated-refresh-token-2");
    assert_eq!(stored["client_id"], SF_CLIENT_ID, "other keys kept");
    assert_eq!(stored["client_secret"], SF_CLIENT_SECRET);
}

/// Salesforce rotates the refresh token on the first refresh and not on later ones (wiremock
/// `up_to_n_times`): the rotated token is the only valid one from then on.
/// Refresh token rotation: <https://help.salesforce.com/s/articleView?id=xcloud.remoteaccess_oauth_refresh_token_flow.htm&type=5>
async fn rotating_salesforce(rotated: &str) -> MockServer {
    let server = MockServer::start().await;
    let mut first = sf_token_response("token-after-rotation", &server.uri(), sfvapi::now_millis());
    first["refresh_token"] = rotated.into();
    mount_times(&server, "POST", TOKEN_PATH, json_answer(200, first), 1).await;
    mount_sf_token(&server, "token-of-cold-start").await;
    server
}

#[tokio::test]
async fn a_rotated_refresh_token_survives_secrets_manager_failing_at_the_write() {
    const ROTATED: &str = "5Aep-rotated-refresh-token-2";
    let (store, _) = fresh_store().await;
    let server = rotating_salesforce(ROTATED).await;
    let arn = create_secret(&sf_secret_json()).await;

    // Every write-back try fails: the refresh still succeeds, the token is not lost.
    let (failing, fail) = secrets_cache_failing_puts(3).await;
    let first =
        Connection::new(sf_config(&server.uri(), &arn, &[]), store.clone(), failing).unwrap();
    let token = first.tokens.access_token().await.unwrap();
    assert_eq!(token.access_token.expose(), "token-after-rotation");
    assert_eq!(
        fail.puts(),
        3,
        "three tries to write the secret, all refused"
    );
    assert_eq!(read_secret(&arn).await["refresh_token"], SF_REFRESH_TOKEN);
    let item = raw_token_item(&store, "default").await;
    assert_eq!(
        item.get("pending_refresh_token")
            .and_then(|v| v.as_s().ok()),
        Some(&ROTATED.to_owned()),
        "the rotated token is kept in the token item"
    );

    // A cold start elsewhere (new provider, new cache) refreshes with the rotated token and
    // moves it into the secret.
    let cold = connection(&store, &server, &arn).await;
    let again = cold
        .tokens
        .after_rejection(&token.access_token)
        .await
        .unwrap();
    assert_eq!(again.access_token.expose(), "token-of-cold-start");
    let calls = received_on(&server, TOKEN_PATH).await;
    assert_eq!(calls.len(), 2);
    assert_eq!(form_of(&calls[0])["refresh_token"], SF_REFRESH_TOKEN);
    assert_eq!(
        form_of(&calls[1])["refresh_token"],
        ROTATED,
        "the cold start used the rotated token, not the invalidated one in the secret"
    );
    let secret = read_secret(&arn).await;
    assert_eq!(secret["refresh_token"], ROTATED);
    assert_eq!(secret["client_id"], SF_CLIENT_ID, "other keys kept");
    let item = raw_token_item(&store, "default").await;
    assert!(
        !item.contains_key("pending_refresh_token")
            && !item.contains_key("pending_refresh_token_at"),
        "removed from the item once the secret holds it: {:?}",
        item.keys()
    );
}

#[tokio::test]
async fn a_failed_write_is_retried_and_the_item_keeps_nothing() {
    const ROTATED: &str = "5Aep-rotated-refresh-token-3";
    let (store, _) = fresh_store().await;
    let server = rotating_salesforce(ROTATED).await;
    let arn = create_secret(&sf_secret_json()).await;
    let (failing, fail) = secrets_cache_failing_puts(2).await;
    let conn =
        Connection::new(sf_config(&server.uri(), &arn, &[]), store.clone(), failing).unwrap();
    conn.tokens.access_token().await.unwrap();
    assert_eq!(fail.puts(), 3, "two refused writes, the third succeeds");
    assert_eq!(read_secret(&arn).await["refresh_token"], ROTATED);
    assert!(!raw_token_item(&store, "default")
        .await
        .contains_key("pending_refresh_token"));
}

#[tokio::test]
async fn an_operator_edit_after_our_cache_fill_is_kept_by_the_write_back() {
    let arn = create_secret(&sf_secret_json()).await;
    let cache = secrets_cache().await;
    // Our cache is filled (a cold start read the secret) …
    cache.get(&arn).await.unwrap();
    // … then an operator rotates the client secret in the console …
    let mut edited = sf_secret_json();
    edited["client_secret"] = "rotated-client-secret-by-the-operator".into();
    put_secret(&arn, &edited).await;
    // … and then Salesforce rotates the refresh token and we write it back.
    sfvapi::salesforce::token::store_refresh_token(
        &cache,
        &arn,
        &sfvapi::secrets::SecretString::new("5Aep-rotated-refresh-token-4"),
    )
    .await
    .unwrap();
    let stored = read_secret(&arn).await;
    assert_eq!(stored["refresh_token"], "5Aep-rotated-refresh-token-4");
    assert_eq!(
        stored["client_secret"], "rotated-client-secret-by-the-operator",
        "the operator's edit survived the write-back"
    );
}
