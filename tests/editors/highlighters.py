"""Run the real highlighters over files: VS Code's TextMate engine (node) and a headless Vim.

Both are installed by .ci/run (the npm packages of tests/editors/textmate with
`npm ci`, Vim with apt); a missing one fails the tests with the command that
installs it, it never skips them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from language_tokens import ROOT

TEXTMATE_GRAMMAR = ROOT / "editors" / "vscode" / "syntaxes" / "audlang.tmLanguage.json"
TOKENIZER = Path(__file__).parent / "textmate"
VIM_PLUGIN = ROOT / "editors" / "vim"


def textmate_tokens(files: list[Path]) -> dict[Path, list[list[dict]]]:
    """``{file: [[{"text", "scopes"}, …] for each line]}`` as VS Code tokenizes them."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (.ci/run installs it)")
    if not (TOKENIZER / "node_modules" / "vscode-textmate").is_dir():
        pytest.fail(f"the tokenizer's npm packages are missing: run `npm ci --prefix {TOKENIZER.relative_to(ROOT)}`")
    result = subprocess.run([node, str(TOKENIZER / "tokenize.js"), str(TEXTMATE_GRAMMAR), *map(str, files)],
                            capture_output=True, text=True, timeout=120, cwd=TOKENIZER)
    assert result.returncode == 0, result.stderr
    return {Path(name): lines for name, lines in json.loads(result.stdout).items()}


_VIM_SCRIPT = r"""
let s:out = {'errors': [], 'files': {}}
let &runtimepath = g:audlang_plugin . ',' . &runtimepath
filetype plugin on
syntax on
for s:file in g:audlang_files
  let v:errmsg = ''
  try
    execute 'silent edit ' . fnameescape(s:file)
  catch
    call add(s:out.errors, s:file . ': ' . v:exception)
  endtry
  if v:errmsg != ''
    call add(s:out.errors, s:file . ': ' . v:errmsg)
  endif
  let s:rows = []
  for s:line in range(1, line('$'))
    let s:cols = []
    for s:col in range(1, col([s:line, '$']) - 1)
      call add(s:cols, synIDattr(synID(s:line, s:col, 1), 'name'))
    endfor
    call add(s:rows, s:cols)
  endfor
  let s:out.files[s:file] = {'filetype': &filetype, 'syntax': get(b:, 'current_syntax', ''), 'groups': s:rows}
endfor
call writefile([json_encode(s:out)], g:audlang_output)
qall!
"""


def vim_groups(files: list[Path], tmp_path: Path) -> dict:
    """Load the plugin in a headless Vim, open each file, and read the syntax group of every byte.

    Returns ``{"errors": [...], "files": {file: {"filetype", "syntax", "groups": [[group per byte] per line]}}}``.
    """
    vim = shutil.which("vim")
    if vim is None:
        pytest.fail("vim is not installed (.ci/run installs vim-nox)")
    script = tmp_path / "probe.vim"
    output = tmp_path / "groups.json"
    settings = [
        f"let g:audlang_plugin = {json.dumps(str(VIM_PLUGIN))}",
        f"let g:audlang_files = {json.dumps([str(f) for f in files])}",
        f"let g:audlang_output = {json.dumps(str(output))}",
    ]
    script.write_text("\n".join(settings) + _VIM_SCRIPT)
    result = subprocess.run([vim, "-Nu", "NONE", "-i", "NONE", "-n", "-es", "-S", str(script)],
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"vim failed ({result.returncode}): {result.stdout}{result.stderr}"
    assert output.exists(), f"vim wrote nothing: {result.stdout}{result.stderr}"
    data = json.loads(output.read_text())
    data["files"] = {Path(name): value for name, value in data["files"].items()}
    return data
