//! What handlers give back: content blocks (`Content`), the contents of a resource
//! (`ResourceContents`), a tool's result (`ToolResult`), a prompt's messages
//! (`PromptMessage`), and the error every handler may return (`HandlerError`). Each type
//! serializes to the MCP schema's shape (2025-11-25), so a handler never writes JSON by hand.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use serde_json::Value;

/// One block of content: in a tool's result, in a prompt message, or embedded in either.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    Text {
        text: String,
    },
    /// `data` is base64.
    Image {
        data: String,
        #[serde(rename = "mimeType")]
        mime_type: String,
    },
    /// `data` is base64.
    Audio {
        data: String,
        #[serde(rename = "mimeType")]
        mime_type: String,
    },
    /// A resource's contents, embedded.
    Resource {
        resource: ResourceContents,
    },
    /// A pointer to a resource the client may read (or subscribe to) itself.
    ResourceLink {
        uri: String,
        name: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(rename = "mimeType", skip_serializing_if = "Option::is_none")]
        mime_type: Option<String>,
    },
}

impl Content {
    pub fn text(text: impl Into<String>) -> Content {
        Content::Text { text: text.into() }
    }

    /// An image from its bytes (base64-encoded here).
    pub fn image(bytes: &[u8], mime_type: impl Into<String>) -> Content {
        Content::Image {
            data: STANDARD.encode(bytes),
            mime_type: mime_type.into(),
        }
    }

    /// Audio from its bytes (base64-encoded here).
    pub fn audio(bytes: &[u8], mime_type: impl Into<String>) -> Content {
        Content::Audio {
            data: STANDARD.encode(bytes),
            mime_type: mime_type.into(),
        }
    }

    /// An embedded resource.
    pub fn resource(contents: ResourceContents) -> Content {
        Content::Resource { resource: contents }
    }

    /// A link to the resource at `uri`.
    pub fn link(uri: impl Into<String>, name: impl Into<String>) -> Content {
        Content::ResourceLink {
            uri: uri.into(),
            name: name.into(),
            description: None,
            mime_type: None,
        }
    }
}

/// What reading a resource gives: its URI, its media type, and its text or its bytes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResourceContents {
    uri: String,
    #[serde(rename = "mimeType", skip_serializing_if = "Option::is_none")]
    mime_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    /// Base64.
    #[serde(skip_serializing_if = "Option::is_none")]
    blob: Option<String>,
}

impl ResourceContents {
    pub fn text(
        uri: impl Into<String>,
        mime_type: impl Into<String>,
        text: impl Into<String>,
    ) -> ResourceContents {
        ResourceContents {
            uri: uri.into(),
            mime_type: Some(mime_type.into()),
            text: Some(text.into()),
            blob: None,
        }
    }

    /// Binary contents from their bytes (base64-encoded here).
    pub fn blob(
        uri: impl Into<String>,
        mime_type: impl Into<String>,
        bytes: &[u8],
    ) -> ResourceContents {
        ResourceContents {
            uri: uri.into(),
            mime_type: Some(mime_type.into()),
            text: None,
            blob: Some(STANDARD.encode(bytes)),
        }
    }

    pub fn uri(&self) -> &str {
        &self.uri
    }
}

/// A tool's result: content blocks, optionally `structuredContent` (checked against the
/// tool's `outputSchema` when it declares one), and whether it reports a failure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ToolResult {
    content: Blocks,
    #[serde(rename = "structuredContent", skip_serializing_if = "Option::is_none")]
    structured: Option<Value>,
    #[serde(rename = "isError")]
    is_error: bool,
}

/// A result's blocks: most results have one, kept inline without a `Vec` (one allocation
/// fewer on every call; the result lives on the stack for the call's length only).
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::large_enum_variant)]
enum Blocks {
    One(Content),
    Many(Vec<Content>),
}

impl Blocks {
    fn as_slice(&self) -> &[Content] {
        match self {
            Blocks::One(one) => std::slice::from_ref(one),
            Blocks::Many(many) => many,
        }
    }
}

impl Serialize for Blocks {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.as_slice().serialize(serializer)
    }
}

impl ToolResult {
    /// A result of these blocks.
    pub fn new(content: Vec<Content>) -> ToolResult {
        ToolResult {
            content: Blocks::Many(content),
            structured: None,
            is_error: false,
        }
    }

    /// One block.
    fn one(content: Content) -> ToolResult {
        ToolResult {
            content: Blocks::One(content),
            structured: None,
            is_error: false,
        }
    }

    /// One text block.
    pub fn text(text: impl Into<String>) -> ToolResult {
        ToolResult::one(Content::text(text))
    }

    /// A failure the model can read (and try again): `isError: true` with this text.
    pub fn error(text: impl Into<String>) -> ToolResult {
        ToolResult {
            is_error: true,
            ..ToolResult::text(text)
        }
    }

    /// Structured content (which must fit the tool's `outputSchema`), with its JSON text
    /// as a text block for clients that read only `content`.
    pub fn structured(value: impl Serialize) -> ToolResult {
        match serde_json::to_value(value) {
            Ok(value) => {
                let text = value.to_string();
                ToolResult {
                    structured: Some(value),
                    ..ToolResult::text(text)
                }
            }
            Err(e) => ToolResult::error(format!("the tool's result cannot be serialized: {e}")),
        }
    }

