#!/usr/bin/python3
"""Issue 8 end to end: calls between a Jingle endpoint (XMPP) and SIP phones through the real xsgw, with
media (RTP) flowing end to end, never through the gateway.

usage: /usr/bin/python3 test/e2e/calls.py --xsgw PATH --server jabberd2|prosody --workdir DIR [--scenario NAME ...]
       /usr/bin/python3 test/e2e/calls.py --selfcheck --server jabberd2|prosody --workdir DIR   (no xsgw: the peers alone)
       /usr/bin/python3 test/e2e/calls.py --list [--selfcheck]

Peers (all on loopback, the same recipes as run.py): the XMPP server (domain xmpp.test, component sip.test),
dnsmasq (simple.test -> Kamailio 127.0.0.2:5060, sip.test -> the gateway 127.0.0.1:5080), Kamailio (registrar
of simple.test, relays INVITE/CANCEL/BYE with Record-Route), baresip phones (test/e2e/peers/baresip_call.sh):
bob@simple.test answers at once (answermode auto), carol@simple.test is the caller; sipp UASes registered as
busy@ (486), decline@ (603) and ringing@simple.test (180, then 487 after CANCEL); a sipp UAC for the unknown
codec; and alice@xmpp.test, a scripted Jingle endpoint (test/e2e/jingle_endpoint.py) with an RTP port of its own.
An XMPP user calls bob as bob*simple.test@sip.test; SIP users call alice as sip:alice*xmpp.test@sip.test.
The instance runs with [calls] answer_timeout = ANSWER_TIMEOUT (5 s; run.py's Xsgw writes no [calls]
section, CallsXsgw appends it) for sip_calls_xmpp_no_answer; no other scenario leaves a call ringing that long.
Calls from the endpoint use a raw-udp transport, or ICE-UDP (ice_udp_calls_sip, and ice_trickle_calls_sip
where the candidates follow in transport-info). sigterm_ends_calls stops xsgw, so it comes last.

Every scenario is a list of send / expect steps with deadlines (nothing sleeps to synchronise) and prints
`PASS name` or `FAIL name: why`; lines starting with # are information. Exit status 0 only if every selected
scenario passed. Everything started is stopped at the end, also on failure or SIGINT/SIGTERM; on failure the
paths of every log are printed. DIR/run.log holds every step with a time stamp.

Media is checked for real: the endpoint sends 20 ms G.711 packets of a 1 kHz tone to the address in the
peer's Jingle candidate and must receive RTP whose source address:port is exactly that candidate, which must
be the address baresip announced in its own SDP (read from its SIP trace); baresip must report RTP
established from the endpoint's port (CALL_RTPESTAB event, "receiving from" line of its log); the media
ports belong to baresip (ss -p) and xsgw owns no UDP socket on them.
"""
import argparse
import asyncio
import glob
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import (COMPONENT, MAIN, SECRET, XMPP_DOMAIN, SIP_DOMAIN, Fail, RunLog, Server, Xsgw, check,  # noqa: E402
                 run_scenario)
from sip import KAMAILIO, SipError  # noqa: E402
from xmpp_client import ClientError, log_to, to_text  # noqa: E402
from call_peers import CallPeers  # noqa: E402
from jingle_endpoint import (NS_RAW_UDP, NS_RTP, NS_RTP_INFO, PCMA, PCMU,  # noqa: E402
                             JingleEndpoint, RtpPort, candidates, child, ice_candidates, ice_content_xml,
                             ice_transport_info_xml, jingle_of, new_sid, payload_types, pick_codec, reason_of,
                             rtp_candidate, transport_of)
from xmpp_client import ns  # noqa: E402

GATEWAY = ('127.0.0.1', 5080)                 # the instance's [sip] listen: sip.test's SRV target
ALICE_SIP = 'sip:alice*%s@%s' % (XMPP_DOMAIN, SIP_DOMAIN)
ALICE = 'alice@' + XMPP_DOMAIN
SCENARIO_DEADLINE = 45.0
WAIT = 8.0                                    # deadline of one signalling step
# baresip phones: name, user, SIP port (udp+tcp; tls on the next), ctrl_tcp port, answer mode, RTP ports
BOB = ('bob', 'bob', 5096, 4446, 'auto', '10000-10019')
CAROL = ('carol', 'carol', 5098, 4447, 'manual', '10020-10039')
# sipp UASes registered at Kamailio as USER@simple.test: user -> (ip, port, scenario)
UASES = {'busy': ('127.0.0.1', 5072, 'uas_invite_486.xml'),
         'decline': ('127.0.0.1', 5073, 'uas_invite_603.xml'),
         'ringing': ('127.0.0.1', 5074, 'uas_invite_ring.xml')}
MEDIA_PACKETS = 25                            # 0.5 s of 20 ms packets each way
ANSWER_TIMEOUT = 5                            # the instance's [calls] answer_timeout (s): sip_calls_xmpp_no_answer
CANDIDATE_WAIT = 3.0                          # how long the gateway gathers trickled candidates (CallBridge)


def sip_jid(user):
    """The JID an XMPP user calls user@simple.test at."""
    return '%s*simple.test@%s' % (user, COMPONENT)


def uri_only(uri):
    """A SIP URI without its parameters (the gateway may add e.g. gr= to its From URI)."""
    return (uri or '').split(';', 1)[0]


def bare(jid):
    return (jid or '').split('/', 1)[0]


def wrap(e):
    return Fail(str(e))


class CallsXsgw(Xsgw):
    """run.py's Xsgw with a [calls] section appended to its config (run.py writes none)."""

    def __init__(self, *args, calls=(), **kwargs):
        self.calls_config = list(calls)
        super().__init__(*args, **kwargs)

    def _write_config(self, *args):
        super()._write_config(*args)
        if self.calls_config:
            with open(self.config_path, 'a') as f:
                f.write('\n'.join(['[calls]', *self.calls_config, '']))


# ---------------------------------------------------------------------------------------------
# the harness

