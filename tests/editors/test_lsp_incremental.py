"""The language server checks after an edit only what the edit can affect, and finds what a fresh check finds.

A small project over several files (segments that use segments in another file, a custom table, a
list file, a destination, campaigns on disk) is edited step by step: a name another file uses broken
and repaired, a declaration deleted and restored, lines added above, a syntax error, a renamed
attribute, a name declared twice, a cycle, a list file removed, a file changed or deleted on disk, a
document closed. After every step the server's incremental ``Analyzer`` is held equal to ``analyze``,
the fresh check ``audlang validate`` makes (diagnostics and model, positions included); and through
the real server, what the client shows for every file is held equal to what that fresh check says.
Then what was re-checked: only the changed declaration and those that use it.
"""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp import LanguageClient, client_capabilities

from audlang.check import CheckMemory, check, checker
from audlang.lsp import analysis
from audlang.lsp.analysis import Analyzer, analyze
from audlang.lsp.queries import diagnostics_by_document
from audlang.syntax import parse_source
from helpers import EXAMPLES, ROOT
from lsp_session import SERVER, change_document, laid_out, open_document

PROJECT = {
    "audlang.toml": 'name = "shop"\n',
    "segments/base.aud": '''\
# Customers who spent a lot.
segment "Big Spenders" < lifetime_revenue > 500 >

segment "Loyal" <
  lifetime_orders >= 3
>

segment "Churn Risk" < churn_score > 0.7 >

segment "Wholesale" < in list "../lists/wholesale.csv" >
''',
    "segments/derived.aud": '''\
segment "Loyal Big Spenders" < in segment "Big Spenders" and in segment "Loyal" >

# Loyal customers gone quiet.
segment "Win Back" <
  in segment "Loyal"
  and not has_purchased within last 90 days
>
''',
    "tables.aud": 'table churn_scores from "analytics.churn" <\n  churn_score number = "score"\n>\n',
    "destinations.aud": 'destination "Mail" csv <\n  path = "exports/{{ campaign }}-{{ group }}.csv"\n>\n',
    "campaigns.aud": '''\
campaign "Spring" <
  audience segment "Loyal Big Spenders"
  holdout 10%
  treatment "All" 90% to "Mail"
>

campaign "Rescue" <
  audience < in segment "Churn Risk" and in segment "Win Back" >
  treatment "All" 100% to "Mail"
>
''',
    "lists/wholesale.csv": "customer_id\nc1\n",
}


@pytest.fixture
def shop(tmp_path) -> Path:
    root = (tmp_path / "shop").resolve()
    for name, text in PROJECT.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _replace(old: str, new: str):
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)
    return edit


