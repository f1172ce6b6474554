"""Tests of the model registry (deepsky.models)."""
from __future__ import annotations

import csv
from importlib import resources

import pytest
import torch
from torch import nn

from deepsky.models import (
    UnknownModelError,
    count_parameters,
    create_model,
    list_models,
    model_info,
    parameter_table,
    reference_model,
    register_model,
)
from deepsky.models import registry as reg

EXPECTED = {
    "simple_cnn", "winning_cnn", "deepmerge", "lenet5", "deeplens_resnet",
    "alexnet", "vgg16", "googlenet", "inception_v3",
    "resnet18", "resnet34", "resnet50", "resnext50_32x4d",
    "mlp_deep", "plain_cnn", "residual_cnn",
}
ALL = list_models()
# Models whose outputs are not one row of logits per image: tested in their tasks' test files.
NOT_CLASSIFIERS = {"unet": "per-pixel outputs", "mask_rcnn": "detections"}
CLASSIFIERS = [n for n in ALL if model_info(n).family not in NOT_CLASSIFIERS]


def _forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.train()  # train mode: BN batch statistics, GoogLeNet/Inception must still return a tensor
    with torch.no_grad():
        return model(x)


def _on_meta(name: str, **kw) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kw)


def _csv_rows() -> list[dict]:
    text = resources.files("deepsky.models").joinpath("reference_params.csv").read_text()
    return list(csv.DictReader(text.splitlines()))


# --------------------------------------------------------------------------- registry
def test_all_lecture_architectures_registered():
    assert EXPECTED <= set(ALL)


@pytest.mark.parametrize("name", CLASSIFIERS)
@pytest.mark.parametrize("num_classes", [1, 3])
def test_forward_shape_48x48x3(name, num_classes):
    torch.manual_seed(0)
    model = create_model(name, in_channels=3, num_classes=num_classes, image_size=48)
    out = _forward(model, torch.randn(2, 3, 48, 48))
    assert isinstance(out, torch.Tensor)
    assert out.shape == (2, num_classes)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["simple_cnn", "winning_cnn", "deepmerge", "lenet5",
                                  "deeplens_resnet", "alexnet", "googlenet", "inception_v3",
                                  "resnet18", "mlp_deep", "residual_cnn"])
def test_forward_shape_32x32x1(name):
    model = create_model(name, in_channels=1, num_classes=2, image_size=32)
    assert _forward(model, torch.randn(2, 1, 32, 32)).shape == (2, 2)


@pytest.mark.parametrize("name", ["winning_cnn", "deepmerge", "resnet18"])
def test_forward_odd_size_many_channels(name):
    model = create_model(name, in_channels=5, num_classes=4, image_size=37)
    assert _forward(model, torch.randn(2, 5, 37, 37)).shape == (2, 4)


@pytest.mark.parametrize("size", [32, 48])
def test_unet_gives_outputs_per_pixel(size):
    model = create_model("unet", in_channels=3, num_classes=4, image_size=size)
    assert _forward(model, torch.randn(2, 3, size, size)).shape == (2, 4, size, size)


def test_image_size_below_32_rejected():
    with pytest.raises(ValueError, match="image_size"):
        create_model("lenet5", 1, 10, 28)


def test_unknown_name_error_names_it_and_suggests():
    with pytest.raises(UnknownModelError) as exc:
        create_model("resnet19", 3, 1, 48)
    msg = str(exc.value)
    assert "resnet19" in msg and "resnet18" in msg
    assert isinstance(exc.value, KeyError) and isinstance(exc.value, ValueError)
    with pytest.raises(KeyError, match="no_such_net"):
        model_info("no_such_net")


def test_unknown_kwarg_rejected():
    with pytest.raises(TypeError):
        create_model("deepmerge", 3, 2, 75, not_a_kwarg=1)


def test_list_models_pattern():
    assert list_models("resnet*") == ["resnet18", "resnet34", "resnet50"]
    assert set(list_models("*cnn")) == {"simple_cnn", "winning_cnn", "plain_cnn", "residual_cnn"}
    assert list_models("RESNEXT*") == ["resnext50_32x4d"]
    assert list_models("nothing_matches*") == []
    assert list_models() == sorted(list_models())
    assert set(list_models(family="inception")) == {"googlenet", "inception_v3"}


