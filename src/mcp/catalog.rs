//! What a server offers: tools, prompts, resources and resource templates, each with the
//! handler that serves it. Handlers are closures (or any type implementing the handler
//! trait) and may carry state: a client, a pool, a counter behind a lock.
//!
//! A tool's arguments are checked against its `inputSchema` (`schema.rs`) and then
//! deserialized into the handler's own type; arguments that do not fit are answered with an
//! `isError` result naming the field, here, once, for every tool. A tool that declares an
//! `outputSchema` must return `structuredContent` that fits it.
//!
//! The catalog can change while the server runs (`Handle::update`); sessions then get the
//! `list_changed` notifications (see `lib.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock, Weak};

use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::audit;
use crate::identity::Caller;
use crate::mcp::SessionState;
use crate::mcp::call::Call;
use crate::mcp::content::{HandlerError, PromptMessage, ResourceContents, ToolResult};
use crate::mcp::schema;
use crate::mcp::session::Sessions;
use crate::policy::Policy;

/// Runs a tool: arguments (an object, already checked against the `inputSchema`) in, a
/// result out. Closures `Fn(&Map<String, Value>, &Call) -> Result<ToolResult, HandlerError>`
/// implement it; so can a type of yours.
pub trait ToolHandler: Send + Sync + 'static {
    fn call(
        &self,
        arguments: &Map<String, Value>,
        call: &Call<'_>,
    ) -> Result<ToolResult, HandlerError>;
}