#: (what the step does, the file, how: "open", "type" (a change in the editor, opening the file if it is
#: not open), "disk" (a change of the file on disk), "close" or "delete" (from disk), the change, and the
#: codes of the diagnostics the fresh check then finds)
STEPS = [
    ("open the segments", "segments/base.aud", "open", None, set()),
    ("break a name another file uses", "segments/base.aud", "type",
     _replace('"Big Spenders" <', '"Big Spender" <'), {"E102"}),
    ("repair it", "segments/base.aud", "type", _replace('"Big Spender" <', '"Big Spenders" <'), set()),
    ("delete a declaration two others use", "segments/base.aud", "type",
     _replace('segment "Loyal" <\n  lifetime_orders >= 3\n>\n', ""), {"E102"}),
    ("restore it", "segments/base.aud", "type",
     _replace('segment "Churn Risk"', 'segment "Loyal" <\n  lifetime_orders >= 3\n>\n\nsegment "Churn Risk"'), set()),
    ("an unknown attribute", "segments/base.aud", "type", _replace("churn_score > 0.7", "churn_scor > 0.7"),
     {"E101"}),
    ("add lines above every declaration", "segments/base.aud", "type", lambda t: "\n\n# notes\n\n" + t, {"E101"}),
    ("fix the attribute", "segments/base.aud", "type", _replace("churn_scor > 0.7", "churn_score > 0.7"), set()),
    ("a syntax error in a declaration others use", "segments/base.aud", "type",
     _replace("lifetime_revenue > 500 >", "lifetime_revenue > 500"), {"E001", "E102"}),
    ("an unknown attribute in the derived file", "segments/derived.aud", "type",
     _replace("not has_purchased", "not lifetime_revnue > 1 and not has_purchased"), {"E001", "E101", "E102"}),
    ("fix the syntax error", "segments/base.aud", "type",
     _replace("lifetime_revenue > 500\n", "lifetime_revenue > 500 >\n"), {"E101"}),
    ("rename the custom table's attribute", "tables.aud", "type", _replace("churn_score number", "churn number"),
     {"E101"}),
    ("name it back", "tables.aud", "type", _replace("churn number", "churn_score number"), {"E101"}),
    ("fix the unknown attribute", "segments/derived.aud", "type", _replace("not lifetime_revnue > 1 and ", ""),
     set()),
    ("declare a name of another file again", "segments/derived.aud", "type",
     lambda t: t + '\nsegment "Loyal" < sms_opt_in >\n', {"E103"}),
    ("remove it", "segments/derived.aud", "type", _replace('\nsegment "Loyal" < sms_opt_in >\n', ""), set()),
    ("a cycle across two files", "segments/base.aud", "type",
     _replace("lifetime_orders >= 3", 'in segment "Win Back"'), {"E104"}),
    ("undo the cycle", "segments/base.aud", "type", _replace('in segment "Win Back"', "lifetime_orders >= 3"),
     set()),
    ("the list file removed from disk", "lists/wholesale.csv", "delete", None, {"E112"}),
    ("a campaign file changed on disk", "campaigns.aud", "disk",
     _replace('"Loyal Big Spenders"', '"Loyal Big Spender"'), {"E102", "E112"}),
    ("the derived file closed", "segments/derived.aud", "close", None, {"E102", "E112"}),
    ("the derived file deleted from disk", "segments/derived.aud", "delete", None, {"E102", "E112"}),
    ("the segments closed with unsaved changes", "segments/base.aud", "close", None, {"E102", "E112"}),
]


def _apply(root: Path, documents: dict[str, str], step) -> None:
    """Make ``step`` on ``documents`` (key -> text of the open ones) and on the files on disk."""
    _, name, how, change, _ = step
    path = root / name
    key = os.path.realpath(path)
    if how == "open":
        documents[key] = path.read_text()
    elif how == "type":
        documents[key] = change(documents[key] if key in documents else path.read_text())
    elif how == "disk":
        path.write_text(change(path.read_text()))
    elif how == "close":
        del documents[key]
    else:
        path.unlink()


def assert_same_analysis(incremental: analysis.ProjectAnalysis, fresh: analysis.ProjectAnalysis) -> None:
    assert laid_out(incremental.diagnostics) == laid_out(fresh.diagnostics)
    assert incremental.sources == fresh.sources
    model, expected = incremental.model, fresh.model
    assert laid_out(model.files) == laid_out(expected.files)
    assert list(model.segments) == list(expected.segments)  # dependency order
    assert model.dependencies == expected.dependencies and model.lists == expected.lists
    assert laid_out(model.data_model) == laid_out(expected.data_model)


def test_each_step_is_checked_as_a_fresh_check_would(shop: Path):
    analyzer = Analyzer(shop)
    documents: dict[str, str] = {}
    for step in STEPS:
        _apply(shop, documents, step)
        incremental, fresh = analyzer.analyze(documents), analyze(shop, documents)
        assert_same_analysis(incremental, fresh)
        assert {d.code for d in fresh.diagnostics} == step[4], step[0]


EDITS = ['<', '>', '"', '\n', ' ', '#', 'segment ', 'and ', 'not ', 'in segment "Loyal" and ', '"Loyal"',
         '"Big Spenders"', 'x', '1', '\n# c\n', 'churn_score ', '\nsegment "Z" <', 'within last 1.5 days', '\\']


