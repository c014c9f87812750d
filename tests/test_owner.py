"""One owner of live state: the session. Every change goes through its one queue; a change that fails
becomes an event and the running state stays; remote changes are kept whole; two threads changing
settings at once leave one consistent state."""
import http.client
import json
import threading

import cv2
import numpy as np
import pytest

from engine.video.capture import SourceSettings, StillSource
from engine.errors import StyleError
from engine.live.events import CatalogChanged, Failed
from engine.live.pipeline import StyleSettings
from engine.sinks.server import ServeSettings
from engine.live.session import Session, SessionSettings
from engine.styles.packs import StylePack
from engine.styles.user_styles import load_catalog
from tests.waiting import wait_until


class Events(list):
    def of(self, kind):
        return [e for e in self if isinstance(e, kind)]


@pytest.fixture
def store(own_style_store):
    """A style store of this test's own (picture styles added here never reach other tests)."""
    return own_style_store


def _live(catalog, photos, events, style="3", **settings):
    source = StillSource(SourceSettings("image", fps=60), photos["coffee"])
    session = Session(catalog, SessionSettings(backend="onnxruntime", style=StyleSettings(style), **settings),
                      source=source, on_event=events.append).open()
    frames = []
    stop = threading.Event()
    thread = threading.Thread(target=session.run, kwargs={"stop": stop, "on_frame": frames.append}, daemon=True)
    thread.start()
    assert wait_until(lambda: len(frames) >= 2, timeout=60)
    return session, frames, stop, thread


def _broken_stock(catalog):
    """The same catalog with stock weights that no backend can build (a corrupt model)."""
    from engine.styles.catalog import StyleCatalog

    stock = catalog.stock
    state = {k: v for k, v in stock.state.items() if not k.startswith("res.0")}  # half a network
    broken = StylePack(stock.config, state, stock.styles, "0" * 64, stock.family, stock.vectors, stock.manifest)
    return StyleCatalog([broken, *[p for p in catalog.packs.values() if p.family != "stock"]], catalog.lighter)


def test_a_failing_catalog_rebuild_keeps_the_old_catalog_and_says_why(store, photos):
    catalog, events = load_catalog(), Events()
    session, frames, stop, thread = _live(catalog, photos, events)
    try:
        session.set_catalog(_broken_stock(catalog))
        assert wait_until(lambda: events.of(Failed), timeout=60)
        assert "styles were not changed" in events.of(Failed)[0].message
        assert session.catalog is catalog and session.wanted_catalog is catalog  # requests check the old one again
        count = len(frames)
        assert wait_until(lambda: len(frames) >= count + 3)  # the frames never stopped
        assert thread.is_alive() and not events.of(CatalogChanged)
        assert session.pipeline.pack is catalog and session.current() == "3"
    finally:
        stop.set()
        thread.join(10)
        session.close()


def _post(url: str, path: str, body: bytes, kind: str) -> tuple[int, dict]:
    host, port = url.split("//")[1].rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request("POST", path, body, {"Content-Type": kind})
    r = conn.getresponse()
    return r.status, json.loads(r.read() or b"{}")


def test_an_upload_under_serve_keeps_the_slim_network_on_offer(store, photos):
    """A picture style added over the network: the catalog is rebuilt in the one place that builds it,
    so the governor's lighter network (the slim one) is still there for the stock styles it carries."""
    catalog, events = load_catalog(), Events()
    assert "slim" in catalog.lighter
    session, frames, stop, thread = _live(catalog, photos, events, style="19", serve=ServeSettings(port=0))
    try:
        server = session.serve()
        ok, buf = cv2.imencode(".png", cv2.cvtColor(photos["astronaut"], cv2.COLOR_RGB2BGR))
        status, reply = _post(server.url, "/style/picture?name=Moon", buf.tobytes(), "image/png")
        assert status == 200, reply
        assert wait_until(lambda: events.of(CatalogChanged), timeout=60)
        changed = events.of(CatalogChanged)[0]
        assert changed.remote and changed.select == "Moon" and session.catalog is changed.catalog
        assert "slim" in session.catalog.lighter
        session.set_style_settings(style="19")
        assert wait_until(lambda: session.pipeline.settings.style == "19")
        assert session.pipeline.backend.lighter(session.pipeline.weights) == "slim"
    finally:
        stop.set()
        thread.join(10)
        session.close()


def test_two_threads_changing_settings_at_once_leave_one_consistent_state(store, photos):
    """One thread adds and removes a picture style while another selects it and changes the strength:
    every request is either refused (StyleError, nothing changed) or applied whole, and after the
    queue drains what the session says is what the frames use."""
    from engine.styles.user_styles import add_picture_style

    ok, buf = cv2.imencode(".png", photos["chelsea"])
    add_picture_style(buf.tobytes(), "Cat", store)
    with_cat = load_catalog()
    store.remove("Cat")
    without = load_catalog()
    events = Events()
    session, frames, stop, thread = _live(with_cat, photos, events, style="Cat")
    refused = []

    def flip():
        for i in range(40):
            session.set_catalog(without if i % 2 == 0 else with_cat)

    def pick():
        for i in range(40):
            try:
                session.set_style_settings(style="Cat" if i % 2 else "12", strength=0.5 + i / 100)
            except StyleError:
                refused.append(i)

    try:
        workers = [threading.Thread(target=flip), threading.Thread(target=pick)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        session.set_style_settings(strength=0.9)  # a marker: once applied, everything before it is too
        assert wait_until(lambda: session.pipeline.settings.strength == 0.9, timeout=30)
        style = session.style
        assert session.pipeline.settings == style and session.pipeline.pack is session.wanted_catalog
        np.testing.assert_array_equal(session.pipeline.weights, style.check(session.catalog))
        assert not events.of(Failed) and thread.is_alive()
    finally:
        stop.set()
        thread.join(10)
        session.close()
