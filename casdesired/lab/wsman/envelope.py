"""SOAP envelopes as WinRM speaks them: parse requests, serialise responses and faults.

Requests are read by namespace and local name only (prefixes, header order and the
``mustUnderstand`` spelling vary between clients). Responses copy the shape of real Windows
answers: ``s:``/``a:``/``w:``/``rsp:``/``x:`` prefixes, ``xml:lang="en-US"`` on the envelope,
``a:Action``, ``a:MessageID``, ``a:To`` (anonymous) and ``a:RelatesTo`` in the header.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

NS_SOAP = "http://www.w3.org/2003/05/soap-envelope"
NS_ADDRESSING = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
NS_WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
NS_MS_WSMAN = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
NS_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
NS_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
NS_FAULT = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"

ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
SHELL_CMD_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd"
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
COMMAND_STATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/"
UNEXPECTED_SELECTORS = "http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/UnexpectedSelectors"
SIGNAL_TERMINATE = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"

ACTIONS = {
    f"{NS_TRANSFER}/Create": "Create",
    f"{NS_TRANSFER}/Delete": "Delete",
    f"{NS_SHELL}/Command": "Command",
    f"{NS_SHELL}/Send": "Send",
    f"{NS_SHELL}/Receive": "Receive",
    f"{NS_SHELL}/Signal": "Signal",
}
"""Action URI → the short operation name used by faults, the journal and the dispatcher."""

RESPONSE_ACTIONS = {
    "Create": f"{NS_TRANSFER}/CreateResponse",
    "Delete": f"{NS_TRANSFER}/DeleteResponse",
    "Command": f"{NS_SHELL}/CommandResponse",
    "Send": f"{NS_SHELL}/SendResponse",
    "Receive": f"{NS_SHELL}/ReceiveResponse",
    "Signal": f"{NS_SHELL}/SignalResponse",
}

DEFAULT_MAX_ENVELOPE_SIZE = 153600
DEFAULT_OPERATION_TIMEOUT = 60.0

_DURATION = re.compile(
    r"^P(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)


class MalformedRequest(Exception):
    """The body is not a WS-Man request the lab (or Windows) would accept."""


def q(ns: str, local: str) -> str:
    """ElementTree's ``{namespace}local`` name."""
    return f"{{{ns}}}{local}"


def parse_duration(text: str) -> float:
    """Seconds in an xs:duration such as ``PT20S`` or ``PT60.000S``."""
    match = _DURATION.match(text.strip())
    if not match:
        raise MalformedRequest(f"invalid xs:duration {text!r}")
    parts = {k: float(v) if v else 0.0 for k, v in match.groupdict().items()}
    return parts["d"] * 86400 + parts["h"] * 3600 + parts["m"] * 60 + parts["s"]


@dataclass
class Request:
    """What the lab needs from one WS-Man request envelope."""

    action: str
    """Short name: Create, Command, Send, Receive, Signal, Delete (or the raw URI if unknown)."""
    message_id: str
    body: ET.Element
    shell_id: str | None = None
    operation_timeout: float = DEFAULT_OPERATION_TIMEOUT
    max_envelope_size: int = DEFAULT_MAX_ENVELOPE_SIZE
    options: dict[str, str] = field(default_factory=dict)


def _child(parent: ET.Element, ns: str, local: str) -> ET.Element | None:
    return parent.find(q(ns, local))


