"""Quantization tests that can fail: accuracy on a tiny model with real signal, broken quantizers
that must be caught, and every recipe option shown to change what it claims to change."""

import json
import random
import re
import shutil
import textwrap

import numpy as np
import pytest

from sst2bench.errors import UserError
from sst2bench.quantization import PRESETS, CalibrationConfig, Method, Recipe, get_method, preset, register_method
from sst2bench.quantization.artifacts import activation_qparams, identical_recipes, qparam_roles, qparams, qparams_digest
from sst2bench.quantization.base import TuningFailed
from sst2bench.quantization.run import quantize
from sst2bench.systems import InferenceConfig, load_system

from .conftest import WORDS, onnx_accuracy_on

# int8 may lose at most this many points of held-out accuracy against fp32.
BOUND_POINTS = 2.0
# Small calibration for speed: the synthetic sentences are at most 11 tokens, so 16 holds them.
FAST = {"calibration_samples": 32, "calibration_max_length": 16}


def fast(name: str, **changes):
    """``preset(name, **FAST, **changes)``; FAST only for static methods (dynamic ones take no calibration)."""
    recipe = preset(name, **changes)
    return recipe.replace(**FAST) if recipe.is_static else recipe


TEXTS = ["good film .", "a very dull , boring mess", "it 's not great but fun !", "awful", "charming and moving"] * 4


def held_out_accuracy_gap(model_dir, signal) -> float:
    """fp32 minus int8 accuracy on the signal model's held-out sentences, in points (positive = int8 lost)."""
    return 100 * (signal.fp32_accuracy - onnx_accuracy_on(model_dir, signal.held_out))


@pytest.fixture(scope="module")
def tuning_split(signal_model):
    """What INC's accuracy-aware tuning scores trials on: training sentences, never the held-out ones."""
    return signal_model.train.select(range(200))


@pytest.fixture(scope="module")
def quantized(signal_model, tuning_split, tmp_path_factory):
    """``make(recipe) -> (model folder, record)`` on the signal model; each distinct recipe is quantized once."""
    root, made = tmp_path_factory.mktemp("int8"), {}

    def make(recipe: Recipe):
        key = json.dumps(recipe.to_dict(), sort_keys=True)
        if key not in made:
            out = root / f"{len(made):02d}-{recipe.name}"
            made[key] = (out, quantize(recipe, signal_model.onnx_dir, out, signal_model.train, tuning_split))
        return made[key]

    return make


# ---------------------------------------------------------------- presets and the signal model


def test_presets_are_valid_and_named_after_themselves():
    for name, factory in PRESETS.items():
        assert factory().name == name
    assert preset("inc-static").criterion == "relative" and preset("inc-static").tolerable_loss == 0.01
    assert preset("inc-static", max_trials=3).max_trials == 3
    with pytest.raises(UserError, match="unknown recipe"):
        preset("fp4-magic")
    with pytest.raises(UserError, match="calibration"):
        Recipe.build("x", "ort-static", calibration="average")
    with pytest.raises(UserError, match="strategy"):
        Recipe.build("x", "inc-static", strategy="greedy")
    with pytest.raises(UserError, match="unknown fields"):
        Recipe.from_dict({"name": "x", "method": "ort-static", "bits": 4})


# ---------------------------------------------------------------- typed method configs and the registry

# Fields each method does not read: setting one is an error naming the recipe, field and method.
IGNORED_FIELDS = [
    ("ort-static-qdq", "ort-static", {"max_trials": 5}),
    ("ort-static-qdq", "ort-static", {"criterion": "absolute"}),
    ("ort-static-qdq", "ort-static", {"tolerable_loss": 0.02}),
    ("ort-static-qdq", "ort-static", {"strategy": "mse_v2"}),
    ("ort-static-qdq", "ort-static", {"smooth_quant_alpha": 0.5}),
    ("ort-dynamic", "ort-dynamic", {"quant_format": "QDQ"}),
    ("ort-dynamic", "ort-dynamic", {"calibration_samples": 16}),
    ("ort-dynamic", "ort-dynamic", {"calibration": "entropy"}),
    ("ort-dynamic", "ort-dynamic", {"percentile": 99.9}),
    ("ort-dynamic", "ort-dynamic", {"max_trials": 5}),
    ("inc-static", "inc-static", {"optimum_exclusions": False}),
    ("inc-static", "inc-static", {"weight_type": "uint8"}),
    ("inc-static", "inc-static", {"num_bins": 512}),
    ("inc-static", "inc-static", {"num_quantized_bins": 64}),
    ("inc-static", "inc-static", {"percentile": 99.9}),
]


@pytest.mark.parametrize("name, method, change", IGNORED_FIELDS)
def test_a_field_the_method_does_not_read_is_an_error(name, method, change):
    (field,) = change
    expected = f"recipe '{name}': {field} is not a field of method {method}"
    with pytest.raises(UserError, match=re.escape(expected)) as error:
        preset(name, **change)
    assert "(fields: " in str(error.value) and "operators" in str(error.value)
    with pytest.raises(UserError, match=re.escape(f"recipe 'x': {field} is not a field of method {method}")):
        Recipe.build("x", method, **change)
    with pytest.raises(UserError, match=f"recipe 'x': unknown fields \\['{field}'\\] for method {method}"):
        Recipe.from_dict({"name": "x", "method": method, **change})


def test_each_method_config_holds_only_what_its_method_reads():
    from sst2bench.quantization.base import field_names, get_method

    fields = {name: set(field_names(get_method(name).config_class)) for name in ("ort-static", "ort-dynamic", "inc-static")}
    common = {"operators", "optimize_graph", "fuse_attention", "fp32_nodes"}
    ort = {"activation_type", "weight_type", "per_channel", "reduce_range", "optimum_exclusions", "isa"}
    assert fields["ort-static"] == common | ort | {
        "quant_format",
        "fallback_search",
        "accuracy_target",
        "agreement_target",
        "size_budget",
        "search_rank_examples",
        "max_fallbacks",
    }
    assert fields["ort-dynamic"] == common | ort
    assert fields["inc-static"] == common | {
        "quant_format",
        "activation_type",
        "per_channel",
        "reduce_range",
        "isa",
        "criterion",
        "tolerable_loss",
        "max_trials",
        "strategy",
        "smooth_quant_alpha",
    }
    assert preset("ort-dynamic").calibration is None and not preset("ort-dynamic").is_static
    assert preset("inc-static").calibration == CalibrationConfig() and preset("inc-static").is_static


