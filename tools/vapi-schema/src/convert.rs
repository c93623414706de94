//! OpenAPI 3.0 schema objects → JSON Schema draft 2020-12, with the reading Vapi's API enforces.
//!
//! Constructs found in Vapi's document (checked on the vendored copy, 981 component schemas):
//! 176 `nullable`, 577 `oneOf` (29 with a `discriminator`), 886 `allOf` (all of them a single
//! `$ref` wrapper on a property, never composed with `properties` of their own), 33 `enum` beside
//! `type: array`, and a few `enum`s of strings under `type: object` (e.g. `BackoffPlan.type`).

use serde_json::{json, Map, Value};

/// Converts every component schema. `schemas` is the document's `components.schemas`; the result
/// keeps the same names, so `#/components/schemas/X` references still resolve.
pub fn convert(schemas: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    for (name, schema) in schemas {
        out.insert(name.clone(), node(schema, schemas));
    }
    for (pointer, replacement) in errata() {
        if let Some(slot) = out.pointer_mut_in(&pointer) {
            *slot = replacement;
        }
    }
    Value::Object(out)
}

/// Places where the published document contradicts Vapi's own documentation of the same field.
fn errata() -> Vec<(String, Value)> {
    vec![(
        // `BackoffPlan.excludedStatusCodes` is typed `items: {type: object}`, but its own
        // description and example (Vapi OpenAPI `BackoffPlan`: "example": [400, 401, 403, 404])
        // and Vapi's dashboard use HTTP status numbers.
        "/BackoffPlan/properties/excludedStatusCodes/items".to_owned(),
        json!({ "type": "number" }),
    )]
}

trait PointerIn {
    fn pointer_mut_in(&mut self, pointer: &str) -> Option<&mut Value>;
}

impl PointerIn for Map<String, Value> {
    fn pointer_mut_in(&mut self, pointer: &str) -> Option<&mut Value> {
        let rest = pointer.strip_prefix('/')?;
        let (first, tail) = rest.split_once('/').unwrap_or((rest, ""));
        let value = self.get_mut(first)?;
        if tail.is_empty() {
            Some(value)
        } else {
            value.pointer_mut(&format!("/{tail}"))
        }
    }
}

/// Converts one schema object, children first.
fn node(schema: &Value, schemas: &Map<String, Value>) -> Value {
    let Value::Object(obj) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in obj {
        let converted = match key.as_str() {
            // Maps of property name → schema (the names are data, not keywords).
            "properties" | "patternProperties" => match value {
                Value::Object(props) => Value::Object(
                    props
                        .iter()
                        .map(|(name, s)| (name.clone(), node(s, schemas)))
                        .collect(),
                ),
                other => other.clone(),
            },
            "items" | "additionalProperties" | "not" => node(value, schemas),
            "allOf" | "anyOf" | "oneOf" => match value {
                Value::Array(list) => Value::Array(list.iter().map(|s| node(s, schemas)).collect()),
                other => other.clone(),
            },
            // OpenAPI-only keywords, consumed below.
            "nullable" | "discriminator" => continue,
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }

    enum_beside_type(&mut out);
    js_pattern(&mut out);

    if let Some(Value::Array(variants)) = out.remove("oneOf") {
        let originals = obj.get("oneOf").and_then(Value::as_array);
        union(
            &mut out,
            variants,
            originals.map(Vec::as_slice).unwrap_or_default(),
            obj.get("discriminator"),
            schemas,
        );
    }

    // Unknown properties are errors: Vapi's API (class-validator with `forbidNonWhitelisted`)
    // answers 400 "property X should not exist". A schema that says otherwise keeps its word.
    if out.contains_key("properties")
        && !out.contains_key("additionalProperties")
        && !out.contains_key("unevaluatedProperties")
    {
        if ["allOf", "anyOf", "if"]
            .iter()
            .any(|k| out.contains_key(*k))
        {
            // Properties of composed subschemas count as known only under unevaluatedProperties
            // (additionalProperties sees only this object's own `properties`).
            out.insert("unevaluatedProperties".into(), Value::Bool(false));
        } else {
            out.insert("additionalProperties".into(), Value::Bool(false));
        }
    }

    let converted = Value::Object(out);
    if obj.get("nullable") == Some(&Value::Bool(true)) {
        nullable(converted)
    } else {
        converted
    }
}

/// `nullable: true` (OpenAPI 3.0) → the value may also be `null`.
fn nullable(schema: Value) -> Value {
    let Value::Object(mut obj) = schema else {
        return schema;
    };
    if let Some(Value::String(t)) = obj.get("type").cloned() {
        obj.insert("type".into(), json!([t, "null"]));
        if let Some(Value::Array(values)) = obj.get_mut("enum") {
            if !values.contains(&Value::Null) {
                values.push(Value::Null);
            }
        }
        Value::Object(obj)
    } else {
        // No single type to widen (e.g. `{"allOf":[{"$ref":…}],"nullable":true}`).
        json!({ "anyOf": [{ "type": "null" }, Value::Object(obj)] })
    }
}

/// Two quirks of `enum` next to `type`:
/// - beside `type: array` the enum lists the allowed items (Vapi OpenAPI `Assistant.serverMessages`:
///   `{"type":"array","enum":[…],"items":{…}}`), so it moves into `items`;
/// - when its values contradict the `type` (`BackoffPlan.type`: `{"type":"object","enum":["fixed",
///   "exponential"]}`), the enum is what Vapi checks and the `type` is dropped.
fn enum_beside_type(obj: &mut Map<String, Value>) {
    let Some(Value::Array(values)) = obj.get("enum").cloned() else {
        return;
    };
    match obj.get("type").and_then(Value::as_str) {
        Some("array") => {
            obj.remove("enum");
            let items = obj.entry("items").or_insert_with(|| json!({}));
            if let Value::Object(items) = items {
                items.entry("enum").or_insert(Value::Array(values));
            }
        }
        Some(t) if !values.iter().all(|v| v.is_null() || is_type(v, t)) => {
            obj.remove("type");
        }
        _ => {}
    }
}

/// `pattern` is written as a JavaScript regex literal in Vapi's document (`/^[a-zA-Z0-9_-]{1,64}$/`,
/// `/^\p{L}…$/u`: class-validator's `@Matches`); JSON Schema wants the bare expression. A pattern
/// that is an unexpanded constant name (`ORG_ROLE_OR_CUSTOM_ROLE_PATTERN`) says nothing and is dropped.
fn js_pattern(obj: &mut Map<String, Value>) {
    let Some(Value::String(pattern)) = obj.get("pattern") else {
        return;
    };
    if let Some(rest) = pattern.strip_prefix('/') {
        if let Some(end) = rest.rfind('/') {
            let flags = &rest[end + 1..];
            if flags.chars().all(|c| c.is_ascii_alphabetic()) {
                let bare = rest[..end].replace("\\/", "/");
                obj.insert("pattern".into(), Value::String(bare));
            }
        }
    } else if pattern.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
        obj.remove("pattern");
    }
}