def test_random_edits_of_several_files_are_checked_as_a_fresh_check_would(shop: Path):
    rng = random.Random(17)
    keys = [os.path.realpath(shop / name) for name in ("segments/base.aud", "segments/derived.aud", "tables.aud",
                                                        "campaigns.aud")]
    documents = {key: Path(key).read_text() for key in keys}
    analyzer = Analyzer(shop)
    for _ in range(250):
        key = rng.choice(keys)
        text = documents[key]
        at = rng.randrange(len(text) + 1)
        if rng.random() < 0.5:
            documents[key] = text[:at] + rng.choice(EDITS) + text[at:]
        else:
            documents[key] = text[:at] + text[at + rng.randint(1, 10):]
        assert_same_analysis(analyzer.analyze(documents), analyze(shop, documents))


@pytest.mark.parametrize("path", sorted([*(ROOT / "tests" / "golden" / "diagnostics").glob("*.aud"),
                                         *EXAMPLES.rglob("*.aud")]), ids=lambda p: p.name)
def test_a_check_that_remembers_finds_what_a_fresh_one_finds(path: Path):
    """Remembered the second time, and for a file parsed again (new objects): the same answer."""
    files = [parse_source(path.read_text(), str(path))[0]]
    def reader(file: str):
        return checker.read_regular(file, [path.parent], 1 << 20)

    expected = laid_out(check(files, reader))
    memory = CheckMemory()
    assert laid_out(check(files, reader, memory=memory)) == expected
    assert laid_out(check(files, reader, memory=memory)) == expected
    again = [parse_source(path.read_text() + "\n", str(path))[0]]
    assert laid_out(check(again, reader, memory=memory)) == laid_out(check(again, reader))


@pytest.fixture
def checked(monkeypatch) -> list[tuple[str, str]]:
    """The checks of declarations that ran (check, declaration), rather than being remembered."""
    ran: list[tuple[str, str]] = []
    remembered = checker._Checker._remembered

    def spy(self, kind, decl, inputs, work):
        def run():
            if self.memory is not None:  # not the fresh check it is compared with
                ran.append((kind, decl.name))
            return work()
        return remembered(self, kind, decl, inputs, run)

    monkeypatch.setattr(checker._Checker, "_remembered", spy)
    return ran


def test_only_the_declarations_a_change_can_affect_are_checked_again(shop: Path, checked):
    analyzer = Analyzer(shop)
    base = os.path.realpath(shop / "segments" / "base.aud")
    text = Path(base).read_text()
    analyzer.analyze({base: text})
    every_time = {("segment", "Wholesale")}  # it reads a list file, which may change at any time

    def after(edited: str) -> set[tuple[str, str]]:
        checked.clear()
        analysis = analyzer.analyze({base: edited})
        assert laid_out(analysis.diagnostics) == laid_out(analyze(shop, {base: edited}).diagnostics)
        return set(checked) - every_time

    text = text.replace("lifetime_orders >= 3", "lifetime_orders >= 4")
    assert after(text) == {("segment", "Loyal"), ("depth", "Loyal")}  # the uses of it nest as deep as before
    text = text.replace('"Big Spenders" <', '"Big Spender" <')
    assert after(text) == {("segment", "Big Spender"), ("depth", "Big Spender"),
                           ("segment", "Loyal Big Spenders"), ("depth", "Loyal Big Spenders")}  # in derived.aud
    text = "\n\n# notes\n\n" + text.replace("> 500 >", "> 600 >")
    assert after(text) == {("segment", "Big Spender"), ("depth", "Big Spender")}  # the rest only moved down
    assert after(text) == set()
    text = text.replace("churn_score > 0.7", "churn_scor > 0.7")
    assert after(text) == {("segment", "Churn Risk"), ("depth", "Churn Risk")}
    (unknown,) = [d for d in analyzer.analyze({base: text}).diagnostics if d.code == "E101"]
    text = "# one more line\n" + text
    assert after(text) == set()  # moved, with what was found about it
    (moved,) = [d for d in analyzer.analyze({base: text}).diagnostics if d.code == "E101"]
    assert moved.code == unknown.code == "E101"
    assert (moved.span.line, moved.span.column) == (unknown.span.line + 1, unknown.span.column)


