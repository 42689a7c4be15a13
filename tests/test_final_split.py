"""The final split: read by the final stage alone, after every choice, and checked by its sha256."""

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from sst2bench.config import run_config_from_dict
from sst2bench.errors import UserError

_OPENED: list[list[str]] = []


def _record_opens(event: str, args: tuple) -> None:
    if _OPENED and event == "open" and isinstance(args[0], str | bytes):
        _OPENED[-1].append(args[0].decode() if isinstance(args[0], bytes) else args[0])


sys.addaudithook(_record_opens)  # an audit hook cannot be removed: it records only inside files_opened()


@contextmanager
def files_opened() -> Iterator[list[str]]:
    """Every path this process opens inside the block through Python's ``open`` or ``os.open`` (an audit
    hook); a C++ library that opens files itself (Arrow) is not seen, and no stage reads the TSV so."""
    _OPENED.append([])
    try:
        yield _OPENED[-1]
    finally:
        _OPENED.pop()


def final_run(model_dir, final_file, **final):
    return run_config_from_dict(
        {
            "run": "final",
            "model": {"kind": "local", "path": str(model_dir)},
            "final_test": {"name": "final", "source": str(final_file), "limit": 30, **final},
        }
    )


def test_a_final_split_with_another_checksum_stops_and_a_missing_one_is_skipped(sst2_project, tmp_path, final_file, monkeypatch):
    from sst2bench.stages import accuracy as accuracy_stage

    monkeypatch.setattr(accuracy_stage, "score_all", lambda *args, **kwargs: pytest.fail("scored a file it should have refused"))
    cfg = final_run(tmp_path, final_file, sha256="0" * 64)
    with pytest.raises(UserError, match="sha256 .* but params expect 0{64}"):
        accuracy_stage.score_set(cfg, [], cfg.final_test, progress=False)
    missing = final_run(tmp_path, tmp_path / "nowhere.tsv")
    found = accuracy_stage.score_set(missing, [], missing.final_test, progress=False)
    assert found.status == "skipped" and "nowhere.tsv does not exist" in found.reason
    with pytest.raises(UserError, match="sha256 must be 64"):
        final_run(tmp_path, final_file, sha256="abc")
    hub = run_config_from_dict({"run": "final", "final_test": {"name": "final", "source": "nyu-mll/glue", "sha256": "0" * 64}})
    with pytest.raises(UserError, match="sha256 checks a file"):
        accuracy_stage.score_set(hub, [], hub.final_test, progress=False)
