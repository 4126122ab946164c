"""Fuzz: random and mutated sources never raise anything; problems come back as diagnostics."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audlang.project import analyze
from audlang.syntax import format_source
from audlang.syntax.grammar import OPERATORS, keywords
from conftest import EXAMPLES

SEEDS = [p.read_text() for p in sorted(EXAMPLES.rglob("*.aud"))]
VOCABULARY = sorted(keywords()) + list(OPERATORS) + [
    '"', "'", "#", "\n", " ", ">", "<", "2024-02-30", "11-01", "10%", "-", "1.5", '"VIP"', "sms_opt_in",
    "\\", "\x00", "é", "\t", "99999999999999999999999999999999999999",
]


def survive(text: str) -> None:
    _model, diagnostics = analyze({"fuzz.aud": text})
    for d in diagnostics:
        assert d.message and d.code
    formatted, problems = format_source(text, "fuzz.aud")
    if formatted is not None:
        assert format_source(formatted, "fuzz.aud")[0] == formatted


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
