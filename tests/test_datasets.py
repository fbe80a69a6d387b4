import h5py
import numpy as np

import neuralode
from neuralode import CanonicalUnits, load_or_generate


def test_generated_once_then_reused(tmp_path):
    a = load_or_generate(tmp_path, "complex", True, 3, 0, "train")
    path = tmp_path / "datasets" / "complex_TBP_planar_3_train.h5"
    assert a.name == "complex_TBP_planar_3_train" and path.exists()
    stamp = path.stat().st_mtime_ns
    b = load_or_generate(tmp_path, "complex", True, 3, 0, "train")
    assert path.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(a.y, b.y)
    with h5py.File(path) as f:
        assert f.attrs["seed"] == 0 and f.attrs["family"] == "complex"
        assert list(f.attrs["range_e"]) == [0.0, 0.99]
        assert f["elements"]["e"].shape == (3,)
    assert not list((tmp_path / "datasets").glob("*.tmp"))


def test_other_parameters_other_file(tmp_path):
    ranges = neuralode.family_ranges("complex", True, e=[0.0, 0.1])
    d = load_or_generate(tmp_path, "complex", True, 3, 0, "train", ranges)
    assert d.elements["e"].max() <= 0.1
    names = sorted(p.name for p in (tmp_path / "datasets").glob("*.h5"))
    assert len(names) == 1 and names[0].startswith("complex_TBP_planar_3_train-")


def test_each_seed_has_its_own_file_and_damaged_caches_are_regenerated(tmp_path, capsys):
    default = load_or_generate(tmp_path, "simple", True, 2, 0, "train")
    other = load_or_generate(tmp_path, "simple", True, 2, 5, "train")
    assert not np.allclose(default.y, other.y)
    path = neuralode.dataset_path(tmp_path, "simple", True, 2, 5, "train")
    assert path.exists() and path.name.startswith("simple_TBP_planar_2_train-")
    whole = path.read_bytes()
    for damage in (b"not hdf5", whole[: len(whole) // 2]):  # garbage, and a copy cut short
        path.write_bytes(damage)
        again = load_or_generate(tmp_path, "simple", True, 2, 5, "train")
        np.testing.assert_array_equal(again.y, other.y)  # deterministic: the same orbits
        assert "does not read" in capsys.readouterr().out
        with h5py.File(path) as f:
            assert f.attrs["seed"] == 5


def test_rotated_planar_sets_have_names_of_their_own(tmp_path):
    aligned = load_or_generate(tmp_path, "complex", True, 3, 0, "train")
    ranges = neuralode.family_ranges("complex", True, rotated=True)
    rotated = load_or_generate(tmp_path, "complex", True, 3, 0, "train", ranges)
    assert rotated.name == "complex_TBP_planar_rotated_3_train" and aligned.name == "complex_TBP_planar_3_train"
    assert neuralode.dataset_path(tmp_path, "complex", True, 3, 0, "train", ranges).exists()
    assert rotated.attrs["rotated"] and not aligned.attrs["rotated"]
    assert list(rotated.attrs["range_argp"]) == [0.0, 2 * np.pi] and list(aligned.attrs["range_argp"]) == [0.0, 0.0]
    train, (test,) = neuralode.train_and_test_sets(tmp_path, "complex", True, 3, rotated=True, test_sizes=[2])
    assert (train.name, test.name) == ("complex_TBP_planar_rotated_3_train", "complex_TBP_planar_rotated_2_test")
    np.testing.assert_array_equal(train.y, rotated.y)


def test_a_cache_written_with_other_ranges_is_regenerated(tmp_path):
    # a file of this name from before (random orientation) is not the study's data: its hash differs
    path = neuralode.dataset_path(tmp_path, "complex", True, 3, 0, "train")
    old = load_or_generate(tmp_path, "complex", True, 3, 0, "train", neuralode.family_ranges("complex", True, True))
    path.parent.mkdir(parents=True, exist_ok=True)
    neuralode.dataset_path(
        tmp_path, "complex", True, 3, 0, "train", neuralode.family_ranges("complex", True, True)
    ).rename(path)
    new = load_or_generate(tmp_path, "complex", True, 3, 0, "train")
    assert not new.attrs["rotated"] and not np.allclose(new.y, old.y)


def test_train_and_test_differ(tmp_path):
    train = load_or_generate(tmp_path, "circular", False, 2, 0, "train")
    test = load_or_generate(tmp_path, "circular", False, 2, 1, "test")
    assert test.name == "circular_TBP_3D_2_test"
    assert not np.allclose(train.y, test.y)


def test_canonical_units_round_trip():
    units = CanonicalUnits()
    t, y, _ = neuralode.generate_orbits(2, 0, neuralode.family_ranges("complex", True))
    tc, yc = units.to_canonical(t, y)
    # mu = 1: v^2/2 - 1/r is the energy in canonical units
    r = np.linalg.norm(yc[..., :3], axis=-1)
    energy = 0.5 * np.sum(yc[..., 3:] ** 2, -1) - 1 / r
    np.testing.assert_allclose(energy, neuralode.specific_energy(y) / units.speed_km_s**2, rtol=1e-12)
    t2, y2 = units.to_physical(tc, yc)
    np.testing.assert_allclose(t2, t)
    np.testing.assert_allclose(y2, y)
