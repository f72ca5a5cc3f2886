"""Error records as Exchange 2010 and Windows PowerShell 2.0 raise them, with their texts.

Each error carries PowerShell's message, its CategoryInfo reason (``category``) and the target,
so the agent executor can hand them back exactly as agent.ps1 reads ``$_`` on Windows. These
are *emulated server errors*, data for the client, not casdesired's own failures: they do not
derive from :class:`casdesired.errors.CasdesiredError`. :class:`LabStateError` (a broken state
file or state document) is the lab's own failure and does.

Every text lives here, so a wording learnt from a real server is corrected in one place.
"""

from __future__ import annotations

from casdesired.errors import CasdesiredError

TERM_NOT_RECOGNIZED = (
    "The term '{name}' is not recognized as the name of a cmdlet, function, script file, or "
    "operable program. Check the spelling of the name, or if a path was included, verify that "
    "the path is correct and try again."
)
PARAMETER_NOT_FOUND = "A parameter cannot be found that matches parameter name '{name}'."
PARAMETER_TWICE = (
    "Cannot bind parameter because parameter '{name}' is specified more than once. To provide "
    "multiple values to parameters that can accept multiple values, use the array syntax."
)
MISSING_MANDATORY = (
    "Cannot process command because of one or more missing mandatory parameters: {names}."
)
ARGUMENT_NULL = "Cannot bind argument to parameter '{name}' because it is null."
CANNOT_CONVERT = (
    "Cannot bind parameter '{name}'. Cannot convert value \"{value}\" to type \"{type}\". "
    'Error: "{error}"'
)
CANNOT_CONVERT_ARRAY = (
    "Cannot convert 'System.Object[]' to the type '{type}' required by parameter '{name}'. "
    "Specified method is not supported."
)
INVALID_IDENTITY = "'{value}' is not a valid value for the identity.\r\nParameter name: Identity"
NOT_FOUND = (
    "The operation couldn't be performed because object '{identity}' couldn't be found on "
    "'{dc}'."
)
AMBIGUOUS = "The operation couldn't be performed because '{identity}' matches multiple entries."
NONINTERACTIVE_PROMPT = (
    "Windows PowerShell is in NonInteractive mode. Read and Prompt functionality is not available."
)
NAME_IN_USE = (
    "Active Directory operation failed on {dc}. The object '{dn}' already exists. "
    "The name '{name}' is already used by an Exchange server or client access array."
)
NAME_TOO_LONG = (
    "The length of the property is too long. The maximum length is 64 and the length of the "
    "value provided is {length}."
)
# [OPEN] Exchange 2010's own text (if it enforces the rule in code at all) is unconfirmed.
ONE_ARRAY_PER_SITE = (
    "The Active Directory site '{site}' already has a client access array ({fqdn}). "
    "Only one client access array is allowed per Active Directory site."
)
NOT_A_CAS = (
    "The server '{server}' doesn't have the Client Access server role installed, so it can't be "
    "the RpcClientAccessServer of a database."
)
# [OPEN] the pattern is Microsoft's for 2007 objects written by 2010 tools ("Management Tool
# Interoperability", 2010-01-08); the 2013-object text from 2010 tools is inferred from it.
FUTURE_VERSION = (
    "Object is read only because it was created by a future version of Exchange: 0.20 "
    "(15.0.0.0). Current supported version is 0.10 (14.0.100.0)."
)
# [OPEN] whether (and with what text) 2010 refuses to remove an array databases still use.
ARRAY_IN_USE = (
    "The client access array '{name}' is still the RpcClientAccessServer of {count} mailbox "
    "database(s); change their RpcClientAccessServer first."
)
NO_SETTINGS_MODIFIED = (
    "The command completed successfully but no settings of '{identity}' have been modified."
)
RESULT_SIZE_WARNING = (
    "By default, only the first 1000 items are returned. Use the ResultSize parameter to "
    'specify the number of items returned. To return all items, specify "-ResultSize '
    'Unlimited". Be aware that, depending on the actual number of items, returning all items '
    "can take a long time and consume a large amount of memory. Also, we don't recommend "
    "storing the results in a variable. Instead, pipe the results to another task or script "
    "to perform batch changes."
)
# [OPEN] the exact texts of the Exchange 2010 snap-in in a logon that cannot delegate (field
# §1a): the closest real captures, Get-Mailbox's ArgumentNull and AD's "operations error".
SNAPIN_DOUBLE_HOP_MAILBOX = "Value cannot be null.\r\nParameter name: parameters"
SNAPIN_DOUBLE_HOP = (
    "Active Directory operation failed on {dc}. This error is not retriable. Additional "
    "information: An operations error occurred."
)
# New-PSSession from inside a WinRM session (field §1c), and Exchange's throttling (§5).
REMOTE_NO_CREDENTIAL = (
    "Connecting to remote server {host} failed with the following error message : WinRM cannot "
    "process the request. The following error with errorcode 0x8009030e occurred while using "
    "Kerberos authentication: A specified logon session does not exist. It may already have "
    "been terminated. For more information, see the about_Remote_Troubleshooting Help topic."
)
REMOTE_ACCESS_DENIED = (
    "Connecting to remote server {host} failed with the following error message : Access is "
    "denied. For more information, see the about_Remote_Troubleshooting Help topic."
)
REMOTE_UNREACHABLE = (
    "Connecting to remote server {host} failed with the following error message : WinRM cannot "
    "complete the operation. Verify that the specified computer name is valid, that the "
    "computer is accessible over the network, and that a firewall exception for the WinRM "
    "service is enabled and allows access from this computer. By default, the WinRM firewall "
    "exception for public profiles limits access to remote computers within the same local "
    "subnet. For more information, see the about_Remote_Troubleshooting Help topic."
)
EXCHANGE_SESSIONS_EXCEEDED = (
    "Connecting to remote server {host} failed with the following error message : The "
    "WS-Management service cannot process the request. This user is allowed a maximum number "
    "of {limit} concurrent shells, which has been exceeded. Close existing shells or raise the "
    "quota for this user. For more information, see the about_Remote_Troubleshooting Help "
    "topic."
)
# [OPEN] the NLB cmdlets' own wording for WMI refused on another host; this is what WMI
# itself says (Get-WmiObject), and NLB Manager says "Access denied, error connecting to host".
ACCESS_DENIED = "Access is denied. (Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))"
NLB_HOST_NOT_FOUND = "The host '{host}' could not be found or is not a member of an NLB cluster."
NLB_INTERFACE_NOT_FOUND = "The interface '{interface}' could not be found on host '{host}'."
NLB_ALREADY_MEMBER = "The host '{host}' is already a member of an NLB cluster."
MODULE_NOT_FOUND = (
    "The specified module '{name}' was not loaded because no valid module file was found in "
    "any module directory."
)
# [inferred] Import-PSSession writes its proxies to a temporary script module and loads it, which
# an execution policy Group Policy sets to Restricted or AllSigned refuses (about_Execution_
# Policies: Restricted "does not permit scripts to run, including ... module script files
# (.psm1)"; AllSigned requires a signature, which the generated module lacks).
IMPLICIT_MODULE = (
    "C:\\Users\\casadmin\\AppData\\Local\\Temp\\tmp_9f1b2c3d.q4e\\tmp_9f1b2c3d.q4e.psm1"
)
SCRIPTS_DISABLED = (
    "File {path} cannot be loaded because the execution of scripts is disabled on this system. "
    'Please see "get-help about_signing" for more details.'
)
NOT_SIGNED = (
    "File {path} cannot be loaded. The file {path} is not digitally signed. The script will not "
    'execute on the system. Please see "get-help about_signing" for more details..'
)
# powershell.exe without .NET 3.5's System.Web.Extensions: the agent's fallback load fails.
ASSEMBLY_NOT_FOUND = (
    'Exception calling "Load" with "1" argument(s): "Could not load file or assembly '
    "'System.Web.Extensions, Version=3.5.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35' "
    'or one of its dependencies. The system cannot find the file specified."'
)
SNAPIN_NOT_FOUND = (
    "No Windows PowerShell snap-ins matching the pattern "
    "'Microsoft.Exchange.Management.PowerShell.E2010' were found. Check the pattern and then "
    "try the command again."
)


