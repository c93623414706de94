//! Every vector in fixtures/signature-vectors.json gives its `expect` result, and the ways a
//! forger would try (tampered body, wrong secret, stale/future timestamp, missing header) fail.

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use sfvapi::secrets::SecretString;
use sfvapi::signature::*;
use sfvapi_test_support as support;

fn headers(v: &Value) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, val) in v.as_object().expect("headers object") {
        h.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(val.as_str().unwrap()).unwrap(),
        );
    }
    h
}

fn vapi_hmac_config(c: &Value) -> VapiHmac {
    let mut cfg = VapiHmac::default();
    if let Some(a) = c["algorithm"].as_str() {
        cfg.algorithm = a.parse().unwrap();
    }
    if let Some(h) = c["signatureHeader"].as_str() {
        cfg.signature_header = h.to_ascii_lowercase();
    }
    if let Some(h) = c["timestampHeader"].as_str() {
        cfg.timestamp_header = h.to_ascii_lowercase();
    }
    if let Some(p) = c["signaturePrefix"].as_str() {
        cfg.signature_prefix = p.to_owned();
    }
    if let Some(p) = c["payloadFormat"].as_str() {
        cfg.payload_format = p.parse().unwrap();
    }
    if let Some(e) = c["signatureEncoding"].as_str() {
        cfg.encoding = e.parse().unwrap();
    }
    cfg
}

/// Runs one vector with its own headers and body; `Ok` means accepted.
fn run(v: &Value, hdrs: &HeaderMap, body: &[u8], secret: &str) -> Result<(), SignatureError> {
    let secrets = [SecretString::new(secret)];
    let now = v["now"].as_i64().unwrap_or(1_795_690_000);
    let now_ms = v["now_ms"].as_i64().unwrap_or(now * 1000);
    match v["scheme"].as_str().unwrap() {
        "salesforce-v1" => verify_salesforce(SalesforceScheme::V1, hdrs, body, &secrets, now, 300),
        "salesforce-v2" => verify_salesforce(SalesforceScheme::V2, hdrs, body, &secrets, now, 300),
        "vapi-hmac" => verify_vapi(
            &[VapiAuth::Hmac(vapi_hmac_config(&v["config"]))],
            hdrs,
            body,
            &secrets,
            now_ms,
            300,
        ),
        "vapi-legacy" => verify_vapi(&[VapiAuth::Legacy], hdrs, body, &secrets, now_ms, 300),
        "vapi-secret" => verify_vapi(&[VapiAuth::Secret], hdrs, body, &secrets, now_ms, 300),
        "vapi-bearer" => verify_vapi(
            &[VapiAuth::Bearer {
                header: "authorization".into(),
            }],
            hdrs,
            body,
            &secrets,
            now_ms,
            300,
        ),
        other => panic!("vector scheme {other} has no verifier"),
    }
}

fn vectors() -> Vec<Value> {
    let file: Value = serde_json::from_slice(&support::fixture("signature-vectors.json")).unwrap();
    file["vectors"].as_array().unwrap().clone()
}

#[test]
fn every_vector_gives_its_expected_result() {
    let vectors = vectors();
    assert!(vectors.len() >= 8, "fixture has {} vectors", vectors.len());
    let mut salesforce = 0;
    for v in &vectors {
        let name = v["name"].as_str().unwrap();
        let body = support::fixture(v["body_file"].as_str().unwrap());
        let result = run(
            v,
            &headers(&v["headers"]),
            &body,
            v["secret"].as_str().unwrap(),
        );
        match v["expect"].as_str().unwrap() {
            "accept" => assert_eq!(result, Ok(()), "{name} must be accepted"),
            "reject" => assert!(result.is_err(), "{name} must be rejected"),
            other => panic!("{name}: unknown expect {other}"),
        }
        if v["scheme"].as_str().unwrap().starts_with("salesforce") {
            salesforce += 1;
        }
    }
    assert!(salesforce >= 3);
}

#[test]
fn accepted_vectors_fail_when_tampered_with() {
    for v in vectors().iter().filter(|v| v["expect"] == "accept") {
        let name = v["name"].as_str().unwrap();
        let body = support::fixture(v["body_file"].as_str().unwrap());
        let hdrs = headers(&v["headers"]);
        let secret = v["secret"].as_str().unwrap();
        let scheme = v["scheme"].as_str().unwrap();

        if scheme != "vapi-secret" {
            let mut tampered = body.clone();
            tampered[10] ^= 0x01;
            assert!(
                run(v, &hdrs, &tampered, secret).is_err(),
                "{name}: tampered body accepted"
            );
        }
        assert_eq!(
            run(v, &hdrs, &body, "another-secret"),
            Err(SignatureError::Mismatch),
            "{name}: wrong secret accepted"
        );
        for h in v["headers"].as_object().unwrap().keys() {
            let mut missing = hdrs.clone();
            missing.remove(h.as_str());
            assert!(
                run(v, &missing, &body, secret).is_err(),
                "{name}: accepted without {h}"
            );
        }
    }
}