@pytest.mark.parametrize(
    "name, change, message",
    [
        ("ort-static-qdq", {"calibration": "entropy", "num_bins": 128, "num_quantized_bins": 128}, "num_quantized_bins < num_bins"),
        ("ort-static-qdq", {"calibration": "entropy", "num_bins": 64, "num_quantized_bins": 128}, "num_quantized_bins < num_bins"),
        ("ort-static-qdq", {"percentile": 99.0}, "calibration 'minmax' does not read percentile"),
        ("ort-static-qdq", {"num_bins": 512}, "calibration 'minmax' does not read num_bins"),
        ("ort-static-qdq", {"calibration": "entropy", "percentile": 99.0}, "calibration 'entropy' does not read percentile"),
        ("ort-static-qdq-percentile", {"num_quantized_bins": 64}, "calibration 'percentile' does not read num_quantized_bins"),
        ("ort-static-qdq-percentile", {"percentile": 0}, r"percentile must be in \(0, 100\]"),
        ("ort-static-qdq-percentile", {"percentile": 100.5}, r"percentile must be in \(0, 100\]"),
        ("ort-static-qdq", {"calibration_samples": 0}, "samples and batch_size must be at least 1"),
        ("ort-static-qdq", {"calibration_max_length": 4}, "max_length must be at least 8"),
        ("ort-dynamic", {"activation_type": "int8"}, "dynamic quantization takes uint8 activations"),
        ("ort-static-qdq", {"quant_format": "QLinear"}, "quant_format must be one of"),
        ("ort-static-qdq", {"weight_type": "int4"}, "weight_type must be one of"),
        ("ort-static-qdq", {"operators": ()}, "operators must name at least one op type"),
        ("inc-static", {"tolerable_loss": 1.5}, r"tolerable_loss must be in \[0, 1\)"),
        ("inc-static", {"criterion": "percent"}, "criterion must be one of"),
        ("inc-static", {"smooth_quant_alpha": 2.0}, "smooth_quant_alpha must be in"),
        ("inc-static", {"max_trials": 0}, "max_trials must be at least 1"),
        ("inc-static", {"activation_type": "int8"}, "INC's ONNX Runtime adaptor quantizes activations as uint8 only"),
        ("inc-static", {"strategy": "mse"}, "strategy must be one of"),
    ],
)
def test_invalid_combinations_are_refused_naming_the_recipe(name, change, message):
    with pytest.raises(UserError, match=f"recipe '{name}': .*{message}"):
        preset(name, **change)


def test_configs_assembled_by_hand_are_checked_against_their_method():
    from sst2bench.quantization.inc import IncStaticConfig
    from sst2bench.quantization.ort_dynamic import OrtDynamicConfig
    from sst2bench.quantization.ort_static import OrtStaticConfig

    assert Recipe("x", "ort-static", OrtStaticConfig(quant_format="QDQ")).calibration == CalibrationConfig()
    with pytest.raises(UserError, match="method inc-static does not read calibration num_bins"):
        Recipe("x", "inc-static", IncStaticConfig(), CalibrationConfig(method="entropy", num_bins=512))
    with pytest.raises(UserError, match="method ort-dynamic is dynamic and takes no calibration"):
        Recipe("x", "ort-dynamic", OrtDynamicConfig(), CalibrationConfig())
    with pytest.raises(UserError, match="method ort-static takes a OrtStaticConfig, not a IncStaticConfig"):
        Recipe("x", "ort-static", IncStaticConfig())
    with pytest.raises(UserError, match="unknown quantization method 'fp4'; methods: inc-static, .*ort-dynamic, ort-static"):
        Recipe.build("x", "fp4")
    with pytest.raises(UserError, match="method cannot be replaced"):
        preset("ort-static-qdq").replace(method="inc-static")
    with pytest.raises(UserError, match="entropy calibration needs"):  # without a recipe, no recipe name
        CalibrationConfig(method="entropy", num_bins=128, num_quantized_bins=128)


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_preset_round_trips_through_json_and_flat_fields(name):
    recipe = preset(name)
    saved = json.loads(json.dumps(recipe.to_dict()))
    assert saved == recipe.to_dict() and set(saved) == {"name", "method", "config", "calibration"}
    assert Recipe.from_dict(saved) == recipe
    assert Recipe.from_dict(recipe.flat()) == recipe == Recipe.build(**recipe.flat())
    assert all(getattr(recipe, field) == value for field, value in recipe.flat().items() if field != "calibration")


def test_overrides_in_params_are_checked_when_the_params_load():
    from sst2bench.config import QuantizeConfig

    cfg = QuantizeConfig(
        recipes=["inc-static"], overrides={"inc-static": {"max_trials": 10, "tolerable_loss": 0.005, "calibration_samples": 16}}
    )
    (recipe,) = cfg.recipe_objects()
    assert (recipe.config.max_trials, recipe.config.tolerable_loss, recipe.calibration.samples) == (10, 0.005, 16)
    with pytest.raises(UserError, match="recipe 'ort-dynamic': max_trials is not a field of method ort-dynamic"):
        QuantizeConfig(overrides={"ort-dynamic": {"max_trials": 10}})


def test_importing_the_package_imports_no_method():
    import subprocess
    import sys

    code = "import sys, sst2bench.quantization as q; q.PRESETS; print(sorted(m for m in sys.modules if m.startswith('sst2bench.quantization')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert not {"ort", "ort_static", "ort_dynamic", "inc", "run"} & {m.rsplit(".", 1)[-1] for m in eval(loaded)}, loaded


def test_discovery_lists_exactly_the_modules_that_define_methods():
    from sst2bench.quantization.base import method_modules

    modules = method_modules()
    assert {
        "sst2bench.quantization.inc": ["inc-static"],
        "sst2bench.quantization.ort_dynamic": ["ort-dynamic"],
        "sst2bench.quantization.ort_static": ["ort-static"],
    }.items() <= modules.items()
    assert not {"sst2bench.quantization.base", "sst2bench.quantization.run", "sst2bench.quantization.calibration"} & set(modules)


def test_a_method_is_one_module_dropped_into_the_package(signal_model, tmp_path, monkeypatch):
    """A module on the package's path that registers a method is found by name, imported on first
    lookup, and quantizes through ``quantize`` with no other file edited."""
    import sys

    import sst2bench.quantization as package
    from sst2bench.quantization import base

    folder = tmp_path / "dropped"
    folder.mkdir()
    (folder / "toy_dynamic.py").write_text(
        textwrap.dedent(
            """
            from dataclasses import dataclass

            from sst2bench.quantization.base import Method, MethodConfig, register_method


            @dataclass(frozen=True)
            class ToyConfig(MethodConfig):
                per_channel: bool = False


            @register_method
            class ToyDynamic(Method):
                name = "toy-dynamic"
                config_class = ToyConfig
                is_static = False

                def quantize(self, job):
                    from onnxruntime.quantization import quantize_dynamic

                    config = job.recipe.config
                    quantize_dynamic(
                        str(job.source), str(job.out_dir / "model.onnx"), op_types_to_quantize=list(config.operators),
                        per_channel=config.per_channel, nodes_to_exclude=list(config.fp32_nodes),
                    )
            """
        )
    )
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(folder)])
    monkeypatch.setattr(base, "METHODS", dict(base.METHODS))
    monkeypatch.delitem(sys.modules, "sst2bench.quantization.toy_dynamic", raising=False)
    assert base.method_modules()["sst2bench.quantization.toy_dynamic"] == ["toy-dynamic"]
    assert "sst2bench.quantization.toy_dynamic" not in sys.modules  # found by reading, not importing
    recipe = Recipe.build("toy", "toy-dynamic", per_channel=True)
    assert "sst2bench.quantization.toy_dynamic" in sys.modules and not recipe.is_static and recipe.calibration is None
    with pytest.raises(UserError, match="recipe 'toy': calibration_samples is not a field of method toy-dynamic"):
        Recipe.build("toy", "toy-dynamic", calibration_samples=8)
    record = quantize(recipe, signal_model.onnx_dir, tmp_path / "toy", signal_model.train)
    assert record["ops"]["MatMul"]["int8"] > 0 and record["tuning"] is None
    assert record["recipe"] == {
        "name": "toy",
        "method": "toy-dynamic",
        "config": {"operators": ["MatMul"], "optimize_graph": True, "fuse_attention": False, "fp32_nodes": [], "per_channel": True},
        "calibration": None,
    }
    sys.modules.pop("sst2bench.quantization.toy_dynamic", None)


