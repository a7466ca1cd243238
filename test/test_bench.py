"""The benchmark runs end to end and writes its table and JSON (no timing is asserted)."""

import json

import pytest

from mocap_ros.cli.main import main


# every variant, the ONNX export and the landmarks line: about a minute on 2 idle cores,
# several on busy ones
@pytest.mark.timeout(900)
def test_bench_writes_table_and_json(synthetic_assets_root, tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "--assets-dir", str(synthetic_assets_root), "--device", "cpu",
               "--frames", "2", "--warmup", "1", "--json", str(out)])
    assert rc == 0
    data = json.loads(out.read_text())
    names = list(data["variants"])
    assert names[0].startswith("baseline") and len(names) >= 3
    for stages in data["variants"].values():
        for stage in ("preprocess", "inference", "postprocess", "total"):
            assert stages[stage]["median"] > 0 and stages[stage]["p95"] >= stages[stage]["median"]
    assert {"fp32 n_iter=3", "fp32 n_iter=1"} <= set(data["model_only"])
    assert data["synthetic_weights"] is True and "CPU" in data["device"]
    assert data["n_iter_1_vs_3"]["rotation_deg_mean"] > 0
    printed = capsys.readouterr().out
    assert "speed-up" in printed and "1.00x" in printed
