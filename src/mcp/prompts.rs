//! The prompts this server offers. Each is a `Prompt`; registering one is a line in `PROMPTS`.

use serde_json::{Map, Value, json};

/// Every prompt, in the order `prompts/list` shows them.
pub static PROMPTS: &[Prompt] = &[ECHO];

pub struct Prompt {
    pub name: &'static str,
    pub description: &'static str,
    /// `(name, description, required)` for each argument.
    pub arguments: &'static [(&'static str, &'static str, bool)],
    /// The messages for the given arguments; required ones are checked before this runs.
    pub render: fn(&Map<String, Value>) -> Vec<Value>,
}

pub fn find(name: &str) -> Option<&'static Prompt> {
    PROMPTS.iter().find(|p| p.name == name)
}

impl Prompt {
    /// The `prompts/list` entry.
    pub fn listing(&self) -> Value {
        let args: Vec<Value> = self
            .arguments
            .iter()
            .map(|(name, description, required)| {
                json!({ "name": name, "description": description, "required": required })
            })
            .collect();
        json!({ "name": self.name, "description": self.description, "arguments": args })
    }

    /// Checks `args` (prompt arguments are strings) and renders the messages, or says which
    /// argument is missing or wrong.
    pub fn get(&self, args: &Map<String, Value>) -> Result<Vec<Value>, String> {
        for (name, _, required) in self.arguments {
            match args.get(*name) {
                Some(Value::String(_)) => {}
                None if !required => {}
                None => {
                    return Err(format!(
                        "prompt \"{}\" needs argument \"{name}\"",
                        self.name
                    ));
                }
                Some(_) => return Err(format!("prompt argument \"{name}\" must be a string")),
            }
        }
        Ok((self.render)(args))
    }
}

const ECHO: Prompt = Prompt {
    name: "echo",
    description: "Asks the model to process a message.",
    arguments: &[("message", "The message to process", true)],
    render: |args| {
        let message = args
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        vec![json!({
            "role": "user",
            "content": { "type": "text", "text": format!("Please process this message: {message}") }
        })]
    },
};
