//! An order-preserving, borrowing JSON object used to rewrite events: untouched fields are
//! copied byte for byte, changed fields are re-serialized.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

/// One field value: the original raw JSON, or replacement JSON text.
#[derive(Debug, Clone)]
pub enum Field<'a> {
    /// The value as it was in the input.
    Raw(&'a RawValue),
    /// New JSON text (already serialized).
    New(String),
}

impl Field<'_> {
    /// The JSON text of this value.
    pub fn json(&self) -> &str {
        match self {
            Field::Raw(r) => r.get(),
            Field::New(s) => s,
        }
    }
}

/// A JSON object as an ordered list of fields.
#[derive(Debug, Default, Clone)]
pub struct RawObject<'a> {
    /// Fields in input order.
    pub fields: Vec<(Cow<'a, str>, Field<'a>)>,
}

impl<'a> RawObject<'a> {
    /// Parses a JSON object (borrowing from `text`).
    pub fn parse(text: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The raw JSON text of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.json())
    }

    /// Parses the value of `key` as `T` (None if absent or of another type).
    pub fn get_as<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.get(key).and_then(|t| serde_json::from_str(t).ok())
    }

    /// Replaces (or appends) `key` with the JSON text `json`.
    pub fn set(&mut self, key: &str, json: String) {
        if let Some((_, v)) = self.fields.iter_mut().find(|(k, _)| k == key) {
            *v = Field::New(json);
        } else {
            self.fields
                .push((Cow::Owned(key.to_string()), Field::New(json)));
        }
    }

    /// Replaces `key` with a serializable value.
    pub fn set_value<T: serde::Serialize + ?Sized>(&mut self, key: &str, value: &T) {
        // Serializing plain numbers, strings and maps cannot fail.
        if let Ok(json) = serde_json::to_string(value) {
            self.set(key, json);
        }
    }

    /// Writes the object as compact JSON.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json_string(out, k);
            out.push(b':');
            out.extend_from_slice(v.json().as_bytes());
        }
        out.push(b'}');
    }

    /// The object as a JSON string.
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        self.write_to(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_json_string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else if let Ok(j) = serde_json::to_string(s) {
        out.extend_from_slice(j.as_bytes());
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for RawObject<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut fields = Vec::with_capacity(map.size_hint().unwrap_or(10));
                while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
                    let v: &'de RawValue = map.next_value()?;
                    fields.push((k, Field::Raw(v)));
                }
                Ok(RawObject { fields })
            }
        }
        d.deserialize_map(V)
    }
}

/// A key that borrows from the input when it has no escapes.
#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);
