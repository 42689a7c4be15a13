"""The evaluation protocol through the stages: tuning split, fused fp32, calibration seeds, cross-fitting."""

from pathlib import Path

import onnx

from sst2bench.config import run_config_from_dict
from sst2bench.stages.accuracy import recipe_table, stage_accuracy
from sst2bench.stages.final import stage_final
from sst2bench.stages.model import stage_model
from sst2bench.stages.quantize import stage_quantize

from .test_final_split import files_opened

SMALL = {"calibration_samples": 8, "calibration_max_length": 16}


def protocol_run(
    model_dir, also_on_reported: bool, seeds: list[int], final_test: dict | None = None, study: dict | None = None, studies: bool = True
):
    values = {
        "studies": studies,
        "model": {"kind": "local", "path": str(model_dir)},
        "data": {"eval_limit": 24, "tuning": {"size": 40, "seed": 1, "also_on_reported": also_on_reported}},
        "quantize": {
            "recipes": ["ort-static-qdq", "inc-static"],
            "overrides": {"ort-static-qdq": SMALL, "inc-static": {**SMALL, "max_trials": 2, "tolerable_loss": 0.5}},
            "calibration_seeds": seeds,
            "threads": 1,
            "calibration_study": study,
        },
        "inference": {"batch_size": 1, "threads": 1},
        "cloudflare": {"enabled": False},
        "final_test": final_test,
    }
    return run_config_from_dict({"run": "protocol", **values})


def op_types(folder) -> set[str]:
    return {node.op_type for node in onnx.load(str(folder / "model.onnx")).graph.node}


def test_tuning_split_seeds_and_crossfitting_through_the_stages_and_the_final_split_read_last(
    sst2_project, signal_model, final_file, monkeypatch
):
    final = {"name": "final", "source": str(final_file), "limit": 30}
    study = {"recipe": "ort-static-qdq", "sizes": [4, 32], "compositions": ["sentences", "rows"]}
    cfg = protocol_run(signal_model.torch_dir, also_on_reported=True, seeds=[42, 7], final_test=final, study=study)
    from sst2bench.stages import quantize as quantize_stage

    real, tuned_on = quantize_stage.quantized, {}

    def recording(cfg, recipe, fp32_onnx_dir, train, tuning):
        tuned_on[recipe.name] = None if tuning is None else list(tuning["sentence"])
        return real(cfg, recipe, fp32_onnx_dir, train, tuning)

    monkeypatch.setattr(quantize_stage, "quantized", recording)
    with files_opened() as before_final:
        model = stage_model(cfg, progress=False)
        quantized = stage_quantize(cfg, progress=False)
        scored = stage_accuracy(cfg, progress=False)

    # No stage before the final one opened the final split; the final stage does (so this can fail).
    def resolved(paths):
        return {str(Path(path).resolve()) for path in paths}

    assert before_final and str(final_file.resolve()) not in resolved(before_final)
    with files_opened() as during_final:
        final_result = stage_final(cfg, progress=False)
    assert str(final_file.resolve()) in resolved(during_final) and final_result.done and final_result.n == 30
    assert set(final_result.systems) == {"fp32-torch", "fp32-ort", "fp32-ort-fused", "fp32-openvino", "ort-static-qdq", "inc-static"}
    assert final_result.systems["inc-static"].vs_fp32.noninferiority is not None

    # The 40 tuning sentences in halves: INC's trials saw the tune part only; the recommendation's scores
    # are on the select part, none of whose sentences any trial scored.
    assert model.tuning_split["source"] == "train-sentences"
    assert model.tuning_split["tuning"]["rows"] == 20 and model.tuning_split["select"]["rows"] == 20
    from sst2bench.stages.common import load_data, tuning_split

    splits = tuning_split(cfg, load_data(cfg)[0])
    assert tuned_on["inc-static"] == list(splits.tuning["sentence"])
    assert set(tuned_on["inc-static"]).isdisjoint(splits.select["sentence"])
    assert model.tuning_split["fit_train"]["rows"] + model.tuning_split["removed_train_rows"] == 67_349
    fused, exported = op_types(cfg.models_dir / "fp32-onnx-fused"), op_types(cfg.models_dir / "fp32-onnx")
    assert "SkipLayerNormalization" in fused and "SkipLayerNormalization" not in exported

    assert set(quantized.recipes) == {"ort-static-qdq", "inc-static", "inc-static@val"}
    assert (quantized.recipes["inc-static"].tuned_on, quantized.recipes["inc-static@val"].tuned_on) == ("tuning", "validation")
    assert quantized.recipes["ort-static-qdq"].tuned_on is None
    assert set(quantized.seed_variants) == {"ort-static-qdq@seed7", "inc-static@seed7"}
    # Another calibration sample gives other activation ranges.
    assert quantized.seed_variants["ort-static-qdq@seed7"].qparams_digest != quantized.recipes["ort-static-qdq"].qparams_digest
    # The calibration study: every size × composition, scored on the tune part beside the fp32 graph.
    points = {(p.samples, p.composition): p for p in quantized.calibration_study}
    assert set(points) == {(4, "sentences"), (32, "sentences"), (4, "rows"), (32, "rows")}
    assert all(p.n == 20 and p.fp32_correct == points[4, "rows"].fp32_correct for p in points.values())
    assert len({p.qparams_digest for p in points.values()}) == 4  # each size and each composition calibrates differently
    assert points[32, "sentences"].mean_words != points[32, "rows"].mean_words
    first, second = quantized.crossfit["inc-static"]
    assert first.tuned_on_idx == second.scored_on_idx and first.scored_on_idx == second.tuned_on_idx
    assert sorted(first.tuned_on_idx + first.scored_on_idx) == list(range(24)) and len(first.tuned_on_idx) == 12

    assert set(scored.systems) == {
        "fp32-torch",
        "fp32-ort",
        "fp32-ort-fused",
        "fp32-openvino",
        "ort-static-qdq",
        "inc-static",
        "inc-static@val",
    }
    assert scored.tuning.source == "train-sentences" and scored.tuning.part == "select" and scored.tuning.n == 20
    assert set(scored.tuning.systems) == set(scored.systems) and scored.tuning.systems["inc-static"].vs_fp32.n == 20
    spread = scored.seeds["ort-static-qdq"]
    assert set(spread.counts) == {42, 7} and spread.counts[42] == scored.systems["ort-static-qdq"].correct
    assert spread.min <= spread.median <= spread.max and spread.n == 24
    estimate = scored.crossfit["inc-static"]
    assert estimate.total == 24 and estimate.correct == sum(fold.correct for fold in estimate.folds)
    assert estimate.tuned_on_reported == "inc-static@val" and [fold.scored_on for fold in estimate.folds] == [12, 12]

    table = recipe_table(cfg).set_index("system")
    assert (
        table.loc["inc-static@val", "tuned on"] == "validation" and table.loc["inc-static@val", "cross-fitted"] == f"{estimate.correct}/24"
    )
    assert table.loc["ort-static-qdq", "seeds min–max"] == f"{spread.min}–{spread.max} (2 seeds)"
    assert table.loc["fp32-ort-fused", "select part correct/n"] == f"{scored.tuning.systems['fp32-ort-fused'].correct}/20"

    from sst2bench.report import RunResults, calibration_study

    table, figure = calibration_study(RunResults.load(cfg.runs_dir))
    assert len(table) == 4 and figure.axes[0].get_lines()
    from sst2bench.report import studies_note

    assert studies_note(RunResults.load(cfg.runs_dir)) is None
    # The one switch: the same params with studies off make no seed copies and no @val copies or folds (the
    # calibration study is its own param and still runs), and the report names each study skipped.
    off = protocol_run(signal_model.torch_dir, also_on_reported=True, seeds=[42, 7], study=study, studies=False)
    quantized_off = stage_quantize(off, progress=False)
    assert quantized_off.crossfit == {} and quantized_off.seed_variants == {} and len(quantized_off.calibration_study) == 4
    assert set(quantized_off.recipes) == {"ort-static-qdq", "inc-static"}
    again = stage_accuracy(off, progress=False)
    assert "inc-static@val" not in again.systems and again.seeds == {} and again.crossfit == {}
    note = studies_note(RunResults.load(off.runs_dir))
    assert "studies: false" in note and all(f in note for f in ("calibration_seeds", "also_on_reported"))


