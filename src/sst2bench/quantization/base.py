"""What every quantization method shares: the calibration config, the method config base, the
``Method`` interface and the registry that finds methods by name.

A method is one module of this package with a class decorated ``@register_method``: its ``name``,
its ``config_class`` (a frozen dataclass of the fields it reads, validated on construction),
``is_static``, what it reads (``source_format``: the prepared ONNX graph or the PyTorch folder),
what it writes (``output_file``, loaded by the system ``backend``) and ``quantize(job)``. Nothing lists the modules: ``get_method(name)`` scans the
package's sources for ``@register_method`` classes and imports only the module that defines
``name``, on first lookup (so importing ``sst2bench.quantization`` imports no method).
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

from ..errors import UserError

PACKAGE = __name__.rpartition(".")[0]
CALIBRATIONS = ("minmax", "entropy", "percentile")
# "dynamic": every sentence its own unpadded tensor, as inference at batch 1 sees it;
# "max_length": batches of batch_size sentences padded to max_length (Intel's recipe).
CALIBRATION_PADDINGS = ("dynamic", "max_length")
# Which train rows calibrate: "rows", any train row (mostly SST's short phrases), as Intel's recipe
# drew them, the default; "sentences", whole train sentences (rows no longer row contains: the kind of
# text the model is asked about). Rows stay the default on the tune-part evidence in
# benchmarks/results/calibration-composition-avx2.md: with whole sentences INC met no target on the
# ci model within max_trials, with rows it did.
CALIBRATION_COMPOSITIONS = ("sentences", "rows")
SOURCE_FORMATS = ("onnx", "torch")
INT8_TYPES = ("uint8", "int8")
FORMATS = ("QDQ", "QOperator")


class TuningFailed(UserError):
    """An accuracy-aware method tried its configurations and none met the accuracy criterion;
    ``trials`` holds every evaluation."""

    def __init__(self, trials: list[dict], message: str):
        super().__init__(message)
        self.trials = trials


def inc_found_nothing(recipe, trials: list[dict]) -> TuningFailed:
    """INC's tuning ended without a model that meets its target: what fp32 and each int8 trial scored
    (``trials[0]`` is INC's fp32 baseline), and how many trials ran of the ones allowed."""
    fp32, tried = trials[:1], [t["accuracy"] for t in trials[1:]]
    return TuningFailed(
        trials,
        f"recipe {recipe.name!r}: INC found no int8 model within {recipe.config.tolerable_loss:g} {recipe.config.criterion} loss "
        f"in {len(tried)} int8 trials (max_trials {recipe.config.max_trials}): fp32 {fp32[0]['accuracy'] if fp32 else 'not scored'}, "
        f"int8 {tried}; raise max_trials or tolerable_loss",
    )


class ConfigError(UserError):
    """An invalid config value; ``Recipe`` prefixes the recipe's name."""


def _check(owner: str, checks) -> None:
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"{owner}: {message}" if owner else message)


def field_names(config_class) -> tuple[str, ...]:
    return tuple(f.name for f in fields(config_class))


def non_defaults(config) -> dict:
    """The fields of a dataclass instance that differ from their defaults."""
    return {f.name: getattr(config, f.name) for f in fields(config) if getattr(config, f.name) != f.default}


# ------------------------------------------------------------------------------ calibration


