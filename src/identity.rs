//! Who is calling: the identity a request arrived with, as tools see it.
//!
//! While authentication is off every caller is `Anonymous`; with it on, the verified
//! token's claims become an `Identity`.

/// The caller behind a session or request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Authentication is off (`JWT_AUTH_ENABLED` unset or false).
    Anonymous,
    /// A verified token's subject.
    User(Identity),
}

/// The claims of a verified token that say who someone is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub issuer: Option<String>,
    pub subject: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub groups: Vec<String>,
}

impl Caller {
    /// Whether this caller is the principal `issuer` + `subject`.
    pub fn is(&self, issuer: Option<&str>, subject: &str) -> bool {
        match self {
            Caller::Anonymous => false,
            Caller::User(id) => id.issuer.as_deref() == issuer && id.subject == subject,
        }
    }

    /// The subject for log lines: `-` when anonymous.
    pub fn subject(&self) -> &str {
        match self {
            Caller::Anonymous => "-",
            Caller::User(id) => &id.subject,
        }
    }
}
