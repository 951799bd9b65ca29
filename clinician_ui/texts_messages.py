"""Texts of the conversation with the patient, its templates and the triage's messages: key → (English, French),
merged into ``clinician_ui.i18n.TEXTS``."""

from __future__ import annotations

MESSAGE_TEXTS: dict[str, tuple[str, str]] = {
    "messages.title": ("Messages", "Messages"),
    "messages.none": ("No messages yet.", "Aucun message pour l'instant."),
    "messages.from_patient": ("from the patient", "de la patiente"),
    "messages.from_team": ("care team", "équipe soignante"),
    "messages.read_by": ("Read by {who} {when}", "Lu par {who} le {when}"),
    "messages.read_by_patient": ("Read by the patient {when}", "Lu par la patiente le {when}"),
    "messages.not_read": ("Not read yet", "Pas encore lu"),
    "messages.about_alert": ("About an alert", "À propos d'une alerte"),
    "messages.body": ("Message", "Message"),
    "messages.send": ("Send to the patient", "Envoyer à la patiente"),
    "messages.sent_flash": ("Message sent.", "Message envoyé."),
    "messages.template": ("Template", "Modèle"),
    "messages.template.none": ("(none)", "(aucun)"),
    "messages.template.use": ("Use this template", "Utiliser ce modèle"),
    "messages.template.hint": (
        "The template is put in the box in the patient's language ({language}); change it before sending if needed.",
        "Le modèle est placé dans la zone de texte dans la langue de la patiente ({language}) ; modifiez-le avant "
        "l'envoi si besoin.",
    ),
    "messages.templates.link": ("Message templates", "Modèles de messages"),
    "messages.reply_to": ("Replying about the alert: {rule}", "Réponse à propos de l'alerte : {rule}"),
    "messages.reply_cancel": ("not about this alert", "sans lien avec cette alerte"),
    "messages.archived": (
        "Monitoring has ended: no new messages.",
        "La surveillance est terminée : plus de nouveaux messages.",
    ),
    "messages.hint": (
        "The patient sees this message in her app. Do not send anything urgent here: call her.",
        "La patiente voit ce message dans son application. Rien d'urgent ici : appelez-la.",
    ),
    "alert.reply": ("Reply to the patient", "Répondre à la patiente"),
    "live.new_message": ("New message from a patient", "Nouveau message d'une patiente"),
    # triage
    "triage.filter.messages": ("Unread messages only", "Messages non lus seulement"),
    "triage.unread_one": ("1 unread message", "1 message non lu"),
    "triage.unread": ("{n} unread messages", "{n} messages non lus"),
    "triage.unread_since": ("since {ago}", "depuis {ago}"),
    # templates page
    "templates.title": ("Message templates", "Modèles de messages"),
    "templates.intro": (
        "Texts the team sends often, in both languages: the patient receives the one in her language.",
        "Textes que l'équipe envoie souvent, dans les deux langues : la patiente reçoit celui de sa langue.",
    ),
    "templates.team": ("Team", "Équipe"),
    "templates.show": ("Show", "Afficher"),
    "templates.title_en": ("Title (English)", "Titre (anglais)"),
    "templates.title_fr": ("Title (French)", "Titre (français)"),
    "templates.body_en": ("Text (English)", "Texte (anglais)"),
    "templates.body_fr": ("Text (French)", "Texte (français)"),
    "templates.save": ("Save", "Enregistrer"),
    "templates.delete": ("Delete", "Supprimer"),
    "templates.new": ("New template", "Nouveau modèle"),
    "templates.add": ("Add", "Ajouter"),
    "templates.none": ("No templates.", "Aucun modèle."),
    "templates.readonly": (
        "Administrators and diabetologists edit the templates.",
        "Les administrateur·rices et diabétologues modifient les modèles.",
    ),
    "templates.saved_flash": ("Templates saved.", "Modèles enregistrés."),
}
