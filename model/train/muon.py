"""Muon: momentum whose update is orthogonalised (every singular value pushed towards 1) before it is applied.

Adam scales each weight's step by its own gradient history; Muon instead takes the momentum matrix of a
layer and replaces it by the nearest semi-orthogonal matrix (Newton-Schulz iterations, no SVD), so every
direction of the layer moves at the same rate and rare directions are not drowned by common ones. It is
meant for hidden layers' weight matrices (embeddings, output heads, norms and biases stay with AdamW);
a convolution's weight (out, in, *kernel) is treated as the (out, in * kernel) matrix it multiplies by.

Why not `torch.optim.Muon`: it takes 2-D weights only, and runs the iterations in bf16, which on a CPU
without bf16 kernels (AVX2) falls back to slow reference code. Here they run in bf16 only where bf16 is
fast (`common.fast_bf16`), in float32 elsewhere. The step is scaled to AdamW's update size
(0.2 * sqrt(max(rows, cols)), "match_rms_adamw" in torch's Muon), so AdamW's learning rate and schedule
can be reused as they are.
"""

from __future__ import annotations

import math

import torch

# the quintic iteration's coefficients: the steepest slope at 0 that still keeps singular values in ~[0.7, 1.2]
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def orthogonalize(m: torch.Tensor, steps: int = 5, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A 2-D matrix -> approximately U V^T of its SVD U S V^T (same shape, m's dtype)."""
    a, b, c = NS_COEFFICIENTS
    x = m.to(dtype)
    wide = x.shape[0] <= x.shape[1]
    if not wide:
        x = x.T  # iterate on the smaller Gram matrix
    x = x / x.norm().clamp_min(1e-7)  # spectral norm <= Frobenius norm <= 1
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + (b * gram + c * gram @ gram) @ x
    return (x if wide else x.T).to(m.dtype)


class Muon(torch.optim.Optimizer):
    """Nesterov momentum, orthogonalised per weight tensor, decoupled weight decay (see the module docstring)."""

    def __init__(self, params, lr: float, momentum: float = 0.95, weight_decay: float = 0.0, ns_steps: int = 5,
                 ns_dtype: torch.dtype = torch.float32) -> None:  # fmt: skip
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay, ns_steps=ns_steps, ns_dtype=ns_dtype))
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() < 2:
                    raise ValueError(f"Muon updates weight matrices (2-D or more), got a tensor of shape {tuple(p.shape)}")

    @torch.no_grad()
    def step(self, closure=None) -> None:
        for group in self.param_groups:
            lr, mu = group["lr"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.lerp_(p.grad, 1 - mu)
                update = p.grad.lerp(buf, mu)  # Nesterov: look ahead along the momentum
                rows, cols = p.shape[0], p[0].numel()
                update = orthogonalize(update.reshape(rows, cols), group["ns_steps"], group["ns_dtype"]).view_as(p)
                p.mul_(1 - lr * group["weight_decay"])
                p.add_(update, alpha=-lr * 0.2 * math.sqrt(max(rows, cols)))
