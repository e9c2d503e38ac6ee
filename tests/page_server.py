"""The Chalice app served by chalice local's own server over in-process moto, for the browser tests of
the HTML pages: `python -m tests.page_server PORT`. It creates one WhatsApp instance with a pending QR,
prints {"instance_id": ...} on its first line, and serves until killed.

Requests under /prod/ are answered as API Gateway answers a stage: the app sees the path without the
prefix, the browser keeps it, so the pages' relative links are tested as they resolve in AWS. Under
/decoded/ the path parameters also reach the app percent-decoded (as a gateway that decodes them hands
them over; chalice local does not): a hostile id then arrives with its raw <, > and quotes."""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import unquote

from chalice.app import Chalice
from chalice.config import Config
from chalice.local import (
    ChaliceRequestHandler,
    CustomLocalChalice,
    LambdaEventConverter,
    LocalChalice,
    LocalDevServer,
    LocalGateway,
)

from chalicelib import wiring
from chalicelib.core.types import AuthStatus, Status
from tests.aws import moto_environment

STAGE, DECODING_STAGE = "/prod", "/decoded"
QR = "2@PAGE-TEST-QR,PUBLIC-KEY,IDENTITY,ADV"


class DecodingConverter(LambdaEventConverter):
    def create_lambda_event(self, method: str, path: str, headers: dict[str, str], body: bytes | None = None) -> Any:
        event = super().create_lambda_event(method, path, headers, body)
        event["pathParameters"] = {name: unquote(value) for name, value in (event["pathParameters"] or {}).items()}
        return event


class StagePrefixHandler(ChaliceRequestHandler):
    path: str  # set by BaseHTTPRequestHandler.parse_request

    def __init__(self, request: Any, client_address: Any, server: HTTPServer, app_object: Chalice,
                 config: Config) -> None:
        self.local_gateway = LocalGateway(app_object, config)
        self._plain = self.local_gateway.event_converter
        self._decoding = DecodingConverter(self._plain._route_matcher, app_object.api.binary_types)
        BaseHTTPRequestHandler.__init__(self, request, client_address, server)

    def parse_request(self) -> bool:
        parsed = bool(super().parse_request())
        self.local_gateway.event_converter = self._plain
        path = self.path
        for stage, converter in ((STAGE, self._plain), (DECODING_STAGE, self._decoding)):
            if parsed and path.startswith(stage + "/"):
                self.path = path[len(stage):]
                self.local_gateway.event_converter = converter
        return parsed


def main(port: int) -> None:
    admin_key = os.environ.get("PAGE_SERVER_ADMIN_KEY", "")
    for _env in moto_environment():
        os.environ["ADMIN_API_KEY"] = admin_key
        wiring.reset()
        instance = wiring.container().instances.create({"company_id": "pages", "provider": "whatsappweb"})
        repository = wiring.container().repository
        repository.set_qr(instance.id, QR)
        repository.report(instance.id, status=Status.QR_READY, auth_status=AuthStatus.QR_READY)

        import app

        # What chalice.local.create_local_server does, with a handler that knows the stage prefix.
        CustomLocalChalice.__bases__ = (LocalChalice, app.app.__class__)
        app.app.__class__ = CustomLocalChalice
        server = LocalDevServer(app.app, Config.create(chalice_stage="dev"), "127.0.0.1", port,
                                handler_cls=StagePrefixHandler)
        print(json.dumps({"instance_id": instance.id}), flush=True)
        server.server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]))
