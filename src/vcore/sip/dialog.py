"""SIP dialogs (RFC 3261 §12): identifiers, route set, CSeq spaces, and the requests sent inside one."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from .errors import SipParseError
from .message import NameAddr, SipMessage, SipUri, split_commas

__all__ = ["Dialog"]

MAX_FORWARDS = 70  # RFC 3261 §8.1.1.6


@dataclass
class Dialog:
    """One dialog as this user agent sees it (``local``/``remote`` carry the tags)."""

    call_id: str
    local: NameAddr
    remote: NameAddr
    remote_target: SipUri
    route_set: list[str] = field(default_factory=list)
    local_seq: int = field(default_factory=lambda: secrets.randbelow(2**16) + 1)
    remote_seq: int | None = None

    @property
    def id(self) -> tuple[str, str]:
        """(Call-ID, local tag): how incoming requests find the dialog (the remote tag is checked too)."""
        return self.call_id, self.local.tag or ""

    @classmethod
    def as_uac(cls, request: SipMessage, response: SipMessage) -> Dialog:
        """The caller's dialog from its INVITE and the 2xx (or 1xx with a To tag) (RFC 3261 §12.1.2)."""
        contact = response.contact
        if contact is None:
            raise SipParseError(f"{response.status} to INVITE without Contact")
        routes = list(reversed(response.get_all("Record-Route")))
        return cls(request.call_id, request.from_, response.to, contact.uri, routes, request.cseq[0])

    @classmethod
    def as_uas(cls, request: SipMessage, local_tag: str) -> Dialog:
        """The callee's dialog from the INVITE (RFC 3261 §12.1.1)."""
        contact = request.contact
        if contact is None:
            raise SipParseError("INVITE without Contact")
        return cls(request.call_id, request.to.with_tag(local_tag), request.from_, contact.uri,
                   list(request.get_all("Record-Route")), remote_seq=request.cseq[0])

    def matches(self, request: SipMessage) -> bool:
        """True when ``request`` carries this dialog's remote tag (the caller's From tag, or ours To)."""
        return request.from_.tag == self.remote.tag

    def accept_remote_seq(self, cseq: int) -> bool:
        """RFC 3261 §12.2.2: a request with a lower CSeq than the last is out of order (answer 500)."""
        if self.remote_seq is not None and cseq <= self.remote_seq:
            return False
        self.remote_seq = cseq
        return True

    def request(self, method: str, via: str, *, contact: str | None = None, cseq: int | None = None,
                body: bytes = b"", content_type: str | None = None) -> SipMessage:
        """A request inside the dialog (RFC 3261 §12.2.1.1, loose routing): Route from the route set."""
        if cseq is None:
            self.local_seq += 1
            cseq = self.local_seq
        headers: list[tuple[str, str]] = [("Via", via), ("Max-Forwards", str(MAX_FORWARDS))]
        headers += [("Route", r) for r in self.route_set]
        headers += [("From", str(self.local)), ("To", str(self.remote)), ("Call-ID", self.call_id),
                    ("CSeq", f"{cseq} {method}")]
        if contact is not None:
            headers.append(("Contact", contact))
        if content_type is not None:
            headers.append(("Content-Type", content_type))
        return SipMessage.request(method, self.remote_target, headers, body)

    def set_route_set(self, values: list[str]) -> None:
        self.route_set = [r for v in values for r in split_commas(v)]
