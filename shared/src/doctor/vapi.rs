//! `vapi.*`: the stack's Vapi key works; each assistant the stack names (`VAPI_ASSISTANT_ID`,
//! `VAPI_INBOUND_ASSISTANT_ID`, the routing rules' `call.assistantId`) exists, sends its server
//! messages to the stack's webhook through an HMAC credential that exists and signs with a
//! secret the stack accepts, and has a `server.backoffPlan` (without one Vapi sends each message
//! once). Reads only: `GET /credential`, `GET /assistant/{id}`
//! (<https://docs.vapi.ai/api-reference/credentials/list>,
//! <https://docs.vapi.ai/api-reference/assistants/get>).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use subtle::ConstantTimeEq as _;

use crate::routing::Routing;
use crate::secrets::SecretString;
use crate::vapi::client::DEFAULT_BASE_URL;

use super::{Check, Target};

/// A read from Vapi: the status and the JSON body (Null when there is none).
async fn get(
    http: &reqwest::Client,
    base: &str,
    key: &SecretString,
    path: &str,
) -> Result<(u16, Value), String> {
    let resp = http
        .get(format!("{base}{path}"))
        .bearer_auth(key.expose())
        .send()
        .await
        .map_err(|e| format!("GET {path}: {}", crate::secrets::error_chain(&e)))?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await.unwrap_or(Value::Null)))
}

/// Vapi's error message (`{"message": "…" | ["…"], …}`).
fn message(body: &Value) -> String {
    crate::vapi::client::message_of(body).unwrap_or_else(|| "no message".into())
}

/// The server messages sfvapi acts on: the tool answers, the call's status (a call that ends
/// without a report), and the report.
pub const NEEDED_MESSAGES: [&str; 3] = ["tool-calls", "status-update", "end-of-call-report"];

fn server_messages(prefix: &str, id: &str, list: &Value) -> Check {
    let check = format!("{prefix}.server-messages");
    let Some(list) = list.as_array() else {
        return Check::warn(
            check,
            format!("assistant {id} sets no serverMessages: Vapi's default set applies"),
            format!(
                "set serverMessages to include {} as events/assistant.json does",
                NEEDED_MESSAGES.join(", ")
            ),
        );
    };
    let missing: Vec<&str> = NEEDED_MESSAGES
        .into_iter()
        .filter(|m| !list.iter().any(|l| l.as_str() == Some(m)))
        .collect();
    if missing.is_empty() {
        Check::pass(
            check,
            format!("serverMessages include {}", NEEDED_MESSAGES.join(", ")),
        )
    } else {
        Check::fail(
            check,
            format!(
                "assistant {id}'s serverMessages lack {}: sfvapi never hears of them",
                missing.join(", ")
            ),
            format!("add {} to serverMessages: {SETUP}", missing.join(", ")),
        )
    }
}

const SETUP: &str = "run `sfvapi-admin setup vapi --webhook-url <the stack's VapiWebhookUrl>`, or set it in Vapi's dashboard (docs/connect-vapi.md)";

