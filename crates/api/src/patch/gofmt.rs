//! Go's `fmt` renderings of decoded JSON (`map[string]interface{}` and
//! friends), because kube-apiserver's patch errors embed values printed
//! with `%v`/`%s` and type names from `reflect`.
//!
//! Decoded JSON in Go holds `int64` for integer literals that fit and
//! `float64` for other numbers; the renderings follow that split.

use serde_json::{Map, Number, Value};

/// `fmt.Sprintf("%v", v)`.
pub(crate) fn v(value: &Value) -> String {
    render(value, Verb::V)
}

/// `fmt.Sprintf("%s", v)`: strings as they are, other scalars as
/// `%!s(int64=1)`, maps and slices with `%s` applied to their elements.
pub(crate) fn s(value: &Value) -> String {
    render(value, Verb::S)
}

/// `%v` of a decoded JSON object.
pub(crate) fn v_map(map: &Map<String, Value>) -> String {
    render_map(map, Verb::V)
}

/// `%s` of a decoded JSON object.
pub(crate) fn s_map(map: &Map<String, Value>) -> String {
    render_map(map, Verb::S)
}

/// `%v` of a decoded JSON array.
pub(crate) fn v_list(items: &[Value]) -> String {
    let items: Vec<String> = items.iter().map(v).collect();
    format!("[{}]", items.join(" "))
}

/// `reflect.TypeOf(v).String()` printed with `%s`.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "%!s(<nil>)",
        Value::Bool(_) => "bool",
        Value::Number(n) if go_int(n).is_some() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Verb {
    V,
    S,
}

fn render(value: &Value, verb: Verb) -> String {
    match value {
        Value::Null if verb == Verb::S => "%!s(<nil>)".into(),
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) if verb == Verb::S => format!("%!s(bool={b})"),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => {
            let (type_name, text) = match go_int(n) {
                Some(i) => ("int64", i.to_string()),
                None => ("float64", float_g(n.as_f64().unwrap_or(f64::NAN))),
            };
            if verb == Verb::S { format!("%!s({type_name}={text})") } else { text }
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(|i| render(i, verb)).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => render_map(map, verb),
    }
}

fn render_map(map: &Map<String, Value>, verb: Verb) -> String {
    // fmt prints maps with sorted keys.
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let entries: Vec<String> = entries.iter().map(|(k, v)| format!("{k}:{}", render(v, verb))).collect();
    format!("map[{}]", entries.join(" "))
}

/// The number as Go's JSON decoding would hold it when it is an int64.
fn go_int(n: &Number) -> Option<i64> {
    n.as_i64()
}

/// `%v` of a float64, i.e. `strconv.FormatFloat(f, 'g', -1, 64)`: the
/// shortest digits, in exponent form when the exponent is below -4 or at
/// least 6.
pub(crate) fn float_g(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".into()
        } else if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.5e-7".
    let sci = format!("{f:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if !(-4..6).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    // Plain notation with the same digits.
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let point = exponent + 1; // digits before the decimal point
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if point <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat(point.unsigned_abs() as usize));
        out.push_str(&digits);
    } else if point as usize >= digits.len() {
        out.push_str(&digits);
        out.push_str(&"0".repeat(point as usize - digits.len()));
    } else {
        out.push_str(&digits[..point as usize]);
        out.push('.');
        out.push_str(&digits[point as usize..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_print_sorted_like_go() {
        assert_eq!(
            v(&json!({"name": "a", "image": "nginx", "ports": [80, 1.5]})),
            "map[image:nginx name:a ports:[80 1.5]]"
        );
        assert_eq!(v(&json!(null)), "<nil>");
    }

    #[test]
    fn percent_s_marks_non_strings() {
        assert_eq!(s(&json!({"$patch": "foo", "a": 1})), "map[$patch:foo a:%!s(int64=1)]");
        assert_eq!(s(&json!(true)), "%!s(bool=true)");
    }

    #[test]
    fn floats_use_the_shortest_g_format() {
        for (f, text) in [
            (1.5, "1.5"),
            (1e6, "1e+06"),
            (123456.0, "123456"),
            (0.0001, "0.0001"),
            (1.5e-7, "1.5e-07"),
            (-2.25, "-2.25"),
            (1234567.0, "1.234567e+06"),
        ] {
            assert_eq!(float_g(f), text);
        }
    }
}