    /// This result with one more block.
    pub fn with(mut self, content: Content) -> ToolResult {
        self.content = match self.content {
            Blocks::One(first) => Blocks::Many(vec![first, content]),
            Blocks::Many(mut many) => {
                many.push(content);
                Blocks::Many(many)
            }
        };
        self
    }

    pub fn content(&self) -> &[Content] {
        self.content.as_slice()
    }

    pub fn structured_content(&self) -> Option<&Value> {
        self.structured.as_ref()
    }

    pub fn is_error(&self) -> bool {
        self.is_error
    }
}

impl From<String> for ToolResult {
    fn from(text: String) -> ToolResult {
        ToolResult::text(text)
    }
}

impl From<&str> for ToolResult {
    fn from(text: &str) -> ToolResult {
        ToolResult::text(text)
    }
}

impl From<Content> for ToolResult {
    fn from(content: Content) -> ToolResult {
        ToolResult::one(content)
    }
}

impl From<Vec<Content>> for ToolResult {
    fn from(content: Vec<Content>) -> ToolResult {
        ToolResult::new(content)
    }
}

/// Who speaks a prompt message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// One message of a prompt.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PromptMessage {
    pub role: Role,
    pub content: Content,
}

impl PromptMessage {
    pub fn user(content: Content) -> PromptMessage {
        PromptMessage {
            role: Role::User,
            content,
        }
    }

    pub fn assistant(content: Content) -> PromptMessage {
        PromptMessage {
            role: Role::Assistant,
            content,
        }
    }
}

/// Why a handler failed. From a tool, the client gets a result with `isError: true` and
/// this message (so a model can read it); from a prompt or a resource, a JSON-RPC error.
/// Anything `Display` converts into one, so `?` works on `io::Error`, `String`, ….
pub struct HandlerError {
    message: String,
    kind: ErrorKind,
}

/// Which JSON-RPC error a prompt's or a resource's failure becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// `-32603`: the handler failed.
    Failed,
    /// `-32002`: no such resource (a template matched, but nothing is there).
    NotFound,
    /// `-32602`: the arguments were wrong.
    Invalid,
}

impl HandlerError {
    pub fn new(message: impl Into<String>) -> HandlerError {
        HandlerError {
            message: message.into(),
            kind: ErrorKind::Failed,
        }
    }

    /// The resource asked for does not exist (`-32002` from a resource reader).
    pub fn not_found(message: impl Into<String>) -> HandlerError {
        HandlerError {
            kind: ErrorKind::NotFound,
            ..HandlerError::new(message)
        }
    }

    /// The request's arguments are wrong (`-32602` from a prompt or a resource reader).
    pub fn invalid(message: impl Into<String>) -> HandlerError {
        HandlerError {
            kind: ErrorKind::Invalid,
            ..HandlerError::new(message)
        }
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn kind(&self) -> ErrorKind {
        self.kind
    }
}

// Not `Display` itself: the blanket conversion below would then cover `HandlerError`
// too and clash with `From<T> for T`.
impl<E: fmt::Display> From<E> for HandlerError {
    fn from(e: E) -> HandlerError {
        HandlerError::new(e.to_string())
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HandlerError({:?}: {})", self.kind, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_content_type_serializes_to_the_schema_shape() {
        let result = ToolResult::text("hi")
            .with(Content::image(b"\x89PNG", "image/png"))
            .with(Content::audio(b"RIFF", "audio/wav"))
            .with(Content::resource(ResourceContents::text(
                "test://r",
                "text/plain",
                "body",
            )))
            .with(Content::resource(ResourceContents::blob(
                "test://b",
                "application/octet-stream",
                &[0, 1, 2],
            )))
            .with(Content::link("test://l", "l"));
        assert_eq!(
            serde_json::to_value(&result).unwrap(),
            json!({
                "content": [
                    {"type": "text", "text": "hi"},
                    {"type": "image", "data": "iVBORw==", "mimeType": "image/png"},
                    {"type": "audio", "data": "UklGRg==", "mimeType": "audio/wav"},
                    {"type": "resource", "resource": {"uri": "test://r", "mimeType": "text/plain", "text": "body"}},
                    {"type": "resource", "resource": {"uri": "test://b", "mimeType": "application/octet-stream", "blob": "AAEC"}},
                    {"type": "resource_link", "uri": "test://l", "name": "l"},
                ],
                "isError": false
            })
        );
    }

    #[test]
    fn structured_results_carry_their_json_as_text_too() {
        let result = ToolResult::structured(json!({"sum": 3}));
        assert_eq!(
            serde_json::to_value(&result).unwrap(),
            json!({"content": [{"type": "text", "text": "{\"sum\":3}"}],
                   "structuredContent": {"sum": 3}, "isError": false})
        );
    }

    #[test]
    fn anything_displayable_is_a_handler_error() {
        fn fails() -> Result<(), HandlerError> {
            Err(std::io::Error::other("disk on fire"))?;
            Ok(())
        }
        let e = fails().unwrap_err();
        assert_eq!((e.message(), e.kind()), ("disk on fire", ErrorKind::Failed));
        let e: HandlerError = "plain".into();
        assert_eq!(e.message(), "plain");
        assert_eq!(HandlerError::not_found("x").kind(), ErrorKind::NotFound);
    }
}