class Harness:
    def __init__(self, args):
        self.args = args
        self.workdir = os.path.abspath(args.workdir)
        self.peers_dir = os.path.join(self.workdir, 'peers')
        self.log = None
        self.server = None
        self.xsgw = None
        self.peers = None
        self.endpoints = {}
        self.clients = []
        self.rtps = []            # RtpPorts of the running scenario, closed at its end
        self.soft = []

    def prepare_workdir(self):
        os.makedirs(self.workdir, exist_ok=True)
        os.chmod(self.workdir, 0o755)
        for pattern in ('xsgw-*.log', 'xsgw-*.toml', 'client-*.log', 'run.log'):
            for path in glob.glob(os.path.join(self.workdir, pattern)):
                os.unlink(path)
        self.log = RunLog(os.path.join(self.workdir, 'run.log'))
        self.server = Server(self.args.server, self.peers_dir, self.log)

    async def setup(self):
        self.peers = CallPeers(self.peers_dir, self.log)
        if os.path.isdir(self.peers_dir):
            await self.server.stop()                     # a copy left running by an interrupted run
            await self.peers.stop_leftovers()
            shutil.rmtree(self.peers_dir)
        os.makedirs(self.peers_dir)
        os.chmod(self.peers_dir, 0o755)
        out = await self.server.start()
        print('# %s' % out.splitlines()[-1], flush=True)
        try:
            await self.peers.start()
        except SipError as e:
            raise Fail('SIP peers: %s' % e) from None
        print('# SIP peers (dnsmasq, kamailio) up in %.2fs' % self.peers.start_time, flush=True)
        if not self.args.selfcheck:
            self.xsgw = CallsXsgw(self.args.xsgw, self.workdir, 'calls', self.server.ip, GATEWAY[1], SECRET, self.log,
                                  calls=['answer_timeout = %d   # seconds: sip_calls_xmpp_no_answer' % ANSWER_TIMEOUT],
                                  **MAIN)
            await self.xsgw.start()
            await self.xsgw.expect(r'xmpp: link up', 15)

    async def teardown(self):
        for r in self.rtps:
            r.close()
        for c in self.clients:
            await c.close()
        if self.xsgw is not None:
            try:
                if self.xsgw.proc is not None and not self.xsgw.running:     # sigterm_ends_calls stopped it
                    print('# xsgw had exited already: status %s' % self.xsgw.rc, flush=True)
                else:
                    rc, took = await self.xsgw.stop()
                    print('# xsgw stopped: status %s after %.1fs' % (rc, took), flush=True)
            except Exception as e:
                self.log('xsgw: stop failed: %r' % e)
        if self.peers is not None:
            await self.peers.stop()
        if self.server is not None:
            try:
                await self.server.stop()
            except Fail as e:
                print('# %s' % e, flush=True)

    # -- peers on first use
    async def endpoint(self, name='alice'):
        """NAME@xmpp.test as a Jingle endpoint, logged in with initial presence (slixmpp's log of its
        stanzas: DIR/client-NAME-N.log)."""
        ep = self.endpoints.get(name)
        if ep is not None and ep.up:
            return ep
        path = os.path.join(self.workdir, 'client-%s-%d.log' % (name, len(self.clients) + 1))
        log_to(path)
        ep = JingleEndpoint('%s@%s' % (name, XMPP_DOMAIN), name + 'pw', self.server.ip, self.log)
        self.clients.append(ep)
        try:
            await ep.login(within=10)
        except ClientError as e:
            raise Fail('%s cannot log in to %s: %s (client log %s)' % (name, self.server.name, e, path)) from None
        self.log('%s: session %s' % (name, ep.full))
        self.endpoints[name] = ep
        return ep

    async def rtp(self, name='alice'):
        r = RtpPort(self.log, name)
        await r.open()
        self.rtps.append(r)
        return r

    async def phone(self, spec):
        return await self.peers.phone(*spec)

    async def uas(self, user):
        ip, port, scenario = UASES[user]
        return await self.peers.invite_uas(user, ip, port, scenario)

    @property
    def kamailio(self):
        """Kamailio's log (REQ / SEND / REPLY lines keyed by Call-ID)."""
        return self.peers.kamailio_log

    @staticmethod
    def peers_kamailio():
        return KAMAILIO

    async def barrier(self, ep):
        """A ping to the component, answered after every stanza the gateway sent this endpoint before it
        (one link, in order): what has not arrived by its answer was not sent."""
        r = await ep.iq('get', COMPONENT, "<ping xmlns='urn:xmpp:ping'/>", within=5)
        check(r.get('type') == 'result', 'ping to %s: %s' % (COMPONENT, to_text(r)))

    async def end_of_scenario(self):
        """Stop what a scenario left: RTP ports, calls still open on the phones."""
        for r in self.rtps:
            r.close()
        self.rtps = []
        if self.peers is not None:
            for b in self.peers.baresips:
                await b.hang_up_all()

    def log_paths(self):
        paths = sorted(glob.glob(os.path.join(self.workdir, '*.log')))
        paths += sorted(p for p in glob.glob(os.path.join(self.peers_dir, '**', '*.*'), recursive=True)
                        if p.endswith(('.log', '.msg', '.err', '.out')))
        return paths


# ---------------------------------------------------------------------------------------------
# checks shared by the scenarios

def expect_result(r, frm, what):
    check(r.get('type') == 'result', '%s: expected an IQ result, got %s' % (what, to_text(r)))
    check(bare(r.get('from')) == bare(frm), '%s: answer from %r, expected %r' % (what, r.get('from'), frm))


def udp_sockets(port):
    """[(local address, process names, pids)] of the UDP sockets bound to port on this machine (ss -p)."""
    out = subprocess.run(['ss', '-Huanp', 'sport = :%d' % port], capture_output=True, text=True, timeout=5).stdout
    res = []
    for line in out.splitlines():
        f = line.split()
        names = re.findall(r'\("([^"]+)",pid=(\d+)', line)
        res.append((f[3] if len(f) > 3 else '?', [n for n, _ in names], [int(p) for _, p in names]))
    return res


def xsgw_pids(h):
    """Pids of the xsgw process (and of any wrapper child, e.g. valgrind keeps the pid)."""
    if h.xsgw is None or h.xsgw.proc is None:
        return set()
    return {h.xsgw.proc.pid}


def check_media_owner(h, port, owner):
    """port (on 127.0.0.1) is bound by `owner` (process name), and by no xsgw."""
    socks = udp_sockets(port)
    h.log('udp sockets on port %d: %s' % (port, socks))
    check(any(owner in names for _, names, _ in socks),
          'no %s socket bound to UDP port %d (sockets there: %s)' % (owner, port, socks or 'none'))
    bad = [s for s in socks if set(s[2]) & xsgw_pids(h) or 'xsgw' in s[1]]
    check(not bad, 'xsgw owns a UDP socket on media port %d: %s' % (port, bad))


def check_sdp_media(sdp, ip, port, pts, what):
    check(sdp is not None, '%s: no SDP found in the SIP trace' % what)
    check(sdp.get('c') == ip, '%s: c=IN IP4 %s, expected %s (%s)' % (what, sdp.get('c'), ip, sdp))
    cs = [l for l in sdp.get('lines', []) if l.startswith('c=')]
    check(cs and set(cs) == {'c=IN IP4 %s' % ip}, '%s: c= lines %s, expected only c=IN IP4 %s' % (what, cs, ip))
    check(sdp['m'][0] == port, '%s: m=audio %d, expected port %d (%s)' % (what, sdp['m'][0], port, sdp))
    if pts is not None:
        check(sdp['m'][1] == list(pts), '%s: payload types %s, expected %s (%s)' % (what, sdp['m'][1], list(pts), sdp))


async def media_both_ways(h, rtp, phone, call_id, remote, codec):
    """RTP both ways, directly between the endpoint's port and the phone's media address `remote` (the
    Jingle candidate): the endpoint gets MEDIA_PACKETS packets, every one from exactly `remote`, with the
    negotiated payload type and 20 ms of G.711; the phone reports RTP from the endpoint's port; the phone
    owns `remote`'s port, xsgw owns neither port."""
    m0, lm = rtp.mark(), phone.log_mark()
    rtp.start_sending(remote, codec[0])
    got = await rtp.expect_packets(MEDIA_PACKETS, 5.0, start=m0, source=remote)
    srcs = rtp.sources(m0)
    check(set(srcs) == {remote}, 'RTP at the endpoint came from %s, expected only from %s:%d (the candidate)'
          % (srcs, *remote))
    pts = {p.pt for p in got}
    check(pts == {codec[0]}, 'RTP payload types %s, expected %d (%s)' % (pts, codec[0], codec[1]))
    lens = {p.payload_len for p in got}
    check(lens == {160}, 'RTP payload sizes %s, expected 160 bytes (20 ms of G.711)' % lens)
    check(len({p.ssrc for p in got}) == 1, 'more than one SSRC from the phone: %s' % {p.ssrc for p in got})
    await phone.expect_event('CALL_RTPESTAB', 5.0, call_id=call_id)
    deadline = time.monotonic() + 3
    while not phone.rtp_from(lm) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    check(phone.rtp_from(lm) == [rtp.address], 'baresip %s logged RTP received from %s, expected from %s:%d (%s)'
          % (phone.name, phone.rtp_from(lm) or 'nowhere', *rtp.address, phone.run_log.path))
    check_media_owner(h, remote[1], 'baresip')
    check_media_owner(h, rtp.port, 'python3')
    h.log('media: endpoint got %d packets from %s:%d; sent %d to it' % (len(got), *remote, rtp.sent))
    rtp.stop_sending()


async def until(coro, *aborts):
    """Await coro, but fail at once when one of `aborts` (callables polled every 50 ms, returning why the
    awaited thing will not come, or None) says so: a failed call ends its scenario at once, with the reason."""
    task = asyncio.ensure_future(coro)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.05)
            if done:
                return task.result()
            for a in aborts:
                why = a()
                if why:
                    raise Fail(why)
    finally:
        if not task.done():
            task.cancel()


def call_closed(phone, call_id, start=0):
    """An abort for until(): the phone's call closed (e.g. the gateway refused the INVITE)."""
    def why():
        for e in phone.events_of(call_id, start):
            if e.get('type') == 'CALL_CLOSED':
                return '%s\'s call %s closed first: %s' % (phone.name, call_id, e.get('param'))
        return None
    return why


def terminated(ep, sid, start=0):
    """An abort for until() / expect_jingle(): the gateway ended the session."""
    def why():
        for a, el in ep.jingles_for(sid, start):
            if a == 'session-terminate':
                return 'the gateway ended the session: %s' % to_text(el)
        return None
    return why


def bounced(ep, msg_id, start=0):
    """An abort for until(): an error came back for the message msg_id the endpoint sent."""
    def why():
        for m in ep.messages[start:]:
            if m.get('type') == 'error' and m.get('id') == msg_id:
                return 'the message %s came back as an error: %s' % (msg_id, to_text(m))
        return None
    return why


