//! Per-tool authorization: which groups may use which tools, prompts and resources, on top
//! of `REQUIRED_GROUPS`. A `Policy` comes from `TOOL_POLICY_FILE` (JSON, read by
//! `config.rs`) or from `Builder::policy`; the dispatcher (`mcp/mod.rs`) asks it before a
//! call and filters every list through it. The audit line of each tool call is `audit.rs`'s.
//!
//! Rules, per kind: a tool or prompt key is an exact name or a prefix ending in `*`; a
//! resource key is a URI prefix. The most specific matching rule decides (an exact name
//! over any prefix, the longest prefix otherwise); with no matching rule, everyone who
//! passed `REQUIRED_GROUPS` may use the item. A rule's groups are compared exactly, like
//! `REQUIRED_GROUPS`; `"*"` among them lets everyone in. An anonymous caller (auth off)
//! has no groups, so restricted items are hidden from it.
//!
//! The functions that take a list result (`filter_tools`, …) and `unmatched` work on plain
//! JSON and names, so they serve a catalog of this process and lists received from an
//! upstream server alike.

use std::fmt;
use std::sync::Arc;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::audit::{self, Field};
use crate::config::Config;
use crate::identity::Caller;
use crate::mcp::catalog::Catalog;

/// What a rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Tool,
    Prompt,
    Resource,
}

impl Kind {
    /// The key of its section in a policy file: `tools`, `prompts`, `resources`.
    pub fn section(self) -> &'static str {
        match self {
            Kind::Tool => "tools",
            Kind::Prompt => "prompts",
            Kind::Resource => "resources",
        }
    }

    /// One item of it, as log lines name it: `tool`, `prompt`, `resource`.
    pub fn singular(self) -> &'static str {
        match self {
            Kind::Tool => "tool",
            Kind::Prompt => "prompt",
            Kind::Resource => "resource",
        }
    }
}

/// Per-tool authorization rules. `Policy::new()` restricts nothing; add rules with
/// `tool`, `prompt` and `resource`, or read them with `from_json`.
///
/// ```
/// use mcp_warden::{Caller, Identity, Policy, Server};
///
/// let policy = Policy::new()
///     .tool("write_file", ["sre"])
///     .tool("admin_*", ["sre", "admin"])
///     .prompt("incident_*", ["sre"])
///     .resource("file:///secrets/", ["sre"]);
/// let bob = Caller::User(Identity {
///     issuer: None,
///     subject: "bob".into(),
///     email: None,
///     name: None,
///     groups: vec!["devops".into()],
/// });
/// assert!(!policy.allows_tool(&bob, "write_file"));
/// assert!(policy.allows_tool(&bob, "read_file")); // no rule: everyone may
/// assert!(!policy.allows_resource(&bob, "file:///secrets/db.txt"));
///
/// // The same rules as a TOOL_POLICY_FILE would hold them.
/// let same = Policy::from_json(r#"{"tools": {"write_file": ["sre"]}}"#).unwrap();
/// assert!(!same.allows_tool(&bob, "write_file"));
///
/// let builder = Server::builder().policy(policy); // then .tool(…) and .serve()
/// # drop(builder);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Each must allow an item for a caller to use it: the builder's rules and
    /// `TOOL_POLICY_FILE`'s, when a program has both. Empty: everything is allowed.
    layers: Vec<Rules>,
    /// The first rule the builder methods refused; `Builder::start` reports it.
    invalid: Option<PolicyError>,
}

/// The rules of one source (a file, or the builder).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Rules {
    tools: Vec<Rule>,
    prompts: Vec<Rule>,
    resources: Vec<Rule>,
}

impl Rules {
    fn of(&self, kind: Kind) -> &[Rule] {
        match kind {
            Kind::Tool => &self.tools,
            Kind::Prompt => &self.prompts,
            Kind::Resource => &self.resources,
        }
    }

    fn of_mut(&mut self, kind: Kind) -> &mut Vec<Rule> {
        match kind {
            Kind::Tool => &mut self.tools,
            Kind::Prompt => &mut self.prompts,
            Kind::Resource => &mut self.resources,
        }
    }

