import pytest
import torch

from mocap_ros.estimation.hmr.network import HMR


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = HMR().eval()
    # non-trivial heads so that iterations matter
    for head in (m.decpose, m.decshape, m.deccam):
        torch.nn.init.normal_(head.weight, std=0.01)
    return m


def test_state_dict_names_and_shapes_match_frankmocap(model):
    sd = model.state_dict()
    expected = {
        "conv1.weight": (64, 3, 7, 7),
        "bn1.running_var": (64,),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer1.0.downsample.1.num_batches_tracked": (),
        "layer3.5.conv3.weight": (1024, 256, 1, 1),
        "layer4.2.bn3.bias": (2048,),
        "fc1.weight": (1024, 2205),
        "fc2.weight": (1024, 1024),
        "decpose.weight": (144, 1024),
        "decshape.weight": (10, 1024),
        "deccam.weight": (3, 1024),
        "init_pose": (1, 144),
        "init_shape": (1, 10),
        "init_cam": (1, 3),
    }
    for key, shape in expected.items():
        assert tuple(sd[key].shape) == shape, key
    assert len(sd) == 331  # 320 ResNet-50 (incl. BN counters) + 8 regressor + 3 mean buffers
    assert not any(k.startswith(("fc.", "avgpool")) for k in sd)


def test_outputs_and_iterations(model):
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        r1, b1, c1 = model(x, n_iter=1)
        r3, _, _ = model(x, n_iter=3)
        r3b, _, _ = model(x, n_iter=3)
    assert r1.shape == (2, 24, 3, 3) and b1.shape == (2, 10) and c1.shape == (2, 3)
    assert r1.dtype == torch.float32
    assert not torch.allclose(r1, r3)  # n_iter is a real run-time argument
    assert torch.equal(r3, r3b)  # eval mode: dropout off, deterministic
    with pytest.raises(ValueError, match="n_iter"):
        model(x, n_iter=0)


def test_starts_from_mean_params():
    import numpy as np

    pose = np.tile(np.array([1, 0, 0, 1, 0, 0], np.float32), 24)
    m = HMR(pose, np.arange(10), np.array([0.9, 0.1, 0.2])).eval()
    for head in (m.decpose, m.decshape, m.deccam):
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
    with torch.inference_mode():
        R, betas, cam = m(torch.zeros(1, 3, 224, 224), n_iter=3)
    assert torch.allclose(R, torch.eye(3).expand(1, 24, 3, 3))
    assert torch.allclose(betas, torch.arange(10.0)[None])
    assert torch.allclose(cam, torch.tensor([[0.9, 0.1, 0.2]]))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (fp16 autocast)")
def test_fp16_matches_fp32_on_cuda(model):
    m = model.cuda()
    x = torch.randn(4, 3, 224, 224, device="cuda", generator=torch.Generator("cuda").manual_seed(2))
    with torch.inference_mode():
        r32, b32, c32 = m(x, n_iter=1)
        with torch.autocast("cuda", dtype=torch.float16):
            r16, b16, c16 = m(x, n_iter=1)
    assert r16.dtype == torch.float32  # rotations computed in fp32 even under autocast
    for a16, a32 in ((r16, r32), (b16, b32), (c16, c32)):
        assert (a16 - a32).norm() / a32.norm().clamp_min(1e-6) <= 1e-2
    model.cpu()
