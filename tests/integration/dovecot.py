"""A throwaway Dovecot for the IMAP tests and the latency benchmark.

Everything lives in one temp dir: config, base_dir, state, log, maildirs, a self-signed TLS cert
made with openssl, and a passwd-file. The server runs as the current user (root in CI), listens on
127.0.0.1 on free ports (plain IMAP and IMAPS), and accepts XOAUTH2 against a small introspection
server on 127.0.0.1 that answers for the tokens given here.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs

import pytest
from imapclient import IMAPClient

DOVECOT = os.environ.get("INTAKE_TEST_DOVECOT", shutil.which("dovecot") or "/usr/sbin/dovecot")
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
PASSWORD = "s3cret-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def require_dovecot() -> None:
    """Skip when Dovecot is not installed; fail in CI, where a skipped service test proves nothing."""
    if Path(DOVECOT).is_file() and os.access(DOVECOT, os.X_OK):
        return
    message = f"dovecot not found at {DOVECOT} (install it with deploy/dovecot.sh install)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class _Introspection(BaseHTTPRequestHandler):
    """RFC 7662 token introspection: POST token=... -> {"active": true, "username": ...}."""

    tokens: ClassVar[dict[str, str]] = {}

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        token = (parse_qs(body).get("token") or [""])[0]
        user = self.tokens.get(token)
        answer = {"active": True, "username": user} if user else {"active": False}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _service_users() -> tuple[pwd.struct_passwd, pwd.struct_passwd, pwd.struct_passwd]:
    """(internal, login, mail) users. A non-root user runs everything as itself. As root, the master
    runs as root but Dovecot refuses root for login, internal and mail processes ("must not be run
    as root", "Mail access not allowed for root"), so those use the package's users and nobody."""
    if os.getuid() != 0:
        me = pwd.getpwuid(os.getuid())
        return me, me, me

    def user(name: str) -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            return pwd.getpwnam("nobody")

    return user("dovecot"), user("dovenull"), user("nobody")


class DovecotServer:
    def __init__(self, users: Iterable[str] = ("alice",), *, idle: bool = True) -> None:
        # Short (unix socket paths), and traversable by the unprivileged login and auth users.
        self.root = Path(tempfile.mkdtemp(prefix="omnintake-dovecot-"))
        self.root.chmod(0o755)
        self.users = tuple(users)
        self.idle = idle
        self.host = "127.0.0.1"
        self.port = free_port()
        self.ssl_port = free_port()
        self.tokens = {f"token-{user}": user for user in self.users}
        self.ca_file = self.root / "tls" / "cert.pem"
        self.conf = self.root / "dovecot.conf"
        self.proc: subprocess.Popen[bytes] | None = None
        self._oauth: ThreadingHTTPServer | None = None

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> DovecotServer:
        if not self.conf.exists():
            self._prepare()
        if self._oauth is None:
            handler = type("Introspection", (_Introspection,), {"tokens": self.tokens})
            self._oauth = ThreadingHTTPServer((self.host, 0), handler)
            threading.Thread(target=self._oauth.serve_forever, daemon=True).start()
            self._write_oauth_conf()
        with open(self.root / "stderr.log", "ab") as stderr:  # the child keeps its own copy
            self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                         stderr=stderr, start_new_session=True)
        deadline = time.monotonic() + 20
        while not (self._listening(self.port) and self._listening(self.ssl_port)):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not start:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def stop(self, kill: bool = False) -> None:
        """Stop the master (SIGTERM: it ends its children), or kill the whole process group hard, as
        a crash would (imap processes outlive a killed master and keep serving their connections)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            if kill:
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(20)
        self.proc = None
        deadline = time.monotonic() + 20
        while self._listening(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.stop()
        if self._oauth is not None:
            self._oauth.shutdown()
            self._oauth.server_close()
            self._oauth = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> DovecotServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _listening(self, port: int) -> bool:
        try:
            with socket.create_connection((self.host, port), timeout=0.5):
                return True
        except OSError:
            return False

    def log_tail(self, lines: int = 40) -> str:
        text = ""
        for name in ("dovecot.log", "stderr.log"):
            path = self.root / name
            if path.exists():
                text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    # --- clients and admin ----------------------------------------------------------------

    def client(self, user: str | None = None) -> IMAPClient:
        client = IMAPClient(self.host, self.port, ssl=False, timeout=60)
        client.login(user or self.users[0], PASSWORD)
        return client

    def append(self, messages: Iterable[bytes], folder: str = "INBOX", user: str | None = None) -> int:
        count = 0
        client = self.client(user)
        try:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            for raw in messages:
                client.append(folder, raw)
                count += 1
        finally:
            client.logout()
        return count

    def doveadm(self, *args: str) -> str:
        done = subprocess.run([DOVEADM, "-c", str(self.conf), *args], capture_output=True, text=True, timeout=60)
        if done.returncode:
            raise RuntimeError(f"doveadm {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    # --- files ------------------------------------------------------------------------------

    def _prepare(self) -> None:
        for sub in ("run", "state", "tls", "mail"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._make_cert()
        internal, login, mail = _service_users()
        group = grp.getgrgid(internal.pw_gid).gr_name
        uid, gid = mail.pw_uid, mail.pw_gid
        os.chown(self.root / "mail", uid, gid)
        (self.root / "users").write_text("".join(
            f"{user}:{{PLAIN}}{PASSWORD}:::::\n" for user in self.users))
        capability = "" if self.idle else (
            "imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE LITERAL+ NAMESPACE UIDPLUS "
            "UNSELECT CHILDREN CONDSTORE QRESYNC\n")
        self.conf.write_text(f"""\
# generated by tests/integration/dovecot.py for one test run
protocols = imap
listen = {self.host}
base_dir = {self.root}/run
state_dir = {self.root}/state
instance_name = omnintake-test-{self.port}
log_path = {self.root}/dovecot.log
info_log_path = {self.root}/dovecot.log
default_internal_user = {internal.pw_name}
default_internal_group = {group}
default_login_user = {login.pw_name}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}
mail_uid = {uid}
mail_gid = {gid}
mail_home = {self.root}/mail/%n
mail_location = maildir:~/Maildir
mail_privileged_group =
ssl = yes
ssl_cert = <{self.root}/tls/cert.pem
ssl_key = <{self.root}/tls/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2 oauthbearer
mailbox_idle_check_interval = 1 secs
{capability}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/users
}}
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {self.root}/oauth2.conf
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {self.root}/users
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    address = {self.host}
    port = {self.ssl_port}
    ssl = yes
  }}
}}
service pop3-login {{
  chroot =
}}
service submission-login {{
  chroot =
}}
service anvil {{
  chroot =
}}
service imap-urlauth-login {{
  chroot =
}}
""")

    def _write_oauth_conf(self) -> None:
        assert self._oauth is not None
        port = self._oauth.server_address[1]
        (self.root / "oauth2.conf").write_text(f"""\
introspection_mode = post
introspection_url = http://{self.host}:{port}/introspect
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
""")

    def _make_cert(self) -> None:
        tls = self.root / "tls"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                        "-keyout", str(tls / "key.pem"), "-out", str(tls / "cert.pem")],
                       check=True, capture_output=True, timeout=60)