pub async fn check(
    target: &Target,
    key: Option<&SecretString>,
    server_secrets: &[SecretString],
) -> Vec<Check> {
    let mut out = Vec::new();
    let Some(key) = key else {
        // `secret.vapi` already failed and says why.
        return out;
    };
    let base = target
        .var("VAPI_BASE_URL")
        .unwrap_or(DEFAULT_BASE_URL)
        .trim_end_matches('/')
        .to_owned();
    let http = match crate::tls::reqwest_builder()
        .timeout(Duration::from_secs(10))
        .build()
    {
        Ok(h) => h,
        Err(e) => {
            out.push(Check::fail(
                "vapi.key",
                e.to_string(),
                "report this as a bug",
            ));
            return out;
        }
    };
    let credentials = match get(&http, &base, key, "/credential").await {
        Ok((200, Value::Array(all))) => {
            out.push(Check::pass("vapi.key", "the private key works"));
            all
        }
        Ok((401, body)) => {
            out.push(Check::fail(
                "vapi.key",
                format!("Vapi refused the key: {}", message(&body)),
                "put the org's private API key (dashboard → API Keys) into VAPI_SECRET_ARN's api_key",
            ));
            return out;
        }
        Ok((status, body)) => {
            out.push(Check::fail(
                "vapi.key",
                format!("GET /credential → {status}: {}", message(&body)),
                "check VAPI_BASE_URL and Vapi's status page, then run doctor again",
            ));
            return out;
        }
        Err(e) => {
            out.push(Check::fail(
                "vapi.key",
                e,
                "check VAPI_BASE_URL and the network",
            ));
            return out;
        }
    };

    // Every assistant the stack names, once each.
    let mut assistants: Vec<(String, &str)> = Vec::new();
    let mut add = |id: &str, from: &'static str| {
        if !assistants.iter().any(|(a, _)| a == id) {
            assistants.push((id.to_owned(), from));
        }
    };
    match target.var("VAPI_ASSISTANT_ID") {
        Some(id) => add(id, "VAPI_ASSISTANT_ID"),
        None => out.push(Check::fail(
            "vapi.assistant",
            "VAPI_ASSISTANT_ID is not set",
            format!("set the stack's VapiAssistantId; {SETUP} creates the assistant"),
        )),
    }
    if let Some(id) = target.var("VAPI_INBOUND_ASSISTANT_ID") {
        add(id, "VAPI_INBOUND_ASSISTANT_ID");
    }
    if let Ok(routing) = Routing::from_env(&target.lookup()) {
        for rule in routing.rules() {
            if let Some(id) = &rule.action.assistant_id {
                add(id, "a routing rule's call.assistantId");
            }
        }
    }

    let mut checked_credentials = BTreeSet::new();
    let mut org_id: Option<String> = None;
    for (id, from) in assistants {
        let prefix = format!("vapi.assistant.{id}");
        let assistant = match get(&http, &base, key, &format!("/assistant/{id}")).await {
            Ok((200, a)) => a,
            Ok((404, _)) => {
                out.push(Check::fail(
                    format!("{prefix}.exists"),
                    format!("assistant {id} ({from}) does not exist in this Vapi org"),
                    format!("{SETUP}; then set {from} to the id it prints"),
                ));
                continue;
            }
            Ok((status, body)) => {
                out.push(Check::fail(
                    format!("{prefix}.exists"),
                    format!("GET /assistant/{id} → {status}: {}", message(&body)),
                    "check the id and the key's org",
                ));
                continue;
            }
            Err(e) => {
                out.push(Check::fail(
                    format!("{prefix}.exists"),
                    e,
                    "check the network",
                ));
                continue;
            }
        };
        out.push(Check::pass(
            format!("{prefix}.exists"),
            format!("assistant {id} ({from}) exists"),
        ));
        if org_id.is_none() {
            org_id = assistant["orgId"].as_str().map(str::to_owned);
        }
        let server = &assistant["server"];
        let url = server["url"].as_str();
        out.push(match (url, target.webhook_url.as_deref()) {
            (None, _) => Check::fail(
                format!("{prefix}.server-url"),
                format!("assistant {id} has no server.url: sfvapi hears nothing of its calls"),
                SETUP,
            ),
            (Some(u), None) => Check::warn(
                format!("{prefix}.server-url"),
                format!("server.url is {u}; the stack's webhook is unknown"),
                "pass --webhook-url (the stack's VapiWebhookUrl output) to check it",
            ),
            (Some(u), Some(w)) if u.trim_end_matches('/') == w.trim_end_matches('/') => {
                Check::pass(
                    format!("{prefix}.server-url"),
                    format!("server.url is the stack's webhook {w}"),
                )
            }
            (Some(u), Some(w)) => Check::fail(
                format!("{prefix}.server-url"),
                format!("server.url is {u}, not the stack's webhook {w}"),
                SETUP,
            ),
        });
        out.push(if server["backoffPlan"].is_object() {
            Check::pass(format!("{prefix}.backoff-plan"), "server.backoffPlan set")
        } else {
            Check::fail(
                format!("{prefix}.backoff-plan"),
                format!("assistant {id} has no server.backoffPlan: Vapi sends each server message once, and a report lost to one failed request is never retried"),
                format!("give server a backoffPlan (events/assistant.json has one: exponential, 3 retries): {SETUP}"),
            )
        });
        out.push(server_messages(&prefix, &id, &assistant["serverMessages"]));
        let Some(cred_id) = server["credentialId"].as_str() else {
            out.push(Check::fail(
                format!("{prefix}.credential"),
                format!("assistant {id} has no server.credentialId: its messages are unsigned and the webhook refuses them (401)"),
                SETUP,
            ));
            continue;
        };
        let credential = credentials
            .iter()
            .find(|c| c["id"].as_str() == Some(cred_id));
        let plan = credential.map(|c| &c["authenticationPlan"]);
        match plan {
            None => {
                out.push(Check::fail(
                    format!("{prefix}.credential"),
                    format!("server.credentialId {cred_id} names no credential of this org"),
                    SETUP,
                ));
                continue;
            }
            Some(p) if p["type"].as_str() != Some("hmac") => {
                out.push(Check::fail(
                    format!("{prefix}.credential"),
                    format!(
                        "credential {cred_id} is not an HMAC credential ({})",
                        p["type"].as_str().unwrap_or("no type")
                    ),
                    SETUP,
                ));
                continue;
            }
            Some(_) => out.push(Check::pass(
                format!("{prefix}.credential"),
                format!("signs with the HMAC credential {cred_id}"),
            )),
        }
        if !checked_credentials.insert(cred_id.to_owned()) {
            continue;
        }
        let cred_check = format!("vapi.credential.{cred_id}.secret");
        out.push(match plan.and_then(|p| p["secretKey"].as_str()) {
            // Vapi may not show a stored secret; then only a signed call tells.
            None => Check::warn(
                cred_check,
                format!("Vapi does not show credential {cred_id}'s secret: it cannot be compared"),
                "place a test call and watch the webhook's logs for 401s",
            ),
            Some(secret) => {
                let accepted = server_secrets
                    .iter()
                    .any(|s| bool::from(s.expose().as_bytes().ct_eq(secret.as_bytes())));
                if accepted {
                    Check::pass(cred_check, format!("credential {cred_id} signs with a secret the stack accepts"))
                } else {
                    Check::fail(
                        cred_check,
                        format!("credential {cred_id} signs with a secret that is not in VAPI_SERVER_SECRET_ARN's server_secrets: every server message gets 401"),
                        "put the credential's secret into server_secrets (a list during a rotation), or run `sfvapi-admin setup vapi` to set the credential from the stack's secret",
                    )
                }
            }
        });
    }
    out.extend(phone_number(target, &http, &base, key).await);
    out.push(concurrency(target, &http, &base, key, org_id.as_deref()).await);
    out.extend(webhook_end_to_end(target, &http, server_secrets).await);
    out
}

