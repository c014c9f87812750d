"""Typed errors. Each message says what was received and what was expected; only the CLI's
``main()`` turns them into one stderr line and exit code 2."""


class StylecamError(Exception):
    """Base for every error a user can cause or fix."""


class InputError(StylecamError):
    """A bad argument: size, style spec, strength, path kind."""


class StyleError(InputError):
    """An unknown style name/id or a malformed blend spec."""


class SourceError(StylecamError):
    """A camera that is missing or a file that cannot be read."""


class SourceLost(SourceError):
    """A live source stopped delivering frames (unplugged camera); it may come back."""


class ModelError(StylecamError):
    """A missing or corrupt model file."""


class BackendUnavailable(StylecamError):
    """A backend cannot run here (library or hardware missing)."""


class SinkError(StylecamError):
    """An output that cannot be opened or written."""


class MissingExtra(StylecamError):
    """A part of stylecam installed only with an extra (``stylecam[gui]``, ``[vcam]``, ``[train]``, ...)."""

    def __init__(self, what: str, extra: str, then: str = ""):
        """``what``: what is missing, as a user sees it; ``then``: a further step after the install."""
        super().__init__(f"{what}: {install_hint(extra)}{then}")
        self.extra = extra


def install_hint(extra: str) -> str:
    """The command that installs an extra, as a user who did not clone the repo types it."""
    return f"pip install 'stylecam[{extra}]'"
