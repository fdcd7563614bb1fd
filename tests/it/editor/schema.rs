//! `corsgate schema`: the committed copy is current, the example config and every good fixture
//! validate, and what corsgate rejects (unknown keys, wrong enum strings, bad durations) the schema
//! rejects too.

use std::path::Path;

use jsonschema::Validator;
use serde_json::Value;

use super::{repo, stdout_of};

const REGENERATE: &str = "cargo run -q -- schema > config/corsgate.schema.json";

/// The schema as `corsgate schema` prints it.
fn printed() -> Value {
    serde_json::from_str(&stdout_of(&["schema"])).expect("corsgate schema prints JSON")
}

fn validator() -> Validator {
    jsonschema::validator_for(&printed()).expect("the schema compiles")
}

/// TOML text as the JSON value a schema validator sees.
fn as_json(text: &str) -> Value {
    toml::from_str::<Value>(text).expect("TOML")
}

fn errors(v: &Validator, text: &str) -> Vec<String> {
    v.iter_errors(&as_json(text))
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn corsgate_accepts(text: &str) -> bool {
    corsgate::load_str(text, Path::new("schema-case.toml")).is_ok()
}

/// A small valid config; each `*_extra` is TOML lines added to that table.
fn config(server: &str, log: &str, upstream: &str, policy: &str, route: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
{server}

[log]
{log}

[upstreams.up]
url = "http://127.0.0.1:3000"
{upstream}

[policies.p]
allowed_origins = ["https://app.example.com"]
{policy}

[[routes]]
upstream = "up"
policy = "p"
{route}
"#
    )
}

#[test]
fn the_committed_schema_is_what_corsgate_schema_prints() {
    let path = repo("config/corsgate.schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == stdout_of(&["schema"]),
        "{} differs from `corsgate schema` (a config type changed). Regenerate it with:\n    {REGENERATE}",
        path.display()
    );
}

#[test]
fn the_schema_is_draft_2020_12_and_valid_against_its_meta_schema() {
    let schema = printed();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    jsonschema::meta::validate(&schema).expect("valid against the 2020-12 meta-schema");
    assert_eq!(schema["additionalProperties"], false);
    for (name, def) in schema["$defs"].as_object().expect("$defs") {
        if def["type"] == "object" {
            assert_eq!(
                def["additionalProperties"], false,
                "{name}: unknown keys allowed"
            );
        }
    }
}

#[test]
fn every_key_has_a_description_and_durations_a_pattern() {
    let schema = printed();
    let mut tables = vec![("(root)".to_owned(), &schema)];
    for (name, def) in schema["$defs"].as_object().expect("$defs") {
        tables.push((name.clone(), def));
    }
    let mut keys = 0;
    for (table, def) in tables {
        let Some(props) = def["properties"].as_object() else {
            continue;
        };
        for (key, prop) in props {
            keys += 1;
            let description = prop["description"].as_str().unwrap_or("");
            assert!(description.len() > 10, "{table}.{key}: no description");
            if key.ends_with("timeout") {
                assert_eq!(
                    prop["pattern"], "^[0-9]*[1-9][0-9]*(ms|s|m|h)$",
                    "{table}.{key}"
                );
            } else if key == "shutdown_grace" {
                assert_eq!(prop["pattern"], "^[0-9]+(ms|s|m|h)$", "{table}.{key}");
            }
        }
    }
    assert!(keys > 30, "only {keys} keys");
    let server = &schema["$defs"]["RawServer"]["properties"];
    assert_eq!(server["header_read_timeout"]["default"], "10s");
    assert_eq!(server["max_connections"]["default"], 10000);
    let policy = &schema["$defs"]["RawPolicy"]["properties"];
    assert_eq!(policy["enforcement"]["default"], "block");
    assert_eq!(
        schema["$defs"]["RawRoute"]["required"],
        serde_json::json!(["upstream", "policy"])
    );
}

#[test]
fn the_example_config_names_the_schema_and_validates() {
    let path = repo("config/corsgate.toml");
    let text = std::fs::read_to_string(&path).expect("config/corsgate.toml");
    assert_eq!(
        text.lines().next(),
        Some("#:schema ./corsgate.schema.json"),
        "taplo reads the directive only from the top of the file"
    );
    assert!(repo("config/corsgate.schema.json").is_file());
    let errs = errors(&validator(), &text);
    assert!(errs.is_empty(), "{}: {errs:#?}", path.display());
    assert!(corsgate_accepts(&text), "corsgate rejects the example");
}

