# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""The portable checkpoint archive: its layout, how it is written, verified and unpacked.

One tar file (zstd, gzip or uncompressed), with the names Podman's checkpoint export and checkpointctl
use where they exist, so that `checkpointctl inspect` reads it:

    cryo-archive.json      first member: which checkpoint of which container this is (read alone to
                           tell whether an archive at a path is up to date)
    config.dump            {id, name, rootfsImageName, runtime, createdTime, checkpointedTime} (checkpointctl)
    spec.dump              the container's OCI spec (checkpointctl)
    container.json         what is needed to create the container again (see _containers.record_container)
    deleted.files          JSON list of the paths deleted from the image (Podman's name and format)
    stats-dump             CRIU's dump statistics, where the checkpoint kept them (checkpointctl --stats)
    cpuinfo.img            optional: the source host's CPU as `criu cpuinfo dump` records it (_cpu; the import
                           runs `criu cpuinfo check` against it before it unpacks anything)
    checkpoint/            the checkpoint directory as it is (CRIU's images, cryo-checkpoint.json ...)
    rootfs-diff.tar        the writable layer's changed and added files, paths relative to / (Podman's name)
    volumes/<n>.tar        optional: the contents of the container's volumes
    image.tar              optional: the image (the Engine API's `GET /images/{id}/get`, docker save format)
    manifest.json          sha256 and size of every member above, versions, CPU architecture and features
    manifest.json.sha256   sha256 of manifest.json

Nothing here talks to the Docker Engine. Only the standard library and the `zstd` program are used:
compressed streams go through `zstd` (a pipe) or Python's gzip; tar through tarfile in stream mode, so
that neither side ever holds more than a buffer of the archive in memory.
"""

from __future__ import annotations

import contextlib
import datetime
import gzip
import hashlib
import io
import json
import os
import posixpath
import re
import stat
import subprocess
import tarfile
import tempfile
import threading
import zlib

from ansible_collections.cryo.docker.plugins.module_utils._common import C_LOCALE, ModuleError

FORMAT = 1

IDENTITY = 'cryo-archive.json'
CONFIG_DUMP = 'config.dump'
SPEC_DUMP = 'spec.dump'
CONTAINER = 'container.json'
DELETED_FILES = 'deleted.files'
STATS_DUMP = 'stats-dump'
CPUINFO = 'cpuinfo.img'
CHECKPOINT_DIR = 'checkpoint'
ROOTFS_DIFF = 'rootfs-diff.tar'
VOLUMES_DIR = 'volumes'
IMAGE = 'image.tar'
MANIFEST = 'manifest.json'
MANIFEST_DIGEST = 'manifest.json.sha256'
CHECKPOINT_METADATA = CHECKPOINT_DIR + '/cryo-checkpoint.json'  # the checkpoint's (_checkpoint.METADATA_FILE)

# Members read into memory during the verification (all small): what the import needs before it unpacks.
SMALL_MEMBERS = (IDENTITY, CONFIG_DUMP, CONTAINER, DELETED_FILES, MANIFEST, MANIFEST_DIGEST, CPUINFO,
                 CHECKPOINT_DIR + '/mm-1.img', CHECKPOINT_METADATA, CHECKPOINT_DIR + '/pstree.img',
                 CHECKPOINT_DIR + '/seccomp.img')
SMALL_LIMIT = 16 << 20
# The checkpoint's core images (one per thread: its credentials, which CRIU restores), kept too, at most this
# many bytes in all (a few KB each).
CORE_IMAGE_RE = re.compile(r'checkpoint/core-[0-9]+\.img')
CORE_LIMIT = 64 << 20

COMPRESSIONS = ('zstd', 'gzip', 'none')
# zstd's own default level (fast, multi-threaded with -T0) and gzip's usual one.
DEFAULT_LEVELS = dict(zstd=3, gzip=6, none=0)
LEVEL_RANGES = dict(zstd=(1, 19), gzip=(1, 9), none=(0, 0))
SUFFIXES = dict(zstd='.tar.zst', gzip='.tar.gz', none='.tar')

TMP_SUFFIX = '.cryo-tmp'
CHUNK = 1 << 20

# What a read of an archive accepts at most, whatever its manifest says (the manifest is the last member, and it
# comes from the archive too): members (a checkpoint of a container with a thousand threads holds a few
# thousand), bytes of one extended header (pax or GNU long name: path names of a few hundred bytes each), and
# bytes after the end of the tar stream (tarfile pads the stream to a record of 10240 bytes).
MAX_MEMBERS = 100000
HEADER_LIMIT = 64 << 10
TRAILING_LIMIT = tarfile.RECORDSIZE
ZSTD_MAGIC = b'\x28\xb5\x2f\xfd'
GZIP_MAGIC = b'\x1f\x8b'


class ArchiveError(ModuleError):
    """An archive that cannot be written, read or trusted; msg says which and why."""


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def to_json(data):
    return (json.dumps(data, indent=2, sort_keys=True) + '\n').encode('utf-8')


def resolve_compression(requested, zstd_path):
    """The compression to write: auto is zstd when the zstd program is there, else gzip."""
    if requested == 'auto':
        return 'zstd' if zstd_path else 'gzip'
    if requested == 'zstd' and not zstd_path:
        raise ArchiveError('compression zstd needs the zstd program, which is not on the PATH of this host. Install '
                           'it (Debian and Ubuntu: apt-get install zstd), or use compression gzip (or auto, which '
                           'takes gzip when zstd is missing).')
    return requested


def resolve_level(compression, level):
    if level is None:
        return DEFAULT_LEVELS[compression]
    low, high = LEVEL_RANGES[compression]
    if compression == 'none':
        return 0
    if not low <= level <= high:
        raise ArchiveError('compression_level %s is outside %s to %s, the levels %s takes. Give one of them, or leave '
                           'compression_level out for the default (%s).'
                           % (level, low, high, compression, DEFAULT_LEVELS[compression]))
    return level


# -- writing ------------------------------------------------------------------------------------

class _Hashing:
    """A file object whose bytes are hashed and counted on their way through: a member as tarfile reads it,
    the archive file as the compressor writes it."""

    def __init__(self, handle):
        self.handle = handle
        self.hash = hashlib.sha256()
        self.count = 0

    def _saw(self, data):
        self.hash.update(data)
        self.count += len(data)
        return data

    def read(self, size=-1):
        return self._saw(self.handle.read(size))

    def write(self, data):
        return self.handle.write(self._saw(data))

    def flush(self):
        self.handle.flush()


def temp_name(path):
    """The prefix of the temporary files an archive at path is written as (hidden, beside it)."""
    return '.%s.' % os.path.basename(path)


def stale_temps(path):
    """Temporary files an interrupted write of the archive at path left beside it."""
    directory = os.path.dirname(path) or '.'
    prefix = temp_name(path)
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(os.path.join(directory, name) for name in names
                  if name.startswith(prefix) and name.endswith(TMP_SUFFIX))


class Writer:
    """One archive written to a temporary file beside `path` (mode 0600) and renamed over it once
    complete: readers see the old archive or the new one, never a part. `members` lists what was
    written, with each member's size and sha256, in order; `commit()` returns (size, sha256) of the file.

    With zstd the tar stream goes through the zstd program (`zstd -T0 -LEVEL`); the program is run
    through subprocess rather than AnsibleModule.run_command because its input is a stream."""

    def __init__(self, path, compression='zstd', level=None, zstd=None):
        self.path = path
        self.compression = compression
        self.level = resolve_level(compression, level)
        self.zstd = zstd
        self.members = []
        self.tmp = None
        self._file = None
        self._out = None
        self._proc = None
        self._pump = None
        self._pump_error = []
        self._stderr = None
        self._tar = None
        self._hash = None
        self.mtime = int(datetime.datetime.now().timestamp())

    # -- life cycle

    def open(self):
        fd, self.tmp = tempfile.mkstemp(prefix=temp_name(self.path), suffix=TMP_SUFFIX,
                                        dir=os.path.dirname(self.path) or '.')
        os.fchmod(fd, 0o600)
        self._file = os.fdopen(fd, 'wb')
        self._hash = _Hashing(self._file)
        if self.compression == 'zstd':
            self._stderr = tempfile.TemporaryFile()
            env = dict(os.environ, **C_LOCALE)
            self._proc = subprocess.Popen(  # pylint: disable=consider-using-with
                [self.zstd, '-q', '-c', '-T0', '-%d' % self.level, '-'], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=self._stderr, env=env, close_fds=True)
            self._pump = threading.Thread(target=self._copy_out, daemon=True)
            self._pump.start()
            self._out = self._proc.stdin
            self._tar = tarfile.open(fileobj=self._out, mode='w|', format=tarfile.PAX_FORMAT)
        elif self.compression == 'gzip':
            self._out = gzip.GzipFile(filename='', mode='wb', fileobj=self._hash, compresslevel=self.level, mtime=0)
            self._tar = tarfile.open(fileobj=self._out, mode='w|', format=tarfile.PAX_FORMAT)
        else:
            self._tar = tarfile.open(fileobj=self._hash, mode='w|', format=tarfile.PAX_FORMAT)
        self._tar.copybufsize = CHUNK
        return self

    def _copy_out(self):
        try:
            while True:
                data = self._proc.stdout.read(CHUNK)
                if not data:
                    return
                self._hash.write(data)
        except Exception as exc:  # pylint: disable=broad-except
            self._pump_error.append(exc)

    def commit(self):
        """Finish the archive, flush it to disk and rename it into place; (size, 'sha256:HEX')."""
        try:
            self._tar.close()
            if self.compression == 'gzip':
                self._out.close()
            if self._proc is not None:
                self._out.close()
                rc = self._proc.wait()
                self._pump.join()
                if rc != 0 or self._pump_error:
                    self._stderr.seek(0)
                    raise ArchiveError('zstd failed (exit code %s) while writing %s: %s'
                                       % (rc, self.path, self._stderr.read().decode('utf-8', 'replace').strip()
                                          or self._pump_error))
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
        except OSError as exc:
            raise ArchiveError('Writing the archive %s failed: %s. Nothing was left behind.' % (self.path, exc))
        os.rename(self.tmp, self.path)
        self.tmp = None
        fsync_dir(os.path.dirname(self.path))
        return self._hash.count, 'sha256:' + self._hash.hash.hexdigest()

    def abort(self):
        """Remove the temporary file, whatever state the write is in."""
        if self._tar is not None:
            # A half-written tar stream must not flush itself into a closed file when it is collected.
            self._tar.closed = True
            if hasattr(self._tar.fileobj, 'closed'):
                self._tar.fileobj.closed = True
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        for handle in (self._out, self._file):
            try:
                if handle is not None:
                    handle.close()
            except (OSError, ValueError):
                pass
        if self._pump is not None:
            self._pump.join(5)
        if self.tmp and os.path.lexists(self.tmp):
            os.unlink(self.tmp)
        self.tmp = None

    # -- members

    def _info(self, name, kind, size=0, mode=0o600):
        info = tarfile.TarInfo(name)
        info.type = kind
        info.size = size
        info.mode = mode
        info.mtime = self.mtime
        info.uid = info.gid = 0
        info.uname = info.gname = 'root'
        return info

    def _record(self, name, kind, size=None, digest=None):
        entry = dict(name=name, type=kind)
        if kind == 'file':
            entry.update(size=size, sha256=digest)
        self.members.append(entry)
        return entry

    def add_bytes(self, name, data):
        self._tar.addfile(self._info(name, tarfile.REGTYPE, len(data)), io.BytesIO(data))
        return self._record(name, 'file', len(data), sha256_hex(data))

    def add_json(self, name, data):
        return self.add_bytes(name, to_json(data))

    def add_dir(self, name):
        self._tar.addfile(self._info(name, tarfile.DIRTYPE, mode=0o700))
        return self._record(name, 'dir')

    def add_file(self, name, path):
        """A regular file from disk, hashed as it is written."""
        with open(path, 'rb') as handle:
            size = os.fstat(handle.fileno()).st_size
            reader = _Hashing(handle)
            try:
                self._tar.addfile(self._info(name, tarfile.REGTYPE, size), reader)
            except OSError as exc:
                raise ArchiveError('%s changed while it was written into the archive (%s). Run again.' % (path, exc))
        return self._record(name, 'file', size, reader.hash.hexdigest())

    def add_tree(self, name, directory):
        """A directory with everything in it (directories and regular files only), sorted."""
        self.add_dir(name)
        for entry in sorted(os.scandir(directory), key=lambda item: item.name):
            member = name + '/' + entry.name
            if entry.is_dir(follow_symlinks=False):
                self.add_tree(member, entry.path)
            elif entry.is_file(follow_symlinks=False):
                self.add_file(member, entry.path)
            else:
                raise ArchiveError('%s is neither a directory nor a regular file, and a checkpoint holds only '
                                   'those: it cannot go into the archive.' % entry.path)

    def total(self):
        return sum(entry.get('size') or 0 for entry in self.members)


def fsync_dir(path):
    try:
        fd = os.open(path or '.', os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(root):
    """Flush every file and directory below root (and root) to disk."""
    for directory, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY | os.O_NOFOLLOW)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(directory)


def manifest_bytes(manifest):
    """manifest.json and manifest.json.sha256 as written."""
    data = to_json(manifest)
    return data, (sha256_hex(data) + '  ' + MANIFEST + '\n').encode('ascii')


# -- reading ------------------------------------------------------------------------------------

class _RawSource:
    """The archive file's bytes as they are read, hashed and counted (the file's own sha256)."""

    def __init__(self, handle):
        self.handle = handle
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, size=-1):
        data = self.handle.read(size if size is not None and size >= 0 else CHUNK)
        self.hash.update(data)
        self.count += len(data)
        return data

    def drain(self):
        while self.read(CHUNK):
            pass


class _Tail:
    """The tar stream as tarfile reads it: counted, with its last two blocks kept, so that the end of the
    archive can be told from a cut (tarfile's stream mode takes a missing end for one)."""

    def __init__(self, stream):
        self.stream = stream
        self.count = 0
        self.tail = b''

    def read(self, size=-1):
        data = self.stream.read(size)
        self.count += len(data)
        self.tail = (self.tail + data[-1024:])[-1024:]
        return data

    def complete(self):
        return self.count % 512 == 0 and self.count >= 1024 and self.tail == b'\0' * 1024


def detect_compression(path):
    with open(path, 'rb') as handle:
        head = handle.read(4)
    if head.startswith(ZSTD_MAGIC):
        return 'zstd'
    if head.startswith(GZIP_MAGIC):
        return 'gzip'
    return 'none'


class Reading:
    """An archive open for one pass: `tar` (tarfile in stream mode), `finish()` to read it to its end
    (the file's sha256 covers every byte), `close()` to stop early."""

    def __init__(self, path, zstd=None):
        self.path = path
        self.compression = detect_compression(path)
        self.zstd = zstd
        self._handle = open(path, 'rb')  # pylint: disable=consider-using-with
        self.raw = _RawSource(self._handle)
        self._proc = None
        self._feeder = None
        self._feed_error = []
        self._stderr = None
        if self.compression == 'zstd':
            if not zstd:
                self._handle.close()
                raise ArchiveError('The archive %s is compressed with zstd, and the zstd program is not on the PATH '
                                   'of this host. Install it (Debian and Ubuntu: apt-get install zstd) and run again.'
                                   % path)
            self._stderr = tempfile.TemporaryFile()
            self._proc = subprocess.Popen(  # pylint: disable=consider-using-with
                [zstd, '-d', '-c', '-q'], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                env=dict(os.environ, **C_LOCALE), close_fds=True)
            self._feeder = threading.Thread(target=self._feed, daemon=True)
            self._feeder.start()
            self.stream = self._proc.stdout
        elif self.compression == 'gzip':
            self.stream = gzip.GzipFile(fileobj=self.raw, mode='rb')
        else:
            self.stream = self.raw
        self.stream = _Tail(self.stream)
        try:
            self.tar = tarfile.open(fileobj=self.stream, mode='r|', tarinfo=LimitedInfo)
        except BaseException:
            self.close()
            raise

    def _feed(self):
        try:
            while True:
                data = self.raw.read(CHUNK)
                if not data:
                    break
                self._proc.stdin.write(data)
        except (BrokenPipeError, ValueError):
            pass
        except OSError as exc:
            self._feed_error.append(exc)
        finally:
            try:
                self._proc.stdin.close()
            except (OSError, ValueError):
                pass

    def finish(self):
        """Read what is left (tar padding, the compressed stream's end and checksum); (size, 'sha256:HEX').
        More than TRAILING_LIMIT bytes after the end of the tar stream is refused as they are read (data hidden
        behind the archive's end, or a compressed stream that expands past it)."""
        after = 0
        while True:
            data = self.stream.read(CHUNK)
            if not data:
                break
            after += len(data)
            if after > TRAILING_LIMIT:
                raise ArchiveError('The archive %s goes on after the end of its tar stream (more than %d bytes, and '
                                   'counting): an archive written by cryo.docker.docker_checkpoint_export ends there. It '
                                   'was refused before anything was unpacked; nothing was created. Do not use this '
                                   'file.' % (self.path, TRAILING_LIMIT), reason='trailing_data')
        if self._proc is not None:
            self._feeder.join()
            rc = self._proc.wait()
            if rc != 0 or self._feed_error:
                self._stderr.seek(0)
                raise ArchiveError('zstd cannot decompress it (exit code %s): %s'
                                   % (rc, self._stderr.read().decode('utf-8', 'replace').strip() or self._feed_error))
        self.raw.drain()
        if not self.stream.complete():
            raise EOFError('the tar stream ends without its end-of-archive blocks')
        return self.raw.count, 'sha256:' + self.raw.hash.hexdigest()

    def close(self):
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            try:
                self._proc.stdout.close()
            except OSError:
                pass
            self._feeder.join(5)
        self._handle.close()


READ_ERRORS = (tarfile.TarError, EOFError, zlib.error, OSError, ValueError, MemoryError)


@contextlib.contextmanager
def reading(path, zstd=None):
    """One pass over an archive; read errors come out as ArchiveError (truncated or damaged, or a header refused)."""
    try:
        reader = Reading(path, zstd)
    except ArchiveError:
        raise
    except HeaderError as exc:
        raise header_refused(path, exc)
    except READ_ERRORS as exc:
        raise damaged(path, exc)
    try:
        yield reader
    except ArchiveError:
        raise
    except HeaderError as exc:
        raise header_refused(path, exc)
    except READ_ERRORS as exc:
        raise damaged(path, exc)
    finally:
        reader.close()


def header_refused(path, exc):
    return ArchiveError('The archive %s was refused as it was read, before anything was unpacked: it holds %s. An '
                        'archive written by cryo.docker.docker_checkpoint_export never does. Nothing was created; do '
                        'not use this file.' % (path, exc), reason='header')


def damaged(path, exc):
    return ArchiveError('The archive %s is truncated or damaged (%s: %s), so it was refused before anything was '
                        'unpacked; nothing was created. Copy it again from where it was written.'
                        % (path, type(exc).__name__, exc), reason='damaged')


def read_identity(path, zstd=None):
    """The first member (cryo-archive.json) of an archive, or None when the file is not one of ours.
    Only the start of the file is read."""
    try:
        with reading(path, zstd) as reader:
            member = reader.tar.next()
            if member is None or member.name != IDENTITY or not member.isreg() or member.size > SMALL_LIMIT:
                return None
            data = json.loads(reader.tar.extractfile(member).read().decode('utf-8'))
    except (ArchiveError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# -- checking members ---------------------------------------------------------------------------

def refused(path, name, why, reason):
    return ArchiveError('The archive %s was refused before anything was unpacked: its member %r %s. Nothing was '
                        'created. An archive written by cryo.docker.docker_checkpoint_export never has such a '
                        'member: do not use this file.' % (path, name, why), member=name, reason=reason)


def member_name(path, member, seen):
    """The member's name, normalised; ArchiveError when it is not safe to unpack here."""
    name = member.name
    if name.startswith('/'):
        raise refused(path, name, 'has an absolute path (it would be written outside the staging directory)',
                      'absolute_path')
    if '..' in name.split('/'):
        raise refused(path, name, 'has ".." in its path (it would be written outside the staging directory)',
                      'parent_path')
    if name.startswith('./'):
        name = name[2:]
    name = posixpath.normpath(name) if name not in ('', '.') else ''
    if not name or name == '.':
        raise refused(path, member.name, 'has an empty name', 'empty_name')
    if name in seen:
        raise refused(path, name, 'appears twice (a later copy would replace the one that was checked)',
                      'duplicate')
    if member.issym() or member.islnk():
        raise refused(path, name, 'is a %s link to %r; the collection never writes links into an archive (a '
                      'checkpoint, its metadata and the spooled tars are directories and regular files only), and a '
                      'link could lead what is unpacked outside its directory'
                      % ('symbolic' if member.issym() else 'hard', member.linkname), 'link')
    elif member.ischr() or member.isblk():
        raise refused(path, name, 'is a device node (%s)' % ('character' if member.ischr() else 'block'), 'device')
    elif member.isfifo():
        raise refused(path, name, 'is a FIFO', 'fifo')
    elif not (member.isreg() or member.isdir()):
        raise refused(path, name, 'has a member type (%r) this module does not unpack' % member.type, 'type')
    return name


def member_kind(member):
    return 'dir' if member.isdir() else 'file'


class HeaderError(tarfile.HeaderError):
    """A header LimitedInfo refuses: its text says which."""


SPARSE = tarfile.GNUTYPE_SPARSE
EXTENDED_HEADERS = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE, tarfile.XGLTYPE,
                    tarfile.SOLARIS_XHDTYPE)


class LimitedInfo(tarfile.TarInfo):
    """A tar header that refuses, before tarfile reads it into memory, an extended header (pax, GNU long name or
    link) larger than HEADER_LIMIT, and GNU sparse members (never written here)."""

    def _proc_member(self, tarfile):  # pylint: disable=redefined-outer-name
        # tarfile here is the TarFile being read (the name tarfile.TarInfo gives it); the module's constants are
        # in EXTENDED_HEADERS and SPARSE.
        if self.type in EXTENDED_HEADERS and self.size > HEADER_LIMIT:
            raise HeaderError('an extended header of %d bytes (at most %d are read)' % (self.size, HEADER_LIMIT))
        if self.type == SPARSE:
            raise HeaderError('a GNU sparse member %r, which the collection never writes' % self.name)
        return super()._proc_member(tarfile)


class Verified:
    """What one read of an archive proved: its file's size and sha256, its members with their digests, the
    small members' bytes (SMALL_MEMBERS) and the manifest."""

    def __init__(self, path, size, sha256, compression, members, small):
        self.path, self.size, self.sha256, self.compression = path, size, sha256, compression
        self.members, self.small = members, small
        self.manifest = {}

    def json(self, name, default=None):
        data = self.small.get(name)
        if data is None:
            return default
        try:
            return json.loads(data.decode('utf-8'))
        except ValueError:
            raise ArchiveError('Member %s of the archive %s is not JSON.' % (name, self.path))

    def has(self, name):
        return name in self.members

    def file_size(self, prefix=''):
        return sum(entry.get('size') or 0 for name, entry in self.members.items()
                   if entry['type'] == 'file' and name.startswith(prefix))


def _hash_member(tar, member, keep):
    """(sha256 hex, bytes or None) of a regular member, read in chunks."""
    handle = tar.extractfile(member)
    digest = hashlib.sha256()
    kept = [] if keep else None
    count = 0
    while True:
        data = handle.read(CHUNK)
        if not data:
            break
        digest.update(data)
        count += len(data)
        if kept is not None:
            kept.append(data)
    if count != member.size:
        raise EOFError('member %s ends after %d of its %d bytes' % (member.name, count, member.size))
    return digest.hexdigest(), (b''.join(kept) if kept is not None else None)


def verify(path, zstd=None, checksum=None, room=None):
    """Read the archive through once, hashing every member, writing nothing; then check the digests
    against the manifest. A Verified, or ArchiveError with the reason.

    Refused as they are read: more than MAX_MEMBERS members, an extended header larger than HEADER_LIMIT, data
    after the end of the tar stream, and, with room (the bytes free where it is to be unpacked), members
    whose sizes add up to more than that."""
    members, small = {}, {}
    total = kept_cores = 0
    with reading(path, zstd) as reader:
        for member in reader.tar:
            if len(members) >= MAX_MEMBERS:
                raise too_many(path)
            name = member_name(path, member, members)
            entry = dict(type=member_kind(member))
            if member.isreg():
                total += member.size
                if room is not None and total > room:
                    raise too_large(path, name, member.size, total, room)
                core = CORE_IMAGE_RE.fullmatch(name) is not None
                if core:
                    kept_cores += member.size
                    if kept_cores > CORE_LIMIT:
                        raise ArchiveError('The archive %s was refused as it was read, before anything was unpacked: '
                                           'its checkpoint\'s core images add up to more than %d bytes, more than any '
                                           'container\'s threads have. Nothing was created; do not use this file.'
                                           % (path, CORE_LIMIT), reason='too_large', member=name)
                keep = core or (name in SMALL_MEMBERS and member.size <= SMALL_LIMIT)
                entry['sha256'], data = _hash_member(reader.tar, member, keep)
                entry['size'] = member.size
                if keep:
                    small[name] = data
            members[name] = entry
        size, digest = reader.finish()
        compression = reader.compression
    verified = Verified(path, size, digest, compression, members, small)
    if checksum and checksum_hex(checksum) != digest.split(':', 1)[1]:
        raise ArchiveError('The archive %s has the sha256 %s, not %s as checksum says: it is another file, or it '
                           'was damaged on the way. Nothing was created.' % (path, digest, checksum),
                           reason='checksum', sha256=digest)
    check_manifest(verified)
    return verified


def too_many(path):
    return ArchiveError('The archive %s holds more than %d members, more than any checkpoint archive: it was refused '
                        'as it was read, before anything was unpacked. Nothing was created; do not use this file.'
                        % (path, MAX_MEMBERS), reason='too_many_members')


def too_large(path, name, size, total, room):
    return ArchiveError('The archive %s was refused as it was read, before anything was unpacked: its member %s '
                        'claims %d bytes, which makes %d bytes to unpack, and only %d are free where it would be '
                        'unpacked. Nothing was created. Free some space or give staging_dir on a larger file system '
                        '- or, if you did not expect an archive this large, do not use this file.'
                        % (path, name, size, total, room), reason='too_large', member=name, claimed_bytes=total,
                        free_bytes=room)


def checksum_hex(checksum):
    value = checksum.strip()
    if value.lower().startswith('sha256:'):
        value = value[7:]
    value = value.lower()
    if len(value) != 64 or any(char not in '0123456789abcdef' for char in value):
        raise ArchiveError('checksum must be the sha256 of the archive as sha256:<64 hex digits> (or the 64 digits '
                           'alone), got %r.' % checksum)
    return value


def check_manifest(verified):
    """Every member the manifest lists is there with its size and sha256, and nothing else is."""
    path = verified.path
    data, digest_line = verified.small.get(MANIFEST), verified.small.get(MANIFEST_DIGEST)
    if data is None or digest_line is None:
        raise ArchiveError('The archive %s has no %s: it is truncated, or it was not written by '
                           'cryo.docker.docker_checkpoint_export. Nothing was created.'
                           % (path, MANIFEST if data is None else MANIFEST_DIGEST), reason='no_manifest')
    if digest_line.decode('ascii', 'replace').split()[:1] != [sha256_hex(data)]:
        raise ArchiveError('The manifest of the archive %s is damaged: its sha256 is not the one recorded in %s. '
                           'Nothing was created; copy the archive again.' % (path, MANIFEST_DIGEST),
                           reason='manifest_damaged', member=MANIFEST)
    try:
        manifest = json.loads(data.decode('utf-8'))
    except ValueError:
        raise ArchiveError('The manifest of the archive %s is not JSON. Nothing was created.' % path,
                           reason='manifest_damaged', member=MANIFEST)
    if not isinstance(manifest, dict) or manifest.get('format') != FORMAT:
        raise ArchiveError('The archive %s has format %r; this collection reads format %s. Use the collection '
                           'release that wrote it.' % (path, (manifest or {}).get('format')
                                                       if isinstance(manifest, dict) else None, FORMAT),
                           reason='format')
    listed = {}
    for entry in manifest.get('members') or []:
        listed[entry.get('name')] = entry
    for name, want in listed.items():
        have = verified.members.get(name)
        if have is None:
            raise ArchiveError('The archive %s lacks its member %s, which its manifest lists: it is truncated or '
                               'incomplete. Nothing was created; copy it again.' % (path, name),
                               reason='missing_member', member=name)
        if have['type'] != want.get('type'):
            raise ArchiveError('Member %s of the archive %s is a %s, its manifest says a %s. Nothing was created.'
                               % (name, path, have['type'], want.get('type')), reason='member_type', member=name)
        if have['type'] == 'file' and (have['size'] != want.get('size') or have['sha256'] != want.get('sha256')):
            raise ArchiveError('Member %s of the archive %s is damaged: %d bytes with sha256 %s, where the manifest '
                               'recorded %s bytes with sha256 %s. Nothing was created; copy the archive again.'
                               % (name, path, have['size'], have['sha256'], want.get('size'), want.get('sha256')),
                               reason='member_damaged', member=name)
    extra = sorted(set(verified.members) - set(listed) - {MANIFEST, MANIFEST_DIGEST})
    if extra:
        raise ArchiveError('The archive %s holds members its manifest does not list (%s): it was changed after it '
                           'was written. Nothing was created.' % (path, ', '.join(extra[:5])),
                           reason='unlisted_member', member=extra[0])
    verified.manifest = manifest
    return manifest


# -- unpacking ----------------------------------------------------------------------------------

def extract(verified, dest, zstd=None):
    """Unpack a verified archive into dest, an empty private directory, reading it a second time: every
    file is created new (never through an existing file or link), 0600 in 0700 directories, no larger than the
    verification found it (the manifest's size), hashed again against what the verification read (the file must
    not have changed since), and flushed to disk with its directory before the next step relies on it."""
    made, seen = {''}, {}
    with reading(verified.path, zstd) as reader:
        for member in reader.tar:
            if len(seen) >= len(verified.members):
                raise changed_since(verified.path, member.name)
            name = member_name(verified.path, member, seen)
            seen[name] = True
            want = verified.members.get(name)
            if want is None or want['type'] != member_kind(member) or (
                    member.isreg() and member.size != want['size']):
                raise changed_since(verified.path, name)
            _make_dirs(dest, posixpath.dirname(name), made)
            target = os.path.join(dest, name)
            if member.isdir():
                if name not in made:
                    os.mkdir(target, 0o700)
                    made.add(name)
            else:
                _write_member(reader.tar, member, target, want, verified.path, name)
        reader.finish()
    check_tree(dest)
    for relative in sorted(made, key=len, reverse=True):
        fsync_dir(os.path.join(dest, relative) if relative else dest)


def check_tree(root):
    """Raise ArchiveError unless everything below root is a directory or a regular file (what is unpacked is
    never a link, a device or a FIFO, whatever was in the way)."""
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            mode = os.lstat(path).st_mode
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)) or (name in dirs and os.path.islink(path)):
                raise ArchiveError('Unpacking stopped: %s is neither a directory nor a regular file.' % path,
                                   reason='link')