def test_a_method_defined_anywhere_registers_with_the_decorator(monkeypatch):
    from sst2bench.quantization import base

    monkeypatch.setattr(base, "METHODS", dict(base.METHODS))

    @register_method
    class Copy(Method):
        name = "copy"
        is_static = True

    assert get_method("copy") is Copy and Recipe.build("c", "copy", calibration_samples=3).calibration.samples == 3
    with pytest.raises(TypeError, match="defined twice"):

        @register_method
        class Other(Method):
            name = "ort-static"


def test_the_signal_model_learned_its_task(signal_model):
    """The held-out sentences were never trained on, and fp32 gets them right far above chance."""
    assert not set(signal_model.held_out["sentence"]) & set(signal_model.train["sentence"])
    assert len(signal_model.held_out) == 500 and 0.4 < np.mean(signal_model.held_out["label"]) < 0.6
    assert signal_model.fp32_accuracy >= 0.95, signal_model.fp32_accuracy


# One or more presets of every family: ORT dynamic, ORT static QDQ, ORT static QOperator, INC.
FAMILY_PRESETS = [
    "ort-dynamic",
    "ort-dynamic-pc",
    "ort-static-qdq",
    "ort-static-qdq-u8s8-pc-rr",
    "ort-static-search",
    "ort-static-qdq-s8s8",
    "ort-static-qdq-percentile",
    "ort-static-qdq-entropy",
    "ort-static-qop-fused",
    "ort-static-qop-fused-rr",
    "inc-static",
]


def test_every_family_is_checked():
    families = {(PRESETS[name]().method, PRESETS[name]().quant_format if PRESETS[name]().is_static else "-") for name in FAMILY_PRESETS}
    assert {("ort-dynamic", "-"), ("ort-static", "QDQ"), ("ort-static", "QOperator"), ("inc-static", "QOperator")} <= families


# Entropy's threshold search takes a minute here: its held-out accuracy runs in make test-all.
SLOW_FAMILY_PRESETS = {"ort-static-qdq-entropy"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_FAMILY_PRESETS else n for n in FAMILY_PRESETS])
def test_int8_stays_within_two_points_of_fp32_on_held_out_sentences(name, signal_model, quantized, tmp_path_factory):
    out, record = quantized(fast(name))
    assert record["ops"]["MatMul"]["int8"] > 0 and record["recipe"]["name"] == name
    assert record["qparams_digest"] == qparams_digest(out / "model.onnx")
    assert not list(out.parent.glob("**/augmented_model.onnx")) and not list(out.parent.glob("**/nc_workspace"))
    gap = held_out_accuracy_gap(out, signal_model)
    assert gap <= BOUND_POINTS, f"{name}: int8 lost {gap:.1f} points on held-out sentences"


# ---------------------------------------------------------------- broken quantizers must be caught


def break_quantized(source_dir, out_dir, how: str) -> int:
    """Copy a quantized model folder and damage its quantization parameters; returns how many it changed.

    ``zero-weight-scales``: every weight scale set to 0 (weights dequantize to 0).
    ``activation-ranges-div4``: every activation scale divided by 4 (ranges a quarter as wide: clipping).
    Weight and activation scales are told apart by what they quantize (``qparam_roles``).
    """
    import onnx
    from onnx import numpy_helper

    shutil.copytree(source_dir, out_dir)
    path = out_dir / "model.onnx"
    model, roles = onnx.load(str(path)), qparam_roles(path)
    changed = 0
    for tensor in model.graph.initializer:
        role = roles.get(tensor.name)
        if "scale" not in tensor.name.lower() or role is None:
            continue
        array = numpy_helper.to_array(tensor)
        if how == "zero-weight-scales" and role == "weight":
            array = np.zeros_like(array)
        elif how == "activation-ranges-div4" and role == "activation":
            array = np.asarray(array / 4, dtype=array.dtype)
        else:
            continue
        tensor.CopyFrom(numpy_helper.from_array(array, tensor.name))
        changed += 1
    onnx.save(model, str(path))
    return changed


@pytest.mark.parametrize(
    "name, how",
    [
        ("ort-dynamic-pc", "zero-weight-scales"),
        ("ort-static-qdq-u8s8-pc-rr", "zero-weight-scales"),
        ("ort-static-qop-fused", "zero-weight-scales"),
        ("inc-static", "zero-weight-scales"),
        # (QDQ u8s8-pc-rr with activation ranges / 4 loses only 2.8 points here: too close to the
        # bound to be a stable example of a break, though it fails the check too.)
        ("ort-static-qdq-s8s8", "activation-ranges-div4"),
        ("ort-static-qop-fused", "activation-ranges-div4"),
        ("inc-static", "activation-ranges-div4"),
    ],
)
def test_a_broken_quantizer_fails_the_same_check(name, how, signal_model, quantized, tmp_path):
    good, _ = quantized(fast(name))
    assert held_out_accuracy_gap(good, signal_model) <= BOUND_POINTS
    changed = break_quantized(good, tmp_path / "broken", how)
    assert changed > 0
    gap = held_out_accuracy_gap(tmp_path / "broken", signal_model)
    assert gap > BOUND_POINTS, f"{name} with {how}: only {gap:.1f} points lost, the check would not catch it"


def test_breakage_touches_only_the_kind_of_scale_it_names(quantized, tmp_path):
    good, _ = quantized(preset("ort-static-qdq-u8s8-pc-rr", **FAST))
    before = qparams(good / "model.onnx")
    break_quantized(good, tmp_path / "w", "zero-weight-scales")
    after = qparams(tmp_path / "w" / "model.onnx")
    roles = qparam_roles(good / "model.onnx")
    changed = {n for n in before if not np.array_equal(before[n], after[n])}
    assert changed and all(roles[n] == "weight" and "scale" in n for n in changed)
    assert set(activation_qparams(good / "model.onnx")) == {n for n, r in roles.items() if r == "activation"}


# ---------------------------------------------------------------- options act


