"""Fuzz: random, mutated, generated and hostile sources never raise, hang or show a traceback.

Problems come back as diagnostics, in ``analyze``, ``audlang validate`` and
``fmt`` (through click's CliRunner, and for the hostile corpus in a
subprocess with a timeout) and in the language server (the hostile corpus
through the real server). The corpus of hostile files is ``hostile.py``.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time

import pytest
import pytest_lsp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from audlang.diagnostics import render_text
from audlang.project import analyze
from audlang.syntax import format_source
from audlang.syntax.grammar import MAX_NESTING, OPERATORS, keywords
from helpers import EXAMPLES
from hostile import CASES, text_of

SEEDS = [p.read_text() for p in sorted(EXAMPLES.rglob("*.aud"))]
VOCABULARY = sorted(keywords()) + list(OPERATORS) + [
    '"', "'", "#", "\n", " ", ">", "<", "2024-02-30", "11-01", "10%", "-", "1.5", '"VIP"', "sms_opt_in",
    "\\", "\x00", "é", "\t", "99999999999999999999999999999999999999",
    # hostile fragments
    "\ufeff", "\r\n", "\r", "\x0c", "\u2028", "\x1b[31m", "not " * 30, "(" * 30, ")" * 30, "(not " * 20,
    "1e400", "-0", "0.000000000000000000000000000001", "9999-12-31", "0001-01-01", "10000-01-01", "0000-00-00",
    "today - 999999 years", "within last 99999999999999999999 hours", '"' + "x" * 5000 + '"',
]
LINE = re.compile(r"\r\n|\r|\n")
SECONDS = 10  # the most any one command may take on any one input


def survive(text: str) -> None:
    _model, diagnostics = analyze({"fuzz.aud": text})
    lines = len(LINE.split(text))
    for d in diagnostics:
        assert d.message and d.code
        if d.span is not None:  # a span points into the text
            assert 1 <= d.span.line <= d.span.end_line <= lines and d.span.column >= 1, d
    render_text(diagnostics, {"fuzz.aud": text})
    formatted, problems = format_source(text, "fuzz.aud")
    if formatted is not None:
        assert format_source(formatted, "fuzz.aud")[0] == formatted
        assert formatted.startswith("\ufeff") == text.startswith("\ufeff")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(VOCABULARY) | st.text(max_size=3), max_size=40).map(" ".join))
def test_random_token_soup_never_raises(text):
    survive(text)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SEEDS),
    st.lists(st.tuples(st.sampled_from(["delete", "insert", "duplicate"]), st.floats(0, 1), st.integers(1, 30),
                       st.sampled_from(VOCABULARY)), min_size=1, max_size=4),
)
def test_mutated_examples_never_raise(seed, mutations):
    text = seed
    for kind, where, length, token in mutations:
        i = int(where * len(text))
        if kind == "delete":
            text = text[:i] + text[i + length:]
        elif kind == "insert":
            text = text[:i] + token + text[i:]
        else:
            text = text[:i] + text[i:i + length] + text[i:]
    survive(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_raises(text):
    survive(text)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.sampled_from(SEEDS), st.lists(st.tuples(st.floats(0, 1), st.sampled_from(VOCABULARY)), min_size=1,
                                         max_size=3))
def test_cli_over_fuzzed_files_never_shows_a_traceback(tmp_path_factory, seed, edits):
    from click.testing import CliRunner

    from audlang.cli import cli

    folder = tmp_path_factory.mktemp("fuzz")
    text = seed
    for where, token in edits:
        i = int(where * len(text))
        text = text[:i] + token + text[i:]
    (folder / "a.aud").write_text(text)
    for args in (["validate", str(folder)], ["validate", "--format", "json", str(folder)],
                 ["fmt", "--check", str(folder)], ["fmt", str(folder)]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code in (0, 1), (args, result.output, result.exception)
        assert "Traceback" not in result.output and "internal error" not in result.output
        assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


# ------------------------------------------------------------------ generated sources near every limit

ATOMS = st.sampled_from([
    "sms_opt_in", "lifetime_revenue > 500", 'state in ("OR", "WA")', "has_purchased within last 3 days",
    'tagged "VIP"', 'in segment "Other"', 'postal not in ("1")', "email is not set",
    'has_purchased product "Socks" quantity = 1 within last 3 months', 'near store "S" within 10 miles',
    "lifetime_revenue between -0 and 99999999999999999999999", "first_order_date > 9999-12-31",
    "last_order_date < 0001-01-01", "has_purchased after today - 999999 years",
    "has_purchased between 2024-01-01 and 9999-12-31", "lifetime_revenue > 1." + "9" * 60,
])


def _deep(kind: str, depth: int, inner: str) -> str:
    if kind == "not":
        return "not " * depth + inner
    if kind == "parentheses":
        return "(" * depth + inner + ")" * depth
    return "sms_opt_in or email_opt_in and (" * depth + inner + ")" * depth


CONDITIONS = st.recursive(ATOMS, lambda inner: st.one_of(
    inner.map(lambda c: f"not {c}"),
    inner.map(lambda c: f"({c})"),
    st.lists(inner, min_size=2, max_size=4).map(" and ".join),
    st.lists(inner, min_size=2, max_size=4).map(" or ".join),
    st.builds(_deep, st.sampled_from(["not", "parentheses", "or and"]),
              st.integers(MAX_NESTING - 3, MAX_NESTING + 3), inner),
), max_leaves=20)


@st.composite
def generated_sources(draw) -> str:
    declarations = ['segment "Other" < sms_opt_in >']
    for i in range(draw(st.integers(1, 4))):
        declarations.append(f'segment "S{i}" < {draw(CONDITIONS)} >')
    if draw(st.booleans()):
        declarations.append(f'campaign "C" <\n  audience < {draw(CONDITIONS)} >\n  treatment "All" 100%\n>')
    text = "\n\n".join(declarations) + "\n"
    text = text.replace("\n", draw(st.sampled_from(["\n", "\r\n", "\r"])))
    return ("\ufeff" if draw(st.booleans()) else "") + text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated_sources())
def test_generated_sources_near_the_nesting_limit_never_raise(text):
    survive(text)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated_sources())
def test_whatever_validates_also_compiles(text):
    import datetime as dt

    from audlang.compile import AsOf
    from audlang.compile.render import segment_sql

    model, diagnostics = analyze({"fuzz.aud": text})
    for name in model.segments:
        if not any(d.is_error for d in diagnostics):
            segment_sql(model, name, "duckdb", AsOf.of_date(dt.date(2024, 6, 1)))


# ------------------------------------------------------------------ the hostile corpus through the CLI

HEAVY = {"ten megabytes of declarations", "a chain of 50,000 terms", "a long chain, one line",
         "thousands of broken declarations", "a megabyte name", "a megabyte string"}
COMMANDS = [["validate"], ["validate", "--format", "json"], ["fmt", "--check"], ["fmt"], ["fmt", "--check"]]
# Runs each command through click's CliRunner in a fresh interpreter, and says for each how it ended.
DRIVER = """
import json, sys, time, traceback
from click.testing import CliRunner
from audlang.cli import cli
report = []
for args in json.loads(sys.argv[1]):
    start = time.monotonic()
    result = CliRunner().invoke(cli, args)
    error = result.exception if not isinstance(result.exception, SystemExit) else None
    report.append({"args": args, "seconds": time.monotonic() - start, "exit": result.exit_code,
                   "output": result.output[-3000:],
                   "error": "".join(traceback.format_exception(error)) if error else None})
