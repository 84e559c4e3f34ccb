//! Consul's `?filter=` expressions: the language of HashiCorp's go-bexpr, as Consul uses it on
//! its catalog, health and agent endpoints.
//!
//! ```text
//!  "Service.Meta.env == prod and not Checks.Status == critical"
//!     │ lexer   tokens: selectors (dotted, ["indexed"]), numbers, strings, == != ( )
//!     │ parser  Expr: Or / And / Not / Match   (syntax only)
//!     │ shape   Node: selectors resolved against an example item, values coerced, regexes built
//!     ▼ eval    Filter::matches(item) -> bool, total over any JSON
//! ```
//!
//! Consul's go.mod pins go-bexpr v0.1.2 (later releases, used by Nomad, rebuilt selectors on
//! JSON Pointer and check them only at evaluation). This follows v0.1.2, where a
//! reflection-driven "field configuration" checks every selector, operator and value against
//! the Go type when the filter is created, so a bad filter is an error (HTTP 400, the endpoint
//! prefixes "Failed to create boolean expression evaluator: ") before any data is read.
//! Here the Go type is replaced by an example of the endpoint's JSON output (see
//! [`Filter::parse`]), and evaluation runs over the Consul-shaped JSON of each item.
//!
//! # Grammar
//!
//! ```text
//! Expr    := Expr "or" Expr | Expr "and" Expr | "not" Expr | "(" Expr ")" | Match
//! Match   := Selector "==" Value        | Selector "!=" Value
//!          | Selector "contains" Value  | Selector "not contains" Value
//!          | Selector "matches" Value   | Selector "not matches" Value
//!          | Selector "is empty"        | Selector "is not empty"
//!          | Value "in" Selector        | Value "not in" Selector
//! Selector:= Ident ( "." Ident | "[" String "]" )*         Ident = [a-zA-Z][a-zA-Z0-9_]*
//! Value   := Selector (read as its dotted text) | Number | String
//! Number  := "-"? ("0" | [1-9][0-9]*) ("." [0-9]+)?        then whitespace, ")" or the end
//! String  := "..." (Go escapes: \n \t \\ \" \xHH \uHHHH ...) | `raw, no escapes`
//! ```
//!
//! `not` binds tightest, then `and`, then `or`. Whitespace (`[ \t\r\n]`) separates tokens and is
//! not allowed inside a selector except within `[ ]`. Keywords are not reserved: `not in Tags`
//! asks whether the string "not" is in Tags, as bexpr's PEG grammar reads it.
//!
//! # Semantics (go-bexpr v0.1.2)
//!
//! | field type        | operators                                  | meaning of in/contains  |
//! |-------------------|--------------------------------------------|-------------------------|
//! | string            | `==` `!=` `in` `contains` `matches` (+ negations) | substring        |
//! | number, bool      | `==` `!=`                                  |                         |
//! | list of scalars   | `in` `contains` `is empty` (+ negations)   | an element equals       |
//! | list of objects   | `is empty` `is not empty`; select through it | (see below)           |
//! | map               | `in` `contains` `is empty` (+ negations); `Map.key` / `Map["k"]` | a key |
//! | object            | none: select one of its fields             |                         |
//!
//! * Field names are matched exactly (case-sensitive), like bexpr's field configurations.
//! * Values are converted to the field's type when the filter is parsed: `Port == 8080`,
//!   `Port == "0x1F90"` (Go's base-prefixed integers), `EnableTagOverride == true` (Go's
//!   ParseBool: `1 t T TRUE true True` and the false forms). A value that does not convert is
//!   an error.
//! * A selector through a list tests each element and holds if any element does:
//!   `Checks.Status == critical` is "some check is critical", `Checks.Status != passing` is
//!   "some check is not passing"; an empty list matches nothing.
//! * A missing map key: `==`, `in`, `is not empty`, `matches` are false; `!=`, `not in`,
//!   `is empty`, `not matches` are true (bexpr's later `NotPresentDisposition`; v0.1.2 also
//!   answered true for `matches`, which is a bug we do not copy).
//! * A missing or `null` struct field reads as its zero value (`""`, 0, false, empty).
//! * `matches` uses the regex crate, whose syntax is RE2's (as Go's regexp); `\d`, `\w`, `\s`
//!   are Unicode-aware here but ASCII-only in Go.
//!
//! # Limits (ours; Consul has none beyond its HTTP request size)
//!
//! [`MAX_EXPR_LEN`] bytes, [`MAX_DEPTH`] nested parentheses/`not`, [`MAX_REGEXES`] regular
//! expressions each compiled within [`REGEX_SIZE_LIMIT`]. `and`/`or` chains of any length cost
//! no stack. Matching is linear in the data (the regex crate never backtracks).
//!
//! Accepted here but rejected by bexpr (strictly more, never a different meaning): `\"` inside
//! a double-quoted string, and `not(`…`)`, `"a"in Tags` without the whitespace bexpr requires
//! around word operators.

use serde_json::Value;

mod eval;
mod lexer;
mod parser;
mod shape;
#[cfg(test)]
mod tests;

