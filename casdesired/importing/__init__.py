"""``casdesired import``: the YAML of an existing organisation, so its first plan is empty.

Modules in the order the data passes through them: :mod:`.read` (the live organisation, every
mailbox and every NLB cluster) → :mod:`.layout` (one document per AD site: servers, array,
load balancer) and :mod:`.placement` (which file binds each database; :mod:`.patterns` for
``--patterns``) → :mod:`.render` (YAML, through :mod:`.yamltext`) → :mod:`.files` (paths, no
clobbering, atomic writes); :mod:`.summary` reports. :mod:`.documents` is what they share.
"""
