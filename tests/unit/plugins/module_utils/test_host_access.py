"""What a recorded container asks of the host it is imported on (module_utils/_host_access.py).

Records are made by _containers.record_container from real inspects: the network holder recordings of Docker
20.10.24 and 28.5.2 (tests/unit/fixtures/network-holder/), default containers but for their network, and copies
of them changed one field at a time. PROBE_* are the fields of a real inspect too, of a container made on Docker
20.10.24 (cgroup v1) with `docker create --security-opt seccomp=unconfined --security-opt label=disable
--security-opt apparmor=unconfined -v /etc:/host-etc:ro -v probe-vol:/data --mount type=tmpfs,target=/t
--cap-add sys_admin --cap-add CAP_NET_ADMIN --device /dev/fuse --device-cgroup-rule 'c 10:200 rwm' --sysctl
net.ipv4.ip_forward=1 --oom-score-adj -500 --log-driver syslog --log-opt syslog-address=udp://127.0.0.1:514
--pid host --ipc host --uts host --cgroup-parent /evil cryo-test/busybox:1 true`; `--security-opt
systempaths=unconfined` recorded MaskedPaths [] and ReadonlyPaths [] (and no SecurityOpt entry), `--privileged
--gpus all` SecurityOpt ["label=disable"], MaskedPaths null and the DeviceRequests below.
"""

import copy
import json
import os

import pytest

from ansible_collections.cryo.docker.plugins.module_utils import _containers, _host_access
from ansible_collections.cryo.docker.plugins.module_utils._host_access import (
    ALLOW_CHOICES,
    DEFAULT_MASKED_PATHS,
    DEFAULT_READONLY_PATHS,
    MASKED_ON_EVERY_ENGINE,
    effective,
    host_access,
    refusal_msg,
    refused,
)

FIXTURES = os.path.join(os.path.dirname(__file__), '..', '..', 'fixtures', 'network-holder')
INSPECTS = ('member-20.10.json', 'member-28.5.json', 'holder-20.10.json', 'holder-28.5.json',
            'holder-stopped-20.10.json')

PROBE_HOST_CONFIG = dict(
    Binds=['/etc:/host-etc:ro', 'probe-vol:/data'],
    Mounts=[{'Type': 'tmpfs', 'Target': '/t'}],
    CapAdd=['CAP_NET_ADMIN', 'CAP_SYS_ADMIN'],
    Devices=[{'PathOnHost': '/dev/fuse', 'PathInContainer': '/dev/fuse', 'CgroupPermissions': 'rwm'}],
    DeviceCgroupRules=['c 10:200 rwm'],
    SecurityOpt=['seccomp=unconfined', 'label=disable', 'apparmor=unconfined'],
    Sysctls={'net.ipv4.ip_forward': '1'},
    OomScoreAdj=-500,
    LogConfig={'Type': 'syslog', 'Config': {'syslog-address': 'udp://127.0.0.1:514'}},
    PidMode='host', IpcMode='host', UTSMode='host', CgroupParent='/evil', CgroupnsMode='host',
)
PROBE_MOUNTS = [
    {'Type': 'bind', 'Source': '/etc', 'Destination': '/host-etc', 'Mode': 'ro', 'RW': False,
     'Propagation': 'rprivate'},
    {'Type': 'volume', 'Name': 'probe-vol', 'Source': '/var/lib/docker/volumes/probe-vol/_data',
     'Destination': '/data', 'Driver': 'local', 'Mode': 'z', 'RW': True, 'Propagation': ''},
    {'Type': 'tmpfs', 'Source': '', 'Destination': '/t', 'Mode': '', 'RW': True, 'Propagation': ''},
]
GPUS_ALL = [{'Driver': '', 'Count': -1, 'DeviceIDs': None, 'Capabilities': [['gpu']], 'Options': {}}]


def inspect_of(name='member-28.5.json'):
    with open(os.path.join(FIXTURES, name)) as handle:
        return json.load(handle)


def record_of(name='member-28.5.json', **host_config):
    """The record of a real inspect, with host_config's fields set in its HostConfig (None removes one)."""
    info = inspect_of(name)
    for key, value in host_config.items():
        if value is None:
            info['HostConfig'].pop(key, None)
        else:
            info['HostConfig'][key] = copy.deepcopy(value)
    return _containers.record_container(info, image_info=None, restart_policy=None)


