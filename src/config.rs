//! Configuration from the environment, named the way Plural's documentation names it.
//!
//! `Config::from_env` runs once at start; every bad value becomes a `ConfigError` that names
//! the variable, the value and the accepted form. `HELP` is what `--help` prints.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::auth::jwks::MIN_REFETCH_INTERVAL;
use crate::auth::jwt::Policy as TokenPolicy;
use crate::auth::{AuthConfig, ProtectedResource, RequiredGroups};
use crate::policy::Policy;

/// Everything the server reads from its environment.
#[derive(Clone, Debug)]
pub struct Config {
    /// `HOST`: the address to listen on. Defaults to `127.0.0.1` (loopback only).
    pub host: IpAddr,
    /// `PORT`: the TCP port; `0` asks the OS for a free one. Defaults to `3000`.
    pub port: u16,
    /// `SSE_KEEPALIVE_SECS`: how often an idle SSE stream gets a `: keep-alive` comment,
    /// and so the longest the session of a client cut off without a close (a dead network
    /// path) outlives it; a client that closes ends its session at once. Defaults to 15 s.
    pub sse_keepalive: Duration,
    /// `MAX_BODY_BYTES`: the largest request body accepted; larger ones get `413`.
    /// Defaults to 1 MiB.
    pub max_body_bytes: usize,
    /// `REQUEST_TIMEOUT_SECS`: the deadline for reading one request (head and body), and
    /// for an idle keep-alive connection to send its next one. Defaults to 10 s.
    pub request_timeout: Duration,
    /// `MAX_SESSIONS`: open SSE sessions at most; one more gets `503` with `Retry-After`.
    /// Defaults to 1000.
    pub max_sessions: usize,
    /// `MAX_CONNECTIONS`: open TCP connections at most (each SSE session holds one, each
    /// POST borrows one); one more gets `503` and is closed. Must exceed `MAX_SESSIONS`.
    /// Defaults to 2000.
    pub max_connections: usize,
    /// `SHUTDOWN_GRACE_SECS`: on SIGTERM/SIGINT, how long in-flight requests may take to
    /// finish before the process exits anyway. Defaults to 5 s.
    pub shutdown_grace: Duration,
    /// `LOG_FORMAT`: `text` (the default) or `json`, one object per line for log shippers.
    pub log_json: bool,
    /// `SESSION_IDLE_SECS`: a Streamable HTTP session unused this long, with no stream
    /// open, ends. Defaults to 1800 s.
    pub session_idle: Duration,
    /// `TOOL_TIMEOUT_SECS`: how long a tool call may run. Past it the tool's `Call` reports
    /// cancelled, and the client gets an error result (within about a second, from the
    /// watchdog if the tool does not return) instead of whatever the tool returns late.
    /// Defaults to 60 s.
    pub tool_timeout: Duration,
    /// `BASE_PATH`: a prefix every route carries (`/tools` serves `/tools/mcp`), for a
    /// deployment behind a path-prefix proxy. Defaults to none; never ends in `/`.
    pub base_path: String,
    /// `ALLOWED_ORIGINS`: browser origins (`scheme://host[:port]`) allowed to call, and
    /// given CORS answers. Defaults to none (loopback origins pass while bound to
    /// loopback; requests without `Origin` always pass).
    pub allowed_origins: Vec<String>,
    /// `STATE_SECRET`: the key (32 bytes or more, base64) that integrity-protects the
    /// `requestState` of 2026-07-28 multi-round-trip results, shared by every replica so a
    /// retry may land on any of them. Unset: a random key per process (a retry must then
    /// come back to the same process).
    pub state_secret: Option<StateSecret>,
    /// `ALLOWED_HOSTS`: host names (lower case, no port) accepted in `Host` besides the
    /// loopback names while listening on loopback, e.g. the public name a reverse proxy on
    /// the same machine forwards. Defaults to none.
    pub allowed_hosts: Vec<String>,
    /// `JWT_AUTH_ENABLED=true` and its companions; `None` while authentication is off,
    /// which is the default.
    pub auth: Option<AuthConfig>,
    /// `UPSTREAM_COMMAND` (or the command line after `--`) and `UPSTREAM_ENV`: an MCP
    /// server to put behind the gate instead of the built-in tools. Defaults to none.
    pub upstream: Option<UpstreamCommand>,
    /// `TOOL_POLICY_FILE`: per-tool authorization rules (which groups may use which tools,
    /// prompts and resources), read and checked at start. Defaults to none: everyone who
    /// passes `REQUIRED_GROUPS` may use everything.
    pub tool_policy: Option<Policy>,
    /// `AUDIT_ARGUMENTS`: whether each tool call's audit line carries its arguments.
    /// Defaults to false.
    pub audit_arguments: bool,
}

/// An upstream MCP server: run over stdio (one per session, or shared), or reached over
/// Streamable HTTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamCommand {
    /// The program and its arguments (never run through a shell); empty with `url`.
    pub argv: Vec<String>,
    /// `UPSTREAM_URL`: the upstream's Streamable HTTP endpoint instead.
    pub url: Option<String>,
    /// `UPSTREAM_IDENTITY_HEADERS`: over HTTP, the verified caller as `X-MCP-User-*`.
    pub identity_headers: bool,
    /// `UPSTREAM_FORWARD_TOKEN`: over HTTP, the client's `Authorization` passed on.
    pub forward_token: bool,
    /// `UPSTREAM_ENV`: the names of this process's variables the child gets besides the
    /// caller's `MCP_USER_*`. Defaults to `PATH` and `HOME`.
    pub env: Vec<String>,
    /// `UPSTREAM_SHARED`: one child for every session instead of one each. Defaults to
    /// false.
    pub shared: bool,
}

