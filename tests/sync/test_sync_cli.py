"""``audlang sync errors`` and ``sync status`` over a real state database."""

from __future__ import annotations

import json

import sqlalchemy as sa
from click.testing import CliRunner
from sync_helpers import AS_OF, expected, model_of, warehouse
from vendor_servers import AttentiveServer

from audlang import sync
from audlang.cli import cli


def test_sync_errors_and_status(tmp_path, tmp_path_factory):
    server = AttentiveServer()
    try:
        url = warehouse(tmp_path, tmp_path_factory)
        model = model_of(tmp_path, f'''
destination "SMS" attentive <
  api_key = env("KEY")
  segment = "seg-1"
  base_url = "{server.url}"
  batch_size = 40
>
campaign "Holiday" <
  audience segment "Reachable"
  treatment "All" 100% to "SMS"
>
''')
        wh = sa.create_engine(url)
        state_url = f"sqlite:///{tmp_path / 'state.db'}"
        state = sa.create_engine(state_url)
        sync.materialize_campaigns(wh, model, AS_OF)
        bad = sorted(expected(wh, "Holiday", "All", ("phone",)).values())[:2]
        server.poison = set(bad)
        sync.run(model, wh, state, AS_OF, tmp_path, env={"KEY": "secret-key"}, http_options={"backoff": 0.01})
        wh.dispose()
        state.dispose()
    finally:
        server.close()
    (tmp_path / "audlang.toml").write_text(f'warehouse = "{url}"\nstate = "{state_url}"\n')
    runner = CliRunner()
    out = runner.invoke(cli, ["--project", str(tmp_path), "sync", "errors", "SMS", "--format", "json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert [e["key"] for e in doc["errors"]] == bad
    assert {(e["operation"], e["status"], e["attempts"]) for e in doc["errors"]} == {("add", "400", 1)}
    text = runner.invoke(cli, ["--project", str(tmp_path), "sync", "errors"])
    assert text.exit_code == 0 and bad[0] in text.output and "2 rejected members" in text.output
    assert "secret-key" not in text.output
    none = runner.invoke(cli, ["--project", str(tmp_path), "sync", "errors", "Other"])
    assert 'no rejected members for "Other"' in none.output
    status = runner.invoke(cli, ["--project", str(tmp_path), "sync", "status"])
    assert status.exit_code == 0 and "partial" in status.output and "2 rejected" in status.output
