# casdesired-agent probes
<#
The probes `casdesired doctor` runs: inserted into agent.ps1 (at its "<casdesired-probes>" line,
before Main) for a diagnose request only, so every other run sends the agent without them.
casdesired/agent/script.py puts them together; what is said of agent.ps1 (PowerShell 2.0 only,
values as data, nothing built from request text) holds here, and tests/agent checks both as one
script.
#>
# --- Probes (casdesired doctor) ----------------------------------------------------------------
# What `casdesired doctor` asks of the host, in the same run as everything else it checks. Each
# only reads: nothing here writes a file, a registry value or a setting, on this host or any
# other. They are advanced functions, called like cmdlets by invocations (unknown parameters
# fail, values arrive as data), and all are on the read allow-list ($ReadCmdlets).
$HKLM = [uint32]2147483650

function Test-AgentLocalComputer {
    # Whether $ComputerName is this computer (its short name or an FQDN starting with it).
    param([string]$ComputerName)
    return ($ComputerName.Split('.')[0] -eq [string]$env:COMPUTERNAME)
}

function Get-CasdesiredHost {
    # The host the agent runs on, as far as casdesired relies on it: Windows, PowerShell and
    # its CLR, the execution policy in force for this process, the JSON serializer the agent
    # loaded, a GZipStream round trip, the host's clock, and $Echo back (what the request
    # carried reached the agent intact, through the delivery it travelled).
    [CmdletBinding()]
    param([string]$Echo = '')
    $caption = ''
    try {
        $system = Get-WmiObject -Class Win32_OperatingSystem -ErrorAction Stop
        $caption = [string]$system.Caption
    } catch {
        $caption = [string][Environment]::OSVersion.VersionString
    }
    # The policy of each scope; the effective one is the first that is not Undefined, in
    # this order (MachinePolicy and UserPolicy are Group Policy, and beat -ExecutionPolicy).
    $policies = New-Object System.Collections.ArrayList
    foreach ($entry in @(Get-ExecutionPolicy -List)) {
        [void]$policies.Add([string]$entry.Scope + '=' + [string]$entry.ExecutionPolicy)
    }
    # GZipStream there and back: the agent packs its answer with it.
    $probe = 'casdesired gzip probe ' + $Echo
    $bytes = [System.Text.Encoding]::UTF8.GetBytes($probe)
    $packed = New-Object -TypeName System.IO.MemoryStream
    $gzip = New-Object -TypeName System.IO.Compression.GZipStream -ArgumentList $packed,
        ([System.IO.Compression.CompressionMode]::Compress)
    $gzip.Write($bytes, 0, $bytes.Length)
    $gzip.Close()
    $source = New-Object -TypeName System.IO.MemoryStream -ArgumentList (, $packed.ToArray())
    $unzip = New-Object -TypeName System.IO.Compression.GZipStream -ArgumentList $source,
        ([System.IO.Compression.CompressionMode]::Decompress)
    $reader = New-Object -TypeName System.IO.StreamReader -ArgumentList $unzip,
        ([System.Text.Encoding]::UTF8)
    $back = $reader.ReadToEnd()
    $reader.Close()
    New-Object PSObject -Property @{
        ComputerName = [string]$env:COMPUTERNAME
        Fqdn = [string][System.Net.Dns]::GetHostEntry([System.Net.Dns]::GetHostName()).HostName
        OperatingSystem = $caption
        OSVersion = [string][Environment]::OSVersion.Version
        PSVersion = [string]$PSVersionTable.PSVersion
        CLRVersion = [string]$PSVersionTable.CLRVersion
        ExecutionPolicy = [string](Get-ExecutionPolicy)
        ExecutionPolicies = $policies
        JsonSerializer = [string]$Serializer.GetType().Assembly.FullName
        GZipRoundTrip = ($back -eq $probe)
        UtcNow = Get-UtcText ([DateTime]::UtcNow)
        Echo = $Echo
    }
}