impl UpstreamCommand {
    /// `argv` with the `UPSTREAM_ENV` of `lookup`.
    pub fn with_env(
        argv: Vec<String>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<UpstreamCommand, ConfigError> {
        let env = match lookup("UPSTREAM_ENV") {
            None => DEFAULT_UPSTREAM_ENV
                .split(',')
                .map(str::to_string)
                .collect(),
            Some(v) => {
                let names: Vec<String> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect();
                if !names.iter().all(|n| is_env_name(n)) {
                    return Err(ConfigError {
                        var: "UPSTREAM_ENV",
                        value: v,
                        expected: "comma-separated names of environment variables (letters, digits, _), e.g. PATH,HOME,LANG; empty passes none".into(),
                    });
                }
                names
            }
        };
        let shared = match lookup("UPSTREAM_SHARED").filter(|v| !v.trim().is_empty()) {
            None => false,
            Some(v) => parse_bool(&v).ok_or(ConfigError {
                var: "UPSTREAM_SHARED",
                value: v,
                expected: "true or false (1/0, yes/no, on/off)".into(),
            })?,
        };
        Ok(UpstreamCommand {
            argv,
            url: None,
            identity_headers: false,
            forward_token: false,
            env,
            shared,
        })
    }
}

/// `UPSTREAM_URL` and `UPSTREAM_IDENTITY_HEADERS` (when no `UPSTREAM_COMMAND` is set).
fn upstream_url(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<UpstreamCommand>, ConfigError> {
    let Some(url) = get("UPSTREAM_URL") else {
        return Ok(None);
    };
    let url = url.trim().to_string();
    let lower = url.to_ascii_lowercase();
    let valid = ["http://", "https://"].iter().any(|scheme| {
        lower
            .strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty())
    }) && !url.contains([' ', '#']);
    if !valid {
        return Err(ConfigError {
            var: "UPSTREAM_URL",
            value: url,
            expected: "the http(s) URL of the upstream's Streamable HTTP endpoint, e.g. http://127.0.0.1:8000/mcp".into(),
        });
    }
    let flag = |var: &'static str| match get(var) {
        None => Ok(false),
        Some(v) => parse_bool(&v).ok_or(ConfigError {
            var,
            value: v,
            expected: "true or false (1/0, yes/no, on/off)".into(),
        }),
    };
    Ok(Some(UpstreamCommand {
        argv: Vec::new(),
        url: Some(url),
        identity_headers: flag("UPSTREAM_IDENTITY_HEADERS")?,
        forward_token: flag("UPSTREAM_FORWARD_TOKEN")?,
        env: Vec::new(),
        shared: false,
    }))
}

/// The variables an upstream child gets unless `UPSTREAM_ENV` says otherwise.
const DEFAULT_UPSTREAM_ENV: &str = "PATH,HOME";

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Default for Config {
    fn default() -> Self {
        Config {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 3000,
            sse_keepalive: Duration::from_secs(15),
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(10),
            max_sessions: 1000,
            max_connections: 2000,
            shutdown_grace: Duration::from_secs(5),
            log_json: false,
            session_idle: Duration::from_secs(1800),
            tool_timeout: Duration::from_secs(60),
            base_path: String::new(),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            state_secret: None,
            auth: None,
            upstream: None,
            tool_policy: None,
            audit_arguments: false,
        }
    }
}

/// What `--help` prints: every variable, its default and its meaning.
pub const HELP: &str = "\
mcp-warden: an MCP server over HTTP (Streamable HTTP on /mcp; HTTP+SSE: GET /sse, POST /messages)

USAGE:
    mcp-warden [--help | --version]
    mcp-warden [--] COMMAND [ARGS...]    put the MCP server COMMAND (stdio) behind the gate

Configuration is read from the environment:

    HOST                  address to listen on                        [default: 127.0.0.1]
    PORT                  TCP port to listen on (0 = any free port)   [default: 3000]
    SSE_KEEPALIVE_SECS    seconds between `: keep-alive` comments on
                          idle SSE streams (1-3600)                   [default: 15]
    MAX_BODY_BYTES        largest request body accepted, in bytes
                          (1024-67108864); larger gets 413            [default: 1048576]
    REQUEST_TIMEOUT_SECS  deadline for a client to send one request,
                          head and body (1-3600)                      [default: 10]
    MAX_SESSIONS          open sessions at most (both transports);
                          more gets 503                               [default: 1000]
    SESSION_IDLE_SECS     a Streamable HTTP session unused this long
                          (no stream open) ends (10-604800)           [default: 1800]
    TOOL_TIMEOUT_SECS     how long a tool call may run; past it the
                          client gets an error result (1-3600)       [default: 60]
    BASE_PATH             prefix of every route, e.g. /tools serves
                          /tools/mcp and /tools/sse                   [default: none]
    STATE_SECRET          base64 key (32+ bytes) protecting the
                          requestState of 2026-07-28 multi-round-trip
                          results; the same on every replica          [default: random per process]
    ALLOWED_HOSTS         host names accepted in Host besides the
                          loopback ones while listening on loopback   [default: none]
    ALLOWED_ORIGINS       comma-separated browser origins allowed to
                          call (and given CORS answers)               [default: none]
    MAX_CONNECTIONS       open connections at most, more than
                          MAX_SESSIONS; more gets 503                 [default: 2000]
    SHUTDOWN_GRACE_SECS   on SIGTERM/SIGINT, time for in-flight
                          requests to finish (0-600)                  [default: 5]

