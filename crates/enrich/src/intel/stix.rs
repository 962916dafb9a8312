//! STIX 2.1 bundles: `indicator` objects with `pattern_type: stix`.
//!
//! The pattern is parsed by a small recursive-descent parser that follows the STIX 2.1
//! patterning grammar (observation expressions in brackets, `OR`/`AND` at both levels,
//! `FOLLOWEDBY`, the `WITHIN`/`REPEATS`/`START … STOP` qualifiers, comparison operators, string,
//! number, boolean, `t'…'`, `h'…'` and `b'…'` literals, `IN (…)` sets, quoted path steps such as
//! `hashes.'SHA-256'`). What riposte can index is a disjunction of single-observable equality
//! tests on `ipv4-addr:value`, `ipv6-addr:value` (addresses and CIDRs), `domain-name:value`,
//! `url:value` and `file:hashes.<MD5|SHA-1|SHA-256|SHA-512>` (also `IN` over those).
//!
//! Two kinds of failure are kept apart on purpose:
//! - a pattern that is not valid STIX (unbalanced brackets, a missing quote, an unknown
//!   operator) refuses the whole bundle with the file, the indicator's line and the position
//!   in the pattern — the feed is broken and the previous set should stay;
//! - a valid pattern riposte cannot match one entity at a time (`AND`, `FOLLOWEDBY`, a
//!   qualifier, `!=`, `LIKE`, another object type, a non-STIX `pattern_type`) is skipped and
//!   listed in the feed's `skipped` report — real feeds carry such indicators and one of them
//!   must not block the rest.
//!
//! Validity is `valid_from` (inclusive) to `valid_until` (exclusive); revoked indicators are
//! skipped. Confidence is the indicator's `confidence` (0–100), else the feed's default.

use std::path::Path;

use serde::Deserialize;

use super::{DeclaredType, IntelBuilder, Meta};
use crate::LoadError;
use crate::error::line_of;

