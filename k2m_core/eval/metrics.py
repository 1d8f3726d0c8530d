"""Text-to-motion metrics of Guo et al. 2022 on evaluator embeddings (paper A.3, docs/design.md#ref-evaluator).

All functions take NumPy arrays of embeddings, one row per sample, and a ``numpy.random.Generator``
where the protocol draws at random, so a seed reproduces a report exactly.

- FID: Fréchet distance between Gaussians fitted to real and generated motion embeddings,
  ``‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2·sqrtm(Σ_r Σ_g))`` (covariances with ddof 1).
- R-precision top-k: texts and motions shuffled into pools of 32 (an incomplete last pool is
  dropped); within a pool each text ranks the 32 motions by Euclidean distance and scores a hit at
  k if its own motion is among the k nearest. Hits / texts scored.
- MM-Dist: mean Euclidean distance between each text and its own motion (Guo's code; the paper's
  eq. 14 writes a square but the published numbers are plain distances).
- Diversity: mean distance between two independent draws of motions (300 pairs; 100 when there are
  at most 300 motions; every motion once when there are fewer than 100).
- Multimodality: for each text, mean distance between 10 random pairs of its generations.
- Repetitions are summarised as mean ± 1.96·std/√n (std with ddof 0).
"""

from __future__ import annotations

import numpy as np

POOL_SIZE = 32
TOP_K = 3
DIVERSITY_PAIRS = 300
MULTIMODALITY_PAIRS = 10


def distance_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a (N, D)``, ``b (M, D)`` → Euclidean distances ``(N, M)``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    squared = (a**2).sum(1)[:, None] - 2 * a @ b.T + (b**2).sum(1)[None]
    return np.sqrt(np.maximum(squared, 0.0))


def activation_statistics(embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and covariance ``(D, D)`` (ddof 1) of ``embeddings (N, D)``."""
    embeddings = np.asarray(embeddings, np.float64)
    if len(embeddings) < 2:
        raise ValueError(f"a covariance needs at least 2 samples, got {len(embeddings)}")
    return embeddings.mean(0), np.cov(embeddings, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """Fréchet distance of N(mu1, sigma1) and N(mu2, sigma2)."""
    from scipy import linalg

    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():  # singular product: regularise both, as Guo et al. do
        offset = np.eye(len(sigma1)) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    # Round-off can leave a tiny imaginary part; only the real part is meaningful.
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid(real: np.ndarray, generated: np.ndarray) -> float:
    return frechet_distance(*activation_statistics(real), *activation_statistics(generated))


def top_k_hits(text: np.ndarray, motion: np.ndarray, top_k: int = TOP_K) -> np.ndarray:
    """Within one pool (row i of both belongs together): ``(top_k,)`` counts of texts whose own
    motion is among their k nearest, k = 1…top_k."""
    dist = distance_matrix(text, motion)
    # Rank of the true motion = motions strictly nearer than it (ties count in its favour).
    rank = (dist < np.diag(dist)[:, None]).sum(1)
    return np.array([(rank < k).sum() for k in range(1, top_k + 1)], dtype=np.int64)


def r_precision(text: np.ndarray, motion: np.ndarray, rng: np.random.Generator, pool: int = POOL_SIZE,
                top_k: int = TOP_K) -> np.ndarray:
    """``(top_k,)`` R-precision at k = 1…top_k over shuffled pools of ``pool`` (last partial pool
    dropped). With fewer than ``pool`` samples, one pool of all of them (the chance level is then
    1/N, not 1/32: reports say which pool size was used)."""
    n = len(text)
    pool = min(pool, n)
    order = rng.permutation(n)
    hits, scored = np.zeros(top_k), 0
    for start in range(0, n - pool + 1, pool):
        idx = order[start:start + pool]
        hits += top_k_hits(text[idx], motion[idx], top_k)
        scored += pool
    return hits / max(scored, 1)


def mm_dist(text: np.ndarray, motion: np.ndarray) -> float:
    """Mean distance between each text and its own motion."""
    return float(np.linalg.norm(np.asarray(text, np.float64) - np.asarray(motion, np.float64), axis=1).mean())


def diversity_pairs(n: int) -> int:
    return DIVERSITY_PAIRS if n > DIVERSITY_PAIRS else min(100, n)


def diversity(motion: np.ndarray, rng: np.random.Generator, pairs: int | None = None) -> float:
    """Mean distance between two independent draws (each without replacement) of ``pairs`` motions."""
    n = len(motion)
    pairs = diversity_pairs(n) if pairs is None else pairs
    first = rng.choice(n, pairs, replace=False)
    second = rng.choice(n, pairs, replace=False)
    return float(np.linalg.norm(motion[first] - motion[second], axis=1).mean())


def multimodality(motion: np.ndarray, rng: np.random.Generator, pairs: int = MULTIMODALITY_PAIRS) -> float:
    """``motion (texts, generations, D)`` → mean over texts of the mean distance of ``pairs``
    random pairs of that text's generations (fewer pairs if there are fewer generations)."""
    texts, generations, _ = motion.shape
    pairs = min(pairs, generations)
    first = np.stack([rng.choice(generations, pairs, replace=False) for _ in range(texts)])
    second = np.stack([rng.choice(generations, pairs, replace=False) for _ in range(texts)])
    rows = np.arange(texts)[:, None]
    return float(np.linalg.norm(motion[rows, first] - motion[rows, second], axis=-1).mean())


def mean_ci(values) -> tuple[float, float]:
    """Mean and 95 % confidence half-width 1.96·std/√n (std with ddof 0) of repeated measurements."""
    values = np.asarray(values, np.float64)
    return float(values.mean()), float(1.96 * values.std() / np.sqrt(len(values)))
