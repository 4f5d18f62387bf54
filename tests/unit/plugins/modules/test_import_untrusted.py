"""cryo.docker.docker_checkpoint_import against archives an attacker rewrote: every member as the attacker wants it,
the manifest and its digest recomputed (tests/testbed/forge.py), so that every checksum agrees. What such an archive
asks for is refused anyway, each case with its `reason` and a sentence that says what, why and what to do; nothing
is created on the engine, nothing is written outside the staging directory, and no traceback. What an operator
allows, a trusted signature, and what the import flushes to disk before the restore relies on it, are checked too."""

import copy
import importlib.util
import io
import json
import os
import subprocess
import tarfile
import time

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _archive, _import
from ansible_collections.cryo.docker.plugins.module_utils._signing import NAMESPACE

from fake_archive_engine import IMAGE_ID, ArchiveContainer
from fake_engine import failed_clearly

# The import's bed, the exported web container and its helpers: one home for them (the fixtures are used by name).
from test_docker_checkpoint_import import (  # noqa: F401 pylint: disable=unused-import
    archive, bed, export, nothing_created, run_import)


def _load_forge():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'testbed', 'forge.py')
    spec = importlib.util.spec_from_file_location('cryo_testbed_forge', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


forge = _load_forge()

GIB = 1 << 30


# -- the attacker's tools ------------------------------------------------------------------------------

def edit_json(name, change):
    """An edit for forge.rewrite: change(value) changes the JSON member name in place."""
    def edit(members):
        member = forge.get(members, name)
        value = member.json()
        change(value)
        member.set_json(value)
    return edit


def rewrite(archive_path, dest, *edits, compress=False):
    """The archive at archive_path rewritten by the edits into dest, every checksum recomputed."""
    def edit(members):
        for one in edits:
            members = one(members) or members
        return members
    return forge.rewrite(archive_path, str(dest), edit, compress=compress)


def set_in(*keys_and_value):
    """change(value) that sets value[k1][k2]... to the last argument."""
    *keys, value = keys_and_value

    def change(data):
        for key in keys[:-1]:
            data = data[key]
        data[keys[-1]] = value
    return change


def refused(result, reason, path, *words):
    """A refusal with that reason, naming the archive, in a sentence for a person (no traceback); its msg."""
    msg = failed_clearly(result, '')
    assert result.get('reason') == reason, (result.get('reason'), msg)
    assert path in msg, msg
    for word in words:
        assert word in msg, (word, msg)
    return msg


def raw_tar(path):
    with open(path, 'rb') as handle:
        return handle.read()


def header_offset(path, name):
    """Where the header (its pax header first, if any) of member name starts in the uncompressed archive at path."""
    with tarfile.open(path) as tar:
        return tar.getmember(name).offset


def end_blocks():
    return b'\0' * tarfile.RECORDSIZE


# -- 1. the checkpoint name is a directory name, never a path ---------------------------------------------

@pytest.mark.parametrize('kind', ['absolute', 'climbing', 'nul', 'newline', 'slash', 'long'])
def test_a_checkpoint_name_that_is_no_name_is_refused(bed, archive, capsys, tmp_path, kind):
    target = tmp_path / 'pwned'
    name = dict(absolute=str(target), climbing='../../../' + str(target), nul='move\x00' + str(target),
                newline='move\n', slash='mo/ve', long='m' * 300)[kind]
    path = rewrite(archive['path'], tmp_path / 'attack.tar',
                   edit_json('manifest.json', set_in('checkpoint', 'name', name)))
    result = run_import(capsys, bed, path=path)
    msg = refused(result, 'bad_name', path, 'the checkpoint name', 'is not valid', 'do not use it',
                  'Nothing was created')
    assert result['name_kind'] == 'checkpoint'
    if kind == 'long':
        assert 'it is 300 characters long, and at most 128 are allowed' in msg
    assert '\n' not in msg and '\x00' not in msg, 'the name is shown escaped'
    nothing_created(bed)
    assert not os.path.lexists(str(target)), 'the attack\'s target was not created'
    for root, dirs, files in os.walk(str(tmp_path)):
        assert not any('pwned' in name for name in dirs + files), (root, dirs, files)


# -- 2. volume members and destinations -------------------------------------------------------------------

def add_volume(**entry):
    return edit_json('manifest.json', lambda manifest: manifest.setdefault('volumes', []).append(
        dict(dict(name='data', destination='/data', anonymous=False, member='volumes/0.tar'), **entry)))


@pytest.mark.parametrize('member', ['../../x', '/etc/x', 'volumes/../../x', 'volumes/0.tar/../../../x',
                                    'container.json', 'checkpoint/pstree.img', 'rootfs-diff.tar', 'volumes/0.tar\n'])
def test_a_volume_member_that_is_not_a_volume_tar_is_refused(bed, archive, capsys, tmp_path, member):
    # container.json, checkpoint/pstree.img, rootfs-diff.tar: members the archive holds, not volumes of it.
    path = rewrite(archive['path'], tmp_path / 'attack.tar', add_volume(member=member))
    result = run_import(capsys, bed, path=path)
    refused(result, 'bad_name', path, 'the volume member name', "it must be volumes/<number>.tar",
            'Nothing was created')
    assert result['name_kind'] == 'volume member'
    nothing_created(bed)
    assert bed.target.volumes == {}


@pytest.mark.parametrize('destination', ['../x', 'rel', '/data/../../etc', '/data/./x', '', None, '/da\nta'])
def test_a_volume_destination_that_is_no_absolute_path_is_refused(bed, archive, capsys, tmp_path, destination):
    path = rewrite(archive['path'], tmp_path / 'attack.tar', add_volume(destination=destination))
    result = run_import(capsys, bed, path=path)
    refused(result, 'malformed', path, 'the destination of volume data is %r, not a plain absolute path'
            % (destination,), 'was changed after it was written', 'Nothing was created')
    nothing_created(bed)
    assert bed.target.volumes == {}


@pytest.mark.parametrize('name', ['../x', 'a/b', '.', '', None, 'x' * 300])
def test_a_volume_name_that_is_no_name_is_refused(bed, archive, capsys, tmp_path, name):
    path = rewrite(archive['path'], tmp_path / 'attack.tar', add_volume(name=name))
    result = run_import(capsys, bed, path=path)
    refused(result, 'bad_name', path, 'the volume name', 'Nothing was created')
    nothing_created(bed)


@pytest.mark.parametrize('where', ['missing', 'a directory'])
def test_a_volume_member_the_archive_does_not_hold_is_refused_before_anything_is_created(
        bed, archive, capsys, tmp_path, where):
    edits = [add_volume(member='volumes/7.tar')]
    if where == 'a directory':
        edits.append(lambda members: members + [_dir_member('volumes'), _dir_member('volumes/7.tar')])
    path = rewrite(archive['path'], tmp_path / 'attack.tar', *edits)
    result = run_import(capsys, bed, path=path)
    msg = failed_clearly(result, '')
    assert result['reason'] == 'malformed' and 'volumes/7.tar' in msg and path in msg, msg
    nothing_created(bed)
    assert bed.target.volumes == {}


def _dir_member(name):
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o700
    return forge.Member(info)


# -- 3. container, network and holder names in container.json -------------------------------------------

@pytest.mark.parametrize('field, value, kind', [
    ('name', 'a/b', 'container'),
    ('name', '..', 'container'),
    ('name', '../../etc/cron.d/x', 'container'),
    ('name', 'web\n', 'container'),
    ('name', 'w' * 300, 'container'),
    ('network_mode', 'container:../x', 'container'),
    ('network_mode', 'container:a/b', 'container'),
    ('network_mode', 'container:', 'container'),
    ('networks', [dict(name='br/../../x', aliases=[], ipv4_address=None, ipv6_address=None, links=None)], 'network'),
    ('networks', [dict(name='..', aliases=[])], 'network'),
    ('networks', [dict(aliases=[])], 'network'),
], ids=lambda value: repr(value)[:30])
def test_a_name_in_the_container_record_that_is_no_name_is_refused(
        bed, archive, capsys, tmp_path, field, value, kind):
    path = rewrite(archive['path'], tmp_path / 'attack.tar', edit_json('container.json', set_in(field, value)))
    result = run_import(capsys, bed, path=path)
    refused(result, 'bad_name', path, 'the %s name' % kind, 'is not valid', 'Nothing was created')
    assert result['name_kind'] == kind
    nothing_created(bed)
    assert not os.path.lexists(str(tmp_path / 'etc'))


@pytest.mark.parametrize('mode, reason', [('container:../x', 'bad_name'), ('container:db', 'malformed')])
def test_a_host_config_network_mode_apart_from_the_record_is_refused(bed, archive, capsys, tmp_path, mode, reason):
    """HostConfig.NetworkMode is what the engine gets: checked as a name, and it must be the record's network_mode,
    which the network holder checks read (a running container that is no holder cannot be joined that way)."""
    bed.target.add('db')  # a running container of the target host, not a network holder
    path = rewrite(archive['path'], tmp_path / 'attack.tar',
                   edit_json('container.json', set_in('host_config', 'NetworkMode', mode)))
    result = run_import(capsys, bed, path=path)
    msg = failed_clearly(result, '')
    assert result['reason'] == reason and path in msg, msg
    assert bed.target.archive_changes() == [] and bed.target._find('web') is None


# -- 4. host access the recorded configuration asks for --------------------------------------------------

@pytest.fixture
def docker_inspect(monkeypatch):
    """Containers the target creates inspect as Docker's do: HostConfig.CapAdd, SecurityOpt and Binds as created
    (capabilities spelled CAP_X, as Docker 20.10+ reports them), and every bind mount in Mounts. The shared fake
    (fake_archive_engine.ArchiveContainer.inspect) reports CapAdd None whatever the create body said, the
    SecurityOpt of its own attribute only, and no Mounts for Binds."""
    stock = ArchiveContainer.inspect

    def inspect(self):
        data = stock(self)
        created = (self.body or {}).get('HostConfig')
        if not created:
            return data
        data['HostConfig']['CapAdd'] = ['CAP_' + cap.upper().replace('CAP_', '') for cap in created.get('CapAdd') or []
                                        ] or None
        data['HostConfig']['SecurityOpt'] = copy.deepcopy(created.get('SecurityOpt'))
        for bind in created.get('Binds') or []:
            source, destination = bind.split(':')[:2]
            if source.startswith('/'):
                data['Mounts'].append(dict(Type='bind', Source=source, Destination=destination, Mode='', RW=True,
                                           Propagation='rprivate'))
        return data

    monkeypatch.setattr(ArchiveContainer, 'inspect', inspect)


def binds_and_sys_admin(record):
    record['host_config'].update(Binds=['/etc:/host-etc'], CapAdd=['SYS_ADMIN'])


def test_binds_and_capabilities_are_refused_unless_allowed(bed, archive, capsys, tmp_path, docker_inspect):
    path = rewrite(archive['path'], tmp_path / 'attack.tar', edit_json('container.json', binds_and_sys_admin))
    asked = [dict(allow='binds', item='bind mount /etc -> /host-etc'),
             dict(allow='capabilities', item='capability SYS_ADMIN')]

    result = run_import(capsys, bed, path=path)
    msg = refused(result, 'host_access', path, 'asks for access to this host that the import does not allow',
                  '[binds] bind mount /etc -> /host-etc', '[capabilities] capability SYS_ADMIN',
                  'add to allow: [binds, capabilities]', 'Nothing was created')
    assert result['allow_missing'] == ['binds', 'capabilities'] and result['host_access'] == asked, msg
    nothing_created(bed)

    predicted = run_import(capsys, bed, path=path, check_mode=True)
    assert predicted['msg'] == msg and predicted['reason'] == 'host_access' and predicted['host_access'] == asked
    assert predicted['allow_missing'] == ['binds', 'capabilities']
    nothing_created(bed)

    # A valid archive whose configuration is allowed only partly.
    partly = run_import(capsys, bed, path=path, allow=['binds'])
    msg = refused(partly, 'host_access', path, '[capabilities] capability SYS_ADMIN', 'add to allow: [capabilities]')
    assert '/host-etc' not in msg and '[binds]' not in msg
    assert partly['allow_missing'] == ['capabilities'] and partly['host_access'] == asked
    nothing_created(bed)

    allowed = run_import(capsys, bed, path=path, allow=['binds', 'capabilities'])
    assert allowed['changed'] is True and 'failed' not in allowed and allowed['verified'] is True, allowed
    assert allowed['host_access'] == asked
    web = bed.target._find('web')
    assert web.body['HostConfig']['Binds'] == ['/etc:/host-etc'] and web.body['HostConfig']['CapAdd'] == ['SYS_ADMIN']
    # What the engine says the created container has, not what the archive asked for.
    effective = allowed['container']['effective']
    assert effective['capabilities_added'] == ['CAP_SYS_ADMIN']
    assert effective['mounts'] == [dict(type='bind', source='/etc', destination='/host-etc', rw=True)]
    assert allowed['container']['mounts'] == ['/etc:/host-etc']


@pytest.mark.parametrize('field, value, allow, item', [
    ('Privileged', True, 'privileged', 'privileged mode'),
    ('PidMode', 'host', 'host_namespaces', 'pid mode host'),
    ('Devices', [dict(PathOnHost='/dev/sda', PathInContainer='/dev/sda', CgroupPermissions='rwm')], 'devices',
     'device /dev/sda'),
    ('Sysctls', {'kernel.core_pattern': '|/tmp/pwn'}, 'sysctls', 'sysctl kernel.core_pattern=|/tmp/pwn'),
    ('SecurityOpt', ['apparmor=unconfined'], 'security_options', 'security option apparmor=unconfined'),
    ('LogConfig', dict(Type='syslog', Config={'syslog-address': 'tcp://10.0.0.9:514'}), 'drivers', 'log driver syslog'),
], ids=lambda value: value if isinstance(value, str) else None)
def test_each_kind_of_host_access_is_refused_under_its_allow_name(
        bed, archive, capsys, tmp_path, field, value, allow, item):
    path = rewrite(archive['path'], tmp_path / 'attack.tar',
                   edit_json('container.json', set_in('host_config', field, value)))
    for check_mode in (False, True):
        result = run_import(capsys, bed, path=path, check_mode=check_mode)
        refused(result, 'host_access', path, '[%s] %s' % (allow, item), 'add to allow: [%s]' % allow,
                'Nothing was created')
        assert result['host_access'] == [dict(allow=allow, item=item)] and result['allow_missing'] == [allow]
        nothing_created(bed)
    allowed = run_import(capsys, bed, path=path, allow=[allow])
    assert allowed['changed'] is True and allowed['verified'] is True, allowed
    assert allowed['host_access'] == [dict(allow=allow, item=item)]


# -- 5. the counter of the test bed: seccomp=unconfined -------------------------------------------------

def test_a_container_exported_with_seccomp_unconfined_needs_security_options(bed, capsys, docker_inspect):
    bed.web().security_opt = ['seccomp=unconfined']
    path = export(capsys, bed)['archive']['path']
    result = run_import(capsys, bed)
    refused(result, 'host_access', path, '[security_options] security option seccomp=unconfined',
            'add to allow: [security_options]', 'Nothing was created')
    assert result['host_access'] == [dict(allow='security_options', item='security option seccomp=unconfined')]
    nothing_created(bed)
    allowed = run_import(capsys, bed, allow=['security_options'])
    assert allowed['changed'] is True and allowed['restored'] is True and allowed['verified'] is True, allowed
    assert bed.target._find('web').body['HostConfig']['SecurityOpt'] == ['seccomp=unconfined']
    assert allowed['container']['effective']['security_options'] == ['seccomp=unconfined']


# -- 6. links, whatever they point to --------------------------------------------------------------------

@pytest.mark.parametrize('links', [
    [('checkpoint/u', '..', False), ('checkpoint/w', 'u/..', False),
     ('checkpoint/core-99.img', 'w/etc/hostname', False)],
    [('checkpoint/h1', 'checkpoint/inventory.img', True), ('checkpoint/h2', 'checkpoint/h1', True),
     ('checkpoint/core-99.img', 'checkpoint/h2', True)],
    [('checkpoint/core-99.img', '/etc/shadow', True)],
], ids=['symbolic link chain', 'hard link chain', 'hard link outside'])
def test_links_are_refused_as_they_are_read(bed, archive, capsys, tmp_path, monkeypatch, links):
    def add_links(members):
        at = next(i for i, member in enumerate(members) if member.name == 'checkpoint/pstree.img') + 1
        return members[:at] + [forge.link(name, target, hard) for name, target, hard in links] + members[at:]
    path = rewrite(archive['path'], tmp_path / 'attack.tar', add_links)
    extracted = []
    monkeypatch.setattr(_archive, 'extract', lambda *args: extracted.append(args))
    result = run_import(capsys, bed, path=path)
    name, target, hard = links[0]
    refused(result, 'link', path, "its member %r is a %s link to %r" % (name, 'hard' if hard else 'symbolic', target),
            'the collection never writes links', 'Nothing was created')
    assert result['member'] == name and extracted == []
    nothing_created(bed)
    for root, dirs, files in os.walk(str(tmp_path)):
        assert 'hostname' not in files and 'core-99.img' not in files, root


# -- 7. 8. 9. what a header claims -----------------------------------------------------------------------

@pytest.mark.parametrize('fmt', [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT], ids=['pax size', 'gnu base-256 size'])
def test_a_member_claiming_a_terabyte_is_refused_before_it_is_read(bed, archive, capsys, tmp_path, monkeypatch, fmt):
    monkeypatch.setattr(_import, 'free_space', lambda path: (path, 10 * GIB))
    huge = tarfile.TarInfo('checkpoint/pages-1.img')
    huge.size, huge.mode = 2 ** 40, 0o600
    path = str(tmp_path / 'attack.tar')
    data = raw_tar(archive['path'])
    with open(path, 'wb') as handle:
        # The real members up to the checkpoint's, then the claim, a little data and no end.
        handle.write(data[:header_offset(archive['path'], 'checkpoint/pstree.img')])
        handle.write(huge.tobuf(format=fmt))
        handle.write(b'\x01' * 4096)
    started = time.monotonic()
    result = run_import(capsys, bed, path=path)
    assert time.monotonic() - started < 5
    refused(result, 'too_large', path, 'refused as it was read, before anything was unpacked',
            "its member checkpoint/pages-1.img claims %d bytes" % 2 ** 40, 'Nothing was created')
    assert result['member'] == 'checkpoint/pages-1.img' and result['free_bytes'] == 10 * GIB - (64 << 20)
    assert result['claimed_bytes'] > 2 ** 40
    nothing_created(bed)


def empty_headers(count, prefix='checkpoint/e'):
    """count USTAR headers of empty regular files prefix000000, prefix000001 ...: one template, only the name and
    the checksum changed (TarInfo.tobuf takes seconds for this many)."""
    template = tarfile.TarInfo(prefix + '0' * 6)
    template.mode = 0o600
    block = bytearray(template.tobuf(format=tarfile.USTAR_FORMAT))
    block[148:156] = b' ' * 8
    base = sum(block) - 6 * ord('0')
    start = len(prefix)
    out = bytearray(512 * count)
    for index in range(count):
        digits = b'%06d' % index
        block[start:start + 6] = digits
        block[148:155] = b'%06o\0' % (base + sum(digits))
        out[512 * index:512 * (index + 1)] = block
    return bytes(out)


def test_two_hundred_thousand_members_are_refused_as_they_are_read(bed, archive, capsys, tmp_path):
    path = str(tmp_path / 'attack.tar')
    data = raw_tar(archive['path'])
    with open(path, 'wb') as handle:
        handle.write(data[:header_offset(archive['path'], 'manifest.json')])
        handle.write(empty_headers(200000))
        handle.write(end_blocks())
    with tarfile.open(path) as tar:  # a valid tar, every name its own
        assert tar.next().name == 'cryo-archive.json'
    result = run_import(capsys, bed, path=path)
    refused(result, 'too_many_members', path, 'holds more than 100000 members', 'before anything was unpacked',
            'Nothing was created; do not use this file')
    nothing_created(bed)


@pytest.mark.parametrize('kind', ['pax header', 'gnu long name', 'gnu long link'])
def test_an_extended_header_larger_than_64_kib_is_refused(bed, archive, capsys, tmp_path, kind):
    if kind == 'pax header':
        info = tarfile.TarInfo('checkpoint/core-99.img')
        info.pax_headers = {'comment': 'A' * (65 << 10)}
        block = info.tobuf(format=tarfile.PAX_FORMAT)
    elif kind == 'gnu long name':
        info = tarfile.TarInfo('checkpoint/' + 'a' * (65 << 10))
        block = info.tobuf(format=tarfile.GNU_FORMAT)
    else:
        info = tarfile.TarInfo('checkpoint/l')
        info.type, info.linkname = tarfile.SYMTYPE, '/' + 'a' * (65 << 10)
        block = info.tobuf(format=tarfile.GNU_FORMAT)
    path = str(tmp_path / 'attack.tar')
    data = raw_tar(archive['path'])
    at = header_offset(archive['path'], 'checkpoint/pstree.img')
    with open(path, 'wb') as handle:
        handle.write(data[:at] + block + data[at:])
    result = run_import(capsys, bed, path=path)
    refused(result, 'header', path, 'refused as it was read', 'an extended header of', '(at most 65536 are read)',
            'Nothing was created; do not use this file')
    nothing_created(bed)


# -- 10. more data than the tar stream ---------------------------------------------------------------------

def zstd(data):
    return subprocess.run(['zstd', '-q', '-c', '-3'], input=data, stdout=subprocess.PIPE, check=True).stdout


@pytest.mark.parametrize('how', ['in the zstd stream', 'a second zstd frame', 'uncompressed'])
def test_data_after_the_end_of_the_tar_stream_is_refused(bed, archive, capsys, tmp_path, how):
    valid = rewrite(archive['path'], tmp_path / 'valid.tar',
                    edit_json('container.json', set_in('config', 'Env', ['PATH=/bin', 'MODE=rewritten'])))
    assert run_import(capsys, bed, path=valid, check_mode=True)['changed'] is True, 'valid as rewritten'
    tar, zeros = raw_tar(valid), b'\0' * (64 << 20)
    path = str(tmp_path / ('attack.tar' if how == 'uncompressed' else 'attack.tar.zst'))
    with open(path, 'wb') as handle:
        if how == 'in the zstd stream':
            handle.write(zstd(tar + zeros))
        elif how == 'a second zstd frame':
            handle.write(zstd(tar) + zstd(zeros))
        else:
            handle.write(tar + zeros)
    result = run_import(capsys, bed, path=path)
    refused(result, 'trailing_data', path, 'goes on after the end of its tar stream', 'refused before anything was '
            'unpacked', 'Do not use this file')
    nothing_created(bed)


# -- 11. signatures ----------------------------------------------------------------------------------------

def keypair(tmp_path, name):
    key = tmp_path / 'keys' / name
    key.parent.mkdir(exist_ok=True)
    subprocess.run(['ssh-keygen', '-t', 'ed25519', '-N', '', '-q', '-C', name, '-f', str(key)], check=True)
    out = subprocess.run(['ssh-keygen', '-l', '-f', str(key)], stdout=subprocess.PIPE, check=True, text=True).stdout
    return str(key), out.split()[1]


def allowed_signers(tmp_path, *keys):
    path = tmp_path / 'keys' / 'allowed_signers'
    path.write_text(''.join('ops@fleet namespaces="%s" %s\n' % (NAMESPACE, open(key + '.pub').read().strip())
                            for key in keys))
    return str(path)


def ssh_sign(key, path):
    """path signed with key, as an attacker would (ssh-keygen would ask before it writes over a .sig)."""
    with open(path, 'rb') as data:
        sig = subprocess.run(['ssh-keygen', '-Y', 'sign', '-q', '-f', key, '-n', NAMESPACE], stdin=data,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True).stdout
    with open(path + '.sig', 'wb') as handle:
        handle.write(sig)
    return path + '.sig'


@pytest.fixture
def signed(bed, capsys, tmp_path):
    """The web container exported and signed with the key ops (its fingerprint in signed['fingerprint'])."""
    bed.web()
    key, fingerprint = keypair(tmp_path, 'ops')
    result = export(capsys, bed, signing_key=key)
    return dict(result['archive'], key=key, fingerprint=fingerprint, signature=result['signature'],
                allowed=allowed_signers(tmp_path, key))


@pytest.fixture
def verify_calls(monkeypatch):
    """The calls of _archive.verify and _archive.reading: whether the archive was parsed as a tar at all."""
    calls = []
    real_verify, real_reading = _archive.verify, _archive.reading

    def verify(*args, **kwargs):
        calls.append(('verify', args[0]))
        return real_verify(*args, **kwargs)

    def reading(*args, **kwargs):
        calls.append(('reading', args[0]))
        return real_reading(*args, **kwargs)
    monkeypatch.setattr(_archive, 'verify', verify)
    monkeypatch.setattr(_archive, 'reading', reading)
    return calls


def test_an_export_with_a_signing_key_signs_it_once(bed, capsys, signed):
    sig = signed['path'] + '.sig'
    assert os.path.isfile(sig) and open(sig).read().startswith('-----BEGIN SSH SIGNATURE-----')
    assert signed['signature'] == dict(path=sig, key=signed['fingerprint'], sha256=signed['sha256'])
    before = open(sig, 'rb').read(), os.stat(sig).st_mtime_ns, raw_tar(signed['path'])
    again = bed.export(capsys, signing_key=signed['key'])
    assert again['changed'] is False and 'failed' not in again, again
    assert again['signature']['key'] == signed['fingerprint'] and again['signature']['path'] == sig
    assert (open(sig, 'rb').read(), os.stat(sig).st_mtime_ns, raw_tar(signed['path'])) == before


def test_an_archive_signed_by_an_allowed_key_is_imported(bed, capsys, signed, verify_calls):
    result = run_import(capsys, bed, allowed_signers=signed['allowed'])
    assert result['changed'] is True and result['verified'] is True, result
    assert result['signature'] == dict(principal='ops@fleet', key=signed['fingerprint'], sha256=signed['sha256'],
                                       signature=signed['path'] + '.sig')
    assert ('verify', signed['path']) in verify_calls


def test_an_archive_signed_by_a_key_not_listed_is_refused_unread(bed, capsys, signed, tmp_path, verify_calls):
    other, fingerprint = keypair(tmp_path, 'stranger')
    ssh_sign(other, signed['path'])
    result = run_import(capsys, bed, allowed_signers=signed['allowed'])
    refused(result, 'signer_not_allowed', signed['path'], 'was made by the key %s' % fingerprint,
            'does not list', 'refused before anything was read', 'add a line for it to allowed_signers')
    assert result['key'] == fingerprint and verify_calls == []
    nothing_created(bed)


def test_an_unsigned_archive_is_refused_where_signatures_are_required(bed, capsys, signed, verify_calls):
    os.unlink(signed['path'] + '.sig')
    result = run_import(capsys, bed, allowed_signers=signed['allowed'])
    refused(result, 'unsigned', signed['path'], 'has no signature', 'allowed_signers requires one',
            'refused before anything was read', 'Sign it on the exporting host (signing_key)')
    assert verify_calls == []
    nothing_created(bed)


def test_an_archive_changed_after_it_was_signed_is_never_parsed(bed, capsys, signed, tmp_path, verify_calls):
    rewrite(signed['path'], signed['path'], edit_json('container.json', binds_and_sys_admin))
    result = run_import(capsys, bed, allowed_signers=signed['allowed'], allow=['binds', 'capabilities'])
    refused(result, 'bad_signature', signed['path'], 'does not match its signature', 'changed after it was signed',
            'refused before anything was unpacked, and nothing was created', 'Copy the archive and its .sig again')
    assert result['key'] == signed['fingerprint'] and verify_calls == [], 'the tar was never read'
    nothing_created(bed)


def test_a_signature_of_another_archive_by_the_same_key_is_refused(bed, capsys, signed, tmp_path, verify_calls):
    other = rewrite(signed['path'], tmp_path / 'other.tar',
                    edit_json('container.json', set_in('config', 'Env', ['PATH=/bin', 'OTHER=1'])))
    os.replace(ssh_sign(signed['key'], other), signed['path'] + '.sig')
    result = run_import(capsys, bed, allowed_signers=signed['allowed'])
    refused(result, 'bad_signature', signed['path'], 'does not match its signature', 'nothing was created')
    assert verify_calls == []
    nothing_created(bed)
    # The other archive with its own signature is fine: the key is trusted, the pair is what it signed.
    os.replace(signed['path'] + '.sig', other + '.sig')
    assert run_import(capsys, bed, path=other, allowed_signers=signed['allowed'])['signature']['principal'] == \
        'ops@fleet'


# -- 12. on disk before the restore relies on it -----------------------------------------------------------

def test_the_staged_checkpoint_is_on_disk_before_the_restore(bed, archive, capsys, monkeypatch):
    events = []
    real_fsync, real_fsync_dir = os.fsync, _archive.fsync_dir

    def fsync(fd):
        events.append(('fsync', os.readlink('/proc/self/fd/%d' % fd)))
        return real_fsync(fd)

    def fsync_dir(path):
        events.append(('fsync_dir', os.path.normpath(path)))
        return real_fsync_dir(path)

    real_restore = bed.target.start_from_checkpoint

    def start_from_checkpoint(container, checkpoint, **options):
        events.append(('restore', checkpoint))
        return real_restore(container, checkpoint, **options)
    monkeypatch.setattr(os, 'fsync', fsync)
    monkeypatch.setattr(_archive, 'fsync_dir', fsync_dir)
    monkeypatch.setattr(bed.target, 'start_from_checkpoint', start_from_checkpoint)
    result = run_import(capsys, bed)
    assert result['changed'] is True and result['verified'] is True, result
    web = bed.target._find('web')
    staged = os.path.normpath(bed.target.checkpoint_path(web, 'move'))
    restore = events.index(('restore', 'move'))
    before = events[:restore]
    assert ('fsync_dir', staged) in before and ('fsync_dir', os.path.dirname(staged)) in before, events
    # Every file of the checkpoint was flushed as it was unpacked (in the staging directory, renamed since).
    flushed = {os.path.basename(path) for kind, path in before if kind == 'fsync' and '/checkpoint/' in path}
    assert {'inventory.img', 'mm-1.img', 'pstree.img'} <= flushed, events
    assert any(kind == 'fsync' and path.startswith(os.path.join(bed.target.root, 'cryo-import'))
               and '/checkpoint/.cryo-' in path for kind, path in before), 'the rewritten metadata, before its rename'


# -- the image an archive carries ------------------------------------------------------------------------

@pytest.mark.parametrize('where', ['manifest.json', 'repositories', 'index.json'])
def test_a_carried_image_that_would_move_a_tag_here_is_refused_before_it_is_loaded(bed, capsys, tmp_path, where):
    """docker load tags what the image tar names: an archive must not retag this host's images (the export saves
    by id, so its own image tar names none)."""
    bed.web()
    exported = export(capsys, bed, include_image=True)
    del bed.target.images[IMAGE_ID]
    del bed.target.refs['counter:1']
    refs = dict(bed.target.refs)
    wanted = {'manifest.json': [dict(Config='config.json', RepoTags=['debian:12'], Layers=[])],
              'repositories': {'debian': {'12': 'x' * 64}},
              'index.json': dict(manifests=[dict(annotations={'io.containerd.image.name': 'debian:12'})])}

    def retag(members):
        image = forge.get(members, 'image.tar')
        with tarfile.open(fileobj=io.BytesIO(image.data)) as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        files[where] = json.dumps(wanted[where]).encode()
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode='w') as tar:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        image.set_bytes(out.getvalue())

    path = rewrite(exported['archive']['path'], tmp_path / 'retag.tar', retag)
    result = run_import(capsys, bed, path=path)
    refused(result, 'malformed', path, 'would tag images on this engine (debian:12)', 'Nothing was created')
    nothing_created(bed)
    assert bed.target.refs == refs and IMAGE_ID not in bed.target.images


