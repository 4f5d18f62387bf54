"""An attacker's rewrite of a portable checkpoint archive: every member as the attacker wants it, and the manifest
and its digest recomputed, so that every checksum agrees. What the import must refuse anyway is what such an
archive asks for, not a checksum.

    rewrite(src, dest, edit)   edit(members) changes a list of Member in place (or returns a new list)

Reads and writes uncompressed tars and, through the zstd program, zstd ones. core_image() writes a CRIU core
image (one thread's credentials, seccomp mode and OOM score, with the field numbers of CRIU's core.proto and
creds.proto) to put in place of a real one.
"""

import hashlib
import io
import json
import struct
import subprocess
import tarfile

MANIFEST = 'manifest.json'
MANIFEST_DIGEST = 'manifest.json.sha256'
# Docker's default capabilities as a mask (CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
# NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP), and CAP_SYS_ADMIN's bit.
DEFAULT_CAPABILITIES = 0xA80425FB
SYS_ADMIN = 1 << 21


class Member:
    """One member: a TarInfo and, for a regular file, its bytes."""

    def __init__(self, info, data=None):
        self.info = info
        self.data = data

    @property
    def name(self):
        return self.info.name

    def json(self):
        return json.loads(self.data.decode('utf-8'))

    def set_json(self, value):
        self.set_bytes((json.dumps(value, indent=2, sort_keys=True) + '\n').encode('utf-8'))

    def set_bytes(self, data):
        self.data = data
        self.info.size = len(data)


def file(name, data):
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), 0o600
    return Member(info, data)


def link(name, target, hard=False):
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return Member(info)


def _raw(path):
    with open(path, 'rb') as handle:
        data = handle.read()
    if data[:4] == b'\x28\xb5\x2f\xfd':
        data = subprocess.run(['zstd', '-d', '-c', '-q'], input=data, capture_output=True, check=True).stdout
    return data


def read(path):
    with tarfile.open(fileobj=io.BytesIO(_raw(path)), mode='r:') as tar:
        return [Member(info, tar.extractfile(info).read() if info.isreg() else None) for info in tar.getmembers()]


def get(members, name):
    return next(member for member in members if member.name == name)


def write(members, dest, compress=False):
    """The members as an archive whose manifest lists each with its size and sha256, as the export's does."""
    listed, body = [], [m for m in members if m.name not in (MANIFEST, MANIFEST_DIGEST)]
    manifest = next((m.json() for m in members if m.name == MANIFEST), {'format': 1})
    for member in body:
        entry = dict(name=member.name, type='dir' if member.info.isdir() else 'file')
        if member.info.isreg():
            entry.update(size=len(member.data), sha256=hashlib.sha256(member.data).hexdigest())
        elif not member.info.isdir():
            entry['type'] = 'symlink' if member.info.issym() else 'hardlink'
        listed.append(entry)
    manifest['members'] = listed
    data = (json.dumps(manifest, indent=2, sort_keys=True) + '\n').encode('utf-8')
    digest = ('%s  %s\n' % (hashlib.sha256(data).hexdigest(), MANIFEST)).encode('ascii')
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w', format=tarfile.PAX_FORMAT) as tar:
        for member in body + [file(MANIFEST, data), file(MANIFEST_DIGEST, digest)]:
            tar.addfile(member.info, io.BytesIO(member.data) if member.info.isreg() else None)
    raw = out.getvalue()
    if compress:
        raw = subprocess.run(['zstd', '-q', '-c', '-3'], input=raw, capture_output=True, check=True).stdout
    with open(dest, 'wb') as handle:
        handle.write(raw)
    return dest


def rewrite(src, dest, edit, compress=False):
    members = read(src)
    members = edit(members) or members
    return write(members, dest, compress)


def manifest_of(members):
    return get(members, MANIFEST).json()


def set_manifest(members, manifest):
    get(members, MANIFEST).set_json(manifest)


# -- CRIU core images ---------------------------------------------------------------------------------

def varint(value):
    out = b''
    while True:
        byte, value = value & 0x7F, value >> 7
        out += bytes([byte | (0x80 if value else 0)])
        if not value:
            return out


def field(number, value):
    if isinstance(value, bytes):
        return varint(number << 3 | 2) + varint(len(value)) + value
    return varint(number << 3) + varint(value if value >= 0 else value + (1 << 64))


def words(mask):
    return [mask & 0xFFFFFFFF, mask >> 32]


def core_image(bounding=DEFAULT_CAPABILITIES, effective=None, seccomp=None, oom=0, cap_words=None, creds_twice=None):
    """A core-TID.img with only what the check reads (and the required fields around it)."""
    creds = b''.join(field(number, 0) for number in range(1, 9))
    for number, mask in ((9, 0), (10, effective if effective is not None else bounding),
                         (11, effective if effective is not None else bounding), (12, bounding), (19, 0)):
        for word in (cap_words if cap_words is not None and number == 12 else words(mask)):
            creds += field(number, word)
    creds += field(13, 0)
    thread = field(1, 0) + field(2, 0) + field(10, creds)
    if creds_twice is not None:
        thread += field(10, b''.join(field(12, word) for word in words(creds_twice)))
    if seccomp is not None:
        thread += field(11, seccomp)
    task = field(1, 1) + field(2, 0) + field(3, 0) + field(4, 0) + field(5, 0) + field(6, b'sh') + field(14, oom)
    entry = field(1, 1) + field(3, task) + field(5, thread)
    return struct.pack('<III', 0x54564319, 0x55053847, len(entry)) + entry


# -- CRIU cpuinfo images ------------------------------------------------------------------------------


def edit_cpuinfo(data, add=(), **set_fields):
    """A cpuinfo.img (as `criu cpuinfo dump` writes it) with the features add names set in its capability words,
    and its xfeatures_mask, xsave_size or xsave_size_max set to the values given: every other field as it was, each
    capability word a field of its own (proto2's repeated uint32, as CRIU writes it). Read, and the features'
    bits taken, with the collection's own reader and table (_images, _cpu)."""
    from ansible_collections.cryo.docker.plugins.module_utils._cpu import INSTRUCTION_FEATURES
    from ansible_collections.cryo.docker.plugins.module_utils._images import parse_image

    magic, kind = struct.unpack_from('<II', data, 0)
    entries = parse_image(data, 'cpuinfo')
    assert len(entries) == 1 and list(entries[0].fields) == [1], 'not one x86 entry'
    entry = entries[0].messages(1)[0].fields
    words = entry[6]
    for name in add:
        word, bit = INSTRUCTION_FEATURES[name]
        words[word] |= 1 << bit
    numbers = dict(xfeatures_mask=8, xsave_size=9, xsave_size_max=10)
    entry.update({numbers[key]: [value] for key, value in set_fields.items()})
    # In field number order, as CRIU (protobuf-c) writes them.
    out = b''.join(field(number, value) for number in sorted(entry) for value in entry[number])
    body = field(1, out)
    return struct.pack('<III', magic, kind, len(body)) + body
