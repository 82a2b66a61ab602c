//! Wire types shared by the inferperf client and server: OpenAI, SGLang `/generate`,
//! `ProfileReqInput`, diffusion API and the perf-dump schema. One definition, used on both sides.
//!
//! Being the crate every other one depends on, it also holds the few primitives they all share:
//! the stable hash ([`hash`]), the atomic file writer ([`fs`]), date formats ([`dates`]) and the
//! open-file limit ([`os_limits`]).
//!
//! Conventions: request types keep optional fields as `Option` (skipped when `None`), so the
//! server can tell "absent" from "default" and clients send only what they set; response types
//! default missing fields, so clients can read other compatible servers' answers too.

pub mod dates;
pub mod diffusion;
pub mod error;
pub mod fs;
pub mod generate;
pub mod hash;
pub mod openai;
pub mod os_limits;
pub mod perf_dump;
pub mod profile;
pub mod server_info;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

pub use error::{ErrorCode, ErrorDetail, ErrorResponse};

/// A string or a list of strings (`stop`, `/tokenize` `prompt`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum StringOrList {
    One(String),
    Many(Vec<String>),
}

impl StringOrList {
    /// All strings, in order (one element for [`StringOrList::One`]).
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// One value or a batch of values, as SGLang's `/generate` takes `text`, `sampling_params`
/// and `rid`. A JSON array is a batch; anything else is one value. Deserialization keeps the
/// inner error (e.g. the wrong field of a `sampling_params` object) instead of a generic
/// "did not match any variant".
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OneOrBatch<T> {
    One(T),
    Batch(Vec<T>),
}

impl<T> OneOrBatch<T> {
    /// The single value, or the `i`-th of a batch (`None` past its end).
    pub fn get(&self, i: usize) -> Option<&T> {
        match self {
            Self::One(v) => Some(v),
            Self::Batch(v) => v.get(i),
        }
    }

    /// `Some(len)` for a batch, `None` for one value.
    pub fn batch_len(&self) -> Option<usize> {
        match self {
            Self::One(_) => None,
            Self::Batch(v) => Some(v.len()),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrBatch<T> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = OneOrBatch<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a value or a list of values")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                Vec::<T>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(OneOrBatch::Batch)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(OneOrBatch::One)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                T::deserialize(de::value::StrDeserializer::<E>::new(s)).map(OneOrBatch::One)
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                T::deserialize(de::value::StringDeserializer::<E>::new(s)).map(OneOrBatch::One)
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
                T::deserialize(de::value::BoolDeserializer::<E>::new(b)).map(OneOrBatch::One)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                T::deserialize(de::value::U64Deserializer::<E>::new(n)).map(OneOrBatch::One)
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                T::deserialize(de::value::I64Deserializer::<E>::new(n)).map(OneOrBatch::One)
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Self::Value, E> {
                T::deserialize(de::value::F64Deserializer::<E>::new(n)).map(OneOrBatch::One)
            }
        }
        de.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Merge extra top-level keys into a serialized request body, overriding existing keys (what
/// `bench_serving --extra-request-body` does). Does nothing when `body` is not an object.
pub fn merge_extra_body(
    body: &mut serde_json::Value,
    extra: &serde_json::Map<String, serde_json::Value>,
) {
    if let Some(obj) = body.as_object_mut() {
        for (k, v) in extra {
            obj.insert(k.clone(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, PartialEq, Deserialize)]
    struct P {
        n: u32,
    }

    #[test]
    fn one_or_batch_keeps_inner_errors() {
        let one: OneOrBatch<P> = serde_json::from_value(json!({"n": 1})).unwrap();
        assert_eq!(one, OneOrBatch::One(P { n: 1 }));
        let many: OneOrBatch<P> = serde_json::from_value(json!([{"n": 1}, {"n": 2}])).unwrap();
        assert_eq!(many.batch_len(), Some(2));
        let err = serde_json::from_str::<OneOrBatch<P>>(r#"{"n": "x"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid type"), "{err}");
        let s: OneOrBatch<String> = serde_json::from_value(json!("a")).unwrap();
        assert_eq!(s, OneOrBatch::One("a".to_string()));
    }

    #[test]
    fn merge_extra_overrides() {
        let mut body = json!({"a": 1, "b": 2});
        let extra = json!({"b": 3, "c": 4});
        merge_extra_body(&mut body, extra.as_object().unwrap());
        assert_eq!(body, json!({"a": 1, "b": 3, "c": 4}));
    }
}
