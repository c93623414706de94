//! Property tests: whatever bytes or JSON arrive, correctly signed or not, the ingest handler never
//! panics and never answers 5xx (503 aside, which means "retry"), and only ever 202 for a stored event.

use proptest::prelude::*;
use sfvapi_test_support::*;

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        "[a-zA-Z0-9_:.# -]{0,40}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("0035e00000XyZ12AAF")),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        // One of the event's field names or any short name, each alternative equally likely.
        let names = prop::sample::select(EVENT_FIELD_NAMES).prop_map(str::to_string);
        let keys = prop_oneof![EVENT_FIELD_NAMES.len() as u32 => names, 1 => "[a-z]{1,8}"];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(keys, inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn check(status: u16, body: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        matches!(status, 200 | 202 | 400 | 401 | 413 | 503),
        "unexpected status {status}: {body}"
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_signed_bytes_never_5xx(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        rt().block_on(async {
            let t = shared_ingest().await;
            let a = answer(t.app.handle(signed_event(&bytes)).await);
            check(a.status, &a.body)?;
            // Bytes that are not a valid event cannot be queued.
            if a.status == 202 {
                prop_assert!(sfvapi::salesforce::events::parse_json_event(&bytes).is_ok());
            }
            Ok(())
        })?;
    }

    #[test]
    fn arbitrary_signed_json_never_5xx(value in arb_json(), base64 in any::<bool>()) {
        let body = value.to_string().into_bytes();
        rt().block_on(async {
            let t = shared_ingest().await;
            let (ts, sig) = sfvapi::signature::sign_salesforce_v2(SF_SECRET.as_bytes(), &body, sfvapi::now_secs());
            let req = request("POST", "/salesforce/events", &[("x-sfvapi-timestamp", &ts), ("x-sfvapi-signature", &sig)], &body, base64);
            let a = answer(t.app.handle(req).await);
            check(a.status, &a.body)?;
            let parsed = sfvapi::salesforce::events::parse_json_event(&body);
            prop_assert_eq!(parsed.is_ok(), matches!(a.status, 200 | 202), "{} -> {}", value, a.body);
            Ok(())
        })?;
    }

    #[test]
    fn arbitrary_unsigned_input_is_401(bytes in prop::collection::vec(any::<u8>(), 0..512), sig in "[ -~]{0,80}") {
        rt().block_on(async {
            let t = shared_ingest().await;
            let req = request("POST", "/salesforce/events", &[("x-sfvapi-timestamp", "1"), ("x-sfvapi-signature", &sig)], &bytes, true);
            let a = answer(t.app.handle(req).await);
            prop_assert_eq!(a.status, 401, "{}", a.body);
            Ok(())
        })?;
    }

    #[test]
    fn arbitrary_outbound_messages_never_5xx(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
        rt().block_on(async {
            let t = shared_ingest().await;
            let req = request("POST", &format!("/salesforce/outbound-message/{OM_TOKEN}"), &[], &bytes, true);
            let a = answer(t.app.handle(req).await);
            prop_assert!(matches!(a.status, 200 | 400), "{}: {}", a.status, a.body);
            Ok(())
        })?;
    }
}

/// One runtime, table and secret for all cases: a table per case would dominate the run time.
fn rt() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

async fn shared_ingest() -> &'static Ingest {
    static CELL: tokio::sync::OnceCell<Ingest> = tokio::sync::OnceCell::const_new();
    CELL.get_or_init(|| ingest(&[])).await
}
