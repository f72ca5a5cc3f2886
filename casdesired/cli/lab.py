"""``casdesired lab serve``: run the Exchange 2010 lab on loopback for trying the tool by hand.

Prints the WS-Man URL, the account it accepts (a lab password, printed on purpose), the CA
file for ``--tls`` and the control API token, then serves until Ctrl-C (SIGINT) or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

from casdesired.cli.parser import number
from casdesired.errors import CasdesiredError

if TYPE_CHECKING:
    from casdesired.lab.server import Lab

PASSWORD_ENV = "CASDESIRED_LAB_PASSWORD"  # noqa: S105 - the variable's name, not a value


class LabStartFailed(CasdesiredError):
    """The lab could not listen (port taken, address not local)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "lab",
        help="run the built-in Exchange 2010 lab endpoint",
        description="The built-in Exchange 2010 lab: a loopback WS-Management endpoint.",
    )
    actions = parser.add_subparsers(dest="lab_command", metavar="ACTION", required=True)
    serve = actions.add_parser(
        "serve",
        help="serve the lab until Ctrl-C or SIGTERM",
        description=(
            "Serve an Exchange 2010 organisation over WS-Management on loopback. Without "
            "--state it serves the example organisation's seed in memory. The password is "
            f"random unless {PASSWORD_ENV} is set."
        ),
    )
    serve.add_argument("--state", type=Path, metavar="FILE",
                       help="state file to load and save (created from its NAME.seed.json, "
                            "else the example seed, if missing)")
    serve.add_argument("--port", type=number(minimum=0, maximum=65535, whole=True), default=0,
                       metavar="N",
                       help="TCP port (default: a free one)")
    serve.add_argument("--tls", action="store_true", help="HTTPS with a generated certificate")
    serve.add_argument("--auth", choices=("basic", "ntlm"), default="ntlm",
                       help="authentication the endpoint accepts (default: ntlm)")
    serve.add_argument("--allow-unencrypted", action="store_true",
                       help="accept cleartext messages over HTTP (Basic, NTLM without "
                            "encryption), like AllowUnencrypted=true; Windows' default, and "
                            "the lab's, refuses them")
    serve.add_argument("--latency-ms", type=number(minimum=0, maximum=60000, whole=True),
                       default=0, metavar="N",
                       help="added to every WS-Man request (0 to 60000)")
    serve.add_argument("--bind", default="127.0.0.1", metavar="ADDR",
                       help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--winrm", action="append", default=[], metavar="NAME=VALUE",
                       help="set one of WinRM's quotas, as 'winrm set winrm/config' would "
                            "(repeatable): MaxEnvelopeSizekb, MaxTimeoutms, MaxShellsPerUser, "
                            "MaxMemoryPerShellMB, IdleTimeout; the defaults are Windows "
                            "Server 2008 R2's (150, 60000, 5, 150, 180000)")
    serve.set_defaults(func=run)
    # `lab reset`: put the embedded lab's state file back to its own seed.
    reset = actions.add_parser(
        "reset",
        help="put the embedded lab's state back to its seed",
        description=(
            "Reset the state file of the embedded lab that the organisation in DIR targets "
            "(connection.endpoint: lab) to its own seed, kept beside it as NAME.seed.json: "
            "the shipped example's seed, or the organisation as the lab first read the file. "
            "A reset never replaces one organisation with another; an unreadable state file "
            "is moved to NAME.json.unreadable, not overwritten."
        ),
    )
    reset.add_argument("directory", nargs="?", type=Path, default=Path("sites"), metavar="DIR",
                       help="the organisation's directory (default: sites)")
    reset.set_defaults(func=run_reset)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at parser build: `casdesired --help` stays fast (bench/startup_bench.py).
    from casdesired.lab.dns import LabDnsServer
    from casdesired.lab.exchange.organisation import Organisation
    from casdesired.lab.faults import Faults
    from casdesired.lab.journal import Journal
    from casdesired.lab.server import Lab, LabCredentials
    from casdesired.lab.wsman.limits import WinRMLimits, parse_setting

    limits = WinRMLimits()
    for setting in args.winrm:
        try:
            limits.update(parse_setting(setting))
        except ValueError as exc:
            raise CasdesiredError(f"--winrm {setting}: {exc}") from None
    journal = Journal()
    faults = Faults(latency_ms=args.latency_ms)
    if args.state is not None:
        organisation = Organisation.from_file(args.state, journal=journal, faults=faults)
    else:
        organisation = Organisation.from_seed(journal=journal, faults=faults)
    # The account is in the organisation's own domain (FABRIKAM\casadmin for fabrikam.local).
    credentials = LabCredentials.for_organisation(organisation, os.environ.get(PASSWORD_ENV))
    lab = Lab(
        organisation,
        host=args.bind,
        port=args.port,
        tls=args.tls,
        auth=cast(Literal["basic", "ntlm"], args.auth),
        credentials=credentials,
        faults=faults,
        journal=journal,
        allow_unencrypted=args.allow_unencrypted,
        limits=limits,
    )
    # The organisation's DNS (A records from its state), always on 127.0.0.1 whatever --bind.
    dns_server = LabDnsServer(organisation)
    try:
        lab.start()
        dns_server.start()
    except OSError as exc:
        lab.stop()
        raise LabStartFailed(f"cannot listen on {args.bind}:{args.port}: {exc.strerror}") from None
    try:
        with _stop_requested() as stop:
            _announce(lab, args, dns_server.address)
            stop.wait()
            print(f"lab stopped ({stop.signal_name})", file=sys.stderr)
    finally:
        dns_server.stop()
        lab.stop()
    return 0


