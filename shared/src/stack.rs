//! A deployed stack as the admin commands read it (`--stack NAME`): CloudFormation
//! `DescribeStacks` gives its outputs (the table, the secrets' ARNs, the webhook URL) and the
//! parameters it was deployed with; each becomes the variable the stack's functions read
//! (template.yaml's `Environment.Variables`), so `doctor` and `setup` see what the functions see.
//! The secrets themselves are then read from Secrets Manager by their ARNs, never printed.
//! (<https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeStacks.html>)

use std::collections::BTreeMap;

/// Output → variable. `VAPI_WEBHOOK_URL` is the admin commands' own (the webhook the assistants
/// must send to).
pub const OUTPUTS: &[(&str, &str)] = &[
    ("TableName", "TABLE_NAME"),
    ("IngestSecretArn", "SF_INGEST_SECRET_ARN"),
    ("SalesforceConnectionSecretArn", "SF_CONNECTION_SECRET_ARN"),
    ("SalesforceOperatorSecretArn", "SF_OPERATOR_SECRET_ARN"),
    ("VapiServerSecretArn", "VAPI_SERVER_SECRET_ARN"),
    ("VapiSecretArn", "VAPI_SECRET_ARN"),
    ("TwilioSecretArn", "TWILIO_SECRET_ARN"),
    ("VapiWebhookUrl", "VAPI_WEBHOOK_URL"),
];

/// Parameter → the variable template.yaml sets from it (`VAR: !Ref Parameter`).
/// `SalesforceEventBusName` sets no function variable: it is the bus the stack's rule listens on,
/// `SF_RELAY_EVENT_BUS` for `doctor`'s event relay check.
pub const PARAMETERS: &[(&str, &str)] = &[
    ("CallCap", "CALL_CAP"),
    ("CallHours", "CALL_HOURS"),
    ("FollowupChannel", "FOLLOWUP_CHANNEL"),
    ("FollowupInboundPolicy", "FOLLOWUP_INBOUND_POLICY"),
    ("FollowupPolicy", "FOLLOWUP_POLICY"),
    ("HighValueRevenue", "HIGH_VALUE_REVENUE"),
    ("InboundRecentCallDays", "INBOUND_RECENT_CALL_DAYS"),
    ("MaxAttempts", "MAX_ATTEMPTS"),
    ("QuietHours", "QUIET_HOURS"),
    ("QuietHoursUtcOffset", "QUIET_HOURS_UTC_OFFSET"),
    ("SalesforceAuthFlow", "SF_AUTH_FLOW"),
    ("SalesforceJwtAudience", "SF_JWT_AUDIENCE"),
    ("SalesforceLoginUrl", "SF_LOGIN_URL"),
    ("SalesforceMyDomainUrl", "SF_MY_DOMAIN_URL"),
    ("OutboundMessageOrgIds", "SF_OUTBOUND_ORG_IDS"),
    ("SalesforceRefreshMarginSecs", "SF_REFRESH_MARGIN_SECS"),
    ("EventRelayOrgIds", "SF_RELAY_ORG_IDS"),
    ("SalesforceSessionTimeoutSecs", "SF_SESSION_TIMEOUT_SECS"),
    ("SignatureScheme", "SF_SIGNATURE_SCHEME"),
    ("TwilioFrom", "TWILIO_FROM"),
    ("TwilioMessagingServiceSid", "TWILIO_MESSAGING_SERVICE_SID"),
    ("VapiAssistantId", "VAPI_ASSISTANT_ID"),
    (
        "AssistantRequestDeadlineMs",
        "VAPI_ASSISTANT_REQUEST_DEADLINE_MS",
    ),
    ("VapiAuthModes", "VAPI_AUTH_MODES"),
    ("VapiInboundAssistantId", "VAPI_INBOUND_ASSISTANT_ID"),
    ("VapiMaxCallSecs", "VAPI_MAX_CALL_SECS"),
    ("VapiMaxConcurrentCalls", "VAPI_MAX_CONCURRENT_CALLS"),
    ("VapiPhoneNumberId", "VAPI_PHONE_NUMBER_ID"),
    ("SalesforceEventBusName", "SF_RELAY_EVENT_BUS"),
];

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error("CloudFormation DescribeStacks {stack}: {detail}; check the stack name, the AWS region and credentials")]
    Describe { stack: String, detail: String },
    #[error(
        "stack {stack} has no output {output}: deploy the current template.yaml (`sam deploy`)"
    )]
    MissingOutput { stack: String, output: &'static str },
}

/// The variables of stack `name`, from its outputs and parameters. An empty parameter value is
/// left out (the functions treat it as unset).
pub async fn variables(
    sdk: &aws_config::SdkConfig,
    name: &str,
) -> Result<BTreeMap<String, String>, StackError> {
    let cfn = aws_sdk_cloudformation::Client::new(sdk);
    let answer = cfn
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| StackError::Describe {
            stack: name.to_owned(),
            detail: crate::secrets::error_chain(&e),
        })?;
    let Some(stack) = answer.stacks().first() else {
        return Err(StackError::Describe {
            stack: name.to_owned(),
            detail: "no such stack".into(),
        });
    };
    let outputs: BTreeMap<&str, &str> = stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?, o.output_value()?)))
        .collect();
    let parameters: BTreeMap<&str, &str> = stack
        .parameters()
        .iter()
        .filter_map(|p| Some((p.parameter_key()?, p.parameter_value()?)))
        .collect();
    let mut env = BTreeMap::new();
    for (output, var) in OUTPUTS {
        let value = outputs.get(output).ok_or(StackError::MissingOutput {
            stack: name.to_owned(),
            output,
        })?;
        env.insert((*var).to_owned(), (*value).to_owned());
    }
    for (parameter, var) in PARAMETERS {
        if let Some(v) = parameters.get(parameter).filter(|v| !v.trim().is_empty()) {
            env.insert((*var).to_owned(), (*v).to_owned());
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = include_str!("../../template.yaml");

    /// Every `VAR: !Ref <Parameter>` of template.yaml is in [`PARAMETERS`], and every entry there
    /// is such a line (or the event bus); every output named exists.
    #[test]
    fn the_mapping_is_template_yamls() {
        let section = TEMPLATE
            .split_once("\nParameters:\n")
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let params: Vec<&str> = section
            .lines()
            .take_while(|l| l.is_empty() || l.starts_with(' ') || l.starts_with('#'))
            .filter_map(|l| {
                let name = l.strip_prefix("  ")?.strip_suffix(':')?;
                (!name.starts_with(' ') && !name.starts_with('#')).then_some(name)
            })
            .collect();
        let mut pairs: Vec<(String, String)> = TEMPLATE
            .lines()
            .filter_map(|l| {
                let (var, rest) = l.trim().split_once(": !Ref ")?;
                let param = rest.trim();
                (var.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                    && params.contains(&param))
                .then(|| (param.to_owned(), var.to_owned()))
            })
            .collect();
        pairs.sort();
        pairs.dedup();
        let mut ours: Vec<(String, String)> = PARAMETERS
            .iter()
            .filter(|(p, _)| *p != "SalesforceEventBusName")
            .map(|(p, v)| ((*p).to_owned(), (*v).to_owned()))
            .collect();
        ours.sort();
        assert_eq!(ours, pairs);
        assert!(params.contains(&"SalesforceEventBusName"));
        for (output, _) in OUTPUTS {
            assert!(
                TEMPLATE.contains(&format!("\n  {output}:\n")),
                "template.yaml has no output {output}"
            );
        }
    }
}
