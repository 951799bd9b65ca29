"""telemon: telemonitoring of gestational diabetes."""
