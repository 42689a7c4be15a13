"""Run parameters: ``params/<run>.yaml`` mapped onto validated dataclasses.

A run is one model, its data, the recipes to quantize it with and the benchmark settings.
Unknown keys are errors, so a typo in a YAML file never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .data import DATA_SOURCES, TuningConfig
from .errors import UserError
from .latency import LatencyConfig
from .paths import project_root
from .quantization import PRESETS, Recipe, preset
from .standin import FinetuneConfig
from .systems import InferenceConfig

MODEL_KINDS = ("standin", "hub", "local")


@dataclass
class ModelConfig:
    """The fp32 model: the offline stand-in (built here), a Hub model at a pinned revision, or a local folder."""

    kind: str = "standin"
    hub_id: str = ""
    revision: str = "main"
    path: str = ""
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise UserError(f"model.kind must be one of {MODEL_KINDS}, not {self.kind!r}")
        if self.kind == "hub" and not self.hub_id:
            raise UserError("model.kind 'hub' needs model.hub_id")
        if self.kind == "local" and not self.path:
            raise UserError("model.kind 'local' needs model.path (a transformers model folder)")


@dataclass
class ReferenceConfig:
    """Intel's published int8 ONNX model, compared as one more system when the Hub is reachable."""

    hub_id: str = ""
    revision: str = "main"
    file_name: str = "model.onnx"


@dataclass
class DataConfig:
    source: str = "auto"
    # The Hub dataset's revision (a commit sha, or a branch) when SST-2 comes from the Hub.
    revision: str = "main"
    eval_split: str = "validation"
    # Score only the first N examples (0 = all); for quick runs.
    eval_limit: int = 0
    # Where accuracy-aware choices are made (never on the reported split unless source is validation).
    tuning: TuningConfig = field(default_factory=TuningConfig)

    def __post_init__(self):
        if self.source not in DATA_SOURCES:
            raise UserError(f"data.source must be auto, tsv or hub, not {self.source!r}")
        if self.eval_split not in ("validation", "train"):
            raise UserError("data.eval_split must be validation or train (test has no labels)")
        if self.eval_limit < 0:
            raise UserError("data.eval_limit must be 0 (all) or positive")


@dataclass
class EvalSetConfig:
    """A labelled set every system is scored on besides SST-2: a CSV, TSV (read with quoting off),
    JSONL or Parquet file (a relative path is read from the project root) or a `datasets` Hub id."""

    name: str
    source: str
    text_column: str = "sentence"
    label_column: str = "label"
    # Raw label value -> NEGATIVE/POSITIVE (or 0/1); empty when the labels already are 0/1.
    label_map: dict = field(default_factory=dict)
    # For a Hub id: its config, split and revision.
    config: str | None = None
    split: str | None = None
    revision: str | None = None
    # Score only the first N examples (0 = all).
    limit: int = 0
    # A file's expected sha256: a file that differs stops the stage (empty = not checked).
    sha256: str = ""

    def __post_init__(self):
        if self.sha256 and (len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256)):
            raise UserError(f"evaluation set {self.name!r}: sha256 must be 64 lower-case hex digits")
        if not self.name or not all(c.isalnum() or c in "-_" for c in self.name):
            raise UserError(f"evaluation set name {self.name!r}: use letters, digits, - and _ (it names files)")
        if self.name == "tuning":
            raise UserError("evaluation set name 'tuning' is taken by the run's tuning split; choose another")
        if self.limit < 0:
            raise UserError(f"evaluation set {self.name!r}: limit must be 0 (all) or positive")


