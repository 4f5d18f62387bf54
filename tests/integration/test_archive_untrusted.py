"""Archives are untrusted input, for real: a counter exported on fleet-1 by the module, rewritten as an attacker
would (members changed, the manifest and its digest recomputed: every checksum agrees), imported on fleet-2.

- A checkpoint name that is an absolute path, or climbs out with "..": refused for its name; the path it names
  is not created; no container is created.
- A configuration that asks for the host's /etc and CAP_SYS_ADMIN: refused, each item named with the allow name
  that permits it; allowed by name, the container is created with exactly that, the result reports the mount and
  the capability the engine really gave it, and the counter resumed.
- A symbolic link chain whose links each look inside, and together lead out: refused, nothing unpacked.
- A core image of the checkpoint replaced by one that gives the process CAP_SYS_ADMIN (CRIU restores
  credentials from the images, not from the configuration): refused; the untouched archive imports.
- Signed archives: signed by the export with an SSH key, verified by the import against allowed_signers and
  resumed; the same archive tampered with on the way (checksums recomputed, the signature kept) is refused by
  the signature before a byte of it is read as an archive; move_container with keys signs on the source,
  verifies on the target and resumes the counter, and with a target that does not trust the key it stops
  before the import creates anything, the source stopped with its checkpoint, as the runbook says.
"""

import os
import shutil
import subprocess
import tempfile
import uuid

import docker
import pytest

import forge
from helpers import (COUNTER, IMAGE, call_module, checkpoints, collection_playbook, counter, counter_lines,
                     run_playbook, wait_counter)


@pytest.fixture
def work():
    directory = tempfile.mkdtemp(prefix='cryo-untrusted-')
    os.chmod(directory, 0o700)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def made(fleet):
    """Names of containers a test makes on fleet-1 and fleet-2, removed afterwards on both."""
    names = set()
    yield names
    for host in ('fleet-1', 'fleet-2'):
        for name in names:
            try:
                fleet.clients[host].remove_container(name, force=True)
            except docker.errors.NotFound:
                pass


def start_counter(fleet, made, host='fleet-1'):
    """A counter with Docker's defaults (seccomp and all) on host."""
    client = fleet.clients[host]
    name = 'untrusted-%s' % uuid.uuid4().hex[:6]
    made.add(name)
    client.create_container(IMAGE, ['/bin/sh', '-c', COUNTER], name=name, stop_timeout=1)
    client.start(name)
    wait_counter(client, name, 2)
    return name


def export(fleet, name, path, **args):
    result = call_module('docker_checkpoint_export', dict(
        args, container=name, checkpoint='move', path=path, compression='none',
        docker_host=fleet.docker_host('fleet-1')))
    assert result.get('changed') and not result.get('failed'), result.get('msg', result)
    return result


def import_(fleet, path, **args):
    return call_module('docker_checkpoint_import', dict(args, path=path, docker_host=fleet.docker_host('fleet-2')))


def staging(fleet):
    return os.path.join(fleet.clients['fleet-2'].info()['DockerRootDir'], 'cryo-import')


def staged(fleet):
    return sorted(os.listdir(staging(fleet))) if os.path.isdir(staging(fleet)) else []


def refused(fleet, result, reason, name):
    """The import failed with reason, a clear msg, and created nothing on fleet-2."""
    assert result.get('failed') and result.get('reason') == reason, result
    assert 'Traceback' not in result['msg'] and 'nothing was created' in result['msg'].lower(), result['msg']
    assert not fleet.clients['fleet-2'].containers(all=True, filters={'name': name})
    assert staged(fleet) == []
    return result['msg']


def set_checkpoint_name(value):
    def edit(members):
        manifest = forge.manifest_of(members)
        manifest['checkpoint']['name'] = value
        forge.set_manifest(members, manifest)
    return edit


@pytest.mark.parametrize('how', ['absolute', 'climbing'])
def test_a_checkpoint_name_that_reaches_into_the_host_is_refused(fleet, made, work, how):
    name = start_counter(fleet, made)
    path = os.path.join(work, 'counter.tar')
    export(fleet, name, path, leave_running=True)
    target = '/var/tmp/cryo-pwned-%s' % uuid.uuid4().hex[:8]
    value = target if how == 'absolute' else '../../../../../../..' + target
    bad = forge.rewrite(path, os.path.join(work, 'bad.tar'), set_checkpoint_name(value))
    msg = refused(fleet, import_(fleet, bad), 'bad_name', name)
    assert 'the checkpoint name %r it carries is not valid' % value in msg, msg
    assert not os.path.lexists(target), 'the import wrote %s' % target


