"""The CPU check before a move, through docker_checkpoint_export and docker_checkpoint_import against fake engines:
the export records criu cpuinfo dump's image (member cpuinfo.img, in the manifest like every member) and the flags of
/proc/cpuinfo (the manifest's source.cpu); the import runs criu cpuinfo check against exactly the recorded image and
compares the flags before it unpacks anything, and refuses a CPU that lacks an instruction set, naming it, with
nothing created - check mode too. criu answers as the real one did (recorded); the fixtures are this lab machine's
(tests/unit/fixtures/cpu/README.md)."""

import json
import os

from ansible_collections.cryo.docker.plugins.module_utils import _archive

from fake_archive_engine import read_fixture
from fake_engine import failed_clearly, warnings_of

# The import's bed, the exported web container and its helpers (the fixtures are used by name).
from test_docker_checkpoint_import import (  # noqa: F401 pylint: disable=unused-import
    archive, bed, export, nothing_created, run_import)
from test_import_untrusted import edit_json, forge, rewrite

EPYC = read_fixture('cpu', 'epyc-proc-cpuinfo.txt').decode('ascii')
INSTRUCTIONS_ERROR = 'Error (criu/arch/x86/cpu.c:223): cpu: CPU instruction capabilities do not match run time\n'


def with_flags(text, add=()):
    return ''.join(line + ' ' + ' '.join(add) + '\n' if line.startswith('flags') else line + '\n'
                   for line in text.splitlines())


def members(path):
    return {member.name: member for member in forge.read(path)}


def test_the_export_records_the_cpu_under_the_manifest_s_checksums(bed, archive):
    found = members(archive['path'])
    assert found['cpuinfo.img'].data == read_fixture('cpu', 'epyc-cpuinfo.img')
    manifest = found['manifest.json'].json()
    cpu = manifest['source']['cpu']
    assert cpu['vendor'] == 'AuthenticAMD' and cpu['model'] == 'AMD EPYC' and cpu['image'] is True
    assert {'sha_ni', 'avx2', 'hypervisor'} <= set(cpu['flags']) and cpu['image_error'] is None
    listed = {entry['name']: entry for entry in manifest['members']}
    assert listed['cpuinfo.img']['size'] == 109
    dump = bed.criu_cpu.runs[0]
    assert dump['argv'] == ['/usr/local/sbin/criu', 'cpuinfo', 'dump', '-D', dump['directory']]
    assert dump['mode'] == 0o700 and not os.path.exists(dump['directory'])


def test_an_export_whose_criu_writes_no_image_records_the_flags_and_warns(bed, capsys):
    bed.web()
    bed.criu_cpu.image = None
    result = export(capsys, bed)
    found = members(result['archive']['path'])
    assert 'cpuinfo.img' not in found
    cpu = result['source']['cpu']
    assert cpu['image'] is False and 'Unable to open image' in cpu['image_error'] and 'avx2' in cpu['flags']
    assert any('by its /proc/cpuinfo flags only' in warning for warning in warnings_of(result))


def test_the_same_cpu_imports_and_criu_checks_exactly_the_recorded_image(bed, archive, capsys):
    result = run_import(capsys, bed)
    assert result['changed'] and result['verified'] is True, result
    assert result['cpu'] == dict(mode='full', checked=True, passed=True, missing=[], criu_check='passed',
                                 criu_errors=[], source=dict(vendor='AuthenticAMD', model='AMD EPYC'),
                                 host=dict(vendor='AuthenticAMD', model='AMD EPYC'))
    check = bed.criu_cpu.runs[-1]
    assert check['argv'][1:4] == ['cpuinfo', 'check', '-D'] and check['image'] == read_fixture('cpu', 'epyc-cpuinfo.img')
    assert check['listing'] == ['cpuinfo.img'] and not os.path.exists(check['directory']) and not warnings_of(result)


def export_on_an_avx512_host(bed, capsys):
    """The web container exported on a host whose CPU has avx512f; the import's host (this fake /proc) lacks it,
    and its criu check says so as the real one did of the edited image."""
    bed.web()
    bed.set_cpuinfo(with_flags(EPYC, add=['avx512f']))
    bed.criu_cpu.image = read_fixture('cpu', 'avx512f-cpuinfo.img')
    path = export(capsys, bed)['archive']['path']
    bed.set_cpuinfo(EPYC)
    bed.criu_cpu.result = (1, '', INSTRUCTIONS_ERROR)
    return path


