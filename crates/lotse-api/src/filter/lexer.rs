//! Turns a filter expression into tokens.
//!
//! Selectors (`Service.Meta["rack id"]`) are lexed whole, because go-bexpr's grammar allows no
//! whitespace inside them except within an index's brackets. Words such as `and` or `contains` are
//! not reserved: they come out as one-segment selectors and the parser decides from context
//! whether they are operators, as bexpr's PEG grammar does (`not in Tags` is a valid match of the
//! value "not").
//!
//! Lexing never fails outright: the first bad character becomes a [`Tok::Error`] token, so the
//! parser reports whichever problem comes first in the text.

/// One token and the byte offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub kind: Tok,
    pub pos: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    /// A dotted/indexed path. `bare` is true for a lone identifier, the only form that can also
    /// be read as a keyword.
    Selector {
        path: Vec<String>,
        bare: bool,
    },
    /// A number literal exactly as written (coerced later, against the field's type).
    Number(String),
    /// A quoted string, escapes already decoded.
    Str(String),
    Equal,
    NotEqual,
    LParen,
    RParen,
    Eof,
    /// Lexing stopped here; the message says why. Always the last token.
    Error(String),
}

impl Tok {
    /// True for a lone identifier spelled `word`: a keyword in operator position.
    pub fn is_word(&self, word: &str) -> bool {
        match self {
            Tok::Selector { path, bare: true } => path.first().is_some_and(|p| p == word),
            _ => false,
        }
    }
}

/// Lexes all of `src`. The result always ends with [`Tok::Eof`] or [`Tok::Error`].
pub(super) fn tokenize(src: &str) -> Vec<Token> {
    let mut lexer = Lexer { src, pos: 0 };
    let mut out = Vec::new();
    loop {
        lexer.skip_whitespace();
        let start = lexer.pos;
        match lexer.next_token() {
            Ok(kind) => {
                let end = kind == Tok::Eof;
                out.push(Token { kind, pos: start });
                if end {
                    return out;
                }
            }
            Err((pos, msg)) => {
                out.push(Token {
                    kind: Tok::Error(msg),
                    pos,
                });
                return out;
            }
        }
    }
}

/// A lexing failure: where, and what went wrong.
type LexError = (usize, String);

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

