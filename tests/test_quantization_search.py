"""The automatic mixed-precision search (ort-static ``fallback_search``): its fallback is exactly fp32
for the nodes it names, it ranks, steps and stops as its options say, and it never scores on
anything but the tuning split it is given."""

import numpy as np
import pytest

from sst2bench.errors import UserError
from sst2bench.quantization import preset
from sst2bench.quantization.artifacts import qparams_digest
from sst2bench.quantization.run import quantize
from sst2bench.systems import InferenceConfig

from .test_quantization import FAST, borderline_split


@pytest.fixture(scope="module")
def borderline(signal_model):
    """Sentences fp32 gets 100 % right and the all-int8 model does not: the search must act."""
    return borderline_split(signal_model)


@pytest.fixture(scope="module")
def searched(signal_model, borderline, tmp_path_factory):
    """``search(**changes) -> (folder, record)`` of ort-static-search (no agreement target unless
    ``changes`` set one) on the borderline split, each once."""
    root, made = tmp_path_factory.mktemp("search"), {}

    def search(**changes):
        key = tuple(sorted(changes.items()))
        if key not in made:
            recipe = preset("ort-static-search", **FAST, **{"agreement_target": 0.0, **changes})
            out = root / f"{len(made):02d}"
            made[key] = (out, quantize(recipe, signal_model.onnx_dir, out, signal_model.train, borderline))
        return made[key]

    return search


def probabilities(model_bytes, model_dir, split):
    from sst2bench.quantization.scoring import onnx_scorer

    return onnx_scorer(model_dir, split, InferenceConfig())(model_bytes).probabilities


def test_a_fallback_is_exactly_fp32_for_the_nodes_it_names(signal_model, borderline, searched, tmp_path):
    """All nodes back: fp32's probabilities; none: the all-int8 model's; the size follows."""
    from sst2bench.quantization.artifacts import op_table
    from sst2bench.quantization.ort import prepare_source
    from sst2bench.quantization.search import QdqFallback

    # ort-static-search's int8 model, quantized without the search
    plain = preset("ort-static-qdq-u8s8-pc-rr", reduce_range=False, isa="auto", **FAST)
    all_int8 = tmp_path / "all-int8"
    quantize(plain, signal_model.onnx_dir, all_int8, signal_model.train)
    source = prepare_source(plain, signal_model.onnx_dir, tmp_path / "source")
    nodes = [row["node"] for row in op_table(source, all_int8 / "model.onnx", {"MatMul", "Gather"}) if row["precision"] == "int8"]
    fallback = QdqFallback(all_int8 / "model.onnx", source, nodes)
    split = borderline.select(range(40))
    fp32 = probabilities(source.read_bytes(), source.parent, split)
    everything = fallback.model(nodes)
    assert np.abs(probabilities(everything, source.parent, split) - fp32).max() < 1e-5
    none = fallback.model([])
    int8 = probabilities(none, source.parent, split)
    assert np.abs(int8 - probabilities((all_int8 / "model.onnx").read_bytes(), source.parent, split)).max() == 0
    _, met_at_once = searched(accuracy_target=0.5)  # the search's step 0 is that model too
    (step,) = met_at_once["tuning"]["steps"]
    assert step["fallback"] == [] and step["size_mib"] == met_at_once["size_mib"]
    assert met_at_once["qparams_digest"] == qparams_digest(all_int8 / "model.onnx")
    assert np.abs(int8 - fp32).max() > 1e-3  # int8 is not fp32 here, so the first check has teeth
    assert len(none) < len(fallback.model(nodes[:1])) < len(everything) <= source.stat().st_size * 1.05
    # The ranking's sensitivity of a node is fp32's graph with that node alone int8, against fp32.
    from sst2bench.quantization.search import mean_kl

    _, free = searched(accuracy_target=1.0, size_budget=1.0)
    assert len(free["tuning"]["ranking"]) >= 2
    ranked = borderline.select(range(free["tuning"]["rank_examples"]))
    reference = probabilities(source.read_bytes(), source.parent, ranked)
    for row in free["tuning"]["ranking"][:2]:
        alone = fallback.model([node for node in nodes if node != row["node"]])
        assert mean_kl(reference, probabilities(alone, source.parent, ranked)) == pytest.approx(row["sensitivity"], rel=1e-6)


def test_the_search_falls_back_the_most_sensitive_nodes_until_the_target(searched, borderline):
    _, record = searched(accuracy_target=1.0, size_budget=1.0)
    tuning = record["tuning"]
    assert tuning["tuning_examples"] == len(borderline) and tuning["fp32_correct"] == len(borderline)  # fp32 is 100 % by construction
    first, steps = tuning["steps"][0], tuning["steps"]
    assert first["fallback"] == [] and first["correct"] < tuning["target_correct"]  # all-int8 misses the target
    sensitivities = [r["sensitivity"] for r in tuning["ranking"]]
    assert sensitivities == sorted(sensitivities, reverse=True) and tuning["rank_examples"] == min(100, len(borderline))
    order = [r["node"] for r in tuning["ranking"] if r["sensitivity"] > 0]
    assert [s["fallback"] for s in steps[1:]] == [order[:k] for k in range(1, len(steps))]  # accumulated in ranked order
    assert len(steps) - 1 <= 8 and max(s["correct"] for s in steps[1:]) > first["correct"]
    chosen = [row["node"] for row in tuning["fallback_table"]]
    assert chosen and set(chosen) <= {row["node"] for row in record["fp32_fallback"]}  # the op table shows them fp32
    assert record["size_mib"] == next(s["size_mib"] for s in steps if s["fallback"] == chosen)
    # A target the best step reaches: the search stops at the first step that meets it and keeps it.
    reached = max(s["correct"] for s in steps[1:])
    _, met = searched(accuracy_target=reached / len(borderline), size_budget=1.0)
    met_steps = met["tuning"]["steps"]
    assert met["tuning"]["target_met"] and met["tuning"]["chosen"] == "first step meeting both targets"
    assert [s["correct"] >= reached for s in met_steps] == [False] * (len(met_steps) - 1) + [True]
    assert [row["node"] for row in met["tuning"]["fallback_table"]] == met_steps[-1]["fallback"]


