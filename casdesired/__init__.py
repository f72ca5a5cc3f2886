"""casdesired: declarative reconciler for Exchange 2010 Client Access Server arrays."""

__version__ = "0.1.0"
