"""Site and organisation documents as YAML files, laid out like the example in ``sites/``.

Keys in the order docs/desired-state.md lists them, servers and databases sorted by identity,
short lists (site scope, NLB members) in flow style, database lists one per line (a review
shows each database moved), the notes after the section they are about, a TODO above a VIP
nobody could tell. Every value is written by :func:`casdesired.importing.yamltext.scalar`, and
every file is read back and compared with the data it was made from before it is returned.
"""

from __future__ import annotations

from casdesired.importing.documents import (
    SAFE_POLICY,
    TODO,
    OrganisationDocument,
    Section,
    SiteDocument,
)
from casdesired.importing.yamltext import (
    check_round_trip,
    comment,
    flow_list,
    flow_map,
    scalar,
)

SCHEMA_LINE = "# yaml-language-server: $schema={ref}"
HEADER = (
    "Written by `casdesired import` from the live organisation; the first plan of this "
    "directory shows no changes. Review it, keep it in git, change it by pull request."
)
NOTES_HEADING = "Not declared here, and why (casdesired import):"


def render_site(doc: SiteDocument, schema_ref: str) -> str:
    """The site file's text (checked to read back as ``doc.data()``)."""
    lines = [SCHEMA_LINE.format(ref=schema_ref), *comment(HEADER)]
    lines += ["casdesired: 1", "kind: site", f"site: {scalar(doc.site)}"]
    if doc.servers or doc.notes_in(Section.SERVERS):
        lines.append("")
    if doc.servers:
        lines.append("servers:")
        for server in doc.servers:
            lines += [f"  - name: {scalar(server.name)}", f"    fqdn: {scalar(server.fqdn)}"]
            if server.internal_uri is not None or server.site_scope is not None:
                lines.append("    autodiscover:")
                if server.internal_uri is not None:
                    lines.append(f"      internal_uri: {scalar(server.internal_uri)}")
                if server.site_scope is not None:
                    lines.append(f"      site_scope: {flow_list(server.site_scope)}")
    lines += _notes(doc, Section.SERVERS)
    if doc.array is not None or doc.notes_in(Section.ARRAY):
        lines.append("")
    if doc.array is not None:
        array, lb = doc.array, doc.array.load_balancer
        lines += [
            "array:",
            f"  name: {scalar(array.name)}",
            f"  fqdn: {scalar(array.fqdn)}",
            "  load_balancer:",
            f"    type: {lb.type}",
        ]
        if array.todo is not None:
            lines += comment(f"TODO: {array.todo}", indent=4)
        lines.append(f"    vip: {scalar(lb.vip) if lb.vip else TODO}")
        if lb.type == "nlb":
            lines += [
                f"    cluster_host: {scalar(lb.cluster_host or '')}",
                f"    interface: {scalar(lb.interface or '')}",
                f"    members: {flow_list(lb.members)}",
            ]
    lines += _notes(doc, Section.ARRAY)
    database_notes = doc.notes_in(Section.DATABASES)
    to_server = [n for n in database_notes if n.kind == "database-bound-to-server"]
    if doc.names or doc.patterns or doc.server_bindings or database_notes:
        lines.append("")
    if doc.names or doc.patterns or doc.server_bindings:
        lines.append("databases:")
        if doc.names:
            lines += ["  names:", *(f"    - {scalar(n)}" for n in doc.names)]
        if doc.patterns:
            lines += ["  patterns:", *(f"    - {scalar(p)}" for p in doc.patterns)]
        if doc.server_bindings:
            for note in to_server:
                lines += comment(note.text, indent=2)
            lines.append("  server_bindings:")
            lines += [
                f"    - {flow_map({'database': db, 'server': server})}"
                for db, server in doc.server_bindings
            ]
    lines += _notes(doc, Section.DATABASES, skip=frozenset(id(n) for n in to_server))
    text = "\n".join(lines) + "\n"
    check_round_trip(text, doc.data(), f"the file of site {doc.site!r}")
    return text


def _notes(doc: SiteDocument, section: Section, skip: frozenset[int] = frozenset()) -> list[str]:
    notes = [n for n in doc.notes_in(section) if id(n) not in skip]
    if not notes:
        return []
    lines = comment(NOTES_HEADING)
    for note in notes:
        wrapped = comment(note.text, indent=2)
        lines += ["# - " + wrapped[0][4:], *("#   " + line[4:] for line in wrapped[1:])]
    return lines


def render_organisation(doc: OrganisationDocument, schema_ref: str) -> str:
    """The organisation file's text (checked to read back as ``doc.data()``)."""
    lines = [SCHEMA_LINE.format(ref=schema_ref), *comment(HEADER)]
    lines += [
        "casdesired: 1",
        "kind: organisation",
        f"name: {scalar(doc.name)}",
        "",
        "connection:",
        f"  endpoint: {scalar(doc.endpoint)}",
        f"  transport: {scalar(doc.transport)}",
        "  exchange:",
        f"    mode: {scalar(doc.exchange_mode)}",
    ]
    if doc.exchange_uri is not None:
        lines.append(f"    uri: {scalar(doc.exchange_uri)}")
    lines += ["  tls:", f"    validate: {'true' if doc.tls_validate else 'false'}"]
    if doc.ca_bundle is not None:
        lines.append(f"    ca_bundle: {scalar(doc.ca_bundle)}")
    credentials = [
        (key, value)
        for key, value in (
            ("username_env", doc.username_env),
            ("password_env", doc.password_env),
            ("cert_pem_env", doc.cert_pem_env),
            ("cert_key_env", doc.cert_key_env),
        )
        if value is not None
    ]
    if credentials:
        lines.append("  credentials:  # NAMES of environment variables, never the secrets")
        lines += [f"    {key}: {scalar(value)}" for key, value in credentials]
    policy = SAFE_POLICY
    lines += [
        "",
        "dns:",
        f"  resolvers: {flow_list(doc.resolvers)}",
        f"  external_resolvers: {flow_list(doc.external_resolvers)}",
        "",
        "policy:",
        f"  max_rebind_percent: {policy['max_rebind_percent']}",
        f"  min_databases_for_threshold: {policy['min_databases_for_threshold']}",
        f"  allow_prune: {'true' if policy['allow_prune'] else 'false'}",
    ]
    text = "\n".join(lines) + "\n"
    check_round_trip(text, doc.data(), "the organisation file")
    return text