@dataclass(frozen=True)
class CalibrationConfig:
    """How a static method picks activation ranges: which train sentences, how they are fed, and
    which algorithm.

    ``percentile`` is read by the percentile method only; ``num_bins`` by entropy and percentile
    (the histogram of ORT's calibrators); ``num_quantized_bins`` by entropy only; ``batch_size`` by
    ``padding="max_length"`` only (dynamic padding feeds one sentence at a time). A field that is
    not read, set to other than its default, is an error.
    """

    method: str = "minmax"
    # Intel's recipe: sampling size 100 at batch 8 rounds up to 104 train sentences (padded to max_length).
    samples: int = 104
    batch_size: int = 8
    # Truncation length, and the padded length when padding is "max_length"; None: the run's
    # inference max_length, so calibration sentences are cut where inference cuts them.
    max_length: int | None = None
    seed: int = 42
    # Padding changes the activation ranges: pad tokens' hidden states go through every MatMul.
    padding: str = "dynamic"
    composition: str = "rows"
    percentile: float = 99.999
    # Entropy searches clipping thresholds between num_quantized_bins/2 and num_bins/2 bins: with
    # equal values (optimum's default, 128/128) the only candidate is the full range, i.e. minmax.
    # TensorRT's practice: 2048/128.
    num_bins: int = 2048
    num_quantized_bins: int = 128

    # Which of the algorithm's fields each calibration method reads.
    READS: ClassVar[dict[str, tuple[str, ...]]] = {
        "minmax": (),
        "entropy": ("num_bins", "num_quantized_bins"),
        "percentile": ("num_bins", "percentile"),
    }
    ALGORITHM_FIELDS: ClassVar[tuple[str, ...]] = ("percentile", "num_bins", "num_quantized_bins")

    def __post_init__(self):
        _check(
            "calibration",
            [
                (self.method in CALIBRATIONS, f"method must be one of {CALIBRATIONS}, not {self.method!r}"),
                (self.padding in CALIBRATION_PADDINGS, f"padding must be one of {CALIBRATION_PADDINGS}, not {self.padding!r}"),
                (
                    self.composition in CALIBRATION_COMPOSITIONS,
                    f"composition must be one of {CALIBRATION_COMPOSITIONS}, not {self.composition!r}",
                ),
                (self.samples >= 1 and self.batch_size >= 1, "samples and batch_size must be at least 1"),
                (self.max_length is None or self.max_length >= 8, "max_length must be at least 8"),
                (0 < self.percentile <= 100, "percentile must be in (0, 100]"),
                (self.num_bins >= 1 and self.num_quantized_bins >= 1, "num_bins and num_quantized_bins must be at least 1"),
            ],
        )
        ignored = [name for name in self.ALGORITHM_FIELDS if name not in self.READS[self.method] and name in non_defaults(self)]
        if ignored:
            raise ConfigError(
                f"calibration {self.method!r} does not read {', '.join(ignored)} (it reads {list(self.READS[self.method]) or 'no histogram settings'}); leave it at its default"
            )
        if self.padding == "dynamic" and "batch_size" in non_defaults(self):
            raise ConfigError(
                "calibration padding 'dynamic' feeds one unpadded sentence at a time, as inference does, so it does not read batch_size; "
                "set calibration_padding='max_length' to calibrate on padded batches"
            )
        if self.method == "entropy" and self.num_quantized_bins >= self.num_bins:
            raise ConfigError(
                f"entropy calibration needs num_quantized_bins < num_bins (got {self.num_quantized_bins} >= {self.num_bins}): "
                "with equal values the only threshold it can pick is the full range, which is minmax; "
                "use e.g. num_bins=2048, num_quantized_bins=128"
            )


# ------------------------------------------------------------------------------ method configs


# ONNX Runtime quantizes Attention (as QAttention) in dynamic mode only (ORT 1.32's IntegerOpsRegistry).
NO_STATIC_ATTENTION = (
    "static int8 has no quantized Attention in ONNX Runtime (dynamic mode only): the MatMuls inside a fused Attention "
    "would stay fp32; leave fuse_attention=False"
)


