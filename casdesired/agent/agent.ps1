# casdesired-agent protocol 1
<#
The casdesired agent: runs on the Windows host casdesired reaches over WinRM, in Windows
PowerShell 2.0 (the only version supported next to Exchange 2010), and does what one request
asks of Exchange and Windows NLB.

How it is started (see docs/agent.md, casdesired/agent/protocol.py and casdesired/agent/delivery/,
whose docstrings are the contract): a short bootstrap on the command line gets this script and
the request -- from stdin, or from files it checks by their SHA-256 -- runs this script as a
script block and hands it the request, which is base64 of UTF-8 JSON, and (file delivery) the
credential, base64 of its JSON, taken from the shell's environment so it is never written to
a file or a command line. The request never becomes script text: every value in it is data,
splatted into a cmdlet as a parameter value. Nothing here calls Invoke-Expression or builds a
script from request data.

What it writes: the response, one line on stdout,
    <casdesired-response>gzip:BASE64(GZIP(UTF-8 JSON))</casdesired-response>
and before it, while it runs, progress lines (Write-AgentProgress): only numbers, never data
from the request. Anything else the host prints (banners, warnings) is ignored by casdesired.

Written for PowerShell 2.0 ONLY. Each place where a newer idiom would be natural says why it is
not used. tests/agent/ scans this file for what 2.0 lacks.
#>
param([string]$RequestBase64 = '', [string]$CredentialBase64 = '')

# Errors inside an invocation must stop that invocation, never continue silently.
$ErrorActionPreference = 'Stop'
# Progress records would reach stderr as CLIXML noise over WinRM; nobody sees them anyway.
$ProgressPreference = 'SilentlyContinue'

$ExchangeSnapIn = 'Microsoft.Exchange.Management.PowerShell.E2010'
$ProtocolVersion = 1

# The only commands the agent runs; anything else is refused as PowerShell refuses an unknown
# command. Written out here, not taken from the request, so that no request can widen it. It
# equals casdesired.agent.protocol.ALLOWED_CMDLETS (tests/agent checks that).
$AllowedCmdlets = @(
    'Get-ExchangeServer',
    'Get-ClientAccessServer',
    'Set-ClientAccessServer',
    'Get-ClientAccessArray',
    'New-ClientAccessArray',
    'Set-ClientAccessArray',
    'Remove-ClientAccessArray',
    'Get-MailboxDatabase',
    'Set-MailboxDatabase',
    'Get-Mailbox',
    'Get-AdminAuditLogConfig',
    'Search-AdminAuditLog',
    'Get-NlbCluster',
    'Get-NlbClusterNode',
    'Add-NlbClusterNode',
    'Stop-NlbClusterNode',
    'Start-NlbClusterNode',
    'Remove-NlbClusterNode',
    'Enter-CasdesiredLock',
    'Update-CasdesiredLock',
    'Exit-CasdesiredLock',
    'Remove-CasdesiredLock',
    'Get-CasdesiredLock',
    'Register-CasdesiredPlan',
    'Get-CasdesiredPlanRecord',
    'Get-CasdesiredHost',
    'Get-CasdesiredWinRMConfig',
    'Get-CasdesiredCommand',
    'Get-CasdesiredStaticPort',
    'Get-CasdesiredLockDirectory'
)

# Allowed commands the account's RBAC roles may not grant (the admin audit log's need the
# View-Only Audit Logs role). Through /PowerShell they are imported apart, and one the session
# lacks fails only its own invocation. Only casdesired drift uses them, with on_error continue.
$OptionalCmdlets = @(
    'Get-AdminAuditLogConfig',
    'Search-AdminAuditLog'
)

# The commands that change Exchange or NLB. In a request that carries a fence (apply's lock
# id), the agent checks before each of them that this lock is still the organisation's lock
# (Invoke-AgentFence), so a batch whose apply was killed and whose lock was then broken or
# taken over stops at its next write instead of overwriting newer work. It equals
# casdesired.agent.protocol.FENCED_CMDLETS (tests/agent checks that).
$FencedCmdlets = @(
    'Set-ClientAccessServer',
    'New-ClientAccessArray',
    'Set-ClientAccessArray',
    'Remove-ClientAccessArray',
    'Set-MailboxDatabase',
    'Add-NlbClusterNode',
    'Stop-NlbClusterNode',
    'Start-NlbClusterNode',
    'Remove-NlbClusterNode'
)

# The read allow-list: the commands above that change nothing on any host. A diagnose request
# (casdesired doctor) may run only these; anything else in it is refused before it runs. It
# equals casdesired.agent.protocol.READ_CMDLETS (tests/agent checks that).
$ReadCmdlets = @(
    'Get-ExchangeServer',
    'Get-ClientAccessServer',
    'Get-ClientAccessArray',
    'Get-MailboxDatabase',
    'Get-Mailbox',
    'Get-AdminAuditLogConfig',
    'Search-AdminAuditLog',
    'Get-NlbCluster',
    'Get-NlbClusterNode',
    'Get-CasdesiredLock',
    'Get-CasdesiredPlanRecord',
    'Get-CasdesiredHost',
    'Get-CasdesiredWinRMConfig',
    'Get-CasdesiredCommand',
    'Get-CasdesiredStaticPort',
    'Get-CasdesiredLockDirectory'
)

# --- JSON ------------------------------------------------------------------------------------
# PowerShell 2.0 has no ConvertTo-Json / ConvertFrom-Json. .NET 3.5's JavaScriptSerializer
# (assembly System.Web.Extensions) is present on every Exchange 2010 server and does the job.
try {
    Add-Type -AssemblyName 'System.Web.Extensions'
} catch {
    # Add-Type -AssemblyName on 2.0 only knows some partial names; fall back to the strong name.
    [void][System.Reflection.Assembly]::Load(
        'System.Web.Extensions, Version=3.5.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35')
}
$Serializer = New-Object System.Web.Script.Serialization.JavaScriptSerializer
# The default limit (2 MB of JSON) is far too small for 10,000 databases.
$Serializer.MaxJsonLength = [int]::MaxValue
$Serializer.RecursionLimit = 64

function New-Map {
    # A string-keyed dictionary JavaScriptSerializer writes as a JSON object. ([ordered] and
    # [pscustomobject] do not exist in 2.0.) Every value put in one below is a fresh .NET value
    # (a cast or a ToString()), never a PSObject wrapper, which the serializer would expand.
    return (New-Object 'System.Collections.Generic.Dictionary[string,object]')
}

function Get-Field {
    # Read one key of a deserialised JSON object, with a default when it is absent: indexing a
    # generic Dictionary with a missing key may throw, depending on how PowerShell binds it.
    param($Map, [string]$Name, $Default = $null)
    if ($null -ne $Map -and $Map.ContainsKey($Name)) { return $Map[$Name] }
    return $Default
}

function ConvertTo-AgentScalar {
    # One value as a JSON primitive: strings, numbers and booleans as they are; enums, dates and
    # every Exchange identity type (ADObjectId, Fqdn, ServerVersion, ...) as their ToString().
    # Over a remote session values arrive deserialised; their ToString() is still the text.
    param($Value)
    if ($null -eq $Value) { return $null }
    # [string] again: a string from a deserialised object may carry a PSObject wrapper.
    if ($Value -is [string]) { return [string]$Value }
    if ($Value -is [bool]) { return [bool]$Value }
    if ($Value -is [enum]) { return $Value.ToString() }
    if ($Value -is [int] -or $Value -is [long] -or $Value -is [int16] -or $Value -is [byte] -or
        $Value -is [uint16] -or $Value -is [uint32] -or $Value -is [sbyte]) {
        return [long]$Value
    }
    if ($Value -is [double] -or $Value -is [single] -or $Value -is [decimal]) {
        return [double]$Value
    }
    if ($Value -is [datetime]) { return $Value.ToString('o') }
    return $Value.ToString()
}