impl<F> ToolHandler for F
where
    F: Fn(&Map<String, Value>, &Call<'_>) -> Result<ToolResult, HandlerError>
        + Send
        + Sync
        + 'static,
{
    fn call(
        &self,
        arguments: &Map<String, Value>,
        call: &Call<'_>,
    ) -> Result<ToolResult, HandlerError> {
        self(arguments, call)
    }
}

/// A tool: its listing (`tools/list`) and its handler (`tools/call`).
#[derive(Clone)]
pub struct Tool {
    /// Shared with each running call's entry (the watchdog names the tool).
    name: Arc<str>,
    title: Option<String>,
    description: String,
    input_schema: Value,
    output_schema: Option<Value>,
    annotations: Option<Value>,
    /// The handler, taking the `arguments` object as a `Value` (so typed handlers
    /// deserialize from it without a copy).
    handler: Arc<RunFn>,
}

type RunFn = dyn Fn(&Value, &Call<'_>) -> Result<ToolResult, HandlerError> + Send + Sync;

/// Arguments of a tool that takes none (any object is accepted and ignored).
#[derive(Clone, Copy, Debug, Default, serde::Deserialize)]
pub struct NoArgs {}

impl Tool {
    /// A tool whose arguments arrive as `A`, deserialized from the call's `arguments` once
    /// they fit `input_schema` (a JSON Schema object, listed exactly as given). The handler
    /// returns anything that becomes a `ToolResult` (a `String`, a `Content`, a
    /// `Vec<Content>`, a `ToolResult`); its `Err` is a result with `isError: true`.
    pub fn new<A, R, F>(
        name: impl Into<String>,
        description: impl Into<String>,
        input_schema: Value,
        handler: F,
    ) -> Tool
    where
        A: DeserializeOwned,
        R: Into<ToolResult>,
        F: Fn(A, &Call<'_>) -> Result<R, HandlerError> + Send + Sync + 'static,
    {
        let name = name.into();
        let tool = name.clone();
        let typed = move |arguments: &Value, call: &Call<'_>| {
            // The schema has been checked already; what serde still refuses (a type the
            // schema does not pin down) is named by serde's own message.
            let arguments = A::deserialize(arguments).map_err(|e| {
                HandlerError::new(format!("invalid arguments for tool {tool}: {e}"))
            })?;
            handler(arguments, call).map(Into::into)
        };
        Tool::build(name, description.into(), input_schema, Arc::new(typed))
    }

    /// A tool whose handler takes the `arguments` object as it came (after the schema
    /// check), or any `ToolHandler` of yours.
    pub fn with_handler(
        name: impl Into<String>,
        description: impl Into<String>,
        input_schema: Value,
        handler: impl ToolHandler,
    ) -> Tool {
        static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);
        let run = move |arguments: &Value, call: &Call<'_>| match arguments {
            Value::Object(arguments) => handler.call(arguments, call),
            _ => handler.call(&EMPTY, call),
        };
        Tool::build(name.into(), description.into(), input_schema, Arc::new(run))
    }

    fn build(name: String, description: String, input_schema: Value, handler: Arc<RunFn>) -> Tool {
        Tool {
            name: name.into(),
            title: None,
            description,
            input_schema,
            output_schema: None,
            annotations: None,
            handler,
        }
    }

    /// The JSON Schema `structuredContent` must fit; a result without it, or not fitting,
    /// is turned into an error result (and logged).
    pub fn output_schema(mut self, schema: Value) -> Tool {
        self.output_schema = Some(schema);
        self
    }

    /// A human-readable name for clients' menus.
    pub fn title(mut self, title: impl Into<String>) -> Tool {
        self.title = Some(title.into());
        self
    }

    /// Hints about the tool's behaviour (`readOnlyHint`, `destructiveHint`, …).
    pub fn annotations(mut self, annotations: Value) -> Tool {
        self.annotations = Some(annotations);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `inputSchema` as declared.
    pub fn input_schema(&self) -> &Value {
        &self.input_schema
    }

    /// The name, shared.
    pub(crate) fn shared_name(&self) -> Arc<str> {
        Arc::clone(&self.name)
    }

    fn listing(&self) -> Value {
        let mut entry = json!({
            "name": &*self.name,
            "description": self.description,
            "inputSchema": self.input_schema,
        });
        put(&mut entry, "title", self.title.as_ref().map(|t| json!(t)));
        put(&mut entry, "outputSchema", self.output_schema.clone());
        put(&mut entry, "annotations", self.annotations.clone());
        entry
    }

    /// Runs the tool: the arguments (an object) are checked against the input schema, the
    /// handler runs, and its structured content is checked against the output schema.
    pub(crate) fn invoke(&self, arguments: &Value, call: &Call<'_>) -> ToolResult {
        if let Err(e) = schema::check(&self.input_schema, arguments, "arguments") {
            return ToolResult::error(format!("invalid arguments for tool {}: {e}", self.name));
        }
        let result = match (self.handler)(arguments, call) {
            Ok(result) => result,
            Err(e) => return ToolResult::error(e.message()),
        };
        match &self.output_schema {
            Some(schema) if !result.is_error() => match result.structured_content() {
                None => self.broken_output("it returned no structuredContent"),
                Some(value) => match schema::check(schema, value, "structuredContent") {
                    Ok(()) => result,
                    Err(e) => self.broken_output(&e),
                },
            },
            _ => result,
        }
    }

    fn broken_output(&self, why: &str) -> ToolResult {
        log::warn!(
            "tool {} broke its outputSchema: {why}; answered with an error",
            self.name
        );
        ToolResult::error(format!(
            "the tool {} returned a result that does not fit its outputSchema: {why}",
            self.name
        ))
    }
}

/// A resource's (or template's) optional `title`, `description` and `mimeType`.
fn labels(
    entry: &mut Value,
    title: &Option<String>,
    description: &Option<String>,
    mime_type: &Option<String>,
) {
    for (key, value) in [
        ("title", title),
        ("description", description),
        ("mimeType", mime_type),
    ] {
        put(entry, key, value.as_ref().map(|v| json!(v)));
    }
}

/// Sets `entry[key]` when there is a value.
fn put(entry: &mut Value, key: &str, value: Option<Value>) {
    if let (Some(value), Value::Object(entry)) = (value, entry) {
        entry.insert(key.to_string(), value);
    }
}

/// What a completion handler is asked: the argument being completed, its value so far,
/// and the other arguments already given.
pub struct Completing<'a> {
    pub argument: &'a str,
    pub value: &'a str,
    pub context: &'a Map<String, Value>,
}

