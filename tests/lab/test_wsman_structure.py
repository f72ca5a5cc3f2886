"""The lab's responses have the element structure of real Windows WinRM responses.

The fixtures below describe, in our own compact form, what Windows Server answers to each
operation pywinrm sends (learnt from the captures in pywinrm's tests and MS-WSMV; written
here from scratch): element names with their namespaces, in order, with the exact set of
attributes each carries, and the fixed texts (actions, states). Each lab response is compared
element by element against them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import pytest
from winrm.exceptions import WSManFaultError

from casdesired.lab.server import Lab

from .conftest import protocol

NS = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "a": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "w": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "x": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "f": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "xml": "http://www.w3.org/XML/1998/namespace",
}
SHELL = NS["rsp"]


@dataclass
class E:
    """An expected element: ``prefix:name``, its attribute names, children, optional text."""

    tag: str
    attrs: frozenset[str] = frozenset()
    children: list[E] = field(default_factory=list)
    text: str | None = None


def e(tag: str, *children: E, attrs: tuple[str, ...] = (), text: str | None = None) -> E:
    return E(tag, frozenset(attrs), list(children), text)


def header(action: str) -> E:
    return e("s:Header", e("a:Action", text=action), e("a:MessageID"), e("a:To"),
             e("a:RelatesTo"))


def response(action: str, *body: E) -> E:
    return e("s:Envelope", header(action), e("s:Body", *body), attrs=("xml:lang",))


STREAM = ("Name", "CommandId")
WINDOWS: dict[str, E] = {
    "Create": response(
        "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse",
        e("x:ResourceCreated",
          e("a:Address"),
          e("a:ReferenceParameters",
            e("w:ResourceURI", text="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"),
            e("w:SelectorSet", e("w:Selector", attrs=("Name",))))),
    ),
    "Command": response(f"{SHELL}/CommandResponse",
                        e("rsp:CommandResponse", e("rsp:CommandId"))),
    "Receive": response(
        f"{SHELL}/ReceiveResponse",
        e("rsp:ReceiveResponse",
          e("rsp:Stream", attrs=STREAM),
          e("rsp:Stream", attrs=(*STREAM, "End")),
          e("rsp:Stream", attrs=(*STREAM, "End")),
          e("rsp:CommandState", e("rsp:ExitCode", text="0"), attrs=("CommandId", "State"))),
    ),
    "Send": response(f"{SHELL}/SendResponse", e("rsp:SendResponse")),
    "Signal": response(f"{SHELL}/SignalResponse", e("rsp:SignalResponse")),
    "Delete": response("http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse"),
    "Fault": e(
        "s:Envelope",
        header("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"),
        e("s:Body",
          e("s:Fault",
            e("s:Code", e("s:Value", text="s:Sender"),
              e("s:Subcode", e("s:Value", text="w:InvalidSelectors"))),
            e("s:Reason", e("s:Text", attrs=("xml:lang",))),
            e("s:Detail",
              e("f:WSManFault", e("f:Message"), attrs=("Code", "Machine"))))),
        attrs=("xml:lang",),
    ),
    # A Receive for a CommandId the shell does not have, as pypsrp recorded Windows answering
    # it (test_winrs_bad_cmd_id): the selector fault, with the shell's own words in the detail.
    "UnknownCommand": e(
        "s:Envelope",
        header("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"),
        e("s:Body",
          e("s:Fault",
            e("s:Code", e("s:Value", text="s:Sender"),
              e("s:Subcode", e("s:Value", text="w:InvalidSelectors"))),
            e("s:Reason", e("s:Text", attrs=("xml:lang",), text=(
                "The WS-Management service cannot process the request because the request "
                "contained invalid selectors for the resource."))),
            e("s:Detail",
              e("w:FaultDetail", text="http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/"
                                      "UnexpectedSelectors"),
              e("f:WSManFault", e("f:Message", text=(
                  "The Windows Remote Shell received a request to perform an operation on a "
                  "command identifier that does not exist. Either the command has completed "
                  "execution or the client specified an invalid command identifier.")),
                attrs=("Code", "Machine"))))),
        attrs=("xml:lang",),
    ),
    # The Create of a 6th shell for one user on Windows Server 2008 R2 (MaxShellsPerUser 5).
    "TooManyShells": e(
        "s:Envelope",
        header("http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"),
        e("s:Body",
          e("s:Fault",
            e("s:Code", e("s:Value", text="s:Sender"),
              e("s:Subcode", e("s:Value", text="w:QuotaLimit"))),
            e("s:Reason", e("s:Text", attrs=("xml:lang",), text=(
                "The WS-Management service cannot process the request. The maximum number of "
                "concurrent shells for this user has been exceeded. Close existing shells or "
                "raise the quota for this user."))),
            e("s:Detail",
              e("f:WSManFault", e("f:Message", text=(
                  "The WS-Management service cannot process the request. This user is allowed "
                  "a maximum number of 5 concurrent shells, which has been exceeded. Close "
                  "existing shells or raise the quota for this user.")),
                attrs=("Code", "Machine"))))),
        attrs=("xml:lang",),
    ),
}
FAULT_CODES = {"Fault": "2150858843", "UnknownCommand": "2150858843",
               "TooManyShells": "2150859173"}


def _qualified(name: str) -> str:
    prefix, _, local = name.partition(":")
    return f"{{{NS[prefix]}}}{local}"


def assert_same_structure(expected: E, actual: ET.Element, path: str = "") -> None:
    where = f"{path}/{expected.tag}"
    assert actual.tag == _qualified(expected.tag), f"{where}: got {actual.tag}"
    assert set(actual.attrib) == {_qualified(a) if ":" in a else a for a in expected.attrs}, (
        f"{where}: attributes {sorted(actual.attrib)}"
    )
    if expected.text is not None:
        assert (actual.text or "").strip() == expected.text, f"{where}: text {actual.text!r}"
    children = list(actual)
    assert [c.tag for c in children] == [_qualified(c.tag) for c in expected.children], (
        f"{where}: children {[c.tag for c in children]}"
    )
    for want, got in zip(expected.children, children, strict=True):
        assert_same_structure(want, got, where)


def _recorded(proto: Any) -> dict[str, bytes]:
    answers: dict[str, bytes] = {}
    original = proto.transport.send_message

    def send(message: Any) -> bytes:
        answer: bytes = original(message)
        action = ET.fromstring(answer).findtext("s:Header/a:Action", namespaces=NS) or ""
        answers[action.rsplit("/", 1)[-1].removesuffix("Response")] = answer
        return answer

    proto.transport.send_message = send
    return answers


@pytest.fixture(scope="module")
def lab_answers() -> dict[str, bytes]:
    from .conftest import FakeOrganisation

    with Lab(FakeOrganisation(), auth="basic", allow_unencrypted=True) as lab:
        proto = protocol(lab)
        answers = _recorded(proto)
        shell = proto.open_shell()
        piped = proto.run_command(shell, "powershell", ("-Command", "-"))
        proto.send_command_input(shell, piped, b"say from stdin", end=True)
        assert proto.get_command_output(shell, piped)[0] == b"from stdin\r\n"
        command = proto.run_command(shell, "hostname")
        proto.get_command_output(shell, command)
        proto.cleanup_command(shell, command)
        proto.close_shell(shell, close_session=False)
        try:
            proto.close_shell(shell, close_session=False)
        except WSManFaultError as fault:
            answers["Fault"] = fault.response.encode()
        shells = [proto.open_shell() for _ in range(5)]
        try:
            proto.get_command_output_raw(shells[0], "87E77BEB-6761-4C48-9D70-A00266B8459A")
        except WSManFaultError as fault:
            answers["UnknownCommand"] = fault.response.encode()
        try:
            proto.open_shell()
        except WSManFaultError as fault:
            answers["TooManyShells"] = fault.response.encode()
        for opened in shells:
            proto.close_shell(opened, close_session=False)
    return answers


@pytest.mark.parametrize("operation", sorted(WINDOWS))
def test_response_has_the_windows_structure(operation: str, lab_answers: dict[str, bytes]) -> None:
    assert operation in lab_answers, sorted(lab_answers)
    answer = ET.fromstring(lab_answers[operation])
    assert_same_structure(WINDOWS[operation], answer)
    if operation in FAULT_CODES:
        fault = answer.find("s:Body/s:Fault/s:Detail/f:WSManFault", NS)
        assert fault is not None and fault.get("Code") == FAULT_CODES[operation]


def test_the_comparison_notices_a_difference() -> None:
    # The checker itself must fail on a structure that differs from Windows.
    wrong = ET.fromstring(
        f'<s:Envelope xmlns:s="{NS["s"]}" xmlns:a="{NS["a"]}" xml:lang="en-US">'
        "<s:Header><a:Action>x</a:Action></s:Header><s:Body/></s:Envelope>"
    )
    with pytest.raises(AssertionError):
        assert_same_structure(WINDOWS["Delete"], wrong)
