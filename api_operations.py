"""What operators plug into: /metrics (api_metrics.py), request ids on every request and log
line (api_request_ids.py), and the queue page (api_queues.py)."""

from __future__ import annotations

from flask import Flask

from api_metrics import metrics_endpoint
from api_queues import queue_pages
from api_request_ids import request_id_hooks


def operations(app: Flask) -> None:
    request_id_hooks(app)
    app.register_blueprint(metrics_endpoint())
    app.register_blueprint(queue_pages("queues"), url_prefix="/admin/rq")
    app.register_blueprint(queue_pages("console_queues"), url_prefix="/console/admin/rq")
