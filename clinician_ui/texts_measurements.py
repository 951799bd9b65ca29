"""Texts of the treatment record beside the glucose: insulin doses in the logbook, plan changes on the chart, and
the measurements section (ketones, blood pressure, weight and its gain): key → (English, French), merged into
``clinician_ui.i18n.TEXTS``."""

from __future__ import annotations

MEASUREMENT_TEXTS: dict[str, tuple[str, str]] = {
    # the logbook's doses
    "dose.units": ("{units} U", "{units} U"),
    "dose.title": ("{what} {units} U at {time}", "{what} {units} U à {time}"),
    "dose.insulin.basal": ("basal insulin", "insuline basale"),
    "dose.insulin.rapid": ("rapid insulin", "insuline rapide"),
    "dose.insulin.premixed": ("premixed insulin", "insuline mixte"),
    "dose.insulin.unknown": ("insulin", "insuline"),
    "dose.legend": (
        "insulin dose given before the meal; the evening's basal dose under “{other}”",
        "dose d'insuline injectée avant le repas ; la basale du soir sous « {other} »",
    ),
    # plan changes on the chart
    "chart.plan_change": ("plan v{version}: {plan}", "plan v{version} : {plan}"),
    "chart.plan_changes": ("Treatment plan changed: {changes}.", "Plan de traitement modifié : {changes}."),
    "plan.metformin": ("metformin {mg} mg", "metformine {mg} mg"),
    "plan.units": ("{product} {units} U", "{product} {units} U"),
    "plan.prandial": ("{product}: {doses}", "{product} : {doses}"),
    "plan.rapid": ("rapid", "rapide"),
    # the measurements section
    "measures.title": ("Measurements", "Mesures"),
    "measures.ketones": ("Ketones (latest)", "Cétones (dernière mesure)"),
    "measures.ketone.blood": ("{value} mmol/L (blood)", "{value} mmol/L (sang)"),
    "measures.ketone.urine": ("{grade} (urine)", "{grade} (urines)"),
    "measures.none": ("None sent.", "Aucune mesure reçue."),
    "measures.pressure": ("Blood pressure, last {days} days", "Tension artérielle, {days} derniers jours"),
    "measures.pressure.when": ("When", "Quand"),
    "measures.pressure.value": ("Systolic / diastolic", "Systolique / diastolique"),
    "measures.pressure.pulse": ("Pulse", "Pouls"),
    "measures.pressure.mmhg": ("{systolic}/{diastolic} mmHg", "{systolic}/{diastolic} mmHg"),
    "measures.pressure.bpm": ("{pulse}/min", "{pulse}/min"),
    "measures.weight": ("Weight", "Poids"),
    "measures.weight.latest": ("{kg} kg on {date}", "{kg} kg le {date}"),
    "measures.weight.gain": ("Gain since before the pregnancy", "Prise depuis avant la grossesse"),
    "measures.weight.gain_value": ("{sign}{kg} kg (before: {before} kg)", "{sign}{kg} kg (avant : {before} kg)"),
    "measures.weight.bmi": ("Pre-pregnancy BMI", "IMC avant la grossesse"),
    "measures.weight.bmi_value": ("{bmi} kg/m² ({category})", "{bmi} kg/m² ({category})"),
    "measures.weight.recommended": ("Recommended gain", "Prise recommandée"),
    "measures.weight.recommended_value": (
        "{total} kg in all; {rate} kg/week in the 2nd and 3rd trimesters; {so_far} kg by {ga}",
        "{total} kg au total ; {rate} kg/semaine aux 2e et 3e trimestres ; {so_far} kg à {ga}",
    ),
    "measures.weight.recommended_first": (
        "{total} kg in all; at most {high} kg in the 1st trimester",
        "{total} kg au total ; au plus {high} kg au 1er trimestre",
    ),
    "measures.weight.rate": ("Recent rate", "Rythme récent"),
    "measures.weight.rate_value": (
        "{kg} kg/week over the last 4 weeks",
        "{kg} kg/semaine sur les 4 dernières semaines",
    ),
    "measures.weight.source": (
        "Ranges: Institute of Medicine 2009, by pre-pregnancy BMI.",
        "Repères : Institute of Medicine 2009, selon l'IMC avant la grossesse.",
    ),
    "measures.weight.needs_body": (
        "Enter her height and pre-pregnancy weight to judge the gain against the recommended range.",
        "Renseignez la taille et le poids avant la grossesse pour situer la prise de poids.",
    ),
    "measures.bmi.underweight": ("underweight", "maigreur"),
    "measures.bmi.normal": ("normal", "normal"),
    "measures.bmi.overweight": ("overweight", "surpoids"),
    "measures.bmi.obese": ("obesity", "obésité"),
    "measures.flag.above.so_far": (
        "Weight gain above the range recommended for her BMI: {sign}{gain} kg at {ga}, recommended {so_far} kg.",
        "Prise de poids au-dessus des repères pour son IMC : {sign}{gain} kg à {ga}, repère {so_far} kg.",
    ),
    "measures.flag.below.so_far": (
        "Weight gain below the range recommended for her BMI: {sign}{gain} kg at {ga}, recommended {so_far} kg.",
        "Prise de poids en dessous des repères pour son IMC : {sign}{gain} kg à {ga}, repère {so_far} kg.",
    ),
    "measures.flag.above.rate": (
        "Weight gain faster than recommended for her BMI: {rate} kg/week lately, recommended {range} kg/week.",
        "Prise de poids plus rapide que les repères pour son IMC : {rate} kg/semaine récemment, repère {range} "
        "kg/semaine.",
    ),
    "measures.flag.below.rate": (
        "Weight gain slower than recommended for her BMI: {rate} kg/week lately, recommended {range} kg/week.",
        "Prise de poids plus lente que les repères pour son IMC : {rate} kg/semaine récemment, repère {range} "
        "kg/semaine.",
    ),
    "measures.flag.note": ("For information: not an alert.", "Pour information : ce n'est pas une alerte."),
    "measures.body": ("Height and pre-pregnancy weight", "Taille et poids avant la grossesse"),
    "measures.body.height": ("Height (cm)", "Taille (cm)"),
    "measures.body.weight": ("Pre-pregnancy weight (kg)", "Poids avant la grossesse (kg)"),
    "measures.body.hint": ("Leave empty when not known.", "Laisser vide si inconnu."),
    "measures.body.save": ("Save", "Enregistrer"),
    "measures.body.error": (
        "{field}: {value} is not a plausible value ({low}–{high} {unit}).",
        "{field} : {value} n'est pas une valeur plausible ({low}–{high} {unit}).",
    ),
    "field.height_cm": ("height (cm)", "taille (cm)"),
    "field.pre_pregnancy_weight_kg": ("pre-pregnancy weight (kg)", "poids avant la grossesse (kg)"),
    # enrolment
    "enrol.body": ("Height and weight before the pregnancy", "Taille et poids avant la grossesse"),
    "enrol.body_hint": (
        "Optional: they give her BMI and the weight gain recommended for it.",
        "Facultatif : ils donnent son IMC et la prise de poids recommandée.",
    ),
    "enrol.height_cm": ("Height (cm)", "Taille (cm)"),
    "enrol.pre_pregnancy_weight_kg": ("Pre-pregnancy weight (kg)", "Poids avant la grossesse (kg)"),
    "field_error.body_range": (
        "Between {low} and {high} {unit}.",
        "Entre {low} et {high} {unit}.",
    ),
}
