# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""What is inside a checkpoint: the processes, open files, sockets and memory that CRIU's image
files record, decoded with the standard library alone.

Why not CRIU's own pycriu / crit: they decode every image through Python modules that protoc
generates when CRIU is built, and need the protobuf runtime that matches that protoc in the
Python that runs the module. That is a new dependency on every managed host (the docker SDK is
the only one today), with a version lock between two packages the collection does not control
(protobuf 4 and later refuse code from an old protoc, protobuf 3 cannot load code from a new
one), and CRIU's own install of pycriu runs pip. The few messages read here are CRIU's on-disk
format: CRIU keeps their field numbers fixed so that old images stay restorable, and adds
fields only under new numbers, which this reader skips. The field numbers below are those of
CRIU 4.2's images/*.proto; the tests check the result against crit on real checkpoints.

Images read, per process PID of pstree.img:
  core-PID.img     command (comm) and task state       ids-PID.img      which fdinfo image it uses
  fs-PID.img       working directory                   fdinfo-N.img     its file descriptors
  mm-PID.img       memory mappings, command line area  pagemap-PID.img  which pages were written
  pages-N.img      only the page(s) that hold the command line (read at an offset, never whole)
and files.img once (every open file, pipe and socket). stats-dump is read by _criu.read_stats.
"""

from __future__ import annotations

import os
import socket
import struct

from ansible_collections.cryo.docker.plugins.module_utils._criu import ImageError, read_stats, varint

IMG_COMMON_MAGIC = 0x54564319
IMG_SERVICE_MAGIC = 0x55105940
MAGIC = dict(pstree=0x50273030, core=0x55053847, ids=0x54432030, fs=0x51403912, fdinfo=0x56213732,
             files=0x56303138, mm=0x57492820, pagemap=0x56084025, cpuinfo=0x61404013, seccomp=0x64413049)

# CoreEntry.mtype (core.proto): the page size is fixed by the architecture on x86-64 only.
MTYPE_X86_64, MTYPE_S390 = 1, 5
X86_64_PAGE_SIZE = 4096

# TaskCoreEntry.task_state (compel/include/uapi/task-state.h): CRIU dumps a zombie as TASK_DEAD.
TASK_STATES = {1: 'alive', 2: 'zombie', 3: 'stopped', 6: 'zombie'}

# PagemapEntry.flags (criu/include/pagemap.h)
PE_PARENT, PE_PRESENT = 1, 4
# VmaEntry.status (criu/include/image.h): the [vsyscall] page is no mapping of the process
VMA_AREA_VSYSCALL = 1 << 2

# fd_types (fdinfo.proto): the name returned as `type`, and the FileEntry field holding its entry.
FD_TYPES = {
    1: ('file', 3), 2: ('pipe', 18), 3: ('fifo', 17), 4: ('socket', 4), 5: ('socket', 16), 6: ('eventfd', 8),
    7: ('eventpoll', 9), 8: ('inotify', 13), 9: ('signalfd', 10), 10: ('socket', 6), 11: ('tty', 19),
    12: ('fanotify', 14), 13: ('socket', 7), 14: ('namespace', 5), 15: ('tun', 11), 16: ('external', 15),
    17: ('timerfd', 12), 18: ('memfd', 20), 19: ('bpf-map', 21), 20: ('pidfd', 22),
}
FD_INETSK, FD_UNIXSK, FD_PACKETSK, FD_NETLINKSK = 4, 5, 10, 13
# What /proc/PID/fd shows for the kinds that have no path.
ANON_PATHS = {'eventfd': 'anon_inode:[eventfd]', 'eventpoll': 'anon_inode:[eventpoll]',
              'inotify': 'anon_inode:inotify', 'signalfd': 'anon_inode:[signalfd]',
              'fanotify': 'anon_inode:[fanotify]', 'timerfd': 'anon_inode:[timerfd]',
              'bpf-map': 'anon_inode:bpf-map', 'pidfd': 'anon_inode:[pidfd]', 'tun': '/dev/net/tun'}
ACCESS = {0: 'read', 1: 'write', 2: 'read-write'}

FAMILIES = {socket.AF_UNIX: 'unix', socket.AF_INET: 'inet', socket.AF_INET6: 'inet6', 16: 'netlink', 17: 'packet'}
SOCK_TYPES = {1: 'stream', 2: 'dgram', 3: 'raw', 4: 'rdm', 5: 'seqpacket', 10: 'packet'}
PROTOCOLS = {1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6', 132: 'sctp', 136: 'udplite'}
# The kernel's socket states (include/net/tcp_states.h), for every family: unix and UDP sockets
# use established (connected), close (not connected) and listen too.
SOCK_STATES = {1: 'established', 2: 'syn-sent', 3: 'syn-recv', 4: 'fin-wait1', 5: 'fin-wait2', 6: 'time-wait',
               7: 'close', 8: 'close-wait', 9: 'last-ack', 10: 'listen', 11: 'closing'}

# What an image may be read whole (pages-N.img never is).
MAX_IMAGE = 64 << 20
# At most this much of the command line area is read.
MAX_COMMAND_LINE = 128 << 10


# -- protobuf, the wire format of every image entry ---------------------------------------------

class Message:
    """A protobuf message: every value of every field, by field number (repeated fields keep all)."""

    __slots__ = ('fields',)

    def __init__(self, data):
        self.fields = {}
        pos, end = 0, len(data)
        while pos < end:
            key, pos = varint(data, pos)
            number, wire = key >> 3, key & 7
            if wire == 0:
                value, pos = varint(data, pos)
            elif wire == 2:
                length, pos = varint(data, pos)
                if pos + length > end:
                    raise ImageError('field %d runs past the end of its entry' % number)
                value, pos = bytes(data[pos:pos + length]), pos + length
            elif wire in (1, 5):
                size = 8 if wire == 1 else 4
                if pos + size > end:
                    raise ImageError('field %d runs past the end of its entry' % number)
                value, pos = int.from_bytes(data[pos:pos + size], 'little'), pos + size
            else:
                raise ImageError('unexpected protobuf wire type %d' % wire)
            self.fields.setdefault(number, []).append(value)

    def ints(self, number):
        """Every integer of a (repeated) field, packed or not."""
        out = []
        for value in self.fields.get(number, ()):
            if isinstance(value, bytes):
                pos = 0
                while pos < len(value):
                    item, pos = varint(value, pos)
                    out.append(item)
            else:
                out.append(value)
        return out

    def int(self, number, default=None):
        values = self.ints(number)
        return values[-1] if values else default

    def sint(self, number, default=None):
        """A sint32/sint64 field (zigzag)."""
        value = self.int(number)
        return default if value is None else (value >> 1) ^ -(value & 1)

    def raw(self, number, default=None):
        values = [value for value in self.fields.get(number, ()) if isinstance(value, bytes)]
        return values[-1] if values else default

    def text(self, number, default=None):
        value = self.raw(number)
        return default if value is None else value.decode('utf-8', 'backslashreplace')

    def message(self, number):
        value = self.raw(number)
        return None if value is None else Message(value)

    def messages(self, number):
        return [Message(value) for value in self.fields.get(number, ()) if isinstance(value, bytes)]


def parse_image(data, kind, name=None):
    """The entries (Messages) of a CRIU image file's bytes; kind names the magic it must carry.

    A file is one or two 32-bit magics (the common or service magic, then the image's own), then
    entries, each a 32-bit little-endian size and a protobuf message."""
    name = name or '%s image' % kind
    if len(data) < 4:
        raise ImageError('%s is empty or truncated' % name)
    first, pos = struct.unpack_from('<I', data, 0)[0], 4
    if first in (IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC):
        if len(data) < 8:
            raise ImageError('%s is truncated' % name)
        first, pos = struct.unpack_from('<I', data, 4)[0], 8
    if first != MAGIC[kind]:
        raise ImageError('%s is not a CRIU %s image (magic %#x, expected %#x)' % (name, kind, first, MAGIC[kind]))
    entries = []
    while pos < len(data):
        if pos + 4 > len(data):
            raise ImageError('%s is truncated' % name)
        size = struct.unpack_from('<I', data, pos)[0]
        pos += 4
        if pos + size > len(data):
            raise ImageError('%s is truncated (an entry of %d bytes, %d left)' % (name, size, len(data) - pos))
        try:
            entries.append(Message(data[pos:pos + size]))
        except ImageError as exc:
            raise ImageError('%s holds a damaged entry: %s' % (name, exc)) from None
        pos += size
    return entries


def read_image(directory, name, kind):
    path = os.path.join(directory, name)
    try:
        if os.path.getsize(path) > MAX_IMAGE:
            raise ImageError('%s is larger than %d MB: not read' % (name, MAX_IMAGE >> 20))
        with open(path, 'rb') as handle:
            data = handle.read()
    except OSError as exc:
        raise ImageError('cannot read %s: %s' % (name, exc.strerror or exc)) from None
    return parse_image(data, kind, name)


def read_one(directory, name, kind):
    entries = read_image(directory, name, kind)
    if not entries:
        raise ImageError('%s holds no entry' % name)
    return entries[0]


# -- the pieces ---------------------------------------------------------------------------------

# creds_entry's capability sets (creds.proto), each two 32-bit words; thread_core_entry.creds = 10 and
# .seccomp_mode = 11 (core.proto; the mode is left out when it is disabled); task_core_entry.oom_score_adj = 14
# and its old, per-task seccomp mode = 11.
CAPABILITY_SETS = dict(inheritable=9, permitted=10, effective=11, bounding=12, ambient=19)
SECCOMP_MODES = {0: 'disabled', 1: 'strict', 2: 'filter'}


def thread_credentials(data, name):
    """What CRIU restores of one thread's privileges from its core-TID.img (bytes data): dict(name, capabilities
    = {set: bit mask, or None when the set is not two words}, seccomp = mode number, oom_score_adj).

    Every occurrence of a message field is merged, as protobuf does when CRIU reads the image, so that an image
    written with a field twice cannot show one value here and give CRIU another."""
    entries = parse_image(data, 'core', name)
    if not entries:
        raise ImageError('%s holds no entry' % name)
    core = entries[0]
    merged = {}
    for thread in core.messages(5):
        for creds in thread.messages(10):
            for field, values in creds.fields.items():
                merged.setdefault(field, []).extend(values)
    creds = Message(b'')
    creds.fields = merged
    capabilities = {}
    for label, field in CAPABILITY_SETS.items():
        words = creds.ints(field)
        capabilities[label] = (words[0] | words[1] << 32) if len(words) == 2 else (0 if not words else None)
    modes = [mode for thread in core.messages(5) for mode in thread.ints(11)]
    modes += [mode for task in core.messages(3) for mode in task.ints(11)]
    filters = [index for thread in core.messages(5) for index in thread.ints(12)]
    filters += [index for task in core.messages(3) for index in task.ints(12)]
    oom = [value for task in core.messages(3) for value in task.ints(14)]
    # The lowest mode any copy records: a forged image cannot hide a disabled filter behind a second field.
    return dict(name=name, capabilities=capabilities, seccomp=min(modes) if modes else 0, seccomp_filters=filters,
                oom_score_adj=(oom[-1] - (1 << 64) if oom[-1] >= 1 << 63 else oom[-1]) if oom else None)


# seccomp_filter.flags (seccomp.proto): the kernel's SECCOMP_FILTER_FLAG_TSYNC.
SECCOMP_FILTER_FLAG_TSYNC = 1


def thread_leaders(data):
    """{thread id: the pid of its process} from pstree.img's bytes (pstree_entry: pid = 1, threads = 5)."""
    leaders = {}
    for entry in parse_image(data, 'pstree', 'pstree.img'):
        for tid in entry.ints(5):
            leaders[tid] = entry.int(1)
    return leaders


