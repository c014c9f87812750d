import pytest
import torch
import torch.nn.functional as F

from engine.model.cin import ConditionalInstanceNorm, InstanceNorm, instance_norm


@pytest.mark.parametrize("shape", [(1, 3, 7, 9), (2, 32, 33, 17), (4, 8, 64, 64), (1, 1, 2, 2)])
def test_instance_norm_matches_torch(shape):
    torch.manual_seed(0)
    x = torch.randn(shape) * 3 + 1.5
    ref = F.instance_norm(x, eps=1e-5)
    assert (instance_norm(x) - ref).abs().max() <= 1e-5


def test_affine_instance_norm_matches_torch():
    torch.manual_seed(1)
    x = torch.randn(2, 5, 11, 13)
    m = InstanceNorm(5)
    with torch.no_grad():
        m.gamma.copy_(torch.randn(5))
        m.beta.copy_(torch.randn(5))
        ref = F.instance_norm(x, weight=m.gamma, bias=m.beta, eps=1e-5)
        assert (m(x) - ref).abs().max() <= 1e-5


def _cin(n=4, c=6):
    torch.manual_seed(2)
    m = ConditionalInstanceNorm(c, n)
    with torch.no_grad():
        m.gamma.copy_(torch.randn(n, c))
        m.beta.copy_(torch.randn(n, c))
    return m


def test_cin_one_hot_selects_row_and_blend_mixes_parameters():
    m, x = _cin(), torch.randn(1, 6, 9, 10)
    with torch.no_grad():
        for s in range(4):
            w = F.one_hot(torch.tensor(s), 4).float()
            ref = F.instance_norm(x, weight=m.gamma[s], bias=m.beta[s], eps=1e-5)
            assert (m(x, w) - ref).abs().max() <= 1e-5
        w = torch.tensor([0.25, 0.0, 0.75, 0.0])
        g, b = 0.25 * m.gamma[0] + 0.75 * m.gamma[2], 0.25 * m.beta[0] + 0.75 * m.beta[2]
        assert (m(x, w) - F.instance_norm(x, weight=g, bias=b, eps=1e-5)).abs().max() <= 1e-5
        # a blend of CIN parameters is not a blend of two outputs only because ReLU etc. follow; here it is linear
        assert (m(x, w) - (0.25 * m(x, torch.eye(4)[0]) + 0.75 * m(x, torch.eye(4)[2]))).abs().max() <= 1e-5


def test_cin_native_path_equals_manual_and_batch_weights():
    m, x = _cin(), torch.randn(1, 6, 12, 7)
    w = torch.tensor([0.1, 0.2, 0.3, 0.4])
    with torch.no_grad():
        manual = m(x, w)
        m.native = True
        assert (m(x, w) - manual).abs().max() <= 1e-5
        m.native = False
        xb = torch.cat([x, x * 2])
        wb = torch.stack([w, torch.eye(4)[1]])
        out = m(xb, wb)
        assert (out[0:1] - manual).abs().max() <= 1e-5
        assert (out[1:2] - m(x * 2, torch.eye(4)[1])).abs().max() <= 1e-5