@pytest.mark.parametrize(
    "field, value",
    [
        ("per_channel", False),
        ("reduce_range", False),
        ("activation_type", "int8"),
        ("weight_type", "uint8"),
        ("calibration_samples", 64),
        ("calibration_seed", 7),
        ("calibration_max_length", 32),
        ("calibration_padding", "max_length"),
    ],
)
def test_an_option_changes_the_quantization_parameters(field, value, quantized):
    base = preset("ort-static-qdq-u8s8-pc-rr", **FAST)
    if field == "calibration_max_length":  # unpadded sentences shorter than both lengths are the same tensors
        base = base.replace(calibration_padding="max_length")
    assert getattr(base, field) != value
    _, a = quantized(base)
    _, b = quantized(base.replace(**{field: value}))
    assert a["qparams_digest"] != b["qparams_digest"], f"{field}={value!r} changed no scale or zero point"


def test_calibration_padding_feeds_what_inference_sees_unless_the_recipe_says_max_length(signal_model, quantized):
    """Dynamic padding: one unpadded sentence per batch, so no pad token reaches a calibrator, and
    batches differ in length (which ORT's histogram calibrators take one collect call each);
    max_length: padded batches. The two give other activation ranges and the same weights."""
    from transformers import AutoTokenizer

    from sst2bench.quantization.calibration import calibration_data

    tokenizer = AutoTokenizer.from_pretrained(signal_model.onnx_dir)
    dynamic = calibration_data(CalibrationConfig(samples=32, max_length=16), tokenizer, signal_model.train)
    padded = calibration_data(CalibrationConfig(samples=32, max_length=16, padding="max_length"), tokenizer, signal_model.train)
    dynamic_batches, padded_batches = list(dynamic.batches()), list(padded.batches())
    assert len(dynamic_batches) == 32 and all(b["input_ids"].shape[0] == 1 and b["attention_mask"].all() for b in dynamic_batches)
    assert len({b["input_ids"].shape[1] for b in dynamic_batches}) > 1
    assert len(padded_batches) == 4 and all(b["input_ids"].shape == (8, 16) for b in padded_batches)
    assert not all(b["attention_mask"].all() for b in padded_batches)
    with pytest.raises(UserError, match="padding 'dynamic' .* does not read batch_size"):
        preset("ort-static-qdq", calibration_batch_size=4)
    for name in ("ort-static-qdq-u8s8-pc-rr", "ort-static-qdq-entropy", "inc-static"):
        recipe = preset(name, **FAST)
        weights_a, activations_a = weight_and_activation_qparams(quantized(recipe)[0])
        weights_b, activations_b = weight_and_activation_qparams(quantized(recipe.replace(calibration_padding="max_length"))[0])
        assert differing(activations_a, activations_b) and not differing(weights_a, weights_b), name


def test_calibration_draws_whole_sentences_when_the_recipe_says_so(signal_model, quantized):
    """Composition "sentences" samples whole train sentences (no row that a longer row contains), the
    kind of text the model is asked about; "rows" (the default) draws from every row, phrases
    included. The two give other activation ranges and the same weights."""
    from sst2bench.data import whole_sentences
    from sst2bench.quantization.calibration import calibration_pool

    train = signal_model.train
    pool = calibration_pool(train, "sentences")
    assert sorted(pool["sentence"]) == sorted(train.select(whole_sentences(list(train["sentence"])))["sentence"])
    assert 0 < len(pool) < len(train) and calibration_pool(train, "rows") is train
    recipe = preset("ort-static-qdq", **FAST)
    assert recipe.calibration.composition == "rows"
    weights_a, activations_a = weight_and_activation_qparams(quantized(recipe)[0])
    weights_b, activations_b = weight_and_activation_qparams(quantized(recipe.replace(calibration_composition="sentences"))[0])
    assert differing(activations_a, activations_b) and not differing(weights_a, weights_b)
    with pytest.raises(UserError, match="composition must be one of"):
        preset("ort-static-qdq", calibration_composition="phrases")


def test_calibration_truncates_where_inference_does_unless_the_recipe_says(signal_model, tmp_path):
    """An unset calibration_max_length is the run's inference max_length: the model and its record follow it."""
    from sst2bench.quantization.run import truncated_as_inference

    # Padded batches, so the truncation length shows in every calibration tensor.
    recipe = preset("ort-static-qdq", calibration_samples=16, calibration_padding="max_length")
    assert recipe.calibration.max_length is None
    assert truncated_as_inference(recipe, InferenceConfig(max_length=16)).calibration.max_length == 16
    own = recipe.replace(calibration_max_length=32)
    assert truncated_as_inference(own, InferenceConfig(max_length=16)) == own
    assert truncated_as_inference(preset("ort-dynamic"), InferenceConfig(max_length=16)) == preset("ort-dynamic")
    records = {
        length: quantize(
            recipe, signal_model.onnx_dir, tmp_path / str(length), signal_model.train, inference=InferenceConfig(max_length=length)
        )
        for length in (16, 32)
    }
    assert [records[length]["recipe"]["calibration"]["max_length"] for length in (16, 32)] == [16, 32]
    assert records[16]["qparams_digest"] != records[32]["qparams_digest"]


def test_percentile_and_its_histogram_change_the_activation_ranges(quantized):
    base = preset("ort-static-qdq-percentile", **FAST)
    ranges = [
        activation_qparams(quantized(recipe)[0] / "model.onnx")
        for recipe in (base, base.replace(percentile=99.0), base.replace(num_bins=256))
    ]
    for other in ranges[1:]:
        assert ranges[0].keys() == other.keys()
        assert any(not np.array_equal(ranges[0][k], other[k]) for k in ranges[0])


def test_entropy_bins_reach_onnx_runtime_and_equal_bins_are_refused():
    import datasets

    from sst2bench.quantization.ort import calibration_config

    entropy = preset("ort-static-qdq-entropy")
    assert (entropy.num_bins, entropy.num_quantized_bins) == (2048, 128)  # TensorRT's practice
    dataset = datasets.Dataset.from_dict({"input_ids": [[1, 2]], "attention_mask": [[1, 1]]})
    config = calibration_config(entropy.replace(num_bins=1024, num_quantized_bins=64).calibration, dataset)
    assert (config.method.name, config.num_bins, config.num_quantized_bins) == ("Entropy", 1024, 64)
    config = calibration_config(preset("ort-static-qdq-percentile", num_bins=512, percentile=99.9).calibration, dataset)
    assert (config.method.name, config.num_bins, config.percentile) == ("Percentile", 512, 99.9)
    with pytest.raises(UserError, match="num_quantized_bins < num_bins.*minmax"):
        preset("ort-static-qdq-entropy", num_bins=128, num_quantized_bins=128)


def op_types(model_dir) -> dict[str, int]:
    import collections

    import onnx

    return dict(collections.Counter(node.op_type for node in onnx.load(str(model_dir / "model.onnx")).graph.node))


def test_quant_format_changes_the_kernels(quantized):
    qdq, _ = quantized(preset("ort-static-qdq", **FAST))
    qop, _ = quantized(preset("ort-static-qdq", quant_format="QOperator", **FAST))
    assert "QLinearMatMul" not in op_types(qdq) and op_types(qdq)["DequantizeLinear"] > 0
    assert op_types(qop)["QLinearMatMul"] > 0


