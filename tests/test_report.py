"""The report's tables from fabricated typed results: first screen, no NaN, the endpoint's own column,
the disagreement matrix, the recommendation, machines compared, and int8 models from another ISA."""

import hashlib
import html
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from sst2bench.report import (
    RunResults,
    choice_splits,
    disagreement_matrix,
    first_screen,
    headline_table,
    html_table,
    machine_comparison,
    recommendation,
)
from sst2bench.results import (
    AccuracyResult,
    Comparison,
    Disagreement,
    EndpointResult,
    EvalSetResult,
    LatencyResult,
    LatencyStats,
    MachineLimit,
    ModelResult,
    PeakThroughput,
    QuantizeResult,
    RecipeResult,
    SystemAccuracy,
    read_result,
    write_result,
)

from .conftest import measurement

N = 100
AVX512_VNNI = {"avx2": True, "avx512bw": True, "avx512_vnni": True, "avx_vnni": False, "amx_int8": False}


def provenance(cpu_model="AMD EPYC 9R14", isa=AVX512_VNNI):
    return {
        "cpu": {"model": cpu_model, "logical_cores": 2, "isa": isa},
        "threads": {"OMP_NUM_THREADS": "1"},
        "git_commit": "abc",
        "python": "3.11",
        "packages": {"onnxruntime": "1.32.0"},
        "timestamp": "2026-11-27T00:00:00",
    }


def scored(system, correct, family="int8", wrong_on=(), agreement=1.0, latency="call"):
    """``correct`` of N right; fp32 is right on every example in ``wrong_on``, this system wrong there."""
    disagreements = [
        Disagreement(idx=i, gold=1, baseline_label=1, baseline_score=0.9, candidate_label=0, candidate_score=0.6, sentence=f"sentence {i}")
        for i in wrong_on
    ]
    vs = Comparison(
        n=N,
        baseline_correct=90,
        candidate_correct=correct,
        difference_examples=correct - 90,
        difference=(correct - 90) / N,
        difference_ci95=[-0.02, 0.0],
        relative_change=(correct - 90) / 90,
        only_baseline_correct=len(wrong_on),
        only_candidate_correct=0,
        mcnemar_exact_p=0.5,
        agreement=agreement,
        disagreements=disagreements,
    )
    return SystemAccuracy(
        system=system,
        family=family,
        n=N,
        correct=correct,
        accuracy=correct / N,
        accuracy_pct=correct,
        accuracy_ci95=[correct / N - 0.05, correct / N + 0.05],
        macro_f1=0.9,
        precision=0.9,
        recall=0.9,
        confusion_matrix=[[45, 5], [5, 45]],
        confusion_matrix_axes="gold x predicted",
        seconds=1.0,
        predictions=f"{system}.jsonl",
        path=f"/models/{system}",
        latency=latency,
        vs_fp32=None if system == "fp32-torch" else vs,
    )


def fabricate_run(folder, cpu_model="AMD EPYC 9R14", isa=AVX512_VNNI, p50s=None, with_endpoint=False):
    systems = {
        "fp32-torch": scored("fp32-torch", 90, "fp32"),
        "fp32-ort": scored("fp32-ort", 90, "fp32"),
        "int8-fast-lossy": scored("int8-fast-lossy", 85, wrong_on=(1, 2, 3, 4, 5), agreement=0.95),
        "int8-good": scored("int8-good", 90, wrong_on=(3,), agreement=0.99),
    }
    p50s = p50s or {"fp32-torch": 10.0, "fp32-ort": 6.0, "int8-fast-lossy": 2.0, "int8-good": 3.0}
    results = [measurement(name, p50, systems[name].family) for name, p50 in p50s.items()]
    write_result(folder / "accuracy.json", AccuracyResult(split="validation", n=N, systems=systems, provenance=provenance(cpu_model, isa)))
    write_result(
        folder / "latency.json", LatencyResult(results=results, size_mib={"int8-good": 22.0}, provenance=provenance(cpu_model, isa))
    )
    if with_endpoint:
        endpoint = EndpointResult(
            endpoint="Cloudflare",
            model="@cf/huggingface/distilbert-sst-2-int8",
            n=N,
            system=scored("cloudflare-workers-ai", 89, wrong_on=(7,), agreement=0.99, latency="network"),
            latency_per_request=LatencyStats.from_ns([int(150e6)] * 10, 1),
            collected_from=1.0,
            collected_to=2.0,
            usage={"sent": 0, "from_cache": N},
        )
        write_result(folder / "cloudflare.json", endpoint)
    return folder


@pytest.fixture
def run_dir(tmp_path):
    return fabricate_run(tmp_path / "runs" / "fake", with_endpoint=True)


def test_headline_has_units_no_index_no_nan_and_the_endpoint_in_its_own_column(run_dir):
    table, notes = headline_table(RunResults.load(run_dir))
    assert list(table["system"])[:2] == ["fp32-torch", "fp32-ort"]
    remote = table.set_index("system").loc["cloudflare-workers-ai"]
    assert remote["round-trip p50 (ms, network)"] == "150" and pd.isna(remote["p50 (ms, b1, 1 thr)"])
    assert pd.isna(table.set_index("system").loc["int8-good", "round-trip p50 (ms, network)"])
    assert table.set_index("system").loc["int8-good", "speed-up vs fp32 ORT (×, b1, 1 thr)"] == "2.00 (2.00–2.00)"
    for column in table.columns:
        if column not in ("system", "correct / n", "best throughput setting"):  # counts, a setting
            assert "(" in column, f"no unit in {column!r}"
    page = html_table(table)
    assert "NaN" not in page and "None" not in page and "<th></th>" not in page
    assert "—" in page and any("network round-trip" in note for note in notes)