@dataclass
class CalibrationStudyConfig:
    """How much calibration data, and which kind, a static recipe needs: ``recipe`` recalibrated with
    each of ``sizes`` sentences of each ``compositions`` (see CalibrationConfig.composition), each
    model scored on the tuning split's tune part beside fp32 ONNX Runtime on the exported graph
    (the fused fp32 graph scores the same within the export check's tolerance)."""

    recipe: str = "ort-static-qop-fused-rr"
    sizes: list[int] = field(default_factory=lambda: [32, 128, 512])
    compositions: list[str] = field(default_factory=lambda: ["sentences", "rows"])

    def __post_init__(self):
        from .quantization import get_method
        from .quantization.base import CALIBRATION_COMPOSITIONS

        if (
            self.recipe not in PRESETS
            or not preset(self.recipe).is_static
            or get_method(preset(self.recipe).method).backend != "onnxruntime"
        ):
            raise UserError(
                f"quantize.calibration_study.recipe must name a static ONNX Runtime preset (its models are scored as ONNX graphs), not {self.recipe!r}"
            )
        if not self.sizes or any(not isinstance(n, int) or n < 1 for n in self.sizes) or len(set(self.sizes)) != len(self.sizes):
            raise UserError(f"quantize.calibration_study.sizes must be distinct positive integers, not {self.sizes}")
        if not self.compositions or not set(self.compositions) <= set(CALIBRATION_COMPOSITIONS):
            raise UserError(f"quantize.calibration_study.compositions must be some of {CALIBRATION_COMPOSITIONS}, not {self.compositions}")

    def recipes(self, base: Recipe) -> list[Recipe]:
        """``base`` at every size and composition, named ``<recipe>@cal<size>-<composition>``."""
        return [
            base.replace(name=f"{base.name}@cal{size}-{kind}", calibration_samples=size, calibration_composition=kind)
            for kind in self.compositions
            for size in self.sizes
        ]


@dataclass
class QuantizeConfig:
    recipes: list[str] = field(default_factory=lambda: list(PRESETS))
    # Per-recipe field changes with flat field names, e.g. {"inc-static": {"max_trials": 5,
    # "calibration_samples": 64}}; a field the recipe's method does not have is an error.
    overrides: dict[str, dict] = field(default_factory=dict)
    threads: int = 2
    # Each static recipe is also calibrated with these seeds (besides its own) and scored, to show
    # the spread of its count over calibration samples; empty = the recipe's own seed only.
    calibration_seeds: list[int] = field(default_factory=list)
    # The calibration size × composition study on the tune part; null (the default) runs none, and the report says so.
    calibration_study: CalibrationStudyConfig | None = None

    def __post_init__(self):
        unknown = [name for name in list(self.recipes) + list(self.overrides) if name not in PRESETS]
        if unknown:
            raise UserError(f"quantize: unknown recipes {unknown}; presets: {', '.join(PRESETS)}")
        if len(set(self.calibration_seeds)) != len(self.calibration_seeds) or not all(
            isinstance(seed, int) and seed >= 0 for seed in self.calibration_seeds
        ):
            raise UserError(f"quantize.calibration_seeds must be distinct non-negative integers, not {self.calibration_seeds}")
        for name, changes in self.overrides.items():  # fail on load, not mid-run
            preset(name, **changes)

    def recipe_objects(self) -> list[Recipe]:
        return [preset(name, **self.overrides.get(name, {})) for name in self.recipes]

    def seed_variants(self, recipe: Recipe) -> list[Recipe]:
        """``recipe`` calibrated with each other seed of ``calibration_seeds``, named ``<recipe>@seed<N>`` (none if dynamic)."""
        if not recipe.is_static:
            return []
        return [
            recipe.replace(name=f"{recipe.name}@seed{seed}", calibration_seed=seed)
            for seed in self.calibration_seeds
            if seed != recipe.calibration_seed
        ]


@dataclass
class QuickConfig:
    """What ``--quick`` changes (``make check``, smoke runs): latency settings replaced key by key,
    and fewer endpoint requests. Recipes and accuracy are never shortened."""

    latency: dict = field(
        default_factory=lambda: {
            "batch_sizes": [1],
            "paddings": ["dynamic"],
            "threads": [1],
            "samples": 16,
            "iterations": 10,
            "duration_s": 2.0,
        }
    )
    # Sentences sent to the remote endpoint in a quick run.
    endpoint_examples: int = 20

    def __post_init__(self):
        _build(LatencyConfig, {**dataclasses.asdict(LatencyConfig()), **self.latency}, "quick.latency")
        if self.endpoint_examples < 1:
            raise UserError("quick.endpoint_examples must be at least 1")


