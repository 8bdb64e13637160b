"""End to end in a real browser: JupyterLab runs lesson 01 as a participant would.

The test starts JupyterLab headless on a free local port, in quick mode, on a copy of
``solutions/01_radon_fbp.ipynb`` in a temporary folder (the repository's notebook gets
no outputs).  Headless Chromium, driven by Playwright, opens the notebook, chooses
*Run > Run All Cells*, waits until every cell has run, and checks that no cell failed,
that the figures were drawn and that the ipywidgets slider appeared.  A screenshot is
saved to ``tests/browser/output/lesson01.png`` (ignored by git) and its path printed.

It needs Chromium and the Python package ``playwright`` (in the ``test`` extra); it
never downloads a browser.  Debian and Ubuntu: ``sudo apt-get install chromium``.
``COURSE_BROWSER=/path/to/chrome`` picks another Chromium-based browser.  Without them
the test is skipped, unless ``COURSE_REQUIRE_BROWSER=1`` (set by ``.ci/run``), which
turns the skip into a failure.  ``COURSE_BROWSER_TIMEOUT`` (seconds, default 300) bounds
the run of the notebook.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "solutions" / "01_radon_fbp.ipynb"
SCREENSHOT = ROOT / "tests" / "browser" / "output" / "lesson01.png"
RUN_TIMEOUT = float(os.environ.get("COURSE_BROWSER_TIMEOUT", 300))

BROWSERS = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
            "/Applications/Chromium.app/Contents/MacOS/Chromium",
            "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"]
# No sandbox (CI runs as root), no GPU, and no background traffic: the machine may
# have no network, and Chromium would otherwise keep trying to reach Google.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
# JupyterLab settings for the test: every cell stays in the page (no virtual scrolling,
# so all outputs can be inspected) and no pop-up asks about news.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
}

# What the page shows, read in the browser: input prompts ("[3]:", "[*]:", "[ ]:"), the
# kernel status in the status bar, tracebacks, output images and widgets.
PAGE_STATE = """() => {
  const notebook = document.querySelector('.jp-Notebook');
  const all = (selector) => notebook ? Array.from(notebook.querySelectorAll(selector)) : [];
  const bar = document.querySelector('#jp-main-statusbar');
  return {
    prompts: all('.jp-CodeCell .jp-InputPrompt').map(e => e.textContent.trim()),
    status: bar ? bar.innerText : '',
    errors: all('.jp-OutputArea-output').map(e => e.innerText)
              .filter(t => t.includes('Traceback (most recent call last)')),
    images: all('.jp-OutputArea-output img').map(i => {
      const box = i.getBoundingClientRect();
      return [i.naturalWidth, i.naturalHeight, box.width, box.height];
    }),
    sliders: all('.jp-OutputArea-output .widget-slider').length,
    widgetErrors: all('.jp-OutputArea-output').map(e => e.innerText)
                    .filter(t => t.includes('Error displaying widget')),
  };
}"""


def missing(reason):
    """Skip, or fail where the browser test is required (CI)."""
    if os.environ.get("COURSE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}; COURSE_REQUIRE_BROWSER=1 requires the browser test")
    pytest.skip(reason)


def find_browser():
    """Path of a Chromium-based browser: $COURSE_BROWSER, else the first one found."""
    for candidate in [os.environ["COURSE_BROWSER"]] if os.environ.get("COURSE_BROWSER") \
            else BROWSERS:
        path = shutil.which(candidate)
        if path or (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            return path or candidate
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(url, token, path, method="GET"):
    """Call JupyterLab's REST API; the parsed JSON answer (None for an empty one)."""
    request = urllib.request.Request(f"{url}{path}", method=method,
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def log_tail(path, lines=30):
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def browser_path():
    """The browser, checked before anything starts: skip (or fail) when it is missing."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing("the Python package playwright is not installed "
                "(pip install -e '.[test]')")
    path = find_browser()
    if path is None:
        missing("no Chromium found (Debian/Ubuntu: sudo apt-get install chromium; "
                "or set COURSE_BROWSER to a Chromium-based browser)")
    return path


@pytest.fixture
def lab(browser_path, tmp_path):
    """JupyterLab on a free port, serving a temporary folder with a copy of lesson 01."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    shutil.copy(NOTEBOOK, folder)
    settings = tmp_path / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    port, token = free_port(), os.urandom(16).hex()
    env = {**os.environ, "COURSE_QUICK": "1",
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),   # own files per worker
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}     # no personal config
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}",
               "--ServerApp.allow_root=True", f"--LabApp.user_settings_dir={settings}",
               f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
               "--LabApp.extension_manager=readonly",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    log_path = tmp_path / "jupyterlab.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=(os.name == "posix"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n"
                            f"{log_tail(log_path)}")
            try:
                api(url, token, "/api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within 180 s:\n"
                                f"{log_tail(log_path)}")
                time.sleep(0.5)
        yield SimpleNamespace(url=url, token=token, folder=folder, log=log_path)
    finally:
        stop_server(server, url, token)


