"""The monitoring back to the hospital record: FHIR read side and the HL7 CGM summary, PDF reports, CSV exports
and the team's activity report."""
