"""The CPU check before a move (_cpu), with recorded inputs: this lab machine's cpuinfo.img (`criu cpuinfo dump`,
CRIU 4.2.1) and /proc/cpuinfo, and the same image edited to name avx512f (a feature this CPU lacks) or an AVX-512
CPU's xsave layout (tests/unit/fixtures/cpu/README.md). criu is a fake that answers as the real one did; the real one
runs against these fixtures in tests/integration/test_cpu_check.py."""

import importlib.util
import os

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _cpu
from ansible_collections.cryo.docker.plugins.module_utils._criu import ImageError
from ansible_collections.cryo.docker.plugins.module_utils._preflight import check_restore_cpu

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'cpu')
CRIU = '/usr/local/sbin/criu'
# What criu cpuinfo check said of the edited images on the machine they were recorded on (exit code 1).
INSTRUCTIONS_ERROR = 'Error (criu/arch/x86/cpu.c:223): cpu: CPU instruction capabilities do not match run time\n'
XSAVE_ERROR = 'Error (criu/arch/x86/cpu.c:262): cpu: CPU xfeatures has unsupported bits (0xe2)\n'


def fixture(name, mode='rb'):
    with open(os.path.join(FIXTURES, name), mode) as handle:
        return handle.read()


EPYC = fixture('epyc-proc-cpuinfo.txt', 'r')
EPYC_IMAGE = fixture('epyc-cpuinfo.img')
AVX512F_IMAGE = fixture('avx512f-cpuinfo.img')
XSAVE_IMAGE = fixture('xsave-cpuinfo.img')


def with_flags(text, add=(), drop=()):
    """/proc/cpuinfo text with flags added to and dropped from each processor's `flags` line."""
    lines = []
    for line in text.splitlines():
        if line.startswith('flags'):
            key, _sep, value = line.partition(':')
            flags = [flag for flag in value.split() if flag not in drop] + list(add)
            line = '%s: %s' % (key, ' '.join(flags))
        lines.append(line)
    return '\n'.join(lines) + '\n'


