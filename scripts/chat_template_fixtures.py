#!/usr/bin/env python3
"""Render llama.cpp's collection of real chat templates as Hugging Face renders them.

llama.cpp keeps the chat templates of about seventy models (`models/templates/*.jinja`, fetched
into assets/llama-tests/templates/ by scripts/fetch_llama_tests.py). Hugging Face's
`apply_chat_template` is the reference both llama.cpp's Jinja engine and TinyLab's follow:
Jinja2's sandbox with `trim_blocks` and `lstrip_blocks`, loop controls, its own `tojson`
(`ensure_ascii=False`), `raise_exception` and `strftime_now`, and the context `messages`,
`tools=None`, `documents=None`, `add_generation_prompt` and the special tokens. This renders
every template that way for a few conversations and writes what comes out (or that it raised)
to tests/fixtures/chat-templates.json, keyed by the template's sha256 so a changed file is
noticed; `tests/chat_templates.rs` renders the same with TinyLab's engine.

`strftime_now` answers for a fixed day, 2026-12-06, so the fixture does not change with the
date; the test gives TinyLab's renderer the same day.

Usage: chat_template_fixtures.py
"""
import datetime
import hashlib
import json
import os
import sys

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATES = os.path.join(ROOT, "assets", "llama-tests", "templates")
OUT = os.path.join(ROOT, "tests", "fixtures", "chat-templates.json")
TODAY = datetime.datetime(2026, 12, 6, 12, 0, 0)
BOS, EOS = "<BOS>", "<EOS>"

# llama.cpp's own test conversation (test-chat-template.cpp), a first turn alone, and a
# conversation whose assistant turn holds template-like text and quotes.
CONVERSATIONS = {
    "llama_cpp": [
        {"role": "system", "content": "You are a helpful assistant"},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi there"},
        {"role": "user", "content": "Who are you"},
        {"role": "assistant", "content": "   I am an assistant   "},
        {"role": "user", "content": "Another question"},
    ],
    "first_turn": [{"role": "user", "content": "Write a haiku about the sea."}],
    "awkward": [
        {"role": "user", "content": "Say {{ x }} and {% raw %}, \"quoted\" 'text' \\n, émigré 日本"},
        {"role": "assistant", "content": "\n  {{ x }}  \n"},
        {"role": "user", "content": "  trailing and leading spaces  "},
    ],
}


class Generation(jinja2.ext.Extension):
    """Hugging Face's `{% generation %}` block (it marks assistant text for training masks):
    it renders its body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return TODAY.strftime(fmt)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[Generation, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main():
    if not os.path.isdir(TEMPLATES):
        sys.exit(f"error: {TEMPLATES} is missing: run scripts/fetch_llama_tests.py")
    env = environment()
    fixture = {
        "reference": f"Jinja2 {jinja2.__version__} as Hugging Face's apply_chat_template sets it up",
        "today": TODAY.strftime("%Y-%m-%d"),
        "bos_token": BOS,
        "eos_token": EOS,
        "conversations": CONVERSATIONS,
        "templates": {},
    }
    rendered = raised = 0
    for name in sorted(os.listdir(TEMPLATES)):
        if not name.endswith(".jinja"):
            continue
        with open(os.path.join(TEMPLATES, name), "rb") as f:
            source = f.read()
        entry = {"sha256": hashlib.sha256(source).hexdigest(), "renders": {}}
        try:
            template = env.from_string(source.decode())
        except jinja2.TemplateError as e:
            entry["compile_error"] = str(e)
            fixture["templates"][name] = entry
            raised += 1
            continue
        for conv, messages in CONVERSATIONS.items():
            for gen in (True, False):
                key = f"{conv}/{'prompt' if gen else 'no_prompt'}"
                try:
                    out = template.render(messages=messages, tools=None, documents=None,
                                          add_generation_prompt=gen, bos_token=BOS,
                                          eos_token=EOS)
                    entry["renders"][key] = {"text": out}
                    rendered += 1
                except Exception as e:  # noqa: BLE001 - any failure is the reference's answer
                    entry["renders"][key] = {"error": f"{type(e).__name__}: {e}"}
                    raised += 1
        fixture["templates"][name] = entry
    with open(OUT, "w") as f:
        json.dump(fixture, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT, ROOT)}: {len(fixture['templates'])} templates, "
          f"{rendered} renderings, {raised} raised")


if __name__ == "__main__":
    main()
