import pytest
import torch
import torch.nn.functional as F

from supernet.ops import ElasticBatchNorm2d, ElasticConv2d, ElasticLinear, ElasticSequential, ElasticSqueezeExcite


def test_active_weights_are_views_of_the_parameters_that_follow_their_updates():
    conv = ElasticConv2d(8, 16, 5)
    conv.configure(out_channels=12, kernel_size=3)
    weight, _ = conv.active_weight(6)
    assert weight.untyped_storage().data_ptr() == conv.weight.untyped_storage().data_ptr()  # no copy
    assert conv.active_weight(6)[0] is weight  # cut once, kept
    with torch.no_grad():
        conv.weight.mul_(2)  # an optimizer's in-place step shows through the kept window
    assert torch.equal(conv.active_weight(6)[0], conv.weight[:12, :6, 1:4, 1:4])


def test_window_gradients_accumulate_into_grad_as_autograd_slicing_does():
    """Children of several windows, one backward each: ``.grad`` is None until used, then
    full-size, equal bit for bit to what autograd's own slicing of the parameter accumulates;
    ``on_gradient`` observers see each window's gradient; set_to_none starts over."""
    from supernet.ops.slicing import on_gradient

    torch.manual_seed(0)
    conv = ElasticConv2d(8, 16, 5, bias=True)
    x = torch.randn(2, 8, 7, 7)
    settings = [(16, 5, 8), (6, 3, 5), (6, 3, 5)]  # (out channels, kernel, in channels)
    expected = {"weight": 0, "bias": 0}
    for out, k, c_in in settings:
        s = (5 - k) // 2
        weight, bias = conv.weight[:out, :c_in, s : s + k, s : s + k], conv.bias[:out]
        w_grad, b_grad = torch.autograd.grad(
            F.conv2d(x[:, :c_in], weight, bias, 1, k // 2).square().sum(), [conv.weight, conv.bias]
        )
        expected["weight"] = expected["weight"] + w_grad
        expected["bias"] = expected["bias"] + b_grad
    seen = []
    on_gradient(conv.weight, lambda g: seen.append(tuple(g.shape)))
    assert conv.weight.grad is None
    for out, k, c_in in settings:
        conv.configure(out_channels=out, kernel_size=k)
        conv(x[:, :c_in]).square().sum().backward()
    assert seen == [(16, 8, 5, 5), (6, 5, 3, 3), (6, 5, 3, 3)]
    assert torch.equal(conv.weight.grad, expected["weight"]) and torch.equal(conv.bias.grad, expected["bias"])
    conv.zero_grad(set_to_none=True)
    assert conv.weight.grad is None
    conv.configure(out_channels=4, kernel_size=3)
    conv(x[:, :2]).sum().backward()
    assert conv.weight.grad.shape == (16, 8, 5, 5)
    assert conv.weight.grad[4:].abs().sum() == 0 and conv.weight.grad[:4, :2, 1:4, 1:4].abs().sum() > 0


def test_windows_taken_together_route_each_gradient_to_its_own_parameter():
    """One call cuts a module's weight and bias windows through one autograd node: a window left
    out of the graph gets no gradient while the others do, and freezing a parameter after the
    windows were cut takes it out of training (the windows are cut again)."""
    linear = ElasticLinear(6, 4)
    linear.configure(out_features=3)
    x = torch.randn(2, 5)
    weight, bias = linear.active_weight(5)
    (x @ weight.t()).sum().backward()  # the bias window is not used
    assert linear.bias.grad is None
    torch.testing.assert_close(linear.weight.grad[:3, :5], x.sum(0).expand(3, 5))
    assert linear.weight.grad[3:].abs().sum() == 0 and linear.weight.grad[:, 5:].abs().sum() == 0
    linear.zero_grad(set_to_none=True)
    linear.bias.requires_grad_(False)
    linear(x).sum().backward()
    assert linear.bias.grad is None and linear.weight.grad is not None


def test_windows_are_cut_again_for_new_storage_and_not_shared_by_a_copy():
    import copy

    linear = ElasticLinear(6, 4)
    linear.configure(out_features=3)
    x = torch.randn(2, 5)
    linear(x).sum().backward()  # windows cut and kept
    twin = copy.deepcopy(linear)
    twin.zero_grad(set_to_none=True)
    linear.zero_grad(set_to_none=True)
    twin(x).sum().backward()
    assert linear.weight.grad is None and twin.weight.grad is not None  # the copy's gradient is its own
    linear.double()  # new storage: the old windows must not be used
    out = linear(x.double())
    assert out.dtype == torch.float64
    out.sum().backward()
    assert linear.weight.grad.dtype == torch.float64
    torch.testing.assert_close(linear.weight.grad, twin.weight.grad.double())
    with torch.no_grad():
        linear(x.double())  # a window cut without gradients is not the one training uses
    linear.zero_grad(set_to_none=True)
    linear(x.double()).sum().backward()
    assert linear.weight.grad is not None


def test_conv_kernel_is_centre_crop_and_channels_leading_slice():
    conv = ElasticConv2d(8, 16, 5, stride=2)
    conv.configure(out_channels=12, kernel_size=3)
    x = torch.randn(2, 6, 9, 9)
    expected = F.conv2d(x, conv.weight[:12, :6, 1:4, 1:4], None, 2, 1)
    torch.testing.assert_close(conv(x), expected)
    plain = conv.export(6)
    assert (plain.in_channels, plain.out_channels, plain.kernel_size, plain.stride) == (6, 12, (3, 3), (2, 2))
    torch.testing.assert_close(plain(x), expected)


def test_configure_sets_the_whole_setting_and_refuses_what_the_weights_cannot_do():
    conv = ElasticConv2d(8, 16, 5)
    conv.configure(out_channels=12, kernel_size=3)
    conv.configure(out_channels=10)  # the kernel size left out is the largest again
    assert (conv.out_channels, conv.kernel_size) == (10, 5)
    with pytest.raises(ValueError, match="out_channels must be in 1..16"):
        conv.configure(out_channels=17)
    with pytest.raises(ValueError, match="not a centre crop"):
        conv.configure(kernel_size=4)
    with pytest.raises(ValueError, match="configure its kernel_size only"):
        ElasticConv2d(8, 8, 3, depthwise=True).configure(out_channels=4)
    with pytest.raises(ValueError, match="depth must be in 1..2"):
        ElasticSequential([torch.nn.Identity(), torch.nn.Identity()]).configure(depth=3)


def test_depthwise_follows_input_channels():
    conv = ElasticConv2d(16, 16, 3, depthwise=True)
    x = torch.randn(1, 10, 5, 5)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight[:10], None, 1, 1, 1, 10))
    assert conv.export(10).groups == 10


def test_batchnorm_updates_only_active_slice_and_exports():
    bn = ElasticBatchNorm2d(8, momentum=None)
    x = torch.randn(16, 5, 3, 3) * 3 + 1
    bn.train()(x)
    torch.testing.assert_close(bn.running_mean[:5], x.mean((0, 2, 3)))
    assert torch.equal(bn.running_mean[5:], torch.zeros(3))
    plain = bn.export(5).eval()
    torch.testing.assert_close(plain(x), bn.eval()(x))


def test_linear_and_se_export_match():
    lin = ElasticLinear(32, 10)
    x = torch.randn(3, 20)
    torch.testing.assert_close(lin.export(20)(x), lin(x))
    se = ElasticSqueezeExcite(64, 16)
    se.configure(channels=40, reduced_channels=16)
    x = torch.randn(2, 40, 4, 4)
    torch.testing.assert_close(se.export(40)(x), se(x))