def found(record, carried=()):
    return [(entry['allow'], entry['item']) for entry in host_access(record, carried)]


def items(**host_config):
    return found(record_of(**host_config))


# -- an ordinary container asks for nothing ----------------------------------------------------------

@pytest.mark.parametrize('name', INSPECTS)
def test_a_default_container_asks_for_nothing(name):
    assert host_access(record_of(name)) == []


@pytest.mark.parametrize('name', ('member-20.10.json', 'member-28.5.json'))
def test_the_counter_asks_for_seccomp_unconfined_only(name):
    """The test bed's counter: a default container started with --security-opt seccomp=unconfined."""
    assert host_access(record_of(name, SecurityOpt=['seccomp=unconfined'])) == [
        dict(allow='security_options', item='security option seccomp=unconfined')]


def test_a_default_container_recorded_without_zero_valued_fields_asks_for_nothing():
    info = inspect_of()
    info['HostConfig'] = {key: value for key, value in info['HostConfig'].items()
                          if key in ('NetworkMode', 'RestartPolicy', 'LogConfig')}
    assert host_access(_containers.record_container(info, None, None)) == []
    assert host_access({}) == []
    assert host_access(dict(host_config=None, mounts=None, network_mode=None)) == []


def test_the_probe_asks_for_everything_it_was_given_in_order():
    record = record_of('member-20.10.json', **PROBE_HOST_CONFIG)
    record['mounts'] = [dict(type=mount['Type'], name=mount.get('Name'), source=mount['Source'],
                             destination=mount['Destination'], driver=mount.get('Driver'), rw=mount['RW'])
                        for mount in PROBE_MOUNTS]
    assert found(record) == [
        ('binds', 'bind mount /etc -> /host-etc (ro)'),
        ('volumes', 'volume probe-vol -> /data (not carried by the archive)'),
        ('capabilities', 'capability NET_ADMIN'),
        ('capabilities', 'capability SYS_ADMIN'),
        ('devices', 'device /dev/fuse'),
        ('devices', 'device cgroup rule c 10:200 rwm'),
        ('host_namespaces', 'pid mode host'),
        ('host_namespaces', 'ipc mode host'),
        ('host_namespaces', 'uts mode host'),
        ('host_namespaces', 'cgroup parent /evil'),
        ('security_options', 'security option seccomp=unconfined'),
        ('security_options', 'security option label=disable'),
        ('security_options', 'security option apparmor=unconfined'),
        ('sysctls', 'sysctl net.ipv4.ip_forward=1'),
        ('drivers', 'log driver syslog'),
        ('oom_score', 'OOM score adjustment -500'),
    ]
    assert found(record, carried=['probe-vol'])[1] == ('capabilities', 'capability NET_ADMIN')


# -- binds and volumes ----------------------------------------------------------------------------------

@pytest.mark.parametrize('binds, expected', [
    (['/etc:/host-etc'], [('binds', 'bind mount /etc -> /host-etc')]),
    (['/var/run/docker.sock:/var/run/docker.sock:ro,z'],
     [('binds', 'bind mount /var/run/docker.sock -> /var/run/docker.sock (ro,z)')]),
    (['pgdata:/var/lib/postgresql/data'],
     [('volumes', 'volume pgdata -> /var/lib/postgresql/data (not carried by the archive)')]),
    (['carried:/data', '/data'], []),  # a carried volume, an anonymous one
    ('/etc:/x', [('binds', 'bind mount /etc -> /x')]),  # a lone string is read as a list of one
    (['', ':/x', 'noslash', None], [('binds', 'bind  (not source:destination)'),
                                    ('binds', 'bind :/x (not source:destination)'),
                                    ('binds', 'bind noslash (not source:destination)'),
                                    ('binds', 'bind null (not source:destination)')]),
    (42, [('binds', 'HostConfig.Binds is 42, not a list')]),
])
def test_binds(binds, expected):
    assert found(record_of(Binds=binds), carried=['carried']) == expected