def test_a_configuration_that_asks_for_the_host_is_refused_unless_allowed(fleet, made, work):
    name = start_counter(fleet, made)
    path = os.path.join(work, 'counter.tar')
    export(fleet, name, path, leave_running=True)

    def ask_for_the_host(members):
        record = forge.get(members, 'container.json')
        data = record.json()
        data['host_config'].update(Binds=['/etc:/host-etc:ro'], CapAdd=['SYS_ADMIN'])
        data['mounts'] = []  # what the record says it mounts: the module must not believe it
        record.set_json(data)

    bad = forge.rewrite(path, os.path.join(work, 'host.tar'), ask_for_the_host)
    msg = refused(fleet, import_(fleet, bad), 'host_access', name)
    assert '[binds] bind mount /etc -> /host-etc' in msg and '[capabilities] capability SYS_ADMIN' in msg, msg
    assert 'add to allow: [binds, capabilities]' in msg, msg

    partly = import_(fleet, bad, allow=['binds'])
    assert refused(fleet, partly, 'host_access', name) and partly['allow_missing'] == ['capabilities'], partly

    last = counter(fleet.clients['fleet-1'], name)
    allowed = import_(fleet, bad, allow=['binds', 'capabilities'])
    assert allowed.get('changed') and allowed['verified'] is True, allowed.get('msg', allowed)
    info = fleet.clients['fleet-2'].inspect_container(name)
    # The result says what the container really has, as the engine reports it.
    effective = allowed['container']['effective']
    assert {(m['source'], m['destination']) for m in effective['mounts']} == {
        (m['Source'], m['Destination']) for m in info['Mounts']} == {('/etc', '/host-etc')}
    assert effective['capabilities_added'] == info['HostConfig']['CapAdd'] == ['SYS_ADMIN']
    assert allowed['container']['mounts'] == ['/etc:/host-etc']
    wait_counter(fleet.clients['fleet-2'], name, last + 2)
    lines = counter_lines(fleet.clients['fleet-2'], name)
    assert lines[0] <= last + 1 and lines == list(range(lines[0], lines[0] + len(lines))), (last, lines)


def test_a_symlink_chain_that_leads_out_is_refused(fleet, made, work):
    name = start_counter(fleet, made)
    path = os.path.join(work, 'counter.tar')
    export(fleet, name, path, leave_running=True)

    def chain(members):
        members += [forge.link('checkpoint/u', '..'), forge.link('checkpoint/w', 'u/..'),
                    forge.link('checkpoint/core-99.img', 'w/etc/hostname')]

    bad = forge.rewrite(path, os.path.join(work, 'links.tar'), chain)
    msg = refused(fleet, import_(fleet, bad), 'link', name)
    assert "its member 'checkpoint/u' is a symbolic link to '..'" in msg, msg


def test_a_checkpoint_image_that_hands_a_process_sys_admin_is_refused(fleet, made, work):
    """CRIU restores each thread's capability sets from its core image: the counter's real core image replaced by
    one that holds CAP_SYS_ADMIN (the container is not given it) is refused as host access, nothing created."""
    name = start_counter(fleet, made)
    path = os.path.join(work, 'counter.tar')
    export(fleet, name, path, leave_running=True)
    mask = forge.DEFAULT_CAPABILITIES | forge.SYS_ADMIN

    def escalate(members):
        forge.get(members, 'checkpoint/core-1.img').set_bytes(forge.core_image(bounding=mask, effective=mask,
                                                                               seccomp=2))

    bad = forge.rewrite(path, os.path.join(work, 'caps.tar'), escalate)
    result = import_(fleet, bad)
    msg = refused(fleet, result, 'host_access', name)
    assert '[capabilities] checkpoint core-1.img holds SYS_ADMIN in its bounding set' in msg, msg
    # The untouched archive of the same container: Docker's default capabilities and seccomp filter, nothing asked.
    good = import_(fleet, path)
    assert good.get('changed') and good['verified'] and good['host_access'] == [], good.get('msg', good)


