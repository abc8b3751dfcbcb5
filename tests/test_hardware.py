"""The processor description is read from /proc/cpuinfo at run time, x86 and Arm alike."""

from rnnkit import hardware

X86 = """processor\t: 0
model name\t: Example Xeon
flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16 amx_tile
"""
ARM = """processor\t: 0
Features\t: fp asimd sve bf16
Model\t: Example Board
"""


def _with(monkeypatch, text):
    monkeypatch.setattr(hardware, "_cpuinfo", lambda: text)


def test_x86_model_and_flags(monkeypatch):
    _with(monkeypatch, X86)
    assert hardware.cpu_model() == "Example Xeon"
    assert {"amx_bf16", "avx512_bf16"} <= hardware.cpu_flags()
    line = hardware.describe()
    assert line.startswith("Example Xeon; flags: amx_bf16 amx_tile avx512_bf16 avx512f avx2")
    assert "sse2" not in line  # only the flags that pick a path are printed


def test_arm_features_and_unknown(monkeypatch):
    _with(monkeypatch, ARM)
    assert hardware.cpu_flags() >= {"asimd", "sve", "bf16"}
    assert hardware.cpu_model() == "Example Board"
    _with(monkeypatch, "")
    assert hardware.cpu_flags() == set()
    assert "none of note" in hardware.describe()
