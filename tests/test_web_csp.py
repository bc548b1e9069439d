"""The web pages' Content-Security-Policy in a real browser (issue #26.8): headless Chromium (Debian's
`chromium`) loads a Next.js App Router page (tests/fixtures/web-app, Next.js from npm, built by make test)
served with exactly the headers the rendered front door sends on the web host (the web route's headers
Middleware, as traefik's headers middleware turns it into response headers: testbed.traefik) and the app's
own policy from the rendered ConfigMap, with the nonce the app puts in it (docs/app-contract.md). The page
has hydrated when its client component has replaced "server-rendered" with "hydrated".

The control: the same page behind the policy the front door used to send on every response
(`script-src 'self'`, no nonce) does not hydrate, and Chromium reports the violation, so the check can fail.

Nothing leaves the machine: Chromium's background services are off and every address but loopback goes to a
closed loopback port as its proxy."""
from __future__ import annotations

import base64
import http.client
import os
import re
import shutil
import subprocess
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ROOT, find
from kubechat_deploy.app.exposure import content_security_policy
from testbed.controlplane import free_port
from testbed.loopback import LoopbackServer
from testbed.traefik import middleware_response_headers

pytestmark = pytest.mark.servers

APP = ROOT / "tests" / "fixtures" / "web-app"
ENVIRONMENTS = ("staging", "production")
HYDRATED = '<p id="hydration">hydrated</p>'


class FrontDoor(LoopbackServer):
    """Forwards each GET to the app and adds `headers` to its answer, as the headers Middleware does (an
    empty value removes the header)."""

    def __init__(self, app_port: int, headers: dict[str, str]) -> None:
        door = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                upstream = http.client.HTTPConnection("127.0.0.1", app_port, timeout=30)
                upstream.request("GET", self.path, headers={"Host": self.headers.get("Host", ""),
                                                            "Accept": self.headers.get("Accept", "*/*")})
                response = upstream.getresponse()
                body = response.read()
                self.send_response(response.status)
                sent = {k: v for k, v in response.getheaders()
                        if k.lower() not in ("transfer-encoding", "connection", "content-length")}
                for name, value in headers.items():
                    sent = {k: v for k, v in sent.items() if k.lower() != name.lower()}
                    if value:
                        sent[name] = value
                door.sent.append(sent)
                for name, value in sent.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.sent: list[dict[str, str]] = []
        self._serve_in_background(ThreadingHTTPServer(("127.0.0.1", 0), Handler))


def start_app(policy: str | None, tmp_path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "NODE_ENV": "production", "NEXT_TELEMETRY_DISABLED": "1"}
    env.pop("CONTENT_SECURITY_POLICY", None)
    if policy is not None:
        env["CONTENT_SECURITY_POLICY"] = policy
    log = open(tmp_path / "next.log", "w")
    app = subprocess.Popen([str(APP / "node_modules" / ".bin" / "next"), "start", "-p", str(port), "-H", "127.0.0.1"],
                           cwd=APP, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert app.poll() is None, (tmp_path / "next.log").read_text()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/")
            if connection.getresponse().status == 200:
                return app, port
        except OSError:
            time.sleep(0.3)
    app.terminate()
    raise AssertionError(f"next start did not answer in 60 s:\n{(tmp_path / 'next.log').read_text()}")


def load_in_chromium(url: str, tmp_path) -> tuple[str, str]:
    """(the DOM once the page's scripts have run, Chromium's log with the page's console messages)."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed (make test installs it)"
    result = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-default-apps",
         "--disable-domain-reliability", "--disable-client-side-phishing-detection", "--no-pings",
         "--proxy-server=http://127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
         f"--user-data-dir={tmp_path / 'profile'}",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000", "--dump-dom", url],
        capture_output=True, text=True, timeout=120)
    return result.stdout, result.stderr


def violations(log: str) -> list[str]:
    return [line for line in log.splitlines() if "Content Security Policy" in line]


def serve_and_load(headers: dict[str, str], policy: str | None, tmp_path) -> tuple[str, str, FrontDoor, list[str]]:
    """Chromium's DOM and log for the page, the front door, and two more answers' HTML as served."""
    app, port = start_app(policy, tmp_path)
    door = FrontDoor(port, headers)
    try:
        dom, log = load_in_chromium(f"{door.url}/", tmp_path)
        pages = []
        for _ in range(2):
            connection = http.client.HTTPConnection("127.0.0.1", door.port, timeout=30)
            connection.request("GET", "/")
            pages.append(connection.getresponse().read().decode())
    finally:
        door.stop()
        app.terminate()
        app.wait(timeout=20)
    return dom, log, door, pages


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_page_hydrates_under_the_rendered_policy_with_no_violation(rendered, env, tmp_path):
    docs = rendered[env]
    route = find(docs, "HTTPRoute", "kubechat-web")["spec"]["rules"][-1]
    names = [f["extensionRef"]["name"] for f in route["filters"] if f["type"] == "ExtensionRef"]
    middleware = next(find(docs, "Middleware", name)["spec"]["headers"] for name in names
                      if "headers" in find(docs, "Middleware", name)["spec"])
    headers = middleware_response_headers(middleware, tls=False)  # plain HTTP here: no Strict-Transport-Security
    policy = find(docs, "ConfigMap", "kubechat-web-content-security-policy")["data"]["CONTENT_SECURITY_POLICY"]
    assert "{nonce}" in policy and "Content-Security-Policy" not in headers
    dom, log, door, pages = serve_and_load(headers, policy, tmp_path)
    nonces = []
    for sent, html in zip(door.sent[-2:], pages):  # the two answers fetched after Chromium's
        page = {name.lower(): value for name, value in sent.items()}
        for name, value in headers.items():
            assert page.get(name.lower()) == value, (name, page)
        sent_policy = page["content-security-policy"]
        nonce = sent_policy.split("'nonce-", 1)[1].split("'", 1)[0]
        assert sent_policy == policy.replace("{nonce}", nonce), sent_policy
        assert len(base64.b64decode(nonce)) >= 16, f"a nonce of fewer than 128 bits: {nonce}"
        scripts = re.findall(r"<script\b[^>]*>", html)
        assert scripts and all(f'nonce="{nonce}"' in tag for tag in scripts), scripts
        nonces.append(nonce)
    assert nonces[0] != nonces[1], "the nonce must be fresh for every response"
    assert HYDRATED in dom, f"the page did not hydrate:\n{dom[-2000:]}\n{violations(log)}"
    assert violations(log) == []


def test_the_former_policy_blocks_hydration_and_chromium_says_so(rendered, tmp_path):
    """The control: the policy the front door sent on every response before (script-src 'self')."""
    docs = rendered["staging"]
    api_host = find(docs, "HTTPRoute", "kubechat-api")["spec"]["hostnames"][0]
    dom, log, _, _ = serve_and_load({"Content-Security-Policy": content_security_policy(api_host)}, None, tmp_path)
    assert HYDRATED not in dom and '<p id="hydration">server-rendered</p>' in dom, dom[-2000:]
    assert violations(log), log[-3000:]
