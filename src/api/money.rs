//! Money at the API's edge: decimal strings in, integer minor units inside.
//!
//! An amount is a JSON *string* of 1–14 digits, optionally followed by `.`
//! and exactly two digits: `"10000"` and `"10000.00"` are both IDR 10,000
//! (1,000,000 minor units). No sign, separators, exponent or JSON number: a
//! float cannot say exactly how much money it means.

use crate::domain::status::format_minor;

/// The largest whole part SNAP's `String(16,2)` can carry.
const MAX_WHOLE_DIGITS: usize = 14;

/// What [`parse_minor`] accepts, for the OpenAPI document (a test keeps them equal).
pub const AMOUNT_PATTERN: &str = r"^[0-9]{1,14}(\.[0-9]{2})?$";
/// The amounts [`parse_positive`] refuses although they have the shape.
pub const ZERO_PATTERN: &str = r"^0+(\.00)?$";
/// A tip percentage: an amount of at most 100.
pub const PERCENTAGE_PATTERN: &str = r"^(0{0,11}100(\.00)?|0{0,12}[0-9]{1,2}(\.[0-9]{2})?)$";

/// Parses an amount into minor units; the error says what is wrong.
pub fn parse_minor(s: &str) -> Result<i64, &'static str> {
    const SHAPE: &str =
        "must be a decimal string such as \"10000\" or \"10000.00\" (at most 14 digits, then optionally 2 decimals)";
    let (whole, fraction) = match s.split_once('.') {
        Some((w, f)) => (w, f),
        None => (s, "00"),
    };
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > MAX_WHOLE_DIGITS || fraction.len() != 2 || !digits(whole) || !digits(fraction)
    {
        return Err(SHAPE);
    }
    whole
        .bytes()
        .chain(fraction.bytes())
        .try_fold(0i64, |acc, d| acc.checked_mul(10)?.checked_add(i64::from(d - b'0')))
        .ok_or(SHAPE)
}

/// A strictly positive amount.
pub fn parse_positive(s: &str) -> Result<i64, String> {
    match parse_minor(s)? {
        0 => Err("must be greater than zero".into()),
        n => Ok(n),
    }
}

/// The API's rendering: always two decimals (`"10000.00"`).
pub fn render(minor: i64) -> String {
    format_minor(minor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn whole_and_two_decimal_forms_mean_the_same() {
        assert_eq!(parse_minor("10000"), Ok(1_000_000));
        assert_eq!(parse_minor("10000.00"), Ok(1_000_000));
        assert_eq!(parse_minor("0.05"), Ok(5));
        assert_eq!(parse_minor("99999999999999.99"), Ok(9_999_999_999_999_999));
    }

    #[test]
    fn anything_inexact_or_decorated_is_refused() {
        for bad in [
            "",
            ".",
            "1.",
            ".50",
            "1.5",
            "1.005",
            "-1",
            "+1",
            "1e3",
            "1,000",
            " 1",
            "1 ",
            "١٢",
            "100000000000000",
        ] {
            assert!(parse_minor(bad).is_err(), "{bad:?} was accepted");
        }
        assert!(parse_positive("0.00").is_err());
    }

    proptest! {
        #[test]
        fn render_then_parse_is_identity(minor in 0i64..10_000_000_000_000_000) {
            prop_assert_eq!(parse_minor(&render(minor)), Ok(minor));
        }

        /// The OpenAPI patterns accept exactly what the parser does.
        #[test]
        fn documented_patterns_match_the_parser(s in "[0-9]{0,16}(\\.[0-9]{0,3})?|[0.]{1,6}|\\PC{0,20}") {
            let shape = regex::Regex::new(AMOUNT_PATTERN).unwrap();
            let zero = regex::Regex::new(ZERO_PATTERN).unwrap();
            let percentage = regex::Regex::new(PERCENTAGE_PATTERN).unwrap();
            prop_assert_eq!(parse_minor(&s).is_ok(), shape.is_match(&s));
            let positive = parse_positive(&s);
            prop_assert_eq!(positive.is_ok(), shape.is_match(&s) && !zero.is_match(&s));
            let tip = positive.is_ok_and(|h| h <= 10_000);
            prop_assert_eq!(tip, percentage.is_match(&s) && !zero.is_match(&s), "{}", s);
        }

        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = parse_minor(&s);
        }
    }
}
