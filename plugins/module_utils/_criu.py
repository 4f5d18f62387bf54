# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""Understanding CRIU: versions, `criu check`, logs, and runc's CRIU configuration."""

from __future__ import annotations

import os
import re
import struct

from ansible_collections.cryo.docker.plugins.module_utils._common import C_LOCALE

# Lowest CRIU known to work, by kernel release (newest rule first).
KERNEL_MIN_CRIU = (
    ((6, 16), (4, 2), 'CRIU before 4.2 cannot checkpoint TCP/UDP sockets on kernels >= 6.16 '
                      '("sockets: Can\'t get 1:16 opt: Operation not supported")'),
    ((6, 13), (4, 1), 'CRIU before 4.1 fails on kernels >= 6.13 ("vdso: Unexpected rt vDSO area bounds")'),
)
DOCKER_MIN_CRIU = (2, 0)

RUNC_CONF = '/etc/criu/runc.conf'

# Every CRIU log carries this line; it says nothing about why an operation failed.
LOG_NOISE = ('RLIMIT_NOFILE',)


def parse_release(text):
    """(major, minor[, patch]) from '6.18.44-fc-v657', '4.2.1', 'Version: 3.17.1'; None if absent."""
    match = re.search(r'(\d+)\.(\d+)(?:\.(\d+))?', text or '')
    if not match:
        return None
    return tuple(int(part) for part in match.groups() if part is not None)


def parse_version(text):
    """The CRIU version from `criu --version` output ('Version: 4.2.1' / 'GitID: ...')."""
    match = re.search(r'^Version:\s*(\S+)', text or '', re.MULTILINE)
    return match.group(1) if match else None


def version_tuple(version):
    parsed = parse_release(version)
    if parsed is None:
        return None
    return parsed + (0,) * (3 - len(parsed))


def format_version(parts):
    return '.'.join(str(p) for p in parts)


def min_version_for_kernel(kernel_release):
    """(version string, reason) of the lowest CRIU that works on this kernel."""
    kernel = parse_release(kernel_release) or (0, 0)
    for min_kernel, min_criu, reason in KERNEL_MIN_CRIU:
        if kernel[:2] >= min_kernel:
            return format_version(min_criu), reason
    return format_version(DOCKER_MIN_CRIU), 'Docker needs CRIU 2.0 or later'


def version_at_least(version, minimum):
    have, want = version_tuple(version), version_tuple(minimum)
    return have is not None and want is not None and have >= want


def parse_check(rc, stdout, stderr):
    """`criu check` understood: its exit code alone is not enough (warnings go to stderr)."""
    text = '\n'.join(part for part in (stdout, stderr) if part)
    errors = [line.strip() for line in text.splitlines() if line.strip().startswith('Error')]
    warnings = [line.strip() for line in text.splitlines()
                if line.strip().startswith('Warn') and 'kdat cache' not in line]
    # 'Looks good but some kernel features are missing ...' exits non-zero: CRIU runs on this
    # kernel, some features (named in the Warn lines) may not work for every process tree.
    partial = 'Looks good but' in text and not errors
    if partial:
        sentence = re.search(r'Looks good but.*?(?:failure\.|$)', text, re.DOTALL)
        warnings.append(' '.join(sentence.group(0).split()))
    ok = not errors and ((rc == 0 and 'Looks good' in text) or partial)
    if not ok and not errors:
        errors = [line.strip() for line in text.splitlines() if line.strip()][-5:] or ['criu check exited %s' % rc]
    return dict(ok=ok, rc=rc, warnings=warnings, errors=errors)


def probe(module, path):
    """What the CRIU at path is: {path, version, check, check_ok}, from `criu --version` and `criu check`
    run through module.run_command. version is None when the file is missing or does not say."""
    found = dict(path=path, version=None, check=None, check_ok=False)
    if not path or not os.path.isfile(path):
        return found
    rc, out, _err = module.run_command([path, '--version'], environ_update=C_LOCALE)
    found['version'] = parse_version(out) if rc == 0 else None
    found['check'] = parse_check(*module.run_command([path, 'check'], environ_update=C_LOCALE))
    found['check_ok'] = found['check']['ok']
    return found


def log_errors(text, limit=20):
    """The lines of a CRIU log that say why it failed."""
    out = []
    for line in (text or '').splitlines():
        if 'Error (' not in line or any(noise in line for noise in LOG_NOISE):
            continue
        out.append(line.strip())
        if 'FAILED' in line:
            break  # what follows "Dumping/Restoring FAILED." is CRIU cleaning up, not the cause
    return out[-limit:]


