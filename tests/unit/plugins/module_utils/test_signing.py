"""Signed archives (_signing) with the real ssh-keygen: keys made in tmp_path, the archive fed on stdin, every way
a signature is refused before the archive is unpacked, and a passphrase that can never be asked for."""

import base64
import hashlib
import os
import shlex
import shutil
import stat
import struct
import subprocess
import sys
import tempfile
import time

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _signing
from ansible_collections.cryo.docker.plugins.module_utils._signing import NAMESPACE, SignatureError

SSH_KEYGEN = shutil.which('ssh-keygen')

pytestmark = pytest.mark.skipif(SSH_KEYGEN is None, reason='needs ssh-keygen (openssh-client)')

# A sign() run in a process of its own, so that a prompt would hang that process and not the suite: prints whether
# it has a terminal to prompt on, then the reason it failed with.
CHILD = '''
import os, sys
from ansible_collections.cryo.docker.plugins.module_utils import _signing
try:
    os.close(os.open('/dev/tty', os.O_RDWR))
    print('tty:yes')
except OSError:
    print('tty:no')
try:
    _signing.sign(sys.argv[1], sys.argv[2], sys.argv[3])
    print('signed')
except _signing.SignatureError as exc:
    print(exc.details['reason'])
'''


def keygen(directory, name, passphrase=''):
    """(private key path, public key line) of a new ed25519 key."""
    path = str(directory / name)
    subprocess.run([SSH_KEYGEN, '-q', '-t', 'ed25519', '-N', passphrase, '-C', name, '-f', path], check=True,
                   stdin=subprocess.DEVNULL)
    with open(path + '.pub') as handle:
        return path, handle.read().strip()


def fingerprint_of(path):
    out = subprocess.run([SSH_KEYGEN, '-l', '-f', path], check=True, capture_output=True, text=True).stdout
    return out.split()[1]


def write_allowed(directory, public, principal='ops@fleet', namespaces=NAMESPACE):
    path = directory / 'allowed_signers'
    options = 'namespaces="%s" ' % namespaces if namespaces else ''
    path.write_text('%s %s%s\n' % (principal, options, public))
    return str(path)


def write_archive(directory, size=100000, name='app.tar.zst'):
    path = directory / name
    with open(str(path), 'wb') as handle:
        while size > 0:
            handle.write(os.urandom(min(size, 1 << 20)))
            size -= 1 << 20
    return str(path)


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b''):
            digest.update(chunk)
    return 'sha256:' + digest.hexdigest()


def ssh_sign(key, path, namespace):
    """A signature of path made by ssh-keygen itself (path.sig, which it will not overwrite)."""
    if os.path.exists(path + '.sig'):
        os.unlink(path + '.sig')
    subprocess.run([SSH_KEYGEN, '-Y', 'sign', '-f', key, '-n', namespace, path], check=True, capture_output=True)
    return path + '.sig'


def armor(blob):
    body = base64.b64encode(blob).decode('ascii')
    lines = [body[i:i + 70] for i in range(0, len(body), 70)]
    return ('\n'.join([_signing.ARMOR_BEGIN] + lines + [_signing.ARMOR_END]) + '\n').encode('ascii')


@pytest.fixture
def signed(tmp_path):
    """An archive signed by ops@fleet's key, and allowed_signers listing that key for NAMESPACE."""
    key, public = keygen(tmp_path, 'ops')
    archive = write_archive(tmp_path)
    _signing.sign(SSH_KEYGEN, key, archive)
    return dict(key=key, public=public, archive=archive, allowed=write_allowed(tmp_path, public))


def refusal(allowed, archive, sig_path=None):
    with pytest.raises(SignatureError) as caught:
        _signing.verify(SSH_KEYGEN, allowed, archive, sig_path)
    return caught.value


# -- signing ------------------------------------------------------------------------------------

def test_the_signature_is_beside_the_archive():
    assert _signing.signature_path('/srv/app.tar.zst') == '/srv/app.tar.zst.sig'


