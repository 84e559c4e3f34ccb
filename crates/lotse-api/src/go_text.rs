//! Go's text forms that Consul's answers, logs and CLI messages carry, so Lotse prints them the
//! same way.

use std::fmt::Write as _;

/// Go's `strconv.Quote` (`%q`) for the text Lotse quotes: `"` and `\` escaped, `\n`, `\r`,
/// `\t` and other control characters escaped, other Unicode kept.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quotes_as_go_does() {
        assert_eq!(quote("web"), "\"web\"");
        assert_eq!(quote("a\"b\n"), "\"a\\\"b\\n\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("t\tx\u{1}é"), "\"t\\tx\\x01é\"");
    }
}