# -- what the checkpoint's own images would give its processes ---------------------------------------------

def test_a_checkpoint_image_that_hands_a_process_sys_admin_is_refused_unless_allowed(bed, archive, capsys, tmp_path):
    """CRIU restores a thread's capabilities from its core image, not from the configuration: a forged image with
    CAP_SYS_ADMIN in a container that is not given it is host access, refused unless allow names capabilities."""
    forged = forge.file('checkpoint/core-1.img', forge.core_image(
        bounding=forge.DEFAULT_CAPABILITIES | forge.SYS_ADMIN, effective=forge.DEFAULT_CAPABILITIES | forge.SYS_ADMIN,
        seccomp=2))
    path = rewrite(archive['path'], tmp_path / 'caps.tar', lambda members: members + [forged])
    result = run_import(capsys, bed, path=path)
    refused(result, 'host_access', path, '[capabilities] checkpoint core-1.img holds SYS_ADMIN in its bounding set',
            'add to allow: [capabilities]', 'Nothing was created')
    assert result['allow_missing'] == ['capabilities']
    nothing_created(bed)
    allowed = run_import(capsys, bed, path=path, allow=['capabilities'])
    assert allowed['changed'] and allowed['verified'] is True, allowed.get('msg', allowed)
    assert [item['allow'] for item in allowed['host_access']] == ['capabilities'] * 3


def test_a_recorded_restore_runtime_is_never_taken(bed, archive, capsys, tmp_path):
    """An archive recording a runtime named as the image path names a container's own (another host's, or on this
    host another container's, whose start restores that container's checkpoint): the container is created with the
    engine's default runtime instead."""
    path = rewrite(archive['path'], tmp_path / 'attack.tar',
                   edit_json('container.json', set_in('host_config', 'Runtime', 'cryo-restore-0123456789ab')))
    result = run_import(capsys, bed, path=path)
    assert result['changed'] and result['verified'] and not result.get('failed'), result.get('msg')
    created = bed.target._find('web').body['HostConfig']
    assert 'Runtime' not in created, created
