//! Vapi's published API contract, for contract tests and the sandbox's fake Vapi.
//!
//! Owns the vendored copy of Vapi's OpenAPI 3.0 document (`vendor/openapi-schemas.json`, see the
//! README beside it), its one-time conversion into JSON Schema draft 2020-12 ([`convert`]) and
//! validation of a value against one of its component schemas by name (`CreateCallDTO`,
//! `CreateAssistantDTO`, `ServerMessage`, `ServerMessageResponseToolCalls`, `Call`, …).
//!
//! The conversion makes the document mean what Vapi's API enforces:
//! - `nullable: true` (OpenAPI 3.0) allows `null`;
//! - unknown properties are errors, as Vapi's API answers 400 "property X should not exist";
//! - a `oneOf` is the union Vapi means (picked by its discriminator), not "exactly one matches";
//! - `enum` beside `type: array` constrains the items.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, ValidationError, Validator};
use serde_json::{json, Map, Value};

mod convert;

pub use convert::convert;

/// Vapi's OpenAPI document as published (reduced: no prose), compiled into the crate so every
/// test and the sandbox run from the project's own clone.
const VAPI_OPENAPI: &str = include_str!("../vendor/openapi-schemas.json");

/// What can go wrong before a value is even looked at.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    #[error("the vendored Vapi OpenAPI document is not valid JSON ({0}): restore vendor/openapi-schemas.json")]
    Document(String),
    #[error("Vapi's OpenAPI document has no component schema `{0}`: check the name in vendor/openapi-schemas.json (`components.schemas`)")]
    UnknownSchema(String),
    #[error("component schema `{name}` does not compile as JSON Schema ({message}): the OpenAPI conversion in vapi-schema misses a construct")]
    Compile { name: String, message: String },
}

/// A converted OpenAPI document: component schemas by name, each compiled on first use.
pub struct Contract {
    /// `{"components":{"schemas":{…}}}` after [`convert`], so `#/components/schemas/X` resolves.
    document: Value,
    load_error: Option<String>,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

impl Contract {
    /// Vapi's contract, parsed and converted once per process.
    pub fn vapi() -> &'static Contract {
        static VAPI: OnceLock<Contract> = OnceLock::new();
        VAPI.get_or_init(|| match serde_json::from_str::<Value>(VAPI_OPENAPI) {
            Ok(document) => Contract::from_openapi(&document),
            Err(e) => Contract {
                document: json!({}),
                load_error: Some(ContractError::Document(e.to_string()).to_string()),
                validators: Mutex::new(HashMap::new()),
            },
        })
    }

    /// Converts any OpenAPI 3.0 document (its `components.schemas`); used for Vapi's and in tests.
    pub fn from_openapi(openapi: &Value) -> Contract {
        let schemas = openapi
            .pointer("/components/schemas")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        Contract {
            document: json!({ "components": { "schemas": convert(&schemas) } }),
            load_error: None,
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// The converted JSON Schema of one component (its `$ref`s point into the same document).
    pub fn schema(&self, name: &str) -> Option<&Value> {
        self.document
            .pointer(&format!("/components/schemas/{name}"))
    }

    /// Checks `value` against the component schema `schema_name`. The errors read
    /// `<JSON pointer>: <problem>`, e.g. `/assistant: property endCallFunctionEnabled should not exist`.
    pub fn validate(&self, schema_name: &str, value: &Value) -> Result<(), Vec<String>> {
        self.problems(schema_name, value)
            .map_err(|problems| problems.iter().map(Problem::to_string).collect())
    }

    /// [`Contract::validate`] with each problem's place and wording apart (the sandbox words
    /// them as Vapi's API does). An unknown schema is one problem at `/`.
    pub fn problems(&self, schema_name: &str, value: &Value) -> Result<(), Vec<Problem>> {
        let validator = self.validator(schema_name).map_err(|e| {
            vec![Problem {
                path: String::new(),
                problem: e.to_string(),
            }]
        })?;
        let mut problems = Vec::new();
        for error in validator.iter_errors(value) {
            describe(&error, &mut problems);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    fn validator(&self, name: &str) -> Result<Arc<Validator>, ContractError> {
        if let Some(e) = &self.load_error {
            return Err(ContractError::Document(e.clone()));
        }
        let mut cache = self
            .validators
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = cache.get(name) {
            return Ok(v.clone());
        }
        if self.schema(name).is_none() {
            return Err(ContractError::UnknownSchema(name.to_owned()));
        }
        let mut root = Map::new();
        root.insert(
            "$schema".into(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        root.insert("$ref".into(), json!(format!("#/components/schemas/{name}")));
        root.insert("components".into(), self.document["components"].clone());
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .build(&Value::Object(root))
            .map_err(|e| ContractError::Compile {
                name: name.to_owned(),
                message: e.to_string(),
            })?;
        let validator = Arc::new(validator);
        cache.insert(name.to_owned(), validator.clone());
        Ok(validator)
    }
}

/// One way a value breaks a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON pointer to the offending value (`""` for the root, `/customer/number`, …).
    pub path: String,
    /// What is wrong with it, e.g. `property nickname should not exist`.
    pub problem: String,
}

impl Problem {
    /// The pointer's segments, dot-separated (`customer.number`), as Vapi's messages name fields.
    pub fn dotted_path(&self) -> String {
        self.path
            .trim_start_matches('/')
            .split('/')
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect::<Vec<_>>()
            .join(".")
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{at}: {}", self.problem)
    }
}

/// [`Contract::validate`] against Vapi's contract.
pub fn validate(schema_name: &str, value: &Value) -> Result<(), Vec<String>> {
    Contract::vapi().validate(schema_name, value)
}

/// [`Contract::problems`] against Vapi's contract.
pub fn problems(schema_name: &str, value: &Value) -> Result<(), Vec<Problem>> {
    Contract::vapi().problems(schema_name, value)
}

/// One readable line per problem. Unknown properties are worded as Vapi's API words them; a
/// failed union reports the errors of the alternative that came closest (fewest errors, and the
/// value's own shape matched), not just "not valid under any of the given schemas".
fn describe(error: &ValidationError<'_>, out: &mut Vec<Problem>) {
    let path = error.instance_path().to_string();
    let problem = |problem: String| Problem {
        path: path.clone(),
        problem,
    };
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            for property in unexpected {
                out.push(problem(format!("property {property} should not exist")));
            }
        }
        ValidationErrorKind::AnyOf { context } => {
            let closest = context
                .iter()
                .filter(|branch| !branch.is_empty())
                .min_by_key(|branch| {
                    let shallow = branch.iter().any(|e| e.instance_path().to_string() == path);
                    (shallow, branch.len())
                });
            match closest {
                Some(branch) if context.len() > 1 => {
                    for e in branch {
                        describe(e, out);
                    }
                }
                _ => out.push(problem(error.to_string())),
            }
        }
        _ => out.push(problem(error.to_string())),
    }
}

#[cfg(test)]
mod tests;