@pytest.mark.parametrize("field, value", [("optimum_exclusions", False), ("optimize_graph", True), ("operators", ("MatMul",))])
def test_graph_options_change_the_op_table(field, value, quantized):
    base = preset("ort-static-qdq", **FAST)
    assert getattr(base, field) != value
    _, a = quantized(base)
    _, b = quantized(base.replace(**{field: value}))
    assert a["op_table"] != b["op_table"] or a["ops"] != b["ops"], f"{field}={value!r} changed nothing in the op table"
    if field == "optimum_exclusions":  # optimum keeps residual and LayerNorm Adds fp32
        assert b["ops"]["Add"]["int8"] > a["ops"]["Add"]["int8"]
    if field == "optimize_graph":  # the fused graph has fewer MatMul nodes left (Attention, BiasGelu)
        assert b["source_graph"] != a["source_graph"]


def test_fp32_nodes_take_patterns_expanded_before_ort_and_inc(quantized):
    pattern = "/distilbert/transformer/layer.0/ffn/*/MatMul"
    expected = {"/distilbert/transformer/layer.0/ffn/lin1/MatMul", "/distilbert/transformer/layer.0/ffn/lin2/MatMul"}
    for name in ("ort-static-qdq-u8s8-pc-rr", "inc-static"):
        _, record = quantized(preset(name, fp32_nodes=(pattern,), **FAST))
        assert set(record["fp32_nodes_matched"]) == expected
        assert list(record["recipe"]["config"]["fp32_nodes"]) == [pattern]  # the record keeps what the user wrote
        fallback = {row["node"] for row in record["fp32_fallback"]}
        assert expected <= fallback, (name, fallback)
        _, plain = quantized(fast(name))
        assert plain["ops"]["MatMul"]["int8"] - record["ops"]["MatMul"]["int8"] == 2


def test_unknown_fp32_nodes_are_refused_with_examples(signal_model, tmp_path):
    recipe = preset(
        "ort-static-qdq", fp32_nodes=("/distilbert/transformer/layer.0/ffn/lin1/MatMul", "/bert/encoder/layer.0/*", "nope"), **FAST
    )
    with pytest.raises(UserError) as error:
        quantize(recipe, signal_model.onnx_dir, tmp_path / "x", signal_model.train)
    message = str(error.value)
    assert "recipe 'ort-static-qdq': fp32_nodes: 2 name(s) match no node" in message
    assert "['/bert/encoder/layer.0/*', 'nope']" in message  # the unknown ones, not the one that exists
    assert "'/distilbert/transformer/layer.0/attention/" in message  # and real node names to copy from


def borderline_split(signal_model, size: int = 100):
    """Word salads the fp32 model is least sure about, labelled with its own predictions: fp32 scores
    100 % on them by construction, so any int8 flip breaks a zero-loss criterion."""
    import datasets

    from sst2bench.systems import InferenceConfig, OrtSystem

    rng = random.Random(1)
    salads = list(dict.fromkeys(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) for _ in range(3000)))
    predicted = OrtSystem(signal_model.onnx_dir, InferenceConfig(batch_size=256)).predict(salads)
    ranked = sorted(zip(salads, predicted), key=lambda pair: pair[1].score)[:size]
    return datasets.Dataset.from_dict({"sentence": [s for s, _ in ranked], "label": [p.label for _, p in ranked]})


def confidently_wrong(signal_model, size: int = 300):
    """Word salads the fp32 model is surest about, labelled against its predictions: fp32 (and any
    int8 model close to it) gets all of them wrong, which pulls the baseline accuracy far below 1."""
    import datasets

    from sst2bench.systems import InferenceConfig, OrtSystem

    rng = random.Random(2)
    salads = list(dict.fromkeys(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) for _ in range(1000)))
    predicted = OrtSystem(signal_model.onnx_dir, InferenceConfig(batch_size=256)).predict(salads)
    ranked = sorted(zip(salads, predicted), key=lambda pair: -pair[1].score)[:size]
    return datasets.Dataset.from_dict({"sentence": [s for s, _ in ranked], "label": [1 - p.label for _, p in ranked]})


@pytest.fixture(scope="module")
def inc_tuned(signal_model, tmp_path_factory):
    """``tune(recipe, split) -> (record or None, trials)`` for INC on a split that makes its criterion act.

    ``"borderline"``: fp32 scores 100 % (``borderline_split``), so a zero-loss criterion fails the
    first int8 trial. ``"mixed"``: those 100 plus 300 ``confidently_wrong`` ones, fp32 25 %: a
    loss of k sentences is k/400 absolute but k/100 relative. Each distinct (recipe, split) runs once.
    """
    import datasets

    root, made = tmp_path_factory.mktemp("inc-tuned"), {}
    borderline = borderline_split(signal_model)
    wrong = confidently_wrong(signal_model).cast(borderline.features)
    splits = {"borderline": borderline, "mixed": datasets.concatenate_datasets([borderline, wrong])}

    def tune(recipe: Recipe, split: str):
        key = (json.dumps(recipe.to_dict(), sort_keys=True), split)
        if key not in made:
            out = root / f"{len(made):02d}-{recipe.name}"
            try:
                record = quantize(recipe, signal_model.onnx_dir, out, signal_model.train, splits[split])
                made[key] = (record, record["tuning"]["trials"])
            except TuningFailed as failure:
                made[key] = (None, failure.trials)
        return made[key]

    return tune


def strict_inc(**changes) -> Recipe:
    """inc-static that accepts no loss at all (absolute 0): on the borderline split the first int8 trial fails."""
    return preset("inc-static", **{"criterion": "absolute", "tolerable_loss": 0.0, "max_trials": 3, "strategy": "basic", **FAST, **changes})


def test_incs_failure_counts_the_int8_trials_it_ran_apart_from_its_fp32_baseline():
    from sst2bench.quantization.base import inc_found_nothing

    failure = inc_found_nothing(preset("inc-static", max_trials=10), [{"accuracy": 0.852}, {"accuracy": 0.831}, {"accuracy": 0.84}])
    assert "in 2 int8 trials (max_trials 10): fp32 0.852, int8 [0.831, 0.84]" in str(failure) and len(failure.trials) == 3


def test_inc_max_trials_bounds_the_trials_when_the_first_one_fails(inc_tuned):
    trials = {max_trials: inc_tuned(strict_inc(max_trials=max_trials), "borderline")[1] for max_trials in (1, 3)}
    # Trial 0 is INC's fp32 baseline; the first int8 trial loses on the borderline split.
    assert trials[1][0]["accuracy"] == 1.0 and trials[1][1]["accuracy"] < 1.0
    assert len(trials[1]) == 2  # baseline + the one trial allowed
    assert 2 < len(trials[3]) <= 4, trials[3]


def test_inc_tolerable_loss_accepts_the_first_trial_or_makes_it_fall_back(inc_tuned):
    strict, strict_trials = inc_tuned(strict_inc(), "borderline")
    loose, loose_trials = inc_tuned(strict_inc(tolerable_loss=0.1), "borderline")
    lost = 1.0 - loose_trials[1]["accuracy"]
    assert 0 < lost <= 0.1, loose_trials  # the same first int8 trial: within 0.1, not within 0
    assert len(loose_trials) == 2 and loose["ops"]["MatMul"]["fp32"] == 4  # accepted as is (4 = the activation-only MatMuls)
    assert strict is None and len(strict_trials) == 4, strict_trials  # kept falling back until max_trials


