"""STYLECAM_CPU=avx2: the int8/bf16 paths disappear from auto and doctor, as on a CPU without them."""
from engine.backends import auto_choice, available_backends, create_single
from stylecam.cli import main
from engine.cpu_tuning import cpu_flags


def test_avx2_profile_hides_int8_and_bf16(monkeypatch, pack, capsys):
    monkeypatch.setenv("STYLECAM_CPU", "avx2")
    assert not any(f.startswith(("avx512", "amx")) or "vnni" in f or "bf16" in f for f in cpu_flags())
    status = available_backends()
    assert "STYLECAM_CPU=avx2" in status["torch-cpu-int8"] and "STYLECAM_CPU=avx2" in status["torch-cpu-bf16"]
    assert auto_choice() not in ("torch-cpu-int8", "torch-cpu-bf16")
    with create_single("auto", pack=pack) as backend:  # what auto really starts
        assert backend.name not in ("torch-cpu-int8", "torch-cpu-bf16")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "cpu_profile: avx2" in out and f"auto picks: {auto_choice()}" in out


def test_native_profile_shows_the_cpu_as_it_is(monkeypatch):
    monkeypatch.delenv("STYLECAM_CPU", raising=False)
    native = cpu_flags()
    monkeypatch.setenv("STYLECAM_CPU", "bogus")  # unknown: a warning, and the CPU as it is
    assert cpu_flags() == native
