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

use super::clock::Clock;
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

/// For a file with no template and no ChatML tokens (a base model such as GPT-2): the
/// messages' texts one after another, a blank line before each but the first, and nothing to
/// open the reply, which continues the text. A reply follows its message as it was written,
/// with no blank line, so the next turn's render starts with what the model last read.
pub const PLAIN_TEMPLATE: &str = "{% for message in messages %}{% if not loop.first and message['role'] != 'assistant' %}{{ '\n\n' }}{% endif %}{{ message['content'] }}{% endfor %}";

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

/// Longest chat template read (real ones are 1-20 KB).
pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;

/// Longest code in one tag (`{{ … }}` or `{% … %}`), its string literals not counted. The
/// parser recurses once per operator or filter in a chain, so a tag of 30,000 minus signs
/// overflowed the stack before fuel could stop anything; real tags are under 400.
pub const MAX_TAG_CODE: usize = 2000;

/// Deepest nesting of lists and maps that a size check walks: deeper is refused.
const MAX_VALUE_DEPTH: usize = 64;

/// Refuses what the template compiler cannot be trusted with: a template too long, or a tag
/// whose code (not its string literals) is too long.
fn check_template_shape(template: &str) -> Result<()> {
    let refuse = |why: String| {
        Err(EngineError::ChatTemplate(format!(
            "{why}; untick \"chat\" (or leave out --chat) to send the prompt as plain \
             text"
        )))
    };
    if template.len() > MAX_TEMPLATE_BYTES {
        return refuse(format!(
            "the model's chat template is {} bytes long (at most {MAX_TEMPLATE_BYTES})",
            template.len()
        ));
    }
    let mut rest = template;
    while let Some(open) = rest.find(['{']) {
        let after = &rest[open + 1..];
        let close = match after.chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            _ => {
                rest = after;
                continue;
            }
        };
        let body = &after[1..];
        // Code up to the closing delimiter outside string literals.
        let (mut code, mut quote, mut escaped, mut end) = (0usize, None::<char>, false, body.len());
        for (i, c) in body.char_indices() {
            match quote {
                Some(q) => {
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == q {
                        quote = None;
                    }
                }
                None => {
                    if body[i..].starts_with(close) {
                        end = i;
                        break;
                    }
                    if c == '\'' || c == '"' {
                        quote = Some(c);
                    } else if !c.is_whitespace() {
                        code += 1;
                    }
                }
            }
        }
        if code > MAX_TAG_CODE {
            return refuse(format!(
                "the model's chat template has a tag of {code} characters of code (at most \
                 {MAX_TAG_CODE})"
            ));
        }
        rest = &body[(end + close.len()).min(body.len())..];
    }
    Ok(())
}

/// Hugging Face's `{% generation %}` block (it marks assistant text for training masks) renders
/// its body; minijinja has no such tag, so each becomes `{% if true %}`, and its end
/// `{% endif %}`, with the same whitespace control.
fn without_generation_tags(template: &str) -> std::borrow::Cow<'_, str> {
    if !template.contains("generation") {
        return template.into();
    }
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{%") {
        out.push_str(&rest[..open]);
        let tag = &rest[open..];
        let Some(close) = tag.find("%}") else {
            // An unclosed tag: left as it stands, for the compiler to name.
            rest = tag;
            break;
        };
        let inner = &tag[2..close];
        let (lead, body) = match inner.strip_prefix(['-', '+']) {
            Some(b) => (&inner[..1], b),
            None => ("", inner),
        };
        let (body, trail) = match body.strip_suffix(['-', '+']) {
            Some(b) => (b, &body[body.len() - 1..]),
            None => (body, ""),
        };
        let word = match body.trim() {
            "generation" => Some("if true"),
            "endgeneration" => Some("endif"),
            _ => None,
        };
        match word {
            Some(w) => out.push_str(&format!("{{%{lead} {w} {trail}%}}")),
            None => out.push_str(&tag[..close + 2]),
        }
        rest = &tag[close + 2..];
    }
    out.push_str(rest);
    out.into()
}

