"""Users and items: the shipped Deezer files, the full download, and the synthetic default.

``load_population(users)`` accepts:

- ``"synthetic"`` (default): the Deezer-like Gaussian mixture of :mod:`.synthetic`;
- ``"deezer-small"``: the 9 real users shipped with the package;
- ``"deezer"``: the full 974,960-user file, after ``carousel-env download``;
- a path to a CSV in the published format (with or without ``segment``), or to a NumPy
  ``.npy``/``.npz`` file; users without segments get k-means segments (100 clusters),
  computed once and cached;
- a :class:`Population`.

``load_catalog(catalog)`` accepts ``"deezer"`` (the 862 real playlists, the default), a
path, a float array (n_items, n_features), or a :class:`Catalog`.

Source: Deezer, released with W. Bendada, G. Salha, T. Bontempelli, "Carousel
Personalization in Music Streaming Apps with Contextual Bandits", RecSys 2020
(arXiv:2009.06546, DOI 10.1145/3383313.3412217). See ``SOURCE.md`` beside this file.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from carousel_env.data.population import N_FEATURES, Catalog, Population
from carousel_env.data.synthetic import SyntheticConfig, make_synthetic_population

__all__ = [
    "N_FEATURES",
    "POPULATIONS",
    "Catalog",
    "Population",
    "SyntheticConfig",
    "load_catalog",
    "load_population",
    "make_synthetic_population",
]

#: Named populations accepted by ``load_population``.
POPULATIONS = ("synthetic", "deezer-small", "deezer")

#: Number of k-means segments given to users that come without one (as in the paper).
DEFAULT_N_SEGMENTS = 100


@functools.cache
def _shipped_catalog() -> Catalog:
    from carousel_env.data.io import load_shipped_playlists

    return Catalog(load_shipped_playlists(), name="deezer")


@functools.cache
def _shipped_small_population() -> Population:
    from carousel_env.data.io import load_shipped_users

    features, segments = load_shipped_users()
    return Population(features, segments, DEFAULT_N_SEGMENTS, name="deezer-small")


@functools.lru_cache(maxsize=2)
def _downloaded_population(cache_dir: str | None) -> Population:
    from carousel_env.data.download import load_downloaded_users

    features, segments = load_downloaded_users(cache_dir)
    return Population(features, segments, DEFAULT_N_SEGMENTS, name="deezer")


def _population_from_file(path: Path, seed: int, cache_dir: str | None) -> Population:
    from carousel_env.data.io import read_user_file

    features, segments = read_user_file(path)
    if segments is None:
        from carousel_env.data.download import cache_dir as resolve_cache_dir
        from carousel_env.data.segments import kmeans_segments

        n_clusters = min(DEFAULT_N_SEGMENTS, features.shape[0])
        segments = kmeans_segments(
            features,  # the constant bias column shifts no distance: no copy needed
            n_clusters,
            seed=seed,
            cache_dir=resolve_cache_dir(cache_dir) / "segments",
        )
        n_segments = n_clusters
    else:
        n_segments = max(DEFAULT_N_SEGMENTS, int(segments.max()) + 1)
    return Population(features, segments, n_segments, name=path.name, meta={"source": str(path)})


def load_population(
    users: str | os.PathLike | Population = "synthetic",
    *,
    seed: int = 0,
    n_users: int | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Population:
    """Resolve a ``users=`` argument into a :class:`Population`.

    Args:
        users: a population name, a file path or a :class:`Population` (see module doc).
        seed: the population seed: draws the synthetic users and seeds k-means. It is
            independent of an environment's reset seed.
        n_users: size of the synthetic population (default 974,960); only with
            ``users="synthetic"``.
        cache_dir: where downloads and cached segments live (default: see
            :func:`carousel_env.data.download.cache_dir`).
    """
    if isinstance(users, Population):
        if n_users is not None:
            raise ValueError("`n_users` applies to users='synthetic' only, not to a Population")
        return users
    if not isinstance(users, str | os.PathLike):
        raise TypeError(
            f"`users` must be one of {list(POPULATIONS)}, a file path or a Population; "
            f"got {type(users).__name__} {users!r}"
        )
    cache = None if cache_dir is None else os.fspath(cache_dir)
    if n_users is not None and users != "synthetic":
        raise ValueError(f"`n_users` applies to users='synthetic' only; got users={users!r}")
    if users == "synthetic":
        params = {} if n_users is None else {"n_users": n_users}
        return make_synthetic_population(SyntheticConfig(**params), seed=seed)
    if users == "deezer-small":
        return _shipped_small_population()
    if users == "deezer":
        return _downloaded_population(cache)
    path = Path(users).expanduser()
    if not path.exists():
        raise ValueError(
            f"`users` must be one of {list(POPULATIONS)} or an existing file; got {users!r} "
            f"(no such file)"
        )
    return _population_from_file(path, seed, cache)


def load_catalog(catalog: str | os.PathLike | np.ndarray | Catalog = "deezer") -> Catalog:
    """Resolve a ``catalog=`` argument into a :class:`Catalog` (see module doc)."""
    if isinstance(catalog, Catalog):
        return catalog
    if isinstance(catalog, np.ndarray):
        return Catalog(catalog)
    if not isinstance(catalog, str | os.PathLike):
        raise TypeError(
            f"`catalog` must be 'deezer', a file path, an array or a Catalog; "
            f"got {type(catalog).__name__} {catalog!r}"
        )
    if catalog == "deezer":
        return _shipped_catalog()
    path = Path(catalog).expanduser()
    if not path.exists():
        raise ValueError(f"`catalog` must be 'deezer' or an existing file; got {catalog!r}")
    from carousel_env.data.io import read_playlist_file

    return Catalog(read_playlist_file(path), name=path.name)