def uac_ended(run):
    def why():
        return None if run.running else 'the sipp UAC ended first (exit %s; see %s)' % (run.rc(), run.out_path)
    return why


def no_more_for(ep, sid, jm, allowed, what):
    """After a barrier: the Jingle IQs the gateway sent for sid since mark jm are only of `allowed` actions,
    each at most once."""
    actions = [a for a, _ in ep.jingles_for(sid, jm)]
    extra = [a for a in actions if a not in allowed]
    check(not extra, '%s: unexpected jingle action(s) %s for sid %s (all: %s)' % (what, extra, sid, actions))
    twice = [a for a in allowed if actions.count(a) > 1]
    check(not twice, '%s: jingle %s came more than once for sid %s (all: %s)' % (what, twice, sid, actions))


def check_ringing(ep, sid, jm, phone, call_id):
    """The phone sent 180 Ringing for call_id (its trace says so) and answered at once: the endpoint got at most
    one session-info for sid since mark jm, with <ringing/>, before the session-accept. None is right too when
    the 180 reached xsgw after the 200: Kamailio relays each response from its own worker, so an immediate
    answer can overtake its 180, and the stack drops a 180 after the 200 (xmpp_cancel_before_answer, where the
    callee only rings, requires the session-info)."""
    actions = [a for a, _ in ep.jingles_for(sid, jm)]
    infos = [el for a, el in ep.jingles_for(sid, jm) if a == 'session-info']
    check(len(infos) <= 1, '%s sent 180 Ringing: at most one session-info expected for sid %s, got %d (all: %s)'
          % (phone.name, sid, len(infos), actions))
    if not infos:
        return
    check(child(jingle_of(infos[0]), NS_RTP_INFO, 'ringing') is not None,
          'session-info without <ringing xmlns=%r/>: %s' % (NS_RTP_INFO, to_text(infos[0])))
    check('session-accept' not in actions or actions.index('session-info') < actions.index('session-accept'),
          'session-info <ringing/> came after the session-accept: %s' % actions)


def sdp_candidates(sdp):
    """[(ip, port, component)] the gateway makes of an SDP without ICE (a raw-udp transport): the RTP one at
    c=/m=, the RTCP one at a=rtcp (port, and address when given) or else the next port, none with a=rtcp-mux."""
    ip, port = sdp['c'], sdp['m'][0]
    out = [(ip, port, '1')]
    lines = sdp.get('lines', [])
    if 'a=rtcp-mux' in lines:
        return out
    for l in lines:
        m = re.match(r'^a=rtcp:(\d+)(?: IN IP4 (\S+))?$', l)
        if m:
            return out + [(m.group(2) or ip, int(m.group(1)), '2')]
    return out + [(ip, port + 1, '2')]


def check_raw_transport(j, sdp, what):
    """The first content of jingle j has a raw-udp transport whose candidates are exactly sdp's."""
    t = transport_of(j)
    check(t is not None and ns(t.tag) == NS_RAW_UDP, '%s: transport %s, expected raw-udp (%s) for an SDP without ICE'
          % (what, t.tag if t is not None else 'missing', NS_RAW_UDP))
    got, want = candidates(j), sdp_candidates(sdp)
    check(got == want, '%s: raw-udp candidates %s, expected %s from the SDP' % (what, got, want))


def check_no_ice(sdp, what):
    ice = [l for l in sdp.get('lines', []) if l.startswith(('a=ice-', 'a=candidate', 'a=fingerprint', 'a=setup'))]
    check(not ice, '%s: ICE / DTLS attributes in an SDP made from a raw-udp transport: %s' % (what, ice))


async def xmpp_call_answered(h, ep, rtp, sid, to, bob, content=None, trickle=None, check_offer=None):
    """alice's session-initiate to `to` reaches bob (auto answer) with her candidate in the SDP offer; the
    session-accept carries bob's SDP answer; media flows both ways. Returns (peer full JID, Call-ID).
    content: the session-initiate's <content/> XML (default: raw-udp with rtp's address); trickle: the
    transport-info <content/> XML sent as soon as the session-initiate is acknowledged; check_offer(sdp):
    further checks of the offer bob got (default: it has no ICE attributes)."""
    jm, bm = ep.jingle_mark(), bob.mark()
    r = await ep.session_initiate(to, sid, [PCMU, PCMA], rtp.address, content=content)
    expect_result(r, to, 'session-initiate')
    if trickle is not None:
        sent = time.monotonic()
        r = await ep.transport_info(to, sid, trickle)
        expect_result(r, to, 'transport-info')
    est = await until(bob.expect_event('CALL_ESTABLISHED', WAIT, start=bm, pred=lambda e: e.get('direction') == 'incoming'),
                      terminated(ep, sid, jm))
    call_id = est['id']
    if trickle is not None:
        first = bob.events_of(call_id, bm)[0]      # bob's first event of the call (auto answer: no CALL_INCOMING)
        h.log('bob: %s %.3fs after the transport-info was sent' % (first.get('type'), first.when - sent))
        check(first.when - sent < CANDIDATE_WAIT - 1,
              'bob\'s call began %.1fs after the transport-info that completed the candidates: the gateway waited '
              'for its %.0fs candidate timer instead of sending the INVITE at once' % (first.when - sent, CANDIDATE_WAIT))
    check(uri_only(est.get('peeruri')) == ALICE_SIP, 'bob\'s call is from %r, expected %s' % (est.get('peeruri'), ALICE_SIP))
    offer = await bob.sdp(call_id, r'^INVITE ', sent=False)
    check_sdp_media(offer, '127.0.0.1', rtp.port, [0, 8], 'the INVITE\'s SDP offer at bob')
    (check_offer or (lambda o: check_no_ice(o, 'the INVITE\'s SDP offer at bob')))(offer)
    answer = await bob.sdp(call_id, r'^SIP/2\.0 200 ', sent=True)
    check(answer is not None, 'bob\'s 200 with an SDP answer is not in his trace (%s)' % bob.run_log.path)
    iq, j = await ep.expect_jingle('session-accept', sid, WAIT, jm, abort=terminated(ep, sid, jm))
    peer = iq.get('from')
    check(bare(peer) == bare(to), 'session-accept from %r, expected %s' % (peer, bare(to)))
    check(j.get('initiator') == ep.full, 'session-accept initiator=%r, expected %s' % (j.get('initiator'), ep.full))
    cand = rtp_candidate(j)
    check(cand == (answer['c'], answer['m'][0]), 'session-accept candidate %s, expected bob\'s SDP answer %s:%d'
          % (cand, answer['c'], answer['m'][0]))
    check_raw_transport(j, answer, 'session-accept')
    offered = payload_types(j)
    check([p for p, _, _ in offered] == answer['m'][1],
          'session-accept payload types %s, expected those of bob\'s answer %s' % (offered, answer['m'][1]))
    codec = pick_codec(offered)
    check(codec is not None, 'session-accept payload types %s: neither PCMU nor PCMA' % offered)
    await bob.message(call_id, r'^SIP/2\.0 180 ', sent=True)
    check_ringing(ep, sid, jm, bob, call_id)
    await media_both_ways(h, rtp, bob, call_id, cand, codec)
    return peer, call_id


# ---------------------------------------------------------------------------------------------
# scenarios: XMPP calls SIP

async def xmpp_calls_sip_answered(h):
    """alice -> bob*simple.test@sip.test (session-initiate to the bare JID): bob answers at once; accept with
    bob's media address; RTP both ways, direct; alice hangs up (session-terminate success) -> BYE, bob's call
    closes."""
    ep, bob, rtp = await h.endpoint(), await h.phone(BOB), await h.rtp()
    sid, to = new_sid('x2s'), sip_jid('bob')
    jm, km = ep.jingle_mark(), h.kamailio.mark()
    peer, call_id = await xmpp_call_answered(h, ep, rtp, sid, to, bob)
    bm = bob.mark()
    r = await ep.session_terminate(peer, sid, 'success')
    expect_result(r, peer, 'session-terminate')
    closed = await bob.expect_event('CALL_CLOSED', WAIT, start=bm, call_id=call_id)
    check(closed.get('param') == 'Connection reset by peer', 'bob\'s call closed with %r, expected the gateway\'s BYE'
          % closed.get('param'))
    await h.kamailio.expect(r'REQ BYE \S+ from %s[; ].* ci=%s ' % (re.escape(ALICE_SIP), re.escape(call_id)), 3, start=km)
    await h.barrier(ep)
    no_more_for(ep, sid, jm, ('session-info', 'session-accept'), 'after alice hung up')


