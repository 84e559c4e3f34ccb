//! Recursive descent over the tokens, following go-bexpr's PEG grammar (v0.1.2, the version
//! Consul builds with):
//!
//! ```text
//! Or    := And ("or" And)*
//! And   := Not ("and" Not)*
//! Not   := "not" Not | Group          (ordered choice: if the first fails, `not` is a selector)
//! Group := "(" Or ")" | Match
//! Match := Selector ("==" | "!=" | "contains" | "not contains" | "matches" | "not matches") Value
//!        | Selector ("is empty" | "is not empty")
//!        | Value ("in" | "not in") Selector
//! Value := Selector (its dotted text) | Number | String
//! ```
//!
//! `and`/`or` chains become n-ary nodes instead of bexpr's right-leaning binary trees, so a long
//! chain costs no stack depth; only parentheses and `not` nest, and they are bounded by
//! [`super::MAX_DEPTH`].

use super::lexer::{Tok, Token};
use super::FilterError;

/// A parse failure, located by byte offset. Line and column are worked out only for the one
/// failure reported, since a `not` that falls back discards its first failure (and a chain of
/// them would otherwise cost quadratic time).
#[derive(Debug)]
enum Fail {
    Syntax { offset: usize, message: String },
    TooDeep,
}

impl Fail {
    fn offset(&self) -> usize {
        match self {
            Fail::Syntax { offset, .. } => *offset,
            Fail::TooDeep => 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Match(Match),
}

/// One matching expression before it is checked against the data's shape.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Match {
    pub selector: Vec<String>,
    pub op: Op,
    /// The operator as written (`contains` and `in` are the same [`Op`]), for error messages.
    pub op_text: &'static str,
    /// The raw value; `None` for `is empty` / `is not empty`.
    pub value: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Equal,
    NotEqual,
    In,
    NotIn,
    IsEmpty,
    IsNotEmpty,
    Matches,
    NotMatches,
}

impl Op {
    /// The answer when the selector names a map key that is absent (go-bexpr's
    /// `NotPresentDisposition`): nothing equals, contains or matches a missing key, and a
    /// missing key is empty.
    pub fn when_absent(self) -> bool {
        matches!(
            self,
            Op::NotEqual | Op::NotIn | Op::IsEmpty | Op::NotMatches
        )
    }
}

/// Parses a whole expression.
pub(super) fn parse(src: &str, tokens: &[Token], max_depth: usize) -> Result<Expr, FilterError> {
    let mut parser = Parser {
        src,
        tokens,
        pos: 0,
        depth: 0,
        max_depth,
    };
    let parsed = parser.or().and_then(|expr| match parser.peek() {
        Tok::Eof => Ok(expr),
        Tok::RParen => Err(parser.error("unmatched \")\"")),
        _ => Err(parser.expected("\"and\", \"or\" or the end of the expression")),
    });
    parsed.map_err(|fail| match fail {
        Fail::Syntax { offset, message } => FilterError::syntax(src, offset, message),
        Fail::TooDeep => FilterError::TooDeep { max: max_depth },
    })
}

/// One operand stands for itself; several are joined by `join`.
fn single_or(mut items: Vec<Expr>, join: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1 {
        if let Some(only) = items.pop() {
            return only;
        }
    }
    join(items)
}

struct Parser<'a> {
    src: &'a str,
    tokens: &'a [Token],
    pos: usize,
    depth: usize,
    max_depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        self.peek_at(0)
    }

    /// Tokens past the end read as the final Eof/Error token.
    fn peek_at(&self, ahead: usize) -> &Tok {
        let last = self.tokens.len().saturating_sub(1);
        match self.tokens.get((self.pos + ahead).min(last)) {
            Some(token) => &token.kind,
            None => &Tok::Eof,
        }
    }

    fn offset(&self) -> usize {
        let last = self.tokens.len().saturating_sub(1);
        self.tokens
            .get(self.pos.min(last))
            .map_or(self.src.len(), |t| t.pos)
    }

    fn advance(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.tokens.len().saturating_sub(1));
    }

    fn error(&self, message: &str) -> Fail {
        Fail::Syntax {
            offset: self.offset(),
            message: message.to_string(),
        }
    }

    /// "expected X, found Y" at the current token; a lexing error is reported as itself.
    fn expected(&self, what: &str) -> Fail {
        let found = match self.peek() {
            Tok::Error(msg) => return self.error(msg),
            Tok::Eof => "the end of the expression".to_string(),
            Tok::Selector { path, .. } => format!("{:?}", path.join(".")),
            Tok::Number(n) => format!("number {n}"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Equal => "\"==\"".to_string(),
            Tok::NotEqual => "\"!=\"".to_string(),
            Tok::LParen => "\"(\"".to_string(),
            Tok::RParen => "\")\"".to_string(),
        };
        self.error(&format!("expected {what}, found {found}"))
    }

    fn or(&mut self) -> Result<Expr, Fail> {
        let mut items = vec![self.and()?];
        while self.peek().is_word("or") {
            self.advance(1);
            items.push(self.and()?);
        }
        Ok(single_or(items, Expr::Or))
    }

    fn and(&mut self) -> Result<Expr, Fail> {
        let mut items = vec![self.not()?];
        while self.peek().is_word("and") {
            self.advance(1);
            items.push(self.not()?);
        }
        Ok(single_or(items, Expr::And))
    }

    fn enter(&mut self) -> Result<(), Fail> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(Fail::TooDeep);
        }
        Ok(())
    }

    fn not(&mut self) -> Result<Expr, Fail> {
        if !self.peek().is_word("not") {
            return self.group();
        }
        let (start, depth) = (self.pos, self.depth);
        self.enter()?;
        self.advance(1);
        let negated = self.not();
        // A failed attempt may return from inside nested groups: restore rather than count down.
        self.depth = depth;
        let first = match negated {
            Ok(inner) => return Ok(Expr::Not(Box::new(inner))),
            Err(Fail::TooDeep) => return Err(Fail::TooDeep),
            Err(e) => e,
        };
        // PEG ordered choice: `not` may instead be a selector or value (`not == x`,
        // `not in Tags`). The fallback only looks a few tokens ahead, so this stays linear.
        // Like a PEG parser, report the failure that got further into the text.
        self.pos = start;
        match self.group() {
            Ok(expr) => Ok(expr),
            Err(e) if e.offset() > first.offset() => Err(e),
            Err(_) => Err(first),
        }
    }

    fn group(&mut self) -> Result<Expr, Fail> {
        if *self.peek() != Tok::LParen {
            return self.matching();
        }
        self.enter()?;
        self.advance(1);
        let inner = self.or()?;
        if *self.peek() != Tok::RParen {
            return Err(self.expected("\")\" to close the parenthesis"));
        }
        self.advance(1);
        self.depth -= 1;
        Ok(inner)
    }

    fn matching(&mut self) -> Result<Expr, Fail> {
        let value = match self.peek().clone() {
            Tok::Selector { path, .. } => {
                if let Some((op, op_text, len)) = self.selector_operator() {
                    self.advance(1 + len);
                    let value = if matches!(op, Op::IsEmpty | Op::IsNotEmpty) {
                        None
                    } else {
                        Some(self.value(op_text)?)
                    };
                    return Ok(Expr::Match(Match {
                        selector: path,
                        op,
                        op_text,
                        value,
                    }));
                }
                path.join(".")
            }
            Tok::Number(n) => n,
            Tok::Str(s) => s,
            _ => return Err(self.expected("a selector, a value, \"(\" or \"not\"")),
        };
        // Only `in` / `not in` take the value first.
        let (op, op_text, len) = match (self.peek_at(1), self.peek_at(2)) {
            (t, _) if t.is_word("in") => (Op::In, "in", 1),
            (t, u) if t.is_word("not") && u.is_word("in") => (Op::NotIn, "not in", 2),
            (t, u) if t.is_word("is") => {
                let (skip, what) = if u.is_word("not") {
                    (3, "\"empty\" after \"is not\"")
                } else {
                    (2, "\"empty\" or \"not empty\" after \"is\"")
                };
                self.advance(skip);
                return Err(self.expected(what));
            }
            _ => {
                let is_selector = matches!(self.peek(), Tok::Selector { .. });
                self.advance(1);
                return Err(self.expected(if is_selector {
                    "an operator (==, !=, contains, not contains, matches, not matches, \
                     is empty, is not empty, in, not in)"
                } else {
                    "\"in\" or \"not in\" after a value"
                }));
            }
        };
        self.advance(1 + len);
        let Tok::Selector { path, .. } = self.peek().clone() else {
            return Err(self.expected(&format!("a selector after \"{op_text}\"")));
        };
        self.advance(1);
        Ok(Expr::Match(Match {
            selector: path,
            op,
            op_text,
            value: Some(value),
        }))
    }

    /// The operator after a selector, if it is one of the selector-first forms, with how many
    /// tokens it spans.
    fn selector_operator(&self) -> Option<(Op, &'static str, usize)> {
        let (a, b, c) = (self.peek_at(1), self.peek_at(2), self.peek_at(3));
        Some(match a {
            Tok::Equal => (Op::Equal, "==", 1),
            Tok::NotEqual => (Op::NotEqual, "!=", 1),
            t if t.is_word("contains") => (Op::In, "contains", 1),
            t if t.is_word("matches") => (Op::Matches, "matches", 1),
            t if t.is_word("not") && b.is_word("contains") => (Op::NotIn, "not contains", 2),
            t if t.is_word("not") && b.is_word("matches") => (Op::NotMatches, "not matches", 2),
            t if t.is_word("is") && b.is_word("empty") => (Op::IsEmpty, "is empty", 2),
            t if t.is_word("is") && b.is_word("not") && c.is_word("empty") => {
                (Op::IsNotEmpty, "is not empty", 3)
            }
            _ => return None,
        })
    }

    fn value(&mut self, op_text: &str) -> Result<String, Fail> {
        let value = match self.peek() {
            Tok::Selector { path, .. } => path.join("."),
            Tok::Number(n) => n.clone(),
            Tok::Str(s) => s.clone(),
            _ => return Err(self.expected(&format!("a value after \"{op_text}\""))),
        };
        self.advance(1);
        Ok(value)
    }
}
