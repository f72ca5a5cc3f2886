"""Transport: WinRM (pywinrm) to the Windows host that runs the agent."""
