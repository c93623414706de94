//! Both HTTP stacks of sfvapi::tls trust the platform's roots: a CA named by `SSL_CERT_FILE`
//! lets the AWS SDK's client and a reqwest client reach an HTTPS server on loopback, and a
//! server whose certificate another CA signed is refused by both. reqwest's roots are read once
//! per process: a client built after the file changed still trusts what was read first.
//!
//! One test in its own binary: the roots are read once per process, so `SSL_CERT_FILE` is set
//! before anything in this process asks for them.

use std::sync::Arc;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

struct Ca {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("CA certificate");
    Ca { cert, key }
}

/// An HTTPS server on loopback for `localhost`, its certificate signed by `ca`, answering every
/// request with DynamoDB's ListTables answer and closing the connection.
async fn https_server(ca: &Ca) -> u16 {
    let key = rcgen::KeyPair::generate().expect("key");
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    let leaf = params
        .signed_by(&key, &ca.cert, &ca.key)
        .expect("server certificate");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(leaf.der().to_vec())],
        PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = br#"{"TableNames":[]}"#;
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.write_all(body).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

fn dynamodb(port: u16) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
        .endpoint_url(format!("https://localhost:{port}"))
        .http_client(sfvapi::tls::aws_http_client())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// `GET https://localhost:{port}/` through `client`: its status, or the error's whole chain.
async fn get(client: &reqwest::Client, port: u16) -> Result<u16, String> {
    match client
        .get(format!("https://localhost:{port}/"))
        .send()
        .await
    {
        Ok(r) => Ok(r.status().as_u16()),
        Err(e) => Err(
            std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                .map(|e| format!("{e:?}"))
                .collect::<Vec<_>>()
                .join(" / "),
        ),
    }
}

/// A refusal for the certificate (rustls: UnknownIssuer), not another failure.
fn assert_certificate_error(error: &str) {
    assert!(
        error.contains("UnknownIssuer") || error.to_lowercase().contains("certificate"),
        "a certificate error, not another failure: {error}"
    );
}

#[tokio::test]
async fn the_roots_named_by_ssl_cert_file_are_trusted_by_both_stacks_and_no_other() {
    let ours = ca("sfvapi test CA");
    let theirs = ca("someone else's CA");
    let dir = std::env::temp_dir().join(format!("sfvapi-tls-roots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bundle = dir.join("ca.pem");
    std::fs::write(&bundle, ours.cert.pem()).expect("bundle");
    // Before the first use of sfvapi::tls in this process (the only test of this binary).
    std::env::set_var("SSL_CERT_FILE", &bundle);
    std::env::remove_var("SSL_CERT_DIR");

    let trusted = https_server(&ours).await;
    let untrusted = https_server(&theirs).await;

    // The AWS SDK's client.
    let tables = dynamodb(trusted)
        .list_tables()
        .send()
        .await
        .expect("the SDK trusts the CA of SSL_CERT_FILE");
    assert!(tables.table_names().is_empty());
    let refused = dynamodb(untrusted).list_tables().send().await;
    assert_certificate_error(&format!(
        "{:?}",
        refused.expect_err("another CA's server is refused")
    ));

    // reqwest, as the Salesforce, Vapi and Twilio clients build it.
    let http = sfvapi::tls::reqwest_builder().build().expect("client");
    assert_eq!(
        get(&http, trusted).await,
        Ok(200),
        "reqwest trusts the CA of SSL_CERT_FILE"
    );
    assert_certificate_error(
        &get(&http, untrusted)
            .await
            .expect_err("another CA's server is refused"),
    );
    assert_eq!(
        sfvapi::tls::platform_roots().len(),
        1,
        "exactly the one certificate of SSL_CERT_FILE"
    );

    // Read once: another CA in the file now changes nothing for a client built afterwards.
    std::fs::write(&bundle, theirs.cert.pem()).expect("bundle");
    let later = sfvapi::tls::reqwest_builder().build().expect("client");
    assert_eq!(
        get(&later, trusted).await,
        Ok(200),
        "the roots read first are still trusted"
    );
    assert!(get(&later, untrusted).await.is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
