"""`audlang lsp` driven end to end over stdio by a real LSP client (pytest-lsp).

The server runs as a subprocess on a copy of the example project; the client
opens documents, types, and asks for diagnostics, completion, hover,
formatting, definitions, symbols and semantic tokens as an editor would.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient, client_capabilities

from helpers import EXAMPLES
from lsp_session import SERVER, change_document, open_document, published


@pytest.fixture
def project(tmp_path) -> Path:
    root = tmp_path / "retail"
    shutil.copytree(EXAMPLES / "retail", root)
    return root.resolve()


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient, project: Path):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        root_uri=from_fs_path(str(project)),
        workspace_folders=[types.WorkspaceFolder(uri=from_fs_path(str(project)), name="retail")],
    ))
    yield
    await lsp_client.shutdown_session()


BROKEN = '''\
# Loyal big spenders.
segment "Loyal" <
  lifetime_revnue > 500
  and in segment "Big Spenders"
>
'''


@pytest.mark.asyncio
async def test_diagnostics_follow_typing(client: LanguageClient, project: Path):
    uri = open_document(client, project / "segments" / "loyal.aud", BROKEN)
    (diagnostic,) = await published(client, uri, lambda ds: len(ds) > 0)
    assert diagnostic.code == "E101"
    assert diagnostic.severity == types.DiagnosticSeverity.Error
    assert "lifetime_revnue" in diagnostic.message and "lifetime_revenue" in diagnostic.message  # the suggestion
    assert diagnostic.range == types.Range(start=types.Position(line=2, character=2),
                                           end=types.Position(line=2, character=17))

    # Fixed as the user types: the diagnostic goes away.
    change_document(client, uri, 2, BROKEN.replace("revnue", "revenue"))
    await published(client, uri, lambda ds: len(ds) == 0)

    # A syntax error, then a clash with a name declared in another file on disk.
    change_document(client, uri, 3, 'segment "Loyal" < lifetime_revenue > 500\n')
    (syntax,) = await published(client, uri, lambda ds: len(ds) == 1 and ds[0].code == "E001")
    assert "`>`" in syntax.message
    change_document(client, uri, 4, 'segment "Big Spenders" < lifetime_revenue > 900 >\n')
    (twice,) = await published(client, uri, lambda ds: len(ds) == 1 and ds[0].code == "E103")
    assert "declared twice" in twice.message and "lifecycle.aud" in twice.message


@pytest.mark.asyncio
async def test_an_unknown_segment_in_a_file_on_disk_is_reported_when_its_declaration_is_renamed(
        client: LanguageClient, project: Path):
    lifecycle = project / "segments" / "lifecycle.aud"
    text = lifecycle.read_text()
    uri = open_document(client, lifecycle, text)
    await published(client, uri, lambda ds: len(ds) == 0)
    change_document(client, uri, 2, text.replace('segment "Lapsed VIP" <', 'segment "Lapsed VIPs" <'))
    campaigns = from_fs_path(str(project / "campaigns.aud"))
    (unknown,) = await published(client, campaigns, lambda ds: len(ds) == 1)
    assert unknown.code == "E102" and "Lapsed VIP" in unknown.message


@pytest.mark.asyncio
async def test_completion(client: LanguageClient, project: Path):
    text = 'segment "Loyal" <\n  lifetime_orders >= 2\n  and in segment "Bi\n>\n'
    uri = open_document(client, project / "loyal.aud", text)
    await published(client, uri, lambda ds: True)

    # Attributes with their types, and the grammar's keywords, at the start of a condition.
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=1, character=2)))
    items = {item.label: item for item in result.items}
    assert items["lifetime_revenue"].kind == types.CompletionItemKind.Field
    assert items["lifetime_revenue"].detail == "number"
    assert items["sms_opt_in"].detail == "boolean"
    assert items["churn_score"].detail == "number"  # from the project's own table mapping
    assert items["has_purchased"].kind == types.CompletionItemKind.Keyword
    assert {"within", "between", "tagged", "abandoned_checkout"} <= set(items)

    # Segment names inside `in segment "…`, replacing what was typed and closing the string.
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=2, character=20)))
    items = {item.label: item for item in result.items}
    assert "Big Spenders" in items and "Holiday Shoppers - SMS" in items
    assert not any(label in items for label in ("Holiday Mailing File", "has_purchased"))
    edit = items["Big Spenders"].text_edit
    assert edit.new_text == 'Big Spenders"'
    assert edit.range == types.Range(start=types.Position(line=2, character=18),
                                     end=types.Position(line=2, character=20))
    assert items["Big Spenders"].documentation.value == "Customers whose lifetime spend is above 500."

    # Destination names after a campaign group's `to`.
    campaign = 'campaign "C" <\n  audience segment "Big Spenders"\n  treatment "All" 100% to "\n>\n'
    uri = open_document(client, project / "c.aud", campaign)
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=2, character=27)))
    labels = {item.label for item in result.items}
    assert "Braze - VIP" in labels and "Big Spenders" not in labels

    # In a destination's body: its kind's settings, then a setting's choices.
    destination = 'destination "D" klaviyo <\n  \n  mode = \n>\n'
    uri = open_document(client, project / "d.aud", destination)
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=1, character=2)))
    items = {item.label: item for item in result.items}
    assert {"api_key", "list_id", "identifiers", "mode", "batch_size"} <= set(items)
    assert "lifetime_revenue" not in items and "segment" not in items
    assert items["api_key"].insert_text == 'api_key = env("$1")'
    result = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=2, character=9)))
    assert {item.label for item in result.items} == {"mirror", "add"}


@pytest.mark.asyncio
async def test_formatting(client: LanguageClient, project: Path):
    messy = 'segment   "Big"<lifetime_revenue>500 and\n   sms_opt_in>\n'
    uri = open_document(client, project / "messy.aud", messy)
    edits = await client.text_document_formatting_async(types.DocumentFormattingParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        options=types.FormattingOptions(tab_size=2, insert_spaces=True)))
    (edit,) = edits
    assert edit.range.start == types.Position(line=0, character=0)
    assert edit.range.end == types.Position(line=2, character=0)
    assert edit.new_text == 'segment "Big" < lifetime_revenue > 500 and sms_opt_in >\n'

    # A document that does not parse is left alone (its diagnostics say why).
    change_document(client, uri, 2, 'segment "Big" < lifetime_revenue >\n')
    edits = await client.text_document_formatting_async(types.DocumentFormattingParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        options=types.FormattingOptions(tab_size=2, insert_spaces=True)))
    assert not edits


@pytest.mark.asyncio
async def test_formatting_wraps_at_the_projects_fmt_width(client: LanguageClient, project: Path):
    """The editor formats as `audlang fmt` does, with the `[fmt] width` of the document's project."""
    config = project / "audlang.toml"
    config.write_text(config.read_text() + "\n[fmt]\nwidth = 40\n")
    text = 'segment "Two" < sms_opt_in and (tagged "VIP" or tagged "Staff account") >\n'
    uri = open_document(client, project / "two.aud", text)
    (edit,) = await client.text_document_formatting_async(types.DocumentFormattingParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        options=types.FormattingOptions(tab_size=2, insert_spaces=True)))
    assert edit.new_text == ('segment "Two" <\n  sms_opt_in\n  and (\n    tagged "VIP"\n'
                             '    or tagged "Staff account"\n  )\n>\n')


