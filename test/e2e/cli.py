#!/usr/bin/python3
"""The real xsgw binary's command line: --version, --help, --check-config on good and bad
configs (exit status 2 and one line naming file, key and problem; the secret never shown),
and SIGHUP re-reading the log level while running (no XMPP server needed: the link just
keeps retrying a port nobody listens on).

usage: cli.py --xsgw PATH --workdir DIR"""
import argparse
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time

SECRET = 'cli-secret-0123456789'
GOOD = """[xmpp]
component = "sip.test"
host = "127.0.0.1"
port = %(port)d
secret = "%(secret)s"
reconnect_min = 1000
reconnect_max = 1000
[sip]
domain = "xmpp.test"
listen = "sip:127.0.0.1:5090"
[log]
level = "%(level)s"
"""

failures = []


def check(cond, what):
    print(('PASS ' if cond else 'FAIL ') + what)
    if not cond:
        failures.append(what)


def write(path, text, mode=0o600):
    if os.path.exists(path):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    os.chmod(path, mode)  # umask may have narrowed it


def unused_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def good(level='info', port=5347):
    return GOOD % {'port': port, 'secret': SECRET, 'level': level}


def run(xsgw, *args):
    p = subprocess.run([xsgw, *args], capture_output=True, text=True, timeout=10)
    return p.returncode, p.stdout, p.stderr


def bad_configs(work):
    """(name, text, mode, key expected in the message)"""
    unreadable = os.path.join(work, 'no-such-secret')
    return [
        ('missing_component', good().replace('component = "sip.test"\n', ''), 0o600, 'xmpp.component'),
        ('missing_domain', good().replace('domain = "xmpp.test"\n', ''), 0o600, 'sip.domain'),
        ('unknown_key', good().replace('[log]\n', '[log]\ncolour = "blue"\n'), 0o600, 'log.colour'),
        ('unknown_table', good() + '[extra]\nx = 1\n', 0o600, 'extra'),
        ('wrong_type', good().replace('port = 5347', 'port = "5347"'), 0o600, 'xmpp.port'),
        ('bad_url', good().replace('sip:127.0.0.1:5090', 'http://127.0.0.1:5090'), 0o600, 'sip.listen'),
        ('bad_level', good().replace('level = "info"', 'level = "loud"'), 0o600, 'log.level'),
        ('unreadable_secret_file',
         good().replace('secret = "%s"' % SECRET, 'secret_file = "%s"' % unreadable), 0o600, 'xmpp.secret_file'),
        ('world_readable_secret', good(), 0o644, 'xmpp.secret'),
        ('syntax_error', good().replace('[sip]', '[sip'), 0o600, ''),
    ]


def test_static(xsgw, work):
    rc, out, err = run(xsgw, '--version')
    check(rc == 0 and out.startswith('xsgw '), 'version: exit 0, prints "xsgw VERSION" (%r)' % out.strip())
    rc, out, err = run(xsgw, '--help')
    check(rc == 0 and '--check-config' in out and '-c' in out, 'help: exit 0, lists the options')
    rc, out, err = run(xsgw, '--no-such-option')
    check(rc == 2, 'unknown option: exit 2 (got %d)' % rc)

    path = os.path.join(work, 'good.toml')
    write(path, good())
    rc, out, err = run(xsgw, '--check-config', '-c', path)
    check(rc == 0 and 'configuration OK' in out, 'check-config good file: exit 0, "configuration OK"')

    missing = os.path.join(work, 'absent.toml')
    rc, out, err = run(xsgw, '--check-config', '-c', missing)
    check(rc == 2 and missing in err and len(err.strip().splitlines()) == 1,
          'check-config missing file: exit 2, one line naming it (%r)' % err.strip())

    for name, text, mode, key in bad_configs(work):
        path = os.path.join(work, name + '.toml')
        write(path, text, mode)
        for args in (['--check-config', '-c', path], ['-c', path]):
            rc, out, err = run(xsgw, *args)
            lines = err.strip().splitlines()
            mode_name = 'check-config' if args[0] == '--check-config' else 'start'
            check(rc == 2, '%s %s: exit 2 (got %d)' % (mode_name, name, rc))
            check(len(lines) == 1, '%s %s: exactly one line (got %r)' % (mode_name, name, lines))
            line = lines[0] if lines else ''
            check(path in line and (key == '' or key in line),
                  '%s %s: the line names file and key %r (%r)' % (mode_name, name, key, line))
            check(SECRET not in err + out, '%s %s: the secret is not shown' % (mode_name, name))


