"""Headless Chromium (Debian's package) for the page checks: run it, and learn which
network requests a page makes through a logging proxy that answers none of them."""
import http.server
import re
import socketserver
import subprocess
import threading


def chromium(*args, timeout=120):
    return subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                           "--no-first-run", "--disable-background-networking",
                           "--disable-component-update", *args],
                          capture_output=True, text=True, timeout=timeout)


class _Proxy(http.server.BaseHTTPRequestHandler):
    seen = []

    def do_GET(self):
        _Proxy.seen.append(self.path)
        self.send_response(404)
        self.end_headers()

    def do_CONNECT(self):
        _Proxy.seen.append(self.path)
        self.send_response(403)
        self.end_headers()

    def log_message(self, *a):
        pass


# Chromium's own background calls (time, updates, accounts) go to these hosts.
_BROWSER = re.compile(r"^(https?://)?[a-z0-9.-]*\.(google\.com|googleapis\.com|gvt1\.com)(:\d+)?(/|$)")


def requests_of(url):
    """The DOM of a page after its scripts ran, and every request it made (the
    browser's own update checks left out)."""
    _Proxy.seen = []
    server = socketserver.TCPServer(("127.0.0.1", 0), _Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dom = chromium(f"--proxy-server=http://127.0.0.1:{server.server_address[1]}",
                       "--proxy-bypass-list=<-loopback>", "--dump-dom", url).stdout
    finally:
        server.shutdown()
        server.server_close()
    return dom, [s for s in _Proxy.seen if not _BROWSER.match(s)]