def test_inc_criterion_relative_divides_the_loss_by_the_baseline(inc_tuned):
    """On the mixed split (fp32 25 %) the first int8 trial loses k/400 absolute, which is k/100
    relative: with a tolerable loss between the two (not on either, where INC's own rounding
    decides), absolute accepts that trial and relative must fall ops back to fp32."""
    _, first_trials = inc_tuned(strict_inc(tolerable_loss=0.03, max_trials=2), "mixed")
    baseline, first = first_trials[0]["accuracy"], first_trials[1]["accuracy"]
    loss = baseline - first
    assert baseline == 0.25 and 0 < loss <= 0.03, first_trials  # int8 loses something, within 3 points
    between = (loss + loss / baseline) / 2
    absolute, absolute_trials = inc_tuned(strict_inc(tolerable_loss=between, max_trials=2), "mixed")
    relative, relative_trials = inc_tuned(strict_inc(criterion="relative", tolerable_loss=between, max_trials=2), "mixed")
    assert relative_trials[:2] and relative_trials[1]["accuracy"] == first
    assert len(absolute_trials) == 2 and absolute["ops"]["MatMul"]["int8"] == 12
    assert len(relative_trials) > 2, relative_trials
    assert relative is None or relative["ops"]["MatMul"]["int8"] < 12


def test_inc_strategy_changes_how_tuning_proceeds(inc_tuned):
    """basic falls single ops back after the all-int8 trial fails; exhaustive only searches the
    quantization settings, which here leave one configuration, so it stops after it."""
    _, basic = inc_tuned(strict_inc(), "borderline")
    _, exhaustive = inc_tuned(strict_inc(strategy="exhaustive"), "borderline")
    assert basic[1]["accuracy"] == exhaustive[1]["accuracy"] < 1.0  # both start from everything int8
    assert len(exhaustive) == 2 and len(basic) == 4, (basic, exhaustive)
    assert max(t["accuracy"] for t in basic[2:]) > basic[1]["accuracy"]  # falling ops back won accuracy


# The inc-static recipe the option tests change one field of: same as test_int8_stays_within...'s.
INC = preset("inc-static", **FAST)


def weight_and_activation_qparams(model_dir) -> tuple[dict, dict]:
    path = model_dir / "model.onnx"
    roles, values = qparam_roles(path), qparams(path)
    return (
        {n: a for n, a in values.items() if roles.get(n) == "weight"},
        {n: a for n, a in values.items() if roles.get(n) == "activation"},
    )


def differing(a: dict, b: dict) -> set:
    return {n for n in a.keys() | b.keys() if n not in a or n not in b or a[n].shape != b[n].shape or not np.array_equal(a[n], b[n])}


@pytest.mark.parametrize(
    "field, value",
    [
        ("calibration_samples", 16),
        ("calibration_seed", 7),
        ("calibration", "percentile"),
    ],
)
def test_inc_calibration_options_move_the_activation_ranges_only(field, value, quantized):
    assert getattr(INC, field) != value
    weights_a, activations_a = weight_and_activation_qparams(quantized(INC)[0])
    weights_b, activations_b = weight_and_activation_qparams(quantized(INC.replace(**{field: value}))[0])
    assert activations_a.keys() == activations_b.keys() and differing(activations_a, activations_b), f"{field}={value!r}"
    assert not differing(weights_a, weights_b)  # calibration does not touch the weights


def test_inc_entropy_acts_only_when_calibration_batches_differ_in_shape(quantized):
    """INC builds its KL calibrator with 128 bins searched for 128 levels (KLCalibrator() in
    ox_utils/calibration.py): one candidate threshold, the full range, i.e. minmax's. Only when
    batches differ in shape (here 20 sentences at batch 8) does the histogram grow past 128 bins
    batch by batch and KL choose narrower ranges."""
    padded = INC.replace(calibration_padding="max_length")
    even = padded.replace(calibration="entropy")
    assert qparams_digest(quantized(even)[0] / "model.onnx") == qparams_digest(quantized(padded)[0] / "model.onnx")
    _, minmax = weight_and_activation_qparams(quantized(padded.replace(calibration_samples=20))[0])
    _, entropy = weight_and_activation_qparams(quantized(even.replace(calibration_samples=20))[0])
    assert minmax.keys() == entropy.keys() and differing(minmax, entropy)


def int8_weights(model_dir) -> dict:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model_dir / "model.onnx")).graph
    return {t.name: numpy_helper.to_array(t) for t in graph.initializer if t.name.endswith("_quantized")}


def test_inc_per_channel_gives_one_weight_scale_per_output_column(quantized):
    per_channel, _ = weight_and_activation_qparams(quantized(INC)[0])
    per_tensor, _ = weight_and_activation_qparams(quantized(INC.replace(per_channel=False))[0])
    scales = [n for n in per_channel if "scale" in n]
    assert len(scales) == 12 and per_channel.keys() == per_tensor.keys()
    assert all(per_channel[n].size > 1 for n in scales) and all(per_tensor[n].size == 1 for n in scales)


def test_inc_reduce_range_quantizes_weights_to_7_bits_and_keeps_activations_at_8(quantized):
    """As ONNX Runtime's reduce_range: INC's own flag would give the activations 128 levels too."""
    as_written = INC.replace(isa="none")  # the CPU decides nothing: reduce_range is what the test sets
    full_dir, seven_dir = quantized(as_written)[0], quantized(as_written.replace(reduce_range=True))[0]
    full, seven = int8_weights(full_dir), int8_weights(seven_dir)
    assert len(full) == len(seven) == 12 and full.keys() == seven.keys()
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in full.values()) == 127
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in seven.values()) <= 64
    full_activations, seven_activations = weight_and_activation_qparams(full_dir)[1], weight_and_activation_qparams(seven_dir)[1]
    assert full_activations and not differing(full_activations, seven_activations)


def test_inc_quant_format_changes_the_kernels_not_the_parameters(quantized):
    qop, a = quantized(INC)
    qdq, b = quantized(INC.replace(quant_format="QDQ"))
    assert op_types(qop)["QLinearMatMul"] == 12 and "QLinearMatMul" not in op_types(qdq)
    assert op_types(qdq)["DequantizeLinear"] > op_types(qop)["DequantizeLinear"]
    assert a["ops"] == b["ops"] and a["qparams_digest"] == b["qparams_digest"]  # same int8 model, other kernels


def test_inc_smooth_quant_alpha_rescales_the_weights_behind_new_muls(quantized):
    """SmoothQuant's per-channel statistics stack every calibration batch: it needs padded ones."""
    with pytest.raises(UserError, match="smooth_quant_alpha needs calibration_padding='max_length'"):
        INC.replace(smooth_quant_alpha=0.5)
    padded = INC.replace(calibration_padding="max_length")
    plain, _ = quantized(padded)
    weights = weight_and_activation_qparams(plain)[0]
    for alpha in (0.5, 0.75):
        smoothed, record = quantized(padded.replace(smooth_quant_alpha=alpha))
        assert op_types(smoothed)["Mul"] > op_types(plain)["Mul"]  # the per-channel activation scales SmoothQuant inserts
        assert record["ops"]["MatMul"]["int8"] == 12
        assert differing(weights, weight_and_activation_qparams(smoothed)[0])
    half, three_quarters = (int8_weights(quantized(padded.replace(smooth_quant_alpha=a))[0]) for a in (0.5, 0.75))
    assert half.keys() == three_quarters.keys() and differing(half, three_quarters)  # alpha itself acts, not only on/off


