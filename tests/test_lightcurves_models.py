"""Sequence models and their inputs: padding and masking never change an output, features of a
light curve cut short never see its future, and gradients through time behave as lecture 002 says."""

import numpy as np
import pytest
import torch

from deepsky.data.lightcurves import merge_simulation_config, simulate_lightcurves
from deepsky.data.lightcurves_tensors import encode, n_features, pad, raw_sequences, truncate
from deepsky.models import create_model, list_models
from deepsky.models.lightcurves_nets import Sequences
from deepsky.stages.lightcurves_analysis import first_step_ratio, input_gradient_norms

ARCHITECTURES = ["lc_rnn", "lc_gru", "lc_lstm", "lc_transformer", "lc_conv1d"]
BANDS = ["g", "r", "i"]


@pytest.fixture(scope="module")
def sequences():
    catalog, observations = simulate_lightcurves(2, merge_simulation_config({}), seed=11)
    return catalog, raw_sequences(observations, catalog["index"], BANDS)


def test_registered_in_the_family():
    assert set(list_models(family="lightcurves")) == set(ARCHITECTURES)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_padded_batch_equals_single_sequences(name, sequences):
    torch.manual_seed(0)
    model = create_model(name, n_features(len(BANDS)), 6, image_size=1).eval()
    raw, lengths = pad(sequences[1])
    assert len(set(lengths.tolist())) > 3  # really different lengths, really padded
    with torch.no_grad():
        batched = model(encode(raw, lengths))
        single = torch.cat([model(encode(*pad([s]))) for s in sequences[1]])
        # Garbage after the end of a sequence is ignored as well as zeros are.
        noisy = raw + 1e3 * (torch.arange(raw.shape[1])[None, :, None] >= lengths[:, None, None])
        garbage = model(encode(noisy, lengths))
    torch.testing.assert_close(batched, single, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(batched, garbage, rtol=1e-4, atol=1e-5)


def test_features_of_a_cut_light_curve_do_not_see_its_future(sequences):
    raw, lengths = pad(sequences[1])
    seen = truncate(raw, lengths, 0.3)
    assert (seen <= lengths).all() and (seen >= 1).all() and (seen < lengths).any()
    cut = encode(raw, seen)
    alone = [encode(*pad([s[: int(n)]])).values[0] for s, n in zip(sequences[1], seen)]
    for k, values in enumerate(alone):
        torch.testing.assert_close(cut.values[k, : len(values)], values)
        assert (cut.values[k, len(values):] == 0).all()
    # The time span fraction: every observation kept lies in the first 30 % of the span.
    span = torch.tensor([s[-1, 0] for s in sequences[1]])
    last_kept = raw[torch.arange(len(raw)), seen - 1, 0]
    assert (last_kept <= 0.3 * span + 1e-5).all()


def test_features_are_normalised_per_light_curve_and_band(sequences):
    raw, lengths = pad(sequences[1])
    values = encode(raw, lengths).values
    real = torch.arange(raw.shape[1])[None] < lengths[:, None]
    onehot = values[..., 2:2 + len(BANDS)]
    assert (onehot.sum(-1)[real] == 1).all()
    for k, band in enumerate(BANDS):
        in_band = onehot[..., k] == 1
        for n in range(len(raw)):
            flux = values[n, in_band[n], -3]
            assert flux.abs().max() == pytest.approx(1.0)  # the band's brightest point at |1|
            scale = 10 ** (values[n, in_band[n], -1] + 3)  # the band's brightness, the same for its points
            assert torch.allclose(scale, raw[n, in_band[n], -2].abs().max().expand_as(scale), rtol=1e-4)


def test_a_plain_tensor_is_a_batch_of_full_sequences():
    torch.manual_seed(0)
    model = create_model("lc_gru", 4, 3, image_size=1).eval()
    x = torch.randn(2, 4, 10)
    with torch.no_grad():
        plain = model(x)
        explicit = model(Sequences(x.transpose(1, 2), torch.tensor([10, 10])))
    torch.testing.assert_close(plain, explicit)


def test_gradients_vanish_through_time_in_a_tanh_rnn_not_through_attention():
    """Lecture 002: backpropagation through time multiplies by the recurrent Jacobian at every step,
    attention reaches every observation in one step. (Untrained, an LSTM's forget gates sit at 0.5
    and lose as much: that gates keep gradients is learnt, see the workflow figure.)"""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    length = 120
    t = np.sort(rng.uniform(0, 150, length))
    sequence = np.column_stack([t - t[0], np.diff(t, prepend=t[0]), np.eye(3)[rng.integers(3, size=length)],
                                rng.normal(100, 30, length), np.full(length, 10.0)]).astype(np.float32)
    raw, lengths = pad([sequence] * 8)
    ratios = {}
    for name in ("lc_rnn", "lc_transformer"):
        model = create_model(name, n_features(3), 6, image_size=1)
        norms = input_gradient_norms(model, raw, lengths, np.zeros(8, dtype=int), torch.device("cpu"))
        ratios[name] = float(np.median(first_step_ratio(norms)))
    assert ratios["lc_rnn"] < 1e-3 * ratios["lc_transformer"]
    assert ratios["lc_transformer"] > 1e-2