@pytest.mark.parametrize('mount, expected', [
    ({'Type': 'bind', 'Source': '/', 'Target': '/host', 'ReadOnly': True}, [('binds', 'bind mount / -> /host (ro)')]),
    ({'Type': 'volume', 'Source': 'other-app', 'Target': '/data'},
     [('volumes', 'volume other-app -> /data (not carried by the archive)')]),
    ({'Type': 'volume', 'Source': 'carried', 'Target': '/data'}, []),
    ({'Type': 'volume', 'Target': '/anon'}, []),
    ({'Type': 'tmpfs', 'Target': '/t', 'TmpfsOptions': {'SizeBytes': 1 << 20}}, []),
    ({'Type': 'npipe', 'Source': '/run/x', 'Target': '/x'},
     [('binds', 'mount of type npipe: /run/x -> /x (only bind, volume and tmpfs mounts are known here)')]),
    ({'Type': 'image', 'Source': 'secret-image:1', 'Target': '/img'},
     [('binds', 'mount of type image: secret-image:1 -> /img (only bind, volume and tmpfs mounts are known here)')]),
    ({'Source': '/etc', 'Target': '/x'},
     [('binds', 'mount of type null: /etc -> /x (only bind, volume and tmpfs mounts are known here)')]),
    ({'Type': 'volume', 'Source': 7, 'Target': '/x'}, [('volumes', 'volume 7 -> /x (not a name)')]),
    ('bind', [('binds', 'mount bind (not an object)')]),
])
def test_mounts(mount, expected):
    assert found(record_of(Mounts=[mount]), carried=[{'name': 'carried'}]) == expected


def test_volumes_from_and_mounts_that_are_not_a_list():
    assert items(VolumesFrom=['db:ro', 'cache']) == [('binds', 'volumes from container db:ro'),
                                                     ('binds', 'volumes from container cache')]
    assert items(VolumesFrom={'db': 1}) == [('binds', 'HostConfig.VolumesFrom is {"db": 1}, not a list')]
    assert items(Mounts=5) == [('binds', 'HostConfig.Mounts is 5, not a list')]


# -- capabilities, devices, privileged -----------------------------------------------------------------

@pytest.mark.parametrize('cap_add, expected', [
    (['SYS_ADMIN'], ['capability SYS_ADMIN']),
    (['CAP_SYS_ADMIN', 'cap_sys_admin', 'sys_admin'], ['capability SYS_ADMIN']),
    (['ALL'], ['capability ALL']),
    (['CAP_CHOWN', 'KILL', 'net_bind_service', 'CAP_AUDIT_WRITE'], []),
    ('NET_ADMIN', ['capability NET_ADMIN']),
    ([None, ''], ['capability null (not a name)', 'capability  (not a name)']),
    (42, ['HostConfig.CapAdd is 42, not a list']),
])
def test_cap_add(cap_add, expected):
    assert items(CapAdd=cap_add) == [('capabilities', item) for item in expected]


def test_the_old_capabilities_list():
    assert items(Capabilities=['CAP_CHOWN', 'CAP_KILL', 'CAP_SYS_PTRACE']) == [
        ('capabilities', 'capability SYS_PTRACE')]
    assert items(Capabilities=list('CAP_' + name for name in _host_access.DEFAULT_CAPABILITIES)) == []


@pytest.mark.parametrize('host_config, expected', [
    (dict(Devices=PROBE_HOST_CONFIG['Devices']), ['device /dev/fuse']),
    (dict(Devices=[{'PathOnHost': '/dev/sda', 'PathInContainer': '/dev/xvda', 'CgroupPermissions': 'r'}]),
     ['device /dev/sda -> /dev/xvda']),
    (dict(Devices=['/dev/kvm']), ['device /dev/kvm']),
    (dict(DeviceCgroupRules=['b *:* rwm']), ['device cgroup rule b *:* rwm']),
    (dict(DeviceRequests=GPUS_ALL), ['device request all devices, capabilities [["gpu"]]']),
    (dict(DeviceRequests=[{'Driver': 'nvidia', 'DeviceIDs': ['0', '1']}]),
     ['device request driver nvidia, ids ["0", "1"]']),
    (dict(DeviceRequests=[{}]), ["device request (the driver's default)"]),
    (dict(Devices={'x': 1}), ['HostConfig.Devices is {"x": 1}, not a list']),
    (dict(DeviceRequests=3), ['HostConfig.DeviceRequests is 3, not a list']),
])
def test_devices(host_config, expected):
    assert items(**host_config) == [('devices', item) for item in expected]


