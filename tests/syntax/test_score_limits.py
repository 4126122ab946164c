"""A chain of scores counts towards a segment's combined depth (E004), as ``in segment`` does: the compiler,
``explain`` and ``members`` inline each score's items, so a long chain would otherwise recurse too deep."""

from __future__ import annotations

from audlang.check.limits import MAX_COMBINED_DEPTH
from audlang.project import analyze


def chain(length: int) -> str:
    scores = ['score "S0" <\n  1 point if sms_opt_in\n>\n']
    scores += [f'score "S{i}" <\n  1 point if not score "S{i - 1}" > 0\n>\n' for i in range(1, length)]
    return "".join(scores) + f'segment "End" < score "S{length - 1}" >= 1 >\n'


def test_a_long_chain_of_scores_is_too_deep():
    _model, diagnostics = analyze({"chain.aud": chain(MAX_COMBINED_DEPTH)})
    (error,) = [d for d in diagnostics if d.is_error]
    assert error.code == "E004" and 'segment "End"' in error.message and "scores it reads" in error.message


def test_a_short_chain_of_scores_is_fine():
    model, diagnostics = analyze({"chain.aud": chain(5)})
    assert not [d for d in diagnostics if d.is_error] and len(model.scores) == 5
