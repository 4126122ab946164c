"""The VS Code extension's manifest holds together, and its snippets expand to valid audlang."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from audlang.syntax import parse_source
from language_tokens import ROOT

EXTENSION = ROOT / "editors" / "vscode"


def load(name: str):
    return json.loads((EXTENSION / name).read_text())


def test_the_manifest_declares_the_language_grammar_snippets_and_client():
    manifest = load("package.json")
    (language,) = manifest["contributes"]["languages"]
    assert language["id"] == "audlang" and language["extensions"] == [".aud"]
    assert (EXTENSION / language["configuration"]).is_file()
    (grammar,) = manifest["contributes"]["grammars"]
    assert grammar["language"] == "audlang"
    assert load(grammar["path"])["scopeName"] == grammar["scopeName"] == "source.audlang"
    (snippets,) = manifest["contributes"]["snippets"]
    assert (EXTENSION / snippets["path"]).is_file()
    assert (EXTENSION / manifest["main"]).is_file()
    assert "vscode-languageclient" in manifest["dependencies"]
    assert '["lsp"]' in (EXTENSION / manifest["main"]).read_text()


def test_the_language_configuration():
    config = load("language-configuration.json")
    assert config["comments"] == {"lineComment": "#"}
    assert ["<", ">"] in config["brackets"] and ["(", ")"] in config["brackets"]
    assert {"open": '"', "close": '"', "notIn": ["string", "comment"]} in config["autoClosingPairs"]
    start, end = (re.compile(config["folding"]["markers"][k]) for k in ("start", "end"))
    assert start.search('segment "Lapsed VIP" <') and end.search(">")
    assert not start.search('segment "Big Spenders" < lifetime_revenue > 500 >')


def test_the_client_is_valid_javascript():
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (.ci/run installs it)")
    result = subprocess.run([node, "--check", str(EXTENSION / "extension.js")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def expand(body: str) -> str:
    """A snippet as inserted with its defaults: the first choice, the placeholder's text."""
    previous = None
    while previous != body:
        previous = body
        body = re.sub(r"\$\{\d+\|([^,|]*)[^|]*\|\}", r"\1", body)
        body = re.sub(r"\$\{\d+:((?:[^$}\\]|\\.)*)\}", r"\1", body)
        body = re.sub(r"\$\{\d+\}|\$\d+", "", body)
    return re.sub(r"\\([$}\\])", r"\1", body)


@pytest.mark.parametrize("name", list(load("snippets/audlang.json")))
def test_each_snippet_expands_to_valid_audlang(name):
    snippet = load("snippets/audlang.json")[name]
    text = expand("\n".join(snippet["body"]))
    assert "$" not in text, text
    parsed, diagnostics = parse_source(text, f"{name}.aud")
    assert diagnostics == [], (text, diagnostics)
    assert len(parsed.declarations) == 1
    assert type(parsed.declarations[0]).__name__.lower() == snippet["prefix"].split("-")[0].rstrip("1")


def test_there_are_snippets_for_segment_campaign_and_destination():
    prefixes = {s["prefix"] for s in load("snippets/audlang.json").values()}
    assert {"segment", "campaign", "destination"} <= prefixes