def test_disagreement_matrix_is_one_row_per_sentence_one_column_per_system(run_dir):
    matrix = disagreement_matrix(RunResults.load(run_dir))
    assert list(matrix["idx"]) == [3, 1, 2, 4, 5, 7]  # the sentence most systems disagree on first
    row = matrix.set_index("idx").loc[3]
    assert row["systems disagreeing"] == 2 and row["int8-good"] == "neg 0.60 ✗" and row["cloudflare-workers-ai"] == ""


def test_recommendation_passes_over_the_faster_lossy_system(run_dir):
    class Check:
        min_relative_accuracy, min_agreement = 0.99, 0.99

    rec = recommendation(RunResults.load(run_dir), Check)
    assert rec.system == "int8-good" and "int8-fast-lossy" in rec.excluded
    assert "cloudflare-workers-ai" not in {c.system for c in rec.candidates}  # a round-trip is not a call
    assert "no tuning split" in rec.chosen_on


def test_each_int8_system_is_also_timed_against_its_own_runtimes_fp32(run_dir):
    latency = LatencyResult.model_validate_json((run_dir / "latency.json").read_text())
    rows = [
        measurement("fp32-openvino", 8.0, "fp32", backend="openvino"),
        measurement("nncf-openvino", 10.0, backend="openvino"),  # slower than its own fp32, as on AVX2
        measurement("inc-torch", 5.0, backend="torch-int8"),
    ]
    results = [r.model_copy(update={"backend": "torch" if r.system == "fp32-torch" else "onnxruntime"}) for r in latency.results]
    write_result(run_dir / "latency.json", latency.model_copy(update={"results": [*results, *rows]}))
    accuracy = AccuracyResult.model_validate_json((run_dir / "accuracy.json").read_text())
    systems = {
        **accuracy.systems,
        **{n: scored(n, 90, family="fp32" if n.startswith("fp32") else "int8") for n in ("fp32-openvino", "nncf-openvino", "inc-torch")},
    }
    write_result(run_dir / "accuracy.json", accuracy.model_copy(update={"systems": systems}))

    table, _ = headline_table(RunResults.load(run_dir))
    column = table.set_index("system")["speed-up vs its runtime's fp32 (×, b1, 1 thr)"]
    assert column["nncf-openvino"] == "0.80 (0.80–0.80)"  # fp32-openvino 8 ms ÷ 10 ms, per round
    assert column["inc-torch"] == "2.00 (2.00–2.00)"  # fp32-torch 10 ms ÷ 5 ms
    assert column["int8-good"] == "2.00 (2.00–2.00)"  # ONNX Runtime: against fp32-ort, as the ORT column
    assert table.set_index("system").loc["nncf-openvino", "speed-up vs fp32 ORT (×, b1, 1 thr)"] == "0.60 (0.60–0.60)"
    assert column[["fp32-torch", "fp32-ort", "fp32-openvino"]].isna().all()  # an fp32 row is its own runtime's baseline


class Rules:
    min_relative_accuracy, min_agreement = 0.99, 0.99


def test_a_recipe_tuned_until_it_passed_on_the_tune_part_is_judged_on_the_select_part(run_dir):
    """INC's record says it met its target on the tune part; the recommendation reads only the select
    part, where it falls short, so that evidence alone cannot make it qualify."""
    accuracy = AccuracyResult.model_validate_json((run_dir / "accuracy.json").read_text())
    tuned = scored("int8-tuned", 90, wrong_on=(3,), agreement=0.99)  # on validation, as good as int8-good
    select = {**accuracy.systems, "int8-tuned": scored("int8-tuned", 84, wrong_on=(1, 2, 3, 4, 5, 6), agreement=0.94)}
    write_result(
        run_dir / "accuracy.json",
        accuracy.model_copy(
            update={
                "systems": {**accuracy.systems, "int8-tuned": tuned},
                "tuning": EvalSetResult(source="train-sentences", part="select", n=N, systems=select),
            }
        ),
    )
    latency = LatencyResult.model_validate_json((run_dir / "latency.json").read_text())
    write_result(
        run_dir / "latency.json", latency.model_copy(update={"results": [*latency.results, measurement("int8-tuned", 1.0, "int8")]})
    )
    passed_on_tune = {"trials": [{"trial": 1, "accuracy": 0.9, "passed": True}], "examples": 40}
    recipe = RecipeResult(
        path="/m", recipe={"name": "int8-tuned"}, source_graph="x", ops={}, fp32_fallback=[], size_mib=1.0, fp32_size_mib=4.0,
        quantization_seconds=1.0, tuning=passed_on_tune, tuned_on="tuning",
    )  # fmt: skip
    write_result(run_dir / "quantize.json", QuantizeResult(recipes={"int8-tuned": recipe}))
    tuning_split = {"source": "train-sentences", "tuning": {"rows": 40}, "select": {"rows": N}}
    write_result(run_dir / "model.json", ModelResult(tuning_split=tuning_split))

    res = RunResults.load(run_dir)
    rec = recommendation(res, Rules)
    assert rec.excluded["int8-tuned"].startswith("too few correct") and rec.system == "int8-good"
    assert "select part" in rec.chosen_on and f"{N} sentences no trial scored" in rec.chosen_on
    table = choice_splits(res, rec).set_index("choice")
    assert table.loc["accuracy-aware trials: int8-tuned"].tolist() == ["the tuning split's tune part", 40]
    assert table.loc["the recommendation and its rules"].tolist() == [rec.chosen_on, N]
    assert table.loc["the final count", "examples it saw"].startswith("not scored")

    # The same scores read as the tune part's own (a run without a select part) are labelled so.
    write_result(
        run_dir / "accuracy.json", res.accuracy.model_copy(update={"tuning": res.accuracy.tuning.model_copy(update={"part": "tune"})})
    )
    assert "the ones INC and the search tuned on" in recommendation(RunResults.load(run_dir), Rules).chosen_on