fn is_type(value: &Value, t: &str) -> bool {
    match t {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        _ => false,
    }
}

/// `oneOf` → the union Vapi means.
///
/// Vapi's document is generated from its NestJS DTOs, where a union is picked by a tag property
/// (`type`, `provider`, `role`, …) and then validated as that one class. Read as JSON Schema
/// `oneOf`, loose variants (all properties optional) let one value match several variants and
/// fail "valid under more than one schema", and a bad value gets only "valid under none".
/// So: when every variant carries the tag with disjoint values (from `discriminator.mapping`
/// where the document gives one, else inferred from the variants' single-valued enums), a value
/// with the tag must carry a known one and is validated against exactly that variant (`if`/`then`:
/// errors name the real problem); a value without it must match at least one variant (`anyOf`). Without a usable tag the
/// union is an `anyOf`.
fn union(
    out: &mut Map<String, Value>,
    variants: Vec<Value>,
    originals: &[Value],
    discriminator: Option<&Value>,
    schemas: &Map<String, Value>,
) {
    let tagged = tag_of(originals, discriminator, schemas);
    let any_of = Value::Array(variants.clone());
    let Some((property, tags)) = tagged else {
        out.insert("anyOf".into(), any_of);
        return;
    };
    let all: Vec<Value> = tags.iter().flatten().cloned().collect();
    let dispatch: Vec<Value> = tags
        .into_iter()
        .zip(variants)
        .map(|(values, variant)| {
            json!({
                "if": { "properties": { &property: { "enum": values } } },
                "then": variant,
            })
        })
        .collect();
    // A sibling `allOf` (e.g. `observabilityPlan: {allOf:[X], oneOf:[X]}`) stays as it is.
    // A value that has the tag must carry a known one ("type … is not one of [the variants]")
    // and is then checked as that variant only.
    out.insert(
        "if".into(),
        json!({ "type": "object", "required": [&property] }),
    );
    out.insert(
        "then".into(),
        json!({ "properties": { &property: { "enum": all } }, "allOf": dispatch }),
    );
    out.insert("else".into(), json!({ "anyOf": any_of }));
}

