"""Words and numbers for people, in the clinician's language (English or French) and glucose unit.

Texts live in ``TEXTS`` (key → English, French); templates call ``t("key")``. Numbers follow the language
(``5.3`` / ``5,3``) and glucose values the clinician's unit with the precision of each unit (whole mg/dL, one
decimal in mmol/L, two in g/L, as French practice writes 0.95 g/L; telemon.units.DIGITS). Alert messages are
rendered from their code and params by :func:`alerts.messages.render`, in the clinician's language and unit.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from markupsafe import Markup, escape

from alerts import messages
from alerts import profiles as P
from alerts.messages import glucose, glucose_number, number
from clinician_ui.texts_activity import ACTIVITY_TEXTS
from clinician_ui.texts_clinic import TEXTS_CLINIC
from clinician_ui.texts_measurements import MEASUREMENT_TEXTS
from clinician_ui.texts_messages import MESSAGE_TEXTS
from clinician_ui.texts_postpartum import POSTPARTUM_TEXTS
from clinician_ui.texts_team import TEAM_TEXTS
from clinician_ui.texts_titration import TITRATION_TEXTS
from clinician_ui.texts_treatment import TREATMENT_TEXTS
from clinician_ui.texts_webhooks import WEBHOOK_TEXTS

__all__ = ["glucose", "glucose_number", "number"]  # written by alerts.messages, used here under these names

LANGUAGES = ("en", "fr")
_SEVERITY_ICONS = {"urgent": "⚠", "warning": "▲", "info": "ℹ"}
NNBSP = "\u202f"  # narrow no-break space: French thousands separator and before % and :

TEXTS: dict[str, tuple[str, str]] = {
    # layout
    "app.name": ("telemon", "telemon"),
    "app.tagline": ("Gestational diabetes telemonitoring", "Télésurveillance du diabète gestationnel"),
    "nav.skip": ("Skip to content", "Aller au contenu"),
    "nav.triage": ("Triage", "Triage"),
    "nav.patients": ("All patients", "Toutes les patientes"),
    "nav.preferences": ("Preferences", "Préférences"),
    "nav.logout": ("Log out", "Se déconnecter"),
    "nav.signed_in_as": ("Signed in as", "Connecté·e :"),
    "nav.main": ("Main", "Principale"),
    "live.connected": ("Live updates on", "Mises à jour en direct"),
    "live.offline": ("Live updates paused, reconnecting…", "Mises à jour en pause, reconnexion…"),
    "live.new_alert": ("New alert", "Nouvelle alerte"),
    "live.updated": ("Page updated", "Page mise à jour"),
    "quick.unit": ("Unit", "Unité"),
    "quick.language": ("Language", "Langue"),
    "quick.apply": ("Apply", "Appliquer"),
    # login
    "login.title": ("Sign in", "Connexion"),
    "login.email": ("Email", "Adresse e-mail"),
    "login.password": ("Password", "Mot de passe"),
    "login.submit": ("Sign in", "Se connecter"),
    "login.failed": ("Wrong email or password.", "Adresse e-mail ou mot de passe incorrect."),
    "login.locked": (
        "Too many failed attempts. Try again in {seconds} s.",
        "Trop de tentatives échouées. Réessayez dans {seconds} s.",
    ),
    "login.expired": (
        "The form expired. Please sign in again.",
        "Le formulaire a expiré. Veuillez vous reconnecter.",
    ),
    "login.logged_out": ("You are signed out.", "Vous êtes déconnecté·e."),
    # errors
    "error.title": ("Error", "Erreur"),
    "error.not_found": ("Not found, or not one of your teams' patients.", "Introuvable, ou hors de vos équipes."),
    "error.csrf": (
        "This form expired or did not come from telemon. Reload the page and try again.",
        "Ce formulaire a expiré ou ne vient pas de telemon. Rechargez la page et réessayez.",
    ),
    "error.forbidden": ("Your role does not allow this action.", "Votre rôle ne permet pas cette action."),
    "error.back": ("Back to triage", "Retour au triage"),
    "error.invalid": ("Check the form: {detail}", "Vérifiez le formulaire : {detail}"),
    # triage
    "triage.title": ("Triage", "Triage"),
    "triage.heading": ("Patients who need action", "Patientes à prendre en charge"),
    "triage.tabs": ("Patient lists", "Listes de patientes"),
    "triage.more_alerts": ("+ {n} more alerts", "+ {n} autres alertes"),
    "triage.more_alerts_one": ("+ 1 more alert", "+ 1 autre alerte"),
    "triage.none": (
        "Nobody needs action: no urgent or warning alert is open for your teams' patients.",
        "Aucune patiente à prendre en charge : aucune alerte urgente ou d'attention n'est ouverte dans vos équipes.",
    ),
    "triage.count": ("{n} patients", "{n} patientes"),
    "triage.count_one": ("1 patient", "1 patiente"),
    "triage.filters": ("Filters", "Filtres"),
    "triage.filter.severity": ("Severity", "Gravité"),
    "triage.filter.severity.all": ("All", "Toutes"),
    "triage.filter.severity.warning": ("Warning and urgent", "Attention et urgentes"),
    "triage.filter.severity.urgent": ("Urgent only", "Urgentes seulement"),
    "triage.filter.rule": ("Rule", "Règle"),
    "triage.filter.rule.all": ("All rules", "Toutes les règles"),
    "triage.filter.unreviewed": ("Not reviewed for more than (days)", "Non revue depuis plus de (jours)"),
    "triage.filter.acknowledged": ("Include acknowledged alerts", "Inclure les alertes prises en compte"),
    "triage.filter.apply": ("Filter", "Filtrer"),
    "triage.filter.reset": ("Reset", "Réinitialiser"),
    "triage.above_target": ("Above target this week", "Au-dessus des objectifs cette semaine"),
    "triage.event_at": ("reading at {when}", "mesure du {when}"),
    "triage.event_at_zone": (
        "reading at {when} ({local} her time, {zone})",
        "mesure du {when} ({local} heure de la patiente, {zone})",
    ),
    "triage.alert_opened": ("alert opened {ago}", "alerte ouverte {ago}"),
    "triage.finding_count": ("{name} ×{n}", "{name} ×{n}"),
    "col.patient": ("Patient", "Patiente"),
    "col.ga": ("Gestational age", "Terme"),
    "col.treatment": ("Treatment", "Traitement"),
    "col.profile": ("Targets", "Objectifs"),
    "col.last_reading": ("Last reading", "Dernière mesure"),
    "col.in_target": ("In target, 7 days", "Dans l'objectif, 7 j"),
    "col.adherence": ("Adherence", "Observance"),
    "col.alerts": ("Open alerts", "Alertes ouvertes"),
    "col.reviewed": ("Last reviewed", "Dernière revue"),
    "col.external_id": ("Hospital number", "IPP"),
    "col.devices": ("Devices", "Appareils"),
    "col.team": ("Team", "Équipe"),
    "pager.previous": ("Previous", "Précédent"),
    "pager.next": ("Next", "Suivant"),
    "pager.label": ("Pages", "Pages"),
    "pager.page": ("Page {page} of {pages}", "Page {page} sur {pages}"),
    # all patients
    "patients.title": ("All patients", "Toutes les patientes"),
    "patients.search": ("Search by name or hospital number", "Rechercher par nom ou IPP"),
    "patients.search_button": ("Search", "Rechercher"),
    "patients.none": ("No patient matches.", "Aucune patiente ne correspond."),
    # values
    "value.never": ("never", "jamais"),
    "value.none": ("—", "—"),
    "value.no_readings": ("no readings", "aucune mesure"),
    "value.cgm_tir": ("TIR 63–140", "TIR 63–140"),
    "value.of_prescribed": ("{n} of {expected}", "{n} sur {expected}"),
    "value.delivered": ("delivered {date}", "accouchée le {date}"),
    "treatment.diet": ("Diet", "Régime"),
    "treatment.metformin": ("Metformin", "Metformine"),
    "treatment.insulin": ("Insulin", "Insuline"),
    "device.meter": ("meter", "lecteur"),
    "device.app": ("app", "application"),
    "device.cgm": ("CGM", "capteur (MCG)"),
    "severity.urgent": ("Urgent", "Urgente"),
    "severity.warning": ("Warning", "Attention"),
    "severity.info": ("Info", "Info"),
    "status.open": ("open", "ouverte"),
    "status.acknowledged": ("acknowledged", "prise en compte"),
    "status.resolved": ("resolved", "résolue"),
    "status.snoozed": ("snoozed until {until}", "reportée jusqu'à {until}"),
    # alert actions
    "alert.acknowledge": ("Acknowledge", "Prendre en compte"),
    "alert.snooze": ("Snooze", "Reporter"),
    "alert.snooze_for": ("Snooze for", "Reporter de"),
    "alert.resolve": ("Resolve", "Résoudre"),
    "alert.acknowledged_flash": ("Alert acknowledged.", "Alerte prise en compte."),
    "alert.snoozed_flash": ("Alert snoozed.", "Alerte reportée."),
    "alert.resolved_flash": ("Alert resolved.", "Alerte résolue."),
    "alert.not_open": ("This alert was already handled.", "Cette alerte a déjà été traitée."),
    "alert.opened": ("opened {when}", "ouverte {when}"),
    "alert.by": ("by {who}, {when}", "par {who}, {when}"),
    "alert.reason.delivered": ("delivered: monitoring ended", "accouchement : fin de la surveillance"),
    "alert.reason.cleared": ("the condition cleared", "la situation s'est normalisée"),
    "actor.system": ("telemon, automatically", "telemon, automatiquement"),
    "actor.api_key": ("the integration “{label}”", "l'intégration « {label} »"),
    "actor.api_key_unknown": ("an integration (its key was deleted)", "une intégration (sa clé a été supprimée)"),
    "alert.evidence": ("Evidence", "Éléments"),
    "alert.evidence.readings": ("Readings", "Mesures"),
    "alert.rule": ("Rule", "Règle"),
    "snooze.1h": ("1 hour", "1 heure"),
    "snooze.4h": ("4 hours", "4 heures"),
    "snooze.24h": ("24 hours", "24 heures"),
    "snooze.72h": ("3 days", "3 jours"),
    # patient page
    "patient.title": ("Patient", "Patiente"),
    "patient.summary": ("Summary", "Synthèse"),
    "patient.due": ("Due date", "Terme prévu"),
    "patient.timezone": ("Time zone", "Fuseau horaire"),
    "patient.readings_per_day": ("Readings per day", "Mesures par jour"),
    "patient.targets": ("Targets", "Objectifs"),
    "patient.target.fasting": ("Fasting", "À jeun"),
    "patient.target.post_1h": ("1 h after meal", "1 h après le repas"),
    "patient.target.post_2h": ("2 h after meal", "2 h après le repas"),
    "patient.target.none": ("none", "aucun"),
    "patient.target.default": ("profile default: {value}", "par défaut : {value}"),
    "patient.target.below": ("below {value}", "sous {value}"),
    "patient.print": ("Print summary", "Imprimer la synthèse"),
    "patient.report_pdf": ("PDF report (14 days)", "Compte rendu PDF (14 jours)"),
    "patient.letter_pdf": ("End-of-monitoring letter (PDF)", "Courrier de fin de surveillance (PDF)"),
    "patient.printed": ("Printed {when} by {who}", "Imprimé le {when} par {who}"),
    "patient.review": ("Mark reviewed", "Marquer comme revue"),
    "patient.reviewed_flash": ("Patient marked reviewed.", "Patiente marquée comme revue."),
    "patient.alerts": ("Alerts", "Alertes"),
    "patient.alerts.open": ("Open alerts", "Alertes ouvertes"),
    "patient.alerts.history": ("Alert history", "Historique des alertes"),
    "patient.alerts.earlier": ("{n} earlier alerts of this rule", "{n} alertes précédentes de cette règle"),
    "patient.alerts.earlier_one": ("1 earlier alert of this rule", "1 alerte précédente de cette règle"),
    "patient.alerts.none": ("No open alert.", "Aucune alerte ouverte."),
    "patient.alerts.no_history": ("No past alert.", "Aucune alerte passée."),
    "patient.alerts.older": ("Older alerts", "Alertes plus anciennes"),
    "patient.alerts.newest": ("Most recent alerts", "Alertes les plus récentes"),
    "patient.alerts.not_shown": ("+ {n} more of this rule, not shown", "+ {n} autres de cette règle, non affichées"),
    "alert.folded": (
        "+ {n} later episodes of this rule while it was open, the last {when}",
        "+ {n} épisodes ultérieurs de cette règle pendant qu’elle était ouverte, le dernier {when}",
    ),
    "alert.folded_one": (
        "+ 1 later episode of this rule while it was open, {when}",
        "+ 1 épisode ultérieur de cette règle pendant qu’elle était ouverte, {when}",
    ),
    "patient.logbook": ("Logbook", "Carnet glycémique"),
    "patient.logbook.caption": (
        "Meter readings by local day ({zone}), judged against the patient's targets",
        "Glycémies capillaires par jour local ({zone}), jugées selon les objectifs de la patiente",
    ),
    "patient.logbook.day": ("Day", "Jour"),
    "patient.logbook.empty": ("No meter reading in these 14 days.", "Aucune glycémie capillaire sur ces 14 jours."),
    "patient.logbook.older": ("Older days", "Jours précédents"),
    "patient.logbook.newer": ("Newer days", "Jours suivants"),
    "slot.fasting": ("Fasting", "À jeun"),
    "slot.breakfast": ("After breakfast", "Après petit-déjeuner"),
    "slot.lunch": ("After lunch", "Après déjeuner"),
    "slot.dinner": ("After dinner", "Après dîner"),
    "slot.other": ("Other", "Autres"),
    "judge.in": ("in target", "dans l'objectif"),
    "judge.above": ("above target", "au-dessus de l'objectif"),
    "judge.hypo": ("hypoglycaemia", "hypoglycémie"),
    "judge.none": ("no target", "sans objectif"),
    "judge.control": ("control solution", "solution de contrôle"),
    "legend": ("Legend", "Légende"),
    "patient.chart": ("Glucose, last 14 days", "Glycémie, 14 derniers jours"),
    "patient.chart.desc": (
        "{n} readings from {start} to {end}; shaded band: {low} to {high}; dashed line: fasting target {fasting}.",
        "{n} mesures du {start} au {end} ; bande : de {low} à {high} ; pointillés : objectif à jeun {fasting}.",
    ),
    "patient.chart.cgm_desc": (
        "Sensor glucose (15-minute means) from {start} to {end}; shaded band: pregnancy range {low} to {high}.",
        "Glucose du capteur (moyennes sur 15 minutes) du {start} au {end} ; bande : cible de grossesse {low} à {high}.",
    ),
    "patient.chart.empty": ("No reading in the last 14 days.", "Aucune mesure sur les 14 derniers jours."),
    "patient.agp": ("Ambulatory glucose profile (14 days)", "Profil glycémique ambulatoire (AGP, 14 jours)"),
    "patient.agp.desc": (
        "Median, 25–75 % and 5–95 % of sensor glucose by time of day; lines at {low} and {high}.",
        "Médiane, 25–75 % et 5–95 % du glucose du capteur selon l'heure ; lignes à {low} et {high}.",
    ),
    "patient.agp.median": ("median", "médiane"),
    "patient.agp.iqr": ("25–75 %", "25–75 %"),
    "patient.agp.outer": ("5–95 %", "5–95 %"),
    "patient.tir": ("Time in ranges (pregnancy, 14 days)", "Temps dans les cibles (grossesse, 14 jours)"),
    "patient.tir.very_low": ("Below {v54}", "Sous {v54}"),
    "patient.tir.low": ("{v54} to {v62}", "{v54} à {v62}"),
    "patient.tir.in_range": ("{v63} to {v140}", "{v63} à {v140}"),
    "patient.tir.high": ("Above {v140}", "Au-dessus de {v140}"),
    "patient.tir.goal_very_low": ("goal < {pct}", "objectif < {pct}"),
    "patient.tir.goal_low": ("goal < {pct} below {v63}", "objectif < {pct} sous {v63}"),
    "patient.tir.goal_in_range": ("goal > {pct}", "objectif > {pct}"),
    "patient.tir.goal_high": ("goal < {pct}", "objectif < {pct}"),
    "patient.tir.met": ("goal met", "objectif atteint"),
    "patient.tir.not_met": ("goal not met", "objectif non atteint"),
    "patient.tir.source": (
        "Battelino et al., Diabetes Care 2019 (pregnancy targets)",
        "Battelino et al., Diabetes Care 2019 (objectifs en grossesse)",
    ),
    "patient.cgm.mean": ("Mean glucose", "Glucose moyen"),
    "patient.cgm.gmi": ("GMI", "GMI"),
    "patient.cgm.cv": ("Variability (CV)", "Variabilité (CV)"),
    "patient.cgm.data": ("Sensor data", "Données du capteur"),
    "patient.cgm.none": ("No sensor data in the last 14 days.", "Aucune donnée de capteur sur 14 jours."),
    "patient.cgm.insufficient": ("Insufficient data", "Données insuffisantes"),
    "patient.cgm.insufficient_detail": (
        "{n} sensor readings, {wear} wear over 14 days: the consensus judges time in ranges on 14 days with at least "
        "70 % wear (Battelino 2019); no figure and no goal is given on less.",
        "{n} mesures du capteur, port {wear} sur 14 jours : le consensus juge les temps dans les cibles sur 14 jours "
        "portés au moins à 70 % (Battelino 2019) ; aucun chiffre ni objectif n'est donné en deçà.",
    ),
    "value.share_counted": (
        "{n} of {judged} (fasting, after meals, hypos)",
        "{n} sur {judged} (à jeun, après repas, hypos)",
    ),
    "value.share_counted_title": (
        "Meter readings of the last 7 days: fasting and after-meal readings judged against their target, and every "
        "hypoglycaemia whatever its context, counted out of target",
        "Glycémies capillaires des 7 derniers jours : mesures à jeun et après repas jugées selon leur objectif, et "
        "toute hypoglycémie quel que soit son contexte, comptée hors objectif",
    ),
    "patient.edit": ("Profile, targets and treatment", "Profil, objectifs et traitement"),
    "patient.edit.profile": ("Guideline profile", "Référentiel"),
    "patient.edit.treatment": ("Treatment", "Traitement"),
    "patient.edit.readings_per_day": ("Prescribed readings per day", "Mesures prescrites par jour"),
    "patient.edit.target_hint": (
        "In {unit}; leave empty for the profile's target.",
        "En {unit} ; laisser vide pour l'objectif du référentiel.",
    ),
    "patient.edit.save": ("Save changes", "Enregistrer"),
    "patient.edit.saved": ("Changes saved.", "Modifications enregistrées."),
    "patient.edit.unchanged": ("Nothing changed.", "Aucune modification."),
    "patient.edit.readonly": (
        "Only diabetologists change targets and treatment.",
        "Seul·e·s les diabétologues modifient objectifs et traitement.",
    ),
    "patient.notes": ("Notes", "Notes"),
    "patient.notes.add": ("Add a note", "Ajouter une note"),
    "patient.notes.body": ("Note", "Note"),
    "patient.notes.save": ("Save note", "Enregistrer la note"),
    "patient.notes.saved": ("Note saved.", "Note enregistrée."),
    "patient.notes.none": ("No note yet.", "Aucune note."),
    "patient.refusals": (
        "Refused uploads, last {days} days",
        "Envois refusés, {days} derniers jours",
    ),
    "patient.refusals.count": ("{n} items refused", "{n} éléments refusés"),
    "patient.refusals.last": ("last", "dernier"),
    "patient.refusals.hint": (
        "The device is told (an uploader speaking Nightscout only in a header, which its user never sees): check"
        " its clock, its settings, or the due date.",
        "L'appareil en est informé (une application Nightscout seulement dans un en-tête que la patiente ne voit"
        " pas) : vérifier son horloge, ses réglages ou le terme.",
    ),
    "patient.delivery": ("Delivery", "Accouchement"),
    "patient.delivery.date": ("Delivery date", "Date d'accouchement"),
    "patient.delivery.save": ("Record the delivery", "Enregistrer l'accouchement"),
    "patient.delivery.saved": (
        "Delivery recorded; monitoring ends.",
        "Accouchement enregistré ; fin de la surveillance.",
    ),
    "patient.delivery.recorded": ("Delivered on {date}.", "Accouchement le {date}."),
    "patient.history": ("Changes", "Modifications"),
    "patient.history.none": ("No change recorded.", "Aucune modification enregistrée."),
    "patient.history.when": ("When", "Quand"),
    "patient.history.who": ("Who", "Qui"),
    "patient.history.what": ("What", "Quoi"),
    "action.patient.update": ("changed {fields}", "a modifié {fields}"),
    "action.patient.review": ("marked reviewed", "a marqué comme revue"),
    "action.patient.delivery": ("recorded the delivery ({date})", "a enregistré l'accouchement ({date})"),
    "action.note.add": ("added a note", "a ajouté une note"),
    "action.alert.acknowledge": ("acknowledged alert {rule}", "a pris en compte l'alerte {rule}"),
    "action.alert.snooze": ("snoozed alert {rule}", "a reporté l'alerte {rule}"),
    "action.alert.resolve": ("resolved alert {rule}", "a résolu l'alerte {rule}"),
    "field.profile": ("profile", "référentiel"),
    "field.treatment": ("treatment", "traitement"),
    "field.readings_per_day": ("readings per day", "mesures par jour"),
    "field.target_overrides": ("targets", "objectifs"),
    # preferences
    "preferences.title": ("Preferences", "Préférences"),
    "preferences.unit": ("Glucose unit", "Unité de glycémie"),
    "preferences.language": ("Language", "Langue"),
    "preferences.save": ("Save", "Enregistrer"),
    "preferences.saved": ("Preferences saved.", "Préférences enregistrées."),
    "language.en": ("English", "English"),
    "language.fr": ("Français", "Français"),
}
TEXTS |= TEXTS_CLINIC  # enrolment, devices and pairing sheets, end of monitoring

# Rules whose ``target_mgdl`` is a threshold of danger or of a pattern, not the patient's glucose target.
THRESHOLD_RULES = frozenset(
    {
        "hypo_l2",
        "hypo_l1",
        "hypo_insulin_floor",
        "fasting_severe",
        "ketone_check",
        "fasting_pattern",
        "cgm_predicted_low",
        "cgm_rapid_fall",
    }
)

# Each rule's threshold (mg/dL), shown in the clinician's unit where the rule is named in a choice (the triage
# list's rule filter): a comparison and a value, or a range.
RULE_THRESHOLDS: dict[str, tuple[str, float] | tuple[float, float]] = {
    "hypo_l2": ("<", P.HYPO_L2_MGDL),
    "hypo_l1": ("<", P.HYPO_L1_MGDL),
    "hypo_insulin_floor": ("<", P.NICE_INSULIN_FLOOR_MGDL),
    "fasting_severe": (">", P.FASTING_SEVERE_MGDL),
    "ketone_check": ("≥", P.KETONE_CHECK_MGDL),
    "cgm_predicted_low": ("<", P.PREDICTED_LOW_MGDL),
    "cgm_range_review": (P.CGM_RANGE_LOW_MGDL, P.CGM_RANGE_HIGH_MGDL),
}

RULE_NAMES: dict[str, tuple[str, str]] = {
    "hypo_l2": ("Level 2 hypoglycaemia", "Hypoglycémie niveau 2"),
    "hypo_l1": ("Level 1 hypoglycaemia", "Hypoglycémie niveau 1"),
    "hypo_insulin_floor": ("Below floor on insulin", "Sous le seuil sous insuline"),
    "fasting_severe": ("Severe fasting hyperglycaemia", "Hyperglycémie à jeun sévère"),
    "ketone_check": ("Ketone check", "Recherche de cétones"),
    "fasting_above_target": ("Fasting above target", "À jeun au-dessus de l'objectif"),
    "postprandial_above_target": ("After-meal above target", "Post-prandiale au-dessus de l'objectif"),
    "consecutive_above_target": ("Consecutive readings above target", "Mesures consécutives au-dessus"),
    "pattern_above_target": ("Week above target (≥ 30 %)", "Semaine au-dessus (≥ 30 %)"),
    "fasting_pattern": ("Fasting pattern (≥ 50 % > {glucose})", "Profil à jeun (≥ 50 % > {glucose})"),
    "fasting_trend_rising": ("Fasting trend rising", "Glycémie à jeun en hausse"),
    "low_adherence": ("Low adherence", "Observance faible"),
    "no_data": ("No data", "Pas de données"),
    "cgm_stale": ("Sensor silent", "Capteur silencieux"),
    "cgm_predicted_low": ("Predicted low", "Hypoglycémie prévue"),
    "cgm_rapid_fall": ("Rapid fall", "Chute rapide"),
    "cgm_range_review": ("Time-in-range review", "Revue du temps dans la cible"),
    "postpartum_test_due": ("Postpartum test due", "Test post-partum à prévoir"),
    "ketones_high": ("Ketones high", "Cétones élevées"),
    "blood_pressure_high": ("Blood pressure high", "Tension artérielle élevée"),
    "dose_review": ("Dose review", "Révision de dose"),
    "treatment_review": ("Treatment review", "Révision du traitement"),
    "doses_missing": ("Insulin doses missing", "Doses d'insuline non notées"),
}

TEXTS.update(TEAM_TEXTS)  # the team administration pages keep their texts in a module of their own
TEXTS.update(WEBHOOK_TEXTS)  # the team's webhooks and their delivery log
TEXTS.update(ACTIVITY_TEXTS)  # the team's monthly activity report
TEXTS.update(MESSAGE_TEXTS)  # the conversation with the patient, its templates, unread messages in the triage
TEXTS.update(TREATMENT_TEXTS)  # the treatment plan: its page, history and form
TEXTS.update(TITRATION_TEXTS)  # the team's titration protocol, and dose review suggestions applied or dismissed
TEXTS.update(MEASUREMENT_TEXTS)  # doses in the logbook, plan changes on the chart, the measurements section
TEXTS.update(POSTPARTUM_TEXTS)  # the postpartum glucose test on the patient page, its follow-up, end of monitoring

_MONTHS = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "fr": ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."),
}
_WEEKDAYS = {
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "fr": ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."),
}


def text(key: str, lang: str, **values: object) -> str:
    """The text of ``key`` in ``lang`` with ``{name}`` placeholders filled; an unknown key shows itself."""
    pair = TEXTS.get(key)
    if pair is None:
        return key
    template = pair[1] if lang == "fr" else pair[0]
    return template.format(**values) if values else template


def rule_name(rule: str, lang: str) -> str:
    pair = RULE_NAMES.get(rule)
    if pair is None:
        return rule.replace("_", " ")
    return pair[1] if lang == "fr" else pair[0]


def percent(value: float | None, lang: str, digits: int = 0) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{number(value, digits, lang)}{NNBSP if lang == 'fr' else ''}%"


def date(day: dt.date, lang: str, *, year: bool = True) -> str:
    """``12 Jan 2027`` / ``12 janv. 2027``."""
    head = f"{day.day} {_MONTHS[lang][day.month - 1]}"
    return f"{head} {day.year}" if year else head


def day_label(day: dt.date, lang: str) -> str:
    """``Mon 12 Jan`` / ``lun. 12 janv.`` (logbook rows)."""
    return f"{_WEEKDAYS[lang][day.weekday()]} {date(day, lang, year=False)}"


def clock(moment: dt.datetime) -> str:
    return f"{moment.hour:02d}:{moment.minute:02d}"


def date_time(moment: dt.datetime, lang: str) -> str:
    sep = " à " if lang == "fr" else " "
    return f"{date(moment.date(), lang)}{sep}{clock(moment)}"


def ago(moment: dt.datetime, now: dt.datetime, lang: str) -> str:
    """``3 h ago`` / ``il y a 3 h``; ``in 5 min`` for the future."""
    seconds = (now - moment).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 60:
        amount = "< 1 min"
    elif seconds < 3600:
        amount = f"{int(seconds // 60)} min"
    elif seconds < 86400 * 2:
        amount = f"{int(seconds // 3600)} h"
    else:
        amount = f"{int(seconds // 86400)} {'j' if lang == 'fr' else 'd'}"
    if lang == "fr":
        return f"dans {amount}" if future else f"il y a {amount}"
    return f"in {amount}" if future else f"{amount} ago"


def gestational_age(due_date: dt.date, on: dt.date, lang: str) -> str:
    """Weeks + days of amenorrhoea from the due date (due date = 40 weeks): ``32 w + 4 d`` / ``32 SA + 4 j``."""
    days = 280 - (due_date - on).days
    weeks, rest = divmod(max(days, 0), 7)
    return f"{weeks} SA + {rest} j" if lang == "fr" else f"{weeks} w + {rest} d"


@functools.lru_cache(maxsize=16)
def _badge(severity: str, lang: str) -> Markup:
    icon = _SEVERITY_ICONS.get(severity, "ℹ")
    word = escape(text("severity." + severity, lang))
    return Markup(  # noqa: S704 - the word is escaped, the rest is constant
        f'<span class="badge sev-{escape(severity)}"><span aria-hidden="true" class="icon">{icon}</span> {word}</span>'
    )


class AlertText(Protocol):
    """What an alert's message is made of: a code and params, or (older alerts) a stored text."""

    @property
    def code(self) -> str | None: ...
    @property
    def params(self) -> dict[str, Any] | None: ...
    @property
    def message(self) -> dict[str, str] | None: ...


