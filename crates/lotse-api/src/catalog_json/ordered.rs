//! [`Ordered`]: a JSON value that keeps the order of object keys as read (a
//! `serde_json::Value` sorts them unless serde_json's `preserve_order` is on, which would
//! change every crate's maps), so stored blocks can be written back in Go's field order.

use std::collections::HashMap;

use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// Objects with this many keys or more find repeated keys through a map.
const INDEXED_FROM: usize = 16;

/// A JSON value that remembers the order of object keys.
#[derive(Debug, Clone, PartialEq)]
pub enum Ordered {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Ordered>),
    Object(Vec<(String, Ordered)>),
}

impl Serialize for Ordered {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Ordered::Null => s.serialize_unit(),
            Ordered::Bool(b) => s.serialize_bool(*b),
            Ordered::Number(n) => n.serialize(s),
            Ordered::String(v) => s.serialize_str(v),
            Ordered::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Ordered::Object(fields) => {
                let mut map = s.serialize_map(Some(fields.len()))?;
                for (k, v) in fields {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Ordered {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Ordered, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Ordered;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Ordered, E> {
                Ok(Ordered::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Ordered, E> {
                Ok(Ordered::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Ordered, E> {
                Ok(Ordered::Number(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Ordered, E> {
                Ok(Ordered::Number(n.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Ordered, E> {
                serde_json::Number::from_f64(n)
                    .map(Ordered::Number)
                    .ok_or_else(|| E::custom("not a JSON number"))
            }
            fn visit_str<E>(self, v: &str) -> Result<Ordered, E> {
                Ok(Ordered::String(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Ordered, E> {
                Ok(Ordered::String(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Ordered, A::Error> {
                let mut items = Vec::new();
                while let Some(i) = a.next_element()? {
                    items.push(i);
                }
                Ok(Ordered::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Ordered, A::Error> {
                let mut fields: Vec<(String, Ordered)> = Vec::new();
                // Where each key is, once the object is too large to search: a client's
                // `Proxy.Config` may hold a body's worth of keys, and a search per key would
                // make reading it (and every rendering of it) quadratic.
                let mut places: Option<HashMap<String, usize>> = None;
                while let Some((k, v)) = a.next_entry::<String, Ordered>()? {
                    if places.is_none() && fields.len() >= INDEXED_FROM {
                        let keys = fields.iter().enumerate();
                        places = Some(keys.map(|(i, (k, _))| (k.clone(), i)).collect());
                    }
                    let found = match &places {
                        Some(places) => places.get(&k).copied(),
                        None => fields.iter().position(|(have, _)| *have == k),
                    };
                    // A repeated key keeps its first place and its last value, as a map would.
                    match found.and_then(|i| fields.get_mut(i)) {
                        Some(slot) => slot.1 = v,
                        None => {
                            if let Some(places) = &mut places {
                                places.insert(k.clone(), fields.len());
                            }
                            fields.push((k, v));
                        }
                    }
                }
                Ok(Ordered::Object(fields))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_their_first_place_and_last_value_small_or_large() {
        let o: Ordered = serde_json::from_str(r#"{"b":1,"a":2,"b":3}"#).unwrap();
        let expected = Ordered::Object(vec![
            ("b".into(), Ordered::Number(3.into())),
            ("a".into(), Ordered::Number(2.into())),
        ]);
        assert_eq!(o, expected);
        // Past the indexed size: the same rule, and a large object reads in linear time.
        let n = 50_000;
        let mut text: Vec<String> = (0..n).map(|i| format!(r#""k{i}":{i}"#)).collect();
        text.push(r#""k3":"again""#.into());
        let o: Ordered = serde_json::from_str(&format!("{{{}}}", text.join(","))).unwrap();
        let Ordered::Object(fields) = o else {
            panic!("an object")
        };
        assert_eq!(fields.len(), n);
        assert_eq!(fields[3], ("k3".into(), Ordered::String("again".into())));
        assert_eq!(fields[n - 1].0, format!("k{}", n - 1));
    }
}