function ConvertTo-AgentValue {
    # A property value as JSON: multi-valued properties (MultiValuedProperty, arrays, the
    # ArrayLists of deserialised objects) become lists of scalars, everything else a scalar.
    param($Value)
    if ($null -eq $Value) { return $null }
    if ($Value -is [System.Collections.IEnumerable] -and -not ($Value -is [string])) {
        $list = New-Object System.Collections.ArrayList
        foreach ($item in $Value) { [void]$list.Add((ConvertTo-AgentScalar $item)) }
        # The comma keeps the list a list: PowerShell unrolls collections a function returns.
        return , $list
    }
    return ConvertTo-AgentScalar $Value
}

function Select-AgentProperties {
    # The requested properties of one output object. A property the object does not have is
    # left out (not set to null), so casdesired can tell "missing" from "empty". A property
    # the invocation expands ($Expand: name -> sub-property names) becomes a list of objects of
    # those sub-properties, one per element, instead of the elements' ToString() (an audit
    # entry's CmdletParameters print their names only; the values are a level down).
    param($Object, $Names, $Expand = $null)
    $row = New-Map
    foreach ($name in $Names) {
        $property = $Object.PSObject.Properties[[string]$name]
        if ($null -eq $property) { continue }
        $subNames = Get-Field $Expand ([string]$name)
        if ($null -eq $subNames) {
            $row[[string]$name] = ConvertTo-AgentValue $property.Value
        } else {
            $list = New-Object System.Collections.ArrayList
            foreach ($item in @($property.Value)) {
                if ($null -ne $item) { [void]$list.Add((Select-AgentProperties $item $subNames)) }
            }
            $row[[string]$name] = $list
        }
    }
    return $row
}

function ConvertFrom-AgentDate {
    # A date parameter's value ('yyyy-MM-ddTHH:mm:ssZ', UTC) as a [DateTime] of kind Utc, read
    # with the invariant culture: the cmdlet gets a date, never text its server would read in
    # its own regional format (a day-first culture reads 05/01 as the 5th of January), and over
    # the /PowerShell session a [DateTime] travels as a [DateTime].
    param([string]$Name, $Value)
    $text = [string]$Value
    $styles = [System.Globalization.DateTimeStyles]'AssumeUniversal, AdjustToUniversal'
    $parsed = [DateTime]::MinValue
    $ok = [DateTime]::TryParseExact($text, "yyyy'-'MM'-'dd'T'HH':'mm':'ss'Z'",
        [System.Globalization.CultureInfo]::InvariantCulture, $styles, [ref]$parsed)
    if (-not ($Value -is [string]) -or -not $ok) {
        throw "casdesired: '$text' is not a UTC time (yyyy-MM-ddTHH:mm:ssZ) for -$Name."
    }
    return $parsed
}

function Get-GroupKey {
    # The text a group_by counts under: the property's value as a string ('' when empty).
    param($Object, [string]$Name)
    $property = $Object.PSObject.Properties[$Name]
    if ($null -eq $property -or $null -eq $property.Value) { return '' }
    return [string](ConvertTo-AgentScalar $property.Value)
}

function Get-ErrorDetail {
    # What casdesired shows for a failed invocation: Exchange's own message, the error
    # category's reason (e.g. ManagementObjectNotFoundException) and the target.
    param($Record)
    # With -ErrorAction Stop, 2.0 wraps a cmdlet's error in ActionPreferenceStopException whose
    # message starts "Command execution stopped because ..."; the original record is inside.
    $inner = $Record.Exception -as [System.Management.Automation.ActionPreferenceStopException]
    if ($null -ne $inner -and $null -ne $inner.ErrorRecord) { $Record = $inner.ErrorRecord }
    $detail = New-Map
    $detail['message'] = [string]$Record.Exception.Message
    $detail['category'] = [string]$Record.CategoryInfo.Reason
    $detail['target'] = ''
    if ($null -ne $Record.TargetObject) { $detail['target'] = [string]$Record.TargetObject }
    return $detail
}

function Add-AgentStep {
    # One step of loading what the request needs (the Exchange session, a module, ...): what it
    # loaded, or the error it met. The response carries them all ('loading'); a diagnose request
    # goes on after a failed step, any other stops (see Main).
    param([string]$Step, [bool]$Ok, [string]$Detail)
    $entry = New-Map
    $entry['step'] = $Step
    $entry['ok'] = $Ok
    $entry['detail'] = $Detail
    [void]$LoadSteps.Add($entry)
}

function Invoke-AgentKeepalive {
    # Run the request's keepalive if its interval has passed since it last ran (or since the
    # first invocation started). Returns $false once it has failed: run nothing more. State
    # lives in the $KeepaliveState map (set up in Main) rather than in script variables, so no
    # scope rule decides which copy a function writes.
    if ($null -ne $KeepaliveState['stopped']) { return $false }
    $keepalive = $KeepaliveState['keepalive']
    if ($null -eq $keepalive) { return $true }
    $interval = [double](Get-Field $keepalive 'interval_seconds' 0)
    if ($KeepaliveState['watch'].Elapsed.TotalSeconds -lt $interval) { return $true }
    $invocation = Get-Field $keepalive 'invocation'
    $KeepaliveState['runs'] = [long]$KeepaliveState['runs'] + 1
    $result = Invoke-AgentInvocation $invocation $false
    $KeepaliveState['watch'] = [System.Diagnostics.Stopwatch]::StartNew()
    if ($result['ok']) { return $true }
    $KeepaliveState['stopped'] = 'casdesired: stopped: the keepalive ' +
        [string](Get-Field $invocation 'cmdlet' '') + ' failed: ' +
        [string]$result['error']['message']
    return $false
}

function Invoke-AgentFence {
    # Before a write (a command in $FencedCmdlets) of a request that carries a fence: is the
    # request's lock still the organisation's lock? Returns $false (and says why in
    # $KeepaliveState['stopped']) when it is not, or cannot be told: run nothing more. A write
    # already running when the lock is broken finishes (a cmdlet cannot be recalled half-way);
    # the check makes the NEXT one stop.
    param($Invocation)
    $fence = [string]$KeepaliveState['fence']
    if ($fence -eq '') { return $true }
    $cmdlet = [string](Get-Field $Invocation 'cmdlet' '')
    if (-not ($FencedCmdlets -contains $cmdlet)) { return $true }
    try {
        Assert-CasdesiredFence $fence
        return $true
    } catch {
        $detail = [string]$_.Exception.Message
        if ($detail.StartsWith('casdesired: ')) { $detail = $detail.Substring(12) }
        $KeepaliveState['stopped'] = 'casdesired: stopped before ' + $cmdlet +
            ', whose lock check failed: ' + $detail + ' Nothing more was run.'
        return $false
    }
}

# --- Other computers: the double hop ---------------------------------------------------------
# This logon (NTLM, or Kerberos without delegation) has no credential that can reach a third
# machine, so anything aimed at another host through WMI (the NLB cmdlets' -HostName) is
# denied. An invocation with a 'computer' therefore runs ON that computer, through a PSSession
# the agent opens there with the request's explicit credential (what works without
# delegation), one per computer for the whole run, removed when the run ends. The script block
# is fixed text; the cmdlet name and its parameters travel as arguments (data), never as script.
$RemoteCmdlet = {
    param($Name, $Parameters, $Modules)
    $ErrorActionPreference = 'Stop'
    foreach ($module in @($Modules)) {
        if ($null -eq (Get-Module -Name $module)) { Import-Module -Name $module }
    }
    & $Name @Parameters
}

function Get-AgentCredential {
    # The request's credential as a PSCredential ($null without one: then only a logon that
    # can delegate reaches a second machine).
    $given = Get-Field $AgentState 'credential'
    if ($null -eq $given) { return $null }
    $plain = [string](Get-Field $given 'password' '')
    $secret = ConvertTo-SecureString -String $plain -AsPlainText -Force
    return (New-Object System.Management.Automation.PSCredential(
        [string](Get-Field $given 'username' ''), $secret))
}