@dataclass(frozen=True)
class MethodConfig:
    """Fields every method has, because the quantize pipeline reads them (source graph, op table).

    Subclasses add the fields their method reads and extend ``checks()``.
    """

    # Op types to quantize; the op table reports each node of these types as int8 or fp32.
    operators: tuple[str, ...] = ("MatMul",)
    # Fuse with ONNX Runtime's transformer optimizer (SkipLayerNorm, BiasGelu) first.
    optimize_graph: bool = True
    # ... and fuse attention (Attention, EmbedLayerNormalization) too: DistilBERT's export is
    # rewritten into BERT's attention form, the one the optimizer matches (fusion.bert_form_attention).
    fuse_attention: bool = False
    # Nodes forced to stay fp32 (a manual fallback): node names or fnmatch patterns
    # (``/distilbert/transformer/layer.0/ffn/*/MatMul``), each of which must match a node of the
    # graph the quantizer sees; they are expanded to concrete names before quantizing.
    fp32_nodes: tuple[str, ...] = ()

    def __post_init__(self):
        object.__setattr__(self, "operators", tuple(self.operators))
        object.__setattr__(self, "fp32_nodes", tuple(self.fp32_nodes))
        _check("", self.checks())

    def checks(self) -> list[tuple[bool, str]]:
        """``(ok, message)`` pairs; the first not ok is raised as a ``ConfigError``."""
        return [
            (bool(self.operators), "operators must name at least one op type"),
            (not self.fuse_attention or self.optimize_graph, "fuse_attention is a step of the optimizer: it needs optimize_graph=True"),
        ]


# ------------------------------------------------------------------------------ methods


@dataclass(frozen=True, eq=False)
class TuningScore:
    """A candidate scored on the labelled tuning split as reporting scores (batch 1, dynamic padding,
    the run's truncation): its predictions beside the gold labels, so a search can compare two
    candidates example by example and not only by their counts."""

    predicted: tuple[int, ...]
    gold: tuple[int, ...]
    # One row of label probabilities per example (numpy, n x labels).
    probabilities: object = None

    @property
    def correct(self) -> int:
        return sum(p == g for p, g in zip(self.predicted, self.gold))

    @property
    def total(self) -> int:
        return len(self.gold)

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


@dataclass
class QuantizeJob:
    """What ``Method.quantize`` gets.

    ``recipe``: the recipe (``fp32_nodes`` expanded to node names when the source is ONNX).
    ``source``: the prepared ONNX graph (``source_format="onnx"``; tokenizer and config beside it)
    or the fp32 transformers folder (``"torch"``). ``out_dir``: the empty folder to write
    ``output_file`` to; ``work_dir``: scratch. ``calibration``: the calibration batches (static
    methods; a ``calibration.CalibrationData``). ``inference``: the run's ``systems.InferenceConfig``
    (batch 1, dynamic padding, max_length, threads), so a method can score as reporting does.
    ``tuning`` and ``evaluate(model_bytes) -> TuningScore``: the labelled tuning split and an ONNX
    scorer on it, given only to recipes that need tuning (``Recipe.needs_tuning``), else None.
    ``torch_dir``: the fp32 PyTorch folder (None when the run has none).
    """

    recipe: object
    source: Path
    out_dir: Path
    work_dir: Path
    calibration: object = None
    evaluate: Callable[[bytes], TuningScore] | None = None
    tuning: object = None
    inference: object = None
    torch_dir: Path | None = None


class Method:
    """A quantization method. Subclass, set the class attributes, implement ``quantize``, and
    decorate with ``@register_method`` in a module of this package."""

    name: ClassVar[str]
    config_class: ClassVar[type[MethodConfig]] = MethodConfig
    is_static: ClassVar[bool] = True
    # Scores trials on a labelled tuning split (accuracy-aware): ``job.evaluate`` must be given.
    # A method whose config decides it overrides ``uses_tuning``.
    needs_tuning: ClassVar[bool] = False
    # The CalibrationConfig fields a static method reads; the others must keep their defaults.
    calibration_fields: ClassVar[tuple[str, ...]] = field_names(CalibrationConfig)
    # The system backend that loads ``out_dir`` (a registered ``systems`` backend name).
    backend: ClassVar[str] = "onnxruntime"
    # What ``job.source`` is: "onnx" (the prepared fp32 graph) or "torch" (the fp32 transformers folder).
    source_format: ClassVar[str] = "onnx"
    # The file(s) the method writes into ``out_dir``; the record's size is their sum.
    output_file: ClassVar[str | tuple[str, ...]] = "model.onnx"

    @classmethod
    def uses_tuning(cls, config: MethodConfig) -> bool:
        """Whether a recipe with ``config`` scores candidates on the tuning split."""
        return cls.needs_tuning

    @classmethod
    def calibration_conflict(cls, config: MethodConfig, calibration: CalibrationConfig) -> str | None:
        """Why ``config`` cannot calibrate with ``calibration`` (None: it can)."""
        return None

    @classmethod
    def output_files(cls) -> tuple[str, ...]:
        return (cls.output_file,) if isinstance(cls.output_file, str) else tuple(cls.output_file)

    def quantize(self, job: QuantizeJob) -> dict | None:
        """Write ``job.out_dir / output_file``; return what the record keeps as ``tuning`` (or None)."""
        raise NotImplementedError

    def op_table(self, job: QuantizeJob) -> list[dict] | None:
        """Rows ``{"node", "op_type", "precision": "int8" | "fp32"}`` for the record; None lets the
        pipeline compute them from the ONNX source and output (ONNX outputs only)."""
        return None


