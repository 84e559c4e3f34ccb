//! Checks a parsed expression against the shape of the data and compiles it for evaluation.
//!
//! This is go-bexpr v0.1.2's validation pass (`validate.go`, `field_config.go`): every selector
//! must name a field, the operator must suit the field's type, and the value is converted to
//! that type once, here, so a bad filter is a 400 before any data is read.

use std::collections::BTreeMap;

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use super::parser::{Expr, Match, Op};
use super::{FilterError, MAX_REGEXES, REGEX_SIZE_LIMIT};

/// The type of a field, derived from an example value (see [`Ty::from_shape`]).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Ty {
    Str,
    Int,
    Float,
    Bool,
    /// `null` in the shape: the field exists but cannot be filtered on.
    Opaque,
    Struct(BTreeMap<String, Ty>),
    /// String keys, any of which may be selected.
    Map(Box<Ty>),
    List(Box<Ty>),
}

impl Ty {
    /// Reads a shape: a non-empty object is a struct, `{}` a map of strings, `{"*": S}` a map of
    /// S, `[S]` a list of S, `[]` a list of strings, `0` an integer, `0.0` a float.
    pub fn from_shape(shape: &Value) -> Ty {
        match shape {
            Value::Null => Ty::Opaque,
            Value::Bool(_) => Ty::Bool,
            Value::Number(n) if n.is_f64() => Ty::Float,
            Value::Number(_) => Ty::Int,
            Value::String(_) => Ty::Str,
            Value::Array(items) => {
                Ty::List(Box::new(items.first().map_or(Ty::Str, Ty::from_shape)))
            }
            Value::Object(map) if map.is_empty() => Ty::Map(Box::new(Ty::Str)),
            Value::Object(map) => match map.get("*") {
                Some(value) if map.len() == 1 => Ty::Map(Box::new(Ty::from_shape(value))),
                _ => Ty::Struct(
                    map.iter()
                        .map(|(k, v)| (k.clone(), Ty::from_shape(v)))
                        .collect(),
                ),
            },
        }
    }

    fn is_scalar(&self) -> bool {
        matches!(self, Ty::Str | Ty::Int | Ty::Float | Ty::Bool)
    }

    /// The operators go-bexpr allows on a field of this type (`field_config.go`).
    fn operators(&self) -> &'static [Op] {
        use Op::*;
        match self {
            Ty::Str => &[Equal, NotEqual, In, NotIn, Matches, NotMatches],
            Ty::Int | Ty::Float | Ty::Bool => &[Equal, NotEqual],
            Ty::List(elem) if elem.is_scalar() => &[In, NotIn, IsEmpty, IsNotEmpty],
            Ty::List(_) => &[IsEmpty, IsNotEmpty],
            Ty::Map(_) => &[IsEmpty, IsNotEmpty, In, NotIn],
            Ty::Struct(_) | Ty::Opaque => &[],
        }
    }

    fn describe(&self) -> String {
        match self {
            Ty::Str => "a string".into(),
            Ty::Int => "an integer".into(),
            Ty::Float => "a number".into(),
            Ty::Bool => "a boolean".into(),
            Ty::Opaque => "not filterable".into(),
            Ty::Struct(_) => "an object".into(),
            Ty::Map(v) => format!("a map of {}", v.plural()),
            Ty::List(v) => format!("a list of {}", v.plural()),
        }
    }

    fn plural(&self) -> String {
        match self {
            Ty::Str => "strings".into(),
            Ty::Int => "integers".into(),
            Ty::Float => "numbers".into(),
            Ty::Bool => "booleans".into(),
            Ty::Opaque => "unfilterable values".into(),
            Ty::Struct(_) => "objects".into(),
            Ty::Map(v) => format!("maps of {}", v.plural()),
            Ty::List(v) => format!("lists of {}", v.plural()),
        }
    }
}

/// The evaluable form of an expression.
#[derive(Debug, Clone)]
pub(super) enum Node {
    Or(Vec<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
    Test(Test),
}

/// One matching expression, resolved against the shape.
#[derive(Debug, Clone)]
pub(super) struct Test {
    /// How to walk from the item to the selected value.
    pub steps: Vec<Step>,
    pub op: Op,
    pub leaf: Leaf,
    pub operand: Operand,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    /// A struct field; absent reads as the field's zero value, as a Go struct field would.
    Field(String),
    /// A map key; absent decides the test by [`Op::when_absent`].
    Key(String),
    /// Every element of a list: the test holds if it holds for any element.
    Each,
}

/// What kind of value the selector ends at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Leaf {
    Scalar,
    List,
    Map,
}