Authentication (Plural's contract; all off unless JWT_AUTH_ENABLED is true):

    JWT_AUTH_ENABLED      require a Bearer JWT on /mcp, /sse, /messages:
                          true/false, 1/0, yes/no, on/off; anything
                          else refuses to start                       [default: false]
    JWKS_URI              URL of the signing keys (JWKS), http(s);
                          required when auth is on, fetched at start  [default: none]
    REQUIRED_GROUPS       comma-separated group names; the token's
                          `groups` must share one; `*` = any
                          authenticated user; required when auth is on [default: none]
    JWT_LEEWAY_SECS       clock skew allowed on exp/nbf/iat (0-600)   [default: 60]
    JWT_ISSUER            when set, `iss` must equal it               [default: not checked]
    JWT_AUDIENCE          when set, `aud` must be or contain it       [default: not checked,
                                                                     or RESOURCE_URL]
    RESOURCE_URL          this server's resource identifier; with
                          AUTHORIZATION_SERVERS, serves the OAuth
                          protected resource metadata (RFC 9728)     [default: none]
    AUTHORIZATION_SERVERS comma-separated issuer URLs for that
                          metadata                                    [default: none]
    SCOPES_SUPPORTED      comma-separated scopes for that metadata   [default: none]
    JWKS_REFRESH_SECS     seconds between background JWKS refreshes
                          (10-86400)                                  [default: 600]
    JWKS_MAX_AGE_SECS     /readyz answers 503 when the keys were last
                          fetched longer ago than this (60-604800,
                          at least JWKS_REFRESH_SECS)                 [default: 3600]

Gateway (an MCP server of your own behind the same gate, instead of the built-in tools):

    UPSTREAM_COMMAND      the MCP server to run over stdio, one per
                          session, as a JSON array: [\"npx\", \"-y\", \"pkg\"];
                          or give it after `--` on the command line    [default: none]
    UPSTREAM_ENV          comma-separated names of this process's
                          variables the child gets besides the
                          caller's MCP_USER_SUB, _EMAIL, _NAME and
                          _GROUPS; set but empty: none                [default: PATH,HOME]
    UPSTREAM_URL          an MCP server over Streamable HTTP instead,
                          e.g. http://127.0.0.1:8000/mcp: each session
                          gets its own session there                  [default: none]
    UPSTREAM_IDENTITY_HEADERS  true: send the verified caller to it as
                          X-MCP-User-Sub, -Email, -Groups             [default: false]
    UPSTREAM_FORWARD_TOKEN  true: pass the client's Authorization
                          header on to it                             [default: false]
    UPSTREAM_SHARED       true: one child for every session (ids
                          rewritten; serves 2026-07-28 requests too;
                          no caller in its environment, its own
                          requests to clients refused)                [default: false]

Per-tool authorization and audit:

    TOOL_POLICY_FILE      JSON file of rules: which groups may use
                          which tools, prompts and resources, on top
                          of REQUIRED_GROUPS, e.g.
                          {\"tools\": {\"write_file\": [\"sre\"]}}; a
                          malformed rule refuses to start             [default: none]
    AUDIT_ARGUMENTS       add each tool call's arguments to its audit
                          line (log target `audit`); results are
                          never logged                                [default: false]

Logging:

    RUST_LOG              log filter: error, warn, info, debug, trace
                          or per module, e.g. mcp_warden=debug;
                          info,audit=off drops the audit lines        [default: info]
    LOG_FORMAT            text, or json (one object per line)         [default: text]

An unset or empty variable takes its default. A bad value stops the server with exit
status 2 and a line naming the variable.
";

/// `STATE_SECRET`'s key bytes; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct StateSecret(pub Vec<u8>);

impl StateSecret {
    /// The key from its base64 text (standard or URL-safe alphabet, padded or not); `None`
    /// unless it decodes to 32 bytes or more.
    fn parse(text: &str) -> Option<StateSecret> {
        use base64::Engine;
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .ok()?;
        (bytes.len() >= 32).then_some(StateSecret(bytes))
    }
}

impl fmt::Debug for StateSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateSecret(..)")
    }
}

/// A variable whose value the server cannot use.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    /// The value it had.
    pub value: String,
    /// The accepted form, as a phrase: "an integer from 1 to 3600".
    pub expected: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={:?} is not valid: expected {}",
            self.var, self.value, self.expected
        )
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |var: &str| lookup(var).filter(|v| !v.trim().is_empty());
        let d = Config::default();
        Config {
            host: match get("HOST") {
                None => d.host,
                Some(v) => parse_host(&v).ok_or(ConfigError {
                    var: "HOST",
                    value: v,
                    expected: "an IP address such as 127.0.0.1, 0.0.0.0 or ::1, or localhost"
                        .into(),
                })?,
            },
            port: int_var(&get, "PORT", 0, 65535, "a port number from 0 to 65535")?
                .map_or(d.port, |p| p as u16),
            sse_keepalive: int_var(
                &get,
                "SSE_KEEPALIVE_SECS",
                1,
                3600,
                "a whole number of seconds from 1 to 3600",
            )?
            .map_or(d.sse_keepalive, Duration::from_secs),
            max_body_bytes: int_var(
                &get,
                "MAX_BODY_BYTES",
                1024,
                64 * 1024 * 1024,
                "a number of bytes from 1024 to 67108864",
            )?
            .map_or(d.max_body_bytes, |n| n as usize),
            request_timeout: int_var(
                &get,
                "REQUEST_TIMEOUT_SECS",
                1,
                3600,
                "a whole number of seconds from 1 to 3600",
            )?
            .map_or(d.request_timeout, Duration::from_secs),
            max_sessions: int_var(
                &get,
                "MAX_SESSIONS",
                1,
                1_000_000,
                "a number of sessions from 1 to 1000000",
            )?
            .map_or(d.max_sessions, |n| n as usize),
            max_connections: int_var(
                &get,
                "MAX_CONNECTIONS",
                2,
                1_000_000,
                "a number of connections from 2 to 1000000",
            )?
            .map_or(d.max_connections, |n| n as usize),
            shutdown_grace: int_var(
                &get,
                "SHUTDOWN_GRACE_SECS",
                0,
                600,
                "a whole number of seconds from 0 to 600",
            )?
            .map_or(d.shutdown_grace, Duration::from_secs),
            log_json: match get("LOG_FORMAT").map(|v| v.trim().to_ascii_lowercase()) {
                None => false,
                Some(f) if f == "text" => false,
                Some(f) if f == "json" => true,
                Some(_) => {
                    return Err(ConfigError {
                        var: "LOG_FORMAT",
                        value: get("LOG_FORMAT").unwrap_or_default(),
                        expected: "text or json".into(),
                    });
                }
            },
            session_idle: int_var(
                &get,
                "SESSION_IDLE_SECS",
                10,
                7 * 86400,
                "a whole number of seconds from 10 to 604800",
            )?
            .map_or(d.session_idle, Duration::from_secs),
            tool_timeout: int_var(
                &get,
                "TOOL_TIMEOUT_SECS",
                1,
                3600,
                "a whole number of seconds from 1 to 3600",
            )?
            .map_or(d.tool_timeout, Duration::from_secs),
            base_path: match get("BASE_PATH") {
                None => d.base_path,
                Some(v) => parse_base_path(&v).ok_or(ConfigError {
                    var: "BASE_PATH",
                    value: v,
                    expected: "a path prefix such as /tools: starting with /, made of letters, digits and -._~/ only".into(),
                })?,
            },
            allowed_hosts: match get("ALLOWED_HOSTS") {
                None => d.allowed_hosts,
                Some(v) => parse_hosts(&v).map_err(|bad| ConfigError {
                    var: "ALLOWED_HOSTS",
                    value: bad,
                    expected: "a comma-separated list of host names such as mcp.example.com (no scheme, port or path)".into(),
                })?,
            },
            allowed_origins: match get("ALLOWED_ORIGINS") {
                None => d.allowed_origins,
                Some(v) => parse_origins(&v).map_err(|bad| ConfigError {
                    var: "ALLOWED_ORIGINS",
                    value: bad,
                    expected: "a comma-separated list of origins such as https://app.example.com,http://localhost:6274 (scheme, host and optional port; no path)".into(),
                })?,
            },
            state_secret: match get("STATE_SECRET") {
                None => None,
                Some(v) => Some(StateSecret::parse(&v).ok_or(ConfigError {
                    var: "STATE_SECRET",
                    value: "(not shown: it is a secret)".into(),
                    expected: "at least 32 bytes, base64-encoded (e.g. from `head -c 32 /dev/urandom | base64`)".into(),
                })?),
            },
            auth: auth_config(&get)?,
            upstream: match lookup("UPSTREAM_COMMAND").filter(|v| !v.trim().is_empty()) {
                None => upstream_url(&get)?,
                Some(_) if get("UPSTREAM_URL").is_some() => {
                    return Err(ConfigError {
                        var: "UPSTREAM_URL",
                        value: get("UPSTREAM_URL").unwrap_or_default(),
                        expected: "unset: UPSTREAM_COMMAND is set too, and the gateway relays to one upstream".into(),
                    });
                }
                Some(v) => {
                    let argv = serde_json::from_str::<Vec<String>>(&v)
                        .ok()
                        .filter(|a| a.first().is_some_and(|p| !p.is_empty()))
                        .ok_or(ConfigError {
                            var: "UPSTREAM_COMMAND",
                            value: v,
                            expected: r#"a JSON array of strings, the program first, e.g. ["npx", "-y", "@modelcontextprotocol/server-everything"] (run directly, not through a shell)"#.into(),
                        })?;
                    Some(UpstreamCommand::with_env(argv, &lookup)?)
                }
            },
            tool_policy: match get("TOOL_POLICY_FILE") {
                None => None,
                Some(path) => Some(read_policy(&path)?),
            },
            audit_arguments: match get("AUDIT_ARGUMENTS") {
                None => false,
                Some(v) => parse_bool(&v).ok_or(ConfigError {
                    var: "AUDIT_ARGUMENTS",
                    value: v,
                    expected: "true or false (also 1/0, yes/no, on/off)".into(),
                })?,
            },
        }
        .checked()
    }

    /// Settings that are each fine but cannot work together.
    fn checked(self) -> Result<Config, ConfigError> {
        if self.max_connections <= self.max_sessions {
            return Err(ConfigError {
                var: "MAX_CONNECTIONS",
                value: self.max_connections.to_string(),
                expected: format!(
                    "more than MAX_SESSIONS ({}): every session holds a connection and its POSTs need more",
                    self.max_sessions
                ),
            });
        }
        Ok(self)
    }
}

