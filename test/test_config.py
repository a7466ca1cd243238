import pytest

from mocap_ros.core.config import MocapConfig


def test_defaults_are_valid_and_fast():
    cfg = MocapConfig().validate()
    assert cfg.n_iter == 1 and cfg.precision == "auto" and cfg.return_vertices is False


@pytest.mark.parametrize(
    "changes,match",
    [
        ({"n_iter": 0}, r"n_iter=0 is outside \[1, 5\]"),
        ({"precision": "fp8"}, "precision='fp8' is not one of"),
        ({"device": "tpu"}, "device='tpu'"),
        ({"device": "cuda:x"}, "device='cuda:x'"),
        ({"body_model": "mano"}, "body_model"),
        ({"bbox_mode": "roi", "roi": [0, 0, 0, 10]}, "roi"),
        ({"roi": [1, 2, 3]}, "4 numbers"),
    ],
)
def test_invalid_values_name_the_field(changes, match):
    with pytest.raises(ValueError, match=match):
        MocapConfig().replace(**changes)


def test_unknown_keys_rejected():
    with pytest.raises(ValueError, match="unknown configuration keys: \\['n_iters'\\]"):
        MocapConfig.from_dict({"n_iters": 3})


def test_every_field_is_documented():
    import dataclasses

    for f in dataclasses.fields(MocapConfig):
        assert len(f.metadata["description"]) > 15, f.name