/// `vapi.phone-number.*`: the stack's `VAPI_PHONE_NUMBER_ID` exists (`GET /phone-number/{id}`,
/// <https://docs.vapi.ai/api-reference/phone-numbers/get>) and, when inbound calls are on
/// (`VAPI_INBOUND_ASSISTANT_ID`), sends them to the webhook: its `server.url` is the webhook and
/// it has no assistant, squad or workflow of its own (with one, Vapi answers with it and never
/// asks the webhook: <https://docs.vapi.ai/server-url/events>, `assistant-request`).
async fn phone_number(
    target: &Target,
    http: &reqwest::Client,
    base: &str,
    key: &SecretString,
) -> Vec<Check> {
    let fail = |detail: String, fix: &str| vec![Check::fail("vapi.phone-number", detail, fix)];
    let set_id = "set the stack's VapiPhoneNumberId to the id in Vapi's dashboard → Phone Numbers";
    let Some(id) = target.var("VAPI_PHONE_NUMBER_ID") else {
        return fail(
            "VAPI_PHONE_NUMBER_ID is not set: sfvapi has no number to call from".into(),
            set_id,
        );
    };
    let number = match get(http, base, key, &format!("/phone-number/{id}")).await {
        Ok((200, n)) => n,
        Ok((status, body)) => {
            return fail(
                format!("GET /phone-number/{id} → {status}: {}", message(&body)),
                set_id,
            )
        }
        Err(e) => return fail(e, "check the network"),
    };
    let mut out = Vec::new();
    let shown = number["number"]
        .as_str()
        .map(crate::ids::mask_phone)
        .unwrap_or_else(|| id.to_owned());
    out.push(Check::pass(
        "vapi.phone-number",
        format!("phone number {id} ({shown}) exists"),
    ));
    if target.var("VAPI_INBOUND_ASSISTANT_ID").is_none() {
        return out;
    }
    let url = number["server"]["url"].as_str();
    out.push(match (url, target.webhook_url.as_deref()) {
        (Some(u), Some(w)) if u.trim_end_matches('/') == w.trim_end_matches('/') => Check::pass(
            "vapi.phone-number.server-url",
            format!("inbound calls ask the stack's webhook {w}"),
        ),
        (Some(u), None) => Check::warn(
            "vapi.phone-number.server-url",
            format!("the number's server.url is {u}; the stack's webhook is unknown"),
            "pass --webhook-url (the stack's VapiWebhookUrl output) to check it",
        ),
        (u, _) => Check::fail(
            "vapi.phone-number.server-url",
            format!(
                "inbound is on but the number's server.url is {}: inbound calls never reach sfvapi",
                u.unwrap_or("not set")
            ),
            SETUP,
        ),
    });
    let own: Vec<String> = ["assistantId", "squadId", "workflowId"]
        .into_iter()
        .filter_map(|k| number[k].as_str().map(|v| format!("{k} {v}")))
        .collect();
    out.push(if own.is_empty() {
        Check::pass(
            "vapi.phone-number.assistant",
            "the number has no assistant of its own: Vapi asks the webhook (assistant-request)",
        )
    } else {
        Check::fail(
            "vapi.phone-number.assistant",
            format!(
                "the number answers with its own {}: Vapi never asks the webhook, so inbound routing and caller lookup do not run",
                own.join(", ")
            ),
            "Vapi dashboard → Phone Numbers → the number → Inbound: remove the assistant (PATCH /phone-number/{id} {\"assistantId\": null}) and keep the Server URL",
        )
    });
    out
}