def test_two_machines_render_as_one_comparison(tmp_path):
    here = fabricate_run(tmp_path / "epyc")
    there = fabricate_run(
        tmp_path / "xeon", "Intel Xeon 8480", {"avx2": True, "amx_int8": True}, {"fp32-ort": 5.0, "int8-good": 1.25, "fp32-torch": 9.0}
    )
    table, labels = machine_comparison([here, there])
    assert labels == ["AMD EPYC 9R14 · avx512-vnni", "Intel Xeon 8480 · amx"]
    row = table.set_index("system").loc["int8-good"]
    assert row["speed-up vs fp32 ORT (×) · AMD EPYC 9R14 · avx512-vnni"].startswith("2.00")
    assert row["speed-up vs fp32 ORT (×) · Intel Xeon 8480 · amx"].startswith("4.00")
    assert row["correct / n · Intel Xeon 8480 · amx"] == "90/100"
    lossy = table.set_index("system").loc["int8-fast-lossy"]
    assert pd.isna(lossy["p50 (ms, b1, 1 thr) · Intel Xeon 8480 · amx"])  # not measured there: shown as —


def test_report_compare_command_writes_one_page(tmp_path, capsys):
    from sst2bench.cli import main

    here = with_fp32(fabricate_run(tmp_path / "a" / "runs" / "standin"), b"one model")
    there = with_fp32(fabricate_run(tmp_path / "b" / "runs" / "standin", "Intel Xeon 8480", {"avx2": True}), b"one model")
    out = tmp_path / "compare.html"
    assert main(["report", "--compare", str(here), str(there), "--output", str(out)]) == 0
    page = out.read_text()
    assert "AMD EPYC 9R14 · avx512-vnni" in page and "Intel Xeon 8480 · avx2" in page and 'class="sst2bench sortable"' in page
    assert main(["report", "--compare", str(tmp_path / "missing")]) == 2
    assert "no latency.json" in capsys.readouterr().err


def test_timings_written_by_the_pipeline_are_shown(run_dir):
    from sst2bench.report import stage_status

    (run_dir / "timings.json").write_text(json.dumps({"accuracy": {"status": "cached", "seconds": 0.1, "executed_seconds": 61.0}}))
    table, _ = stage_status(RunResults.load(run_dir))
    row = table.set_index("stage").loc["accuracy"]
    assert row["wall time when last executed (s)"] == 61.0 and pd.isna(table.set_index("stage").loc["model", "wall time this build (s)"])


def test_the_machine_limit_answers_how_much_faster_int8_could_get(run_dir):
    from sst2bench.report import limit_tables
    from sst2bench.results import MachineLimit, PeakFraction, PeakThroughput

    res = RunResults.load(run_dir)
    assert limit_tables(res) == []  # no measurement: no section, nothing invented
    peaks = [
        PeakThroughput(precision=p, shape="model", rows=26, macs=10**8, threads=1, best_ms=1.0, median_ms=1.1, gops_per_second=g)
        for p, g in (("fp32", 100.0), ("int8", 800.0))
    ]
    res.latency.peak = MachineLimit(
        method="MatMul graphs in ONNX Runtime.", cpu="AMD EPYC", isa=["avx512_vnni"], runtime="onnxruntime 1.32.0", repeats=3, peaks=peaks
    )
    # int8-good: 200 M int8 MACs at 800 GOP/s = 0.5 ms, 10 M fp32 at 100 GOP/s = 0.2 ms → 0.7 ms of a 2.8 ms forward pass.
    res.latency.peak_fractions = [
        PeakFraction(
            system="int8-good",
            threads=1,
            tokens_mean=26.0,
            macs_int8=2e8,
            macs_fp32=1e7,
            forward_mean_ms=2.8,
            achieved_gops_per_second=150.0,
            fraction_of_model_shape_peak=0.25,
            fraction_of_large_peak=0.2,
        ),
        PeakFraction(
            system="fp32-ort",
            threads=1,
            tokens_mean=26.0,
            macs_int8=0.0,
            macs_fp32=2.1e8,
            forward_mean_ms=5.0,
            achieved_gops_per_second=84.0,
            fraction_of_model_shape_peak=0.84,
            fraction_of_large_peak=0.8,
        ),
    ]
    (peak_table, _), (systems, notes) = limit_tables(res)
    assert set(peak_table["peak (GOP/s)"]) == {100, 800}
    assert list(systems["system"]) == ["int8-good", "fp32-ort"] and list(systems["headroom (×, 1 / fraction)"]) == [4.0, 1.2]
    assert "MatMul graphs in ONNX Runtime." in notes[0]
    assert "int8-good, 2.80 ms) would take 0.70 ms" in notes[1] and "4.0x headroom" in notes[1]
    assert not any("Suspect peak" in note for note in notes)
    res.latency.peak.flags = ["int8 at 2 threads ran 1.02x its 1-thread peak (expected ≥ 1.5x): contended?"]
    flagged = limit_tables(res)[1][1]
    assert any(note.startswith("Suspect peak") and "1.02x its 1-thread peak" in note for note in flagged)


