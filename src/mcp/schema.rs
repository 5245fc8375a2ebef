//! Checks a value against the JSON Schema a tool declares (its `inputSchema` for the
//! arguments, its `outputSchema` for `structuredContent`), so a handler gets arguments that
//! fit and a client gets told which field does not.
//!
//! The keywords understood: `type` (one or a list; `integer` is a number without a
//! fraction), `properties`, `required`, `additionalProperties` (`false` or a schema),
//! `items`, `enum`, `const`, `anyOf`, `oneOf`, `allOf`, `if`/`then`/`else`, and `$ref` to the schema's own
//! `#/$defs/…` or `#/definitions/…`. Every other keyword is passed over: a value is refused
//! only for a reason this file can name. The schema itself is never changed (it is listed
//! exactly as declared).

use serde_json::{Map, Value};

/// How deep `$ref`s and nesting may go before the schema is taken as cyclic.
const MAX_DEPTH: usize = 64;

/// Checks `value` against `schema`; the error names the first field that does not fit,
/// as a path from `root` (`arguments.address.city`).
pub fn check(schema: &Value, value: &Value, root: &str) -> Result<(), String> {
    Checker { root: schema }.check(schema, value, &Path::Root(root), 0)
}

/// Where a value sits, written out only when an error names it (a check that passes
/// allocates nothing).
enum Path<'a> {
    Root(&'a str),
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl std::fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Path::Root(root) => f.write_str(root),
            Path::Field(parent, name) => write!(f, "{parent}.{name}"),
            Path::Index(parent, i) => write!(f, "{parent}[{i}]"),
        }
    }
}

struct Checker<'s> {
    root: &'s Value,
}

/// The keywords of one schema object this file understands, found in one pass over it
/// (a lookup per keyword would cost more than the check: most are absent).
#[derive(Default)]
struct Keywords<'s> {
    reference: Option<&'s Value>,
    types: Option<&'s Value>,
    enumeration: Option<&'s Value>,
    constant: Option<&'s Value>,
    all: Option<&'s Value>,
    any: Option<&'s Value>,
    one: Option<&'s Value>,
    condition: Option<&'s Value>,
    then: Option<&'s Value>,
    otherwise: Option<&'s Value>,
    items: Option<&'s Value>,
    required: Option<&'s Value>,
    properties: Option<&'s Value>,
    additional: Option<&'s Value>,
}