def test_privileged():
    assert items(Privileged=True) == [('privileged', 'privileged mode')]
    # What the engine records for --privileged: label=disable comes with it, masked paths go.
    assert items(Privileged=True, SecurityOpt=['label=disable'], MaskedPaths=None, ReadonlyPaths=None) == [
        ('privileged', 'privileged mode')]
    assert items(Privileged='yes') == [
        ('privileged', 'privileged mode (HostConfig.Privileged is yes, not true or false)')]
    assert items(Privileged=0) == [('privileged', 'privileged mode (HostConfig.Privileged is 0, not true or false)')]


# -- namespaces -------------------------------------------------------------------------------------------

@pytest.mark.parametrize('field, value, expected', [
    ('NetworkMode', 'host', 'network mode host'),
    ('PidMode', 'host', 'pid mode host'),
    ('IpcMode', 'host', 'ipc mode host'),
    ('UTSMode', 'host', 'uts mode host'),
    ('UsernsMode', 'host', 'user namespace mode host'),
    ('CgroupParent', '/system.slice', 'cgroup parent /system.slice'),
    ('PidMode', 'container:db', 'pid mode container:db (the namespace of another container of this host)'),
    ('IpcMode', 'container:db', 'ipc mode container:db (the namespace of another container of this host)'),
    ('PidMode', 'weird', 'pid mode weird (not a mode known here)'),
    ('CgroupnsMode', 'other', 'cgroup namespace mode other (not a mode known here)'),
    ('Cgroup', 'host', 'cgroup host'),
    ('UTSMode', 3, 'uts mode 3 (HostConfig.UTSMode is not a text)'),
])
def test_host_namespaces(field, value, expected):
    assert items(**{field: value}) == [('host_namespaces', expected)]


@pytest.mark.parametrize('field, value', [
    ('NetworkMode', 'container:holder'), ('NetworkMode', 'bridge'), ('NetworkMode', 'none'),
    ('NetworkMode', 'default'), ('NetworkMode', 'nh-appnet'), ('IpcMode', 'shareable'), ('IpcMode', 'none'),
    ('IpcMode', 'private'), ('CgroupnsMode', 'host'), ('CgroupnsMode', 'private'), ('CgroupnsMode', ''),
    ('UsernsMode', ''), ('PidMode', ''), ('CgroupParent', ''), ('Cgroup', ''),
])
def test_ordinary_namespaces(field, value):
    assert items(**{field: value}) == []


def test_the_records_own_network_mode():
    record = record_of(NetworkMode='host')
    assert record['network_mode'] == 'host'
    assert found(record) == [('host_namespaces', 'network mode host')]  # once
    record = record_of()
    record['network_mode'] = 'host'
    assert found(record) == [('host_namespaces', 'network mode host')]
    record['network_mode'] = ['host']
    assert found(record) == [('host_namespaces', 'network mode ["host"] (the record\'s network_mode is not a text)')]


# -- security options -------------------------------------------------------------------------------------

CUSTOM_SECCOMP = '{"defaultAction": "SCMP_ACT_ALLOW"}'  # --security-opt seccomp=FILE sends the file's text


@pytest.mark.parametrize('option, expected', [
    ('seccomp=unconfined', 'seccomp=unconfined'),
    ('seccomp:unconfined', 'seccomp:unconfined'),
    ('seccomp=' + CUSTOM_SECCOMP, 'seccomp=(a custom profile, %d characters)' % len(CUSTOM_SECCOMP)),
    ('apparmor=unconfined', 'apparmor=unconfined'),
    ('apparmor=my-loose-profile', 'apparmor=my-loose-profile'),
    ('label=disable', 'label=disable'),
    ('label=type:spc_t', 'label=type:spc_t'),
    ('label:level:s0:c1,c2', 'label:level:s0:c1,c2'),
    ('systempaths=unconfined', 'systempaths=unconfined'),
    ('writable-cgroups=true', 'writable-cgroups=true'),
    ('something-new=1', 'something-new=1'),
    (7, '7 (not a text)'),
])
def test_security_options(option, expected):
    assert items(SecurityOpt=[option]) == [('security_options', 'security option ' + expected)]


