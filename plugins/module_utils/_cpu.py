# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""The CPU a checkpoint was taken on, and whether this host's CPU can run it: the CPU check before a move.

A process picks its code paths by the CPU's features once, when it starts (glibc's ifuncs choose memcpy, string and
math routines; libraries and JITs read cpuid). Restored on a CPU without an instruction set it chose, it dies with
SIGILL the first time it runs one (podman#17496). runc asks CRIU neither to record the CPU at a dump nor to check it
at a restore (its requests carry no cpu_cap), so nothing stops such a restore. The export records the source's CPU
twice: `criu cpuinfo dump` (CRIU's own image of it, the archive's member cpuinfo.img) and the `flags` of
/proc/cpuinfo (in the manifest, names a person reads). The import checks both before it unpacks anything:

- `criu cpuinfo check` against the recorded image, in a private temporary directory removed afterwards, as CRIU
  checks by default (`--cpu-cap` fpu and ins): every instruction-set feature of the image is on this CPU (ins),
  and the FPU state is laid out alike (fpu: the xsave features and frame sizes; a libc that measured the frame at
  start overruns it on a CPU whose frame is larger). cpu_check `instructions` runs the ins part alone
  (`--cpu-cap=^fpu`).
- the recorded flags against this host's, for the features CRIU's ins check compares (INSTRUCTION_FEATURES): the
  names a refusal gives. Flags that are no instruction set (hypervisor, constant_tsc, ...) never refuse a move,
  as they do not make CRIU refuse one.

The messages of the image are decoded with _images' protobuf reader (no pycriu)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile

from ansible_collections.cryo.docker.plugins.module_utils._common import C_LOCALE, ModuleError
from ansible_collections.cryo.docker.plugins.module_utils._criu import ImageError, log_errors
from ansible_collections.cryo.docker.plugins.module_utils._images import parse_image

IMAGE = 'cpuinfo.img'
# A cpuinfo.img is about a hundred bytes: one larger than this is no CPU's.
IMAGE_LIMIT = 64 << 10
CHECKS = ('full', 'instructions', 'none')
# What `criu cpuinfo check` is asked per cpu_check: CRIU's default (fpu and ins), or ins alone.
CPU_CAP = dict(full=[], instructions=['--cpu-cap=^fpu'])

# The x86 features whose absence makes `criu cpuinfo check` refuse an image (its ins check): CRIU 4.2's
# x86_ins_capability_mask (criu/arch/x86/cpu.c), each by the name /proc/cpuinfo gives it, with its word and bit in
# the image's capability words (compel/arch/x86/src/lib/include/uapi/asm/cpu.h). osxsave is in the mask and never in
# /proc/cpuinfo (the kernel hides it): CRIU's own check covers it.
INSTRUCTION_FEATURES = {
    'fpu': (0, 0), 'tsc': (0, 4), 'cx8': (0, 8), 'sep': (0, 11), 'cmov': (0, 15), 'clflush': (0, 19),
    'mmx': (0, 23), 'fxsr': (0, 24), 'sse': (0, 25), 'sse2': (0, 26),
    'syscall': (1, 11), 'mmxext': (1, 22), 'rdtscp': (1, 27), '3dnowext': (1, 30), '3dnow': (1, 31),
    'rep_good': (3, 16), 'nopl': (3, 20),
    'pni': (4, 0), 'pclmulqdq': (4, 1), 'monitor': (4, 3), 'ssse3': (4, 9), 'cx16': (4, 13), 'sse4_1': (4, 19),
    'sse4_2': (4, 20), 'movbe': (4, 22), 'popcnt': (4, 23), 'aes': (4, 25), 'xsave': (4, 26), 'osxsave': (4, 27),
    'avx': (4, 28), 'f16c': (4, 29), 'rdrand': (4, 30),
    'abm': (6, 5), 'sse4a': (6, 6), 'misalignsse': (6, 7), '3dnowprefetch': (6, 8), 'xop': (6, 11),
    'fma4': (6, 16), 'tbm': (6, 21),
    'fsgsbase': (9, 0), 'bmi1': (9, 3), 'hle': (9, 4), 'avx2': (9, 5), 'bmi2': (9, 8), 'erms': (9, 9),
    'rtm': (9, 11), 'mpx': (9, 14), 'avx512f': (9, 16), 'avx512dq': (9, 17), 'rdseed': (9, 18), 'adx': (9, 19),
    'clflushopt': (9, 23), 'avx512pf': (9, 26), 'avx512er': (9, 27), 'avx512cd': (9, 28), 'sha_ni': (9, 29),
    'avx512bw': (9, 30), 'avx512vl': (9, 31),
    'xsaveopt': (10, 0), 'xsavec': (10, 1), 'xgetbv1': (10, 2),
    'avx512vbmi': (11, 1), 'avx512_vbmi2': (11, 6), 'gfni': (11, 8), 'vaes': (11, 9), 'vpclmulqdq': (11, 10),
    'avx512_vnni': (11, 11), 'avx512_bitalg': (11, 12), 'tme': (11, 13), 'avx512_vpopcntdq': (11, 14),
    'rdpid': (11, 22),
    'clzero': (13, 0),
    'avx512_4vnniw': (18, 2), 'avx512_4fmaps': (18, 3),
}
VENDORS = {1: 'GenuineIntel', 2: 'AuthenticAMD'}


class CpuRefused(ModuleError):
    """An archive whose recorded CPU this host's does not match; msg names what is missing."""


def runner(module):
    """How this file runs criu: argv -> (rc, stdout, stderr), in the C locale."""
    return lambda argv: module.run_command(argv, environ_update=C_LOCALE)


# -- what a CPU is ------------------------------------------------------------------------------

def describe(proc_cpuinfo):
    """dict(vendor, model, flags) of the first processor of /proc/cpuinfo's text: x86's `flags`, or arm64's
    `Features`; flags sorted, each once. None when the text names no flags."""
    fields = {}
    for line in (proc_cpuinfo or '').splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, _sep, value = line.partition(':')
        fields.setdefault(key.strip(), value.strip())
    flags = fields.get('flags', fields.get('Features'))
    if flags is None:
        return None
    return dict(vendor=fields.get('vendor_id') or fields.get('CPU implementer'),
                model=fields.get('model name') or fields.get('CPU part'), flags=sorted(set(flags.split())))


def well_formed(recorded):
    """Whether what an archive's manifest records as its CPU (source.cpu: untrusted) has the shape the export
    writes: None, or an object whose vendor and model are short strings (or null) and whose flags a list of
    strings (or null)."""
    if recorded is None:
        return True
    if not isinstance(recorded, dict):
        return False
    flags = recorded.get('flags')
    return (all(value is None or (isinstance(value, str) and len(value) <= 256 and value.isprintable())
                for value in (recorded.get('vendor'), recorded.get('model')))
            and (flags is None or (isinstance(flags, list) and all(isinstance(flag, str) for flag in flags))))


def instruction_features(flags):
    """The flags that name an instruction set CRIU's check compares, sorted."""
    return sorted(set(flags or ()) & set(INSTRUCTION_FEATURES))


def read_image(data, name=IMAGE):
    """The x86 entry of a cpuinfo.img's bytes: dict(vendor, family, model, stepping, model_id, capability (the
    words), features (INSTRUCTION_FEATURES set in them), xfeatures_mask, xsave_size, xsave_size_max).
    ImageError when it is no cpuinfo image, or holds no x86 entry."""
    entries = parse_image(data, 'cpuinfo', name)
    x86 = [entry for top in entries for entry in top.messages(1)]
    if not x86:
        raise ImageError('%s holds no x86 CPU' % name)
    entry = x86[0]
    words = entry.ints(6)
    return dict(vendor=VENDORS.get(entry.int(1), 'unknown'), family=entry.int(2), model=entry.int(3),
                stepping=entry.int(4), model_id=entry.text(7), capability=words,
                features=sorted(name for name, (word, bit) in INSTRUCTION_FEATURES.items()
                                if word < len(words) and words[word] >> bit & 1),
                xfeatures_mask=entry.int(8), xsave_size=entry.int(9), xsave_size_max=entry.int(10))


# -- the export: recording it -------------------------------------------------------------------

def record(run, criu, proc_cpuinfo):
    """(image bytes or None, what the manifest records) of this host's CPU: `criu cpuinfo dump` (run: argv ->
    (rc, stdout, stderr)) into a private temporary directory, removed afterwards, and /proc/cpuinfo's text. An
    image CRIU cannot write is left out, with the reason, and the flags still recorded."""
    cpu = dict(describe(proc_cpuinfo) or dict(vendor=None, model=None, flags=None), image=False, image_error=None)
    if not criu:
        cpu['image_error'] = 'no criu on the engine\'s PATH'
        return None, cpu
    work = tempfile.mkdtemp(prefix='cryo-cpuinfo-')
    try:
        rc, out, err = run([criu, 'cpuinfo', 'dump', '-D', work])
        path = os.path.join(work, IMAGE)
        if rc != 0 or not os.path.isfile(path):
            cpu['image_error'] = '; '.join(log_errors(out + err)[-3:]) or 'criu cpuinfo dump exited %s' % rc
            return None, cpu
        with open(path, 'rb') as handle:
            data = handle.read()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cpu['image'] = True
    return data, cpu


# -- the import: checking it --------------------------------------------------------------------

def criu_check(run, criu, image, mode):
    """(passed, CRIU's error lines) of `criu cpuinfo check` against the image's bytes, written (under a name of
    ours, never the archive's) into a private temporary directory that is removed afterwards."""
    work = tempfile.mkdtemp(prefix='cryo-cpuinfo-')
    try:
        fd = os.open(os.path.join(work, IMAGE), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, 'wb') as handle:
            handle.write(image)
        rc, out, err = run([criu, 'cpuinfo', 'check', '-D', work] + CPU_CAP[mode])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rc == 0, log_errors(out + err)[-5:] or ([] if rc == 0 else ['criu cpuinfo check exited %s' % rc])


def check(run, criu, recorded, image, proc_cpuinfo, mode, path):
    """What the CPU check found (the import's `cpu` return value), or CpuRefused before anything is unpacked.

    recorded: the manifest's source.cpu (None for an archive written before the check); image: the bytes of its
    cpuinfo.img (None when it has none); mode: cpu_check."""
    host = describe(proc_cpuinfo) or dict(vendor=None, model=None, flags=None)
    report = dict(mode=mode, checked=False, passed=None, missing=[], criu_check='not run', criu_errors=[],
                  source=dict(vendor=(recorded or {}).get('vendor'), model=(recorded or {}).get('model')),
                  host=dict(vendor=host['vendor'], model=host['model']), warning=None)
    if mode == 'none':
        report['warning'] = ('The CPU of %s was not checked (cpu_check: none): a process that uses an instruction '
                             'set this CPU lacks dies with SIGILL once restored.' % path)
        return report
    flags = (recorded or {}).get('flags')
    if not isinstance(flags, list) and image is None:
        report['warning'] = ('The archive %s records no CPU (it was written before the export recorded one, or on a '
                             'host whose CPU it could not read), so the import could not check that this CPU has the '
                             'instruction sets its processes use. Export it again with this release to have it '
                             'checked.' % path)
        return report
    report['checked'] = True
    named = []
    if isinstance(flags, list) and host['flags'] is not None:
        named = sorted(set(instruction_features(flags)) - set(host['flags']))
    if image is not None and criu:
        # CRIU's verdict decides (it compares what each CPU reports to processes, CPUID); the flags name the features.
        passed, errors = criu_check(run, criu, image, mode)
        report.update(criu_check='passed' if passed else 'failed', criu_errors=errors, passed=passed)
        if not passed:
            report['missing'] = named or recorded_missing(image, host['flags'])
        elif named:
            report['warning'] = ('This host\'s /proc/cpuinfo does not name %s, which the source host\'s named; criu '
                                 'cpuinfo check, which compares what the CPUs report to processes (CPUID), passed '
                                 'this CPU, so %s was imported (a kernel can hide a feature from /proc/cpuinfo, for '
                                 'example with clearcpuid=).' % (', '.join(named), path))
    else:
        report.update(missing=named, passed=not named)
    if not report['passed']:
        raise CpuRefused(refusal(path, report), reason='cpu', missing_features=report['missing'],
                         cpu={key: value for key, value in report.items() if key != 'warning'})
    return report


def recorded_missing(image, host_flags):
    """The instruction features CRIU's image records and /proc/cpuinfo here does not show (osxsave, which it never
    shows, left out): the names when the manifest's flags named none."""
    try:
        features = read_image(image)['features']
    except ImageError:
        return []
    return sorted(set(features) - set(host_flags or ()) - {'osxsave'}) if host_flags is not None else []


def cpu_name(cpu):
    """'vendor model' of a CPU as describe() gives it (or as an archive records it), for a person."""
    return ' '.join(str(part)[:80] for part in (cpu.get('vendor'), cpu.get('model')) if part) or 'unknown'


def refusal(path, report):
    """The refusal's msg: what is missing (named), why it matters, what to do."""
    source, host = cpu_name(report['source']), cpu_name(report['host'])
    said = '; '.join(re.sub(r'^Error \([^)]*\): (cpu: )?', '', line) for line in report['criu_errors'])
    criu = ' (criu cpuinfo check: %s)' % said if said else ''
    if report['missing']:
        what = ('this host\'s CPU (%s) lacks %s, which the source host\'s CPU (%s) has%s. A restored process that '
                'uses them dies with SIGILL the first time it runs one (podman#17496): programs choose their '
                'instructions when they start, by the CPU they start on.'
                % (host, ', '.join(report['missing']), source, criu))
        override = 'cpu_check: none imports it unchecked, at that risk'
    elif 'instruction' in said:
        what = ('criu cpuinfo check finds an instruction set of the source host\'s CPU (%s) missing on this host\'s '
                '(%s)%s. A restored process that uses it dies with SIGILL the first time it runs one (podman#17496).'
                % (source, host, criu))
        override = 'cpu_check: none imports it unchecked, at that risk'
    else:
        what = ('criu cpuinfo check refuses this host\'s CPU (%s) for the one the checkpoint was taken on (%s)%s: '
                'the FPU state is laid out otherwise (xsave features or frame size), and a restored process whose '
                'libc measured the frame when it started would overrun it.' % (host, source, criu))
        override = ('cpu_check: instructions checks the instruction sets alone, accepting that risk (none checks '
                    'nothing)')
    return ('The archive %s was refused before anything was unpacked: %s Nothing was created. Import it on a host '
            'whose CPU has the features of the source\'s (or take the checkpoint on a host with the features of the '
            'oldest CPU it may move to; for virtual machines, a CPU model common to the fleet); %s.'
            % (path, what, override))