def test_sign_reports_the_signature_the_key_and_the_bytes_signed(tmp_path):
    key, _public = keygen(tmp_path, 'ops')
    archive = write_archive(tmp_path)
    assert _signing.sign(SSH_KEYGEN, key, archive) == dict(
        path=archive + '.sig', key=fingerprint_of(key), sha256=sha256_of(archive))


def test_sign_writes_where_it_is_told(tmp_path):
    key, _public = keygen(tmp_path, 'ops')
    archive = write_archive(tmp_path)
    assert _signing.sign(SSH_KEYGEN, key, archive, str(tmp_path / 'elsewhere.sig'))['path'] == str(
        tmp_path / 'elsewhere.sig')


def test_the_signature_is_an_ssh_signature_for_our_namespace(tmp_path):
    key, _public = keygen(tmp_path, 'ops')
    archive = write_archive(tmp_path)
    _signing.sign(SSH_KEYGEN, key, archive)
    with open(archive + '.sig', 'rb') as handle:
        assert _signing.parse_signature(handle.read()) == dict(
            key=fingerprint_of(key), key_type='ssh-ed25519', namespace=NAMESPACE, hash_alg='sha512')


def test_the_signature_is_written_without_leaving_a_temporary_file(tmp_path):
    key, _public = keygen(tmp_path, 'ops')
    (tmp_path / 'out').mkdir()
    archive = write_archive(tmp_path / 'out')
    (tmp_path / 'out' / 'app.tar.zst.sig').write_text('an older signature\n')
    _signing.sign(SSH_KEYGEN, key, archive)
    assert sorted(os.listdir(str(tmp_path / 'out'))) == ['app.tar.zst', 'app.tar.zst.sig']


def test_the_signature_file_is_private(tmp_path):
    key, _public = keygen(tmp_path, 'ops')
    archive = write_archive(tmp_path)
    _signing.sign(SSH_KEYGEN, key, archive)
    assert stat.S_IMODE(os.stat(archive + '.sig').st_mode) == 0o600


def test_signing_without_ssh_keygen_says_what_to_install(tmp_path):
    with pytest.raises(SignatureError, match='apt-get install openssh-client') as caught:
        _signing.sign(None, str(tmp_path / 'key'), write_archive(tmp_path))
    assert caught.value.details['reason'] == 'ssh_keygen'


def test_a_missing_key_is_refused_before_the_archive_is_read(tmp_path):
    with pytest.raises(SignatureError, match='is not a file: it is not there') as caught:
        _signing.sign(SSH_KEYGEN, str(tmp_path / 'nokey'), write_archive(tmp_path))
    assert caught.value.details['reason'] == 'signing'


def test_a_file_that_is_not_a_key_is_refused(tmp_path):
    (tmp_path / 'notakey').write_text('hello\n')
    with pytest.raises(SignatureError, match='is not a key ssh-keygen can read') as caught:
        _signing.sign(SSH_KEYGEN, str(tmp_path / 'notakey'), write_archive(tmp_path))
    assert caught.value.details['reason'] == 'signing'


def test_a_missing_archive_is_not_signed(tmp_path):
    key, _public = keygen(tmp_path, 'ops')
    with pytest.raises(SignatureError, match='cannot be read: No such file') as caught:
        _signing.sign(SSH_KEYGEN, key, str(tmp_path / 'none.tar.zst'))
    assert caught.value.details['reason'] == 'signing'


def test_a_signature_that_cannot_be_written_leaves_nothing(tmp_path):
    key, _public = keygen(tmp_path, 'ops')
    archive = write_archive(tmp_path)
    with pytest.raises(SignatureError, match='Writing the signature') as caught:
        _signing.sign(SSH_KEYGEN, key, archive, str(tmp_path / 'no' / 'such' / 'dir.sig'))
    assert caught.value.details['reason'] == 'signing'


def test_a_passphrase_key_without_an_agent_says_to_load_it_into_one(tmp_path, monkeypatch):
    monkeypatch.delenv('SSH_AUTH_SOCK', raising=False)
    key, _public = keygen(tmp_path, 'locked', passphrase='secret phrase')
    archive = write_archive(tmp_path, size=4 << 20)
    with pytest.raises(SignatureError, match='ssh-add') as caught:
        _signing.sign(SSH_KEYGEN, key, archive)
    assert (caught.value.details['reason'], os.path.exists(archive + '.sig')) == ('signing', False)


