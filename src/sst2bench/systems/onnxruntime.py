"""ONNX Runtime on the CPU: the fp32 export and every int8 graph."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from ..profile import onnx_category
from ..results.core import FP32_ORT, FP32_ORT_FUSED
from .base import InferenceConfig, SystemSpec, TokenizingSystem, register_backend

# Operators whose output for one row depends on the other rows of the call: dynamic quantization
# computes one activation range per tensor, i.e. per call (ORT's fused forms included).
BATCH_DEPENDENT_OPS = frozenset({"DynamicQuantizeLinear", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "DynamicQuantizeLSTM"})


def graph_rows_independent(model) -> bool:
    """Whether no operator of the ``onnx.ModelProto`` mixes the rows of a call (see ``BATCH_DEPENDENT_OPS``)."""
    return not {node.op_type for node in model.graph.node} & BATCH_DEPENDENT_OPS


def session_options(threads: int):
    """ONNX Runtime session options of every measured session here: ``threads`` intra-op threads,
    one inter-op thread, sequential execution."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return options


@register_backend("onnxruntime")
class OrtSystem(TokenizingSystem):
    """An ONNX graph in ONNX Runtime on the CPU, with its threads pinned."""

    # fp32 on this runtime (exported and fused graph): a same-runtime speed-up is taken against the faster.
    fp32_reference = (FP32_ORT, FP32_ORT_FUSED)

    def __init__(
        self, model_dir: Path | str, config: InferenceConfig | None = None, name: str = "fp32-ort", model_bytes: bytes | None = None
    ):
        """Load the folder's one ``.onnx`` file, or ``model_bytes`` with the folder's tokenizer and labels."""
        import onnxruntime as ort
        from transformers import AutoTokenizer

        model_dir = Path(model_dir)
        config = config or InferenceConfig()
        onnx_files = sorted(model_dir.glob("*.onnx"))
        if model_bytes is None and len(onnx_files) != 1:
            raise UserError(f"{model_dir}: expected exactly one .onnx file, found {[f.name for f in onnx_files]}")
        labels = json.loads((model_dir / "config.json").read_text())["id2label"]
        super().__init__(name, AutoTokenizer.from_pretrained(model_dir), labels, config, str(model_dir))
        options = session_options(config.threads)
        self.model_source = model_bytes if model_bytes is not None else str(onnx_files[0])
        self.session = ort.InferenceSession(self.model_source, options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def logits(self, texts):
        return self.session.run(None, self.int64_feed(texts))[0]

    op_category = staticmethod(onnx_category)

    def op_times(self, texts) -> tuple[dict[tuple[str, str], float], str]:
        """ms per call by (op type, node) from ONNX Runtime's profiler: a second session of the same
        graph and settings with profiling on, one text per call, after an untimed pass over them all."""
        import tempfile

        import onnxruntime as ort

        options = session_options(self.config.threads)
        with tempfile.TemporaryDirectory() as scratch:
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(scratch) / "profile")
            session = ort.InferenceSession(self.model_source, options, providers=["CPUExecutionProvider"])
            feeds = [self.int64_feed([t]) for t in texts]
            for feed in [*feeds, *feeds]:  # the first pass only warms every shape; its runs are left out below
                session.run(None, feed)
            events = json.loads(Path(session.end_profiling()).read_text())
        first = [e for e in events if e.get("name") == "model_run"][-len(feeds)]["ts"]
        times: dict[tuple[str, str], float] = {}
        for event in events:
            if event.get("cat") == "Node" and event["name"].endswith("_kernel_time") and event["ts"] >= first:
                key = (event["args"]["op_name"], event["name"].removesuffix("_kernel_time"))
                times[key] = times.get(key, 0.0) + event["dur"] / 1000 / len(feeds)
        return times, f"ONNX Runtime {ort.__version__} profiler (kernel times)"

    # A folder with a .onnx file is an ONNX model even when it holds config.json too.
    priority = 10

    @staticmethod
    def claims(path: Path) -> bool:
        return any(path.glob("*.onnx"))

    @staticmethod
    def rows_independent(spec: SystemSpec) -> bool:
        """Whether a row's output is independent of the other rows of its call: true of fp32 and
        static int8 graphs, false where dynamic quantization takes one activation range per call."""
        import onnx

        files = sorted(Path(spec.path).glob("*.onnx"))
        if len(files) != 1:
            return False
        return graph_rows_independent(onnx.load(str(files[0]), load_external_data=False))

    @classmethod
    def from_spec(cls, spec: SystemSpec, inference: InferenceConfig) -> OrtSystem:
        return cls(spec.path, inference, name=spec.name)
