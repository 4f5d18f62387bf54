# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""Signed portable archives: an SSH signature beside the archive (ARCHIVE.sig), made on the exporting host
with `ssh-keygen -Y sign` and checked on the importing one against an OpenSSH allowed_signers file
(`man ssh-keygen`, ALLOWED SIGNERS) before anything is unpacked.

Signatures are made for the namespace NAMESPACE, so that one made for git or for a file cannot be replayed as
ours. The archive reaches ssh-keygen on its stdin, a chunk at a time, and is hashed on the way: one read, never
whole in memory. ssh-keygen never prompts: it runs in a session of its own (no terminal to open), without
DISPLAY and with SSH_ASKPASS_REQUIRE=never, so a key it cannot use without a passphrase fails at once; a key
held by ssh-agent (SSH_AUTH_SOCK) is used as ssh-keygen uses it.

Only the standard library and the ssh-keygen program (openssh-client) are used."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
import struct
import subprocess
import tempfile

from ansible_collections.cryo.docker.plugins.module_utils._archive import fsync_dir
from ansible_collections.cryo.docker.plugins.module_utils._common import C_LOCALE, ModuleError, what_is

NAMESPACE = 'cryo.docker.archive'
SIG_SUFFIX = '.sig'

# An SSH signature is a few hundred bytes (a few KiB with a certificate): anything larger is not one.
SIG_LIMIT = 64 << 10
CHUNK = 1 << 20
TMP_SUFFIX = '.cryo-tmp'
# For the commands that read no archive (a fingerprint, find-principals): they answer at once.
SMALL_TIMEOUT = 60
STDERR_MAX = 300

ARMOR_BEGIN = '-----BEGIN SSH SIGNATURE-----'
ARMOR_END = '-----END SSH SIGNATURE-----'
SSHSIG_MAGIC = b'SSHSIG'
SSHSIG_VERSION = 1

FINGERPRINT_RE = re.compile(r'\bSHA256:[A-Za-z0-9+/]+')
GOOD_RE = re.compile(r'^Good "(?P<namespace>[^"]*)" signature for (?P<principal>.+?) with \S+ key '
                     r'(?P<key>SHA256:[A-Za-z0-9+/]+)', re.M)
# check-novalidate's: 'Good "NS" signature with ED25519 key SHA256:...' (no principal: no allowed_signers).
GOOD_KEY_RE = re.compile(r'^Good "[^"]*" signature with \S+ key (?P<key>SHA256:[A-Za-z0-9+/]+)', re.M)
# What ssh-keygen says on stderr while all is well: not worth a place in an error message.
CHATTER = ('Signing data on standard input',)

INSTALL = 'Install openssh-client (Debian and Ubuntu: apt-get install openssh-client) and run again.'


class SignatureError(ModuleError):
    """An archive that cannot be signed, or whose signature cannot be trusted; msg says which and why, reason
    names the case (ssh_keygen, signing, allowed_signers, archive, unsigned, signature_invalid,
    signature_namespace, signer_not_allowed, bad_signature)."""


def signature_path(archive_path):
    """Where the signature of the archive at archive_path is: beside it, ARCHIVE.sig."""
    return archive_path + SIG_SUFFIX


def _env():
    """The environment ssh-keygen runs in: ours (SSH_AUTH_SOCK included) in a C locale, with no way to ask
    for a passphrase through a graphical program."""
    env = dict(os.environ, **C_LOCALE)
    env['SSH_ASKPASS_REQUIRE'] = 'never'
    env.pop('DISPLAY', None)
    env.pop('WAYLAND_DISPLAY', None)
    return env


def _text(data):
    return data.decode('utf-8', 'replace')


def _clean(stderr):
    """ssh-keygen's stderr without its chatter and carriage returns."""
    lines = (line.strip() for line in stderr.replace('\r', '\n').split('\n'))
    return '\n'.join(line for line in lines if line and line not in CHATTER)