/// The authentication variables; `None` when `JWT_AUTH_ENABLED` is off.
fn auth_config(get: &impl Fn(&str) -> Option<String>) -> Result<Option<AuthConfig>, ConfigError> {
    let enabled = match get("JWT_AUTH_ENABLED") {
        None => false,
        Some(v) => parse_bool(&v).ok_or(ConfigError {
            var: "JWT_AUTH_ENABLED",
            value: v,
            expected: "true or false (also 1/0, yes/no, on/off); a typo must not switch authentication off".into(),
        })?,
    };
    if !enabled {
        return Ok(None);
    }
    let jwks_uri = get("JWKS_URI").unwrap_or_default().trim().to_string();
    let lower = jwks_uri.to_ascii_lowercase();
    let has_host = |rest: &str| !rest.is_empty() && !rest.starts_with('/');
    let usable = match (
        lower.strip_prefix("https://"),
        lower.strip_prefix("http://"),
    ) {
        (Some(rest), _) | (_, Some(rest)) => has_host(rest),
        _ => false,
    };
    if !usable {
        return Err(ConfigError {
            var: "JWKS_URI",
            value: jwks_uri,
            expected: "the http(s) URL of your identity provider's JWKS, e.g. https://console.example.com/.well-known/jwks.json (required when JWT_AUTH_ENABLED=true)".into(),
        });
    }
    let groups = get("REQUIRED_GROUPS").unwrap_or_default();
    let required_groups = RequiredGroups::parse(&groups).ok_or(ConfigError {
        var: "REQUIRED_GROUPS",
        value: groups,
        expected: "a comma-separated list of group names, or * for any authenticated user (required when JWT_AUTH_ENABLED=true)".into(),
    })?;
    let metadata = protected_resource(get)?;
    let d = TokenPolicy::default();
    Ok(Some(
        AuthConfig {
            jwks_uri,
            required_groups,
            policy: TokenPolicy {
                leeway_secs: int_var(
                    get,
                    "JWT_LEEWAY_SECS",
                    0,
                    600,
                    "a whole number of seconds from 0 to 600",
                )?
                .unwrap_or(d.leeway_secs),
                issuer: get("JWT_ISSUER"),
                // RFC 8707: with resource metadata, a token must be for this resource.
                audience: get("JWT_AUDIENCE")
                    .or_else(|| metadata.as_ref().map(|m| m.resource.clone())),
            },
            refresh: int_var(
                get,
                "JWKS_REFRESH_SECS",
                10,
                86400,
                "a whole number of seconds from 10 to 86400",
            )?
            .map_or(Duration::from_secs(600), Duration::from_secs),
            min_refetch: MIN_REFETCH_INTERVAL,
            metadata,
            max_age: Duration::from_secs(
                int_var(
                    get,
                    "JWKS_MAX_AGE_SECS",
                    60,
                    7 * 86400,
                    "a whole number of seconds from 60 to 604800",
                )?
                .unwrap_or(3600),
            ),
        }
        .checked()?,
    ))
}