def test_validation_as_the_tuning_split_marks_recipes_tuned_on_the_reported_split(sst2_project, signal_model, monkeypatch):
    cfg = run_config_from_dict(
        {
            "run": "intel",
            "model": {"kind": "local", "path": str(signal_model.torch_dir)},
            "data": {"eval_limit": 16, "tuning": {"source": "validation"}},
            "quantize": {
                "recipes": ["inc-static"],
                "overrides": {"inc-static": {**SMALL, "max_trials": 2, "tolerable_loss": 0.5}},
                "threads": 1,
            },
            "inference": {"batch_size": 1, "threads": 1},
        }
    )
    model = stage_model(cfg, progress=False)
    assert model.tuning_split["source"] == "validation" and model.tuning_split["removed_train_rows"] == 0
    quantized = stage_quantize(cfg, progress=False)
    assert set(quantized.recipes) == {"inc-static"} and quantized.recipes["inc-static"].tuned_on == "validation"
    assert [len(fold.scored_on_idx) for fold in quantized.crossfit["inc-static"]] == [8, 8]
    scored = stage_accuracy(cfg, progress=False)
    assert scored.crossfit["inc-static"].tuned_on_reported == "inc-static" and scored.crossfit["inc-static"].total == 16

    # A fold whose tuning meets no target is recorded, and leaves its recipe without an estimate rather than stopping the sweep.
    from sst2bench.quantization.base import TuningFailed
    from sst2bench.stages import quantize as quantize_stage

    real = quantize_stage.quantized

    def failing_second_fold(cfg, recipe, *args):
        if recipe.name.endswith("@fold2"):
            raise TuningFailed([], f"recipe {recipe.name!r}: INC found no int8 model")
        return real(cfg, recipe, *args)

    monkeypatch.setattr(quantize_stage, "quantized", failing_second_fold)
    quantized = stage_quantize(cfg, progress=False)
    assert quantized.crossfit == {} and "no int8 model" in quantized.failed_variants["inc-static@fold2"]
    assert stage_accuracy(cfg, progress=False).crossfit == {}
