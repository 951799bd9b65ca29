"""The clinician dashboard: routes, templates, vendored static assets."""
