//! Label selectors: the `labelSelector` query grammar, `metav1.LabelSelector`
//! objects, plain `map[string]string` selectors, and matching.
//!
//! The lexer and parser follow apimachinery's `labels/selector.go` token for
//! token, so odd inputs (`x in (,a)`, `a=`, a key named `in`) parse, and fail,
//! exactly as they do against kube-apiserver.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde_json::Value;

use super::validation::{BadValue, FieldError, FieldErrors, validate_label_key, validate_label_value};
use super::{RequirementError, SelectorError};

/// How a [`Requirement`] relates its key to its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    In,
    NotIn,
    /// `=`
    Equals,
    /// `==`, kept apart from `=` only so the selector prints back as written.
    DoubleEquals,
    /// `!=`
    NotEquals,
    /// A bare key.
    Exists,
    /// `!key`
    DoesNotExist,
    /// `key>N`, integers only.
    GreaterThan,
    /// `key<N`, integers only.
    LessThan,
}

impl Operator {
    /// The `selection.Operator` string, as apimachinery names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// One condition of a label selector: a key, an operator and its values.
///
/// Only constructed through validation, so the key and values are always
/// syntactically valid labels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// In the order given; printing sorts them, matching does not care.
    values: Vec<String>,
}

impl Requirement {
    /// apimachinery's `NewRequirement`: validates the key, the number of
    /// values the operator needs, and each value. `values: None` stands for a
    /// Go nil slice, which only matters for how an error prints it.
    fn new(key: &str, operator: Operator, values: Option<Vec<String>>) -> Result<Self, FieldErrors> {
        let mut errs = Vec::new();
        if let Some(e) = validate_label_key(key, "key") {
            errs.push(e);
        }
        let vals = values.clone().unwrap_or_default();
        let invalid_values = |detail: &str| FieldError::invalid("values", BadValue::Strings(values.clone()), detail);
        match operator {
            Operator::In | Operator::NotIn => {
                if vals.is_empty() {
                    errs.push(invalid_values("for 'in', 'notin' operators, values set can't be empty"));
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if vals.len() != 1 {
                    errs.push(invalid_values("exact-match compatibility requires one single value"));
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !vals.is_empty() {
                    errs.push(invalid_values("values set must be empty for exists and does not exist"));
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if vals.len() != 1 {
                    errs.push(invalid_values("for 'Gt', 'Lt' operators, exactly one value is required"));
                }
                for (i, v) in vals.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(FieldError::invalid(
                            format!("values[{i}]"),
                            BadValue::Str(v.clone()),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
        }
        for (i, v) in vals.iter().enumerate() {
            if let Some(e) = validate_label_value(key, v, &format!("values[{i}]")) {
                errs.push(e);
            }
        }
        if errs.is_empty() { Ok(Self { key: key.to_string(), operator, values: vals }) } else { Err(FieldErrors(errs)) }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether the labels satisfy this requirement. A missing key satisfies
    /// `!=`, `notin` and `!key`; `>`/`<` need the label to be an integer.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        let value = labels.label(&self.key);
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => value.is_some_and(has),
            Operator::NotIn | Operator::NotEquals => !value.is_some_and(has),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(label), [bound]) = (value, self.values.as_slice()) else {
                    return false;
                };
                let (Ok(label), Ok(bound)) = (label.parse::<i64>(), bound.parse::<i64>()) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan { label > bound } else { label < bound }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in (",
            Operator::NotIn => " notin (",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        f.write_str(op)?;
        // Sorted on output so equal selectors print equally.
        let mut values: Vec<&str> = self.values.iter().map(String::as_str).collect();
        values.sort_unstable();
        f.write_str(&values.join(","))?;
        if matches!(self.operator, Operator::In | Operator::NotIn) {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Anything labels can be looked up in.
pub trait Labels {
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Labels for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

/// A JSON `metadata.labels` object; non-string values count as absent.
impl Labels for serde_json::Map<String, Value> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }
}

impl<L: Labels + ?Sized> Labels for &L {
    fn label(&self, key: &str) -> Option<&str> {
        (**self).label(key)
    }
}

/// A parsed label selector: the AND of its requirements, or "nothing".
///
/// The empty selector (no requirements) matches everything, as an empty
/// `labelSelector` query or `metav1.LabelSelector{}` does; a missing
/// `metav1.LabelSelector` matches nothing.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LabelSelector {
    /// Sorted by key, as apimachinery keeps them.
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// Matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Matches no object (`labels.Nothing()`).
    pub fn nothing() -> Self {
        Self { requirements: Vec::new(), nothing: true }
    }

    /// Parses a `labelSelector` query parameter as kube-apiserver does.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let mut requirements = Parser::new(selector).parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { requirements, nothing: false })
    }

    /// A selector requiring every `key=value` of a plain map, like a Service's
    /// `spec.selector` or a ReplicationController's. Not validated, as
    /// apimachinery's `SelectorFromValidatedSet` is not.
    ///
    /// An empty map yields [`LabelSelector::everything`]: that is what the
    /// map means as a selector, but a Service with no selector selects no
    /// pods (its endpoints are managed by hand). Callers deciding which pods
    /// back a Service should use [`LabelSelector::for_service`].
    pub fn from_map<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let mut requirements: Vec<Requirement> = pairs
            .into_iter()
            .map(|(k, v)| Requirement {
                key: k.as_ref().to_string(),
                operator: Operator::Equals,
                values: vec![v.as_ref().to_string()],
            })
            .collect();
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Self { requirements, nothing: false }
    }

    /// [`LabelSelector::from_map`] over a JSON object; non-string values are
    /// skipped, and anything but an object gives the empty selector.
    pub fn from_json_map(map: &Value) -> Self {
        match map.as_object() {
            Some(m) => Self::from_map(m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))),
            None => Self::everything(),
        }
    }

    /// The pods a Service fronts, or `None` when `spec.selector` is missing
    /// or empty: such a Service selects nothing and Kubernetes' endpoint
    /// controllers leave its Endpoints/EndpointSlices to the user.
    pub fn for_service(service: &Value) -> Option<Self> {
        let selector = service.pointer("/spec/selector")?.as_object()?;
        if selector.is_empty() {
            return None;
        }
        Some(Self::from_map(selector.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))))
    }

    /// apimachinery's `LabelSelectorAsSelector` for a `metav1.LabelSelector`
    /// object (`matchLabels` + `matchExpressions`). `null` matches nothing,
    /// `{}` matches everything.
    pub fn from_label_selector_json(selector: &Value) -> Result<Self, SelectorError> {
        let Some(obj) = selector.as_object() else {
            return Ok(Self::nothing());
        };
        let match_labels = obj.get("matchLabels").and_then(Value::as_object);
        let expressions = obj.get("matchExpressions").and_then(Value::as_array);
        let mut requirements = Vec::new();
        // Go iterates matchLabels in random map order and stops at the first
        // bad entry; sorting makes which error is reported deterministic.
        let mut labels: Vec<(&String, &Value)> = match_labels.map(|m| m.iter().collect()).unwrap_or_default();
        labels.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in labels {
            let v = v.as_str().unwrap_or_default().to_string();
            requirements.push(Requirement::new(k, Operator::Equals, Some(vec![v])).map_err(SelectorError::Invalid)?);
        }
        for expr in expressions.into_iter().flatten() {
            let key = expr.get("key").and_then(Value::as_str).unwrap_or_default();
            let op = expr.get("operator").and_then(Value::as_str).unwrap_or_default();
            let operator = match op {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => return Err(SelectorError::InvalidOperator(other.to_string())),
            };
            let values: Vec<String> = expr
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default();
            // Go copies the values with append([]string(nil), ...), so no
            // values is a nil slice in error messages.
            let values = (!values.is_empty()).then_some(values);
            requirements.push(Requirement::new(key, operator, values).map_err(SelectorError::Invalid)?);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { requirements, nothing: false })
    }

    /// True when the selector does not restrict anything (`Empty()` in Go).
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True only for [`LabelSelector::nothing`].
    pub fn matches_nothing(&self) -> bool {
        self.nothing
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether every requirement holds for these labels.
    pub fn matches<L: Labels + ?Sized>(&self, labels: &L) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Matches against an object's `metadata.labels` (absent means none).
    pub fn matches_object(&self, object: &Value) -> bool {
        match object.pointer("/metadata/labels").and_then(Value::as_object) {
            Some(labels) => self.matches(labels),
            None => self.matches(&serde_json::Map::new()),
        }
    }

    /// The single value a key must have, if the selector pins one
    /// (`key=v`, `key==v` or `key in (v)`); lets a store use an index.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == key)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "in" => Token::In,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "notin" => Token::NotIn,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Byte-wise like Go's lexer: a NUL byte reads as end of input, and every
/// delimiter is ASCII so identifier slices stay valid UTF-8.
struct Lexer<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn read(&mut self) -> u8 {
        match self.s.as_bytes().get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0,
        }
    }

    fn unread(&mut self) {
        self.pos -= 1;
    }

    fn lex(&mut self) -> (Token, &'a str) {
        let mut ch = self.read();
        while is_whitespace(ch) {
            ch = self.read();
        }
        if ch == 0 {
            return (Token::EndOfString, "");
        }
        self.unread();
        if is_special(ch) { self.scan_special() } else { self.scan_identifier() }
    }

    fn scan_identifier(&mut self) -> (Token, &'a str) {
        let start = self.pos;
        let mut end = start;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if is_special(ch) || is_whitespace(ch) {
                self.unread();
                break;
            }
            end = self.pos;
        }
        let lit = &self.s[start..end];
        (keyword(lit).unwrap_or(Token::Identifier), lit)
    }