def tsync_filters(data):
    """The indices of seccomp.img's filters (seccomp_entry.seccomp_filters = 1) that CRIU restores with
    SECCOMP_FILTER_FLAG_TSYNC (seccomp_filter.flags = 3): every thread of the process gets them. CRIU dumps a
    process whose threads share their leader's filters that way, and leaves the threads' own mode out
    (criu/seccomp.c try_use_tsync)."""
    filters = [item for entry in parse_image(data, 'seccomp', 'seccomp.img') for item in entry.messages(1)]
    return {index for index, item in enumerate(filters)
            if item.ints(3) and all(flags & SECCOMP_FILTER_FLAG_TSYNC for flags in item.ints(3))}


def pagemap(entries):
    """(pages_id, [(vaddr, number of pages, flags)]) from the entries of a pagemap-PID.img.
    Old images carry no flags: in_parent, else present (as CRIU itself reads them)."""
    if not entries:
        raise ImageError('the pagemap image holds no entry')
    out = []
    for entry in entries[1:]:
        flags = entry.int(4)
        if flags is None:
            flags = PE_PARENT if entry.int(3) else PE_PRESENT
        out.append((entry.int(1, 0), entry.int(5, entry.int(2, 0)), flags))
    return entries[0].int(1), out


def read_memory(path, maps, start, end, page_size):
    """Bytes [start, end) of a process's memory, from its pages image at path. The pages image
    holds the pages of the present pagemap entries one after another, in pagemap order."""
    chunks, addr, offset = [], start, 0
    with open(path, 'rb') as handle:
        for vaddr, count, flags in maps:
            length = count * page_size
            if flags & PE_PRESENT and vaddr <= addr < vaddr + length:
                take = min(end, vaddr + length) - addr
                handle.seek(offset + addr - vaddr)
                data = handle.read(take)
                if len(data) != take:
                    raise ImageError('%s is truncated' % os.path.basename(path))
                chunks.append(data)
                addr += take
                if addr >= end:
                    break
            if flags & PE_PRESENT:
                offset += length
    if addr < end:
        raise ImageError('the page at %#x is not in the checkpoint' % addr)
    return b''.join(chunks)


