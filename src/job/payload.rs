//! Whether a JSON payload (a job's `input` or `result`) can be served back in every form.
//!
//! Payloads are stored verbatim, but listings turn jobs into `serde_json::Value`, which refuses a
//! lone surrogate (`"\ud800"`) or a number beyond `f64` (`1e400`). Checking by a full parse at the
//! door — and on every record read back from Redis — keeps such data from ever reaching a handler.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use std::fmt;

/// Parses `raw` in full without building it: every string must be valid Unicode, every number
/// must fit an `f64`, nesting must stay within serde_json's recursion limit.
pub fn check(raw: &RawValue) -> Result<(), serde_json::Error> {
    serde_json::from_str::<Checked>(raw.get()).map(|Checked| ())
}

/// A JSON value that parsed, with nothing kept.
struct Checked;

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
        Ok(Checked)
    }

    /// Reached only once serde_json has decoded the escapes, lone surrogates refused.
    fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Ok(Checked)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Checked, A::Error> {
        while items.next_element::<Checked>()?.is_some() {}
        Ok(Checked)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Checked, A::Error> {
        while entries.next_entry::<Checked, Checked>()?.is_some() {}
        Ok(Checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(json: &str) -> bool {
        let raw = RawValue::from_string(json.to_owned()).expect("raw JSON");
        check(&raw).is_ok()
    }

    #[test]
    fn what_a_value_can_hold_passes() {
        for json in [
            r#"{"a":[1,-2,3.5,1e300,"x\u00e9\ud83d\ude00",null,true,{}]}"#,
            "123456789012345678901234567890",
            r#""\"quoted\"""#,
        ] {
            assert!(checks(json), "{json}");
        }
    }

    #[test]
    fn a_lone_surrogate_or_a_number_beyond_f64_is_refused() {
        for json in [
            r#""\ud800""#,
            r#"{"k":"\udc00"}"#,
            r#"{"\ud800":1}"#,
            "1e400",
            "[-1e999]",
        ] {
            assert!(!checks(json), "{json}");
            // What a listing does with a job: it must fail exactly where the check does.
            assert!(
                serde_json::from_str::<serde_json::Value>(json).is_err(),
                "{json}"
            );
        }
    }

    #[test]
    fn raw_value_alone_lets_them_through() {
        assert!(RawValue::from_string(r#""\ud800""#.to_owned()).is_ok());
        assert!(RawValue::from_string("1e400".to_owned()).is_ok());
    }
}