/// bexpr's whitespace class `[ \t\r\n]`; anything else is an unexpected character.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.src.get(self.pos + ahead..)?.chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    fn next_token(&mut self) -> Result<Tok, LexError> {
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Ok(Tok::Eof);
        };
        match c {
            '(' => self.single(Tok::LParen),
            ')' => self.single(Tok::RParen),
            '=' | '!' if self.peek_at(1) == Some('=') => {
                self.pos += 2;
                Ok(if c == '=' { Tok::Equal } else { Tok::NotEqual })
            }
            '=' => Err((start, "unexpected \"=\"; did you mean \"==\"?".into())),
            '!' => Err((start, "unexpected \"!\"; did you mean \"!=\"?".into())),
            '"' | '`' => self.string().map(Tok::Str),
            '-' | '0'..='9' => self.number(),
            c if c.is_ascii_alphabetic() => self.selector(),
            '[' => Err((
                start,
                "an index like [\"key\"] must follow a selector".into(),
            )),
            other => Err((start, format!("unexpected character {other:?}"))),
        }
    }

    fn single(&mut self, tok: Tok) -> Result<Tok, LexError> {
        self.pos += 1;
        Ok(tok)
    }

    /// `[a-zA-Z][a-zA-Z0-9_]*`, the grammar's Identifier.
    fn identifier(&mut self) -> String {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += 1;
        }
        self.src[start..self.pos].to_string()
    }

    /// `Identifier ( "." Identifier / "[" _? StringLiteral _? "]" )*`
    fn selector(&mut self) -> Result<Tok, LexError> {
        let mut path = vec![self.identifier()];
        let mut bare = true;
        loop {
            match self.peek() {
                Some('.') => {
                    if !self.peek_at(1).is_some_and(|c| c.is_ascii_alphabetic()) {
                        let msg = "expected a field name (a letter, then letters, digits or _) \
                                   after \".\"; quote values that contain dots";
                        return Err((self.pos + 1, msg.into()));
                    }
                    self.pos += 1;
                    path.push(self.identifier());
                }
                Some('[') => {
                    self.pos += 1;
                    self.skip_whitespace();
                    if !matches!(self.peek(), Some('"' | '`')) {
                        let msg = "invalid index: expected a quoted string after \"[\"";
                        return Err((self.pos, msg.into()));
                    }
                    path.push(self.string()?);
                    self.skip_whitespace();
                    if self.peek() != Some(']') {
                        let msg = "unclosed index expression: expected \"]\"";
                        return Err((self.pos, msg.into()));
                    }
                    self.pos += 1;
                }
                _ => break,
            }
            bare = false;
        }
        Ok(Tok::Selector { path, bare })
    }

    /// `"-"? ("0" / [1-9][0-9]*) ("." [0-9]+)?`, which must be followed by whitespace, `)` or the
    /// end (bexpr's AfterNumbers), so `1e3`, `08` and `1.2.3` are rejected rather than split.
    fn number(&mut self) -> Result<Tok, LexError> {
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        match self.peek() {
            Some('0') => self.pos += 1,
            Some('1'..='9') => self.skip_digits(),
            _ => return Err((start, "unexpected \"-\": expected a number after it".into())),
        }
        if self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
            self.skip_digits();
        }
        match self.peek() {
            None | Some(')') => {}
            Some(c) if is_space(c) => {}
            Some(_) => {
                let msg = "invalid number literal: a number must be followed by whitespace, \
                           \")\" or the end; quote values that are not plain numbers";
                return Err((start, msg.into()));
            }
        }
        Ok(Tok::Number(self.src[start..self.pos].to_string()))
    }

    fn skip_digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    /// A backtick raw string or a double-quoted string with Go escapes (strconv.Unquote).
    fn string(&mut self) -> Result<String, LexError> {
        let start = self.pos;
        let quote = self.bump();
        let mut out = String::new();
        loop {
            let at = self.pos;
            match self.bump() {
                None => return Err((start, "unterminated string literal".into())),
                Some('`') if quote == Some('`') => return Ok(out),
                // Go drops carriage returns from raw strings.
                Some('\r') if quote == Some('`') => {}
                Some(c) if quote == Some('`') => out.push(c),
                Some('"') => return Ok(out),
                Some('\n') => {
                    let msg = "newline in string literal; write \\n or use a `raw string`";
                    return Err((at, msg.into()));
                }
                Some('\\') => out.push(self.escape(at)?),
                Some(c) => out.push(c),
            }
        }
    }

    /// Decodes one escape after its backslash (which sits at `at`), as Go's strconv.UnquoteChar
    /// does for a double-quoted string. `\"` is accepted: bexpr ends the string at the first `"`,
    /// so every string it accepts reads the same here.
    fn escape(&mut self, at: usize) -> Result<char, LexError> {
        let bad = |what: &str| Err((at, format!("invalid escape sequence in string: {what}")));
        let Some(c) = self.bump() else {
            return Err((at, "unterminated string literal".into()));
        };
        let simple = match c {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' => Some('\\'),
            '"' => Some('"'),
            _ => None,
        };
        if let Some(decoded) = simple {
            return Ok(decoded);
        }
        let (radix, digits) = match c {
            'x' => (16, 2),
            'u' => (16, 4),
            'U' => (16, 8),
            '0'..='7' => (8, 3),
            other => return bad(&format!("\\{other}")),
        };
        let text_start = if radix == 8 { self.pos - 1 } else { self.pos };
        let text_end = text_start + digits;
        let Some(text) = self.src.get(text_start..text_end) else {
            return bad("too few digits");
        };
        let Ok(code) = u32::from_str_radix(text, radix) else {
            return bad(&format!("\\{c}... needs {digits} digits in base {radix}"));
        };
        // u32::from_str_radix accepts a leading '+'; Go does not.
        if text.starts_with('+') {
            return bad("digits expected");
        }
        self.pos = text_end;
        // \x and octal escapes produce single bytes in Go; above 0x7f they would make invalid
        // UTF-8, which no JSON string field can equal.
        if matches!(c, 'x' | '0'..='7') && code > 0x7f {
            return bad("byte escapes above \\x7f are not valid UTF-8; use \\u");
        }
        char::from_u32(code).map_or_else(|| bad("not a Unicode scalar value"), Ok)
    }
}
