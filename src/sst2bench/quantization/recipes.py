"""A recipe: a name, a method, that method's config and (static methods) a calibration config.

A recipe is everything that decides the int8 model, so two runs with equal recipes give equal
models, and the recipe is saved beside the model it made (``to_dict``). Recipes are written with
flat field names (params' ``quantize.overrides``, ``preset(name, **fields)``,
``recipe.replace(**fields)``): ``calibration`` and ``calibration_*``, ``percentile``, ``num_bins``
and ``num_quantized_bins`` go to the calibration config, the rest to the method's config, and a
field the method does not have is an error. Reading ``recipe.<flat name>`` gives its value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from ..errors import UserError
from .base import CalibrationConfig, ConfigError, MethodConfig, field_names, get_method, non_defaults

# Flat recipe field -> CalibrationConfig field.
CALIBRATION_FIELDS = {
    "calibration": "method",
    "calibration_samples": "samples",
    "calibration_batch_size": "batch_size",
    "calibration_max_length": "max_length",
    "calibration_seed": "seed",
    "calibration_padding": "padding",
    "calibration_composition": "composition",
    "percentile": "percentile",
    "num_bins": "num_bins",
    "num_quantized_bins": "num_quantized_bins",
}


def flat_fields(method: str) -> tuple[str, ...]:
    """The flat field names a recipe of ``method`` takes (besides ``name``)."""
    kind = get_method(method)
    calibration = [flat for flat, field in CALIBRATION_FIELDS.items() if field in kind.calibration_fields] if kind.is_static else []
    return field_names(kind.config_class) + tuple(calibration)


@dataclass(frozen=True)
class Recipe:
    """How to turn the fp32 ONNX graph into int8."""

    name: str
    method: str
    config: MethodConfig
    calibration: CalibrationConfig | None = None

    def __post_init__(self):
        kind = get_method(self.method)
        if type(self.config) is not kind.config_class:
            raise UserError(
                f"recipe {self.name!r}: method {self.method} takes a {kind.config_class.__name__}, not a {type(self.config).__name__}"
            )
        if not kind.is_static and self.calibration is not None:
            raise UserError(f"recipe {self.name!r}: method {self.method} is dynamic and takes no calibration")
        if kind.is_static and self.calibration is None:
            object.__setattr__(self, "calibration", CalibrationConfig())
        if self.calibration is not None:
            unread = [f for f in non_defaults(self.calibration) if f not in kind.calibration_fields]
            if unread:
                raise UserError(
                    f"recipe {self.name!r}: method {self.method} does not read calibration {', '.join(unread)} (it reads {', '.join(kind.calibration_fields)})"
                )
            conflict = kind.calibration_conflict(self.config, self.calibration)
            if conflict:
                raise UserError(f"recipe {self.name!r}: {conflict}")

    # ------------------------------------------------------------------ flat construction

    @classmethod
    def build(cls, name: str, method: str, **values) -> Recipe:
        """A recipe from flat field names: ``Recipe.build("x", "ort-static", quant_format="QDQ")``."""
        kind = get_method(method)
        config, calibration = _route(name, method, values)
        with _named(name):
            return cls(name, method, kind.config_class(**config), CalibrationConfig(**calibration) if kind.is_static else None)

    def replace(self, **values) -> Recipe:
        """This recipe with flat fields (and ``name``) changed, validated again."""
        name = values.pop("name", self.name)
        if values.get("method", self.method) != self.method:
            raise UserError(f"recipe {name!r}: a recipe's method cannot be replaced; build a new recipe with Recipe.build")
        values.pop("method", None)
        config, calibration = _route(name, self.method, values)
        with _named(name):
            return Recipe(
                name, self.method, replace(self.config, **config), replace(self.calibration, **calibration) if self.calibration else None
            )

    def flat(self) -> dict:
        """``{flat field: value}``: what ``build`` takes to make this recipe again."""
        values = {"name": self.name, "method": self.method, **{f.name: getattr(self.config, f.name) for f in fields(self.config)}}
        if self.calibration is not None:
            reads = get_method(self.method).calibration_fields
            values.update({flat: getattr(self.calibration, field) for flat, field in CALIBRATION_FIELDS.items() if field in reads})
        return values

    def __getattr__(self, field: str):
        """Flat read access (``recipe.max_trials``, ``recipe.calibration_samples``)."""
        if field.startswith("_") or "config" not in self.__dict__:
            raise AttributeError(field)
        config, calibration = self.__dict__["config"], self.__dict__.get("calibration")
        if calibration is not None and field in CALIBRATION_FIELDS:
            return getattr(calibration, CALIBRATION_FIELDS[field])
        if field in field_names(type(config)):
            return getattr(config, field)
        raise AttributeError(f"recipe {self.__dict__.get('name')!r}: {field} is not a field of method {self.__dict__.get('method')}")

    # ------------------------------------------------------------------ what the method decides

    @property
    def is_static(self) -> bool:
        return get_method(self.method).is_static

    @property
    def needs_tuning(self) -> bool:
        """Whether the recipe scores candidates on a labelled tuning split (INC's accuracy-aware
        tuning, the mixed-precision search): then the tuning split is one of its inputs."""
        return get_method(self.method).uses_tuning(self.config)

    def to_dict(self) -> dict:
        """JSON-able: ``{"name", "method", "config": {...}, "calibration": {...} or None}``."""

        def plain(config) -> dict:
            return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}

        return {
            "name": self.name,
            "method": self.method,
            "config": plain(self.config),
            "calibration": plain(self.calibration) if self.calibration else None,
        }

    @classmethod
    def from_dict(cls, values: dict) -> Recipe:
        """From ``to_dict``'s nested form, or from flat fields (``{"name", "method", **fields}``)."""
        values = dict(values)
        name, method = values.pop("name", None), values.pop("method", None)
        if not isinstance(name, str) or not isinstance(method, str):
            raise UserError(f"recipe {name!r}: a recipe needs a name and a method")
        if "config" in values:
            config, calibration = values.pop("config"), values.pop("calibration", None)
            kind = get_method(method)
            unknown = sorted(set(values)) + [f"config.{k}" for k in config if k not in field_names(kind.config_class)]
            unknown += [f"calibration.{k}" for k in (calibration or {}) if k not in field_names(CalibrationConfig)]
            if unknown:
                raise UserError(f"recipe {name!r}: unknown fields {unknown} for method {method}")
            with _named(name):
                return cls(name, method, kind.config_class(**config), CalibrationConfig(**calibration) if calibration is not None else None)
        unknown = set(values) - set(flat_fields(method))
        if unknown:
            raise UserError(
                f"recipe {name!r}: unknown fields {sorted(unknown)} for method {method} (fields: {', '.join(flat_fields(method))})"
            )
        return cls.build(name, method, **values)


def _route(name: str, method: str, values: dict) -> tuple[dict, dict]:
    """Split flat fields into (method config fields, calibration fields); any other is an error."""
    known = flat_fields(method)
    unknown = [field for field in values if field not in known]
    if unknown:
        verb = "is not a field" if len(unknown) == 1 else "are not fields"
        why = (
            " (a dynamic method takes no calibration)"
            if not get_method(method).is_static and set(unknown) & set(CALIBRATION_FIELDS)
            else ""
        )
        raise UserError(f"recipe {name!r}: {', '.join(unknown)} {verb} of method {method}{why} (fields: {', '.join(known)})")
    config = {k: v for k, v in values.items() if k not in CALIBRATION_FIELDS}
    calibration = {CALIBRATION_FIELDS[k]: v for k, v in values.items() if k in CALIBRATION_FIELDS}
    return config, calibration


class _named:
    """Re-raise a ``ConfigError`` (or a bad keyword) as a ``UserError`` naming the recipe."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if isinstance(error, ConfigError):
            raise UserError(f"recipe {self.name!r}: {error}") from None
        return False
