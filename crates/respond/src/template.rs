//! Conditions and templated parameters: MiniJinja with a step budget and no I/O.
//!
//! One [`Templates`] environment serves every playbook and connector. It has no loader (so
//! `include`, `import` and `extends` cannot reach a file), no global functions beyond
//! MiniJinja's pure built-ins, and a fuel budget per evaluation so a template that loops
//! without end stops with [`TemplateError::OutOfFuel`] instead of hanging a worker.
//!
//! Sources are compiled when a playbook loads (to refuse bad ones with a position) and again
//! at evaluation; compiling a short expression costs microseconds.

use std::collections::BTreeSet;

use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};

/// Default step budget per evaluation: generous for real templates, small enough that a
/// runaway loop stops within milliseconds.
pub const DEFAULT_FUEL: u64 = 100_000;

/// The names a template may start from.
pub const ROOTS: &[&str] = &[
    "case", "alert", "trigger", "steps", "item", "playbook", "run", "params", "undo", "action",
    "reason", "now",
];

/// A problem with a template, positioned inside its own text (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{message}")]
    Invalid {
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "stopped after its step budget of {fuel}: the template does too much work (a loop without end?)"
    )]
    OutOfFuel { fuel: u64 },
    #[error("{message}")]
    Eval { message: String },
}

impl TemplateError {
    /// Line and column inside the template, when known.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            TemplateError::Invalid { line, column, .. } => Some((*line, *column)),
            _ => None,
        }
    }
}

pub struct Templates {
    env: Environment<'static>,
    fuel: u64,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("fuel", &self.fuel)
            .finish()
    }
}

impl Default for Templates {
    fn default() -> Self {
        Templates::new(DEFAULT_FUEL)
    }
}

fn urlencode(v: String) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The test `private_ip`: an address (or a CIDR network) that is not on the Internet —
/// RFC 1918, loopback, link-local, shared (100.64.0.0/10), IPv6 unique-local — so that a
/// playbook does not block or report its own network: `reject("private_ip")`. Anything
/// that is not an address is not private.
fn private_ip(v: String) -> bool {
    let addr = v.split('/').next().unwrap_or_default();
    match addr.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(a)) => {
            let o = a.octets();
            a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_unspecified()
                || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        Ok(std::net::IpAddr::V6(a)) => {
            let seg = a.segments()[0];
            a.is_loopback()
                || a.is_unspecified()
                || (seg & 0xfe00) == 0xfc00
                || (seg & 0xffc0) == 0xfe80
                || a.to_ipv4_mapped()
                    .is_some_and(|m| private_ip(m.to_string()))
        }
        Err(_) => false,
    }
}

fn tojson(v: Value) -> Result<String, minijinja::Error> {
    serde_json::to_string(&v)
        .map_err(|e| minijinja::Error::new(ErrorKind::InvalidOperation, e.to_string()))
}

impl Templates {
    pub fn new(fuel: u64) -> Templates {
        let mut env = Environment::new();
        env.set_fuel(Some(fuel));
        env.set_debug(true);
        env.set_recursion_limit(64);
        // Lenient like Jinja: `case.assignee` on a case without one is falsy, not an error;
        // misspelt roots are refused at load by [`Templates::check_roots`].
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.add_filter("urlencode", urlencode);
        env.add_filter("tojson", tojson);
        env.add_test("private_ip", private_ip);
        Templates { env, fuel }
    }

    pub fn fuel(&self) -> u64 {
        self.fuel
    }