def keygen(directory, name):
    """An ed25519 key pair without passphrase; (private key path, allowed_signers line)."""
    key = os.path.join(directory, name)
    subprocess.run(['ssh-keygen', '-t', 'ed25519', '-N', '', '-q', '-C', name, '-f', key], check=True)
    with open(key + '.pub', encoding='ascii') as handle:
        public = ' '.join(handle.read().split()[:2])
    return key, '%s@fleet namespaces="cryo.docker.archive" %s\n' % (name, public)


def signers(directory, *lines):
    path = os.path.join(directory, 'allowed_signers-%s' % uuid.uuid4().hex[:6])
    with open(path, 'w', encoding='ascii') as handle:
        handle.writelines(lines)
    return path


def test_a_signed_archive_resumes_and_a_tampered_one_is_refused_before_it_is_read(fleet, made, work):
    key, line = keygen(work, 'ops')
    allowed = signers(work, line)
    name = start_counter(fleet, made)
    path = os.path.join(work, 'counter.tar')
    exported = export(fleet, name, path, leave_running=True, signing_key=key)
    assert exported['signature']['path'] == path + '.sig' and os.path.isfile(path + '.sig')

    # On the way: the configuration rewritten, every checksum recomputed, the signature kept beside it.
    tampered = os.path.join(work, 'tampered.tar')

    def widen(members):
        record = forge.get(members, 'container.json')
        data = record.json()
        data['host_config']['Binds'] = ['/:/host']
        record.set_json(data)

    forge.rewrite(path, tampered, widen)
    shutil.copy(path + '.sig', tampered + '.sig')
    result = import_(fleet, tampered, allowed_signers=allowed, allow=['binds'])
    msg = refused(fleet, result, 'bad_signature', name)
    assert 'refused before anything was unpacked' in msg, msg

    # Unsigned where a signature is required; signed by a key that is not trusted.
    os.unlink(tampered + '.sig')
    refused(fleet, import_(fleet, tampered, allowed_signers=allowed), 'unsigned', name)
    _other, other_line = keygen(work, 'other')
    refused(fleet, import_(fleet, path, allowed_signers=signers(work, other_line)), 'signer_not_allowed', name)

    last = counter(fleet.clients['fleet-1'], name)
    imported = import_(fleet, path, allowed_signers=allowed)
    assert imported.get('changed') and imported['verified'] is True, imported.get('msg', imported)
    assert imported['signature']['principal'] == 'ops@fleet'
    assert imported['signature']['key'] == exported['signature']['key']
    wait_counter(fleet.clients['fleet-2'], name, last + 2)


def move(fleet, name, directory, **extra):
    return run_playbook(collection_playbook('move_container'), fleet.inventory, extra_vars=dict(
        extra, move_container=name, move_from='fleet-1', move_to='fleet-2',
        move_archive_dir=directory + '/{{ inventory_hostname }}'))


def test_move_container_signs_on_the_source_and_verifies_on_the_target(fleet, made, work):
    key, line = keygen(work, 'ops')
    _other, other_line = keygen(work, 'other')
    name = start_counter(fleet, made)
    source, target = fleet.clients['fleet-1'], fleet.clients['fleet-2']

    # A target that does not trust the source's key: the import refuses before it creates anything.
    distrust = move(fleet, name, os.path.join(work, 'moves'), move_signing_key=key,
                    move_allowed_signers=signers(work, other_line))
    assert distrust.returncode != 0, distrust.stdout[-3000:]
    assert 'signer_not_allowed' in distrust.stdout or 'does not list' in distrust.stdout, distrust.stdout[-3000:]
    assert not target.containers(all=True, filters={'name': name})
    assert not source.inspect_container(name)['State']['Running'] and checkpoints(source, name) == ['move']
    frozen = counter_lines(source, name)[-1]

    # The operator trusts the key on the target and runs the move again: it carries on from that checkpoint.
    moved = move(fleet, name, os.path.join(work, 'moves'), move_signing_key=key,
                 move_allowed_signers=signers(work, line))
    assert moved.returncode == 0, moved.stdout[-5000:]
    assert 'signed by ops@fleet' in moved.stdout, moved.stdout[-3000:]
    wait_counter(target, name, frozen + 2)
    lines = counter_lines(target, name)
    assert lines == list(range(frozen + 1, frozen + 1 + len(lines))), (frozen, lines)
    assert checkpoints(source, name) == []
