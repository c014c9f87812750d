"""One owner of live state: the session. Every change goes through its one queue; a change that fails
becomes an event and the running state stays; remote changes are kept whole; two threads changing
settings at once leave one consistent state."""
import http.client
import json
import threading
from dataclasses import replace

import cv2
import numpy as np
import pytest

from engine.video.capture import SourceSettings, StillSource
from engine.errors import StyleError
from engine.live.events import Failed, StateChanged
from engine.live.pipeline import StyleSettings
from engine.sinks.server import ServeSettings
from engine.live.session import Session, SessionSettings
from engine.styles.mix import StyleMix
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


def _live(catalog, photos, events, style="3", store=None, **settings):
    source = StillSource(SourceSettings("image", fps=60), photos["coffee"])
    session = Session(catalog, SessionSettings(backend="onnxruntime", style=StyleSettings(style), **settings),
                      source=source, on_event=events.append, store=store).open()
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
        assert thread.is_alive() and not [e for e in events.of(StateChanged) if "catalog" in e.fields]
        assert session.pipeline.catalog is catalog and session.current() == "3"
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
        catalog_news = lambda: [e for e in events.of(StateChanged) if "catalog" in e.fields]  # noqa: E731
        assert wait_until(catalog_news, timeout=60)
        changed = catalog_news()[0]
        assert changed.remote and changed.state.style.style == StyleMix.named("Moon")
        assert session.catalog is changed.state.catalog and "slim" in session.catalog.lighter
        session.set_look(replace(session.style, style=StyleMix.named(19)))
        assert wait_until(lambda: session.pipeline.settings.style == StyleMix.named(19))
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
                session.set_look(StyleSettings(style="Cat" if i % 2 else "12", strength=0.5 + i / 100))
            except StyleError:
                refused.append(i)

    try:
        workers = [threading.Thread(target=flip), threading.Thread(target=pick)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        session.set_look(replace(session.style, strength=0.9))  # a marker: once applied, everything before it is too
        assert wait_until(lambda: session.pipeline.settings.strength == 0.9, timeout=30)
        style = session.style
        assert session.pipeline.settings == style and session.pipeline.catalog is session.wanted_catalog
        np.testing.assert_array_equal(session.pipeline.weights, style.check(session.catalog))
        assert not events.of(Failed) and thread.is_alive()
    finally:
        stop.set()
        thread.join(10)
        session.close()


def _restocked(catalog):
    """The same catalog with new stock weights (as after a fitted row): a new backend must be built."""
    from engine.styles.catalog import StyleCatalog

    stock = catalog.stock
    state = {k: (v * 1.01 if k.endswith("gamma") else v) for k, v in stock.state.items()}
    new = StylePack(stock.config, state, stock.styles, "1" * 64, stock.family, stock.vectors, stock.manifest)
    return StyleCatalog([new, *[p for f, p in catalog.packs.items() if f != "stock"]], catalog.lighter,
                        manifest=catalog.manifest)


def test_a_backend_switch_and_a_new_catalog_after_a_size_change_build_for_the_size_running(store):
    """Failing before: a backend switch was sized from the size the session opened with, and a catalog
    with new stock weights got a backend with no size at all (its own BackendOptions)."""
    events = Events()
    session = Session(load_catalog(), SessionSettings(source="synthetic", size=(160, 120), backend="onnxruntime",
                                                      style=StyleSettings("3")), on_event=events.append).open()
    frames, stop = [], threading.Event()
    thread = threading.Thread(target=session.run, kwargs={"stop": stop, "on_frame": frames.append}, daemon=True)
    thread.start()
    try:
        assert session.pipeline.backend.options.max_size == (160, 120)
        session.set_source("synthetic", (200, 150))
        assert wait_until(lambda: frames and frames[-1].stylized.shape == (150, 200, 3), timeout=60)
        session.set_backend("torch-cpu")
        assert wait_until(lambda: session.pipeline.backend.name == "torch-cpu", timeout=60)
        assert session.pipeline.backend.options.max_size == (200, 150)
        session.set_catalog(_restocked(session.catalog))
        assert wait_until(lambda: session.catalog.stock.digest == "1" * 64, timeout=60)
        assert session.pipeline.backend.options.max_size == (200, 150)
        assert session.state.size == (200, 150) and not events.of(Failed)
    finally:
        stop.set()
        thread.join(10)
        session.close()


def test_a_reload_keeps_the_pack_the_session_was_opened_with(store, tmp_path, photos):
    """Failing before: `--pack`, then a style added (in the app or over HTTP): the reload built the catalog
    from the default manifest, and the custom pack was gone."""
    import shutil

    from engine.styles.packs import STOCK_MANIFEST
    from engine.styles.user_styles import add_picture_style

    manifest = tmp_path / "mine" / STOCK_MANIFEST.name
    shutil.copytree(STOCK_MANIFEST.parent, manifest.parent)
    data = json.loads(manifest.read_text())
    data["styles"][3]["name"] = "My Own Three"  # a pack of one's own: same weights, its own names
    manifest.write_text(json.dumps(data))
    catalog = load_catalog(manifest, store)
    assert catalog.styles[3].name == "My Own Three"
    events = Events()
    session, frames, stop, thread = _live(catalog, photos, events, store=store)
    try:
        ok, buf = cv2.imencode(".png", photos["chelsea"])
        add_picture_style(buf.tobytes(), "Cat", store)
        session.reload_catalog(select="Cat")  # what the app does after adding a style here
        assert wait_until(lambda: session.catalog is not catalog, timeout=60)
        assert session.catalog.styles[3].name == "My Own Three" and session.catalog.manifest == manifest
        assert session.catalog.styles[session.catalog.lookup("Cat")].name == "Cat"
        assert session.current() == "Cat"
    finally:
        stop.set()
        thread.join(10)
        session.close()


def test_a_remote_style_is_parsed_once_from_the_http_edge_to_the_frame(photos, monkeypatch):
    """The spec of a POST /style is parsed once, where it enters; from there the mix travels (to the
    session, its state, the pipeline and the frame) and is never turned back into text and parsed."""
    from engine.styles.mix import StyleMix

    calls = []
    real = StyleMix.parse.__func__

    def counting(cls, spec):
        calls.append(spec)
        return real(cls, spec)
    events = Events()
    session, frames, stop, thread = _live(load_catalog(), photos, events, serve=ServeSettings(port=0))
    try:
        server = session.serve()
        monkeypatch.setattr(StyleMix, "parse", classmethod(counting))
        status, reply = _post(server.url, "/style", b'{"style": "3:0.25,12:0.75"}', "application/json")
        assert status == 200, reply
        count = len(frames)
        assert wait_until(lambda: len(frames) >= count + 3 and session.pipeline.weights[12] == 0.75, timeout=30)
        assert [c for c in calls if not isinstance(c, StyleMix)] == ["3:0.25,12:0.75"]
    finally:
        stop.set()
        thread.join(10)
        session.close()
