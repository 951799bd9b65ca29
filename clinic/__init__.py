"""The clinic's hospital API: enrol patients, pair and revoke their devices, end their monitoring (archive)."""