def test_register_model_custom_and_duplicate():
    @register_model(family="test")
    def _tiny_test_net(in_channels, num_classes, image_size, reference=False):
        return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size ** 2, num_classes))

    try:
        m = create_model("_tiny_test_net", 2, 3, 32)
        assert m(torch.randn(4, 2, 32, 32)).shape == (4, 3)
        assert model_info("_tiny_test_net").family == "test"
        with pytest.raises(ValueError, match="already registered"):
            register_model(name="_tiny_test_net")(lambda **kw: None)
    finally:
        reg._REGISTRY.pop("_tiny_test_net", None)


def test_model_info_fields():
    info = model_info("inception_v3")
    assert info.family == "inception"
    assert info.reference_input == (3, 299, 299)
    assert info.reference_classes == 1000
    assert 23_000_000 < info.params_published < 28_000_000
    assert "Szegedy" in info.source
    d = model_info("lenet5").as_dict()
    assert d["reference_input"] == (1, 32, 32) and d["reference_classes"] == 10


def test_created_model_records_its_config():
    m = create_model("winning_cnn", 3, 1, 48, dropout=0.2)
    assert m.deepsky_config == {"name": "winning_cnn", "in_channels": 3, "num_classes": 1,
                                "image_size": 48, "reference": False, "dropout": 0.2}


# --------------------------------------------------------------------------- parameter counts
def test_deepmerge_per_layer_counts_exact():
    model = create_model("deepmerge", in_channels=3, num_classes=2, image_size=75)
    per_layer = [sum(p.numel() for p in m.parameters(recurse=False))
                 for m in model.modules() if any(True for _ in m.parameters(recurse=False))]
    assert per_layer == [608, 16, 1168, 32, 4640, 64, 165952, 2080, 66]
    assert count_parameters(model) == 174_626
    assert count_parameters(reference_model("deepmerge")) == 174_626
    assert _forward(model, torch.randn(2, 3, 75, 75)).shape == (2, 2)


def test_reference_csv_covers_registry():
    rows = _csv_rows()
    names = [r["architecture"] for r in rows]
    assert len(names) == len(set(names))
    assert set(names) == set(ALL)
    for r in rows:
        assert r["source"].strip(), r


@pytest.mark.parametrize("row", [r for r in _csv_rows() if r["params_published"].strip()],
                         ids=lambda r: r["architecture"])
def test_reference_param_counts_match_published(row):
    name = row["architecture"]
    published = int(row["params_published"])
    c, h, w = (int(v) for v in row["reference_input"].split("x"))
    model = _on_meta(name, reference=True)
    assert model.deepsky_config["in_channels"] == c and model.deepsky_config["image_size"] == h
    assert model.deepsky_config["num_classes"] == int(row["reference_classes"])
    tol = 0.05 if name == "lenet5" else 0.02
    n = count_parameters(model)
    assert abs(n - published) <= tol * published, (name, n, published)


def test_reference_is_unmodified_torchvision():
    import torchvision.models as tvm

    with torch.device("meta"):
        ours = reference_model("resnet50")
        theirs = tvm.resnet50(weights=None)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == \
           [(k, v.shape) for k, v in theirs.state_dict().items()]


def test_reference_rejects_conflicting_arguments():
    with pytest.raises(ValueError, match="reference"):
        create_model("resnet18", in_channels=1, reference=True)


def test_lenet5_reference_count():
    assert count_parameters(reference_model("lenet5")) == 61_706


def test_parameter_table_columns():
    df = parameter_table(["deepmerge", "lenet5", "winning_cnn"], image_size=48)
    assert {"architecture", "family", "params_reference", "params_published",
            "params_ours"} <= set(df.columns)
    row = df.set_index("architecture").loc["deepmerge"]
    assert row.params_reference == 174_626 and row.params_published == 174_626
    assert row.params_ours == count_parameters(create_model("deepmerge", 3, 1, 48))
    assert df.set_index("architecture").params_published.isna()["winning_cnn"]


def test_count_parameters_trainable_only():
    m = create_model("lenet5", 1, 10, 32)
    for p in m.c1.parameters():
        p.requires_grad_(False)
    assert count_parameters(m) == 61_706 - 156
    assert count_parameters(m, trainable_only=False) == 61_706


# --------------------------------------------------------------------------- structure / kwargs
def _types(model):
    return [type(m) for m in model.modules()]


