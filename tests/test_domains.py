"""Transfer learning and domain adaptation (lecture 002): MMD, gradient reversal, frozen features,
the domain_adaptation task through the one loop (exact resume), the transfer sweep and the gap table."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from deepsky.config import ConfigError, validate_config
from deepsky.data import storage
from deepsky.models import create_model
from deepsky.models.domains_nets import Frozen, reverse_gradient, split_backbone_head
from deepsky.tasks import make_task
from deepsky.tasks.domains import gaussian_kernel, mmd2
from deepsky.train import fit
from tests.conftest import ROOT, ring_dataset, training_config

CPU = torch.device("cpu")


# ---------------------------------------------------------------- MMD
def test_mmd_matches_a_hand_computation():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    y = np.array([[1.0, 1.0], [3.0, -1.0]])
    sigmas = [0.5, 2.0]

    def k(a, b):
        return sum(np.exp(-np.sum((a - b) ** 2) / (2 * s * s)) for s in sigmas)

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(a, b) for a in x for b in y) / (n * m)
    got = mmd2(torch.tensor(x), torch.tensor(y), sigmas)
    assert float(got) == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
    assert float(gaussian_kernel(torch.tensor(x[:1]), torch.tensor(x[:1]), sigmas)) == pytest.approx(2.0)
    assert float(mmd2(torch.tensor(y), torch.tensor(x), sigmas)) == pytest.approx(float(got))


def test_mmd_sees_a_shift_and_not_a_resample():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(200, 4, generator=g), torch.randn(200, 4, generator=g)
    same, shifted = float(mmd2(a, b, [1.0])), float(mmd2(a, b + 1.0, [1.0]))
    assert abs(same) < 0.01 and shifted > 0.05
    with pytest.raises(ValueError, match="two points"):
        mmd2(a[:1], b, [1.0])


# ---------------------------------------------------------------- the network parts
@pytest.mark.parametrize("name", ["deepmerge", "winning_cnn", "resnet18"])
def test_split_backbone_head_shares_the_weights(name):
    torch.manual_seed(0)
    model = create_model(name, 3, 2, image_size=32).eval()
    features, head = split_backbone_head(model)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(head(features(x)), model(x))
        head.bias.add_(1.0)  # the same tensors, not copies
        torch.testing.assert_close(head(features(x)), model(x))
    assert isinstance(head, nn.Linear) and head.out_features == 2


def test_gradient_reversal_flips_the_feature_extractors_gradient():
    torch.manual_seed(0)
    model = create_model("domain_adaptive", 3, 1, image_size=32, adaptation="adversarial").eval()  # no dropout draws
    x = torch.randn(4, 3, 32, 32)

    def gradients(coefficient):
        model.zero_grad()
        f = model.features(x)
        f = f if coefficient is None else reverse_gradient(f, coefficient)
        model.discriminator(f).sum().backward()
        return ([p.grad.clone() for p in model.features.parameters()],
                [p.grad.clone() for p in model.discriminator.parameters()])

    (plain_f, plain_d), (rev_f, rev_d), (half_f, _) = gradients(None), gradients(1.0), gradients(0.5)
    assert any(g.abs().sum() > 0 for g in plain_f)
    for g, r, h in zip(plain_f, rev_f, half_f):
        torch.testing.assert_close(r, -g)
        torch.testing.assert_close(h, -0.5 * g)
    for g, r in zip(plain_d, rev_d):  # the discriminator itself still descends
        torch.testing.assert_close(r, g)


def test_frozen_feature_extractor_does_not_change_while_its_head_learns():
    torch.manual_seed(0)
    pretrained = create_model("deepmerge", 3, 1, image_size=32)
    features, head = split_backbone_head(pretrained)
    before = {k: v.clone() for k, v in features.state_dict().items()}
    model = nn.Sequential(Frozen(features), nn.Linear(head.in_features, 1))
    head_before = model[1].weight.clone()
    x, y = torch.randn(48, 3, 32, 32), torch.randint(0, 2, (48,))
    settings = {"epochs": 3, "batch_size": 16, "learning_rate": 1e-2, "precise_bn": False}
    task = make_task({"name": "binary", "class_names": ["a", "b"]})
    _, best = fit(model, (x, y), (x, y), settings, CPU, 1, ROOT / ".pytest_cache" / "frozen.pt", task)
    model.load_state_dict(best)
    (ROOT / ".pytest_cache" / "frozen.pt").unlink(missing_ok=True)
    after = features.state_dict()
    assert any("running_mean" in k for k in before)  # batch-norm statistics are checked too
    for key, value in before.items():
        assert torch.equal(value, after[key]), key
    assert not any(p.requires_grad for p in features.parameters())
    assert not torch.equal(head_before, model[1].weight)


# ---------------------------------------------------------------- the task through the one loop
def shifted_domains(n=96, seed=0):
    """Two domains: the same rings task; the target is blurred and noisier, with a sky offset."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    r = torch.hypot(yy - 15.5, xx - 15.5)

    def domain(count, width, noise):
        labels = torch.arange(count) % 2
        radius = 5 + 4 * torch.rand(count, generator=g)
        rings = torch.exp(-0.5 * ((r - radius[:, None, None]) / width) ** 2) * labels[:, None, None]
        x = rings[:, None].repeat(1, 3, 1, 1) * 3 + noise * torch.randn(count, 3, 32, 32, generator=g)
        return x, labels

    xs, ys = domain(n, 1.0, 1.0)
    xt, _ = domain(n, 2.0, 1.5)
    return {"x": xs, "y": ys, "target_x": xt + 0.5}