function Get-AgentNodeSession {
    # $null for this computer; else the run's PSSession to $Computer (opened on first use).
    param([string]$Computer)
    if ($Computer -eq '') { return $null }
    if ($Computer.Split('.')[0] -eq [string]$env:COMPUTERNAME) { return $null }
    $key = $Computer.ToLowerInvariant()
    if (-not $NodeSessions.ContainsKey($key)) {
        $parameters = @{ ComputerName = $Computer; ErrorAction = 'Stop' }
        $credential = Get-AgentCredential
        if ($null -ne $credential) { $parameters['Credential'] = $credential }
        $NodeSessions[$key] = New-PSSession @parameters
    }
    return $NodeSessions[$key]
}

function Invoke-AgentCmdlet {
    # `& $Cmdlet @Parameters` here, or on the invocation's computer through its PSSession.
    param([string]$Cmdlet, $Parameters, $Session)
    if ($null -eq $Session) { return (& $Cmdlet @Parameters) }
    $modules = [string[]]@(Get-Field $AgentState 'modules' @())
    return (Invoke-Command -Session $Session -ScriptBlock $RemoteCmdlet -ErrorAction Stop `
        -ArgumentList $Cmdlet, $Parameters, $modules)
}

function Invoke-AgentInvocation {
    # Run one invocation: `& $cmdlet @parameters -ErrorAction Stop`, then select properties,
    # count groups, or poll until a property reaches a value. Returns the result object.
    # $WithKeepalive: run the request's keepalive between polls (not for the keepalive itself).
    # $Position: the invocation's place in the request, for the progress line of each poll of
    # an 'until' (0: none, for the keepalive).
    param($Invocation, [bool]$WithKeepalive = $true, [int]$Position = 0)
    $result = New-Map
    $result['id'] = [string](Get-Field $Invocation 'id' '')
    $result['ok'] = $false
    $result['objects'] = New-Object System.Collections.ArrayList
    try {
        $cmdlet = [string](Get-Field $Invocation 'cmdlet' '')
        # Only a Verb-Noun command name is run; never a path, a script or an expression.
        if ($cmdlet -notmatch '^[A-Za-z]+-[A-Za-z0-9]+$') {
            throw "casdesired: '$cmdlet' is not a cmdlet name."
        }
        # Then only what the allow-list names (-contains compares case-insensitively, as
        # PowerShell compares command names), refused as PowerShell refuses an unknown command.
        if (-not ($AllowedCmdlets -contains $cmdlet)) {
            $notFound = New-Object -TypeName System.Management.Automation.CommandNotFoundException `
                -ArgumentList ("The term '$cmdlet' is not recognized as the name of a cmdlet, " +
                    'function, script file, or operable program. Check the spelling of the ' +
                    'name, or if a path was included, verify that the path is correct and ' +
                    'try again.')
            throw (New-Object -TypeName System.Management.Automation.ErrorRecord -ArgumentList `
                $notFound, 'CommandNotFoundException',
                ([System.Management.Automation.ErrorCategory]::ObjectNotFound), $cmdlet)
        }
        # A diagnose request (casdesired doctor) runs only what changes nothing.
        if ($AgentState['diagnose'] -and -not ($ReadCmdlets -contains $cmdlet)) {
            throw ("casdesired: '$cmdlet' is not a read command; a diagnose request runs " +
                'only the commands of the read allow-list.')
        }
        # Splatting passes every value as a parameter value (data), whatever characters it
        # holds: quotes, $(), backticks, ';', '|' and newlines stay inert.
        $parameters = @{}
        $given = Get-Field $Invocation 'parameters'
        if ($null -ne $given) {
            foreach ($key in $given.Keys) { $parameters[[string]$key] = $given[$key] }
        }
        $parameters['ErrorAction'] = 'Stop'
        foreach ($dateName in @(Get-Field $Invocation 'dates' @())) {
            if ($parameters.ContainsKey([string]$dateName)) {
                $parameters[[string]$dateName] = ConvertFrom-AgentDate ([string]$dateName) `
                    $parameters[[string]$dateName]
            }
        }

        $properties = @(Get-Field $Invocation 'properties' @())
        $expand = Get-Field $Invocation 'expand'
        $groupBy = Get-Field $Invocation 'group_by'
        $until = Get-Field $Invocation 'until'
        $session = Get-AgentNodeSession ([string](Get-Field $Invocation 'computer' ''))

        if ($null -ne $groupBy) {
            # Counting in the pipeline keeps memory flat even for millions of mailboxes.
            $groups = New-Map
            Invoke-AgentCmdlet $cmdlet $parameters $session | ForEach-Object {
                $key = Get-GroupKey $_ ([string]$groupBy)
                $count = [long]0
                if ($groups.ContainsKey($key)) { $count = [long]$groups[$key] }
                $groups[$key] = $count + 1
            }
            $result['groups'] = $groups
        } elseif ($null -ne $until) {
            $untilProperty = [string](Get-Field $until 'property' '')
            $wanted = @(Get-Field $until 'values' @()) | ForEach-Object { [string]$_ }
            $timeout = [double](Get-Field $until 'timeout_seconds' 300)
            $interval = [double](Get-Field $until 'interval_seconds' 5)
            $deadline = (Get-Date).AddSeconds($timeout)
            while ($true) {
                $objects = New-Object System.Collections.ArrayList
                $pending = 0
                foreach ($output in @(Invoke-AgentCmdlet $cmdlet $parameters $session)) {
                    [void]$objects.Add((Select-AgentProperties $output $properties $expand))
                    $value = Get-GroupKey $output $untilProperty
                    # -contains (not -in, which 2.0 lacks); it compares case-insensitively.
                    if (-not (@($wanted) -contains $value)) { $pending += 1 }
                }
                $result['objects'] = $objects
                if ($pending -eq 0) { break }
                if ((Get-Date) -ge $deadline) {
                    throw ("casdesired: timed out after $timeout seconds waiting for " +
                        "$untilProperty to be one of: " + (@($wanted) -join ', ') + '.')
                }
                if ($Position -gt 0) {
                    $left = [Math]::Floor(($deadline - (Get-Date)).TotalSeconds)
                    Write-AgentProgress $Position ([int][Math]::Max(0, $left))
                }
                Start-Sleep -Milliseconds ([int]($interval * 1000))
                # A long wait (an NLB drain) must not outlive the lock's lease.
                if ($WithKeepalive -and -not (Invoke-AgentKeepalive)) {
                    throw [string]$KeepaliveState['stopped']
                }
            }
        } else {
            $objects = New-Object System.Collections.ArrayList
            Invoke-AgentCmdlet $cmdlet $parameters $session | ForEach-Object {
                [void]$objects.Add((Select-AgentProperties $_ $properties $expand))
            }
            $result['objects'] = $objects
        }
        $result['ok'] = $true
    } catch {
        $result['ok'] = $false
        $result['error'] = Get-ErrorDetail $_
    }
    return $result
}

# --- Fan-out: an invocation run once per object of an earlier one --------------------------------
# An invocation with a 'for_each' runs once for each object an earlier invocation of the
# request returned, on the computer one of the object's properties names (import reads NLB on
# every Client Access server this way, in the same run that finds them). Each run is a copy of
# the invocation with that 'computer' and the id '<id>@<computer>', run as any invocation with a
# 'computer' (Get-AgentNodeSession). Only names and values travel; nothing becomes script. The
# rules: casdesired/agent/fanout.py.

function Get-AgentRowText {
    # A returned object's property as text ('' when absent or null), as Get-GroupKey gives it;
    # the name compared case-insensitively (-eq), as PowerShell compares property names.
    param($Row, [string]$Name)
    foreach ($key in @($Row.Keys)) {
        if ([string]$key -eq $Name) {
            if ($null -eq $Row[$key]) { return '' }
            return [string]$Row[$key]
        }
    }
    return ''
}

