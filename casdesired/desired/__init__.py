"""Desired state: the YAML an administrator keeps in git, loaded, checked and modelled."""