def argv(data):
    """The arguments of a command line area (NUL-separated), as /proc/PID/cmdline gives them."""
    parts = data.split(b'\0')
    if parts and parts[-1] == b'':
        parts.pop()
    return [part.decode('utf-8', 'backslashreplace') for part in parts]


def inet_address(family, words, big_endian=False):
    """An address from InetSkEntry.src_addr/dst_addr: the raw address bytes, as 32-bit words."""
    raw = b''.join(struct.pack('>I' if big_endian else '<I', word) for word in words)
    try:
        return socket.inet_ntop(family, raw)
    except (ValueError, OSError):
        return None


def unix_name(name):
    """A unix socket's name as ss shows it: a path (up to its first NUL), or @NAME when abstract."""
    if not name:
        return None
    if name[:1] == b'\0':
        return '@' + name[1:].replace(b'\0', b'@').decode('utf-8', 'backslashreplace')
    return name.split(b'\0', 1)[0].decode('utf-8', 'backslashreplace')


class Files:
    """files.img: every file, pipe and socket the checkpoint holds, by id."""

    def __init__(self, entries):
        self.by_id = {entry.int(2): entry for entry in entries}
        self.big_endian = False
        self.unix_by_ino = {}
        for entry in entries:
            unix = entry.message(16)
            if unix is not None:
                self.unix_by_ino[unix.int(2)] = unix

    def path(self, file_id):
        """The name of a regular file entry (RegFileEntry.name), or None."""
        entry = self.by_id.get(file_id)
        reg = entry.message(3) if entry is not None else None
        return reg.text(6) if reg is not None else None

    def describe(self, fd_type, file_id):
        """(type, path, access, socket or None) of the file behind one descriptor."""
        kind, field = FD_TYPES.get(fd_type, ('unknown', None))
        entry = self.by_id.get(file_id)
        inner = entry.message(field) if entry is not None and field else None
        if inner is None:
            return kind, ANON_PATHS.get(kind), None, None
        path = access = sock = None
        if kind in ('file', 'memfd'):
            access = ACCESS.get(inner.int(2, 0) & 3)
            path = inner.text(6) if kind == 'file' else None  # a memfd's name is in memfd-inode.img
        elif kind == 'pipe':
            path = 'pipe:[%d]' % inner.int(2, 0)
        elif kind == 'fifo':
            path = self.path(inner.int(3)) or 'pipe:[%d]' % inner.int(2, 0)
        elif kind == 'tty':
            path = self.path(inner.int(6)) if inner.int(6) is not None else None
        elif kind == 'socket':
            sock = self.socket(fd_type, inner)
            path = 'socket:[%s]' % sock['inode'] if sock.get('inode') is not None else None
        else:
            path = ANON_PATHS.get(kind)
        return kind, path, access, sock

    def socket(self, fd_type, inner):
        out = dict(family=None, type=None, protocol=None, state=None, local_address=None, local_port=None,
                   remote_address=None, remote_port=None, inode=inner.int(2))
        if fd_type == FD_INETSK:
            family = inner.int(3)
            out.update(family=FAMILIES.get(family, str(family)), type=SOCK_TYPES.get(inner.int(4)),
                       protocol=PROTOCOLS.get(inner.int(5), inner.int(5)), state=SOCK_STATES.get(inner.int(6)),
                       local_address=inet_address(family, inner.ints(11), self.big_endian),
                       local_port=inner.int(7))
            remote, port = inet_address(family, inner.ints(12), self.big_endian), inner.int(8)
            if port:
                out.update(remote_address=remote, remote_port=port)
        elif fd_type == FD_UNIXSK:
            peer = self.unix_by_ino.get(inner.int(8)) if inner.int(8) else None
            name = unix_name(inner.raw(11))
            if name and not name.startswith(('/', '@')) and inner.text(14):
                name = os.path.join(inner.text(14), name)
            out.update(family='unix', type=SOCK_TYPES.get(inner.int(3)), state=SOCK_STATES.get(inner.int(4)),
                       local_address=name, remote_address=unix_name(peer.raw(11)) if peer is not None else None)
        elif fd_type == FD_PACKETSK:
            out.update(family='packet', type=SOCK_TYPES.get(inner.int(2)), protocol=inner.int(3), inode=None)
        elif fd_type == FD_NETLINKSK:
            out.update(family='netlink', type=None, protocol=inner.int(3), state=SOCK_STATES.get(inner.int(4)))
        return out


