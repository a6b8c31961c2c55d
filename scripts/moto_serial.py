#!/usr/bin/env python3
"""moto server, one request at a time.

moto's own server handles requests on threads and its DynamoDB backend does
not lock, so two conditional writes racing on one item can both pass — which
DynamoDB never allows (conditional writes are atomic per item). tvm's tests
race on purpose (approvers, rate-limit bursts), so they run moto through this
launcher: the same application, each request handled under one lock.

    moto_serial.py HOST PORT
"""

import os
import sys
import threading

from werkzeug.serving import run_simple

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    lock = threading.Lock()

    def serial(environ, start_response):
        with lock:
            # Drain the response inside the lock: the work happens here.
            return list(app(environ, start_response))

    run_simple(host, port, serial, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
