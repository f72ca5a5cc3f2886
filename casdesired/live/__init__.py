"""Live state: the organisation as Exchange reports it, read through the agent."""
