//! A small regular-expression matcher for `members -status`, which consul matches with Go's
//! `regexp.MatchString` (unanchored search). Supports literals, `.`, `[...]` classes (ranges,
//! negation, `\d\w\s`), `^`, `$`, groups, `|`, and the quantifiers `*`, `+`, `?`, `{n}`,
//! `{n,}`, `{n,m}`. Inputs are short member status strings, so matching computes the set of
//! reachable end positions instead of backtracking.

use std::collections::BTreeSet;

#[derive(Debug, Clone)]
enum Node {
    Char(char),
    Any,
    Class {
        ranges: Vec<(char, char)>,
        negated: bool,
    },
    Start,
    End,
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat {
        node: Box<Node>,
        min: usize,
        max: Option<usize>,
    },
}

#[derive(Debug, Clone)]
pub struct Regex {
    root: Node,
}

impl Regex {
    pub fn new(pattern: &str) -> Result<Regex, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut p = Parser {
            chars: &chars,
            pos: 0,
        };
        let root = p.alt()?;
        if p.pos < chars.len() {
            return Err(format!("error parsing regexp: unexpected ): `{pattern}`"));
        }
        Ok(Regex { root })
    }

    /// Whether the pattern matches anywhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        (0..=chars.len()).any(|start| !ends(&self.root, &chars, start).is_empty())
    }
}

