"""The artifact cache: keys from content, params, the code's import closure, libraries and machine."""

import hashlib

import pytest

from sst2bench import cache
from sst2bench.cache import ArtifactCache, CacheKey, code_hash, content_hash, import_closure, sha256_of, split_digest


def test_the_import_closure_follows_imports_inside_functions_and_stays_in_the_package():
    closure = import_closure("sst2bench.quantization.ort")
    assert "sst2bench.quantization.recipes" in closure and "sst2bench.quantization" in closure
    assert "sst2bench.report" not in closure and not any(not name.startswith("sst2bench") for name in closure)
    assert "sst2bench.quantization.ort" in import_closure("sst2bench.quantization.run")  # a lazy import


@pytest.fixture
def package_copy(tmp_path, monkeypatch):
    """A copy of the package's source to edit; the cache reads code from it."""
    import shutil

    copy = tmp_path / "sst2bench"
    shutil.copytree(cache.PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "PACKAGE_DIR", copy)
    return copy


def test_editing_a_module_changes_the_code_hash_of_what_imports_it_and_nothing_else(package_copy):
    ort_before, report_before = code_hash("sst2bench.quantization.ort"), code_hash("sst2bench.report")
    recipes = package_copy / "quantization" / "recipes.py"
    recipes.write_text(recipes.read_text() + "\n# one more line\n")
    assert code_hash("sst2bench.quantization.ort") != ort_before
    assert code_hash("sst2bench.report") == report_before


def test_content_hash_sees_file_contents_not_names_of_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        (folder / "model.onnx").write_bytes(b"weights")
    assert content_hash(a) == content_hash(b)
    (b / "model.onnx").write_bytes(b"other weights")
    assert content_hash(a) != content_hash(b)


def test_file_and_split_hashes_keep_the_values_cache_keys_and_model_cards_hold(tmp_path):
    """Another value for the same input would miss every cached model and change published checksums."""
    import datasets

    path = tmp_path / "model.bin"
    path.write_bytes(bytes(range(256)) * 5000)  # more than one read block
    assert sha256_of(path) == content_hash(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    rows = {"idx": [0, 1, 2], "sentence": ["a fine film . ", 'dull , é "quoted" ', ""], "label": [1, 0, 1]}
    types = {"idx": "int32", "sentence": "string", "label": "int64"}  # as SST-2 loads
    split = datasets.Dataset.from_dict(rows, features=datasets.Features({k: datasets.Value(v) for k, v in types.items()}))
    lines = "".join(f"{i}\t{s}\t{y}\n" for i, s, y in zip(*rows.values()))
    assert split_digest(split) == hashlib.sha256(lines.encode("utf-8")).hexdigest() == split_digest(rows)
    assert split_digest(split) == "f6dd8be05269174a1d1cf675acef8a34fc7f6e1738879a9cf407508a963660e6"  # pinned: a cache key


def test_a_failed_make_stores_nothing_and_a_finished_one_is_a_hit(tmp_path):
    store = ArtifactCache(tmp_path / "cache")
    key = CacheKey.make("thing", "sst2bench.report", params={"x": 1})

    def broken(folder):
        (folder / "half.txt").write_text("half")
        raise RuntimeError("stopped part-way")

    with pytest.raises(RuntimeError):
        store.get_or_make(key, broken)
    assert store.lookup(key) is None and not list((tmp_path / "cache").rglob("half.txt"))

    calls = []

    def make(folder):
        calls.append(folder)
        (folder / "out.txt").write_text("whole")

    first, hit = store.get_or_make(key, make)
    again, hit_again = store.get_or_make(key, make)
    assert (hit, hit_again) == (False, True) and first == again and len(calls) == 1
    assert (first / "out.txt").read_text() == "whole"
    other = CacheKey.make("thing", "sst2bench.report", params={"x": 2})
    assert store.lookup(other) is None


def test_measurement_keys_hold_the_cpu_and_its_isa():
    measured = CacheKey.make("latency", "sst2bench.report", measured=True)
    plain = CacheKey.make("latency", "sst2bench.report")
    assert measured.machine["cpu"] and measured.machine["isa"] and plain.machine == {}
    assert measured.digest != plain.digest


def test_one_brand_string_on_two_cpu_generations_keys_two_measurements(monkeypatch, tmp_path):
    """ "AMD EPYC" is both Zen 3 (family 25, model 1) and Zen 5 (family 26): the family tells them apart."""
    import sst2bench.provenance as provenance_module

    cpuinfo = "processor : 0\ncpu family : {family}\nmodel : 1\nmodel name : AMD EPYC\nstepping : 1\nflags : fpu avx avx2 fma\n"
    keys = []
    for family in (25, 26):
        (tmp_path / "cpuinfo").write_text(cpuinfo.format(family=family))
        real_path = provenance_module.Path
        monkeypatch.setattr(
            provenance_module,
            "Path",
            lambda p, real_path=real_path: real_path(tmp_path / "cpuinfo") if p == "/proc/cpuinfo" else real_path(p),
        )
        keys.append(CacheKey.make("latency", "sst2bench.report", measured=True))
        monkeypatch.setattr(provenance_module, "Path", real_path)
    assert [key.machine["family"] for key in keys] == ["25", "26"] and keys[0].machine["cpu"] == keys[1].machine["cpu"] == "AMD EPYC"
    assert keys[0].digest != keys[1].digest


def test_an_artifact_edited_after_it_was_stored_is_not_a_hit(tmp_path):
    store = ArtifactCache(tmp_path / "cache")
    key = CacheKey.make("thing", "sst2bench.report")
    folder, _ = store.get_or_make(key, lambda out: (out / "model.onnx").write_bytes(b"weights") and None)
    assert store.lookup(key) == folder
    (folder / "model.onnx").write_bytes(b"zeroed")  # e.g. through the readable link models/<run>/int8/<recipe>
    assert store.lookup(key) is None
    again, hit = store.get_or_make(key, lambda out: (out / "model.onnx").write_bytes(b"weights") and None)
    assert not hit and (again / "model.onnx").read_bytes() == b"weights"