def parse_request(data: bytes) -> Request:
    """Parse a request envelope; :class:`MalformedRequest` if it is not one."""
    if b"<!DOCTYPE" in data.upper():
        # SOAP forbids DTDs; refusing them also rules out entity-expansion attacks.
        raise MalformedRequest("a SOAP message must not contain a DTD")
    try:
        root = ET.fromstring(data)  # noqa: S314 - no DTD (checked above), expat only
    except ET.ParseError as exc:
        raise MalformedRequest(f"not XML: {exc}") from None
    if root.tag != q(NS_SOAP, "Envelope"):
        raise MalformedRequest("not a SOAP 1.2 envelope")
    header = _child(root, NS_SOAP, "Header")
    body = _child(root, NS_SOAP, "Body")
    if header is None or body is None:
        raise MalformedRequest("envelope without Header or Body")
    action_el = _child(header, NS_ADDRESSING, "Action")
    message_el = _child(header, NS_ADDRESSING, "MessageID")
    if action_el is None or not (action_el.text or "").strip():
        raise MalformedRequest("no a:Action")
    if message_el is None or not (message_el.text or "").strip():
        raise MalformedRequest("no a:MessageID")
    action_uri = (action_el.text or "").strip()
    request = Request(
        action=ACTIONS.get(action_uri, action_uri),
        message_id=(message_el.text or "").strip(),
        body=body,
    )
    timeout_el = _child(header, NS_WSMAN, "OperationTimeout")
    if timeout_el is not None and timeout_el.text:
        request.operation_timeout = parse_duration(timeout_el.text)
    size_el = _child(header, NS_WSMAN, "MaxEnvelopeSize")
    if size_el is not None and size_el.text:
        try:
            request.max_envelope_size = int(size_el.text.strip())
        except ValueError:
            raise MalformedRequest("w:MaxEnvelopeSize is not a number") from None
    selectors = _child(header, NS_WSMAN, "SelectorSet")
    if selectors is not None:
        for selector in selectors.findall(q(NS_WSMAN, "Selector")):
            if selector.get("Name") == "ShellId":
                request.shell_id = (selector.text or "").strip()
    option_set = _child(header, NS_WSMAN, "OptionSet")
    if option_set is not None:
        for option in option_set.findall(q(NS_WSMAN, "Option")):
            name = option.get("Name")
            if name:
                request.options[name] = (option.text or "").strip()
    return request


# ---------------------------------------------------------------------------------------------
# Serialisation. Strings, not ElementTree: ET would need process-global prefix registration,
# and Windows' prefixes (s:, a:, w:, rsp:, x:) must come out exactly.

_ENVELOPE_OPEN = (
    '<s:Envelope xml:lang="en-US"'
    f' xmlns:s="{NS_SOAP}" xmlns:a="{NS_ADDRESSING}" xmlns:x="{NS_TRANSFER}"'
    f' xmlns:w="{NS_WSMAN}" xmlns:rsp="{NS_SHELL}" xmlns:p="{NS_MS_WSMAN}">'
)


def new_message_id() -> str:
    return f"uuid:{str(uuid.uuid4()).upper()}"


def envelope(action_uri: str, relates_to: str, body: str) -> bytes:
    """A complete response envelope around ``body`` (already serialised XML)."""
    header = (
        "<s:Header>"
        f"<a:Action>{escape(action_uri)}</a:Action>"
        f"<a:MessageID>{new_message_id()}</a:MessageID>"
        f"<a:To>{ANONYMOUS}</a:To>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo>"
        "</s:Header>"
    )
    text = f'<?xml version="1.0"?>{_ENVELOPE_OPEN}{header}<s:Body>{body}</s:Body></s:Envelope>'
    return text.encode("utf-8")


def response(request: Request, body: str) -> bytes:
    return envelope(RESPONSE_ACTIONS[request.action], request.message_id, body)


def resource_created_body(endpoint: str, shell_id: str) -> str:
    return (
        "<x:ResourceCreated>"
        f"<a:Address>{escape(endpoint)}</a:Address>"
        "<a:ReferenceParameters>"
        f"<w:ResourceURI>{SHELL_CMD_URI}</w:ResourceURI>"
        f'<w:SelectorSet><w:Selector Name="ShellId">{escape(shell_id)}</w:Selector>'
        "</w:SelectorSet>"
        "</a:ReferenceParameters>"
        "</x:ResourceCreated>"
    )


def command_response_body(command_id: str) -> str:
    return (
        "<rsp:CommandResponse>"
        f"<rsp:CommandId>{escape(command_id)}</rsp:CommandId>"
        "</rsp:CommandResponse>"
    )


def stream_element(name: str, command_id: str, b64: str = "", end: bool = False) -> str:
    end_attr = ' End="true"' if end else ""
    attrs = f"Name={quoteattr(name)} CommandId={quoteattr(command_id)}{end_attr}"
    return f"<rsp:Stream {attrs}>{b64}</rsp:Stream>" if b64 else f"<rsp:Stream {attrs}/>"


def command_state_element(command_id: str, exit_code: int | None) -> str:
    """``Running`` when ``exit_code`` is None, else ``Done`` with the exit code."""
    if exit_code is None:
        return (
            f"<rsp:CommandState CommandId={quoteattr(command_id)}"
            f' State="{COMMAND_STATE}Running"/>'
        )
    return (
        f'<rsp:CommandState CommandId={quoteattr(command_id)} State="{COMMAND_STATE}Done">'
        f"<rsp:ExitCode>{exit_code}</rsp:ExitCode></rsp:CommandState>"
    )


