"""cryo.docker.reboot_hosts with a real reboot of a real Debian host (ansible.builtin.reboot over SSH).

A counter (restart policy unless-stopped) and a busybox web server (policy always, its page a UUID written
as it started, published on the guest's loopback) run with Docker's defaults. The playbook checkpoints
them, reboots the guest, and restores them. The reboot runs once per guest (the `rebooted` fixture); each
test judges one outcome. Only the guests of guests.REBOOT (CRYO_GUEST_REBOOT, default bookworm) reboot: the others'
tests of this file are deselected (tests/guests/conftest.py).
"""

import json
import os
import signal
import subprocess
import tempfile
import time

import pytest

from guests import GuestDocker, PlaybookRun
from helpers import COUNTER, collection_playbook, counter_lines, runs, wait_counter

REBOOT_HOSTS = collection_playbook('reboot_hosts')
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


def test_without_dbus_reboot_hosts_stops_before_any_checkpoint(ready, containers):
    """systemd without the D-Bus system bus: ansible.builtin.reboot's `shutdown -r` would fail after the freeze.
    checkpoint_preflight's `host reboot` check says so and the maintenance role stops before it checkpoints
    anything: the counter never stopped, no checkpoint was taken."""
    name = containers.run(COUNTER)
    engine = GuestDocker(ready)
    wait_counter(engine, name, 2, timeout=90)
    boot = ready.boot_id()
    ready.run('systemctl stop dbus.socket dbus.service', timeout=120)
    try:
        proc = ready.playbook(REBOOT_HOSTS, timeout=REBOOT_TIMEOUT)
    finally:
        ready.run('systemctl start dbus.socket dbus.service', timeout=120)
    listed = ready.run('ls /var/lib/docker/containers/%s/checkpoints 2>/dev/null'
                       % engine.inspect_container(name)['Id'], timeout=60, check=False).stdout.split()
    lines = counter_lines(engine, name)
    outcome = (proc.returncode != 0, 'without the D-Bus system bus' in proc.stdout, ready.boot_id() == boot,
               engine.inspect_container(name)['State']['Running'], listed, len(runs(lines)))
    assert outcome == (True, True, True, True, [], 1), (outcome, proc.stdout[-4000:])


@pytest.fixture(scope='module')
def rebooted(ready, say):
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
        yield PlaybookRun(proc=proc, seconds=seconds, boot_before=boot_before, boot_after=ready.boot_id(),
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


# -- a run killed after the freeze, a real reboot, then recover ------------------------------------------------

# The maintenance action: tell the test the containers are frozen, then wait to be killed.
FROZEN_THEN_WAIT = """---
- name: Tell the test that every container is checkpointed
  ansible.builtin.copy:
    content: frozen
    dest: "{{ cryo_frozen_marker }}"
    mode: "0600"
  delegate_to: localhost
- name: Wait here until the test kills the controller
  ansible.builtin.wait_for:
    timeout: 1200
"""
RECOVER = collection_playbook('recover')


@pytest.fixture(scope='module')
def recovered(ready, say):
    """reboot_hosts with a controller killed (SIGKILL to ansible-playbook and everything below it) once every
    container was checkpointed, the guest then rebooted for real (`systemctl reboot`), then the recover playbook."""
    counter = 'cryo-recover-counter'
    ready.run('docker rm -f %s' % counter, check=False)
    try:
        ready.run(['docker', 'run', '-d', '--name', counter, '--restart', 'always', 'cryo-test/busybox:1',
                   '/bin/sh', '-c', COUNTER], timeout=180)
        wait_counter(GuestDocker(ready), counter, 3, timeout=90)
        boot_before = ready.boot_id()
        with tempfile.TemporaryDirectory(prefix='cryo-guest-recover-') as tmp:
            tasks = os.path.join(tmp, 'frozen_then_wait.yml')
            with open(tasks, 'w') as handle:
                handle.write(FROZEN_THEN_WAIT)
            marker = os.path.join(tmp, 'frozen')
            argv, env = ready.playbook_command(tmp, REBOOT_HOSTS, extra_vars={
                'maintenance_action': 'tasks', 'maintenance_tasks_file': tasks, 'cryo_frozen_marker': marker})
            controller = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,  # pylint: disable=consider-using-with
                                          stderr=subprocess.STDOUT, text=True, start_new_session=True)
            try:
                deadline = time.monotonic() + REBOOT_TIMEOUT
                while not os.path.exists(marker) and controller.poll() is None and time.monotonic() < deadline:
                    time.sleep(1)
                frozen = os.path.exists(marker)
            finally:
                os.killpg(controller.pid, signal.SIGKILL)
                output = controller.communicate()[0]
        if not frozen:
            raise AssertionError('reboot_hosts never reached its action (rc %s):\n%s'
                                 % (controller.returncode, output[-6000:]))
        manifest_frozen = json.loads(ready.run('cat %s' % MANIFEST, timeout=60).stdout)
        ready.run('systemctl reboot', timeout=30, check=False)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                ready.wait_ssh(300)
                if ready.boot_id() != boot_before:
                    break
            except (RuntimeError, AssertionError, subprocess.TimeoutExpired):
                pass  # still going down, or not up yet
            time.sleep(5)
        started = time.monotonic()
        proc = ready.playbook(RECOVER, timeout=REBOOT_TIMEOUT)
        say('%s: killed after the freeze, rebooted, recover in %.0f s (rc %s)'
            % (ready.host, time.monotonic() - started, proc.returncode))
        yield PlaybookRun(proc=proc, counter=counter, boot_before=boot_before, boot_after=ready.boot_id(),
                          manifest_frozen=manifest_frozen)
    finally:
        ready.run('docker rm -f %s' % counter, check=False)


def test_recover_after_a_killed_run_and_a_real_reboot_passes(recovered):
    assert recovered.proc.returncode == 0 and recovered.boot_after != recovered.boot_before, recovered.output


def test_the_killed_run_had_frozen_the_counter(recovered):
    # Every running container of the guest was frozen (the reboot tests' ones too, still there).
    entries = {entry['container']: entry['status'] for entry in recovered.manifest_frozen['containers']}
    assert recovered.counter in entries and set(entries.values()) == {'checkpointed'}, recovered.manifest_frozen


def test_the_counter_continues_after_recover(recovered, ready):
    engine = GuestDocker(ready)
    last = counter_lines(engine, recovered.counter)[-1]
    wait_counter(engine, recovered.counter, last + 2, timeout=90)
    lines = counter_lines(engine, recovered.counter)
    policy = engine.inspect_container(recovered.counter)['HostConfig']['RestartPolicy']['Name']
    assert (lines[0], len(runs(lines)), policy) == (0, 1, 'always'), (runs(lines), policy)