# -- one checkpoint -----------------------------------------------------------------------------

class Inspector:
    """Reads one checkpoint directory; every problem becomes a sentence in `notes`."""

    def __init__(self, directory):
        self.directory = directory
        self.notes = []
        self.page_size = X86_64_PAGE_SIZE

    def note(self, pid, comm, what):
        self.notes.append('process %s%s: %s' % (pid, ' (%s)' % comm if comm else '', what))

    def optional(self, pid, comm, name, kind):
        """The first entry of an image of one process, or None (with a note) when it cannot be read."""
        try:
            return read_one(self.directory, name, kind)
        except ImageError as exc:
            self.note(pid, comm, str(exc))
            return None

    def run(self):
        tree = read_image(self.directory, 'pstree.img', 'pstree')
        if not tree:
            raise ImageError('pstree.img lists no process')
        try:
            table = Files(read_image(self.directory, 'files.img', 'files'))
        except ImageError as exc:
            self.notes.append('open files and sockets unknown: %s' % exc)
            table = None
        processes, descriptors, sockets = [], [], []
        for item in tree:
            process, fds = self.process(item, table)
            processes.append(process)
            for fd in fds:
                sock = fd.pop('socket')
                descriptors.append(fd)
                if sock is not None:
                    sockets.append(dict(dict(pid=fd['pid'], fd=fd['fd']), **sock))
        known = table is not None
        return dict(processes=processes, files=descriptors if known else None, sockets=sockets if known else None)

    def process(self, item, table):
        """(process, [descriptor]) of one pstree entry."""
        pid, threads = item.int(1), item.ints(5)
        out = dict(pid=pid, ppid=item.int(2), pgid=item.int(3), sid=item.int(4), threads=len(threads) or 1,
                   state=None, command=None, command_line=None, executable=None, cwd=None, memory=None)
        core = self.optional(pid, None, 'core-%d.img' % pid, 'core')
        if core is not None:
            self.architecture(core.int(1), table)
            task = core.message(3)
            if task is not None:
                out['state'] = TASK_STATES.get(task.int(1), str(task.int(1)))
                out['command'] = task.text(6)
        comm = out['command']
        if out['state'] == 'zombie':
            return out, []  # no memory, files or working directory left to dump
        fs = self.optional(pid, comm, 'fs-%d.img' % pid, 'fs')
        if fs is not None and table is not None:
            out['cwd'] = table.path(fs.int(1))
        self.memory(out, table)
        if table is None:
            return out, []
        # Which fdinfo image: ids-PID.img says, else the ids an older CRIU kept in the core image.
        ids = core.message(4) if core is not None else None
        if ids is None or os.path.exists(os.path.join(self.directory, 'ids-%d.img' % pid)):
            ids = self.optional(pid, comm, 'ids-%d.img' % pid, 'ids')
        if ids is None:
            return out, []
        fds = []
        try:
            entries = read_image(self.directory, 'fdinfo-%d.img' % ids.int(2, 0), 'fdinfo')
        except ImageError as exc:
            self.note(pid, comm, 'open files unknown: %s' % exc)
            entries = []
        for entry in sorted(entries, key=lambda e: e.int(4, 0)):
            kind, path, access, sock = table.describe(entry.int(3), entry.int(1))
            fds.append(dict(pid=pid, fd=entry.int(4), type=kind, path=path, access=access, socket=sock))
        return out, fds

    def architecture(self, mtype, table):
        """Page size and byte order of the checkpoint's machine: fixed on x86-64, the host's otherwise
        (a checkpoint is read on a machine of its own kind)."""
        if mtype != MTYPE_X86_64:
            self.page_size = os.sysconf('SC_PAGE_SIZE')
        if mtype == MTYPE_S390 and table is not None:
            table.big_endian = True

    def memory(self, out, table):
        pid, comm = out['pid'], out['command']
        mm = self.optional(pid, comm, 'mm-%d.img' % pid, 'mm')
        if mm is None:
            return
        mapped = sum(vma.int(2, 0) - vma.int(1, 0) for vma in mm.messages(14)
                     if not vma.int(7, 0) & VMA_AREA_VSYSCALL)
        if table is not None and mm.int(12) is not None:
            out['executable'] = table.path(mm.int(12))
        try:
            pages_id, maps = pagemap(read_image(self.directory, 'pagemap-%d.img' % pid, 'pagemap'))
        except ImageError as exc:
            self.note(pid, comm, 'memory written unknown: %s' % exc)
            out['memory'] = dict(mapped=mapped, written=None)
            return
        written = sum(count for _vaddr, count, flags in maps if flags & PE_PRESENT) * self.page_size
        out['memory'] = dict(mapped=mapped, written=written)
        start, end = mm.int(8, 0), mm.int(9, 0)
        if not start < end:
            return  # a kernel thread or a process that cleared its arguments
        name = 'pages-%s.img' % pages_id
        try:
            data = read_memory(os.path.join(self.directory, name), maps, start,
                               min(end, start + MAX_COMMAND_LINE), self.page_size)
        except ImageError as exc:
            self.note(pid, comm, 'command line unknown: %s' % exc)
        except OSError as exc:
            self.note(pid, comm, 'command line unknown: cannot read %s: %s' % (name, exc.strerror or exc))
        else:
            out['command_line'] = argv(data)


def inspect(directory):
    """What is inside the checkpoint in directory, never raising:
    {processes, files, sockets, stats, details_notes}. processes, files and sockets are None when
    they cannot be read at all; details_notes says what could not be read and why."""
    if not os.path.isdir(directory):
        return dict(processes=None, files=None, sockets=None, stats=None, details_notes=[
            'the checkpoint directory %s is not on this host: run the module on the engine\'s host' % directory])
    inspector = Inspector(directory)
    decoded = {}
    try:
        decoded = inspector.run()
    except ImageError as exc:
        inspector.notes.insert(0, 'the process tree cannot be read: %s' % exc)
    except (OSError, ValueError, IndexError, KeyError, struct.error) as exc:
        inspector.notes.insert(0, 'the images cannot be decoded (%s: %s)' % (type(exc).__name__, exc))
    stats = read_stats(directory, 'stats-dump')
    if stats is None and os.path.exists(os.path.join(directory, 'stats-dump')):
        inspector.notes.append('stats-dump is there but cannot be read')
    return dict(processes=decoded.get('processes'), files=decoded.get('files'), sockets=decoded.get('sockets'),
                stats=stats, details_notes=inspector.notes)
