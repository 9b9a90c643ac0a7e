//! One visitor for every value of `service.yaml`: a [`Rule`] says which of YAML's forms a
//! value is read in, what serde's errors say it expected, and what each form gives;
//! [`Parse`] applies any rule. A value is checked inside the visitor because serde_yaml
//! gives a position only to an error raised while it deserializes a node.

use serde::de::{
    self, DeserializeSeed, Deserializer, Expected, MapAccess, SeqAccess, Unexpected, Visitor,
};
use std::fmt;

/// Which deserialize method serde_yaml is called with, which decides what a scalar
/// turns into.
#[derive(Clone, Copy)]
pub(super) enum Request {
    /// The scalar's text as written: resolving it would make `1.10` the float 1.1 and
    /// `0755` the integer 755.
    AsWritten,
    /// Resolved by YAML's rules: an integer, a float, a boolean, null or text; or a list.
    Resolved,
    /// `true` or `false` only (not `yes`, not `1`).
    Boolean,
    /// A mapping (an empty plain scalar reads as an empty one).
    Mapping,
}

/// A scalar as serde_yaml hands it over.
#[derive(Clone, Copy)]
pub(super) enum Scalar<'a> {
    Text(&'a str),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Bool(bool),
    Null,
}

impl<'a> Scalar<'a> {
    fn unexpected(self) -> Unexpected<'a> {
        match self {
            Scalar::Text(text) => Unexpected::Str(text),
            Scalar::Unsigned(number) => Unexpected::Unsigned(number),
            Scalar::Signed(number) => Unexpected::Signed(number),
            Scalar::Float(number) => Unexpected::Float(number),
            Scalar::Bool(value) => Unexpected::Bool(value),
            Scalar::Null => Unexpected::Unit,
        }
    }
}

/// Why a rule refused a value.
pub(super) enum Refusal {
    /// Not a form the value is written in: serde's `invalid type: …, expected …`, the
    /// wording a visitor without that `visit_` method gives.
    WrongType,
    /// The right form with a wrong value: this message.
    Invalid(String),
}

impl From<String> for Refusal {
    fn from(message: String) -> Refusal {
        Refusal::Invalid(message)
    }
}

impl From<&str> for Refusal {
    fn from(message: &str) -> Refusal {
        Refusal::Invalid(message.to_string())
    }
}

/// How one kind of value is read. Every form a rule does not take is refused as serde
/// refuses it, so a rule states only what it accepts.
pub(super) trait Rule {
    type Value;
    fn request(&self) -> Request;

    /// Completes `expected …` in an error about a value of the wrong form.
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result;

    fn take(&self, scalar: Scalar<'_>) -> Result<Self::Value, Refusal> {
        let _ = scalar;
        Err(Refusal::WrongType)
    }

    fn take_list<'de, A: SeqAccess<'de>>(&self, items: A) -> Result<Self::Value, A::Error> {
        let _ = items;
        Err(de::Error::invalid_type(Unexpected::Seq, &Expecting(self)))
    }

    fn take_map<'de, A: MapAccess<'de>>(&self, entries: A) -> Result<Self::Value, A::Error> {
        let _ = entries;
        Err(de::Error::invalid_type(Unexpected::Map, &Expecting(self)))
    }
}

struct Expecting<'a, R: ?Sized>(&'a R);

impl<R: Rule + ?Sized> Expected for Expecting<'_, R> {
    fn fmt(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(formatter)
    }
}

/// Reads a value by its rule: the seed to hand serde's map and list access.
pub(super) struct Parse<R>(pub R);

impl<R: Rule> Parse<R> {
    fn scalar<E: de::Error>(self, scalar: Scalar<'_>) -> Result<R::Value, E> {
        self.0.take(scalar).map_err(|refusal| match refusal {
            Refusal::WrongType => E::invalid_type(scalar.unexpected(), &Expecting(&self.0)),
            Refusal::Invalid(message) => E::custom(message),
        })
    }
}

impl<'de, R: Rule> DeserializeSeed<'de> for Parse<R> {
    type Value = R::Value;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<R::Value, D::Error> {
        match self.0.request() {
            // deserialize_str hands any scalar over as its source text.
            Request::AsWritten => deserializer.deserialize_str(self),
            Request::Resolved => deserializer.deserialize_any(self),
            Request::Boolean => deserializer.deserialize_bool(self),
            Request::Mapping => deserializer.deserialize_map(self),
        }
    }
}

impl<'de, R: Rule> Visitor<'de> for Parse<R> {
    type Value = R::Value;
    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(formatter)
    }
    fn visit_str<E: de::Error>(self, text: &str) -> Result<R::Value, E> {
        self.scalar(Scalar::Text(text))
    }
    fn visit_u64<E: de::Error>(self, number: u64) -> Result<R::Value, E> {
        self.scalar(Scalar::Unsigned(number))
    }
    fn visit_i64<E: de::Error>(self, number: i64) -> Result<R::Value, E> {
        self.scalar(Scalar::Signed(number))
    }
    fn visit_f64<E: de::Error>(self, number: f64) -> Result<R::Value, E> {
        self.scalar(Scalar::Float(number))
    }
    fn visit_bool<E: de::Error>(self, value: bool) -> Result<R::Value, E> {
        self.scalar(Scalar::Bool(value))
    }
    fn visit_unit<E: de::Error>(self) -> Result<R::Value, E> {
        self.scalar(Scalar::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, items: A) -> Result<R::Value, A::Error> {
        self.0.take_list(items)
    }
    fn visit_map<A: MapAccess<'de>>(self, entries: A) -> Result<R::Value, A::Error> {
        self.0.take_map(entries)
    }
}