@pytest.mark.parametrize('option', ['no-new-privileges', 'no-new-privileges:true', 'no-new-privileges=false',
                                    'no-new-privileges:false', 'apparmor=docker-default', 'seccomp=builtin',
                                    'writable-cgroups=false'])
def test_ordinary_security_options(option):
    assert items(SecurityOpt=[option]) == []


def test_security_opt_that_is_not_a_list():
    assert items(SecurityOpt={'seccomp': 'unconfined'}) == [
        ('security_options', 'HostConfig.SecurityOpt is {"seccomp": "unconfined"}, not a list')]


@pytest.mark.parametrize('masked', [list(MASKED_ON_EVERY_ENGINE), list(DEFAULT_MASKED_PATHS),
                                    list(reversed(DEFAULT_MASKED_PATHS)) + ['/proc/extra'], None])
def test_masked_paths_every_engine_reports(masked):
    assert items(MaskedPaths=masked) == []


def test_masked_and_readonly_paths_that_unmask():
    masked = [path for path in DEFAULT_MASKED_PATHS if path not in ('/proc/kcore', '/sys/firmware')]
    assert items(MaskedPaths=masked) == [('security_options', 'masked paths without /proc/kcore, /sys/firmware')]
    # --security-opt systempaths=unconfined, as the engine records it
    assert items(MaskedPaths=[], ReadonlyPaths=[]) == [
        ('security_options', 'masked paths: none (by default: %s)' % ', '.join(MASKED_ON_EVERY_ENGINE)),
        ('security_options', 'read-only paths: none (by default: %s)' % ', '.join(DEFAULT_READONLY_PATHS))]
    assert items(ReadonlyPaths=['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sysrq-trigger']) == [
        ('security_options', 'read-only paths without /proc/sys')]
    assert items(MaskedPaths='/proc/kcore') == [
        ('security_options', 'masked paths /proc/kcore (HostConfig.MaskedPaths is not a list)')]
    assert items(ReadonlyPaths=0) == [
        ('security_options', 'read-only paths 0 (HostConfig.ReadonlyPaths is not a list)')]


def test_runtime_annotations():
    assert items(Annotations={'org.criu.config': '/etc/shadow'}) == [
        ('security_options', 'runtime annotation org.criu.config=/etc/shadow')]
    assert items(Annotations={}) == []
    assert items(Annotations=['x']) == [('security_options', 'runtime annotations ["x"] (not an object)')]


# -- sysctls, drivers, OOM score, links ----------------------------------------------------------------------

def test_sysctls():
    assert items(Sysctls={'net.ipv4.ip_forward': '1', 'kernel.shm_rmid_forced': '1'}) == [
        ('sysctls', 'sysctl net.ipv4.ip_forward=1'), ('sysctls', 'sysctl kernel.shm_rmid_forced=1')]
    assert items(Sysctls={}) == []
    assert items(Sysctls=['net.ipv4.ip_forward=1']) == [
        ('sysctls', 'sysctls ["net.ipv4.ip_forward=1"] (HostConfig.Sysctls is not an object)')]


@pytest.mark.parametrize('log_type, expected', [
    ('syslog', ['log driver syslog']), ('journald', ['log driver journald']), ('gelf', ['log driver gelf']),
    ('json-file', []), ('local', []), ('none', []), ('', []), (None, []), (5, ['log driver 5']),
])
def test_log_drivers(log_type, expected):
    assert items(LogConfig={'Type': log_type, 'Config': {}}) == [('drivers', item) for item in expected]