def test_a_sweep_flags_recipes_whose_options_did_nothing(signal_model, sst2_dir, tmp_path, monkeypatch, capsys):
    from sst2bench.config import run_config_from_dict
    from sst2bench.results import ModelResult, write_result
    from sst2bench.stages.quantize import stage_quantize

    (tmp_path / "params").mkdir()  # the project root (models, runs, the artifact cache) is tmp_path
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SST2_DATA_DIR", str(sst2_dir))
    cfg = run_config_from_dict(
        {"run": "flags", "data": {"eval_limit": 20, "tuning": {"size": 20, "length_bins": 1}}, "quantize": {"threads": 1}}
    )
    write_result(cfg.runs_dir / "model.json", ModelResult(status="done", onnx_dir=str(signal_model.onnx_dir)))
    base = preset("ort-static-qdq", calibration_samples=8, calibration_max_length=16, calibration_padding="max_length")
    recipes = [
        base.replace(name="qdq-a"),
        # minmax ranges are the min and max over all sentences, however they are batched
        # (INC-only options such as max_trials, the old example here, are now refused for ORT)
        base.replace(name="qdq-b", calibration_batch_size=4),
        base.replace(name="qdq-per-channel", per_channel=True),
    ]
    result = stage_quantize(cfg, recipes, progress=False)
    assert result.identical_qparams == [["qdq-a", "qdq-b"]]
    assert json.loads((cfg.runs_dir / "quantize.json").read_text())["identical_qparams"] == [["qdq-a", "qdq-b"]]
    assert "warning: recipes qdq-a, qdq-b have identical quantization parameters" in capsys.readouterr().out
    paths = [tmp_path / "models" / "flags" / "int8" / name for name in ("qdq-a", "qdq-b", "qdq-per-channel")]
    assert identical_recipes(paths) == [["qdq-a", "qdq-b"]]


def test_copies_of_one_recipe_tuned_on_other_data_are_not_flagged():
    """``@val`` and ``@fold<N>`` copies are the same recipe tuned on other rows: INC may accept the
    same first trial on each, so equal parameters say nothing about options that did not act."""
    records = {
        "inc-static": {"qparams_digest": "one"},
        "inc-static@val": {"qparams_digest": "one", "variant_of": "inc-static"},
        "inc-static@fold1": {"qparams_digest": "one", "variant_of": "inc-static"},
        "inc-other@fold1": {"qparams_digest": "two", "variant_of": "inc-other"},
        "inc-other@fold2": {"qparams_digest": "two", "variant_of": "inc-other"},
    }
    assert identical_recipes(records) == []


def test_distinct_recipes_with_equal_qparams_are_flagged_with_their_copies():
    records = {
        "inc-static": {"qparams_digest": "one"},
        "inc-static@val": {"qparams_digest": "one", "variant_of": "inc-static"},
        "inc-static-pc": {"qparams_digest": "one"},
        "ort-dynamic": {"qparams_digest": "two"},
    }
    assert identical_recipes(records) == [["inc-static", "inc-static-pc", "inc-static@val"]]


# ---------------------------------------------------------------- the stand-in architecture, real weights


@pytest.mark.slow
def test_entropy_and_percentile_move_activation_ranges_on_the_standin(sst2_dir, tmp_path):
    """all-MiniLM-L6-v2 converted to DistilBERT (no fine-tune), 32 SST-2 train sentences: entropy
    (2048/128 bins) and percentile must each pick other activation ranges than minmax somewhere.
    Slow (entropy's threshold search over every activation of six layers), so left to make test-all:
    on the tiny model, percentile is shown to move ranges (test_percentile_and_its_histogram_change_the_activation_ranges)
    and entropy's bins to reach ONNX Runtime (test_entropy_bins_reach_onnx_runtime_and_equal_bins_are_refused)."""
    from sst2bench.data import load_sst2_tsv
    from sst2bench.export import export_onnx
    from sst2bench.standin import base_model_dir, convert_bert_to_distilbert

    model, tokenizer = convert_bert_to_distilbert(base_model_dir())
    model.save_pretrained(tmp_path / "torch")
    tokenizer.save_pretrained(tmp_path / "torch")
    export_onnx(tmp_path / "torch", tmp_path / "onnx")
    data, _ = load_sst2_tsv(sst2_dir, splits=("train",))
    ranges = {}
    for name in ("ort-static-qdq-u8s8-pc-rr", "ort-static-qdq-entropy", "ort-static-qdq-percentile"):
        quantize(preset(name, calibration_samples=32), tmp_path / "onnx", tmp_path / name, data["train"])
        ranges[name] = activation_qparams(tmp_path / name / "model.onnx")
    minmax = ranges["ort-static-qdq-u8s8-pc-rr"]
    tensors = {key.rsplit("_scale", 1)[0] for key in minmax if key.endswith("_scale")}
    assert len(tensors) > 50
    for name in ("ort-static-qdq-entropy", "ort-static-qdq-percentile"):
        assert ranges[name].keys() == minmax.keys()
        moved = {
            t
            for t in tensors
            if any(not np.array_equal(minmax[k], ranges[name][k]) for k in (f"{t}_scale", f"{t}_zero_point") if k in minmax)
        }
        print(f"{name}: {len(moved)} of {len(tensors)} activation tensors have other ranges than minmax")
        assert moved, f"{name} chose minmax's range for every activation"


# ---------------------------------------------------------------- smoke: the models load and predict


def test_an_int8_model_predicts_through_the_common_interface(quantized):
    out, _ = quantized(preset("ort-static-qdq", **FAST))
    predictions = load_system(str(out)).predict(TEXTS)
    assert len(predictions) == len(TEXTS) and all(p.label in (0, 1) for p in predictions)


# ---------------------------------------------------------------- ISA-aware recipes


def fake_cpu(*flags: str) -> dict:
    from sst2bench.provenance import ISA_FLAGS

    return {"model": f"Fake CPU with {', '.join(flags)}", "logical_cores": 2, "isa": {flag: flag in flags for flag in ISA_FLAGS}}