@dataclass
class CloudflareConfig:
    enabled: bool = True
    model: str = "@cf/huggingface/distilbert-sst-2-int8"
    base_url: str = "https://api.cloudflare.com/client/v4"
    requests_per_minute: int = 600
    concurrency: int = 4
    # Examples sent (0 = all of the eval split).
    limit: int = 0

    def __post_init__(self):
        from .cloudflare.client import ClientConfig

        ClientConfig(base_url=self.base_url, model=self.model, requests_per_minute=self.requests_per_minute, concurrency=self.concurrency)
        if self.limit < 0:
            raise UserError("cloudflare.limit must be 0 (all) or positive")


@dataclass
class CheckConfig:
    """Rules of ``sst2bench check`` (see check.py): a relative floor, agreement with fp32 and a budget of newly wrong examples."""

    # Each int8 system keeps at least this share of fp32's correct count (Intel's and MLPerf's 99 %).
    min_relative_accuracy: float = 0.99
    # Examples a system may get wrong that it got right in the baseline (gross, not net).
    max_newly_wrong: int = 2
    # Optional floor on int8/fp32 speed ratio at batch 1 (ratios only); 0 = no latency rule.
    min_speedup: float = 0.0
    # The recommendation's second rule: the system predicts fp32's label on at least this share of examples.
    min_agreement: float = 0.99
    # The gate's agreement rule: each int8 system predicts fp32's label (same run) on at least this share of the gated split.
    min_fp32_agreement: float = 0.98

    def __post_init__(self):
        if not 0 < self.min_relative_accuracy <= 1:
            raise UserError("check.min_relative_accuracy must be in (0, 1]")
        if not 0 < self.min_agreement <= 1 or not 0 < self.min_fp32_agreement <= 1:
            raise UserError("check.min_agreement and check.min_fp32_agreement must be in (0, 1]")
        if self.max_newly_wrong < 0 or self.min_speedup < 0:
            raise UserError("check.max_newly_wrong and check.min_speedup must not be negative")