function Assert-AgentFanOuts {
    # Before anything runs: a for_each names an earlier invocation of the request (a keepalive
    # has none) that returns objects -- not one that fans out itself or counts groups -- and
    # properties it returns; the invocation names no computer of its own. Else a bad request.
    param($Invocations)
    $earlier = New-Map
    foreach ($invocation in @($Invocations)) {
        $id = [string](Get-Field $invocation 'id' '')
        $forEach = Get-Field $invocation 'for_each'
        if ($null -ne $forEach) {
            $sourceId = [string](Get-Field $forEach 'invocation' '')
            $source = Get-Field $earlier $sourceId
            $why = ''
            if ($null -eq $source) {
                $why = 'it is not an earlier invocation of the request'
            } elseif ($null -ne (Get-Field $source 'for_each')) {
                $why = 'it runs for each object of another invocation itself'
            } elseif ($null -ne (Get-Field $source 'group_by')) {
                $why = 'it counts groups and returns no objects'
            } else {
                $returned = @(Get-Field $source 'properties' @())
                $names = New-Object System.Collections.ArrayList
                [void]$names.Add([string](Get-Field $forEach 'computer' ''))
                $where = Get-Field $forEach 'where'
                if ($null -ne $where) { [void]$names.Add([string](Get-Field $where 'property' '')) }
                foreach ($name in $names) {
                    # -contains compares case-insensitively, as property names compare.
                    if ($name -eq '' -or -not ($returned -contains $name)) {
                        $why = "it does not return the property '$name'"
                        break
                    }
                }
            }
            if ($why -eq '' -and [string](Get-Field $invocation 'computer' '') -ne '') {
                $why = 'the invocation names a computer of its own'
            }
            if ($why -ne '') {
                throw ("casdesired: invocation '$id' cannot run for each object of " +
                    "'$sourceId': $why.")
            }
        }
        if (-not $earlier.ContainsKey($id)) { $earlier[$id] = $invocation }
    }
}

function New-AgentRun {
    # One run of an invocation: what to run, and why it is not run at all ('' when it is).
    param($Invocation, [string]$Refused = '')
    $run = New-Map
    $run['invocation'] = $Invocation
    $run['refused'] = $Refused
    return $run
}

function Get-AgentRuns {
    # The runs of one invocation, written to the pipeline: itself; or, with a for_each, one copy
    # per distinct computer (compared case-insensitively, first spelling kept) that the objects
    # of its source name, in their order, those the 'where' leaves out skipped. One refused run
    # instead when the source failed (its objects may be partial) or an object has no computer.
    param($Invocation, $Results)
    $forEach = Get-Field $Invocation 'for_each'
    if ($null -eq $forEach) { return (New-AgentRun $Invocation) }
    $id = [string](Get-Field $Invocation 'id' '')
    $sourceId = [string](Get-Field $forEach 'invocation' '')
    $property = [string](Get-Field $forEach 'computer' '')
    $where = Get-Field $forEach 'where'
    $source = $null
    foreach ($result in $Results) {
        # -ceq: ids compare exactly, as the request's keys do.
        if ($null -eq $source -and [string]$result['id'] -ceq $sourceId) { $source = $result }
    }
    if ($null -eq $source -or -not $source['ok']) {
        return (New-AgentRun $Invocation ("casdesired: '$id' was not run: '$sourceId', whose " +
            'objects it runs for, failed.'))
    }
    $wanted = @()
    $whereProperty = ''
    if ($null -ne $where) {
        $wanted = @(@(Get-Field $where 'values' @()) | ForEach-Object { [string]$_ })
        $whereProperty = [string](Get-Field $where 'property' '')
    }
    $computers = New-Object System.Collections.ArrayList
    $seen = New-Map
    foreach ($row in @($source['objects'])) {
        # -contains (not -in, which 2.0 lacks); it compares case-insensitively.
        if ($null -ne $where -and -not ($wanted -contains (Get-AgentRowText $row $whereProperty))) {
            continue
        }
        $computer = Get-AgentRowText $row $property
        if ($computer -eq '') {
            return (New-AgentRun $Invocation ("casdesired: '$id' was not run: an object of " +
                "'$sourceId' has no $property."))
        }
        if (-not $seen.ContainsKey($computer.ToLowerInvariant())) {
            $seen[$computer.ToLowerInvariant()] = $true
            [void]$computers.Add($computer)
        }
    }
    foreach ($computer in $computers) {
        $copy = New-Map
        foreach ($name in @($Invocation.Keys)) {
            if ([string]$name -ne 'for_each') { $copy[[string]$name] = $Invocation[$name] }
        }
        $copy['id'] = $id + '@' + $computer
        $copy['computer'] = $computer
        New-AgentRun $copy
    }
}

function New-AgentRefusal {
    # The failed result of a run that is not run at all (Get-AgentRuns says why).
    param($Run)
    $result = New-Map
    $result['id'] = [string](Get-Field $Run['invocation'] 'id' '')
    $result['ok'] = $false
    $result['objects'] = New-Object System.Collections.ArrayList
    try {
        throw [string]$Run['refused']
    } catch {
        $result['error'] = Get-ErrorDetail $_
    }
    return $result
}

function Write-AgentProgress {
    # One progress line, flushed at once so the Receive casdesired has waiting carries it: the
    # invocation's 1-based position in the request and, at a poll of its 'until', the whole
    # seconds left before the wait's timeout ($Left -lt 0: none). Only numbers, never a name
    # or an id (casdesired.agent.framing.progress_line).
    param([int]$Invocation, [int]$Left = -1)
    if (-not $AgentState['progress']) { return }
    $line = '<casdesired-progress invocation="' + $Invocation + '"'
    if ($Left -ge 0) { $line += ' left="' + $Left + '"' }
    [Console]::Out.WriteLine($line + '/>')
    [Console]::Out.Flush()
}

function Write-AgentResponse {
    # The one line casdesired reads. [Console]::Out.Write, not the formatter: 2.0 wraps
    # formatted output at 80 columns, which would cut the frame. Base64 keeps it ASCII.
    param($Response)
    $json = $Serializer.Serialize($Response)
    $bytes = [System.Text.Encoding]::UTF8.GetBytes($json)
    # Gzip before base64: WS-Man caps each Receive envelope near 150 KB, and the JSON of a large
    # organisation shrinks about tenfold, so the answer needs far fewer round trips.
    # GZipStream has been in .NET since 2.0; Close() flushes it, ToArray() works after Close.
    $buffer = New-Object -TypeName System.IO.MemoryStream
    $gzip = New-Object -TypeName System.IO.Compression.GZipStream -ArgumentList $buffer,
        ([System.IO.Compression.CompressionMode]::Compress)
    $gzip.Write($bytes, 0, $bytes.Length)
    $gzip.Close()
    [Console]::Out.Write('<casdesired-response>gzip:' +
        [Convert]::ToBase64String($buffer.ToArray()) + '</casdesired-response>')
    [Console]::Out.Flush()
}