@pytest.mark.parametrize(
    "recipe",
    [
        # MatMul only: ONNX Runtime quantizes an embedding Gather's table to full range either way.
        preset("ort-static-qdq-u8s8-pc-rr", reduce_range=False, isa="auto", operators=("MatMul",), **FAST),
        # Intel's recipe as shipped: its default isa="auto" is what keeps INC accurate on AVX2.
        preset("inc-static", tolerable_loss=0.99, max_trials=1, **FAST),
    ],
    ids=lambda recipe: recipe.name,
)
def test_isa_auto_resolves_for_the_cpu_it_runs_on_and_the_weights_show_it(recipe, signal_model, tuning_split, tmp_path, monkeypatch):
    """One recipe, two faked CPUs: without VNNI the weights are 7-bit (no VPMADDUBSW saturation),
    with AVX-512 VNNI full 8-bit; the record says which target and why."""
    import sst2bench.provenance as provenance_module

    made = {}
    for name, flags in (("avx2", ("avx", "avx2", "fma")), ("vnni", ("avx2", "avx512f", "avx512bw", "avx512_vnni"))):
        monkeypatch.setattr(provenance_module, "cpu_info", lambda flags=flags: fake_cpu(*flags))
        record = quantize(recipe, signal_model.onnx_dir, tmp_path / name, signal_model.train, tuning_split)
        made[name] = (record["isa"], int8_weights(tmp_path / name))
    (avx2, avx2_weights), (vnni, vnni_weights) = made["avx2"], made["vnni"]
    assert (avx2["requested"], avx2["target"], avx2["changes"]) == ("auto", "avx2", {"reduce_range": True})
    assert (vnni["target"], vnni["changes"]) == ("avx512_vnni", {"reduce_range": False})
    assert "no VNNI" in avx2["reason"] and "Fake CPU with avx, avx2" in avx2["reason"] and "VNNI/AMX" in vnni["reason"]
    assert avx2_weights.keys() == vnni_weights.keys() and avx2_weights
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in avx2_weights.values()) <= 64
    assert max(int(np.abs(w.astype(np.int32)).max()) for w in vnni_weights.values()) == 127


def test_isa_named_targets_and_conflicts():
    from sst2bench.quantization.isa import resolve_isa

    assert resolve_isa(preset("ort-dynamic", isa="avx512").config).changes == {"reduce_range": True}
    assert resolve_isa(preset("ort-dynamic", isa="amx").config).changes == {"reduce_range": False}
    assert resolve_isa(preset("ort-static-qdq-u8s8-pc-rr", reduce_range=False).config) is None  # "none": as written
    unsigned = resolve_isa(preset("ort-static-qdq", weight_type="uint8", isa="avx2").config)
    assert unsigned.changes == {} and "cannot saturate" in unsigned.reason
    with pytest.raises(UserError, match="isa 'auto' decides reduce_range"):
        preset("ort-static-qdq-u8s8-pc-rr", isa="auto")
    with pytest.raises(UserError, match="isa must be one of"):
        preset("ort-dynamic", isa="sse4")


def test_models_the_cpu_decides_are_keyed_by_its_isa_class_and_calibration_length(monkeypatch):
    """A tuning recipe (its trials scored on this CPU's int8 kernels) or an ``auto`` setting is keyed
    by the ISA class; a fixed static recipe is not. The key holds the calibration length resolved
    from inference, so a run with another max_length makes another model."""
    import datasets

    from sst2bench import provenance
    from sst2bench.config import load_run
    from sst2bench.quantization.run import truncated_as_inference
    from sst2bench.stages.quantize import int8_key_params

    cfg = load_run("standin")
    split = datasets.Dataset.from_dict({"idx": [0, 1], "sentence": ["good", "bad"], "label": [1, 0]})

    def key(recipe, isa, max_length=128):
        monkeypatch.setattr(provenance, "isa_class", lambda cpu=None: isa)
        inference = InferenceConfig(max_length=max_length)
        return int8_key_params(cfg, truncated_as_inference(recipe, inference), inference, split, split)

    for name in ("inc-static", "ort-static-search", "nncf-openvino"):  # tuned; isa auto; overflow fix auto
        assert key(preset(name), "avx2") != key(preset(name), "avx512-vnni"), name
    fixed = preset("ort-static-qdq")
    assert key(fixed, "avx2") == key(fixed, "avx512-vnni")
    assert key(fixed, "avx2", max_length=64) != key(fixed, "avx2")
    assert key(fixed, "avx2", max_length=64)["recipe"]["calibration"]["max_length"] == 64


@pytest.mark.parametrize("name", ["inc-static", "ort-static-qop-fused"])
def test_tuning_scores_a_static_int8_model_exactly_as_one_sentence_per_call(name, quantized, signal_model, tuning_split):
    """The tuning scorer batches sentences of one length (no padding): the same labels as batch 1 and
    the same probabilities (bit for bit on AVX2's kernels; a GEMM kernel may order sums by batch shape)."""
    from sst2bench.quantization.scoring import onnx_scorer
    from sst2bench.systems import InferenceConfig, OrtSystem

    folder, _ = quantized(fast(name))
    model_bytes = (folder / "model.onnx").read_bytes()
    score = onnx_scorer(signal_model.onnx_dir, tuning_split, InferenceConfig())
    one_per_call = OrtSystem(signal_model.onnx_dir, InferenceConfig(), model_bytes=model_bytes).predict(list(tuning_split["sentence"]))
    scored = score(model_bytes)
    assert np.allclose(scored.probabilities, np.asarray([p.probabilities for p in one_per_call]), rtol=0, atol=1e-6)
    assert scored.predicted == tuple(p.label for p in one_per_call)


def test_the_accuracy_stage_batches_one_length_only_where_a_graphs_rows_are_independent(quantized, signal_model, tuning_split):
    """fp32 and static int8 graphs are scored in same-length batches (batch 1's predictions, test
    above); a dynamic int8 graph, whose activation ranges are taken per call, and PyTorch keep one
    sentence per call, as does any run that is not scored one sentence per call."""
    from sst2bench.systems import InferenceConfig, OrtSystem, SystemSpec
    from sst2bench.systems.base import scoring_protocol

    static, dynamic = quantized(fast("ort-static-qop-fused"))[0], quantized(fast("ort-dynamic"))[0]

    def protocol(path, backend="onnxruntime", run=None):
        return scoring_protocol(SystemSpec("s", backend, str(path), "int8"), run or InferenceConfig())

    assert protocol(signal_model.onnx_dir).same_length_batches and protocol(static).same_length_batches
    assert protocol(dynamic) == InferenceConfig() and protocol(signal_model.torch_dir, "torch") == InferenceConfig()
    assert protocol(static, run=InferenceConfig(batch_size=8)) == InferenceConfig(batch_size=8)
    # Why dynamic int8 is left out: batched with other sentences of its length, a sentence gets other probabilities.
    texts, model_bytes = list(tuning_split["sentence"]), (dynamic / "model.onnx").read_bytes()
    batched = OrtSystem(signal_model.onnx_dir, protocol(static), model_bytes=model_bytes).predict(texts)
    one_per_call = OrtSystem(signal_model.onnx_dir, InferenceConfig(), model_bytes=model_bytes).predict(texts)
    assert not np.allclose([p.probabilities for p in batched], [p.probabilities for p in one_per_call], rtol=0, atol=1e-6)
    # The tuning scorer reads the graph too: a dynamic one keeps one sentence per call there as well.
    from sst2bench.quantization.scoring import onnx_scorer

    scored = onnx_scorer(signal_model.onnx_dir, tuning_split, InferenceConfig())(model_bytes)
    assert np.array_equal(scored.probabilities, np.asarray([p.probabilities for p in one_per_call]))
