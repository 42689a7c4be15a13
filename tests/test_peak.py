import numpy as np
import pytest

from sst2bench.peak import (
    PRECISION_OPS,
    int8_over_fp32,
    mac_polynomials,
    macs_at,
    measure_peak,
    node_macs,
    peak_fraction,
    precision_split,
    suspect_peaks,
    time_gemms,
    weight_gemms,
)
from sst2bench.results.latency import MachineLimit, PeakThroughput


def tiny_graph(path):
    """input_ids (batch, tokens) → one-hot-ish embedding (tokens × 4) → projection 4→3, scores x·xᵀ, Gemm head 3→2."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal((10, 4)).astype(np.float32), "table"),
        numpy_helper.from_array(rng.standard_normal((4, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.standard_normal((2, 3)).astype(np.float32), "head"),
        numpy_helper.from_array(np.array([0, 2, 1], dtype=np.int64), "perm"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "zero"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "one"),
    ]
    nodes = [
        helper.make_node("Gather", ["table", "input_ids"], ["x"], name="embed"),  # (b, t, 4)
        helper.make_node("MatMul", ["x", "w"], ["h"], name="proj"),  # t·4·3 per sentence
        helper.make_node("Transpose", ["h"], ["ht"], perm=[0, 2, 1], name="t"),
        helper.make_node("MatMul", ["h", "ht"], ["scores"], name="scores"),  # t·3·t
        helper.make_node("Slice", ["h", "zero", "one", "one"], ["cls3"], name="cls"),  # (b, 1, 3)
        helper.make_node("Squeeze", ["cls3", "one"], ["cls"], name="squeeze"),  # (b, 3)
        helper.make_node("Gemm", ["cls", "head"], ["logits"], transB=1, name="classify"),  # 3·2
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"])],
        [
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, None),
        ],
        inits,
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


def test_macs_are_counted_by_hand(tmp_path):
    import onnx

    path = tiny_graph(tmp_path / "tiny.onnx")
    assert node_macs(onnx.load(path), 1, 5) == {"proj": 5 * 4 * 3, "scores": 5 * 3 * 5, "classify": 3 * 2}
    assert node_macs(onnx.load(path), 2, 5)["scores"] == 2 * 5 * 3 * 5
    # The polynomial from three lengths gives any length, averaged over the calls' lengths.
    assert macs_at(mac_polynomials(path), [5, 7]) == {"proj": 72.0, "scores": (75 + 147) / 2, "classify": 6.0}
    assert weight_gemms(path) == [(4, 3), (3, 2)]


def test_precision_split_follows_the_op_table():
    macs = {"proj": 60.0, "scores": 75.0, "classify": 6.0}
    table = [{"node": "proj", "precision": "int8"}, {"node": "scores", "precision": "fp32"}]
    assert precision_split(macs, table) == (60.0, 81.0)
    assert precision_split(macs, None) == (0.0, 141.0)


@pytest.mark.parametrize("precision", list(PRECISION_OPS))
def test_peak_measures_each_precision_with_onnx_runtime(precision):
    timed = time_gemms(precision, 8, [(16, 32), (32, 16)], threads=1, repeats=3)
    assert timed["macs"] == 8 * (16 * 32 + 32 * 16)
    assert 0 < timed["best_ms"] <= timed["median_ms"] and timed["gops_per_second"] > 0


def test_a_contaminated_peak_sweep_is_measured_again_and_flagged_when_it_stays_so(monkeypatch):
    """A 2-thread call slowed by another process (faked): re-measured, then flagged with what is wrong."""
    calls = []

    def fake_time(precision, rows, gemms, threads, repeats, slow_two_threads=True):
        calls.append((precision, rows, threads))
        gops = 100.0 * (1 if threads == 1 or slow_two_threads else 1.9) * (0.8 if rows == 2 else 1.0)
        return {"macs": 1, "best_ms": 1.0, "median_ms": 1.0, "gops_per_second": gops}

    monkeypatch.setattr("sst2bench.peak.time_gemms", fake_time)
    flagged = measure_peak([(4, 4)], 2, [1, 2], 1, 8)
    assert len(calls) == 3 * 12  # every setting measured, then twice again
    assert len(flagged["flags"]) == 3 and all("2 threads ran 1.00x its 1-thread peak" in flag for flag in flagged["flags"])

    calls.clear()
    monkeypatch.setattr("sst2bench.peak.time_gemms", lambda *args: fake_time(*args, slow_two_threads=False))
    clean = measure_peak([(4, 4)], 2, [1, 2], 1, 8)
    assert clean["flags"] == [] and len(calls) == 12  # a clean sweep is measured once
    assert MachineLimit(**clean).gops("int8", "large", 2) == 190.0

    beaten = suspect_peaks([*clean["peaks"][:1], {**clean["peaks"][1], "gops_per_second": 1e6}])
    assert beaten and "beat the large shape" in beaten[0]


def test_fraction_of_peak_weighs_each_precision_by_its_peak():
    def peak(precision, shape, gops):
        return PeakThroughput(precision=precision, shape=shape, rows=1, macs=1, threads=1, best_ms=1, median_ms=1, gops_per_second=gops)

    limit = MachineLimit(
        method="m", cpu="c", isa=[], runtime="r", repeats=1, peaks=[peak("int8", "model", 400), peak("fp32", "model", 100)]
    )
    macs = {"proj": 2e8, "scores": 5e7}
    table = [{"node": "proj", "precision": "int8"}]
    values = peak_fraction("x", 1, [20, 30], macs, table, forward_mean_ms=4.0, limit=limit)
    # At peak: 2·2e8 / 400e9 s = 1 ms int8, 2·5e7 / 100e9 s = 1 ms fp32; measured 4 ms.
    assert values["fraction_of_model_shape_peak"] == pytest.approx(0.5) and values["fraction_of_large_peak"] is None
    assert values["tokens_mean"] == 25 and values["achieved_gops_per_second"] == pytest.approx(2 * 2.5e8 / 4e6)


def test_measured_limit_covers_every_precision_shape_and_thread_count():
    limit = MachineLimit(**measure_peak([(16, 32), (32, 16)], rows=4, threads=[1, 2], repeats=2, large=24))
    assert {(p.precision, p.shape, p.threads) for p in limit.peaks} == {
        (x, s, t) for x in PRECISION_OPS for s in ("large", "model") for t in (1, 2)
    }
    assert {p.macs for p in limit.peaks if p.shape == "large"} == {24**3} and {p.macs for p in limit.peaks if p.shape == "model"} == {
        4 * 2 * 512
    }
    assert limit.gops("int8", "model", 2) > 0 and limit.gops("int8", "model", 4) is None and "best of 2" in limit.method


def test_int8_over_fp32_takes_the_best_int8_kernel_per_shape_at_the_asked_threads():
    """The report's cap on what int8 can buy: a shape lacking one precision says nothing, and another
    thread count's peaks never mix in."""

    def peak(precision, shape, gops, threads=1):
        return PeakThroughput(
            precision=precision, shape=shape, rows=1, macs=1, threads=threads, best_ms=1, median_ms=1, gops_per_second=gops
        )

    peaks = [
        peak("fp32", "large", 100),
        peak("int8", "large", 300),
        peak("int8-dynamic", "large", 350),
        peak("fp32", "model", 80),
        peak("fp32", "large", 10, threads=2),
        peak("int8", "large", 900, threads=2),
    ]
    limit = MachineLimit(method="m", cpu="c", isa=[], runtime="r", repeats=1, peaks=peaks)
    assert int8_over_fp32(limit, 1) == {"large": pytest.approx(3.5)}
    assert int8_over_fp32(limit, 2) == {"large": pytest.approx(90.0)}
    assert int8_over_fp32(limit, 4) == {}


def test_an_int8_attention_counts_the_projections_it_fused_as_int8():
    """A fused graph's op table names Attention_0, not the export's q/k/v MatMuls: QAttention runs
    those projections in int8 (its attention scores stay fp32), so they count at the int8 peak."""
    layer = "/distilbert/transformer/layer.0/attention"
    macs = {f"{layer}/q_lin/MatMul": 10.0, f"{layer}/k_lin/MatMul": 10.0, f"{layer}/v_lin/MatMul": 10.0, f"{layer}/MatMul": 5.0}
    macs[f"{layer}/out_lin/MatMul"] = 20.0
    fused = [{"node": "Attention_0", "op_type": "Attention", "precision": "int8"}]
    fused.append({"node": f"{layer}/out_lin/MatMul", "op_type": "MatMul", "precision": "int8"})
    assert precision_split(macs, fused) == (50.0, 5.0)
    fp32_attention = [{**fused[0], "precision": "fp32"}, fused[1]]
    assert precision_split(macs, fp32_attention) == (20.0, 35.0)
