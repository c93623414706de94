//! A Salesforce connection as the functions hold it: its configuration and secret, token answers
//! as Salesforce's token endpoint gives them, token items as another function leaves them, and
//! the SOQL Contact query the worker reads a Contact with.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use sfvapi::store::Store;

use crate::{env_of, received_on};

pub const SF_CLIENT_ID: &str = "3MVG9-test-client-id";
pub const SF_CLIENT_SECRET: &str = "test-client-secret-do-not-use";
pub const SF_REFRESH_TOKEN: &str = "5Aep-test-refresh-token-1";
pub const SF_OPERATOR_KEY: &str = "operator-key-for-tests-0123456789";
/// Path of Salesforce's OAuth 2.0 token endpoint.
pub const SF_TOKEN_PATH: &str = "/services/oauth2/token";

/// A Salesforce connection config whose login URL is `login_url` (a wiremock server), plus
/// `extra` variables.
pub fn sf_config(
    login_url: &str,
    secret_arn: &str,
    extra: &[(&str, &str)],
) -> sfvapi::config::SalesforceConfig {
    let mut vars = vec![
        ("SF_LOGIN_URL", login_url),
        ("SF_CONNECTION_SECRET_ARN", secret_arn),
    ];
    vars.extend_from_slice(extra);
    sfvapi::config::SalesforceConfig::from_env(&env_of(&vars)).expect("test salesforce config")
}

/// The connection secret's JSON: client id and secret, refresh token.
pub fn sf_secret_json() -> serde_json::Value {
    serde_json::json!({
        "client_id": SF_CLIENT_ID,
        "client_secret": SF_CLIENT_SECRET,
        "refresh_token": SF_REFRESH_TOKEN
    })
}

/// A token endpoint answer like Salesforce's: no `expires_in`, `issued_at` as a string of ms.
pub fn sf_token_response(
    access_token: &str,
    instance_url: &str,
    issued_at_ms: i64,
) -> serde_json::Value {
    serde_json::json!({
        "access_token": access_token,
        "signature": "dGVzdC1zaWduYXR1cmUtbm90LXJlYWw=",
        "scope": "refresh_token api",
        "instance_url": instance_url,
        "id": "https://login.salesforce.com/id/00D5e000000AbCdEAK/0055e000001AbCdAAK",
        "token_type": "Bearer",
        "issued_at": issued_at_ms.to_string()
    })
}

/// A token answer issued now that also rotates the refresh token to `refresh_token`.
pub fn sf_token_rotating(
    access_token: &str,
    instance_url: &str,
    refresh_token: &str,
) -> serde_json::Value {
    let mut answer = sf_token_response(access_token, instance_url, sfvapi::now_millis());
    answer["refresh_token"] = refresh_token.into();
    answer
}

/// Put a token item as another function would have left it.
pub async fn seed_sf_token(
    store: &Store,
    connection: &str,
    access_token: &str,
    instance_url: &str,
    expires_at_ms: i64,
    version: i64,
) {
    type A = AttributeValue;
    store
        .client()
        .put_item()
        .table_name(store.table())
        .item("pk", A::S(sfvapi::salesforce::token::token_pk(connection)))
        .item("access_token", A::S(access_token.into()))
        .item("instance_url", A::S(instance_url.into()))
        .item("issued_at", A::N(sfvapi::now_millis().to_string()))
        .item("expires_at_ms", A::N(expires_at_ms.to_string()))
        .item("version", A::N(version.to_string()))
        .send()
        .await
        .expect("seed token item");
}

/// The `default` connection's token item holding `access_token` for `instance_url`, valid for
/// another hour, at `version`.
pub async fn seed_live_token(store: &Store, access_token: &str, instance_url: &str, version: i64) {
    seed_sf_token(
        store,
        "default",
        access_token,
        instance_url,
        sfvapi::now_millis() + 3_600_000,
        version,
    )
    .await;
}

/// The token item's attributes as stored.
pub async fn raw_token_item(store: &Store, connection: &str) -> HashMap<String, AttributeValue> {
    store
        .get(&sfvapi::salesforce::token::token_pk(connection))
        .await
        .expect("read token item")
        .expect("token item exists")
}

/// Path of Salesforce's SOQL query resource (API v62.0, the tests' default).
pub const SF_QUERY_PATH: &str = "/services/data/v62.0/query";

/// A `GET /query` answer holding `records` (Query resource,
/// https://developer.salesforce.com/docs/platform/api-rest/guide/dome-query.html).
pub fn sf_query_answer(records: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({"totalSize": records.len(), "done": true, "records": records})
}

/// Matches the one SOQL query that reads Contact `id` (path + `q` naming `FROM Contact` and the id).
pub struct ContactQuery(pub String);

impl wiremock::Match for ContactQuery {
    fn matches(&self, req: &wiremock::Request) -> bool {
        req.url.path() == SF_QUERY_PATH
            && req.url.query_pairs().any(|(k, v)| {
                k == "q"
                    && v.contains(" FROM Contact WHERE Id = '")
                    && v.ends_with(&format!("'{}'", self.0))
            })
    }
}

/// A mock answering the Contact query for `id` with `record` (or no record when `None`).
pub fn contact_query_mock(id: &str, record: Option<serde_json::Value>) -> wiremock::Mock {
    wiremock::Mock::given(wiremock::matchers::method("GET"))
        .and(ContactQuery(id.to_owned()))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(sf_query_answer(record.into_iter().collect())),
        )
}

/// The `q` of every SOQL query a wiremock server received.
pub async fn soql_received(server: &wiremock::MockServer) -> Vec<String> {
    received_on(server, SF_QUERY_PATH)
        .await
        .iter()
        .filter_map(|r| {
            r.url
                .query_pairs()
                .find(|(k, _)| k == "q")
                .map(|(_, v)| v.into_owned())
        })
        .collect()
}

/// Salesforce's token endpoint on `server` issues `access_token` (now, for this server's
/// instance URL) to every refresh.
pub async fn mount_sf_token(server: &wiremock::MockServer, access_token: &str) {
    crate::mount(
        server,
        "POST",
        SF_TOKEN_PATH,
        crate::json_answer(
            200,
            sf_token_response(access_token, &server.uri(), sfvapi::now_millis()),
        ),
    )
    .await;
}

/// Salesforce's token endpoint on `server` answers every request with `answer` (e.g. a refusal:
/// `fixture_answer(400, "salesforce/token-invalid-grant.json")`).
pub async fn sf_token_answers(server: &wiremock::MockServer, answer: wiremock::ResponseTemplate) {
    crate::mount(server, "POST", SF_TOKEN_PATH, answer).await;
}
