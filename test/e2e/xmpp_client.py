"""XMPP client for the end-to-end scenarios: a slixmpp session that sends raw IQs and awaits
their answers with a deadline.

Pitfalls of slixmpp 1.8.3 (Debian 12) handled here:
- with an IP literal as the server address it leaves default_domain empty and asks the
  resolver of /etc/resolv.conf for the root name (traffic off loopback): default_domain is
  set and aiodns is off;
- the test servers have no TLS: STARTTLS is disabled and PLAIN over plaintext allowed;
- a refused connection makes slixmpp retry forever: the first failure ends the login.

Use /usr/bin/python3 (Debian's, which has python3-slixmpp).
"""
import asyncio
import itertools
import logging
import xml.etree.ElementTree as ET
from xml.sax.saxutils import quoteattr

import slixmpp
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

STANZAS_NS = 'urn:ietf:params:xml:ns:xmpp-stanzas'


class ClientError(Exception):
    """A login or an exchange did not happen within its deadline."""


def local(tag):
    """Element tag without its namespace."""
    return tag.rsplit('}', 1)[-1]


def ns(tag):
    """Namespace of an element tag ('' when none)."""
    return tag[1:].split('}', 1)[0] if tag.startswith('{') else ''


def to_text(el):
    """One-line XML of an element, for failure messages."""
    return ET.tostring(el, encoding='unicode').replace('\n', ' ')


def error_condition(iq):
    """(type, condition) of the <error/> child of a stanza, or None if it has none."""
    for child in iq:
        if local(child.tag) == 'error':
            for cond in child:
                if ns(cond.tag) == STANZAS_NS and local(cond.tag) != 'text':
                    return child.get('type'), local(cond.tag)
            return child.get('type'), None
    return None


