//! `make watch`: every function under `cargo lambda watch` with a complete local environment.
//!
//! The local stack ([`crate::stack`]: the sandbox's fake Salesforce, Vapi and Twilio, the table
//! and every secret on DynamoDB Local and moto) is started, its variables — plus the relay's and
//! the example routing document — are written to an env file the user can read
//! ([`ENV_FILE`]), and `cargo lambda watch --env-file` runs with it. `make invoke FN=… EVENT=…`
//! then reaches any of the five functions. Stopping it (Ctrl-C, SIGTERM) stops `cargo lambda
//! watch` and the stack; `scripts/services.sh` around it stops DynamoDB Local and moto.

use std::collections::BTreeMap;

/// Where the environment of the functions is written (git-ignored: `/.local`).
pub const ENV_FILE: &str = ".local/watch.env";

/// The env file's text: a header saying where it comes from, then `KEY=VALUE` lines, sorted.
pub fn env_file(stack_env: &BTreeMap<String, String>) -> String {
    let mut env = stack_env.clone();
    // The relay (beside the stack's ingest, webhook, worker and refresher) and the example
    // routing document, whose relay rules the relay samples match.
    env.insert(
        "SF_RELAY_ORG_IDS".into(),
        sfvapi::samples::LOCAL_RELAY_ORG_ID.into(),
    );
    env.insert(
        "ROUTING_FILE".into(),
        "events/routing-event-relay.yaml".into(),
    );
    env.insert("SFVAPI_NO_METRICS".into(), "1".into());
    let mut text = String::from(
        "# The local environment of the five functions under `make watch` (cargo lambda watch\n\
         # --env-file). Written at each start from the local stack: the table and secrets on\n\
         # DynamoDB Local and moto, the sandbox's URLs. docs/configuration.md explains each\n\
         # variable; to try another value, edit it here and restart the function's watch.\n",
    );
    for (k, v) in env {
        text.push_str(&format!("{k}={v}\n"));
    }
    text
}
