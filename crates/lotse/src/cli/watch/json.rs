//! JSON text as Go writes it, for results the watch passes through without a typed shape: the
//! agent's answer is already Consul-shaped, and re-reading it into a `serde_json::Value` would
//! reorder its fields. So the text itself is compacted, escaped and indented here.

/// Walks JSON text, calling `f(c, in_string)` for every character; string state is tracked
/// through escapes, so the callback knows whether `c` is inside a string (quotes included).
fn walk(text: &str, mut f: impl FnMut(char, bool)) {
    let (mut in_str, mut escaped) = (false, false);
    for c in text.chars() {
        if in_str {
            f(c, true);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
        } else {
            in_str = c == '"';
            f(c, in_str);
        }
    }
}

/// JSON text without the whitespace outside strings (field order kept), with Go's escapes of
/// `<`, `>` and `&` inside strings (which can appear nowhere else).
pub fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    walk(text, |c, in_str| match (in_str, c) {
        (true, '<') => out.push_str("\\u003c"),
        (true, '>') => out.push_str("\\u003e"),
        (true, '&') => out.push_str("\\u0026"),
        (false, c) if c.is_whitespace() => {}
        (_, c) => out.push(c),
    });
    out
}

/// Compact JSON indented as Go's `json.MarshalIndent(v, "", "    ")`: empty `[]` and `{}`
/// stay on one line, `": "` between key and value.
pub fn indent(compact: &str) -> String {
    let mut out = String::with_capacity(compact.len() * 2);
    let mut depth = 0usize;
    // An opening bracket waits for the next character: `[]`/`{}` stay together.
    let mut pending_open = false;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("    ");
        }
    };
    walk(compact, |c, in_str| {
        if pending_open {
            pending_open = false;
            if !in_str && matches!(c, ']' | '}') {
                out.push(c);
                return;
            }
            depth += 1;
            newline(&mut out, depth);
        }
        if in_str {
            out.push(c);
            return;
        }
        match c {
            '{' | '[' => {
                out.push(c);
                pending_open = true;
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c => out.push(c),
        }
    });
    out
}

/// Go's `json.Encoder` output of a compact result: the text and a newline.
pub fn encoder_line(compact: &str) -> String {
    format!("{compact}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_compacted_indented_and_escaped_as_go() {
        let c = compact(
            "{ \"A\" : [ ], \"B\": {\"C\": \"x, y: [z] \\\" <&>\"}, \"D\": [1, 2], \"E\": {} }",
        );
        assert_eq!(
            c,
            r#"{"A":[],"B":{"C":"x, y: [z] \" \u003c\u0026\u003e"},"D":[1,2],"E":{}}"#
        );
        assert_eq!(
            indent(&c),
            "{\n    \"A\": [],\n    \"B\": {\n        \"C\": \"x, y: [z] \\\" \\u003c\\u0026\\u003e\"\n    },\n    \"D\": [\n        1,\n        2\n    ],\n    \"E\": {}\n}"
        );
        assert_eq!(indent("null"), "null");
        assert_eq!(indent("[]"), "[]");
        assert_eq!(encoder_line(r#"{"K":1}"#), "{\"K\":1}\n");
    }
}
