#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""bench/run.py: fdbroker's benchmarks against the floor and a peer.

Started by bench/run.sh (benchmarks) and bench/soak.sh (soak). It sets up
private system-like buses the way tests/integration/harness.py does (its own
dbus-daemon, bus activation of the service from the build tree, an empty
--policy-dir with one [Limits] file), runs bench/bench-client (C, sd-bus) for
every measurement, and prints and writes the results:
bench/results/latest.json, latest.txt and latest.png.

Every ratio is taken against a baseline measured in the same run, with the
two interleaved call by call (or round by round for throughput), because the
machine is shared and noisy: absolute numbers move from run to run, ratios
much less. Only the standard library is used (no gi).
"""

import argparse
import json
import os
import platform
import pwd
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(HERE)
BROKER = 'org.fdbroker.Broker1'
ECHO = 'org.fdbroker.Bench.FdEcho'
SOAK_USERS = ['fdbbench-%d' % i for i in range(1, 5)]

BUS_CONFIG = '''<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={tmp}/bus</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{tmp}/services</servicedir>
  <!-- Debian's system.conf default policy -->
  <include>{system_policy}</include>
  <!-- the D-Bus floor: bench/fd-echo, run by us as root -->
  <policy user="root">
    <allow own="{echo}"/>
  </policy>
  <policy context="default">
    <allow send_destination="{echo}"/>
  </policy>
  <include>{bus_policy}</include>
</busconfig>
'''

LIMITS = '''# Written by bench/run.py: room for the entry-count benchmark.
[Limits]
MaxEntries=200000
MaxEntriesPerUser=200000
'''

# Tight enough that the soak's users run into every limit now and then.
SOAK_LIMITS = '''# Written by bench/run.py for bench/soak.sh.
[Limits]
MaxEntries=300
MaxEntriesPerUser=96
MaxMemorySize=1M
'''


def log(msg):
    sys.stderr.write('bench: %s\n' % msg)
    sys.stderr.flush()


class Bus:
    """A private system-like dbus-daemon that activates fdbroker from the
    build tree (no shell wrapper: Exec= runs the binary, so activation time
    is the service's own), and optionally runs fd-echo on it."""

    def __init__(self, build, tag, limits=True, echo=True, wrapper=(), kind='dbus-daemon'):
        self.build = build
        self.kind = kind  # 'dbus-daemon' or 'dbus-broker'
        self.service = None  # the broker, when started by hand (dbus-broker)
        self.wrapper = list(wrapper)  # e.g. valgrind: runs the service and fd-echo
        self.tmp = tempfile.mkdtemp(prefix='fdbroker-bench-%s-' % tag)
        os.chmod(self.tmp, 0o755)  # the soak's users connect to TMP/bus
        self.limits = limits
        self.want_echo = echo
        self.daemon = None
        self.echo = None
        self.address = None
        self.log_path = os.path.join(self.tmp, 'bus-and-service.log')
        self.direct_socket = os.path.join(self.tmp, 'direct')  # the broker's listening socket (SPEC §5)

    def start(self):
        services = os.path.join(self.tmp, 'services')
        policy = os.path.join(self.tmp, 'policy.d')
        os.makedirs(services)
        os.makedirs(policy)
        if self.limits:
            with open(os.path.join(policy, 'bench-limits.conf'), 'w') as f:
                f.write(self.limits if isinstance(self.limits, str) else LIMITS)
        conf = os.path.join(self.tmp, 'bus.conf')
        with open(conf, 'w') as f:
            f.write(BUS_CONFIG.format(tmp=self.tmp, echo=ECHO,
                                      bus_policy=os.path.join(SOURCE, 'data', 'org.fdbroker.Broker1.conf'),
                                      system_policy=os.path.join(SOURCE, 'tests', 'debian-system-policy.conf')))
        with open(os.path.join(services, BROKER + '.service'), 'w') as f:
            f.write('[D-BUS Service]\nName=%s\nUser=root\nExec=%s --bus=system --policy-dir=%s --direct-socket=%s\n'
                    % (BROKER, ' '.join(self.wrapper + [os.path.join(self.build, 'service', 'fdbroker')]), policy,
                       self.direct_socket))
        env = dict(os.environ)
        env.pop('DBUS_SESSION_BUS_ADDRESS', None)
        env.pop('DBUS_SYSTEM_BUS_ADDRESS', None)
        # The activated service inherits dbus-daemon's stderr: its log.
        self._log = open(self.log_path, 'ab')
        if self.kind == 'dbus-broker':
            self._start_dbus_broker(conf, env, policy)
        else:
            self.daemon = subprocess.Popen(
                ['dbus-daemon', '--config-file=' + conf, '--nofork', '--nopidfile', '--print-address=1'],
                stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL, env=env)
            self.address = self.daemon.stdout.readline().decode().strip()
            if not self.address:
                raise RuntimeError('dbus-daemon did not start; see %s' % self.log_path)
        if self.want_echo:
            self.echo = subprocess.Popen(self.wrapper + [os.path.join(self.build, 'bench', 'fd-echo'),
                                                         '--bus=' + self.address],
                                         stderr=self._log, stdin=subprocess.DEVNULL)
            deadline = time.monotonic() + 60
            while not self.has_owner(ECHO):
                if time.monotonic() > deadline or self.echo.poll() is not None:
                    raise RuntimeError('fd-echo did not come up; see %s' % self.log_path)
                time.sleep(0.01)
        return self

    def _start_dbus_broker(self, conf, env, policy):
        """A private dbus-broker as tests/integration/harness.py starts one
        (dbus_broker_ns.py: a mount namespace with a journal socket for its
        launcher, socket-activated on SOCK). It activates services only
        through systemd, so the broker is started here by hand, with the
        same arguments as the .service file gives it on dbus-daemon."""
        for tool in ('dbus-broker-launch', 'systemd-socket-activate', 'unshare'):
            if not shutil.which(tool):
                raise RuntimeError('%s not installed (apt-get install dbus-broker)' % tool)
        sock = os.path.join(self.tmp, 'bus')
        self.address = 'unix:path=' + sock
        self.daemon = subprocess.Popen(
            ['unshare', '-m', '--propagation', 'private', '/usr/bin/python3',
             os.path.join(SOURCE, 'tests', 'integration', 'dbus_broker_ns.py'), sock, self.log_path, conf],
            stdout=subprocess.DEVNULL, stderr=self._log, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        deadline = time.monotonic() + 30
        while not os.path.exists(sock):
            if self.daemon.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('a private dbus-broker did not start; see %s' % self.log_path)
            time.sleep(0.01)
        os.chmod(sock, 0o666)  # created 0644; throughput's clients 17+ are uid nobody
        senv = dict(env, DBUS_SYSTEM_BUS_ADDRESS=self.address)
        self.service = subprocess.Popen(
            self.wrapper + [os.path.join(self.build, 'service', 'fdbroker'), '--bus=system',
                            '--policy-dir=' + policy, '--direct-socket=' + self.direct_socket],
            stderr=self._log, stdout=self._log, stdin=subprocess.DEVNULL, env=senv)
        deadline = time.monotonic() + 60
        while not self.has_owner(BROKER):
            if self.service.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('fdbroker did not take its name on dbus-broker; see %s' % self.log_path)
            time.sleep(0.01)

    def daemon_pids(self):
        """The bus's processes: dbus-daemon, or dbus-broker and its launcher
        (the process group started by unshare)."""
        if self.kind != 'dbus-broker':
            return [self.daemon.pid]
        pids = []
        for d in os.listdir('/proc'):
            if d.isdigit():
                try:
                    with open('/proc/%s/stat' % d) as f:
                        st = f.read().rsplit(')', 1)[1].split()
                    if int(st[2]) == self.daemon.pid:  # pgrp
                        pids.append(int(d))
                except (OSError, IndexError, ValueError):
                    pass
        return pids

    def daemon_pid(self):
        """The process that routes messages: dbus-daemon or dbus-broker."""
        if self.kind != 'dbus-broker':
            return self.daemon.pid
        for pid in self.daemon_pids():
            try:
                with open('/proc/%d/comm' % pid) as f:
                    if f.read().strip() == 'dbus-broker':
                        return pid
            except OSError:
                pass
        raise RuntimeError('no dbus-broker process in group %d' % self.daemon.pid)

    def version(self):
        cmd = ['dbus-broker', '--version'] if self.kind == 'dbus-broker' else ['dbus-daemon', '--version']
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            return self.kind

    def has_owner(self, name):
        r = subprocess.run(['busctl', '--address=' + self.address, 'call', 'org.freedesktop.DBus',
                            '/org/freedesktop/DBus', 'org.freedesktop.DBus', 'NameHasOwner', 's', name],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return r.stdout.strip() == 'b true'

    def client(self, *args, check=True, **kw):
        """Runs bench-client; returns its JSON lines."""
        cmd = [os.path.join(self.build, 'bench', 'bench-client'), args[0], '--address=' + self.address,
               '--direct-socket=' + self.direct_socket]
        cmd += [str(a) for a in args[1:]]
        r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, **kw)
        if check and r.returncode != 0:
            raise RuntimeError('%s failed (exit %d); the service log is %s'
                               % (' '.join(cmd), r.returncode, self.log_path))
        return [json.loads(line) for line in r.stdout.splitlines() if line.startswith('{')]

    def status(self):
        return self.client('status')[0]

    def stop(self):
        # fdbroker stays up when its bus goes away (see bench/README.md), so
        # it is stopped first, by pid.
        try:
            if self.daemon and self.daemon.poll() is None and self.has_owner(BROKER):
                pid = self.status()['pid']
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and self.has_owner(BROKER):
                    time.sleep(0.01)
        except (RuntimeError, OSError, KeyError, IndexError) as e:
            log('could not stop the broker cleanly: %s' % e)
        for p in (self.echo, self.service) if self.kind == 'dbus-broker' else (self.echo, self.daemon):
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if self.kind == 'dbus-broker' and self.daemon:
            # The launcher, dbus-broker and the journal drainer: one group.
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(self.daemon.pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    self.daemon.wait(5)
                    break
                except subprocess.TimeoutExpired:
                    pass

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)


class S6:
    """s6-fdholder-daemon on a socket in a temporary directory, holding one
    fd under ID, with rules that let root store and retrieve anything."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, 's6')
        self.socket = os.path.join(self.dir, 'socket')
        self.proc = None

    def start(self, file_path, ident):
        rules = os.path.join(self.dir, 'rules', 'uid', '0')
        os.makedirs(os.path.join(rules, 'env'))
        open(os.path.join(rules, 'allow'), 'w').close()
        for var in ('S6_FDHOLDER_STORE_REGEX', 'S6_FDHOLDER_RETRIEVE_REGEX'):
            with open(os.path.join(rules, 'env', var), 'w') as f:
                f.write('^\n')
        self.proc = subprocess.Popen(['s6-fdholder-daemon', '-1', '-i', os.path.join(self.dir, 'rules'),
                                      self.socket], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.proc.stdout.readline()  # -1: one line when ready
        with open(file_path) as f:
            subprocess.run(['s6-fdholder-store', self.socket, ident], stdin=f, check=True)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


# ---------------------------------------------------------------------------
# The benchmark run

def machine_info():
    model = ''
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    def tool_version(cmd):
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            return None
    commit = subprocess.run(['git', '-C', SOURCE, 'rev-parse', '--short', 'HEAD'], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True).stdout.strip()
    return {
        'nproc': os.cpu_count(),
        'cpu_model': model,
        'kernel': platform.release(),
        'loadavg_start': os.getloadavg(),
        'rlimit_nofile': resource.getrlimit(resource.RLIMIT_NOFILE),
        'dbus_daemon': tool_version(['dbus-daemon', '--version']),
        'git_commit': commit,
    }


def ratio(a, b):
    return round(a / b, 3) if b else None


def lat_row(what, r, baseline=None, target=None, target_text=None):
    row = {'what': what, 'median_us': round(r['median_ns'] / 1000, 1), 'p99_us': round(r['p99_ns'] / 1000, 1)}
    if baseline is not None:
        row['baseline'] = baseline[0]
        row['ratio'] = ratio(r['median_ns'], baseline[1]['median_ns'])
        row['p99_ratio'] = ratio(r['p99_ns'], baseline[1]['p99_ns'])
    if target is not None:
        row['target'] = target_text
        row['met'] = target(row)
    return row


# In the order they run; the table follows the brief's numbering.
SECTIONS = ('latency', 'throughput', 'direct', 'entries', 'size', 'spawn', 'activation')


def pin(pids, cpus):
    for pid in pids:
        try:
            os.sched_setaffinity(pid, cpus)
        except OSError as e:
            log('could not set the CPU affinity of %d: %s' % (pid, e))


def section_latency(ctx, a, b):
    n, raw = ctx['n'], ctx['raw']
    log('latency: all operations interleaved (n=%d)' % n)
    allops = ['socketpair', 'echo', 'echo-ping', 'ping', 'retrieve', 'retrieve-many', 'deposit-remove']
    raw['latency_all'] = la = {r['op']: r for r in a.client('latency', '-n', n, *allops)}
    # The pairs give the ratios: a pair never has a third call between
    # its two, so neither is favoured by what ran before it.
    log('latency: Retrieve vs fd-echo Echo (n=%d)' % n)
    raw['latency_retrieve_vs_echo'] = pair = {r['op']: r for r in a.client('latency', '-n', n, 'echo', 'retrieve')}
    log('latency: Ping on fdbroker vs on fd-echo (n=%d)' % n)
    raw['latency_ping'] = ping = {r['op']: r for r in a.client('latency', '-n', n, 'echo-ping', 'ping')}
    cn = max(500, n // 10)
    log('latency: a new connection per call, Retrieve vs Echo (n=%d)' % cn)
    raw['latency_connect'] = conn = {r['op']: r for r in a.client('latency', '-n', cn, '--warmup', 50,
                                                                  'connect-echo', 'connect-retrieve')}
    return [
        lat_row('1. raw SCM_RIGHTS round trip (socketpair, no bus)', la['socketpair']),
        lat_row('2. fd-echo Echo(h) (the D-Bus floor)', la['echo'], ('raw SCM_RIGHTS', la['socketpair'])),
        lat_row('   fd-echo Peer.Ping', la['echo-ping']),
        lat_row('3. fdbroker Peer.Ping', ping['ping'], ('fd-echo Peer.Ping', ping['echo-ping'])),
        lat_row('4. fdbroker Retrieve', pair['retrieve'], ('fd-echo Echo', pair['echo']),
                lambda r: r['ratio'] <= 1.10, 'ratio <= 1.10'),
        lat_row('4. fdbroker Deposit+Remove (2 calls)', la['deposit-remove'], ('fd-echo Echo', la['echo'])),
        lat_row('4. fdbroker RetrieveMany(16)', la['retrieve-many'], ('fd-echo Echo', la['echo'])),
        lat_row('   new connection + Retrieve + close', conn['connect-retrieve'],
                ('new conn. + Echo + close', conn['connect-echo'])),
    ]


def section_throughput(ctx, a, b):
    rounds, secs = (5, 0.3) if ctx['quick'] else (15, 0.5)
    log('throughput: 1, 2, 8, 32 clients, Retrieve vs Echo (%d rounds of %.1f s)' % (rounds, secs))
    tp = a.client('throughput', '--clients', '1,2,8,32', '--rounds', rounds, '--seconds', secs, 'echo', 'retrieve')
    ctx['raw']['throughput'] = tp
    by = {(r['op'], r['clients']): r for r in tp}
    rows = []
    for c in (1, 2, 8, 32):
        rr, ee = by[('retrieve', c)], by[('echo', c)]
        # Round r of both ran back to back: the median of the paired
        # ratios is steadier than the ratio of the medians.
        paired = sorted(x / y for x, y in zip(rr['rounds'], ee['rounds']) if y)
        row = {'what': '5. throughput, %d client%s: Retrieve' % (c, 's' if c > 1 else ''),
               'ops_per_s': rr['median_ops'], 'baseline': 'fd-echo %.0f/s' % ee['median_ops'],
               'ratio': round(paired[len(paired) // 2], 3),
               'detail': 'median of %d paired round ratios; ratio of medians %.3f; rounds min-max %.0f-%.0f vs %.0f-%.0f'
                         % (len(paired), rr['median_ops'] / ee['median_ops'], min(rr['rounds']),
                            max(rr['rounds']), min(ee['rounds']), max(ee['rounds']))}
        if c == 8:
            row['target'] = 'ratio >= 0.90'
            row['met'] = row['ratio'] >= 0.90
        rows.append(row)
    return rows


def section_direct(ctx, a, b):
    """Direct connections (SPEC §5, issue 12): Retrieve on the bus against
    the same-shape floor; Retrieve over a direct connection (OpenConnection
    and the listening socket) against a raw SCM_RIGHTS round trip; and
    throughput over direct connections against the bus."""
    n, raw = ctx['n'], ctx['raw']
    log('direct: Retrieve vs fd-echo Retrieve, the same call shape (n=%d)' % n)
    raw['latency_retrieve_vs_shape'] = shape = {r['op']: r for r in a.client('latency', '-n', n, 'echo-retrieve',
                                                                             'retrieve')}
    log('direct: Retrieve over direct connections vs raw SCM_RIGHTS (n=%d)' % n)
    raw['latency_direct'] = d = {r['op']: r for r in a.client('latency', '-n', n, 'socketpair', 'direct-retrieve',
                                                              'socket-retrieve', 'retrieve')}
    rows = [
        # No baseline: Echo ran in another loop, under other load.
        lat_row('10. fd-echo Retrieve(sa{sv}) -> ha{sv} (shape floor)', shape['echo-retrieve']),
        lat_row('10. fdbroker Retrieve on the bus', shape['retrieve'], ('fd-echo Retrieve (shape)', shape['echo-retrieve']),
                lambda r: r['ratio'] <= 1.10, 'ratio <= 1.10'),
        lat_row('10. raw SCM_RIGHTS round trip', d['socketpair']),
        lat_row('10. Retrieve, direct (OpenConnection)', d['direct-retrieve'], ('raw SCM_RIGHTS', d['socketpair']),
                lambda r: r['ratio'] <= 2.0, 'ratio <= 2.0'),
        lat_row('10. Retrieve, direct (listening socket)', d['socket-retrieve'], ('raw SCM_RIGHTS', d['socketpair']),
                lambda r: r['ratio'] <= 2.0, 'ratio <= 2.0'),
        lat_row('10. Retrieve on the bus (same loop)', d['retrieve'], ('Retrieve, direct', d['direct-retrieve'])),
    ]
    rounds, secs = (5, 0.3) if ctx['quick'] else (15, 0.5)
    clients = (1, 2, 8, 16, 32)
    log('direct: throughput, %s clients, direct vs bus Retrieve (%d rounds of %.1f s)'
        % (', '.join(map(str, clients)), rounds, secs))
    tp = a.client('throughput', '--clients', ','.join(map(str, clients)), '--rounds', rounds, '--seconds', secs,
                  'retrieve', 'direct-retrieve')
    raw['throughput_direct'] = tp
    by = {(r['op'], r['clients']): r for r in tp}
    for c in clients:
        dd, bb = by[('direct-retrieve', c)], by[('retrieve', c)]
        paired = sorted(x / y for x, y in zip(dd['rounds'], bb['rounds']) if y)
        row = {'what': '10. throughput, %d client%s: direct Retrieve' % (c, 's' if c > 1 else ''),
               'ops_per_s': dd['median_ops'], 'baseline': 'bus Retrieve %.0f/s' % bb['median_ops'],
               'ratio': round(paired[len(paired) // 2], 3),
               'detail': 'median of %d paired round ratios; rounds min-max %.0f-%.0f vs %.0f-%.0f%s'
                         % (len(paired), min(dd['rounds']), max(dd['rounds']), min(bb['rounds']),
                            max(bb['rounds']), '; clients 17+ are uid nobody (16 direct connections per uid)'
                            if c > 16 else '')}
        if c == 8:
            row['target'] = 'ratio >= 3.0'
            row['met'] = row['ratio'] >= 3.0
        rows.append(row)
    return rows


def section_entries(ctx, a, b):
    """Bus A keeps 10 entries, bus B grows; then the largest count again
    with the roles of the buses swapped. Both buses' daemons and brokers and
    the client are pinned to one CPU meanwhile: on 2 shared CPUs, where the
    scheduler happens to put the processes of one bus changes its round
    trip by up to 25%, which would drown what is measured here, the cost of
    the registry's size."""
    raw, max_entries = ctx['raw'], ctx['max_entries']
    counts = [100, 1000, 10000, max_entries] if not ctx['quick'] else [1000, max_entries]
    counts = sorted(set(c for c in counts if c <= max_entries))
    en = max(1000, ctx['n'] // 2)
    cpu = {max(os.sched_getaffinity(0))}
    every = os.sched_getaffinity(0)
    pids = a.daemon_pids() + b.daemon_pids() + [a.status()['pid'], b.status()['pid']]
    log('entries: Retrieve at 10 entries (bus A) vs %s (bus B), then crossover; n=%d per stage; pinned to CPU %s'
        % (counts, en, next(iter(cpu))))
    pin(pids, cpu)
    try:
        ent = a.client('entries', '--address2=' + b.address, '--counts', ','.join(map(str, counts)), '-n', en,
                       preexec_fn=lambda: os.sched_setaffinity(0, cpu))
    finally:
        pin(pids, every)
    raw['entries'] = [st for st in ent if st['bench'] == 'entries']
    cross = [st for st in ent if st['bench'] == 'entries-crossover']
    raw['entries_crossover'] = cross[0] if cross else None
    rows = []
    for st in raw['entries']:
        what = '6. Retrieve, %d entries%s' % (st['count'], ' (A/A check)' if st['count'] == 10 else '')
        rows.append(lat_row(what, st['large'], ('10 entries, twin bus', st['base'])))
    last = raw['entries'][-1]
    if cross:
        cr = cross[0]
        rows.append(lat_row('6. Retrieve, %d entries, buses swapped' % cr['count'], cr['large'],
                            ('10 entries, twin bus', cr['base'])))
        r1 = last['large']['median_ns'] / last['base']['median_ns']
        r2 = cr['large']['median_ns'] / cr['base']['median_ns']
        rows.append({'what': '6. Retrieve, %d vs 10 entries (crossover)' % cr['count'],
                     'ratio': round((r1 * r2) ** 0.5, 3),
                     'detail': 'geometric mean of %.3f (entries on bus B) and %.3f (entries on bus A)' % (r1, r2),
                     'target': 'ratio <= 1.05', 'met': (r1 * r2) ** 0.5 <= 1.05})
    per_entry = (last['rss_kb'] - last['rss0_kb']) * 1024 / (last['count'] - last['base_count'])
    detail = 'bus B: VmRSS %d kB -> %d kB; open fds %d -> %d' % (last['rss0_kb'], last['rss_kb'],
                                                               last['fds0'], last['fds'])
    if cross:
        per_a = (cross[0]['rss_kb'] - cross[0]['rss0_kb']) * 1024 / (cross[0]['count'] - cross[0]['base_count'])
        detail += '; bus A (crossover): %.1f B per entry' % per_a
    rows.append({'what': '6. broker RSS per stored entry (at %d entries)' % last['count'],
                 'bytes_per_entry': round(per_entry, 1), 'detail': detail,
                 'target': '<= 256 bytes', 'met': per_entry <= 256})
    return rows


def section_size(ctx, a, b):
    n = ctx['n']
    log('latency: 1 GiB vs 1 B memfd (n=%d)' % n)
    ctx['raw']['latency_size'] = size = {r['op']: r for r in a.client('latency', '-n', n, 'retrieve', 'retrieve-1g')}
    return [lat_row('7. Retrieve of a 1 GiB memfd', size['retrieve-1g'], ('1 B memfd', size['retrieve']),
                    lambda r: r['ratio'] <= 1.05, 'ratio <= 1.05')]


def section_spawn(ctx, a, b):
    sn = 200 if ctx['quick'] else 1000
    build = ctx['build']
    ctl = os.path.join(build, 'client', 'fdbrokerctl')
    if not shutil.which('s6-fdholder-daemon') or not os.access(ctl, os.X_OK):
        return [{'what': '9. fdbrokerctl vs s6-fdholder', 'skipped': 's6 or fdbrokerctl not installed'}]
    payload = os.path.join(a.tmp, 'payload')
    with open(payload, 'w') as f:
        f.write('fdbroker bench payload\n')
    s6 = S6(a.tmp)
    try:
        s6.start(payload, 'unix:bench')
        subprocess.run([ctl, '--address', a.address, 'deposit', 'bench/ctl', payload, '--persistent'], check=True)
        log('whole process: fdbrokerctl retrieve vs s6-fdholder-retrieve vs minimal sd-bus client (n=%d)' % sn)
        sp = spawn(build, sn, ctl, a, s6)
    finally:
        s6.stop()
    ctx['raw']['spawn'] = sp
    sb = {r['op']: r for r in sp}
    s6r = ('s6-fdholder-retrieve', sb['s6-fdholder-retrieve'])
    return [
        lat_row('9. fdbrokerctl retrieve NAME -- true (direct socket)', sb['fdbrokerctl'], s6r,
                lambda r: r['ratio'] <= 1.0, 'ratio <= 1.0'),
        lat_row('   s6-fdholder-retrieve SOCKET ID true', sb['s6-fdholder-retrieve'], ('spawn of true', sb['true'])),
        lat_row('   fdbrokerctl-full (sd-bus tool), direct socket', sb['fdbrokerctl-full'], s6r),
        lat_row('   fdbrokerctl --address BUS (front + full, bus)', sb['fdbrokerctl-bus'], s6r),
        lat_row('   minimal sd-bus client (bench-client exec-retrieve)', sb['sd-bus-minimal'], s6r),
        lat_row('   spawn and wait of true (process floor)', sb['true']),
    ]


def section_activation(ctx, a, b):
    if a.kind == 'dbus-broker':
        return [{'what': '8. cold bus activation to first reply (Retrieve)',
                 'skipped': 'dbus-broker activates services only through systemd (none on a private bus)'}]
    an = 30 if ctx['quick'] else 100
    log('cold activation to first reply (n=%d)' % an)
    act = a.client('activation', '-n', an)[0]
    ctx['raw']['activation'] = act
    return [lat_row('8. cold bus activation to first reply (Retrieve)', act, None,
                    lambda r: r['median_us'] <= 20000, 'median <= 20 ms')]


def run_benchmarks(args):
    build = os.path.abspath(args.build_dir)
    if os.geteuid() != 0:
        log('the benchmarks need root: the broker is bus-activated as root, as on the system bus')
        return 77
    only = args.only.split(',') if args.only else list(SECTIONS)
    for o in only:
        if o not in SECTIONS:
            log('unknown section %s; known: %s' % (o, ', '.join(SECTIONS)))
            return 2
    results = {'machine': machine_info(), 'command': ' '.join(['bench/run.sh'] + sys.argv[2:]),
               'quick': args.quick, 'raw': {}, 'table': []}
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    # Every entry is an open fd in the broker, which raises its soft limit
    # to this hard one; leave room for its own fds and messages in flight.
    max_entries = min(100000, ((hard - 1024) // 16) * 16)
    if max_entries < 100000 and 'entries' in only:
        log('RLIMIT_NOFILE hard limit is %d (raising it needs CAP_SYS_RESOURCE): the entry benchmark '
            'stops at %d entries, not 100000' % (hard, max_entries))
    kinds = args.buses.split(',')
    buses = []
    for kind in kinds:
        # Every row on each bus implementation, one after the other; a
        # ratio never mixes the two.
        raw = results['raw'] if kind == 'dbus-daemon' else results.setdefault('raw_' + kind.replace('-', '_'), {})
        ctx = {'build': build, 'quick': args.quick, 'n': 3000 if args.quick else 20000, 'raw': raw,
               'max_entries': max_entries}
        a = Bus(build, 'a', kind=kind).start()
        buses.append(a)
        b = Bus(build, 'b', echo=False, kind=kind).start()
        buses.append(b)
        rows = {}
        try:
            results['machine'].setdefault('buses', {})[kind] = a.version()
            log('%s: bus A %s, bus B %s (logs: %s, %s)' % (kind, a.address, b.address, a.log_path, b.log_path))
            a.client('latency', '-n', 100, 'ping')  # activate the brokers
            b.client('latency', '-n', 100, 'ping')
            # Activation last: it kills bus A's broker each time.
            for name in SECTIONS:
                if name in only:
                    rows[name] = globals()['section_' + name](ctx, a, b)
        finally:
            a.stop()
            b.stop()
        results['table'].append({'what': '---- on %s ----' % a.version(), 'heading': True})
        for name in ('latency', 'throughput', 'entries', 'size', 'activation', 'spawn', 'direct'):  # the brief's order
            for row in rows.get(name, []):
                row['bus'] = kind
                results['table'].append(row)
    results['machine']['loadavg_end'] = os.getloadavg()

    out = args.results_dir
    os.makedirs(out, exist_ok=True)
    text = format_table(results)
    sys.stdout.write(text)
    with open(os.path.join(out, 'latest.json'), 'w') as f:
        json.dump(results, f, indent=1)
        f.write('\n')
    with open(os.path.join(out, 'latest.txt'), 'w') as f:
        f.write(text)
    plot(results, out)
    if not args.keep:
        for bus in buses:
            bus.cleanup()
    log('wrote %s/latest.json, latest.txt, latest.png' % out)
    return 0


def spawn(build, n, ctl, bus, s6):
    """Whole processes, interleaved: each command is started and waited
    for by bench-client (posix_spawn), stdout to /dev/null. fdbrokerctl is
    the libc-only front (its fast path on the direct socket); with
    --address and no socket it execs fdbrokerctl-full, which uses the bus."""
    bc = os.path.join(build, 'bench', 'bench-client')
    full = os.path.join(build, 'client', 'fdbrokerctl-full')
    true = shutil.which('true')
    cmd = [bc, 'spawn', '-n', str(n), '--warmup', '20',
           'fdbrokerctl', ctl, '--socket', bus.direct_socket, 'retrieve', 'bench/ctl', '--', 'true',
           '::', 's6-fdholder-retrieve', 's6-fdholder-retrieve', s6.socket, 'unix:bench', 'true',
           '::', 'fdbrokerctl-full', full, '--socket', bus.direct_socket, 'retrieve', 'bench/ctl', '--', 'true',
           '::', 'fdbrokerctl-bus', ctl, '--address', bus.address, 'retrieve', 'bench/ctl', '--', 'true',
           '::', 'sd-bus-minimal', bc, 'exec-retrieve', '--address', bus.address, 'bench/ctl', 'true',
           '::', 'true', true]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith('{')]


def format_table(results):
    m = results['machine']
    lines = ['fdbroker benchmarks%s: %s, %d CPUs, kernel %s, commit %s' % (
        ' (--quick)' if results['quick'] else '', m['cpu_model'], m['nproc'], m['kernel'], m['git_commit']),
        'load average %.2f at the start, %.2f at the end; RLIMIT_NOFILE %s' % (
        m['loadavg_start'][0], m['loadavg_end'][0], m['rlimit_nofile']), '']
    hdr = '%-52s %11s %11s  %-26s %7s %7s  %-16s %s' % ('measurement', 'median', 'p99', 'baseline (same run)',
                                                        'ratio', 'p99 r.', 'target', 'met')
    lines += [hdr, '-' * len(hdr)]
    for r in results['table']:
        if r.get('heading'):
            lines.append(r['what'])
            continue
        if 'skipped' in r:
            lines.append('%-52s %s' % (r['what'], 'skipped: ' + r['skipped']))
            continue
        if 'ops_per_s' in r:
            med, p99 = '%.0f/s' % r['ops_per_s'], ''
        elif 'bytes_per_entry' in r:
            med, p99 = '%.1f B' % r['bytes_per_entry'], ''
        elif 'median_us' in r:
            med, p99 = '%.1f us' % r['median_us'], '%.1f us' % r['p99_us']
        else:
            med, p99 = '', ''
        met = '' if 'met' not in r else ('yes' if r['met'] else 'NO')
        lines.append('%-52s %11s %11s  %-26s %7s %7s  %-16s %s' % (
            r['what'], med, p99, r.get('baseline', ''), r.get('ratio', '') if r.get('ratio') is not None else '',
            r.get('p99_ratio', ''), r.get('target', ''), met))
        if 'detail' in r:
            lines.append('%-52s %s' % ('', r['detail']))
    return '\n'.join(lines) + '\n'


def plot(results, out):
    gp = shutil.which('gnuplot')
    if not gp:
        log('gnuplot not installed: no plot')
        return
    ent = results['raw'].get('entries', [])
    tp = results['raw'].get('throughput', [])
    if not ent or not tp:
        log('no plot: it needs the entries and throughput sections')
        return
    dat1 = os.path.join(out, 'entries.dat')
    dat2 = os.path.join(out, 'throughput.dat')
    with open(dat1, 'w') as f:
        f.write('# entries  retrieve_median_us retrieve_p99_us  base10_median_us base10_p99_us  rss_kb\n')
        for st in ent:
            f.write('%d %.2f %.2f %.2f %.2f %d\n' % (st['count'], st['large']['median_ns'] / 1e3,
                                                     st['large']['p99_ns'] / 1e3, st['base']['median_ns'] / 1e3,
                                                     st['base']['p99_ns'] / 1e3, st['rss_kb']))
    by = {(r['op'], r['clients']): r['median_ops'] for r in tp}
    tpb = results.get('raw_dbus_broker', {}).get('throughput', [])
    byb = {(r['op'], r['clients']): r['median_ops'] for r in tpb}
    with open(dat2, 'w') as f:
        f.write('# clients retrieve_ops_s echo_ops_s (dbus-daemon) retrieve_ops_s echo_ops_s (dbus-broker)\n')
        for c in sorted(set(r['clients'] for r in tp)):
            f.write('%d %.0f %.0f %.0f %.0f\n' % (c, by.get(('retrieve', c), 0), by.get(('echo', c), 0),
                                                  byb.get(('retrieve', c), 0), byb.get(('echo', c), 0)))
    broker_lines = ''
    if tpb:
        broker_lines = (', \\\n     "{d2}" using 1:4 with linespoints lw 2 dt 2 title "fdbroker Retrieve, dbus-broker", '
                        '\\\n     "{d2}" using 1:5 with linespoints dt 2 title "fd-echo Echo, dbus-broker"')
    script = '''set terminal pngcairo size 1200,500 font ",10"
set output "{png}"
set multiplot layout 1,2 title "fdbroker benchmarks ({when}; {cpus} CPUs, shared machine)"
set title "Retrieve latency vs stored entries (interleaved with a twin bus; pinned to one CPU)"
set logscale x
set xlabel "entries stored in the broker"
set ylabel "round trip (us)"
set yrange [0:*]
set key top left
set grid
set key bottom left
set y2label "ratio of medians (target <= 1.05)"
set y2range [0:1.5]
set y2tics 0.25
set ytics nomirror
plot "{d1}" using 1:2 with linespoints lw 2 title "Retrieve, median", \\
     "{d1}" using 1:4 with linespoints dt 2 title "baseline: 10 entries on a twin bus, median", \\
     "{d1}" using 1:3 with linespoints lw 2 title "Retrieve, p99", \\
     "{d1}" using 1:5 with linespoints dt 2 title "baseline, p99", \\
     "{d1}" using 1:($2/$4) axes x1y2 with linespoints lw 2 lc rgb "black" title "ratio of medians (right axis)"
unset logscale x
unset y2label
unset y2tics
set ytics mirror
set key top left
set title "Throughput vs concurrent client connections (closed loop)"
set logscale x 2
set xlabel "client connections"
set ylabel "calls per second (median of rounds)"
set yrange [0:*]
plot "{d2}" using 1:2 with linespoints lw 2 title "fdbroker Retrieve, dbus-daemon", \\
     "{d2}" using 1:3 with linespoints lw 2 title "fd-echo Echo (D-Bus floor), dbus-daemon"{broker}
unset multiplot
'''.replace('{broker}', broker_lines).format(png=os.path.join(out, 'latest.png'), d1=dat1, d2=dat2,
           when=time.strftime('%Y-%m-%d'), cpus=results['machine']['nproc'])
    r = subprocess.run([gp], input=script, text=True, stderr=subprocess.PIPE)
    if r.returncode != 0:
        log('gnuplot failed: %s' % r.stderr.strip())


# ---------------------------------------------------------------------------
# Profile: instructions per call (callgrind) and system calls per call

def callgrind_total(path):
    with open(path) as f:
        for line in f:
            if line.startswith('totals:') or line.startswith('summary:'):
                return int(line.split()[1])
    raise RuntimeError('no totals in %s' % path)


def run_profile(args):
    """The service and fd-echo run under callgrind; each operation runs n1
    and then n2 times with the counters zeroed before and dumped after, and
    (Ir(n2) - Ir(n1)) / (n2 - n1) is its cost per call, start-up and
    set-up cancelled out. Then the same calls under strace -c (without
    valgrind) count system calls per call."""
    build = os.path.abspath(args.build_dir)
    if not shutil.which('valgrind') or not shutil.which('callgrind_control'):
        log('valgrind is not installed')
        return 77
    tmpcg = tempfile.mkdtemp(prefix='fdbroker-bench-callgrind-')
    kind = args.buses if ',' not in args.buses else 'dbus-daemon'
    bus = Bus(build, 'profile', wrapper=[shutil.which('valgrind'), '--tool=callgrind', '--callgrind-out-file=%s/%%p.out' % tmpcg],
              kind=kind)
    bus.start()
    out = {'bus': kind, 'ir_per_call': {}, 'retrieve_breakdown': [], 'direct_retrieve_breakdown': [], 'syscalls_per_call': {}}
    n1, n2 = (200, 1200) if args.quick else (500, 2500)
    try:
        bus.client('latency', '-n', 20, '--warmup', 0, 'ping', 'echo-ping')
        pids = {'fdbroker': bus.status()['pid'], 'fd-echo': bus.echo.pid}

        def measure(pid, op, n):
            before = set(os.listdir(tmpcg))
            subprocess.run(['callgrind_control', '-z', str(pid)], stdout=subprocess.DEVNULL, check=True)
            bus.client('latency', '-n', n, '--warmup', 0, op)
            time.sleep(0.3)
            subprocess.run(['callgrind_control', '-d', str(pid)], stdout=subprocess.DEVNULL, check=True)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                new = [f for f in set(os.listdir(tmpcg)) - before if f.startswith('%d.out.' % pid)]
                if new:
                    time.sleep(0.3)
                    return os.path.join(tmpcg, new[0])
                time.sleep(0.1)
            raise RuntimeError('no callgrind dump from %d' % pid)

        for who, op in (('fd-echo', 'echo'), ('fd-echo', 'echo-ping'), ('fdbroker', 'ping'),
                        ('fdbroker', 'retrieve'), ('fdbroker', 'retrieve-many'), ('fdbroker', 'deposit-remove'),
                        ('fd-echo', 'echo-retrieve'), ('fdbroker', 'direct-retrieve')):
            d1 = measure(pids[who], op, n1)
            d2 = measure(pids[who], op, n2)
            per = (callgrind_total(d2) - callgrind_total(d1)) / (n2 - n1)
            out['ir_per_call']['%s %s' % (who, op)] = round(per)
            log('%s %s: %.0f instructions per call' % (who, op, per))
            if op in ('retrieve', 'direct-retrieve'):
                # Inclusive cost per call of the functions that matter.
                ann = subprocess.run(['callgrind_annotate', '--inclusive=yes', '--threshold=100', d2],
                                     stdout=subprocess.PIPE, text=True).stdout
                d1ann = subprocess.run(['callgrind_annotate', '--inclusive=yes', '--threshold=100', d1],
                                       stdout=subprocess.PIPE, text=True).stdout

                def fn_costs(text):
                    costs = {}
                    for line in text.splitlines():
                        m = re.match(r'^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S+)', line)
                        if m and ':' in m.group(2):
                            fn = m.group(2).split(':', 1)[1]
                            costs.setdefault(fn, int(m.group(1).replace(',', '')))
                    return costs
                c1, c2 = fn_costs(d1ann), fn_costs(ann)
                keep = ('sd_bus_process', 'method_retrieve', 'reply_retrieve', 'append_info',
                        'sd_bus_message_append', 'sd_bus_message_new_method_return', 'sd_bus_send',
                        'options_parse_retrieve', 'options_check_name', 'name_is_valid', 'authorize_retrieve',
                        'peers_get_caller', 'registry_get', 'policy_decide', 'make_retrieved_fd',
                        'fdinfo_get_size', 'fdinfo_is_sealed', 'bus_socket_read_message', 'bus_socket_write_message',
                        'bus_message_from_malloc', 'sd_bus_message_read', 'on_post')
                for fn in keep:
                    if fn in c2:
                        out['retrieve_breakdown' if op == 'retrieve' else 'direct_retrieve_breakdown'].append(
                            {'function': fn, 'ir_per_call': round((c2[fn] - c1.get(fn, 0)) / (n2 - n1))})
    finally:
        bus.stop()
    bus.cleanup()

    # CPU time per call in each process (/proc/PID/schedstat: ns on a CPU),
    # then system calls per call (strace -c); both without valgrind.
    bus = Bus(build, 'cpu', kind=kind).start()
    try:
        bus.client('latency', '-n', 20, 'ping', 'retrieve')
        pids = {'fdbroker': bus.status()['pid'], 'fd-echo': bus.echo.pid, kind: bus.daemon_pid()}

        def oncpu():
            t = {}
            for who, pid in pids.items():
                with open('/proc/%d/schedstat' % pid) as f:
                    t[who] = int(f.read().split()[0])
            ru = resource.getrusage(resource.RUSAGE_CHILDREN)
            t['client'] = int((ru.ru_utime + ru.ru_stime) * 1e9)
            return t
        cn = 2000 if args.quick else 5000
        ops = ('echo', 'retrieve', 'deposit-remove', 'retrieve-many', 'echo-retrieve', 'direct-retrieve')
        samples = {op: [] for op in ops}
        # Rounds of every operation in turn; the median round per process.
        for _ in range(3 if args.quick else 5):
            for op in ops:
                t0 = oncpu()
                bus.client('latency', '-n', cn, '--warmup', 0, op)
                t1 = oncpu()
                samples[op].append({k: (t1[k] - t0[k]) / cn / 1000 for k in t0})
        out['cpu_us_per_call'] = {}
        for op in ops:
            out['cpu_us_per_call'][op] = {k: round(sorted(x[k] for x in samples[op])[len(samples[op]) // 2], 2)
                                          for k in samples[op][0]}
            log('CPU per %s call, us: %s' % (op, out['cpu_us_per_call'][op]))

        if shutil.which('strace'):
            for who, op in (('fd-echo', 'echo'), ('fdbroker', 'retrieve'), ('fdbroker', 'deposit-remove')):
                st = os.path.join(bus.tmp, 'strace.%s' % op)
                tr = subprocess.Popen(['strace', '-c', '-o', st, '-p', str(pids[who])], stderr=subprocess.DEVNULL)
                time.sleep(0.5)
                bus.client('latency', '-n', 1000, '--warmup', 0, op)
                time.sleep(0.3)
                tr.send_signal(signal.SIGINT)
                tr.wait(10)
                calls = {}
                with open(st) as f:
                    for line in f:
                        parts = line.split()
                        if len(parts) >= 5 and parts[-1] not in ('syscall', 'total') and parts[0][0].isdigit():
                            calls[parts[-1]] = round(int(parts[3]) / 1000, 2)
                out['syscalls_per_call']['%s %s' % (who, op)] = calls
    finally:
        bus.stop()
        bus.cleanup()
    shutil.rmtree(tmpcg, ignore_errors=True)
    print(json.dumps(out, indent=1))
    os.makedirs(args.results_dir, exist_ok=True)
    name = 'profile.json' if kind == 'dbus-daemon' else 'profile-%s.json' % kind
    with open(os.path.join(args.results_dir, name), 'w') as f:
        json.dump(out, f, indent=1)
        f.write('\n')
    return 0


# ---------------------------------------------------------------------------
# Profile under load: CPU per call of every process at N concurrent clients

def proc_sched(pid):
    """(ns on a CPU, ns waiting on a run queue, times run) from
    /proc/PID/schedstat, and the context switches from /proc/PID/status."""
    with open('/proc/%d/schedstat' % pid) as f:
        cpu, wait, slices = (int(x) for x in f.read().split()[:3])
    vol = invol = 0
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith('voluntary_ctxt_switches:'):
                vol = int(line.split()[1])
            elif line.startswith('nonvoluntary_ctxt_switches:'):
                invol = int(line.split()[1])
    return {'cpu': cpu, 'wait': wait, 'slices': slices, 'vcsw': vol, 'ivcsw': invol}


def perf_round(args, bus, pid, kind, op, clients, secs):
    """Where the broker's time goes in one more round (perf record -e
    cpu-clock: software sampling, as hardware counters are not available
    in this VM): results/perf-KIND-OP-N.txt, by object and by symbol."""
    if not shutil.which('perf'):
        log('perf not installed: no perf profile')
        return
    data = os.path.join(bus.tmp, 'perf.data')
    pr = subprocess.Popen(['perf', 'record', '-q', '-e', 'cpu-clock', '-F', '4999', '-g', '-o', data, '-p', str(pid)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    bus.client('throughput', '--clients', clients, '--rounds', 1, '--seconds', secs, op)
    pr.send_signal(signal.SIGINT)
    pr.wait(30)
    text = ''
    for extra in (['--sort', 'dso', '-g', 'none'], ['--sort', 'dso,sym', '-g', 'caller,0.5,callee', '--percent-limit', '2'],
                  ['--sort', 'dso,sym', '-g', 'none', '--percent-limit', '0.5']):
        text += subprocess.run(['perf', 'report', '-i', data, '--no-children', '--stdio'] + extra,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
    os.makedirs(args.results_dir, exist_ok=True)
    with open(os.path.join(args.results_dir, 'perf-%s-%s-%d.txt' % (kind, op, clients)), 'w') as f:
        f.write('# the broker (pid %d) during %d clients of %s on %s, %.1f s\n' % (pid, clients, op, kind, secs))
        f.write(text)


def run_profile_load(args):
    """CPU per call under concurrent clients: one throughput round of
    --seconds at each client count, bus Retrieve and direct Retrieve in
    turn (the order alternates), --reps times; around each, the deltas of
    the bus's and the broker's /proc/PID/schedstat and status, and of
    RUSAGE_CHILDREN for the clients (bench-client forks them and waits for
    them, so their CPU and context switches are in it; it includes their
    connection set-up and the 20 ms start spin, under 2 % of a 3 s round).
    Divided by the calls the round did. Also: how many CPUs the round kept
    busy (all CPU / wall time), and per process the CPU per wake-up."""
    build = os.path.abspath(args.build_dir)
    secs = 1.0 if args.quick else args.seconds
    reps = 2 if args.quick else args.reps
    counts = [int(c) for c in args.clients.split(',')]
    out = {'seconds': secs, 'reps': reps, 'loadavg_start': os.getloadavg(), 'buses': {}}
    for kind in args.buses.split(','):
        bus = Bus(build, 'load', echo=False, kind=kind).start()
        try:
            bus.client('latency', '-n', 20, 'ping', 'retrieve', 'direct-retrieve')
            pids = {'bus': bus.daemon_pid(), 'broker': bus.status()['pid']}
            res = {}
            for c in counts:
                for rep in range(reps):
                    ops = ('retrieve', 'direct-retrieve') if rep % 2 == 0 else ('direct-retrieve', 'retrieve')
                    for op in ops:
                        s0 = {who: proc_sched(pid) for who, pid in pids.items()}
                        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                        t0 = time.monotonic()
                        tp = bus.client('throughput', '--clients', c, '--rounds', 1, '--seconds', secs, op)[0]
                        wall = time.monotonic() - t0
                        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                        s1 = {who: proc_sched(pid) for who, pid in pids.items()}
                        if args.perf and rep == 0 and c == max(counts):
                            # Outside the measured round: perf's own CPU and
                            # its children stay out of the numbers above.
                            perf_round(args, bus, pids['broker'], kind, op, c, secs)
                        calls = tp['rounds'][0] * secs
                        row = {'ops_per_s': tp['rounds'][0]}
                        busy = 0.0
                        for who in pids:
                            d = {k: s1[who][k] - s0[who][k] for k in s0[who]}
                            row[who] = {'cpu_us': d['cpu'] / calls / 1e3, 'runq_wait_us': d['wait'] / calls / 1e3,
                                        'runs': d['slices'] / calls, 'vcsw': d['vcsw'] / calls,
                                        'ivcsw': d['ivcsw'] / calls,
                                        'cpu_us_per_run': d['cpu'] / max(1, d['slices']) / 1e3}
                            busy += d['cpu'] / 1e9
                        ccpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
                        row['clients'] = {'cpu_us': ccpu / calls * 1e6,
                                          'vcsw': (ru1.ru_nvcsw - ru0.ru_nvcsw) / calls,
                                          'ivcsw': (ru1.ru_nivcsw - ru0.ru_nivcsw) / calls}
                        busy += ccpu
                        row['all_cpu_us'] = sum(row[w]['cpu_us'] for w in ('bus', 'broker', 'clients')
                                                if not (op == 'direct-retrieve' and w == 'bus'))
                        row['cpus_busy'] = busy / wall
                        res.setdefault('%s %d' % (op, c), []).append(row)
                        log('%s, %d clients, %s: %.0f/s; CPU us per call: clients %.1f, bus %.1f, broker %.1f; '
                            'broker runs per call %.2f, %.2f CPUs busy'
                            % (kind, c, op, tp['rounds'][0], row['clients']['cpu_us'], row['bus']['cpu_us'],
                               row['broker']['cpu_us'], row['broker']['runs'], row['cpus_busy']))
            # The median round per key and value.
            med = {}
            for key, rows in res.items():
                def m(get):
                    v = sorted(get(r) for r in rows)
                    return round(v[len(v) // 2], 3)
                med[key] = {'ops_per_s': m(lambda r: r['ops_per_s']), 'all_cpu_us': m(lambda r: r['all_cpu_us']),
                            'cpus_busy': m(lambda r: r['cpus_busy']), 'rounds': rows}
                for who in ('clients', 'bus', 'broker'):
                    med[key][who] = {k: m(lambda r, k=k: r[who][k]) for k in rows[0][who]}
            out['buses'][kind] = med
        finally:
            bus.stop()
            bus.cleanup()
    out['loadavg_end'] = os.getloadavg()
    print(json.dumps({k: {kk: {x: y for x, y in vv.items() if x != 'rounds'} for kk, vv in v.items()}
                      for k, v in out['buses'].items()}, indent=1))
    os.makedirs(args.results_dir, exist_ok=True)
    with open(os.path.join(args.results_dir, 'profile-load.json'), 'w') as f:
        json.dump(out, f, indent=1)
        f.write('\n')
    return 0


# ---------------------------------------------------------------------------
# The soak

def ensure_soak_users():
    out = []
    for u in SOAK_USERS:
        try:
            pwd.getpwnam(u)
        except KeyError:
            subprocess.run(['useradd', '--system', '--no-create-home', '--shell', '/usr/sbin/nologin', u],
                           check=True)
        out.append(pwd.getpwnam(u))
    return out


def soak_round(args, build, bus, users, ops, max_seconds, seed):
    """One round: the users' clients run at once; returns their reports
    and the broker's state once their entries are gone."""
    per_user = ops // len(users)
    procs = []
    for i, pw in enumerate(users):
        cmd = ['setpriv', '--reuid=%d' % pw.pw_uid, '--regid=%d' % pw.pw_gid, '--clear-groups',
               os.path.join(build, 'bench', 'bench-client'), 'soak', '--address=' + bus.address,
               '--ops', str(per_user), '--user-index', str(i), '--users', ','.join(SOAK_USERS),
               '--seed', str(seed), '--max-seconds', str(max_seconds)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True))
    reports = []
    for p in procs:
        outp, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError('a soak client failed (exit %d)' % p.returncode)
        reports += [json.loads(line) for line in outp.splitlines() if line.startswith('{')]
    # Persistent entries stay: root removes whatever is left. Expiry
    # timers, waits and disconnections settle within a second.
    cleared = bus.client('clear')[0]
    deadline = time.monotonic() + 5
    end = bus.status()
    while end['entries'] > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
        end = bus.status()
    return reports, cleared, end


def run_soak(args):
    """The operations are split over --rounds rounds against the same
    broker: its open fds must be back to the start after each, and its RSS
    must stop growing after the first (malloc's high-water mark is not a
    leak; growth round after round would be)."""
    build = os.path.abspath(args.build_dir)
    if os.geteuid() != 0:
        log('the soak needs root (it creates fdbbench-* users and acts as them)')
        return 77
    users = ensure_soak_users()
    bus = Bus(build, 'soak', limits=SOAK_LIMITS, echo=False).start()
    ok = False
    try:
        bus.client('latency', '-n', 10, 'ping')
        start = bus.status()
        log('soak: %d ops from %d users in %d rounds, at most %d s; broker pid %d, %d fds, VmRSS %d kB at the start'
            % (args.ops, len(users), args.rounds, args.max_seconds, start['pid'], start['fds'], start['rss_kb']))
        t0 = time.monotonic()
        reports, rounds = [], []
        for k in range(args.rounds):
            left = args.max_seconds - (time.monotonic() - t0)
            if left <= 1:
                break
            rep, cleared, end = soak_round(args, build, bus, users, args.ops // args.rounds, left,
                                           args.seed + k)
            reports += rep
            rounds.append({'ops': sum(r['ops'] for r in rep), 'cleared': cleared['removed'], 'end': end})
            log('soak round %d: %d ops; fds %d, VmRSS %d kB, entries %d' % (
                k + 1, rounds[-1]['ops'], end['fds'], end['rss_kb'], end['entries']))
        elapsed = time.monotonic() - t0
        end = rounds[-1]['end']
        total = sum(r['ops'] for r in reports)
        outcomes = {}
        for r in reports:
            for key, v in r['outcomes'].items():
                outcomes[key] = outcomes.get(key, 0) + v
        result = {
            'ops': total, 'users': len(users), 'rounds': rounds, 'seconds': round(elapsed, 1),
            'ops_per_s': round(total / elapsed), 'limits': SOAK_LIMITS.split('\n', 1)[1].strip().split('\n'),
            'outcomes': dict(sorted(outcomes.items(), key=lambda kv: -kv[1])),
            'start': start, 'end': end,
            'fd_delta': end['fds'] - start['fds'], 'rss_delta_kb': end['rss_kb'] - start['rss_kb'],
            'rss_delta_after_first_round_kb': end['rss_kb'] - rounds[0]['end']['rss_kb'],
            'same_pid': end['pid'] == start['pid'],
        }
        ok = (result['same_pid'] and end['entries'] == 0
              and all(r['end']['fds'] == start['fds'] for r in rounds))
        result['ok'] = ok
        print(json.dumps(result, indent=1))
        os.makedirs(args.results_dir, exist_ok=True)
        with open(os.path.join(args.results_dir, 'soak.json'), 'w') as f:
            json.dump(result, f, indent=1)
            f.write('\n')
        log('soak: %d ops in %.0f s (%d/s); fds %d -> %d, VmRSS %d -> %d kB (%+d kB after round 1), '
            'entries left %d: %s' % (total, elapsed, result['ops_per_s'], start['fds'], end['fds'], start['rss_kb'],
                                     end['rss_kb'], result['rss_delta_after_first_round_kb'], end['entries'],
                                     'OK' if ok else 'FAILED'))
    finally:
        bus.stop()
        if ok and not args.keep:
            bus.cleanup()
        else:
            log('kept %s (service log: %s)' % (bus.tmp, bus.log_path))
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('mode', choices=['bench', 'soak', 'profile', 'plot'])
    ap.add_argument('--quick', action='store_true', help='fewer iterations (about a minute)')
    ap.add_argument('--build-dir', default=os.environ.get('FDBROKER_BUILD_DIR', os.path.join(SOURCE, 'build')))
    ap.add_argument('--results-dir', default=os.path.join(HERE, 'results'))
    ap.add_argument('--keep', action='store_true', help='keep the temporary directories and logs')
    ap.add_argument('--buses', default='dbus-daemon,dbus-broker',
                    help='bench: the bus implementations, in turn (default: dbus-daemon,dbus-broker); '
                         'profile: the one to profile on (default: dbus-daemon)')
    ap.add_argument('--only', help='bench: run only these sections (comma-separated: %s)' % ', '.join(SECTIONS))
    ap.add_argument('--ops', type=int, default=1000000, help='soak: operations in all')
    ap.add_argument('--max-seconds', type=float, default=600, help='soak: stop after this long')
    ap.add_argument('--rounds', type=int, default=4, help='soak: split the operations into this many rounds')
    ap.add_argument('--seed', type=int, default=1)
    ap.add_argument('--clients', help='profile: CPU per call under this many concurrent clients instead '
                                      '(comma-separated, e.g. 1,8; writes results/profile-load.json)')
    ap.add_argument('--seconds', type=float, default=3.0, help='profile --clients: length of a round')
    ap.add_argument('--perf', action='store_true', help='profile --clients: also perf record the broker '
                                                      '(results/perf-BUS-OP-N.txt)')
    ap.add_argument('--reps', type=int, default=3, help='profile --clients: rounds per operation and count')
    args = ap.parse_args()
    if args.mode == 'bench':
        return run_benchmarks(args)
    if args.mode == 'profile':
        return run_profile_load(args) if args.clients else run_profile(args)
    if args.mode == 'plot':
        with open(os.path.join(args.results_dir, 'latest.json')) as f:
            plot(json.load(f), args.results_dir)
        return 0
    return run_soak(args)


if __name__ == '__main__':
    sys.exit(main())