# ---------------------------------------------------------------- int8 models quantized on another ISA

AVX2_ONLY = {"avx2": True, "avx512bw": False, "avx512_vnni": False, "avx_vnni": False, "amx_int8": False}


def int8_model(name, cpu_model="AMD EPYC 9R14", isa=AVX512_VNNI, isa_choice=None):
    """A quantize record as the stage keeps it, made on ``cpu_model`` with flags ``isa``."""
    return RecipeResult(
        path=f"/models/int8/{name}",
        recipe={"name": name, "method": "ort-static", "config": {}, "calibration": None},
        source_graph="as exported",
        ops={"MatMul": {"int8": 36, "fp32": 0}},
        fp32_fallback=[],
        size_mib=22.0,
        fp32_size_mib=255.0,
        quantization_seconds=3.0,
        cache="hit",
        isa=isa_choice,
        provenance=provenance(cpu_model, isa),
    )


def first_screen_page(res) -> str:
    from sst2bench.report import first_screen

    class Check:
        min_relative_accuracy, min_agreement = 0.99, 0.99

    return first_screen(res, recommendation(res, Check)).data


def test_an_int8_model_quantized_on_another_isa_class_is_named_beside_the_cpu(run_dir):
    from sst2bench.report import other_isa_note

    auto = {"requested": "auto", "target": "avx2", "cpu": "Intel Xeon E5-2686 v4", "changes": {"reduce_range": True}, "reason": "no VNNI"}
    models = {
        "int8-fast-lossy": int8_model("int8-fast-lossy", "Intel Xeon E5-2686 v4", AVX2_ONLY, auto),
        "int8-good": int8_model("int8-good"),
    }
    write_result(run_dir / "quantize.json", QuantizeResult(recipes=models, provenance=provenance()))
    res = RunResults.load(run_dir)
    note = other_isa_note(res)
    assert "int8-fast-lossy (isa auto: target avx2) on Intel Xeon E5-2686 v4 (int8 kernel class avx2)" in note
    assert "measured here on AMD EPYC 9R14 (int8 kernel class avx512-vnni)" in note and "int8-good" not in note
    page = first_screen_page(res)
    assert page.index("Measured on AMD EPYC 9R14") < page.index("Quantized on another ISA") < page.index("<table")


def test_no_isa_note_when_every_int8_model_was_quantized_on_the_measured_class(run_dir):
    from sst2bench.report import other_isa_note

    # Another CPU model of the same class (AVX-512 VNNI) runs the same int8 kernels: nothing to say.
    models = {"int8-fast-lossy": int8_model("int8-fast-lossy", "Intel Xeon 8375C"), "int8-good": int8_model("int8-good")}
    write_result(run_dir / "quantize.json", QuantizeResult(recipes=models, provenance=provenance()))
    res = RunResults.load(run_dir)
    assert other_isa_note(res) is None and "another ISA" not in first_screen_page(res)


# ---------------------------------------------------------------- the CPU line explains the class

AMX = {"avx2": True, "avx512bw": True, "avx512_vnni": True, "avx_vnni": False, "amx_int8": True}
FIXTURES = Path(__file__).parent / "fixtures"


class Check:
    min_relative_accuracy, min_agreement = 0.99, 0.99


def cpu_line(page: str) -> str:
    """The first screen's CPU block, where the class is explained."""
    start = page.index('<div class="sst2bench-cpu">')
    return page[start : page.index("</div>", start)]


def with_peaks(res, large=(100.0, 300.0), model=(80.0, 200.0), rows=1024):
    """A peak sweep of (fp32, int8) GOP/s at the large and the model shapes, 1 thread, plus a 2-thread
    sweep that must not be read (its ratio is far off)."""

    def peak(precision, shape, gops, threads=1):
        size = rows if shape == "large" else 26
        return PeakThroughput(
            precision=precision, shape=shape, rows=size, macs=size**3, threads=threads, best_ms=1.0, median_ms=1.1, gops_per_second=gops
        )

    peaks = [peak(p, shape, g) for shape, pair in (("large", large), ("model", model)) for p, g in zip(("fp32", "int8"), pair)]
    peaks += [peak("fp32", "large", 1.0, threads=2), peak("int8", "large", 50.0, threads=2)]
    res.latency.peak = MachineLimit(method="m", cpu="AMD EPYC", isa=["avx2"], runtime="onnxruntime 1.32.0", repeats=3, peaks=peaks)
    return res


