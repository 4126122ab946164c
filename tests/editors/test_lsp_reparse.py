"""The language server's parse after an edit (``audlang.lsp.reparse``) is ``parse_source``'s, exactly.

Every comparison includes positions (``laid_out``): the examples and golden files, the hostile corpus,
the texts where a piece alone and the whole file part ways, and a few thousand random edits. Then what
the parse keeps: the declarations an edit did not touch are the same objects, those it moved are new
ones a line further down, reported as moved.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from audlang.lsp.reparse import FileParser, _Piece
from audlang.syntax import normalize, parse_source
from audlang.syntax.grammar import MAX_NESTING, MAX_TOKENS
from helpers import EXAMPLES, ROOT
from lsp_session import laid_out
from syntax.hostile import CASES, text_of

KEY = "/project/segments.aud"
SOURCES = sorted([*EXAMPLES.rglob("*.aud"), *(ROOT / "tests" / "golden").rglob("*.aud")])


def assert_same(parser: FileParser, text: str) -> None:
    assert laid_out(parser.parse(text, KEY)) == laid_out(parse_source(text, KEY))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_example_and_golden_file(path: Path):
    assert_same(FileParser(), path.read_text())


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_hostile_corpus(name: str):
    assert_same(FileParser(), text_of(CASES[name]))


def _segments(count: int, body: str = "sms_opt_in") -> str:
    return "".join(f'segment "S{i}" < {body} >\n' for i in range(count))


# Where a piece (from a line that starts a declaration to the next) and the whole file part ways.
PARTING = {
    "a keyword at the end of a line": 'campaign "C" <\n  audience\n  segment "A"\n>\nsegment "A" < sms_opt_in >\n',
    "paused alone on its line": 'paused\nsegment "A" < sms_opt_in >\nsegment "B" < x >\n',
    "in at the end of a line": 'segment "A" < sms_opt_in and in\nsegment "B" >\nsegment "B" < x >\n',
    "moved split over two lines": 'moved\nsegment "A" to "B"\nsegment "B" < x >\n',
    "negations that add up over declarations": _segments(MAX_NESTING + 8, "not sms_opt_in"),
    "… and then a broken declaration": _segments(MAX_NESTING + 8, "not sms_opt_in") + 'segment "X" <\n',
    "a value that cannot be read": ('segment "A" < sms_opt_in >\nsegment "B" < has_purchased within last '
                                    + "9" * 5000 + ' days >\nsegment "C" < x >\n'),
    "… in a file with a syntax error": ('segment "A" < sms_opt_in\nsegment "B" < has_purchased within last '
                                        + "9" * 5000 + ' days >\nsegment "C" < x >\n'),
    "a number that is not whole": 'segment "A" < has_purchased within last 1.5 days >\nsegment "B" < x >\n',
    "descriptions": ('# header\n\n# one\n# two\nsegment "A" < x >\n  # not a description\nsegment "B" < y >\n'
                     '# three\n   # four\nsegment "C" < z\n'),
    "declarations in the middle of a line": 'segment "A" < x > segment "B" < y >\n# d\nx > segment "C" < y >\n',
    "text before the first declaration": 'oops\n# d\nsegment "A" < x >\n',
    "a byte-order mark and CRLF": '\ufeff# d\r\nsegment "A" < x >\r\nsegment "B" < y\r\n',
}


@pytest.mark.parametrize("name", sorted(PARTING))
def test_where_pieces_and_the_whole_file_part_ways(name: str):
    """Alone, and among other declarations where an edit elsewhere leaves its pieces to be parsed alone."""
    text, others = PARTING[name], _segments(40)
    parser = FileParser()
    assert_same(parser, text)
    for edited in (others + text, others.replace('"S3"', '"S3 renamed"') + text, "# first\n" + others + text,
                   text + others, text + others.replace("sms_opt_in >\n", "sms_opt_in and\n", 1)):
        assert_same(parser, edited)


def test_a_file_past_the_token_limit_and_one_whose_bound_is_past_it():
    """Past ``MAX_TOKENS`` the whole file is E005; a file whose cheap bound on its tokens is past the limit
    (a date is one token and five matches) is counted by the lexer, and parsed piece by piece."""
    over = _segments(MAX_TOKENS // 9 + 10, "sms_opt_in and lifetime_revenue > 1")  # 9 tokens each
    parser = FileParser()
    assert_same(parser, over)
    assert_same(parser, over.replace('"S7"', '"S7 renamed"'))
    dated = _segments(MAX_TOKENS // 10, "has_purchased since 2024-01-01")  # 7 tokens each, 11 matches
    parser = FileParser()
    assert_same(parser, dated)
    edited = dated.replace('"S7"', '"S7 renamed"')
    assert_same(parser, edited)
    assert sum(p.tokens_at_most() for p in parser._pieces[KEY].values()) <= MAX_TOKENS  # counted, within


EDITS = ['<', '>', '"', '\n', ' ', '#', 'segment ', 'and ', 'not ', '(', ')', 'x', '1', '\n# c\n', 'paused ',
         'audience\n', '\nsegment "Z" <', "9" * 5000, 'within last 1.5 days', '\\', '\r\n', '\ufeff', '\x00']


@pytest.mark.parametrize("path", [EXAMPLES / "retail" / "campaigns.aud", EXAMPLES / "retail" / "segments" /
                                  "lifecycle.aud", EXAMPLES / "retail" / "destinations.aud",
                                  ROOT / "tests" / "golden" / "diagnostics" / "syntax_errors.aud"],
                         ids=lambda p: p.name)
def test_random_edits(path: Path):
    rng = random.Random(path.name)
    base = text = path.read_text()
    parser = FileParser()
    for _ in range(300):
        at = rng.randrange(len(text) + 1)
        roll = rng.random()
        if roll < 0.45:
            text = text[:at] + rng.choice(EDITS) + text[at:]
        elif roll < 0.9:
            text = text[:at] + text[at + rng.randint(1, 12):]
        else:
            text = base
        assert_same(parser, text)


def test_a_bound_on_the_tokens_is_never_below_the_lexers_count():
    rng = random.Random(3)
    characters = list('<>"#\\\n .-%=!()abc019_éx\x0c\ufeff')
    texts = [text_of(data) for data in CASES.values()] + [p.read_text() for p in SOURCES]
    texts += ["".join(rng.choice(characters) for _ in range(rng.randint(0, 60))) for _ in range(2000)]
    for text in texts:
        body = normalize(text)[:200_000]
        piece = _Piece(body, 0, body)
        assert piece.tokens_at_most() >= piece.token_count(), body[:80]


def test_the_declarations_an_edit_did_not_touch_stay_the_same_objects():
    text = _segments(50)
    parser = FileParser()
    before, _ = parser.parse(text, KEY)
    parser.take_moves()
    after, _ = parser.parse(text.replace('"S20" < sms_opt_in', '"S20" < contactable_phone'), KEY)
    kept = [a is b for a, b in zip(before.declarations, after.declarations, strict=True)]
    assert kept == [i != 20 for i in range(50)]
    assert parser.take_moves() == []  # nothing moved: the new piece is at its place


def test_the_declarations_below_added_lines_move_down_and_are_reported():
    text = _segments(50)
    parser = FileParser()
    before, _ = parser.parse(text, KEY)
    parser.take_moves()
    lines = text.splitlines(keepends=True)
    edited = "".join(lines[:30] + ["\n", "\n"] + lines[30:])  # two blank lines: the end of S29's piece
    after, _ = parser.parse(edited, KEY)
    assert all(a is b for a, b in zip(before.declarations[:29], after.declarations[:29], strict=True))
    moved = {id(now): (was, lines) for was, now, lines in parser.take_moves()}
    assert id(after.declarations[29]) not in moved  # parsed again, at its place
    for was, now in zip(before.declarations[30:], after.declarations[30:], strict=True):
        assert now.span.line == was.span.line + 2 and now.condition.span.line == was.condition.span.line + 2
        assert moved[id(now)] == (was, 2)
    assert len(moved) == 20
    # moved twice before anyone asks: reported once, from where it was first
    parser.parse("\n" + edited, KEY)
    parser.parse("\n\n" + edited, KEY)
    again = {now.name: (was, lines) for was, now, lines in parser.take_moves()}
    assert again["S0"] == (after.declarations[0], 2) and again["S40"] == (after.declarations[40], 2)
