"""An aiosmtpd server on 127.0.0.1 for the relay package's interop tests.

Usage: aiosmtpd_server.py MODE CERT KEY USER PASSWORD

MODE is "starttls" (plaintext first; every command but EHLO, NOOP, QUIT
and STARTTLS is refused before STARTTLS) or "implicit" (TLS from the
first byte, RFC 8314). AUTH (PLAIN and LOGIN, aiosmtpd's own) is required
before MAIL, and accepts USER with PASSWORD only, over TLS only. A
recipient whose local part is "refused" gets 550 5.1.1.

It prints JSON lines on its standard output: first {"event": "ready",
"port": N}, then one per AUTH ({"event": "auth", "mechanism", "login",
"success", "tls"}) and one per message ({"event": "message", "mail_from",
"mail_options", "rcpt_tos", "rcpt_options", "data" (base64 of the content
as received, dots unstuffed), "login", "tls"}), where "tls" is the TLS
version of the connection, "" for none. It runs until its standard input
closes.
"""

import asyncio
import base64
import hmac
import json
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def emit(event):
    print(json.dumps(event), flush=True)


def tls_version(server):
    ssl_object = server.transport.get_extra_info("ssl_object")
    return ssl_object.version() if ssl_object is not None else ""


class Handler:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@")[0] == "refused":
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        emit({
            "event": "message",
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "rcpt_options": envelope.rcpt_options,
            "data": base64.b64encode(envelope.content).decode(),
            "login": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else "",
            "tls": tls_version(server),
        })
        return "250 2.0.0 OK: queued"


def authenticator(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        tls = tls_version(server)
        ok = (isinstance(auth_data, LoginPassword) and tls != ""
              # Both compared, in constant time, whatever the first gives.
              and hmac.compare_digest(auth_data.login, user)
              & hmac.compare_digest(auth_data.password, password))
        emit({
            "event": "auth",
            "mechanism": mechanism,
            "login": auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "",
            "success": bool(ok),
            "tls": tls,
        })
        # handled=False: aiosmtpd replies 235, or 535 5.7.8 on failure.
        return AuthResult(success=bool(ok), handled=False, auth_data=auth_data)
    return authenticate


async def serve(mode, cert, key, user, password):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    loop = asyncio.get_running_loop()
    if mode == "starttls":
        def factory():
            return SMTP(Handler(), hostname="aiosmtpd.example.net", loop=loop,
                        enable_SMTPUTF8=True, tls_context=context, require_starttls=True,
                        auth_required=True, authenticator=authenticator(user, password))
        server_ssl = None
    elif mode == "implicit":
        # aiosmtpd counts only STARTTLS as TLS for auth_require_tls, so it
        # would neither offer nor take AUTH here; the authenticator checks
        # that the connection is TLS instead.
        def factory():
            return SMTP(Handler(), hostname="aiosmtpd.example.net", loop=loop,
                        enable_SMTPUTF8=True, auth_require_tls=False,
                        auth_required=True, authenticator=authenticator(user, password))
        server_ssl = context
    else:
        sys.exit("mode is starttls or implicit, not %r" % mode)
    server = await loop.create_server(factory, host="127.0.0.1", port=0, ssl=server_ssl)
    emit({"event": "ready", "port": server.sockets[0].getsockname()[1]})
    await loop.run_in_executor(None, sys.stdin.buffer.read)
    server.close()
    await server.wait_closed()


def main():
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    mode, cert, key, user, password = sys.argv[1:]
    asyncio.run(serve(mode, cert, key, user.encode(), password.encode()))


if __name__ == "__main__":
    main()