def changed_since(path, name):
    return ArchiveError('The archive %s changed while it was unpacked (member %s is not what the verification read). '
                        'Nothing was created; make sure nothing writes the file, and run again.' % (path, name),
                        reason='changed', member=name)


def _make_dirs(dest, relative, made):
    if relative in made:
        return
    _make_dirs(dest, posixpath.dirname(relative), made)
    target = os.path.join(dest, relative)
    try:
        os.mkdir(target, 0o700)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(target).st_mode):
            raise ArchiveError('Unpacking stopped: %s is not a directory.' % target)
    made.add(relative)


def _write_member(tar, member, target, want, path, name):
    source = tar.extractfile(member)
    digest = hashlib.sha256()
    written = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, 'wb') as handle:
        while True:
            data = source.read(CHUNK)
            if not data:
                break
            written += len(data)
            if written > want['size']:
                raise changed_since(path, name)
            digest.update(data)
            handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    if digest.hexdigest() != want['sha256']:
        raise changed_since(path, name)


# -- room and place -----------------------------------------------------------------------------

def writable_dir(path):
    """None when path is a directory this process can create files in, else the reason (a clause)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return 'it cannot be read (%s)' % exc.strerror
    if not stat.S_ISDIR(st.st_mode):
        return 'it is not a directory'
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return 'its file system is mounted read-only'
    except OSError:
        pass
    if not os.access(path, os.W_OK | os.X_OK):
        return 'this user (uid %d) may not create files in it' % os.geteuid()
    return None


def nearest_existing(path):
    probe = os.path.abspath(path)
    while not os.path.exists(probe) and probe != os.path.dirname(probe):
        probe = os.path.dirname(probe)
    return probe
