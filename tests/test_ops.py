import pytest
import torch
import torch.nn.functional as F

from supernet.ops import ElasticBatchNorm2d, ElasticConv2d, ElasticLinear, ElasticSequential, ElasticSqueezeExcite


def test_conv_uses_the_parameter_itself_at_full_size():
    conv = ElasticConv2d(8, 16, 5)
    weight, _ = conv.active_weight(8)
    assert weight is conv.weight  # no slicing, no copy


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
