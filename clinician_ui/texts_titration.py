"""Texts of the team's titration protocol page and of the dose review suggestions on the patient page (Apply,
Dismiss, the plan changed since): key → (English, French), merged into ``clinician_ui.i18n.TEXTS``."""

from __future__ import annotations

TITRATION_TEXTS: dict[str, tuple[str, str]] = {
    "nav.titration": ("Titration", "Titration"),
    "titration.title": ("Basal titration protocol", "Protocole de titration de la basale"),
    "titration.intro": (
        "The engine suggests a dose change from the last days' fasting readings following this protocol; it never "
        "changes a dose itself: a diabetologist applies or dismisses each suggestion on the patient's page.",
        "Le moteur suggère une modification de dose d'après les glycémies à jeun des derniers jours selon ce "
        "protocole ; il ne modifie jamais une dose lui-même : un diabétologue applique ou écarte chaque suggestion "
        "sur la page de la patiente.",
    ),
    "titration.team": ("Team", "Équipe"),
    "titration.in_force": ("Protocol in force", "Protocole en vigueur"),
    "titration.is_default": ("The team follows the default protocol.", "L'équipe suit le protocole par défaut."),
    "titration.is_own": ("The team set its own protocol.", "L'équipe a défini son propre protocole."),
    "titration.default": ("Default protocol", "Protocole par défaut"),
    "titration.source": ("Source", "Source"),
    "titration.edit": ("Change the protocol", "Modifier le protocole"),
    "titration.increase": ("Increase", "Augmentation"),
    "titration.reduction": ("Reduction after a hypoglycaemia", "Diminution après une hypoglycémie"),
    "titration.suggestions": ("Suggestions", "Suggestions"),
    "titration.field.step_units": ("Step (units)", "Palier (unités)"),
    "titration.field.step_percent": ("Step (% of the dose)", "Palier (% de la dose)"),
    "titration.field.window_days": ("Window (days)", "Fenêtre (jours)"),
    "titration.field.days_required": ("Days above target needed", "Jours au-dessus de l'objectif requis"),
    "titration.field.max_step_units": ("Largest change at once (units)", "Modification maximale en une fois (unités)"),
    "titration.field.reduction_percent": ("Reduction (% of the dose)", "Diminution (% de la dose)"),
    "titration.field.reduction_units": ("Reduction (units)", "Diminution (unités)"),
    "titration.field.suggestions_enabled": (
        "Suggest dose changes for the team's patients",
        "Suggérer des modifications de dose pour les patientes de l'équipe",
    ),
    "titration.hint.step": (
        "Give units, a percentage, or both (the larger applies). Empty: not used.",
        "Indiquez des unités, un pourcentage, ou les deux (le plus grand s'applique). Vide : non utilisé.",
    ),
    "titration.save": ("Save the protocol", "Enregistrer le protocole"),
    "titration.restore": ("Go back to the default protocol", "Revenir au protocole par défaut"),
    "titration.saved": ("Titration protocol saved.", "Protocole de titration enregistré."),
    "titration.off": (
        "Suggestions are off: no dose review is suggested for the team's patients.",
        "Suggestions désactivées : aucune révision de dose n'est suggérée pour les patientes de l'équipe.",
    ),
    "titration.forbidden": (
        "Only diabetologists and administrators change the titration protocol.",
        "Seuls les diabétologues et les administrateurs modifient le protocole de titration.",
    ),
    "titration.error.number": ("{field}: type a number.", "{field} : saisissez un nombre."),
    "titration.error.whole": ("{field}: type a whole number.", "{field} : saisissez un nombre entier."),
    "titration.error.step_units": (
        "{field}: {low} to {high} units, in half units; an increase needs a step in units or in percent.",
        "{field} : {low} à {high} unités, par demi-unités ; une augmentation demande un palier en unités ou en "
        "pourcentage.",
    ),
    "titration.error.step_percent": (
        "{field}: {low} to {high} %, with at most one decimal.",
        "{field} : {low} à {high} %, avec au plus une décimale.",
    ),
    "titration.error.window_days": ("{field}: {low} to {high} days.", "{field} : {low} à {high} jours."),
    "titration.error.days_required": (
        "{field}: {low} to {high} days (at most the window).",
        "{field} : {low} à {high} jours (au plus la fenêtre).",
    ),
    "titration.error.max_step_units": (
        "{field}: {low} to {high} units, in half units.",
        "{field} : {low} à {high} unités, par demi-unités.",
    ),
    "titration.error.reduction_percent": (
        "{field}: {low} to {high} %, with at most one decimal; a reduction needs a percentage or units.",
        "{field} : {low} à {high} %, avec au plus une décimale ; une diminution demande un pourcentage ou des unités.",
    ),
    "titration.error.reduction_units": (
        "{field}: {low} to {high} units, in half units.",
        "{field} : {low} à {high} unités, par demi-unités.",
    ),
    "titration.error.suggestions_enabled": ("{field}: yes or no.", "{field} : oui ou non."),
    # the protocol in one line (the settings page and each suggestion)
    "titration.line.step_units": ("+{units} U", "+{units} U"),
    "titration.line.step_percent": ("+{percent}", "+{percent}"),
    "titration.line.either": ("{first} or {second}, the larger", "{first} ou {second}, le plus grand"),
    "titration.line.increase": (
        "{step} when fasting glucose was above target on {required} of the last {window} days (at most {cap} U at "
        "once)",
        "{step} si la glycémie à jeun a dépassé l'objectif {required} jours sur les {window} derniers (au plus "
        "{cap} U en une fois)",
    ),
    "titration.line.reduction_units": ("−{units} U", "−{units} U"),
    "titration.line.reduction_percent": ("−{percent}", "−{percent}"),
    "titration.line.reduction": (
        "{step} after an unexplained hypoglycaemia (at most {cap} U at once)",
        "{step} après une hypoglycémie inexpliquée (au plus {cap} U en une fois)",
    ),
    # a dose review suggestion on the patient page
    "dose_review.title": ("Suggested dose", "Dose suggérée"),
    "dose_review.slot.basal": ("Basal", "Basale"),
    "dose_review.slot.breakfast": ("Before breakfast", "Avant le petit-déjeuner"),
    "dose_review.slot.lunch": ("Before lunch", "Avant le déjeuner"),
    "dose_review.slot.dinner": ("Before dinner", "Avant le dîner"),
    "dose_review.current": ("Current dose", "Dose actuelle"),
    "dose_review.suggested": ("Suggested dose", "Dose suggérée"),
    "dose_review.dose": ("{product} {units} U", "{product} {units} U"),
    "dose_review.protocol": ("Protocol", "Protocole"),
    "dose_review.team_protocol": ("the care team's protocol", "protocole de l'équipe"),
    "dose_review.on_version": ("Computed on plan version {version}", "Calculée sur la version {version} du plan"),
    "dose_review.apply": ("Apply: {units} U", "Appliquer : {units} U"),
    "dose_review.dismiss": ("Dismiss", "Écarter"),
    "dose_review.prescribers_only": (
        "A diabetologist applies or dismisses the suggestion.",
        "Un diabétologue applique ou écarte la suggestion.",
    ),
    "dose_review.stale": (
        "The plan changed since this suggestion (version {in_force} in force): it cannot be applied. Review the plan.",
        "Le plan a changé depuis cette suggestion (version {in_force} en vigueur) : elle ne peut pas être appliquée. "
        "Revoyez le plan.",
    ),
    "dose_review.applied_flash": (
        "Suggestion applied: a new version of the treatment plan is in force.",
        "Suggestion appliquée : une nouvelle version du plan de traitement est en vigueur.",
    ),
    "dose_review.applied": ("Applied: plan version {version}", "Appliquée : version {version} du plan"),
    "dose_review.review_plan": ("Review the plan", "Revoir le plan"),
    "dose_review.review_treatment": ("Review treatment", "Revoir le traitement"),
    "dose_review.refused.title": ("Suggestion not applied", "Suggestion non appliquée"),
    "dose_review.refused.plan_changed": (
        "The treatment plan changed since this suggestion was computed (on version {suggested_on}; version "
        "{in_force} is in force now). Nothing was applied: review the plan in force.",
        "Le plan de traitement a changé depuis le calcul de cette suggestion (sur la version {suggested_on} ; la "
        "version {in_force} est en vigueur). Rien n'a été appliqué : revoyez le plan en vigueur.",
    ),
    "dose_review.refused.not_open": (
        "This suggestion was already applied or dismissed. Nothing was applied.",
        "Cette suggestion a déjà été appliquée ou écartée. Rien n'a été appliqué.",
    ),
    "dose_review.refused.not_dose_review": (
        "This alert is not a dose suggestion. Nothing was applied.",
        "Cette alerte n'est pas une suggestion de dose. Rien n'a été appliqué.",
    ),
    "dose_review.refused.archived": (
        "Monitoring has ended: the plan is read-only. Nothing was applied.",
        "La surveillance est terminée : le plan est en lecture seule. Rien n'a été appliqué.",
    ),
    "dose_review.refused.invalid": (
        "The suggested dose is not one the plan accepts ({message}). Nothing was applied.",
        "La dose suggérée n'est pas acceptée par le plan ({message}). Rien n'a été appliqué.",
    ),
    "dose_review.none_in_force": ("none", "aucune"),
    "dose_review.note": (
        "Dose review suggestion applied (alert {alert})",
        "Suggestion de révision de dose appliquée (alerte {alert})",
    ),
    "action.alert.applied": (
        "Dose review applied: plan version {version}",
        "Révision de dose appliquée : version {version} du plan",
    ),
}
