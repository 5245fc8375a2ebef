//! `whoami`: the identity the server thinks is calling, so an operator can check from
//! Plural Flows which identity arrived.

use serde_json::json;

use crate::identity::Caller;
use crate::{NoArgs, Tool};

pub fn tool() -> Tool {
    Tool::new(
        "whoami",
        "Reports the identity this server sees for the caller: subject, email and groups.",
        json!({ "type": "object", "properties": {} }),
        |_: NoArgs, call| {
            let report = match call.caller() {
                Caller::Anonymous => json!({
                    "subject": "anonymous",
                    "authenticated": false,
                    "note": "authentication is off (JWT_AUTH_ENABLED is not true)"
                }),
                Caller::User(id) => json!({
                    "subject": id.subject,
                    "authenticated": true,
                    "issuer": id.issuer,
                    "email": id.email,
                    "name": id.name,
                    "groups": id.groups,
                }),
            };
            Ok(report.to_string())
        },
    )
}
