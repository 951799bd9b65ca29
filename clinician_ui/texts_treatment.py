"""Texts of the treatment plan's page and form: key → (English, French), merged into ``clinician_ui.i18n.TEXTS``."""

from __future__ import annotations

TREATMENT_TEXTS: dict[str, tuple[str, str]] = {
    "treatment.title": ("Treatment plan", "Plan de traitement"),
    "treatment.back": ("Back to the patient", "Retour à la patiente"),
    "treatment.link": ("Plan and history", "Plan et historique"),
    "treatment.follows_plan": (
        "The treatment follows the plan in force: change it with a new version of the plan (Plan and history).",
        "Le traitement suit le plan en vigueur : modifiez-le par une nouvelle version du plan (Plan et historique).",
    ),
    "treatment.in_force": (
        "In force since {when}, version {version}",
        "En vigueur depuis le {when}, version {version}",
    ),
    "treatment.none": (
        "No plan written yet: the record says only the treatment's kind.",
        "Aucun plan rédigé : le dossier n'indique que le type de traitement.",
    ),
    "treatment.basal": ("Basal insulin", "Insuline basale"),
    "treatment.basal_line": ("{product} {units} U at {time}", "{product} {units} U à {time}"),
    "treatment.prandial": ("Prandial insulin", "Insuline prandiale"),
    "treatment.metformin": ("Metformin", "Metformine"),
    "treatment.metformin_line": ("{mg} mg a day", "{mg} mg par jour"),
    "treatment.instruction": ("Instruction", "Consigne"),
    "treatment.history": ("History of the plan", "Historique du plan"),
    "treatment.history.none": ("No version yet.", "Aucune version pour l'instant."),
    "treatment.col.version": ("Version", "Version"),
    "treatment.col.when": ("When", "Quand"),
    "treatment.col.who": ("Who", "Qui"),
    "treatment.col.plan": ("Plan", "Plan"),
    "treatment.col.why": ("Why", "Pourquoi"),
    "treatment.change": ("Change the plan", "Modifier le plan"),
    "treatment.change.hint": (
        "Saving writes a new version, in force from now; the previous ones stay in the history.",
        "L'enregistrement crée une nouvelle version, en vigueur dès maintenant ; les précédentes restent dans "
        "l'historique.",
    ),
    "treatment.readonly": (
        "Only diabetologists and administrators change the plan.",
        "Seuls les diabétologues et les administrateurs modifient le plan.",
    ),
    "treatment.archived": (
        "Monitoring has ended: the plan is read-only.",
        "La surveillance est terminée : plan en lecture seule.",
    ),
    "treatment.save": ("Save the new version", "Enregistrer la nouvelle version"),
    "treatment.saved": (
        "New version of the treatment plan saved.",
        "Nouvelle version du plan de traitement enregistrée.",
    ),
    "treatment.times_hint": (
        "Times as HH:MM, separated by commas",
        "Heures au format HH:MM, séparées par des virgules",
    ),
    "treatment.units_hint": ("0.5 to 100 units, in half units", "0,5 à 100 unités, par demi-unités"),
    "treatment.field.treatment": ("Treatment", "Traitement"),
    "treatment.field.metformin_mg": ("Metformin (mg a day)", "Metformine (mg par jour)"),
    "treatment.field.metformin_times": ("Metformin times", "Heures de prise de la metformine"),
    "treatment.field.basal": ("Basal insulin", "Insuline basale"),
    "treatment.field.basal.product": ("Basal insulin product", "Produit de l'insuline basale"),
    "treatment.field.basal.units": ("Basal units", "Unités de basale"),
    "treatment.field.basal.time": ("Basal injection time", "Heure d'injection de la basale"),
    "treatment.field.prandial": ("Prandial insulin", "Insuline prandiale"),
    "treatment.field.prandial_product": ("Prandial insulin product", "Produit de l'insuline prandiale"),
    "treatment.field.prandial.breakfast": ("Units before breakfast", "Unités avant le petit déjeuner"),
    "treatment.field.prandial.lunch": ("Units before lunch", "Unités avant le déjeuner"),
    "treatment.field.prandial.dinner": ("Units before dinner", "Unités avant le dîner"),
    "treatment.field.instruction": ("Instruction for the patient", "Consigne pour la patiente"),
    "treatment.field.note": ("Why the plan changes", "Motif du changement"),
    "treatment.error.number": ("{field}: enter a number.", "{field} : saisissez un nombre."),
    "treatment.error.units": (
        "{field}: a dose is 0.5 to 100 units, in half units.",
        "{field} : une dose va de 0,5 à 100 unités, par demi-unités.",
    ),
    "treatment.error.time": (
        "{field}: enter a time as HH:MM (for example 22:00).",
        "{field} : saisissez une heure HH:MM (par exemple 22:00).",
    ),
    "treatment.error.product": (
        "{field}: name the product in 1 to 40 characters.",
        "{field} : nommez le produit en 1 à 40 caractères.",
    ),
    "treatment.error.text": (
        "{field}: at most 2000 characters, without control characters.",
        "{field} : 2000 caractères au plus, sans caractère de contrôle.",
    ),
    "treatment.error.choice": (
        "{field}: choose diet, metformin or insulin.",
        "{field} : choisissez régime, metformine ou insuline.",
    ),
    "treatment.error.metformin": (
        "{field}: metformin is 250 to 3000 mg a day.",
        "{field} : la metformine va de 250 à 3000 mg par jour.",
    ),
    "treatment.error.not_metformin": (
        "{field}: a metformin dose needs the treatment metformin.",
        "{field} : une dose de metformine demande le traitement metformine.",
    ),
    "treatment.error.meal": (
        "{field}: meals are breakfast, lunch and dinner.",
        "{field} : les repas sont petit déjeuner, déjeuner et dîner.",
    ),
    "treatment.error.no_insulin": (
        "{field}: an insulin plan needs a basal dose or a dose before a meal.",
        "{field} : un plan d'insuline demande une dose basale ou une dose avant un repas.",
    ),
    "treatment.error.not_insulin": (
        "{field}: insulin doses need the treatment insulin.",
        "{field} : des doses d'insuline demandent le traitement insuline.",
    ),
    "treatment.meal.breakfast": ("Breakfast", "Petit déjeuner"),
    "treatment.meal.lunch": ("Lunch", "Déjeuner"),
    "treatment.meal.dinner": ("Dinner", "Dîner"),
}
