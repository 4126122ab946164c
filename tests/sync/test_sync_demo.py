"""``audlang demo`` syncs the example's campaigns end to end: csv files and a local Attentive-shaped server."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys


def test_demo_syncs_the_example_campaigns(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("AUDLANG_WAREHOUSE", "AUDLANG_STATE", "ATTENTIVE_API_KEY")}
    env["NO_COLOR"] = "1"
    folder = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "audlang", "demo", str(folder), "--customers", "1500"],
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    held = dict(re.findall(r"segment (audlang-[\w-]+): ([\d,]+) members", out))
    assert set(held) == {"audlang-holiday-sms", "audlang-store-invites-pdx", "audlang-store-invites-sea"}
    assert all(int(n.replace(",", "")) > 0 for n in held.values())
    exports = folder / "target" / "exports"
    files = {p.name: p for p in exports.glob("*.csv")}
    assert "Holiday SMS 2024-Free Shipping.csv" in files
    treatments = 0
    for name in ("Holiday SMS 2024-20_ Off.csv", "Holiday SMS 2024-Free Shipping.csv"):
        with files[name].open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert list(rows[0]) == ["customer_id", "email", "phone"]
        treatments += len(rows)
    # The two treatments hold the whole audience but the 10% holdout, all sent to one Attentive segment.
    assert treatments == int(held["audlang-holiday-sms"].replace(",", ""))
    assert "failed" not in re.sub(r"\d+ failed", "", out.split("The local Attentive server")[0].split("synced", 1)[-1])
