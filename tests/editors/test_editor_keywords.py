"""One source of keywords: every keyword of grammar/audlang.lark is highlighted by every highlighter.

A keyword added to the grammar and missing from the TextMate grammar, the Vim
syntax or the Pygments lexer fails here (and one they keep after the grammar
dropped it, too).
"""

from __future__ import annotations

import json
import re

import pytest
from pygments.token import Error, Name

from audlang.pygments_lexer import KEYWORDS as PYGMENTS_KEYWORDS
from audlang.pygments_lexer import AudlangLexer
from audlang.syntax.grammar import keywords
from highlighters import TEXTMATE_GRAMMAR, VIM_PLUGIN, textmate_tokens, vim_groups
from language_tokens import keyword_class
from test_editor_pygments import KEYWORD_TYPES
from test_editor_textmate import KEYWORD_SCOPES
from test_editor_vim import KEYWORD_GROUPS

GRAMMAR_KEYWORDS = sorted(keywords())
VIM_SYNTAX = VIM_PLUGIN / "syntax" / "audlang.vim"


def test_the_grammar_has_keywords():
    assert {"segment", "has_purchased", "within", "paused", "today"} <= set(GRAMMAR_KEYWORDS)


@pytest.mark.parametrize("highlighter", [TEXTMATE_GRAMMAR, VIM_SYNTAX], ids=["textmate", "vim"])
def test_every_keyword_is_written_in_the_highlighter(highlighter):
    text = highlighter.read_text()
    missing = [k for k in GRAMMAR_KEYWORDS if not re.search(rf"(?<![A-Za-z0-9_]){k}(?![A-Za-z0-9_])", text)]
    assert missing == [], f"{highlighter.name} does not know {missing}"


def test_the_pygments_lexer_knows_exactly_the_grammars_keywords():
    assert PYGMENTS_KEYWORDS == set(GRAMMAR_KEYWORDS)


def test_the_vim_syntax_knows_exactly_the_grammars_keywords():
    words = set()
    for line in VIM_SYNTAX.read_text().splitlines():
        if line.startswith("syn keyword"):
            words.update(line.split()[3:])
        elif match := re.match(r'syn match\s+\w+\s+"\\<(\w+)\\>"$', line):
            words.add(match.group(1))
    assert words == set(GRAMMAR_KEYWORDS)


def test_the_textmate_grammar_knows_exactly_the_grammars_keywords():
    repository = json.loads(TEXTMATE_GRAMMAR.read_text())["repository"]
    patterns = [*repository["keyword"]["patterns"], *repository["date"]["patterns"], repository["env"]]
    words = set()
    for pattern in patterns:
        for group in re.findall(r"\\b\(([a-z_|]+)\)\\b|\\b([a-z_]+)\\b", pattern["match"]):
            for alternatives in group:
                words.update(w for w in alternatives.split("|") if w)
    assert words == set(GRAMMAR_KEYWORDS)


@pytest.fixture(scope="module")
def keyword_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("keywords") / "keywords.aud"
    path.write_text("".join(f"{k}\n" for k in GRAMMAR_KEYWORDS))
    return path


def test_textmate_highlights_each_keyword_by_its_class(keyword_file):
    lines = textmate_tokens([keyword_file])[keyword_file]
    # one line more than keywords: the empty one after the file's last newline
    for word, line in zip(GRAMMAR_KEYWORDS, lines, strict=False):
        (token,) = line
        assert token["text"] == word
        assert token["scopes"][-1].startswith(KEYWORD_SCOPES[keyword_class(word)]), (word, token["scopes"])


def test_vim_highlights_each_keyword_by_its_class(keyword_file, tmp_path):
    found = vim_groups([keyword_file], tmp_path)
    assert found["errors"] == []
    groups = found["files"][keyword_file]["groups"]
    for word, row in zip(GRAMMAR_KEYWORDS, groups, strict=True):
        assert set(row) == {KEYWORD_GROUPS[keyword_class(word)]}, (word, row)


def test_pygments_highlights_each_keyword_by_its_class():
    lexer = AudlangLexer()
    for word in GRAMMAR_KEYWORDS:
        (token,) = [(t, v) for t, v in lexer.get_tokens(f"{word}\n") if v.strip()]
        assert token == (KEYWORD_TYPES[keyword_class(word)], word)
        assert token[0] not in Error and token[0] not in Name.Variable
