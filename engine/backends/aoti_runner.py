"""An AOTInductor package's model, run through the package's own C interface by ctypes, so the GIL is free
while it runs.

PyTorch's loader (``torch._C._aoti.AOTIModelPackageLoader.run``) holds the GIL for the whole forward
(pytorch/pytorch#197516): with the int8 network rendering keyframes on its thread, the display loop's
Python got one turn per render (AMD EPYC Zen 5, 640×480: a 1 ms loop ran every 53 ms, 16.6 FPS shown
against 30.2 with OpenVINO). ctypes drops the GIL for a foreign call; the interface is the one PyTorch's
C++ runner uses (``aoti_runtime/interface.h``): input handles are stolen, output handles handed over.
"""
from __future__ import annotations

import ctypes
import shutil
import tempfile
import weakref
import zipfile
from pathlib import Path

_void_p = ctypes.c_void_p


def _capsule_functions():
    """PyTorch hands tensor handles to Python as nameless capsules (void*)."""
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = _void_p, [ctypes.py_object, ctypes.c_char_p]
    new = ctypes.pythonapi.PyCapsule_New
    new.restype, new.argtypes = ctypes.py_object, [_void_p, ctypes.c_char_p, _void_p]
    return get, new


class AotiRunner:
    """``runner([tensors]) → [tensors]``, like the loader's ``run``, for a CPU package whose weights live in
    its one shared library (what ``aoti_compile_and_package`` makes for a small network). Raises
    ``ValueError`` for any other package, ``OSError`` where the library will not load: the caller then
    uses PyTorch's loader."""

    def __init__(self, package: Path, torch):
        self._aoti = torch._C._aoti
        try:
            archive = zipfile.ZipFile(package)
        except zipfile.BadZipFile as exc:
            raise ValueError(f"{package.name}: {exc}") from None
        with archive as z:
            libraries = [n for n in z.namelist() if n.endswith(".so") and "/data/aotinductor/model/" in n]
            weights = [n for n in z.namelist() if "/data/weights/" in n or "/data/constants/" in n]
            if len(libraries) != 1 or weights:
                raise ValueError(f"{package.name}: {len(libraries)} model libraries, {len(weights)} weight files")
            folder = tempfile.mkdtemp(prefix="stylecam-aoti-")
            try:
                lib = ctypes.CDLL(z.extract(libraries[0], folder))
            finally:
                shutil.rmtree(folder, ignore_errors=True)  # mapped: the file is not needed once loaded
        lib.AOTInductorModelContainerCreateWithDevice.argtypes = [_void_p, ctypes.c_size_t, ctypes.c_char_p,
                                                                   ctypes.c_char_p]
        lib.AOTInductorModelContainerRun.argtypes = [_void_p, _void_p, ctypes.c_size_t, _void_p, ctypes.c_size_t,
                                                     _void_p, _void_p]
        lib.AOTInductorModelContainerGetNumOutputs.argtypes = [_void_p, _void_p]
        lib.AOTInductorModelContainerDelete.argtypes = [_void_p]
        handle = _void_p()
        if lib.AOTInductorModelContainerCreateWithDevice(ctypes.byref(handle), 1, b"cpu", None) != 0:
            raise ValueError(f"{package.name}: the model container could not be created")
        count = ctypes.c_size_t()
        lib.AOTInductorModelContainerGetNumOutputs(handle, ctypes.byref(count))
        self._lib, self._handle, self._outputs = lib, handle, count.value
        self._get, self._new = _capsule_functions()
        self._finalizer = weakref.finalize(self, lib.AOTInductorModelContainerDelete, handle)

    def __call__(self, tensors: list) -> list:
        inputs = [self._get(c, None) for c in self._aoti.unsafe_alloc_void_ptrs_from_tensors(tensors)]
        outputs = (_void_p * self._outputs)()
        error = self._lib.AOTInductorModelContainerRun(self._handle, (_void_p * len(inputs))(*inputs), len(inputs),
                                                       outputs, self._outputs, None, None)
        if error != 0:
            raise RuntimeError("the compiled model failed (AOTInductor run error)")
        return self._aoti.alloc_tensors_by_stealing_from_void_ptrs([self._new(p, None, None) for p in outputs])

    def close(self) -> None:
        self._finalizer()
