"""Which site file binds each database, and what is said about the databases none can bind.

A database's ``RpcClientAccessServer`` names its target as Exchange shows it: an array (by
FQDN, or by name), or a server (by FQDN or name). It is declared in the file of the site whose
array (or Client Access server) it names, so the first plan finds it already bound:

* to a declared array: that site's ``databases.names`` (or ``patterns``, with ``--patterns``);
* to a declared Exchange 2010 CAS: that server's site's ``server_bindings`` (validate warns:
  ``database-bound-to-server``; the file says so above them).

Everything else is a note in the file of the site hosting the database (its mailbox server's
site), so nothing is dropped in silence; the first plan lists these databases as unmanaged:
databases on Exchange 2013+ servers (RpcClientAccessServer does nothing there), blank values
(orphaned pointers: their array was removed), and targets that are no declared array or CAS
(a second array, an array or server of a site not imported, a server without the Client Access
role, a name Exchange does not know). A database bound to another site's array is declared
there, and noted where it is hosted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from casdesired import model
from casdesired.importing import patterns as globs
from casdesired.importing.documents import Note, Section, SiteDocument
from casdesired.importing.read import ExchangeServer, ImportRead
from casdesired.importing.yamltext import scalar


@dataclass(frozen=True)
class Unplaced:
    """A note about a database that no file in scope can carry (its hosting site is out of
    scope or unknown): the summary still says it."""

    note: Note
    site: str | None


@dataclass(frozen=True)
class _Target:
    kind: str
    """``array``, ``server`` (a CAS), ``exchange`` (an Exchange server without the CAS role)."""
    site: str
    """The target's site (key)."""
    display: str
    """The array's FQDN or the server's name."""
    key: str
    """The array's FQDN key or the server's name key."""


def place_databases(
    read: ImportRead, documents: list[SiteDocument], *, use_patterns: bool
) -> list[Unplaced]:
    """Fill each document's bindings; return the notes no document in scope can carry."""
    estate = read.live.estate
    docs = {doc.key: doc for doc in documents}
    targets = _targets(estate, read.exchange_servers)
    declared_arrays = {
        model.key(doc.array.fqdn): doc for doc in documents if doc.array is not None
    }
    declared_servers = {srv.key: (doc, srv.name) for doc in documents for srv in doc.servers}
    array_names: dict[str, list[str]] = {doc.key: [] for doc in documents}
    unplaced: list[Unplaced] = []

    def note(home: str | None, target: _Target | None, text: str, kind: str, db: str) -> None:
        """Say it in the hosting site's file; else in the target's; else in the summary."""
        made = Note(Section.DATABASES, text, kind, db)
        for site in (home, target.site if target is not None else None):
            if site is not None and site in docs:
                docs[site].notes.append(made)
                return
        if home is None:  # a database on a server Exchange did not list: still said
            unplaced.append(Unplaced(made, home))

    for k, db in sorted(estate.databases.items()):
        host = _host(db, read.exchange_servers)
        home = model.key(host.site) if host is not None else None
        name = scalar(db.database)
        value = db.rpc_client_access_server
        target = targets.get(model.key(value)) if value.strip() else None
        where = f"hosted on {scalar(host.name)}" if host is not None else "on an unknown server"
        if not k:
            note(home, target, f"database {name} ({where}) has a name YAML cannot bind "
                 "(blank once trimmed): not declared.", "database-not-declared", db.database)
        elif host is not None and host.newer_than_2010:
            note(home, target, f"database {name} is hosted on {scalar(host.name)}, an Exchange "
                 "2013 or later server: RpcClientAccessServer does nothing there, so it is not "
                 "declared.", "database-on-exchange-2013", db.database)
        elif not value.strip():
            note(home, None, f"database {name} ({where}) has a blank RpcClientAccessServer: "
                 "the array it pointed at was removed (an orphaned pointer). It is not "
                 "declared; bind it to its site's array (the plan notes it: "
                 "database-orphaned-pointer).", "database-orphaned", db.database)
        elif target is None:
            note(home, None, f"database {name} ({where}) is bound to {scalar(value)}, which is "
                 "neither a CAS array nor a server Exchange reports: not declared.",
                 "database-bound-elsewhere", db.database)
        elif target.kind == "array" and target.key in declared_arrays:
            doc = declared_arrays[target.key]
            array_names[doc.key].append(db.database)
            if home is not None and home != doc.key:
                note(home, None, f"database {name} ({where}) is bound to array "
                     f"{scalar(target.display)} of site {scalar(doc.site)}: declared in that "
                     "site's file.", "database-other-site", db.database)
        elif target.kind == "server" and target.key in declared_servers:
            doc, server = declared_servers[target.key]
            doc.server_bindings.append((db.database, server))
        else:
            note(home, target, f"database {name} ({where}) is bound to "
                 f"{_describe(target, estate, docs)}: not declared.",
                 "database-bound-elsewhere", db.database)
    every = [db.database for db in estate.databases.values()]
    for doc in documents:
        _bindings(doc, array_names[doc.key], every, use_patterns, read.mailboxes)
    return unplaced


