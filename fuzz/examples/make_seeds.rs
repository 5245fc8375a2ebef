//! Writes the hand-made seed corpus under `fuzz/seeds/<target>/` (run from `fuzz/`):
//! `cargo +nightly run --example make_seeds`. The tokens are signed with the fixed keys of
//! `src/lib.rs`, so they stay valid as long as those keys do.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};
use warden_fuzz::{Alg, b64, good_claims, jwks_json, sign_parts, token};

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("seeds").join(target);
    fs::create_dir_all(&dir).expect("mkdir");
    fs::write(dir.join(name), bytes).expect("write seed");
}

fn with(control: u8, rest: &[u8]) -> Vec<u8> {
    let mut v = vec![control];
    v.extend_from_slice(rest);
    v
}

fn lines(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        out.extend_from_slice(v.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

fn post(path: &str, auth: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

fn main() {
    // token
    let rs = token(Alg::Rs256, &good_claims());
    let es_plural = sign_parts(
        Alg::Es256,
        br#"{"alg":"ES256","typ":"JWT"}"#,
        json!({"sub":"alice","groups":["sre"],"exp":1_800_003_600u64,"iat":1_800_000_000u64,
               "nbf":1_800_000_000u64,"iss":"Joken","aud":"Joken","kid":"in-claims"})
        .to_string()
        .as_bytes(),
    );
    write("token", "raw-rs256", &with(0x00, rs.as_bytes()));
    write(
        "token",
        "raw-es256-no-kid",
        &with(0x00, es_plural.as_bytes()),
    );
    write(
        "token",
        "raw-rs256-strict-policy",
        &with(0x30, rs.as_bytes()),
    );
    write(
        "token",
        "raw-alg-none",
        &with(0x00, b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.AAAA"),
    );
    write(
        "token",
        "bearer-es256",
        &with(0x01, format!("Bearer {es_plural}").as_bytes()),
    );
    write("token", "bearer-basic", &with(0x01, b"Basic dXNlcjpwYXNz"));
    let claims = good_claims().to_string();
    let mut parts = br#"{"alg":"ES256","typ":"JWT","kid":"e1"}"#.to_vec();
    parts.push(0);
    parts.extend_from_slice(claims.as_bytes());
    write("token", "parts-es256", &with(0x02, &parts));
    let mut parts = br#"{"alg":"RS256","typ":"at+jwt"}"#.to_vec();
    parts.push(0);
    parts.extend_from_slice(br#"{"sub":"s","exp":1800000100,"aud":["x","Joken"],"groups":[]}"#);
    write("token", "parts-rs256-aud-array", &with(0x26, &parts));
    let mut parts = br#"{"alg":"RS256","kid":"e1"}"#.to_vec();
    parts.push(0);
    parts.extend_from_slice(claims.as_bytes());
    write("token", "parts-kid-type-mismatch", &with(0x06, &parts));
    let input = format!(
        "{}.{}",
        b64(br#"{"alg":"ES256"}"#),
        b64(br#"{"sub":"a","exp":1800000001,"nbf":1e3,"iat":-1}"#)
    );
    write(
        "token",
        "signing-input-es256",
        &with(0x03, input.as_bytes()),
    );

    // jwks
    write("jwks", "fixed", jwks_json().as_bytes());
    write(
        "jwks",
        "mixed",
        json!({"keys":[
            {"kty":"oct","k":"c2VjcmV0"},
            {"kty":"EC","crv":"P-384","x":"AA","y":"AA"},
            {"kty":"RSA","n":"AQAB","e":"AQAB","use":"enc"},
            {"kty":"EC","crv":"P-256","kid":"g",
             "x":"axfR8uEsQkf4vOblY6RA8ncDfYEt6zOg9KE5RdiYwpY",
             "y":"T-NC4v4af5uO5-tKfA-eFivOM1drMV7Oy7ZAaDe_UfU","key_ops":["verify"]},
            {"kty":"RSA","kid":"rfc","alg":"RS256","e":"AQAB",
             "n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"},
            1, null, "x"
        ]})
        .to_string()
        .as_bytes(),
    );
    write("jwks", "not-a-jwks", br#"{"keys":{}}"#);

    // jsonrpc
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize",
        "params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}});
    let initialized = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    write(
        "jsonrpc",
        "handshake-then-list",
        &with(
            0x00,
            &lines(&[
                init.clone(),
                initialized.clone(),
                json!({"jsonrpc":"2.0","id":"t","method":"tools/list"}),
                json!({"jsonrpc":"2.0","id":2,"method":"initialize","params":{"protocolVersion":"x"}}),
            ]),
        ),
    );
    write(
        "jsonrpc",
        "tools-call",
        &with(
            0x09,
            &lines(&[
                json!({"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"}}}),
                json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"message":7}}}),
                json!({"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"nope"}}),
            ]),
        ),
    );
    write(
        "jsonrpc",
        "whoami-user",
        &with(
            0x19,
            &lines(&[
                json!({"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"whoami","arguments":null}}),
            ]),
        ),
    );
    write(
        "jsonrpc",
        "batch-2025-03-26",
        &with(
            0x03,
            &lines(&[json!([
                {"jsonrpc":"2.0","id":7,"method":"ping"},
                {"jsonrpc":"2.0","id":8,"method":"prompts/get","params":{"name":"echo","arguments":{"message":"m"}}},
                {"jsonrpc":"2.0","id":9,"method":"resources/read","params":{"uri":"echo://a%20b%ff"}},
                {"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":7}},
                {"jsonrpc":"2.0","id":10,"result":{}}
            ])]),
        ),
    );
    write(
        "jsonrpc",
        "catalog",
        &with(
            0x02,
            &lines(&[
                json!({"jsonrpc":"2.0","id":11,"method":"resources/list"}),
                json!({"jsonrpc":"2.0","id":12,"method":"resources/templates/list"}),
                json!({"jsonrpc":"2.0","id":13,"method":"prompts/list"}),
                json!({"jsonrpc":"2.0","id":14,"method":"logging/setLevel","params":{"level":"warning"}}),
                json!({"jsonrpc":"2.0","id":15,"method":"logging/setLevel","params":{"level":"loud"}}),
            ]),
        ),
    );
    write(
        "jsonrpc",
        "invalid",
        &with(
            0x00,
            br#"{"jsonrpc":"2.0","id":1.5,"method":"x"} {"jsonrpc":"1.0","id":"a"} {"id":null,"method":7} [] 42 {"jsonrpc":"2.0","id":-1,"method":"ping","params":[1]} {"#,
        ),
    );

    // http: byte 0 bit 0 = guarded server; @S session, @T/@E good tokens, @G outsider, @X expired
    let init_body = init.to_string();
    let get = "GET /sse HTTP/1.1\r\nHost: x\r\n\r\n";
    write("http", "open-sse", &with(0x00, get.as_bytes()));
    write(
        "http",
        "open-post-initialize",
        &with(
            0x00,
            post("/messages?sessionId=@S", "", &init_body).as_bytes(),
        ),
    );
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let chunked = format!(
        "POST /messages?sessionId=@S HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{list}\r\n0\r\nX-Trailer: y\r\n\r\n",
        list.len()
    );
    write("http", "open-post-chunked", &with(0x00, chunked.as_bytes()));
    write(
        "http",
        "open-pipelined-probes",
        &with(
            0x00,
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nHEAD /readyz HTTP/1.1\r\n\r\nGET /nope?a=b HTTP/1.1\r\n\r\nPUT /sse HTTP/1.1\r\nContent-Length: 1\r\n\r\nx",
        ),
    );
    let expect = format!(
        "POST /messages?sessionId=@S HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n{list}",
        list.len()
    );
    write(
        "http",
        "open-expect-continue",
        &with(0x00, expect.as_bytes()),
    );
    write(
        "http",
        "open-http10",
        &with(
            0x00,
            b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /sse HTTP/1.0\r\n\r\n",
        ),
    );
    let deep = format!("{}{}", "[".repeat(120), "]".repeat(120));
    write(
        "http",
        "open-deep-json",
        &with(0x00, post("/messages?sessionId=@S", "", &deep).as_bytes()),
    );
    write(
        "http",
        "open-bad-framing",
        &with(
            0x00,
            b"POST /messages?sessionId=@S HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
    );
    write(
        "http",
        "guarded-sse",
        &with(
            0x01,
            b"GET /sse HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer @T\r\n\r\n",
        ),
    );
    let whoami = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"whoami"}}"#;
    write(
        "http",
        "guarded-post-es256",
        &with(
            0x01,
            post(
                "/messages?sessionId=@S",
                "Authorization: bearer @E\r\n",
                whoami,
            )
            .as_bytes(),
        ),
    );
    write(
        "http",
        "guarded-refusals",
        &with(
            0x01,
            b"GET /sse HTTP/1.1\r\nAuthorization: Bearer @G\r\n\r\nGET /sse HTTP/1.1\r\nAuthorization: Bearer @X\r\n\r\nGET /sse HTTP/1.1\r\nAuthorization: Bearer @T\r\nAuthorization: Bearer @T\r\n\r\nGET /sse HTTP/1.1\r\n\r\n",
        ),
    );
    write(
        "http",
        "guarded-readyz",
        &with(0x01, b"GET /readyz HTTP/1.1\r\n\r\n"),
    );
    // /mcp: Streamable HTTP (2025) and the stateless 2026-07-28 revision
    let mcp_post = |auth: &str, headers: &str, body: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: x\r\n{auth}{headers}Accept: application/json, text/event-stream\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    write(
        "http",
        "open-mcp-initialize",
        &with(0x00, mcp_post("", "", &init_body).as_bytes()),
    );
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}},
    });
    let modern = |id: u32, method: &str, mut params: Value| {
        params["_meta"] = meta.clone();
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
    };
    let call = modern(
        4,
        "tools/call",
        json!({"name": "echo", "arguments": {"message": "hi"}}),
    );
    write(
        "http",
        "open-mcp-modern-call",
        &with(
            0x00,
            mcp_post(
                "",
                "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: echo\r\n",
                &call,
            )
            .as_bytes(),
        ),
    );
    write(
        "http",
        "guarded-mcp-modern-discover",
        &with(
            0x01,
            mcp_post(
                "Authorization: Bearer @E\r\n",
                "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: server/discover\r\n",
                &modern(5, "server/discover", json!({})),
            )
            .as_bytes(),
        ),
    );
    let ask = modern(
        6,
        "tools/call",
        json!({"name": "ask", "arguments": {"question": "?"}}),
    );
    write(
        "http",
        "open-mcp-modern-ask",
        &with(
            0x00,
            mcp_post(
                "",
                "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\nMcp-Name: =?base64?YXNr?=\r\n",
                &ask,
            )
            .as_bytes(),
        ),
    );
    let listen = modern(
        7,
        "subscriptions/listen",
        json!({"notifications": {"toolsListChanged": true, "resourceSubscriptions": ["echo://hello"]}}),
    );
    write(
        "http",
        "open-mcp-modern-listen",
        &with(
            0x00,
            mcp_post(
                "",
                "MCP-Protocol-Version: 2026-07-28\r\nMcp-Method: subscriptions/listen\r\n",
                &listen,
            )
            .as_bytes(),
        ),
    );
    write(
        "http",
        "open-mcp-get-delete",
        &with(
            0x00,
            b"GET /mcp HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nMcp-Session-Id: nope\r\n\r\nDELETE /mcp HTTP/1.1\r\nHost: x\r\nMcp-Session-Id: nope\r\n\r\nGET /.well-known/oauth-protected-resource HTTP/1.1\r\n\r\n",
        ),
    );
    write(
        "http",
        "open-options",
        &with(
            0x00,
            b"OPTIONS /sse HTTP/1.1\r\nHost: x\r\n\r\nOPTIONS /mcp HTTP/1.1\r\nHost: x\r\nOrigin: http://x\r\nAccess-Control-Request-Method: POST\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
    );
    println!("seeds written");
}
