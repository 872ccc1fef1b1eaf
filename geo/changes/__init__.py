"""The change service: the ordered feed of changes (``feed``), signed webhook deliveries
(``webhooks``) and the registration organization's plate notices (``plate_notices``).

May import: ``geo.geodata``, ``geo.access``, ``geo.platform``, ``geo.models``, ``geo.errors``.
"""