async def xmpp_propose_calls_sip(h):
    """XEP-0353 first: alice sends <propose/> to bob*simple.test@sip.test, gets <proceed/> from
    bob*simple.test@sip.test/sip, then session-initiate to that full JID; bob answers; RTP both ways; bob
    hangs up (BYE) -> alice gets session-terminate with <success/>."""
    ep, bob, rtp = await h.endpoint(), await h.phone(BOB), await h.rtp()
    sid, to = new_sid('jmi'), sip_jid('bob')
    mm, jm = ep.message_mark(), ep.jingle_mark()
    ep.propose(to, sid)
    msg, _ = await until(ep.expect_jmi('proceed', sid, WAIT, mm), bounced(ep, 'jmi-propose-' + sid, mm))
    full = msg.get('from')
    check(full == to + '/sip', '<proceed/> from %r, expected %s/sip' % (full, to))
    peer, call_id = await xmpp_call_answered(h, ep, rtp, sid, full, bob)
    check(peer == full, 'session-accept from %r, expected %s (who sent <proceed/>)' % (peer, full))
    bm = bob.mark()
    await bob.command('hangup')
    iq, j = await ep.expect_jingle('session-terminate', sid, WAIT, jm)
    check(iq.get('from') == full, 'session-terminate from %r, expected %s' % (iq.get('from'), full))
    check(reason_of(j) == 'success', 'session-terminate reason %r, expected success: %s' % (reason_of(j), to_text(iq)))
    await bob.expect_event('CALL_CLOSED', WAIT, start=bm, call_id=call_id)
    await h.barrier(ep)
    no_more_for(ep, sid, jm, ('session-info', 'session-accept', 'session-terminate'), 'after bob hung up')


def check_ice_offer(offer, cands, ufrag, pwd, what):
    """The SDP offer made of an ICE-UDP transport: ice-ufrag / ice-pwd as given, an a=candidate line per
    candidate (in order, exactly as the gateway writes them), a=rtcp at the component-2 candidate; no DTLS."""
    lines = offer['lines']
    media = lines[next(i for i, l in enumerate(lines) if l.startswith('m=audio')):]
    for want in ('a=ice-ufrag:' + ufrag, 'a=ice-pwd:' + pwd):
        check(media.count(want) == 1, '%s: %r expected once in the audio section: %s' % (what, want, media))
    got = [l for l in lines if l.startswith('a=candidate')]
    check(got == [c.sdp for c in cands], '%s: candidate lines %s, expected %s' % (what, got, [c.sdp for c in cands]))
    rtcp = [l for l in lines if l.startswith('a=rtcp:')]
    check(rtcp == ['a=rtcp:%d' % cands[1].port], '%s: %s, expected a=rtcp:%d (the component-2 candidate)'
          % (what, rtcp, cands[1].port))
    dtls = [l for l in lines if l.startswith(('a=fingerprint', 'a=setup', 'a=rtcp-mux'))]
    check(not dtls, '%s: %s, but the offer had neither a fingerprint nor rtcp-mux' % (what, dtls))
    check('m=audio %d RTP/AVP 0 8' % cands[0].port in lines,
          '%s: m= line is not "m=audio %d RTP/AVP 0 8": %s' % (what, cands[0].port, lines))


async def ice_call(h, what, trickle):
    ep, bob, rtp = await h.endpoint(), await h.phone(BOB), await h.rtp()
    sid, to = new_sid(what), sip_jid('bob')
    ufrag, pwd = 'u%07x' % random.getrandbits(28), 'p%023x' % random.getrandbits(92)   # RFC 8445: >= 4 / 22 chars
    cands = ice_candidates(rtp.address)
    content = ice_content_xml([PCMU, PCMA], ufrag, pwd, [] if trickle else cands)
    jm, km = ep.jingle_mark(), h.kamailio.mark()
    peer, call_id = await xmpp_call_answered(
        h, ep, rtp, sid, to, bob, content=content,
        trickle=ice_transport_info_xml(ufrag, pwd, cands) if trickle else None,
        check_offer=lambda offer: check_ice_offer(offer, cands, ufrag, pwd, 'the INVITE\'s SDP offer at bob'))
    bm = bob.mark()
    r = await ep.session_terminate(peer, sid, 'success')
    expect_result(r, peer, 'session-terminate')
    await bob.expect_event('CALL_CLOSED', WAIT, start=bm, call_id=call_id)
    await h.kamailio.expect(r'REQ BYE \S+ from %s[; ].* ci=%s ' % (re.escape(ALICE_SIP), re.escape(call_id)), 3, start=km)
    await h.barrier(ep)
    no_more_for(ep, sid, jm, ('session-info', 'session-accept'), 'after alice hung up')


async def ice_udp_calls_sip(h):
    """alice -> bob*simple.test@sip.test with an ICE-UDP transport (ufrag, pwd, host candidates for RTP and
    RTCP on her ports; no DTLS fingerprint): bob's INVITE offer has c=/m= at her RTP candidate, a=rtcp at the
    RTCP one, a=ice-ufrag / a=ice-pwd and an a=candidate line per candidate; bob (no ICE) answers plain SDP,
    so the session-accept has a raw-udp transport with bob's address; RTP both ways, direct; alice hangs up."""
    await ice_call(h, 'ice', trickle=False)


async def ice_trickle_calls_sip(h):
    """Trickle ICE: alice's session-initiate has an ICE-UDP transport without candidates; they follow in a
    transport-info as soon as it is acknowledged: the gateway gathers them into the offer and sends the INVITE
    at once (not at the end of its 3 s wait): c=/m= at the trickled RTP candidate; accept, RTP as above."""
    await ice_call(h, 'trickle', trickle=True)


async def xmpp_call_refused(h, user, condition, status):
    """alice -> USER*simple.test@sip.test, a sipp UAS answering `status`: alice gets session-terminate with
    <condition/>; the UAS got the INVITE (From alice, her candidate in the SDP) and the ACK."""
    ep, uas, rtp = await h.endpoint(), await h.uas(user), await h.rtp()
    sid, to = new_sid(user), sip_jid(user)
    jm, tm = ep.jingle_mark(), uas.trace.mark()
    r = await ep.session_initiate(to, sid, [PCMU, PCMA], rtp.address)
    expect_result(r, to, 'session-initiate')
    inv = await uas.trace.expect(lambda m: True, WAIT, start=tm, what='the INVITE', method='INVITE')
    check(uri_only(inv.uri_of('from')) == ALICE_SIP, 'INVITE From %s, expected %s' % (inv.uri_of('from'), ALICE_SIP))
    check(inv.request_uri.startswith('sip:%s@' % user), 'INVITE Request-URI %s' % inv.request_uri)
    body = inv.body.decode(errors='replace')
    check('c=IN IP4 127.0.0.1' in body and re.search(r'(?m)^m=audio %d RTP/AVP 0 8\r?$' % rtp.port, body),
          'INVITE SDP does not offer 127.0.0.1:%d with 0 8: %r' % (rtp.port, body))
    iq, j = await ep.expect_jingle('session-terminate', sid, WAIT, jm)
    check(bare(iq.get('from')) == to, 'session-terminate from %r, expected %s' % (iq.get('from'), to))
    check(reason_of(j) == condition, 'session-terminate reason %r, expected %s: %s' % (reason_of(j), condition, to_text(iq)))
    await uas.trace.expect_msg(lambda m: m.direction == 'sent' and m.status == status and m.call_id == inv.call_id,
                               3, start=tm, what='the %d sent' % status)
    await uas.trace.expect(lambda m: m.call_id == inv.call_id, WAIT, start=tm, what='the ACK for the %d' % status,
                           method='ACK')
    await h.barrier(ep)
    no_more_for(ep, sid, jm, ('session-info', 'session-terminate'), 'after the %d' % status)


async def xmpp_calls_busy(h):
    """alice -> busy*simple.test@sip.test (sipp answers 486): session-terminate with <busy/>."""
    await xmpp_call_refused(h, 'busy', 'busy', 486)


async def xmpp_calls_decline(h):
    """alice -> decline*simple.test@sip.test (sipp answers 603): session-terminate with <decline/>."""
    await xmpp_call_refused(h, 'decline', 'decline', 603)