    fn is_empty(&self) -> bool {
        self.tools.is_empty() && self.prompts.is_empty() && self.resources.is_empty()
    }

    /// Checks and adds one rule; refuses a second rule for the same names.
    fn add(&mut self, kind: Kind, key: &str, groups: Vec<String>) -> Result<(), PolicyError> {
        let rule = Rule::parse(kind, key, groups)?;
        if let Some(twin) = self.of(kind).iter().find(|r| r.pattern == rule.pattern) {
            return Err(PolicyError::rule(
                kind,
                key,
                format!(
                    "it covers the same names as the rule {}; write one rule",
                    rule_name(kind, &twin.key)
                ),
            ));
        }
        self.of_mut(kind).push(rule);
        Ok(())
    }

    /// The rule that decides for `name`: an exact one, else the longest matching prefix.
    fn deciding(&self, kind: Kind, name: &str) -> Option<&Rule> {
        let rules = self.of(kind);
        rules
            .iter()
            .find(|r| matches!(&r.pattern, Pattern::Exact(exact) if exact == name))
            .or_else(|| {
                rules
                    .iter()
                    .filter_map(|r| match &r.pattern {
                        Pattern::Prefix(p) if name.starts_with(p.as_str()) => Some((p.len(), r)),
                        _ => None,
                    })
                    .max_by_key(|(len, _)| *len)
                    .map(|(_, r)| r)
            })
    }
}

/// One rule: the names it covers and who may use them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Rule {
    /// As written (for messages).
    key: String,
    pattern: Pattern,
    groups: Groups,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    /// Every name (or URI) starting with this; `""` is every one.
    Prefix(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Groups {
    /// `"*"` was among them: everyone.
    Any,
    OneOf(Vec<String>),
}

impl Rule {
    fn parse(kind: Kind, key: &str, groups: Vec<String>) -> Result<Rule, PolicyError> {
        let bad = |why: &str| Err(PolicyError::rule(kind, key, why.to_string()));
        if key.is_empty() {
            return bad("an empty key names nothing; write a name, or * for every one");
        }
        let stem = key.strip_suffix('*').unwrap_or(key);
        if stem.contains('*') {
            return bad(match kind {
                Kind::Resource => {
                    "a resource key is a URI prefix; a * may only end it, as in \"file:///secrets/*\""
                }
                _ => "a * may only end a key (a prefix), as in \"admin_*\"",
            });
        }
        let pattern = match kind {
            // A resource key is a prefix already; a trailing `*` says the same.
            Kind::Resource => Pattern::Prefix(stem.to_string()),
            _ if stem.len() < key.len() => Pattern::Prefix(stem.to_string()),
            _ => Pattern::Exact(key.to_string()),
        };
        if groups.is_empty() {
            return bad(
                "the list of groups is empty; name at least one group (or \"*\" for everyone)",
            );
        }
        if let Some(g) = groups
            .iter()
            .find(|g| g.is_empty() || g.trim() != g.as_str())
        {
            return Err(PolicyError::rule(
                kind,
                key,
                format!(
                    "group {g:?} is empty or has spaces around it; groups are compared exactly"
                ),
            ));
        }
        let groups = if groups.iter().any(|g| g == "*") {
            Groups::Any
        } else {
            Groups::OneOf(groups)
        };
        Ok(Rule {
            key: key.to_string(),
            pattern,
            groups,
        })
    }

    fn admits(&self, caller: &Caller) -> bool {
        match (&self.groups, caller) {
            (Groups::Any, _) => true,
            (Groups::OneOf(_), Caller::Anonymous) => false,
            (Groups::OneOf(groups), Caller::User(id)) => {
                id.groups.iter().any(|g| groups.contains(g))
            }
        }
    }
}

/// `tools."write_file"`: a rule as messages name it.
fn rule_name(kind: Kind, key: &str) -> String {
    format!("{}.{}", kind.section(), Value::from(key))
}

/// A policy that cannot be used: not JSON, an unknown key, or a malformed rule (named).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// The rule at fault, as `tools."write_file"`; `None` when the fault is not in a rule.
    pub rule: Option<String>,
    /// What is wrong, and what to write instead.
    pub reason: String,
}