class Client(slixmpp.ClientXMPP):
    """One logged-in user. Every IQ result/error it receives is counted by id, so that a
    scenario can prove each request was answered exactly once."""

    _ids = itertools.count(1)

    def __init__(self, jid, password, host, port=5222):
        super().__init__(jid, password)
        self._address = (host, port)
        self['feature_mechanisms'].unencrypted_plain = True
        self.default_domain = host
        self.use_aiodns = False
        self._session = asyncio.get_event_loop().create_future()
        self.answers = {}      # id -> list of received result/error IQs (ET elements)
        self._waiters = {}     # id -> future
        self.add_event_handler('session_start', self._on_session)
        self.add_event_handler('failed_auth', lambda _: self._fail_login('authentication failed'))
        self.add_event_handler('connection_failed', lambda e: self._fail_login('connection failed: %s' % e))
        self.add_event_handler('disconnected', lambda e: self._fail_login('disconnected: %s' % e))
        for t in ('result', 'error'):
            self.register_handler(Callback('e2e-iq-' + t, StanzaPath('iq@type=%s' % t), self._on_answer))
        self.messages = []     # every <message/> received, in order (ET elements)
        self._message_arrived = asyncio.Condition()
        self.register_handler(Callback('e2e-message', StanzaPath('message'), self._on_message))
        self.presences = []    # every <presence/> received, in order (ET elements)
        self._presence_arrived = asyncio.Condition()
        self.register_handler(Callback('e2e-presence', StanzaPath('presence'), self._on_presence))
        # Subscription requests are for the scenarios to answer: no automatic approval or refusal,
        # no subscription back.
        self.auto_authorize = None
        self.auto_subscribe = False

    def _on_session(self, _):
        if not self._session.done():
            self._session.set_result(True)

    def _fail_login(self, why):
        if not self._session.done():
            self._session.set_exception(ClientError(why))
            self.cancel_connection_attempt()   # no endless retries against a dead server

    def _on_answer(self, iq):
        el = iq.xml
        self.answers.setdefault(el.get('id'), []).append(el)
        w = self._waiters.pop(el.get('id'), None)
        if w is not None and not w.done():
            w.set_result(el)

    def _on_message(self, msg):
        asyncio.ensure_future(self._add_message(msg.xml))

    async def _add_message(self, el):
        async with self._message_arrived:
            self.messages.append(el)
            self._message_arrived.notify_all()

    def _on_presence(self, pres):
        asyncio.ensure_future(self._add_presence(pres.xml))

    async def _add_presence(self, el):
        async with self._presence_arrived:
            self.presences.append(el)
            self._presence_arrived.notify_all()

    def presence_mark(self):
        """Index of the next presence stanza; pass it as start= to look only at what arrives after now."""
        return len(self.presences)

    async def expect_presence(self, pred, within=5.0, start=0, what='a matching presence'):
        """Wait until a presence stanza received from index `start` on satisfies pred; return it."""
        return await self._expect(self.presences, self._presence_arrived, pred, within, start, what, 'presence')

    def message_mark(self):
        """Index of the next message; pass it as start= to look only at what arrives after now."""
        return len(self.messages)

    async def expect_message(self, pred, within=5.0, start=0, what='a matching message'):
        """Wait until a message received from index `start` on satisfies pred; return it (ET
        element). Raises ClientError after `within` seconds, naming what did arrive."""
        return await self._expect(self.messages, self._message_arrived, pred, within, start, what, 'message')

    async def _expect(self, stanzas, arrived, pred, within, start, what, kind):
        deadline = asyncio.get_event_loop().time() + within
        async with arrived:
            while True:
                for el in stanzas[start:]:
                    if pred(el):
                        return el
                left = deadline - asyncio.get_event_loop().time()
                if left <= 0:
                    seen = [to_text(m) for m in stanzas[start:]]
                    raise ClientError('%s expected within %.1fs; received %d %s stanza(s)%s' % (
                        what, within, len(seen), kind, (': ' + ' | '.join(seen[-4:])) if seen else ''))
                try:
                    await asyncio.wait_for(arrived.wait(), left)
                except asyncio.TimeoutError:
                    pass

    def send_message(self, to, msg_id, payload, mtype='chat'):
        """Send <message type=mtype to=to id=msg_id>payload</message>; payload is raw XML."""
        self.send_raw("<message type=%s to=%s id=%s>%s</message>"
                      % (quoteattr(mtype), quoteattr(to), quoteattr(msg_id), payload))

    def send_presence_raw(self, attrs='', payload=''):
        """Send <presence attrs>payload</presence>; attrs and payload are raw XML."""
        self.send_raw('<presence%s>%s</presence>' % ((' ' + attrs) if attrs else '', payload))

    @property
    def up(self):
        return self._session.done() and not self._session.exception() and self.transport is not None

    async def login(self, within=10.0, presence=True):
        """Connect and wait for the session (bound resource), ask for the roster, then send initial
        presence unless told not to; raises ClientError."""
        self.connect(self._address, force_starttls=False, disable_starttls=True)
        try:
            await asyncio.wait_for(asyncio.shield(self._session), within)
        except asyncio.TimeoutError:
            self.cancel_connection_attempt()
            raise ClientError('no session with %s:%d within %.0fs' % (*self._address, within)) from None
        # As a real client does before its initial presence (RFC 6121 section 2.2): a resource that
        # has asked for the roster is "interested", and Prosody passes subscription stanzas
        # (subscribed, unsubscribed, subscribe) only to interested resources (section 2.1.6).
        try:
            await self.get_roster(timeout=within)
        except Exception as e:   # slixmpp raises IqTimeout / IqError
            raise ClientError('roster request failed: %r' % e) from None
        if presence:
            # raw, as every later stanza of the scenarios: slixmpp's send_presence() goes through its
            # outgoing filters first, and a raw stanza sent right after it can overtake it
            self.send_raw('<presence/>')

    async def iq(self, itype, to, payload='', within=5.0, iq_id=None):
        """Send <iq type=itype to=to id=...>payload</iq> (payload: raw XML) and return the answer
        with the same id as an ET element; raises ClientError after `within` seconds."""
        iq_id = iq_id or 'e2e-%d' % next(self._ids)
        fut = asyncio.get_event_loop().create_future()
        self._waiters[iq_id] = fut
        self.send_raw("<iq type=%s to=%s id=%s>%s</iq>" % (quoteattr(itype), quoteattr(to), quoteattr(iq_id), payload))
        try:
            return await asyncio.wait_for(fut, within)
        except asyncio.TimeoutError:
            self._waiters.pop(iq_id, None)
            raise ClientError("no answer to iq %s id=%s to %s within %.1fs" % (itype, iq_id, to, within)) from None

    async def close(self, within=3.0):
        if self.transport is None:
            self.cancel_connection_attempt()
            return
        try:
            await asyncio.wait_for(self.disconnect(wait=within), within + 1)
        except (asyncio.TimeoutError, Exception):  # cleanup must not raise
            self.abort()


def log_to(path):
    """Send slixmpp's own log (every SEND:/RECV: stanza at debug level) to a file, not stderr."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter('%(asctime)s %(name)s %(levelname)s %(message)s'))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
