//! Where authentication meets HTTP: a refused token becomes a `401` with a
//! `WWW-Authenticate` challenge (RFC 6750 §3) and a JSON body. `auth/` itself knows no HTTP.

use crate::auth::{AuthError, ProtectedResource};
use crate::http::Response;

/// The `401` for this refusal: `WWW-Authenticate` per RFC 6750 §3 and a JSON body; with
/// protected resource metadata configured, the challenge names where it is (RFC 9728 §5.1)
/// and the scopes to ask for (`SCOPES_SUPPORTED`, RFC 6750 §3), for a client that gets its
/// token by itself.
pub fn unauthorized(e: &AuthError, metadata: Option<&ProtectedResource>) -> Response {
    let message = e.to_string();
    let (code, challenge) = match e {
        AuthError::MissingToken => ("missing_token", "Bearer realm=\"mcp-warden\"".to_string()),
        _ => {
            // error_description allows printable ASCII except `"` and `\` (RFC 6750 §3).
            let description: String = message
                .chars()
                .map(|c| match c {
                    '"' | '\\' => '\'',
                    ' '..='~' => c,
                    _ => '?',
                })
                .collect();
            (
                match e {
                    AuthError::NoGroups { .. } | AuthError::NoSharedGroup { .. } => {
                        "insufficient_group"
                    }
                    _ => "invalid_token",
                },
                format!(
                    "Bearer realm=\"mcp-warden\", error=\"invalid_token\", error_description=\"{description}\""
                ),
            )
        }
    };
    let challenge = match metadata {
        Some(m) if !m.scopes.is_empty() => format!(
            "{challenge}, scope=\"{}\", resource_metadata=\"{}\"",
            m.scopes.join(" "),
            m.url()
        ),
        Some(m) => format!("{challenge}, resource_metadata=\"{}\"", m.url()),
        None => challenge,
    };
    Response::error(401, code, &message).header("WWW-Authenticate", &challenge)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
        response
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn refusals_are_401_with_a_bearer_challenge_that_cannot_be_broken_out_of() {
        let missing = unauthorized(&AuthError::MissingToken, None);
        assert_eq!(missing.status, 401);
        assert_eq!(
            header(&missing, "WWW-Authenticate"),
            Some("Bearer realm=\"mcp-warden\"")
        );
        // A hostile `alg` with quotes, a backslash and a line break stays inside the quotes.
        let hostile = AuthError::AlgorithmNotAllowed("x\"\\\r\nSet-Cookie: a=b".into());
        let response = unauthorized(&hostile, None);
        let challenge = header(&response, "WWW-Authenticate").unwrap();
        assert!(challenge.starts_with(
            "Bearer realm=\"mcp-warden\", error=\"invalid_token\", error_description=\""
        ));
        let description = &challenge[challenge.find("error_description=\"").unwrap() + 19..];
        assert_eq!(description.matches('"').count(), 1, "{challenge}");
        assert!(description.ends_with('"'));
        assert!(!challenge.contains(['\r', '\n', '\\']), "{challenge}");
        let group = AuthError::NoSharedGroup {
            sub: "alice".into(),
        };
        assert_eq!(
            group.to_string(),
            "user does not belong to any required group"
        );
        assert_eq!(unauthorized(&group, None).status, 401);
    }
}