# --- The organisation lock (casdesired apply) --------------------------------------------------
# One lock per organisation, held on the endpoint host every pipeline of the organisation uses:
# one file, holding owner, lock id, times (taken, last renewed), lease expiry and plan id as
# JSON. An EMPTY lock file is a free lock. A lease that ran out (a killed CI job) may be taken
# over. Every plan that started writing leaves a record under 'applied', so the same plan file
# can never be applied twice; every lock id released or broken leaves one under 'released', so
# it can never be taken again. These are advanced functions, called like cmdlets by
# invocations: unknown parameters fail, values arrive as data.
#
# Every look at or change of the lock file is ONE read-modify-write under an exclusive handle:
# [IO.File]::Open(path, OpenOrCreate|Open, ReadWrite, FileShare.None). While one agent holds
# that handle, NTFS fails every other open, rename or delete of the file with a sharing
# violation; the other agent waits 50 ms and tries again (for at most 10 s). The file is never
# deleted or renamed: taking, renewing, releasing and breaking the lock all rewrite its content.
#
# Interleavings considered (A, B: agents of two pipelines; X: a lock whose lease ran out):
# - The old way (read, Delete, CreateNew) let A and B both read X; A deleted X and created its
#   lock; B then deleted A's NEW lock and created its own: two holders. Here A and B cannot both
#   be between "read" and "write": the second open waits until the first agent has closed,
#   then reads A's live lock and is refused.
# - Renaming the expired file to a unique name (one rename wins) was considered and rejected:
#   by the time B renames the path, it may hold A's new lock, not X. B must move it back, but
#   the path is empty meanwhile, so a third agent C finds no lock and creates one; B's move
#   back then fails, and A and C both believe they hold the lock.
# - A takeover against X's slow holder renewing (Update-CasdesiredLock): both open
#   exclusively, so one goes first. Renewal first: the contender reads a live lease and is
#   refused. Takeover first: the renewal reads another lock id, fails, and the holder's agent
#   stops its batch (the request's keepalive).
# - A release (Exit) or a break (Remove, 'casdesired unlock') against a new Enter: they empty
#   the file only if it still holds the lock id they name, checked under the same handle, so
#   they never free a lock someone took in between.
# - Two agents finding no file: OpenOrCreate with FileShare.None is one NTFS open; the loser's
#   open fails with a sharing violation and it retries, then reads the winner's lock.
# - Register-CasdesiredPlan checks the lock and creates the plan's record under the handle, so
#   no takeover slips between the check and the record.
# - A killed agent: Windows closes its handles with the process, so the file is never left
#   held open. Killed mid-write, it leaves text that is no lock record: read as free.
# - A late Enter of an apply's own lock id: apply lost the answer to its lock-and-read request
#   and released its lock id, but that request is still starting (loading Exchange) and takes
#   the lock afterwards, locking the organisation for a whole lease. Exit (and Remove) record
#   the id as ended (under 'released', with the handle open) and Enter refuses an ended id:
#   whichever goes first, the lock ends up free.
# - A killed apply's batch still running when its lock is broken (unlock) and a new apply
#   writes: before every write the agent checks that the request's lock (its fence) is still
#   the current lock (Invoke-AgentFence), so the old batch stops at its next write. A lock id
#   is new for every apply and, once ended, is never taken again, so it is a fencing token
#   that every unlock and every takeover advances. A write already running finishes.
# What leases cannot rule out: a holder paused for longer than its lease. The keepalive (see
# Invoke-AgentKeepalive) renews while a batch runs, and a failed renewal stops the batch.
# The lab mirrors this section step by step in casdesired/lab/exchange/locks.py (same texts).
$LockRoot = Join-Path $env:ProgramData 'casdesired'
$LockPath = Join-Path (Join-Path $LockRoot 'locks') 'organisation.lock'
$AppliedDir = Join-Path $LockRoot 'applied'
$EndedDir = Join-Path $LockRoot 'released'
$LockOpenAttempts = 200
$LockRetryMilliseconds = 50

function Assert-CasdesiredId {
    # Ids become file names: only plain ids may, so nothing can point outside the folder.
    param([string]$Value, [string]$What)
    if ($Value -notmatch '^[A-Za-z0-9-]{1,64}$') {
        throw "casdesired: '$Value' is not a valid $What (letters, digits and '-', at most 64)."
    }
}

function Get-UtcText {
    param([DateTime]$Moment)
    return $Moment.ToUniversalTime().ToString('o')
}

function ConvertFrom-UtcText {
    param([string]$Text)
    return [DateTime]::Parse($Text, $null,
        [System.Globalization.DateTimeStyles]::RoundtripKind).ToUniversalTime()
}

function Read-CasdesiredFile {
    param([string]$Path)
    if (-not [System.IO.File]::Exists($Path)) { return $null }
    return $Serializer.DeserializeObject([System.IO.File]::ReadAllText($Path))
}

function Write-CasdesiredFileNew {
    # CreateNew fails if the file exists: the atomic test-and-set the plan records rely on.
    param([string]$Path, $Data)
    [void][System.IO.Directory]::CreateDirectory([System.IO.Path]::GetDirectoryName($Path))
    $bytes = [System.Text.Encoding]::UTF8.GetBytes($Serializer.Serialize($Data))
    $stream = [System.IO.File]::Open($Path, [System.IO.FileMode]::CreateNew,
        [System.IO.FileAccess]::Write, [System.IO.FileShare]::None)
    try { $stream.Write($bytes, 0, $bytes.Length) } finally { $stream.Close() }
}

function Get-InnerException {
    # A .NET method's exception reaches a catch wrapped (MethodInvocationException); the cause
    # is inside.
    param($Exception)
    while ($null -ne $Exception.InnerException -and
        $Exception -is [System.Management.Automation.RuntimeException]) {
        $Exception = $Exception.InnerException
    }
    return $Exception
}

function Open-LockFile {
    # The exclusive open every use of the lock file starts with. $null when the file does not
    # exist (and -Create is not given). Another agent's handle makes the open fail with a sharing
    # violation (an IOException): wait and try again, for at most 10 seconds.
    param([switch]$Create)
    $mode = [System.IO.FileMode]::Open
    if ($Create) {
        [void][System.IO.Directory]::CreateDirectory([System.IO.Path]::GetDirectoryName($LockPath))
        $mode = [System.IO.FileMode]::OpenOrCreate
    }
    for ($attempt = 0; $attempt -lt $LockOpenAttempts; $attempt++) {
        try {
            return [System.IO.File]::Open($LockPath, $mode, [System.IO.FileAccess]::ReadWrite,
                [System.IO.FileShare]::None)
        } catch {
            $cause = Get-InnerException $_.Exception
            if ($cause -is [System.IO.FileNotFoundException] -or
                $cause -is [System.IO.DirectoryNotFoundException]) {
                return $null
            }
            if (-not ($cause -is [System.IO.IOException])) { throw }
        }
        Start-Sleep -Milliseconds $LockRetryMilliseconds
    }
    throw ("casdesired: the lock file $LockPath stayed in use by another process for 10 " +
        'seconds; try again.')
}

function Read-LockStream {
    # The whole file through the handle, as text ('' for a new or released lock).
    param($Stream)
    $bytes = [System.Array]::CreateInstance([byte], [int]$Stream.Length)
    $done = 0
    while ($done -lt $bytes.Length) {
        $read = $Stream.Read($bytes, $done, $bytes.Length - $done)
        if ($read -le 0) { break }
        $done += $read
    }
    return [System.Text.Encoding]::UTF8.GetString($bytes, 0, $done)
}

function Write-LockStream {
    # Replace the whole content through the handle: nobody can read it half-written meanwhile.
    param($Stream, [string]$Text)
    $bytes = [System.Text.Encoding]::UTF8.GetBytes($Text)
    $Stream.SetLength(0)
    $Stream.Position = 0
    $Stream.Write($bytes, 0, $bytes.Length)
    $Stream.Flush()
}

function ConvertFrom-LockText {
    # The lock record in a lock file's text; $null when it is empty (free) or no lock record (its
    # writer was stopped mid-write: nobody can be relying on it).
    param([string]$Text)
    if ($Text.Trim() -eq '') { return $null }
    try {
        $lock = $Serializer.DeserializeObject($Text)
        foreach ($name in @('lock_id', 'owner', 'acquired', 'expires')) {
            if (-not ((Get-Field $lock $name) -is [string])) { return $null }
        }
        [void](ConvertFrom-UtcText ([string]$lock['expires']))
        return $lock
    } catch {
        return $null
    }
}

function ConvertTo-LockObject {
    param($Lock, $TakenOverFrom = $null)
    $plan = [string](Get-Field $Lock 'plan_id' '')
    if ($plan -eq '') { $plan = $null }
    # A lock written before renewals were recorded was last renewed when it was taken.
    $renewed = [string](Get-Field $Lock 'renewed' '')
    if ($renewed -eq '') { $renewed = [string]$Lock['acquired'] }
    return New-Object PSObject -Property @{
        LockId = [string]$Lock['lock_id']; Owner = [string]$Lock['owner']; PlanId = $plan
        Acquired = [string]$Lock['acquired']; Renewed = $renewed
        Expires = [string]$Lock['expires']; Path = $LockPath; TakenOverFrom = $TakenOverFrom
    }
}

