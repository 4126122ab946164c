"""What the language server's tests share: the real server's command, a client's documents and
notifications, and trees compared with their positions.

Imported as ``from lsp_session import ...`` (pytest puts this folder on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import sys

import attrs
import pytest
from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp import ClientServerConfig, LanguageClient

SERVER = ClientServerConfig(server_command=[sys.executable, "-m", "audlang.cli", "lsp"])


async def published(client: LanguageClient, uri: str, predicate, timeout: float = 20.0):
    """The diagnostics of ``uri`` once ``predicate`` holds for them."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (uri in client.diagnostics and predicate(client.diagnostics[uri])):
        remaining = deadline - loop.time()
        if remaining <= 0:
            pytest.fail(f"no matching diagnostics for {uri}; got {client.diagnostics.get(uri)!r}")
        await asyncio.wait_for(client.wait_for_notification(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS), remaining)
    return client.diagnostics[uri]


def open_document(client: LanguageClient, path, text: str) -> str:
    uri = from_fs_path(str(path))
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id="audlang", version=1, text=text)))
    return uri


def change_document(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))


def laid_out(value):
    """A syntax tree, model part or diagnostics as nested tuples, spans included: the nodes' own equality
    leaves spans out (two layouts of one text compare equal), and here where everything is matters."""
    if isinstance(value, (tuple, list)):
        return tuple(laid_out(item) for item in value)
    if isinstance(value, dict):
        return tuple((laid_out(k), laid_out(v)) for k, v in value.items())
    if attrs.has(type(value)):
        return (type(value).__name__, *(laid_out(getattr(value, f.name)) for f in attrs.fields(type(value))))
    return value