@pytest.mark.parametrize("isa, name", [(AVX2_ONLY, "avx2"), (AVX512_VNNI, "avx512-vnni"), (AMX, "amx")])
def test_the_cpu_line_names_the_int8_class(tmp_path, isa, name):
    res = RunResults.load(fabricate_run(tmp_path / "runs" / "fake", isa=isa))
    assert f"int8 class {name}." in cpu_line(first_screen_page(res))


def test_the_cpu_line_states_the_measured_int8_over_fp32_peak_and_the_best_int8(run_dir):
    """Every number in the sentence comes from the run's results: the peak sweep's int8/fp32 ratio at
    one thread (large and model shapes), the fastest int8 system's and the recommendation's speed-ups."""
    from sst2bench.report import int8_ceiling

    res = with_peaks(RunResults.load(run_dir))
    rec = recommendation(res, Check)
    sentence = int8_ceiling(res, rec)
    assert "int8 matrix multiplies run at most 3.0x as fast as fp32's" in sentence
    assert "3.0x on one 1024³ GEMM, 2.5x on this model's own GEMM shapes" in sentence and "1 thread" in sentence
    # fabricate_run's p50s: fp32-ort 6 ms, int8-fast-lossy 2 ms (3x), int8-good (the recommendation) 3 ms (2x).
    assert "The fastest int8 here reaches 3.00x the speed of fp32-ort (int8-fast-lossy" in sentence
    assert rec.system == "int8-good" and "the recommendation, int8-good, 2.00x" in sentence
    assert sentence in html.unescape(cpu_line(first_screen(res, rec).data))


def test_the_class_sentence_follows_the_results(tmp_path):
    from sst2bench.report import int8_ceiling

    slower = {"fp32-torch": 10.0, "fp32-ort": 6.0, "int8-fast-lossy": 4.0, "int8-good": 5.0}
    res = with_peaks(RunResults.load(fabricate_run(tmp_path / "runs" / "fake", p50s=slower)), large=(90.0, 360.0), model=(70.0, 140.0))
    sentence = int8_ceiling(res)
    assert "at most 4.0x as fast" in sentence and "2.0x on this model's own GEMM shapes" in sentence
    assert "reaches 1.50x the speed of fp32-ort (int8-fast-lossy" in sentence and "recommendation" not in sentence


def test_without_a_peak_measurement_the_cpu_line_says_so(run_dir, tmp_path):
    from sst2bench.report import int8_ceiling

    res = RunResults.load(run_dir)
    line = html.unescape(cpu_line(first_screen_page(res)))
    assert "did not measure the CPU's int8/fp32 matrix-multiply peak (params latency.peak was off)" in line
    assert "at most" not in line and "reaches" not in line
    (run_dir / "latency.json").unlink()
    assert "(latency skipped)" in int8_ceiling(RunResults.load(run_dir))


def test_the_cpu_line_lists_the_recipes_the_class_changed_and_why(run_dir):
    from sst2bench.report import class_adaptations

    assert class_adaptations(RunResults.load(run_dir)) is None  # no quantize records: nothing to say
    on_avx2 = {"requested": "auto", "target": "avx2", "cpu": "AMD EPYC", "changes": {"reduce_range": True}, "reason": "no VNNI here"}
    kept = {"requested": "avx512_vnni", "target": "avx512_vnni", "cpu": None, "changes": {"reduce_range": False}, "reason": "VNNI"}
    search = int8_model("int8-good", "AMD EPYC", AVX2_ONLY, on_avx2).model_copy(
        update={"recipe": {"name": "int8-good", "method": "ort-static", "config": {"reduce_range": False, "isa": "auto"}}}
    )
    nncf = int8_model("nncf", "AMD EPYC", AVX2_ONLY).model_copy(
        update={
            "backend": "openvino",
            "recipe": {"name": "nncf", "method": "nncf-openvino", "config": {"overflow_fix": "auto"}},
            "tuning": {"overflow_fix": "first_layer"},
        }
    )
    named = int8_model("vnni-named", "AMD EPYC", AVX2_ONLY, kept).model_copy(
        update={"recipe": {"name": "vnni-named", "method": "ort-static", "config": {"reduce_range": False}}}
    )
    models = {"int8-good": search, "int8-good@val": search.model_copy(update={"variant_of": "int8-good"}), "nncf": nncf}
    write_result(run_dir / "quantize.json", QuantizeResult(recipes={**models, "vnni-named": named}, provenance=provenance()))
    res = RunResults.load(run_dir)
    note = class_adaptations(res)
    assert "int8-good: isa auto → avx2 (from the CPU): set reduce_range=True, because no VNNI here" in note
    assert "nncf: overflow fix auto → first_layer" in note and "because AMD EPYC (avx2) has no VNNI or AMX" in note
    assert "vnni-named: isa avx512_vnni → avx512_vnni (named in the recipe): kept the recipe's settings" in note
    assert "@val" not in note
    assert note in html.unescape(cpu_line(first_screen_page(res)))


def test_the_measured_avx2_run_gives_the_numbers_of_issue_19():
    """The real AVX2 run (tests/fixtures/avx2-zen3-standin, trimmed): its peak sweep and latency give
    the figures the issue quotes from it, and its records name the recipes its class changed."""
    from sst2bench.report import class_adaptations, cpu_summary, int8_ceiling

    res = RunResults.load(FIXTURES / "avx2-zen3-standin")
    assert "int8 class avx2" in cpu_summary(res)
    sentence = int8_ceiling(res)
    assert "2.1x on one 1024³ GEMM" in sentence and "1.60x the speed of fp32-ort (ort-dynamic" in sentence
    note = class_adaptations(res)
    assert "ort-static-search: isa auto → avx2 (from the CPU): set reduce_range=True" in note
    assert "nncf-openvino: overflow fix auto → first_layer" in note and "@val" not in note


