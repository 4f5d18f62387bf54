"""cryo.docker.reboot_hosts with a real reboot of a real Debian host (ansible.builtin.reboot over SSH).

A counter (restart policy unless-stopped) and a busybox web server (policy always, its page a UUID written
as it started, published on the guest's loopback) run with Docker's defaults. The playbook checkpoints
them, reboots the guest, and restores them. The reboot runs once per guest (the `rebooted` fixture); each
test judges one outcome. CRYO_GUEST_REBOOT (default: every suite) chooses the guests that reboot.
"""

import json
import os
import time

import pytest

from guests import GuestDocker
from helpers import COUNTER, collection_playbook, counter_lines, runs, wait_counter

REBOOT_HOSTS = collection_playbook('reboot_hosts')
REBOOT_SUITES = os.environ.get('CRYO_GUEST_REBOOT', 'bookworm,trixie').split(',')
# The checkpoints, a reboot (~80 s to SSH under TCG) and the restores.
REBOOT_TIMEOUT = 1800
WEB_PORT = 18080
MANIFEST = '/var/lib/cryo/maintenance/manifest.json'


def page(guest, timeout=60):
    """The web server's page, fetched in the guest through its published port."""
    deadline = time.monotonic() + timeout
    while True:
        # No -T: Debian 12's static busybox wget crashes (SIGSEGV) with it; ssh's timeout bounds the call.
        proc = guest.run('busybox wget -q -O- http://127.0.0.1:%d/index.html' % WEB_PORT, timeout=30, check=False)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
        if time.monotonic() > deadline:
            raise AssertionError('nothing served on the guest\'s port %d: %s' % (WEB_PORT, proc.stderr))
        time.sleep(2)


class Reboot:
    """What a reboot_hosts run did: proc, seconds, boot ids before and after, the containers, the page before."""

    def __init__(self, **fields):
        self.__dict__.update(fields)

    @property
    def output(self):
        return self.proc.stdout[-6000:] + self.proc.stderr[-3000:]


@pytest.fixture(scope='module')
def rebooted(ready, say):
    if ready.suite not in REBOOT_SUITES:
        pytest.skip('%s does not reboot here (CRYO_GUEST_REBOOT=%s)' % (ready.host, ','.join(REBOOT_SUITES)))
    counter = 'cryo-reboot-counter'
    web = 'cryo-reboot-web'
    ready.run('docker rm -f %s %s' % (counter, web), check=False)
    try:
        ready.run(['docker', 'run', '-d', '--name', counter, '--restart', 'unless-stopped', 'cryo-test/busybox:1',
                   '/bin/sh', '-c', COUNTER], timeout=180)
        ready.run(['docker', 'run', '-d', '--name', web, '--restart', 'always', '-p', '127.0.0.1:%d:8080' % WEB_PORT,
                   'cryo-test/busybox:1', '/bin/sh', '-c',
                   'cat /proc/sys/kernel/random/uuid > /www/index.html; exec httpd -f -p 8080 -h /www'], timeout=180)
        page_before = page(ready)
        wait_counter(GuestDocker(ready), counter, 3, timeout=90)
        boot_before = ready.boot_id()
        started = time.monotonic()
        proc = ready.playbook(REBOOT_HOSTS, timeout=REBOOT_TIMEOUT)
        seconds = time.monotonic() - started
        say('%s: reboot_hosts in %.0f s (rc %s)' % (ready.host, seconds, proc.returncode))
        ready.wait_ssh(300)
        yield Reboot(proc=proc, seconds=seconds, boot_before=boot_before, boot_after=ready.boot_id(),
                     counter=counter, web=web, page_before=page_before)
    finally:
        ready.run('docker rm -f %s %s' % (counter, web), check=False)


def test_reboot_hosts_passes(rebooted):
    assert rebooted.proc.returncode == 0, rebooted.output


def test_the_guest_really_rebooted(rebooted):
    assert rebooted.boot_after != rebooted.boot_before


def test_every_container_was_restored_and_verified(rebooted, ready):
    manifest = json.loads(ready.run('cat %s' % MANIFEST, timeout=60).stdout)
    assert manifest['status'] == 'complete' and all(
        entry['status'] == 'restored' and entry['verified'] for entry in manifest['containers']) and sorted(
        entry['container'] for entry in manifest['containers']) == sorted([rebooted.counter, rebooted.web]), manifest


def test_the_counter_continues_unbroken(rebooted, ready):
    engine = GuestDocker(ready)
    last = counter_lines(engine, rebooted.counter)[-1]
    wait_counter(engine, rebooted.counter, last + 2, timeout=90)
    lines = counter_lines(engine, rebooted.counter)
    assert lines == list(range(len(lines))), runs(lines)


def test_the_web_server_serves_the_same_page(rebooted, ready):
    # A cold start would have written a new UUID.
    assert page(ready) == rebooted.page_before


def test_restart_policies_are_back(rebooted, ready):
    engine = GuestDocker(ready)
    policies = [engine.inspect_container(name)['HostConfig']['RestartPolicy']['Name']
                for name in (rebooted.counter, rebooted.web)]
    assert policies == ['unless-stopped', 'always'], policies
