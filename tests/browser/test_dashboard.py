"""The dashboard in a real headless Chromium against a real `archon dev` fleet (issue #16).

Logs in with the printed token (and with the printed one-time link), opens the fleet page, submits the late-OOM
example, watches its job page — without reloading it: the live stream must bring the second attempt — until the
chart has points from both attempts and a restart marker naming the batch change, then opens an incident, presses
Acknowledge, and keeps screenshots of the three pages in $ARCHON_BROWSER_ARTEFACTS (default
.build/browser-artefacts; not committed).

Needs Debian's chromium and chromium-driver and the selenium package (scripts/install-deps installs them) and the
debug `archon` binary (`swift build --product archon`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
ARCHON = os.path.join(ROOT, ".build", "debug", "archon")
ARTEFACTS = os.environ.get("ARCHON_BROWSER_ARTEFACTS", os.path.join(ROOT, ".build", "browser-artefacts"))

from selenium import webdriver  # scripts/install-deps installs it: a missing one fails, never skips
from selenium.webdriver.common.by import By
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.support.ui import WebDriverWait


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_env(path):
    env = {}
    for line in open(path, encoding="utf-8"):
        if line.startswith("export ") and "=" in line:
            name, value = line[len("export "):].strip().split("=", 1)
            env[name] = value.strip("'")
    return env


@pytest.fixture(scope="module")
def fleet():
    if not os.path.exists(ARCHON):
        pytest.fail(f"{ARCHON} is missing: swift build --product archon")
    data = tempfile.mkdtemp(prefix="archon-browser-")
    proc = subprocess.Popen(
        [ARCHON, "dev", "--data-dir", data, "--nats-port", str(free_port()), "--api-port", str(free_port())],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    env_file = os.path.join(data, "env")
    deadline = time.time() + 90
    while not os.path.exists(env_file) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    if not os.path.exists(env_file):
        proc.kill()
        pytest.fail("archon dev did not come up: " + (proc.stdout.read() if proc.stdout else ""))
    env = read_env(env_file)
    # The nodes report within seconds; the env file is written once they are started.
    yield dict(env, data=data, proc=proc)
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    # What archon dev printed at start: the dashboard URL with its one-time code, for the record.
    assert "dashboard" in out and "/ui/login?code=" in out, out[:2000]
    shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000", "--disable-gpu"):
        options.add_argument(arg)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium:
        options.binary_location = chromium
    driver_path = shutil.which("chromedriver")
    service = webdriver.ChromeService(executable_path=driver_path) if driver_path else webdriver.ChromeService()
    driver = webdriver.Chrome(options=options, service=service)
    yield driver
    driver.quit()


def api(fleet, method, path, body=None, content_type="application/json"):
    request = urllib.request.Request(fleet["ARCHON_API"] + path, method=method, data=body,
                                     headers={"Authorization": "Bearer " + fleet["ARCHON_TOKEN"], "Content-Type": content_type})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
        return json.loads(text) if text else None


def shot(browser, name):
    os.makedirs(ARTEFACTS, exist_ok=True)
    browser.save_screenshot(os.path.join(ARTEFACTS, name))


def test_dashboard_in_chromium(fleet, browser):
    base = fleet["ARCHON_API"]
    # The page redraws its sections from the live stream (and a form post loads a new page): an element found a moment
    # ago may be gone, so each wait reads again when it meets a stale one, and reads that must agree happen in one wait.
    wait = WebDriverWait(browser, 120, poll_frequency=0.5, ignored_exceptions=[StaleElementReferenceException])

    def click(by, selector):
        wait.until(lambda b: b.find_element(by, selector).click() or True)

    # The one-time link logs in by itself and leaves the address bar without its code.
    browser.get(fleet["ARCHON_DASHBOARD_URL"])
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "section#nodes td"))
    assert browser.current_url.rstrip("/") == base + "/ui", browser.current_url
    assert "code=" not in browser.current_url
    # Used once: a second visit is refused and offers the form.
    browser.get(fleet["ARCHON_DASHBOARD_URL"])
    assert "used already" in browser.find_element(By.ID, "login-error").text

    # Log out, then log in with the printed token, by the form.
    browser.get(base + "/ui/")
    browser.find_element(By.CSS_SELECTOR, "header form button").click()
    wait.until(lambda b: b.find_elements(By.ID, "token"))
    browser.find_element(By.ID, "token").send_keys(fleet["ARCHON_TOKEN"])
    browser.find_element(By.ID, "login").click()
    nodes = wait.until(lambda b: [td.text for td in b.find_elements(By.CSS_SELECTOR, "section#nodes tbody tr td:first-child")])
    assert nodes == ["n1", "n2"], nodes
    # The page follows its live stream.
    wait.until(lambda b: b.find_element(By.ID, "live-state").text == "live")

    # Submit the OOM example; open its page at once and watch it, without reloading, until attempt 2 has drawn.
    spec = open(os.path.join(ROOT, "examples", "jobs", "oom-late.yaml"), "rb").read()
    api(fleet, "POST", "/v1/training/jobs", spec, "application/yaml")
    browser.get(base + "/ui/jobs/late-oom")
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, 'circle[data-attempt="2"][data-kind="train"]'))
    def chart(b):
        epochs = {attempt: [c.get_attribute("data-epoch") for c in b.find_elements(
            By.CSS_SELECTOR, f'circle[data-attempt="{attempt}"][data-kind="train"]')] for attempt in (1, 2)}
        return epochs, [m.text for m in b.find_elements(By.CSS_SELECTOR, "svg.chart g.marker text")]
    epochs, markers = wait.until(chart)
    assert epochs[1] == ["1", "2"], epochs
    assert epochs[2][0] == "3", epochs
    assert any("OOM" in m and "batch 64 → 32" in m and "resumed from epoch 2" in m for m in markers), markers
    assert int(browser.find_element(By.TAG_NAME, "body").get_attribute("data-updates") or 0) > 0, "no live update arrived"
    rows = wait.until(lambda b: [r.text for r in b.find_elements(By.CSS_SELECTOR, "section#attempts tbody tr")])
    assert len(rows) == 2 and "batch 64 → 32, accumulation ×2" in rows[1], rows
    # Let it finish so the screenshot shows the whole curve.
    wait.until(lambda b: "completed" in b.find_element(By.ID, "job-summary").text)
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, 'circle[data-attempt="2"][data-kind="train"][data-epoch="6"]'))
    shot(browser, "job.png")
    # Dark mode: the same page with the system's dark preference, still readable (colours from CSS variables).
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(16, 20, 27)", background
    shot(browser, "job-dark.png")
    browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "light"}]})

    # An incident: a dataset registered where nothing is, and a job that needs it.
    api(fleet, "POST", "/v1/datasets", json.dumps({"id": "digits-v2", "location": "/nonexistent/digits-v2"}).encode())
    api(fleet, "POST", "/v1/training/jobs", open(os.path.join(ROOT, "examples", "jobs", "missing-dataset.yaml"), "rb").read(), "application/yaml")
    deadline = time.time() + 90
    incidents = []
    while not incidents and time.time() < deadline:
        incidents = [i for i in api(fleet, "GET", "/v1/incidents") if "digits-missing-dataset" in i["jobs"]]
        time.sleep(0.5)
    assert incidents, "no incident for the missing dataset"
    incident = incidents[0]
    browser.get(base + "/ui/")
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, f'section#incidents a[href="/ui/incidents/{incident["id"]}"]'))
    shot(browser, "fleet.png")
    click(By.CSS_SELECTOR, f'section#incidents a[href="/ui/incidents/{incident["id"]}"]')
    template = wait.until(lambda b: b.find_element(By.ID, "template").text)
    assert "Subject: Training Failure Escalation - digits-missing-dataset" in template
    click(By.ID, "ack")
    wait.until(lambda b: "acknowledged by admin" in b.find_element(By.ID, "levels").text)
    assert not browser.find_elements(By.ID, "ack")
    shot(browser, "incident.png")
    assert api(fleet, "GET", f"/v1/incidents/{incident['id']}")["status"] == "acknowledged"
