"""What the WinRM listener answers at the HTTP level before any WS-Man operation runs.

As Windows captures show: WinRM takes only POST (405 with ``Allow: POST``) and only SOAP,
plain or sealed by the authentication (anything else: 415). Authentication comes first.
"""

from __future__ import annotations

import pytest
import requests

from casdesired.lab.server import Lab

from .conftest import protocol, run

NO_PROXY = {"http": "", "https": ""}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_wsman_takes_only_post(basic_lab: Lab, method: str) -> None:
    answer = requests.request(method, basic_lab.url, timeout=5, proxies=NO_PROXY)
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "POST"
    assert answer.content == b""


def test_a_body_that_is_not_soap_is_unsupported_media(basic_lab: Lab) -> None:
    account = (basic_lab.credentials.username, basic_lab.credentials.password)
    for content_type in ("text/plain", "application/json", "application/xml"):
        answer = requests.post(basic_lab.url, data=b'{"not": "soap"}', auth=account,
                               headers={"Content-Type": content_type}, timeout=5,
                               proxies=NO_PROXY)
        assert answer.status_code == 415, content_type
    assert basic_lab.journal.entries(["wsman"]) == []  # nothing reached the service
    # SOAP, as every WinRM client sends it, is of course accepted.
    assert run(protocol(basic_lab), "hostname")[2] == 0


def test_authentication_comes_before_the_media_type(basic_lab: Lab) -> None:
    answer = requests.post(basic_lab.url, data=b"plain", timeout=5, proxies=NO_PROXY,
                           headers={"Content-Type": "text/plain"})
    assert answer.status_code == 401
