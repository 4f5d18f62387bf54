"""The CPU check before a move, for real: this machine's CRIU and the fleet's engines.

- `criu cpuinfo check` (the engine's CRIU, run by the collection's _cpu.criu_check) passes this host's own fresh
  `criu cpuinfo dump`, refuses the recorded fixture edited to name a feature this CPU lacks (and the committed
  avx512f fixture where this CPU lacks avx512f), and refuses an AVX-512 xsave layout in mode full, not in mode
  instructions.
- A counter exported on fleet-1 carries its CPU (cpuinfo.img, the manifest's source.cpu). The same archive with the
  recorded CPU replaced by one naming a feature this CPU lacks (the image edited, the flags too, every checksum
  recomputed as an attacker - or another host - would have them) is refused by the import on fleet-2, in check mode
  and for real: the msg names the feature, no container, no checkpoint directory, nothing staged. The untouched
  archive imports, criu's check passed, and the counter goes on from where it was.
"""

import os
import shutil
import subprocess
import uuid

import pytest

import forge
from helpers import COUNTER, IMAGE, call_module, counter, counter_lines, wait_counter
# The containers a test makes on fleet-1 and fleet-2, removed afterwards (a fixture, used by name).
from test_archive_untrusted import made  # noqa: F401 pylint: disable=unused-import

from ansible_collections.cryo.docker.plugins.module_utils import _cpu

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'unit', 'fixtures', 'cpu')
# Features CRIU's instruction check compares that a lab machine is unlikely to have: the first this CPU lacks is the
# one the edited CPU names.
UNLIKELY = ('avx512f', 'avx512_4vnniw', 'xop', 'tbm', 'fma4')


def criu():
    path = shutil.which('criu') or '/usr/local/sbin/criu'
    if not os.path.exists(path):
        pytest.skip('no criu on this machine')
    return path


def run(argv):
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope='module')
def here():
    """(this CPU's cpuinfo.img from criu cpuinfo dump, its /proc/cpuinfo text, a feature it lacks)."""
    image, recorded = _cpu.record(run, criu(), open('/proc/cpuinfo', encoding='ascii').read())
    assert image is not None, recorded
    features = set(_cpu.read_image(image)['features']) | set(recorded['flags'])
    missing = next(name for name in UNLIKELY if name not in features)
    return image, recorded, missing


def fixture(name):
    with open(os.path.join(FIXTURES, name), 'rb') as handle:
        return handle.read()


def test_criu_cpuinfo_check_of_recorded_and_edited_cpus(here):
    image, _recorded, missing = here
    assert _cpu.criu_check(run, criu(), image, 'full') == (True, [])
    passed, errors = _cpu.criu_check(run, criu(), forge.edit_cpuinfo(image, add=[missing]), 'full')
    assert not passed and any('CPU instruction capabilities do not match run time' in line for line in errors), errors
    if missing == 'avx512f':
        # The committed fixture (the lab machine's image with avx512f), refused by this CPU too.
        assert _cpu.criu_check(run, criu(), fixture('avx512f-cpuinfo.img'), 'full')[0] is False
    mine = _cpu.read_image(image)
    if not mine['xfeatures_mask'] & 0xe0:
        # An AVX-512 CPU's xsave state: refused for the FPU layout, and accepted when instructions alone are checked.
        avx512 = forge.edit_cpuinfo(image, xfeatures_mask=mine['xfeatures_mask'] | 0xe0, xsave_size=2696,
                                    xsave_size_max=2696)
        passed, errors = _cpu.criu_check(run, criu(), avx512, 'full')
        assert not passed and any('xfeatures' in line or 'xsave' in line for line in errors), errors
        assert _cpu.criu_check(run, criu(), avx512, 'instructions') == (True, [])


def engine_state(fleet):
    """What an import could have left on fleet-2: its containers' directories and the staging directory's entries."""
    root = fleet.clients['fleet-2'].info()['DockerRootDir']
    staging = os.path.join(root, 'cryo-import')
    return (sorted(os.listdir(os.path.join(root, 'containers'))),
            sorted(os.listdir(staging)) if os.path.isdir(staging) else [])


