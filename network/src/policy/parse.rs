//! Parsing: a hand-written recursive descent over bytes. Every token is ASCII, so
//! positions are byte offsets and always fall on character boundaries.

use super::{
    ImplicitMetaPolicy, ImplicitMetaRule, MAX_NESTING_DEPTH, MAX_POLICY_LEN, NOutOf, Policy,
    PolicyError, Principal, SignaturePolicy,
};

pub(super) const EXPECTED_SIGNATURE: &str = "'AND', 'OR', 'OutOf' or a quoted principal";
const EXPECTED_POLICY: &str =
    "'AND', 'OR', 'OutOf', a quoted principal, or 'ANY', 'ALL', 'MAJORITY'";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Gate {
    And,
    Or,
    OutOf,
}

impl Gate {
    fn from_keyword(word: &str) -> Option<Self> {
        [("AND", Gate::And), ("OR", Gate::Or), ("OUTOF", Gate::OutOf)]
            .into_iter()
            .find(|(keyword, _)| word.eq_ignore_ascii_case(keyword))
            .map(|(_, gate)| gate)
    }
}

pub(super) fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// `'c'` for the first character of `rest`, or `end of input`.
pub(super) fn describe_next(rest: &str) -> String {
    match rest.chars().next() {
        Some(c) => format!("{c:?}"),
        None => "end of input".to_string(),
    }
}

pub(super) struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    pub(super) fn new(src: &'a str) -> Result<Self, PolicyError> {
        if src.len() > MAX_POLICY_LEN {
            return Err(PolicyError::TooLong {
                len: src.len(),
                max: MAX_POLICY_LEN,
            });
        }
        if src.trim().is_empty() {
            return Err(PolicyError::Empty);
        }
        Ok(Parser { src, pos: 0 })
    }

    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    /// Takes the longest run of bytes matching `accept` (all ASCII).
    fn take_while(&mut self, accept: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&accept) {
            self.pos += 1;
        }
        self.src.get(start..self.pos).unwrap_or_default()
    }

    fn error(&self, expected: &'static str) -> PolicyError {
        PolicyError::Syntax {
            position: self.pos,
            expected,
            found: describe_next(self.src.get(self.pos..).unwrap_or_default()),
        }
    }

    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), PolicyError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(expected))
        }
    }

    /// Only whitespace may follow the policy.
    pub(super) fn finish(&mut self) -> Result<(), PolicyError> {
        self.skip_ws();
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.error("end of input")),
        }
    }

    /// Either syntax: an implicit-meta rule keyword, or a signature policy.
    pub(super) fn policy(&mut self) -> Result<Policy, PolicyError> {
        self.skip_ws();
        let start = self.pos;
        let word = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_');
        if let Some(rule) = ImplicitMetaRule::from_keyword(word) {
            return self.implicit_meta(rule).map(Policy::ImplicitMeta);
        }
        self.pos = start;
        self.node(0, EXPECTED_POLICY).map(Policy::Signature)
    }

    /// The rest of `ANY Writers` after the rule keyword.
    fn implicit_meta(&mut self, rule: ImplicitMetaRule) -> Result<ImplicitMetaPolicy, PolicyError> {
        let before = self.pos;
        self.skip_ws();
        if self.pos == before && self.peek().is_some() {
            return Err(self.error("whitespace and a sub-policy name"));
        }
        let name = self.take_while(is_name_byte);
        if name.is_empty() {
            return Err(self.error("a sub-policy name (ASCII letters, digits, '-', '_')"));
        }
        ImplicitMetaPolicy::new(rule, name)
    }

    /// A signature policy enclosed by `depth` gates; `expected` describes it in errors.
    pub(super) fn node(
        &mut self,
        depth: usize,
        expected: &'static str,
    ) -> Result<SignaturePolicy, PolicyError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some(quote @ (b'\'' | b'"')) => self.principal(quote).map(SignaturePolicy::SignedBy),
            Some(b) if b.is_ascii_alphabetic() => {
                let word = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_');
                match Gate::from_keyword(word) {
                    Some(gate) => self.gate(gate, start, depth),
                    None => Err(PolicyError::Syntax {
                        position: start,
                        expected,
                        found: format!("'{word}'"),
                    }),
                }
            }
            _ => Err(self.error(expected)),
        }
    }

    /// The rest of a gate after its keyword, which starts at `start`.
    fn gate(
        &mut self,
        gate: Gate,
        start: usize,
        depth: usize,
    ) -> Result<SignaturePolicy, PolicyError> {
        // Refuse before descending, so the parser's own recursion stays bounded.
        if depth >= MAX_NESTING_DEPTH {
            return Err(PolicyError::NestingTooDeep {
                max: MAX_NESTING_DEPTH,
                position: Some(start),
            });
        }
        self.skip_ws();
        self.expect(b'(', "'('")?;
        let threshold = if gate == Gate::OutOf {
            self.skip_ws();
            let count = self.number()?;
            self.skip_ws();
            self.expect(b',', "','")?;
            Some(count)
        } else {
            None
        };
        let mut rules = Vec::new();
        loop {
            rules.push(self.node(depth + 1, EXPECTED_SIGNATURE)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b')') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("',' or ')'")),
            }
        }
        let (n, position) = match (gate, threshold) {
            (Gate::OutOf, Some(count)) => count,
            (Gate::Or, _) => (1, start),
            _ => (rules.len(), start),
        };
        NOutOf::build(n, rules, Some(position)).map(SignaturePolicy::NOutOf)
    }

    /// A decimal count and its position.
    fn number(&mut self) -> Result<(usize, usize), PolicyError> {
        let start = self.pos;
        let digits = self.take_while(|b| b.is_ascii_digit());
        if digits.is_empty() {
            return Err(self.error("a number"));
        }
        // Only digits were taken, so the parse can fail only by overflow.
        let n = digits.parse().map_err(|_| PolicyError::BadNumber {
            text: digits.to_string(),
            position: start,
        })?;
        Ok((n, start))
    }

    /// A principal in `quote`s; the opening quote is next.
    fn principal(&mut self, quote: u8) -> Result<Principal, PolicyError> {
        self.pos += 1;
        let start = self.pos;
        let rest = self.src.as_bytes().get(start..).unwrap_or_default();
        let Some(len) = rest.iter().position(|&b| b == quote) else {
            self.pos = self.src.len();
            return Err(self.error("a closing quote"));
        };
        // Quote bytes never occur inside a multi-byte UTF-8 sequence, so this slice is
        // on character boundaries.
        let text = self.src.get(start..start + len).unwrap_or_default();
        self.pos = start + len + 1;
        Principal::from_text(text, Some(start))
    }
}
