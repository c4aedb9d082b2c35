//! Resource quantities (`100m`, `1.5`, `128Mi`, `1e3`) as integers: the
//! scheduler compares requests with allocatable amounts in thousandths of
//! a unit, rounded up as `resource.Quantity.MilliValue` rounds.

/// The value of `s` in thousandths of a unit (`"250m"` → 250, `"2"` →
/// 2000, `"1Ki"` → 1_024_000), rounded up, saturating at `i64::MAX`.
/// `None` when `s` is not a quantity.
pub fn parse_milli(s: &str) -> Option<i64> {
    let s = s.trim();
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let number_len = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
    let (number, suffix) = rest.split_at(number_len);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return None;
    }
    let (mut exp10, exp2): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        other => {
            let exp = other.strip_prefix(['e', 'E'])?;
            let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 4 {
                return None;
            }
            (exp.parse().ok()?, 0)
        }
    };
    // Thousandths, and the digits after the point.
    exp10 += 3 - fraction.len() as i32;
    let mut value: i128 = 0;
    for b in whole.bytes().chain(fraction.bytes()) {
        value = value.saturating_mul(10).saturating_add(i128::from(b - b'0'));
    }
    value = value.saturating_mul(1i128 << exp2);
    if exp10 >= 0 {
        for _ in 0..exp10.min(40) {
            value = value.saturating_mul(10);
        }
    } else {
        let divisor = 10i128.checked_pow(exp10.unsigned_abs()).unwrap_or(i128::MAX);
        value = value / divisor + i128::from(value % divisor != 0);
    }
    let value = i64::try_from(value).unwrap_or(i64::MAX);
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::parse_milli;

    #[test]
    fn quantities_are_read_in_thousandths_rounded_up() {
        for (q, milli) in [
            ("1", 1000),
            ("250m", 250),
            ("0.5", 500),
            (".5", 500),
            ("1.5k", 1_500_000),
            ("1Ki", 1_024_000),
            ("128Mi", 128 * 1024 * 1024 * 1000),
            ("1e3", 1_000_000),
            ("1E-3", 1),
            ("1n", 1),
            ("0", 0),
            ("-2", -2000),
            ("2E", 2_000_000_000_000_000_000_000i128.min(i64::MAX as i128) as i64),
        ] {
            assert_eq!(parse_milli(q), Some(milli), "{q}");
        }
        for bad in ["", "m", "1x", "1.2.3", "Mi", "1e", "--1"] {
            assert_eq!(parse_milli(bad), None, "{bad}");
        }
    }
}
