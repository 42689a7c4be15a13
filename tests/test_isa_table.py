"""One table of int8 instruction classes serves the kernel class (cache keys, gate baselines), the
target of an ``isa: auto`` recipe and NNCF's ``auto`` overflow fix; their values are pinned here."""

import pytest

from sst2bench.provenance import INT8_ISAS, isa_class
from sst2bench.quantization.isa import detect_target
from sst2bench.quantization.nncf_openvino import overflow_fix_for

# Strings that are part of cache keys and baseline file names: changing one re-makes models and orphans baselines.
PINNED = {
    "amx_int8": ("amx", "amx", "disable"),
    "avx512_vnni": ("avx512-vnni", "avx512_vnni", "disable"),
    "avx_vnni": ("avx-vnni", "avx512_vnni", "disable"),
    "avx512bw": ("avx512", "avx512", "first_layer"),
    "avx2": ("avx2", "avx2", "first_layer"),
    None: ("generic", "avx2", "first_layer"),
}


@pytest.mark.parametrize("best_flag", list(PINNED))
def test_a_cpu_resolves_to_its_best_class_in_every_consumer(best_flag):
    # Every weaker flag is present too, as on a real CPU: the best one decides.
    flags = [isa.flag for isa in INT8_ISAS]
    present = flags[flags.index(best_flag) :] if best_flag else []
    cpu = {"model": "fake", "isa": {flag: flag in present for flag in flags}}
    assert (isa_class(cpu), detect_target(cpu), overflow_fix_for(cpu["isa"])) == PINNED[best_flag]


def test_the_report_lists_every_class_of_the_table():
    from sst2bench.report import int8_instructions

    listed = int8_instructions({"isa": {"avx2": True, "avx_vnni": True}})
    assert listed == "AVX2 yes, AVX-512BW no, AVX-VNNI yes, AVX-512 VNNI no, AMX-INT8 no (int8 kernel class avx-vnni)"