def child_env():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    env.pop('SSH_AUTH_SOCK', None)
    return env


def test_a_passphrase_key_fails_at_once_without_a_terminal(tmp_path):
    key, _public = keygen(tmp_path, 'locked', passphrase='secret phrase')
    archive = write_archive(tmp_path, size=4 << 20)
    started = time.monotonic()
    out = subprocess.run([sys.executable, '-c', CHILD, SSH_KEYGEN, key, archive], capture_output=True, text=True,
                         env=child_env(), timeout=60, start_new_session=True, stdin=subprocess.DEVNULL,
                         check=False).stdout
    assert (out.split(), time.monotonic() - started < 30) == (['tty:no', 'signing'], True)


@pytest.mark.skipif(shutil.which('script') is None, reason='needs script (util-linux) for a terminal')
def test_a_passphrase_key_never_prompts_on_the_terminal_of_the_task(tmp_path):
    """ssh-keygen asks a terminal it can open (/dev/tty) for the passphrase even when stdin is the data: a task
    run with a terminal (ansible -t, become with a tty) would hang there without a session of its own."""
    key, _public = keygen(tmp_path, 'locked', passphrase='secret phrase')
    archive = write_archive(tmp_path, size=4 << 20)
    command = shlex.join([sys.executable, '-c', CHILD, SSH_KEYGEN, key, archive])
    out = subprocess.run(['script', '-qec', command, '/dev/null'], capture_output=True, text=True, env=child_env(),
                         timeout=60, stdin=subprocess.DEVNULL, check=False).stdout
    assert [line for line in out.split() if line.startswith('tty:') or line in ('signing', 'signed')] == [
        'tty:yes', 'signing']