function Assert-PlanNotApplied {
    param([string]$PlanId)
    $record = Read-CasdesiredFile (Join-Path $AppliedDir ($PlanId + '.json'))
    if ($null -ne $record) {
        throw ("casdesired: plan $PlanId was already applied here on " + $record['applied'] +
            ' by ' + $record['owner'] + '; make a new plan.')
    }
}

function Assert-LockHeld {
    # The lock record read through an open handle, if it is the lock named; else throw.
    param([string]$Text, [string]$LockId)
    $current = ConvertFrom-LockText $Text
    if ($null -eq $current -or [string]$current['lock_id'] -ne $LockId) {
        $described = 'none'
        if ($null -ne $current) {
            $described = [string]$current['lock_id'] + ' held by ' + $current['owner']
        }
        throw "casdesired: lock $LockId is not held here (the current lock: $described)."
    }
    return $current
}

function Register-LockEnd {
    # Called with the lock file's handle open: lock id $LockId has ended (released or broken).
    # Enter-CasdesiredLock refuses an ended id, so a request carrying it whose answer was lost
    # (it may run after its apply released) can never take the lock again.
    param([string]$LockId)
    $path = Join-Path $EndedDir ($LockId + '.json')
    if ([System.IO.File]::Exists($path)) { return }
    $record = New-Map
    $record['lock_id'] = $LockId; $record['ended'] = Get-UtcText ([DateTime]::UtcNow)
    Write-CasdesiredFileNew $path $record
}

function Assert-LockNotEnded {
    param([string]$LockId)
    if ([System.IO.File]::Exists((Join-Path $EndedDir ($LockId + '.json')))) {
        throw ("casdesired: lock $LockId was released or broken already; a lock id is never " +
            'taken twice (every apply takes a new one).')
    }
}

function Assert-CasdesiredFence {
    # The fence before a write (Invoke-AgentFence): throws unless lock $LockId is the current
    # lock. One exclusive open, read and close, like every look at the lock file. Not a command
    # a request can name: the agent calls it itself.
    param([string]$LockId)
    $stream = Open-LockFile
    $text = ''
    if ($null -ne $stream) {
        try { $text = Read-LockStream $stream } finally { $stream.Close() }
    }
    [void](Assert-LockHeld $text $LockId)
}

function Enter-CasdesiredLock {
    # Take the lock if it is free, its lease ran out, or it is already ours (renewed).
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)][string]$LockId,
        [Parameter(Mandatory = $true)][string]$Owner,
        [Parameter(Mandatory = $true)][uint32]$LeaseSeconds,
        [string]$PlanId = ''
    )
    Assert-CasdesiredId $LockId 'lock id'
    if ($PlanId -ne '') { Assert-CasdesiredId $PlanId 'plan id'; Assert-PlanNotApplied $PlanId }
    $stream = Open-LockFile -Create
    try {
        Assert-LockNotEnded $LockId
        $text = Read-LockStream $stream
        $now = [DateTime]::UtcNow
        $current = ConvertFrom-LockText $text
        $takenOverFrom = $null
        if ($null -eq $current -and $text.Trim() -ne '') {
            $takenOverFrom = 'an unreadable lock (its writer was stopped mid-write)'
        }
        if ($null -ne $current -and [string]$current['lock_id'] -ne $LockId) {
            if ((ConvertFrom-UtcText ([string]$current['expires'])) -gt $now) {
                $heldPlan = [string](Get-Field $current 'plan_id' '')
                if ($heldPlan -eq '') { $heldPlan = '-' }
                throw ('casdesired: the organisation is locked by ' + $current['owner'] +
                    ' since ' + $current['acquired'] + ' (lock ' + $current['lock_id'] +
                    ', plan ' + $heldPlan + ', lease until ' + $current['expires'] +
                    '). Wait for it, or break it deliberately with: casdesired unlock ' +
                    $current['lock_id'])
            }
            # The lease ran out (a killed job). Nobody else can touch the file while this
            # handle is open, so replacing its content is the whole takeover.
            $takenOverFrom = [string]$current['owner'] + ' (lock ' +
                [string]$current['lock_id'] + ')'
        }
        $lock = New-Map
        $lock['lock_id'] = $LockId; $lock['owner'] = $Owner; $lock['plan_id'] = $PlanId
        $lock['acquired'] = Get-UtcText $now
        $lock['renewed'] = $lock['acquired']
        $lock['expires'] = Get-UtcText $now.AddSeconds($LeaseSeconds)
        Write-LockStream $stream $Serializer.Serialize($lock)
    } finally {
        $stream.Close()
    }
    ConvertTo-LockObject $lock $takenOverFrom
}

function Update-CasdesiredLock {
    # Renew the lease; fails (so the batch stops before any further write) if the lock was
    # broken or taken over.
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)][string]$LockId,
        [Parameter(Mandatory = $true)][uint32]$LeaseSeconds
    )
    Assert-CasdesiredId $LockId 'lock id'
    $stream = Open-LockFile
    if ($null -eq $stream) { [void](Assert-LockHeld '' $LockId) }
    try {
        $lock = Assert-LockHeld (Read-LockStream $stream) $LockId
        $now = [DateTime]::UtcNow
        $lock['renewed'] = Get-UtcText $now
        $lock['expires'] = Get-UtcText $now.AddSeconds($LeaseSeconds)
        Write-LockStream $stream $Serializer.Serialize($lock)
    } finally {
        $stream.Close()
    }
    ConvertTo-LockObject $lock
}

function Exit-CasdesiredLock {
    # Release: empty the file if it holds our lock; nothing to do if the lock is free. Either
    # way the id has ended (Register-LockEnd): an Enter with it that arrives late is refused.
    # Says whether it released the lock.
    [CmdletBinding()]
    param([Parameter(Mandatory = $true)][string]$LockId)
    Assert-CasdesiredId $LockId 'lock id'
    $stream = Open-LockFile -Create
    $released = $false
    try {
        Register-LockEnd $LockId
        $text = Read-LockStream $stream
        # Free already (broken with unlock): nothing to release.
        if ($null -ne (ConvertFrom-LockText $text)) {
            [void](Assert-LockHeld $text $LockId)
            Write-LockStream $stream ''
            $released = $true
        }
    } finally {
        $stream.Close()
    }
    New-Object PSObject -Property @{ LockId = $LockId; Released = $released }
}

function Remove-CasdesiredLock {
    # `casdesired unlock LOCK_ID`: break a lock deliberately, naming the one meant.
    [CmdletBinding()]
    param([Parameter(Mandatory = $true)][string]$LockId)
    Assert-CasdesiredId $LockId 'lock id'
    $stream = Open-LockFile
    if ($null -eq $stream) { [void](Assert-LockHeld '' $LockId) }
    try {
        $lock = Assert-LockHeld (Read-LockStream $stream) $LockId
        Register-LockEnd $LockId
        Write-LockStream $stream ''
    } finally {
        $stream.Close()
    }
    ConvertTo-LockObject $lock
}

function Get-CasdesiredLock {
    [CmdletBinding()]
    param()
    $stream = Open-LockFile
    if ($null -eq $stream) { return }
    try {
        $current = ConvertFrom-LockText (Read-LockStream $stream)
    } finally {
        $stream.Close()
    }
    if ($null -ne $current) { ConvertTo-LockObject $current }
}

