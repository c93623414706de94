//! The conversion applied to Vapi's real document: what Vapi's API accepts passes, what it rejects
//! fails with an error naming the problem.

use serde_json::{json, Value};

use super::{validate, Contract};

fn minimal_call() -> Value {
    json!({
        "assistantId": "3f4b2b1e-6a0c-4f7e-9d55-2a3b4c5d6e7f",
        "phoneNumberId": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
        "customer": { "number": "+14155550123" }
    })
}

fn errors(schema: &str, value: &Value) -> Vec<String> {
    match validate(schema, value) {
        Ok(()) => panic!("{schema} accepted {value}"),
        Err(e) => e,
    }
}

#[test]
fn a_minimal_create_call_passes() {
    assert_eq!(validate("CreateCallDTO", &minimal_call()), Ok(()));
}

#[test]
fn an_unknown_property_fails_naming_it() {
    let mut body = minimal_call();
    body["customer"]["nickname"] = json!("Ada");
    let errors = errors("CreateCallDTO", &body);
    assert_eq!(
        errors,
        vec!["/customer: property nickname should not exist"]
    );
}

#[test]
fn problems_keep_the_place_apart() {
    let mut body = minimal_call();
    body["customer"]["nickname"] = json!("Ada");
    let problems = super::problems("CreateCallDTO", &body).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path, "/customer");
    assert_eq!(problems[0].dotted_path(), "customer");
    assert_eq!(problems[0].problem, "property nickname should not exist");
}

#[test]
fn a_name_of_41_characters_fails() {
    let mut body = minimal_call();
    body["name"] = json!("x".repeat(40));
    assert_eq!(validate("CreateCallDTO", &body), Ok(()));
    body["name"] = json!("x".repeat(41));
    let errors = errors("CreateCallDTO", &body);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("/name: "), "{errors:?}");
    assert!(errors[0].contains("longer than 40"), "{errors:?}");
}

#[test]
fn nullable_allows_null_and_nothing_else() {
    let mut body = minimal_call();
    // `CreateCallDTO.assistantVersion`: {"type":"string","nullable":true}
    body["assistantVersion"] = Value::Null;
    assert_eq!(validate("CreateCallDTO", &body), Ok(()));
    body["assistantVersion"] = json!(3);
    let errors = errors("CreateCallDTO", &body);
    assert!(errors[0].starts_with("/assistantVersion: "), "{errors:?}");
}

#[test]
fn enum_beside_type_array_constrains_the_items() {
    // `CreateAssistantDTO.serverMessages`: {"type":"array","enum":[…],"items":{…}}
    let ok = json!({ "serverMessages": ["end-of-call-report", "status-update", "tool-calls"] });
    assert_eq!(validate("CreateAssistantDTO", &ok), Ok(()));
    let bad = json!({ "serverMessages": ["end-of-call-report", "call-ringing"] });
    let errors = errors("CreateAssistantDTO", &bad);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].starts_with("/serverMessages/1: "), "{errors:?}");
}

#[test]
fn a_union_is_validated_as_the_variant_its_tag_names() {
    // model.tools[] is a union tagged by `type`; an endCall tool with a function's field fails
    // naming the field, not "valid under none of the schemas".
    let assistant = json!({
        "model": { "provider": "openai", "model": "gpt-4o",
                   "tools": [{ "type": "endCall", "function": { "name": "x" } }] }
    });
    let errors = errors("CreateAssistantDTO", &assistant);
    assert_eq!(
        errors,
        vec!["/model/tools/0: property function should not exist"]
    );
    let fixed = json!({
        "model": { "provider": "openai", "model": "gpt-4o", "tools": [{ "type": "endCall" }] }
    });
    assert_eq!(validate("CreateAssistantDTO", &fixed), Ok(()));
}

#[test]
fn an_unknown_union_tag_is_named() {
    let message =
        json!({ "message": { "type": "function-call", "functionCall": { "name": "x" } } });
    let errors = errors("ServerMessage", &message);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("/message/type: \"function-call\" is not one of"),
        "{errors:?}"
    );
}

#[test]
fn backoff_plan_as_vapi_documents_it_passes() {
    let server = json!({
        "url": "https://example.com/vapi/webhook",
        "credentialId": "cred_123",
        "backoffPlan": { "type": "exponential", "maxRetries": 3, "baseDelaySeconds": 1,
                         "excludedStatusCodes": [400, 401] }
    });
    assert_eq!(validate("Server", &server), Ok(()));
}

#[test]
fn an_unknown_schema_name_is_an_error_not_a_pass() {
    let errors = errors("CreateCalDTO", &json!({}));
    assert!(
        errors[0].contains("no component schema `CreateCalDTO`"),
        "{errors:?}"
    );
}

#[test]
fn every_component_schema_compiles() {
    let contract = Contract::vapi();
    let names: Vec<String> = contract.document["components"]["schemas"]
        .as_object()
        .map(|s| s.keys().cloned().collect())
        .unwrap_or_default();
    assert!(names.len() > 900, "{} schemas", names.len());
    for name in [
        "CreateCallDTO",
        "CreateAssistantDTO",
        "Call",
        "ServerMessage",
        "ServerMessageResponse",
        "ServerMessageResponseToolCalls",
    ] {
        assert!(contract.validator(name).is_ok(), "{name}");
    }
}
