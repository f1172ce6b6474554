"""Activation-function and sigmoid/cross-entropy figures (lecture 004, XII Escola do CBPF 2019).

All derivatives are computed by torch autograd; the tests compare them with the closed forms of
the slide table ("Activation Functions") and of "Cross-Entropy V.S. L2".
"""

from __future__ import annotations

from typing import Callable

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from deepsky.figures.style import save_figure

PRELU_ALPHA = 0.1
ELU_ALPHA = 1.0


class _BinaryStep(torch.autograd.Function):
    """Heaviside step (f(0) = 1) whose derivative is 0 for x != 0 and undefined (NaN) at 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        grad = torch.zeros_like(x)
        grad[x == 0] = float("nan")
        return grad_output * grad


def _prelu(x):
    return F.prelu(x, torch.tensor([PRELU_ALPHA], dtype=x.dtype))


# name -> (function, equation, derivative) ; equations follow the lecture-004 table
ACTIVATIONS: dict[str, tuple[Callable, str, str]] = {
    "Identity": (lambda x: x * 1.0, r"$f(x)=x$", r"$f'(x)=1$"),
    "Binary step": (_BinaryStep.apply, r"$f=0\ (x<0),\ 1\ (x\geq0)$", r"$f'=0\ (x\neq0),\ ?\ (x=0)$"),
    "Logistic (soft step)": (torch.sigmoid, r"$f=1/(1+e^{-x})$", r"$f'=f\,(1-f)$"),
    "TanH": (torch.tanh, r"$f=\tanh(x)$", r"$f'=1-f^2$"),
    "ArcTan": (torch.atan, r"$f=\tan^{-1}(x)$", r"$f'=1/(x^2+1)$"),
    "ReLU": (F.relu, r"$f=0\ (x<0),\ x\ (x\geq0)$", r"$f'=0\ (x<0),\ 1\ (x\geq0)$"),
    f"PReLU (α={PRELU_ALPHA:g})": (_prelu, r"$f=\alpha x\ (x<0),\ x\ (x\geq0)$",
                                    r"$f'=\alpha\ (x<0),\ 1\ (x\geq0)$"),
    f"ELU (α={ELU_ALPHA:g})": (lambda x: F.elu(x, alpha=ELU_ALPHA), r"$f=\alpha(e^x-1)\ (x<0),\ x\ (x\geq0)$",
                               r"$f'=f+\alpha\ (x<0),\ 1\ (x\geq0)$"),
    "SoftPlus": (F.softplus, r"$f=\ln(1+e^x)$", r"$f'=1/(1+e^{-x})$"),
}


def activation_values(x=None) -> dict:
    """f(x) and f'(x) (autograd) for every activation, on a float64 grid that contains 0 exactly."""
    if x is None:
        x = torch.arange(-300, 301, dtype=torch.float64) / 100.0
    x = torch.as_tensor(x, dtype=torch.float64)
    f_vals, df_vals = {}, {}
    for name, (fn, _, _) in ACTIVATIONS.items():
        xr = x.clone().requires_grad_(True)
        y = fn(xr)
        (g,) = torch.autograd.grad(y.sum(), xr)
        f_vals[name] = y.detach().numpy()
        df_vals[name] = g.numpy()
    return {"x": x.numpy(), "f": f_vals, "df": df_vals}


def fig_activation_functions(png_path) -> dict:
    """004 'Activation Functions' table: each function (solid) and its autograd derivative (dashed)."""
    vals = activation_values()
    x = vals["x"]
    i0 = int(np.flatnonzero(x == 0)[0])
    fig, axes = plt.subplots(3, 3, figsize=(16, 15.5), sharex=True)
    for ax, (name, (_, eq, deq)) in zip(axes.ravel(), ACTIVATIONS.items()):
        f, df = vals["f"][name], vals["df"][name]
        if name == "Binary step":
            ax.plot(x[:i0], f[:i0], color="tab:blue", label="f(x)")
            ax.plot(x[i0:], f[i0:], color="tab:blue")
            ax.plot([0], [0], "o", mfc="white", mec="tab:blue", ms=9, mew=2)
            ax.plot([0], [1], "o", color="tab:blue", ms=9)
            ax.plot(x, df, "--", color="tab:orange", label="f′(x) autograd")
            ax.text(0.12, 0.12, "f′(0) = ?", color="tab:orange", fontsize=15)
        else:
            ax.plot(x, f, color="tab:blue", label="f(x)")
            ax.plot(x, df, "--", color="tab:orange", label="f′(x) autograd")
        ax.axhline(0, color="0.5", lw=0.8)
        ax.axvline(0, color="0.5", lw=0.8)
        ax.set_ylim(-1.7, 3.2)
        ax.set_xlim(-3, 3)
        ax.set_title(f"{name}\n{eq}\n{deq}", fontsize=15)
        if f"{df[i0]:g}" != "nan" and name.split()[0] in ("ReLU", "PReLU"):
            ax.annotate(f"autograd: f′(0) = {df[i0]:g}", (0, df[i0]), xytext=(0.25, -1.2), fontsize=13,
                        color="tab:orange", arrowprops={"arrowstyle": "->", "color": "tab:orange"})
    axes[0, 0].legend(loc="upper left", fontsize=13, framealpha=0.9)
    for ax in axes[-1]:
        ax.set_xlabel("x")
    fig.suptitle("Activation functions (solid) and their derivatives computed by autograd (dashed)",
                 fontsize=20, y=0.995)
    fig.tight_layout()
    save_figure(fig, png_path)
    vals["derivative_at_zero"] = {name: float(vals["df"][name][i0]) for name in ACTIVATIONS}
    return vals


