"""The lab: a loopback WS-Management endpoint that behaves like an Exchange 2010 organisation."""