#[test]
fn every_good_fixture_and_the_image_config_validate() {
    let v = validator();
    let mut files: Vec<_> = std::fs::read_dir(repo("tests/fixtures/good"))
        .expect("tests/fixtures/good")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files.push(repo("deploy/container/corsgate.toml"));
    for file in files {
        let text = std::fs::read_to_string(&file).expect("fixture");
        let errs = errors(&v, &text);
        assert!(errs.is_empty(), "{}: {errs:#?}", file.display());
    }
}

#[test]
fn what_corsgate_rejects_the_schema_rejects() {
    let v = validator();
    let cases = [
        (
            "unknown top-level table",
            "[servre]\nlisten = \"x\"\n".to_owned() + &config("", "", "", "", ""),
        ),
        (
            "unknown server key",
            config("listen_addr = \"127.0.0.1:1\"", "", "", "", ""),
        ),
        (
            "unknown policy key",
            config("", "", "", "allowed_origin = [\"https://a.example\"]", ""),
        ),
        (
            "unknown route key",
            config("", "", "", "", "prefix = \"/v1\""),
        ),
        (
            "unknown upstream key",
            config("", "", "retries = 3", "", ""),
        ),
        ("log format", config("", "format = \"xml\"", "", "", "")),
        (
            "enforcement",
            config("", "", "", "enforcement = \"report\"", ""),
        ),
        (
            "enforcement case",
            config("", "", "", "enforcement = \"Block\"", ""),
        ),
        (
            "preflight_status",
            config("", "", "", "preflight_status = 201", ""),
        ),
        ("max_age range", config("", "", "", "max_age = 100000", "")),
        (
            "duration without unit",
            config("header_read_timeout = \"10\"", "", "", "", ""),
        ),
        (
            "fractional duration",
            config("shutdown_grace = \"1.5s\"", "", "", "", ""),
        ),
        (
            "spelled-out unit",
            config("", "", "timeout = \"10sec\"", "", ""),
        ),
        (
            "day unit",
            config("", "", "connect_timeout = \"1d\"", "", ""),
        ),
        (
            "spaced duration",
            config("", "", "timeout = \"10 s\"", "", ""),
        ),
        (
            "duration as a number",
            config("", "", "timeout = 10", "", ""),
        ),
        (
            "route without policy",
            config("", "", "", "", "").replace("policy = \"p\"\n", ""),
        ),
    ];
    for (what, text) in cases {
        assert!(!corsgate_accepts(&text), "{what}: corsgate accepts it");
        let errs = errors(&v, &text);
        assert!(!errs.is_empty(), "{what}: the schema accepts\n{text}");
    }
}

#[test]
fn every_choice_the_schema_offers_is_accepted_by_corsgate() {
    let v = validator();
    let schema = printed();
    let choices = |def: &str, key: &str| -> Vec<Value> {
        schema["$defs"][def]["properties"][key]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{def}.{key} has no enum"))
            .clone()
    };
    let mut texts = Vec::new();
    for f in choices("RawLog", "format") {
        texts.push(config("", &format!("format = {f}"), "", "", ""));
    }
    for e in choices("RawPolicy", "enforcement") {
        texts.push(config("", "", "", &format!("enforcement = {e}"), ""));
    }
    for s in choices("RawPolicy", "preflight_status") {
        texts.push(config("", "", "", &format!("preflight_status = {s}"), ""));
    }
    for d in ["500ms", "10s", "5m", "1h"] {
        texts.push(config(
            &format!("header_read_timeout = \"{d}\""),
            "",
            "",
            "",
            "",
        ));
    }
    texts.push(
        config("listen = [\"127.0.0.1:0\", \"[::1]:0\"]", "", "", "", "").replacen(
            "listen = \"127.0.0.1:0\"\n",
            "",
            1,
        ),
    );
    for text in texts {
        assert!(errors(&v, &text).is_empty(), "schema rejects\n{text}");
        assert!(corsgate_accepts(&text), "corsgate rejects\n{text}");
    }
}