async def xmpp_cancel_before_answer(h):
    """alice -> ringing*simple.test@sip.test (sipp rings, never answers): session-info <ringing/>; alice sends
    session-terminate <cancel/>: the UAS gets a CANCEL for the INVITE, answers it 200 and the INVITE 487, and
    gets the ACK; alice gets nothing more for the session."""
    ep, uas, rtp = await h.endpoint(), await h.uas('ringing'), await h.rtp()
    sid, to = new_sid('cancel'), sip_jid('ringing')
    jm, tm, km = ep.jingle_mark(), uas.trace.mark(), h.kamailio.mark()
    r = await ep.session_initiate(to, sid, [PCMU, PCMA], rtp.address)
    expect_result(r, to, 'session-initiate')
    iq, j = await ep.expect_jingle('session-info', sid, WAIT, jm)
    check(child(j, NS_RTP_INFO, 'ringing') is not None, 'session-info without <ringing/>: %s' % to_text(iq))
    check(bare(iq.get('from')) == to, 'session-info from %r, expected %s' % (iq.get('from'), to))
    inv = await uas.trace.expect(lambda m: True, 1, start=tm, what='the INVITE', method='INVITE')
    r = await ep.session_terminate(iq.get('from'), sid, 'cancel')
    expect_result(r, iq.get('from'), 'session-terminate <cancel/>')
    await uas.trace.expect(lambda m: m.call_id == inv.call_id, WAIT, start=tm, what='the CANCEL', method='CANCEL')
    await uas.trace.expect_msg(lambda m: m.direction == 'sent' and m.status == 487 and m.call_id == inv.call_id,
                               3, start=tm, what='the 487 sent')
    await uas.trace.expect(lambda m: m.call_id == inv.call_id, WAIT, start=tm, what='the ACK for the 487', method='ACK')
    # the gateway got the 487 (Kamailio relayed it) and ACKed it (hop by hop, to Kamailio)
    await h.kamailio.expect(r'REQ ACK \S+ from %s[; ].* ci=%s ' % (re.escape(ALICE_SIP), re.escape(inv.call_id)), 5, start=km)
    await h.barrier(ep)
    no_more_for(ep, sid, jm, ('session-info',), 'after alice cancelled')


# ---------------------------------------------------------------------------------------------
# scenarios: SIP calls XMPP

async def carol_dials_alice(h, ep, carol):
    """carol dials alice; alice gets <propose/> from carol*simple.test@sip.test/RESOURCE addressed to her bare
    JID. Returns (the propose's sender, its id, carol's Call-ID)."""
    mm, cm, tmk = ep.message_mark(), carol.mark(), carol.trace_mark()
    await carol.command('dial', ALICE_SIP)
    call_id = await carol.sent_invite(tmk)
    msg, prop = await until(ep.expect_jmi('propose', None, WAIT, mm, sender_bare=sip_jid('carol')),
                            call_closed(carol, call_id, cm))
    full, sid = msg.get('from'), prop.get('id')
    check('/' in full and full.split('/', 1)[1], '<propose/> from %r: not a full JID' % full)
    check(sid, '<propose/> without an id: %s' % to_text(msg))
    # addressed to her bare JID: the gateway's own log of what it sent says so (jabberd2 delivers a message
    # for a bare JID with 'to' rewritten to the full JID, so what alice got cannot tell)
    check(msg.get('to') in (ALICE, ep.full), '<propose/> delivered with to=%r' % msg.get('to'))
    await h.xsgw.expect(r'>> <message\b(?=[^>]*\bto=["\']%s["\'])[^>]*>.*<propose\b[^>]*\bid=["\']%s["\']'
                        % (re.escape(ALICE), re.escape(sid)), 3)
    d = child(prop, NS_RTP, 'description')
    check(d is not None and d.get('media') == 'audio', '<propose/> without <description xmlns=%r media="audio"/>: %s'
          % (NS_RTP, to_text(msg)))
    closed = [e for e in carol.events_of(call_id, cm) if e.get('type') == 'CALL_CLOSED']
    check(not closed, 'carol\'s call closed already: %s' % closed)
    return full, sid, call_id


async def sip_call_answered(h, ep, carol, rtp):
    """carol dials alice: propose -> proceed -> session-initiate (carol's candidates and payload types) ->
    accept with alice's candidate and PCMU -> 200 with that SDP answer; RTP both ways.
    Returns (the contact's full JID, sid, carol's Call-ID, the endpoint's jingle mark before the call)."""
    jm = ep.jingle_mark()
    full, sid, call_id = await carol_dials_alice(h, ep, carol)
    cm = carol.mark()
    ep.proceed(full, sid)
    iq, j = await until(ep.expect_jingle('session-initiate', sid, WAIT, jm), call_closed(carol, call_id, cm))
    check(iq.get('from') == full, 'session-initiate from %r, expected %s (who sent <propose/>)' % (iq.get('from'), full))
    check(iq.get('to') == ep.full, 'session-initiate to %r, expected %s (who sent <proceed/>)' % (iq.get('to'), ep.full))
    check(j.get('initiator') == full, 'session-initiate initiator=%r, expected %s' % (j.get('initiator'), full))
    offer = await carol.sdp(call_id, r'^INVITE ', sent=True)
    check(offer is not None, 'carol\'s INVITE SDP is not in her trace (%s)' % carol.run_log.path)
    cand = rtp_candidate(j)
    check(cand == (offer['c'], offer['m'][0]), 'session-initiate candidate %s, expected carol\'s SDP %s:%d'
          % (cand, offer['c'], offer['m'][0]))
    check_raw_transport(j, offer, 'session-initiate')
    offered = payload_types(j)
    want = [(pt, *offer.get('rtpmap', {}).get(pt, (None, None))) for pt in offer['m'][1]]
    check(want and [(p, (n or '').lower(), r) for p, n, r in offered] == [(p, (n or '').lower(), r) for p, n, r in want],
          'session-initiate payload types %s, expected carol\'s offer %s' % (offered, want))
    codec = pick_codec(offered)
    check(codec is not None, 'session-initiate payload types %s: neither PCMU nor PCMA' % offered)
    r = await ep.session_accept(full, sid, full, [codec], rtp.address)
    expect_result(r, full, 'session-accept')
    await until(carol.expect_event('CALL_ESTABLISHED', WAIT, start=cm, call_id=call_id), call_closed(carol, call_id, cm),
                terminated(ep, sid, jm))
    answer = await carol.sdp(call_id, r'^SIP/2\.0 200 ', sent=False)
    check_sdp_media(answer, '127.0.0.1', rtp.port, [codec[0]], 'the 200\'s SDP answer at carol')
    check_no_ice(answer, 'the 200\'s SDP answer at carol')
    await media_both_ways(h, rtp, carol, call_id, cand, codec)
    return full, sid, call_id, jm


async def sip_calls_xmpp_answered(h):
    """carol dials sip:alice*xmpp.test@sip.test: propose -> proceed -> session-initiate (carol's candidate and
    payload types) -> accept with alice's candidate and PCMU -> 200 with that SDP answer; RTP both ways;
    carol hangs up -> alice gets session-terminate <success/>."""
    ep, carol, rtp = await h.endpoint(), await h.phone(CAROL), await h.rtp()
    full, sid, call_id, jm = await sip_call_answered(h, ep, carol, rtp)
    cm = carol.mark()
    await carol.command('hangup')
    iq, j = await ep.expect_jingle('session-terminate', sid, WAIT, jm)
    check(iq.get('from') == full, 'session-terminate from %r, expected %s' % (iq.get('from'), full))
    check(reason_of(j) == 'success', 'session-terminate reason %r, expected success: %s' % (reason_of(j), to_text(iq)))
    await carol.expect_event('CALL_CLOSED', WAIT, start=cm, call_id=call_id)
    await h.barrier(ep)
    no_more_for(ep, sid, jm, ('session-initiate', 'session-terminate'), 'after carol hung up')