class _StopRequest(threading.Event):
    """Set by SIGINT or SIGTERM; remembers which one arrived."""

    signal_name = ""


@contextmanager
def _stop_requested() -> Iterator[_StopRequest]:
    """Stop on SIGINT (Ctrl-C) and on SIGTERM, installed explicitly for the ``with`` block.

    Python turns SIGINT into KeyboardInterrupt only if the process did not inherit it
    ignored -- and a background job of a non-interactive shell (``cmd &`` in a script, CI)
    does inherit SIG_IGN. SIGTERM (``kill``, service managers) would otherwise end the lab
    without stopping it, leaving its NTLM account file and TLS CA behind.
    """
    stop = _StopRequest()

    def request_stop(signum: int, _frame: object) -> None:
        stop.signal_name = signal.Signals(signum).name
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            # None: a handler not installed from Python; the default is the honest fallback.
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)


def run_reset(args: argparse.Namespace) -> int:
    from casdesired.lab.embedded import reset_directory

    try:
        done = reset_directory(args.directory)
    except OSError as exc:  # the state file's folder cannot be made or written
        raise CasdesiredError(
            f"cannot reset the lab state: {exc.strerror or exc}: {exc.filename}"
        ) from None
    print(f"lab state reset to its seed: {done.state}")
    print(f"  seed: {done.seed}")
    if done.unreadable_kept is not None:
        print(f"  the unreadable state file was kept as {done.unreadable_kept}")
    return 0


def _announce(lab: Lab, args: argparse.Namespace, dns_address: str) -> None:
    from casdesired.lab.control import TOKEN_HEADER, is_loopback

    lines = [
        f"Exchange 2010 lab ({lab.hostname}) serving",
        f"  url:        {lab.url}",
        f"  auth:       {lab.auth}",
        f"  username:   {lab.credentials.username}",
        f"  password:   {lab.credentials.password}",
    ]
    if lab.ca_file is not None:
        lines.append(f"  CA file:    {lab.ca_file}")
    if not lab.tls:
        lines.append(f"  encryption: {_encryption_note(lab)}")
    quotas = ", ".join(f"{name}={value}" for name, value in lab.limits.to_json().items())
    lines += [
        f"  winrm:      {quotas}",
        f"  control:    {lab.control_url}  (header {TOKEN_HEADER}: {lab.token})",
        f"  dns:        {dns_address}  (UDP and TCP; records: {lab.control_url}/dns)",
        f"  state file: {args.state}" if args.state else "  state:      in memory (seed)",
        "Press Ctrl-C to stop.",
    ]
    if not is_loopback(args.bind):
        lines.insert(1, f"  WARNING: listening on {args.bind}, not only on loopback")
    print("\n".join(lines), flush=True)


def _encryption_note(lab: Lab) -> str:
    """What a plain-HTTP lab demands of messages, as WinRM's AllowUnencrypted decides."""
    if lab.allow_unencrypted:
        return "optional (--allow-unencrypted: cleartext messages accepted over HTTP)"
    if lab.auth == "basic":
        # Basic cannot seal messages: every request is refused, as on a default Windows host.
        return (
            "required over HTTP, so Basic is refused as Windows refuses it "
            "(AllowUnencrypted=false); add --tls or --allow-unencrypted"
        )
    return "required over HTTP (NTLM message encryption, pywinrm's default)"
