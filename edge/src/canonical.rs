//! Canonical JSON text, the input of deterministic event ids.
//!
//! Written here rather than relying on `serde_json`'s map order: that order
//! depends on whether some crate in the build enabled `preserve_order`, and the
//! Worker and `contrail serve` are different builds that must derive the same id
//! for the same message.

use serde_json::Value;

/// Appends `value` as JSON with object keys sorted by their UTF-8 bytes and no
/// insignificant whitespace.
pub fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    // serde_json's string escaping is fixed (it escapes only `"`, `\` and control
    // characters), so delegating to it is deterministic.
    out.push_str(&serde_json::to_string(s).expect("strings always serialise"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_sorted_at_every_level_and_whitespace_dropped() {
        let v: Value =
            serde_json::from_str(r#"{ "b": 1, "a": {"z": [1, {"y": null, "x": "é\n"}], "m": true} }"#).unwrap();
        let mut out = String::new();
        write_canonical(&v, &mut out);
        assert_eq!(out, r#"{"a":{"m":true,"z":[1,{"x":"é\n","y":null}]},"b":1}"#);
    }
}