function Get-CasdesiredWinRMConfig {
    # WinRM's quotas on this host, by their Windows names, as `winrm get winrm/config` shows
    # them (the WSMan: drive of PowerShell 2.0; reading it needs an administrator, which a
    # WinRM logon is). A value that cannot be read is left out, and Errors says why.
    [CmdletBinding()]
    param()
    $config = New-Object PSObject
    $errors = New-Object System.Collections.ArrayList
    $paths = @('MaxEnvelopeSizekb', 'MaxTimeoutms', 'Shell\MaxShellsPerUser',
        'Shell\MaxMemoryPerShellMB', 'Shell\IdleTimeout')
    foreach ($path in $paths) {
        $name = $path.Split('\')[-1]
        try {
            $item = Get-Item -Path ('WSMan:\localhost\' + $path) -ErrorAction Stop
            Add-Member -InputObject $config -MemberType NoteProperty -Name $name `
                -Value ([string]$item.Value)
        } catch {
            [void]$errors.Add($name + ': ' + [string]$_.Exception.Message)
        }
    }
    Add-Member -InputObject $config -MemberType NoteProperty -Name 'Errors' -Value $errors
    $config
}

function Get-CasdesiredCommand {
    # Which of the commands named this session has, with their parameters. Through the remote
    # /PowerShell session these are the proxies Import-PSSession made from what the session
    # publishes, and Exchange's restricted session publishes only the cmdlets and parameters
    # the account's role assignments give it: so this says, without running anything, whether
    # the account may run each one (the snap-in bypasses RBAC: there every cmdlet is present).
    [CmdletBinding()]
    param([Parameter(Mandatory = $true)][string[]]$Name)
    foreach ($wanted in $Name) {
        $types = @('Cmdlet', 'Function')
        $commands = @(Get-Command -Name $wanted -CommandType $types -ErrorAction SilentlyContinue)
        $command = $null
        if ($commands.Count -gt 0) { $command = $commands[0] }
        $parameters = New-Object System.Collections.ArrayList
        if ($null -ne $command) {
            foreach ($key in $command.Parameters.Keys) { [void]$parameters.Add([string]$key) }
        }
        New-Object PSObject -Property @{
            Name = $wanted
            Available = ($null -ne $command)
            Parameters = $parameters
        }
    }
}

function Read-AgentRegistryValue {
    # One registry value through WMI's StdRegProv, as a DWORD or as a string: administrators
    # set these ports either way. ReturnValue 0 is found; anything else (not there, the other
    # type) tries the other reading. Returns 'TYPE|value', or '' when neither finds it.
    param($Registry, [string]$Key, [string]$Value)
    $dword = $Registry.GetDWORDValue($HKLM, $Key, $Value)
    if ($dword.ReturnValue -eq 0) { return ('REG_DWORD|' + [string]$dword.uValue) }
    $text = $Registry.GetStringValue($HKLM, $Key, $Value)
    if ($text.ReturnValue -eq 0) { return ('REG_SZ|' + [string]$text.sValue) }
    return ''
}

function Get-CasdesiredStaticPort {
    # The static RPC ports of an Exchange 2010 CAS (load balancers need the same on every array
    # member): MSExchangeRPC's 'TCP/IP Port' and, from SP1, MSExchangeAB's 'RpcTcpPort'. Read
    # through WMI's StdRegProv on that computer with the request's credential: explicit
    # credentials reach a third machine without delegation (the double hop); the local
    # computer refuses credentials, so none are given there.
    [CmdletBinding()]
    param([Parameter(Mandatory = $true)][string]$ComputerName)
    $parameters = @{
        Class = 'StdRegProv'; List = $true; Namespace = 'root\default'
        ComputerName = $ComputerName; ErrorAction = 'Stop'
    }
    if (-not (Test-AgentLocalComputer $ComputerName)) {
        $credential = Get-AgentCredential
        if ($null -ne $credential) { $parameters['Credential'] = $credential }
    }
    $registry = Get-WmiObject @parameters
    $rpc = Read-AgentRegistryValue $registry `
        'SYSTEM\CurrentControlSet\Services\MSExchangeRPC\ParametersSystem' 'TCP/IP Port'
    $book = Read-AgentRegistryValue $registry `
        'SYSTEM\CurrentControlSet\Services\MSExchangeAB\Parameters' 'RpcTcpPort'
    New-Object PSObject -Property @{
        ComputerName = $ComputerName
        RpcTcpPort = $rpc
        AddressBookPort = $book
    }
}

function Get-CasdesiredLockDirectory {
    # Where the organisation lock lives and whether this account can create and write it
    # there, without writing anything: the folder, or its nearest existing parent, and its
    # access rules for this logon's user and groups (allowed and not denied). [inferred] An
    # approximation of Windows' access check: it reads the rules, it does not open the file.
    [CmdletBinding()]
    param()
    $directory = [System.IO.Path]::GetDirectoryName($LockPath)
    $existing = $directory
    while ($null -ne $existing -and -not [System.IO.Directory]::Exists($existing)) {
        $existing = [System.IO.Path]::GetDirectoryName($existing)
    }
    $identity = [System.Security.Principal.WindowsIdentity]::GetCurrent()
    $sids = New-Object System.Collections.ArrayList
    [void]$sids.Add([string]$identity.User.Value)
    foreach ($group in $identity.Groups) { [void]$sids.Add([string]$group.Value) }
    $needed = [int]([System.Security.AccessControl.FileSystemRights]::CreateFiles -bor
        [System.Security.AccessControl.FileSystemRights]::CreateDirectories -bor
        [System.Security.AccessControl.FileSystemRights]::ReadData)
    $allowed = 0
    $denied = 0
    if ($null -ne $existing) {
        $rules = [System.IO.Directory]::GetAccessControl($existing).GetAccessRules(
            $true, $true, [System.Security.Principal.SecurityIdentifier])
        foreach ($rule in $rules) {
            if (-not ($sids -contains [string]$rule.IdentityReference.Value)) { continue }
            $rights = [int]$rule.FileSystemRights
            if ([string]$rule.AccessControlType -eq 'Deny') {
                $denied = $denied -bor $rights
            } else {
                $allowed = $allowed -bor $rights
            }
        }
    }
    New-Object PSObject -Property @{
        Path = $LockPath
        Directory = $directory
        Exists = [System.IO.Directory]::Exists($directory)
        NearestExisting = $existing
        Writable = ((($allowed -band $needed) -eq $needed) -and (($denied -band $needed) -eq 0))
        User = [string]$identity.Name
    }
}
# --- end of the probes -------------------------------------------------------------------------
