"""Texts of the team's monthly activity report: key → (English, French), merged into ``clinician_ui.i18n.TEXTS``."""

from __future__ import annotations

ACTIVITY_TEXTS: dict[str, tuple[str, str]] = {
    "nav.activity": ("Activity", "Activité"),
    "activity.title": ("Activity of {team}: {month}", "Activité de {team} : {month}"),
    "activity.month": ("Month", "Mois"),
    "activity.show": ("Show", "Afficher"),
    "activity.zone": ("Counted in the time zone {zone}.", "Compté dans le fuseau {zone}."),
    "activity.under_way": (
        "The month is under way: figures up to {when}.",
        "Mois en cours : chiffres jusqu'au {when}.",
    ),
    "activity.export": ("Download", "Télécharger"),
    "activity.patients": ("Patients monitored", "Patientes surveillées"),
    "activity.monitored_days": ("Monitored days", "Journées de surveillance"),
    "activity.readings": ("Readings received", "Mesures reçues"),
    "activity.source": ("Source", "Source"),
    "activity.kind": ("Kind", "Type"),
    "activity.count": ("Number", "Nombre"),
    "activity.measurements": ("Doses and other measurements", "Doses et autres mesures"),
    "activity.alerts": ("Alerts raised", "Alertes levées"),
    "activity.rule": ("Rule", "Règle"),
    "activity.severity": ("Severity", "Gravité"),
    "activity.raised": ("Raised", "Levées"),
    "activity.acknowledged": ("Acknowledged", "Prises en compte"),
    "activity.resolved": ("Resolved by the team", "Résolues par l'équipe"),
    "activity.cleared": ("Cleared by themselves", "Levées d'elles-mêmes"),
    "activity.urgent": ("Urgent alerts: time to acknowledge", "Alertes urgentes : délai de prise en compte"),
    "activity.urgent_counts": (
        "{acknowledged} of {urgent} acknowledged; median {median}, 90th percentile {p90}",
        "{acknowledged} sur {urgent} prises en compte ; médiane {median}, 90e centile {p90}",
    ),
    "activity.no_time": ("—", "—"),
    "activity.messages": ("Messages", "Messages"),
    "activity.messages_counts": (
        "{patients} from patients, {team} from the team",
        "{patients} des patientes, {team} de l'équipe",
    ),
    "activity.patient": ("Patient", "Patiente"),
    "activity.silent": ("Silent for more than 7 days", "Sans mesure depuis plus de 7 jours"),
    "activity.last_reading": ("Last reading", "Dernière mesure"),
    "activity.never": ("never", "jamais"),
    "activity.postpartum": ("Postpartum tests done", "Bilans du post-partum réalisés"),
    "activity.none": ("None.", "Aucun."),
    "error.month": ("Give a month as YYYY-MM.", "Indiquez un mois au format AAAA-MM."),
}
