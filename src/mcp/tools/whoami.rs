//! `whoami`: the identity the server thinks is calling, so an operator can check from
//! Plural Flows which identity arrived.

use serde_json::json;

use super::Tool;
use crate::identity::Caller;

pub const TOOL: Tool = Tool {
    name: "whoami",
    description: "Reports the identity this server sees for the caller: subject, email and groups.",
    input_schema: || json!({ "type": "object", "properties": {} }),
    call: |_args, call| {
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
};