/// Whether `v`, written out as text or JSON, would take more than `budget` bytes. Walked with
/// the budget, so a list that holds one large list a million times over (each a reference
/// to the same one, cheap to make) is stopped after a few of them, before minijinja builds
/// its text and charges fuel for it afterwards.
fn too_large(v: &minijinja::Value, budget: &mut usize, depth: usize) -> bool {
    use minijinja::value::ValueKind;
    let own = v.as_str().map_or(8, |s| s.len() + 2);
    if own > *budget || depth > MAX_VALUE_DEPTH {
        return true;
    }
    *budget -= own;
    match v.kind() {
        ValueKind::Seq | ValueKind::Iterable => v.try_iter().is_ok_and(|items| {
            for x in items {
                if too_large(&x, budget, depth + 1) {
                    return true;
                }
            }
            false
        }),
        ValueKind::Map => v.try_iter().is_ok_and(|keys| {
            for k in keys {
                if too_large(&k, budget, depth + 1)
                    || v.get_item(&k)
                        .is_ok_and(|x| too_large(&x, budget, depth + 1))
                {
                    return true;
                }
            }
            false
        }),
        _ => false,
    }
}

/// The error for a value too large to write out.
fn too_large_error(what: &str, cap: usize) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("{what} would write more than {cap} bytes"),
    )
}

/// The longest `strftime_now` format taken.
const MAX_STRFTIME_FORMAT: usize = 256;

/// Refuses a Python `str.format` width or precision over this many characters.
const MAX_FORMAT_WIDTH: u64 = 10_000;

/// The widths and precisions a `str.format` string asks for (`'{:>10000000000}'` pads to ten
/// gigabytes before anything is charged).
fn widest_format_spec(s: &str) -> u64 {
    let mut widest = 0u64;
    for part in s.split('{').skip(1) {
        let field = part.split('}').next().unwrap_or("");
        if let Some((_, spec)) = field.split_once(':') {
            let mut n: u64 = 0;
            for c in spec.chars() {
                match c.to_digit(10) {
                    Some(d) => n = n.saturating_mul(10).saturating_add(u64::from(d)),
                    None => {
                        widest = widest.max(n);
                        n = 0;
                    }
                }
            }
            widest = widest.max(n);
        }
    }
    widest
}

/// Longest a rendering may run natively. Fuel does not count everything minijinja does: a
/// list doubled 32 times by `+` stays lazy and cheap, and then `[-1]` walks its 4 billion
/// items (minutes), or doubled further it is copied out whole (gigabytes), with no fuel
/// charged. Real templates render in under a millisecond.
#[cfg(not(target_arch = "wasm32"))]
pub const TEMPLATE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);

/// Renders the conversation with the model's template. Natively on a thread of its own, given
/// up after [`TEMPLATE_DEADLINE`] (the thread is left to the process's end, which the command
/// line reaches at once); in the browser the page ends a worker that does not answer Stop.
pub fn render(
    template: &str,
    messages: &[Message],
    bos_token: &str,
    eos_token: &str,
    add_generation_prompt: bool,
    now: Option<Clock>,
) -> Result<String> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::mpsc::{channel, RecvTimeoutError};
        let owned = (
            template.to_owned(),
            messages.to_vec(),
            bos_token.to_owned(),
            eos_token.to_owned(),
        );
        let (tx, rx) = channel();
        let spawned = std::thread::Builder::new()
            .name("chat-template".into())
            // As deep as the main thread's: the parser recurses once per operator.
            .stack_size(8 << 20)
            .spawn(move || {
                let (t, m, b, e) = owned;
                let _ = tx.send(render_now(&t, &m, &b, &e, add_generation_prompt, now));
            });
        if spawned.is_ok() {
            return match rx.recv_timeout(TEMPLATE_DEADLINE) {
                Ok(rendered) => rendered,
                Err(RecvTimeoutError::Timeout) => Err(EngineError::ChatTemplate(format!(
                    "the model's chat template ran for more than {} s, so it was given up; \
                     untick \"chat\" (or leave out --chat) to send the prompt as plain text",
                    TEMPLATE_DEADLINE.as_secs()
                ))),
                Err(RecvTimeoutError::Disconnected) => Err(EngineError::ChatTemplate(
                    "the model's chat template failed while rendering".into(),
                )),
            };
        }
    }
    render_now(
        template,
        messages,
        bos_token,
        eos_token,
        add_generation_prompt,
        now,
    )
}

