//! The whole numbers tools take. Each is read from any JSON number (negative, fractional or
//! past `u64`), so that a wrong one reaches its tool's check and comes back as an `isError`
//! naming its limits, before any request, instead of a bare deserialisation error.

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::ops::RangeInclusive;

/// A number as the caller gave it; [`WholeNumber::within`] makes it a count.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WholeNumber(f64);

impl WholeNumber {
    pub const fn new(value: u64) -> Self {
        Self(value as f64)
    }

    /// The number, when it is whole and within `limits`; else the error the caller sees.
    pub fn within(self, name: &str, limits: RangeInclusive<u64>) -> Result<u64, String> {
        let (min, max) = (*limits.start(), *limits.end());
        let whole = self.0.fract() == 0.0;
        if whole && self.0 >= min as f64 && self.0 <= max as f64 {
            return Ok(self.0 as u64);
        }
        Err(format!(
            "{name} {} is outside its limits: give a whole number from {min} to {max}",
            self.0
        ))
    }

    /// [`WholeNumber::within`] as a `usize` (the limits are far below `usize::MAX`).
    pub fn count(self, name: &str, limits: RangeInclusive<u64>) -> Result<usize, String> {
        self.within(name, limits)
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
    }
}

/// An optional number: its count, or `default` when it was not given.
pub fn count_or(
    given: Option<WholeNumber>,
    default: usize,
    name: &str,
    limits: RangeInclusive<u64>,
) -> Result<usize, String> {
    given.map_or(Ok(default), |n| n.count(name, limits))
}

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let number = serde_json::Number::deserialize(deserializer)?;
        number
            .as_f64()
            .map(Self)
            .ok_or_else(|| serde::de::Error::custom("not a number"))
    }
}

/// Written as given (the schema's defaults).
impl Serialize for WholeNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.0.fract() == 0.0 && self.0 >= 0.0 && self.0 <= u64::MAX as f64 {
            serializer.serialize_u64(self.0 as u64)
        } else {
            serializer.serialize_f64(self.0)
        }
    }
}

impl JsonSchema for WholeNumber {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "WholeNumber".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "integer" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_within_their_limits_only() {
        let read = |json: &str| serde_json::from_str::<WholeNumber>(json).expect("a number");
        assert_eq!(read("300").within("n", 1..=300), Ok(300));
        for refused in [
            "0",
            "-1",
            "301",
            "4294967295",
            "18446744073709551615",
            "1e12",
            "2.5",
        ] {
            let error = read(refused).within("n", 1..=300).expect_err(refused);
            assert!(error.contains("from 1 to 300"), "{error}");
        }
        assert!(serde_json::from_str::<WholeNumber>("\"7\"").is_err());
    }
}
