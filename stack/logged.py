"""`python -m stack.logged chalice local ...`: a Python console script run with the stack's logging
(stack/console.py configure_child_logging): each record with its level, libraries quiet unless
LOG_LEVEL=debug. `chalice local` itself would log every library's INFO record, level-less."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

from .console import configure_child_logging


def answer_unknown_methods() -> None:
    """chalice local is an http.server: a method it has no do_<METHOD> for (TRACE, CONNECT, a made-up one)
    gets http.server's HTML 501 page. Answer it as the app answers a method a route does not know: 405 in
    the error shape. (API Gateway refuses such methods itself.)"""
    import json

    from chalice.local import ChaliceRequestHandler

    from chalicelib.core.errors import ErrorCode, error_body

    def handler_for(self: ChaliceRequestHandler, name: str) -> object:
        if not name.startswith("do_"):
            raise AttributeError(name)

        def refuse() -> None:
            body = json.dumps(error_body(ErrorCode.METHOD_NOT_ALLOWED, f"Unsupported method: {self.command}: "
                                         "use GET, POST, PATCH or DELETE as the route says")).encode()
            self.send_response(405)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        return refuse

    ChaliceRequestHandler.__getattr__ = handler_for


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m stack.logged SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    (script,) = entry_points(group="console_scripts", name=argv[0])
    configure_child_logging()  # first: chalice local's basicConfig then finds the root configured
    if argv[0] == "chalice":
        answer_unknown_methods()
    sys.argv = argv
    code = script.load()()
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
