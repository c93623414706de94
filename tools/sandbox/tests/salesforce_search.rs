//! The fake Salesforce's search for inbound callers answers like Salesforce: SOSL over phone
//! fields finds a number whatever its stored format, in the Search resource's shape; the open-Case
//! query picks the most recent open Case; errors use Salesforce's error bodies.

use sfvapi_test_support::sandbox_server::*;

use std::time::{Duration, Instant};

use serde_json::Value;

async fn get(sf: &str, token: &str, resource: &str, q: &str) -> (u16, Value) {
    let resp = client()
        .get(format!("{sf}/services/data/v62.0/{resource}"))
        .query(&[("q", q)])
        .bearer_auth(token)
        .send_ok()
        .await;
    (resp.status().as_u16(), resp.json().await.unwrap())
}

fn ids(v: &Value) -> Vec<&str> {
    v["searchRecords"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Id"].as_str().unwrap())
        .collect()
}

const FIELDS: &str = "Id, Name, Phone, MobilePhone, HomePhone, OtherPhone";

#[tokio::test]
async fn a_phone_search_finds_the_number_in_any_stored_format_in_the_search_resources_shape() {
    let s = sf_session().await;
    let (sf, t) = (&s.url, s.token.clone());
    // Katherine's Phone is "(415) 555-0142": the national digits find it, the international
    // ones alone do not (nothing in that field has the country code).
    let q = |terms: &str| {
        format!("FIND {{{terms}}} IN PHONE FIELDS RETURNING Contact({FIELDS}) LIMIT 10")
    };
    let (status, v) = get(sf, &t, "search", &q("14155550142 OR 4155550142")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(ids(&v), ["0035e00000KJohnAAD"]);
    let r = &v["searchRecords"][0];
    assert_eq!(r["attributes"]["type"], "Contact");
    assert_eq!(
        r["attributes"]["url"],
        "/services/data/v62.0/sobjects/Contact/0035e00000KJohnAAD"
    );
    assert_eq!(r["Phone"], "(415) 555-0142");
    assert!(r.get("Email").is_none(), "only the RETURNING fields: {r}");
    let (_, v) = get(sf, &t, "search", &q("14155550142")).await;
    assert!(ids(&v).is_empty(), "{v}");
    // Ada's is stored in E.164: the international digits find it.
    let (_, v) = get(sf, &t, "search", &q("14155550123 OR 4155550123")).await;
    assert_eq!(ids(&v), ["0035e00000XyZ12AAF"]);
    // A family phone: Mary's HomePhone "+1 415-555-0177", Dorothy's Phone "(415) 555-0177".
    let (_, v) = get(sf, &t, "search", &q("14155550177 OR 4155550177")).await;
    assert_eq!(ids(&v), ["0035e00000MJackAAD", "0035e00000DVaugAAD"]);
    let (_, v) = get(
        sf,
        &t,
        "search",
        "FIND {14155550177 OR 4155550177} IN PHONE FIELDS RETURNING Contact(Id) LIMIT 1",
    )
    .await;
    assert_eq!(ids(&v).len(), 1, "LIMIT");
    // An assistant's number is a phone field too.
    let (_, v) = get(sf, &t, "search", &q("14155550188")).await;
    assert_eq!(ids(&v), ["0035e00000KJohnAAD"]);
    let (_, v) = get(sf, &t, "search", &q("14155550999 OR 4155550999")).await;
    assert_eq!(v["searchRecords"], serde_json::json!([]));
}

#[tokio::test]
async fn bad_searches_get_salesforces_error_bodies() {
    let s = sf_session().await;
    let (sf, t) = (&s.url, s.token.clone());
    let (status, v) = get(sf, &t, "search", "FIND {ada lovelace} IN NAME FIELDS").await;
    assert_eq!(status, 400);
    assert_eq!(v[0]["errorCode"], "MALFORMED_SEARCH", "{v}");
    let (status, v) = get(
        sf,
        &t,
        "search",
        "FIND {4155550142} IN PHONE FIELDS RETURNING Contact(Id, Nickname__c)",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(v[0]["errorCode"], "INVALID_FIELD", "{v}");
    let resp = client()
        .get(format!("{sf}/services/data/v62.0/search"))
        .query(&[(
            "q",
            "FIND {4155550142} IN PHONE FIELDS RETURNING Contact(Id)",
        )])
        .bearer_auth("not-a-token")
        .send_ok()
        .await;
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn the_open_case_query_returns_the_latest_open_case_only() {
    let s = sf_session().await;
    let (sf, t) = (&s.url, s.token.clone());
    let q = |contact: &str| {
        format!("SELECT Id, CaseNumber, Subject, Status FROM Case WHERE ContactId = '{contact}' AND IsClosed = false ORDER BY CreatedDate DESC LIMIT 1")
    };
    let (status, v) = get(sf, &t, "query", &q("0035e00000KJohnAAD")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["totalSize"], 1);
    assert_eq!(v["done"], true);
    // The newer "Password reset" is closed; the open one is hers.
    assert_eq!(v["records"][0]["Id"], "5005e00000KJopnAAD");
    assert_eq!(v["records"][0]["CaseNumber"], "00001031");
    // Mary has no case at all.
    let (_, v) = get(sf, &t, "query", &q("0035e00000MJackAAD")).await;
    assert_eq!(v["totalSize"], 0);
    assert_eq!(v["records"], serde_json::json!([]));
}

#[tokio::test]
async fn hang_next_delays_the_next_rest_answer_only() {
    let s = sf_session().await;
    let (sf, t) = (&s.url, s.token.clone());
    let resp = control(
        sf,
        serde_json::json!({"salesforce": {"hang_next": 1, "hang_ms": 400}}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let q = "FIND {4155550142} IN PHONE FIELDS RETURNING Contact(Id)";
    let started = Instant::now();
    let (status, v) = get(sf, &t, "search", q).await;
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(status, 200, "the answer itself is the normal one");
    assert_eq!(ids(&v), ["0035e00000KJohnAAD"]);
    let started = Instant::now();
    get(sf, &t, "search", q).await;
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "only the next one"
    );
}
