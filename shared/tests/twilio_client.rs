//! Twilio's Messages and Calls clients against a loopback server answering like Twilio.

use std::time::Duration;

use base64::Engine as _;
use sfvapi::ids::E164Phone;
use sfvapi::twilio::{
    Created, Sender, Sms, TwilioClient, TwilioCredentials, TwilioError, TwilioSecret, VoiceCall,
};
use sfvapi_test_support::*;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "twilio-auth-token-for-tests";

fn creds() -> TwilioCredentials {
    let s: TwilioSecret =
        serde_json::from_value(serde_json::json!({"account_sid": SID, "auth_token": TOKEN}))
            .unwrap();
    TwilioCredentials::from_secret(&s).unwrap()
}

fn sms() -> Sms {
    Sms {
        to: E164Phone::parse("To", "+14155550123").unwrap(),
        sender: Sender::From("+14155559999".into()),
        body: "Thanks for talking with us today.".into(),
    }
}

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{SID}:{TOKEN}"))
    )
}

/// Matches a form body with exactly these fields.
fn form(expected: &'static [(&'static str, &'static str)]) -> impl Fn(&Request) -> bool {
    move |req: &Request| {
        let mut got: Vec<(String, String)> = url::form_urlencoded::parse(&req.body)
            .into_owned()
            .collect();
        got.sort();
        let mut want: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        want.sort();
        got == want
    }
}

fn client(server: &MockServer, timeout: Duration) -> TwilioClient {
    TwilioClient::new(&server.uri(), timeout).unwrap()
}

/// Through a client of `server` (5 s timeout).
async fn send(server: &MockServer) -> Result<Created, TwilioError> {
    client(server, Duration::from_secs(5))
        .send_sms(&creds(), &sms())
        .await
}

#[tokio::test]
async fn a_created_message_is_parsed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/2010-04-01/Accounts/{SID}/Messages.json")))
        .and(header("authorization", basic().as_str()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(form(&[
            ("To", "+14155550123"),
            ("From", "+14155559999"),
            ("Body", "Thanks for talking with us today."),
        ]))
        .respond_with(fixture_answer(201, "twilio/message-created.json"))
        .expect(1)
        .mount(&server)
        .await;
    let created = send(&server).await.unwrap();
    assert_eq!(
        created,
        Created {
            sid: "SM0123456789abcdef0123456789abcdef".into(),
            status: "queued".into()
        }
    );
}

#[tokio::test]
async fn a_messaging_service_replaces_from() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(form(&[
            ("To", "+14155550123"),
            ("MessagingServiceSid", "MG0123456789abcdef0123456789abcdef"),
            ("Body", "Thanks for talking with us today."),
        ]))
        .respond_with(fixture_answer(201, "twilio/message-created.json"))
        .expect(1)
        .mount(&server)
        .await;
    let mut m = sms();
    m.sender = Sender::MessagingService("MG0123456789abcdef0123456789abcdef".into());
    client(&server, Duration::from_secs(5))
        .send_sms(&creds(), &m)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_invalid_number_is_terminal_with_twilios_message() {
    let server =
        server_answering("POST", fixture_answer(400, "twilio/error-invalid-to.json")).await;
    let e = send(&server).await.unwrap_err();
    assert!(!e.is_retryable());
    assert_eq!(
        e,
        TwilioError::Rejected {
            status: 400,
            code: Some(21211),
            message: "The 'To' number +1415 is not a valid phone number.".into(),
            more_info: Some("https://www.twilio.com/docs/errors/21211".into()),
        }
    );
}

#[tokio::test]
async fn rate_limits_and_server_errors_are_retryable() {
    let server = MockServer::start().await;
    mount_any_times(
        &server,
        "POST",
        fixture_answer(429, "twilio/error-rate-limited.json"),
        1,
    )
    .await;
    mount_any(
        &server,
        "POST",
        ResponseTemplate::new(503).set_body_string("upstream unavailable"),
    )
    .await;
    let c = client(&server, Duration::from_secs(5));
    let e = c.send_sms(&creds(), &sms()).await.unwrap_err();
    assert_eq!(
        e,
        TwilioError::RateLimited {
            code: Some(20429),
            message: "Too Many Requests".into()
        }
    );
    assert!(e.is_retryable());
    let e = c.send_sms(&creds(), &sms()).await.unwrap_err();
    assert!(
        matches!(e, TwilioError::ServerError { status: 503, .. }),
        "{e:?}"
    );
    assert!(e.is_retryable());
}

#[tokio::test]
async fn a_timeout_after_sending_is_ambiguous() {
    // Twilio creates the message but answers after the client gave up.
    let late = fixture_answer(201, "twilio/message-created.json").set_delay(Duration::from_secs(3));
    let server = server_answering_once("POST", late).await;
    let e = client(&server, Duration::from_millis(300))
        .send_sms(&creds(), &sms())
        .await
        .unwrap_err();
    assert!(matches!(e, TwilioError::Ambiguous { .. }), "{e:?}");
    assert!(
        !e.is_retryable(),
        "an SMS that may have gone out is never resent"
    );
}

#[tokio::test]
async fn a_voice_call_with_inline_twiml() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/2010-04-01/Accounts/{SID}/Calls.json")))
        .and(header("authorization", basic().as_str()))
        .and(form(&[
            ("To", "+14155550123"),
            ("From", "+14155559999"),
            (
                "Twiml",
                "<Response><Say>Hello from support.</Say></Response>",
            ),
        ]))
        .respond_with(fixture_answer(201, "twilio/call-created.json"))
        .expect(1)
        .mount(&server)
        .await;
    let created = client(&server, Duration::from_secs(5))
        .create_call(
            &creds(),
            &VoiceCall {
                to: E164Phone::parse("To", "+14155550123").unwrap(),
                from: "+14155559999".into(),
                twiml: "<Response><Say>Hello from support.</Say></Response>".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(created.sid, "CA0123456789abcdef0123456789abcdef");
}
