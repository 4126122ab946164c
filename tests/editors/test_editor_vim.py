"""The Vim plugin: loads in a headless Vim without errors, detects `*.aud`, and gives each token its class."""

from __future__ import annotations

import pytest

from highlighters import vim_groups
from language_tokens import EXAMPLE_FILES, Token, all_tokens, keyword_class

KEYWORD_GROUPS = {
    "declaration": "audlangDeclaration",
    "paused": "audlangPaused",
    "logical": "audlangLogical",
    "boolean": "audlangBoolean",
    "date": "audlangDate",
    "type": "audlangType",
    "unit": "audlangUnit",
    "function": "audlangFunction",
    "keyword": "audlangKeyword",
}
ROLE_GROUPS = {
    "string": {"audlangString", "audlangEscape"},
    "declared_name": {"audlangDeclaredName"},
    "number": {"audlangNumber"},
    "date": {"audlangDate"},
    "comparison": {"audlangOperator"},
    "assignment": {"audlangOperator"},
    "arithmetic": {"audlangOperator"},
    "block_open": {"audlangBlock"},
    "block_close": {"audlangBlock"},
    "punctuation": {"audlangDelimiter"},
    "name": {"audlangName", "audlangKind", "audlangSettingKey"},
    "comment": {"audlangComment"},
    "doc_comment": {"audlangDocComment"},
}


def expected_groups(token: Token) -> set[str]:
    if token.role == "keyword":
        return {KEYWORD_GROUPS[token.detail]}
    if token.role == "setting_key":  # Vim gives keywords precedence, also where they are a setting's key
        return {KEYWORD_GROUPS[keyword_class(token.text)]} if token.text.isidentifier() and \
            keyword_class(token.text) != "keyword" else {"audlangSettingKey", "audlangKeyword"}
    return ROLE_GROUPS[token.role]


@pytest.fixture(scope="module")
def highlighted(tmp_path_factory):
    return vim_groups(EXAMPLE_FILES, tmp_path_factory.mktemp("vim"))


def test_the_plugin_loads_without_errors_and_detects_the_filetype(highlighted):
    assert highlighted["errors"] == []
    for path in EXAMPLE_FILES:
        assert highlighted["files"][path]["filetype"] == "audlang"
        assert highlighted["files"][path]["syntax"] == "audlang"


def test_every_token_of_every_example_gets_its_group(highlighted):
    problems = []
    for path, tokens in all_tokens().items():
        groups = highlighted["files"][path]["groups"]
        lines = path.read_text(encoding="utf-8").splitlines()
        for token in tokens:
            line = lines[token.line - 1]
            byte = len(line[: token.column - 1].encode("utf-8"))
            width = len(token.text.encode("utf-8"))
            found = set(groups[token.line - 1][byte: byte + width])
            wanted = expected_groups(token)
            if not found <= wanted:
                problems.append(f"{path.name}:{token.line}:{token.column}: {token.role} {token.text!r}: "
                                f"{sorted(found)}, expected {sorted(wanted)}")
    assert not problems, "\n".join(problems[:40])