/// Longest expression accepted, in bytes. Generous for generated filters (a few hundred
/// `ID == ...` alternatives) while bounding parse time and memory per request.
pub const MAX_EXPR_LEN: usize = 64 * 1024;
/// Deepest nesting of parentheses and `not`, which are the only things that recurse.
pub const MAX_DEPTH: usize = 64;
/// Most `matches` / `not matches` operators in one expression. With [`REGEX_SIZE_LIMIT`] this
/// bounds what one request can make the server compile to about 32 MiB.
pub const MAX_REGEXES: usize = 32;
/// Compiled-size bound for each regular expression (the regex crate's `size_limit`). 1 MiB
/// admits Unicode classes with counted repetition such as `\w{50}`.
pub const REGEX_SIZE_LIMIT: usize = 1024 * 1024;

/// Why an expression was rejected. The `Display` text is the reason Consul would give after
/// "Failed to create boolean expression evaluator: "; nothing was evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// The expression is longer than [`MAX_EXPR_LEN`] bytes; it was not read.
    #[error("expression is {len} bytes long; the limit is {max} bytes")]
    TooLong { len: usize, max: usize },
    /// Parentheses and `not` nest deeper than [`MAX_DEPTH`]; parsing stopped there.
    #[error("expression nests parentheses and \"not\" more than {max} levels deep")]
    TooDeep { max: usize },
    /// The text is not an expression: where, and what was expected there.
    #[error("syntax error at {}: {message}", at(*.line, *.column))]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// A selector names no field of the endpoint's items.
    #[error("Selector {selector:?} is not valid: {hint}")]
    InvalidSelector { selector: String, hint: String },
    /// The operator does not apply to the selected field's type.
    #[error("Invalid match operator {operator:?} for selector {selector:?}: {reason}")]
    InvalidOperator {
        operator: &'static str,
        selector: String,
        reason: String,
    },
    /// The value does not convert to the selected field's type.
    #[error("Failed to coerce value {value:?} for selector {selector:?}: {reason}")]
    InvalidValue {
        value: String,
        selector: String,
        reason: String,
    },
    /// The value of a `matches` is not a valid regular expression (or is too large).
    #[error("Failed to compile regular expression {pattern:?}: {reason}")]
    InvalidRegex { pattern: String, reason: String },
    /// More than [`MAX_REGEXES`] `matches` operators.
    #[error("expression has more than {max} \"matches\" operators")]
    TooManyRegexes { max: usize },
}

fn at(line: usize, column: usize) -> String {
    if line == 1 {
        format!("column {column}")
    } else {
        format!("line {line}, column {column}")
    }
}

impl FilterError {
    /// A syntax error at byte `offset` of `src`, located as 1-based line and column (in
    /// characters, so the column is right for non-ASCII text too).
    fn syntax(src: &str, offset: usize, message: String) -> FilterError {
        let before = src.get(..offset).unwrap_or(src);
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        FilterError::Syntax {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            message,
        }
    }
}

/// A parsed filter, checked against the shape of the items it will see.
#[derive(Debug, Clone)]
pub struct Filter {
    node: shape::Node,
}

impl Filter {
    /// Parses `expr` and checks every selector against `shape`, an example item of the
    /// endpoint's output type. Shape rules: a non-empty JSON object is a struct (only its keys
    /// are valid fields); an empty object is a map with arbitrary string keys and string values
    /// (Meta, TaggedAddresses...), and `{"*": S}` a map whose values have shape S; an array
    /// with one element gives the element shape, an empty array is a list of strings; `""` is
    /// a string, `0` an integer, `0.0` a float, `false` a bool; `null` is a field that exists
    /// but cannot be filtered on.
    pub fn parse(expr: &str, shape: &Value) -> Result<Filter, FilterError> {
        if expr.len() > MAX_EXPR_LEN {
            return Err(FilterError::TooLong {
                len: expr.len(),
                max: MAX_EXPR_LEN,
            });
        }
        let tokens = lexer::tokenize(expr);
        let ast = parser::parse(expr, &tokens, MAX_DEPTH)?;
        let node = shape::compile(ast, &shape::Ty::from_shape(shape))?;
        Ok(Filter { node })
    }

    /// Does this item match? Total: any JSON is accepted, and values that do not fit the shape
    /// read as zero values.
    pub fn matches(&self, item: &Value) -> bool {
        eval::eval(&self.node, item)
    }

    /// The filter for an optional `?filter=` parameter: absent or empty means no filtering,
    /// as in Consul (`bexpr.CreateFilter("")` is a no-op filter).
    fn from_param(expr: Option<&str>, shape: &Value) -> Result<Option<Filter>, FilterError> {
        match expr {
            None | Some("") => Ok(None),
            Some(expr) => Filter::parse(expr, shape).map(Some),
        }
    }
}

/// Keeps only the matching items; a missing or empty `expr` keeps all.
pub fn apply(
    expr: Option<&str>,
    shape: &Value,
    items: Vec<Value>,
) -> Result<Vec<Value>, FilterError> {
    Ok(match Filter::from_param(expr, shape)? {
        Some(filter) => items.into_iter().filter(|i| filter.matches(i)).collect(),
        None => items,
    })
}
