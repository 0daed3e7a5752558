//! Chat templates: the GGUF's own `tokenizer.chat_template`, rendered with minijinja the way
//! Hugging Face renders them (trim_blocks, lstrip_blocks, Python string methods).
//! A GGUF without a template gets its architecture's official one (Gemma 3's GGUF ships none).

use minijinja::{context, Environment, Error, ErrorKind};
use serde::Serialize;

use super::error::{EngineError, Result};

/// Gemma 3's template from its Hugging Face tokenizer config, text-only parts.
pub const GEMMA3_TEMPLATE: &str = r#"{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {{- message['content'] | trim }}
    {{- '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"#;

/// ChatML, the fallback for any other GGUF without a template.
pub const CHATML_TEMPLATE: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl Message {
    pub fn user(content: &str) -> Self {
        Message {
            role: "user".into(),
            content: content.into(),
        }
    }
}

pub fn render(
    template: &str,
    messages: &[Message],
    bos_token: &str,
    eos_token: &str,
    add_generation_prompt: bool,
) -> Result<String> {
    let mut env = Environment::new();
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(|e| EngineError::ChatTemplate(e.to_string()))?;
    env.set_syntax(syntax);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |msg: String| -> std::result::Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        },
    );
    env.add_template("chat", template)
        .map_err(|e| EngineError::ChatTemplate(e.to_string()))?;
    let tmpl = env
        .get_template("chat")
        .map_err(|e| EngineError::ChatTemplate(e.to_string()))?;
    tmpl.render(context! {
        messages => minijinja::Value::from(minijinja::value::Serde(messages)),
        bos_token => bos_token,
        eos_token => eos_token,
        add_generation_prompt => add_generation_prompt,
    })
    .map_err(|e| EngineError::ChatTemplate(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemma_fallback_renders_official_format() {
        let s = render(
            GEMMA3_TEMPLATE,
            &[Message::user("  Hi there ")],
            "<bos>",
            "<eos>",
            true,
        )
        .unwrap();
        assert_eq!(
            s,
            "<bos><start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n"
        );
    }

    #[test]
    fn chatml_renders() {
        let s = render(CHATML_TEMPLATE, &[Message::user("Hi")], "", "", true).unwrap();
        assert_eq!(s, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    }

    #[test]
    fn template_errors_are_reported_not_panics() {
        let e = render("{% for %}", &[Message::user("x")], "", "", true).unwrap_err();
        assert!(e.to_string().starts_with("chat template:"));
        let e = render(
            GEMMA3_TEMPLATE,
            &[Message {
                role: "assistant".into(),
                content: "x".into(),
            }],
            "",
            "",
            true,
        )
        .unwrap_err();
        assert!(e.to_string().contains("alternate"), "{e}");
    }
}
