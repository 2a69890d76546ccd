"""Every text the kiosk and the agent's console show, in one catalogue: French (default) and English.

``Strings("fr").t("calling", name="CAF")`` fills ``{name}``; a key missing in
one language is a bug the tests catch (both catalogues have the same keys).
Residents are often elderly: short sentences that say what happened and what
to do, no jargon, no error codes.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from ..errors import VcoreError

log = logging.getLogger(__name__)

__all__ = ["LANGUAGES", "CATALOGUE", "Strings"]

LANGUAGES = ("fr", "en")

CATALOGUE: dict[str, dict[str, str]] = {
    "fr": {
        "idle.title": "Bonjour ! Choisissez un service",
        "idle.help": "Tapez le numéro de la carte, ou touchez-la",
        "idle.none": "Aucun service n'est configuré sur cette borne",
        "card.open": "Ouvert",
        "card.closed": "Fermé",
        "card.opens": "Ouvre {when}",
        "card.closed_now": "{name} est fermé en ce moment. Il ouvre {when}.",
        "card.unknown": "Il n'y a pas de carte numéro {number}.",
        "entry": "Numéro : {digits}",
        "calling.title": "Appel de {name}",
        "calling.connecting": "Connexion en cours…",
        "calling.ringing": "Ça sonne… Un agent va vous répondre.",
        "calling.cancel": "Pour annuler, appuyez sur la touche rouge (Échap)",
        "failed.busy": "{name} est déjà en ligne avec quelqu'un.",
        "failed.busy.what": "Patientez quelques minutes, puis rappelez.",
        "failed.noanswer": "{name} ne répond pas.",
        "failed.noanswer.what": "Rappelez plus tard, pendant les heures de permanence.",
        "failed.refused": "{name} ne peut pas prendre votre appel.",
        "failed.refused.what": "Rappelez plus tard ou demandez de l'aide à l'accueil.",
        "failed.unreachable": "{name} n'est pas joignable.",
        "failed.unreachable.what": "Vérifiez que la borne est branchée, puis rappelez. Sinon, demandez à l'accueil.",
        "failed.back": "Appuyez sur une touche pour revenir aux services",
        "incall.duration": "Durée {duration}",
        "incall.recording": "● Cet entretien est enregistré",
        "incall.hangup": "RACCROCHER",
        "incall.hangup.key": "touche rouge (Échap)",
        "incall.lost": "La connexion est perdue.",
        "incall.redial": "Nouvel appel de {name}…",
        "incall.waiting": "L'image arrive…",
        "ended.title": "L'appel est terminé",
        "ended.thanks": "Merci et au revoir !",
        "ended.lost": "La connexion a été perdue. Vous pouvez rappeler.",
        "agent.title": "Poste agent — {name}",
        "agent.waiting": "En attente d'un appel",
        "agent.incall": "En ligne avec {peer} depuis {since}",
        "agent.ringing": "Appel de {peer} — Entrée : répondre, Échap : refuser",
        "agent.auto.on": "Réponse automatique : OUI (touche A)",
        "agent.auto.off": "Réponse automatique : NON (touche A)",
        "agent.log": "Appels du jour",
        "agent.log.none": "Aucun appel aujourd'hui",
        "agent.log.entry": "{start}  {peer}  {duration}  {outcome}",
        "agent.keys": "1-9 préréglages caméra · flèches orienter · +/- zoom · R enregistrer · Échap raccrocher",
        "agent.recording.on": "● ENREGISTREMENT (R pour arrêter)",
        "agent.recording.off": "Pas d'enregistrement (R pour enregistrer)",
        "agent.camera": "Caméra de la borne : {detail}",
        "camera.preset": "préréglage {n}",
        "camera.left": "gauche", "camera.right": "droite", "camera.up": "haut", "camera.down": "bas",
        "camera.zoom-in": "zoom avant", "camera.zoom-out": "zoom arrière",
        "camera.pending": "{what}…",
        "camera.done": "{what} : fait",
        "camera.refused": "{what} : refusé ({why})",
        "camera.no_record_dir": "pas de --record-dir : l'enregistrement est désactivé sur ce poste",
        "agent.selfview": "Vous",
        "outcome.hangup": "terminé",
        "outcome.refused": "refusé",
        "outcome.missed": "manqué",
        "outcome.lost": "coupé",
        "day.0": "lundi", "day.1": "mardi", "day.2": "mercredi", "day.3": "jeudi", "day.4": "vendredi",
        "day.5": "samedi", "day.6": "dimanche",
        "when.today": "aujourd'hui à {time}",
        "when.tomorrow": "demain à {time}",
        "when.day": "{day} à {time}",
    },
    "en": {
        "idle.title": "Hello! Choose a service",
        "idle.help": "Type the card's number, or touch it",
        "idle.none": "No service is set up on this kiosk",
        "card.open": "Open",
        "card.closed": "Closed",
        "card.opens": "Opens {when}",
        "card.closed_now": "{name} is closed now. It opens {when}.",
        "card.unknown": "There is no card number {number}.",
        "entry": "Number: {digits}",
        "calling.title": "Calling {name}",
        "calling.connecting": "Connecting…",
        "calling.ringing": "Ringing… An agent will answer you.",
        "calling.cancel": "To cancel, press the red key (Esc)",
        "failed.busy": "{name} is already talking with someone.",
        "failed.busy.what": "Please wait a few minutes, then call again.",
        "failed.noanswer": "{name} does not answer.",
        "failed.noanswer.what": "Call again later, during the opening hours.",
        "failed.refused": "{name} cannot take your call.",
        "failed.refused.what": "Call again later or ask at the front desk.",
        "failed.unreachable": "{name} cannot be reached.",
        "failed.unreachable.what": "Check that the kiosk is plugged in, then call again. Otherwise ask at the desk.",
        "failed.back": "Press any key to go back to the services",
        "incall.duration": "Duration {duration}",
        "incall.recording": "● This conversation is being recorded",
        "incall.hangup": "HANG UP",
        "incall.hangup.key": "red key (Esc)",
        "incall.lost": "The connection is lost.",
        "incall.redial": "Calling {name} again…",
        "incall.waiting": "The picture is coming…",
        "ended.title": "The call has ended",
        "ended.thanks": "Thank you and goodbye!",
        "ended.lost": "The connection was lost. You may call again.",
        "agent.title": "Agent station — {name}",
        "agent.waiting": "Waiting for a call",
        "agent.incall": "In call with {peer} since {since}",
        "agent.ringing": "Call from {peer} — Enter: answer, Esc: decline",
        "agent.auto.on": "Auto-answer: ON (key A)",
        "agent.auto.off": "Auto-answer: OFF (key A)",
        "agent.log": "Today's calls",
        "agent.log.none": "No call today",
        "agent.log.entry": "{start}  {peer}  {duration}  {outcome}",
        "agent.keys": "1-9 camera presets · arrows pan/tilt · +/- zoom · R record · Esc hang up",
        "agent.recording.on": "● RECORDING (R to stop)",
        "agent.recording.off": "Not recording (R to record)",
        "agent.camera": "Kiosk camera: {detail}",
        "camera.preset": "preset {n}",
        "camera.left": "left", "camera.right": "right", "camera.up": "up", "camera.down": "down",
        "camera.zoom-in": "zoom in", "camera.zoom-out": "zoom out",
        "camera.pending": "{what}…",
        "camera.done": "{what}: done",
        "camera.refused": "{what}: refused ({why})",
        "camera.no_record_dir": "no --record-dir: recording is off on this station",
        "agent.selfview": "You",
        "outcome.hangup": "ended",
        "outcome.refused": "declined",
        "outcome.missed": "missed",
        "outcome.lost": "cut off",
        "day.0": "Monday", "day.1": "Tuesday", "day.2": "Wednesday", "day.3": "Thursday", "day.4": "Friday",
        "day.5": "Saturday", "day.6": "Sunday",
        "when.today": "today at {time}",
        "when.tomorrow": "tomorrow at {time}",
        "when.day": "{day} at {time}",
    },
}


class Strings:
    """The catalogue of one language; :meth:`t` looks a key up and fills its fields."""

    def __init__(self, lang: str = "fr") -> None:
        if lang not in CATALOGUE:
            raise VcoreError(f"language {lang!r}: one of {', '.join(LANGUAGES)}")
        self.lang = lang
        self._table = CATALOGUE[lang]

    def __contains__(self, key: object) -> bool:
        return key in self._table

    def t(self, key: str, **fields: Any) -> str:
        """The text for ``key`` with ``{fields}`` filled in."""
        return self._table[key].format(**fields)

    def when(self, at: dt.datetime, now: dt.datetime) -> str:
        """``at`` said plainly relative to ``now``: "aujourd'hui à 14:00", "mardi à 09:00"."""
        time = f"{at.hour:02d}:{at.minute:02d}"
        days = (at.date() - now.date()).days
        if days == 0:
            return self.t("when.today", time=time)
        if days == 1:
            return self.t("when.tomorrow", time=time)
        return self.t("when.day", day=self.t(f"day.{at.weekday()}"), time=time)

    @staticmethod
    def duration(seconds: float) -> str:
        """``m:ss`` (``h:mm:ss`` past an hour)."""
        s = max(0, int(seconds))
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"