def test_the_two_real_runs_compare_on_one_page_avx512_vnni_against_avx2(tmp_path):
    """The measured runs of two CPU classes (tests/fixtures/zen4-vnni-standin, a cold make report of
    3d98dc7 on a Zen 4 EPYC with AVX-512 VNNI; avx2-zen3-standin): one page with both machines'
    speed-ups, counts and fp32 shas; refused without the flag, since the AVX2 run's sha is unknown."""
    from sst2bench.cli import main
    from sst2bench.report import comparison_page, cpu_summary

    runs = [FIXTURES / "zen4-vnni-standin", FIXTURES / "avx2-zen3-standin"]
    vnni, avx2 = (RunResults.load(d) for d in runs)
    assert "int8 class avx512-vnni" in cpu_summary(vnni) and "int8 class avx2" in cpu_summary(avx2)
    assert main(["report", "--compare", *map(str, runs), "--output", str(tmp_path / "x.html")]) == 2
    page = html.unescape(comparison_page(runs, allow_different_models=True))
    assert "AMD EPYC (family 25, model 17) · avx512-vnni" in page and "AMD EPYC · avx2" in page  # the AVX2 run predates family/model
    assert vnni.fp32_weights.sha256 in page and "sha256 unknown" in page
    # Each machine's speed-up of a recipe measured on both, read from its own run: VNNI buys more.
    speedups = [res.latency.speedup_vs_fp32_ort["ort-dynamic-pc"] for res in (vnni, avx2)]
    assert speedups[0] > speedups[1] > 1
    # A system measured on one machine only is shown as not measured on the other.
    assert "ort-dynamic-attn" in vnni.latency_at(1) and "ort-dynamic-attn" not in avx2.latency_at(1)


def test_int8_slower_than_its_own_runtimes_fp32_is_named_with_its_profiled_cause(tmp_path):
    """The measured AVX2 run: NNCF int8 in OpenVINO is slower than OpenVINO fp32 (13.38 against
    10.99 ms there), and the report says so with the cause profiled on that class; on a class where
    no cause was profiled it says that instead."""
    from sst2bench.report import int8_slower_than_own_fp32

    res = RunResults.load(FIXTURES / "avx2-zen3-standin")
    sentence = int8_slower_than_own_fp32(res)
    ratio = res.latency_at(1)["fp32-openvino"].p50_of_rounds_ms / res.latency_at(1)["nncf-openvino"].p50_of_rounds_ms
    assert ratio < 1 and "nncf-openvino runs at 0.8" in sentence and "the speed of fp32-openvino" in sentence
    assert "jit_gemm_I8" in sentence and "benchmarks/results/openvino-profile-avx2.md" in sentence
    assert "ort-" not in sentence  # every ONNX Runtime int8 system is faster than fp32 ORT there
    vnni = RunResults.load(FIXTURES / "avx2-zen3-standin")
    vnni.latency = vnni.latency.model_copy(
        update={"provenance": {**vnni.latency.provenance, "cpu": {**vnni.latency.provenance["cpu"], "isa": AVX512_VNNI}}}
    )
    assert "the cause was not profiled on int8 class avx512-vnni" in int8_slower_than_own_fp32(vnni)
    # Rows that name their runtime: an int8 ORT system faster than fp32 ORT is not listed, a slower one is.
    fast = fabricate_run(tmp_path / "runs" / "fake")
    latency = read_result(fast / "latency.json", LatencyResult)
    named = [r.model_copy(update={"backend": "onnxruntime" if r.system != "fp32-torch" else "torch"}) for r in latency.results]
    write_result(fast / "latency.json", latency.model_copy(update={"results": named}))
    assert RunResults.load(fast).same_runtime_fp32("int8-good") == ["fp32-ort"]
    assert int8_slower_than_own_fp32(RunResults.load(fast)) is None  # int8-good 3 ms, int8-fast-lossy 2 ms against fp32-ort 6 ms
    slow = [r.model_copy(update={"round_p50_ms": [8.0, 8.0, 8.0]}) if r.system == "int8-good" else r for r in named]
    write_result(fast / "latency.json", latency.model_copy(update={"results": slow}))
    sentence = int8_slower_than_own_fp32(RunResults.load(fast))
    assert "int8-good runs at 0.75x the speed of fp32-ort" in sentence and "not profiled on int8 class avx512-vnni" in sentence
    assert "int8-fast-lossy" not in sentence


# ---------------------------------------------------------------- one fp32 model across machines


def with_fp32(run_dir, weights: bytes, relative=True):
    """The run's fp32 model folder in its project (``<project>/runs/<run>``), and the model.json naming it."""
    project = run_dir.parent.parent
    folder = project / "models" / run_dir.name / "fp32"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.safetensors").write_bytes(weights)
    write_result(run_dir / "model.json", ModelResult(fp32_dir=str(folder.relative_to(project) if relative else folder)))
    return run_dir


def sha(weights: bytes) -> str:
    return hashlib.sha256(weights).hexdigest()