#[test]
fn salesforce_v2_window_is_enforced_both_ways() {
    let body = support::fixture("salesforce/flat-event.json");
    let secrets = [SecretString::new(support::SF_SECRET)];
    let now = 1_795_690_000;
    for (ts, ok) in [
        (now, true),
        (now - 300, true),
        (now + 300, true),
        (now - 301, false),
        (now + 301, false),
    ] {
        let (t, sig) = sign_salesforce_v2(support::SF_SECRET.as_bytes(), &body, ts);
        let mut h = HeaderMap::new();
        h.insert(SF_V2_TIMESTAMP, t.parse().unwrap());
        h.insert(SF_V2_SIGNATURE, sig.parse().unwrap());
        let r = verify_salesforce(SalesforceScheme::V2, &h, &body, &secrets, now, 300);
        assert_eq!(r.is_ok(), ok, "ts offset {}", ts - now);
        if !ok {
            assert_eq!(r, Err(SignatureError::StaleTimestamp));
        }
    }
}

#[test]
fn salesforce_v2_accepts_any_listed_signature_and_any_active_secret() {
    let body = support::fixture("salesforce/flat-event.json");
    let now = 1_795_690_000;
    let (t, new_sig) = sign_salesforce_v2(b"new-secret", &body, now);
    let (_, old_sig) = sign_salesforce_v2(b"old-secret", &body, now);
    let mut h = HeaderMap::new();
    h.insert(SF_V2_TIMESTAMP, t.parse().unwrap());
    h.insert(
        SF_V2_SIGNATURE,
        format!("{old_sig}, {new_sig}").parse().unwrap(),
    );
    // Sender lists both during rotation; receiver has only the new one.
    let only_new = [SecretString::new("new-secret")];
    assert_eq!(
        verify_salesforce(SalesforceScheme::V2, &h, &body, &only_new, now, 300),
        Ok(())
    );
    // Sender signs with the old one only; receiver holds old and new.
    h.insert(SF_V2_SIGNATURE, old_sig.parse().unwrap());
    let both = [
        SecretString::new("new-secret"),
        SecretString::new("old-secret"),
    ];
    assert_eq!(
        verify_salesforce(SalesforceScheme::V2, &h, &body, &both, now, 300),
        Ok(())
    );
    assert_eq!(
        verify_salesforce(SalesforceScheme::V2, &h, &body, &only_new, now, 300),
        Err(SignatureError::Mismatch)
    );
    // No `v1=` entry at all.
    h.insert(SF_V2_SIGNATURE, "v0=abcd".parse().unwrap());
    assert!(matches!(
        verify_salesforce(SalesforceScheme::V2, &h, &body, &both, now, 300),
        Err(SignatureError::Malformed(_))
    ));
    assert_eq!(
        verify_salesforce(SalesforceScheme::V2, &h, &body, &[], now, 300),
        Err(SignatureError::NoSecret)
    );
}

#[test]
fn salesforce_v1_round_trip() {
    let body = support::fixture("salesforce/flat-event.json");
    let mut h = HeaderMap::new();
    h.insert(
        SF_V1_HEADER,
        sign_salesforce_v1(b"k", &body).parse().unwrap(),
    );
    let secrets = [SecretString::new("k")];
    assert_eq!(
        verify_salesforce(SalesforceScheme::V1, &h, &body, &secrets, 0, 300),
        Ok(())
    );
    // A v2 deployment does not accept a v1 signature.
    assert!(verify_salesforce(SalesforceScheme::V2, &h, &body, &secrets, 0, 300).is_err());
}

#[test]
fn vapi_hmac_accepts_seconds_and_milliseconds_within_the_window() {
    let body = br#"{"message":{"type":"status-update"}}"#;
    let cfg = VapiHmac::default();
    let secrets = [SecretString::new("s")];
    let now_ms: i64 = 1_795_690_300_000;
    for (ts, ok) in [
        ((now_ms / 1000).to_string(), true),
        (now_ms.to_string(), true),
        ((now_ms - 301_000).to_string(), false),
        (((now_ms / 1000) + 301).to_string(), false),
    ] {
        let mac = hmac_parts(Algorithm::Sha256, b"s", &[ts.as_bytes(), b".", body]);
        let mut h = HeaderMap::new();
        h.insert("x-timestamp", ts.parse().unwrap());
        h.insert("x-signature", hex::encode(mac).parse().unwrap());
        let r = verify_vapi(
            &[VapiAuth::Hmac(cfg.clone())],
            &h,
            body,
            &secrets,
            now_ms,
            300,
        );
        assert_eq!(r.is_ok(), ok, "ts {ts}");
    }
}

#[test]
fn vapi_bearer_and_multi_mode() {
    let body = b"{}";
    let secrets = [SecretString::new("tok")];
    let modes = [
        VapiAuth::Secret,
        VapiAuth::Bearer {
            header: "authorization".into(),
        },
    ];
    let mut h = HeaderMap::new();
    h.insert("authorization", "Bearer tok".parse().unwrap());
    assert_eq!(verify_vapi(&modes, &h, body, &secrets, 0, 300), Ok(()));
    h.insert("authorization", "Bearer tok2".parse().unwrap());
    assert!(verify_vapi(&modes, &h, body, &secrets, 0, 300).is_err());
    h.insert("authorization", "Basic tok".parse().unwrap());
    assert!(verify_vapi(&modes, &h, body, &secrets, 0, 300).is_err());
}