def test_volume_drivers():
    assert items(VolumeDriver='flocker') == [('drivers', 'volume driver flocker (HostConfig.VolumeDriver)')]
    assert items(VolumeDriver='local') == []
    mount = {'Type': 'volume', 'Source': 'shared', 'Target': '/s',
             'VolumeOptions': {'DriverConfig': {'Name': 'rexray'}}}
    record = record_of(Mounts=[mount])
    record['mounts'] = [dict(type='volume', name='shared', source='/var/lib/docker/volumes/shared/_data',
                             destination='/s', driver='rexray', rw=True)]
    assert found(record, carried=['shared']) == [('drivers', 'volume driver rexray (volume shared)')]  # once
    local_bind = dict(mount, Source='etc', VolumeOptions={'DriverConfig': {
        'Name': 'local', 'Options': {'type': 'none', 'o': 'bind', 'device': '/etc'}}})
    assert found(record_of(Mounts=[local_bind]), carried=['etc']) == [
        ('drivers', 'volume driver options type=none,o=bind,device=/etc (volume etc)')]
    assert found(record_of(Mounts=[dict(mount, VolumeOptions='x')]), carried=['shared']) == [
        ('drivers', 'volume options x (volume shared; not an object)')]
    assert items(LogConfig='syslog') == [
        ('drivers', 'log configuration syslog (HostConfig.LogConfig is not an object)')]


def test_recorded_mounts_that_cannot_be_read():
    record = record_of()
    record['mounts'] = 'x'
    assert found(record) == [('drivers', 'recorded mounts x (not a list)')]
    record['mounts'] = [None]
    assert found(record) == [('drivers', 'recorded mount null (not an object)')]


@pytest.mark.parametrize('value, expected', [
    (-500, ['OOM score adjustment -500']), (-1000, ['OOM score adjustment -1000']), (0, []), (500, []),
    (None, []), ('-5', ['OOM score adjustment -5 (not a number)']),
    (True, ['OOM score adjustment true (not a number)']),
])
def test_oom_score(value, expected):
    assert items(OomScoreAdj=value) == [('oom_score', item) for item in expected]


def test_links():
    assert items(Links=['/db:/web/db']) == [('links', 'link /db:/web/db')]
    assert items(Links=[]) == []
    assert items(Links=1) == [('links', 'HostConfig.Links is 1, not a list')]


# -- odd input: never a traceback, never silence ----------------------------------------------------------

ODD_VALUES = (None, 0, -1, 1.5, True, 'x', '', [], [None], [1], [[]], [{}], {}, {'a': None}, {'Type': 5}, '\x00\n')


@pytest.mark.parametrize('value', ODD_VALUES, ids=repr)
def test_any_value_of_any_field_is_read_without_a_traceback(value):
    """The record is the archive's (not record_container's output): any field may hold anything."""
    fields = set(inspect_of()['HostConfig']) | set(PROBE_HOST_CONFIG) | {'Capabilities', 'Annotations', 'Links'}
    for field in sorted(fields):
        record = record_of()
        record['host_config'][field] = copy.deepcopy(value)
        for entry in host_access(record, carried_volumes=[value, {'name': value}]):
            assert entry['allow'] in ALLOW_CHOICES and '\n' not in entry['item'] and '\x00' not in entry['item']
        record['host_config'][field] = [copy.deepcopy(value)]
        host_access(record)
        info = inspect_of()
        info['HostConfig'][field] = copy.deepcopy(value)
        effective(info)
    for key in ('host_config', 'mounts', 'network_mode', 'config'):
        host_access(dict(record_of(), **{key: copy.deepcopy(value)}))
        host_access(dict(record_of(), mounts=[{key: copy.deepcopy(value)}]))
    effective(dict(inspect_of(), Mounts=[value]))


@pytest.mark.parametrize('record', [None, 'x', 5, ['host_config']], ids=repr)
def test_a_record_that_is_not_an_object_is_refused(record):
    assert [entry['allow'] for entry in host_access(record)] == ['privileged']


def test_a_host_config_that_is_not_an_object_is_refused():
    record = record_of()
    record['host_config'] = ['Privileged', True]
    assert [entry['allow'] for entry in host_access(record)] == ['privileged']


def test_text_from_the_archive_stays_on_one_short_line():
    (entry,) = host_access(record_of(Binds=['/etc\n[privileged] ok:/x' + 'y' * 300]))
    assert entry['item'].startswith('bind mount /etc\\n[privileged] ok -> /xyyy')
    assert '\n' not in entry['item'] and len(entry['item']) < 300


# -- refused and the message ------------------------------------------------------------------------------

ITEMS = [dict(allow='binds', item='bind mount /etc -> /host-etc'),
         dict(allow='binds', item='bind mount /srv -> /srv'),
         dict(allow='capabilities', item='capability SYS_ADMIN'),
         dict(allow='security_options', item='security option seccomp=unconfined')]