type CompleteFn = dyn Fn(&Completing<'_>) -> Vec<String> + Send + Sync;

/// Renders a prompt: its arguments (strings; the required ones present) in, messages out.
/// The `Call` is the same a tool gets: the caller, progress, log messages, and asking the
/// client (a 2026-07-28 `prompts/get` answers `input_required` just like a tool).
type RenderFn =
    dyn Fn(&PromptArgs<'_>, &Call<'_>) -> Result<Vec<PromptMessage>, HandlerError> + Send + Sync;

/// A prompt's arguments as a handler reads them.
pub struct PromptArgs<'a>(&'a Map<String, Value>);

impl PromptArgs<'_> {
    /// The argument `name`, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    /// The argument `name`, or `""` (a required argument is always there).
    pub fn str(&self, name: &str) -> &str {
        self.get(name).unwrap_or_default()
    }
}

/// A prompt template (`prompts/list`, `prompts/get`).
#[derive(Clone)]
pub struct Prompt {
    name: String,
    title: Option<String>,
    description: String,
    /// `(name, description, required)`.
    arguments: Vec<(String, String, bool)>,
    render: Arc<RenderFn>,
    complete: Option<Arc<CompleteFn>>,
}

impl Prompt {
    pub fn new<F>(name: impl Into<String>, description: impl Into<String>, render: F) -> Prompt
    where
        F: Fn(&PromptArgs<'_>, &Call<'_>) -> Result<Vec<PromptMessage>, HandlerError>
            + Send
            + Sync
            + 'static,
    {
        Prompt {
            name: name.into(),
            title: None,
            description: description.into(),
            arguments: Vec::new(),
            render: Arc::new(render),
            complete: None,
        }
    }

    /// Declares an argument (prompt arguments are strings).
    pub fn argument(
        mut self,
        name: impl Into<String>,
        description: impl Into<String>,
        required: bool,
    ) -> Prompt {
        self.arguments
            .push((name.into(), description.into(), required));
        self
    }

    pub fn title(mut self, title: impl Into<String>) -> Prompt {
        self.title = Some(title.into());
        self
    }

