import pytest
import torch
import torch.nn.functional as F

from supernet.losses import AdaptiveAlphaDivergence, KLDistillation, LabelSmoothingCE, alpha_divergence


@pytest.fixture
def logits():
    gen = torch.Generator().manual_seed(0)
    return torch.randn(8, 10, generator=gen), torch.randn(8, 10, generator=gen) * 2


def _direct_alpha(p, q, a):
    return (q * ((p / q) ** a - 1)).sum(-1) / (a * (a - 1))


def test_label_smoothing_ce_matches_formula(logits):
    s, _ = logits
    y = torch.arange(8) % 10
    eps = 0.1
    logq = F.log_softmax(s, -1)
    target = torch.full_like(s, eps / 10).scatter_(1, y[:, None], 1 - eps + eps / 10)
    torch.testing.assert_close(LabelSmoothingCE(eps)(s, y), -(target * logq).sum(-1))


def test_kd_is_kl_and_its_gradient_equals_soft_cross_entropy(logits):
    s, t = logits
    s = s.clone().requires_grad_()
    p = F.softmax(t, -1)
    kl = KLDistillation(1.0)(s, t)
    torch.testing.assert_close(kl, (p * (p.log() - F.log_softmax(s, -1))).sum(-1))
    assert (kl >= 0).all()
    (g_kl,) = torch.autograd.grad(kl.sum(), s)
    soft_ce = -(p * F.log_softmax(s, -1)).sum(-1)
    (g_ce,) = torch.autograd.grad(soft_ce.sum(), s)
    torch.testing.assert_close(g_kl, g_ce)
    t2 = KLDistillation(4.0)(s, t)
    torch.testing.assert_close(
        t2, 16 * (F.softmax(t / 4, -1) * (F.log_softmax(t / 4, -1) - F.log_softmax(s / 4, -1))).sum(-1)
    )


@pytest.mark.parametrize("alpha", [-1.0, -0.5, 0.5, 2.0])
def test_alpha_divergence_matches_direct_formula(logits, alpha):
    s, t = logits
    p, q = F.softmax(t, -1), F.softmax(s, -1)
    torch.testing.assert_close(alpha_divergence(p.log(), q.log(), alpha), _direct_alpha(p, q, alpha))


def test_alpha_limits_are_the_two_kls(logits):
    s, t = (v.double() for v in logits)  # double: the limits cancel terms of size 1/(1 - alpha)
    lp, lq = F.log_softmax(t, -1), F.log_softmax(s, -1)
    kl_pq = (lp.exp() * (lp - lq)).sum(-1)
    kl_qp = (lq.exp() * (lq - lp)).sum(-1)
    torch.testing.assert_close(alpha_divergence(lp, lq, 1 - 1e-6), kl_pq, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(alpha_divergence(lp, lq, 1e-6), kl_qp, atol=1e-4, rtol=1e-4)


def test_adaptive_alpha_logs_divergence_and_follows_its_gradient(logits):
    s, t = logits
    s = s.clone().requires_grad_()
    loss = AdaptiveAlphaDivergence(-1.0, 0.5, clip=1e6)
    value = loss(s, t)
    lp, lq = F.log_softmax(t, -1), F.log_softmax(s, -1)
    expected = torch.maximum(alpha_divergence(lp, lq, -1.0), alpha_divergence(lp, lq, 0.5))
    torch.testing.assert_close(value, expected)
    assert (value >= 0).all()  # the logged value is the divergence, never the (negative) surrogate
    (g,) = torch.autograd.grad(value.sum(), s)
    (g_ref,) = torch.autograd.grad(expected.sum(), s)
    torch.testing.assert_close(g, g_ref, atol=1e-5, rtol=1e-4)


def test_adaptive_alpha_default_uses_kl_at_plus_one_and_clips(logits):
    s, t = logits
    value = AdaptiveAlphaDivergence()(s, t)
    lp, lq = F.log_softmax(t, -1), F.log_softmax(s, -1)
    kl = (lp.exp() * (lp - lq)).sum(-1)
    d_minus = alpha_divergence(lp, lq, -1.0, clip=5.0)
    torch.testing.assert_close(value, torch.maximum(kl, d_minus))
    unclipped = alpha_divergence(lp, lq, -1.0)
    assert (d_minus <= unclipped + 1e-6).all()


def test_bad_temperature():
    with pytest.raises(ValueError, match="temperature"):
        KLDistillation(0.0)


def test_bad_smoothing_and_alpha_name_their_config_keys():
    with pytest.raises(ValueError, match=r"model\.label_smoothing=1\.0 must be a number in \[0, 1\)"):
        LabelSmoothingCE(1.0)
    with pytest.raises(ValueError, match=r"distill\.alpha_max=0 is the KL\(q\|\|p\) limit"):
        AdaptiveAlphaDivergence(-1.0, 0.0)


def test_adaptive_alpha_gradient_with_the_clip_active_is_alphanets_estimator(logits):
    """Where (p/q)^a is clipped, the gradient is AlphaNet's: -(q * rho) + q * sum(q * rho) with rho
    from the clipped ratio, not the gradient of the clipped divergence."""
    s, t = logits
    s = (3 * s).clone().requires_grad_()  # sharp student: many ratios beyond the clip
    alpha, clip = -1.0, 2.0
    value = AdaptiveAlphaDivergence(alpha, alpha, clip=clip)(s, t)
    (g,) = torch.autograd.grad(value.sum(), s)
    with torch.no_grad():
        lp, lq = F.log_softmax(t, -1), F.log_softmax(s, -1)
        q, ratio = lq.exp(), torch.exp(alpha * (lp - lq))
        assert (ratio > clip).any()  # the clip is active in this case
        weight = q * (ratio.clamp(0.0, clip) / alpha + 1.0 / (alpha * (alpha - 1.0)))
        alphanet = -weight + q * weight.sum(-1, keepdim=True)
    torch.testing.assert_close(g, alphanet, atol=1e-5, rtol=1e-4)
    clipped = alpha_divergence(F.log_softmax(t, -1), F.log_softmax(s, -1), alpha, clip)
    (g_clipped,) = torch.autograd.grad(clipped.sum(), s)
    assert not torch.allclose(g, g_clipped, atol=1e-4)
