"""The PowerShell 2.0 agent and the protocol it speaks with casdesired."""