/// `vapi.concurrency`: the org's concurrency limit (Vapi's `Org.concurrencyLimit`, read with
/// `GET /org/{id}`; the org's id is an assistant's `orgId`) is at least the stack's
/// `VAPI_MAX_CONCURRENT_CALLS` (default 10): beyond the limit Vapi answers `POST /call` with
/// a call that never connects (<https://docs.vapi.ai/calls/call-concurrency>). When Vapi does
/// not show it, a warning saying so. Vapi's published schema marks `Org.concurrencyLimit`
/// deprecated ("the maximum number of calls that can be active at any given time"); its
/// `Subscription.concurrencyLimitIncluded` / `…Purchased` carry no description saying how they
/// add up, so they are not read.
async fn concurrency(
    target: &Target,
    http: &reqwest::Client,
    base: &str,
    key: &SecretString,
    org_id: Option<&str>,
) -> Check {
    let id = "vapi.concurrency";
    let wanted: u64 = target
        .var("VAPI_MAX_CONCURRENT_CALLS")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u64::from(crate::pacing::DEFAULT_MAX_CONCURRENT_CALLS));
    let unreadable = |why: String| {
        Check::warn(
            id,
            format!("the org's concurrency limit could not be read ({why})"),
            format!("check in Vapi's dashboard (Billing) that the org allows at least {wanted} concurrent calls (VapiMaxConcurrentCalls), or lower VapiMaxConcurrentCalls"),
        )
    };
    let Some(org) = org_id else {
        return unreadable("no assistant showed its orgId".into());
    };
    match get(http, base, key, &format!("/org/{org}")).await {
        Ok((200, body)) => match body["concurrencyLimit"].as_u64() {
            Some(limit) if limit >= wanted => Check::pass(
                id,
                format!("the org allows {limit} concurrent calls; the stack uses up to {wanted}"),
            ),
            Some(limit) => Check::fail(
                id,
                format!("the org allows {limit} concurrent calls but VapiMaxConcurrentCalls is {wanted}: calls beyond {limit} are blocked and never connect"),
                format!("set VapiMaxConcurrentCalls={limit} (sam deploy --parameter-overrides), or raise the org's limit in Vapi's dashboard"),
            ),
            None => unreadable("GET /org shows no concurrencyLimit".into()),
        },
        Ok((status, body)) => unreadable(format!("GET /org/{org} → {status}: {}", message(&body))),
        Err(e) => unreadable(e),
    }
}

