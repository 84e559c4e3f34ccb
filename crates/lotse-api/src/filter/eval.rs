//! Evaluates a compiled expression against one JSON item.
//!
//! Everything here is total: the expression was checked against the shape already, and an item
//! that does not fit the shape (a missing field, `null`, a value of another JSON type) reads as
//! the zero value of the field's type, as a Go struct decoded from that JSON would hold.

use serde_json::Value;

use super::parser::Op;
use super::shape::{Leaf, Node, Operand, Step, Test};

pub(super) fn eval(node: &Node, item: &Value) -> bool {
    match node {
        Node::Or(items) => items.iter().any(|n| eval(n, item)),
        Node::And(items) => items.iter().all(|n| eval(n, item)),
        Node::Not(inner) => !eval(inner, item),
        Node::Test(test) => walk(Some(item), &test.steps, test),
    }
}

/// Follows the selector's steps; `None` is an absent value.
fn walk(value: Option<&Value>, steps: &[Step], test: &Test) -> bool {
    let Some((step, rest)) = steps.split_first() else {
        return leaf(value.filter(|v| !v.is_null()), test);
    };
    match step {
        Step::Field(name) => walk(value.and_then(|v| v.get(name)), rest, test),
        Step::Key(name) => match value.and_then(Value::as_object).and_then(|m| m.get(name)) {
            Some(v) if !v.is_null() => walk(Some(v), rest, test),
            // go-bexpr: a missing map key decides the test on its own (`Meta.env != x` holds).
            _ => test.op.when_absent(),
        },
        // go-bexpr treats a selector through a slice as "any element"; an empty slice matches
        // nothing, whatever the operator.
        Step::Each => value
            .and_then(Value::as_array)
            .is_some_and(|items| items.iter().any(|v| walk(Some(v), rest, test))),
    }
}

fn leaf(value: Option<&Value>, test: &Test) -> bool {
    match test.op {
        Op::Equal => equals(&test.operand, value),
        Op::NotEqual => !equals(&test.operand, value),
        Op::In => contains(test, value),
        Op::NotIn => !contains(test, value),
        Op::IsEmpty => len(test.leaf, value) == 0,
        Op::IsNotEmpty => len(test.leaf, value) != 0,
        Op::Matches => regex_matches(&test.operand, value),
        Op::NotMatches => !regex_matches(&test.operand, value),
    }
}

fn as_str(value: Option<&Value>) -> &str {
    value.and_then(Value::as_str).unwrap_or("")
}

/// Equality after the operand was coerced to the field's type.
fn equals(operand: &Operand, value: Option<&Value>) -> bool {
    match operand {
        Operand::Str(s) => as_str(value) == s,
        Operand::Bool(b) => value.and_then(Value::as_bool).unwrap_or(false) == *b,
        Operand::Float(f) => value.and_then(Value::as_f64).unwrap_or(0.0) == *f,
        Operand::Int(i) => match value {
            Some(Value::Number(n)) => {
                if let Some(x) = n.as_i64() {
                    i128::from(x) == *i
                } else if let Some(x) = n.as_u64() {
                    i128::from(x) == *i
                } else {
                    // A fractional value in an integer field: compare numerically.
                    n.as_f64().is_some_and(|f| f == *i as f64)
                }
            }
            _ => *i == 0,
        },
        Operand::None | Operand::Regex(_) => false,
    }
}

/// `in` / `contains`: a substring of a string, an element of a list, a key of a map.
fn contains(test: &Test, value: Option<&Value>) -> bool {
    match test.leaf {
        Leaf::Scalar => match &test.operand {
            Operand::Str(needle) => as_str(value).contains(needle.as_str()),
            _ => false,
        },
        Leaf::List => value.and_then(Value::as_array).is_some_and(|items| {
            items
                .iter()
                .any(|item| equals(&test.operand, Some(item).filter(|v| !v.is_null())))
        }),
        Leaf::Map => match &test.operand {
            Operand::Str(key) => value
                .and_then(Value::as_object)
                .is_some_and(|m| m.contains_key(key)),
            _ => false,
        },
    }
}

/// Length of a list or map; a value of another JSON type reads as the empty zero value.
fn len(leaf: Leaf, value: Option<&Value>) -> usize {
    match (leaf, value) {
        (Leaf::List, Some(Value::Array(items))) => items.len(),
        (Leaf::Map, Some(Value::Object(map))) => map.len(),
        // Emptiness is not an operator on scalars (checked at parse time).
        _ => 0,
    }
}

fn regex_matches(operand: &Operand, value: Option<&Value>) -> bool {
    match operand {
        Operand::Regex(re) => re.is_match(as_str(value)),
        _ => false,
    }
}
