#!/usr/bin/env python3
"""Browser test of the page `pnp-ovss serve` answers at `/` (src/pnpovss/serve/web/index.html).

    python3 tests/serve/test_page.py PNP_OVSS_BINARY TEST_DATA_DIR ARTIFACT_DIR

Drives headless Chromium with Selenium through what a person does: pick the photo, type three
classes as chips, segment, read the legend, hover, isolate a class, open the explanation maps,
download the JSON record, provoke an API error, and unlock a server that needs an API key. The
page's numbers are checked against the API's own answer for the same request. Writes a
screenshot to ARTIFACT_DIR/serve_page.png (and serve_page_failure.png when it fails).

Exit status: 0 pass, 1 fail, 77 skipped (no selenium, chromium or chromedriver).
"""
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_fixture import IMAGE, ServerProcess, multipart, usage_args  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SYSTEM_PYTHON = "/usr/bin/python3"
CLASSES = ["cat", "couch", "remote control"]
SEGMENT_TIMEOUT = 120
SKIP = 77


def skip(why):
    print("SKIP: " + why)
    sys.exit(SKIP)


def import_selenium():
    """Debian's python3-selenium lives in the system Python; a test run under another Python
    (pyenv, a virtual environment) starts again under the system one rather than skip."""
    try:
        import selenium  # noqa: F401
        return
    except ImportError:
        pass
    if (not os.environ.get("PNPOVSS_PAGE_TEST_REEXEC") and os.path.exists(SYSTEM_PYTHON)
            and os.path.realpath(sys.executable) != os.path.realpath(SYSTEM_PYTHON)):
        os.environ["PNPOVSS_PAGE_TEST_REEXEC"] = "1"
        os.execv(SYSTEM_PYTHON, [SYSTEM_PYTHON] + sys.argv)
    skip("the selenium module is not installed (apt-get install python3-selenium)")


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def start_browser(download_dir):
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            skip(path + " is not installed (apt-get install chromium chromium-driver)")
    errors = []
    # --headless=new behaves like a real browser (downloads included); older builds know only --headless.
    for headless in ("--headless=new", "--headless"):
        opts = Options()
        opts.binary_location = CHROMIUM
        for arg in (headless, "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1366,900"):
            opts.add_argument(arg)
        opts.add_experimental_option("prefs", {"download.default_directory": download_dir,
                                               "download.prompt_for_download": False,
                                               "download.directory_upgrade": True})
        try:
            driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
        except WebDriverException as e:
            errors.append("%s: %s" % (headless, str(e).strip().splitlines()[0] if str(e).strip() else e))
            continue
        try:  # the old headless mode ignores the download prefs without this
            driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": download_dir})
        except WebDriverException:
            pass
        return driver
    skip("chromium did not start under chromedriver: " + "; ".join(errors))


