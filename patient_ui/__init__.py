"""The patient's companion app (``/app``): a server-rendered shell with the project's own small JavaScript,
installable and usable offline, and the patient's own API (``/api/v1/me``) authenticated by the app's device
token."""