class ExchangeError(Exception):
    """An error record a cmdlet raises: message, CategoryInfo reason and target object."""

    default_category = "InvalidOperationException"

    def __init__(self, message: str, *, target: str = "", category: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.target = target
        self.category = category or self.default_category


class CommandNotFound(ExchangeError):
    default_category = "CommandNotFoundException"

    def __init__(self, name: str) -> None:
        super().__init__(TERM_NOT_RECOGNIZED.format(name=name), target=name)


class ParameterBindingError(ExchangeError):
    """The invocation's parameters do not bind: unknown, missing, duplicated or unconvertible."""

    default_category = "ParameterBindingException"


class ParameterValidationError(ParameterBindingError):
    default_category = "ParameterBindingValidationException"


class ObjectNotFound(ExchangeError):
    default_category = "ManagementObjectNotFoundException"

    def __init__(self, identity: str, dc: str) -> None:
        super().__init__(NOT_FOUND.format(identity=identity, dc=dc), target=identity)


class ObjectAmbiguous(ExchangeError):
    default_category = "ManagementObjectAmbiguousException"

    def __init__(self, identity: str) -> None:
        super().__init__(AMBIGUOUS.format(identity=identity), target=identity)


class ObjectAlreadyExists(ExchangeError):
    default_category = "ADObjectAlreadyExistsException"


class RuleViolation(ExchangeError):
    """A request Exchange refuses because of its data rules (one array per site, roles...)."""

    default_category = "InvalidOperationException"


class DataValidationError(ExchangeError):
    default_category = "DataValidationException"


class PromptNotAvailable(ExchangeError):
    """The cmdlet wanted to ask for confirmation, but the host is non-interactive."""

    default_category = "PSInvalidOperationException"

    def __init__(self) -> None:
        super().__init__(NONINTERACTIVE_PROMPT)


class NlbError(ExchangeError):
    default_category = "InvalidOperationException"


class LabStateError(CasdesiredError):
    """A lab state file or state document cannot be used (corrupt, wrong version, bad value)."""