fn render_now(
    template: &str,
    messages: &[Message],
    bos_token: &str,
    eos_token: &str,
    add_generation_prompt: bool,
    now: Option<Clock>,
) -> Result<String> {
    check_template_shape(template)?;
    let template = &without_generation_tags(template);
    let wrapped: usize = messages
        .iter()
        .map(|m| m.content.len() + m.role.len())
        .sum();
    let cap = wrapped.saturating_mul(2).saturating_add(RENDERED_SLACK);
    let mut env = Environment::new();
    env.set_fuel(Some(TEMPLATE_FUEL));
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(|e| EngineError::ChatTemplate(e.to_string()))?;
    env.set_syntax(syntax);
    env.set_unknown_method_callback(|state, value, method, args| {
        if method == "format" {
            if let Some(w) = value
                .as_str()
                .map(widest_format_spec)
                .filter(|&w| w > MAX_FORMAT_WIDTH)
            {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("a format width of {w} (at most {MAX_FORMAT_WIDTH})"),
                ));
            }
        }
        minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args)
    });
    // Lists and maps are written out (`{{ x }}`, the text-making filters below, `|tojson`)
    // only when their text fits what the rendering may hold.
    env.set_formatter(move |out, state, value| {
        if value.as_object().is_some() && too_large(value, &mut cap.clone(), 0) {
            return Err(too_large_error("writing a list or map", cap));
        }
        minijinja::escape_formatter(out, state, value)
    });
    // Filters that make text of what they are given: a list or map is written out whole
    // first (a million references to one 10 KB string: 10 GB), so it is measured before.
    // `~` and `in` on such a list cannot be reached from here.
    use minijinja::{filters as f, Value as V};
    let text_filters = [
        ("lower", V::from_function(f::lower)),
        ("upper", V::from_function(f::upper)),
        ("title", V::from_function(f::title)),
        ("capitalize", V::from_function(f::capitalize)),
        ("trim", V::from_function(f::trim)),
        ("replace", V::from_function(f::replace)),
        ("join", V::from_function(f::join)),
        ("safe", V::from_function(f::safe)),
        ("escape", V::from_function(f::escape)),
        ("format", V::from_function(f::format)),
        ("string", V::from_function(f::string)),
        ("pprint", V::from_function(f::pprint)),
        ("e", V::from_function(f::escape)),
    ];
    for (name, builtin) in text_filters {
        env.add_filter(
            name,
            move |state: &mut minijinja::State,
                  args: minijinja::value::Rest<minijinja::Value>,
                  kwargs: minijinja::value::Kwargs|
                  -> std::result::Result<minijinja::Value, Error> {
                if args
                    .iter()
                    .any(|a| a.as_object().is_some() && too_large(a, &mut cap.clone(), 0))
                {
                    return Err(too_large_error(name, cap));
                }
                let mut all = args.0;
                if kwargs.args().next().is_some() {
                    all.push(minijinja::Value::from(kwargs));
                }
                builtin.call(state, &all)
            },
        );
    }
    // Jinja2's `iterable` is false for none (minijinja's is true): templates ask
    // `tools is iterable and tools | length > 0`, and none has no length.
    env.add_test("iterable", |v: &minijinja::Value| {
        !v.is_none() && (v.is_undefined() || v.try_iter().is_ok())
    });
    // Hugging Face's and llama.cpp's: templates put today's date in the system prompt.
    if let Some(now) = now {
        env.add_function(
            "strftime_now",
            move |format: String| -> std::result::Result<String, Error> {
                // Real formats are a few characters; the text is built before fuel is charged.
                if format.len() > MAX_STRFTIME_FORMAT {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        format!(
                            "strftime_now's format is {} bytes long (at most \
                             {MAX_STRFTIME_FORMAT})",
                            format.len()
                        ),
                    ));
                }
                Ok(now.strftime(&format))
            },
        );
    }
    env.add_function(
        "raise_exception",
        |msg: String| -> std::result::Result<String, Error> {
            // The template's own words, which the file may make megabytes long.
            Err(Error::new(
                ErrorKind::InvalidOperation,
                super::error::one_line(&msg),
            ))
        },
    );
    // minijinja builds `tojson`'s text before it charges fuel for it: `indent=1000000000`
    // wrote gigabytes first. The indent real templates use is 2 or 4.
    env.add_filter(
        "tojson",
        move |value: &minijinja::Value,
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
            // Indented JSON takes more room than the walk counts: checked against a share.
            let room = cap / (1 + width.unwrap_or(0).unsigned_abs() as usize);
            if too_large(value, &mut room.clone(), 0) {
                return Err(too_large_error("tojson", cap));
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
            // Given as none, as Hugging Face gives them when there are none: `tools is
            // not none` is false, and a tools-only template fails as it fails there.
            tools => minijinja::Value::from(()),
            documents => minijinja::Value::from(()),
            bos_token => bos_token,
            eos_token => eos_token,
            add_generation_prompt => add_generation_prompt,
        })
        .map_err(|e| match e.kind() {
            ErrorKind::OutOfFuel => EngineError::ChatTemplate(format!(
                "the model's chat template ran too long (more than {TEMPLATE_FUEL} steps or \
                 about {} MB of text), so it was stopped; untick \"chat\" (or leave out \
                 --chat) to send the prompt as plain text",
                (TEMPLATE_FUEL * 64) >> 20
            )),
            _ => EngineError::ChatTemplate(e.to_string()),
        })?;
    if rendered.len() > cap {
        return Err(EngineError::ChatTemplate(format!(
            "the model's chat template produced {} bytes for {wrapped} bytes of messages (at \
             most {cap} are allowed); untick \"chat\" (or leave out --chat) to send the prompt \
             as plain text",
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
            None,
        )
        .unwrap();
        assert_eq!(
            s,
            "<bos><start_of_turn>user\nHi there<end_of_turn>\n<start_of_turn>model\n"
        );
    }

    #[test]
    fn chatml_renders() {
        let s = render(CHATML_TEMPLATE, &[Message::user("Hi")], "", "", true, None).unwrap();
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
        // A list holding the same 10 KB string a million times over (seven `set`s, each a
        // list of ten references to the last) is cheap to make and 10 GB to write out.
        let shared = (1..=6).fold("{% set l0 = 'x' * 10000 %}".to_string(), |t, k| {
            format!(
                "{t}{{% set l{k} = [{}] %}}",
                vec![format!("l{}", k - 1); 10].join(", ")
            )
        });
        let cases = cases.into_iter().map(String::from).chain([
            format!("{shared}{{{{ l6|tojson|length }}}}"),
            format!("{shared}{{{{ l6|string|length }}}}"),
            format!("{shared}{{{{ l6|pprint|length }}}}"),
            format!("{shared}{{{{ l6 }}}}"),
            format!("{shared}{{{{ l6|join|length }}}}"),
            format!("{shared}{{{{ l6|lower|length }}}}"),
            format!("{shared}{{{{ l6|trim|length }}}}"),
            format!("{shared}{{{{ '%s'|format(l6)|length }}}}"),
            format!("{shared}{{{{ l6|safe|length }}}}"),
            // Python's format, padded to ten gigabytes.
            "{{ '{:>10000000000}'.format('x') }}".to_string(),
            // Chains the parser recurses into once per link: the stack, before any fuel.
            format!("{{{{ {}1 }}}}", "-".repeat(30_000)),
            format!("{{{{ 'x'{} }}}}", "|upper".repeat(50_000)),
            format!(
                "{{% if false %}}{{{{ {}1 }}}}{{% endif %}}",
                "- ".repeat(30_000)
            ),
            "x".repeat(MAX_TEMPLATE_BYTES + 1),
        ]);
        for t in cases {
            let t = t.as_str();
            let start = std::time::Instant::now();
            let e = render(t, &[Message::user("hello")], "", "", true, None)
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
                    || msg.contains("would write more than")
                    || msg.contains("format width")
                    || msg.contains("characters of code")
                    || msg.contains("bytes long")
                    || msg.contains("recursion"),
                "{t}: {msg}"
            );
        }
    }

    /// The template's own words in `raise_exception` are the file's: cut to one short line.
    #[test]
    fn a_raised_exception_is_one_short_line() {
        let e = render(
            "{{ raise_exception('H' * 200000 ~ '\\nline two') }}",
            &[Message::user("hi")],
            "",
            "",
            true,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("HHHH"), "{e}");
        assert!(
            e.chars().count() < 1_000,
            "{} characters",
            e.chars().count()
        );
        assert!(!e.contains('\n'), "{e}");
    }

    /// `tojson` as real templates use it still works.
    #[test]
    fn tojson_keeps_its_small_indents() {
        for t in [
            "{{ messages|tojson }}",
            "{{ messages|tojson(indent=2) }}",
            "{{ messages|tojson(4) }}",
        ] {
            let s = render(t, &[Message::user("hi")], "", "", true, None).unwrap();
            assert!(
                s.contains("\"content\":") || s.contains("\"content\": "),
                "{t}: {s}"
            );
        }
    }

    /// The filters measured before they write still do what templates use them for.
    #[test]
    fn measured_filters_work_as_before() {
        for (t, want) in [
            ("{{ ['a', 'b']|join(', ') }}", "a, b"),
            ("{{ [{'x': 1}, {'x': 2}]|join('-', attribute='x') }}", "1-2"),
            ("{{ ' Hi '|trim|upper }}", "HI"),
            ("{{ 'ab'|replace('a', 'c')|capitalize }}", "Cb"),
            ("{{ 'a b'|title }}", "A B"),
            ("{{ '%s and %s'|format('x', 'y') }}", "x and y"),
            ("{{ '<b>'|e }}{{ '<i>'|safe }}", "&lt;b&gt;<i>"),
            ("{{ '{} {}'.format('a', 2) }}", "a 2"),
            ("{{ messages[0]['content']|lower }}", "hi"),
            ("{{ [1, 2]|string }} {{ 'a'|pprint }}", "[1, 2] 'a'"),
        ] {
            let s = render(t, &[Message::user("HI")], "", "", true, None).unwrap();
            assert_eq!(s, want, "{t}");
        }
    }

    #[test]
    fn long_conversations_fit_the_budget() {
        // A real template over a 200 kB message renders: the budget must not refuse real use.
        let long = "word ".repeat(40_000);
        let s = render(CHATML_TEMPLATE, &[Message::user(&long)], "", "", true, None).unwrap();
        assert!(s.len() > long.len());
    }

    #[test]
    fn generation_blocks_render_their_body_and_dates_are_bounded() {
        let now = Clock::new(2026, 12, 6, 9, 0, 0);
        let t = "a{%- generation -%} b {%- endgeneration %}c{{ strftime_now('%d %b %Y') }}";
        let s = render(t, &[Message::user("x")], "", "", true, now).unwrap();
        assert_eq!(s, "abc06 Dec 2026");
        // Without a clock the function is undefined, as templates test for.
        let t = "{{ 'dated' if strftime_now is defined else 'undated' }}";
        let s = render(t, &[Message::user("x")], "", "", true, None).unwrap();
        assert_eq!(s, "undated");
        let t = format!("{{{{ strftime_now('{}') }}}}", "%Y".repeat(200));
        let e = render(&t, &[Message::user("x")], "", "", true, now).unwrap_err();
        assert!(e.to_string().contains("at most 256"), "{e}");
        // An unclosed tag is named by the compiler, its text not written twice.
        assert_eq!(
            without_generation_tags("ab{% generation"),
            "ab{% generation"
        );
        assert_eq!(
            without_generation_tags("x{%+ generation %}y{% endgeneration -%}"),
            "x{%+ if true %}y{% endif -%}"
        );
    }

    #[test]
    fn template_errors_are_reported_not_panics() {
        let e = render("{% for %}", &[Message::user("x")], "", "", true, None).unwrap_err();
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
            None,
        )
        .unwrap_err();
        assert!(e.to_string().contains("alternate"), "{e}");
    }
}
