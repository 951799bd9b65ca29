"""Texts of the postpartum glucose test on the patient page (its form, its result, its follow-up, the offer to end the
monitoring): key → (English, French), merged into ``clinician_ui.i18n.TEXTS``."""

from __future__ import annotations

POSTPARTUM_TEXTS: dict[str, tuple[str, str]] = {
    "postpartum.title": ("Postpartum glucose test", "Dépistage glycémique du post-partum"),
    "postpartum.expected": ("Expected for her profile: {test}.", "Attendu pour son profil : {test}."),
    "postpartum.none": ("No postpartum test recorded yet.", "Aucun test du post-partum enregistré."),
    "postpartum.current": ("Result", "Résultat"),
    "postpartum.earlier": ("Earlier tests", "Tests précédents"),
    "postpartum.record": ("Record a test", "Enregistrer un test"),
    "postpartum.record_another": ("Record another test", "Enregistrer un autre test"),
    "postpartum.save": ("Record the test", "Enregistrer le test"),
    "postpartum.saved": ("Postpartum test recorded.", "Test du post-partum enregistré."),
    "postpartum.readonly": (
        "Midwives, diabetologists and administrators record postpartum tests.",
        "Les sages-femmes, diabétologues et administrateurs enregistrent les tests du post-partum.",
    ),
    "postpartum.archived": (
        "Monitoring has ended: the postpartum tests are read-only.",
        "La surveillance est terminée : les tests du post-partum sont en lecture seule.",
    ),
    "postpartum.back": ("Back to the patient", "Retour à la patiente"),
    "postpartum.errors": (
        "The test was not recorded: correct the fields below.",
        "Le test n'a pas été enregistré : corrigez les champs ci-dessous.",
    ),
    "postpartum.hint": (
        "Values as the laboratory reported them. An OGTT needs the fasting and the 2-hour values.",
        "Valeurs telles que rendues par le laboratoire. Une HGPO demande la glycémie à jeun et à 2 heures.",
    ),
    "postpartum.field.test": ("Test", "Test"),
    "postpartum.field.date": ("Date of the test", "Date du test"),
    "postpartum.field.unit": ("Glucose unit", "Unité de glycémie"),
    "postpartum.field.fasting": ("Fasting glucose", "Glycémie à jeun"),
    "postpartum.field.two_hour": ("Glucose at 2 hours", "Glycémie à 2 heures"),
    "postpartum.field.hba1c": ("HbA1c", "HbA1c"),
    "postpartum.field.hba1c_unit": ("HbA1c unit", "Unité de l'HbA1c"),
    "postpartum.test.ogtt_75g": ("75 g OGTT", "HGPO 75 g"),
    "postpartum.test.fasting_glucose": ("Fasting plasma glucose", "Glycémie à jeun"),
    "postpartum.test.hba1c": ("HbA1c", "HbA1c"),
    "postpartum.timing": ("{weeks} w + {days} d after the birth", "{weeks} sem. + {days} j après la naissance"),
    "postpartum.timing.early": (
        "earlier than her profile's window ({start} to {end} weeks after the birth): the result may still reflect "
        "the pregnancy",
        "plus tôt que la fenêtre de son profil ({start} à {end} semaines après la naissance) : le résultat peut "
        "encore refléter la grossesse",
    ),
    "postpartum.col.date": ("Date", "Date"),
    "postpartum.col.test": ("Test", "Test"),
    "postpartum.col.values": ("Values", "Valeurs"),
    "postpartum.col.classification": ("Classification", "Classification"),
    "postpartum.col.follow_up": ("Follow-up", "Suivi"),
    "postpartum.col.by": ("Recorded by", "Enregistré par"),
    "postpartum.value.fasting": ("fasting {value}", "à jeun {value}"),
    "postpartum.value.two_hour": ("2 h {value}", "2 h {value}"),
    "postpartum.value.hba1c": ("HbA1c {value}", "HbA1c {value}"),
    "postpartum.source": (
        "Classified with the {profile} profile's thresholds ({source}).",
        "Classé selon les seuils du profil {profile} ({source}).",
    ),
    "postpartum.class.normal": ("Normal", "Normal"),
    "postpartum.class.elevated_hba1c": (
        "HbA1c of high risk (prediabetes)",
        "HbA1c à risque élevé (prédiabète)",
    ),
    "postpartum.class.impaired_fasting_glucose": (
        "Impaired fasting glucose",
        "Hyperglycémie modérée à jeun",
    ),
    "postpartum.class.impaired_glucose_tolerance": (
        "Impaired glucose tolerance",
        "Intolérance au glucose",
    ),
    "postpartum.class.diabetes": ("Diabetes", "Diabète"),
    "postpartum.follow.lifestyle_advice": (
        "Lifestyle advice: diet, physical activity, weight",
        "Conseils hygiéno-diététiques : alimentation, activité physique, poids",
    ),
    "postpartum.follow.retest_1_3_years": (
        "Glucose test every 1 to 3 years",
        "Dépistage glycémique tous les 1 à 3 ans",
    ),
    "postpartum.follow.retest_annual": ("Glucose test every year", "Contrôle glycémique chaque année"),
    "postpartum.follow.hba1c_annual": ("HbA1c every year", "HbA1c chaque année"),
    "postpartum.follow.ogtt_advised": (
        "A 75 g OGTT is the recommended test: this result does not exclude impaired glucose tolerance",
        "L'HGPO 75 g est le test recommandé : ce résultat n'exclut pas une intolérance au glucose",
    ),
    "postpartum.follow.prevention_programme": (
        "Diabetes prevention programme (intensive lifestyle intervention)",
        "Programme de prévention du diabète (intervention intensive sur le mode de vie)",
    ),
    "postpartum.follow.confirm_diagnosis": (
        "Confirm the diagnosis with a second test",
        "Confirmer le diagnostic par un second test",
    ),
    "postpartum.follow.refer_diabetes_care": (
        "Refer for diabetes care",
        "Adresser en consultation de diabétologie",
    ),
    "postpartum.end.title": ("End of monitoring", "Fin de la surveillance"),
    "postpartum.end.hint": (
        "The postpartum test is recorded: monitoring can end. The patient becomes read-only, leaves the triage, and "
        "her devices are revoked.",
        "Le test du post-partum est enregistré : la surveillance peut prendre fin. La patiente passe en lecture "
        "seule, sort de la liste de tri et ses appareils sont révoqués.",
    ),
    "postpartum.end.button": ("End monitoring", "Terminer la surveillance"),
    "postpartum.error.number": (
        "{field}: enter a number (at most 3 decimals).",
        "{field} : saisissez un nombre (3 décimales au plus).",
    ),
    "postpartum.error.range": (
        "{field}: a plausible result is {low} to {high} {unit}.",
        "{field} : un résultat plausible va de {low} à {high} {unit}.",
    ),
    "postpartum.error.required": (
        "{field}: needed for this test.",
        "{field} : nécessaire pour ce test.",
    ),
    "postpartum.error.not_for_test": (
        "{field}: not part of this test; leave it empty.",
        "{field} : ne fait pas partie de ce test ; laissez le champ vide.",
    ),
    "postpartum.error.unit": ("{field}: choose mg/dL, mmol/L or g/L.", "{field} : choisissez mg/dL, mmol/L ou g/L."),
    "postpartum.error.hba1c_unit": ("{field}: choose % or mmol/mol.", "{field} : choisissez % ou mmol/mol."),
    "postpartum.error.hba1c_both": ("{field}: one unit only.", "{field} : une seule unité."),
    "postpartum.error.test": ("{field}: choose a test.", "{field} : choisissez un test."),
    "postpartum.error.date": (
        "{field}: enter a date (for example 2027-03-14 or 14/03/2027).",
        "{field} : saisissez une date (par exemple 14/03/2027).",
    ),
    "postpartum.error.before_delivery": (
        "{field}: the test follows the delivery ({delivery}).",
        "{field} : le test suit l'accouchement ({delivery}).",
    ),
    "postpartum.error.future": ("{field}: the date is in the future.", "{field} : la date est dans le futur."),
    "postpartum.error.not_delivered": (
        "Record the delivery first: the postpartum test follows the birth.",
        "Enregistrez d'abord l'accouchement : le test du post-partum suit la naissance.",
    ),
    "alert.reason.postpartum_test": ("postpartum test recorded", "test du post-partum enregistré"),
    "action.postpartum.test": ("recorded a postpartum test", "a enregistré un test du post-partum"),
}
