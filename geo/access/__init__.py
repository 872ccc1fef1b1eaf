"""Access: API keys (hashed), roles, the working group's per-service policies and the audit
journal of every request.

Owns: ``control`` (keys, roles, policies, audit entries), ``journal`` (the audit rows' way
to the table). May import: ``geo.geodata`` (agencies), ``geo.platform``, ``geo.models``,
``geo.errors``.
"""
