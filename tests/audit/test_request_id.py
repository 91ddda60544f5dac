"""Every audit record written while serving a request names that request."""

from __future__ import annotations

import pytest

from oversight.models import AuditRecord
from tests.personas import alice, client_for, instrument  # noqa: F401

pytestmark = pytest.mark.django_db


def test_records_carry_the_request_id_the_response_echoes(alice, instrument) -> None:  # noqa: F811
    c = client_for(alice)
    resp = c.post(
        "/orders/new/",
        {
            "instrument": instrument.pk,
            "side": "buy",
            "quantity": "1000",
            "start_minute": "0",
            "end_minute": "60",
            "strategy": "twap",
        },
    )
    assert resp.status_code in (200, 302)
    rid = resp["X-Request-Id"]
    assert len(rid) == 32
    submitted = AuditRecord.objects.get(action="order.submit")
    assert submitted.request_id == rid
    # A sane id from a proxy goes in front of a new one; anything else is dropped. Sent
    # twice (or copied from another's request), it never makes two requests one.
    resp = c.get("/", HTTP_X_REQUEST_ID="lb-7f3a:42")
    again = c.get("/", HTTP_X_REQUEST_ID="lb-7f3a:42")
    assert resp["X-Request-Id"].startswith("lb-7f3a:42/") and len(resp["X-Request-Id"]) == 43
    assert again["X-Request-Id"] != resp["X-Request-Id"]
    long = c.get("/", HTTP_X_REQUEST_ID="x" * 64)["X-Request-Id"]
    assert len(long) == 64 and long.startswith("x" * 31 + "/")
    resp = c.get("/", HTTP_X_REQUEST_ID="<script>")
    assert resp["X-Request-Id"] != "<script>" and len(resp["X-Request-Id"]) == 32