@dataclass(frozen=True)
class WSManFault(Exception):
    """A WS-Man fault answered with HTTP 500: SOAP code, WS-Man subcode, WSManFault code.

    ``message`` is the ``s:Reason`` text (what pywinrm reports as ``reason``); ``detail`` the
    ``f:Message`` in the fault's detail when Windows words it differently (default: the same),
    and ``fault_detail`` a ``w:FaultDetail`` URI when Windows sends one.
    """

    subcode: str
    """``w:`` qualified, e.g. ``w:TimedOut``."""
    wsman_code: int
    message: str
    code: str = "s:Sender"
    detail: str | None = None
    fault_detail: str | None = None

    def __str__(self) -> str:
        return f"{self.subcode} ({self.wsman_code}): {self.message}"


def fault_envelope(fault: WSManFault, relates_to: str | None, machine: str) -> bytes:
    fault_detail = (
        f"<w:FaultDetail>{escape(fault.fault_detail)}</w:FaultDetail>"
        if fault.fault_detail else ""
    )
    body = (
        "<s:Fault>"
        f"<s:Code><s:Value>{escape(fault.code)}</s:Value>"
        f"<s:Subcode><s:Value>{escape(fault.subcode)}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(fault.message)}</s:Text></s:Reason>'
        "<s:Detail>"
        f"{fault_detail}"
        f'<f:WSManFault xmlns:f="{NS_FAULT}" Code="{fault.wsman_code}"'
        f" Machine={quoteattr(machine)}>"
        f"<f:Message>{escape(fault.detail or fault.message)}</f:Message>"
        "</f:WSManFault>"
        "</s:Detail>"
        "</s:Fault>"
    )
    return envelope(FAULT_ACTION, relates_to or new_message_id(), body)


# The faults the lab raises itself, with Windows' codes and wording.

def timed_out() -> WSManFault:
    return WSManFault(
        "w:TimedOut",
        2150858793,
        "The WS-Management service cannot complete the operation within the time specified "
        "in OperationTimeout.  ",
        code="s:Receiver",
    )


def unknown_shell(shell_id: str) -> WSManFault:
    return WSManFault(
        "w:InvalidSelectors",
        2150858843,
        f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the "
        "shell was not found on the server. Possible causes are: the specified ShellId is "
        "incorrect or the shell no longer exists on the server. Provide the correct ShellId "
        "or create a new shell and retry the operation. ",
    )


def unknown_command(command_id: str) -> WSManFault:
    """A Receive, Send or Signal for a CommandId the shell does not have: Windows' fault, as
    pypsrp recorded it (``test_winrs_bad_cmd_id``)."""
    return WSManFault(
        "w:InvalidSelectors",
        2150858843,
        "The WS-Management service cannot process the request because the request contained "
        "invalid selectors for the resource. ",
        detail=(
            "The Windows Remote Shell received a request to perform an operation on a command "
            "identifier that does not exist. Either the command has completed execution or the "
            "client specified an invalid command identifier. "
        ),
        fault_detail=UNEXPECTED_SELECTORS,
    )


def too_many_shells(limit: int) -> WSManFault:
    """The Create of one shell more than MaxShellsPerUser (ERROR_WSMAN_QUOTA_MAX_SHELLS)."""
    return WSManFault(
        "w:QuotaLimit",
        2150859173,
        "The WS-Management service cannot process the request. The maximum number of "
        "concurrent shells for this user has been exceeded. Close existing shells or raise the "
        "quota for this user. ",
        detail=(
            f"The WS-Management service cannot process the request. This user is allowed a "
            f"maximum number of {limit} concurrent shells, which has been exceeded. Close "
            "existing shells or raise the quota for this user. "
        ),
    )


def action_not_supported(action: str) -> WSManFault:
    return WSManFault(
        "a:ActionNotSupported",
        2150858775,
        f"The WS-Management service cannot process the request because the action {action} "
        "is not supported by the service. ",
    )


def invalid_request(detail: str) -> WSManFault:
    return WSManFault(
        "w:SchemaValidationError",
        2150858817,
        f"The WS-Management service cannot process the request. The SOAP packet contains an "
        f"element or value that is not valid: {detail}. ",
    )