@pytest.mark.parametrize("adaptation", ["mmd", "adversarial"])
def test_adaptation_loop_resumes_exactly(adaptation, tmp_path):
    task = make_task({"name": "domain_adaptation", "class_names": ["non-lens", "lens"], "source": "a", "target": "b",
                      "mmd_weight": 1.0, "adversarial_weight": 0.5})
    train, val = shifted_domains(64, 0), shifted_domains(16, 1)
    settings = {"batch_size": 32, "learning_rate": 1e-3}
    torch.set_num_threads(1)

    def run(epochs, checkpoint):
        torch.manual_seed(3)
        model = create_model("domain_adaptive", 3, 1, image_size=32, adaptation=adaptation)
        return fit(model, train, val, {**settings, "epochs": epochs}, CPU, 5, checkpoint, task)

    history, best = run(3, tmp_path / "straight.pt")
    key = "train_mmd" if adaptation == "mmd" else "train_domain_loss"
    assert {key, "train_classification_loss", "val_feature_mmd", "val_accuracy"} <= set(history[0])
    run(1, tmp_path / "resumed.pt")  # stop after one epoch, then resume to three
    resumed, resumed_best = run(3, tmp_path / "resumed.pt")
    assert [r["val_loss"] for r in resumed] == [r["val_loss"] for r in history]
    assert [r[key] for r in resumed] == [r[key] for r in history]
    for name in best:
        assert torch.equal(best[name], resumed_best[name]), name


def test_no_adaptation_member_ignores_the_target_batch():
    task = make_task({"name": "domain_adaptation", "class_names": ["a", "b"], "source": "a", "target": "b"})
    data = shifted_domains(32)
    torch.manual_seed(0)
    model = create_model("deepmerge", 3, 1, image_size=32)
    batch = task.batch(data, torch.arange(16), CPU)
    poisoned = (batch[0], batch[1], torch.full_like(batch[2], float("nan")))
    from deepsky.tasks.base import Amp

    optimizers = task.optimizers(model, {"learning_rate": 1e-3})
    step = task.train_step(model, poisoned, optimizers, Amp(CPU, False))
    assert set(step) == {"loss", "classification_loss"} and np.isfinite(step["loss"])