def test_a_counter_moves_to_a_matching_cpu_and_not_to_one_that_lacks_a_recorded_feature(fleet, made, archives, here):  # noqa: F811
    _image, _recorded, missing = here
    source, target = fleet.clients['fleet-1'], fleet.clients['fleet-2']
    name = 'cpu-%s' % uuid.uuid4().hex[:6]
    made.add(name)
    source.create_container(IMAGE, ['/bin/sh', '-c', COUNTER], name=name, stop_timeout=1)
    source.start(name)
    wait_counter(source, name, 2)
    path = os.path.join(archives, 'counter.tar')
    exported = call_module('docker_checkpoint_export', dict(
        container=name, checkpoint='move', path=path, compression='none', leave_running=True,
        docker_host=fleet.docker_host('fleet-1')))
    assert exported.get('changed') and not exported.get('failed'), exported.get('msg', exported)
    cpu = exported['source']['cpu']
    assert cpu['image'] is True and cpu['flags'] == _cpu.describe(open('/proc/cpuinfo', encoding='ascii').read())[
        'flags']
    members = {member.name: member for member in forge.read(path)}
    assert _cpu.read_image(members['cpuinfo.img'].data)['features'] == _cpu.read_image(here[0])['features']

    # The recorded CPU of a host that has one feature more (image and flags; every checksum recomputed).
    def richer_source(members_):
        recorded = forge.get(members_, 'cpuinfo.img')
        recorded.set_bytes(forge.edit_cpuinfo(recorded.data, add=[missing]))
        manifest = forge.manifest_of(members_)
        manifest['source']['cpu']['flags'] = sorted(manifest['source']['cpu']['flags'] + [missing])
        forge.set_manifest(members_, manifest)

    richer = forge.rewrite(path, os.path.join(archives, 'richer.tar'), richer_source)
    before = engine_state(fleet)
    for check in (True, False):
        result = call_module('docker_checkpoint_import', dict(path=richer, docker_host=fleet.docker_host('fleet-2')),
                             check=check)
        assert result.get('failed') and result.get('reason') == 'cpu', result
        msg = result['msg']
        assert "this host's CPU" in msg and 'lacks %s, which the source host' % missing in msg, msg
        assert 'SIGILL' in msg and 'Nothing was created' in msg and 'Traceback' not in msg, msg
        assert result['missing_features'] == [missing] and result['cpu']['criu_check'] == 'failed', result['cpu']
        assert not target.containers(all=True, filters={'name': name})
        assert engine_state(fleet) == before, 'the refused import left something on fleet-2'

    # The archive as exported: checked, passed, and the counter goes on.
    last = counter(source, name)
    imported = call_module('docker_checkpoint_import', dict(path=path, docker_host=fleet.docker_host('fleet-2')))
    assert imported.get('changed') and imported['verified'] is True, imported.get('msg', imported)
    assert imported['cpu'] == dict(imported['cpu'], checked=True, passed=True, missing=[], criu_check='passed')
    wait_counter(target, name, last + 2)
    lines = counter_lines(target, name)
    assert lines[0] <= last + 1 and lines == list(range(lines[0], lines[0] + len(lines))), (last, lines)


def test_preflight_on_the_target_compares_the_source_cpu_before_anything_is_frozen(fleet, here):
    """What move_container asks of move_to before the freeze: checkpoint_preflight with the source's facts.cpu.flags
    passes this CPU's own, and fails a source CPU with a feature this one lacks, naming it."""
    _image, _recorded, missing = here
    source = call_module('checkpoint_preflight', dict(docker_host=fleet.docker_host('fleet-1')))
    flags = source['facts']['cpu']['flags']
    same = call_module('checkpoint_preflight', dict(docker_host=fleet.docker_host('fleet-2'), restore_cpu_flags=flags))
    assert {c['name']: c['status'] for c in same['checks']}['restore cpu'] == 'pass', same['checks']
    richer = call_module('checkpoint_preflight', dict(docker_host=fleet.docker_host('fleet-2'),
                                                      restore_cpu_flags=flags + [missing]))
    found = {c['name']: c for c in richer['checks']}['restore cpu']
    assert found['status'] == 'fail' and 'lacks %s, which the CPU' % missing in found['detail'], found
    assert richer['ready'] is False