impl<'s> Keywords<'s> {
    fn of(schema: &'s Map<String, Value>) -> Keywords<'s> {
        let mut k = Keywords::default();
        for (keyword, value) in schema {
            let slot = match keyword.as_str() {
                "$ref" => &mut k.reference,
                "type" => &mut k.types,
                "enum" => &mut k.enumeration,
                "const" => &mut k.constant,
                "allOf" => &mut k.all,
                "anyOf" => &mut k.any,
                "oneOf" => &mut k.one,
                "if" => &mut k.condition,
                "then" => &mut k.then,
                "else" => &mut k.otherwise,
                "items" => &mut k.items,
                "required" => &mut k.required,
                "properties" => &mut k.properties,
                "additionalProperties" => &mut k.additional,
                _ => continue,
            };
            *slot = Some(value);
        }
        k
    }
}

impl<'s> Checker<'s> {
    fn check(
        &self,
        schema: &'s Value,
        value: &Value,
        path: &Path<'_>,
        depth: usize,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "the schema for {path} nests too deep (a $ref cycle?)"
            ));
        }
        let Value::Object(schema) = schema else {
            // `true` (or anything that is not an object) allows everything; `false` nothing.
            return match schema {
                Value::Bool(false) => Err(format!("{path} is not allowed")),
                _ => Ok(()),
            };
        };
        let k = Keywords::of(schema);
        if let Some(Value::String(reference)) = k.reference {
            let target = self.resolve(reference).ok_or_else(|| {
                format!("the schema for {path} refers to {reference}, which it does not define")
            })?;
            self.check(target, value, path, depth + 1)?;
        }
        if let Some(types) = k.types {
            check_type(types, value, path)?;
        }
        if let Some(Value::Array(allowed)) = k.enumeration
            && !allowed.contains(value)
        {
            return Err(format!(
                "{path} must be one of {}, not {value}",
                list(allowed)
            ));
        }
        if let Some(constant) = k.constant
            && constant != value
        {
            return Err(format!("{path} must be {constant}, not {value}"));
        }
        if let Some(Value::Array(all)) = k.all {
            for s in all {
                self.check(s, value, path, depth + 1)?;
            }
        }
        if let Some(Value::Array(any)) = k.any {
            let mut first = None;
            for s in any {
                match self.check(s, value, path, depth + 1) {
                    Ok(()) => {
                        first = None;
                        break;
                    }
                    Err(e) => {
                        first.get_or_insert(e);
                    }
                }
            }
            if let Some(e) = first {
                return Err(format!(
                    "{path} fits none of the allowed forms (first: {e})"
                ));
            }
        }
        if let Some(Value::Array(one)) = k.one {
            let fits = one
                .iter()
                .filter(|s| self.check(s, value, path, depth + 1).is_ok())
                .count();
            if fits != 1 {
                return Err(format!(
                    "{path} must fit exactly one of the allowed forms, and fits {fits}"
                ));
            }
        }
        if let Some(condition) = k.condition {
            // `if` only chooses: its own failure is never the error.
            let branch = match self.check(condition, value, path, depth + 1) {
                Ok(()) => k.then,
                Err(_) => k.otherwise,
            };
            if let Some(branch) = branch {
                self.check(branch, value, path, depth + 1)?;
            }
        }
        match value {
            Value::Object(object) => self.check_object(&k, object, path, depth),
            Value::Array(items) => match k.items {
                Some(item_schema) => items.iter().enumerate().try_for_each(|(i, item)| {
                    self.check(item_schema, item, &Path::Index(path, i), depth + 1)
                }),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }

    fn check_object(
        &self,
        k: &Keywords<'s>,
        object: &Map<String, Value>,
        path: &Path<'_>,
        depth: usize,
    ) -> Result<(), String> {
        let properties = match k.properties {
            Some(Value::Object(p)) => Some(p),
            _ => None,
        };
        if let Some(Value::Array(required)) = k.required {
            for name in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(name) {
                    let kind = properties
                        .and_then(|p| p.get(name))
                        .and_then(|p| p.get("type"))
                        .and_then(Value::as_str)
                        .map(|t| format!(" ({})", article(t)))
                        .unwrap_or_default();
                    return Err(format!("{path}.{name} is required{kind} but missing"));
                }
            }
        }
        for (name, field) in object {
            let field_path = Path::Field(path, name);
            match properties.and_then(|p| p.get(name)) {
                Some(field_schema) => self.check(field_schema, field, &field_path, depth + 1)?,
                None => match k.additional {
                    Some(Value::Bool(false)) => {
                        return Err(format!("{field_path} is not an accepted field"));
                    }
                    Some(extra) => self.check(extra, field, &field_path, depth + 1)?,
                    None => {}
                },
            }
        }
        Ok(())
    }

    /// The schema a local `$ref` names (`#`, `#/$defs/x`, `#/definitions/x`, any JSON
    /// pointer into the root schema).
    fn resolve(&self, reference: &str) -> Option<&'s Value> {
        let pointer = reference.strip_prefix('#')?;
        self.root.pointer(pointer)
    }
}

fn check_type(types: &Value, value: &Value, path: &Path<'_>) -> Result<(), String> {
    let fits = |t: &str| match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        _ => true, // an unknown type name restricts nothing we can name
    };
    let ok = match types {
        Value::String(t) => fits(t),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(fits),
        _ => true,
    };
    if ok {
        return Ok(());
    }
    let wanted = match types {
        Value::String(t) => article(t),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(article)
            .collect::<Vec<_>>()
            .join(" or "),
        _ => String::new(),
    };
    Err(format!("{path} must be {wanted}, not {}", describe(value)))
}

fn article(t: &str) -> String {
    match t {
        "object" | "array" | "integer" => format!("an {t}"),
        "null" => "null".to_string(),
        _ => format!("a {t}"),
    }
}

