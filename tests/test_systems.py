import numpy as np
import pytest

from sst2bench.errors import UserError
from sst2bench.export import export_onnx
from sst2bench.systems import InferenceConfig, OrtSystem, System, TorchSystem, load_system

from .conftest import build_tiny_distilbert

TEXTS = ["good film .", "a very dull , boring mess", "it 's not great but fun !", "awful"] * 5


@pytest.fixture(scope="module")
def tiny_onnx_dir(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("onnx")
    export_onnx(tiny_model_dir, out)
    return out


def probabilities(system):
    return np.array([p.probabilities for p in system.predict(TEXTS)])


def test_torch_system_is_consistent_across_batching_and_padding(tiny_model_dir):
    dynamic = TorchSystem.from_pretrained(str(tiny_model_dir), InferenceConfig(batch_size=3))
    fixed = TorchSystem.from_pretrained(str(tiny_model_dir), InferenceConfig(batch_size=20, padding="max_length", max_length=32))
    assert isinstance(dynamic, System)
    p_dynamic, p_fixed = probabilities(dynamic), probabilities(fixed)
    assert np.allclose(p_dynamic.sum(axis=1), 1.0)
    assert np.allclose(p_dynamic, p_fixed, atol=1e-5)
    predictions = dynamic.predict(TEXTS[:2])
    assert all(p.label == int(np.argmax(p.probabilities)) and p.score == max(p.probabilities) for p in predictions)


def test_onnx_system_agrees_with_pytorch(tiny_model_dir, tiny_onnx_dir):
    ort_system = load_system(str(tiny_onnx_dir), InferenceConfig(batch_size=8))
    assert isinstance(ort_system, OrtSystem)
    torch_system = load_system(str(tiny_model_dir))
    assert np.allclose(probabilities(ort_system), probabilities(torch_system), atol=1e-4)


def test_truncation_to_max_length(tiny_model_dir):
    system = TorchSystem.from_pretrained(str(tiny_model_dir), InferenceConfig(max_length=4))
    batch = system.encode(["good film . it is very fun and moving"], "pt")
    assert batch["input_ids"].shape[1] == 4


def test_bad_inputs_are_user_errors(tiny_model_dir, tmp_path, offline_hub):
    with pytest.raises(UserError, match="no such model folder"):
        load_system(str(tmp_path / "missing"))
    with pytest.raises(UserError, match="not a model folder"):
        load_system(str(tmp_path))
    with pytest.raises(UserError, match="needs the Hugging Face Hub"):
        load_system("distilbert/distilbert-base-uncased-finetuned-sst-2-english")
    with pytest.raises(UserError, match="padding"):
        InferenceConfig(padding="left")
    with pytest.raises(UserError, match="non-empty"):
        TorchSystem.from_pretrained(str(tiny_model_dir)).predict(["good", " "])


def test_reversed_labels_are_refused(tmp_path):
    folder = build_tiny_distilbert(tmp_path / "reversed", id2label={0: "POSITIVE", 1: "NEGATIVE"})
    with pytest.raises(UserError, match="does not map 0 to negative"):
        load_system(str(folder))


def test_a_new_runtime_is_one_module_found_without_being_listed(tmp_path, monkeypatch, tiny_model_dir):
    """A backend module dropped beside the others is discovered when a spec names it."""
    import sys

    import sst2bench.systems as systems_package
    from sst2bench.systems import SystemSpec, base

    (tmp_path / "toy_runtime.py").write_text(
        "from sst2bench.systems.base import register_backend\n"
        "from sst2bench.systems.torch import TorchSystem\n\n\n"
        "@register_backend('toy')\n"
        "class ToySystem(TorchSystem):\n"
        "    @classmethod\n"
        "    def from_spec(cls, spec, inference):\n"
        "        return cls.from_pretrained(spec.path, inference, name=spec.name)\n"
    )
    monkeypatch.setattr(systems_package, "__path__", [*systems_package.__path__, str(tmp_path)])
    monkeypatch.setattr(base, "BACKENDS", dict(base.BACKENDS))
    monkeypatch.delitem(sys.modules, "sst2bench.systems.toy_runtime", raising=False)
    system = SystemSpec("toy", "toy", str(tiny_model_dir), "fp32").load(InferenceConfig())
    assert type(system).__name__ == "ToySystem" and len(system.predict(TEXTS[:3])) == 3
    with pytest.raises(UserError, match="no system backend 'nope'"):
        SystemSpec("x", "nope", ".", "fp32").load(InferenceConfig())


def test_same_length_batches_pad_no_row_and_predict_exactly_what_one_sentence_per_call_predicts(tiny_onnx_dir):
    """Sentences grouped by token length need no padding, so an fp32 graph gives batch 1's
    probabilities (to rounding); plain batches of mixed lengths pad."""
    texts = [*TEXTS, "good", "a dull film", "not great", "fun !", "charming and moving"]
    one = load_system(str(tiny_onnx_dir), InferenceConfig(batch_size=1))
    grouped = load_system(str(tiny_onnx_dir), InferenceConfig(batch_size=4, same_length_batches=True))
    mixed = load_system(str(tiny_onnx_dir), InferenceConfig(batch_size=4))
    batches = grouped.batches(texts)
    assert sorted(i for batch in batches for i in batch) == list(range(len(texts))) and max(map(len, batches)) == 4
    for batch in batches:
        encoded = grouped.encode([texts[i] for i in batch], "np")
        assert encoded["attention_mask"].all()  # no padded position in any call
    assert batches != mixed.batches(texts) and not all(
        mixed.encode([texts[i] for i in batch], "np")["attention_mask"].all() for batch in mixed.batches(texts)
    )
    exact = np.array([p.probabilities for p in one.predict(texts)])
    assert np.allclose(np.array([p.probabilities for p in grouped.predict(texts)]), exact, rtol=0, atol=1e-6)
    with pytest.raises(UserError, match="same_length_batches needs padding='dynamic'"):
        InferenceConfig(batch_size=4, padding="max_length", same_length_batches=True)
