"""Words of the printed patient report and of the end-of-monitoring letter, in English and French.

The words the report shares with the dashboard (slots of the logbook, judgements, treatments, alert statuses, the
times in ranges) come from the dashboard's own texts through :class:`clinician_ui.i18n.Formatter`, so that paper
and screen say the same thing; these are the report's own."""

from __future__ import annotations

REPORT_TEXTS: dict[str, tuple[str, str]] = {
    "report.title": ("Glucose monitoring report", "Compte rendu de surveillance glycémique"),
    "letter.title": ("End-of-monitoring letter", "Courrier de fin de surveillance"),
    "report.period": ("Period: {start} – {end}", "Période : du {start} au {end}"),
    "report.generated": ("Printed {when} by {who}", "Édité le {when} par {who}"),
    "report.page": ("Page", "Page"),
    "report.identity": ("Patient", "Patiente"),
    "report.name": ("Name", "Nom"),
    "report.external_id": ("Hospital number", "IPP"),
    "report.team": ("Care team", "Équipe"),
    "report.zone": ("Time zone", "Fuseau horaire"),
    "report.pregnancy": ("Pregnancy", "Grossesse"),
    "report.due_date": ("Due date", "Terme prévu"),
    "report.diagnosis_date": ("Diagnosis of GDM", "Diagnostic du DG"),
    "report.ga_at_end": ("Gestational age at the end of the period", "Terme à la fin de la période"),
    "report.delivery": ("Delivery", "Accouchement"),
    "report.not_delivered": ("not yet", "pas encore"),
    "report.profile": ("Profile and targets", "Profil et objectifs"),
    "report.targets": ("Targets", "Objectifs"),
    "report.readings_per_day": ("Prescribed readings a day", "Mesures prescrites par jour"),
    "report.devices": ("Devices", "Appareils"),
    "report.plan": ("Treatment plan", "Plan de traitement"),
    "report.plan.in_force": ("In force at the end of the period", "En vigueur à la fin de la période"),
    "report.plan.none": ("No treatment plan recorded.", "Aucun plan de traitement enregistré."),
    "report.plan.changes": ("Changes during the period", "Modifications pendant la période"),
    "report.plan.no_changes": ("No change during the period.", "Aucune modification pendant la période."),
    "report.plan.version": ("Version {n}, {when}, by {who}", "Version {n}, le {when}, par {who}"),
    "report.plan.note": ("Reason", "Motif"),
    "report.summary": ("Summary", "Synthèse"),
    "report.meter_readings": ("Meter readings", "Glycémies capillaires"),
    "report.meter_mean": ("Mean of meter readings", "Moyenne des glycémies capillaires"),
    "report.in_target": ("Readings in target", "Mesures dans l'objectif"),
    "report.in_target_value": ("{pct} ({n} of {total})", "{pct} ({n} sur {total})"),
    "report.hypos": ("Hypoglycaemias (meter)", "Hypoglycémies (capillaires)"),
    "report.adherence": ("Readings a day (prescribed {per_day})", "Mesures par jour (prescrites : {per_day})"),
    "report.cgm_readings": ("Sensor readings", "Mesures du capteur"),
    "report.logbook": ("Logbook", "Carnet glycémique"),
    "report.logbook.caption": (
        "Meter readings by day and meal, in {unit}, local time ({zone}). ✓ in target, ▲ above, ▼ hypoglycaemia.",
        "Glycémies capillaires par jour et par repas, en {unit}, heure locale ({zone}). ✓ dans l'objectif, "
        "▲ au-dessus, ▼ hypoglycémie.",
    ),
    "report.logbook.day": ("Day", "Jour"),
    "report.chart": ("Glucose over the period", "Glycémies sur la période"),
    "report.cgm": ("Continuous glucose monitoring", "Mesure continue du glucose"),
    "report.alerts": ("Alerts and what was done", "Alertes et suites données"),
    "report.alerts.none": ("No alert during the period.", "Aucune alerte pendant la période."),
    "report.alerts.more": ("{n} more alerts are not listed.", "{n} autres alertes ne sont pas listées."),
    "report.alerts.opened": ("Opened", "Ouverte le"),
    "report.alerts.alert": ("Alert", "Alerte"),
    "report.alerts.done": ("What was done", "Suites données"),
    "report.alerts.still_open": ("still open", "toujours ouverte"),
    "report.alerts.repeated": ("repeated {n} times", "répétée {n} fois"),
    "report.notes": ("Notes", "Notes"),
    "report.notes.none": ("No note during the period.", "Aucune note pendant la période."),
    "report.postpartum": ("After delivery", "Après l'accouchement"),
    "report.postpartum.none": (
        "No postpartum glucose test recorded yet.",
        "Aucun bilan glycémique du post-partum enregistré.",
    ),
    "report.postpartum.test": ("Test", "Examen"),
    "report.postpartum.date": ("Date", "Date"),
    "report.postpartum.result": ("Result", "Résultat"),
    "report.postpartum.classification": ("Classification", "Classification"),
    "report.followup": ("Recommended follow-up", "Suivi recommandé"),
    # Postpartum screening after GDM: 75 g OGTT at 4–12 weeks (ADA Standards of Care 2024, section 15), fasting
    # glucose at 6–13 weeks (NICE NG3 2015, 1.6.8), OGTT at the postnatal visit (CNGOF/SFD 2010); then every 1–3
    # years (ADA section 15), sooner after an abnormal result.
    "report.followup.pending": (
        "A postpartum glucose test is due: 75 g OGTT 4–12 weeks after delivery (ADA), or fasting glucose at "
        "6–13 weeks (NICE); in French practice an OGTT at the postnatal visit (CNGOF/SFD 2010).",
        "Un bilan glycémique du post-partum est à faire : HGPO 75 g entre 4 et 12 semaines après l'accouchement "
        "(ADA), ou glycémie à jeun entre 6 et 13 semaines (NICE) ; en pratique française, HGPO lors de la "
        "consultation postnatale (CNGOF/SFD 2010).",
    ),
    "report.followup.normal": (
        "Normal result: screen for type 2 diabetes every 1–3 years (ADA), and before any future pregnancy.",
        "Résultat normal : dépistage du diabète de type 2 tous les 1 à 3 ans (ADA), et avant toute nouvelle grossesse.",
    ),
    "report.followup.impaired": (
        "Prediabetes: yearly glucose test, lifestyle intervention (ADA); refer to the general practitioner.",
        "Prédiabète : contrôle glycémique annuel, mesures hygiéno-diététiques (ADA) ; adresser au médecin traitant.",
    ),
    "report.followup.diabetes": (
        "Diabetes: refer to a diabetologist for treatment.",
        "Diabète : adresser à un diabétologue pour sa prise en charge.",
    ),
    "letter.opening": (
        "{name} was followed by the {team} team for gestational diabetes from {start} to {end}.",
        "{name} a été suivie par l'équipe {team} pour un diabète gestationnel du {start} au {end}.",
    ),
    "letter.delivered": ("She gave birth on {date}.", "Elle a accouché le {date}."),
    "letter.ongoing": (
        "Monitoring is still going on: no delivery is recorded.",
        "La surveillance est en cours : aucun accouchement n'est enregistré.",
    ),
    "letter.closing": (
        "Readings, alerts and the treatment plan's versions are kept in telemon.",
        "Les mesures, les alertes et les versions du plan de traitement sont conservées dans telemon.",
    ),
    "actor.unknown": ("unknown", "inconnu"),
}


def report_text(key: str, lang: str, **values: object) -> str:
    """One of the report's texts in ``lang`` (``en`` or ``fr``), with its placeholders filled."""
    english, french = REPORT_TEXTS[key]
    template = french if lang == "fr" else english
    return template.format(**values) if values else template