# ----------------------------------------------------------------------------------------------
# 004 "Why Sigmoid for classification?", "Some Loss intuition...", "Cross-Entropy V.S. L2"
# ----------------------------------------------------------------------------------------------


def loss_gradients(p) -> dict:
    """dL/dz by autograd for a positive example (y = 1) whose prediction is p = sigmoid(z).

    Cross-entropy: L = -log sigmoid(z)  ->  dL/dz = p - 1.
    L2 on the sigmoid output: L = (sigmoid(z) - 1)^2  ->  dL/dz = 2 (p - 1) p (1 - p).
    """
    p = torch.as_tensor(p, dtype=torch.float64)
    z = torch.logit(p).requires_grad_(True)
    target = torch.ones_like(z)
    ce = F.binary_cross_entropy_with_logits(z, target, reduction="sum")
    (g_ce,) = torch.autograd.grad(ce, z)
    z2 = torch.logit(p).requires_grad_(True)
    l2 = ((torch.sigmoid(z2) - target) ** 2).sum()
    (g_l2,) = torch.autograd.grad(l2, z2)
    return {"p": p.numpy(), "z": z.detach().numpy(), "grad_ce": g_ce.numpy(), "grad_l2": g_l2.numpy()}


def fig_sigmoid_cross_entropy(png_path) -> dict:
    """004 sigmoid for classification, -log p intuition, and cross-entropy vs L2 gradients."""
    z = torch.linspace(-6, 6, 601, dtype=torch.float64)
    s_pos, s_neg = torch.sigmoid(z).numpy(), torch.sigmoid(-z).numpy()
    p_nll = np.linspace(0.005, 1, 400)
    nll = -torch.log(torch.tensor(p_nll)).numpy()
    p = np.geomspace(1e-3, 0.999, 500)
    grads = loss_gradients(p)
    marks = loss_gradients([0.01, 0.1, 0.5, 0.9])

    fig, axes = plt.subplots(1, 3, figsize=(19, 6.8))
    ax = axes[0]
    ax.plot(z.numpy(), s_pos, color="tab:green")
    ax.plot(z.numpy(), s_neg, color="tab:red")
    ax.text(1.4, 0.3, r"$P(y=1|z)=\sigma(z)$", color="tab:green", fontsize=15)
    ax.text(-5.9, 0.66, r"$P(y=0|z)=\sigma(-z)$", color="tab:red", fontsize=15)
    ax.axhline(0.5, color="0.6", lw=1, ls=":")
    ax.set_xlabel(r"$z = \omega^T h(x) + b$")
    ax.set_ylabel("probability")
    ax.set_title(r"Why sigmoid?  $\sigma(z) = 1/(1+e^{-z})$")

    ax = axes[1]
    ax.plot(p_nll, nll, color="tab:purple")
    for pv in (0.8, 0.5, 0.1, 0.01):
        ax.plot(pv, -np.log(pv), "o", color="tab:purple", ms=8)
        ax.annotate(f"−log {pv:g} = {-np.log(pv):.2f}", (pv, -np.log(pv)), xytext=(10, 4),
                    textcoords="offset points", fontsize=14)
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("predicted probability of the true class  p")
    ax.set_ylabel("−log p")
    ax.set_title("Loss for the true class: −log p")

    ax = axes[2]
    ax.plot(grads["p"], np.abs(grads["grad_ce"]), color="tab:blue", label="cross-entropy: |p − 1|")
    ax.plot(grads["p"], np.abs(grads["grad_l2"]), color="tab:orange", label="L2: |2(p−1) p(1−p)|")
    ax.axvspan(1e-3, 0.1, color="tab:red", alpha=0.08)
    ax.text(1.3e-3, 0.55, "confidently\nwrong", color="tab:red", fontsize=14)
    for pv, gce, gl2 in zip(marks["p"], marks["grad_ce"], marks["grad_l2"]):
        ax.plot(pv, abs(gl2), "o", color="tab:orange", ms=7)
        ax.plot(pv, abs(gce), "o", color="tab:blue", ms=7)
    ax.annotate(f"p = 0.01:  CE {abs(marks['grad_ce'][0]):.2f},  L2 {abs(marks['grad_l2'][0]):.3f}",
                (0.01, abs(marks["grad_l2"][0])), xytext=(1.3e-3, 0.3), fontsize=13,
                arrowprops={"arrowstyle": "->", "color": "0.3"})
    ax.set_xscale("log")
    ax.set_ylim(0, 1.42)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_xlabel("predicted probability p = σ(z), true class y = 1")
    ax.set_ylabel(r"$|\partial L / \partial z|$  (autograd)")
    ax.set_title("Cross-entropy vs L2: gradient w.r.t. z")
    ax.legend(loc="upper right", fontsize=12.5)
    fig.suptitle("Sigmoid and binary cross-entropy: the L2 gradient vanishes when the prediction is "
                 "confidently wrong", fontsize=19)
    fig.tight_layout()
    save_figure(fig, png_path)
    i_max = int(np.argmax(np.abs(grads["grad_l2"])))
    return {
        "z": z.numpy(), "sigmoid": s_pos, "sigmoid_neg": s_neg,
        "p_nll": p_nll, "nll": nll,
        **grads,
        "marks": marks,
        "l2_grad_max_p": float(grads["p"][i_max]),
        "l2_grad_max": float(np.abs(grads["grad_l2"][i_max])),
    }
