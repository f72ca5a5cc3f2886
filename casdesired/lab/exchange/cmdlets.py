"""The cmdlets the lab offers, by name: the Exchange ones (the audit log's among them) and the
NLB ones.

Each cmdlet is a :class:`~casdesired.lab.exchange.binding.Cmdlet` in :data:`CMDLETS`: its
parameters, the snap-in or module that provides it (:mod:`.binding` binds them as PowerShell 2.0
does), and a handler (:mod:`.exchange_cmdlets`, :mod:`.audit_cmdlets`, :mod:`.nlb_cmdlets`). Every
parameter accepted here appears in the syntax in shared/domain/exchange2010.md or
exchange2010-field.md, plus the common parameters that make sense (WhatIf, Confirm,
DomainController).
"""

from __future__ import annotations

from casdesired.lab.exchange import errors as err
from casdesired.lab.exchange.audit_cmdlets import (
    get_admin_audit_log_config,
    search_admin_audit_log,
    set_admin_audit_log_config,
)
from casdesired.lab.exchange.binding import Cmdlet, Param, Provider
from casdesired.lab.exchange.exchange_cmdlets import (
    get_client_access_array,
    get_client_access_server,
    get_exchange_server,
    get_mailbox,
    get_mailbox_database,
    new_client_access_array,
    remove_client_access_array,
    set_ad_server_settings,
    set_client_access_array,
    set_client_access_server,
    set_mailbox_database,
)
from casdesired.lab.exchange.nlb_cmdlets import (
    add_nlb_cluster_node,
    get_nlb_cluster,
    get_nlb_cluster_node,
    remove_nlb_cluster_node,
    start_nlb_cluster_node,
    stop_nlb_cluster_node,
)

_IDENTITY = Param("Identity", mandatory=True)
_OPTIONAL_IDENTITY = Param("Identity")

CMDLETS: dict[str, Cmdlet] = {
    c.name.lower(): c
    for c in (
        Cmdlet("Get-ClientAccessArray", "exchange", (_OPTIONAL_IDENTITY, Param("Site")),
               get_client_access_array),
        Cmdlet("New-ClientAccessArray", "exchange",
               (Param("Name"), Param("Fqdn", "fqdn", mandatory=True),
                Param("Site", mandatory=True)),
               new_client_access_array, should_process=True),
        Cmdlet("Set-ClientAccessArray", "exchange",
               (_IDENTITY, Param("Fqdn", "fqdn"), Param("Name"), Param("Site")),
               set_client_access_array, should_process=True),
        Cmdlet("Remove-ClientAccessArray", "exchange", (_IDENTITY,),
               remove_client_access_array, should_process=True),
        Cmdlet("Get-ExchangeServer", "exchange", (_OPTIONAL_IDENTITY,), get_exchange_server),
        Cmdlet("Get-ClientAccessServer", "exchange", (_OPTIONAL_IDENTITY,),
               get_client_access_server),
        Cmdlet("Set-ClientAccessServer", "exchange",
               (_IDENTITY, Param("AutoDiscoverServiceInternalUri", "uri", nullable=True),
                Param("AutoDiscoverSiteScope", "strings", nullable=True)),
               set_client_access_server, should_process=True),
        Cmdlet("Get-MailboxDatabase", "exchange", (_OPTIONAL_IDENTITY,), get_mailbox_database),
        Cmdlet("Set-MailboxDatabase", "exchange", (_IDENTITY, Param("RpcClientAccessServer")),
               set_mailbox_database, should_process=True),
        Cmdlet("Get-Mailbox", "exchange",
               (Param("Database"), Param("ResultSize", "resultsize")), get_mailbox),
        Cmdlet("Set-AdServerSettings", "exchange", (Param("ViewEntireForest", "bool"),),
               set_ad_server_settings),
        Cmdlet("Get-AdminAuditLogConfig", "exchange", (), get_admin_audit_log_config),
        Cmdlet("Set-AdminAuditLogConfig", "exchange",
               (Param("AdminAuditLogEnabled", "bool"), Param("AdminAuditLogCmdlets", "strings"),
                Param("AdminAuditLogParameters", "strings"),
                Param("AdminAuditLogExcludedCmdlets", "strings", nullable=True),
                Param("AdminAuditLogAgeLimit")),
               set_admin_audit_log_config, should_process=True),
        Cmdlet("Search-AdminAuditLog", "exchange",
               (Param("Identity"), Param("Cmdlets", "strings"), Param("ObjectIds", "strings"),
                Param("UserIds", "strings"), Param("Parameters", "strings"),
                Param("StartDate", "datetime"), Param("EndDate", "datetime"),
                Param("IsSuccess", "bool"), Param("ResultSize", "int32"),
                Param("StartIndex", "int32")),
               search_admin_audit_log),
        Cmdlet("Get-NlbCluster", "nlb", (Param("HostName"), Param("InterfaceName")),
               get_nlb_cluster),
        Cmdlet("Get-NlbClusterNode", "nlb",
               (Param("NodeName"), Param("HostName"), Param("InterfaceName")),
               get_nlb_cluster_node),
        Cmdlet("Add-NlbClusterNode", "nlb",
               (Param("InterfaceName", mandatory=True), Param("NewNodeName", mandatory=True),
                Param("NewNodeInterface", mandatory=True), Param("HostName"),
                Param("Force", "switch")),
               add_nlb_cluster_node),
        Cmdlet("Stop-NlbClusterNode", "nlb",
               (Param("HostName"), Param("Drain", "switch"), Param("Timeout", "uint")),
               stop_nlb_cluster_node),
        Cmdlet("Start-NlbClusterNode", "nlb", (Param("HostName"),), start_nlb_cluster_node),
        Cmdlet("Remove-NlbClusterNode", "nlb",
               (Param("HostName"), Param("InterfaceName"), Param("Force", "switch")),
               remove_nlb_cluster_node),
    )
}


def lookup(name: str, loaded: frozenset[Provider]) -> Cmdlet:
    """The cmdlet ``name`` if its snap-in or module is loaded, as command discovery would."""
    cmdlet = CMDLETS.get(name.strip().lower())
    if cmdlet is None or cmdlet.provider not in loaded:
        raise err.CommandNotFound(name)
    return cmdlet
