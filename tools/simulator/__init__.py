"""A synthetic GDM cohort that feeds telemon the way real devices do, and a replay of recorded CGM traces.

- :mod:`tools.simulator.physiology`: the cohort model (pure and deterministic with a seed): who the patients
  are, what each of their devices measures every day, and when each device syncs.
- :mod:`tools.simulator.clients`: the three transports, as real clients speak them: meters over MQTT, phone
  apps over HTTP, CGM uploaders through the Nightscout-compatible API.
- :mod:`tools.simulator.records`: the care team, patients and devices the simulator creates with telemon's
  own functions, and the state file that keeps their tokens.
- :mod:`tools.simulator.plan`: what a run is asked, what it planned and what came back; its report.
- :mod:`tools.simulator.runner`: ``telemon simulate``: backfill, then live traffic.
- :mod:`tools.simulator.replay`: ``telemon replay FILE``: a CSV of ``id,time,gl`` as CGM patients.
"""
