"""The VS Code extension as users get it: packaged by ``@vscode/vsce`` into a ``.vsix``, installed, started.

``.ci/run`` installs the extension's locked packages (``npm ci --prefix editors/vscode``) and packages
it. Here vsce packages it again into a temporary folder; the package is installed as ``code
--install-extension`` does (its ``extension/`` folder unpacked into an extensions folder), and its
checked: the manifest, every file the manifest names, the client library bundled and no development
packages. Then node loads the installed extension with a stand-in for VS Code's ``vscode`` module
(``vscode_harness.js``) and activates it: the real ``vscode-languageclient`` of the package starts the
real ``audlang lsp`` and finishes the ``initialize`` handshake with it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from language_tokens import ROOT

EXTENSION = ROOT / "editors" / "vscode"
HARNESS = Path(__file__).parent / "vscode_harness.js"
VSIX_NS = {"v": "http://schemas.microsoft.com/developer/vsx-schema/2011"}


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed (.ci/run installs it)")
    return found


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    vsce = EXTENSION / "node_modules" / ".bin" / "vsce"
    if not vsce.exists():
        pytest.fail("the extension's packages are not installed: npm ci --prefix editors/vscode (.ci/run does)")
    out = tmp_path_factory.mktemp("vsix")
    manifest = json.loads((EXTENSION / "package.json").read_text())
    vsix = out / f"{manifest['name']}-{manifest['version']}.vsix"
    result = subprocess.run([tool("node"), str(vsce), "package", "--allow-missing-repository", "--out", str(vsix)],
                            cwd=EXTENSION, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    folder = out / "extensions" / f"{manifest['publisher']}.{manifest['name']}-{manifest['version']}"
    with zipfile.ZipFile(vsix) as package:
        names = package.namelist()
        assert "extension.vsixmanifest" in names and "[Content_Types].xml" in names
        identity = ET.fromstring(package.read("extension.vsixmanifest")).find("v:Metadata/v:Identity", VSIX_NS)
        assert identity is not None
        assert (identity.get("Id"), identity.get("Publisher"), identity.get("Version")) == (
            manifest["name"], manifest["publisher"], manifest["version"])
        for name in names:
            if name.startswith("extension/") and not name.endswith("/"):
                target = folder / name.removeprefix("extension/")
                assert target.resolve().is_relative_to(folder.resolve()), name  # no entry escapes the folder
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(package.read(name))
    return folder


def test_the_package_holds_what_the_manifest_names_and_only_the_runtime_packages(installed: Path):
    manifest = json.loads((installed / "package.json").read_text())
    assert manifest == json.loads((EXTENSION / "package.json").read_text())
    contributes = manifest["contributes"]
    named = [manifest["main"], *(g["path"] for g in contributes["grammars"]),
             *(s["path"] for s in contributes["snippets"]),
             *(lang["configuration"] for lang in contributes["languages"])]
    for path in named:
        assert (installed / path).is_file(), path
    lock = json.loads((EXTENSION / "package-lock.json").read_text())["packages"]
    client = json.loads((installed / "node_modules" / "vscode-languageclient" / "package.json").read_text())
    assert client["version"] == lock["node_modules/vscode-languageclient"]["version"]
    bundled = {p.name for p in (installed / "node_modules").iterdir()}
    assert "@vscode" not in bundled and ".bin" not in bundled  # vsce is a development package
    assert not list(installed.rglob("*.vsix"))


def test_the_installed_extension_starts_the_language_server(installed: Path, tmp_path: Path):
    audlang = Path(sys.executable).parent / "audlang"
    assert audlang.is_file(), "the audlang command of this environment"
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "audlang.toml").write_text('name = "ws"\n')
    result = subprocess.run([tool("node"), str(HARNESS), str(installed), str(audlang), str(workspace)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    started = json.loads(result.stdout)
    assert started["command"] == str(audlang) and started["args"] == ["lsp"]
    assert started["serverInfo"]["name"] == "audlang"
    capabilities = started["capabilities"]
    for feature in ("hoverProvider", "definitionProvider", "documentFormattingProvider", "documentSymbolProvider"):
        assert capabilities[feature] is True, feature
    assert capabilities["completionProvider"]["triggerCharacters"] == ['"']
