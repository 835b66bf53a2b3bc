"""The Frechet distance between Gaussian fits of two feature sets, as in FID (Heusel et al., 2017)."""

from __future__ import annotations

import torch


def _sqrt_psd(m: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix; rounding's tiny negative
    eigenvalues are clamped to 0 (sample covariances of N < D points are singular)."""
    vals, vecs = torch.linalg.eigh(m)
    return (vecs * vals.clamp_min(0).sqrt()) @ vecs.T


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between Gaussian fits of two feature sets (N, D) and (M, D):
    ||mu_a - mu_b||^2 + Tr(Sa + Sb - 2 (Sa^1/2 Sb Sa^1/2)^1/2), as in FID (Heusel et al., 2017).

    Computed in float64 with symmetric eigendecompositions (the symmetric form of the matrix
    square root: scipy's general sqrtm is not needed and can return complex noise).
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sets must be (N, D) with the same D, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] < 2 or b.shape[0] < 2:
        raise ValueError("a covariance needs at least 2 samples in each feature set")
    a = a.detach().to("cpu", torch.float64)
    b = b.detach().to("cpu", torch.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = a - mu_a, b - mu_b
    cov_a = ca.T @ ca / (a.shape[0] - 1)  # unbiased, as numpy.cov in the FID reference code
    cov_b = cb.T @ cb / (b.shape[0] - 1)
    root_a = _sqrt_psd(cov_a)
    inner = root_a @ cov_b @ root_a
    inner = (inner + inner.T) / 2  # symmetric up to rounding; make it exactly so for eigh
    trace_sqrt = torch.linalg.eigvalsh(inner).clamp_min(0).sqrt().sum()
    d = (mu_a - mu_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * trace_sqrt
    return max(float(d), 0.0)