METHODS: dict[str, type[Method]] = {}


def register_method(cls: type[Method]) -> type[Method]:
    """Class decorator: make ``cls`` findable by ``cls.name``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__qualname__}: a method needs a name")
    if not (isinstance(cls.config_class, type) and issubclass(cls.config_class, MethodConfig)):
        raise TypeError(f"method {name}: config_class must subclass MethodConfig")
    if cls.source_format not in SOURCE_FORMATS:
        raise TypeError(f"method {name}: source_format must be one of {SOURCE_FORMATS}")
    known = METHODS.get(name)
    if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
        raise TypeError(f"method {name} is defined twice: {known.__module__}.{known.__qualname__} and {cls.__module__}.{cls.__qualname__}")
    METHODS[name] = cls
    return cls


def _registered_names(source: str) -> list[str] | None:
    """Names of the ``@register_method`` classes in a module's source ([] for none; None when a
    decorated class's name is not a plain string literal, so the module must be imported to know)."""
    if "register_method" not in source:
        return []
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        decorators = [d.attr if isinstance(d, ast.Attribute) else getattr(d, "id", None) for d in node.decorator_list]
        if "register_method" not in decorators:
            continue
        literal = [
            stmt.value.value
            for stmt in node.body
            if isinstance(stmt, (ast.Assign, ast.AnnAssign))
            and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str)
            and any(isinstance(t, ast.Name) and t.id == "name" for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]))
        ]
        if not literal:
            return None
        names.append(literal[0])
    return names


def method_modules() -> dict[str, list[str] | None]:
    """``{module: [method names]}`` for every module of this package that registers a method,
    found by reading the sources on the package's ``__path__`` (nothing is imported)."""
    package = importlib.import_module(PACKAGE)
    found: dict[str, list[str] | None] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.ispkg:
            continue
        path = Path(info.module_finder.path) / f"{info.name}.py"
        if not path.is_file():
            continue
        names = _registered_names(path.read_text())
        if names != []:
            found[f"{PACKAGE}.{info.name}"] = names
    return found


def method_names() -> list[str]:
    """Every method: registered ones and those the package's sources define, sorted."""
    names = set(METHODS)
    for module, defined in method_modules().items():
        if defined is None:
            importlib.import_module(module)
        else:
            names.update(defined)
    return sorted(names | set(METHODS))


def get_method(name: str) -> type[Method]:
    """The method class called ``name``, importing the module that defines it on first lookup."""
    if name not in METHODS:
        modules = method_modules()
        for module, defined in modules.items():
            if defined is not None and name in defined:
                importlib.import_module(module)
        if name not in METHODS:  # a module whose method names are computed: import them all
            for module, defined in modules.items():
                if defined is None:
                    importlib.import_module(module)
    if name not in METHODS:
        raise UserError(f"unknown quantization method {name!r}; methods: {', '.join(method_names())}")
    return METHODS[name]
