//! JSON as SNAP bodies are read: an object holding the same key twice is
//! refused. `serde_json` would keep the last value, so the stored raw body
//! (which a person reads first to last) could say another amount or status
//! than the one acted on.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Parses `bytes` in one pass; the error names a repeated key.
pub fn parse(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice::<KeysOnce>(bytes)
        .map(|v| v.0)
        .map_err(|e| e.to_string())
}

/// A JSON document in which no object repeats a key.
struct KeysOnce(Value);

impl<'de> Deserialize<'de> for KeysOnce {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KeysOnceVisitor)
    }
}

struct KeysOnceVisitor;

impl<'de> Visitor<'de> for KeysOnceVisitor {
    type Value = KeysOnce;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, v: bool) -> Result<KeysOnce, E> {
        Ok(KeysOnce(v.into()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<KeysOnce, E> {
        Ok(KeysOnce(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<KeysOnce, E> {
        Ok(KeysOnce(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<KeysOnce, E> {
        Ok(KeysOnce(v.into()))
    }
    fn visit_str<E>(self, v: &str) -> Result<KeysOnce, E> {
        Ok(KeysOnce(v.into()))
    }
    fn visit_string<E>(self, v: String) -> Result<KeysOnce, E> {
        Ok(KeysOnce(v.into()))
    }
    fn visit_unit<E>(self) -> Result<KeysOnce, E> {
        Ok(KeysOnce(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<KeysOnce, A::Error> {
        let mut out = Vec::new();
        while let Some(KeysOnce(v)) = items.next_element()? {
            out.push(v);
        }
        Ok(KeysOnce(Value::Array(out)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<KeysOnce, A::Error> {
        let mut out = Map::new();
        while let Some(key) = entries.next_key::<String>()? {
            let KeysOnce(v) = entries.next_value()?;
            if out.contains_key(&key) {
                let shown: String = key.chars().take(64).collect();
                return Err(de::Error::custom(format!("duplicate key `{shown}`")));
            }
            out.insert(key, v);
        }
        Ok(KeysOnce(Value::Object(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn a_key_repeated_at_any_depth_is_refused_and_named() {
        let top = parse(br#"{"amount":{"value":"10.00"},"amount":{"value":"1.00"}}"#).unwrap_err();
        assert!(top.contains("duplicate key `amount`"), "{top}");
        let nested = parse(br#"{"amount":{"value":"10.00","value":"1.00"}}"#).unwrap_err();
        assert!(nested.contains("duplicate key `value`"), "{nested}");
        let in_array = parse(br#"{"a":[{"k":1,"k":2}]}"#).unwrap_err();
        assert!(in_array.contains("duplicate key `k`"), "{in_array}");
    }

    #[test]
    fn the_same_key_in_different_objects_and_ordinary_json_are_read() {
        let v = parse(br#"{"a":{"value":"1"},"b":{"value":"2"},"c":[1,2.5,null,true,"x"]}"#).unwrap();
        assert_eq!(v["b"]["value"], "2");
        let plain: serde_json::Value =
            serde_json::from_slice(br#"{"a":{"value":"1"},"b":{"value":"2"},"c":[1,2.5,null,true,"x"]}"#).unwrap();
        assert_eq!(v, plain, "the same value serde_json reads");
        assert!(parse(b"{\"a\":").is_err());
    }
}