@dataclass
class RunConfig:
    run: str
    description: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    reference: ReferenceConfig | None = None
    data: DataConfig = field(default_factory=DataConfig)
    quantize: QuantizeConfig = field(default_factory=QuantizeConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    cloudflare: CloudflareConfig = field(default_factory=CloudflareConfig)
    check: CheckConfig = field(default_factory=CheckConfig)
    quick: QuickConfig = field(default_factory=QuickConfig)
    # Other labelled sets (your own data, out-of-domain reviews) scored like SST-2's eval split.
    evaluation_sets: list[EvalSetConfig] = field(default_factory=list)
    # The final split: labelled, read by the final stage alone, after every choice (none = no final section).
    final_test: EvalSetConfig | None = None
    # The long studies, which re-tune or re-calibrate every recipe: quantize.calibration_seeds' copies,
    # and the @val copies and cross-fit folds of data.tuning.also_on_reported. false skips both (their
    # settings stay as written) and the report says which were off.
    studies: bool = True

    def __post_init__(self):
        if not isinstance(self.studies, bool):
            raise UserError(f"studies must be true or false, not {self.studies!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def latency_settings(self, quick: bool = False) -> LatencyConfig:
        """The run's latency settings, with the quick overrides applied when asked."""
        return dataclasses.replace(self.latency, **self.quick.latency) if quick else self.latency

    @property
    def models_dir(self) -> Path:
        return project_root() / "models" / self.run

    @property
    def fp32_dir(self) -> Path:
        # A local model.path is read from the project root (an absolute path stays as it is).
        return project_root() / self.model.path if self.model.kind == "local" else self.models_dir / "fp32"

    @property
    def runs_dir(self) -> Path:
        return project_root() / "runs" / self.run


def _build(cls, values, where: str):
    """Construct nested dataclasses from a dict, naming the YAML path of any unknown key."""
    if values is None:
        return None
    if not isinstance(values, dict):
        raise UserError(f"{where}: expected a mapping, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise UserError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(fields)}")
    kwargs = {}
    for name, value in values.items():
        kind = NESTED.get((cls, name))
        if kind and (cls, name) in LISTS:
            if not isinstance(value, list):
                raise UserError(f"{where}.{name}: expected a list, got {type(value).__name__}")
            kwargs[name] = [_build(kind, item, f"{where}.{name}[{i}]") for i, item in enumerate(value)]
        else:
            kwargs[name] = _build(kind, value, f"{where}.{name}") if kind else value
    try:
        return cls(**kwargs)
    except (TypeError, UserError) as error:
        raise UserError(f"{where}: {error}") from error


NESTED = {
    (RunConfig, "model"): ModelConfig,
    (RunConfig, "reference"): ReferenceConfig,
    (RunConfig, "data"): DataConfig,
    (RunConfig, "quantize"): QuantizeConfig,
    (RunConfig, "inference"): InferenceConfig,
    (RunConfig, "latency"): LatencyConfig,
    (RunConfig, "cloudflare"): CloudflareConfig,
    (RunConfig, "check"): CheckConfig,
    (RunConfig, "quick"): QuickConfig,
    (RunConfig, "evaluation_sets"): EvalSetConfig,
    (RunConfig, "final_test"): EvalSetConfig,
    (ModelConfig, "finetune"): FinetuneConfig,
    (DataConfig, "tuning"): TuningConfig,
    (QuantizeConfig, "calibration_study"): CalibrationStudyConfig,
}
# Fields that hold a list of the nested kind.
LISTS = {(RunConfig, "evaluation_sets")}


def run_config_from_dict(values: dict, where: str = "params") -> RunConfig:
    return _build(RunConfig, values, where)


def load_run(name_or_path: str, params_dir: Path | None = None) -> RunConfig:
    """``params/<name>.yaml`` (or a path to a YAML file) as a RunConfig. A file with ``extends: <run>``
    holds only what differs from that run: its mappings are merged key by key over the run's, any
    other value (a list included) replaces the run's."""
    params_dir = params_dir or project_root() / "params"
    path, values = _run_values(name_or_path, params_dir, ())
    values["run"] = values.get("run") or path.stem
    return run_config_from_dict(values, where=str(path))


def _run_path(name_or_path: str, params_dir: Path) -> Path:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = params_dir / f"{name_or_path}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in params_dir.glob("*.yaml"))
        raise UserError(f"no run {name_or_path!r}: {path} does not exist; runs: {', '.join(available) or 'none'}")
    return path


def _run_values(name_or_path: str, params_dir: Path, chain: tuple[Path, ...]) -> tuple[Path, dict]:
    """The YAML values of a run file with its ``extends`` chain merged in (the file's own ``run`` name only)."""
    import yaml

    path = _run_path(name_or_path, params_dir)
    if path.resolve() in chain:
        raise UserError(f"{path}: 'extends' loops back to itself ({' → '.join(p.stem for p in (*chain, path.resolve()))})")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(values, dict):
        raise UserError(f"{path}: expected a mapping of params, got {type(values).__name__}")
    parent = values.pop("extends", None)
    if parent is None:
        return path, values
    if not isinstance(parent, str):
        raise UserError(f"{path}: extends must name one run, not {parent!r}")
    _, inherited = _run_values(parent, path.parent, (*chain, path.resolve()))
    inherited.pop("run", None)
    return path, _merged(inherited, values)


def _merged(base: dict, changes: dict) -> dict:
    out = dict(base)
    for key, value in changes.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