    /// The longest run of special characters that is still an operator:
    /// `!=` is one token, `=(` is `=` then `(`.
    fn scan_special(&mut self) -> (Token, &'a str) {
        let start = self.pos;
        let mut last: Option<(Token, usize)> = None;
        loop {
            let ch = self.read();
            if ch == 0 {
                break;
            }
            if !is_special(ch) {
                self.unread();
                break;
            }
            if let Some(tok) = keyword(&self.s[start..self.pos]) {
                last = Some((tok, self.pos));
            } else if last.is_some() {
                self.unread();
                break;
            }
        }
        // Every single special character is a token, so `last` is set.
        match last {
            Some((tok, end)) => (tok, &self.s[start..end]),
            None => (Token::EndOfString, ""),
        }
    }
}

/// Parsing context: inside value lists `in` and `notin` are plain words.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

struct Parser<'a> {
    items: Vec<(Token, &'a str)>,
    position: usize,
}

const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

impl<'a> Parser<'a> {
    fn new(selector: &'a str) -> Self {
        let mut lexer = Lexer { s: selector, pos: 0 };
        let mut items = Vec::new();
        loop {
            let item = lexer.lex();
            items.push(item);
            if item.0 == Token::EndOfString {
                break;
            }
        }
        Self { items, position: 0 }
    }

