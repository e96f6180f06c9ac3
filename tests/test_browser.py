"""What a student opens, in a real headless browser: notebook 05 in JupyterLab, and its viewer HTML.

The test starts JupyterLab on 127.0.0.1 (a free port, a token, the smoke profile) over a temporary
copy of the notebooks, with its own settings, workspace and output folders, so nothing in the
repository or the user's Jupyter set-up is read or written. Chromium (the system package, driven by
Playwright; no browser is downloaded) opens notebook 05 and runs all cells, then checks that no cell
failed, that the widgets rendered, that the frame slider changes the plotly figure and that section 4
shows its figure. It then opens the viewer HTML the notebook exported from a ``file://`` URL with
every other request aborted (no network), and checks that the 3D scene drew and that the slider
changes the frame.

Set ``KP3D_SCREENSHOT_DIR`` to keep screenshots of the notebook after the slider move and of the
viewer HTML. Without Chromium or Playwright the test is skipped, saying how to install them.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("KP3D_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
INSTALL = ("install a browser with `apt-get install -y chromium` (Debian/Ubuntu; the test drives "
           "/usr/bin/chromium, or $KP3D_CHROMIUM) and Playwright with `pip install -e '.[test]'`; "
           "no `playwright install` download is needed")
RUN_ALL_TIMEOUT_S = 600  # notebook 05 in the smoke profile: about a minute on 2 busy cores

# JupyterLab settings for this server only: every cell stays in the page (the default windowing
# drops cells scrolled out of view), and no news or update checks reach out to the network
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def playwright_browser(tmp_path_factory):
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}: {INSTALL}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(f"Playwright for Python is not installed: {INSTALL}")
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh user-data-dir
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        try:
            yield context
        finally:
            context.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server over a temporary copy of the notebooks: (url, token, root, outputs)."""
    pytest.importorskip("jupyterlab")
    base = tmp_path_factory.mktemp("lab")
    root = base / "notebooks"
    shutil.copytree(REPO / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = base / "settings"
    for name, value in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    port, token = _free_port(), os.urandom(16).hex()
    env = dict(os.environ, KP3D_PROFILE="smoke", KP3D_OUTPUT_DIR=str(base / "outputs"),
               JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(base / "workspaces"),
               JUPYTER_CONFIG_DIR=str(base / "config"), JUPYTER_RUNTIME_DIR=str(base / "runtime"),
               JUPYTER_PLATFORM_DIRS="1")
    env.pop("MPLBACKEND", None)  # the kernel's own default, the inline backend, as a student gets
    log = open(base / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
         "--ServerApp.allow_root=True"],
        cwd=str(base), env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"JupyterLab did not start:\n{(base / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield {"url": url, "token": token, "root": root, "outputs": base / "outputs", "log": base / "server.log"}
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _screenshot_dir() -> Path | None:
    d = os.environ.get("KP3D_SCREENSHOT_DIR")
    if not d:
        return None
    Path(d).mkdir(parents=True, exist_ok=True)
    return Path(d)


def _cell(page, text: str):
    """The notebook cell whose source contains ``text``."""
    return page.locator(".jp-Notebook .jp-Cell").filter(has=page.locator(".jp-InputArea", has_text=text)).first


def _prompts(page) -> list[str]:
    return page.eval_on_selector_all(".jp-Notebook .jp-CodeCell .jp-InputArea-prompt",
                                     "els => els.map(e => e.textContent.trim())")


def _run_all(page) -> None:
    """Run > Run All Cells, then wait until no cell is running or queued."""
    # the toolbar can say idle before the kernel is connected; the status bar names it once it is
    page.locator(".jp-StatusBar-Item", has_text="Idle").first.wait_for(timeout=120_000)
    deadline = time.time() + RUN_ALL_TIMEOUT_S
    started = False
    for attempt in range(3):  # a click while the page is still settling can be lost
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        retry_at = time.time() + 30
        while time.time() < min(deadline, retry_at) or started:
            prompts = _prompts(page)
            busy = any("*" in p for p in prompts)
            started = started or busy or any(p[1:-2].strip().isdigit() for p in prompts)
            if started and not busy:
                return
            if time.time() > deadline:
                break
            time.sleep(1.0)
        if started:
            break
    raise AssertionError(f"Run All did not finish in {RUN_ALL_TIMEOUT_S} s: prompts {_prompts(page)}")


def _viewer_title(cell) -> str:
    return cell.locator(".js-plotly-plot .gtitle").first.text_content() or ""


def _move_slider(page, cell, key: str = "ArrowRight") -> None:
    handle = cell.locator(".widget-slider .noUi-handle").first
    handle.focus()
    page.keyboard.press(key)


def test_notebook_05_in_jupyterlab_and_its_viewer_html_offline(lab, playwright_browser):
    t0 = time.time()
    shots = _screenshot_dir()
    page = playwright_browser.new_page()
    page.goto(f"{lab['url']}/lab/tree/05_probing.ipynb?token={lab['token']}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=120_000)
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(timeout=120_000)
    _run_all(page)

    # no cell failed: save, then read the executed notebook from disk
    page.keyboard.press("Control+s")
    path = lab["root"] / "05_probing.ipynb"
    deadline = time.time() + 30
    nb = {"cells": []}
    while time.time() < deadline:
        try:
            nb = json.loads(path.read_text())
        except json.JSONDecodeError:  # the save is still writing the file
            pass
        if any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"):
            break
        time.sleep(0.5)
    assert any(c.get("outputs") for c in nb["cells"] if c["cell_type"] == "code"), \
        "the executed notebook was not saved with its outputs within 30 s"
    errors = [(c["source"], o) for c in nb["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, f"cells failed: {errors[0][1].get('ename')}: {errors[0][1].get('evalue')}\n{errors[0][0]}"
    unrun = [c["source"] for c in nb["cells"] if c["cell_type"] == "code" and c.get("execution_count") is None]
    assert not unrun, f"cells never ran: {unrun[:1]}"
    assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                        has_text="Traceback").count() == 0

    # the widgets rendered
    page.wait_for_function("() => !document.body.innerText.includes('Loading widget...')", timeout=60_000)
    viewer = _cell(page, "viewer.widget()")
    viewer.locator(".widget-slider").first.wait_for(timeout=30_000)
    viewer.locator(".js-plotly-plot").first.wait_for(timeout=60_000)

    # moving the frame slider changes the plotly figure (its title names the frame)
    viewer.scroll_into_view_if_needed()
    before = _viewer_title(viewer)
    assert "frame" in before, before
    _move_slider(page, viewer)
    page.wait_for_function(
        "([sel, old]) => { const t = document.querySelectorAll(sel); "
        "return [...t].some(e => e.textContent && e.textContent.includes('frame') && e.textContent !== old); }",
        arg=[".jp-Cell .js-plotly-plot .gtitle", before], timeout=60_000)
    after = _viewer_title(viewer)
    assert after != before, (before, after)
    if shots:
        viewer.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        page.screenshot(path=str(shots / "notebook05_after_slider.png"))

    # section 4 shows its figure
    curves = _cell(page, "plot_fraction_curves")
    img = curves.locator(".jp-OutputArea-output img").first
    img.wait_for(timeout=30_000)
    assert img.evaluate("i => i.naturalWidth") > 100

    # the exported viewer HTML, from a file URL, with the network blocked
    html = lab["outputs"] / "05_probing" / "keypoint_viewer.html"
    assert html.is_file(), sorted(p.name for p in (lab["outputs"] / "05_probing").iterdir())
    offline = playwright_browser.new_page()
    blocked = []

    def only_files(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    offline.route("**/*", only_files)
    offline.goto(html.as_uri())
    offline.locator(".js-plotly-plot .gl-container canvas").first.wait_for(timeout=60_000)
    drew = offline.evaluate("""() => {
        const gd = document.querySelector('.js-plotly-plot');
        const scene = gd._fullLayout.scene && gd._fullLayout.scene._scene;
        const canvas = gd.querySelector('.gl-container canvas');
        return {scene: !!(scene && scene.glplot), w: canvas ? canvas.width : 0, h: canvas ? canvas.height : 0,
                nogl: document.body.innerText.includes('WebGL is not supported')};
    }""")
    assert drew["scene"] and drew["w"] > 100 and drew["h"] > 100 and not drew["nogl"], drew
    title0 = offline.locator(".gtitle").first.text_content()
    x0 = offline.evaluate("() => JSON.stringify(document.querySelector('.js-plotly-plot').data[0].x)")
    labels = offline.locator(".slider-group .slider-label")
    assert labels.count() >= 2
    box = labels.last.bounding_box()
    offline.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    offline.wait_for_function("t => document.querySelector('.gtitle').textContent !== t", arg=title0, timeout=30_000)
    x1 = offline.evaluate("() => JSON.stringify(document.querySelector('.js-plotly-plot').data[0].x)")
    assert x1 != x0, "the slider moved but the 3D keypoints did not change"
    if shots:
        offline.wait_for_timeout(500)
        offline.screenshot(path=str(shots / "viewer_html.png"))
    assert not [u for u in blocked if not u.startswith("data:")], f"the viewer HTML asked the network for {blocked}"
    print(f"browser test: {time.time() - t0:.0f} s")
