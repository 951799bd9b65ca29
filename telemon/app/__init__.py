"""The composition root: the one package that imports the domains (``ingest``, ``alerts``, ``clinician_ui``) and
assembles them into a running service — the app factory (``factory``), what a process holds for its roles
(``services``), serving (``server``), the scheduled jobs of every domain (``jobs``), the ``telemon`` command line
(``cli``) and the demo (``demo``). Each domain hands over what it contributes as a ``telemon.domain.Domain``;
nothing below this package imports it."""
