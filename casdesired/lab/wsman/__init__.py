"""The lab's WS-Management wire side: SOAP envelopes, shells, cmd.exe, auth, TLS, HTTP server.

It knows nothing of Exchange: PowerShell scripts go to a
:class:`casdesired.lab.process.PowerShellHost` (the organisation), as on a real server where
WinRM only starts ``powershell.exe``.
"""
