"""One content-addressed cache for every artifact the pipeline makes.

An artifact's key is the hash of everything that decides it: the content of its inputs (files or
folders), the params it reads, the source of the code that makes it (the import closure of the
module that makes it, computed from the source, so editing ``report`` never invalidates a
quantized model and editing ``quantization/ort`` does), the versions of the libraries that run,
and, for measurements, the CPU model and its ISA flags. An artifact is stored under its key only
once it is complete, so a failed or partial result is never a hit.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PACKAGE = "sst2bench"
MANIFEST = "manifest.json"
# Files that say how an artifact was made (time taken, provenance), not what it is: a folder's
# content hash leaves them out, so re-making an identical model counts as the same input.
RECORDS = (MANIFEST, "quantization.json")


def digest(data: bytes) -> str:
    """sha256 of bytes, in hex: the one hash every key and content check uses."""
    return hashlib.sha256(data).hexdigest()


def sha256_of(path: Path | str) -> str:
    """sha256 of a file's bytes, read in blocks so a model file never sits in memory whole."""
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def split_digest(split) -> str:
    """sha256 of a labelled split's rows, one ``idx<TAB>sentence<TAB>label`` line each: the checksum
    model cards publish (anyone can recompute it) and how cache keys name the rows a model saw."""
    hasher = hashlib.sha256()
    for row in zip(split["idx"], split["sentence"], split["label"]):
        hasher.update(("\t".join(map(str, row)) + "\n").encode("utf-8"))
    return hasher.hexdigest()


PACKAGE_DIR = Path(__file__).resolve().parent


def module_file(name: str) -> Path | None:
    """The source file of a module of this package (found without importing it), or None for
    anything else: another package, or a name imported from a module rather than a module."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    base = PACKAGE_DIR.joinpath(*name.split(".")[1:])
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imported(name: str, source: Path) -> set[str]:
    """Package modules ``name`` imports anywhere in its source (top level or inside functions)."""
    is_package = source.name == "__init__.py"
    parent = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = parent
            for _ in range(max(0, node.level - 1)):
                base = base.rpartition(".")[0]
            module = ".".join(part for part in (base if node.level else "", node.module or "") if part)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # ``from . import x``
    return {m for m in found if module_file(m) is not None}


def _discovered(name: str, source: Path) -> list[str]:
    """The modules a registry finds at run time: a module that walks its package with
    ``pkgutil.iter_modules`` (method and backend discovery) may import any module beside it."""
    calls = (node.func for node in ast.walk(ast.parse(source.read_text())) if isinstance(node, ast.Call))
    if not any(isinstance(func, ast.Attribute) and func.attr == "iter_modules" for func in calls):
        return []
    package_dir = source.parent
    package = name if source.name == "__init__.py" else name.rpartition(".")[0]
    return [f"{package}.{path.stem}" for path in sorted(package_dir.glob("*.py")) if path.stem != "__init__"]


def import_closure(*names: str, discovered: bool = True) -> list[str]:
    """Every package module reachable by imports from ``names`` (itself included), sorted.

    Parent packages count too, since importing ``a.b`` runs ``a/__init__.py``. With ``discovered``
    the modules a registry may import at run time count too (a pipeline stage may use any method);
    without, only static imports (an artifact names its method's module itself).
    """
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen or module_file(name) is None:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += sorted(_imported(name, module_file(name)))
        if discovered:
            todo += _discovered(name, module_file(name))
    return sorted(seen)


def code_hash(*names: str, discovered: bool = True) -> str:
    """Hash of the source of the import closure of ``names``: the code that makes an artifact."""
    hasher = hashlib.sha256()
    for name in import_closure(*names, discovered=discovered):
        hasher.update(name.encode() + b"\0" + module_file(name).read_bytes() + b"\0")
    return hasher.hexdigest()


@lru_cache(maxsize=256)
def _content_hash(path: str, stamp: tuple) -> str:
    root = Path(path)
    if root.is_file():
        return sha256_of(root)
    parts = [
        (str(p.relative_to(root)), _content_hash(str(p), _stamp(p)))
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name not in RECORDS
    ]
    return digest(json.dumps(parts).encode())


def _stamp(path: Path) -> tuple:
    stat = path.stat()
    return (stat.st_mtime_ns, stat.st_size) if path.is_file() else tuple(_stamp(p) for p in sorted(path.rglob("*")) if p.is_file())


def content_hash(path: Path | str) -> str:
    """sha256 of a file, or of a folder's files (names and contents); remembered while unchanged."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(path)
    return _content_hash(str(path.resolve()), _stamp(path))


def library_versions() -> dict[str, str | None]:
    from .provenance import LIBRARIES, package_versions

    return package_versions(LIBRARIES)


def machine() -> dict:
    """What a measurement depends on besides code and inputs: the CPU's full identity (brand string,
    family, model number, stepping) and its ISA flags."""
    from .provenance import CPU_IDENTITY, cpu_info

    cpu = cpu_info()
    identity = {name: cpu[name] for name in CPU_IDENTITY.values() if name in cpu}
    return {"cpu": cpu["model"], **identity, "isa": sorted(flag for flag, present in cpu["isa"].items() if present)}


@dataclass(frozen=True)
class CacheKey:
    """Everything that decides an artifact; its digest is where the artifact is stored."""

    kind: str
    code: str
    inputs: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    libraries: dict = field(default_factory=dict)
    machine: dict = field(default_factory=dict)

    @classmethod
    def make(
        cls, kind: str, producer: str | tuple[str, ...], inputs: dict | None = None, params: dict | None = None, measured: bool = False
    ) -> CacheKey:
        """``producer`` is the module (or modules) that make the artifact; ``inputs`` maps names to paths."""
        return cls(
            kind=kind,
            code=code_hash(*((producer,) if isinstance(producer, str) else producer), discovered=False),
            inputs={name: content_hash(path) for name, path in sorted((inputs or {}).items())},
            params=json.loads(json.dumps(params or {}, sort_keys=True, default=str)),
            libraries=library_versions(),
            machine=machine() if measured else {},
        )

    @property
    def digest(self) -> str:
        return digest(json.dumps(self.__dict__, sort_keys=True).encode())


class ArtifactCache:
    """Artifacts in ``root/<kind>/<digest>/``, each with a manifest written last."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def path(self, key: CacheKey) -> Path:
        return self.root / key.kind / key.digest[:24]

    def lookup(self, key: CacheKey) -> Path | None:
        """The artifact's folder when a complete one is stored under this key, unchanged since it
        was made (people reach artifacts through links, and an edited one is no longer a hit)."""
        folder = self.path(key)
        manifest = folder / MANIFEST
        if not manifest.is_file():
            return None
        stored = json.loads(manifest.read_text())
        return folder if stored.get("key") == key.digest and stored.get("content") == content_hash(folder) else None

    def get_or_make(self, key: CacheKey, make: Callable[[Path], dict | None]) -> tuple[Path, bool]:
        """The stored artifact, or ``make(folder)`` into a scratch folder moved into place when it
        returns; if it raises, nothing is stored. Returns (folder, whether it was a hit)."""
        found = self.lookup(key)
        if found is not None:
            return found, True
        target = self.path(key)
        scratch = target.with_name(f".{target.name}.{os.getpid()}.partial")
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        try:
            extra = make(scratch) or {}
            manifest = {"key": key.digest, "content": content_hash(scratch), "made": time.time(), "parts": key.__dict__, **extra}
            (scratch / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
            shutil.rmtree(target, ignore_errors=True)
            scratch.rename(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return target, False
