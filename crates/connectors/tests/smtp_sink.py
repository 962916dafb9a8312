"""A real SMTP server for crates/connectors/tests/smtp.rs, on 127.0.0.1 (aiosmtpd).

It accepts mail and writes each message it receives as one JSON line to --out:
{"mail_from", "rcpt_tos", "data", "tls", "login"}, so the test can check what arrived,
whether it came over TLS and who logged in. --tls picks how TLS starts: "starttls" (plain
connection, STARTTLS required before anything else), "implicit" (TLS from the first byte)
or "none". With --user/--password, AUTH PLAIN/LOGIN is offered and required; a wrong
password is answered 535 as real servers do. Prints "READY" once it listens; runs until
killed.
"""

import argparse
import json
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--tls", choices=["starttls", "implicit", "none"], required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--user")
    p.add_argument("--password")
    p.add_argument("--out", required=True)
    a = p.parse_args()

    context = None
    if a.tls != "none":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(a.cert, a.key)

    lock = threading.Lock()

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            record = {
                "mail_from": envelope.mail_from,
                "rcpt_tos": envelope.rcpt_tos,
                "data": envelope.content.decode("utf-8", "replace"),
                # session.ssl is set by STARTTLS; implicit TLS shows on the transport.
                "tls": (session.ssl is not None
                        or server.transport.get_extra_info("ssl_object") is not None),
                "login": (session.login_data.decode() if session.login_data else None),
            }
            with lock, open(a.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            return "250 2.0.0 Ok: queued"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == a.user
              and auth_data.password.decode() == a.password)
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        # handled=False: aiosmtpd answers "535 5.7.8 Authentication credentials invalid".
        return AuthResult(success=False, handled=False)

    options = {}
    if a.user:
        options["authenticator"] = authenticator
        options["auth_required"] = True
        # Over implicit TLS the connection is already encrypted.
        options["auth_require_tls"] = a.tls == "starttls"
    if a.tls == "starttls":
        options["tls_context"] = context
        options["require_starttls"] = True

    controller = Controller(
        Sink(),
        hostname="127.0.0.1",
        port=a.port,
        ssl_context=context if a.tls == "implicit" else None,
        server_hostname="localhost",
        **options,
    )
    controller.start()
    print("READY", flush=True)
    try:
        threading.Event().wait()
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
