"""`stylecam install-desktop`: the app in the desktop's applications menu.

On Linux (any freedesktop.org desktop) it writes the desktop entry to ``$XDG_DATA_HOME/applications``
and the icon to ``$XDG_DATA_HOME/icons/hicolor/256x256/apps``, with ``Exec`` naming this installation's
own ``stylecam`` (a pipx or venv install is rarely on the desktop session's PATH). Elsewhere there is
no such folder: :func:`other_os_help` says what to do instead.
"""
from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from .paths import ASSETS_DIR

DESKTOP_FILE = "stylecam.desktop"  # the name the app gives Qt (setDesktopFileName), so windows match it
ICON_SIZE = "256x256"
ICON_NAME = "stylecam"


@dataclass(frozen=True)
class DesktopFiles:
    entry: Path
    icon: Path
    command: str  # the Exec line's command


def freedesktop() -> bool:
    """Whether this OS keeps applications as XDG desktop entries (Linux and the BSDs)."""
    return sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd"))


def stylecam_command() -> list[str]:
    """How to start this installation's stylecam: its console script beside the interpreter (venv,
    pipx), else the one on PATH, else ``python -m stylecam``."""
    script = Path(sys.executable).parent / ("stylecam.exe" if sys.platform == "win32" else "stylecam")
    if script.is_file():
        return [str(script)]
    found = shutil.which("stylecam")
    return [found] if found else [sys.executable, "-m", "stylecam"]


def exec_quote(arg: str) -> str:
    """One argument of a desktop entry's Exec key (Desktop Entry Specification, "The Exec key"):
    quoted when it holds a reserved character, then the string value's own backslash escape."""
    if any(c in arg for c in ' \t\n"\'\\><~|&;$*?#()`'):
        for c in '\\"`$':
            arg = arg.replace(c, "\\" + c)
        arg = f'"{arg}"'
    return arg.replace("\\", "\\\\").replace("%", "%%")


def desktop_files(data_home: Path | None = None) -> DesktopFiles:
    home = data_home or platformdirs.user_data_path()  # $XDG_DATA_HOME or ~/.local/share
    command = " ".join(exec_quote(a) for a in [*stylecam_command(), "gui"])
    return DesktopFiles(entry=home / "applications" / DESKTOP_FILE,
                        icon=home / "icons" / "hicolor" / ICON_SIZE / "apps" / f"{ICON_NAME}.png", command=command)


def desktop_entry(command: str) -> str:
    """The shipped desktop entry (assets/stylecam.desktop) with ``Exec`` set to ``command``."""
    lines = (ASSETS_DIR / DESKTOP_FILE).read_text(encoding="utf-8").splitlines()
    return "\n".join(f"Exec={command}" if line.startswith("Exec=") else line for line in lines) + "\n"


def install_desktop(data_home: Path | None = None) -> DesktopFiles:
    """Write the desktop entry and the icon (replacing an older pair); returns where they went."""
    files = desktop_files(data_home)
    files.entry.parent.mkdir(parents=True, exist_ok=True)
    files.icon.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ASSETS_DIR / "icon.png", files.icon)
    tmp = files.entry.with_suffix(".tmp")
    tmp.write_text(desktop_entry(files.command), encoding="utf-8")
    tmp.replace(files.entry)  # a menu that watches the folder never reads half a file
    return files


def remove_desktop(data_home: Path | None = None) -> list[Path]:
    """Delete what install_desktop wrote; returns what was there."""
    files = desktop_files(data_home)
    removed = [p for p in (files.entry, files.icon) if p.is_file()]
    for p in removed:
        p.unlink()
    return removed


def other_os_help() -> str:
    """One line: how to put stylecam in this OS's menu by hand."""
    command = " ".join(stylecam_command())
    if sys.platform == "win32":
        return (f"install-desktop writes Linux menu entries; on Windows make a shortcut instead (right-click the "
                f"desktop > New > Shortcut, target: {command} gui), then pin it to Start")
    if sys.platform == "darwin":
        return (f"install-desktop writes Linux menu entries; on macOS make an app with Automator instead (New > "
                f"Application > Run Shell Script: {command} gui), save it to Applications, then drag it to the Dock")
    return f"install-desktop knows only freedesktop.org menus (Linux, BSD); start the app with: {command} gui"