    /// Suggests values for an argument being typed (`completion/complete`).
    pub fn completion(
        mut self,
        complete: impl Fn(&Completing<'_>) -> Vec<String> + Send + Sync + 'static,
    ) -> Prompt {
        self.complete = Some(Arc::new(complete));
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn listing(&self) -> Value {
        let args: Vec<Value> = self
            .arguments
            .iter()
            .map(|(name, description, required)| {
                json!({ "name": name, "description": description, "required": required })
            })
            .collect();
        let mut entry =
            json!({ "name": self.name, "description": self.description, "arguments": args });
        put(&mut entry, "title", self.title.as_ref().map(|t| json!(t)));
        entry
    }

    /// Checks `args` (strings; the required ones present) and renders the messages.
    pub(crate) fn get(
        &self,
        args: &Map<String, Value>,
        call: &Call<'_>,
    ) -> Result<Value, HandlerError> {
        for (name, _, required) in &self.arguments {
            match args.get(name) {
                Some(Value::String(_)) => {}
                None if !required => {}
                None => {
                    return Err(HandlerError::invalid(format!(
                        "prompt \"{}\" needs argument \"{name}\"",
                        self.name
                    )));
                }
                Some(_) => {
                    return Err(HandlerError::invalid(format!(
                        "prompt argument \"{name}\" must be a string"
                    )));
                }
            }
        }
        let messages = (self.render)(&PromptArgs(args), call)?;
        Ok(json!({ "description": self.description, "messages": messages }))
    }
}

type ReadFn = dyn Fn(&Call<'_>) -> Result<Vec<ResourceContents>, HandlerError> + Send + Sync;

/// A resource at a fixed URI (`resources/list`, `resources/read`).
#[derive(Clone)]
pub struct Resource {
    uri: String,
    name: String,
    title: Option<String>,
    description: Option<String>,
    mime_type: Option<String>,
    read: Arc<ReadFn>,
}

impl Resource {
    pub fn new<F>(uri: impl Into<String>, name: impl Into<String>, read: F) -> Resource
    where
        F: Fn(&Call<'_>) -> Result<Vec<ResourceContents>, HandlerError> + Send + Sync + 'static,
    {
        Resource {
            uri: uri.into(),
            name: name.into(),
            title: None,
            description: None,
            mime_type: None,
            read: Arc::new(read),
        }
    }

    pub fn description(mut self, description: impl Into<String>) -> Resource {
        self.description = Some(description.into());
        self
    }

    pub fn mime_type(mut self, mime_type: impl Into<String>) -> Resource {
        self.mime_type = Some(mime_type.into());
        self
    }

    pub fn title(mut self, title: impl Into<String>) -> Resource {
        self.title = Some(title.into());
        self
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }

    fn listing(&self) -> Value {
        let mut entry = json!({ "uri": self.uri, "name": self.name });
        labels(&mut entry, &self.title, &self.description, &self.mime_type);
        entry
    }
}

/// The variables a URI matched in a template, percent-decoded.
pub type Vars = BTreeMap<String, String>;

type ReadTemplateFn =
    dyn Fn(&str, &Vars, &Call<'_>) -> Result<Vec<ResourceContents>, HandlerError> + Send + Sync;

/// Resources whose URIs follow a template (`resources/templates/list`; `resources/read`
/// of a URI that no fixed resource has). Templates are RFC 6570 level 1: literal text and
/// `{name}` variables; a variable matches up to the next literal text (to the end for the
/// last one) and never matches nothing.
#[derive(Clone)]
pub struct ResourceTemplate {
    uri_template: String,
    name: String,
    title: Option<String>,
    description: Option<String>,
    mime_type: Option<String>,
    read: Arc<ReadTemplateFn>,
    complete: Option<Arc<CompleteFn>>,
}

impl ResourceTemplate {
    pub fn new<F>(
        uri_template: impl Into<String>,
        name: impl Into<String>,
        read: F,
    ) -> ResourceTemplate
    where
        F: Fn(&str, &Vars, &Call<'_>) -> Result<Vec<ResourceContents>, HandlerError>
            + Send
            + Sync
            + 'static,
    {
        ResourceTemplate {
            uri_template: uri_template.into(),
            name: name.into(),
            title: None,
            description: None,
            mime_type: None,
            read: Arc::new(read),
            complete: None,
        }
    }

    pub fn description(mut self, description: impl Into<String>) -> ResourceTemplate {
        self.description = Some(description.into());
        self
    }

    pub fn mime_type(mut self, mime_type: impl Into<String>) -> ResourceTemplate {
        self.mime_type = Some(mime_type.into());
        self
    }

    pub fn title(mut self, title: impl Into<String>) -> ResourceTemplate {
        self.title = Some(title.into());
        self
    }

    /// Suggests values for a variable being typed (`completion/complete`).
    pub fn completion(
        mut self,
        complete: impl Fn(&Completing<'_>) -> Vec<String> + Send + Sync + 'static,
    ) -> ResourceTemplate {
        self.complete = Some(Arc::new(complete));
        self
    }

    fn listing(&self) -> Value {
        let mut entry = json!({ "uriTemplate": self.uri_template, "name": self.name });
        labels(&mut entry, &self.title, &self.description, &self.mime_type);
        entry
    }

    /// The variables of `uri`, if it matches this template.
    pub fn matches(&self, uri: &str) -> Option<Vars> {
        let mut vars = Vars::new();
        let mut rest = uri;
        let mut template = self.uri_template.as_str();
        loop {
            let Some(open) = template.find('{') else {
                return (rest == template).then_some(vars);
            };
            rest = rest.strip_prefix(&template[..open])?;
            let close = open + template[open..].find('}')?;
            let name = &template[open + 1..close];
            template = &template[close + 1..];
            let literal = &template[..template.find('{').unwrap_or(template.len())];
            let end = if literal.is_empty() {
                rest.len()
            } else {
                rest.find(literal)?
            };
            if end == 0 {
                return None;
            }
            vars.insert(name.to_string(), percent_decode(&rest[..end]));
            rest = &rest[end..];
        }
    }
}

/// `%XX` escapes decoded; a malformed escape, or a result that is not UTF-8, leaves the
/// text as it came.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// The server's name and version (in `initialize`'s `serverInfo`), and its instructions.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    pub name: String,
    pub version: String,
    pub instructions: Option<String>,
}

/// Everything a server offers, in the order each list shows it, and who may use what.
#[derive(Clone)]
pub struct Catalog {
    pub info: ServerInfo,
    pub tools: Vec<Tool>,
    pub prompts: Vec<Prompt>,
    pub resources: Vec<Resource>,
    pub templates: Vec<ResourceTemplate>,
    /// Another MCP server to relay each session to, instead of the entries above
    /// (`gateway/`).
    pub upstream: Option<Arc<crate::gateway::Gateway>>,
    /// Who may use what (`policy.rs`): the builder's rules, and `TOOL_POLICY_FILE`'s from
    /// `start` on. Fixed once the server runs: `Handle::update` keeps it.
    pub(crate) policy: Arc<Policy>,
    /// How tool calls are audited (`AUDIT_ARGUMENTS`), set at `start`.
    pub(crate) audit: audit::Settings,
}

/// Why a catalog cannot be served.
#[derive(Debug, PartialEq, Eq)]
pub struct CatalogError(pub String);

impl std::fmt::Display for CatalogError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Catalog {
    /// An empty catalog named `mcp-warden`.
    pub fn new() -> Catalog {
        Catalog {
            info: ServerInfo {
                name: "mcp-warden".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                instructions: None,
            },
            tools: Vec::new(),
            prompts: Vec::new(),
            resources: Vec::new(),
            templates: Vec::new(),
            upstream: None,
            policy: Arc::default(),
            audit: audit::Settings::default(),
        }
    }

    /// Who may use what: the per-tool authorization rules (`Builder::policy`,
    /// `TOOL_POLICY_FILE`).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Refuses two entries under one name (or URI): a client could reach only one.
    pub fn check(&self) -> Result<(), CatalogError> {
        if let Some(gateway) = &self.upstream {
            gateway.check().map_err(CatalogError)?;
        }
        fn unique<'a>(
            kind: &str,
            names: impl Iterator<Item = &'a str>,
        ) -> Result<(), CatalogError> {
            let mut seen = std::collections::HashSet::new();
            for name in names {
                if !seen.insert(name) {
                    return Err(CatalogError(format!("two {kind}s are named {name:?}")));
                }
            }
            Ok(())
        }
        unique("tool", self.tools.iter().map(|t| &*t.name))?;
        unique("prompt", self.prompts.iter().map(|p| p.name.as_str()))?;
        unique("resource", self.resources.iter().map(|r| r.uri.as_str()))?;
        unique(
            "resource template",
            self.templates.iter().map(|t| t.uri_template.as_str()),
        )?;
        for tool in &self.tools {
            if !tool.input_schema.is_object() {
                return Err(CatalogError(format!(
                    "the inputSchema of tool {:?} is not a JSON object",
                    tool.name
                )));
            }
        }
        Ok(())
    }

    pub fn tool(&self, name: &str) -> Option<&Tool> {
        self.tools.iter().find(|t| &*t.name == name)
    }

    pub fn prompt(&self, name: &str) -> Option<&Prompt> {
        self.prompts.iter().find(|p| p.name == name)
    }

    pub(crate) fn list_tools(&self) -> Value {
        json!({ "tools": self.tools.iter().map(Tool::listing).collect::<Vec<_>>() })
    }

    pub(crate) fn list_prompts(&self) -> Value {
        json!({ "prompts": self.prompts.iter().map(Prompt::listing).collect::<Vec<_>>() })
    }

    pub(crate) fn list_resources(&self) -> Value {
        json!({ "resources": self.resources.iter().map(Resource::listing).collect::<Vec<_>>() })
    }

    pub(crate) fn list_templates(&self) -> Value {
        json!({ "resourceTemplates": self.templates.iter().map(ResourceTemplate::listing).collect::<Vec<_>>() })
    }

    /// `tools/list` as `caller` sees it: only what the policy lets it use.
    pub(crate) fn list_tools_for(&self, caller: &Caller) -> Value {
        let mut list = self.list_tools();
        self.policy.filter_tools(&mut list, caller);
        list
    }

    /// `prompts/list` as `caller` sees it.
    pub(crate) fn list_prompts_for(&self, caller: &Caller) -> Value {
        let mut list = self.list_prompts();
        self.policy.filter_prompts(&mut list, caller);
        list
    }

    /// `resources/list` as `caller` sees it.
    pub(crate) fn list_resources_for(&self, caller: &Caller) -> Value {
        let mut list = self.list_resources();
        self.policy.filter_resources(&mut list, caller);
        list
    }

    /// `resources/templates/list` as `caller` sees it.
    pub(crate) fn list_templates_for(&self, caller: &Caller) -> Value {
        let mut list = self.list_templates();
        self.policy.filter_templates(&mut list, caller);
        list
    }

    /// The rules of the policy that match nothing offered here (`Policy::unmatched`).
    pub fn unmatched_rules(&self) -> Vec<String> {
        let tools: Vec<&str> = self.tools.iter().map(|t| &*t.name).collect();
        let prompts: Vec<&str> = self.prompts.iter().map(|p| p.name.as_str()).collect();
        let resources: Vec<&str> = (self.resources.iter().map(|r| r.uri.as_str()))
            .chain(self.templates.iter().map(|t| t.uri_template.as_str()))
            .collect();
        self.policy.unmatched(&tools, &prompts, &resources)
    }

    /// Whether `uri` names something readable (a fixed resource, or a template's match).
    pub(crate) fn knows(&self, uri: &str) -> bool {
        self.resources.iter().any(|r| r.uri == uri)
            || self.templates.iter().any(|t| t.matches(uri).is_some())
    }

    /// Reads `uri`: `None` when nothing here has it.
    pub(crate) fn read(
        &self,
        uri: &str,
        call: &Call<'_>,
    ) -> Option<Result<Vec<ResourceContents>, HandlerError>> {
        if let Some(resource) = self.resources.iter().find(|r| r.uri == uri) {
            return Some((resource.read)(call));
        }
        self.templates
            .iter()
            .find_map(|t| Some((t.read)(uri, &t.matches(uri)?, call)))
    }

    /// Completion values for `reference` (`ref/prompt` by name, `ref/resource` by URI
    /// template); `None` when nothing is referred to.
    pub(crate) fn complete(
        &self,
        reference: &Map<String, Value>,
        completing: &Completing<'_>,
    ) -> Option<Vec<String>> {
        let complete = match reference.get("type").and_then(Value::as_str)? {
            "ref/prompt" => {
                let name = reference.get("name").and_then(Value::as_str)?;
                self.prompt(name)?.complete.clone()
            }
            "ref/resource" => {
                let uri = reference.get("uri").and_then(Value::as_str)?;
                self.templates
                    .iter()
                    .find(|t| t.uri_template == uri)?
                    .complete
                    .clone()
            }
            _ => return None,
        };
        Some(complete.map(|f| f(completing)).unwrap_or_default())
    }
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::new()
    }
}

/// The catalog a running server serves, which may change while it runs, and the sessions
/// to tell when it does.
pub struct Live {
    current: RwLock<Arc<Catalog>>,
    sessions: OnceLock<Weak<Sessions>>,
}

impl Live {
    pub fn new(catalog: Catalog) -> Live {
        Live {
            current: RwLock::new(Arc::new(catalog)),
            sessions: OnceLock::new(),
        }
    }

    /// Ties the catalog to the sessions it notifies (once, when the server starts).
    pub(crate) fn serve(&self, sessions: &Arc<Sessions>) {
        let _ = self.sessions.set(Arc::downgrade(sessions));
    }

    /// The catalog as it is now (requests keep the one they started with).
    pub fn current(&self) -> Arc<Catalog> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Changes the catalog; every session is told which lists changed
    /// (`notifications/tools/list_changed`, `…/prompts/…`, `…/resources/…`). A change
    /// that would make the catalog unservable (two tools of one name) is refused.
    pub fn update(&self, change: impl FnOnce(&mut Catalog)) -> Result<(), CatalogError> {
        let (before, after) = {
            let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
            let mut next = Catalog::clone(&current);
            change(&mut next);
            next.check()?;
            let next = Arc::new(next);
            (std::mem::replace(&mut *current, Arc::clone(&next)), next)
        };
        let changed = [
            ("tools", before.list_tools() != after.list_tools()),
            ("prompts", before.list_prompts() != after.list_prompts()),
            (
                "resources",
                before.list_resources() != after.list_resources()
                    || before.list_templates() != after.list_templates(),
            ),
        ];
        for (list, _) in changed.iter().filter(|(_, changed)| *changed) {
            let line =
                format!(r#"{{"jsonrpc":"2.0","method":"notifications/{list}/list_changed"}}"#);
            self.broadcast(&line, |state| {
                state.listening.as_ref().is_none_or(|l| l.wants(list))
            });
        }
        Ok(())
    }

    /// Tells the sessions subscribed to `uri` that it changed
    /// (`notifications/resources/updated`).
    pub fn resource_updated(&self, uri: &str) {
        let line = json!({
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": { "uri": uri },
        })
        .to_string();
        self.broadcast(&line, |state| state.subscriptions.contains(uri));
    }

    /// Queues `line` for every initialized session whose state passes `to`. A session
    /// with no stream to carry it misses it (it will list again when it next looks).
    fn broadcast(&self, line: &str, to: impl Fn(&SessionState) -> bool) {
        let Some(sessions) = self.sessions.get().and_then(Weak::upgrade) else {
            return;
        };
        for session in sessions.all() {
            let wants = {
                let state = session.state();
                state.version.is_some() && to(&state)
            };
            if !wants {
                continue;
            }
            let listening = session.state().listening.clone();
            let line = match listening {
                Some(listening) => listening.tag(line),
                None => line.to_string(),
            };
            let _ = session.deliver(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(t: &str) -> ResourceTemplate {
        ResourceTemplate::new(t, "t", |_, _, _| Ok(vec![]))
    }

    fn vars(pairs: &[(&str, &str)]) -> Option<Vars> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn templates_match_their_variables_and_decode_escapes() {
        let data = template("test://template/{id}/data");
        assert_eq!(
            data.matches("test://template/123/data"),
            vars(&[("id", "123")])
        );
        assert_eq!(data.matches("test://template//data"), None);
        assert_eq!(data.matches("test://template/1/other"), None);
        assert_eq!(data.matches("test://template/1/data/x"), None);
        let echo = template("echo://{message}");
        assert_eq!(echo.matches("echo://a%20b"), vars(&[("message", "a b")]));
        assert_eq!(echo.matches("echo://100%"), vars(&[("message", "100%")]));
        assert_eq!(echo.matches("echo://%ff"), vars(&[("message", "%ff")]));
        assert_eq!(echo.matches("echo://"), None);
        assert_eq!(echo.matches("echo:/x"), None);
        let two = template("db://{table}/{row}");
        assert_eq!(
            two.matches("db://users/7"),
            vars(&[("row", "7"), ("table", "users")])
        );
        assert_eq!(template("fixed://x").matches("fixed://x"), vars(&[]));
    }

    #[test]
    fn duplicate_names_are_refused() {
        let mut catalog = Catalog::new();
        let tool = || Tool::new("t", "d", json!({"type": "object"}), |_: NoArgs, _| Ok("x"));
        catalog.tools = vec![tool(), tool()];
        assert_eq!(
            catalog.check(),
            Err(CatalogError("two tools are named \"t\"".into()))
        );
        catalog.tools = vec![Tool::new("t", "d", json!(true), |_: NoArgs, _| Ok("x"))];
        assert!(catalog.check().unwrap_err().0.contains("not a JSON object"));
    }
}