struct Parser<'a> {
    chars: &'a [char],
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn alt(&mut self) -> Result<Node, String> {
        let mut branches = vec![self.concat()?];
        while self.peek() == Some('|') {
            self.pos += 1;
            branches.push(self.concat()?);
        }
        Ok(if branches.len() == 1 {
            branches.pop().unwrap()
        } else {
            Node::Alt(branches)
        })
    }

    fn concat(&mut self) -> Result<Node, String> {
        let mut items = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom()?;
            items.push(self.quantified(atom)?);
        }
        Ok(Node::Concat(items))
    }

    fn quantified(&mut self, atom: Node) -> Result<Node, String> {
        let mut node = atom;
        loop {
            let (min, max) = match self.peek() {
                Some('*') => {
                    self.pos += 1;
                    (0, None)
                }
                Some('+') => {
                    self.pos += 1;
                    (1, None)
                }
                Some('?') => {
                    self.pos += 1;
                    (0, Some(1))
                }
                Some('{') => match self.braces() {
                    Some(r) => r,
                    None => return Ok(node),
                },
                _ => return Ok(node),
            };
            if matches!(node, Node::Start | Node::End) {
                return Err("error parsing regexp: missing argument to repetition operator".into());
            }
            // A lazy marker changes nothing about whether a match exists.
            if self.peek() == Some('?') {
                self.pos += 1;
            }
            node = Node::Repeat {
                node: Box::new(node),
                min,
                max,
            };
        }
    }

    /// `{n}`, `{n,}`, `{n,m}`; consumes them. `None` (nothing consumed) if not a repetition.
    fn braces(&mut self) -> Option<(usize, Option<usize>)> {
        let rest: String = self.chars[self.pos..].iter().collect();
        let close = rest.find('}')?;
        let inner = &rest[1..close];
        let (min, max) = match inner.split_once(',') {
            None => {
                let n = inner.parse().ok()?;
                (n, Some(n))
            }
            Some((a, "")) => (a.parse().ok()?, None),
            Some((a, b)) => (a.parse().ok()?, Some(b.parse().ok()?)),
        };
        self.pos += rest[..=close].chars().count();
        Some((min, max))
    }

    fn atom(&mut self) -> Result<Node, String> {
        let c = self.peek().ok_or("error parsing regexp: unexpected end")?;
        self.pos += 1;
        Ok(match c {
            '.' => Node::Any,
            '^' => Node::Start,
            '$' => Node::End,
            '(' => {
                // Non-capturing or flagged groups: skip the `?:` marker.
                if self.peek() == Some('?') && self.chars.get(self.pos + 1) == Some(&':') {
                    self.pos += 2;
                }
                let inner = self.alt()?;
                if self.peek() != Some(')') {
                    return Err("error parsing regexp: missing closing )".into());
                }
                self.pos += 1;
                inner
            }
            '[' => self.class()?,
            '\\' => self.escape()?,
            '*' | '+' | '?' => {
                return Err("error parsing regexp: missing argument to repetition operator".into())
            }
            c => Node::Char(c),
        })
    }

    fn escape(&mut self) -> Result<Node, String> {
        let c = self
            .peek()
            .ok_or("error parsing regexp: trailing backslash at end of expression")?;
        self.pos += 1;
        Ok(match c {
            'd' => Node::Class {
                ranges: vec![('0', '9')],
                negated: false,
            },
            'D' => Node::Class {
                ranges: vec![('0', '9')],
                negated: true,
            },
            'w' => Node::Class {
                ranges: word_ranges(),
                negated: false,
            },
            'W' => Node::Class {
                ranges: word_ranges(),
                negated: true,
            },
            's' => Node::Class {
                ranges: space_ranges(),
                negated: false,
            },
            'S' => Node::Class {
                ranges: space_ranges(),
                negated: true,
            },
            't' => Node::Char('\t'),
            'n' => Node::Char('\n'),
            c => Node::Char(c),
        })
    }

    fn class(&mut self) -> Result<Node, String> {
        let mut negated = false;
        if self.peek() == Some('^') {
            negated = true;
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        let mut first = true;
        loop {
            let c = self
                .peek()
                .ok_or("error parsing regexp: missing closing ]")?;
            self.pos += 1;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = if c == '\\' {
                let e = self
                    .peek()
                    .ok_or("error parsing regexp: missing closing ]")?;
                self.pos += 1;
                match e {
                    'd' => {
                        ranges.push(('0', '9'));
                        continue;
                    }
                    'w' => {
                        ranges.extend(word_ranges());
                        continue;
                    }
                    's' => {
                        ranges.extend(space_ranges());
                        continue;
                    }
                    e => e,
                }
            } else {
                c
            };
            if self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|&n| n != ']') {
                let hi = self.chars[self.pos + 1];
                self.pos += 2;
                if hi < lo {
                    return Err("error parsing regexp: invalid character class range".into());
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        Ok(Node::Class { ranges, negated })
    }
}

fn word_ranges() -> Vec<(char, char)> {
    vec![('0', '9'), ('A', 'Z'), ('a', 'z'), ('_', '_')]
}

fn space_ranges() -> Vec<(char, char)> {
    vec![('\t', '\n'), ('\x0c', '\r'), (' ', ' ')]
}

/// Every position where a match of `node` starting at `pos` can end.
fn ends(node: &Node, text: &[char], pos: usize) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    match node {
        Node::Char(c) => {
            if text.get(pos) == Some(c) {
                out.insert(pos + 1);
            }
        }
        Node::Any => {
            if text.get(pos).is_some_and(|&c| c != '\n') {
                out.insert(pos + 1);
            }
        }
        Node::Class { ranges, negated } => {
            if let Some(&c) = text.get(pos) {
                let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                if inside != *negated {
                    out.insert(pos + 1);
                }
            }
        }
        Node::Start => {
            if pos == 0 {
                out.insert(pos);
            }
        }
        Node::End => {
            if pos == text.len() {
                out.insert(pos);
            }
        }
        Node::Concat(items) => {
            let mut current = BTreeSet::from([pos]);
            for item in items {
                let mut next = BTreeSet::new();
                for &p in &current {
                    next.extend(ends(item, text, p));
                }
                current = next;
                if current.is_empty() {
                    break;
                }
            }
            out = current;
        }
        Node::Alt(branches) => {
            for b in branches {
                out.extend(ends(b, text, pos));
            }
        }
        Node::Repeat { node, min, max } => {
            let step = |from: &BTreeSet<usize>| {
                let mut next = BTreeSet::new();
                for &p in from {
                    next.extend(ends(node, text, p));
                }
                next
            };
            let mut frontier = BTreeSet::from([pos]);
            for _ in 0..*min {
                frontier = step(&frontier);
                if frontier.is_empty() {
                    return out;
                }
            }
            out.extend(frontier.iter().copied());
            let mut seen = frontier.clone();
            let mut count = *min;
            while max.is_none_or(|m| count < m) {
                let next: BTreeSet<usize> = step(&frontier)
                    .into_iter()
                    .filter(|p| !seen.contains(p))
                    .collect();
                if next.is_empty() {
                    break;
                }
                seen.extend(next.iter().copied());
                out.extend(next.iter().copied());
                frontier = next;
                count += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, t: &str) -> bool {
        Regex::new(p).unwrap().is_match(t)
    }

    #[test]
    fn statuses() {
        assert!(m(".*", "alive"));
        assert!(m("alive", "alive"));
        assert!(!m("alive", "failed"));
        assert!(m("(alive|failed)", "failed"));
        assert!(m("^(alive|left)$", "left"));
        assert!(!m("^(alive|left)$", "leaving"));
        assert!(m("le", "leaving"));
        assert!(m("^l.*g$", "leaving"));
        assert!(!m("^l.+t$", "lt"));
        assert!(m("^fai?led$", "faled"));
        assert!(m("[a-c]live", "alive"));
        assert!(!m("[^a]live", "alive"));
        assert!(m("^a{1}l", "alive"));
        assert!(m("", "alive"));
        assert!(m("(a|b)*z", "ababz"));
    }

    #[test]
    fn bad_patterns() {
        assert!(Regex::new("(alive").is_err());
        assert!(Regex::new("*a").is_err());
        assert!(Regex::new("[a-").is_err());
        assert!(Regex::new("a)").is_err());
    }
}