@dataclass(frozen=True)
class Formatter:
    """Everything a template needs to write for one clinician: ``t``, numbers, glucose, dates."""

    lang: str
    unit: str
    now: dt.datetime

    def t(self, key: str, **values: object) -> str:
        return text(key, self.lang, **values)

    def g(self, value_mgdl: float | None) -> str:
        return glucose(value_mgdl, self.unit, self.lang)

    def gn(self, value_mgdl: float) -> str:
        return glucose_number(value_mgdl, self.unit, self.lang)

    def num(self, value: float, digits: int = 0) -> str:
        return number(value, digits, self.lang)

    def pct(self, value: float | None, digits: int = 0) -> str:
        return percent(value, self.lang, digits)

    def date(self, day: dt.date | None) -> str:
        return date(day, self.lang) if day is not None else self.t("value.never")

    def short_date(self, day: dt.date) -> str:
        return date(day, self.lang, year=False)

    def day(self, day: dt.date) -> str:
        return day_label(day, self.lang)

    def when(self, moment: dt.datetime | None, zone: dt.tzinfo | None = None) -> str:
        if moment is None:
            return self.t("value.never")
        return date_time(moment.astimezone(zone) if zone else moment, self.lang)

    def ago(self, moment: dt.datetime | None) -> str:
        if moment is None:
            return self.t("value.never")
        return ago(moment, self.now, self.lang)

    def ga(self, due_date: dt.date, on: dt.date) -> str:
        return gestational_age(due_date, on, self.lang)

    def rule(self, rule: str) -> str:
        """A rule's name; the one name that holds a glucose value (the fasting pattern's) has it in the unit."""
        name = rule_name(rule, self.lang)
        return name.format(glucose=self.g(P.FASTING_PATTERN_MGDL)) if "{glucose}" in name else name

    def rule_choice(self, rule: str) -> str:
        """A rule named in a choice: its name and its threshold, in the clinician's unit."""
        threshold = RULE_THRESHOLDS.get(rule)
        name = self.rule(rule)
        if threshold is None:
            return name
        first, second = threshold
        if isinstance(first, str):
            return f"{name} ({first} {self.g(second)})"
        return f"{name} ({self.gn(first)}–{self.g(second)})"

    def message(self, alert: AlertText) -> str:
        """An alert's one-line explanation in the clinician's language and unit (an alert stored before message
        codes existed: its stored text, restated in the unit)."""
        return messages.render(alert.code, alert.params, self.lang, self.unit, fallback=alert.message)

    def badge(self, severity: str) -> Markup:
        """A severity badge: an icon and the word, never the colour alone."""
        return _badge(severity, self.lang)

    def functions(self) -> dict[str, Callable[..., str]]:
        return {
            "t": self.t,
            "g": self.g,
            "gn": self.gn,
            "num": self.num,
            "pct": self.pct,
            "fdate": self.date,
            "fday": self.day,
            "when": self.when,
            "ago": self.ago,
            "ga": self.ga,
            "rule_name": self.rule,
            "alert_message": self.message,
            "badge": self.badge,
        }
