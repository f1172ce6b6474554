"""Sequence classifiers for light curves (lecture 002: RNN, gated cells, self-attention).

Every model eats a :class:`Sequences` batch: ``values`` (N, L, F) padded with zeros after each
sequence's ``lengths`` (N,) observations, and returns logits (N, num_classes). Padding never
changes an output: recurrent nets run on packed sequences, the transformer masks padded keys,
the 1-D CNN zeroes padded positions after every layer and pools over real ones only. A plain
tensor (N, F, T...) is read as N full-length sequences of F features (the Conv1d layout).

* ``lc_rnn``, ``lc_gru``, ``lc_lstm`` - one recurrent layer (tanh RNN, GRU, LSTM); the class
  comes from the last hidden state, so gradients reach early observations only through time.
* ``lc_transformer`` - a pre-norm transformer encoder with a sinusoidal encoding of the
  observation *times* (irregular sampling, as in Astromer) and a [CLS] token; its last layer's
  attention from [CLS] to the observations is kept for attention maps.
* ``lc_conv1d`` - dilated 1-D convolutions over the observation sequence with masked pooling.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .registry import register_model

__all__ = ["Sequences", "as_sequences", "padding_mask", "RecurrentClassifier", "TransformerClassifier", "Conv1dClassifier"]


class Sequences(NamedTuple):
    values: torch.Tensor  # (N, L, F), zero after each sequence's length
    lengths: torch.Tensor  # (N,) int64, >= 1


def as_sequences(x) -> Sequences:
    if isinstance(x, Sequences):
        return x
    if isinstance(x, (tuple, list)) and len(x) == 2:
        return Sequences(*x)
    values = x.flatten(2).transpose(1, 2)
    return Sequences(values, torch.full((len(values),), values.shape[1], dtype=torch.long, device=values.device))


def padding_mask(lengths: torch.Tensor, length: int) -> torch.Tensor:
    """(N, L) True at real observations."""
    return torch.arange(length, device=lengths.device)[None, :] < lengths[:, None]


def _head(hidden: int, num_classes: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, num_classes))


class RecurrentClassifier(nn.Module):
    CELLS = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}

    def __init__(self, cell: str, in_features: int, num_classes: int, hidden: int = 32, layers: int = 1, dropout: float = 0.1):
        super().__init__()
        self.cell = cell
        kwargs = {"nonlinearity": "tanh"} if cell == "rnn" else {}
        self.rnn = self.CELLS[cell](in_features, hidden, num_layers=layers, batch_first=True, **kwargs)
        self.head = _head(hidden, num_classes, dropout)

    def forward(self, x) -> torch.Tensor:
        seq = as_sequences(x)
        packed = pack_padded_sequence(seq.values, seq.lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        hidden = state[0] if self.cell == "lstm" else state
        return self.head(hidden[-1])


class TimeEncoding(nn.Module):
    """Sinusoids of the observation time (days) with periods from `min_period` to `max_period`."""

    def __init__(self, dim: int, min_period: float = 1.0, max_period: float = 1000.0):
        super().__init__()
        periods = torch.logspace(math.log10(min_period), math.log10(max_period), dim // 2)
        self.register_buffer("omega", 2 * math.pi / periods)

    def forward(self, days: torch.Tensor) -> torch.Tensor:
        angle = days[..., None] * self.omega
        return torch.cat([torch.sin(angle), torch.cos(angle)], -1)


class AttentionBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        # No dropout on the attention weights: on a CPU it costs more than the attention itself.
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, h, pad, keep_weights: bool = False):
        q = self.norm1(h)
        out, weights = self.attention(q, q, q, key_padding_mask=pad, need_weights=keep_weights)
        h = h + self.dropout(out)
        return h + self.dropout(self.ff(self.norm2(h))), weights


class TransformerClassifier(nn.Module):
    def __init__(self, in_features: int, num_classes: int, dim: int = 32, heads: int = 2, layers: int = 2,
                 ff: int = 64, dropout: float = 0.1, time_feature: int = 0, time_unit: float = 100.0):
        super().__init__()
        self.time_feature, self.time_unit = time_feature, time_unit
        self.embed = nn.Linear(in_features, dim)
        self.time = TimeEncoding(dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.blocks = nn.ModuleList(AttentionBlock(dim, heads, ff, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.head = _head(dim, num_classes, dropout)
        self.keep_attention = False
        self.attention = None  # (N, L): last layer's attention from [CLS] to each observation

    def forward(self, x) -> torch.Tensor:
        seq = as_sequences(x)
        values = seq.values
        days = values[..., self.time_feature] * self.time_unit
        h = self.embed(values) + self.time(days)
        h = torch.cat([self.cls.expand(len(h), -1, -1), h], 1)
        real = padding_mask(seq.lengths, values.shape[1])
        pad = torch.cat([torch.zeros_like(real[:, :1]), ~real], 1)
        for k, block in enumerate(self.blocks):
            last = k == len(self.blocks) - 1
            h, weights = block(h, pad, keep_weights=self.keep_attention and last)
        if self.keep_attention:
            self.attention = weights[:, 0, 1:].detach()
        return self.head(self.norm(h[:, 0]))


class Conv1dClassifier(nn.Module):
    def __init__(self, in_features: int, num_classes: int, channels: int = 32, layers: int = 4, kernel: int = 5,
                 dropout: float = 0.1):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(in_features if k == 0 else channels, channels, kernel, dilation=2**k, padding=2**k * (kernel // 2))
            for k in range(layers)
        )
        self.head = _head(2 * channels, num_classes, dropout)

    def forward(self, x) -> torch.Tensor:
        seq = as_sequences(x)
        mask = padding_mask(seq.lengths, seq.values.shape[1])[:, None, :].to(seq.values.dtype)
        h = seq.values.transpose(1, 2) * mask
        for conv in self.convs:
            h = torch.relu(conv(h)) * mask  # padded positions stay zero, as past the end of a lone sequence
        mean = h.sum(2) / mask.sum(2)
        peak = h.masked_fill(mask == 0, float("-inf")).amax(2)
        return self.head(torch.cat([mean, peak], 1))


@register_model(family="lightcurves", min_image_size=1)
def lc_rnn(in_channels: int, num_classes: int, image_size: int, reference: bool = False, **kwargs) -> nn.Module:
    """Vanilla tanh RNN on light-curve observations (lecture 002, 'The RNN block')."""
    return RecurrentClassifier("rnn", in_channels, num_classes, **kwargs)


@register_model(family="lightcurves", min_image_size=1)
def lc_gru(in_channels: int, num_classes: int, image_size: int, reference: bool = False, **kwargs) -> nn.Module:
    """GRU on light-curve observations (gated cell; RAPID, Muthukrishna+2019)."""
    return RecurrentClassifier("gru", in_channels, num_classes, **kwargs)


@register_model(family="lightcurves", min_image_size=1)
def lc_lstm(in_channels: int, num_classes: int, image_size: int, reference: bool = False, **kwargs) -> nn.Module:
    """LSTM on light-curve observations (lecture 002, 'LSTM unit')."""
    return RecurrentClassifier("lstm", in_channels, num_classes, **kwargs)


@register_model(family="lightcurves", min_image_size=1)
def lc_transformer(in_channels: int, num_classes: int, image_size: int, reference: bool = False, **kwargs) -> nn.Module:
    """Transformer encoder with a time encoding and masking (lecture 002, self-attention)."""
    return TransformerClassifier(in_channels, num_classes, **kwargs)


@register_model(family="lightcurves", min_image_size=1)
def lc_conv1d(in_channels: int, num_classes: int, image_size: int, reference: bool = False, **kwargs) -> nn.Module:
    """Dilated 1-D CNN over the observation sequence with masked pooling."""
    return Conv1dClassifier(in_channels, num_classes, **kwargs)
