"""Texts of the team's webhooks pages: key → (English, French), merged into ``clinician_ui.i18n.TEXTS``."""

from __future__ import annotations

WEBHOOK_TEXTS: dict[str, tuple[str, str]] = {
    "hooks.title": ("Webhooks", "Webhooks"),
    "hooks.intro": (
        "The hospital's systems are told at once when something happens: each event is POSTed, signed (Standard "
        "Webhooks), to the addresses below, and sent again for up to 24 hours until the receiver answers 2xx. An "
        "address that never answers is turned off, with the reason.",
        "Les systèmes de l'hôpital sont prévenus aussitôt : chaque événement est envoyé (POST signé, Standard "
        "Webhooks) aux adresses ci-dessous, et renvoyé pendant 24 heures jusqu'à ce que le destinataire réponde "
        "2xx. Une adresse qui ne répond jamais est désactivée, avec la raison.",
    ),
    "hooks.url": ("Address (http or https)", "Adresse (http ou https)"),
    "hooks.label": ("Label", "Libellé"),
    "hooks.events": ("Events", "Événements"),
    "hooks.status": ("Status", "Statut"),
    "hooks.last_day": ("Last 24 hours", "Dernières 24 heures"),
    "hooks.counts": (
        "{delivered} delivered, {failed} failed, {pending} waiting",
        "{delivered} remis, {failed} en échec, {pending} en attente",
    ),
    "hooks.active": ("active", "actif"),
    "hooks.disabled": ("turned off {when}: {reason}", "désactivé le {when} : {reason}"),
    "hooks.disable": ("Turn off", "Désactiver"),
    "hooks.enable": ("Turn on", "Activer"),
    "hooks.log": ("Delivery log", "Journal des envois"),
    "hooks.none": ("No webhook yet.", "Aucun webhook pour l'instant."),
    "hooks.create": ("Add an address", "Ajouter une adresse"),
    "hooks.create.submit": ("Add", "Ajouter"),
    "hooks.new.title": ("Webhook added", "Webhook ajouté"),
    "hooks.new.once": (
        "Copy the signing secret now into the receiver's configuration: it is not shown again.",
        "Copiez maintenant le secret de signature dans la configuration du destinataire : il ne sera plus affiché.",
    ),
    "hooks.log.title": ("Deliveries to {url}", "Envois vers {url}"),
    "hooks.log.event": ("Event", "Événement"),
    "hooks.log.created": ("Event time", "Heure de l'événement"),
    "hooks.log.attempts": ("Attempts (status, time taken)", "Tentatives (statut, durée)"),
    "hooks.log.next": ("next attempt {when}", "prochaine tentative {when}"),
    "hooks.log.resend": ("Send again", "Renvoyer"),
    "hooks.log.none": ("Nothing sent yet.", "Rien d'envoyé pour l'instant."),
    "hooks.log.no_answer": ("no answer", "pas de réponse"),
    "hooks.state.pending": ("waiting", "en attente"),
    "hooks.state.delivered": ("delivered", "remis"),
    "hooks.state.failed": ("failed", "en échec"),
    "hooks.resent_flash": ("The event is being sent again.", "L'événement est renvoyé."),
    "hooks.changed_flash": ("The webhook is changed.", "Le webhook est modifié."),
    "field.url.invalid": (
        "Give an http:// or https:// address with a host.",
        "Indiquez une adresse http:// ou https:// avec un nom d'hôte.",
    ),
    "field.events.invalid": ("Choose at least one event.", "Choisissez au moins un événement."),
    "field.webhook_label.invalid": ("At most 200 characters.", "200 caractères au plus."),
    "event.alert.opened": ("an alert opened", "une alerte ouverte"),
    "event.alert.escalated": ("an alert escalated", "une alerte aggravée"),
    "event.alert.resolved": ("an alert resolved", "une alerte résolue"),
    "event.patient.enrolled": ("a patient enrolled", "une patiente inscrite"),
    "event.patient.reviewed": ("a patient reviewed", "une patiente revue"),
    "event.message.received": ("a message from a patient", "un message d'une patiente"),
}
