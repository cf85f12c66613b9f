//! `Deserialize` for wire structs that keep the fields they do not model in an `extra` map.
//!
//! `#[serde(flatten)]` does the same, but it first buffers the whole object (every string
//! copied into serde's private `Content` tree) and then deserializes it a second time. On the
//! hot path (every request body, every provider reply) that doubled the cost of decoding, so
//! these structs get a visitor that reads each field once: known keys straight into their
//! field, any other key into `extra` as a `Value`.
//!
//! ```ignore
//! deserialize_with_extra!(OaiMessage { role: req, content: def, created: def_with(zero) });
//! ```
//! A field whose JSON key differs is written `kind as "type": def`.
//! `req`: missing is an error; `def`: missing or absent is `Default::default()` (for an
//! `Option` that also covers `null`); `def_with(f)`: missing is `f()`. A repeated key is an
//! error, as with derived impls. JSON keys are the field names.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, Visitor};

/// An object key, borrowed from the input when it has no escapes.
pub(crate) struct Key<'de>(pub Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

macro_rules! deserialize_with_extra {
    ($ty:ident { $( $field:ident $( as $json:literal )? : $mode:ident $( ($default:path) )? ),* $(,)? }) => {
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> ::serde::de::Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(concat!("an object (", stringify!($ty), ")"))
                    }
                    fn visit_map<A: ::serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$ty, A::Error> {
                        use ::serde::de::Error as _;
                        $( let mut $field = None; )*
                        let mut extra = $crate::schema::JsonMap::new();
                        while let Some(key) = map.next_key::<$crate::codec::extra::Key<'de>>()? {
                            match key.0.as_ref() {
                                $( deserialize_with_extra!(@key $field $( $json )?) => {
                                    if $field.is_some() {
                                        return Err(A::Error::duplicate_field(
                                            deserialize_with_extra!(@key $field $( $json )?),
                                        ));
                                    }
                                    $field = Some(map.next_value()?);
                                } )*
                                _ => {
                                    let v: ::serde_json::Value = map.next_value()?;
                                    extra.insert(key.0.into_owned(), v);
                                }
                            }
                        }
                        Ok($ty {
                            $( $field: deserialize_with_extra!(@finish A, $field, $mode $( ($default) )?), )*
                            extra,
                        })
                    }
                }
                d.deserialize_map(V)
            }
        }
    };
    (@key $field:ident) => { stringify!($field) };
    (@key $field:ident $json:literal) => { $json };
    (@finish $a:ident, $field:ident, req) => {
        $field.ok_or_else(|| <$a::Error as ::serde::de::Error>::missing_field(stringify!($field)))?
    };
    (@finish $a:ident, $field:ident, def) => {
        $field.unwrap_or_default()
    };
    (@finish $a:ident, $field:ident, def_with ($default:path)) => {
        $field.unwrap_or_else($default)
    };
}

pub(crate) use deserialize_with_extra;

/// `Deserialize` for a "string or array" enum (message content in both chat schemas) in one
/// pass; `#[serde(untagged)]` would buffer the value and try each variant in turn.
macro_rules! text_or_list {
    ($ty:ident, $text:ident, $list:ident, $expecting:literal) => {
        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> ::serde::de::Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E>(self, v: &str) -> Result<$ty, E> {
                        Ok($ty::$text(v.to_owned()))
                    }
                    fn visit_string<E>(self, v: String) -> Result<$ty, E> {
                        Ok($ty::$text(v))
                    }
                    fn visit_seq<A: ::serde::de::SeqAccess<'de>>(
                        self,
                        seq: A,
                    ) -> Result<$ty, A::Error> {
                        ::serde::Deserialize::deserialize(
                            ::serde::de::value::SeqAccessDeserializer::new(seq),
                        )
                        .map($ty::$list)
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

pub(crate) use text_or_list;

#[cfg(test)]
mod tests {
    use crate::schema::JsonMap;

    #[derive(Debug, PartialEq)]
    struct Probe {
        name: String,
        count: u32,
        note: Option<String>,
        kind: String,
        tag: Option<String>,
        extra: JsonMap,
    }
    fn plain() -> String {
        "plain".to_owned()
    }
    deserialize_with_extra!(Probe { name: req, count: def, note: def, kind: def_with(plain), tag as "type": def });

    #[test]
    fn known_fields_in_place_unknown_kept_in_order() {
        let p: Probe =
            serde_json::from_str(r#"{"z":[1],"name":"a\"b","note":null,"a":{"x":true}}"#).unwrap();
        assert_eq!(p.name, "a\"b");
        assert_eq!(p.count, 0);
        assert_eq!(p.note, None);
        assert_eq!(p.kind, "plain");
        assert_eq!(p.tag, None);
        let q: Probe = serde_json::from_str(r#"{"name":"a","type":"t","tag":1}"#).unwrap();
        assert_eq!(q.tag.as_deref(), Some("t"));
        assert_eq!(q.extra["tag"], serde_json::json!(1));
        assert_eq!(p.extra.len(), 2);
        assert_eq!(p.extra["z"], serde_json::json!([1]));
        assert_eq!(p.extra["a"], serde_json::json!({"x": true}));
    }

    #[test]
    fn missing_required_duplicate_and_wrong_type_are_errors() {
        let e = serde_json::from_str::<Probe>(r#"{"count":1}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `name`"), "{e}");
        let e = serde_json::from_str::<Probe>(r#"{"name":"a","name":"b"}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate field `name`"), "{e}");
        let e = serde_json::from_str::<Probe>(r#"{"name":"a","count":"x"}"#).unwrap_err();
        assert!(e.to_string().contains("invalid type"), "{e}");
        let e = serde_json::from_str::<Probe>(r#"[1]"#).unwrap_err();
        assert!(e.to_string().contains("an object (Probe)"), "{e}");
        // An escaped key is still recognised.
        let p: Probe = serde_json::from_str(r#"{"n\u0061me":"a"}"#).unwrap();
        assert_eq!(p.name, "a");
    }
}