@pytest.fixture
def agent(tmp_path):
    """An ssh-agent of our own (its socket in a short directory: a socket path is at most 108 bytes)."""
    program = shutil.which('ssh-agent')
    if program is None or shutil.which('ssh-add') is None:
        pytest.skip('needs ssh-agent and ssh-add')
    directory = tempfile.mkdtemp(prefix='cryo-agent-')
    sock = os.path.join(directory, 'sock')
    proc = subprocess.Popen([program, '-D', '-a', sock], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _attempt in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        yield sock
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(directory, ignore_errors=True)


def test_a_passphrase_key_held_by_ssh_agent_signs_through_its_public_half(tmp_path, agent, monkeypatch):
    key, _public = keygen(tmp_path, 'locked', passphrase='secret phrase')
    askpass = tmp_path / 'askpass'
    askpass.write_text('#!/bin/sh\necho "secret phrase"\n')
    askpass.chmod(0o700)
    subprocess.run(['ssh-add', '-q', key], check=True, stdin=subprocess.DEVNULL, capture_output=True,
                   env=dict(os.environ, SSH_AUTH_SOCK=agent, SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE='force'))
    os.unlink(key)
    monkeypatch.setenv('SSH_AUTH_SOCK', agent)
    archive = write_archive(tmp_path)
    assert _signing.sign(SSH_KEYGEN, key + '.pub', archive)['key'] == fingerprint_of(key + '.pub')


def test_check_key_gives_the_fingerprint_of_a_usable_key(tmp_path):
    key, _public = keygen(tmp_path, 'ops')
    assert _signing.check_key(SSH_KEYGEN, key) == fingerprint_of(key)


def test_check_key_refuses_a_passphrase_key_no_agent_holds(tmp_path, monkeypatch):
    monkeypatch.delenv('SSH_AUTH_SOCK', raising=False)
    key, _public = keygen(tmp_path, 'locked', passphrase='secret phrase')
    with pytest.raises(SignatureError, match='ssh-add') as caught:
        _signing.check_key(SSH_KEYGEN, key)
    assert caught.value.details['reason'] == 'signing'


def test_an_archive_signed_by_the_key_is_signed_with_it(signed):
    assert _signing.signed_with(SSH_KEYGEN, signed['key'], signed['archive'] + '.sig') is True


def test_an_archive_signed_by_another_key_is_not_signed_with_this_one(tmp_path, signed):
    other, _public = keygen(tmp_path, 'other')
    assert _signing.signed_with(SSH_KEYGEN, other, signed['archive'] + '.sig') is False


def test_a_signature_left_by_an_archive_written_over_is_not_taken_for_one(tmp_path, signed):
    with open(signed['archive'], 'ab') as handle:
        handle.write(b'written again')
    assert _signing.signed_with(SSH_KEYGEN, signed['key'], signed['archive'] + '.sig') is False


def test_an_archive_without_a_signature_is_not_signed_with_the_key(signed):
    os.unlink(signed['archive'] + '.sig')
    assert _signing.signed_with(SSH_KEYGEN, signed['key'], signed['archive'] + '.sig') is False


def test_a_signature_for_another_namespace_is_not_one_by_the_key(signed):
    ssh_sign(signed['key'], signed['archive'], 'file')
    assert _signing.signed_with(SSH_KEYGEN, signed['key'], signed['archive'] + '.sig') is False


# -- verifying ----------------------------------------------------------------------------------

def test_a_signed_archive_verifies_with_its_signer_and_digest(signed):
    assert _signing.verify(SSH_KEYGEN, signed['allowed'], signed['archive']) == dict(
        principal='ops@fleet', key=fingerprint_of(signed['key']), sha256=sha256_of(signed['archive']),
        signature=signed['archive'] + '.sig')


def test_the_first_principal_of_a_line_with_several_is_reported(tmp_path, signed):
    allowed = write_allowed(tmp_path, signed['public'], principal='ops@fleet,admin@fleet')
    assert _signing.verify(SSH_KEYGEN, allowed, signed['archive'])['principal'] == 'ops@fleet'


def test_a_large_archive_signs_and_verifies_as_a_stream(tmp_path):
    key, public = keygen(tmp_path, 'ops')
    archive = write_archive(tmp_path, size=20 << 20)
    _signing.sign(SSH_KEYGEN, key, archive)
    assert _signing.verify(SSH_KEYGEN, write_allowed(tmp_path, public), archive)['sha256'] == sha256_of(archive)


def test_a_changed_byte_is_a_bad_signature(signed):
    with open(signed['archive'], 'r+b') as handle:
        handle.seek(5000)
        byte = handle.read(1)
        handle.seek(5000)
        handle.write(bytes([byte[0] ^ 1]))
    assert refusal(signed['allowed'], signed['archive']).details['reason'] == 'bad_signature'


def test_the_signature_of_another_archive_is_a_bad_signature(tmp_path, signed):
    other = write_archive(tmp_path, name='other.tar.zst')
    assert refusal(signed['allowed'], other, signed['archive'] + '.sig').details['reason'] == 'bad_signature'


def test_a_key_not_in_allowed_signers_is_refused_by_its_fingerprint(tmp_path, signed):
    stranger, _public = keygen(tmp_path, 'stranger')
    _signing.sign(SSH_KEYGEN, stranger, signed['archive'])
    error = refusal(signed['allowed'], signed['archive'])
    assert (error.details['reason'], fingerprint_of(stranger) in error.msg) == ('signer_not_allowed', True)


def test_a_missing_signature_is_unsigned(tmp_path, signed):
    os.unlink(signed['archive'] + '.sig')
    error = refusal(signed['allowed'], signed['archive'])
    assert error.details['reason'] == 'unsigned'


def test_a_signature_for_another_namespace_is_refused(signed):
    ssh_sign(signed['key'], signed['archive'], 'file')
    assert refusal(signed['allowed'], signed['archive']).details['reason'] == 'signature_namespace'


def test_a_signer_allowed_only_for_another_namespace_is_refused(tmp_path, signed):
    allowed = write_allowed(tmp_path, signed['public'], namespaces='git,file')
    assert refusal(allowed, signed['archive']).details['reason'] == 'signer_not_allowed'


def test_a_signer_without_a_namespace_restriction_is_allowed(tmp_path, signed):
    allowed = write_allowed(tmp_path, signed['public'], namespaces=None)
    assert _signing.verify(SSH_KEYGEN, allowed, signed['archive'])['principal'] == 'ops@fleet'


def test_an_expired_signer_is_refused(tmp_path, signed):
    allowed = tmp_path / 'allowed_signers'
    allowed.write_text('ops@fleet namespaces="%s",valid-before="20200101" %s\n' % (NAMESPACE, signed['public']))
    assert refusal(str(allowed), signed['archive']).details['reason'] == 'signer_not_allowed'


def strings(*values):
    return b''.join(struct.pack('>I', len(value)) + value for value in values)


def garbage_signatures():
    sshsig = struct.pack('>I', 1)
    key = strings(b'ssh-ed25519', b'\x00' * 32)
    return dict(
        text=b'hello\n',
        binary=b'\xff\xfe\x00\x01' * 20,
        not_base64=('%s\n!!!!\n%s\n' % (_signing.ARMOR_BEGIN, _signing.ARMOR_END)).encode('ascii'),
        not_sshsig=armor(b'NOTSIG' + sshsig + b'x' * 40),
        other_version=armor(b'SSHSIG' + struct.pack('>I', 2) + strings(key, NAMESPACE.encode(), b'', b'sha512', b'')),
        truncated=armor(b'SSHSIG' + sshsig + strings(key, NAMESPACE.encode())[:-3]),
        trailing=armor(b'SSHSIG' + sshsig + strings(key, NAMESPACE.encode(), b'', b'sha512', b'sig') + b'extra'),
    )


@pytest.mark.parametrize('name', sorted(garbage_signatures()))
def test_a_signature_that_is_not_one_is_refused_clearly(signed, name):
    with open(signed['archive'] + '.sig', 'wb') as handle:
        handle.write(garbage_signatures()[name])
    assert refusal(signed['allowed'], signed['archive']).details['reason'] == 'signature_invalid'


def test_a_forged_signature_naming_an_allowed_key_is_a_bad_signature(signed):
    blob = base64.b64decode(signed['public'].split()[1])
    forged = strings(blob, NAMESPACE.encode(), b'', b'sha512', strings(b'ssh-ed25519', b'\x01' * 64))
    with open(signed['archive'] + '.sig', 'wb') as handle:
        handle.write(armor(b'SSHSIG' + struct.pack('>I', 1) + forged))
    assert refusal(signed['allowed'], signed['archive']).details['reason'] == 'bad_signature'


def test_an_oversize_signature_is_refused_unread(signed):
    with open(signed['archive'] + '.sig', 'ab') as handle:
        handle.write(b'\n' * (64 << 10))
    assert refusal(signed['allowed'], signed['archive']).details['reason'] == 'signature_invalid'


def test_a_directory_as_signature_is_refused(signed):
    os.unlink(signed['archive'] + '.sig')
    os.mkdir(signed['archive'] + '.sig')
    assert refusal(signed['allowed'], signed['archive']).details['reason'] == 'signature_invalid'


def test_a_missing_allowed_signers_is_refused(tmp_path, signed):
    assert refusal(str(tmp_path / 'nowhere'), signed['archive']).details['reason'] == 'allowed_signers'


def test_an_empty_allowed_signers_is_refused(tmp_path, signed):
    (tmp_path / 'empty').write_text('')
    assert refusal(str(tmp_path / 'empty'), signed['archive']).details['reason'] == 'allowed_signers'


def test_a_missing_archive_with_a_signature_is_refused(signed):
    os.rename(signed['archive'] + '.sig', signed['archive'] + '.kept')
    os.unlink(signed['archive'])
    assert refusal(signed['allowed'], signed['archive'], signed['archive'] + '.kept').details['reason'] == 'archive'


def test_verifying_without_ssh_keygen_says_what_to_install(signed):
    with pytest.raises(SignatureError, match='apt-get install openssh-client') as caught:
        _signing.verify(None, signed['allowed'], signed['archive'])
    assert caught.value.details['reason'] == 'ssh_keygen'


def test_the_fingerprint_of_a_key_blob_is_the_one_ssh_keygen_shows(tmp_path):
    key, public = keygen(tmp_path, 'ops')
    assert _signing.fingerprint(base64.b64decode(public.split()[1])) == fingerprint_of(key)
