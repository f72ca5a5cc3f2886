"""HTTPS with the lab's generated certificate: validated with the CA file, refused without."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography import x509
from requests.exceptions import SSLError

from casdesired.lab.server import Lab

from .conftest import FakeOrganisation, protocol, run


@pytest.fixture
def tls_lab(organisation: FakeOrganisation) -> Iterator[Lab]:
    # Basic over HTTPS: TLS encrypts every message, so the lab's default
    # allow_unencrypted=False (Windows' AllowUnencrypted=false) does not stand in the way.
    with Lab(organisation, auth="basic", tls=True) as lab:
        yield lab


def test_url_is_https(tls_lab: Lab) -> None:
    assert tls_lab.url.startswith("https://127.0.0.1:")
    assert tls_lab.ca_file is not None and tls_lab.ca_file.exists()


def test_ssl_transport_validates_with_the_ca_file(tls_lab: Lab) -> None:
    proto = protocol(tls_lab, transport="ssl", ca_trust_path=str(tls_lab.ca_file))
    assert run(proto, "hostname") == (b"HQ-CAS01\r\n", b"", 0)


def test_localhost_name_validates_too(tls_lab: Lab) -> None:
    tls_lab.url = tls_lab.url.replace("127.0.0.1", "localhost")
    proto = protocol(tls_lab, transport="ssl", ca_trust_path=str(tls_lab.ca_file))
    assert run(proto, "hostname")[2] == 0


def test_without_the_ca_file_validation_fails(tls_lab: Lab) -> None:
    with pytest.raises(SSLError):
        protocol(tls_lab, transport="ssl", ca_trust_path=None).open_shell()


def test_certificate_names_loopback(tls_lab: Lab) -> None:
    assert tls_lab.ca_file is not None
    cert_pem = (tls_lab.ca_file.parent / "lab-cert.pem").read_bytes()
    cert = x509.load_pem_x509_certificates(cert_pem)[0]
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert "127.0.0.1" in [str(ip) for ip in names.get_values_for_type(x509.IPAddress)]


def test_ntlm_over_https_with_channel_binding(organisation: FakeOrganisation) -> None:
    with Lab(organisation, auth="ntlm", tls=True) as lab:
        proto = protocol(lab, transport="ntlm", ca_trust_path=str(lab.ca_file))
        assert run(proto, "hostname")[2] == 0


def test_files_are_removed_on_stop(organisation: FakeOrganisation) -> None:
    with Lab(organisation, tls=True) as lab:
        ca_file = lab.ca_file
        assert ca_file is not None and ca_file.exists()
    assert not ca_file.exists()
