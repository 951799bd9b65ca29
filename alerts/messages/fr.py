"""French texts of the alert messages (placeholders: see :mod:`alerts.messages.en`)."""

from __future__ import annotations

DECIMAL = ","
THOUSANDS = "\u202f"  # narrow no-break space
NBSP = "\u00a0"

_L2 = "ADA niveau 2 : sous {threshold_mgdl:glucose}"
_L1 = "ADA niveau 1 : de {level_low_mgdl:gnum} à {level_high_mgdl:glucose}"
_FLOOR = "NICE NG3 : sous insuline, garder la glycémie au-dessus de {threshold_mgdl:glucose}"
_MANY = "{count:int} mesures sous {threshold_mgdl:glucose} du {first_local:when} au {last_local:when}"
_ONE = "1 mesure sous {threshold_mgdl:glucose} le {first_local:when}"
_NADIR = ", la plus basse {nadir_mgdl:glucose} le {nadir_local:when}"

MONTHS = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc.")

TEXTS: dict[str, str] = {
    "when": "{date} à {time}",  # a wall-clock time of the patient's day
    "rule.cite": "Règle {rule}.",
    # hypoglycaemia
    "hypo_l2": f"Hypoglycémie de niveau 2 : {_MANY}{_NADIR} ({_L2}).",
    "hypo_l2#one": f"Hypoglycémie de niveau 2 : {_ONE}{_NADIR} ({_L2}).",
    "hypo_l1": f"Hypoglycémie de niveau 1 : {_MANY}{_NADIR} ({_L1}).",
    "hypo_l1#one": f"Hypoglycémie de niveau 1 : {_ONE}{_NADIR} ({_L1}).",
    "hypo_insulin_floor": f"Sous le seuil glycémique sous insuline : {_MANY}{_NADIR} ({_FLOOR}).",
    "hypo_insulin_floor#one": f"Sous le seuil glycémique sous insuline : {_ONE}{_NADIR} ({_FLOOR}).",
    # severe highs
    "fasting_severe": (
        "Hyperglycémie à jeun sévère le {local_date:date} : {readings:list:at_time}, au-dessus de "
        "{threshold_mgdl:glucose}. Insulinothérapie à revoir sans attendre (CNGOF/SFD 2010)."
    ),
    "fasting_severe.unconfirmed": (
        "Possible hyperglycémie à jeun sévère le {local_date:date} : {readings:list:at_time}, au-dessus de "
        "{threshold_mgdl:glucose}, envoyée sans contexte et considérée à jeun d'après l'heure : vérifier qu'elle "
        "était à jeun (CNGOF/SFD 2010)."
    ),
    "ketone_check": (
        "Glycémie supérieure ou égale à {threshold_mgdl:glucose} : {count:int} mesures depuis le {first_local:when}, la "
        "plus haute {peak_mgdl:glucose} le {peak_local:when}. Rechercher une cétose (seuil ≥ {threshold_mgdl:glucose})."
    ),
    "ketone_check#one": (
        "Glycémie supérieure ou égale à {threshold_mgdl:glucose} : 1 mesure depuis le {first_local:when}, la plus haute "
        "{peak_mgdl:glucose} le {peak_local:when}. Rechercher une cétose (seuil ≥ {threshold_mgdl:glucose})."
    ),
    # targets
    "fasting_above_target": (
        "Glycémie à jeun au-dessus de la cible le {local_date:date} : {readings:list:at_time} (cible < "
        "{target_mgdl:glucose}, {profile:label})."
    ),
    "postprandial_above_target": (
        "Glycémie post-prandiale au-dessus de la cible le {local_date:date} : {readings:list:at_time_target} ; cibles "
        "{profile:label}."
    ),
    "consecutive_above_target.fasting": (
        "{count:int} glycémies à jeun consécutives au-dessus de la cible depuis le {since_local:when} : "
        "{values_mgdl:glucose_list} (cible < {targets_mgdl:glucose0}, {profile:label})."
    ),
    "consecutive_above_target.after_meal": (
        "{count:int} glycémies post-prandiales consécutives au-dessus de la cible depuis le {since_local:when} : "
        "{values_mgdl:glucose_list} (cibles {targets_mgdl:lt_glucose_list}, {profile:label})."
    ),
    # patterns and trend
    "pattern_above_target": (
        "{percent_above:num0} % des glycémies des {window_days:int} derniers jours sont au-dessus de la cible "
        "({readings_above:int} sur {readings_with_target:int} glycémies à jeun et post-prandiales, cibles "
        "{profile:label}). Au moins {threshold_percent:int} % d'au moins {min_readings:int} mesures fait envisager "
        "une intensification du traitement (règle de travail DECIDE)."
    ),
    "fasting_pattern": (
        "{readings_above:int} des {fasting_readings:int} glycémies à jeun des {window_days:int} derniers jours "
        "dépassent {threshold_mgdl:glucose} ({percent_above:num0} %) : {values_mgdl:glucose_list}. Au moins la moitié "
        "d'au moins {min_readings:int} mesures fait envisager une intensification du traitement (règle de travail "
        "DECIDE)."
    ),
    "fasting_trend_rising": (
        "La glycémie à jeun augmente de {slope_mgdl_per_day:num1} mg/dL par jour sur les {window_days:int} derniers "
        "jours (pente des moindres carrés de {points:int} glycémies à jeun, moyenne {mean_mgdl:glucose} ; seuil > "
        "{threshold_mgdl_per_day:num0} mg/dL par jour)."
    ),
    # adherence and silence
    "low_adherence": (
        "{readings:int} glycémies capillaires sur les {window_days:int} derniers jours complets (du {first_date:date} au "
        "{last_date:date}) pour {expected:int} prescrites ({readings_per_day:int} par jour) : {percent:num0} %, sous "
        "{threshold_percent:int} %. Par jour : {per_day:ints}."
    ),
    "no_data": (
        "Aucune mesure depuis le {last_local:when} (dernière : {last_mgdl:glucose}). Le lecteur ou l'application est "
        "silencieux depuis plus de {threshold_hours:int} h."
    ),
    # CGM
    "cgm_stale": (
        "Capteur (CGM) silencieux depuis le {last_local:when} (dernière mesure {last_mgdl:glucose} ; alerte après "
        "{warning_after_min:int} min, urgente après {urgent_after_min:int} min)."
    ),
    "cgm_predicted_low": (
        "Hypoglycémie prévue : la prévision AR2 (Nightscout) atteint {reaches_mgdl:glucose} "
        "{reaches_after_min:int} min après la dernière mesure du capteur ({last_mgdl:glucose} le {last_local:when}) ; "
        "prévision à {forecast_minutes:ints} min : {forecast_mgdl:glucose_list} (seuil ≤ {threshold_mgdl:glucose} "
        "dans les {horizon_min:int} min)."
    ),
    "cgm_rapid_fall": (
        "Glycémie en chute rapide : {rate_mgdl_per_min:num1} mg/dL par minute sur les {window_min:int} dernières "
        "minutes ({count:int} mesures du capteur, de {first_mgdl:glucose} à {first_local:hm} à {last_mgdl:glucose} "
        "le {last_local:when} ; seuil ≤ {threshold_mgdl_per_min:minus0} mg/dL/min)."
    ),
    "cgm_range_review": (
        "Bilan du capteur sur les {window_days:int} derniers jours ({data_pct:num0} % de données) : temps dans la "
        "cible {range_low_mgdl:gnum}–{range_high_mgdl:glucose} {time_in_range_pct:num1} % (objectif > "
        "{time_in_range_min_pct:int} %), sous 63 {below_63_pct:num1} % (< {below_63_max_pct:int} %), sous 54 "
        "{below_54_pct:num1} % (< {below_54_max_pct:int} %), au-dessus de 140 {above_140_pct:num1} % (< "
        "{above_140_max_pct:int} %), CV {cv_pct:num1} % (≤ {cv_max_pct:num0} %), moyenne {mean_mgdl:glucose}, GMI "
        "{gmi_pct:num1} %. Hors des objectifs de grossesse (Battelino 2019) : {failing:terms:failing}."
    ),
    # after delivery
    "postpartum_test_due": (
        "Dépistage postnatal du diabète à prévoir : accouchement le {delivery_date:date} (il y a "
        "{days_since_delivery:int} jours) ; {profile:label} recommande : {profile:term:postpartum_test}, avant le "
        "{window_end_date:date}."
    ),
    # the treatment record (alerts.rules.treatment, alerts.rules.measurements)
    "dose_review.increase": (
        "Révision de dose : glycémie à jeun supérieure ou égale à {target_mgdl:glucose} {days_above:int} jours sur "
        "les {days_window:int} derniers avec la version {plan_version:int} du traitement. Dose {slot:term:dose_slot} "
        "suggérée : {current_units:num1} U → {suggested_units:num1} U, à confirmer par un soignant (protocole de "
        "titration)."
    ),
    "dose_review.reduction": (
        "Révision de dose : hypoglycémie {hypo[mgdl]:glucose} le {hypo[local]:when} (sous {threshold_mgdl:glucose}) "
        "avec la version {plan_version:int} du traitement. Dose {slot:term:dose_slot} suggérée : "
        "{current_units:num1} U → {suggested_units:num1} U, à confirmer par un soignant (protocole de titration)."
    ),
    "treatment_review": (
        "Régime seul depuis {days_since_start:int} jours (période d'essai {trial_days:int} jours) et "
        "{percent_above:num0} % des mesures des {window_days:int} derniers jours au-dessus de la cible "
        "({readings_above:int} sur {readings_with_target:int}, {profile:label}) : revoir le traitement (au moins "
        "{threshold_percent:int} %, règle de travail DECIDE)."
    ),
    "ketones_high.blood": (
        "Cétonémie {value_mmol:num1} mmol/L le {local:when} (élevée dès {warning_mmol:num1}, risque d'acidocétose "
        "dès {urgent_mmol:num1} mmol/L)."
    ),
    "ketones_high.urine": (
        "Cétonurie {urine} le {local:when} (élevée dès {urine_warning}, risque d'acidocétose dès {urine_urgent})."
    ),
    "blood_pressure_high": (
        "Tension artérielle {systolic:num0}/{diastolic:num0} mmHg le {local:when} : hypertension (dès "
        "{warning_systolic:num0}/{warning_diastolic:num0} mmHg, NICE NG133)."
    ),
    "blood_pressure_high.severe": (
        "Hypertension sévère : {systolic:num0}/{diastolic:num0} mmHg le {local:when} (dès {urgent_systolic:num0}/"
        "{urgent_diastolic:num0} mmHg, NICE NG133)."
    ),
    "doses_missing": "Aucune dose d'insuline notée depuis {days_without:int} jours : la dernière le {last_dose_local:when}.",
    # items and terms
    "at_time": "{mgdl:glucose} à {local:hm}",
    "at_time_target": "{mgdl:glucose} à {local:hm} ({target_kind:term:target} < {target_mgdl:glucose})",
    "target.fasting": "cible à jeun",
    "target.post_1h": "cible à 1 h",
    "target.post_2h": "cible à 2 h",
    "failing.time_in_range": "temps dans la cible < 70 %",
    "failing.below_63": "sous 63 ≥ 4 %",
    "failing.below_54": "sous 54 ≥ 1 %",
    "failing.above_140": "au-dessus de 140 ≥ 25 %",
    "failing.cv": "CV > 36 %",
    "postpartum_test.FR": "HGPO 75 g à la consultation postnatale (6 à 8 semaines)",
    "postpartum_test.NICE": "glycémie à jeun (6 à 13 semaines après la naissance)",
    "postpartum_test.ADA": "HGPO 75 g (4 à 12 semaines après l'accouchement)",
    "dose_slot.basal": "basale",
    "dose_slot.breakfast": "du petit-déjeuner",
    "dose_slot.lunch": "du déjeuner",
    "dose_slot.dinner": "du dîner",
    # labels of the evidence's facts (alerts.evidence); a fact without one is named by its key
    "fact.target_mgdl": "objectif",
    "fact.threshold_mgdl": "seuil",
    "fact.nadir_mgdl": "la plus basse",
    "fact.peak_mgdl": "la plus haute",
    "fact.mean_mgdl": "moyenne",
    "fact.sd_mgdl": "écart-type",
    "fact.mean_now_mgdl": "moyenne actuelle",
    "fact.mean_5min_ago_mgdl": "moyenne 5 min avant",
    "fact.episode_start": "début de l'épisode",
    "fact.episode_end": "fin de l'épisode",
    "fact.local_date": "date",
    "fact.first_date": "du",
    "fact.last_date": "au",
    "fact.window_start_date": "du",
    "fact.window_end_date": "au",
    "fact.readings": "mesures",
    "fact.expected": "attendues",
    "fact.readings_per_day": "prescrites par jour",
    "fact.readings_above": "mesures au-dessus",
    "fact.readings_with_target": "mesures avec objectif",
    "fact.percent": "part",
    "fact.percent_above": "part au-dessus",
    "fact.threshold_percent": "seuil",
    "fact.time_in_range_pct": "temps dans la cible",
    "fact.below_63_pct": "sous 63 mg/dL",
    "fact.below_54_pct": "sous 54 mg/dL",
    "fact.above_140_pct": "au-dessus de 140 mg/dL",
    "fact.cv_pct": "variabilité (CV)",
    "fact.gmi_pct": "GMI",
    "fact.data_pct": "données du capteur",
    "fact.window_days": "jours",
    "fact.run_length": "mesures consécutives",
    "fact.profile": "référentiel",
    "fact.target_kind": "objectif",
    "fact.slope_mgdl_per_day": "pente, mg/dL par jour",
    "fact.threshold_mgdl_per_day": "seuil, mg/dL par jour",
    "fact.rate_mgdl_per_min": "vitesse, mg/dL par min",
    "fact.threshold_mgdl_per_min": "seuil, mg/dL par min",
    "fact.horizon_min": "horizon (min)",
    "fact.max_gap_s": "écart maximal dans un épisode",
    "fact.model": "modèle",
}