@pytest.mark.asyncio
async def test_go_to_definition_across_files(client: LanguageClient, project: Path):
    campaigns = project / "campaigns.aud"
    text = campaigns.read_text()
    uri = open_document(client, campaigns, text)
    lines = text.splitlines()
    line = next(i for i, s in enumerate(lines) if 'in segment "Lapsed VIP"' in s)
    column = lines[line].index("Lapsed VIP") + 3
    result = await client.text_document_definition_async(types.DefinitionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=column)))
    assert result.uri == from_fs_path(str(project / "segments" / "lifecycle.aud"))
    target = (project / "segments" / "lifecycle.aud").read_text().splitlines()
    declared = next(i for i, s in enumerate(target) if s.startswith('segment "Lapsed VIP"'))
    assert result.range.start == types.Position(line=declared, character=8)
    assert result.range.end == types.Position(line=declared, character=8 + len('"Lapsed VIP"'))

    # A destination named in a treatment's `to` list.
    line = next(i for i, s in enumerate(lines) if "Klaviyo - Win Back" in s)
    column = lines[line].index("Klaviyo")
    result = await client.text_document_definition_async(types.DefinitionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=column)))
    assert result.uri == from_fs_path(str(project / "destinations.aud"))


@pytest.mark.asyncio
async def test_hover(client: LanguageClient, project: Path):
    text = 'segment "Loyal" < lifetime_revenue > 500 and in segment "Lapsed VIP" >\n'
    uri = open_document(client, project / "loyal.aud", text)
    result = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=0, character=20)))
    assert "**lifetime_revenue**: number" in result.contents.value
    result = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=0, character=60)))
    assert "Tagged VIPs who are big spenders and have not bought in 90 days." in result.contents.value
    result = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=0, character=2)))
    assert result is None


