//! dev-issuer: a throwaway token issuer for trying mcp-warden with authentication on.
//!
//! Generates a key, serves its JWKS on loopback, prints the JWKS URL, the environment to
//! start the server with, and a Plural-shaped token, then serves until Ctrl-C.
//! The key lives only in this process's memory: restart it and old tokens stop verifying.
//!
//! For scripts: `--token-file` and `--url-file` write the token and the URL to files (each
//! written whole, then renamed into place, so a poller never sees half of one).

#[path = "../tests/common/issuer.rs"]
mod issuer;
#[path = "../tests/common/jwks_server.rs"]
mod jwks_server;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
dev-issuer: serve a throwaway JWKS on loopback and mint a token for it (development only)

USAGE:
    cargo run --example dev-issuer -- [OPTIONS]

OPTIONS:
    --alg RS256|ES256     signing algorithm (default ES256, as Plural issues).
                          ES256 tokens carry no header kid (like Plural's); RS256 tokens do.
    --kid KID             key id for the JWK and the token header (default: none for ES256,
                          a random one for RS256)
    --sub SUB             token subject (default alice)
    --email EMAIL         token email (default SUB@example.com)
    --groups A,B          token groups, also printed as REQUIRED_GROUPS (default none)
    --lifetime SECS       token lifetime in seconds (default 3600)
    --port PORT           loopback port for the JWKS (default 0: any free port)
    --token-file PATH     also write the token to PATH
    --url-file PATH       also write the JWKS URL to PATH
    --print-token-only    print only the token on stdout (the URL etc. go to stderr)
    -h, --help            this text

The JWKS is served at http://127.0.0.1:PORT/jwks.json until Ctrl-C.

Example:
    cargo run --example dev-issuer -- --groups dev --url-file /tmp/jwks-url --token-file /tmp/token &
    while [ ! -s /tmp/jwks-url ] || [ ! -s /tmp/token ]; do sleep 0.2; done
    JWT_AUTH_ENABLED=true JWKS_URI=$(cat /tmp/jwks-url) REQUIRED_GROUPS=dev cargo run &
    curl -H \"Authorization: Bearer $(cat /tmp/token)\" ...
";

#[derive(Debug)]
struct Options {
    rsa: bool,
    kid: Option<String>,
    sub: String,
    email: Option<String>,
    groups: Vec<String>,
    lifetime: i64,
    port: u16,
    token_file: Option<PathBuf>,
    url_file: Option<PathBuf>,
    token_only: bool,
}

enum Parsed {
    Run(Options),
    Help,
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut o = Options {
        rsa: false,
        kid: None,
        sub: "alice".into(),
        email: None,
        groups: Vec::new(),
        lifetime: 3600,
        port: 0,
        token_file: None,
        url_file: None,
        token_only: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(Parsed::Help),
            "--alg" => {
                o.rsa = match value("--alg")?.to_ascii_uppercase().as_str() {
                    "RS256" => true,
                    "ES256" => false,
                    other => return Err(format!("--alg must be RS256 or ES256, not {other:?}")),
                }
            }
            "--kid" => o.kid = Some(value("--kid")?),
            "--sub" => o.sub = value("--sub")?,
            "--email" => o.email = Some(value("--email")?),
            "--groups" => {
                o.groups = value("--groups")?
                    .split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            "--lifetime" => {
                let v = value("--lifetime")?;
                o.lifetime = v
                    .parse()
                    .map_err(|_| format!("--lifetime must be a number of seconds, not {v:?}"))?;
            }
            "--port" => {
                let v = value("--port")?;
                o.port = v
                    .parse()
                    .map_err(|_| format!("--port must be 0-65535, not {v:?}"))?;
            }
            "--token-file" => o.token_file = Some(value("--token-file")?.into()),
            "--url-file" => o.url_file = Some(value("--url-file")?.into()),
            "--print-token-only" if inline.is_none() => o.token_only = true,
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    Ok(Parsed::Run(o))
}

/// Writes `contents` to a sibling temporary file, then renames it over `path`.
fn write_atomically(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)
}

fn main() -> ExitCode {
    let o = match parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(o)) => o,
        Ok(Parsed::Help) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("dev-issuer: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let kid = match (&o.kid, o.rsa) {
        (Some(kid), _) => Some(kid.clone()),
        (None, true) => Some(format!("dev-{}", issuer::random_hex(4))),
        (None, false) => None,
    };
    let key = if o.rsa {
        issuer::Issuer::rsa(kid.as_deref())
    } else {
        issuer::Issuer::es256(kid.as_deref())
    };

    let addr = format!("127.0.0.1:{}", o.port);
    let server = match jwks_server::JwksServer::bind(&addr, issuer::jwks(&[key.jwk()])) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("dev-issuer: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let url = server.url();

    let email = o
        .email
        .clone()
        .unwrap_or_else(|| format!("{}@example.com", o.sub));
    let groups: Vec<&str> = o.groups.iter().map(String::as_str).collect();
    let token = key.token(&issuer::plural_claims(&o.sub, &email, &groups, o.lifetime));

    let mut env = format!("JWT_AUTH_ENABLED=true JWKS_URI={url}");
    if !o.groups.is_empty() {
        env.push_str(&format!(" REQUIRED_GROUPS={}", o.groups.join(",")));
    }
    let summary = format!(
        "# JWKS ({} key{}) served at:\n{url}\n\n# Start the server with:\n{env} cargo run\n\n\
         # Token for sub={} groups=[{}], valid {} s:\n",
        key.alg(),
        kid.as_deref()
            .map(|k| format!(", kid {k}"))
            .unwrap_or_default(),
        o.sub,
        o.groups.join(","),
        o.lifetime,
    );

    if o.token_only {
        eprint!("{summary}");
        println!("{token}");
    } else {
        print!("{summary}");
        println!("{token}\n");
        println!("# Serving until Ctrl-C.");
    }

    for (path, contents) in [(&o.token_file, &token), (&o.url_file, &url)] {
        if let Some(path) = path
            && let Err(e) = write_atomically(path, contents)
        {
            eprintln!("dev-issuer: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }

    // Serve until the process is interrupted: the server thread does the work.
    loop {
        std::thread::park();
    }
}