def test_files_on_disk_are_read_again_only_when_they_change(shop: Path, monkeypatch):
    reads: list[str] = []
    read_source = analysis.project.read_source

    def counted(file, root=None):
        reads.append(Path(file).name)
        return read_source(file, root)

    monkeypatch.setattr(analysis.project, "read_source", counted)
    analyzer = Analyzer(shop)
    analyzer.analyze({})
    analyzer.analyze({})
    # just written: a file system's clock may not tell a second change within its tick from the first
    assert reads.count("campaigns.aud") == 2
    monkeypatch.setattr(analysis, "SETTLED_SECONDS", -1.0)  # as if written long ago
    analyzer.analyze({})
    reads.clear()
    analyzer.analyze({})
    assert reads == []
    (shop / "campaigns.aud").write_text(PROJECT["campaigns.aud"].replace('"Loyal Big Spenders"', '"Nobody"'))
    found = analyzer.analyze({})
    assert reads == ["campaigns.aud"]
    assert [d.code for d in found.diagnostics] == ["E102"]
    assert laid_out(found.diagnostics) == laid_out(analyze(shop, {}).diagnostics)


# --------------------------------------------------------------------------- through the real server


@pytest.fixture
def served(shop: Path) -> Path:
    return shop


@pytest_lsp.fixture(config=SERVER)
async def client(lsp_client: LanguageClient, served: Path):
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=client_capabilities("visual-studio-code"), root_uri=from_fs_path(str(served)),
        workspace_folders=[types.WorkspaceFolder(uri=from_fs_path(str(served)), name="shop")]))
    yield
    await lsp_client.shutdown_session()


async def _shown_as_fresh(client: LanguageClient, root: Path, documents: dict[str, str], timeout: float = 20.0):
    """Wait until the client shows, for every file of the project, what a fresh check finds."""
    files = sorted({os.path.realpath(p) for p in root.rglob("*.aud")} | set(documents))
    expected = diagnostics_by_document(analyze(root, documents), documents)
    want = {from_fs_path(key): expected.get(key, []) for key in files}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        shown = {uri: list(client.diagnostics.get(uri, [])) for uri in want}
        if shown == want:
            return
        if loop.time() > deadline:
            assert shown == want
        try:
            await asyncio.wait_for(client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS),
                                   max(deadline - loop.time(), 0.01))
        except asyncio.TimeoutError:
            pass


@pytest.mark.asyncio
async def test_through_the_server_every_file_shows_what_a_fresh_check_finds(client: LanguageClient, served: Path):
    documents: dict[str, str] = {}
    versions: dict[str, int] = {}
    for step in STEPS:
        before = dict(documents)
        _apply(served, documents, step)
        for key in before.keys() - documents.keys():
            client.text_document_did_close(types.DidCloseTextDocumentParams(
                text_document=types.TextDocumentIdentifier(uri=from_fs_path(key))))
        for key, text in documents.items():
            if key not in before:
                versions[key] = 1
                open_document(client, key, text)
            elif before[key] != text:
                versions[key] += 1
                change_document(client, from_fs_path(key), versions[key], text)
        if step[2] in ("disk", "delete"):  # a file changed or deleted on disk: the editor's watcher says so
            client.workspace_did_change_watched_files(types.DidChangeWatchedFilesParams(changes=[
                types.FileEvent(uri=from_fs_path(str(served / step[1])), type=types.FileChangeType.Changed)]))
        await _shown_as_fresh(client, served, documents)