def test_the_written_model_scores_what_its_step_recorded(searched, borderline, signal_model):
    folder, record = searched(accuracy_target=1.0, size_budget=1.0)
    predicted = probabilities((folder / "model.onnx").read_bytes(), signal_model.onnx_dir, borderline).argmax(axis=1)
    correct = int((predicted == np.asarray(borderline["label"])).sum())
    chosen = [row["node"] for row in record["tuning"]["fallback_table"]]
    assert correct == next(s["correct"] for s in record["tuning"]["steps"] if s["fallback"] == chosen)


def test_search_options_bound_it(searched):
    _, free = searched(accuracy_target=1.0, size_budget=1.0)
    _, one = searched(accuracy_target=1.0, size_budget=1.0, max_fallbacks=1)
    assert len(one["tuning"]["steps"]) == 2 and len(free["tuning"]["steps"]) >= 2
    # A budget the all-int8 file just fits: a fallback that brings fp32 weights back is skipped for
    # size; one of an activation-only MatMul (no weights) may still be taken.
    tight = free["tuning"]["steps"][0]["size_mib"] * 1.001 / free["fp32_size_mib"]
    _, small = searched(accuracy_target=1.0, size_budget=round(tight, 4) + 0.0001)
    skipped = {row["node"] for row in small["tuning"]["skipped"]}
    taken = {node for step in small["tuning"]["steps"] for node in step["fallback"]}
    assert skipped and not skipped & taken and all("/ffn/" in node or "_lin/" in node or "embeddings" in node for node in skipped)
    assert all(step["size_mib"] <= small["tuning"]["size_budget_mib"] for step in small["tuning"]["steps"])
    # A loose accuracy target is met at once; agreeing with fp32 on every example is not.
    _, loose = searched(accuracy_target=0.5)
    _, agreeing = searched(accuracy_target=0.5, agreement_target=1.0, size_budget=1.0)
    assert len(loose["tuning"]["steps"]) == 1 and len(agreeing["tuning"]["steps"]) > 1
    assert agreeing["tuning"]["target_agree"] == agreeing["tuning"]["tuning_examples"]
    assert agreeing["tuning"]["steps"][0]["agree"] < agreeing["tuning"]["target_agree"]
    _, rank_fewer = searched(accuracy_target=1.0, size_budget=1.0, search_rank_examples=20)
    assert rank_fewer["tuning"]["rank_examples"] == 20
    assert [r["sensitivity"] for r in rank_fewer["tuning"]["ranking"]] != [r["sensitivity"] for r in free["tuning"]["ranking"]]


def test_an_unmet_target_keeps_the_step_that_agrees_with_fp32_most(searched):
    """An unmet target is recorded as such, with the rule that kept the step (here fp32 is right on every
    example, so agreement and the correct count rank steps alike; the rule itself is tested below)."""
    _, record = searched(accuracy_target=1.0, agreement_target=1.0, size_budget=1.0, max_fallbacks=3)
    tuning = record["tuning"]
    steps = tuning["steps"]
    assert not tuning["target_met"] and len(steps) == 4 and "agreeing with fp32 most" in tuning["chosen"]
    best = max(s["agree"] for s in steps)
    chosen = [row["node"] for row in tuning["fallback_table"]]
    assert chosen == next(s for s in steps if s["agree"] == best)["fallback"]


def test_without_a_step_that_meets_the_targets_agreement_picks_not_the_correct_count():
    """A step that gains correct answers by flipping more labels loses to one that agrees with fp32 more."""
    from sst2bench.quantization.search import chosen_step

    steps = [
        {"fallback": [], "correct": 90, "agree": 80},
        {"fallback": ["a"], "correct": 95, "agree": 85},  # lucky flips: most correct
        {"fallback": ["a", "b"], "correct": 92, "agree": 97},
        {"fallback": ["a", "b", "c"], "correct": 91, "agree": 97},
    ]
    chosen, why = chosen_step(steps, lambda s: False)
    assert chosen["fallback"] == ["a", "b"] and "agreeing with fp32 most" in why
    chosen, why = chosen_step(steps, lambda s: s["agree"] >= 85)
    assert chosen["fallback"] == ["a"] and why == "first step meeting both targets"


def test_the_search_needs_a_tuning_split_and_qdq(signal_model, tmp_path):
    recipe = preset("ort-static-search", **FAST)
    assert recipe.needs_tuning and not preset("ort-static-qdq-u8s8-pc-rr").needs_tuning
    with pytest.raises(UserError, match="scores candidates on a labelled tuning split"):
        quantize(recipe, signal_model.onnx_dir, tmp_path / "x", signal_model.train)
    with pytest.raises(UserError, match="fallback_search needs quant_format='QDQ'"):
        preset("ort-static-search", quant_format="QOperator")
    with pytest.raises(UserError, match="accuracy_target only act with fallback_search=True"):
        preset("ort-static-qdq", accuracy_target=0.9)