print(json.dumps(report))
"""


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_files_through_the_cli(case, tmp_path):
    data = CASES[case]
    (tmp_path / "audlang.toml").write_text("")
    (tmp_path / "a.aud").write_bytes(data)
    commands = [["validate"], ["fmt"]] if case in HEAVY else COMMANDS
    done = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(commands)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=SECONDS * len(commands), check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    for run in json.loads(done.stdout):
        where = (case, run["args"])
        assert run["error"] is None, (where, run["error"])
        assert run["exit"] in (0, 1), (where, run["output"])
        assert "Traceback" not in run["output"] and "internal error" not in run["output"], where
        assert "\x1b" not in run["output"] and "\x00" not in run["output"], where  # nothing acts on a terminal
        assert run["seconds"] < SECONDS, where
    if case in ("bom", "bom and crlf"):
        assert (tmp_path / "a.aud").read_bytes().startswith("\ufeff".encode())
    if case == "crlf":
        assert b"\r\n" in (tmp_path / "a.aud").read_bytes() and b"\n\n" not in (tmp_path / "a.aud").read_bytes()


def test_hostile_files_through_analyze():
    for case, data in CASES.items():
        if case in HEAVY:
            continue
        start = time.monotonic()
        survive(text_of(data))
        assert time.monotonic() - start < SECONDS, case


# ------------------------------------------------------------------ the hostile corpus through the language server


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-m", "audlang.cli", "lsp"]))
async def lsp_client_in(lsp_client: LanguageClient, tmp_path):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=from_fs_path(str(tmp_path))))
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio
async def test_hostile_documents_through_the_language_server(lsp_client_in: LanguageClient, tmp_path, capfd):
    client = lsp_client_in
    for i, (case, data) in enumerate(CASES.items()):
        folder = tmp_path / f"case{i}"  # a project of its own, so that each check reads only this document
        folder.mkdir()
        (folder / "audlang.toml").write_text("")
        uri = from_fs_path(str(folder / "a.aud"))
        text = text_of(data)
        started = asyncio.get_running_loop().time()
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="audlang", version=1, text=text)))
        while uri not in client.diagnostics:  # polled: a cancelled wait for a notification upsets pytest-lsp
            assert asyncio.get_running_loop().time() - started < SECONDS, f"no diagnostics for {case!r} in time"
            await asyncio.sleep(0.02)
        assert not any(d.code == "internal" for d in client.diagnostics[uri]), case
        document = types.TextDocumentIdentifier(uri=uri)
        position = types.Position(line=0, character=3)
        answers = await asyncio.wait_for(asyncio.gather(
            client.text_document_formatting_async(types.DocumentFormattingParams(
                text_document=document, options=types.FormattingOptions(tab_size=2, insert_spaces=True))),
            client.text_document_document_symbol_async(types.DocumentSymbolParams(text_document=document)),
            client.text_document_semantic_tokens_full_async(types.SemanticTokensParams(text_document=document)),
            client.text_document_hover_async(types.HoverParams(text_document=document, position=position)),
            client.text_document_completion_async(types.CompletionParams(text_document=document, position=position)),
        ), SECONDS)
        assert answers[2] is not None and answers[4] is not None, case
        client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=document))
    assert "Traceback" not in capfd.readouterr().err
    assert not any("Traceback" in m.message or "(this is a bug)" in m.message for m in client.log_messages)