@pytest.mark.asyncio
async def test_document_symbols_and_doc_comments(client: LanguageClient, project: Path):
    campaigns = project / "campaigns.aud"
    text = campaigns.read_text()
    uri = open_document(client, campaigns, text)
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    assert [s.name for s in symbols] == ["Holiday SMS 2024", "Store Invites", "Win Back", "Lapsed VIP Journey",
                                         "Holiday Retargeting"]
    assert [c.name for c in symbols[1].children] == ["Portland", "Seattle", "Elsewhere"]

    # The comment lines directly above a declaration are its description: semantic tokens mark them.
    result = await client.text_document_semantic_tokens_full_async(types.SemanticTokensParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    lines, line = [], 0
    for i in range(0, len(result.data), 5):
        line += result.data[i]
        lines.append(line)
    described = [i for i, s in enumerate(text.splitlines())
                 if s.startswith("#") and i + 1 < len(text.splitlines())
                 and text.splitlines()[i + 1].startswith(("campaign", "#"))]
    assert lines == [i for i in described if i >= 3]  # the file's opening comment is followed by a blank line
    assert lines[0] == 3


def test_the_cli_loads_the_language_server_only_when_asked():
    """`audlang lsp` imports pygls inside the command: every other command starts without it."""
    import subprocess

    probe = ("import sys, audlang.cli; "
             "print(sorted(m for m in sys.modules "
             "if m.split('.')[0] in ('pygls', 'lsprotocol') or m.split('.')[:2] == ['audlang', 'lsp']))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
    help_text = subprocess.run([sys.executable, "-m", "audlang.cli", "--help"], capture_output=True, text=True,
                               check=True).stdout
    assert "lsp" in help_text


# --------------------------------------------------------------------------- any text in, diagnostics out


def _no_traceback(client: LanguageClient, capfd) -> None:
    """Neither the server's stderr (forwarded here) nor its log messages hold a traceback."""
    assert "Traceback" not in capfd.readouterr().err
    assert not any("Traceback" in m.message for m in client.log_messages)


@pytest.mark.asyncio
async def test_a_condition_nested_5000_deep_is_a_diagnostic(client: LanguageClient, project: Path, capfd):
    uri = open_document(client, project / "deep.aud", 'segment "Deep" < ' + "not " * 5000 + "sms_opt_in >\n")
    (deep,) = await published(client, uri, lambda ds: len(ds) > 0, timeout=10)
    assert deep.code == "E004" and "nested deeper than 32 levels" in deep.message
    assert deep.range.start == types.Position(line=0, character=len('segment "Deep" < ') + 32 * len("not "))
    change_document(client, uri, 2, 'segment "Deep" < ' + "(not " * 3000 + "sms_opt_in" + ")" * 3000 + " >\n")
    (deep,) = await published(client, uri, lambda ds: len(ds) == 1 and ds[0].range.start.character != 145,
                              timeout=10)
    assert deep.code == "E004"
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    assert not symbols  # the declaration did not parse; nothing failed
    _no_traceback(client, capfd)


@pytest.mark.asyncio
async def test_a_byte_order_mark_in_the_document_counts_as_its_first_character(client: LanguageClient, project: Path):
    text = '\ufeff# Loyal.\nsegment "Loyal" < lifetime_revnue > 500 >\n'
    uri = open_document(client, project / "bom.aud", "\ufeffsegment \"Loyal\" < lifetime_revnue > 500 >\n")
    (d,) = await published(client, uri, lambda ds: len(ds) == 1, timeout=10)
    assert d.code == "E101"
    start = len('\ufeffsegment "Loyal" < ')
    assert d.range == types.Range(start=types.Position(line=0, character=start),
                                  end=types.Position(line=0, character=start + len("lifetime_revnue")))
    change_document(client, uri, 2, text)
    (d,) = await published(client, uri, lambda ds: len(ds) == 1 and ds[0].range.start.line == 1, timeout=10)
    assert d.range.start.character == len('segment "Loyal" < ')  # only line 0 holds the mark
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    assert symbols[0].selection_range.start == types.Position(line=1, character=len("segment "))
    tokens = await client.text_document_semantic_tokens_full_async(types.SemanticTokensParams(
        text_document=types.TextDocumentIdentifier(uri=uri)))
    assert list(tokens.data[:3]) == [0, 1, len("# Loyal.")]  # the description, after the mark
    edits = await client.text_document_formatting_async(types.DocumentFormattingParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        options=types.FormattingOptions(tab_size=2, insert_spaces=True)))
    assert edits is not None and len(edits) == 0  # canonical already: the mark stays


@pytest.mark.asyncio
async def test_crlf_and_lone_cr_count_lines_as_the_client_does(client: LanguageClient, project: Path):
    text = 'segment "A" < sms_opt_in >\r\n\r\nsegment "B" <\r\n  sms_opt_in\r\n  and lifetime_revnue > 1\r\n>\r\n'
    uri = open_document(client, project / "crlf.aud", text)
    (d,) = await published(client, uri, lambda ds: len(ds) == 1, timeout=10)
    assert d.range.start == types.Position(line=4, character=6)
    change_document(client, uri, 2, text.replace("\r\n", "\r").replace("segment \"A\"", "segment \"A\" <\x0c>"))
    ds = await published(client, uri, lambda ds: len(ds) == 2, timeout=10)
    assert [x.range.start for x in ds] == [types.Position(line=0, character=13), types.Position(line=4, character=6)]


@pytest.mark.asyncio
@pytest.mark.parametrize("text", [
    "".join(map(chr, range(256))) * 8,
    'segment "A" < sms_opt_in >\n' + "\x00" * 100,
    'segment "A" < in list "/dev/zero" >\n',
], ids=["binary", "nul", "in list /dev/zero"])
async def test_binary_text_and_device_lists_get_diagnostics(client: LanguageClient, project: Path, text, capfd):
    uri = open_document(client, project / "hostile.aud", text)
    ds = await published(client, uri, lambda ds: len(ds) > 0, timeout=10)
    assert all(d.severity == types.DiagnosticSeverity.Error for d in ds)
    assert not any(d.code == "internal" for d in ds)
    _no_traceback(client, capfd)


# A real server with a bug put in: checking a document that holds BUG raises.
_BUGGY = """
from audlang.lsp.analysis import Analyzer
real = Analyzer.analyze
def analyze(self, open_documents):
    if any("BUG" in text for text in open_documents.values()):
        raise RuntimeError("an injected bug")
    return real(self, open_documents)
Analyzer.analyze = analyze
from audlang.cli import main
main(["lsp"])
"""


@pytest_lsp.fixture(config=ClientServerConfig(server_command=[sys.executable, "-c", _BUGGY]))
async def buggy_client(lsp_client: LanguageClient, project: Path):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"),
        root_uri=from_fs_path(str(project)),
        workspace_folders=[types.WorkspaceFolder(uri=from_fs_path(str(project)), name="retail")],
    ))
    yield
    await lsp_client.shutdown_session()


@pytest.mark.asyncio
async def test_a_bug_in_the_server_is_a_diagnostic_not_silence_nor_a_traceback(
        buggy_client: LanguageClient, project: Path, capfd):
    client = buggy_client
    uri = open_document(client, project / "bug.aud", 'segment "BUG" < sms_opt_in >\n')
    (d,) = await published(client, uri, lambda ds: len(ds) > 0, timeout=10)
    assert d.code == "internal" and d.severity == types.DiagnosticSeverity.Error
    assert d.message.startswith("internal error (RuntimeError: an injected bug)") and "please report" in d.message
    # every request still gets an answer (the standard data model is known without the project)
    hover = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=0, character=20)))
    assert "**sms_opt_in**: boolean" in hover.contents.value
    completion = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=0, character=17)))
    assert completion is not None
    # fixed: the internal error goes away and the real diagnostics come back
    change_document(client, uri, 2, 'segment "Fixed" < lifetime_revnue > 1 >\n')
    (d,) = await published(client, uri, lambda ds: len(ds) == 1 and ds[0].code != "internal", timeout=10)
    assert d.code == "E101"
    assert any("an injected bug" in m.message and "(this is a bug)" in m.message for m in client.log_messages)
    _no_traceback(client, capfd)
