//! Chat templates: the GGUF's own `tokenizer.chat_template`, rendered with minijinja the way
//! Hugging Face renders them (trim_blocks, lstrip_blocks, Python string methods).
//! A GGUF without a template gets its architecture's official one (Gemma 3's GGUF ships none).
//!
//! A template is code from a file someone downloaded. It runs on a budget: minijinja's fuel
//! bounds both the steps and the data it makes (one fuel per instruction or per 64 bytes), and
//! the rendered text is capped, so nested loops, `"x" * n` or recursion end in a plain error
//! instead of a hung worker or an exhausted heap.

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

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
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

/// Work a template may do for one rendering: real templates (Qwen2.5's with its tool branches)
/// use a few thousand fuel per message; this leaves room for long conversations and bounds a
/// hostile template to well under a second and about 64 MB of data.
pub const TEMPLATE_FUEL: u64 = 1_000_000;

/// The widest indent the `tojson` filter takes.
const MAX_JSON_INDENT: i64 = 16;

/// The rendered prompt may be this much longer than the messages it wraps.
const RENDERED_SLACK: usize = 64 * 1024;

pub fn render(
    template: &str,
    messages: &[Message],
    bos_token: &str,
    eos_token: &str,
    add_generation_prompt: bool,
) -> Result<String> {
    let mut env = Environment::new();
    env.set_fuel(Some(TEMPLATE_FUEL));
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
    // minijinja builds `tojson`'s text before it charges fuel for it: `indent=1000000000`
    // wrote gigabytes first. The indent real templates use is 2 or 4.
    env.add_filter(
        "tojson",
        |value: &minijinja::Value,
         indent: Option<minijinja::Value>,
         args: minijinja::value::Kwargs|
         -> std::result::Result<minijinja::Value, Error> {
            let asked = match &indent {
                Some(v) => Some(v.clone()),
                None => args.get::<Option<minijinja::Value>>("indent")?,
            };
            let width = asked.and_then(|v| i64::try_from(v).ok());
            if let Some(n) = width.filter(|&n| !(0..=MAX_JSON_INDENT).contains(&n)) {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("tojson's indent of {n} is outside 0 to {MAX_JSON_INDENT}"),
                ));
            }
            minijinja::filters::tojson(value, indent, args)
        },
    );
    env.add_template("chat", template)
        .map_err(|e| EngineError::ChatTemplate(e.to_string()))?;
    let tmpl = env
        .get_template("chat")
        .map_err(|e| EngineError::ChatTemplate(e.to_string()))?;
    let rendered = tmpl
        .render(context! {
            messages => minijinja::Value::from(minijinja::value::Serde(messages)),
            bos_token => bos_token,
            eos_token => eos_token,
            add_generation_prompt => add_generation_prompt,
        })
        .map_err(|e| match e.kind() {
            ErrorKind::OutOfFuel => EngineError::ChatTemplate(format!(
                "the model's chat template ran too long (more than {TEMPLATE_FUEL} steps or \
                 about {} MB of text), so it was stopped; untick \"chat\" to send the prompt \
                 as plain text",
                (TEMPLATE_FUEL * 64) >> 20
            )),
            _ => EngineError::ChatTemplate(e.to_string()),
        })?;
    let wrapped: usize = messages
        .iter()
        .map(|m| m.content.len() + m.role.len())
        .sum();
    let cap = wrapped.saturating_mul(2).saturating_add(RENDERED_SLACK);
    if rendered.len() > cap {
        return Err(EngineError::ChatTemplate(format!(
            "the model's chat template produced {} bytes for {wrapped} bytes of messages (at \
             most {cap} are allowed); untick \"chat\" to send the prompt as plain text",
            rendered.len()
        )));
    }
    Ok(rendered)
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

    /// Hostile templates end in a named error, quickly, whatever they try.
    #[test]
    fn hostile_templates_run_out_of_fuel_or_room() {
        let cases = [
            // Nested loops: 10^15 steps.
            "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}x{% endfor %}{% endfor %}{% endfor %}",
            // String multiplication, repeated.
            "{% set s = 'abcdefgh' * 10000000 %}{{ s * 10 }}",
            "{% set ns = namespace(s='x') %}{% for i in range(100000) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
            // Recursion.
            "{% macro f(n) %}{{ f(n + 1) }}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
            // Output far beyond the messages.
            "{% for i in range(60000) %}{{ messages[0]['content'] }}{% endfor %}",
            // A filter whose text is built before fuel is charged for it (5.8 GB).
            "{{ messages|tojson(indent=1000000000) }}",
            "{{ messages|tojson(1000000000) }}",
            // The other filter that takes a width.
            "{{ 'x\ny'|indent(1000000000, true) }}",
        ];
        for t in cases {
            let start = std::time::Instant::now();
            let e = render(t, &[Message::user("hello")], "", "", true)
                .expect_err(&format!("template {t} should fail"));
            let secs = start.elapsed().as_secs_f64();
            let msg = e.to_string();
            // Fuel makes the failure certain; the bound only catches a hang.
            assert!(secs < 10.0, "{t}: took {secs:.2} s");
            assert!(msg.starts_with("chat template:"), "{t}: {msg}");
            assert!(
                msg.contains("ran too long")
                    || msg.contains("indent of")
                    || msg.contains("produced")
                    || msg.contains("too large")
                    || msg.contains("recursion"),
                "{t}: {msg}"
            );
        }
    }

    /// `tojson` as real templates use it still works.
    #[test]
    fn tojson_keeps_its_small_indents() {
        for t in [
            "{{ messages|tojson }}",
            "{{ messages|tojson(indent=2) }}",
            "{{ messages|tojson(4) }}",
        ] {
            let s = render(t, &[Message::user("hi")], "", "", true).unwrap();
            assert!(
                s.contains("\"content\":") || s.contains("\"content\": "),
                "{t}: {s}"
            );
        }
    }

    #[test]
    fn long_conversations_fit_the_budget() {
        // A real template over a 200 kB message renders: the budget must not refuse real use.
        let long = "word ".repeat(40_000);
        let s = render(CHATML_TEMPLATE, &[Message::user(&long)], "", "", true).unwrap();
        assert!(s.len() > long.len());
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