def _brief(stderr):
    """stderr on one line, short enough for a message."""
    text = ' '.join(stderr.split())
    if len(text) > STDERR_MAX:
        text = text[:STDERR_MAX - 3] + '...'
    return text or 'it said nothing'


def _need(ssh_keygen, doing):
    if not ssh_keygen:
        raise SignatureError('%s needs ssh-keygen (OpenSSH), which is not on the PATH of this host. %s'
                             % (doing, INSTALL), reason='ssh_keygen', stderr='')


def _start(argv, stdin, stdout, stderr):
    """ssh-keygen started with no terminal it could prompt on (a session of its own)."""
    try:
        return subprocess.Popen(  # pylint: disable=consider-using-with
            argv, stdin=stdin, stdout=stdout, stderr=stderr, env=_env(), close_fds=True, start_new_session=True)
    except OSError as exc:
        raise SignatureError('ssh-keygen (%s) could not be run: %s. %s' % (argv[0], exc, INSTALL),
                             reason='ssh_keygen', stderr='')


def _run(argv):
    """(rc, stdout, stderr) of a command that reads no archive; rc is None when it did not answer in time."""
    proc = _start(argv, subprocess.DEVNULL, subprocess.PIPE, subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=SMALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return None, _text(out), 'no answer after %d seconds (killed) %s' % (SMALL_TIMEOUT, _text(err))
    return proc.returncode, _text(out), _clean(_text(err))


def _run_fed(argv, path, reason):
    """Run argv with the file at path on its stdin, CHUNK bytes at a time, hashed on the way:
    (rc, stdout, stderr, 'sha256:HEX' of the bytes read, whether ssh-keygen took them all).

    ssh-keygen exiting before the end (a key it could not load) ends the feeding (a broken pipe): it is
    reported by rc and the last value, not raised. A file that cannot be read raises SignatureError(reason)."""
    digest = hashlib.sha256()
    try:
        data = open(path, 'rb')  # pylint: disable=consider-using-with
    except OSError as exc:
        raise SignatureError('The archive %s cannot be read: %s. Nothing was done. Give the path of the archive '
                             'file.' % (path, exc.strerror or exc), reason=reason, stderr='')
    with data, tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = _start(argv, subprocess.PIPE, out, err)
        complete = True
        try:
            while complete:
                try:
                    chunk = data.read(CHUNK)
                except OSError as exc:
                    raise SignatureError('Reading the archive %s failed: %s. Nothing was done. Check the disk it is '
                                         'on, or copy it again.' % (path, exc.strerror or exc), reason=reason,
                                         stderr='')
                if not chunk:
                    break
                digest.update(chunk)
                try:
                    proc.stdin.write(chunk)
                except BrokenPipeError:
                    complete = False
            try:
                proc.stdin.close()
            except BrokenPipeError:
                complete = False
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        rc = proc.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = _text(out.read(SIG_LIMIT)), _clean(_text(err.read(SIG_LIMIT)))
    return rc, stdout, stderr, 'sha256:' + digest.hexdigest(), complete


def _write_atomic(path, data):
    """data in a file at path (mode 0600), written beside it, flushed to disk and renamed into place: readers
    see the old file or the new one, never a part."""
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix=TMP_SUFFIX, dir=directory)
    try:
        with os.fdopen(fd, 'wb') as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(directory)


# -- the signature file -------------------------------------------------------------------------

def fingerprint(blob):
    """The fingerprint ssh-keygen shows for a public key blob: 'SHA256:' and its hash in base64, unpadded."""
    return 'SHA256:' + base64.b64encode(hashlib.sha256(blob).digest()).decode('ascii').rstrip('=')