    fn adjust(tok: Token, ctx: Ctx) -> Token {
        match (ctx, tok) {
            (Ctx::Values, Token::In | Token::NotIn) => Token::Identifier,
            _ => tok,
        }
    }

    fn lookahead(&self, ctx: Ctx) -> (Token, &'a str) {
        // The token list always ends with EndOfString and parsing never
        // consumes past it, so the clamp only guards against bugs.
        let (tok, lit) = self.items[self.position.min(self.items.len() - 1)];
        (Self::adjust(tok, ctx), lit)
    }

    fn consume(&mut self, ctx: Ctx) -> (Token, &'a str) {
        let item = self.lookahead(ctx);
        self.position += 1;
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut requirements = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Ctx::Values);
            match tok {
                Token::Identifier | Token::DoesNotExist => {
                    requirements.push(self.parse_requirement().map_err(SelectorError::Requirement)?);
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (t2, l2) = self.lookahead(Ctx::Values);
                            if t2 != Token::Identifier && t2 != Token::DoesNotExist {
                                return Err(SelectorError::Unexpected {
                                    found: l2.to_string(),
                                    expected: "identifier after ','",
                                });
                            }
                        }
                        _ => {
                            return Err(SelectorError::Unexpected {
                                found: l.to_string(),
                                expected: "',' or 'end of string'",
                            });
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(SelectorError::Unexpected {
                        found: lit.to_string(),
                        expected: "!, identifier, or 'end of string'",
                    });
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, RequirementError> {
        let (key, operator) = self.parse_key_and_infer_operator()?;
        if let Some(op @ (Operator::Exists | Operator::DoesNotExist)) = operator {
            return Requirement::new(key, op, Some(Vec::new())).map_err(RequirementError::Invalid);
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        // Go collects values in a set and lists them sorted.
        let mut values: Vec<String> = values.into_iter().collect();
        values.sort();
        values.dedup();
        Requirement::new(key, operator, Some(values)).map_err(RequirementError::Invalid)
    }

    /// A bare key (or `!key`) followed by `,` or the end is an existence test;
    /// otherwise the operator comes next. A `!` followed by anything else is
    /// still returned as DoesNotExist, and the caller then trips over the rest.
    fn parse_key_and_infer_operator(&mut self) -> Result<(&'a str, Option<Operator>), RequirementError> {
        let mut operator = None;
        let (mut tok, mut lit) = self.consume(Ctx::Values);
        if tok == Token::DoesNotExist {
            operator = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(Ctx::Values);
        }
        if tok != Token::Identifier {
            return Err(RequirementError::Unexpected { found: lit.to_string(), expected: "identifier" });
        }
        // The parser has no field path, which Go prints as "<nil>".
        if let Some(e) = validate_label_key(lit, "<nil>") {
            return Err(RequirementError::Invalid(FieldErrors(vec![e])));
        }
        let (next, _) = self.lookahead(Ctx::Values);
        if matches!(next, Token::EndOfString | Token::Comma) && operator.is_none() {
            operator = Some(Operator::Exists);
        }
        Ok((lit, operator))
    }

    fn parse_operator(&mut self) -> Result<Operator, RequirementError> {
        let (tok, lit) = self.consume(Ctx::KeyAndOperator);
        Ok(match tok {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => return Err(RequirementError::Unexpected { found: lit.to_string(), expected: BINARY_OPERATORS }),
        })
    }

    fn parse_values(&mut self) -> Result<Vec<String>, RequirementError> {
        let (tok, lit) = self.consume(Ctx::Values);
        if tok != Token::OpenPar {
            return Err(RequirementError::ExpectedOpenParen { found: lit.to_string() });
        }
        let (tok, lit) = self.lookahead(Ctx::Values);
        match tok {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                // parse_identifiers_list only succeeds in front of ')'.
                let (tok, _) = self.consume(Ctx::Values);
                if tok != Token::ClosedPar {
                    return Err(RequirementError::Unexpected { found: lit.to_string(), expected: "')'" });
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(RequirementError::Unexpected { found: lit.to_string(), expected: "',', ')' or identifier" }),
        }
    }

    /// A comma-separated list in which empty entries are the empty value:
    /// `(a,,b)`, `(,a)` and `(a,)` all include "".
    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, RequirementError> {
        let mut values: Vec<String> = Vec::new();
        loop {
            let (tok, lit) = self.consume(Ctx::Values);
            match tok {
                Token::Identifier => {
                    values.push(lit.to_string());
                    let (tok2, lit2) = self.lookahead(Ctx::Values);
                    match tok2 {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(values),
                        _ => {
                            return Err(RequirementError::Unexpected {
                                found: lit2.to_string(),
                                expected: "',' or ')'",
                            });
                        }
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        values.push(String::new());
                    }
                    let (tok2, _) = self.lookahead(Ctx::Values);
                    if tok2 == Token::ClosedPar {
                        values.push(String::new());
                        return Ok(values);
                    }
                    if tok2 == Token::Comma {
                        values.push(String::new());
                    }
                }
                _ => {
                    return Err(RequirementError::Unexpected {
                        found: lit.to_string(),
                        expected: "',', or identifier",
                    });
                }
            }
        }
    }

    /// The value after `=`, `==`, `!=`, `>`, `<`; nothing before `,` or the
    /// end means the empty value.
    fn parse_exact_value(&mut self) -> Result<Vec<String>, RequirementError> {
        let (tok, _) = self.lookahead(Ctx::Values);
        if matches!(tok, Token::EndOfString | Token::Comma) {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Ctx::Values);
        if tok == Token::Identifier {
            return Ok(vec![lit.to_string()]);
        }
        Err(RequirementError::Unexpected { found: lit.to_string(), expected: "identifier" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn err(s: &str) -> String {
        match LabelSelector::parse(s) {
            Ok(sel) => panic!("{s:?} parsed as {sel}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn equality_and_set_based_requirements_match_like_kubernetes() {
        let l = labels(&[("app", "web"), ("tier", "frontend"), ("version", "3")]);
        for (sel, want) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app!=web", false),
            ("app!=db", true),
            ("missing!=x", true),
            ("app in (web,db)", true),
            ("app notin (web)", false),
            ("missing notin (web)", true),
            ("missing in (web)", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
            ("app=web,tier=frontend", true),
            ("app=web,tier=backend", false),
            ("version>2", true),
            ("version<3", false),
            ("app>1", false),
        ] {
            assert_eq!(LabelSelector::parse(sel).expect(sel).matches(&l), want, "{sel}");
        }
    }

    #[test]
    fn whitespace_around_tokens_is_ignored_and_output_is_normalized() {
        let sel = LabelSelector::parse("  tier in ( b , a ) ,  app = web , !x,y").expect("parses");
        assert_eq!(sel.to_string(), "app=web,tier in (a,b),!x,y");
        assert_eq!(LabelSelector::parse("x notin (z,y,z)").expect("parses").to_string(), "x notin (y,z)");
    }

    #[test]
    fn empty_values_are_allowed_where_apimachinery_allows_them() {
        let sel = LabelSelector::parse("a=,b in (,x),c in ()").expect("parses");
        assert_eq!(sel.to_string(), "a=,b in (,x),c in ()");
        assert!(sel.matches(&labels(&[("a", ""), ("b", ""), ("c", "")])));
    }

    #[test]
    fn in_and_notin_are_plain_words_where_a_value_is_expected() {
        let sel = LabelSelector::parse("in=notin,x in (in)").expect("parses");
        assert!(sel.matches(&labels(&[("in", "notin"), ("x", "in")])));
    }

    #[test]
    fn malformed_selectors_give_kube_apiserver_messages() {
        assert_eq!(err("a b"), "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt");
        assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
        assert_eq!(err("a=b,"), "found '', expected: identifier after ','");
        assert_eq!(err(",a"), "found ',', expected: !, identifier, or 'end of string'");
        assert_eq!(err("a in b"), "unable to parse requirement: found 'b' expected: '('");
        assert_eq!(err("a in (b c)"), "unable to parse requirement: found 'c', expected: ',' or ')'");
        assert_eq!(err("a in (="), "unable to parse requirement: found '=', expected: ',', ')' or identifier");
        assert_eq!(err("a=("), "unable to parse requirement: found '(', expected: identifier");
        assert_eq!(err("!a=b"), "found '=', expected: ',' or 'end of string'");
        assert_eq!(err("!!a"), "unable to parse requirement: found '!', expected: identifier");
    }

    #[test]
    fn invalid_keys_and_values_are_reported_with_field_paths() {
        assert_eq!(
            err("-a=b"),
            "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        );
        assert_eq!(
            err("app=foo*"),
            "unable to parse requirement: values[0][app]: Invalid value: \"foo*\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
        assert_eq!(
            err("a>b"),
            "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer"
        );
    }

    #[test]
    fn label_selector_objects_convert_match_labels_and_expressions() {
        let sel = LabelSelector::from_label_selector_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["b", "a"]},
                {"key": "canary", "operator": "DoesNotExist"},
                {"key": "env", "operator": "Exists"},
                {"key": "zone", "operator": "NotIn", "values": ["x"]}
            ]
        }))
        .expect("valid");
        assert_eq!(sel.to_string(), "app=web,!canary,env,tier in (a,b),zone notin (x)");
        assert!(sel.matches(&labels(&[("app", "web"), ("tier", "a"), ("env", "prod")])));
        assert!(!sel.matches(&labels(&[("app", "web"), ("tier", "a"), ("env", "prod"), ("canary", "1")])));
    }

    #[test]
    fn empty_label_selector_object_matches_everything_and_null_matches_nothing() {
        let everything = LabelSelector::from_label_selector_json(&json!({})).expect("valid");
        assert!(everything.is_everything() && everything.matches(&labels(&[])));
        let nothing = LabelSelector::from_label_selector_json(&Value::Null).expect("valid");
        assert!(nothing.matches_nothing() && !nothing.matches(&labels(&[("a", "b")])));
        assert_eq!(nothing.to_string(), "");
    }

    #[test]
    fn label_selector_objects_with_bad_operators_or_values_are_rejected() {
        let e = LabelSelector::from_label_selector_json(&json!({
            "matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]
        }));
        assert_eq!(e.map_err(|e| e.to_string()), Err("\"Gt\" is not a valid label selector operator".into()));
        let e = LabelSelector::from_label_selector_json(&json!({
            "matchExpressions": [{"key": "a", "operator": "In"}]
        }));
        assert_eq!(
            e.map_err(|e| e.to_string()),
            Err("values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty".into())
        );
        let e = LabelSelector::from_label_selector_json(&json!({"matchLabels": {"a/b/c": "x"}}));
        let e = e.expect_err("three-part key").to_string();
        assert!(e.starts_with("key: Invalid value: \"a/b/c\": a qualified name"), "{e}");
    }

    #[test]
    fn service_selectors_that_are_missing_or_empty_select_nothing() {
        assert!(LabelSelector::for_service(&json!({"spec": {}})).is_none());
        assert!(LabelSelector::for_service(&json!({"spec": {"selector": {}}})).is_none());
        let sel = LabelSelector::for_service(&json!({"spec": {"selector": {"app": "web"}}})).expect("selector");
        assert!(sel.matches_object(&json!({"metadata": {"labels": {"app": "web", "x": "y"}}})));
        assert!(!sel.matches_object(&json!({"metadata": {}})));
        assert!(LabelSelector::from_map(BTreeMap::<String, String>::new()).is_everything());
    }

    #[test]
    fn exact_matches_are_exposed_for_indexing() {
        let sel = LabelSelector::parse("app=web,tier in (a),x in (a,b)").expect("parses");
        assert_eq!(sel.requires_exact_match("app"), Some("web"));
        assert_eq!(sel.requires_exact_match("tier"), Some("a"));
        assert_eq!(sel.requires_exact_match("x"), None);
    }

    #[test]
    fn printing_and_reparsing_a_selector_is_lossless() {
        for s in ["a=b,c!=d,e in (f,g),h notin (),!i,j,k>1,l<2,m==n", "x in (,a)", "in=notin", "a.b/c-d_e"] {
            let sel = LabelSelector::parse(s).expect("parses");
            assert_eq!(LabelSelector::parse(&sel.to_string()).expect("reparses"), sel);
        }
    }

    /// Random strings over the grammar's alphabet: the parser never panics,
    /// and whatever parses prints back to an equal selector.
    #[test]
    fn random_selectors_never_panic_and_round_trip() {
        const PIECES: &[&str] = &[
            "a", "b", "in", "notin", "x.io/k", "1", "-", "=", "==", "!=", "!", ">", "<", "(", ")", ",", " ", "\t", "é",
            "\0", "/",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut parsed = 0;
        for _ in 0..20_000 {
            let len = next() % 8;
            let input: String = (0..len).map(|_| PIECES[(next() % PIECES.len() as u64) as usize]).collect();
            if let Ok(sel) = LabelSelector::parse(&input) {
                parsed += 1;
                let printed = sel.to_string();
                assert_eq!(LabelSelector::parse(&printed).as_ref(), Ok(&sel), "{input:?} printed as {printed:?}");
            }
        }
        assert!(parsed > 100, "the generator should produce valid selectors too ({parsed})");
    }
}
