# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""What a recorded container asks of the host it is imported on, beyond what a container gets by default.

An archive is untrusted input: anyone can rewrite its container.json and recompute every checksum. The
import creates the container from that record (_containers.create_body passes its HostConfig on as is), so
before anything is created it compares the record with a default container and refuses whatever reaches
into the host, unless the operator allows it by name. `host_access` lists what the record asks for, each
item under one of these names (ALLOW_CHOICES), which is also the order of the list:

binds             bind mounts of host paths: HostConfig.Binds entries whose source is an absolute path,
                  HostConfig.Mounts of Type bind, and of a type that is not bind, volume or tmpfs (npipe,
                  cluster, image: each names something of the host too); HostConfig.VolumesFrom (the volumes
                  of other containers of this host).
volumes           named volumes the container mounts that the archive does not bring (carried_volumes): a
                  Binds entry whose source is a name, a Mounts entry of Type volume with a Source. Any other
                  named volume would attach one that already exists on this host: another application's data.
capabilities      HostConfig.CapAdd entries beyond Docker's default set (DEFAULT_CAPABILITIES; CAP_X, X and
                  ALL are understood), and entries of the old HostConfig.Capabilities list beyond it.
devices           HostConfig.Devices, DeviceCgroupRules and DeviceRequests (GPUs and the like).
privileged        HostConfig.Privileged true.
host_namespaces   the host's namespaces: NetworkMode, PidMode, IpcMode, UTSMode and UsernsMode host;
                  PidMode and IpcMode container:NAME (see below); Cgroup set; CgroupParent set (a cgroup of
                  the host's choosing).
security_options  HostConfig.SecurityOpt entries that weaken confinement: seccomp=unconfined or a custom
                  seccomp profile (builtin names the default one), apparmor=unconfined or a profile other than
                  docker-default, every label (SELinux) option, systempaths=unconfined, writable-cgroups=true,
                  and any option not known here; no-new-privileges is fine. MaskedPaths or ReadonlyPaths
                  recorded without one of the entries every supported engine has (MASKED_ON_EVERY_ENGINE,
                  DEFAULT_READONLY_PATHS; an empty list is what systempaths=unconfined records): that unmasks
                  a part of the host's /proc or /sys. HostConfig.Annotations, which the runtime reads as
                  options (runc's org.criu.config names a CRIU configuration file of the host).
sysctls           HostConfig.Sysctls, any.
drivers           volume and log drivers, which act on the host: HostConfig.VolumeDriver other than local;
                  Mounts whose VolumeOptions.DriverConfig names a driver other than local or has options (the
                  local driver's type, o and device mount a host directory, a block device or a share); the
                  recorded mounts' drivers other than local (an import creates a carried volume with it);
                  LogConfig.Type other than json-file, local and none.
oom_score         HostConfig.OomScoreAdj below 0: the host's OOM killer then picks the host's own processes
                  (sshd, dockerd, other containers) before this container's; -1000 makes it unkillable.
links             HostConfig.Links (legacy links): the linked container of this host is named, and on the
                  default bridge its whole environment, secrets included, is copied into this container's.

Judgment calls, against false refusals of ordinary containers:
- NetworkMode container:NAME is not listed: joining a network holder is what holders are for. PidMode and
  IpcMode container:NAME are: a shared PID namespace gives the other container's files (/proc/PID/root) and
  environment to processes of the same user, a shared IPC namespace its shared memory.
- CgroupnsMode host is not listed: it is the engine's default on a cgroup v1 host (every container there
  records it, Docker 20.10 and 28.5 alike), and what it shows of the host is read-only (the cgroup tree).
- MaskedPaths: older engines mask fewer paths than newer ones (20.10 and 23.0 neither /proc/interrupts nor
  /sys/devices/virtual/powercap, 28.5 both); only a list without an entry of the 20.10 set is listed.
- A record, or a host_config, that is not an object cannot be checked: it is listed under privileged, the
  name that allows anything.
- label=disable is not listed for a privileged container: the engine adds it to every one (Docker 20.10).
- Resource settings are not listed: PidsLimit, Ulimits, Memory, CPU and block I/O limits only narrow or
  match what a default container has (no limit); PortBindings are the import's publish option's business;
  Runtime names a runtime the host's operator registered.

Every check fails closed: a field of the wrong type, or a value not known here, is listed as an item of
its name, never ignored; nothing here raises on an odd record. `checkpoint_access` does the same for what
the checkpoint's own core images would give its threads (CRIU restores capabilities, the seccomp mode and the
OOM score from them, not from the configuration). `refused` keeps the items the operator did not allow,
`refusal_msg` says so; `effective` reads back what a created container really has.
"""

from __future__ import annotations

import json

ALLOW_CHOICES = ('binds', 'volumes', 'capabilities', 'devices', 'privileged', 'host_namespaces',
                 'security_options', 'sysctls', 'drivers', 'oom_score', 'links')

# moby's oci/defaults.go (oci/caps since 23.0): the capabilities every container has.
DEFAULT_CAPABILITIES = ('CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID',
                        'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE')

# The paths Docker 28.5 masks, as inspect reports them; 20.10 and 23.0 mask the others only, without
# /proc/interrupts and /sys/devices/virtual/powercap (moby's oci/defaults.go).
DEFAULT_MASKED_PATHS = ('/proc/asound', '/proc/acpi', '/proc/interrupts', '/proc/kcore', '/proc/keys',
                        '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug',
                        '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap')
MASKED_ON_EVERY_ENGINE = tuple(path for path in DEFAULT_MASKED_PATHS
                               if path not in ('/proc/interrupts', '/sys/devices/virtual/powercap'))
DEFAULT_READONLY_PATHS = ('/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger')

LOCAL_LOG_DRIVERS = ('', 'json-file', 'local', 'none')
TEXT_LIMIT = 120


# -- reading untrusted values --------------------------------------------------------------------------

def _text(value, limit=TEXT_LIMIT):
    """value as one short printable line: a string as it is, anything else as JSON; control characters
    escaped (an archive's text must not add lines to a message), cut at limit characters."""
    if not isinstance(value, str):
        try:
            value = json.dumps(value, sort_keys=True, default=repr)
        except (TypeError, ValueError):
            value = repr(value)
    value = ''.join(char if char.isprintable() else ascii(char)[1:-1] for char in value)
    return value if len(value) <= limit else value[:limit] + '...'


def _listed(value):
    """The entries of a recorded list: [] for None, [value] for a string (the Engine API takes a lone string
    for a list of strings in places), None when it is neither a list nor that."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        return [value]
    return None


def _not_list(field, value):
    return 'HostConfig.%s is %s, not a list' % (field, _text(value))


def _mapping(value):
    """A recorded object: {} for None, None when it is not an object."""
    if value is None:
        return {}
    return value if isinstance(value, dict) else None


def _not_text(value):
    return not (value is None or isinstance(value, str))


# -- the checks, one per kind of field -----------------------------------------------------------------

def _binds(host_config, carried):
    binds = _listed(host_config.get('Binds'))
    if binds is None:
        yield 'binds', _not_list('Binds', host_config.get('Binds'))
        binds = []
    for bind in binds:
        parts = bind.split(':') if isinstance(bind, str) else []
        if len(parts) == 1 and parts[0].startswith('/'):
            continue  # a destination alone: an anonymous volume, made new
        if len(parts) < 2 or not parts[0]:
            yield 'binds', 'bind %s (not source:destination)' % _text(bind)
            continue
        source, destination, options = parts[0], parts[1], ':'.join(parts[2:])
        if source.startswith('/'):
            yield 'binds', 'bind mount %s -> %s%s' % (_text(source), _text(destination),
                                                      ' (%s)' % _text(options) if options else '')
        elif source not in carried:
            yield 'volumes', _volume_item(source, destination)


def _volume_item(name, destination):
    return 'volume %s -> %s (not carried by the archive)' % (_text(name), _text(destination))


def _mounts(host_config, carried):
    mounts = _listed(host_config.get('Mounts'))
    if mounts is None:
        yield 'binds', _not_list('Mounts', host_config.get('Mounts'))
        mounts = []
    for mount in mounts:
        if not isinstance(mount, dict):
            yield 'binds', 'mount %s (not an object)' % _text(mount)
            continue
        kind, source, target = mount.get('Type'), mount.get('Source'), mount.get('Target')
        if kind == 'bind':
            yield 'binds', 'bind mount %s -> %s%s' % (_text(source), _text(target),
                                                      ' (ro)' if mount.get('ReadOnly') is True else '')
        elif kind == 'volume':
            if _not_text(source):
                yield 'volumes', 'volume %s -> %s (not a name)' % (_text(source), _text(target))
            elif source and source not in carried:
                yield 'volumes', _volume_item(source, target)
            yield from _mount_driver(mount, source or '(anonymous)')
        elif kind != 'tmpfs':
            yield 'binds', 'mount of type %s: %s -> %s (only bind, volume and tmpfs mounts are known here)' % (
                _text(kind), _text(source), _text(target))


def _mount_driver(mount, name):
    options = _mapping(mount.get('VolumeOptions'))
    driver = _mapping((options or {}).get('DriverConfig'))
    if options is None or driver is None:
        yield 'drivers', 'volume options %s (volume %s; not an object)' % (
            _text(mount.get('VolumeOptions')), _text(name))
        return
    if driver.get('Name') not in (None, '', 'local'):
        yield 'drivers', 'volume driver %s (volume %s)' % (_text(driver.get('Name')), _text(name))
    if driver.get('Options'):
        opts = driver['Options']
        shown = ','.join('%s=%s' % (key, value) for key, value in opts.items()) if isinstance(opts, dict) else opts
        yield 'drivers', 'volume driver options %s (volume %s)' % (_text(shown), _text(name))


def _volumes_from(host_config):
    sources = _listed(host_config.get('VolumesFrom'))
    if sources is None:
        yield 'binds', _not_list('VolumesFrom', host_config.get('VolumesFrom'))
        return
    for source in sources:
        yield 'binds', 'volumes from container %s' % _text(source)


def _capability(entry):
    """A capability's name as Docker's default set spells it (SYS_ADMIN for cap_sys_admin), or None."""
    if not isinstance(entry, str):
        return None
    name = entry.strip().upper()
    return name[4:] if name.startswith('CAP_') else name


def _capabilities(host_config):
    for field in ('CapAdd', 'Capabilities'):
        entries = _listed(host_config.get(field))
        if entries is None:
            yield 'capabilities', _not_list(field, host_config.get(field))
            continue
        for entry in entries:
            name = _capability(entry)
            if name is None or not name:
                yield 'capabilities', 'capability %s (not a name)' % _text(entry)
            elif name not in DEFAULT_CAPABILITIES:
                yield 'capabilities', 'capability %s' % _text(name)


def _device_request(request):
    if not isinstance(request, dict):
        return _text(request)
    parts = []
    if request.get('Driver'):
        parts.append('driver %s' % _text(request['Driver']))
    count = request.get('Count')
    if count == -1:
        parts.append('all devices')
    elif count:
        parts.append('%s devices' % _text(count))
    if request.get('DeviceIDs'):
        parts.append('ids %s' % _text(request['DeviceIDs']))
    if request.get('Capabilities'):
        parts.append('capabilities %s' % _text(request['Capabilities']))
    if request.get('Options'):
        parts.append('options %s' % _text(request['Options']))
    return ', '.join(parts) or '(the driver\'s default)'


def _device_texts(host_config):
    """(ok, text) for each device the container is given; ok False for a field or entry that cannot be read."""
    devices = _listed(host_config.get('Devices'))
    if devices is None:
        yield False, _not_list('Devices', host_config.get('Devices'))
        devices = []
    for device in devices:
        if isinstance(device, dict):
            on_host, inside = device.get('PathOnHost'), device.get('PathInContainer')
            yield True, 'device %s%s' % (_text(on_host), ' -> %s' % _text(inside)
                                         if inside and inside != on_host else '')
        else:
            yield isinstance(device, str), 'device %s' % _text(device)
    rules = _listed(host_config.get('DeviceCgroupRules'))
    if rules is None:
        yield False, _not_list('DeviceCgroupRules', host_config.get('DeviceCgroupRules'))
        rules = []
    for rule in rules:
        yield isinstance(rule, str), 'device cgroup rule %s' % _text(rule)
    requests = _listed(host_config.get('DeviceRequests'))
    if requests is None:
        yield False, _not_list('DeviceRequests', host_config.get('DeviceRequests'))
        requests = []
    for request in requests:
        yield isinstance(request, dict), 'device request %s' % _device_request(request)


def _devices(host_config):
    for _ok, text in _device_texts(host_config):
        yield 'devices', text


def _privileged(host_config):
    value = host_config.get('Privileged')
    if value is True:
        yield 'privileged', 'privileged mode'
    elif value is not None and value is not False:
        yield 'privileged', 'privileged mode (HostConfig.Privileged is %s, not true or false)' % _text(value)


# field, label, the values that are a default container's (besides '' and None), whether container:NAME is
# one of them.
NAMESPACES = (
    ('NetworkMode', 'network mode', None, True),  # None: any network name
    ('PidMode', 'pid mode', ('private',), False),
    ('IpcMode', 'ipc mode', ('private', 'shareable', 'none'), False),
    ('UTSMode', 'uts mode', ('private',), False),
    ('UsernsMode', 'user namespace mode', ('private',), False),
    ('CgroupnsMode', 'cgroup namespace mode', ('private', 'host'), False),
    ('Cgroup', 'cgroup', (), False),
)


def _host_namespaces(host_config, record):
    for field, label, fine, joins in NAMESPACES:
        value = host_config.get(field)
        if value is None or value == '':
            continue
        if not isinstance(value, str):
            yield 'host_namespaces', '%s %s (HostConfig.%s is not a text)' % (label, _text(value), field)
        elif value == 'host' and field != 'CgroupnsMode':
            yield 'host_namespaces', '%s host' % label
        elif value.startswith('container:'):
            if not joins:
                yield 'host_namespaces', '%s %s (the namespace of another container of this host)' % (
                    label, _text(value))
        elif fine is not None and value not in fine:
            yield 'host_namespaces', '%s %s (not a mode known here)' % (label, _text(value))
    mode = record.get('network_mode')
    if mode == 'host':
        yield 'host_namespaces', 'network mode host'
    elif _not_text(mode):
        yield 'host_namespaces', 'network mode %s (the record\'s network_mode is not a text)' % _text(mode)
    parent = host_config.get('CgroupParent')
    if parent:
        yield 'host_namespaces', 'cgroup parent %s' % _text(parent)


def _security_option(option):
    """The text of a SecurityOpt entry that weakens confinement, or None when it does not."""
    if not isinstance(option, str):
        return '%s (not a text)' % _text(option)
    key, sep, value = option.partition('=')
    if not sep:
        key, sep, value = option.partition(':')
    key, value = key.strip(), value.strip()
    if key == 'no-new-privileges':
        return None
    if key == 'seccomp' and value == 'builtin':
        return None
    if key == 'seccomp' and value != 'unconfined':
        return 'seccomp=(a custom profile, %d characters)' % len(value)
    if key == 'apparmor' and value == 'docker-default':
        return None
    if key == 'writable-cgroups' and value.lower() in ('false', '0'):
        return None
    return _text(option)


def _security_options(host_config):
    options = _listed(host_config.get('SecurityOpt'))
    if options is None:
        yield 'security_options', _not_list('SecurityOpt', host_config.get('SecurityOpt'))
        options = []
    for option in options:
        text = _security_option(option)
        if text == 'label=disable' and host_config.get('Privileged') is True:
            continue  # the engine adds it to every privileged container: privileged mode is listed
        if text:
            yield 'security_options', 'security option %s' % text
    for field, label, needed in (('MaskedPaths', 'masked paths', MASKED_ON_EVERY_ENGINE),
                                 ('ReadonlyPaths', 'read-only paths', DEFAULT_READONLY_PATHS)):
        value = host_config.get(field)
        paths = _listed(value) if not isinstance(value, str) else None
        if value is None:
            continue
        if paths is None:
            yield 'security_options', '%s %s (HostConfig.%s is not a list)' % (label, _text(value), field)
        elif not paths:
            yield 'security_options', '%s: none (by default: %s)' % (label, ', '.join(needed))
        else:
            missing = [path for path in needed if path not in paths]
            if missing:
                yield 'security_options', '%s without %s' % (label, ', '.join(missing))
    annotations = _mapping(host_config.get('Annotations'))
    if annotations is None:
        yield 'security_options', 'runtime annotations %s (not an object)' % _text(host_config.get('Annotations'))
        annotations = {}
    for key, value in annotations.items():
        yield 'security_options', 'runtime annotation %s=%s' % (_text(key), _text(value))


def _sysctls(host_config):
    sysctls = _mapping(host_config.get('Sysctls'))
    if sysctls is None:
        yield 'sysctls', 'sysctls %s (HostConfig.Sysctls is not an object)' % _text(host_config.get('Sysctls'))
        return
    for key, value in sysctls.items():
        yield 'sysctls', 'sysctl %s=%s' % (_text(key), _text(value))


def _drivers(host_config, record):
    driver = host_config.get('VolumeDriver')
    if driver not in (None, '', 'local'):
        yield 'drivers', 'volume driver %s (HostConfig.VolumeDriver)' % _text(driver)
    mounts = _listed(record.get('mounts'))
    if mounts is None or isinstance(record.get('mounts'), str):
        yield 'drivers', 'recorded mounts %s (not a list)' % _text(record.get('mounts'))
        mounts = []
    for mount in mounts:
        if not isinstance(mount, dict):
            yield 'drivers', 'recorded mount %s (not an object)' % _text(mount)
        elif mount.get('driver') not in (None, '', 'local'):
            yield 'drivers', 'volume driver %s (volume %s)' % (
                _text(mount.get('driver')), _text(mount.get('name') or '(anonymous)'))
    log_config = _mapping(host_config.get('LogConfig'))
    if log_config is None:
        yield 'drivers', 'log configuration %s (HostConfig.LogConfig is not an object)' % _text(
            host_config.get('LogConfig'))
    elif log_config.get('Type') not in (None,) + LOCAL_LOG_DRIVERS:
        yield 'drivers', 'log driver %s' % _text(log_config.get('Type'))


def _oom_score(host_config):
    value = host_config.get('OomScoreAdj')
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        yield 'oom_score', 'OOM score adjustment %s (not a number)' % _text(value)
    elif value < 0:
        yield 'oom_score', 'OOM score adjustment %d' % value


def _links(host_config):
    links = _listed(host_config.get('Links'))
    if links is None:
        yield 'links', _not_list('Links', host_config.get('Links'))
        return
    for link in links:
        yield 'links', 'link %s' % _text(link)


# -- the API -----------------------------------------------------------------------------------------------

def host_access(record, carried_volumes=()):
    """What the recorded container (container.json's dict) asks of this host beyond a default container:
    [{'allow': one of ALLOW_CHOICES, 'item': what exactly}], by ALLOW_CHOICES order, then as recorded.

    carried_volumes: the names of the named volumes the archive carries and the import creates (a name or a
    dict with 'name'); any other named volume the container mounts is listed under volumes."""
    if not isinstance(record, dict):
        return [dict(allow='privileged', item='the recorded container is %s, not an object: it cannot be checked, '
                     'and privileged mode is what allows anything' % _text(record, 40))]
    carried = set()
    for volume in carried_volumes or ():
        name = volume.get('name') if isinstance(volume, dict) else volume
        if isinstance(name, str):
            carried.add(name)
    host_config = record.get('host_config')
    found = []
    if host_config is not None and not isinstance(host_config, dict):
        found.append(('privileged', 'the recorded host_config is %s, not an object: it cannot be checked, and '
                                    'privileged mode is what allows anything' % _text(host_config, 40)))
    host_config = host_config if isinstance(host_config, dict) else {}
    for check in (_binds(host_config, carried), _mounts(host_config, carried), _volumes_from(host_config),
                  _capabilities(host_config), _devices(host_config), _privileged(host_config),
                  _host_namespaces(host_config, record), _security_options(host_config), _sysctls(host_config),
                  _drivers(host_config, record), _oom_score(host_config), _links(host_config)):
        found.extend(check)
    items = []
    for allow, item in sorted(found, key=lambda pair: ALLOW_CHOICES.index(pair[0])):
        entry = dict(allow=allow, item=item)
        if entry not in items:
            items.append(entry)
    return items


# Linux's capability numbers (linux/capability.h), for the bit masks CRIU's images record.
CAPABILITY_NUMBERS = (
    'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
    'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
    'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
    'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
    'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
    'CHECKPOINT_RESTORE')


def _given_capabilities(host_config):
    """The capabilities the container's configuration gives its processes: Docker's default set with CapAdd and
    without CapDrop; None for every capability (privileged, or ALL added)."""
    added = {_capability(entry) for entry in _listed(host_config.get('CapAdd')) or []}
    if host_config.get('Privileged') is True or 'ALL' in added:
        return None
    dropped = {_capability(entry) for entry in _listed(host_config.get('CapDrop')) or []}
    if 'ALL' in dropped:
        return added
    return (set(DEFAULT_CAPABILITIES) | added) - dropped


def _confined_by_seccomp(host_config):
    options = [option for option in _listed(host_config.get('SecurityOpt')) or [] if isinstance(option, str)]
    unconfined = any(option.replace(':', '=', 1).replace(' ', '') == 'seccomp=unconfined' for option in options)
    return not (unconfined or host_config.get('Privileged') is True)


def synced_by_leader(thread, threads, leaders, tsync):
    """Whether a thread with no seccomp mode of its own gets its process's filter: CRIU restores the leader's filter
    with SECCOMP_FILTER_FLAG_TSYNC (tsync: those filter indices), which the kernel puts on every thread. leaders:
    {thread id: its process's pid} (pstree.img); threads: the thread_credentials of every core image."""
    name = thread.get('name') or ''
    tid = name[len('core-'):-len('.img')] if name.startswith('core-') and name.endswith('.img') else ''
    leader = leaders.get(int(tid)) if tid.isdigit() else None
    if leader is None or str(leader) == tid:
        return False
    lead = next((item for item in threads if item.get('name') == 'core-%d.img' % leader), None)
    return bool(lead and lead.get('seccomp') == 2 and lead.get('seccomp_filters')
                and set(lead['seccomp_filters']) <= set(tsync))


def checkpoint_access(threads, record, leaders=None, tsync=()):
    """What the checkpoint's own images would give its processes beyond what the recorded configuration gives the
    container: CRIU restores each thread's capability sets, seccomp mode and OOM score adjustment from them, not
    from the configuration, so a forged image could hand a process CAP_SYS_ADMIN in a container without it.

    threads: _images.thread_credentials of every core image; leaders and tsync: _images.thread_leaders and
    tsync_filters (a thread without a mode of its own is confined when its leader's filter is synced to it). Items
    in host_access's form: a capability no
    configuration item gives (capabilities), a thread without the seccomp filter the container runs with
    (security_options), an OOM score adjustment below the container's (oom_score), an image that cannot be
    read for them (privileged, failing closed)."""
    host_config = record.get('host_config') if isinstance(record, dict) else None
    host_config = host_config if isinstance(host_config, dict) else {}
    given = _given_capabilities(host_config)
    confined = _confined_by_seccomp(host_config)
    floor = host_config.get('OomScoreAdj') if isinstance(host_config.get('OomScoreAdj'), int) else 0
    found = []
    for thread in threads:
        name = _text(thread.get('name'), 40)
        for label, mask in sorted((thread.get('capabilities') or {}).items()):
            if mask is None:
                found.append(('privileged', 'checkpoint %s: its %s capability set cannot be read' % (name, label)))
                continue
            held = {CAPABILITY_NUMBERS[bit] if bit < len(CAPABILITY_NUMBERS) else 'capability %d' % bit
                    for bit in range(64) if mask >> bit & 1}
            extra = sorted(held - given) if given is not None else []
            if extra:
                found.append(('capabilities', 'checkpoint %s holds %s in its %s set, which the container is not '
                                              'given' % (name, ', '.join(extra), label)))
        if confined and thread.get('seccomp') != 2 and not (
                thread.get('seccomp') == 0 and synced_by_leader(thread, threads, leaders or {}, tsync)):
            found.append(('security_options', 'checkpoint %s runs without the seccomp filter the container has '
                                              '(seccomp mode %s)' % (name, thread.get('seccomp'))))
        oom = thread.get('oom_score_adj')
        if isinstance(oom, int) and oom < min(floor, 0):
            found.append(('oom_score', 'checkpoint %s has OOM score adjustment %d' % (name, oom)))
    items = []
    for allow, item in sorted(found, key=lambda pair: ALLOW_CHOICES.index(pair[0])):
        entry = dict(allow=allow, item=item)
        if entry not in items:
            items.append(entry)
    return items


def refused(items, allow):
    """The items whose category the operator did not allow (allow: the names given, None for none)."""
    allowed = set(allow or ())
    return [item for item in items if item['allow'] not in allowed]


def refusal_msg(path, items, allow):
    """Why an import refuses the archive at path: the items allow does not cover, each with the name that
    would allow it, why that matters, and what to do."""
    left = refused(items, allow)
    names = [name for name in ALLOW_CHOICES if any(item['allow'] == name for item in left)]
    names += sorted(set(item['allow'] for item in left) - set(names))
    listed = '; '.join('[%s] %s' % (item['allow'], item['item']) for item in left)
    return ('The archive %s asks for access to this host that the import does not allow: %s. An archive can be '
            'rewritten with every checksum agreeing, so an import gives the container only what a default container '
            'has and what allow names. Nothing was created. If you trust this archive and its container should have '
            'this, add to allow: [%s]; otherwise export the container again without it.'
            % (path, listed, ', '.join(names)))


def effective(inspect):
    """What a created container really has, from its inspect (GET /containers/{id}/json), for the module's
    result: its mounts (from inspect's Mounts: a volume's source is its name), capabilities added and dropped,
    privileged mode, namespaces, security options, devices, sysctls and log driver."""
    inspect = inspect if isinstance(inspect, dict) else {}
    host_config = _mapping(inspect.get('HostConfig')) or {}
    mounts = []
    for mount in _listed(inspect.get('Mounts')) or []:
        if isinstance(mount, dict):
            volume = mount.get('Type') == 'volume' and mount.get('Name')
            mounts.append(dict(type=mount.get('Type'), source=mount.get('Name') if volume else mount.get('Source'),
                               destination=mount.get('Destination'), rw=mount.get('RW') is not False))

    def texts(field):
        return [_text(entry) for entry in _listed(host_config.get(field)) or []]

    def mode(field, default):
        value = host_config.get(field)
        return _text(value) if value else default

    log_config = _mapping(host_config.get('LogConfig')) or {}
    sysctls = _mapping(host_config.get('Sysctls')) or {}
    return dict(
        mounts=mounts,
        capabilities_added=texts('CapAdd'),
        capabilities_dropped=texts('CapDrop'),
        privileged=host_config.get('Privileged') is True,
        namespaces=dict(network=mode('NetworkMode', 'default'), pid=mode('PidMode', 'private'),
                        ipc=mode('IpcMode', 'private'), uts=mode('UTSMode', 'private'),
                        userns=mode('UsernsMode', 'default'), cgroupns=mode('CgroupnsMode', 'default')),
        security_options=['%s' % (_security_option(option) or _text(option))
                          for option in _listed(host_config.get('SecurityOpt')) or []],
        devices=[text[len('device '):] for ok, text in _device_texts(host_config) if ok],
        sysctls={_text(key): _text(value) for key, value in sysctls.items()},
        log_driver=_text(log_config.get('Type') or ''),
    )