def stop_server(server, url, token):
    """Shut the kernels down, then the server; kill whatever is left of its group."""
    if server.poll() is None:
        try:
            for kernel in api(url, token, "/api/kernels"):
                api(url, token, f"/api/kernels/{kernel['id']}", method="DELETE")
        except (OSError, ValueError):
            pass                       # the server is stopping anyway: SIGTERM below
        server.terminate()             # JupyterLab shuts its kernels down on SIGTERM
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    if os.name == "posix":
        try:
            os.killpg(server.pid, signal.SIGKILL)   # helpers it started, if any remain
        except (ProcessLookupError, PermissionError):
            pass
    server.wait(timeout=30)


@pytest.fixture
def page(browser_path, tmp_path):
    """A page of headless Chromium with a fresh profile; closed after the test."""
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        try:
            context = playwright.chromium.launch_persistent_context(
                str(tmp_path / "chromium-profile"), executable_path=browser_path,
                headless=True, args=CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1000})
        except Error as error:      # e.g. a sandboxed (snap) browser that cannot start here
            missing(f"{browser_path} did not start: {str(error).splitlines()[0]}")
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def wait_until_done(page, timeout):
    """Poll the page until every code cell has run, or one failed, or time is up."""
    deadline = time.monotonic() + timeout
    while True:
        state = page.evaluate(PAGE_STATE)
        idle = "| Idle" in state["status"]
        running = any("*" in p for p in state["prompts"])
        ran = all(p[1:-2].isdigit() for p in state["prompts"])
        if idle and not running and (ran or state["errors"]):
            return state
        if time.monotonic() > deadline:
            pytest.fail(f"the notebook did not finish within {timeout:.0f} s "
                        f"(COURSE_BROWSER_TIMEOUT); prompts: {state['prompts']}")
        time.sleep(1)


def saved_notebook(path, timeout=60):
    """The notebook on disk once JupyterLab has saved it with every cell's outputs."""
    deadline = time.monotonic() + timeout
    while True:
        notebook = json.loads(path.read_text())
        code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
        if all(c.get("execution_count") for c in code) or time.monotonic() > deadline:
            return code
        time.sleep(0.5)


def test_lesson01_runs_in_jupyterlab(page, lab):
    code_cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"]
                  if c["cell_type"] == "code"]
    console_errors = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.set_default_timeout(60_000)
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK.name}?reset&token={lab.token}")
    try:
        # The kernel has started when the status bar says so.
        page.wait_for_function("() => (document.querySelector('#jp-main-statusbar') || "
                               "{innerText: ''}).innerText.includes('| Idle')",
                               timeout=180_000)
        page.click("#jp-MainMenu >> text=Run")
        page.click(".lm-Menu-item:has-text('Run All Cells')")
        state = wait_until_done(page, RUN_TIMEOUT)

        assert not state["errors"], "a cell failed:\n" + "\n\n".join(state["errors"])
        assert len(state["prompts"]) == len(code_cells), state["prompts"]
        assert all(p[1:-2].isdigit() for p in state["prompts"]), state["prompts"]
        images = state["images"]
        assert len(images) >= 5, f"only {len(images)} figures were drawn"
        assert all(min(size) > 0 for size in images), f"empty figures: {images}"
        assert state["sliders"] >= 1, "the ipywidgets slider did not appear"
        assert not state["widgetErrors"], state["widgetErrors"]

        # Save (the keyboard shortcut) and read the saved outputs: no error output.
        page.keyboard.press("Control+s")
        saved = saved_notebook(lab.folder / NOTEBOOK.name)
        assert all(c.get("execution_count") for c in saved), "the saved copy lacks outputs"
        errors = [o for c in saved for o in c["outputs"] if o["output_type"] == "error"]
        assert not errors, errors
        assert any("image/png" in o.get("data", {}) for c in saved for o in c["outputs"])
        page.locator(".jp-OutputArea-output .widget-slider").first.scroll_into_view_if_needed()
    except Exception:
        print(f"JupyterLab log ({lab.log}):\n{log_tail(lab.log)}")
        print("browser console errors:", console_errors[-10:])
        raise
    finally:
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT))
        print(f"screenshot: {SCREENSHOT}")