async def sip_calls_xmpp_xmpp_hangs_up(h):
    """carol dials alice, alice answers, RTP both ways; then alice hangs up (session-terminate <success/>):
    the gateway acknowledges it and sends carol a BYE (through Kamailio, from alice's SIP address, for carol's
    Call-ID), which carol answers 200: her call closes as hung up by the peer."""
    ep, carol, rtp = await h.endpoint(), await h.phone(CAROL), await h.rtp()
    full, sid, call_id, jm = await sip_call_answered(h, ep, carol, rtp)
    cm, km = carol.mark(), h.kamailio.mark()
    r = await ep.session_terminate(full, sid, 'success')
    expect_result(r, full, 'session-terminate <success/>')
    closed = await carol.expect_event('CALL_CLOSED', WAIT, start=cm, call_id=call_id)
    check(closed.get('param') == 'Connection reset by peer', 'carol\'s call closed with %r, expected the peer\'s BYE '
          '(\'Connection reset by peer\')' % closed.get('param'))
    await h.kamailio.expect(r'REQ BYE \S+ from %s[;> ].*\(src 127\.0\.0\.1:%d/udp\) ci=%s '
                            % (re.escape(ALICE_SIP), GATEWAY[1], re.escape(call_id)), 3, start=km)
    await h.kamailio.expect(r'REPLY 200 \S+ for BYE ci=%s ' % re.escape(call_id), 3, start=km)
    await carol.message(call_id, r'^BYE ', sent=False)
    await h.barrier(ep)
    no_more_for(ep, sid, jm, ('session-initiate',), 'after alice hung up')


async def sip_calls_xmpp_no_answer(h):
    """carol dials alice, whose endpoint lets <propose/> ring unanswered: after [calls] answer_timeout
    (ANSWER_TIMEOUT s here) the gateway sends <retract/> for the propose's id, from the same full JID, with
    <reason><timeout/></reason>, and answers carol's INVITE 480 (after a 180: carol heard ringing)."""
    ep, carol = await h.endpoint(), await h.phone(CAROL)
    jm, km, mm = ep.jingle_mark(), h.kamailio.mark(), ep.message_mark()
    full, sid, call_id = await carol_dials_alice(h, ep, carol)
    _, proposed, _ = await h.xsgw.expect(r'>> <message\b[^>]*>.*<propose\b[^>]*\bid=["\']%s["\']' % re.escape(sid), 1)
    await carol.expect_event('CALL_RINGING', WAIT, call_id=call_id)
    msg, retract = await ep.expect_jmi('retract', sid, ANSWER_TIMEOUT + WAIT, mm, sender=full)
    _, retracted, _ = await h.xsgw.expect(r'>> <message\b[^>]*>.*<retract\b[^>]*\bid=["\']%s["\']' % re.escape(sid), 1)
    took = retracted - proposed
    h.log('retract sent %.2fs after the propose' % took)
    check(ANSWER_TIMEOUT - 0.3 <= took <= ANSWER_TIMEOUT + 1.5, '<retract/> sent %.2fs after the <propose/>, expected '
          'after answer_timeout = %d s' % (took, ANSWER_TIMEOUT))
    check(reason_of(retract) == 'timeout', '<retract/> reason %r, expected timeout: %s' % (reason_of(retract), to_text(msg)))
    await h.kamailio.expect(r'REPLY 480 .* for INVITE ci=%s ' % re.escape(call_id), WAIT, start=km)
    closed = await carol.expect_event('CALL_CLOSED', WAIT, call_id=call_id)
    check((closed.get('param') or '').startswith('480 '), 'carol\'s call closed with %r, expected 480' % closed.get('param'))
    await h.barrier(ep)
    no_more_for(ep, sid, jm, (), 'after the answer timeout')
    kinds = [k for k, _ in ep.jmi_for(sid, mm)]
    check(kinds == ['propose', 'retract'], 'XEP-0353 messages for %s: %s, expected propose then retract' % (sid, kinds))


async def sip_call_rejected(h, condition, status):
    ep, carol = await h.endpoint(), await h.phone(CAROL)
    jm, km = ep.jingle_mark(), h.kamailio.mark()
    full, sid, call_id = await carol_dials_alice(h, ep, carol)
    ep.reject(full, sid, condition)
    await h.kamailio.expect(r'REPLY %d .* for INVITE ci=%s ' % (status, re.escape(call_id)), WAIT, start=km)
    closed = await carol.expect_event('CALL_CLOSED', WAIT, call_id=call_id)
    check((closed.get('param') or '').startswith('%d ' % status), 'carol\'s call closed with %r, expected %d'
          % (closed.get('param'), status))
    await h.barrier(ep)
    no_more_for(ep, sid, jm, (), 'after alice rejected')
    kinds = [k for k, _ in ep.jmi_for(sid)]
    check(kinds == ['propose'], 'XEP-0353 messages for %s: %s, expected only the propose (no retract after a '
          'reject)' % (sid, kinds))


async def sip_calls_xmpp_rejected(h):
    """carol dials alice; alice answers <propose/> with <reject/> (no reason): the gateway answers 603
    (Kamailio relays a 603 for carol's INVITE), carol's call closes, no session-initiate comes."""
    await sip_call_rejected(h, None, 603)


async def sip_calls_xmpp_busy(h):
    """carol dials alice; alice answers <reject/> with <reason><busy/></reason>: 486 reaches carol."""
    await sip_call_rejected(h, 'busy', 486)


async def sip_cancel_before_answer(h):
    """carol dials alice and hangs up before alice answers <propose/>: the CANCEL makes the gateway send
    <retract/> with the propose's id from the same full JID, and answer the INVITE 487."""
    ep, carol = await h.endpoint(), await h.phone(CAROL)
    jm, km, mm = ep.jingle_mark(), h.kamailio.mark(), ep.message_mark()
    full, sid, call_id = await carol_dials_alice(h, ep, carol)
    cm = carol.mark()
    await carol.command('hangup')
    await h.kamailio.expect(r'REQ CANCEL \S+ .* ci=%s ' % re.escape(call_id), WAIT, start=km)
    msg, retract = await ep.expect_jmi('retract', sid, WAIT, mm, sender=full)
    check(reason_of(retract) == 'cancel', '<retract/> reason %r, expected cancel: %s' % (reason_of(retract), to_text(msg)))
    await h.kamailio.expect(r'REPLY 487 .* for INVITE ci=%s ' % re.escape(call_id), WAIT, start=km)
    await carol.expect_event('CALL_CLOSED', WAIT, start=cm, call_id=call_id)
    await h.barrier(ep)
    no_more_for(ep, sid, jm, (), 'after carol cancelled')
    kinds = [k for k, _ in ep.jmi_for(sid, mm)]
    check(kinds == ['propose', 'retract'], 'XEP-0353 messages for %s: %s, expected propose then retract' % (sid, kinds))


async def unsupported_codecs(h):
    """A sipp UAC (uac@simple.test, through Kamailio) offers only payload type 96 X-NOTHING/8000: alice gets
    <propose/>, proceeds, gets session-initiate with exactly that payload type, acknowledges it and ends the
    session with <unsupported-applications/>: the UAC gets 488."""
    ep = await h.endpoint()
    mm, jm = ep.message_mark(), ep.jingle_mark()
    run = await h.peers.uac_start('uac_invite_unsupported.xml', '%s:%d' % h.peers_kamailio(), None,
                                  name='unsupported', within=20, ruri=ALICE_SIP, **{'from': 'sip:uac@simple.test'},
                                  to=ALICE_SIP, rtp_port='20998')
    try:
        msg, prop = await until(ep.expect_jmi('propose', None, WAIT, mm, sender_bare=sip_jid('uac')), uac_ended(run))
        full, sid = msg.get('from'), prop.get('id')
        ep.proceed(full, sid)
        iq, j = await until(ep.expect_jingle('session-initiate', sid, WAIT, jm), uac_ended(run))
        offered = payload_types(j)
        check([(p, (n or '').upper(), r) for p, n, r in offered] == [(96, 'X-NOTHING', 8000)],
              'session-initiate payload types %s, expected only (96, X-NOTHING, 8000)' % offered)
        check(pick_codec(offered) is None, 'the endpoint knows %s?' % offered)
        r = await ep.session_terminate(iq.get('from'), sid, 'unsupported-applications')
        expect_result(r, iq.get('from'), 'session-terminate <unsupported-applications/>')
        res = await run.wait()
    finally:
        await run.kill()
    check(res.status == 488, 'the UAC got %s, expected 488 (trace %s)' % (res.final.start if res.final else 'no final response',
                                                                          res.trace_path))
    check(res.rc == 0, 'sipp UAC exit status %d (see %s)' % (res.rc, res.out_path))
    await h.barrier(ep)
    no_more_for(ep, sid, jm, ('session-initiate',), 'after alice refused the codec')


