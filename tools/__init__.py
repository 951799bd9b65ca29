"""Tools that use telemon from outside, as its clients: the simulator and replay (``tools.simulator``) speak to
the service only through its public contracts (HTTP, the MQTT topics and payloads, Nightscout) and create their
care team, patients and devices with the core's records, as an enrolment would. They import the core
(``telemon``), never a domain (``ingest``, ``alerts``, ``clinician_ui``)."""