def conf_entry(raw):
    """(option, value) one line of a CRIU configuration file sets, as CRIU reads it (criu/config.c: the first word
    is the option, `--` optional, the rest its value; `option=value` is getopt's form): ('log-file',
    '/var/log/criu.log'), ('tcp-established', True) for a flag; None for a blank line or a comment."""
    line = raw.split('#', 1)[0].strip()
    if not line:
        return None
    word, *rest = line.split(None, 1)
    key, equals, inline = word.lstrip('-').partition('=')
    value = inline if equals else (rest[0].strip() if rest else '')
    return key, value or True


def parse_runc_conf(text):
    """Options of /etc/criu/runc.conf as a dict ({'log-file': '/var/log/criu.log', 'tcp-established': True})."""
    return dict(entry for entry in map(conf_entry, (text or '').splitlines()) if entry)


def runc_log_file(path=RUNC_CONF):
    """The CRIU log file runc is told to use, or None."""
    try:
        with open(path) as handle:
            value = parse_runc_conf(handle.read()).get('log-file')
    except OSError:
        return None
    return value if isinstance(value, str) and value.startswith('/') else None


def read_log_errors(paths, limit=20):
    """(path, error lines) of the first readable log among paths that has error lines."""
    for path in paths:
        if not path:
            continue
        try:
            with open(path, errors='replace') as handle:
                lines = log_errors(handle.read(), limit)
        except OSError:
            continue
        if lines:
            return path, lines
    return None, []


def log_path_from_message(message):
    """The log file an engine error names ('log file: /var/lib/docker/.../criu-dump.log')."""
    match = re.search(r'(/[^\s"\\:]+\.log)', message or '')
    return match.group(1) if match else None


def failure_log(engine_message):
    """(log path, Error lines) for a failed checkpoint or restore: the log the engine names,
    else the persistent log runc was told to keep (/etc/criu/runc.conf log-file)."""
    return read_log_errors([log_path_from_message(engine_message), runc_log_file()])


def quote_errors(errors, limit=3):
    """The first Error lines of a CRIU log, as one line for a message."""
    return ' | '.join(errors[:limit])


# -- CRIU's images ---------------------------------------------------------------------------
#
# An image file is two 32-bit magics, then entries, each a 32-bit size and a protobuf message.
# Only the first entry and its scalar fields are read here: what the verification (mm-<pid>.img)
# and the statistics (stats-dump, stats-restore) need.

class ImageError(ValueError):
    """An image file that is missing, damaged or not what its name says."""


def varint(data, pos):
    """The protobuf varint at data[pos] and the position after it."""
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ImageError('a number runs past the end of its entry')
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos


def protobuf_fields(message):
    """{field number: int (varint) or bytes (length-delimited)} of a protobuf message; the last wins."""
    fields = {}
    pos = 0
    while pos < len(message):
        key, pos = varint(message, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            fields[number], pos = varint(message, pos)
        elif wire == 1:
            pos += 8
        elif wire == 2:
            length, pos = varint(message, pos)
            fields[number] = message[pos:pos + length]
            pos += length
        elif wire == 5:
            pos += 4
        else:
            raise ValueError('unexpected protobuf wire type %d' % wire)
    return fields


def image_entry(data):
    """The fields of the first entry of a CRIU image file (bytes); ValueError when it is not one."""
    if len(data) < 12:
        raise ValueError('CRIU image too short')
    size = struct.unpack_from('<I', data, 8)[0]
    if 12 + size > len(data):
        raise ValueError('CRIU image truncated')
    try:
        return protobuf_fields(data[12:12 + size])
    except IndexError:
        raise ValueError('CRIU image entry is not a protobuf message')


# StatsEntry (criu/images/stats.proto): dump = 1 (DumpStatsEntry), restore = 2 (RestoreStatsEntry).
# Times in microseconds. Named as Podman's --print-stats names them.
DUMP_STATS = ((1, 'freezing_time'), (2, 'frozen_time'), (3, 'memdump_time'), (4, 'memwrite_time'),
              (5, 'pages_scanned'), (6, 'pages_skipped_parent'), (7, 'pages_written'), (9, 'pages_lazy'))
RESTORE_STATS = ((1, 'pages_compared'), (2, 'pages_skipped_cow'), (3, 'forking_time'), (4, 'restore_time'),
                 (5, 'pages_restored'))


def parse_stats(data):
    """CRIU's statistics from stats-dump or stats-restore: {'dump': {...}} or {'restore': {...}}."""
    entry = image_entry(data)
    out = {}
    for number, kind, names in ((1, 'dump', DUMP_STATS), (2, 'restore', RESTORE_STATS)):
        if isinstance(entry.get(number), bytes):
            fields = protobuf_fields(entry[number])
            out[kind] = {name: fields.get(field, 0) for field, name in names}
    return out


def read_stats(directory, name):
    """The statistics CRIU kept in directory (name: 'stats-dump' or 'stats-restore'), or None."""
    try:
        with open(os.path.join(directory, name), 'rb') as handle:
            return parse_stats(handle.read()).get(name.split('-', 1)[1]) or None
    except (OSError, ValueError, IndexError):
        return None