/// The value, converted to the selected field's type.
#[derive(Debug, Clone)]
pub(super) enum Operand {
    None,
    Str(String),
    /// Wide enough for both Go's int64 and uint64 fields.
    Int(i128),
    Float(f64),
    Bool(bool),
    Regex(Regex),
}

/// Checks `expr` against `root` and converts its values.
pub(super) fn compile(expr: Expr, root: &Ty) -> Result<Node, FilterError> {
    let mut regexes = 0;
    compile_node(expr, root, &mut regexes)
}

fn compile_node(expr: Expr, root: &Ty, regexes: &mut usize) -> Result<Node, FilterError> {
    let all = |items: Vec<Expr>, regexes: &mut usize| -> Result<Vec<Node>, FilterError> {
        items
            .into_iter()
            .map(|e| compile_node(e, root, regexes))
            .collect()
    };
    Ok(match expr {
        Expr::Or(items) => Node::Or(all(items, regexes)?),
        Expr::And(items) => Node::And(all(items, regexes)?),
        Expr::Not(inner) => Node::Not(Box::new(compile_node(*inner, root, regexes)?)),
        Expr::Match(m) => Node::Test(compile_match(m, root, regexes)?),
    })
}

fn compile_match(m: Match, root: &Ty, regexes: &mut usize) -> Result<Test, FilterError> {
    let (steps, ty) = resolve(&m.selector, root)?;
    let selector = m.selector.join(".");
    if !ty.operators().contains(&m.op) {
        return Err(FilterError::InvalidOperator {
            operator: m.op_text,
            selector,
            reason: supported(ty),
        });
    }
    let leaf = match ty {
        Ty::List(_) => Leaf::List,
        Ty::Map(_) => Leaf::Map,
        _ => Leaf::Scalar,
    };
    let raw = m.value.unwrap_or_default();
    let operand = match (m.op, ty) {
        (Op::IsEmpty | Op::IsNotEmpty, _) => Operand::None,
        (Op::Matches | Op::NotMatches, _) => {
            *regexes += 1;
            if *regexes > MAX_REGEXES {
                return Err(FilterError::TooManyRegexes { max: MAX_REGEXES });
            }
            Operand::Regex(regex(&raw)?)
        }
        // In/NotIn on a map tests its keys, which are strings.
        (_, Ty::Map(_)) => Operand::Str(raw),
        (_, Ty::List(elem)) => coerce(&raw, elem, &selector)?,
        (_, scalar) => coerce(&raw, scalar, &selector)?,
    };
    Ok(Test {
        steps,
        op: m.op,
        leaf,
        operand,
    })
}

/// Walks a selector through the shape. Lists are transparent: `Checks.Status` selects the
/// `Status` of each check, as go-bexpr's slice field configurations do.
fn resolve<'t>(selector: &[String], root: &'t Ty) -> Result<(Vec<Step>, &'t Ty), FilterError> {
    let mut ty = root;
    let mut steps = Vec::new();
    for (i, segment) in selector.iter().enumerate() {
        let outer = ty;
        while let Ty::List(elem) = ty {
            steps.push(Step::Each);
            ty = elem;
        }
        let invalid = |hint: String| FilterError::InvalidSelector {
            selector: selector[..=i].join("."),
            hint,
        };
        let parent = || match i {
            0 => "the item".to_string(),
            _ => format!("{:?}", selector[..i].join(".")),
        };
        ty = match ty {
            Ty::Struct(fields) => match fields.get(segment) {
                Some(field) => {
                    steps.push(Step::Field(segment.clone()));
                    field
                }
                None => return Err(invalid(field_hint(&parent(), segment, fields))),
            },
            Ty::Map(value) => {
                steps.push(Step::Key(segment.clone()));
                value
            }
            _ => {
                let what = outer.describe();
                return Err(invalid(format!("{} is {what} and has no fields", parent())));
            }
        };
    }
    Ok((steps, ty))
}