def test_refused():
    assert refused(ITEMS, ['binds', 'security_options']) == [ITEMS[2]]
    assert refused(ITEMS, None) == ITEMS
    assert refused(ITEMS, list(ALLOW_CHOICES)) == []
    assert refused([], []) == []


def test_refusal_msg_names_every_missing_allow_name_once():
    msg = refusal_msg('/srv/web.tar.zst', ITEMS, ['security_options'])
    assert msg.startswith('The archive /srv/web.tar.zst asks for access to this host that the import does not allow: '
                          '[binds] bind mount /etc -> /host-etc; [binds] bind mount /srv -> /srv; '
                          '[capabilities] capability SYS_ADMIN. ')
    assert 'add to allow: [binds, capabilities];' in msg
    assert 'seccomp' not in msg and 'security_options' not in msg
    assert 'Nothing was created.' in msg and 'checksum' in msg
    for name in ('binds', 'capabilities'):
        assert msg.split('add to allow: ')[1].count(name) == 1
    assert '\n' not in msg


def test_refusal_msg_of_a_real_record():
    record = record_of('member-20.10.json', **PROBE_HOST_CONFIG)
    msg = refusal_msg('/a.tar', host_access(record), [])
    assert ('add to allow: [binds, volumes, capabilities, devices, host_namespaces, security_options, sysctls, '
            'drivers, oom_score];') in msg


def test_allow_choices():
    assert len(set(ALLOW_CHOICES)) == len(ALLOW_CHOICES)
    assert ALLOW_CHOICES[:9] == ('binds', 'volumes', 'capabilities', 'devices', 'privileged', 'host_namespaces',
                                 'security_options', 'sysctls', 'drivers')
    assert len(_host_access.DEFAULT_CAPABILITIES) == 14
    assert set(MASKED_ON_EVERY_ENGINE) == set(inspect_of('member-20.10.json')['HostConfig']['MaskedPaths'])
    assert set(DEFAULT_MASKED_PATHS) == set(inspect_of('member-28.5.json')['HostConfig']['MaskedPaths'])
    assert list(DEFAULT_READONLY_PATHS) == inspect_of('member-20.10.json')['HostConfig']['ReadonlyPaths']


# -- what a created container has -------------------------------------------------------------------------

def test_effective_of_a_default_container():
    assert effective(inspect_of('holder-28.5.json')) == dict(
        mounts=[], capabilities_added=[], capabilities_dropped=[], privileged=False,
        namespaces=dict(network='nh-appnet', pid='private', ipc='private', uts='private', userns='default',
                        cgroupns='host'),
        security_options=[], devices=[], sysctls={}, log_driver='json-file')


def test_effective_of_the_probe():
    info = inspect_of('member-20.10.json')
    info['HostConfig'].update(copy.deepcopy(PROBE_HOST_CONFIG), CapDrop=['NET_RAW'], DeviceRequests=GPUS_ALL,
                              Privileged=True)
    info['Mounts'] = copy.deepcopy(PROBE_MOUNTS)
    assert effective(info) == dict(
        mounts=[dict(type='bind', source='/etc', destination='/host-etc', rw=False),
                dict(type='volume', source='probe-vol', destination='/data', rw=True),
                dict(type='tmpfs', source='', destination='/t', rw=True)],
        capabilities_added=['CAP_NET_ADMIN', 'CAP_SYS_ADMIN'], capabilities_dropped=['NET_RAW'], privileged=True,
        namespaces=dict(network=info['HostConfig']['NetworkMode'], pid='host', ipc='host', uts='host',
                        userns='default', cgroupns='host'),
        security_options=['seccomp=unconfined', 'label=disable', 'apparmor=unconfined'],
        devices=['/dev/fuse', 'cgroup rule c 10:200 rwm', 'request all devices, capabilities [["gpu"]]'],
        sysctls={'net.ipv4.ip_forward': '1'}, log_driver='syslog')


@pytest.mark.parametrize('inspect', [None, {}, {'HostConfig': 'x', 'Mounts': 'y'}, {'Mounts': [None, 5]}], ids=repr)
def test_effective_of_odd_input(inspect):
    result = effective(inspect)
    assert result['mounts'] == [] and result['privileged'] is False and result['log_driver'] == ''