def wait_for(what, cond, timeout=10.0):
    """Polls cond() until it returns something truthy; fails naming `what` after timeout."""
    deadline = time.time() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.time() > deadline:
            raise Failure("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.1)


def api_segment(server, image_bytes, settings=None):
    fields = {"classes": ", ".join(CLASSES), "maps": "true"}
    if settings is not None:
        fields["settings"] = json.dumps(settings)
    body, headers = multipart(fields, {"image": (os.path.basename(IMAGE), image_bytes, "image/png")})
    status, _, data = server.request("POST", "/v1/segment", body, headers, timeout=SEGMENT_TIMEOUT)
    return status, json.loads(data)


def run(driver, binary, data_dir, download_dir, artifact_dir):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    def el(css):
        return driver.find_element(By.CSS_SELECTOR, css)

    def els(css):
        return driver.find_elements(By.CSS_SELECTOR, css)

    def error_text():
        return el("#error").text.strip()

    image_path = os.path.join(data_dir, IMAGE)
    with open(image_path, "rb") as f:
        image_bytes = f.read()

    with ServerProcess(binary, data_dir) as server:
        # What the API itself answers, to hold the page's numbers and messages against.
        status, answer = api_segment(server, image_bytes)
        check(status == 200, "reference POST /v1/segment: %d %s" % (status, answer))
        expected = answer["record"]
        expected_maps = answer["maps"]
        status, bad = api_segment(server, image_bytes, {"mask_threshold": 5})
        check(status == 422 and bad.get("error"), "reference bad-settings request: %d %s" % (status, bad))

        driver.get(server.url + "/")
        wait_for("the header's server info", lambda: "model" in el("#server-info").text)
        header = el("#server-info").text
        _, info = server.get_json("/v1/info")
        for key in ("model", "backbone", "device", "version"):
            check(str(info[key]) in header, "header %r lacks info.%s %r" % (header, key, info[key]))
        check(el("#layer").get_attribute("placeholder") == str(info["settings"]["attention_layer_1based"]),
              "layer placeholder %r is not the server's layer" % el("#layer").get_attribute("placeholder"))

        el("#file-input").send_keys(os.path.abspath(image_path))
        wait_for("the preview", lambda: driver.execute_script(
            "const p = document.getElementById('preview'); return !p.hidden && p.naturalWidth > 0;"))

        # Chips: comma and Enter add one, Backspace on the empty field removes the last.
        box = el("#class-input")
        box.click()
        box.send_keys("cat,")
        box.send_keys("couch" + Keys.ENTER)
        box.send_keys("remote control" + Keys.ENTER)
        box.send_keys("oops,")
        box.send_keys(Keys.BACKSPACE)
        chips = [c.text for c in els("#chip-list .chip span")]
        check(chips == CLASSES, "chips are %r, not %r" % (chips, CLASSES))

        el("#segment-button").click()
        check(not el("#segment-button").is_enabled(), "the segment button is not disabled while the request runs")
        wait_for("the result or an error",
                 lambda: el("#result").is_displayed() or error_text(), timeout=SEGMENT_TIMEOUT)
        check(not error_text(), "segmenting failed on the page: " + error_text())
        check(el("#segment-button").is_enabled(), "the segment button stays disabled after the answer")
        check("Done" in el("#status").text, "status after the answer is %r" % el("#status").text)

        # Legend: the record's classes in order, with the record's pixel shares.
        entries = els("#legend button")
        names = [e.find_element(By.CSS_SELECTOR, ".name").text for e in entries]
        want = [c["name"] for c in expected["classes"]]
        check(names == want, "legend lists %r, the API %r" % (names, want))
        for entry, cls in zip(entries, expected["classes"]):
            shown = float(entry.find_element(By.CSS_SELECTOR, ".share").text.replace("%", ""))
            # Two runs of the model may differ in a few pixels; the shares must agree closely.
            check(abs(shown - 100 * cls["pixel_share"]) <= 0.3,
                  "legend share of %s is %s %%, the API says %.2f %%" % (cls["name"], shown, 100 * cls["pixel_share"]))

        # Explain panel: attention, GradCAM and dropped maps per iteration, and the final map, all decoded.
        wait_for("the explanation images to decode", lambda: driver.execute_script(
            "const imgs = [...document.querySelectorAll('#explain-body img')];"
            "return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);"))
        captions = [c.text for c in els("#explain-body figcaption")]
        gradcams, dropped = len(expected_maps["classes"][0]["gradcam"]), len(expected_maps["dropped"])
        for word, count in (("Attention", 1), ("GradCAM", gradcams), ("Dropped", dropped), ("Final", 1)):
            n = sum(c.startswith(word) for c in captions)
            check(n == count, "explain panel has %d %r images, want %d (captions %r)" % (n, word, count, captions))
        explain_buttons = els("#explain-classes button")
        check([b.text for b in explain_buttons] == CLASSES, "explain panel classes: %r" % [b.text for b in explain_buttons])
        explain_buttons[1].click()
        check(els("#explain-body h3")[0].text.startswith("couch"), "the explain panel did not switch to couch")

        # Hover: the tooltip names a class of the answer.
        canvas = el("#overlay-canvas")
        ActionChains(driver).move_to_element(canvas).perform()
        tip = wait_for("the tooltip", lambda: el("#tooltip").is_displayed() and el("#tooltip").text)
        check(any(tip.startswith(n) for n in want) and ("score" in tip or "best" in tip),
              "tooltip %r names no class with a score" % tip)

        # Isolating a class redraws the overlay; pressing it again restores it.
        snapshot = ("const c = document.getElementById('overlay-canvas');"  # a checksum of the drawn pixels
                    "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
                    "let h = 0; for (let i = 0; i < d.length; i++) h = (h * 31 + d[i]) | 0; return h;")
        full = driver.execute_script(snapshot)
        entries[1].click()
        pressed = [e.get_attribute("aria-pressed") for e in entries]
        check(pressed == ["false", "true"] + ["false"] * (len(entries) - 2), "aria-pressed after isolating: %r" % pressed)
        check(driver.execute_script(snapshot) != full, "isolating %s did not change the overlay" % want[1])
        entries[1].click()
        check(driver.execute_script(snapshot) == full, "pressing %s again did not restore the overlay" % want[1])

        os.makedirs(artifact_dir, exist_ok=True)
        driver.execute_script("window.scrollTo(0, 0);")
        driver.save_screenshot(os.path.join(artifact_dir, "serve_page.png"))

        # At full opacity the canvas shows the label map in the record's colours: its colour shares
        # must be the record's pixel shares, which checks the page's decoding of labels_png.
        el("#opacity").send_keys(Keys.END)
        counts = driver.execute_script(
            "const c = document.getElementById('overlay-canvas');"
            "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "const n = {};"
            "for (let i = 0; i < d.length; i += 4) {"
            "  const k = '#' + [d[i], d[i + 1], d[i + 2]].map((v) => v.toString(16).padStart(2, '0')).join('');"
            "  n[k] = (n[k] || 0) + 1; }"
            "return [n, c.width * c.height];")
        colours, total = counts
        check(total == expected["width"] * expected["height"], "canvas has %d pixels, the image %dx%d"
              % (total, expected["width"], expected["height"]))
        for cls in expected["classes"]:
            drawn = colours.get(cls["color"].lower(), 0) / total
            check(abs(drawn - cls["pixel_share"]) <= 0.003,
                  "at full opacity %s covers %.4f of the canvas, the API says %.4f" % (cls["name"], drawn, cls["pixel_share"]))

        # The JSON download: the record of this very answer.
        el("#download-json").click()
        stem = os.path.splitext(os.path.basename(IMAGE))[0]
        path = os.path.join(download_dir, stem + ".json")
        wait_for("the downloaded " + os.path.basename(path), lambda: os.path.exists(path))
        with open(path) as f:
            record = json.load(f)
        got = [c["name"] for c in record["classes"]]
        check(all(n in got for n in CLASSES), "downloaded JSON names %r" % got)
        for entry, cls in zip(els("#legend button"), record["classes"]):
            check(float(entry.get_attribute("data-share")) == cls["pixel_share"],
                  "legend share of %s differs from the downloaded record" % cls["name"])

        # An API error: its status and message appear in the alert region.
        el("#threshold").send_keys("5")
        el("#segment-button").click()
        wait_for("the error message", error_text, timeout=SEGMENT_TIMEOUT)
        check("422" in error_text() and bad["error"] in error_text(),
              "error region shows %r, the API said 422 %r" % (error_text(), bad["error"]))
        check(el("#error").get_attribute("role") == "alert", "the error region is not role=alert")

    # A server with an API key: the page asks for it, then works.
    key = "page-test-key"
    with ServerProcess(binary, data_dir, ["--api-key", key]) as server:
        driver.get(server.url + "/")  # a new port is a new origin: no key stored yet
        wait_for("the API-key field after a 401", lambda: el("#api-key").is_displayed())
        check("401" in error_text(), "no 401 shown when the key is missing: %r" % error_text())
        el("#api-key").send_keys(key + Keys.ENTER)
        wait_for("the server info with the key", lambda: "model" in el("#server-info").text)
        check(not error_text(), "the error stays after giving the key: %r" % error_text())


def main():
    binary, data_dir, artifact_dir = usage_args(sys.argv, 3, "PNP_OVSS_BINARY TEST_DATA_DIR ARTIFACT_DIR")
    import_selenium()
    started = time.time()
    download_dir = tempfile.mkdtemp(prefix="pnpovss_page_dl_")
    driver = start_browser(download_dir)
    try:
        run(driver, binary, data_dir, download_dir, artifact_dir)
    except Exception as e:  # a Failure, a Selenium error or a server that would not start
        os.makedirs(artifact_dir, exist_ok=True)
        shot = os.path.join(artifact_dir, "serve_page_failure.png")
        try:
            driver.save_screenshot(shot)
        except Exception:
            shot = "none"
        print("FAIL: %s: %s (screenshot: %s)" % (type(e).__name__, e, shot))
        return 1
    finally:
        driver.quit()
    print("PASS: the page works (%.1f s)" % (time.time() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