def _load_fake_criu():
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'modules', 'fake_criu.py')
    spec = importlib.util.spec_from_file_location('cryo_fake_criu', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FakeCriu


_FakeCriu = _load_fake_criu()


def FakeCriu(image=EPYC_IMAGE, result=(0, '', '')):  # pylint: disable=invalid-name
    return _FakeCriu(image, result)


def recorded(text=EPYC, image=True):
    return dict(_cpu.describe(text), image=image, image_error=None)


# -- what a CPU is ------------------------------------------------------------------------------

def test_the_recorded_proc_cpuinfo_names_this_cpu_and_its_flags():
    cpu = _cpu.describe(EPYC)
    assert cpu['vendor'] == 'AuthenticAMD' and cpu['model'] == 'AMD EPYC'
    assert {'avx2', 'sha_ni', 'hypervisor', 'constant_tsc', 'fma'} <= set(cpu['flags'])
    assert 'avx512f' not in cpu['flags'] and cpu['flags'] == sorted(set(cpu['flags']))


def test_only_the_second_processor_block_is_not_read():
    text = EPYC + '\nprocessor\t: 1\nflags\t\t: fpu avx512f\n'
    assert 'avx512f' not in _cpu.describe(text)['flags']


def test_no_flags_line_is_no_cpu():
    assert _cpu.describe('') is None and _cpu.describe(None) is None
    assert _cpu.describe('processor\t: 0\nmodel name\t: x\n') is None


def test_arm64_features_are_its_flags():
    cpu = _cpu.describe('processor\t: 0\nFeatures\t: fp asimd aes sha2 crc32\nCPU implementer\t: 0x41\n')
    assert cpu['flags'] == ['aes', 'asimd', 'crc32', 'fp', 'sha2'] and cpu['vendor'] == '0x41'


def test_instruction_features_leave_out_what_no_process_runs():
    flags = _cpu.describe(EPYC)['flags']
    features = _cpu.instruction_features(flags)
    assert {'avx2', 'sha_ni', 'aes', 'sse4_2', 'bmi2', 'rdrand'} <= set(features)
    assert not {'hypervisor', 'constant_tsc', 'nonstop_tsc', 'tsc_known_freq', 'arat', 'cpuid'} & set(features)


def test_the_table_agrees_with_criu_on_the_recorded_cpu():
    """Every instruction feature CRIU's own image of this CPU has is one /proc/cpuinfo names here, and the reverse:
    the table's words and bits and its names are CRIU's (osxsave, which the kernel never shows, aside)."""
    image = _cpu.read_image(EPYC_IMAGE)
    assert set(image['features']) - {'osxsave'} == set(_cpu.instruction_features(_cpu.describe(EPYC)['flags']))
    assert 'osxsave' in image['features']


def test_the_recorded_image_reads_as_crit_decoded_it():
    image = _cpu.read_image(EPYC_IMAGE)
    assert image == dict(image, vendor='AuthenticAMD', family=25, model=1, stepping=1, model_id='AMD EPYC',
                         xfeatures_mask=5, xsave_size=832, xsave_size_max=832)
    # crit decode -i epyc-cpuinfo.img (crit 4.2.1)
    assert image['capability'] == [395049983, 802421759, 0, 34668544, 4294586883, 0, 4195315, 0, 0, 563873707, 15,
                                   4195972, 0, 268435461, 4, 0, 0, 0, 16]


def test_the_edited_fixtures_differ_only_where_they_say():
    base, edited, xsave = (_cpu.read_image(data) for data in (EPYC_IMAGE, AVX512F_IMAGE, XSAVE_IMAGE))
    assert set(edited['features']) - set(base['features']) == {'avx512f'}
    assert dict(edited, features=None, capability=None) == dict(base, features=None, capability=None)
    assert [a ^ b for a, b in zip(edited['capability'], base['capability'])][9] == 1 << 16
    assert xsave['features'] == base['features'] and (xsave['xfeatures_mask'], xsave['xsave_size']) == (0xe7, 2696)


@pytest.mark.parametrize('data', [b'', b'\x19CVT', EPYC_IMAGE[:40], fixture('avx512f-cpuinfo.img')[:8] + b'\0' * 4])
def test_a_damaged_image_is_an_image_error(data):
    with pytest.raises(ImageError):
        _cpu.read_image(data)


# -- recording ----------------------------------------------------------------------------------

def test_the_export_records_criu_s_image_and_the_flags_from_a_private_directory_it_removes():
    criu = FakeCriu()
    image, cpu = _cpu.record(criu, CRIU, EPYC)
    assert image == EPYC_IMAGE
    assert cpu == dict(_cpu.describe(EPYC), image=True, image_error=None)
    run = criu.runs[0]
    assert run['argv'] == [CRIU, 'cpuinfo', 'dump', '-D', run['directory']] and run['mode'] == 0o700
    assert not os.path.exists(run['directory'])


def test_an_image_criu_cannot_write_is_left_out_with_its_reason():
    criu = FakeCriu(image=None)
    image, cpu = _cpu.record(criu, CRIU, EPYC)
    assert image is None and cpu['image'] is False and cpu['flags'] == _cpu.describe(EPYC)['flags']
    assert cpu['image_error'] == 'Error (criu/arch/x86/cpu.c:85): cpu: Unable to open image'
    assert not os.path.exists(criu.runs[0]['directory'])
    image, cpu = _cpu.record(criu, None, EPYC)
    assert image is None and cpu['image_error'] == "no criu on the engine's PATH" and len(criu.runs) == 1


# -- checking -----------------------------------------------------------------------------------

def check(criu, source=None, image=EPYC_IMAGE, host=EPYC, mode='full'):
    return _cpu.check(criu, CRIU, recorded() if source is None else source, image, host, mode, '/srv/a.tar')


def test_the_same_cpu_passes_criu_s_check_of_the_recorded_image():
    criu = FakeCriu()
    report = check(criu)
    assert report == dict(mode='full', checked=True, passed=True, missing=[], criu_check='passed', criu_errors=[],
                          source=dict(vendor='AuthenticAMD', model='AMD EPYC'),
                          host=dict(vendor='AuthenticAMD', model='AMD EPYC'), warning=None)
    run = criu.runs[0]
    # The recorded bytes, under the module's own name, alone in a private directory removed afterwards.
    assert run['argv'] == [CRIU, 'cpuinfo', 'check', '-D', run['directory']]
    assert run['image'] == EPYC_IMAGE and run['listing'] == ['cpuinfo.img'] and run['mode'] == 0o700
    assert not os.path.exists(run['directory'])


def test_a_cpu_without_recorded_instruction_sets_is_refused_and_they_are_named():
    criu = FakeCriu(result=(1, '', INSTRUCTIONS_ERROR))
    source = recorded(with_flags(EPYC, add=['avx512f', 'avx512bw']))
    with pytest.raises(_cpu.CpuRefused) as caught:
        check(criu, source, AVX512F_IMAGE)
    error = caught.value
    msg = error.msg
    assert msg.startswith('The archive /srv/a.tar was refused before anything was unpacked: this host\'s CPU '
                          '(AuthenticAMD AMD EPYC) lacks avx512bw, avx512f, which the source host\'s CPU'), msg
    assert 'SIGILL' in msg and 'podman#17496' in msg and 'Nothing was created' in msg and 'cpu_check' in msg
    assert 'CPU instruction capabilities do not match run time' in msg
    assert error.details['reason'] == 'cpu' and error.details['missing_features'] == ['avx512bw', 'avx512f']
    assert error.details['cpu']['passed'] is False and error.details['cpu']['criu_check'] == 'failed'
    assert criu.runs[0]['image'] == AVX512F_IMAGE and not os.path.exists(criu.runs[0]['directory'])


def test_flags_that_are_no_instruction_set_never_refuse():
    """Moved from a VM to bare metal, or to a CPU without constant_tsc: CRIU does not refuse, nor does the check."""
    source = recorded(with_flags(EPYC, add=['hypervisor', 'constant_tsc', 'nonstop_tsc', 'arat', 'ssbd', 'ibpb']))
    host = with_flags(EPYC, drop=['hypervisor', 'constant_tsc', 'nonstop_tsc', 'arat', 'tsc_known_freq'])
    report = check(FakeCriu(), source, host=host)
    assert report['passed'] is True and report['missing'] == []


def test_a_richer_host_passes():
    report = check(FakeCriu(), host=with_flags(EPYC, add=['avx512f', 'avx512vl', 'amx_tile']))
    assert report['passed'] is True


def test_criu_s_fpu_refusal_without_a_missing_feature_quotes_criu():
    criu = FakeCriu(result=(1, '', XSAVE_ERROR))
    with pytest.raises(_cpu.CpuRefused) as caught:
        check(criu, image=XSAVE_IMAGE)
    msg = caught.value.msg
    assert 'criu cpuinfo check refuses this host\'s CPU' in msg and 'CPU xfeatures has unsupported bits (0xe2)' in msg
    assert 'FPU state' in msg and 'cpu_check: instructions' in msg and 'Nothing was created' in msg
    assert caught.value.details['missing_features'] == []


def test_instructions_mode_asks_criu_for_the_ins_check_alone():
    criu = FakeCriu()
    report = check(criu, image=XSAVE_IMAGE, mode='instructions')
    assert report['passed'] is True and report['mode'] == 'instructions'
    assert criu.runs[0]['argv'][-1] == '--cpu-cap=^fpu'


def test_criu_refusing_where_the_flags_name_nothing_names_the_image_s_features():
    """An archive whose manifest records no flags (the image only): the names come from CRIU's image."""
    criu = FakeCriu(result=(1, '', INSTRUCTIONS_ERROR))
    with pytest.raises(_cpu.CpuRefused) as caught:
        check(criu, dict(vendor=None, model=None, flags=None, image=True), AVX512F_IMAGE)
    assert caught.value.details['missing_features'] == ['avx512f'], caught.value.msg


def test_flags_alone_are_compared_without_an_image():
    criu = FakeCriu()
    with pytest.raises(_cpu.CpuRefused) as caught:
        check(criu, recorded(with_flags(EPYC, add=['avx512f']), image=False), image=None)
    assert caught.value.details['missing_features'] == ['avx512f'] and criu.runs == []
    assert caught.value.details['cpu']['criu_check'] == 'not run'


def test_cpu_check_none_checks_nothing_and_warns():
    criu = FakeCriu(result=(1, '', INSTRUCTIONS_ERROR))
    report = check(criu, recorded(with_flags(EPYC, add=['avx512f'])), AVX512F_IMAGE, mode='none')
    assert report['checked'] is False and report['passed'] is None and criu.runs == []
    assert 'was not checked (cpu_check: none)' in report['warning']


def test_an_archive_that_records_no_cpu_imports_unchecked_with_a_warning():
    criu = FakeCriu()
    report = _cpu.check(criu, CRIU, None, None, EPYC, 'full', '/srv/old.tar')
    assert report['checked'] is False and criu.runs == []
    assert report['warning'].startswith('The archive /srv/old.tar records no CPU'), report['warning']


def test_criu_s_instruction_refusal_that_no_flag_explains_is_still_refused():
    """CRIU compares bits /proc/cpuinfo does not show (osxsave): its verdict stands, in its words."""
    criu = FakeCriu(result=(1, '', INSTRUCTIONS_ERROR))
    with pytest.raises(_cpu.CpuRefused) as caught:
        check(criu)
    msg = caught.value.msg
    assert 'criu cpuinfo check finds an instruction set of the source host' in msg and 'SIGILL' in msg, msg
    assert '(criu cpuinfo check: CPU instruction capabilities do not match run time)' in msg, msg


# -- the move's check before the freeze (checkpoint_preflight's `restore cpu`) ---------------------------

def test_restore_cpu_passes_the_same_cpu_and_a_richer_one():
    flags = _cpu.describe(EPYC)['flags']
    for host in (EPYC, with_flags(EPYC, add=['avx512f']), with_flags(EPYC, drop=['hypervisor', 'constant_tsc'])):
        found = check_restore_cpu(flags, _cpu.describe(host))
        assert found['status'] == 'pass', found


def test_restore_cpu_fails_naming_what_this_cpu_lacks():
    flags = _cpu.describe(with_flags(EPYC, add=['avx512f', 'avx512bw', 'hypervisor']))['flags']
    found = check_restore_cpu(flags, _cpu.describe(EPYC))
    assert found['status'] == 'fail' and 'lacks avx512bw, avx512f, which the CPU' in found['detail'], found
    assert 'SIGILL' in found['detail'] and 'hypervisor' not in found['detail']
    assert 'move_cpu_check: none' in found['remedy']


def test_restore_cpu_warns_when_this_cpu_cannot_be_read_and_fails_a_flag_that_is_none():
    assert check_restore_cpu(['sse2'], None)['status'] == 'warn'
    found = check_restore_cpu(['sse2', '../x'], _cpu.describe(EPYC))
    assert found['status'] == 'fail' and "restore_cpu_flags holds '../x'" in found['detail'], found


def test_criu_s_verdict_decides_where_it_ran():
    """Flags this host's /proc/cpuinfo does not name (a kernel can hide one) where CRIU, which asks the CPU, passed
    the recorded image: imported, with a warning naming them; without an image, the flags decide."""
    source = recorded(with_flags(EPYC, add=['avx512f']))
    report = check(FakeCriu(), source)
    assert report['passed'] is True and report['missing'] == [] and report['criu_check'] == 'passed'
    assert "does not name avx512f, which the source host's named" in report['warning'], report['warning']
    with pytest.raises(_cpu.CpuRefused):
        check(FakeCriu(), source, image=None)