function Register-CasdesiredPlan {
    # Record, before the first write, that this plan is being applied: never twice. The record
    # is created while the lock file is held, so no takeover slips in between.
    [CmdletBinding()]
    param(
        [Parameter(Mandatory = $true)][string]$LockId,
        [Parameter(Mandatory = $true)][string]$PlanId
    )
    Assert-CasdesiredId $LockId 'lock id'
    Assert-CasdesiredId $PlanId 'plan id'
    $stream = Open-LockFile
    if ($null -eq $stream) { [void](Assert-LockHeld '' $LockId) }
    try {
        $lock = Assert-LockHeld (Read-LockStream $stream) $LockId
        Assert-PlanNotApplied $PlanId
        $record = New-Map
        $record['plan_id'] = $PlanId; $record['owner'] = [string]$lock['owner']
        $record['lock_id'] = $LockId
        $record['applied'] = Get-UtcText ([DateTime]::UtcNow)
        try {
            Write-CasdesiredFileNew (Join-Path $AppliedDir ($PlanId + '.json')) $record
        } catch {
            Assert-PlanNotApplied $PlanId  # created in between: say by whom
            throw
        }
    } finally {
        $stream.Close()
    }
    New-Object PSObject -Property @{ PlanId = $PlanId; Applied = $record['applied'] }
}
function Get-CasdesiredPlanRecord {
    # The plans applied here since -Since (the text Get-UtcText writes; every record without
    # it), each with the lock it ran under and when that lock ended ($null while held, after a
    # takeover of an expired lease, or for a record written before records named their lock):
    # what `casdesired drift` recognises its own changes by. Read with the lock file's handle
    # open, as they are written, so no record is read half-written. No lock file: nothing was
    # ever applied here.
    [CmdletBinding()]
    param([string]$Since = '')
    $from = [DateTime]::MinValue
    if ($Since -ne '') { $from = ConvertFrom-UtcText $Since }
    $stream = Open-LockFile
    if ($null -eq $stream) { return }
    $found = New-Object System.Collections.ArrayList
    try {
        if ([System.IO.Directory]::Exists($AppliedDir)) {
            foreach ($path in [System.IO.Directory]::GetFiles($AppliedDir, '*.json')) {
                $record = Read-CasdesiredFile $path
                $applied = [string]$record['applied']
                if ((ConvertFrom-UtcText $applied) -lt $from) { continue }
                $lockId = [string](Get-Field $record 'lock_id' '')
                $ended = $null
                if ($lockId -match '^[A-Za-z0-9-]{1,64}$') {
                    $end = Read-CasdesiredFile (Join-Path $EndedDir ($lockId + '.json'))
                    if ($null -ne $end) { $ended = [string]$end['ended'] }
                }
                if ($lockId -eq '') { $lockId = $null }
                [void]$found.Add((New-Object PSObject -Property @{
                    PlanId = [string]$record['plan_id']; Owner = [string]$record['owner']
                    LockId = $lockId; Applied = $applied; Ended = $ended
                }))
            }
        }
    } finally {
        $stream.Close()
    }
    $found
}
# --- end of the organisation lock --------------------------------------------------------------

# <casdesired-probes> casdesired/agent/probes.ps1 (the probes casdesired doctor runs) is
# inserted here for a diagnose request only: no other run carries them.

# --- Main ------------------------------------------------------------------------------------
# Exchange loading happens here at the script's top level, not in a function: what
# Import-PSSession and Import-Module bring in must be visible to every invocation below.
$response = New-Map
$response['protocol'] = $ProtocolVersion
$response['host'] = [string]$env:COMPUTERNAME
$response['ps_version'] = [string]$PSVersionTable.PSVersion
$response['exchange_version'] = $null
$response['fatal'] = $null
$response['stopped'] = $null
$response['keepalives'] = [long]0
$results = New-Object System.Collections.ArrayList
# What loading Exchange and the modules did, step by step (Add-AgentStep).
$LoadSteps = New-Object System.Collections.ArrayList
$response['loading'] = $LoadSteps
$KeepaliveState = New-Map
$KeepaliveState['keepalive'] = $null
$KeepaliveState['fence'] = $null
$KeepaliveState['stopped'] = $null
$KeepaliveState['runs'] = [long]0
$KeepaliveState['watch'] = [System.Diagnostics.Stopwatch]::StartNew()
$response['results'] = $results
$remoteSession = $null
# The request's credential and modules, for the functions above; the PSSessions to other
# computers, by name (Get-AgentNodeSession), all removed in the finally below.
$AgentState = New-Map
$NodeSessions = New-Map