/// `webhook.signed` / `webhook.unsigned`: the webhook end to end, through the stack's public
/// URL: a server message signed as Vapi's HMAC credential signs (the stack's first server
/// secret; `x-timestamp`, hex `x-signature` of `"{timestamp}.{body}"`) gets 200, the same
/// message unsigned 401. The message is one sfvapi acknowledges and ignores.
async fn webhook_end_to_end(
    target: &Target,
    http: &reqwest::Client,
    server_secrets: &[SecretString],
) -> Vec<Check> {
    let Some(url) = target.webhook_url.as_deref() else {
        return vec![Check::warn(
            "webhook.signed",
            "the stack's webhook URL is unknown",
            "pass --webhook-url (the stack's VapiWebhookUrl output) or --stack",
        )];
    };
    let Some(secret) = server_secrets.first() else {
        // `secret.vapi-server` already failed and says why.
        return Vec::new();
    };
    let body = r#"{"message":{"type":"sfvapi-doctor","timestamp":0}}"#;
    let ts = crate::now_millis().to_string();
    let mac = crate::signature::hmac_parts(
        crate::signature::Algorithm::Sha256,
        secret.expose().as_bytes(),
        &[ts.as_bytes(), b".", body.as_bytes()],
    );
    let send = |signed: bool| {
        let mut req = http
            .post(url)
            .header("content-type", "application/json")
            .body(body);
        if signed {
            req = req
                .header("x-timestamp", &ts)
                .header("x-signature", hex::encode(&mac));
        }
        req.send()
    };
    let mut out = Vec::new();
    out.push(match send(true).await {
        Ok(r) if r.status().as_u16() == 200 => Check::pass(
            "webhook.signed",
            format!("a message signed with the server secret gets 200 from {url}"),
        ),
        Ok(r) if r.status().as_u16() == 401 => Check::fail(
            "webhook.signed",
            format!("a message signed with the first of server_secrets gets 401 from {url}"),
            "the deployed webhook reads another secret than VAPI_SERVER_SECRET_ARN, or another VAPI_AUTH_MODES: redeploy, and check the function's variables",
        ),
        Ok(r) => Check::fail(
            "webhook.signed",
            format!("a signed message gets {} from {url}", r.status()),
            "check the webhook's logs (`make logs FUNCTION=vapi-webhook`)",
        ),
        Err(e) => Check::fail(
            "webhook.signed",
            format!("POST {url}: {}", crate::secrets::error_chain(&e)),
            "check the URL (the stack's VapiWebhookUrl output) and the network",
        ),
    });
    out.push(match send(false).await {
        Ok(r) if r.status().as_u16() == 401 => {
            Check::pass("webhook.unsigned", "an unsigned message gets 401")
        }
        Ok(r) => Check::fail(
            "webhook.unsigned",
            format!(
                "an unsigned message gets {}, not 401: anyone can send the webhook messages",
                r.status()
            ),
            "set VapiAuthModes to hmac (sam deploy --parameter-overrides VapiAuthModes=hmac)",
        ),
        Err(e) => Check::fail(
            "webhook.unsigned",
            format!("POST {url}: {}", crate::secrets::error_chain(&e)),
            "check the URL and the network",
        ),
    });
    out
}
