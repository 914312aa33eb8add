//! Human units for the config file: durations (`"250ms"`, `"30s"`, `"5m"`, `"1h"`, `"1d"`) and byte
//! sizes (`"512B"`, `"1KB"`, `"64KiB"`, `"1MiB"`, `"1GiB"`).
//!
//! Owns: the text syntax of both units, the serde wrappers [`HumanDuration`], [`HumanSize`] and
//! [`DurationOrNever`] (each accepts a TOML string or a bare integer), and their error messages.
//! Must not touch: range checks of particular settings (those live in `file.rs`, which knows the key
//! being read), or any I/O.
//!
//! A bare integer means seconds for a duration and bytes for a size. Only whole numbers are accepted:
//! write `"1500ms"`, not `"1.5s"`. Units of durations are lower case; units of sizes ignore case.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, Unexpected, Visitor};

/// What a duration may look like; used in every duration error message.
const DURATION_EXPECTED: &str =
    "a duration such as \"250ms\", \"30s\", \"5m\", \"1h\" or \"1d\", or a whole number of seconds";

/// What a size may look like; used in every size error message.
const SIZE_EXPECTED: &str = "a size such as \"512B\", \"64KiB\", \"1MiB\", \"1GiB\" or \"1KB\" \
     (1000 bytes), or a whole number of bytes";

/// A duration or size that could not be parsed; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError {
    message: String,
}

impl UnitError {
    fn new(message: String) -> Self {
        UnitError { message }
    }
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UnitError {}

/// Splits `"64 KiB"` into the number and the unit text. `what` names the kind of value for errors.
fn split_number<'a>(
    text: &'a str,
    what: &str,
    expected: &str,
) -> Result<(u64, &'a str), UnitError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(UnitError::new(format!("empty {what}; expected {expected}")));
    }
    if trimmed.starts_with('-') {
        return Err(UnitError::new(format!(
            "negative {what} {text:?}; expected {expected}"
        )));
    }
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    if digits.is_empty() {
        return Err(UnitError::new(format!(
            "invalid {what} {text:?}; expected {expected}"
        )));
    }
    // Only ASCII digits remain, so the one way to fail is a number too big for u64.
    let number = digits.parse::<u64>().map_err(|_| too_large(what, text))?;
    Ok((number, unit.trim_start()))
}

fn too_large(what: &str, text: &str) -> UnitError {
    UnitError::new(format!("{what} {text:?} is too large"))
}

/// Parses a duration: a whole number followed by `ms`, `s`, `m`, `h` or `d`; no unit means seconds.
///
/// Whitespace between the number and the unit is allowed (`"30 s"`).
pub fn parse_duration(text: &str) -> Result<Duration, UnitError> {
    let (number, unit) = split_number(text, "duration", DURATION_EXPECTED)?;
    let seconds_per_unit = match unit {
        "ms" => return Ok(Duration::from_millis(number)),
        "" | "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        "d" => 24 * 60 * 60,
        _ => {
            return Err(UnitError::new(format!(
                "invalid duration {text:?}: unknown unit {unit:?}; expected {DURATION_EXPECTED}"
            )))
        }
    };
    number
        .checked_mul(seconds_per_unit)
        .map(Duration::from_secs)
        .ok_or_else(|| too_large("duration", text))
}

/// Parses a size in bytes: a whole number followed by `B`, `KB`, `MB`, `GB` (powers of 1000) or
/// `KiB`, `MiB`, `GiB` (powers of 1024), in any case; no unit means bytes.
pub fn parse_size(text: &str) -> Result<u64, UnitError> {
    let (number, unit) = split_number(text, "size", SIZE_EXPECTED)?;
    let bytes_per_unit: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "mb" => 1000 * 1000,
        "gb" => 1000 * 1000 * 1000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => {
            return Err(UnitError::new(format!(
                "invalid size {text:?}: unknown unit {unit:?}; expected {SIZE_EXPECTED}"
            )))
        }
    };
    number
        .checked_mul(bytes_per_unit)
        .ok_or_else(|| too_large("size", text))
}

/// A duration read from the config: a string with a unit (`"30s"`) or a bare integer of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(HumanDuration)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match deserializer.deserialize_any(DurationVisitor { allow_never: false })? {
            Some(duration) => Ok(HumanDuration(duration)),
            // The visitor only yields `None` when `allow_never` is set.
            None => Err(de::Error::custom(format!("expected {DURATION_EXPECTED}"))),
        }
    }
}

/// A byte count read from the config: a string with a unit (`"64KiB"`) or a bare integer of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanSize(pub u64);

impl FromStr for HumanSize {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_size(s).map(HumanSize)
    }
}

impl<'de> Deserialize<'de> for HumanSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SizeVisitor)
    }
}

/// A duration that may also be the word `"never"` (used for the session expiry cap).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DurationOrNever {
    /// The string `"never"`.
    Never,
    /// A duration, written as for [`HumanDuration`].
    After(Duration),
}

impl FromStr for DurationOrNever {
    type Err = UnitError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.trim() == "never" {
            Ok(DurationOrNever::Never)
        } else {
            parse_duration(s).map(DurationOrNever::After)
        }
    }
}