async def sigterm_ends_calls(h):
    """The last scenario (xsgw is gone after it): an answered call each way (alice -> bob, carol -> alice),
    then SIGTERM: alice gets session-terminate <general-error/> for both sessions, bob and carol a BYE with
    Reason: SIP;cause=503 (their calls close as hung up by the peer), and xsgw exits 0."""
    ep, bob, carol = await h.endpoint(), await h.phone(BOB), await h.phone(CAROL)
    rtp_out, rtp_in = await h.rtp('alice-out'), await h.rtp('alice-in')
    sid_out, to = new_sid('term-out'), sip_jid('bob')
    jm_out = ep.jingle_mark()
    peer_out, call_out = await xmpp_call_answered(h, ep, rtp_out, sid_out, to, bob)
    peer_in, sid_in, call_in, jm_in = await sip_call_answered(h, ep, carol, rtp_in)
    bm, cm, km, xm = bob.mark(), carol.mark(), h.kamailio.mark(), h.xsgw.mark()
    t0 = time.monotonic()
    h.xsgw.send_signal(signal.SIGTERM)
    for sid, peer, jm in ((sid_out, peer_out, jm_out), (sid_in, peer_in, jm_in)):
        iq, j = await ep.expect_jingle('session-terminate', sid, WAIT, jm)
        check(iq.get('from') == peer, 'session-terminate from %r, expected %s' % (iq.get('from'), peer))
        check(reason_of(j) == 'general-error', 'session-terminate reason %r, expected general-error: %s'
              % (reason_of(j), to_text(iq)))
    for phone, call_id, mark in ((bob, call_out, bm), (carol, call_in, cm)):
        closed = await phone.expect_event('CALL_CLOSED', WAIT, start=mark, call_id=call_id)
        check(closed.get('param') == 'Connection reset by peer', '%s\'s call closed with %r, expected the gateway\'s BYE'
              % (phone.name, closed.get('param')))
        await h.kamailio.expect(r'REQ BYE \S+ .*\(src 127\.0\.0\.1:%d/udp\) ci=%s ' % (GATEWAY[1], re.escape(call_id)),
                                3, start=km)
        bye = await phone.message(call_id, r'^BYE ', sent=False)
        reason = [l for l in bye if re.match(r'^Reason\s*:', l, re.I)]
        check(len(reason) == 1 and re.match(r'^Reason\s*:\s*SIP\s*;\s*cause=503\b', reason[0], re.I),
              '%s got a BYE with Reason %s, expected SIP;cause=503' % (phone.name, reason or 'none'))
    rc = await h.xsgw.wait_exit(10)
    check(rc == 0, 'xsgw exit status %s after SIGTERM (expected 0; log %s)' % (
        'none: still running 10 s on' if rc is None else rc, h.xsgw.log_path))
    h.log('xsgw exited %.2fs after SIGTERM' % (time.monotonic() - t0))
    h.xsgw.expect_none(r'^\S+ \S+ (error|critical) ', 'xsgw logged an error while stopping', start=xm)
    for sid, jm, allowed in ((sid_out, jm_out, ('session-info', 'session-accept', 'session-terminate')),
                             (sid_in, jm_in, ('session-initiate', 'session-terminate'))):
        no_more_for(ep, sid, jm, allowed, 'after SIGTERM')


SCENARIOS = [xmpp_calls_sip_answered, xmpp_propose_calls_sip, xmpp_calls_busy, xmpp_calls_decline,
             xmpp_cancel_before_answer, ice_udp_calls_sip, ice_trickle_calls_sip, sip_calls_xmpp_answered,
             sip_calls_xmpp_xmpp_hangs_up, sip_calls_xmpp_rejected, sip_calls_xmpp_busy, sip_cancel_before_answer,
             sip_calls_xmpp_no_answer, unsupported_codecs, sigterm_ends_calls]


# ---------------------------------------------------------------------------------------------
# --selfcheck: the peers and the harness's own pieces, without xsgw

async def sc_jingle_between_endpoints(h):
    """alice and bob (two endpoints, through the real XMPP server): propose -> proceed -> session-initiate ->
    accept -> RTP both ways between their own ports -> session-terminate success."""
    a, b = await h.endpoint('alice'), await h.endpoint('bob')
    ra, rb = await h.rtp('alice'), await h.rtp('bob')
    sid = new_sid('selfcheck')
    mb, jb, ja = b.message_mark(), b.jingle_mark(), a.jingle_mark()
    ma = a.message_mark()
    a.propose(b.boundjid.bare, sid)
    msg, _ = await b.expect_jmi('propose', sid, WAIT, mb, sender=a.full)
    # sent to the bare JID; jabberd2 delivers it with its 'to' rewritten to the full JID
    check(msg.get('to') in (b.boundjid.bare, b.full), 'propose to %r' % msg.get('to'))
    b.proceed(a.full, sid)
    msg, _ = await a.expect_jmi('proceed', sid, WAIT, ma, sender=b.full)
    r = await a.session_initiate(b.full, sid, [PCMU, PCMA], ra.address)
    expect_result(r, b.full, 'session-initiate')
    iq, j = await b.expect_jingle('session-initiate', sid, WAIT, jb, sender=a.full)
    check(rtp_candidate(j) == ra.address, 'candidate %s' % (rtp_candidate(j),))
    check(payload_types(j) == [PCMU, PCMA], 'payload types %s' % payload_types(j))
    codec = pick_codec(payload_types(j))
    r = await b.session_accept(a.full, sid, a.full, [codec], rb.address)
    expect_result(r, a.full, 'session-accept')
    iq, j = await a.expect_jingle('session-accept', sid, WAIT, ja, sender=b.full)
    check(rtp_candidate(j) == rb.address and payload_types(j) == [PCMU], 'accept: %s' % to_text(iq))
    ma0, mb0 = ra.mark(), rb.mark()
    ra.start_sending(rb.address, 0)
    rb.start_sending(ra.address, 0)
    ga = await ra.expect_packets(MEDIA_PACKETS, 5, ma0, source=rb.address)
    gb = await rb.expect_packets(MEDIA_PACKETS, 5, mb0, source=ra.address)
    check(ra.sources(ma0).keys() == {rb.address} and rb.sources(mb0).keys() == {ra.address}, 'stray RTP sources')
    check({p.pt for p in ga + gb} == {0} and {p.payload_len for p in ga + gb} == {160}, 'RTP format')
    ra.stop_sending()
    rb.stop_sending()
    r = await a.session_terminate(b.full, sid, 'success')
    expect_result(r, b.full, 'session-terminate')
    iq, j = await b.expect_jingle('session-terminate', sid, WAIT, jb)
    check(reason_of(j) == 'success', 'reason %r' % reason_of(j))
    print('# selfcheck: jingle over %s: %d+%d RTP packets each way' % (h.server.name, len(ga), len(gb)), flush=True)


async def sc_baresip_answers_endpoint_rtp(h):
    """A sipp UAC whose SDP offer points at the endpoint's RTP port calls bob through Kamailio; bob answers at
    once; RTP both ways between bob and the endpoint's port (checked as the scenarios check it), and bob
    reports RTP established only once the endpoint sends; bob hangs up: the UAC gets the BYE."""
    bob, rtp = await h.phone(BOB), await h.rtp('endpoint')
    bm = bob.mark()
    run = await h.peers.uac_start('uac_invite_answered.xml', '%s:%d' % h.peers_kamailio(), None, name='answered',
                                  within=20, ruri='sip:bob@simple.test', **{'from': 'sip:selfcheck@simple.test'},
                                  to='sip:bob@simple.test', rtp_port=str(rtp.port))
    try:
        est = await bob.expect_event('CALL_ESTABLISHED', WAIT, start=bm)
        call_id = est['id']
        check_sdp_media(await bob.sdp(call_id, r'^INVITE ', sent=False), '127.0.0.1', rtp.port, [0, 8], 'offer at bob')
        ok = await run.trace.expect_msg(lambda m: m.direction == 'received' and m.status == 200, WAIT, what='the 200')
        body = ok[1].body.decode()
        c = re.search(r'(?m)^c=IN IP4 (\S+)', body).group(1)
        port = int(re.search(r'(?m)^m=audio (\d+)', body).group(1))
        answer = await bob.sdp(call_id, r'^SIP/2\.0 200 ', sent=True)
        check(answer['c'] == c and answer['m'][0] == port, 'bob\'s trace %s vs the 200 at sipp %s:%d' % (answer, c, port))
        # RTP from bob arrives before the endpoint sends anything: bob must not claim RTP established yet
        await rtp.expect_packets(10, 5, source=(c, port))
        check(not [e for e in bob.events_of(call_id) if e.get('type') == 'CALL_RTPESTAB'],
              'bob reports RTP established before the endpoint sent any')
        await media_both_ways(h, rtp, bob, call_id, (c, port), (0, 'PCMU', 8000))
        bm = bob.mark()
        await bob.command('hangup')
        await bob.expect_event('CALL_CLOSED', WAIT, start=bm, call_id=call_id)
        res = await run.wait()
    finally:
        await run.kill()
    check(res.rc == 0, 'sipp UAC exit %d (see %s)' % (res.rc, res.out_path))
    byes = [m for m in res.messages if m.method == 'BYE' and m.direction == 'received']
    check(byes, 'the UAC got no BYE')
    print('# selfcheck: baresip <-> endpoint RTP: %d packets from baresip %s:%d, %d sent to it'
          % (len(rtp.packets), c, port, rtp.sent), flush=True)