def _bindings(
    doc: SiteDocument,
    names: list[str],
    every: list[str],
    use_patterns: bool,
    mailboxes: Mapping[str, int] | None,
) -> None:
    ordered = sorted(names, key=lambda n: (model.key(n), n))
    doc.array_databases = len(ordered)
    if use_patterns:
        compressed = globs.compress(ordered, every)
        doc.patterns, doc.names = list(compressed.patterns), list(compressed.names)
    else:
        doc.names = ordered
    doc.server_bindings.sort(key=lambda b: (model.key(b[0]), b[0]))
    if doc.server_bindings:
        doc.notes.append(
            Note(
                Section.DATABASES,
                f"{len(doc.server_bindings)} database(s) are bound to a server, not to an "
                "array: declared as server_bindings, so the first plan changes nothing "
                "(validate warns: database-bound-to-server). Bind them to the site's array "
                "when their users can take the change.",
                "database-bound-to-server",
            )
        )
    if mailboxes is not None:
        bound = [*ordered, *(db for db, _ in doc.server_bindings)]
        doc.bound_mailboxes = sum(mailboxes.get(model.key(n), 0) for n in bound)


def _host(
    db: model.DatabaseBinding, servers: Mapping[str, ExchangeServer]
) -> ExchangeServer | None:
    """The Exchange server hosting the database (its ``Server``: a name, or an FQDN)."""
    return servers.get(model.key(db.server or "").split(".", 1)[0])


def _targets(
    estate: model.Estate, exchange: Mapping[str, ExchangeServer]
) -> dict[str, _Target]:
    """Every name an RpcClientAccessServer value may give, as the plan resolves them: an array
    by FQDN or spaceless name, a server by name or FQDN."""
    found: dict[str, _Target] = {}

    def add(names: Iterable[str], target: _Target) -> None:
        for name in names:
            if name.strip():
                found.setdefault(model.key(name), target)

    for array in estate.arrays.values():
        target = _Target("array", model.key(array.site), array.fqdn, array.key)
        add([array.fqdn, *([array.name] if " " not in array.name else [])], target)
    for server in estate.servers.values():
        add([server.name, server.fqdn],
            _Target("server", model.key(server.site), server.name, server.key))
    for other in exchange.values():
        add([other.name, other.fqdn],
            _Target("exchange", model.key(other.site), other.name, other.key))
    return found


def _describe(target: _Target, estate: model.Estate, docs: Mapping[str, SiteDocument]) -> str:
    """What a binding's target is, when no file in scope declares it."""
    site = estate.sites.get(target.site)
    site_name = scalar(site.name) if site is not None else scalar(target.site)
    shown = scalar(target.display)
    if target.kind == "exchange":
        return f"{shown}, an Exchange server without the Client Access role"
    if target.site not in docs:
        what = "array" if target.kind == "array" else "server"
        return f"{what} {shown} of site {site_name}, which this import leaves out"
    if target.kind == "array":
        return f"array {shown}, which is not declared (see the array's note)"
    server = estate.servers.get(target.key)
    major = model.exchange_major(server.version if server is not None else None)
    if major is not None and major >= 15:
        return f"server {shown}, which runs Exchange 2013 or later"
    return f"server {shown}, which is not declared (see the servers' notes)"