    fn invalid(&self, e: &minijinja::Error, source: &str) -> TemplateError {
        if e.kind() == ErrorKind::OutOfFuel {
            return TemplateError::OutOfFuel { fuel: self.fuel };
        }
        let line = e.line().unwrap_or(1);
        let column = e
            .range()
            .and_then(|r| source.get(..r.start))
            .map(|before| before.chars().rev().take_while(|c| *c != '\n').count() + 1)
            .unwrap_or(1);
        let message = match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        };
        TemplateError::Invalid {
            line,
            column,
            message,
        }
    }

    fn eval_error(&self, e: minijinja::Error) -> TemplateError {
        if e.kind() == ErrorKind::OutOfFuel {
            return TemplateError::OutOfFuel { fuel: self.fuel };
        }
        let mut message = match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        };
        if let Some(line) = e.line() {
            message.push_str(&format!(" (line {line} of the template)"));
        }
        TemplateError::Eval { message }
    }

    fn check_roots(
        &self,
        names: std::collections::HashSet<String>,
        source: &str,
    ) -> Result<(), TemplateError> {
        let unknown: BTreeSet<String> = names
            .into_iter()
            .filter(|n| !ROOTS.contains(&n.as_str()) && !self.env.globals().any(|(g, _)| g == n))
            .collect();
        match unknown.into_iter().next() {
            None => Ok(()),
            Some(name) => {
                let (line, column) = position_of(source, &name);
                Err(TemplateError::Invalid {
                    line,
                    column,
                    message: format!(
                        "unknown name `{name}`: a template starts from one of {}",
                        ROOTS.join(", ")
                    ),
                })
            }
        }
    }

    /// Compiles an expression (an `if`, a `for_each`) without running it.
    pub fn check_expression(&self, source: &str) -> Result<(), TemplateError> {
        let expr = self
            .env
            .compile_expression(source)
            .map_err(|e| self.invalid(&e, source))?;
        self.check_roots(expr.undeclared_variables(false), source)
    }

    /// Compiles a template (a parameter, a message) without running it.
    pub fn check_template(&self, source: &str) -> Result<(), TemplateError> {
        let t = self
            .env
            .template_from_str(source)
            .map_err(|e| self.invalid(&e, source))?;
        self.check_roots(t.undeclared_variables(false), source)
    }

    /// Evaluates an expression to a JSON value.
    pub fn eval(
        &self,
        source: &str,
        ctx: &serde_json::Value,
    ) -> Result<serde_json::Value, TemplateError> {
        let expr = self
            .env
            .compile_expression(source)
            .map_err(|e| self.invalid(&e, source))?;
        let v = expr
            .eval(Value::from(minijinja::value::Serde(ctx)))
            .map_err(|e| self.eval_error(e))?;
        to_json(&v)
    }

    /// Evaluates a condition; an undefined or empty result is false.
    pub fn truthy(&self, source: &str, ctx: &serde_json::Value) -> Result<bool, TemplateError> {
        let expr = self
            .env
            .compile_expression(source)
            .map_err(|e| self.invalid(&e, source))?;
        let v = expr
            .eval(Value::from(minijinja::value::Serde(ctx)))
            .map_err(|e| self.eval_error(e))?;
        Ok(v.is_true())
    }

    /// Renders a template to text.
    pub fn render(&self, source: &str, ctx: &serde_json::Value) -> Result<String, TemplateError> {
        if !is_template(source) {
            return Ok(source.to_string());
        }
        self.env
            .render_str(source, Value::from(minijinja::value::Serde(ctx)))
            .map_err(|e| self.eval_error(e))
    }

    /// Renders every string inside a JSON value (object keys stay as written). A string that
    /// is exactly one `{{ expression }}` keeps the expression's type (a list stays a list).
    pub fn render_value(
        &self,
        v: &serde_json::Value,
        ctx: &serde_json::Value,
    ) -> Result<serde_json::Value, TemplateError> {
        use serde_json::Value as J;
        Ok(match v {
            J::String(s) => match whole_expression(s) {
                Some(expr) => self.eval(expr, ctx)?,
                None => J::String(self.render(s, ctx)?),
            },
            J::Array(a) => J::Array(
                a.iter()
                    .map(|x| self.render_value(x, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            J::Object(m) => {
                let mut out = serde_json::Map::with_capacity(m.len());
                for (k, x) in m {
                    out.insert(k.clone(), self.render_value(x, ctx)?);
                }
                J::Object(out)
            }
            other => other.clone(),
        })
    }

    /// Checks every string inside a JSON value as a template; the error carries the path.
    pub fn check_value(&self, v: &serde_json::Value) -> Result<(), (String, TemplateError)> {
        use serde_json::Value as J;
        match v {
            J::String(s) => self.check_template(s).map_err(|e| (s.clone(), e)),
            J::Array(a) => a.iter().try_for_each(|x| self.check_value(x)),
            J::Object(m) => m.values().try_for_each(|x| self.check_value(x)),
            _ => Ok(()),
        }
    }
}

fn position_of(source: &str, needle: &str) -> (usize, usize) {
    match source.find(needle) {
        Some(at) => {
            let before = &source[..at];
            let line = before.matches('\n').count() + 1;
            let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
            (line, column)
        }
        None => (1, 1),
    }
}

/// Whether a string holds template syntax at all (plain strings skip the engine).
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// `{{ expr }}` alone: the expression inside.
fn whole_expression(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner.trim())
}

fn to_json(v: &Value) -> Result<serde_json::Value, TemplateError> {
    if v.is_undefined() || v.is_none() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::to_value(v).map_err(|e| TemplateError::Eval {
        message: format!("the value cannot be used as data: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_over_a_case() {
        let t = Templates::default();
        let ctx = json!({"case": {"tier": "high", "asset_tags": ["workstation"]}});
        let cond =
            r#"case.tier in ["validated","high"] and "domain-controller" not in case.asset_tags"#;
        assert!(t.truthy(cond, &ctx).unwrap());
        let ctx = json!({"case": {"tier": "high", "asset_tags": ["domain-controller"]}});
        assert!(!t.truthy(cond, &ctx).unwrap());
        assert!(!t.truthy("case.assignee", &ctx).unwrap());
    }

    #[test]
    fn private_addresses_are_told_from_internet_ones() {
        for a in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "10.0.0.0/8",
            "fd00::1",
            "fe80::1",
            "::1",
            "::ffff:192.168.0.1",
        ] {
            assert!(private_ip(a.into()), "{a} is private");
        }
        for a in [
            "203.0.113.77",
            "172.32.0.1",
            "172.15.255.255",
            "8.8.8.8",
            "100.128.0.1",
            "2001:db8::1",
            "evil.example",
            "",
        ] {
            assert!(!private_ip(a.into()), "{a} is not private");
        }
        let t = Templates::default();
        let ctx = json!({"case": {"entities": [{"value": "10.0.0.1"}, {"value": "203.0.113.9"}]}});
        let v = t
            .render_value(
                &json!(
                    "{{ case.entities | map(attribute='value') | reject('private_ip') | list }}"
                ),
                &ctx,
            )
            .unwrap();
        assert_eq!(v, json!(["203.0.113.9"]));
    }

    #[test]
    fn whole_expressions_keep_their_type() {
        let t = Templates::default();
        let ctx = json!({"case": {"entities": [{"type": "host", "value": "ws-1"}, {"type": "user", "value": "bob"}]}});
        let v = t
            .render_value(
                &json!({"hosts": "{{ case.entities | selectattr('type', 'eq', 'host') | map(attribute='value') | list }}",
                        "text": "host {{ case.entities[0].value | upper }}", "n": 3}),
                &ctx,
            )
            .unwrap();
        assert_eq!(v, json!({"hosts": ["ws-1"], "text": "host WS-1", "n": 3}));
        assert_eq!(
            t.render("a/{{ 'x y/z' | urlencode }}", &ctx).unwrap(),
            "a/x%20y%2Fz"
        );
    }

    #[test]
    fn syntax_errors_have_positions() {
        let t = Templates::default();
        let e = t
            .check_template("line one\nhost {{ case.id + }}")
            .unwrap_err();
        let (line, _col) = e.position().unwrap();
        assert_eq!(line, 2, "{e}");
        let e = t.check_expression("case.tier ==").unwrap_err();
        assert!(matches!(e, TemplateError::Invalid { line: 1, .. }), "{e:?}");
        let e = t.check_expression("cse.tier == 'high'").unwrap_err();
        assert_eq!(e.position(), Some((1, 1)));
        assert!(e.to_string().contains("unknown name `cse`"), "{e}");
    }

    #[test]
    fn a_runaway_loop_stops_on_its_budget() {
        let t = Templates::new(10_000);
        let src = "{% for a in range(100000) %}{% for b in range(100000) %}{{ a }}{% endfor %}{% endfor %}";
        t.check_template(src).unwrap();
        let e = t.render(src, &json!({})).unwrap_err();
        assert_eq!(e, TemplateError::OutOfFuel { fuel: 10_000 });
        assert!(e.to_string().contains("step budget"), "{e}");
    }

    #[test]
    fn no_file_access() {
        let t = Templates::default();
        assert!(t.render("{% include '/etc/passwd' %}", &json!({})).is_err());
    }

    #[test]
    fn loop_variables_and_set_names_are_not_unknown_roots() {
        let t = Templates::default();
        t.check_template("{% for e in case.entities %}{{ loop.index }} {{ e.value }}{% endfor %}")
            .unwrap();
        t.check_template("{% set n = case.entities | length %}{{ n }}")
            .unwrap();
        t.check_template("{% set ns = namespace(c=0) %}{{ ns.c }}")
            .unwrap();
    }
}