def test_sighup(xsgw, work):
    """SIGHUP re-reads the log level and the bounds, names what needs a restart; SIGTERM then
    stops with status 0."""
    path = os.path.join(work, 'hup.toml')
    write(path, good('info', unused_port()))
    p = subprocess.Popen([xsgw, '-c', path], stderr=subprocess.PIPE, text=True)
    seen = []

    def wait_for(text, within, start=0, level=None):
        """A line from index `start` on containing text (and logged at `level`, if given)."""
        def found():
            return any(text in line and (level is None or line.split(' ')[2:3] == [level])
                       for line in seen[start:])
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if found():
                return True
            r, _, _ = select.select([p.stderr], [], [], max(0.0, deadline - time.monotonic()))
            if r:
                line = p.stderr.readline()
                if not line:
                    return False
                seen.append(line)
        return found()

    try:
        check(wait_for('xmpp: link down: connection refused', 10),
              'sighup: running xsgw reports the refused link with its reason')
        mark = len(seen)
        write(path, good('debug', unused_port()) + '\n[presence]\nmax_per_user = 5\nmin_expires = 30\n')
        p.send_signal(signal.SIGHUP)
        check(wait_for('SIGHUP: log level info -> debug', 10), 'sighup: new log level announced')
        check(wait_for('SIGHUP: presence.max_per_user 1000 -> 5', 5, start=mark),
              'sighup: a presence bound is taken and announced')
        check(wait_for('SIGHUP: presence.min_expires 60 s -> 30 s', 5, start=mark),
              'sighup: an expiry bound is taken and announced')
        check(wait_for('SIGHUP: xmpp.port changed: takes effect after a restart', 5, start=mark),
              'sighup: a change that needs a restart is named as such')
        # Not the announcement itself (it says "debug" too): a line logged at level debug.
        check(wait_for('', 10, start=len(seen), level='debug'), 'sighup: debug lines appear after the reload')
        write(path, good('debug', unused_port()).replace('[log]', '[log\n'))
        p.send_signal(signal.SIGHUP)
        check(wait_for('config not reloaded', 10), 'sighup: a broken config is refused, xsgw keeps running')
        check(p.poll() is None, 'sighup: still running after a bad reload')
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=5)
        check(rc == 0, 'sigterm: exit status 0 (got %d)' % rc)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    check(SECRET not in ''.join(seen), 'sighup: the secret never appears in the log')


def test_notify(xsgw, work):
    """Type=notify: READY=1 only after the component handshake, WATCHDOG=1 keeps coming,
    STOPPING=1 on SIGTERM. A scripted XEP-0114 server holds the handshake back."""
    import hashlib
    path = os.path.join(work, 'notify.sock')
    if os.path.exists(path):
        os.unlink(path)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(path)
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen(1)
    cfg = os.path.join(work, 'notify.toml')
    write(cfg, good('info', server.getsockname()[1]))
    env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC='200000')
    env.pop('WATCHDOG_PID', None)
    p = subprocess.Popen([xsgw, '-c', cfg], stderr=subprocess.DEVNULL, env=env)
    got = []

    def read_notify(within, until):
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            r, _, _ = select.select([notify], [], [], max(0.0, deadline - time.monotonic()))
            if r:
                got.append(notify.recv(4096).decode())
                if until(got):
                    return True
        return until(got)

    try:
        server.settimeout(10)
        conn, _ = server.accept()
        conn.settimeout(10)
        data = b''
        while b'<stream:stream' not in data or not data.rstrip().endswith(b'>'):
            data += conn.recv(4096)
        conn.sendall(b"<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
                     b"xmlns='jabber:component:accept' from='sip.test' id='notify42'>")
        data = b''
        while b'</handshake>' not in data:
            data += conn.recv(4096)
        digest = data.split(b'<handshake>')[1].split(b'</handshake>')[0].decode()
        check(digest == hashlib.sha1(('notify42' + SECRET).encode()).hexdigest(),
              'notify: handshake digest is sha1(id + secret)')
        # Handshake sent, not yet answered: watchdog pings flow, READY must not.
        read_notify(10, lambda g: sum('WATCHDOG=1' in m for m in g) >= 2)
        check(sum('WATCHDOG=1' in m for m in got) >= 2, 'notify: WATCHDOG=1 before the link is up')
        check(not any('READY=1' in m for m in got), 'notify: no READY=1 before the handshake is accepted')
        conn.sendall(b'<handshake/>')
        check(read_notify(10, lambda g: any('READY=1' in m for m in g)), 'notify: READY=1 after the handshake')
        ready_at = len(got)
        read_notify(10, lambda g: sum('WATCHDOG=1' in m for m in g[ready_at:]) >= 3)
        check(sum('WATCHDOG=1' in m for m in got[ready_at:]) >= 3, 'notify: WATCHDOG=1 keeps coming after READY')
        p.send_signal(signal.SIGTERM)
        check(read_notify(10, lambda g: any('STOPPING=1' in m for m in g)), 'notify: STOPPING=1 on SIGTERM')
        check(p.wait(timeout=5) == 0, 'notify: exit status 0')
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        notify.close()
        server.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--xsgw', required=True)
    ap.add_argument('--workdir', required=True)
    a = ap.parse_args()
    shutil.rmtree(a.workdir, ignore_errors=True)
    os.makedirs(a.workdir)
    test_static(a.xsgw, a.workdir)
    test_sighup(a.xsgw, a.workdir)
    test_notify(a.xsgw, a.workdir)
    print('%d failure(s)' % len(failures))
    sys.exit(1 if failures else 0)


if __name__ == '__main__':
    main()