def test_winning_cnn_kwargs_change_structure():
    base = create_model("winning_cnn", 3, 1, 48)
    assert nn.Dropout in _types(base) and nn.BatchNorm2d in _types(base)
    assert nn.Dropout not in _types(create_model("winning_cnn", 3, 1, 48, dropout=0))
    assert nn.BatchNorm2d not in _types(create_model("winning_cnn", 3, 1, 48, batch_norm=False))
    elu = create_model("winning_cnn", 3, 1, 48, activation="elu")
    assert nn.ELU in _types(elu) and nn.ReLU not in _types(elu)
    mixed = create_model("winning_cnn", 3, 1, 48,
                         activation=["relu", "relu", "elu", "relu", "relu"])
    assert _types(mixed).count(nn.ELU) == 1
    for act in ("relu", "elu", "prelu", "tanh", "sigmoid", "leaky_relu"):
        m = create_model("winning_cnn", 3, 2, 48, activation=act)
        assert _forward(m, torch.randn(2, 3, 48, 48)).shape == (2, 2)
    with pytest.raises(ValueError):
        create_model("winning_cnn", 3, 1, 48, activation="swishy")


def test_winning_cnn_padding_auto():
    def pads(m):
        return {c.padding for c in m.modules() if isinstance(c, nn.Conv2d)}
    assert pads(create_model("winning_cnn", 3, 1, 48)) == {(1, 1)}  # valid would vanish
    assert pads(create_model("winning_cnn", 3, 1, 128)) == {(0, 0)}  # Keras 'valid'
    with pytest.raises(ValueError, match="vanish"):
        create_model("winning_cnn", 3, 1, 48, padding="valid")


def test_simple_cnn_layers():
    m = create_model("simple_cnn", 3, 10, 48)
    assert m.conv.bias is None and m.fc1.bias is None
    assert m.conv.out_channels == 32 and m.fc1.out_features == 1668
    assert m.fc1.in_features == 32 * 23 * 23


def test_resnet_stem_adaptation():
    small = create_model("resnet18", 1, 1, 48)
    assert small.conv1.kernel_size == (3, 3) and small.conv1.stride == (1, 1)
    assert small.conv1.in_channels == 1 and isinstance(small.maxpool, nn.MaxPool2d)
    large = _on_meta("resnet18", in_channels=4, num_classes=1, image_size=128)
    assert large.conv1.kernel_size == (7, 7) and large.conv1.in_channels == 4
    assert large.fc.out_features == 1


def test_deeplens_layer_plan():
    m = create_model("deeplens_resnet", 1, 1, 45)
    convs = [c for c in m.modules() if isinstance(c, nn.Conv2d)]
    shortcuts = [u.shortcut for s in m.stages for u in s if u.shortcut is not None]
    assert len(convs) - len(shortcuts) == 46
    assert len(shortcuts) == 4 and m.fc.in_features == 512
    assert nn.ELU in _types(m)


def test_practice_nets_kwargs():
    plain = create_model("plain_cnn", 3, 1, 48, depth=8)
    res = create_model("residual_cnn", 3, 1, 48, depth=8)
    assert count_parameters(plain) == count_parameters(res)
    n_convs = sum(isinstance(c, nn.Conv2d) for c in plain.modules())
    assert n_convs == 8 + 1  # body + stem
    with pytest.raises(ValueError):
        create_model("residual_cnn", 3, 1, 48, depth=7)
    mlp = create_model("mlp_deep", 1, 1, 32, depth=5, width=16, activation="sigmoid",
                       batch_norm=True, residual=True, init="xavier")
    assert len(mlp.hidden) == 5 and nn.Sigmoid in _types(mlp) and nn.BatchNorm1d in _types(mlp)
    assert mlp(torch.randn(4, 1, 32, 32)).shape == (4, 1)


@pytest.mark.parametrize("name", ["residual_cnn", "plain_cnn"])
def test_gradient_reaches_first_layer(name):
    torch.manual_seed(0)
    m = create_model(name, 3, 1, 48, depth=20)
    loss = nn.BCEWithLogitsLoss()(m(torch.randn(4, 3, 48, 48)), torch.ones(4, 1))
    loss.backward()
    g = m.stem.conv.weight.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


# --------------------------------------------------------------------------- heavy
@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg16", "alexnet", "resnet50", "googlenet", "inception_v3"])
def test_reference_forward_full_size(name):
    model = reference_model(name).eval()
    c, h, w = model_info(name).reference_input
    with torch.no_grad():
        assert model(torch.randn(1, c, h, w)).shape == (1, 1000)
