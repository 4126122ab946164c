"""A misspelled or upper-case keyword (issue #19): the language server shows exactly what ``audlang
validate`` prints, on the same token, when the file is opened and as the user types."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp import LanguageClient, client_capabilities

from lsp_session import SERVER, change_document, open_document, published

TYPO = 'segment "Recent" < has_purchsed within last 3 months >\n'
UPPER = 'segment "Both" <\n  sms_opt_in AND email_opt_in\n>\n'
DECLARATION = 'segmnt "Recent" < sms_opt_in >\n'


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "slips"
    root.mkdir()
    (root / "audlang.toml").write_text('name = "slips"\n')
    return root.resolve()


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient, project: Path):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=from_fs_path(str(project)),
        workspace_folders=[types.WorkspaceFolder(uri=from_fs_path(str(project)), name="slips")]))
    yield
    await lsp_client.shutdown_session()


def validated(project: Path, text: str) -> dict:
    """The one diagnostic ``audlang validate --format json`` gives for ``text`` as a file of the project."""
    (project / "s.aud").write_text(text)
    try:
        result = subprocess.run([sys.executable, "-m", "audlang", "--project", str(project), "validate",
                                 "--format", "json"], capture_output=True, text=True, timeout=60)
    finally:
        (project / "s.aud").unlink()
    assert result.returncode == 1, result.stderr
    (diagnostic,) = json.loads(result.stdout)["diagnostics"]
    return diagnostic


def as_lsp(diagnostic: dict) -> tuple[str, str, types.Range]:
    """The CLI's diagnostic as the server shows it: the help on a line of its own, 0-based positions."""
    message = diagnostic["message"] + (f"\nhelp: {diagnostic['suggestion']}" if diagnostic["suggestion"] else "")
    span = diagnostic["span"]
    return diagnostic["code"], message, types.Range(
        start=types.Position(line=span["line"] - 1, character=span["column"] - 1),
        end=types.Position(line=span["end_line"] - 1, character=span["end_column"] - 1))


@pytest.mark.asyncio
async def test_the_server_shows_the_cli_message_on_the_faulty_token(client: LanguageClient, project: Path):
    expected = {text: as_lsp(validated(project, text)) for text in (TYPO, UPPER, DECLARATION)}
    assert expected[TYPO][1] == "unexpected `has_purchsed`\nhelp: did you mean `has_purchased`?"
    assert expected[TYPO][2].start == types.Position(line=0, character=19)  # on the typo, not on `within`
    assert expected[UPPER][1] == "keywords are lower case: write `and`"
    assert expected[DECLARATION][1] == "unexpected `segmnt`\nhelp: did you mean `segment`?"

    uri = open_document(client, project / "s.aud", TYPO)
    (shown,) = await published(client, uri, lambda ds: len(ds) == 1)
    assert (shown.code, shown.message, shown.range) == expected[TYPO]
    for version, text in enumerate((UPPER, DECLARATION, TYPO.replace("purchsed", "purchased"), UPPER), start=2):
        change_document(client, uri, version, text)  # typed: the server parses the changed text again
        if text in expected:
            (shown,) = await published(client, uri, lambda ds, want=expected[text]: len(ds) == 1
                                       and (ds[0].code, ds[0].message, ds[0].range) == want)
        else:
            await published(client, uri, lambda ds: len(ds) == 0)