/// `TOOL_POLICY_FILE`: the file read and its rules checked; a fault names the rule.
fn read_policy(path: &str) -> Result<Policy, ConfigError> {
    let path = path.trim();
    let refused = |expected: String| ConfigError {
        var: "TOOL_POLICY_FILE",
        value: path.to_string(),
        expected,
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        refused(format!(
            "the path of a readable JSON policy file (reading it failed: {e})"
        ))
    })?;
    Policy::from_json(&text).map_err(|e| {
        refused(format!(
            "a JSON policy file (see README, \"Per-tool authorization\"); {e}"
        ))
    })
}

/// `RESOURCE_URL`, `AUTHORIZATION_SERVERS`, `SCOPES_SUPPORTED`: both of the first two, or
/// neither.
fn protected_resource(
    get: &impl Fn(&str) -> Option<String>,
) -> Result<Option<ProtectedResource>, ConfigError> {
    let is_url = |v: &str| {
        let lower = v.to_ascii_lowercase();
        ["https://", "http://"].iter().any(|scheme| {
            lower
                .strip_prefix(scheme)
                .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
        }) && !v.contains(['#', ' ', ',', '"'])
    };
    let resource = get("RESOURCE_URL").map(|v| v.trim().to_string());
    let servers = get("AUTHORIZATION_SERVERS");
    let (resource, servers) = match (resource, servers) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(ConfigError {
                var: "AUTHORIZATION_SERVERS",
                value: String::new(),
                expected: "the issuer URL(s) of the authorization server(s), comma-separated: RESOURCE_URL is set, and the metadata (RFC 9728) must name at least one".into(),
            });
        }
        (None, Some(_)) => {
            return Err(ConfigError {
                var: "RESOURCE_URL",
                value: String::new(),
                expected: "this server's resource identifier, e.g. https://mcp.example.com/mcp: AUTHORIZATION_SERVERS is set, and the metadata (RFC 9728) needs it".into(),
            });
        }
        (Some(r), Some(s)) => (r, s),
    };
    if !is_url(&resource) {
        return Err(ConfigError {
            var: "RESOURCE_URL",
            value: resource,
            expected: "an http(s) URL without a fragment, e.g. https://mcp.example.com/mcp".into(),
        });
    }
    let list = |v: &str| -> Vec<String> {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let authorization_servers = list(&servers);
    if authorization_servers.is_empty() || !authorization_servers.iter().all(|s| is_url(s)) {
        return Err(ConfigError {
            var: "AUTHORIZATION_SERVERS",
            value: servers,
            expected: "a comma-separated list of issuer URLs, e.g. https://auth.example.com".into(),
        });
    }
    let scopes_text = get("SCOPES_SUPPORTED").unwrap_or_default();
    let scopes = list(&scopes_text);
    // Scope tokens (RFC 6749 §3.3): printable ASCII but space, `"` and `\`; they go into the
    // 401 challenge as they are.
    let token = |s: &String| s.chars().all(|c| matches!(c, '!' | '#'..='[' | ']'..='~'));
    if !scopes.iter().all(token) {
        return Err(ConfigError {
            var: "SCOPES_SUPPORTED",
            value: scopes_text,
            expected: "comma-separated scope names of printable ASCII without spaces, quotes or backslashes, e.g. mcp:tools,mcp:read".into(),
        });
    }
    Ok(Some(ProtectedResource {
        resource,
        authorization_servers,
        scopes,
    }))
}

/// A path prefix: `/` then segments of unreserved characters; a trailing `/` is dropped
/// and `/` alone means none.
fn parse_base_path(v: &str) -> Option<String> {
    let v = v.trim().trim_end_matches('/');
    if v.is_empty() {
        return Some(String::new());
    }
    let ok = v.starts_with('/')
        && !v.contains("//")
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
        && !v.split('/').any(|seg| seg == "." || seg == "..");
    ok.then(|| v.to_string())
}

/// Origins, each `http(s)://host[:port]` and compared exactly (browsers send them in this
/// form, lower-case). `Err` carries the first one that is not an origin.
fn parse_origins(v: &str) -> Result<Vec<String>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            let lower = o.to_ascii_lowercase();
            let rest = lower
                .strip_prefix("https://")
                .or_else(|| lower.strip_prefix("http://"));
            match rest {
                Some(host) if !host.is_empty() && !host.contains(['/', '?', '#', '@', ' ']) => {
                    Ok(lower)
                }
                _ => Err(o.to_string()),
            }
        })
        .collect()
}

/// Host names, lower-cased; `Err` carries the first that is not one.
fn parse_hosts(v: &str) -> Result<Vec<String>, String> {
    v.split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            let ok = h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if ok {
                Ok(h.to_ascii_lowercase())
            } else {
                Err(h.to_string())
            }
        })
        .collect()
}

/// `true/false`, `1/0`, `yes/no`, `on/off`, in any case.
fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_host(v: &str) -> Option<IpAddr> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("localhost") {
        return Some(IpAddr::from([127, 0, 0, 1]));
    }
    v.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// An optional integer variable within `min..=max`.