try {
    try {
        $json = [System.Text.Encoding]::UTF8.GetString(
            [Convert]::FromBase64String($RequestBase64.Trim()))
        $request = $Serializer.DeserializeObject($json)
    } catch {
        throw 'casdesired: the request is not valid base64 JSON.'
    }
    if ([string](Get-Field $request 'protocol' '') -ne [string]$ProtocolVersion) {
        throw ("casdesired: this agent speaks protocol $ProtocolVersion, the request " +
            "protocol " + [string](Get-Field $request 'protocol' '?') + '.')
    }
    $invocations = @(Get-Field $request 'invocations' @())
    # A fan-out over no earlier invocation is a bad request: nothing runs (fanout.py).
    Assert-AgentFanOuts $invocations
    Assert-AgentFanOuts @(Get-Field (Get-Field $request 'keepalive') 'invocation')
    $exchange = Get-Field $request 'exchange'
    $AgentState['credential'] = Get-Field $request 'credential'
    if ($null -eq $AgentState['credential'] -and $CredentialBase64 -ne '') {
        # The file delivery keeps the credential out of the request file (see the top).
        try {
            $AgentState['credential'] = $Serializer.DeserializeObject(
                [System.Text.Encoding]::UTF8.GetString(
                    [Convert]::FromBase64String($CredentialBase64.Trim())))
        } catch {
            throw 'casdesired: the credential is not valid base64 JSON.'
        }
    }
    $AgentState['modules'] = @(Get-Field $request 'modules' @())
    $mode = [string](Get-Field $exchange 'mode' 'snapin')
    $endpointServer = [string]$env:COMPUTERNAME
    # casdesired doctor's request: every loading step below is reported (Add-AgentStep) and a
    # failed one does not stop the run; only the read allow-list runs (Invoke-AgentInvocation).
    $Diagnose = (Get-Field $request 'diagnose' $false) -eq $true
    $AgentState['diagnose'] = $Diagnose
    # Progress lines only when the request asks (apply's batches; Write-AgentProgress).
    $AgentState['progress'] = (Get-Field $request 'progress' $false) -eq $true
    $exchangeLoaded = $false

    if ($mode -eq 'snapin') {
        # Simple and common, but unsupported by Microsoft (it bypasses RBAC). Adding a snap-in
        # twice is an error, hence the check.
        try {
            if ($null -eq (Get-PSSnapin -Name $ExchangeSnapIn -ErrorAction SilentlyContinue)) {
                Add-PSSnapin -Name $ExchangeSnapIn
            }
            Add-AgentStep 'exchange-session' $true $ExchangeSnapIn
            $exchangeLoaded = $true
        } catch {
            Add-AgentStep 'exchange-session' $false ([string]$_.Exception.Message)
            if (-not $Diagnose) { throw }
        }
    } elseif ($mode -eq 'remote') {
        # The supported way: Exchange's /PowerShell endpoint, with the request's explicit
        # credential so the agent does not depend on delegation (the double hop).
        $uri = [string](Get-Field $exchange 'uri' '')
        if ($uri -eq '') {
            # This host's own /PowerShell: the WinRM endpoint is an Exchange 2010 server.
            $fqdn = [System.Net.Dns]::GetHostEntry([System.Net.Dns]::GetHostName()).HostName
            $uri = 'http://' + $fqdn + '/PowerShell/'
        }
        $sessionParameters = @{
            ConfigurationName = 'Microsoft.Exchange'
            ConnectionUri = $uri
            Authentication = [string](Get-Field $exchange 'authentication' 'Kerberos')
            ErrorAction = 'Stop'
        }
        $credential = Get-AgentCredential
        if ($null -ne $credential) { $sessionParameters['Credential'] = $credential }
        try {
            $remoteSession = New-PSSession @sessionParameters
            Add-AgentStep 'exchange-session' $true $uri
        } catch {
            Add-AgentStep 'exchange-session' $false ([string]$_.Exception.Message)
            if (-not $Diagnose) { throw }
        }
        if ($null -ne $remoteSession) {
            # Import only what the request uses: importing the whole Exchange session takes
            # several seconds. Get-ExchangeServer is needed for the version check below, and
            # Set-AdServerSettings for the recipient scope. A diagnose request imports every
            # Exchange command of the allow-list (importing runs none of them), so
            # Get-CasdesiredCommand sees which ones the account's role assignments publish.
            $names = New-Object System.Collections.ArrayList
            [void]$names.Add('Get-ExchangeServer')
            [void]$names.Add('Set-AdServerSettings')
            $optional = New-Object System.Collections.ArrayList
            $wanted = @($invocations | ForEach-Object { [string](Get-Field $_ 'cmdlet' '') })
            if ($Diagnose) { $wanted = $AllowedCmdlets }
            foreach ($name in $wanted) {
                if ($name -notmatch '-Nlb' -and $name -notmatch '-Casdesired' -and
                    ($AllowedCmdlets -contains $name)) {
                    if ($OptionalCmdlets -contains $name) {
                        if (-not ($optional -contains $name)) { [void]$optional.Add($name) }
                    } elseif (-not ($names -contains $name)) {
                        [void]$names.Add($name)
                    }
                }
            }
            $importParameters = @{
                Session = $remoteSession
                CommandName = [string[]]$names.ToArray()
                DisableNameChecking = $true
                AllowClobber = $true
            }
            try {
                [void](Import-PSSession @importParameters)
                Add-AgentStep 'import-session' $true ([string]$names.Count + ' commands')
                $exchangeLoaded = $true
            } catch {
                $failure = [string]$_.Exception.Message
                if (-not $Diagnose) { throw }
                # [inferred] a name the session does not publish may fail the whole import:
                # import them one by one, so each published one is still seen.
                $imported = 0
                foreach ($name in $names) {
                    $importParameters['CommandName'] = [string[]]@($name)
                    try {
                        [void](Import-PSSession @importParameters)
                        $imported += 1
                    } catch {
                        $failure = [string]$_.Exception.Message
                    }
                }
                Add-AgentStep 'import-session' ($imported -gt 0) (
                    [string]$imported + ' of ' + [string]$names.Count + ' commands: ' + $failure)
                $exchangeLoaded = $imported -gt 0
            }
            if ($optional.Count -gt 0) {
                # Cmdlets RBAC may not grant this account (the audit log's need the View-Only
                # Audit Logs role): imported apart, so that one the session lacks fails only its
                # own invocation ("not recognized"), never the run. How Import-PSSession reports
                # a name the session lacks is [OPEN]: whatever it does is swallowed here.
                $optionalParameters = @{
                    Session = $remoteSession
                    CommandName = [string[]]$optional.ToArray()
                    DisableNameChecking = $true
                    AllowClobber = $true
                    ErrorAction = 'SilentlyContinue'
                }
                try { [void](Import-PSSession @optionalParameters) } catch { $null = $_ }
            }
            $endpointServer = ([Uri]$uri).Host.Split('.')[0]
        }
    } elseif ($mode -ne 'none') {
        throw "casdesired: unknown Exchange session mode '$mode'."
    }

    # PowerShell 2.0 does not auto-load modules (NetworkLoadBalancingClusters included).
    foreach ($module in @(Get-Field $request 'modules' @())) {
        try {
            Import-Module -Name ([string]$module)
            Add-AgentStep ('module:' + [string]$module) $true ''
        } catch {
            Add-AgentStep ('module:' + [string]$module) $false ([string]$_.Exception.Message)
            if (-not $Diagnose) { throw }
        }
    }

    if ($exchangeLoaded) {
        # Refuse Exchange 2013 and later: CAS arrays and RpcClientAccessServer do nothing there.
        try {
            $server = Get-ExchangeServer -Identity $endpointServer -ErrorAction Stop
            $version = ConvertTo-AgentScalar $server.AdminDisplayVersion
            $response['exchange_version'] = [string]$version
        } catch {
            # The WinRM host may be a management server without Exchange: the reader still sees
            # every server's version and the plan refuses 2013+ servers.
            $response['exchange_version'] = $null
        }
        $version = [string]$response['exchange_version']
        if ($version -match 'Version\s+(\d+)\.' -and [int]$Matches[1] -ge 15) {
            $tooNew = "Exchange Server 2013 or later detected on $endpointServer ($version): " +
                'casdesired manages Exchange 2010 only.'
            Add-AgentStep 'exchange-version' $false $tooNew
            # A diagnose request only reads: it goes on, to report everything else.
            if (-not $Diagnose) { throw $tooNew }
        } else {
            Add-AgentStep 'exchange-version' $true $version
        }
        # The recipient scope lives in the session and defaults to the server's own domain:
        # without this, mailboxes of a child domain are not seen (and not counted).
        try {
            Set-AdServerSettings -ViewEntireForest $true -ErrorAction Stop
            Add-AgentStep 'recipient-scope' $true 'ViewEntireForest'
        } catch {
            Add-AgentStep 'recipient-scope' $false ([string]$_.Exception.Message)
            if (-not $Diagnose) { throw }
        }
    }

    # The keepalive's interval counts from here (apply's batches renew the lease first thing).
    $KeepaliveState['keepalive'] = Get-Field $request 'keepalive'
    # The lock id every write of this request runs under (Invoke-AgentFence).
    $KeepaliveState['fence'] = Get-Field $request 'fence'
    $KeepaliveState['watch'] = [System.Diagnostics.Stopwatch]::StartNew()
    $position = 0
    foreach ($invocation in $invocations) {
        # One run, or one per computer of a fan-out; each is checked and may stop the request.
        $position += 1
        $stop = $false
        foreach ($run in @(Get-AgentRuns $invocation $results)) {
            $stop = $true
            # A failed keepalive stops the run: later invocations have no result at all.
            if (-not (Invoke-AgentKeepalive)) { break }
            # A write checks first that the request's lock is still the organisation's lock.
            if (-not (Invoke-AgentFence $run['invocation'])) { break }
            Write-AgentProgress $position
            if ([string]$run['refused'] -eq '') {
                $result = Invoke-AgentInvocation $run['invocation'] $true $position
            } else {
                $result = New-AgentRefusal $run
            }
            [void]$results.Add($result)
            if ($null -ne $KeepaliveState['stopped']) { break }  # it failed during an until
            # on_error "stop" (the default): nothing after a failure runs, so later invocations
            # have no result at all and casdesired cannot mistake "not run" for "empty".
            $onError = [string](Get-Field $invocation 'on_error' 'stop')
            if (-not $result['ok'] -and $onError -ne 'continue') { break }
            $stop = $false
        }
        if ($stop) { break }
    }
} catch {
    # The agent could not do its job at all (no snap-in, bad request, Exchange 2013, ...).
    $response['fatal'] = [string]$_.Exception.Message
} finally {
    # Every session the run opened is removed: Exchange's /PowerShell allows 18 per user and
    # a leaked one lasts until its application pool recycles; node sessions count against
    # WinRM's MaxShellsPerUser on that node.
    if ($null -ne $remoteSession) {
        try {
            Remove-PSSession -Session $remoteSession -ErrorAction Stop
            Add-AgentStep 'exchange-session-removed' $true ''
        } catch {
            Add-AgentStep 'exchange-session-removed' $false ([string]$_.Exception.Message)
        }
    }
    foreach ($nodeSession in @($NodeSessions.Values)) {
        Remove-PSSession -Session $nodeSession -ErrorAction SilentlyContinue
    }
}

$response['stopped'] = $KeepaliveState['stopped']
$response['keepalives'] = [long]$KeepaliveState['runs']
Write-AgentResponse $response
