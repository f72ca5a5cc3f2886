"""``casdesired import DIR``: write an existing organisation's YAML, so its first plan is empty.

Reads the live organisation (read-only, no lock), then writes ``organisation.yaml`` (from the
connection options, when DIR has none) and one file per AD site. The path of the data is the
package's: :mod:`casdesired.importing.read` → :mod:`~casdesired.importing.layout` and
:mod:`~casdesired.importing.placement` (the documents) → :mod:`~casdesired.importing.render`
(YAML) → :mod:`~casdesired.importing.files`; :mod:`~casdesired.importing.summary` reports.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from casdesired.errors import ConfigError

if TYPE_CHECKING:
    from casdesired.importing import files
    from casdesired.importing.documents import OrganisationDocument, SiteDocument
    from casdesired.importing.layout import DnsAnswer
    from casdesired.importing.read import ImportRead

TRANSPORTS = ("basic", "ntlm", "kerberos", "credssp", "certificate")
CONNECTION_OPTIONS = {
    dest: "--" + dest.replace("_", "-").removesuffix("s")
    for dest in (
        "name", "endpoint", "transport", "username_env", "password_env", "cert_pem_env",
        "cert_key_env", "exchange_mode", "exchange_uri", "ca_bundle", "resolvers",
        "external_resolvers",
    )
}
"""The options that describe the connection (argparse dest → option), written into the
organisation file; with one already in DIR, none may be given."""
DNS_TIMEOUT = 3.0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "import",
        help="write the YAML of an existing organisation, so its first plan is empty (reads only)",
        description=(
            "Read the live Exchange 2010 organisation (read-only, no lock) and write its "
            "desired state into DIR: organisation.yaml (from the connection options, when DIR "
            "has none; credentials as environment variable NAMES) and one file per AD site — "
            "CAS servers with their Autodiscover settings, the array and its load balancer "
            "(Windows NLB as the cluster reports it, else external at the VIP DNS gives, else a "
            "TODO validate reports), and the database bindings. What YAML cannot declare is a "
            "comment in the file and a line of the summary. `casdesired validate DIR` then "
            "finds no error and `casdesired plan DIR` no change."
        ),
        epilog=(
            "With an organisation.yaml in DIR its connection is used (give no connection "
            "options). Existing site files are replaced only with --force, which shows the "
            "difference first; each file is written atomically. See docs/import.md."
        ),
    )
    parser.add_argument("directory", metavar="DIR", help="the organisation's directory")
    parser.add_argument(
        "--site",
        action="append",
        dest="sites",
        metavar="NAME",
        help="import only this AD site (repeatable; default: every site)",
    )
    parser.add_argument(
        "--patterns",
        action="store_true",
        help=(
            "bind each array's databases with a few glob patterns matching exactly those "
            "databases (falling back to names), instead of listing every name"
        ),
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the files instead of writing them (the summary goes to stderr)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace existing files whose content would change, showing the difference first",
    )
    parser.add_argument(
        "--no-nlb",
        action="store_true",
        help="do not read Windows NLB on the CAS servers (arrays become external)",
    )
    parser.add_argument(
        "--no-mailbox-count",
        action="store_true",
        help="do not count mailboxes for the summary (saves a Get-Mailbox over the whole forest)",
    )
    connection = parser.add_argument_group(
        "connection (only when DIR has no organisation.yaml; written into it)"
    )
    connection.add_argument("--name", metavar="ORG", help="the organisation's short name")
    connection.add_argument(
        "--endpoint",
        metavar="URL",
        help="the WinRM URL (https://ex01.example.local:5986/wsman), or lab",
    )
    connection.add_argument(
        "--transport", choices=TRANSPORTS, help="WinRM authentication (default: ntlm)"
    )
    connection.add_argument("--username-env", metavar="NAME", help="variable holding the user name")
    connection.add_argument("--password-env", metavar="NAME", help="variable holding the password")
    connection.add_argument(
        "--cert-pem-env", metavar="NAME", help="certificate transport: variable holding its path"
    )
    connection.add_argument(
        "--cert-key-env", metavar="NAME", help="certificate transport: variable holding its path"
    )
    connection.add_argument(
        "--exchange-mode", choices=("remote", "snapin"), help="how Exchange is reached (remote)"
    )
    connection.add_argument("--exchange-uri", metavar="URL", help="the /PowerShell/ URL")
    connection.add_argument(
        "--ca-bundle", metavar="FILE", help="PEM file of the CA, relative to DIR"
    )
    connection.add_argument(
        "--resolver",
        action="append",
        dest="resolvers",
        metavar="IP",
        help="an internal DNS resolver (repeatable): array VIPs are looked up there",
    )
    connection.add_argument(
        "--external-resolver",
        action="append",
        dest="external_resolvers",
        metavar="IP",
        help="a public resolver (repeatable), written for plan's DNS checks",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The implementation is imported here, not at the top: building the parser for any
    # command (`casdesired --help`) must not load it (tests/cli/test_startup.py).
    from casdesired.cli.plan import progress_reporter
    from casdesired.desired.yamlsource import display_path
    from casdesired.dns.desired import resolvers_for
    from casdesired.importing import files
    from casdesired.importing.layout import site_documents
    from casdesired.importing.organisation import from_directory, from_options
    from casdesired.importing.placement import place_databases
    from casdesired.importing.read import read_for_import, sites_in_scope
    from casdesired.importing.summary import ImportResult, summary
    from casdesired.plan.build import connect

    directory = Path(args.directory)
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{display_path(directory)}: not a directory")
    existing = files.existing_files(directory)
    given = [flag for dest, flag in CONNECTION_OPTIONS.items() if getattr(args, dest) is not None]
    org_text: str | None = None
    org_path = existing.organisation or directory / files.ORGANISATION_FILE
    if existing.organisation is not None:
        if given:
            flags = ", ".join(given)
            raise ConfigError(
                f"{display_path(existing.organisation)} already describes the connection; "
                f"leave out {flags} (or edit that file)"
            )
        organisation = from_directory(directory, existing.organisation)
    else:
        organisation, org_text = from_options(
            _organisation_document(args, directory),
            directory,
            files.schema_ref(directory, org_path, "organisation"),
        )

    with (
        progress_reporter(sys.stderr) as progress,
        connect(organisation, os.environ) as client,
    ):
        progress(f"connecting to {organisation.connection.endpoint}")
        read = read_for_import(
            client,
            sites=args.sites,
            mailboxes=not args.no_mailbox_count,
            nlb=not args.no_nlb,
            progress=progress,
        )
        scope = sites_in_scope(read.live, args.sites)
        with resolvers_for(organisation) as resolvers:
            documents = site_documents(read, scope, _resolver(resolvers.internal, progress))
    unplaced = place_databases(read, documents, use_patterns=args.patterns)
    items = _files(directory, documents, existing, org_path, org_text)
    result = ImportResult(
        organisation=organisation.name,
        directory=args.directory,
        read=read,
        documents=documents,
        unplaced=unplaced,
        files=[(display_path(item.path), item) for item in items],
        scoped=args.sites is not None,
        sites=scope,
        stale=_stale(existing, read),
        written=not args.dry_run,
    )
    if args.dry_run:
        for shown, item in result.files:
            if not item.in_full:
                print(f"# ==> {shown} ({item.status}) <== the JSON Schema casdesired ships, "
                      "for editors (not shown)\n")
                continue
            print(f"# ==> {shown} ({item.status}) <==")
            print(item.text, end="\n")
        print(summary(result), end="", file=sys.stderr)
        return 0
    changed = [(shown, item) for shown, item in result.files if item.status == "changed"]
    if changed and not args.force:
        listed = ", ".join(shown for shown, _ in changed)
        raise ConfigError(
            f"{len(changed)} existing file(s) would change: {listed}. Nothing was written: "
            "see what would be written with --dry-run, or replace them with --force (which "
            "shows the difference first)"
        )
    for shown, item in changed:
        print(files.unified_diff(item, shown), end="")
    files.write(items)
    print(summary(result), end="")
    return 0


def _organisation_document(args: argparse.Namespace, directory: Path) -> OrganisationDocument:
    from casdesired.desired.yamlsource import display_path
    from casdesired.importing.documents import OrganisationDocument

    missing = [flag for flag, value in (("--name", args.name), ("--endpoint", args.endpoint))
               if not value]
    if missing:
        raise ConfigError(
            f"{display_path(directory)} has no organisation.yaml: give {' and '.join(missing)} "
            "(and the connection options, see --help), or write organisation.yaml first"
        )
    return OrganisationDocument(
        name=args.name,
        endpoint=args.endpoint,
        transport=args.transport or "ntlm",
        exchange_mode=args.exchange_mode or "remote",
        exchange_uri=args.exchange_uri,
        ca_bundle=args.ca_bundle,
        username_env=args.username_env,
        password_env=args.password_env,
        cert_pem_env=args.cert_pem_env,
        cert_key_env=args.cert_key_env,
        resolvers=tuple(args.resolvers or ()),
        external_resolvers=tuple(args.external_resolvers or ()),
    )


def _resolver(
    resolvers: tuple[str, ...], progress: Callable[[str], None]
) -> Callable[[str], DnsAnswer | None]:
    from casdesired.dns.errors import DnsLookupError
    from casdesired.dns.lookup import resolve_a, sorted_addresses
    from casdesired.importing.layout import DnsAnswer

    def resolve(fqdn: str) -> DnsAnswer | None:
        if not resolvers:
            return None
        progress(f"looking up {fqdn}")
        try:
            found = resolve_a(fqdn, resolvers=resolvers, timeout=DNS_TIMEOUT)
        except DnsLookupError as exc:
            return DnsAnswer(problem=str(exc))
        return DnsAnswer(addresses=tuple(sorted_addresses(found)))

    return resolve


def _files(
    directory: Path,
    documents: list[SiteDocument],
    existing: files.Existing,
    org_path: Path,
    org_text: str | None,
) -> list[files.Planned]:
    from casdesired.importing import files
    from casdesired.importing.render import render_site

    items = []
    if org_text is not None:
        items.append(files.planned(org_path, org_text))
    paths = files.site_paths(directory, [d.site for d in documents], existing)
    for doc in documents:
        path = paths[doc.key]
        text = render_site(doc, files.schema_ref(directory, path, "site"))
        items.append(files.planned(path, text))
    return [*items, *files.shipped_schemas(directory)]


def _stale(existing: files.Existing, read: ImportRead) -> list[tuple[str, str]]:
    from casdesired.desired.yamlsource import display_path

    live = read.live.estate.sites
    return [
        (display_path(path), existing.site_names[k])
        for k, path in sorted(existing.sites.items())
        if k not in live
    ]

