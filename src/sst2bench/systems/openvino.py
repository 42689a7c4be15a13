"""OpenVINO on the CPU: the fp32 ONNX export read directly, or an OpenVINO IR (NNCF's int8 model).

Compiled for latency with the thread count pinned, one stream, no core pinning, and inference
precision forced to f32: on CPUs with AVX512-BF16 or AMX OpenVINO's default precision is bf16,
so an "fp32" model (and the non-quantized ops of an int8 one) would silently run in bf16.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from ..profile import openvino_category
from ..results.core import FP32_OPENVINO
from .base import InferenceConfig, SystemSpec, TokenizingSystem, register_backend

IR_FILE = "openvino_model.xml"


def model_file(model_dir: Path) -> Path:
    """The folder's OpenVINO IR if it has one, else its one ONNX graph (read by OpenVINO's ONNX frontend)."""
    if (model_dir / IR_FILE).is_file():
        return model_dir / IR_FILE
    onnx_files = sorted(model_dir.glob("*.onnx"))
    if len(onnx_files) != 1:
        raise UserError(f"{model_dir}: expected {IR_FILE} or exactly one .onnx file, found {[f.name for f in onnx_files]}")
    return onnx_files[0]


def compile_properties(threads: int) -> dict:
    """CPU plugin settings of every OpenVINO system: the thread count pinned and true fp32 inference."""
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    return {
        hints.performance_mode: hints.PerformanceMode.LATENCY,
        props.inference_num_threads: threads,
        props.num_streams: 1,
        hints.enable_cpu_pinning: False,
        hints.enable_hyper_threading: False,
        hints.inference_precision: ov.Type.f32,
    }


@register_backend("openvino")
class OpenVinoSystem(TokenizingSystem):
    """An OpenVINO model (IR or ONNX file) compiled for the CPU."""

    fp32_reference = (FP32_OPENVINO,)  # fp32 on this runtime, for the same-runtime speed-up
    # Why int8 runs slower than fp32 on this runtime, per int8 class where it was profiled (the report cites it).
    int8_slowdown_causes = {
        "avx2": "without VNNI, OpenVINO's CPU plugin runs NNCF's int8 FullyConnected layers on oneDNN's generic "
        "jit_gemm_I8 kernel while fp32's run on MLAS and brgemm_avx2_f32, so every int8 GEMM takes the slower path "
        "(OpenVINO's performance counters: benchmarks/results/openvino-profile-avx2.md, benchmarks/openvino_profile.py)",
    }

    def __init__(self, model_dir: Path | str, config: InferenceConfig | None = None, name: str = "fp32-openvino"):
        import openvino as ov
        from transformers import AutoTokenizer

        model_dir = Path(model_dir)
        config = config or InferenceConfig()
        path = model_file(model_dir)
        labels = json.loads((model_dir / "config.json").read_text())["id2label"]
        super().__init__(name, AutoTokenizer.from_pretrained(model_dir), labels, config, str(model_dir))
        core = ov.Core()
        self.model_path = path
        self.compiled_model = core.compile_model(core.read_model(str(path)), "CPU", compile_properties(config.threads))
        self.input_names = [port.get_any_name() for port in self.compiled_model.inputs]
        self.request = self.compiled_model.create_infer_request()

    def runtime_properties(self) -> dict:
        """What the compiled model actually uses (read back, so a report can show it)."""
        names = ("INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS", "NUM_STREAMS", "ENABLE_CPU_PINNING", "PERFORMANCE_HINT")
        values = {name: self.compiled_model.get_property(name) for name in names}
        return {name: value.to_string() if hasattr(value, "to_string") else str(value) for name, value in values.items()}

    def logits(self, texts):
        return self.request.infer(self.int64_feed(texts))[self.compiled_model.output(0)].copy()

    op_category = staticmethod(openvino_category)

    def op_times(self, texts) -> tuple[dict[tuple[str, str], float], str]:
        """ms per call by (node type, node [kernel]) from OpenVINO's performance counters: the model
        compiled again with the same properties and profiling on, one text per call, every shape
        compiled by an untimed first pass."""
        import openvino as ov
        import openvino.properties as props

        core = ov.Core()
        properties = {**compile_properties(self.config.threads), props.enable_profiling: True}
        compiled = core.compile_model(core.read_model(str(self.model_path)), "CPU", properties)
        request = compiled.create_infer_request()
        feeds = [self.int64_feed([t]) for t in texts]
        for feed in feeds:
            request.infer(feed)
        times: dict[tuple[str, str], float] = {}
        for feed in feeds:
            request.infer(feed)
            for info in request.get_profiling_info():
                if info.status == ov.ProfilingInfo.Status.EXECUTED:
                    key = (info.node_type, f"{info.node_name} [{info.exec_type}]")
                    times[key] = times.get(key, 0.0) + info.real_time.total_seconds() * 1e3 / len(feeds)
        return times, f"OpenVINO {ov.get_version()} performance counters"

    # After ONNX Runtime (a folder with an .onnx file) and before PyTorch (any transformers folder).
    priority = 5

    @staticmethod
    def claims(path: Path) -> bool:
        return (path / IR_FILE).is_file()

    @classmethod
    def from_spec(cls, spec: SystemSpec, inference: InferenceConfig) -> OpenVinoSystem:
        return cls(spec.path, inference, name=spec.name)
