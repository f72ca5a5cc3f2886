"""``casdesired drift``: what in the live organisation no longer matches git, and who changed it.

The plan's diff finds what differs (:mod:`casdesired.changes`); :mod:`.sources` reads Exchange's
admin audit log and casdesired's own apply records in the same command execution as the live
state; :mod:`.own` tells casdesired's own changes apart; :mod:`.attribution` names who changed
each object, when and with which cmdlet, or says why nobody can; :mod:`.report` holds the
result, which :mod:`.render` and :mod:`.markdown` write (docs/drift.md).
"""