fn field_hint(parent: &str, segment: &str, fields: &BTreeMap<String, Ty>) -> String {
    if let Some(name) = fields.keys().find(|k| k.eq_ignore_ascii_case(segment)) {
        return format!(
            "{parent} has no field {segment:?}; did you mean {name:?}? \
             (field names are case-sensitive)"
        );
    }
    const SHOWN: usize = 24;
    let mut names: Vec<&str> = fields.keys().map(String::as_str).take(SHOWN).collect();
    if fields.len() > SHOWN {
        names.push("...");
    }
    format!(
        "{parent} has no field {segment:?}; its fields are {}",
        names.join(", ")
    )
}

fn supported(ty: &Ty) -> String {
    let ops: Vec<&str> = ty
        .operators()
        .iter()
        .map(|op| match op {
            Op::Equal => "==",
            Op::NotEqual => "!=",
            Op::In => "in/contains",
            Op::NotIn => "not in/not contains",
            Op::IsEmpty => "is empty",
            Op::IsNotEmpty => "is not empty",
            Op::Matches => "matches",
            Op::NotMatches => "not matches",
        })
        .collect();
    match (ty, ops.is_empty()) {
        (Ty::Struct(_), _) => "it is an object; select one of its fields".into(),
        (_, true) => format!("it is {}", ty.describe()),
        (_, false) => format!("it is {}, which supports {}", ty.describe(), ops.join(", ")),
    }
}

fn coerce(raw: &str, ty: &Ty, selector: &str) -> Result<Operand, FilterError> {
    let parsed = match ty {
        Ty::Str => Some(Operand::Str(raw.to_string())),
        Ty::Int => parse_go_int(raw).map(Operand::Int),
        Ty::Float => parse_float(raw).map(Operand::Float),
        Ty::Bool => parse_go_bool(raw).map(Operand::Bool),
        _ => None,
    };
    parsed.ok_or_else(|| FilterError::InvalidValue {
        value: raw.to_string(),
        selector: selector.to_string(),
        reason: format!("not {}", ty.describe()),
    })
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` (or `ParseUint` for unsigned fields): an optional sign,
/// then decimal, `0x` hex, `0o`/leading-`0` octal or `0b` binary, with `_` between digits.
/// The range covers both int64 and uint64 fields, which a JSON shape cannot tell apart.
fn parse_go_int(s: &str) -> Option<i128> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits, prefixed) = match lower.as_deref() {
        Some("0x") => (16, &body[2..], true),
        Some("0o") => (8, &body[2..], true),
        Some("0b") => (2, &body[2..], true),
        _ if body.len() > 1 && body.starts_with('0') => (8, &body[1..], true),
        _ => (10, body, false),
    };
    // Underscores may only separate digits, or follow a base prefix (Go's underscoreOK).
    let mut prev_digit = prefixed;
    let mut clean = String::with_capacity(digits.len());
    for c in digits.chars() {
        if c == '_' {
            if !prev_digit {
                return None;
            }
            prev_digit = false;
        } else if c.is_digit(radix) {
            clean.push(c);
            prev_digit = true;
        } else {
            return None;
        }
    }
    if !prev_digit || clean.is_empty() {
        return None;
    }
    let magnitude = i128::try_from(u128::from_str_radix(&clean, radix).ok()?).ok()?;
    let value = if negative { -magnitude } else { magnitude };
    (i128::from(i64::MIN)..=i128::from(u64::MAX))
        .contains(&value)
        .then_some(value)
}

/// Go's `strconv.ParseFloat(s, 64)`, near enough: decimal and exponent forms, `inf`, `nan`.
fn parse_float(s: &str) -> Option<f64> {
    s.parse::<f64>().ok()
}

fn regex(pattern: &str) -> Result<Regex, FilterError> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| FilterError::InvalidRegex {
            pattern: pattern.to_string(),
            reason: regex_reason(&e),
        })
}

/// The regex crate's syntax errors span several lines (pattern, caret, message); an HTTP error
/// body wants the one line that says what is wrong.
fn regex_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .find_map(|line| line.trim().strip_prefix("error: "))
        .map_or_else(|| text.trim().replace('\n', " "), str::to_string)
}
