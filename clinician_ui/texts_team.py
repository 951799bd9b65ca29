"""Texts of the team administration pages (team, invitations, passwords, API keys, audit) and of the e-mails they
send: key → (English, French), merged into ``clinician_ui.i18n.TEXTS``."""

from __future__ import annotations

TEAM_TEXTS: dict[str, tuple[str, str]] = {
    "nav.team": ("Team", "Équipe"),
    "nav.account": ("My password", "Mon mot de passe"),
    "role.admin": ("Administrator", "Administrateur·rice"),
    "role.diabetologist": ("Diabetologist", "Diabétologue"),
    "role.midwife": ("Midwife", "Sage-femme"),
    "role.nurse": ("Nurse", "Infirmier·ère"),
    "role.dietitian": ("Dietitian", "Diététicien·ne"),
    "error.admin_only": (
        "This page is for the team's administrators.",
        "Cette page est réservée aux administrateur·rices de l'équipe.",
    ),
    # team page
    "team.title": ("Team", "Équipe"),
    "team.tabs": ("Team administration", "Administration de l'équipe"),
    "team.members": ("Clinicians", "Soignant·es"),
    "team.name": ("Name", "Nom"),
    "team.email": ("Email", "Adresse e-mail"),
    "team.role": ("Role", "Rôle"),
    "team.status": ("Status", "Statut"),
    "team.last_seen": ("Last active", "Dernière activité"),
    "team.actions": ("Actions", "Actions"),
    "team.status.active": ("active", "actif·ve"),
    "team.status.deactivated": ("deactivated {when}", "désactivé·e le {when}"),
    "team.status.invited": ("invited, link valid until {when}", "invité·e, lien valable jusqu'au {when}"),
    "team.you": ("(you)", "(vous)"),
    "team.deactivate": ("Deactivate", "Désactiver"),
    "team.reactivate": ("Reactivate", "Réactiver"),
    "team.reset": ("Send a password reset link", "Envoyer un lien de nouveau mot de passe"),
    "team.cancel_invitation": ("Cancel the invitation", "Annuler l'invitation"),
    "team.invite": ("Invite a clinician", "Inviter un·e soignant·e"),
    "team.invite.email": ("Email address", "Adresse e-mail"),
    "team.invite.role": ("Role", "Rôle"),
    "team.invite.language": ("Language of the invitation", "Langue de l'invitation"),
    "team.invite.team": ("Care team", "Équipe de soins"),
    "team.invite.submit": ("Send the invitation", "Envoyer l'invitation"),
    "team.invite.help": (
        "The invitation is a link valid 72 hours, usable once, that lets her choose her password.",
        "L'invitation est un lien valable 72 heures, utilisable une fois, qui lui permet de choisir son mot de passe.",
    ),
    "team.invited": ("The invitation is sent.", "L'invitation est envoyée."),
    "team.invitation_cancelled": ("The invitation is cancelled.", "L'invitation est annulée."),
    "team.deactivated": (
        "The clinician is deactivated; her sessions have ended.",
        "Le compte est désactivé ; ses sessions sont terminées.",
    ),
    "team.reactivated": ("The clinician can sign in again.", "Le compte peut à nouveau se connecter."),
    "team.reset_sent": ("The password reset link is sent.", "Le lien de nouveau mot de passe est envoyé."),
    "team.not_self": (
        "You cannot deactivate your own account: ask another administrator.",
        "Vous ne pouvez pas désactiver votre propre compte : demandez à un·e autre administrateur·rice.",
    ),
    "team.reset_inactive": (
        "The clinician is deactivated: reactivate her before sending a reset link.",
        "Le compte est désactivé : réactivez-le avant d'envoyer un lien de nouveau mot de passe.",
    ),
    "team.not_found": ("No such clinician in your team.", "Aucun·e soignant·e de ce nom dans votre équipe."),
    "team.link.title": ("Link to hand over", "Lien à transmettre"),
    "team.link.no_mail": (
        "No e-mail server is configured (TELEMON_SMTP_URL): give this link to {email} yourself, by a channel you "
        "trust. It is shown only now, is valid until {when}, and works once.",
        "Aucun serveur d'e-mail n'est configuré (TELEMON_SMTP_URL) : transmettez vous-même ce lien à {email}, par "
        "un canal sûr. Il n'est affiché qu'une fois, est valable jusqu'au {when} et ne sert qu'une fois.",
    ),
    "team.link.mail_failed": (
        "The e-mail to {email} could not be sent ({reason}). Give her this link yourself: it is shown only now, is "
        "valid until {when}, and works once.",
        "L'e-mail à {email} n'a pas pu être envoyé ({reason}). Transmettez-lui vous-même ce lien : il n'est affiché "
        "qu'une fois, est valable jusqu'au {when} et ne sert qu'une fois.",
    ),
    "team.back": ("Back to the team", "Retour à l'équipe"),
    # field errors
    "field.email.invalid": ("Enter an email address, such as name@hospital.fr.", "Saisissez une adresse e-mail."),
    "field.email.taken": (
        "A clinician with this address already has an account.",
        "Un·e soignant·e a déjà un compte avec cette adresse.",
    ),
    "field.role.invalid": ("Choose a role.", "Choisissez un rôle."),
    "field.team.invalid": ("Choose one of your care teams.", "Choisissez une de vos équipes."),
    "field.language.invalid": ("Choose a language.", "Choisissez une langue."),
    "field.password.short": ("Use at least {n} characters.", "Au moins {n} caractères."),
    "field.password.long": ("Use at most 1024 characters.", "Au plus 1024 caractères."),
    "field.password.mismatch": ("The two passwords differ.", "Les deux mots de passe diffèrent."),
    "field.password.wrong": ("This is not your current password.", "Ce n'est pas votre mot de passe actuel."),
    "field.name.invalid": ("Enter a name of at most 100 characters.", "Saisissez un nom d'au plus 100 caractères."),
    "field.label.invalid": ("Enter a label of 1 to 100 characters.", "Saisissez un libellé de 1 à 100 caractères."),
    "field.scopes.invalid": ("Choose at least one scope.", "Choisissez au moins une autorisation."),
    "field.teams.invalid": ("Choose at least one of your care teams.", "Choisissez au moins une de vos équipes."),
    "field.actor.invalid": ("Choose someone from the list.", "Choisissez une personne de la liste."),
    "field.patient.invalid": (
        "No patient of your team has this hospital number or id.",
        "Aucune patiente de votre équipe n'a ce numéro ou cet identifiant.",
    ),
    "field.date.invalid": ("Enter a date (YYYY-MM-DD).", "Saisissez une date (AAAA-MM-JJ)."),
    "field.range.invalid": ("The end is before the start.", "La fin précède le début."),
    "form.errors": ("Check the fields marked below.", "Vérifiez les champs signalés ci-dessous."),
    # accepting an invitation, resetting a password, changing one's own
    "account.welcome.title": ("Join {team}", "Rejoindre {team}"),
    "account.welcome.intro": (
        "You are invited to telemon as {role} in {team}, with the address {email}. Choose your name and password.",
        "Vous êtes invité·e sur telemon comme {role} dans {team}, avec l'adresse {email}. Choisissez votre nom et "
        "votre mot de passe.",
    ),
    "account.display_name": ("Your name, as colleagues see it", "Votre nom, tel que vos collègues le voient"),
    "account.language": ("Language", "Langue"),
    "account.password": ("Password", "Mot de passe"),
    "account.password_help": ("At least {n} characters.", "Au moins {n} caractères."),
    "account.password_again": ("The same password again", "Le même mot de passe à nouveau"),
    "account.welcome.submit": ("Create my account", "Créer mon compte"),
    "account.reset.title": ("Choose a new password", "Choisir un nouveau mot de passe"),
    "account.reset.intro": (
        "A new password for {email}. Your sessions on other devices will end.",
        "Un nouveau mot de passe pour {email}. Vos sessions sur d'autres appareils seront fermées.",
    ),
    "account.reset.submit": ("Save the new password", "Enregistrer le nouveau mot de passe"),
    "account.link_invalid.title": ("This link cannot be used", "Ce lien n'est pas utilisable"),
    "account.link_invalid": (
        "This link is unknown, has expired or has already been used. Ask your team's administrator for a new one.",
        "Ce lien est inconnu, a expiré ou a déjà servi. Demandez-en un nouveau à l'administrateur·rice de votre "
        "équipe.",
    ),
    "account.created": ("Your account is ready: sign in.", "Votre compte est prêt : connectez-vous."),
    "account.password_reset": (
        "Your new password is saved: sign in.",
        "Votre nouveau mot de passe est enregistré : connectez-vous.",
    ),
    "account.change.title": ("Change my password", "Changer mon mot de passe"),
    "account.current_password": ("Current password", "Mot de passe actuel"),
    "account.new_password": ("New password", "Nouveau mot de passe"),
    "account.change.submit": ("Change my password", "Changer mon mot de passe"),
    "account.changed": (
        "Your password is changed; your other sessions have ended.",
        "Votre mot de passe est changé ; vos autres sessions sont terminées.",
    ),
    # API keys
    "keys.title": ("API keys", "Clés d'API"),
    "keys.intro": (
        "Keys let a hospital system read and write the patients of the teams they belong to, within their scopes.",
        "Les clés permettent à un système hospitalier de lire et d'écrire les patientes de leurs équipes, dans "
        "la limite de leurs autorisations.",
    ),
    "keys.label": ("Label", "Libellé"),
    "keys.scopes": ("Scopes", "Autorisations"),
    "keys.teams": ("Care teams", "Équipes"),
    "keys.created": ("Created", "Créée"),
    "keys.last_used": ("Last used", "Dernière utilisation"),
    "keys.status": ("Status", "Statut"),
    "keys.active": ("active", "active"),
    "keys.revoked": ("revoked {when}", "révoquée le {when}"),
    "keys.revoke": ("Revoke", "Révoquer"),
    "keys.revoked_flash": ("The key is revoked.", "La clé est révoquée."),
    "keys.none": ("No API key yet.", "Aucune clé d'API pour l'instant."),
    "keys.create": ("Create a key", "Créer une clé"),
    "keys.create.submit": ("Create the key", "Créer la clé"),
    "keys.new.title": ("New key “{label}”", "Nouvelle clé « {label} »"),
    "keys.new.once": (
        "Copy this key now into the hospital system: it is shown only once, and telemon keeps only its hash.",
        "Copiez cette clé maintenant dans le système hospitalier : elle n'est affichée qu'une fois et telemon n'en "
        "garde que l'empreinte.",
    ),
    # audit
    "audit.title": ("Audit log", "Journal d'audit"),
    "audit.when": ("When (UTC)", "Quand (UTC)"),
    "audit.who": ("Who", "Qui"),
    "audit.action": ("Action", "Action"),
    "audit.patient": ("Patient", "Patiente"),
    "audit.detail": ("Detail", "Détail"),
    "audit.filter.actor": ("Who", "Qui"),
    "audit.filter.anyone": ("anyone", "tout le monde"),
    "audit.filter.patient": ("Patient (hospital number or id)", "Patiente (numéro hospitalier ou identifiant)"),
    "audit.filter.action": ("Action starts with", "L'action commence par"),
    "audit.filter.from": ("From (UTC)", "Du (UTC)"),
    "audit.filter.to": ("To (UTC, included)", "Au (UTC, inclus)"),
    "audit.filter.submit": ("Filter", "Filtrer"),
    "audit.csv": ("Download these rows (CSV)", "Télécharger ces lignes (CSV)"),
    "audit.none": ("No entry matches.", "Aucune entrée ne correspond."),
    "audit.older": ("Older entries", "Entrées plus anciennes"),
    "audit.newest": ("Newest entries", "Entrées les plus récentes"),
    "audit.several_patients": ("{n} patients", "{n} patientes"),
    "audit.actor.cli": ("command line", "ligne de commande"),
    "audit.actor.system": ("telemon", "telemon"),
    "audit.actor.anonymous": ("not signed in", "non connecté·e"),
    "audit.actor.key": ("key “{label}”", "clé « {label} »"),
    "audit.actor.device": ("device {id}", "appareil {id}"),
    # e-mails (plain text)
    "mail.invitation.subject": ("Your telemon invitation ({team})", "Votre invitation à telemon ({team})"),
    "mail.invitation.body": (
        "Hello,\n\n{inviter} invites you to telemon, the gestational diabetes telemonitoring of {team}, as {role}.\n\n"
        "Open this link to choose your password (it works once, until {when} UTC):\n\n{link}\n\n"
        "If you did not expect this invitation, ignore this message.\n",
        "Bonjour,\n\n{inviter} vous invite sur telemon, la télésurveillance du diabète gestationnel de {team}, "
        "comme {role}.\n\nOuvrez ce lien pour choisir votre mot de passe (il ne sert qu'une fois, jusqu'au {when} "
        "UTC) :\n\n{link}\n\nSi vous n'attendiez pas cette invitation, ignorez ce message.\n",
    ),
    "mail.reset.subject": ("Your new telemon password", "Votre nouveau mot de passe telemon"),
    "mail.reset.body": (
        "Hello,\n\n{inviter} sent you a link to choose a new telemon password (it works once, until {when} UTC):"
        "\n\n{link}\n\nUntil you use it, your current password still works.\n",
        "Bonjour,\n\n{inviter} vous envoie un lien pour choisir un nouveau mot de passe telemon (il ne sert "
        "qu'une fois, jusqu'au {when} UTC) :\n\n{link}\n\nTant que vous ne l'utilisez pas, votre mot de passe "
        "actuel reste valable.\n",
    ),
}