impl<'de> Deserialize<'de> for DurationOrNever {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let read = deserializer.deserialize_any(DurationVisitor { allow_never: true })?;
        Ok(read.map_or(DurationOrNever::Never, DurationOrNever::After))
    }
}

/// Reads a duration from a string or an integer; with `allow_never`, also the word `"never"`,
/// which it returns as `None`.
struct DurationVisitor {
    allow_never: bool,
}

impl<'de> Visitor<'de> for DurationVisitor {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(DURATION_EXPECTED)?;
        if self.allow_never {
            f.write_str(", or \"never\"")?;
        }
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Duration::from_secs(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if self.allow_never && v.trim() == "never" {
            return Ok(None);
        }
        match parse_duration(v) {
            Ok(duration) => Ok(Some(duration)),
            Err(err) if self.allow_never => Err(E::custom(format!("{err}, or \"never\""))),
            Err(err) => Err(E::custom(err)),
        }
    }
}

/// Reads a size from a string or an integer.
struct SizeVisitor;

impl<'de> Visitor<'de> for SizeVisitor {
    type Value = HumanSize;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(SIZE_EXPECTED)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(HumanSize(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_size(v).map(HumanSize).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn every_duration_unit() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(secs(30)));
        assert_eq!(parse_duration("5m"), Ok(secs(300)));
        assert_eq!(parse_duration("1h"), Ok(secs(3600)));
        assert_eq!(parse_duration("1d"), Ok(secs(86_400)));
        assert_eq!(parse_duration("42"), Ok(secs(42)));
        assert_eq!(parse_duration("0"), Ok(secs(0)));
        assert_eq!(parse_duration(" 30 s "), Ok(secs(30)));
    }

    #[test]
    fn every_size_unit() {
        assert_eq!(parse_size("512B"), Ok(512));
        assert_eq!(parse_size("1KB"), Ok(1000));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("1MiB"), Ok(1024 * 1024));
        assert_eq!(parse_size("1GiB"), Ok(1024 * 1024 * 1024));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("16 mib"), Ok(16 << 20));
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        let err = parse_duration("18446744073709551615d").unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        let err = parse_duration("99999999999999999999999").unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        let err = parse_size("18446744073709551615GiB").unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn garbage_says_what_was_expected() {
        for bad in [
            "", "  ", "s", "abc", "1.5s", "10 sec", "5M", "1y", "ms5", "3h30m",
        ] {
            let err = parse_duration(bad).unwrap_err().to_string();
            assert!(err.contains("expected a duration"), "{bad:?}: {err}");
        }
        for bad in ["", "KiB", "1.5MiB", "1TiB", "10 bytes", "0x10", "1 k"] {
            let err = parse_size(bad).unwrap_err().to_string();
            assert!(err.contains("expected a size"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn negative_is_rejected() {
        let err = parse_duration("-5s").unwrap_err().to_string();
        assert!(err.starts_with("negative duration"), "{err}");
        let err = parse_size("-1KiB").unwrap_err().to_string();
        assert!(err.starts_with("negative size"), "{err}");
    }

    #[test]
    fn never_only_where_allowed() {
        assert_eq!(
            "never".parse::<DurationOrNever>(),
            Ok(DurationOrNever::Never)
        );
        assert_eq!(
            "1h".parse::<DurationOrNever>(),
            Ok(DurationOrNever::After(secs(3600)))
        );
        assert!("never".parse::<HumanDuration>().is_err());
        assert_eq!("64KiB".parse::<HumanSize>(), Ok(HumanSize(65536)));
    }

    #[derive(Debug, Deserialize)]
    struct Sample {
        d: Option<HumanDuration>,
        s: Option<HumanSize>,
        n: Option<DurationOrNever>,
    }

    fn sample(text: &str) -> Result<Sample, String> {
        toml::from_str::<Sample>(text).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn serde_accepts_strings_and_integers() {
        let s = sample("d = \"5m\"\ns = \"1KiB\"\nn = \"never\"").unwrap();
        assert_eq!(s.d, Some(HumanDuration(secs(300))));
        assert_eq!(s.s, Some(HumanSize(1024)));
        assert_eq!(s.n, Some(DurationOrNever::Never));
        let s = sample("d = 7\ns = 100\nn = 60").unwrap();
        assert_eq!(s.d, Some(HumanDuration(secs(7))));
        assert_eq!(s.s, Some(HumanSize(100)));
        assert_eq!(s.n, Some(DurationOrNever::After(secs(60))));
    }

    #[test]
    fn serde_errors_say_what_was_expected() {
        let cases = [
            ("d = -1", "expected a duration"),
            ("d = 1.5", "expected a duration"),
            ("d = true", "expected a duration"),
            ("d = \"soon\"", "expected a duration"),
            ("d = \"never\"", "expected a duration"),
            ("s = -1", "expected a size"),
            ("s = \"big\"", "expected a size"),
            ("n = \"forever\"", "or \"never\""),
            ("n = -3", "or \"never\""),
        ];
        for (text, want) in cases {
            let err = sample(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