# ---------------------------------------------------------------- stages on tiny on-disk domains
def write_target(data_root, seed=1):
    """A target domain on disk: the same rings, blurred and noisier."""
    from scipy.ndimage import gaussian_filter

    target = ring_dataset(data_root / "target", n=120, seed=seed)
    images = storage.load_images(target / storage.IMAGES, mmap=False)
    images = gaussian_filter(images, sigma=(0, 0, 1.2, 1.2)) + np.random.default_rng(seed).normal(0, 1.0, images.shape)
    storage.save_images(target / storage.IMAGES, images.astype(np.float32))
    return target


def domain_config(tmp_path):
    config = training_config(tmp_path, epochs=3, batch_size=32)
    config["datasets"]["target"] = dict(config["datasets"]["rings"])
    config["experiments"]["tiny"] = {
        "dataset": "rings", "task": "domain_adaptation", "folds": [0],
        "adaptation": {"target": "target", "baseline": "no_adaptation", "oracle": "oracle"},
        "transfer": {"labels": [0, 8, "all"], "steps": 4},
        "training": config["experiments"]["tiny"]["training"],
        "variants": {"no_adaptation": {"architecture": "deepmerge"},
                     "oracle": {"architecture": "deepmerge", "dataset": "target"},
                     "mmd": {"architecture": "domain_adaptive", "model_kwargs": {"adaptation": "mmd"}}},
    }
    return validate_config(config)


def test_config_names_bad_domain_keys(tmp_path):
    config = domain_config(tmp_path)
    config["experiments"]["tiny"]["adaptation"]["baseline"] = "nobody"
    with pytest.raises(ConfigError, match=r"experiments\.tiny\.adaptation\.baseline"):
        validate_config(config)
    config = domain_config(tmp_path)
    config["datasets"]["target"]["source"] = "simulate_galaxies"
    with pytest.raises(ConfigError, match=r"experiments\.tiny\.adaptation\.target.*classes"):
        validate_config(config)
    config = domain_config(tmp_path)
    del config["experiments"]["tiny"]["adaptation"]
    with pytest.raises(ConfigError, match="adaptation"):
        validate_config(config)


def test_members_transfer_sweep_and_gap_table(tmp_path):
    from deepsky.stages.domains import gap_table, transfer_fold
    from deepsky.stages.evaluate import evaluate_architecture
    from deepsky.stages.train import train_fold

    torch.set_num_threads(1)
    config = domain_config(tmp_path)
    config["tracking"]["register_models"] = False
    root = tmp_path / "data"
    ring_dataset(root / "rings", n=120)
    write_target(root)
    metric_files = []
    for member, dataset in (("no_adaptation", "rings"), ("oracle", "target"), ("mmd", "rings")):
        out = tmp_path / "results" / member
        train_fold(config, "tiny", member, 0, root / dataset, root / dataset / "split.parquet", None,
                   out / "fold0/model.pt", out / "fold0/history.csv")
        evaluate_architecture(config, "tiny", member, [out / "fold0/model.pt"], root / dataset, root / dataset / "split.parquet",
                              out / "predictions.parquet", out / "metrics.json")
        metric_files.append(out / "metrics.json")
    table = pd.read_parquet(tmp_path / "results/oracle/predictions.parquet")
    assert {"index", "label", "domain", "role", "fold", "architecture", "score"} <= set(table)
    assert sorted(table["domain"].unique()) == ["rings", "target"]
    metrics = json.loads((tmp_path / "results/mmd/metrics.json").read_text())[0]
    assert {"auroc_source", "auroc_target", "auroc", "accuracy_target"} <= set(metrics)
    assert metrics["auroc"] == metrics["auroc_target"]

    out = tmp_path / "results/transfer/fold0"
    sweep = transfer_fold(config, "tiny", 0, tmp_path / "results/no_adaptation/fold0/model.pt", root,
                          out / "metrics.csv", out / "predictions.parquet")
    n_all = int((pd.read_parquet(root / "target/split.parquet").query("fold not in (0, -1)")).shape[0])
    assert sorted(set(sweep["n_labels"])) == [0, 8, n_all]
    assert len(sweep) == 2 + 3 + 3  # no scratch network at N = 0
    zero = sweep[sweep["n_labels"] == 0].set_index("method")
    assert zero.loc["frozen", "auroc_target"] == zero.loc["finetune", "auroc_target"] == metrics_of(tmp_path, "no_adaptation")
    assert not (out / "checkpoints").exists() or not any((out / "checkpoints").iterdir())

    gap = gap_table(config, "tiny", metric_files, [out / "metrics.csv"]).set_index("member")
    assert gap.loc["no_adaptation", "recovered"] == 0.0
    assert gap.loc["oracle", "target_data"] == "all target labels" and gap.loc["mmd", "target_data"] == "unlabelled target"
    assert gap.loc["finetune_n8", "target_data"] == "8 target labels"
    base = gap.loc["no_adaptation"]
    assert base["drop"] == pytest.approx(base["source_mean"] - base["target_mean"])


