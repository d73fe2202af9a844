"""An aiosmtpd server that requires AUTH (PLAIN or LOGIN) with one user.

The aiosmtpd command line cannot turn AUTH on, hence this script.
Usage: smtp_auth.py PORT MAILDIR USER PASSWORD
"""
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult

port, maildir, user, password = sys.argv[1:5]


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == user.encode() and auth_data.password == password.encode()
    # handled=False makes aiosmtpd answer 535 itself; otherwise it answers nothing.
    return AuthResult(success=ok, handled=False)


controller = Controller(
    Mailbox(maildir),
    hostname="127.0.0.1",
    port=int(port),
    authenticator=authenticate,
    auth_required=True,
    auth_require_tls=False,
)
controller.start()
threading.Event().wait()