/// A value as an error names it: its kind, and the value itself when short.
fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => return "null".into(),
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => return "an array".into(),
        Value::Object(_) => return "an object".into(),
    };
    let text = value.to_string();
    if text.len() <= 40 {
        format!("{kind} ({text})")
    } else {
        kind.to_string()
    }
}

fn list(values: &[Value]) -> String {
    values
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {
                "address": {
                    "type": "object",
                    "properties": { "street": { "type": "string" }, "city": { "type": "string" } },
                    "required": ["city"]
                }
            },
            "properties": {
                "name": { "type": "string" },
                "age": { "type": "integer" },
                "tags": { "type": "array", "items": { "type": "string" } },
                "mode": { "enum": ["fast", "slow"] },
                "address": { "$ref": "#/$defs/address" }
            },
            "required": ["name"],
            "additionalProperties": false
        })
    }

    fn error(value: Value) -> String {
        check(&schema(), &value, "arguments").unwrap_err()
    }

    #[test]
    fn values_that_fit_pass() {
        let value = json!({"name": "a", "age": 3.0, "tags": ["x"], "mode": "fast",
                           "address": {"city": "Oslo"}});
        assert_eq!(check(&schema(), &value, "arguments"), Ok(()));
        assert_eq!(check(&json!(true), &json!(1), "x"), Ok(()));
        assert_eq!(check(&json!({}), &json!([1, "a"]), "x"), Ok(()));
    }

    #[test]
    fn each_misfit_names_its_field() {
        assert_eq!(
            error(json!({})),
            "arguments.name is required (a string) but missing"
        );
        assert_eq!(
            error(json!({"name": 3})),
            "arguments.name must be a string, not a number (3)"
        );
        assert_eq!(
            error(json!({"name": "a", "age": 1.5})),
            "arguments.age must be an integer, not a number (1.5)"
        );
        assert_eq!(
            error(json!({"name": "a", "tags": ["x", 2]})),
            "arguments.tags[1] must be a string, not a number (2)"
        );
        assert_eq!(
            error(json!({"name": "a", "mode": "medium"})),
            "arguments.mode must be one of \"fast\", \"slow\", not \"medium\""
        );
        assert_eq!(
            error(json!({"name": "a", "address": {"street": "x"}})),
            "arguments.address.city is required (a string) but missing"
        );
        assert_eq!(
            error(json!({"name": "a", "extra": 1})),
            "arguments.extra is not an accepted field"
        );
        assert_eq!(
            error(json!([])),
            "arguments must be an object, not an array"
        );
    }

    #[test]
    fn combinators_and_bad_refs_are_reported() {
        let any = json!({"anyOf": [{"type": "string"}, {"type": "integer"}]});
        assert_eq!(check(&any, &json!(2), "v"), Ok(()));
        assert!(
            check(&any, &json!(true), "v")
                .unwrap_err()
                .contains("none of")
        );
        let one = json!({"oneOf": [{"type": "number"}, {"type": "integer"}]});
        assert!(check(&one, &json!(2), "v").unwrap_err().contains("fits 2"));
        let conditional = json!({
            "if": {"properties": {"by": {"const": "phone"}}, "required": ["by"]},
            "then": {"required": ["phone"]},
            "else": {"required": ["email"]}
        });
        assert_eq!(
            check(&conditional, &json!({"by": "phone", "phone": "1"}), "v"),
            Ok(())
        );
        assert_eq!(check(&conditional, &json!({"email": "a@b"}), "v"), Ok(()));
        assert!(
            check(&conditional, &json!({"by": "phone", "email": "a@b"}), "v")
                .unwrap_err()
                .contains("v.phone is required")
        );
        assert!(
            check(&conditional, &json!({"by": "mail"}), "v")
                .unwrap_err()
                .contains("v.email is required")
        );
        let dangling = json!({"$ref": "#/$defs/nope"});
        assert!(
            check(&dangling, &json!(1), "v")
                .unwrap_err()
                .contains("does not define")
        );
        let cycle = json!({"$defs": {"a": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"});
        assert!(
            check(&cycle, &json!(1), "v")
                .unwrap_err()
                .contains("too deep")
        );
    }
}