/// The tag property of a union and each variant's tag values, if every variant has one and no
/// two variants share a value.
fn tag_of(
    originals: &[Value],
    discriminator: Option<&Value>,
    schemas: &Map<String, Value>,
) -> Option<(String, Vec<Vec<Value>>)> {
    if originals.len() < 2 {
        return None;
    }
    let named = discriminator
        .and_then(|d| d.get("propertyName"))
        .and_then(Value::as_str);
    let mapping = discriminator
        .and_then(|d| d.get("mapping"))
        .and_then(Value::as_object);
    if let (Some(property), Some(mapping)) = (named, mapping) {
        let tags: Option<Vec<Vec<Value>>> = originals
            .iter()
            .map(|v| {
                let target = v.get("$ref")?.as_str()?;
                let values: Vec<Value> = mapping
                    .iter()
                    .filter(|(_, r)| r.as_str() == Some(target))
                    .map(|(tag, _)| Value::String(tag.clone()))
                    .collect();
                (!values.is_empty()).then_some(values)
            })
            .collect();
        if let Some(tags) = tags.filter(|t| disjoint(t)) {
            return Some((property.to_owned(), tags));
        }
    }
    let resolved: Vec<&Map<String, Value>> = originals
        .iter()
        .map(|v| resolve(v, schemas))
        .collect::<Option<_>>()?;
    let mut candidates: Vec<String> = match named {
        Some(p) => vec![p.to_owned()],
        None => resolved[0]
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default(),
    };
    // Prefer the tags Vapi's DTOs use.
    candidates.sort_by_key(|c| match c.as_str() {
        "type" => 0,
        "provider" => 1,
        "role" => 2,
        _ => 3,
    });
    candidates.into_iter().find_map(|property| {
        let tags: Option<Vec<Vec<Value>>> = resolved
            .iter()
            .map(|s| {
                let values = s
                    .get("properties")?
                    .get(&property)?
                    .get("enum")?
                    .as_array()?;
                (!values.is_empty()).then(|| values.clone())
            })
            .collect();
        tags.filter(|t| disjoint(t)).map(|t| (property, t))
    })
}

fn disjoint(tags: &[Vec<Value>]) -> bool {
    let mut seen = Vec::new();
    for value in tags.iter().flatten() {
        if seen.contains(&value) {
            return false;
        }
        seen.push(value);
    }
    true
}