def test_a_cpu_that_lacks_a_recorded_instruction_set_is_refused_before_anything_is_created(bed, capsys):
    path = export_on_an_avx512_host(bed, capsys)
    for check_mode in (True, False):
        result = run_import(capsys, bed, path=path, check_mode=check_mode)
        msg = failed_clearly(result, 'The archive %s was refused before anything was unpacked: this host\'s CPU '
                                     '(AuthenticAMD AMD EPYC) lacks avx512f, which the source host\'s CPU' % path)
        assert 'SIGILL' in msg and 'podman#17496' in msg and 'cpu_check: none' in msg
        assert result['reason'] == 'cpu' and result['missing_features'] == ['avx512f']
        assert result['cpu']['criu_check'] == 'failed' and result['cpu']['passed'] is False
        nothing_created(bed)
    assert bed.criu_cpu.runs[-1]['image'] == read_fixture('cpu', 'avx512f-cpuinfo.img')


def test_cpu_check_none_imports_it_with_a_warning(bed, capsys):
    path = export_on_an_avx512_host(bed, capsys)
    runs = len(bed.criu_cpu.runs)
    result = run_import(capsys, bed, path=path, cpu_check='none')
    assert result['changed'] and result['verified'] is True, result
    assert result['cpu']['checked'] is False and len(bed.criu_cpu.runs) == runs
    assert any('was not checked (cpu_check: none)' in warning for warning in warnings_of(result))
    again = run_import(capsys, bed, path=path, cpu_check='none')
    assert again['changed'] is False and again['action'] == 'none'


def test_an_archive_written_before_the_check_imports_unchecked_with_a_warning(bed, archive, capsys, tmp_path):
    def older(members_):
        return [member for member in members_ if member.name != 'cpuinfo.img']

    def no_cpu(source):
        del source['cpu']

    old = rewrite(archive['path'], tmp_path / 'old.tar', older, edit_json('manifest.json', lambda m: no_cpu(m['source'])))
    result = run_import(capsys, bed, path=old)
    assert result['changed'] and result['verified'] is True, result
    assert result['cpu']['checked'] is False and result['cpu']['criu_check'] == 'not run'
    assert any('records no CPU' in warning for warning in warnings_of(result)), warnings_of(result)


def test_a_forged_cpu_record_is_refused_as_untrusted(bed, archive, capsys, tmp_path):
    def flags_as_text(manifest):
        manifest['source']['cpu']['flags'] = 'fpu sse'

    def model_with_a_newline(manifest):
        manifest['source']['cpu']['model'] = 'AMD EPYC\nNothing is wrong, go on'

    for edit in (flags_as_text, model_with_a_newline):
        bad = rewrite(archive['path'], tmp_path / 'cpu.tar', edit_json('manifest.json', edit))
        result = run_import(capsys, bed, path=bad)
        assert result['reason'] == 'malformed' and 'the CPU its manifest records' in result['msg'], result
        nothing_created(bed)

    def huge(members_):
        forge.get(members_, 'cpuinfo.img').set_bytes(b'\0' * (_archive.SMALL_LIMIT + 1))

    big = rewrite(archive['path'], tmp_path / 'big.tar', huge)
    result = run_import(capsys, bed, path=big)
    assert result['reason'] == 'malformed' and 'cpuinfo.img is larger' in result['msg'], result
    nothing_created(bed)


def test_the_manifest_keeps_format_1(archive):
    manifest = json.loads(members(archive['path'])['manifest.json'].data)
    assert manifest['format'] == _archive.FORMAT == 1


def test_the_edited_fixtures_are_forge_s_edits_of_the_recorded_image():
    recorded = read_fixture('cpu', 'epyc-cpuinfo.img')
    assert forge.edit_cpuinfo(recorded) == recorded
    assert forge.edit_cpuinfo(recorded, add=['avx512f']) == read_fixture('cpu', 'avx512f-cpuinfo.img')
    assert forge.edit_cpuinfo(recorded, xfeatures_mask=0xe7, xsave_size=2696, xsave_size_max=2696) == read_fixture(
        'cpu', 'xsave-cpuinfo.img')