def _strings(blob, offset, count):
    """count SSH strings (uint32 length, bytes) of blob from offset."""
    values = []
    for _index in range(count):
        if offset + 4 > len(blob):
            raise ValueError('it ends too soon')
        size = struct.unpack('>I', blob[offset:offset + 4])[0]
        offset += 4
        if offset + size > len(blob):
            raise ValueError('it ends too soon')
        values.append(blob[offset:offset + size])
        offset += size
    return values, offset


def parse_signature(data):
    """What an armored SSH signature (the bytes of a .sig, PROTOCOL.sshsig) says without the data it signs:
    dict(key='SHA256:...', key_type, namespace, hash_alg). ValueError says why data is not one."""
    try:
        lines = data.decode('ascii').strip().splitlines()
    except UnicodeDecodeError:
        raise ValueError('it is not text') from None
    lines = [line.strip() for line in lines]
    if len(lines) < 3 or lines[0] != ARMOR_BEGIN or lines[-1] != ARMOR_END:
        raise ValueError('it does not lie between the lines %s and %s' % (ARMOR_BEGIN, ARMOR_END))
    try:
        blob = base64.b64decode(''.join(lines[1:-1]), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError('its body is not base64') from None
    if blob[:6] != SSHSIG_MAGIC or len(blob) < 10:
        raise ValueError('it does not start with SSHSIG')
    version = struct.unpack('>I', blob[6:10])[0]
    if version != SSHSIG_VERSION:
        raise ValueError('it is of version %d, and ssh-keygen writes version %d' % (version, SSHSIG_VERSION))
    (public_key, namespace, _reserved, hash_alg, _signature), end = _strings(blob, 10, 5)
    if end != len(blob):
        raise ValueError('it holds %d bytes after the signature' % (len(blob) - end))
    key_type = _strings(public_key, 0, 1)[0][0]
    return dict(key=fingerprint(public_key), key_type=_text(key_type), namespace=_text(namespace),
                hash_alg=_text(hash_alg))


def _read_signature(archive_path, sig_path):
    """The bytes of the signature file: refused when it is missing, not a file or too large for one."""
    try:
        info = os.stat(sig_path)
    except OSError:
        info = None
    if info is None and not os.path.lexists(sig_path):
        raise SignatureError('The archive %s has no signature (%s), and allowed_signers requires one: it was '
                             'refused before anything was read, and nothing was created. Sign it on the exporting host (signing_key) or '
                             'copy its %s beside it.' % (archive_path, sig_path, SIG_SUFFIX),
                             reason='unsigned', signature=sig_path)
    if info is None or not stat.S_ISREG(info.st_mode):
        raise SignatureError('The signature of the archive %s, %s, is not a file: it is %s. It was refused before '
                             'anything was read. Copy the archive\'s %s from the exporting host beside it.'
                             % (archive_path, sig_path, what_is(sig_path), SIG_SUFFIX),
                             reason='signature_invalid', signature=sig_path)
    if info.st_size > SIG_LIMIT:
        raise SignatureError('The signature of the archive %s, %s, is %d bytes long: an SSH signature is a few '
                             'hundred bytes (at most %d here), so this is not one. It was refused before anything '
                             'was read. Copy the archive\'s %s again from the exporting host, or sign it again there.'
                             % (archive_path, sig_path, info.st_size, SIG_LIMIT, SIG_SUFFIX),
                             reason='signature_invalid', signature=sig_path)
    try:
        with open(sig_path, 'rb') as handle:
            return handle.read(SIG_LIMIT + 1)
    except OSError as exc:
        raise SignatureError('The signature of the archive %s, %s, cannot be read: %s. It was refused before '
                             'anything was read. Make it readable by the user the task runs as.'
                             % (archive_path, sig_path, exc.strerror or exc),
                             reason='signature_invalid', signature=sig_path)


def _check_allowed_signers(allowed_signers):
    try:
        with open(allowed_signers, 'rb') as handle:
            size = os.fstat(handle.fileno()).st_size
    except OSError as exc:
        raise SignatureError('allowed_signers %s cannot be read: %s. Give the path of an OpenSSH allowed_signers '
                             'file (man ssh-keygen, ALLOWED SIGNERS), one line per trusted key: principal '
                             'namespaces="%s" ssh-ed25519 AAAA...' % (allowed_signers, exc.strerror or exc, NAMESPACE),
                             reason='allowed_signers', stderr='')
    if size == 0:
        raise SignatureError('allowed_signers %s is empty, so it trusts no key and every archive would be refused. '
                             'Add a line per trusted key: principal namespaces="%s" ssh-ed25519 AAAA...'
                             % (allowed_signers, NAMESPACE), reason='allowed_signers', stderr='')


# -- signing and verifying ----------------------------------------------------------------------

def key_fingerprint(ssh_keygen, key):
    """The fingerprint ('SHA256:...') of the key file at key, private or public (`ssh-keygen -l -f KEY`);
    SignatureError(reason='signing') when ssh-keygen cannot read it as a key."""
    _need(ssh_keygen, 'Signing the archive')
    if not os.path.isfile(key):
        raise SignatureError('signing_key %s is not a file: it is %s. Give the path of an OpenSSH private key, or '
                             'of a public key whose private half ssh-agent holds; no signature was made.'
                             % (key, what_is(key)), reason='signing', stderr='')
    rc, out, err = _run([ssh_keygen, '-l', '-f', key])
    found = FINGERPRINT_RE.search(out) if rc == 0 else None
    if not found:
        raise SignatureError('signing_key %s is not a key ssh-keygen can read (ssh-keygen -l: %s). Give the path of '
                             'an OpenSSH private key, or of a public key whose private half ssh-agent holds; no '
                             'signature was made.' % (key, _brief(err)), reason='signing', stderr=err)
    return found.group(0)


def _signing_failed(doing, key, key_print, why, stderr, remedy_tail):
    """The SignatureError of a signature ssh-keygen could not make with key."""
    if 'passphrase' in stderr:
        remedy = ('The key is protected by a passphrase and ssh-agent does not hold it, and nothing can type a '
                  'passphrase here: load it into an agent (ssh-add %s) whose socket is in the task\'s SSH_AUTH_SOCK, '
                  'or use a key without a passphrase.' % key)
    else:
        remedy = ('Check that signing_key is an OpenSSH private key the task\'s user can read, or a public key whose '
                  'private half ssh-agent holds (SSH_AUTH_SOCK).')
    return SignatureError('%s with signing_key %s (%s) failed: %s. %s %s'
                          % (doing, key, key_print, why, remedy_tail, remedy), reason='signing', stderr=stderr)


def check_key(ssh_keygen, key):
    """Refuse, before anything is done, a signing key that sign() could not use: no ssh-keygen, not a file, not a
    key, or a key behind a passphrase that no agent holds (found by signing nothing, as sign() would sign the
    archive: through the agent when it holds the key, else with the private key file). Its fingerprint."""
    key_print = key_fingerprint(ssh_keygen, key)
    rc, out, err = _run([ssh_keygen, '-Y', 'sign', '-f', key, '-n', NAMESPACE])
    if rc != 0 or ARMOR_BEGIN not in out:
        raise _signing_failed('A trial signature', key, key_print, 'ssh-keygen -Y sign %s (%s)' % (
            'exited with code %s' % rc if rc is not None else 'did not answer', _brief(err)), err,
            'Nothing was done.')
    return key_print


def sign(ssh_keygen, key, archive_path, sig_path=None):
    """Sign the archive at archive_path with the key at key (a private key file, or a public key whose private
    half ssh-agent holds) for NAMESPACE, and write the signature to sig_path (ARCHIVE.sig by default), mode
    0600, atomically. dict(path=sig_path, key='SHA256:...', sha256='sha256:HEX' of the bytes signed).

    SignatureError(reason='ssh_keygen') without ssh-keygen, reason='signing' when the key cannot be used (not
    there, not a key, behind a passphrase that no agent holds), the archive cannot be read or the signature
    cannot be written; no signature is written then."""
    sig_path = sig_path or signature_path(archive_path)
    key_print = key_fingerprint(ssh_keygen, key)
    rc, out, err, digest, complete = _run_fed([ssh_keygen, '-Y', 'sign', '-f', key, '-n', NAMESPACE],
                                              archive_path, 'signing')
    why = None
    if rc != 0 or not complete:
        why = 'ssh-keygen -Y sign %s (%s)' % ('exited with code %s' % rc if rc else 'stopped reading it',
                                              _brief(err))
    else:
        try:
            parse_signature(out.encode('utf-8'))
        except ValueError as exc:
            why = 'what ssh-keygen -Y sign wrote is not a signature: %s' % exc
    if why:
        raise _signing_failed('Signing the archive %s' % archive_path, key, key_print, why, err,
                              'No signature was written.')
    try:
        _write_atomic(sig_path, out.encode('utf-8'))
    except OSError as exc:
        raise SignatureError('Writing the signature %s failed: %s. No signature was written. Make its directory '
                             'writable, or give another sig_path.' % (sig_path, exc.strerror or exc),
                             reason='signing', stderr='')
    return dict(path=sig_path, key=key_print, sha256=digest)


def signed_with(ssh_keygen, key, sig_path, archive_path=None):
    """Whether sig_path holds a signature by key, for NAMESPACE, of the bytes of the archive at archive_path
    (sig_path without SIG_SUFFIX by default): what sign() would write again. The archive is read once
    (`ssh-keygen -Y check-novalidate`, which trusts no allowed_signers and needs none) unless the signature file
    already shows another key or namespace: a signature left by an archive written over since is not taken for
    one. SignatureError for a key sign() could not use (key_fingerprint) or an archive that cannot be read."""
    key_print = key_fingerprint(ssh_keygen, key)
    if archive_path is None:
        archive_path = sig_path[:-len(SIG_SUFFIX)] if sig_path.endswith(SIG_SUFFIX) else sig_path
    try:
        signer = parse_signature(_read_signature(archive_path, sig_path))
    except (SignatureError, ValueError):
        return False
    if signer['namespace'] != NAMESPACE or signer['key'] != key_print:
        return False
    rc, out, err, _digest, complete = _run_fed([ssh_keygen, '-Y', 'check-novalidate', '-n', NAMESPACE, '-s', sig_path],
                                               archive_path, 'signing')
    good = GOOD_KEY_RE.search(out) or GOOD_KEY_RE.search(err)
    return rc == 0 and complete and good is not None and good.group('key') == key_print


def _principals(ssh_keygen, allowed_signers, archive_path, sig_path, signer):
    """The principals allowed_signers lists for the key that made the signature, valid now (`ssh-keygen -Y
    find-principals`, which reads no data); SignatureError(reason='signer_not_allowed') when none."""
    rc, out, err = _run([ssh_keygen, '-Y', 'find-principals', '-s', sig_path, '-f', allowed_signers])
    principals = [line.strip() for line in out.splitlines() if line.strip()] if rc == 0 else []
    if not principals:
        raise SignatureError('The signature %s of the archive %s was made by the key %s (%s), which allowed_signers '
                             '(%s) does not list, or not as valid now (ssh-keygen -Y find-principals: %s): the archive '
                             'was refused before anything was read, and nothing was created. If that key is trusted, add a line for it to '
                             'allowed_signers (principal namespaces="%s" %s AAAA...); otherwise sign the archive '
                             'with a key it lists.'
                             % (sig_path, archive_path, signer['key'], signer['key_type'], allowed_signers,
                                _brief(err), NAMESPACE, signer['key_type']),
                             reason='signer_not_allowed', key=signer['key'], signature=sig_path, stderr=err)
    return principals


def verify(ssh_keygen, allowed_signers, archive_path, sig_path=None):
    """Check the archive at archive_path against its signature (sig_path, ARCHIVE.sig by default): made for
    NAMESPACE by a key allowed_signers lists for it, over exactly these bytes. dict(principal, key='SHA256:...',
    sha256='sha256:HEX' of the bytes verified, signature=sig_path).

    What can be refused without reading the archive is refused first: SignatureError with reason
    'ssh_keygen', 'allowed_signers' (missing, unreadable or empty), 'unsigned' (no signature),
    'signature_invalid' (not a file, too large, not an SSH signature), 'signature_namespace' (made for another
    namespace), 'signer_not_allowed' (a key allowed_signers does not list, or not for NAMESPACE); then reason
    'archive' (unreadable) or 'bad_signature' (these bytes are not what was signed).

    The archive is read once per principal tried: allowed_signers usually names one for a key; a second is
    tried only when the first is not allowed the namespace."""
    sig_path = sig_path or signature_path(archive_path)
    _need(ssh_keygen, 'Verifying the archive')
    _check_allowed_signers(allowed_signers)
    try:
        signer = parse_signature(_read_signature(archive_path, sig_path))
    except ValueError as exc:
        raise SignatureError('The signature of the archive %s, %s, is not an SSH signature: %s. It was refused '
                             'before anything was read, and nothing was created. Copy the archive\'s %s again from the exporting host, or sign '
                             'it again there (signing_key).' % (archive_path, sig_path, exc, SIG_SUFFIX),
                             reason='signature_invalid', signature=sig_path)
    if signer['namespace'] != NAMESPACE:
        raise SignatureError('The signature %s was made for the namespace "%s", not "%s": it signs something else '
                             '(ssh-keygen -Y sign -n %s), and cannot vouch for the archive %s, which was refused '
                             'before anything was read, and nothing was created. Sign the archive on the exporting host with signing_key, '
                             'which signs for "%s".' % (sig_path, signer['namespace'], NAMESPACE, signer['namespace'],
                                                        archive_path, NAMESPACE),
                             reason='signature_namespace', key=signer['key'], signature=sig_path)
    refusals = []
    for principal in _principals(ssh_keygen, allowed_signers, archive_path, sig_path, signer):
        rc, out, err, digest, complete = _run_fed(
            [ssh_keygen, '-Y', 'verify', '-f', allowed_signers, '-I', principal, '-n', NAMESPACE, '-s', sig_path],
            archive_path, 'archive')
        good = GOOD_RE.search(out) or GOOD_RE.search(err)
        if rc == 0 and complete and good:
            return dict(principal=good.group('principal'), key=good.group('key'), sha256=digest, signature=sig_path)
        if 'not permitted' not in err:
            raise SignatureError('The archive %s does not match its signature %s (ssh-keygen -Y verify: %s): it was '
                                 'changed after it was signed, or the signature belongs to another file. It was '
                                 'refused before anything was unpacked, and nothing was created. Copy the archive and '
                                 'its %s again from the exporting host.'
                                 % (archive_path, sig_path, _brief(err or out), SIG_SUFFIX),
                                 reason='bad_signature', key=signer['key'], principal=principal,
                                 sha256=digest if complete else None, signature=sig_path, stderr=err)
        refusals.append((principal, err))
    raise SignatureError('allowed_signers (%s) lists the key %s that signed the archive %s (as %s), but not for the '
                         'namespace "%s" (ssh-keygen -Y verify: %s): the archive was refused before anything was '
                         'unpacked, and nothing was created. If that key may sign archives, add "%s" to the '
                         'namespaces="..." of its line.'
                         % (allowed_signers, signer['key'], archive_path, ', '.join(p for p, _e in refusals),
                            NAMESPACE, _brief(refusals[-1][1]), NAMESPACE),
                         reason='signer_not_allowed', key=signer['key'], signature=sig_path, stderr=refusals[-1][1])