/// The object schema a variant stands for: a `$ref` into `components.schemas`, a one-element
/// `allOf` wrapper around one, or an inline object.
fn resolve<'a>(
    variant: &'a Value,
    schemas: &'a Map<String, Value>,
) -> Option<&'a Map<String, Value>> {
    if let Some(target) = variant.get("$ref").and_then(Value::as_str) {
        let name = target.strip_prefix("#/components/schemas/")?;
        return schemas.get(name)?.as_object();
    }
    if let Some([only]) = variant
        .get("allOf")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    {
        return resolve(only, schemas);
    }
    variant.as_object().filter(|o| o.contains_key("properties"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schemas(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn nullable_string_widens_the_type_and_the_enum() {
        let out = convert(&schemas(json!({
            "A": {"type": "string", "nullable": true, "enum": ["x"]}
        })));
        assert_eq!(
            out["A"],
            json!({"type": ["string", "null"], "enum": ["x", null]})
        );
    }

    #[test]
    fn nullable_without_a_type_becomes_any_of_null() {
        let out = convert(&schemas(json!({
            "A": {"allOf": [{"$ref": "#/components/schemas/B"}], "nullable": true},
            "B": {"type": "object"}
        })));
        assert_eq!(
            out["A"],
            json!({"anyOf": [{"type": "null"}, {"allOf": [{"$ref": "#/components/schemas/B"}]}]})
        );
    }

    #[test]
    fn objects_with_properties_are_closed_unless_they_say_otherwise() {
        let out = convert(&schemas(json!({
            "Closed": {"type": "object", "properties": {"a": {"type": "string"}}},
            "Open": {"type": "object", "properties": {"a": {}}, "additionalProperties": true},
            "Free": {"type": "object"}
        })));
        assert_eq!(out["Closed"]["additionalProperties"], json!(false));
        assert_eq!(out["Open"]["additionalProperties"], json!(true));
        assert!(out["Free"].get("additionalProperties").is_none());
    }

    #[test]
    fn composed_objects_use_unevaluated_properties() {
        let out = convert(&schemas(json!({
            "A": {"type": "object", "properties": {"a": {}}, "allOf": [{"$ref": "#/components/schemas/B"}]},
            "B": {"type": "object"}
        })));
        assert_eq!(out["A"]["unevaluatedProperties"], json!(false));
        assert!(out["A"].get("additionalProperties").is_none());
    }

    #[test]
    fn enum_beside_array_constrains_the_items() {
        let out = convert(&schemas(json!({
            "A": {"type": "array", "enum": ["a", "b"], "items": {"type": "string"}},
            "B": {"type": "array", "enum": ["a"]}
        })));
        assert_eq!(
            out["A"],
            json!({"type": "array", "items": {"type": "string", "enum": ["a", "b"]}})
        );
        assert_eq!(out["B"], json!({"type": "array", "items": {"enum": ["a"]}}));
    }

    #[test]
    fn enum_of_strings_under_type_object_drops_the_type() {
        let out = convert(&schemas(json!({
            "A": {"type": "object", "enum": ["fixed", "exponential"]}
        })));
        assert_eq!(out["A"], json!({"enum": ["fixed", "exponential"]}));
    }

    #[test]
    fn one_of_with_inferred_tag_dispatches_on_it() {
        let out = convert(&schemas(json!({
            "U": {"oneOf": [{"$ref": "#/components/schemas/X"}, {"$ref": "#/components/schemas/Y"}]},
            "X": {"type": "object", "properties": {"type": {"type": "string", "enum": ["x"]}}},
            "Y": {"type": "object", "properties": {"type": {"type": "string", "enum": ["y"]}}}
        })));
        let u = &out["U"];
        assert!(u.get("oneOf").is_none());
        assert_eq!(u["if"], json!({"type": "object", "required": ["type"]}));
        assert_eq!(u["then"]["properties"]["type"]["enum"], json!(["x", "y"]));
        assert_eq!(
            u["then"]["allOf"][1]["then"],
            json!({"$ref": "#/components/schemas/Y"})
        );
        assert_eq!(u["else"]["anyOf"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn one_of_with_discriminator_mapping_uses_it() {
        let out = convert(&schemas(json!({
            "U": {
                "oneOf": [{"$ref": "#/components/schemas/X"}, {"$ref": "#/components/schemas/Y"}],
                "discriminator": {"propertyName": "kind", "mapping": {
                    "ex": "#/components/schemas/X", "why": "#/components/schemas/Y"}}
            },
            "X": {"type": "object", "properties": {"kind": {"type": "string"}}},
            "Y": {"type": "object", "properties": {"kind": {"type": "string"}}}
        })));
        assert_eq!(
            out["U"]["then"]["properties"]["kind"]["enum"],
            json!(["ex", "why"])
        );
        assert!(out["U"].get("discriminator").is_none());
    }

    #[test]
    fn one_of_without_a_tag_becomes_any_of() {
        let out = convert(&schemas(json!({
            "U": {"oneOf": [{"type": "string", "enum": ["off"]}, {"type": "string"}]}
        })));
        assert_eq!(
            out["U"],
            json!({"anyOf": [{"type": "string", "enum": ["off"]}, {"type": "string"}]})
        );
    }

    #[test]
    fn one_of_with_shared_tag_values_becomes_any_of() {
        let out = convert(&schemas(json!({
            "U": {"oneOf": [{"$ref": "#/components/schemas/X"}, {"$ref": "#/components/schemas/Y"}]},
            "X": {"type": "object", "properties": {"type": {"enum": ["a", "b"]}}},
            "Y": {"type": "object", "properties": {"type": {"enum": ["b"]}}}
        })));
        assert!(out["U"].get("anyOf").is_some());
        assert!(out["U"].get("if").is_none());
    }

    #[test]
    fn javascript_regex_literals_become_bare_patterns() {
        let out = convert(&schemas(json!({
            "A": {"type": "string", "pattern": "/^[a-z]{1,64}$/"},
            "B": {"type": "string", "pattern": "/^a(?:\\/b)*$/u"},
            "C": {"type": "string", "pattern": "ORG_ROLE_OR_CUSTOM_ROLE_PATTERN"},
            "D": {"type": "string", "pattern": "^org-[a-z0-9-]+$"}
        })));
        assert_eq!(out["A"]["pattern"], json!("^[a-z]{1,64}$"));
        assert_eq!(out["B"]["pattern"], json!("^a(?:/b)*$"));
        assert!(out["C"].get("pattern").is_none());
        assert_eq!(out["D"]["pattern"], json!("^org-[a-z0-9-]+$"));
    }

    #[test]
    fn backoff_plan_status_codes_are_numbers() {
        let out = convert(&schemas(json!({
            "BackoffPlan": {"type": "object", "properties": {
                "excludedStatusCodes": {"type": "array", "items": {"type": "object"}}}}
        })));
        assert_eq!(
            out["BackoffPlan"]["properties"]["excludedStatusCodes"]["items"],
            json!({"type": "number"})
        );
    }
}
