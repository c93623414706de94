//! `twilio.account`: the stack's Twilio credentials open its account, and the account is active.

use std::time::Duration;

use crate::twilio::{TwilioClient, TwilioCredentials, DEFAULT_BASE_URL};

use super::{Check, Target};

pub async fn check(target: &Target, creds: Option<&TwilioCredentials>) -> Vec<Check> {
    let id = "twilio.account";
    let Some(creds) = creds else {
        // No usable secret: `secret.twilio` already says why (or Twilio is off).
        return Vec::new();
    };
    let base = target.var("TWILIO_BASE_URL").unwrap_or(DEFAULT_BASE_URL);
    let client = match TwilioClient::new(base, Duration::from_secs(10)) {
        Ok(c) => c,
        Err(e) => return vec![Check::fail(id, e.to_string(), "fix TWILIO_BASE_URL")],
    };
    vec![match client.fetch_account_status(creds).await {
        Ok(status) if status == "active" => Check::pass(id, "credentials work, account active"),
        Ok(status) => Check::fail(
            id,
            format!("the account is {status}"),
            "reactivate the account in Twilio's console (Billing) or use another",
        ),
        Err(e) => Check::fail(
            id,
            format!("Twilio refused the credentials: {e}"),
            "copy the Account SID and Auth Token (or an API key) from Twilio's console into the secret TWILIO_SECRET_ARN names",
        ),
    }]
}
