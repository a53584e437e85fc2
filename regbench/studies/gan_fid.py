"""The GAN's sample-quality score: a Fréchet distance in the feature space of a small classifier.

The FID of Heusel et al. (2017) compares Inception-v3 features of real and generated images;
Inception weights are a download, and a network trained on ImageNet says little about 28x28
digits. regbench instead trains a small classifier on the run's own training images (a 784-256-
128-10 MLP on images scaled to [-1, 1], like the generator's output) and uses its 128-unit
penultimate layer (after ReLU) as the feature space:

    FID = |mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))

with mu, S the mean and covariance of the features of the real test images (r) and of generated
images (g). Lower is better; 0 means matching first and second moments.

The classifier is trained on the CPU with a fixed seed on a forked RNG and deterministic
algorithms, so it is the same network for every run on the same data, and training it never
changes the run's own random stream. It is cached under ``$REGBENCH_CACHE`` (default
``~/.cache/regbench``) in ``fid_classifier-<data name>-<hash>.pt``, keyed by a hash of the
training images and labels and of the recipe below; its test accuracy is printed when it is
trained.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

CACHE_ENV = "REGBENCH_CACHE"
# Changing any of these changes the classifier, so they are part of the cache key.
RECIPE = {"version": 1, "hidden": (256, 128), "epochs": 10, "batch": 128, "lr": 1e-3, "seed": 0}
EVAL_CHUNK = 4096


class FeatureClassifier(nn.Module):
    """784-256-128-10 MLP; ``features`` is the 128-unit penultimate layer."""

    def __init__(self, hidden: tuple[int, ...] = RECIPE["hidden"]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = 28 * 28
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.reshape(len(x), -1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """uint8 images [N, 28, 28] -> float [N, 784] in [-1, 1] (the generator's output range)."""
    return images.reshape(len(images), -1).float().div(127.5).sub(1.0)


@dataclass
class Scorer:
    """A trained classifier plus the feature statistics of the real test images."""

    classifier: FeatureClassifier
    accuracy: float
    real_mean: torch.Tensor
    real_cov: torch.Tensor

    def against(self, real: dict[str, torch.Tensor], device: torch.device) -> Scorer:
        """The same classifier, scoring against the images of ``real`` instead."""
        mean, cov = feature_moments(self.classifier, to_unit_range(real["x"].to(device)))
        return Scorer(self.classifier, self.accuracy, mean, cov)

    def fid(self, generated: torch.Tensor) -> float:
        """Fréchet distance of ``generated`` [N, 784] in [-1, 1] to the real test images."""
        mean, cov = feature_moments(self.classifier, generated)
        return frechet_distance(self.real_mean, self.real_cov, mean, cov)


def build_scorer(
    train: dict[str, torch.Tensor],
    test: dict[str, torch.Tensor],
    data_name: str,
    device: torch.device,
) -> Scorer:
    """Load the cached classifier for these training images, or train and cache it."""
    classifier, accuracy = load_or_train(train, test, data_name)
    classifier = classifier.to(device).eval()
    mean, cov = feature_moments(classifier, to_unit_range(test["x"].to(device)))
    return Scorer(classifier, accuracy, mean, cov)


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "regbench").expanduser()


def cache_path(train: dict[str, torch.Tensor], data_name: str) -> Path:
    digest = hashlib.sha256(repr(sorted(RECIPE.items())).encode())
    for key in ("x", "y"):
        digest.update(train[key].cpu().contiguous().numpy().tobytes())
    return cache_dir() / f"fid_classifier-{data_name}-{digest.hexdigest()[:16]}.pt"


def load_or_train(
    train: dict[str, torch.Tensor], test: dict[str, torch.Tensor], data_name: str
) -> tuple[FeatureClassifier, float]:
    path = cache_path(train, data_name)
    if path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            with torch.random.fork_rng(devices=[]):  # its init must not move the run's RNG
                classifier = FeatureClassifier()
            classifier.load_state_dict(saved["state_dict"])
            return classifier, float(saved["accuracy"])
        except Exception as exc:  # a damaged cache file is retrained, not fatal
            print(f"FID classifier cache {path} is unreadable ({exc}); retraining", file=sys.stderr)
    classifier = train_classifier(train)
    accuracy = classifier_accuracy(classifier, test)
    note = _save(path, {"state_dict": classifier.state_dict(), "accuracy": accuracy})
    # Printed once, when trained: how good the feature extractor behind the FID is.
    print(
        f"FID classifier trained on {len(train['y'])} {data_name} images: test accuracy "
        f"{accuracy:.4f} ({note})",
        file=sys.stderr,
    )
    return classifier, accuracy


def train_classifier(train: dict[str, torch.Tensor]) -> FeatureClassifier:
    """The recipe: Adam, cross-entropy, fixed seed, CPU, deterministic; the caller's RNG and
    determinism setting are left as they were."""
    images, labels = to_unit_range(train["x"].cpu()), train["y"].cpu().long()
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.use_deterministic_algorithms(True)
        try:
            torch.manual_seed(RECIPE["seed"])
            classifier = FeatureClassifier()
            optimizer = torch.optim.Adam(classifier.parameters(), lr=RECIPE["lr"])
            for _ in range(RECIPE["epochs"]):
                for batch in torch.randperm(len(labels)).split(RECIPE["batch"]):
                    loss = F.cross_entropy(classifier(images[batch]), labels[batch])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
        finally:
            torch.use_deterministic_algorithms(was_deterministic)
    return classifier.eval()


@torch.no_grad()
def classifier_accuracy(classifier: FeatureClassifier, test: dict[str, torch.Tensor]) -> float:
    images, labels = to_unit_range(test["x"].cpu()), test["y"].cpu()
    predicted = torch.cat([classifier(chunk).argmax(1) for chunk in images.split(EVAL_CHUNK)])
    return (predicted == labels).double().mean().item()


@torch.no_grad()
def feature_moments(
    classifier: FeatureClassifier, images: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance (float64, on the CPU) of the penultimate features of ``images``."""
    features = torch.cat([classifier.features(chunk) for chunk in images.split(EVAL_CHUNK)])
    features = features.double().cpu()
    return features.mean(dim=0), torch.cov(features.T)


def frechet_distance(
    mean_a: torch.Tensor, cov_a: torch.Tensor, mean_b: torch.Tensor, cov_b: torch.Tensor
) -> float:
    """|mu_a - mu_b|^2 + Tr(S_a) + Tr(S_b) - 2 Tr((S_a S_b)^(1/2)).

    Tr((S_a S_b)^(1/2)) = sum of sqrt(eigenvalues of S_a^(1/2) S_b S_a^(1/2)), a symmetric PSD
    matrix similar to S_a S_b: two symmetric eigen-decompositions, no complex square root, and
    stable when the covariances are singular (tiny negative round-off eigenvalues are clipped).
    """
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = (vectors * values.clamp_min(0).sqrt()) @ vectors.T
    middle = root_a @ cov_b @ root_a
    trace_root = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    distance = (mean_a - mean_b).pow(2).sum() + cov_a.trace() + cov_b.trace() - 2 * trace_root
    return distance.item()


def _save(path: Path, state: dict) -> str:
    """Write atomically (parallel runs may train the same classifier); say where it went."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        return f"not cached: cannot write {path}: {exc.strerror}; set {CACHE_ENV}=DIR"
    return f"cached in {path}"