async def sc_baresip_calls_baresip(h):
    """carol dials bob through Kamailio: both established, RTP established both ways, each phone's RTP comes
    from the media address in the other's SDP; carol hangs up: bob's call closes."""
    bob, carol = await h.phone(BOB), await h.phone(CAROL)
    bm, cm, tmk = bob.mark(), carol.mark(), carol.trace_mark()
    bl, cl = bob.log_mark(), carol.log_mark()
    await carol.command('dial', 'sip:bob@simple.test')
    call_id = await carol.sent_invite(tmk)
    await carol.expect_event('CALL_ESTABLISHED', WAIT, start=cm, call_id=call_id)
    await bob.expect_event('CALL_ESTABLISHED', WAIT, start=bm, call_id=call_id)
    await carol.expect_event('CALL_RTPESTAB', WAIT, start=cm, call_id=call_id)
    await bob.expect_event('CALL_RTPESTAB', WAIT, start=bm, call_id=call_id)
    offer, answer = await carol.sdp(call_id, r'^INVITE ', sent=True), await bob.sdp(call_id, r'^SIP/2\.0 200 ', sent=True)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and not (bob.rtp_from(bl) and carol.rtp_from(cl)):
        await asyncio.sleep(0.05)
    check(bob.rtp_from(bl) == [(offer['c'], offer['m'][0])], 'bob got RTP from %s, carol offered %s'
          % (bob.rtp_from(bl), offer))
    check(carol.rtp_from(cl) == [(answer['c'], answer['m'][0])], 'carol got RTP from %s, bob answered %s'
          % (carol.rtp_from(cl), answer))
    bm = bob.mark()
    await carol.command('hangup')
    await bob.expect_event('CALL_CLOSED', WAIT, start=bm, call_id=call_id)
    print('# selfcheck: carol %s:%d <-> bob %s:%d' % (offer['c'], offer['m'][0], answer['c'], answer['m'][0]), flush=True)


async def sc_sipp_uases(h):
    """carol dials busy@, decline@ (closed with 486 / 603 relayed by Kamailio) and ringing@ simple.test (ringing;
    her hangup CANCELs: the UAS answers 487 and gets the ACK)."""
    carol = await h.phone(CAROL)
    for user, status in (('busy', 486), ('decline', 603)):
        uas = await h.uas(user)
        cm, tmk, km = carol.mark(), carol.trace_mark(), h.kamailio.mark()
        await carol.command('dial', 'sip:%s@simple.test' % user)
        call_id = await carol.sent_invite(tmk)
        closed = await carol.expect_event('CALL_CLOSED', WAIT, start=cm, call_id=call_id)
        await h.kamailio.expect(r'REPLY %d .* for INVITE ci=%s ' % (status, re.escape(call_id)), 3, start=km)
        await uas.trace.expect(lambda m: m.call_id == call_id, WAIT, what='the ACK', method='ACK')
        print('# selfcheck: %s@simple.test: carol closed with %r' % (user, closed.get('param')), flush=True)
    uas = await h.uas('ringing')
    cm, tmk, tm = carol.mark(), carol.trace_mark(), uas.trace.mark()
    await carol.command('dial', 'sip:ringing@simple.test')
    call_id = await carol.sent_invite(tmk)
    await carol.expect_event('CALL_RINGING', WAIT, start=cm, call_id=call_id)
    await carol.command('hangup')
    await uas.trace.expect(lambda m: m.call_id == call_id, WAIT, start=tm, what='the CANCEL', method='CANCEL')
    await uas.trace.expect_msg(lambda m: m.direction == 'sent' and m.status == 487 and m.call_id == call_id, 3, start=tm,
                               what='the 487')
    await uas.trace.expect(lambda m: m.call_id == call_id, WAIT, start=tm, what='the ACK for the 487', method='ACK')
    await carol.expect_event('CALL_CLOSED', WAIT, start=cm, call_id=call_id)


SELFCHECKS = [sc_jingle_between_endpoints, sc_baresip_answers_endpoint_rtp, sc_baresip_calls_baresip, sc_sipp_uases]


# ---------------------------------------------------------------------------------------------

def non_loopback_packets():
    """Packets counted on every interface but lo (rx + tx), from /proc/net/dev."""
    total = 0
    with open('/proc/net/dev') as f:
        for line in f.readlines()[2:]:
            name, data = line.split(':', 1)
            if name.strip() != 'lo':
                v = data.split()
                total += int(v[1]) + int(v[9])
    return total


async def run(args):
    pool = SELFCHECKS if args.selfcheck else SCENARIOS
    selected = [s for s in pool if not args.scenario or s.__name__ in args.scenario]
    h = Harness(args)
    h.prepare_workdir()
    failed = []
    interrupted = False
    t0 = time.monotonic()
    net0 = non_loopback_packets()
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        setup_error = None
        try:
            await h.setup()
        except (Fail, SipError, ClientError) as e:
            setup_error = str(e)
        for scenario in selected:
            name = scenario.__name__
            h.log('=== %s' % name)

            async def body(scenario=scenario):
                if setup_error:
                    raise Fail('setup: %s' % setup_error)
                if h.xsgw is not None and not h.xsgw.running:
                    raise Fail('xsgw is not running (exit status %s; log %s)' % (h.xsgw.rc, h.xsgw.log_path))
                try:
                    await asyncio.wait_for(scenario(h), SCENARIO_DEADLINE)
                finally:
                    await h.end_of_scenario()

            if not await run_scenario(h.log, name, body, SCENARIO_DEADLINE, (Fail, SipError, ClientError)):
                failed.append(name)
    except asyncio.CancelledError:
        interrupted = True
        print('# interrupted: stopping everything', flush=True)
    finally:
        await h.teardown()
        print('# %s: %d scenario(s), %d failed, %.1fs in all; packets on non-loopback interfaces meanwhile '
              '(anything on the machine): %d' % (args.server, len(selected), len(failed), time.monotonic() - t0,
                                                 non_loopback_packets() - net0), flush=True)
        if failed or interrupted:
            print('# logs:', flush=True)
            for p in h.log_paths():
                print('#   %s' % p, flush=True)
    return 1 if failed or interrupted else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--xsgw', help='path of the xsgw binary under test (not with --selfcheck)')
    p.add_argument('--server', choices=('jabberd2', 'prosody', 'ejabberd'))
    p.add_argument('--workdir', help='configs, logs and peer state go here')
    p.add_argument('--scenario', nargs='+', action='extend', metavar='NAME', help='run only these (in the fixed order)')
    p.add_argument('--selfcheck', action='store_true',
                   help='check the peers and the harness without xsgw: Jingle between two endpoints, baresip '
                        'calls with RTP to the endpoint\'s port, the sipp UASes')
    p.add_argument('--list', action='store_true', help='print the scenario names and exit')
    args = p.parse_args()
    pool = SELFCHECKS if args.selfcheck else SCENARIOS
    names = [s.__name__ for s in pool]
    if args.list:
        print('\n'.join(names))
        return 0
    for required in ('server', 'workdir') + (() if args.selfcheck else ('xsgw',)):
        if getattr(args, required) is None:
            p.error('--%s is required' % required)
    unknown = set(args.scenario or []) - set(names)
    if unknown:
        p.error('unknown scenario(s): %s (known: %s)' % (', '.join(sorted(unknown)), ', '.join(names)))
    if args.xsgw:
        args.xsgw = os.path.abspath(args.xsgw)
    return asyncio.run(run(args))


if __name__ == '__main__':
    sys.exit(main())
