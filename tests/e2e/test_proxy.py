"""deploy/rmgap-locations.conf in a real nginx, and deploy/Caddyfile in a real Caddy, in front of two app servers.

The proxy is what closes the Streamlit endpoints that Streamlit cannot turn
off (/_stcore/metrics answers anyone on the app's own port); the page and
its websocket must still work through it. Also checks that deploy/nginx.conf
as shipped passes ``nginx -t`` (with a throwaway certificate in place of the
real one). Skips without nginx (``make test`` installs it as root) or
Caddy (``apt-get install caddy``; not installed by ``make test``, since its
package starts a server on port 80).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from rmgap_annot.accounts import create_user
from rmgap_annot.formats.rmgap import import_benchmark
from rmgap_annot.synthetic import make_records, write_jsonl
from tests.e2e.conftest import ROOT, WAIT_MS, AppServer, free_port, log_in, pick_and_submit, start_server

pytestmark = pytest.mark.e2e
PASSWORD = "long-enough-password"
DEPLOY = ROOT / "deploy"


def nginx_path() -> str:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if not path:
        pytest.skip("nginx is not installed (make test installs it with apt-get when run as root)")
    return path


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0  # not listening (yet)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory):
    nginx = nginx_path()
    folder = tmp_path_factory.mktemp("proxy")

    def prepare(engine):  # noqa: ANN001
        records = make_records({"Chat": 1, "Writing": 1}, seed=2, long_text=False)
        import_benchmark(engine=engine, path=write_jsonl(folder / "b.jsonl", records), name="proxy")
        create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)

    first = start_server(tmp_path_factory, prepare)
    second = AppServer(first.db_url, folder / "second.log")
    port = free_port()
    conf = folder / "nginx.conf"
    conf.write_text(f"""
daemon off;
user root;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    upstream rmgap_annot {{
        ip_hash;
        server 127.0.0.1:{first.port};
        server 127.0.0.1:{second.port};
    }}
    server {{
        listen 127.0.0.1:{port};
        include {DEPLOY / 'rmgap-locations.conf'};
    }}
}}
""")
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 20
    while status(url + "_stcore/health") != 200:  # noqa: PLR2004
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError((folder / "error.log").read_text() if (folder / "error.log").exists() else "nginx did not start")
        time.sleep(0.2)
    yield url, first
    proc.terminate()
    proc.wait(timeout=10)
    second.stop()
    first.stop()


def test_the_proxy_blocks_what_streamlit_cannot_turn_off(proxied):
    url, app = proxied
    assert status(app.url + "_stcore/metrics") == 200  # Streamlit's own port serves it to anyone
    for path in ("_stcore/metrics", "_stcore/script-health-check", "_stcore/agent/openapi.json", "app/static/x.txt"):
        assert status(url + path) == 404, path  # noqa: PLR2004
    assert status(url + "_stcore/health") == 200  # from this machine only  # noqa: PLR2004


def test_an_annotator_labels_through_the_proxy(proxied, browser):
    url, _ = proxied
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    log_in(page, url, "ann", PASSWORD)  # the websocket goes through nginx's Upgrade handling
    pick_and_submit(page, "C", 5)
    page.get_by_text("1 of ", exact=False).first.wait_for(timeout=WAIT_MS)
    page.close()


def test_the_shipped_nginx_conf_passes_nginx_t(tmp_path):
    nginx = nginx_path()
    openssl = shutil.which("openssl") or pytest.skip("openssl is not installed")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=annot.example.org",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem")], check=True, capture_output=True)
    site = (DEPLOY / "nginx.conf").read_text()
    site = site.replace("/etc/letsencrypt/live/annot.example.org/fullchain.pem", str(tmp_path / "cert.pem"))
    site = site.replace("/etc/letsencrypt/live/annot.example.org/privkey.pem", str(tmp_path / "key.pem"))
    site = site.replace("snippets/rmgap-locations.conf", str(DEPLOY / "rmgap-locations.conf"))
    site = site.replace("/var/log/nginx/rmgap-annot.access.log", str(tmp_path / "access.log"))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{}}
http {{ include {tmp_path}/site.conf; }}
""")
    res = subprocess.run([nginx, "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.fixture(scope="module")
def caddy_proxied(tmp_path_factory):
    caddy = shutil.which("caddy") or pytest.skip("caddy is not installed")
    folder = tmp_path_factory.mktemp("caddy")

    def prepare(engine):  # noqa: ANN001
        records = make_records({"Chat": 1, "Writing": 1}, seed=4, long_text=False)
        import_benchmark(engine=engine, path=write_jsonl(folder / "b.jsonl", records), name="caddy")
        create_user(engine=engine, name="ann", role="annotator", password=PASSWORD)

    first = start_server(tmp_path_factory, prepare)
    second = AppServer(first.db_url, folder / "second.log")
    port = free_port()
    # The shipped file, served over plain HTTP on a free port (no certificate in a test).
    conf = (DEPLOY / "Caddyfile").read_text()
    conf = conf.replace("annot.example.org {", f"{{\n\tadmin off\n}}\n\nhttp://127.0.0.1:{port} {{", 1)
    conf = conf.replace("reverse_proxy 127.0.0.1:8501 127.0.0.1:8502", f"reverse_proxy 127.0.0.1:{first.port} 127.0.0.1:{second.port}")
    conf = conf.replace("/var/log/caddy/rmgap-annot.access.log", str(folder / "access.log"))
    (folder / "Caddyfile").write_text(conf)
    env = {**os.environ, "HOME": str(folder), "XDG_DATA_HOME": str(folder), "XDG_CONFIG_HOME": str(folder)}
    log = open(folder / "caddy.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([caddy, "run", "--config", str(folder / "Caddyfile"), "--adapter", "caddyfile"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while status(url + "_stcore/health") != 200:  # noqa: PLR2004
        if time.monotonic() > deadline or proc.poll() is not None:
            log.flush()
            raise RuntimeError((folder / "caddy.log").read_text()[-3000:])
        time.sleep(0.2)
    yield url, first
    proc.terminate()
    proc.wait(timeout=10)
    log.close()
    second.stop()
    first.stop()


def test_the_caddyfile_blocks_what_streamlit_cannot_turn_off_and_serves_the_app(caddy_proxied, browser):
    url, app = caddy_proxied
    assert status(app.url + "_stcore/metrics") == 200  # noqa: PLR2004
    for path in ("_stcore/metrics", "_stcore/script-health-check", "_stcore/agent/openapi.json", "app/static/x.txt"):
        assert status(url + path) == 404, path  # noqa: PLR2004
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    log_in(page, url, "ann", PASSWORD)  # the websocket through Caddy
    pick_and_submit(page, "D", 4)
    page.get_by_text("1 of ", exact=False).first.wait_for(timeout=WAIT_MS)
    page.close()