impl PolicyError {
    fn rule(kind: Kind, key: &str, reason: String) -> PolicyError {
        PolicyError {
            rule: Some(rule_name(kind, key)),
            reason,
        }
    }

    fn file(reason: impl Into<String>) -> PolicyError {
        PolicyError {
            rule: None,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.rule {
            Some(rule) => write!(f, "rule {rule}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl std::error::Error for PolicyError {}

/// A JSON object's members in order, duplicates kept (a policy refuses them: with
/// `serde_json::Value` the last would silently win).
struct Members<T>(Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Members<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Collect<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Collect<T> {
            type Value = Members<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<T>, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Collect(std::marker::PhantomData))
    }
}

impl Policy {
    /// A policy that restricts nothing yet.
    pub fn new() -> Policy {
        Policy::default()
    }

    /// Reads a policy file's text:
    /// `{"tools": {"write_file": ["sre"], "admin_*": ["sre", "admin"]},
    ///   "prompts": {"incident_*": ["sre"]}, "resources": {"file:///secrets/": ["sre"]}}`.
    /// Every section is optional. Refused, naming the rule: an unknown top-level key, a
    /// key named twice, an empty key, a `*` anywhere but at the end of a key, a value that
    /// is not a non-empty array of non-empty strings.
    pub fn from_json(text: &str) -> Result<Policy, PolicyError> {
        let top: Members<Box<RawValue>> = serde_json::from_str(text).map_err(|e| {
            PolicyError::file(format!(
                "not a JSON object of \"tools\", \"prompts\" and \"resources\" rules: {e}"
            ))
        })?;
        let mut rules = Rules::default();
        let mut seen: Vec<Kind> = Vec::new();
        for (section, raw) in top.0 {
            let kind = match section.as_str() {
                "tools" => Kind::Tool,
                "prompts" => Kind::Prompt,
                "resources" => Kind::Resource,
                other => {
                    return Err(PolicyError::file(format!(
                        "unknown key {} at the top; a policy has only \"tools\", \"prompts\" and \"resources\"",
                        Value::from(other)
                    )));
                }
            };
            if seen.contains(&kind) {
                return Err(PolicyError::file(format!(
                    "\"{section}\" is written twice; write it once"
                )));
            }
            seen.push(kind);
            let members: Members<Value> = serde_json::from_str(raw.get()).map_err(|_| {
                PolicyError::file(format!(
                    "\"{section}\" must be an object of rules, each a {} and the list of groups that may use it",
                    match kind {
                        Kind::Resource => "URI prefix",
                        _ => "name (or prefix ending in *)",
                    }
                ))
            })?;
            for (key, value) in members.0 {
                let groups = match value {
                    Value::Array(items) => items
                        .into_iter()
                        .map(|item| match item {
                            Value::String(s) => Some(s),
                            _ => None,
                        })
                        .collect::<Option<Vec<String>>>(),
                    _ => None,
                };
                let Some(groups) = groups else {
                    return Err(PolicyError::rule(
                        kind,
                        &key,
                        "the value must be an array of group names, e.g. [\"sre\"]".into(),
                    ));
                };
                rules.add(kind, &key, groups)?;
            }
        }
        Ok(Policy {
            layers: if rules.is_empty() {
                Vec::new()
            } else {
                vec![rules]
            },
            invalid: None,
        })
    }

    /// Adds a rule for tools: `key` is a name, or a prefix ending in `*`; `groups` may use
    /// what it covers (`"*"`: everyone). A malformed rule makes `Builder::start` refuse.
    pub fn tool<G: Into<String>>(self, key: &str, groups: impl IntoIterator<Item = G>) -> Policy {
        self.with(Kind::Tool, key, groups)
    }

    /// Adds a rule for prompts, as `tool` does for tools.
    pub fn prompt<G: Into<String>>(self, key: &str, groups: impl IntoIterator<Item = G>) -> Policy {
        self.with(Kind::Prompt, key, groups)
    }

    /// Adds a rule for resources: `prefix` covers every URI starting with it (resource
    /// templates included, see `allows_template`).
    pub fn resource<G: Into<String>>(
        self,
        prefix: &str,
        groups: impl IntoIterator<Item = G>,
    ) -> Policy {
        self.with(Kind::Resource, prefix, groups)
    }

    fn with<G: Into<String>>(
        mut self,
        kind: Kind,
        key: &str,
        groups: impl IntoIterator<Item = G>,
    ) -> Policy {
        let groups = groups.into_iter().map(Into::into).collect();
        if self.layers.is_empty() {
            self.layers.push(Rules::default());
        }
        let added = match self.layers.last_mut() {
            Some(rules) => rules.add(kind, key, groups),
            None => Ok(()),
        };
        if let Err(e) = added {
            self.invalid.get_or_insert(e);
        }
        self
    }

    /// The first malformed rule given to `tool`, `prompt` or `resource`, if any.
    pub fn check(&self) -> Result<(), PolicyError> {
        match &self.invalid {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Both policies at once: an item is allowed only when each allows it.
    pub fn and(mut self, other: &Policy) -> Policy {
        self.layers.extend(other.layers.iter().cloned());
        if self.invalid.is_none() {
            self.invalid = other.invalid.clone();
        }
        self
    }

    /// Whether there is no rule: everything is allowed to everyone, and no list depends
    /// on the caller.
    pub fn is_empty(&self) -> bool {
        self.layers.iter().all(Rules::is_empty)
    }

    /// Rules per kind, for the startup log: `2 tool, 1 prompt, 1 resource rule(s)`.
    pub fn summary(&self) -> String {
        let count = |kind| {
            self.layers
                .iter()
                .map(|r: &Rules| r.of(kind).len())
                .sum::<usize>()
        };
        format!(
            "{} tool, {} prompt, {} resource rule(s)",
            count(Kind::Tool),
            count(Kind::Prompt),
            count(Kind::Resource)
        )
    }

    /// Whether `caller` may use the item `name` (a URI for resources).
    pub fn allows(&self, caller: &Caller, kind: Kind, name: &str) -> bool {
        self.layers
            .iter()
            .all(|rules| rules.deciding(kind, name).is_none_or(|r| r.admits(caller)))
    }

    pub fn allows_tool(&self, caller: &Caller, name: &str) -> bool {
        self.allows(caller, Kind::Tool, name)
    }

    pub fn allows_prompt(&self, caller: &Caller, name: &str) -> bool {
        self.allows(caller, Kind::Prompt, name)
    }

    pub fn allows_resource(&self, caller: &Caller, uri: &str) -> bool {
        self.allows(caller, Kind::Resource, uri)
    }

    /// Whether a resource template is listed for `caller`: decided by its literal prefix
    /// (the text before its first `{`) as a URI. A rule longer than that prefix does not
    /// hide the template; each read is checked by its URI.
    pub fn allows_template(&self, caller: &Caller, uri_template: &str) -> bool {
        self.allows_resource(caller, literal_prefix(uri_template))
    }

    /// `allows`, and when it does not, one info line `denied sub=<subject> <kind>=<name>`.
    /// The caller is then answered exactly as for an unknown name.
    pub fn admits(&self, caller: &Caller, kind: Kind, name: &str) -> bool {
        if self.allows(caller, kind, name) {
            return true;
        }
        log::info!("{}", Denied { caller, kind, name });
        false
    }

    /// `admits` for a `completion/complete` reference (`ref/prompt` by name, `ref/resource`
    /// by URI template); a reference of another shape is left to the method to refuse.
    pub fn admits_reference(
        &self,
        caller: &Caller,
        reference: &serde_json::Map<String, Value>,
    ) -> bool {
        if self.is_empty() {
            return true;
        }
        let field = |name: &str| reference.get(name).and_then(Value::as_str);
        match (
            reference.get("type").and_then(Value::as_str),
            field("name"),
            field("uri"),
        ) {
            (Some("ref/prompt"), Some(name), _) => self.admits(caller, Kind::Prompt, name),
            (Some("ref/resource"), _, Some(template)) => {
                self.admits(caller, Kind::Resource, literal_prefix(template))
            }
            _ => true,
        }
    }

    /// Keeps in a `tools/list` result (`{"tools": [...]}`) only the tools `caller` may use.
    pub fn filter_tools(&self, list: &mut Value, caller: &Caller) {
        self.filter(list, "tools", "name", |name| self.allows_tool(caller, name));
    }

    /// Keeps in a `prompts/list` result only the prompts `caller` may use.
    pub fn filter_prompts(&self, list: &mut Value, caller: &Caller) {
        self.filter(list, "prompts", "name", |name| {
            self.allows_prompt(caller, name)
        });
    }

    /// Keeps in a `resources/list` result only the resources `caller` may read.
    pub fn filter_resources(&self, list: &mut Value, caller: &Caller) {
        self.filter(list, "resources", "uri", |uri| {
            self.allows_resource(caller, uri)
        });
    }

    /// Keeps in a `resources/templates/list` result only the templates listed for `caller`
    /// (`allows_template`).
    pub fn filter_templates(&self, list: &mut Value, caller: &Caller) {
        self.filter(list, "resourceTemplates", "uriTemplate", |template| {
            self.allows_template(caller, template)
        });
    }

    /// Keeps the entries of `list[field]` whose `key` passes `keep`; an entry without a
    /// string `key` cannot be checked, and goes too.
    fn filter(&self, list: &mut Value, field: &str, key: &str, keep: impl Fn(&str) -> bool) {
        if self.is_empty() {
            return;
        }
        if let Some(Value::Array(entries)) = list.get_mut(field) {
            entries.retain(|entry| entry.get(key).and_then(Value::as_str).is_some_and(&keep));
        }
    }

    /// The rules that match nothing offered, named as `tools."write_file"`: a typo, or a
    /// server that changed. `resources` holds URIs and URI templates (an entry with a `{`
    /// is a template: a rule matches it when its literal prefix and the rule's prefix
    /// overlap, since it may produce URIs under the rule).
    pub fn unmatched(&self, tools: &[&str], prompts: &[&str], resources: &[&str]) -> Vec<String> {
        let mut unmatched = Vec::new();
        for rules in &self.layers {
            for (kind, offered) in [
                (Kind::Tool, tools),
                (Kind::Prompt, prompts),
                (Kind::Resource, resources),
            ] {
                for rule in rules.of(kind) {
                    let matched = offered.iter().any(|item| match &rule.pattern {
                        Pattern::Exact(name) => name == item,
                        Pattern::Prefix(p) if kind == Kind::Resource && item.contains('{') => {
                            let literal = literal_prefix(item);
                            literal.starts_with(p.as_str()) || p.starts_with(literal)
                        }
                        Pattern::Prefix(p) => item.starts_with(p.as_str()),
                    });
                    if !matched {
                        unmatched.push(rule_name(kind, &rule.key));
                    }
                }
            }
        }
        unmatched
    }
}

/// At start: the builder's rules and `TOOL_POLICY_FILE`'s together (each must allow),
/// the audit settings, and a warning for each rule that matches nothing offered and for
/// rules that can only hide things because authentication is off.
pub(crate) fn prepare(catalog: &mut Catalog, config: &Config) -> Result<(), PolicyError> {
    catalog.policy.check()?;
    if let Some(file) = &config.tool_policy {
        catalog.policy = Arc::new(Policy::clone(&catalog.policy).and(file));
    }
    catalog.audit = audit::Settings {
        arguments: config.audit_arguments,
    };
    let policy = catalog.policy();
    if policy.is_empty() {
        return Ok(());
    }
    log::info!("per-tool authorization: {}", policy.summary());
    if config.auth.is_none() {
        log::warn!(
            "the per-tool policy has rules but JWT_AUTH_ENABLED is off: every caller is anonymous and has no groups, so whatever a rule restricts is hidden from everyone"
        );
    }
    // Behind the gate, the catalog is the upstream's: checked at its first lists
    // (`gateway::Gateway::guarded`).
    let unmatched = if catalog.upstream.is_some() {
        Vec::new()
    } else {
        catalog.unmatched_rules()
    };
    for rule in unmatched {
        log::warn!(
            "policy rule {rule} matches nothing this server offers (a typo, or something no longer offered?); it has no effect until something it covers is offered"
        );
    }
    Ok(())
}

/// A URI template's text before its first variable.
fn literal_prefix(uri_template: &str) -> &str {
    uri_template
        .find('{')
        .map_or(uri_template, |at| &uri_template[..at])
}

/// The log line of a refusal: `denied sub=alice tool=write_file`.
struct Denied<'a> {
    caller: &'a Caller,
    kind: Kind,
    name: &'a str,
}

impl fmt::Display for Denied<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "denied sub={} {}={}",
            Field(self.caller.subject()),
            self.kind.singular(),
            Field(self.name)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use serde_json::json;

    fn user(groups: &[&str]) -> Caller {
        Caller::User(Identity {
            issuer: Some("Joken".into()),
            subject: "alice".into(),
            email: None,
            name: None,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        })
    }

    const EXAMPLE: &str = r#"{"tools": {"write_file": ["sre"], "admin_*": ["sre", "admin"]},
        "prompts": {"incident_*": ["sre"]},
        "resources": {"file:///secrets/": ["sre"]}}"#;

    #[test]
    fn the_most_specific_rule_decides_and_no_rule_lets_everyone_in() {
        let p = Policy::from_json(EXAMPLE).unwrap();
        let (sre, admin, dev) = (user(&["sre"]), user(&["x", "admin"]), user(&["dev"]));
        assert!(p.allows_tool(&sre, "write_file"));
        assert!(!p.allows_tool(&dev, "write_file"));
        assert!(!p.allows_tool(&admin, "write_file"), "exact rule: sre only");
        assert!(p.allows_tool(&admin, "admin_users"));
        assert!(!p.allows_tool(&dev, "admin_users"));
        assert!(p.allows_tool(&dev, "read_file") && p.allows_tool(&dev, "admin"));
        assert!(
            p.allows_tool(&dev, "write_file_2"),
            "an exact key is not a prefix"
        );
        assert!(!p.allows_prompt(&dev, "incident_review"));
        assert!(p.allows_prompt(&dev, "echo"));
        assert!(!p.allows_resource(&dev, "file:///secrets/db"));
        assert!(p.allows_resource(&sre, "file:///secrets/db"));
        assert!(p.allows_resource(&dev, "file:///public/x"));
        // Exact over prefix, longest prefix over shorter, "*" for everyone.
        let q = Policy::new()
            .tool("*", ["sre"])
            .tool("read_*", ["*"])
            .tool("read_secrets", ["sre"])
            .resource("db://", ["dba"])
            .resource("db://public/*", ["*"]);
        q.check().unwrap();
        assert!(!q.allows_tool(&dev, "anything"));
        assert!(q.allows_tool(&dev, "read_x") && q.allows_tool(&Caller::Anonymous, "read_x"));
        assert!(!q.allows_tool(&dev, "read_secrets"));
        assert!(!q.allows_resource(&dev, "db://private/1"));
        assert!(q.allows_resource(&dev, "db://public/1"));
        // Group names are compared exactly.
        assert!(!p.allows_tool(&user(&["SRE", "sre "]), "write_file"));
    }

    #[test]
    fn anonymous_callers_have_no_groups() {
        let p = Policy::from_json(EXAMPLE).unwrap();
        assert!(!p.allows_tool(&Caller::Anonymous, "write_file"));
        assert!(p.allows_tool(&Caller::Anonymous, "echo"));
        let empty = Policy::new();
        assert!(empty.is_empty() && empty.allows_tool(&Caller::Anonymous, "write_file"));
    }

    #[test]
    fn templates_are_hidden_by_a_rule_covering_their_literal_prefix() {
        let p = Policy::new().resource("file:///secrets/", ["sre"]);
        let dev = user(&["dev"]);
        assert!(!p.allows_template(&dev, "file:///secrets/{name}"));
        assert!(!p.allows_template(&dev, "file:///secrets/db/{name}"));
        // Shorter than the rule: listed, and each read checked by its URI.
        assert!(p.allows_template(&dev, "file:///{path}"));
        assert!(!p.allows_resource(&dev, "file:///secrets/x"));
        let mut list = json!({"resourceTemplates": [
            {"uriTemplate": "file:///secrets/{name}", "name": "s"},
            {"uriTemplate": "file:///{path}", "name": "f"},
            {"name": "no template"},
        ]});
        p.filter_templates(&mut list, &dev);
        assert_eq!(
            list,
            json!({"resourceTemplates": [{"uriTemplate": "file:///{path}", "name": "f"}]})
        );
    }

    #[test]
    fn lists_keep_what_the_caller_may_use() {
        let p = Policy::from_json(EXAMPLE).unwrap();
        let tools =
            json!({"tools": [{"name": "echo"}, {"name": "write_file"}, {"name": "admin_x"}]});
        let mut for_dev = tools.clone();
        p.filter_tools(&mut for_dev, &user(&["dev"]));
        assert_eq!(for_dev, json!({"tools": [{"name": "echo"}]}));
        let mut for_sre = tools.clone();
        p.filter_tools(&mut for_sre, &user(&["sre"]));
        assert_eq!(for_sre, tools);
        let mut prompts =
            json!({"prompts": [{"name": "incident_a"}, {"name": "echo"}], "nextCursor": "c"});
        p.filter_prompts(&mut prompts, &Caller::Anonymous);
        assert_eq!(
            prompts,
            json!({"prompts": [{"name": "echo"}], "nextCursor": "c"})
        );
        let mut resources =
            json!({"resources": [{"uri": "file:///secrets/a"}, {"uri": "file:///b"}]});
        p.filter_resources(&mut resources, &user(&["dev"]));
        assert_eq!(resources, json!({"resources": [{"uri": "file:///b"}]}));
        // No policy: untouched, even entries that could not be checked.
        let mut odd = json!({"tools": [{"title": "nameless"}]});
        Policy::new().filter_tools(&mut odd, &Caller::Anonymous);
        assert_eq!(odd, json!({"tools": [{"title": "nameless"}]}));
    }

    #[test]
    fn malformed_policies_are_refused_naming_the_rule() {
        for (text, rule, reason) in [
            (
                r#"{"tools": {"ad*min": ["sre"]}}"#,
                Some(r#"tools."ad*min""#),
                "a * may only end",
            ),
            (
                r#"{"prompts": {"**": ["sre"]}}"#,
                Some(r#"prompts."**""#),
                "a * may only end",
            ),
            (
                r#"{"resources": {"file:///*/x": ["sre"]}}"#,
                Some(r#"resources."file:///*/x""#),
                "URI prefix",
            ),
            (
                r#"{"tools": {"": ["sre"]}}"#,
                Some(r#"tools."""#),
                "empty key",
            ),
            (r#"{"tools": {"x": []}}"#, Some(r#"tools."x""#), "empty"),
            (
                r#"{"tools": {"x": "sre"}}"#,
                Some(r#"tools."x""#),
                "array of group names",
            ),
            (
                r#"{"tools": {"x": ["sre", 3]}}"#,
                Some(r#"tools."x""#),
                "array of group names",
            ),
            (
                r#"{"tools": {"x": [""]}}"#,
                Some(r#"tools."x""#),
                "group \"\"",
            ),
            (
                r#"{"tools": {"x": [" sre"]}}"#,
                Some(r#"tools."x""#),
                "spaces",
            ),
            (
                r#"{"tools": {"x": ["a"], "x": ["b"]}}"#,
                Some(r#"tools."x""#),
                "write one rule",
            ),
            (
                r#"{"resources": {"db://": ["a"], "db://*": ["b"]}}"#,
                Some(r#"resources."db://*""#),
                "write one rule",
            ),
            (r#"{"tool": {"x": ["sre"]}}"#, None, "unknown key \"tool\""),
            (r#"{"tools": {}, "tools": {}}"#, None, "written twice"),
            (r#"{"tools": ["x"]}"#, None, "\"tools\" must be an object"),
            (r#"["tools"]"#, None, "not a JSON object"),
            ("{\"tools\": {", None, "not a JSON object"),
            ("", None, "not a JSON object"),
        ] {
            let err = Policy::from_json(text).unwrap_err();
            assert_eq!(err.rule.as_deref(), rule, "{text}: {err}");
            assert!(err.to_string().contains(reason), "{text}: {err}");
            if let Some(rule) = rule {
                assert!(
                    err.to_string().starts_with(&format!("rule {rule}: ")),
                    "{err}"
                );
            }
        }
        assert!(Policy::from_json("{}").unwrap().is_empty());
        let built = Policy::new()
            .tool("ok", ["sre"])
            .tool("a*b", ["sre"])
            .tool("c*d", ["x"]);
        assert_eq!(
            built.check().unwrap_err().rule.as_deref(),
            Some(r#"tools."a*b""#)
        );
    }

    #[test]
    fn both_layers_must_allow() {
        let builder = Policy::new().tool("deploy", ["sre", "devops"]);
        let file =
            Policy::from_json(r#"{"tools": {"deploy": ["sre"], "*": ["sre", "devops"]}}"#).unwrap();
        let both = builder.and(&file);
        assert!(both.allows_tool(&user(&["sre"]), "deploy"));
        assert!(!both.allows_tool(&user(&["devops"]), "deploy"));
        assert!(both.allows_tool(&user(&["devops"]), "status"));
        assert!(!both.allows_tool(&user(&["dev"]), "status"));
        assert_eq!(both.summary(), "3 tool, 0 prompt, 0 resource rule(s)");
    }

    #[test]
    fn rules_that_match_nothing_offered_are_named() {
        let p = Policy::from_json(
            r#"{"tools": {"write_file": ["sre"], "wirte_file": ["sre"], "admin_*": ["a"], "echo_*": ["a"]},
                "prompts": {"incident_*": ["sre"], "echo": ["sre"]},
                "resources": {"file:///secrets/": ["sre"], "echo://top/": ["sre"], "git://": ["x"], "db://": ["x"]}}"#,
        )
        .unwrap();
        let unmatched = p.unmatched(
            &["echo", "write_file", "echo_all"],
            &["echo"],
            &["file:///secrets/a.txt", "echo://{message}", "git{+path}"],
        );
        assert_eq!(
            unmatched,
            [
                r#"tools."wirte_file""#,
                r#"tools."admin_*""#,
                r#"prompts."incident_*""#,
                r#"resources."db://""#
            ]
        );
    }

    #[test]
    fn references_and_the_denied_line() {
        let p = Policy::from_json(EXAMPLE).unwrap();
        let dev = user(&["dev"]);
        let reference = |v: Value| v.as_object().unwrap().clone();
        assert!(!p.admits_reference(
            &dev,
            &reference(json!({"type": "ref/prompt", "name": "incident_x"}))
        ));
        assert!(p.admits_reference(
            &dev,
            &reference(json!({"type": "ref/prompt", "name": "echo"}))
        ));
        assert!(!p.admits_reference(
            &dev,
            &reference(json!({"type": "ref/resource", "uri": "file:///secrets/{f}"}))
        ));
        assert!(p.admits_reference(&dev, &reference(json!({"type": "ref/other"}))));
        let line = Denied {
            caller: &dev,
            kind: Kind::Tool,
            name: "write_file",
        }
        .to_string();
        assert_eq!(line, "denied sub=alice tool=write_file");
        let line = Denied {
            caller: &Caller::Anonymous,
            kind: Kind::Resource,
            name: "file:///a b",
        }
        .to_string();
        assert_eq!(line, "denied sub=- resource=\"file:///a b\"");
    }
}