fn int_var(
    get: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    min: u64,
    max: u64,
    expected: &'static str,
) -> Result<Option<u64>, ConfigError> {
    let Some(value) = get(var) else {
        return Ok(None);
    };
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
        _ => Err(ConfigError {
            var,
            value,
            expected: expected.into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_when_unset_or_empty() {
        let c = from(&[("PORT", ""), ("HOST", " ")]).unwrap();
        assert_eq!(c.port, 3000);
        assert_eq!(c.host, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(c.sse_keepalive, Duration::from_secs(15));
        assert_eq!(c.max_body_bytes, 1 << 20);
        assert_eq!(c.request_timeout, Duration::from_secs(10));
    }

    #[test]
    fn reads_every_variable() {
        let c = from(&[
            ("HOST", "0.0.0.0"),
            ("PORT", "0"),
            ("SSE_KEEPALIVE_SECS", "2"),
            ("MAX_BODY_BYTES", "2048"),
            ("REQUEST_TIMEOUT_SECS", "3"),
        ])
        .unwrap();
        assert_eq!(c.host, IpAddr::from([0, 0, 0, 0]));
        assert_eq!(c.port, 0);
        assert_eq!(c.sse_keepalive, Duration::from_secs(2));
        assert_eq!(c.max_body_bytes, 2048);
        assert_eq!(c.request_timeout, Duration::from_secs(3));
        assert_eq!(
            from(&[("HOST", "[::1]")]).unwrap().host,
            "::1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            from(&[("HOST", "localhost")]).unwrap().host,
            IpAddr::from([127, 0, 0, 1])
        );
    }

    #[test]
    fn refuses_bad_values_naming_the_variable() {
        for (var, value) in [
            ("PORT", "65536"),
            ("PORT", "http"),
            ("PORT", "-1"),
            ("HOST", "example.com"),
            ("SSE_KEEPALIVE_SECS", "0"),
            ("MAX_BODY_BYTES", "12"),
            ("REQUEST_TIMEOUT_SECS", "1.5"),
        ] {
            let err = from(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var);
            assert_eq!(err.value, value);
            assert!(err.to_string().starts_with(&format!("{var}=")), "{err}");
        }
    }

    const AUTH_ON: [(&str, &str); 3] = [
        ("JWT_AUTH_ENABLED", "true"),
        (
            "JWKS_URI",
            "https://console.example.com/.well-known/jwks.json",
        ),
        ("REQUIRED_GROUPS", " sre, devops ,"),
    ];

    #[test]
    fn reads_the_streamable_http_settings() {
        let d = from(&[]).unwrap();
        assert_eq!(d.session_idle, Duration::from_secs(1800));
        assert_eq!(d.tool_timeout, Duration::from_secs(60));
        assert_eq!(
            from(&[("TOOL_TIMEOUT_SECS", "5")]).unwrap().tool_timeout,
            Duration::from_secs(5)
        );
        assert_eq!(d.base_path, "");
        assert!(d.allowed_origins.is_empty());
        let c = from(&[
            ("SESSION_IDLE_SECS", "60"),
            ("BASE_PATH", "/tools/mcp-warden/"),
            (
                "ALLOWED_ORIGINS",
                " https://App.example.com , http://localhost:6274,",
            ),
        ])
        .unwrap();
        assert_eq!(c.session_idle, Duration::from_secs(60));
        assert_eq!(c.base_path, "/tools/mcp-warden");
        assert_eq!(
            c.allowed_origins,
            ["https://app.example.com", "http://localhost:6274"]
        );
        assert_eq!(from(&[("BASE_PATH", "/")]).unwrap().base_path, "");
        assert_eq!(
            from(&[("ALLOWED_HOSTS", "MCP.example.com, proxy-1")])
                .unwrap()
                .allowed_hosts,
            ["mcp.example.com", "proxy-1"]
        );
        for (var, value) in [
            ("SESSION_IDLE_SECS", "5"),
            ("TOOL_TIMEOUT_SECS", "0"),
            ("TOOL_TIMEOUT_SECS", "3601"),
            ("BASE_PATH", "tools"),
            ("BASE_PATH", "/a//b"),
            ("BASE_PATH", "/a/../b"),
            ("BASE_PATH", "/a b"),
            ("ALLOWED_HOSTS", "mcp.example.com:443"),
            ("ALLOWED_HOSTS", "https://mcp.example.com"),
            ("ALLOWED_ORIGINS", "app.example.com"),
            ("ALLOWED_ORIGINS", "https://app.example.com/path"),
            ("ALLOWED_ORIGINS", "https://ok.example,ftp://x"),
        ] {
            let err = from(&[(var, value)]).unwrap_err();
            assert_eq!(err.var, var, "{value}");
        }
    }

    #[test]
    fn audit_arguments_is_a_boolean_and_the_policy_file_must_be_readable() {
        assert!(!from(&[]).unwrap().audit_arguments);
        assert!(from(&[("AUDIT_ARGUMENTS", "yes")]).unwrap().audit_arguments);
        assert!(!from(&[("AUDIT_ARGUMENTS", "0")]).unwrap().audit_arguments);
        assert_eq!(
            from(&[("AUDIT_ARGUMENTS", "all")]).unwrap_err().var,
            "AUDIT_ARGUMENTS"
        );
        assert!(from(&[]).unwrap().tool_policy.is_none());
        let err = from(&[("TOOL_POLICY_FILE", "/nonexistent/policy.json")]).unwrap_err();
        assert_eq!(err.var, "TOOL_POLICY_FILE");
        assert!(err.to_string().contains("reading it failed"), "{err}");
    }

    #[test]
    fn auth_is_off_unless_enabled() {
        assert_eq!(from(&[]).unwrap().auth, None);
        assert_eq!(from(&[("JWT_AUTH_ENABLED", "")]).unwrap().auth, None);
        for off in ["false", "0", "no", "OFF", "False"] {
            let c = from(&[("JWT_AUTH_ENABLED", off), ("JWKS_URI", "x")]).unwrap();
            assert_eq!(c.auth, None, "{off}");
        }
    }

    #[test]
    fn reads_every_auth_variable() {
        let mut pairs = AUTH_ON.to_vec();
        pairs.extend([
            ("JWT_LEEWAY_SECS", "5"),
            ("JWT_ISSUER", "Joken"),
            ("JWT_AUDIENCE", "mcp"),
            ("JWKS_REFRESH_SECS", "60"),
        ]);
        let auth = from(&pairs).unwrap().auth.unwrap();
        assert_eq!(
            auth.jwks_uri,
            "https://console.example.com/.well-known/jwks.json"
        );
        assert_eq!(
            auth.required_groups,
            RequiredGroups::OneOf(vec!["sre".into(), "devops".into()])
        );
        assert_eq!(auth.policy.leeway_secs, 5);
        assert_eq!(auth.policy.issuer.as_deref(), Some("Joken"));
        assert_eq!(auth.policy.audience.as_deref(), Some("mcp"));
        assert_eq!(auth.refresh, Duration::from_secs(60));
        let defaults = from(&AUTH_ON).unwrap().auth.unwrap();
        assert_eq!(defaults.policy, TokenPolicy::default());
        assert_eq!(defaults.refresh, Duration::from_secs(600));
        for on in ["1", "yes", "ON", "True"] {
            let mut pairs = AUTH_ON.to_vec();
            pairs[0].1 = on;
            assert!(from(&pairs).unwrap().auth.is_some(), "{on}");
        }
    }

    #[test]
    fn a_typo_in_jwt_auth_enabled_refuses_to_start() {
        for typo in ["ture", "enabled", "y", "2"] {
            let err = from(&[("JWT_AUTH_ENABLED", typo)]).unwrap_err();
            assert_eq!(err.var, "JWT_AUTH_ENABLED", "{typo}");
            assert!(err.to_string().contains("true or false"), "{err}");
        }
    }

    #[test]
    fn auth_on_needs_an_http_jwks_uri() {
        for uri in [
            "",
            "console.example.com/jwks",
            "ftp://x/jwks",
            "https://",
            "http:///jwks",
        ] {
            let mut pairs = AUTH_ON.to_vec();
            pairs[1].1 = uri;
            let err = from(&pairs).unwrap_err();
            assert_eq!(err.var, "JWKS_URI", "{uri:?}");
            assert!(err.to_string().contains("JWT_AUTH_ENABLED=true"), "{err}");
        }
        let mut pairs = AUTH_ON.to_vec();
        pairs[1].1 = "http://plural-console.plural.svc:8080/.well-known/jwks.json";
        assert!(from(&pairs).is_ok());
    }

    #[test]
    fn auth_on_needs_required_groups_and_explains_star() {
        for groups in ["", " , ,"] {
            let mut pairs = AUTH_ON.to_vec();
            pairs[2].1 = groups;
            let err = from(&pairs).unwrap_err();
            assert_eq!(err.var, "REQUIRED_GROUPS");
            assert!(
                err.to_string().contains("* for any authenticated user"),
                "{err}"
            );
        }
        let mut pairs = AUTH_ON.to_vec();
        pairs[2].1 = "*";
        assert_eq!(
            from(&pairs).unwrap().auth.unwrap().required_groups,
            RequiredGroups::Any
        );
    }

    #[test]
    fn refuses_bad_auth_numbers() {
        for (var, value) in [("JWT_LEEWAY_SECS", "601"), ("JWKS_REFRESH_SECS", "5")] {
            let mut pairs = AUTH_ON.to_vec();
            pairs.push((var, value));
            assert_eq!(from(&pairs).unwrap_err().var, var);
        }
    }

    #[test]
    fn reads_the_limits_and_log_format() {
        let c = from(&[
            ("MAX_SESSIONS", "10"),
            ("MAX_CONNECTIONS", "11"),
            ("SHUTDOWN_GRACE_SECS", "0"),
            ("LOG_FORMAT", " JSON "),
        ])
        .unwrap();
        assert_eq!((c.max_sessions, c.max_connections), (10, 11));
        assert_eq!(c.shutdown_grace, Duration::ZERO);
        assert!(c.log_json);
        let d = from(&[]).unwrap();
        assert_eq!((d.max_sessions, d.max_connections), (1000, 2000));
        assert_eq!(d.shutdown_grace, Duration::from_secs(5));
        assert!(!d.log_json && !from(&[("LOG_FORMAT", "text")]).unwrap().log_json);
    }

    #[test]
    fn refuses_bad_limits_and_log_format() {
        for (var, value) in [
            ("MAX_SESSIONS", "0"),
            ("MAX_CONNECTIONS", "1"),
            ("SHUTDOWN_GRACE_SECS", "601"),
            ("LOG_FORMAT", "yaml"),
        ] {
            let err = from(&[(var, value)]).unwrap_err();
            assert_eq!((err.var, err.value.as_str()), (var, value));
        }
    }

    #[test]
    fn max_connections_must_exceed_max_sessions() {
        let err = from(&[("MAX_SESSIONS", "3000")]).unwrap_err();
        assert_eq!(err.var, "MAX_CONNECTIONS");
        assert!(
            err.to_string().contains("more than MAX_SESSIONS (3000)"),
            "{err}"
        );
        assert!(from(&[("MAX_SESSIONS", "5"), ("MAX_CONNECTIONS", "5")]).is_err());
        assert!(from(&[("MAX_SESSIONS", "3000"), ("MAX_CONNECTIONS", "3001")]).is_ok());
    }

    #[test]
    fn jwks_max_age_must_cover_the_refresh_interval() {
        let mut pairs = AUTH_ON.to_vec();
        pairs.extend([("JWKS_REFRESH_SECS", "900"), ("JWKS_MAX_AGE_SECS", "600")]);
        let err = from(&pairs).unwrap_err();
        assert_eq!(err.var, "JWKS_MAX_AGE_SECS");
        assert!(
            err.to_string().contains("at least JWKS_REFRESH_SECS (900)"),
            "{err}"
        );
        pairs.pop();
        pairs.push(("JWKS_MAX_AGE_SECS", "900"));
        let auth = from(&pairs).unwrap().auth.unwrap();
        assert_eq!(auth.max_age, Duration::from_secs(900));
        assert_eq!(
            from(&AUTH_ON).unwrap().auth.unwrap().max_age,
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn state_secret_needs_32_bytes_of_base64_and_is_never_shown() {
        let key = format!("{}=", "A".repeat(43)); // 32 bytes, padded base64
        assert_eq!(
            from(&[("STATE_SECRET", key.as_str())])
                .unwrap()
                .state_secret
                .unwrap()
                .0
                .len(),
            32
        );
        for bad in ["c2hvcnQ=", "not base64 at all!"] {
            let e = from(&[("STATE_SECRET", bad)]).unwrap_err();
            assert_eq!(e.var, "STATE_SECRET");
            assert!(!e.to_string().contains(bad), "{e}");
        }
        let config = from(&[("STATE_SECRET", key.as_str())]).unwrap();
        assert!(!format!("{config:?}").contains(&key[..10]));
    }

    #[test]
    fn resource_metadata_needs_both_settings_and_makes_the_resource_the_audience() {
        let auth = [
            ("JWT_AUTH_ENABLED", "true"),
            ("JWKS_URI", "https://idp.example.com/jwks.json"),
            ("REQUIRED_GROUPS", "sre"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = auth.to_vec();
            pairs.extend_from_slice(extra);
            from(&pairs)
        };
        let config = with(&[
            ("RESOURCE_URL", "https://mcp.example.com/mcp"),
            (
                "AUTHORIZATION_SERVERS",
                "https://auth.example.com, https://auth2.example.com",
            ),
            ("SCOPES_SUPPORTED", "mcp:tools"),
        ])
        .unwrap();
        let auth_config = config.auth.unwrap();
        let metadata = auth_config.metadata.unwrap();
        assert_eq!(metadata.authorization_servers.len(), 2);
        assert_eq!(metadata.scopes, ["mcp:tools"]);
        assert_eq!(
            auth_config.policy.audience.as_deref(),
            Some("https://mcp.example.com/mcp")
        );
        let explicit = with(&[
            ("RESOURCE_URL", "https://mcp.example.com/mcp"),
            ("AUTHORIZATION_SERVERS", "https://auth.example.com"),
            ("JWT_AUDIENCE", "Joken"),
        ])
        .unwrap();
        assert_eq!(
            explicit.auth.unwrap().policy.audience.as_deref(),
            Some("Joken")
        );
        for (extra, var) in [
            (
                &[("RESOURCE_URL", "https://mcp.example.com/mcp")][..],
                "AUTHORIZATION_SERVERS",
            ),
            (
                &[("AUTHORIZATION_SERVERS", "https://auth.example.com")][..],
                "RESOURCE_URL",
            ),
            (
                &[
                    ("RESOURCE_URL", "mcp.example.com"),
                    ("AUTHORIZATION_SERVERS", "https://a.example.com"),
                ][..],
                "RESOURCE_URL",
            ),
            (
                &[
                    ("RESOURCE_URL", "https://m.example.com"),
                    ("AUTHORIZATION_SERVERS", "auth"),
                ][..],
                "AUTHORIZATION_SERVERS",
            ),
            (
                &[
                    ("RESOURCE_URL", "https://m.example.com"),
                    ("AUTHORIZATION_SERVERS", "https://a.example.com"),
                    ("SCOPES_SUPPORTED", "mcp:tools, \"quoted\""),
                ][..],
                "SCOPES_SUPPORTED",
            ),
        ] {
            assert_eq!(with(extra).unwrap_err().var, var, "{extra:?}");
        }
        assert!(with(&[]).unwrap().auth.unwrap().metadata.is_none());
    }

    #[test]
    fn the_upstream_is_read_once_and_checked() {
        let command = from(&[("UPSTREAM_COMMAND", r#"["npx", "-y", "server"]"#)])
            .unwrap()
            .upstream
            .unwrap();
        assert_eq!(command.argv, ["npx", "-y", "server"]);
        assert_eq!(command.env, ["PATH", "HOME"]);
        assert!(!command.shared && command.url.is_none());
        let shared = from(&[
            ("UPSTREAM_COMMAND", r#"["srv"]"#),
            ("UPSTREAM_SHARED", "yes"),
            ("UPSTREAM_ENV", "PATH, LANG"),
        ])
        .unwrap()
        .upstream
        .unwrap();
        assert!(shared.shared);
        assert_eq!(shared.env, ["PATH", "LANG"]);
        let url = from(&[
            ("UPSTREAM_URL", "http://127.0.0.1:8000/mcp"),
            ("UPSTREAM_IDENTITY_HEADERS", "true"),
            ("UPSTREAM_FORWARD_TOKEN", "1"),
        ])
        .unwrap()
        .upstream
        .unwrap();
        assert_eq!(url.url.as_deref(), Some("http://127.0.0.1:8000/mcp"));
        assert!(url.identity_headers && url.forward_token && url.argv.is_empty());
        assert!(from(&[]).unwrap().upstream.is_none());
        for (pairs, var) in [
            (
                &[("UPSTREAM_COMMAND", "npx -y server")][..],
                "UPSTREAM_COMMAND",
            ),
            (&[("UPSTREAM_COMMAND", "[]")][..], "UPSTREAM_COMMAND"),
            (
                &[
                    ("UPSTREAM_COMMAND", r#"["srv"]"#),
                    ("UPSTREAM_SHARED", "maybe"),
                ][..],
                "UPSTREAM_SHARED",
            ),
            (
                &[
                    ("UPSTREAM_COMMAND", r#"["srv"]"#),
                    ("UPSTREAM_ENV", "PATH,1BAD"),
                ][..],
                "UPSTREAM_ENV",
            ),
            (
                &[
                    ("UPSTREAM_COMMAND", r#"["srv"]"#),
                    ("UPSTREAM_URL", "http://h/mcp"),
                ][..],
                "UPSTREAM_URL",
            ),
            (&[("UPSTREAM_URL", "ftp://h/mcp")][..], "UPSTREAM_URL"),
            (
                &[
                    ("UPSTREAM_URL", "http://h/mcp"),
                    ("UPSTREAM_FORWARD_TOKEN", "sure"),
                ][..],
                "UPSTREAM_FORWARD_TOKEN",
            ),
            (
                &[
                    ("UPSTREAM_URL", "http://h/mcp"),
                    ("UPSTREAM_IDENTITY_HEADERS", "2"),
                ][..],
                "UPSTREAM_IDENTITY_HEADERS",
            ),
        ] {
            assert_eq!(from(pairs).unwrap_err().var, var, "{pairs:?}");
        }
    }
}