def two_machines(tmp_path, here=b"one model", there=b"one model"):
    return (
        with_fp32(fabricate_run(tmp_path / "epyc" / "runs" / "standin", "AMD EPYC", AVX2_ONLY), here),
        with_fp32(fabricate_run(tmp_path / "xeon" / "runs" / "standin", "Intel Xeon 8480", AMX), there, relative=False),
    )


def test_one_fp32_model_on_two_machines_is_comparable_and_its_sha_is_printed(tmp_path):
    from sst2bench.report import comparison_page

    page = comparison_page(list(two_machines(tmp_path)))
    assert page.count(sha(b"one model")) == 3  # each machine's line and the verdict
    assert "One fp32 model on every machine" in page and "different fp32 models" not in page and "Warning" not in page


def test_different_fp32_models_are_refused_in_one_line_naming_both_shas_and_the_flag(tmp_path, capsys):
    from sst2bench.cli import main

    here, there = two_machines(tmp_path, b"fine-tuned on AVX2", b"fine-tuned on VNNI")
    out = tmp_path / "compare.html"
    assert main(["report", "--compare", str(here), str(there), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sst2bench: error: not comparable, different fp32 models")
    assert sha(b"fine-tuned on AVX2") in err and sha(b"fine-tuned on VNNI") in err and "--allow-different-models" in err
    assert not out.exists()


def test_with_the_flag_different_models_render_under_a_warning(tmp_path, capsys):
    from sst2bench.cli import main

    here, there = two_machines(tmp_path, b"fine-tuned on AVX2", b"fine-tuned on VNNI")
    out = tmp_path / "compare.html"
    assert main(["report", "--compare", str(here), str(there), "--output", str(out), "--allow-different-models"]) == 0
    page = out.read_text()
    assert "<h1>Latency across machines: different fp32 models</h1>" in page and "Warning: different fp32 models" in page
    assert sha(b"fine-tuned on AVX2") in page and sha(b"fine-tuned on VNNI") in page and 'class="sst2bench sortable"' in page


def test_fp32_weights_that_cannot_be_checked_are_not_called_one_model(tmp_path):
    """No model.json, a folder outside the run's project (a path read from another machine's results),
    weights rewritten after the run: each is unknown, refused, and with the flag titled unverified."""
    from sst2bench.errors import UserError
    from sst2bench.report import comparison_page, fp32_weights

    here, there = two_machines(tmp_path)
    (there / "model.json").unlink()
    assert "model stage skipped" in fp32_weights(RunResults.load(there)).source
    with pytest.raises(UserError, match="fp32 models not verified to be the same.*sha256 unknown"):
        comparison_page([here, there])
    assert "<h1>Latency across machines: fp32 models not verified to be the same</h1>" in comparison_page([here, there], True)

    elsewhere = tmp_path / "other-project" / "models" / "standin" / "fp32"
    elsewhere.mkdir(parents=True)
    (elsewhere / "model.safetensors").write_bytes(b"one model")
    write_result(there / "model.json", ModelResult(fp32_dir=str(elsewhere)))
    assert "outside the run's project" in fp32_weights(RunResults.load(there)).source

    with_fp32(there, b"one model")
    assert fp32_weights(RunResults.load(there)).sha256 == sha(b"one model")
    weights = there.parent.parent / "models" / "standin" / "fp32" / "model.safetensors"
    later = (there / "model.json").stat().st_mtime + 60
    os.utime(weights, (later, later))
    assert "changed after the model stage wrote model.json" in fp32_weights(RunResults.load(there)).source

    real = RunResults.load(FIXTURES / "avx2-zen3-standin")  # copied results: its model folder is not here
    assert real.fp32_weights.sha256 is None


def test_a_sha_the_model_stage_records_is_used_as_recorded(run_dir):
    """Once model.json carries the weights' sha256 (field ``fp32_weights_sha256``), nothing is hashed."""
    from sst2bench.report import fp32_weights

    class Recorded(ModelResult):
        fp32_weights_sha256: str = ""

    res = RunResults.load(run_dir)
    res.model = Recorded(fp32_dir="/nowhere", fp32_weights_sha256=sha(b"recorded"))
    assert fp32_weights(res).sha256 == sha(b"recorded") and fp32_weights(res).source == "recorded by the model stage"


# ---------------------------------------------------------------- one recipe on several fp32 checkpoints


def test_int8_deltas_on_two_fp32_checkpoints_show_each_run_and_the_spread(tmp_path, capsys):
    """Two runs differing in their fine-tune seed, on one machine: each int8 system's Δ against its
    own run's fp32 in each run, and the min–max over the checkpoints; one model twice, or runs on two
    CPU classes, are refused with why."""
    from sst2bench.cli import main
    from sst2bench.errors import UserError
    from sst2bench.report import checkpoint_page, checkpoint_table

    seed42 = with_fp32(fabricate_run(tmp_path / "p" / "runs" / "standin", "AMD EPYC", AVX2_ONLY), b"seed 42")
    seed2 = with_fp32(fabricate_run(tmp_path / "p" / "runs" / "standin-seed2", "AMD EPYC", AVX2_ONLY), b"seed 2")
    accuracy = read_result(seed2 / "accuracy.json", AccuracyResult)
    accuracy.systems["int8-good"] = scored("int8-good", 87, wrong_on=(3, 4, 5), agreement=0.97)  # the second checkpoint loses 3
    write_result(seed2 / "accuracy.json", accuracy)
    out = tmp_path / "checkpoints.html"
    assert main(["report", "--checkpoints", str(seed42), str(seed2), "--output", str(out)]) == 0
    page = out.read_text()
    assert sha(b"seed 42") in page and sha(b"seed 2") in page and "int8 class avx2" in page
    table = checkpoint_table([RunResults.load(seed42), RunResults.load(seed2)]).set_index("system")
    assert html_table(table.reset_index()) in page
    assert table.loc["int8-good", "Δ vs fp32 · validation · standin"] == "+0 (90/100)"
    assert table.loc["int8-good", "Δ vs fp32 · validation · standin-seed2"] == "-3 (87/100)"
    assert table.loc["int8-good", "Δ validation, min to max over checkpoints"] == "-3 to +0"
    assert table.loc["int8-fast-lossy", "Δ validation, min to max over checkpoints"] == "-5 to -5"
    assert "fp32-ort" not in table.index  # fp32 rows are the references, not deltas
    assert not any("· final ·" in column for column in table.columns)  # neither run scored a final split

    with_fp32(seed2, b"seed 42")  # one model twice
    with pytest.raises(UserError, match="runs of one model show no checkpoint variance"):
        checkpoint_page([seed42, seed2])
    vnni = with_fp32(fabricate_run(tmp_path / "q" / "runs" / "standin-seed2", "AMD EPYC", AVX512_VNNI), b"seed 2")
    with pytest.raises(UserError, match="not one protocol on one CPU class"):
        checkpoint_page([seed42, vnni])
    namesake = with_fp32(fabricate_run(tmp_path / "r" / "runs" / "standin", "AMD EPYC", AVX2_ONLY), b"seed 7")
    with pytest.raises(UserError, match="share a run name"):
        checkpoint_page([seed42, namesake])


def test_the_report_says_which_calibration_each_static_recipe_used(run_dir):
    """Grouped by composition, size and method from the quantize records; copies and dynamic recipes left out."""
    from sst2bench.report import calibration_in_use

    def with_calibration(name, composition, samples=104, variant_of=None):
        calibration = {"method": "minmax", "samples": samples, "composition": composition}
        model = int8_model(name)
        return model.model_copy(update={"recipe": {**model.recipe, "calibration": calibration}, "variant_of": variant_of})

    recipes = {
        "ort-dynamic": int8_model("ort-dynamic"),
        "static-a": with_calibration("static-a", "rows"),
        "static-a@seed7": with_calibration("static-a@seed7", "rows", variant_of="static-a"),
        "static-b": with_calibration("static-b", "rows"),
        "static-c": with_calibration("static-c", "sentences", samples=32),
    }
    write_result(run_dir / "quantize.json", QuantizeResult(recipes=recipes, provenance=provenance()))
    sentence = calibration_in_use(RunResults.load(run_dir))
    assert "rows, 104 samples, minmax: static-a, static-b; sentences, 32 samples, minmax: static-c." in sentence
    assert "ort-dynamic" not in sentence and "@seed7" not in sentence
    write_result(run_dir / "quantize.json", QuantizeResult(recipes={"ort-dynamic": recipes["ort-dynamic"]}, provenance=provenance()))
    assert calibration_in_use(RunResults.load(run_dir)) == "No static recipe in this run: nothing was calibrated."
    write_result(run_dir / "quantize.json", QuantizeResult(status="skipped", reason="no fp32 model", provenance=provenance()))
    assert calibration_in_use(RunResults.load(run_dir)) == "Which calibration the static recipes used is not known: quantize skipped."


def test_the_op_profile_section_and_what_stands_in_the_way_come_from_the_measured_profiles(tmp_path):
    from sst2bench.report import in_the_way, op_profile_table
    from sst2bench.results.latency import OpProfile

    run = fabricate_run(tmp_path / "runs" / "fake")
    latency = read_result(run / "latency.json", LatencyResult)
    cats = {"int8 GEMM": 1.0, "fp32 GEMM": 0.0, "attention": 0.5, "normalisation & activation": 0.3}
    cats.update({"quantize & dequantize": 0.2, "other": 0.0})
    profiles = {
        "int8-good": OpProfile(
            calls=64, source="ONNX Runtime 1.32.0 profiler (kernel times)", ms_per_call=cats, top_ops={"MatMulInteger": 1.0}
        )
    }
    write_result(run / "latency.json", latency.model_copy(update={"profiles": profiles}))
    res = RunResults.load(run)
    table, notes = op_profile_table(res)
    row = table.set_index("system").loc["int8-good"]
    assert row["int8 GEMM (%)"] == 50.0 and row["attention (%)"] == 25.0 and row["profiled ms per call"] == 2.0
    assert "MatMulInteger 1.00" in row["top op types (ms per call)"] and "ONNX Runtime 1.32.0 profiler" in notes[0]
    sentence = in_the_way(res, "int8-good")
    assert "int8 GEMMs take 50 %" in sentence and "attention 25 %, normalisation & activation 15 %, quantize & dequantize 10 %" in sentence
    assert "was not profiled" in in_the_way(res, "int8-fast-lossy")
    write_result(run / "latency.json", latency)
    assert op_profile_table(RunResults.load(run))[0] is None
