"""Which level (render scale, network) the frames run at, and the builds behind it.

The governor says what it wants from frame times; this takes a wish only when the level's compiled
models run now, builds it aside otherwise (frames go on at the level in use), steps down at once on the
stand-in, and once the session has been steady a while builds the rest of the ladder in the build
process. It sits beside the governor, out of the frame loop; the pipeline asks it once per frame.
"""
from __future__ import annotations

import logging
import time
from typing import Optional

import numpy as np

from .. import defaults
from ..backends.networks import NetworkBackends
from ..frame.frames import scaled_shape
from .governor import Governor, Level

log = logging.getLogger(__name__)


class LevelScheduler:
    """The governor (None: full quality) and what its levels need built; ``build_aside``: live use,
    where a level that is not built builds on a thread while the frames run (False: files, bench)."""

    def __init__(self, governor: Optional[Governor], build_aside: bool):
        self.governor = governor
        self.build_aside = build_aside
        self.steady_since = time.monotonic()  # no change of look, network or level since then
        self._prebuilt: set = set()  # (frame shape, catalog) whose ladder was handed to the build process
        self._warming: Optional[tuple] = None  # (build threads, level, shape, level then) while a level builds aside
        self._key_built: set = set()  # (shape, light) whose build for keyframes was asked for

    def changed(self) -> None:
        """A new look, source or level: the steady clock starts again (the ladder prebuilds only when steady)."""
        self.steady_since = time.monotonic()

    def new_governor(self, governor: Optional[Governor]) -> None:
        self.governor = governor
        self._warming = None

    def new_backend(self) -> None:
        """The sizes the old backend had built mean nothing to the new one: a compiled one builds a new
        level aside again instead of on a frame."""
        self._warming = None
        self._key_built.clear()
        self.changed()

    # -- the level a frame runs at -------------------------------------------------------------------
    def light_for(self, backend: NetworkBackends, weights: np.ndarray, frame_shape: Optional[tuple]) -> bool:
        """Tell the governor whether this style has a lighter network; whether to run on it now. When a
        new style's ladder moves the level, a level whose models are not built yet builds aside while
        the nearest cheaper level that is ready runs (a stand-in at the wanted one would be slower)."""
        governor = self.governor
        if governor is None:
            return False
        changed = governor.offer_light(backend.lighter(weights))
        if changed is not None:  # a new style: the level in use is not on its ladder
            self._warming = None
            level = self._ready_level(backend, changed, weights, frame_shape)
            log.info("%s → %s", governor.describe(), level)
            governor.moved(level)
            governor.restart()  # the style's own level is found from here, without the hold
        return governor.light

    def key_level(self, render_scale: float) -> Level:
        """What keyframes render at: full size, on the lighter network where the governor's ladder has
        it there (a full-size keyframe 12 frames old beats a half-size one 2 frames old: docs/keyframes.md);
        without the governor, the style's render scale."""
        governor = self.governor
        if governor is None:
            return Level(render_scale)
        return Level(governor.rungs[0], governor.level.light)

    def prepare_key(self, backend: NetworkBackends, weights: np.ndarray, shape: tuple, light: bool) -> None:
        """Ask once for the keyframes' size to be built aside; the stand-in renders keyframes meanwhile."""
        if self.build_aside and (shape, light) not in self._key_built:
            self._key_built.add((shape, light))
            if not backend.level_ready(weights, shape, light=light):
                backend.prepare(weights, shape, light=light)

    def _ready_level(self, backend, wanted: Level, weights: np.ndarray, shape: Optional[tuple]) -> Level:
        """``wanted``, or the first level below it on the ladder whose models run now (``wanted``
        then builds aside: the governor steps up to it once built)."""
        if shape is None or not self.build_aside:
            return wanted
        levels = self.governor.levels()
        for level in levels[levels.index(wanted):]:
            if backend.level_ready(weights, scaled_shape(shape, level.scale), light=level.light):
                if level != wanted:
                    backend.prepare(weights, scaled_shape(shape, wanted.scale), light=wanted.light)
                return level
        return wanted

    # -- the governor's wishes ------------------------------------------------------------------------
    def take(self, backend: NetworkBackends, target: Optional[Level], image: np.ndarray, weights: np.ndarray,
             now: float) -> None:
        """Move to ``target`` (the governor's wish this frame, None: none). In live use a level whose
        compiled models are neither built nor cached builds aside first, and frames keep flowing at the
        level in use meanwhile; a step down that cannot wait is still taken."""
        governor = self.governor
        if target is None:
            self._prebuild_when_steady(backend, image, weights)
            return
        shape = scaled_shape(image.shape, target.scale)
        if self.build_aside and not backend.level_ready(weights, shape, light=target.light):
            if self._stand_in_steps_down(backend, image, weights, target):
                backend.prepare(weights, shape, light=target.light)
                log.info("%s → %s (on the stand-in; its compiled models build aside)", governor.describe(), target)
                governor.moved(target, now=now)
                self.changed()
                return
            threads = backend.prepare(weights, shape, light=target.light)
            if threads:
                log.info("building %dx%d for %s (frames go on at %.2f)", shape[1], shape[0], target,
                         governor.scale)
                self._warming = (threads, target, shape, governor.level)
            return  # building, or its build failed: this level is not taken
        log.info("%s → %s", governor.describe(), target)
        governor.moved(target, now=now)
        self.changed()

    def waiting(self, backend, weights: np.ndarray, target: Optional[Level], now: float) -> bool:
        """While a level builds aside: True to keep waiting (or when it was just taken); False when the
        wait is over and ``target`` (the governor's wish now) should be handled. A build asked for
        another style's ladder (the level moved meanwhile) is dropped; so is one a step down overtakes."""
        if self._warming is None:
            return False
        governor = self.governor
        threads, level, shape, start = self._warming
        levels = governor.levels()
        if governor.level != start or level not in levels:
            self._warming = None
            return False
        if any(t.is_alive() for t in threads):
            down = target is not None and target != level and self._steps_down(target)
            if not down:  # nothing wanted, or what builds: keep waiting (asked once, logged once)
                return True
            self._warming = None  # slower frames cannot wait for the build (it goes on, and is cached)
            return False
        self._warming = None
        if backend.level_ready(weights, shape, light=level.light):
            log.info("%s → %s (built)", governor.describe(), level)
            governor.moved(level, now=now)
            self.changed()
            return True
        return False

    def _stand_in_steps_down(self, backend, image: np.ndarray, weights: np.ndarray, target: Level) -> bool:
        """``target`` is a step down and the frames already run on the quick stand-in (the level in use
        is not built either): the stand-in runs any size without a build, so waiting for the compiled
        one would only keep frames it cannot hold."""
        governor = self.governor
        return self._steps_down(target) and \
            not backend.level_ready(weights, scaled_shape(image.shape, governor.scale), light=governor.light)

    def _steps_down(self, target: Level) -> bool:
        """``target`` lies below the level in use on the ladder."""
        levels = self.governor.levels()
        return target in levels and self.governor.level in levels \
            and levels.index(target) > levels.index(self.governor.level)

    def _prebuild_when_steady(self, backend: NetworkBackends, image: np.ndarray, weights: np.ndarray) -> None:
        """Once the session has been steady a while, build the rest of the ladder aside: every size of
        the governor's rungs (the nearest first) on the networks in use, then on the catalog's other
        networks, one at a time in the build process at low priority (only what is not cached). A
        later step down or a switch of network then loads a file instead of waiting for a build."""
        builder = backend.builder
        if builder is None or time.monotonic() - self.steady_since < defaults.PREBUILD_AFTER_S:
            return
        key = (image.shape, id(backend.catalog))
        if key in self._prebuilt or builder.busy():
            return
        here = self.governor.scale
        scales = sorted(self.governor.rungs, key=lambda r: (abs(r - here), -r))
        shapes = [scaled_shape(image.shape, r) for r in scales]
        in_use = tuple(b.pack.network for b, _, _ in backend.parts(weights, light=self.governor.light))
        if backend.prebuild(shapes, first=in_use):
            log.info("building a size of the ladder aside (low priority)")
        else:
            self._prebuilt.add(key)  # every size of every network is ready
