//! The config's JSON Schema (draft 2020-12), derived from the serde types in [`super::raw`] by
//! schemars, for `corsgate schema` and for editors (taplo, Even Better TOML) through the
//! `#:schema` directive. Never written by hand: `config/corsgate.schema.json` is this output.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::Value;

use super::raw::RawConfig;

/// What `compile::parse_duration` accepts: a whole number and one of the units ms, s, m, h.
pub(crate) const DURATION_PATTERN: &str = "^[0-9]+(ms|s|m|h)$";

/// [`DURATION_PATTERN`] less the zero durations, which the timeouts reject.
pub(crate) const NONZERO_DURATION_PATTERN: &str = "^[0-9]*[1-9][0-9]*(ms|s|m|h)$";

/// A duration string such as "500ms", "10s", "5m" or "1h" (schema only; the value is parsed by
/// `compile::parse_duration`).
pub(crate) struct DurationText;

/// A duration that must be greater than zero (the timeouts).
pub(crate) struct NonZeroDurationText;

fn duration_schema(pattern: &str) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": pattern,
        "examples": ["500ms", "10s", "5m", "1h"],
    })
}

impl JsonSchema for DurationText {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        duration_schema(DURATION_PATTERN)
    }
}

impl JsonSchema for NonZeroDurationText {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        "NonZeroDuration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        duration_schema(NONZERO_DURATION_PATTERN)
    }
}

/// The schema as a JSON value.
pub(crate) fn json_schema() -> Value {
    let schema = schemars::generate::SchemaSettings::draft2020_12()
        .into_generator()
        .into_root_schema_for::<RawConfig>();
    let mut value = schema.to_value();
    strip_null(&mut value);
    unwrap_descriptions(&mut value);
    value
}

/// The schema as pretty-printed JSON with a final newline: what `corsgate schema` prints.
pub(crate) fn json_schema_text() -> String {
    format!("{:#}\n", json_schema())
}

/// TOML has no null, so an omitted key is the only way to leave an `Option` unset: drop the
/// `"null"` that schemars adds to every `Option`'s type, so editors never suggest it.
fn strip_null(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if let [only] = types.as_slice() {
                    let only = only.clone();
                    map.insert("type".into(), only);
                }
            }
            if let Some(Value::Array(any)) = map.get_mut("anyOf") {
                any.retain(|s| s.get("type").and_then(Value::as_str) != Some("null"));
                if let [only] = any.as_slice() {
                    let only = only.clone();
                    map.remove("anyOf");
                    if let Value::Object(inner) = only {
                        for (k, x) in inner {
                            map.entry(k).or_insert(x);
                        }
                    }
                }
            }
            map.values_mut().for_each(strip_null);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null),
        _ => {}
    }
}

/// Doc comments wrap at 100 columns; an editor's hover wraps itself, so keep only paragraph breaks.
fn unwrap_descriptions(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(d)) = map.get_mut("description") {
                *d = d
                    .split("\n\n")
                    .map(|p| p.split('\n').map(str::trim).collect::<Vec<_>>().join(" "))
                    .collect::<Vec<_>>()
                    .join("\n\n");
            }
            map.values_mut().for_each(unwrap_descriptions);
        }
        Value::Array(items) => items.iter_mut().for_each(unwrap_descriptions),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_duration_pattern_accepts_exactly_what_the_parser_accepts() {
        let re = regex::Regex::new(DURATION_PATTERN).expect("valid pattern");
        for s in [
            "0s", "500ms", "10s", "5m", "1h", "007m", "", "s", "10", "10 s", " 10s", "10S", "1.5s",
            "-1s", "+1s", "10sec", "1d", "10us", "1m1s", "ms",
        ] {
            assert_eq!(
                re.is_match(s),
                super::super::compile::parse_duration(s).is_ok(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn the_nonzero_pattern_accepts_exactly_the_durations_above_zero() {
        let re = regex::Regex::new(NONZERO_DURATION_PATTERN).expect("valid pattern");
        for s in [
            "0s", "000ms", "0h", "1s", "010m", "100ms", "10", "1.0s", "s",
        ] {
            let above_zero = super::super::compile::parse_duration(s).is_ok_and(|d| !d.is_zero());
            assert_eq!(re.is_match(s), above_zero, "{s:?}");
        }
    }

    #[test]
    fn no_null_is_left_in_the_schema() {
        let text = json_schema_text();
        assert!(!text.contains("\"null\""), "{text}");
    }

    #[test]
    fn deny_unknown_fields_becomes_additional_properties_false() {
        let v = json_schema();
        assert_eq!(v["additionalProperties"], false);
        assert_eq!(v["$defs"]["RawPolicy"]["additionalProperties"], false);
    }
}
