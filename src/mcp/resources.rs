//! The resources this server offers, as URI templates of the simple `scheme://{var}` form.
//! Registering one is a line in `TEMPLATES`.

use serde_json::{Value, json};

/// Every resource template, in the order `resources/templates/list` shows them.
pub static TEMPLATES: &[Template] = &[ECHO];

pub struct Template {
    /// RFC 6570 level-1 template: a fixed prefix and one variable, `echo://{message}`.
    pub uri_template: &'static str,
    pub name: &'static str,
    pub description: &'static str,
    pub mime_type: &'static str,
    /// The text for the (percent-decoded) variable.
    pub read: fn(&str) -> String,
}

impl Template {
    pub fn listing(&self) -> Value {
        json!({
            "uriTemplate": self.uri_template,
            "name": self.name,
            "description": self.description,
            "mimeType": self.mime_type,
        })
    }

    /// The variable's value if `uri` matches this template.
    fn matches(&self, uri: &str) -> Option<String> {
        let prefix = self.uri_template.split('{').next()?;
        let value = uri.strip_prefix(prefix)?;
        if value.is_empty() {
            return None;
        }
        Some(percent_decode(value))
    }
}

/// The `resources/read` contents for `uri`, or `None` when no template matches.
pub fn read(uri: &str) -> Option<Value> {
    TEMPLATES.iter().find_map(|t| {
        let value = t.matches(uri)?;
        Some(json!([{ "uri": uri, "mimeType": t.mime_type, "text": (t.read)(&value) }]))
    })
}

/// `%XX` escapes decoded; a malformed escape or a result that is not UTF-8 leaves the text
/// as it came.
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

const ECHO: Template = Template {
    uri_template: "echo://{message}",
    name: "echo",
    description: "Echoes back the message in the URI.",
    mime_type: "text/plain",
    read: |message| format!("Resource echo: {message}"),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_echo_uris_and_decodes_escapes() {
        assert_eq!(
            read("echo://hello").unwrap()[0]["text"],
            "Resource echo: hello"
        );
        assert_eq!(
            read("echo://a%20b").unwrap()[0]["text"],
            "Resource echo: a b"
        );
        assert_eq!(
            read("echo://100%").unwrap()[0]["text"],
            "Resource echo: 100%"
        );
        assert_eq!(read("echo://%ff").unwrap()[0]["text"], "Resource echo: %ff");
    }

    #[test]
    fn unknown_uris_match_nothing() {
        assert!(read("echo://").is_none());
        assert!(read("file:///etc/passwd").is_none());
        assert!(read("echo:/x").is_none());
    }
}
