"""load_population / load_catalog: every accepted `users=` form, and clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carousel_env import CarouselEnv
from carousel_env.data import Catalog, Population, load_catalog, load_population


def _write_users(path, n_users: int, with_segments: bool, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Three well-separated clouds, so that k-means has something to find.
    centres = rng.normal(0, 5, (3, 96))
    labels = rng.integers(0, 3, n_users)
    embeddings = centres[labels] + rng.normal(0, 0.1, (n_users, 96))
    frame = pd.DataFrame(embeddings, columns=[f"dim_{d}" for d in range(96)])
    if with_segments:
        frame.insert(0, "segment", labels)
    frame.to_csv(path, index=False)
    return embeddings


def test_csv_with_segments_keeps_them(tmp_path):
    path = tmp_path / "users.csv"
    embeddings = _write_users(path, 150, with_segments=True)
    population = load_population(path)
    assert population.n_users == 150 and population.n_segments == 100
    np.testing.assert_allclose(population.features[:, :-1], embeddings, rtol=1e-6)
    assert (population.features[:, -1] == 1.0).all()


def test_csv_without_segments_gets_cached_kmeans_segments(tmp_path):
    path = tmp_path / "users.csv"
    _write_users(path, 150, with_segments=False)
    population = load_population(path, cache_dir=tmp_path / "cache")
    assert population.n_segments == 100
    assert len(list((tmp_path / "cache" / "segments").iterdir())) == 1
    again = load_population(path, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(population.segments, again.segments)


def test_npy_file_and_population_object(tmp_path):
    features = np.random.default_rng(1).normal(0, 1, (120, 96)).astype(np.float32)
    np.save(tmp_path / "users.npy", features)
    population = load_population(tmp_path / "users.npy", cache_dir=tmp_path)
    assert population.features.shape == (120, 97)
    assert load_population(population) is population


def test_env_runs_on_a_user_file(tmp_path):
    path = tmp_path / "users.csv"
    _write_users(path, 150, with_segments=True)
    env = CarouselEnv(users=str(path))
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


def test_playlist_user_dimension_mismatch_is_named():
    population = Population(np.ones((4, 10), dtype=np.float32), np.zeros(4, int), 1, name="p")
    with pytest.raises(
        ValueError,
        match=r"user/item dimension mismatch: population 'p' has "
        r"10 features per user but catalog 'deezer' has 97 per item",
    ):
        CarouselEnv(users=population)


@pytest.mark.parametrize(
    ("users", "error", "message"),
    [
        (
            "missing.csv",
            ValueError,
            r"`users` must be one of .* or an existing file; got "
            r"'missing.csv' \(no such file\)",
        ),
        (3.5, TypeError, r"`users` must be one of .*got float 3.5"),
    ],
    ids=["missing-file", "wrong-type"],
)
def test_bad_users_argument(users, error, message):
    with pytest.raises(error, match=message):
        load_population(users)


def test_catalog_forms(tmp_path):
    weights = np.random.default_rng(0).normal(0, 1, (5, 97))
    assert load_catalog(weights).n_items == 5
    catalog = Catalog(weights)
    assert load_catalog(catalog) is catalog
    with pytest.raises(ValueError, match=r"`catalog` must be 'deezer' or an existing file"):
        load_catalog("nowhere.csv")
    with pytest.raises(ValueError, match=r"catalog `weights` must be finite; item 0, column 1"):
        Catalog(np.array([[0.0, np.nan]]))