#[derive(Deserialize)]
struct Bundle {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    objects: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct StixIndicator {
    id: String,
    pattern: String,
    #[serde(default)]
    pattern_type: Option<String>,
    #[serde(default)]
    valid_from: Option<String>,
    #[serde(default)]
    valid_until: Option<String>,
    #[serde(default)]
    confidence: Option<u8>,
    #[serde(default)]
    revoked: bool,
}

pub(crate) fn load(
    b: &mut IntelBuilder<'_>,
    feed: u16,
    file: &Path,
    text: &str,
    default: &Meta,
) -> Result<(), LoadError> {
    let bundle: Bundle = serde_json::from_str(text).map_err(|e| LoadError::json(file, &e))?;
    if bundle.kind != "bundle" {
        return Err(LoadError::at(
            file,
            1,
            format!("not a STIX bundle (type is `{}`)", bundle.kind),
        ));
    }
    for obj in bundle.objects {
        if obj.get("type").and_then(|t| t.as_str()) != Some("indicator") {
            continue;
        }
        let obj_id = obj.get("id").and_then(|v| v.as_str()).unwrap_or("");
        // Found only when needed: searching the text for every indicator would be quadratic.
        let line = || line_of(text, &format!("\"{obj_id}\""));
        let at = |reason: String| LoadError {
            file: file.to_path_buf(),
            line: line(),
            column: None,
            reason,
        };
        let ind: StixIndicator = serde_json::from_value(obj.clone())
            .map_err(|e| at(format!("indicator {obj_id}: {e}")))?;
        if ind.revoked {
            continue;
        }
        if let Some(pt) = ind.pattern_type.as_deref()
            && pt != "stix"
        {
            b.skip(
                feed,
                line(),
                format!("indicator {}: pattern_type `{pt}` is not matched", ind.id),
            );
            continue;
        }
        let time = |field: &str, v: &Option<String>| {
            v.as_deref()
                .map(riposte_domain::time::parse)
                .transpose()
                .map_err(|e| at(format!("indicator {}: `{field}`: {e}", ind.id)))
        };
        let meta = Meta {
            id: Some(ind.id.clone()),
            confidence: ind.confidence.unwrap_or(default.confidence),
            valid_from: time("valid_from", &ind.valid_from)?.or(default.valid_from),
            valid_until: time("valid_until", &ind.valid_until)?.or(default.valid_until),
        };
        if ind.confidence.is_some_and(|c| c > 100) {
            return Err(at(format!(
                "indicator {}: confidence must be 0–100",
                ind.id
            )));
        }
        let expr = parse_pattern(&ind.pattern).map_err(|e| {
            at(format!(
                "indicator {}: malformed STIX pattern at character {}: {} in `{}`",
                ind.id,
                e.pos + 1,
                e.reason,
                ind.pattern
            ))
        })?;
        let mut tests = Vec::new();
        if let Err(why) = disjuncts(&expr, &mut tests) {
            b.skip(
                feed,
                line(),
                format!("indicator {}: {why}: `{}`", ind.id, ind.pattern),
            );
            continue;
        }
        for (path, value) in tests {
            match indexed_type(&path) {
                Some(ty) => b
                    .add(feed, ty, &value, &meta)
                    .map_err(|e| at(format!("indicator {}: `{path}`: {e}", ind.id)))?,
                None => b.skip(
                    feed,
                    line(),
                    format!("indicator {}: object path `{path}` is not indexed", ind.id),
                ),
            }
        }
    }
    Ok(())
}

/// The indicator type an object path holds, if riposte indexes it.
fn indexed_type(path: &str) -> Option<DeclaredType> {
    let (object, prop) = path.split_once(':')?;
    match (object, prop) {
        ("ipv4-addr" | "ipv6-addr", "value") => Some(DeclaredType::Ip),
        ("domain-name", "value") => Some(DeclaredType::Domain),
        ("url", "value") => Some(DeclaredType::Url),
        ("file", p) => {
            let name = p.strip_prefix("hashes.")?.trim_matches('\'');
            match name.replace('-', "").to_ascii_uppercase().as_str() {
                "MD5" => Some(DeclaredType::Md5),
                "SHA1" => Some(DeclaredType::Sha1),
                "SHA256" => Some(DeclaredType::Sha256),
                "SHA512" => Some(DeclaredType::Sha512),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Flattens a pattern into `path = value` tests any one of which makes it match, or says why
/// it cannot be matched one observable at a time.
fn disjuncts(e: &Expr, out: &mut Vec<(String, String)>) -> Result<(), String> {
    match e {
        Expr::Or(list) => list.iter().try_for_each(|x| disjuncts(x, out)),
        Expr::And(_) => Err("AND needs several observables at once; not indexed".into()),
        Expr::FollowedBy(_) => Err("FOLLOWEDBY is a sequence; not indexed".into()),
        Expr::Qualified(_, q) => Err(format!("the {q} qualifier is not supported")),
        Expr::Test {
            path,
            negated,
            op,
            values,
        } => {
            if *negated {
                return Err("NOT is not indexed".into());
            }
            if op != "=" && op != "IN" {
                return Err(format!("operator {op} is not indexed (only = and IN)"));
            }
            for v in values {
                match v {
                    Lit::Str(s) => out.push((path.clone(), s.clone())),
                    Lit::Other(kind) => {
                        return Err(format!("a {kind} literal cannot be an indicator value"));
                    }
                }
            }
            Ok(())
        }
        Expr::Exists(_) => Err("EXISTS is not indexed".into()),
    }
}

/// A parsed pattern. Observation and comparison levels share the same node types: the
/// flattening above treats them alike.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    FollowedBy(Vec<Expr>),
    Qualified(Box<Expr>, &'static str),
    Test {
        path: String,
        negated: bool,
        op: String,
        values: Vec<Lit>,
    },
    Exists(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Str(String),
    /// number, boolean, timestamp, hex or binary: valid STIX, never an indicator value here.
    Other(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
struct PatternError {
    /// Character offset into the pattern.
    pos: usize,
    reason: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    LBracket,
    RBracket,
    LParen,
    RParen,
    Comma,
    Colon,
    Dot,
    Op(&'static str),
    Str(String),
    Lit(&'static str),
    Word(String),
}

fn lex(p: &str) -> Result<Vec<(usize, Tok)>, PatternError> {
    let chars: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    let err = |pos: usize, reason: &str| PatternError {
        pos,
        reason: reason.to_string(),
    };
    let read_quoted = |mut j: usize| -> Result<(String, usize), PatternError> {
        // `j` is just past the opening quote.
        let start = j;
        let mut s = String::new();
        while j < chars.len() {
            match chars[j] {
                '\\' => match chars.get(j + 1) {
                    Some(&c @ ('\'' | '\\')) => {
                        s.push(c);
                        j += 2;
                    }
                    _ => return Err(err(j, "only \\' and \\\\ may be escaped")),
                },
                '\'' => return Ok((s, j + 1)),
                c => {
                    s.push(c);
                    j += 1;
                }
            }
        }
        Err(err(start - 1, "string is not closed with '"))
    };
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let tok = match c {
            c if c.is_whitespace() => {
                i += 1;
                continue;
            }
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            ':' => Tok::Colon,
            '.' => Tok::Dot,
            '=' => Tok::Op("="),
            '*' => Tok::Op("*"),
            '!' if chars.get(i + 1) == Some(&'=') => {
                i += 1;
                Tok::Op("!=")
            }
            '<' | '>' => {
                let two = chars.get(i + 1) == Some(&'=');
                let three = c == '<' && chars.get(i + 1) == Some(&'>');
                if two || three {
                    i += 1;
                }
                Tok::Op(match (c, two, three) {
                    ('<', true, _) => "<=",
                    ('<', _, true) => "<>",
                    ('<', ..) => "<",
                    (_, true, _) => ">=",
                    _ => ">",
                })
            }
            '\'' => {
                let (s, next) = read_quoted(i + 1)?;
                toks.push((start, Tok::Str(s)));
                i = next;
                continue;
            }
            't' | 'h' | 'b' if chars.get(i + 1) == Some(&'\'') => {
                let (_, next) = read_quoted(i + 2)?;
                let kind = match c {
                    't' => "timestamp",
                    'h' => "hex",
                    _ => "binary",
                };
                toks.push((start, Tok::Lit(kind)));
                i = next;
                continue;
            }
            c if c == '-' || c.is_ascii_digit() => {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                    j += 1;
                }
                if !chars[i..j].iter().any(char::is_ascii_digit) {
                    return Err(err(i, "unexpected `-`"));
                }
                toks.push((start, Tok::Lit("number")));
                i = j;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut j = i + 1;
                while j < chars.len()
                    && (chars[j].is_ascii_alphanumeric() || chars[j] == '_' || chars[j] == '-')
                {
                    j += 1;
                }
                toks.push((start, Tok::Word(chars[i..j].iter().collect())));
                i = j;
                continue;
            }
            other => return Err(err(i, &format!("unexpected character `{other}`"))),
        };
        toks.push((start, tok));
        i += 1;
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<(usize, Tok)>,
    at: usize,
    end: usize,
}

fn parse_pattern(p: &str) -> Result<Expr, PatternError> {
    let toks = lex(p)?;
    let mut parser = Parser {
        toks,
        at: 0,
        end: p.chars().count(),
    };
    let e = parser.observations()?;
    match parser.peek() {
        None => Ok(e),
        Some(t) => Err(parser.err(format!("unexpected {} after the pattern", describe(t)))),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::LBracket => "`[`".into(),
        Tok::RBracket => "`]`".into(),
        Tok::LParen => "`(`".into(),
        Tok::RParen => "`)`".into(),
        Tok::Comma => "`,`".into(),
        Tok::Colon => "`:`".into(),
        Tok::Dot => "`.`".into(),
        Tok::Op(o) => format!("`{o}`"),
        Tok::Str(s) => format!("string '{s}'"),
        Tok::Lit(k) => format!("{k} literal"),
        Tok::Word(w) => format!("`{w}`"),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|(_, t)| t)
    }

    fn pos(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |(p, _)| *p)
    }

    fn err(&self, reason: String) -> PatternError {
        PatternError {
            pos: self.pos(),
            reason,
        }
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).map(|(_, t)| t.clone());
        self.at += 1;
        t
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<(), PatternError> {
        if self.peek() == Some(&want) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.err(match self.peek() {
                Some(t) => format!("expected {what}, found {}", describe(t)),
                None => format!("expected {what}, found the end"),
            }))
        }
    }

    /// observationExpressions: or-groups joined by FOLLOWEDBY.
    fn observations(&mut self) -> Result<Expr, PatternError> {
        let mut list = vec![self.observation_or()?];
        while self.is_word("FOLLOWEDBY") {
            self.at += 1;
            list.push(self.observation_or()?);
        }
        Ok(one_or(list, Expr::FollowedBy))
    }

    fn observation_or(&mut self) -> Result<Expr, PatternError> {
        let mut list = vec![self.observation_and()?];
        while self.is_word("OR") {
            self.at += 1;
            list.push(self.observation_and()?);
        }
        Ok(one_or(list, Expr::Or))
    }

    fn observation_and(&mut self) -> Result<Expr, PatternError> {
        let mut list = vec![self.observation()?];
        while self.is_word("AND") {
            self.at += 1;
            list.push(self.observation()?);
        }
        Ok(one_or(list, Expr::And))
    }

    /// `[ comparison ]` or `( observations )`, then any qualifiers.
    fn observation(&mut self) -> Result<Expr, PatternError> {
        let mut e = match self.peek() {
            Some(Tok::LBracket) => {
                self.at += 1;
                let e = self.comparison_or()?;
                self.expect(Tok::RBracket, "`]` closing the observation")?;
                e
            }
            Some(Tok::LParen) => {
                self.at += 1;
                let e = self.observations()?;
                self.expect(Tok::RParen, "`)`")?;
                e
            }
            Some(t) => {
                return Err(self.err(format!(
                    "expected `[` opening an observation, found {}",
                    describe(t)
                )));
            }
            None => return Err(self.err("expected `[` opening an observation".into())),
        };
        loop {
            if self.is_word("WITHIN") {
                self.at += 1;
                self.expect(Tok::Lit("number"), "a number after WITHIN")?;
                self.expect(Tok::Word("SECONDS".into()), "SECONDS")?;
                e = Expr::Qualified(Box::new(e), "WITHIN");
            } else if self.is_word("REPEATS") {
                self.at += 1;
                self.expect(Tok::Lit("number"), "a number after REPEATS")?;
                self.expect(Tok::Word("TIMES".into()), "TIMES")?;
                e = Expr::Qualified(Box::new(e), "REPEATS");
            } else if self.is_word("START") {
                self.at += 1;
                self.expect(Tok::Lit("timestamp"), "t'…' after START")?;
                self.expect(Tok::Word("STOP".into()), "STOP")?;
                self.expect(Tok::Lit("timestamp"), "t'…' after STOP")?;
                e = Expr::Qualified(Box::new(e), "START/STOP");
            } else {
                return Ok(e);
            }
        }
    }

    fn comparison_or(&mut self) -> Result<Expr, PatternError> {
        let mut list = vec![self.comparison_and()?];
        while self.is_word("OR") {
            self.at += 1;
            list.push(self.comparison_and()?);
        }
        Ok(one_or(list, Expr::Or))
    }

    fn comparison_and(&mut self) -> Result<Expr, PatternError> {
        let mut list = vec![self.prop_test()?];
        while self.is_word("AND") {
            self.at += 1;
            list.push(self.prop_test()?);
        }
        Ok(one_or(list, Expr::And))
    }

    fn prop_test(&mut self) -> Result<Expr, PatternError> {
        if self.peek() == Some(&Tok::LParen) {
            self.at += 1;
            let e = self.comparison_or()?;
            self.expect(Tok::RParen, "`)`")?;
            return Ok(e);
        }
        if self.is_word("EXISTS") {
            self.at += 1;
            return Ok(Expr::Exists(self.object_path()?));
        }
        let path = self.object_path()?;
        let negated = self.is_word("NOT");
        if negated {
            self.at += 1;
        }
        let op = match self.next() {
            Some(Tok::Op(o)) => o.to_string(),
            Some(Tok::Word(w))
                if matches!(
                    w.as_str(),
                    "IN" | "LIKE" | "MATCHES" | "ISSUBSET" | "ISSUPERSET"
                ) =>
            {
                w
            }
            Some(t) => {
                self.at -= 1;
                return Err(self.err(format!(
                    "expected a comparison operator after `{path}`, found {}",
                    describe(&t)
                )));
            }
            None => {
                return Err(self.err(format!("expected a comparison operator after `{path}`")));
            }
        };
        let values = if op == "IN" {
            self.expect(Tok::LParen, "`(` opening the IN set")?;
            let mut v = vec![self.literal()?];
            while self.peek() == Some(&Tok::Comma) {
                self.at += 1;
                v.push(self.literal()?);
            }
            self.expect(Tok::RParen, "`)` closing the IN set")?;
            v
        } else {
            vec![self.literal()?]
        };
        Ok(Expr::Test {
            path,
            negated,
            op,
            values,
        })
    }

    fn literal(&mut self) -> Result<Lit, PatternError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Lit(k)) => Ok(Lit::Other(k)),
            Some(Tok::Word(w)) if w == "true" || w == "false" => Ok(Lit::Other("boolean")),
            Some(t) => {
                self.at -= 1;
                Err(self.err(format!(
                    "expected a literal such as 'value', found {}",
                    describe(&t)
                )))
            }
            None => Err(self.err("expected a literal such as 'value', found the end".into())),
        }
    }

    /// `object-type:prop(.prop | .'quoted' | [index])*`, returned as written.
    fn object_path(&mut self) -> Result<String, PatternError> {
        let object = match self.next() {
            Some(Tok::Word(w)) if !is_keyword(&w) => w,
            Some(t) => {
                self.at -= 1;
                return Err(self.err(format!(
                    "expected an object path such as ipv4-addr:value, found {}",
                    describe(&t)
                )));
            }
            None => {
                return Err(self.err("expected an object path such as ipv4-addr:value".into()));
            }
        };
        self.expect(Tok::Colon, "`:` in the object path")?;
        let mut path = format!("{object}:");
        path.push_str(&self.path_step()?);
        loop {
            match self.peek() {
                Some(Tok::Dot) => {
                    self.at += 1;
                    path.push('.');
                    path.push_str(&self.path_step()?);
                }
                Some(Tok::LBracket) => {
                    self.at += 1;
                    match self.next() {
                        Some(Tok::Lit("number")) => path.push_str("[n]"),
                        Some(Tok::Op("*")) => path.push_str("[*]"),
                        _ => {
                            self.at -= 1;
                            return Err(self.err("expected a list index".into()));
                        }
                    }
                    self.expect(Tok::RBracket, "`]` closing the list index")?;
                }
                _ => return Ok(path),
            }
        }
    }

    fn path_step(&mut self) -> Result<String, PatternError> {
        match self.next() {
            Some(Tok::Word(w)) => Ok(w),
            Some(Tok::Str(s)) => Ok(format!("'{s}'")),
            Some(t) => {
                self.at -= 1;
                Err(self.err(format!("expected a property name, found {}", describe(&t))))
            }
            None => Err(self.err("expected a property name, found the end".into())),
        }
    }
}

fn is_keyword(w: &str) -> bool {
    matches!(
        w,
        "AND" | "OR" | "NOT" | "FOLLOWEDBY" | "WITHIN" | "REPEATS" | "START" | "STOP" | "IN"
    )
}

fn one_or(mut list: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    if list.len() == 1 {
        list.remove(0)
    } else {
        make(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(p: &str) -> Result<Vec<(String, String)>, String> {
        let e = parse_pattern(p).map_err(|e| format!("malformed at {}: {}", e.pos, e.reason))?;
        let mut out = Vec::new();
        disjuncts(&e, &mut out)?;
        Ok(out)
    }

    #[test]
    fn equality_and_or_at_both_levels() {
        assert_eq!(
            flat("[ipv4-addr:value = '198.51.100.1']").unwrap(),
            [("ipv4-addr:value".into(), "198.51.100.1".into())]
        );
        let both = flat(
            "[domain-name:value = 'evil.example' OR url:value = 'http://x.example/a'] \
             OR [file:hashes.'SHA-256' = 'ab\\'c']",
        )
        .unwrap();
        assert_eq!(both.len(), 3);
        assert_eq!(both[2], ("file:hashes.'SHA-256'".into(), "ab'c".into()));
        assert_eq!(
            flat("[ipv4-addr:value IN ('10.0.0.1', '10.0.0.2')]")
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn valid_but_unindexable_patterns_say_why() {
        let and = flat("[ipv4-addr:value = '1.2.3.4' AND domain-name:value = 'a.example']");
        assert!(and.unwrap_err().contains("AND"));
        let seq = flat("[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [url:value = 'http://a/']");
        assert!(seq.unwrap_err().contains("FOLLOWEDBY"));
        let within = flat("[ipv4-addr:value = '1.2.3.4'] WITHIN 300 SECONDS");
        assert!(within.unwrap_err().contains("WITHIN"));
        assert!(
            flat("[ipv4-addr:value != '1.2.3.4']")
                .unwrap_err()
                .contains("!=")
        );
    }

    #[test]
    fn malformed_patterns_point_at_the_problem() {
        for (p, want) in [
            ("[ipv4-addr:value = '1.2.3.4'", "expected `]`"),
            ("ipv4-addr:value = '1.2.3.4'", "expected `[`"),
            ("[ipv4-addr:value = '1.2.3.4]", "not closed"),
            ("[ipv4-addr:value == '1.2.3.4']", "expected a literal"),
            ("[ipv4-addr value = '1']", "`:`"),
            ("[ipv4-addr:value = '1'] OR", "expected `[`"),
            ("[ipv4-addr:value ~ '1']", "unexpected character"),
        ] {
            let e = flat(p).expect_err(p);
            assert!(e.starts_with("malformed") && e.contains(want), "{p}: {e}");
        }
    }

    #[test]
    fn any_prefix_of_any_pattern_parses_or_errs_without_panicking() {
        let patterns = [
            "[ipv4-addr:value = '198.51.100.1/32' OR ipv6-addr:value IN ('2001:db8::1', '::1')]",
            "([file:hashes.'SHA-256' = 'ab' AND file:size > 10] FOLLOWEDBY [x:y[*].z = t'2025-01-01T00:00:00Z']) WITHIN 5 SECONDS",
            "[a:b NOT LIKE 'é\\\\x'] REPEATS 3 TIMES START t'2025-01-01T00:00:00Z' STOP t'2026-01-01T00:00:00Z'",
            "[url:value MATCHES h'00ff' OR url:value = b'AA==' OR x:y[0] = -1.5 OR EXISTS z:w]",
        ];
        // Each full pattern is valid STIX: parsed, then refused (or kept) for indexing only.
        assert_eq!(flat(patterns[0]).map(|v| v.len()), Ok(3));
        for p in &patterns[1..] {
            let why = flat(p).expect_err(p);
            assert!(!why.starts_with("malformed"), "{p}: {why}");
        }
        for p in patterns {
            let chars: Vec<char> = p.chars().collect();
            for end in 0..=chars.len() {
                let prefix: String = chars[..end].iter().collect();
                let _ = flat(&prefix);
                let suffix: String = chars[end..].iter().collect();
                let _ = flat(&suffix);
            }
        }
    }
}