def metrics_of(tmp_path, member):
    return json.loads((tmp_path / "results" / member / "metrics.json").read_text())[0]["auroc_target"]


def test_balanced_nested_label_draws():
    from deepsky.stages.domains import balanced_order

    labels = np.array([0] * 30 + [1] * 10 + [2] * 20)
    order = balanced_order(labels, 3)
    assert sorted(order) == list(range(60))
    assert np.bincount(labels[order[:9]], minlength=3).tolist() == [3, 3, 3]
    np.testing.assert_array_equal(order, balanced_order(labels, 3))


# ---------------------------------------------------------------- domain randomisation
def test_randomised_lens_renderer_draws_nuisances_per_image():
    from deepsky.data.domains import merge_randomised_config, render_randomised_cutout

    cfg = merge_randomised_config({"image_size": 32, "randomise": {"exposure_scale_range": [0.5, 0.5]}})
    drawn = [render_randomised_cutout("lens", np.random.default_rng(s), cfg)[1] for s in range(12)]
    assert {d["psf_model"] for d in drawn} == {"gaussian", "moffat"}
    assert len({round(d["read_noise"], 6) for d in drawn}) == 12 and all(d["exposure_scale"] == 0.5 for d in drawn)
    image, _ = render_randomised_cutout("ring", np.random.default_rng(1), cfg)
    again, _ = render_randomised_cutout("ring", np.random.default_rng(1), cfg)
    assert image.shape == (3, 32, 32) and np.array_equal(image, again)
    with pytest.raises(ValueError, match="unknown randomise keys"):
        merge_randomised_config({"randomise": {"psf": 1}})
    with pytest.raises(ValueError, match="unknown lens simulation keys.*psf_modle"):
        merge_randomised_config({"psf_modle": "moffat"})


KILLED_SCRIPT = """
import json, sys, torch
from deepsky.stages.train import train_fold
torch.set_num_threads(1)
config, root, out = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
train_fold(config, "tiny", "mmd", 0, root + "/rings", root + "/rings/split.parquet", None, out + "/model.pt", out + "/history.csv")
"""


@pytest.mark.slow
def test_adaptation_job_resumes_exactly_after_a_kill(tmp_path):
    from tests.conftest import assert_same_training, crash_and_resume, start_job

    config = domain_config(tmp_path)
    config["experiments"]["tiny"]["training"].update(epochs=4, batch_size=16)
    root = tmp_path / "data"
    ring_dataset(root / "rings", n=120)
    write_target(root)

    ref, crashed = crash_and_resume(lambda out: start_job(KILLED_SCRIPT, json.dumps(config), root, out), tmp_path)
    assert_same_training(ref, crashed, ["epoch", "train_loss", "train_mmd", "val_loss", "val_feature_mmd"])
