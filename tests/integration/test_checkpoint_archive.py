"""Portable checkpoint archives, for real: docker_checkpoint_export on one engine of the simulated fleet,
docker_checkpoint_import on another where the container never existed, and Debian's checkpointctl reading
an archive the module wrote.

- The counter moves: the imported container prints the numbers that follow the last one the source printed
  (one unbroken run), the restore is verified, a second export and a second import change nothing.
- A web server that wrote its page at run time (and deleted a file of its image) moves with its image in the
  archive (the image exists only on the source engine: it was committed there): the target loads it, creates
  the container, writes the page back, deletes the file, restores, and the page is served through the new
  published port.
- checkpointctl 1.3.0 (Debian trixie, run through trixie's own loader on Debian 12) shows the counter's process
  tree (sh and sleep) from the archive.
- Four clones of one archive of a warmed-up web server, imported at once next to the running original (publish:
  remap): each restored and verified, serving the run-time page on a host port of its own, counting on.
- An archive written on Docker 20.10 resumes on Docker 26.1 and, on the host network, on Docker 28.5, whose
  restore of a container with a network namespace of its own is broken: there the import refuses such an
  archive before it creates anything.

zstd (Debian package zstd) is installed when missing: the archives are zstd-compressed by default.
"""

import concurrent.futures
import os
import shutil
import subprocess
import time
import uuid

import re

import docker
import pytest

import fleet as testbed_fleet
from helpers import COUNTER, IMAGE, ROOT, call_module, counter, counter_lines, free_port, wait_counter, wait_http

CHECKPOINTCTL = 'checkpointctl=1.3.0+ds1-2+b5'
TRIXIE_LIBC = 'libc6=2.41-12+deb13u5'
DEBIAN_CACHE = os.path.join(ROOT, '.cache', 'debian')
ARCHIVE_STATE = os.path.join(ROOT, '.cache', 'debian-archive')


@pytest.fixture(scope='module')
def zstd():
    """The zstd program, installed from Debian's archive when missing (as the export's auto compression needs)."""
    path = shutil.which('zstd')
    if path is None:
        env = dict(os.environ, DEBIAN_FRONTEND='noninteractive')
        if subprocess.run(['apt-get', 'install', '-y', '-qq', 'zstd'], env=env, check=False).returncode:
            subprocess.run(['apt-get', 'update', '-qq'], env=env, check=True)
            subprocess.run(['apt-get', 'install', '-y', '-qq', 'zstd'], env=env, check=True)
        path = shutil.which('zstd')
    assert path, 'zstd could not be installed'
    return path


@pytest.fixture(scope='module')
def checkpointctl():
    """argv prefix that runs Debian's checkpointctl 1.3.0 through trixie's loader and libc (Debian 12's glibc is
    too old for it), both unpacked into .cache/debian by scripts/debian-archive.sh."""
    proc = subprocess.run([os.path.join(ROOT, 'scripts', 'debian-archive.sh'), 'unpack', DEBIAN_CACHE, CHECKPOINTCTL,
                           TRIXIE_LIBC], capture_output=True, text=True, env=dict(os.environ, STATE=ARCHIVE_STATE),
                          check=False)
    assert proc.returncode == 0, 'cannot fetch checkpointctl and libc6 from Debian\'s archive: ' + proc.stderr[-2000:]
    tool_dir, libc_dir = proc.stdout.split()
    libc = os.path.join(libc_dir, 'usr', 'lib', 'x86_64-linux-gnu')
    return [os.path.join(libc, 'ld-linux-x86-64.so.2'), '--library-path', libc,
            os.path.join(tool_dir, 'usr', 'bin', 'checkpointctl')]


@pytest.fixture
def pair(fleet):
    """Containers (and images) made on fleet-1 and fleet-2 by a test, removed afterwards on both."""
    made = dict(containers=set(), images=set())
    yield made
    for host in ('fleet-1', 'fleet-2'):
        client = fleet.clients[host]
        for name in made['containers']:
            try:
                client.remove_container(name, force=True)
            except docker.errors.NotFound:
                pass
        for image in made['images']:
            try:
                client.remove_image(image, force=True)
            except docker.errors.NotFound:
                pass


def export(fleet, host, **args):
    result = call_module('docker_checkpoint_export', dict(args, docker_host=fleet.docker_host(host)))
    assert not result.get('failed'), result.get('msg', result)
    return result


# The test containers run with Docker's defaults (its seccomp profile too), which an import takes without an
# allow; the counter of the first test runs with seccomp=unconfined (as Docker's checkpoint documentation has
# it), host access that an import refuses unless allowed by name.
UNCONFINED = ['security_options']


def import_(fleet, host, **args):
    result = call_module('docker_checkpoint_import', dict(args, docker_host=fleet.docker_host(host)))
    assert not result.get('failed'), result.get('msg', result)
    return result


def test_the_counter_moves_to_an_engine_where_it_never_existed(fleet, pair, archives, zstd, checkpointctl):
    source, target = fleet.clients['fleet-1'], fleet.clients['fleet-2']
    name = 'archive-counter-%s' % uuid.uuid4().hex[:6]
    pair['containers'].add(name)
    source.create_container(IMAGE, ['/bin/sh', '-c', COUNTER], name=name, stop_timeout=1,
                            host_config=source.create_host_config(
                                security_opt=['seccomp=unconfined'], restart_policy={'Name': 'unless-stopped'}))
    source.start(name)
    wait_counter(source, name, 3)
    path = os.path.join(archives, name + '.tar.zst')

    started = time.monotonic()
    exported = export(fleet, 'fleet-1', container=name, checkpoint='move', path=path)
    export_wall = time.monotonic() - started
    assert exported['changed'] and exported['checkpoint_taken'], exported
    assert exported['archive']['compression'] == 'zstd' and os.stat(path).st_mode & 0o777 == 0o600
    assert exported['source']['criu'].startswith('4.2') and exported['source']['architecture'] == 'amd64'
    # Stopped at the checkpoint, its restart policy held (docker_checkpoint's guarantees).
    assert not source.inspect_container(name)['State']['Running']
    assert source.inspect_container(name)['HostConfig']['RestartPolicy']['Name'] == 'no'
    frozen = counter_lines(source, name)
    assert frozen == list(range(len(frozen))), frozen
    assert not [n for n in os.listdir(archives) if n != os.path.basename(path)], 'temporary files left'

    again = export(fleet, 'fleet-1', container=name, checkpoint='move', path=path)
    assert again['changed'] is False

    # checkpointctl reads the archive: the counter's shell and its sleep.
    shown = subprocess.run(checkpointctl + ['inspect', path, '--ps-tree'], capture_output=True, text=True, check=False)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r'Process tree\n\s+\S+ \[1\]\s+sh\n\s+\S+ \[\d+\]\s+sleep\n', shown.stdout), shown.stdout
    assert name in shown.stdout or exported['checkpoint']['container_id'][:12] in shown.stdout, shown.stdout
    assert IMAGE in shown.stdout
    print(shown.stdout)

    with pytest.raises(docker.errors.NotFound):
        target.inspect_container(name)
    # Its seccomp=unconfined reaches into the host: refused unless the operator allows it by name.
    refused = call_module('docker_checkpoint_import', dict(path=path, docker_host=fleet.docker_host('fleet-2')))
    assert refused.get('failed') and refused['reason'] == 'host_access', refused
    assert refused['allow_missing'] == ['security_options'] and 'seccomp=unconfined' in refused['msg'], refused
    with pytest.raises(docker.errors.NotFound):
        target.inspect_container(name)
    started = time.monotonic()
    imported = import_(fleet, 'fleet-2', path=path, checksum=exported['archive']['sha256'], allow=UNCONFINED)
    assert imported['host_access'] == [dict(allow='security_options', item='security option seccomp=unconfined')]
    assert 'seccomp=unconfined' in imported['container']['effective']['security_options'], imported['container']
    import_wall = time.monotonic() - started
    assert imported['changed'] and imported['action'] == 'import', imported
    assert imported['restored'] is True and imported['verified'] is True, imported
    info = target.inspect_container(name)
    assert info['State']['Running']
    assert info['Config']['Labels']['cryo.docker.archive'] == exported['archive']['sha256']
    # The restart policy it had before the checkpoint held it.
    assert info['HostConfig']['RestartPolicy']['Name'] == 'unless-stopped'
    wait_counter(target, name, frozen[-1] + 3)
    moved = counter_lines(target, name)
    assert moved == list(range(frozen[-1] + 1, frozen[-1] + 1 + len(moved))), (frozen[-1], moved)
    assert imported['checkpoint_removed'] is True

    again = import_(fleet, 'fleet-2', path=path, allow=UNCONFINED)
    assert again['changed'] is False and again['verified'] is True
    assert target.inspect_container(name)['Id'] == info['Id']
    staging = os.path.join(target.info()['DockerRootDir'], 'cryo-import')
    assert not os.path.isdir(staging) or os.listdir(staging) == []
    print('counter: export %.2f s (checkpoint %.2f s, archive %.2f s, %d bytes), import %.2f s (restore %.2f s); '
          'playbook wall %.1f / %.1f s' % (
              exported['total_duration'], exported['checkpoint_duration'], exported['duration'],
              exported['archive']['size'], imported['import_duration'] + imported['duration'], imported['duration'],
              export_wall, import_wall))


WEB = ('mkdir -p /www; httpd -f -p 80 -h /www & sleep 1; echo {page} > /www/index.html; '
       '/bin/busybox rm /bin/date; i=0; while true; do i=$(expr $i + 1); sleep 1; done')


def test_a_web_server_with_its_run_time_page_and_image_moves(fleet, pair, archives, zstd):
    source, target = fleet.clients['fleet-1'], fleet.clients['fleet-2']
    name = 'archive-web-%s' % uuid.uuid4().hex[:6]
    page = 'page-written-at-run-time-%s' % uuid.uuid4().hex[:8]
    # An image only fleet-1 has: the archive must carry it.
    base = 'archive-base-%s' % uuid.uuid4().hex[:6]
    pair['containers'].update({name, base})
    source.create_container(IMAGE, ['/bin/sh', '-c', 'echo built > /www/built.txt'], name=base)
    source.start(base)
    source.wait(base)
    repository = 'cryo-test/archive-only'
    tag = uuid.uuid4().hex[:8]
    source.commit(base, repository=repository, tag=tag)
    image = '%s:%s' % (repository, tag)
    pair['images'].add(image)
    assert not target.images(name=image)

    port, new_port = free_port(), free_port()
    source.create_container(image, ['/bin/sh', '-c', WEB.format(page=page)], name=name, stop_timeout=1, ports=[80],
                            host_config=source.create_host_config(port_bindings={80: ('127.0.0.1', port)}))
    source.start(name)
    assert wait_http(port) == page
    path = os.path.join(archives, name + '.tar.zst')
    exported = export(fleet, 'fleet-1', container=name, checkpoint='move', path=path, include_image=True)
    assert exported['image']['carried'] and exported['image']['reference'] == image
    assert exported['file_changes']['deleted'] == 1 and exported['file_changes']['added'] >= 1, exported
    assert not source.inspect_container(name)['State']['Running']

    imported = import_(fleet, 'fleet-2', path=path, published_ports=['127.0.0.1:%d:80' % new_port])
    assert imported['changed'] and imported['image']['loaded'] is True, imported
    assert imported['restored'] and imported['verified'], imported
    assert target.images(name=image), 'the image is loaded and tagged on the target'
    assert wait_http(new_port) == page
    assert wait_http(new_port, '/built.txt') == 'built'
    # The file it deleted from its image is deleted on the target too (an overlay2 whiteout).
    with pytest.raises(docker.errors.NotFound):
        target.get_archive(name, '/bin/date')
    assert 'deleted 1 files of the image (overlay2 whiteouts)' in imported['steps']
    print('web: steps %s; archive %d bytes; import %.2f s (restore %.2f s)'
          % (imported['steps'], exported['archive']['size'], imported['import_duration'], imported['duration']))


def test_check_mode_of_an_import_creates_nothing(fleet, pair, archives, zstd):
    source, target = fleet.clients['fleet-1'], fleet.clients['fleet-2']
    name = 'archive-check-%s' % uuid.uuid4().hex[:6]
    pair['containers'].add(name)
    source.create_container(IMAGE, ['/bin/sh', '-c', COUNTER], name=name, stop_timeout=1)
    source.start(name)
    wait_counter(source, name, 1)
    path = os.path.join(archives, name + '.tar.gz')
    exported = export(fleet, 'fleet-1', container=name, checkpoint='snap', path=path, leave_running=True,
                      compression='gzip')
    assert source.inspect_container(name)['State']['Running'], 'leave_running keeps it running'
    result = call_module('docker_checkpoint_import', dict(path=path, docker_host=fleet.docker_host('fleet-2')),
                         check=True, diff=True)
    assert result['changed'] and not result.get('failed'), result
    assert result['container']['name'] == name and result['container']['id'] is None
    assert result['steps'][-1] == 'would restore it from checkpoint snap'
    with pytest.raises(docker.errors.NotFound):
        target.inspect_container(name)
    # A clone under another name next to the still running source's twin.
    clone = import_(fleet, 'fleet-2', path=path, container=name + '-clone', published_ports=[])
    pair['containers'].add(name + '-clone')
    assert clone['verified'] is True and clone['archive']['compression'] == 'gzip'
    low = counter(source, name)
    wait_counter(target, name + '-clone', 2)
    assert counter_lines(target, name + '-clone')[0] <= low + 1
    assert exported['archive']['checkpoint'] == 'snap'


@pytest.mark.parametrize('kind', ['26.1', '28.5'])
def test_an_archive_of_docker_20_10_resumes_on_a_newer_engine(fleet, pair, archives, zstd, kind):
    source = fleet.clients['fleet-1']
    network = None if testbed_fleet.ENGINES[kind]['bridge_restores'] else 'host'
    name = 'archive-%s-%s' % (kind.replace('.', ''), uuid.uuid4().hex[:6])
    pair['containers'].add(name)
    source.create_container(IMAGE, ['/bin/sh', '-c', COUNTER], name=name, stop_timeout=1,
                            host_config=source.create_host_config(network_mode=network))
    source.start(name)
    wait_counter(source, name, 2)
    with testbed_fleet.Engine('cryo-archive-%s' % kind.replace('.', ''), kind=kind) as engine:
        engine.up()
        engine.load_image()
        if network:
            # A bridge container of the same engine is refused there before anything is created.
            bridged = name + '-bridge'
            pair['containers'].add(bridged)
            source.create_container(IMAGE, ['/bin/sh', '-c', COUNTER], name=bridged, stop_timeout=1)
            source.start(bridged)
            bridged_path = os.path.join(archives, bridged + '.tar.zst')
            export(fleet, 'fleet-1', container=bridged, checkpoint='move', path=bridged_path, leave_running=True)
            refused = call_module('docker_checkpoint_import', dict(path=bridged_path, docker_host=engine.docker_host))
            assert refused.get('failed') and refused.get('reason') == 'unrestorable', refused
            assert 'cannot be restored on this engine, so it was not created' in refused['msg']
            assert not engine.client().containers(all=True)
        path = os.path.join(archives, name + '.tar.zst')
        export(fleet, 'fleet-1', container=name, checkpoint='move', path=path)
        last = counter(source, name)
        imported = call_module('docker_checkpoint_import', dict(path=path, docker_host=engine.docker_host,
                                                                allow=['host_namespaces'] if network else []))
        assert imported.get('changed') and not imported.get('failed'), imported.get('msg', imported)
        assert imported['restored'] and imported['verified'], imported
        target = engine.client()
        assert target.version()['Version'].startswith(kind)
        wait_counter(target, name, last + 2)
        moved = counter_lines(target, name)
        assert moved == list(range(last + 1, last + 1 + len(moved))), (last, moved)
        target.remove_container(name, force=True)


# A slow starter with state: warms up, writes its page at run time, serves it, and counts.
WARM_UP = 4
WARM_APP = ('sleep %d; mkdir -p /www; echo {page} > /www/index.html; httpd -f -p 80 -h /www & '
            'i=0; while true; do echo $i; i=$(expr $i + 1); sleep 1; done' % WARM_UP)
CLONES = 4


def test_four_warm_clones_of_one_archive_answer_each_on_its_own_port(fleet, pair, archives, zstd):
    """One archive of a warmed-up web server, imported four times at once next to the running original (publish:
    remap): each clone is restored from the checkpoint and verified, serves the page written at run time on a host
    port of its own, and counts on from where the original was at the checkpoint."""
    engine = fleet.clients['fleet-1']
    name = 'archive-warm-%s' % uuid.uuid4().hex[:6]
    page = 'warm-page-%s' % uuid.uuid4().hex[:8]
    clones = ['%s-clone-%d' % (name, index) for index in range(1, CLONES + 1)]
    pair['containers'].update([name] + clones)
    port = free_port()
    engine.create_container(IMAGE, ['/bin/sh', '-c', WARM_APP.format(page=page)], name=name, stop_timeout=1,
                            ports=[80], host_config=engine.create_host_config(
                                port_bindings={80: ('127.0.0.1', port)}))
    started = time.monotonic()
    engine.start(name)
    assert wait_http(port, timeout=WARM_UP + 15) == page
    cold = time.monotonic() - started

    path = os.path.join(archives, name + '.tar.zst')
    before = counter(engine, name)
    exported = export(fleet, 'fleet-1', container=name, checkpoint='warm', path=path, leave_running=True)
    after = counter(engine, name)
    assert engine.inspect_container(name)['State']['Running'], 'leave_running keeps the original running'

    def clone(clone_name):
        began = time.monotonic()
        result = call_module('docker_checkpoint_import', dict(
            path=path, checksum=exported['archive']['sha256'], container=clone_name, publish='remap',
            docker_host=fleet.docker_host('fleet-1')))
        assert not result.get('failed'), result.get('msg', result)
        [bound] = result['container']['bound_ports']
        clone_port = int(bound.split(':')[1])
        assert wait_http(clone_port) == page
        return result, clone_port, time.monotonic() - began

    # All at once: each restore runs in namespaces of its own (PIDs, the listening socket), only host ports differ.
    with concurrent.futures.ThreadPoolExecutor(CLONES) as pool:
        done = list(pool.map(clone, clones))
    ports = {clone_port for _result, clone_port, _wall in done}
    assert len(ports) == CLONES and port not in ports, ports
    for clone_name, (result, clone_port, _wall) in zip(clones, done):
        assert result['changed'] and result['restored'] and result['verified'], result
        assert result['container']['published_ports'] == ['127.0.0.1::80/tcp']
        wait_counter(engine, clone_name, after + 2)
        lines = counter_lines(engine, clone_name)
        # Resumed, not started afresh: it counts on from the checkpoint, in one unbroken run.
        assert before + 1 <= lines[0] <= after + 1 and lines == list(range(lines[0], lines[0] + len(lines))), lines
    assert wait_http(port) == page, 'the original still serves'
    print('warm clones: cold start to ready %.2f s; archive %d bytes (checkpoint %d bytes); %d clones at once: '
          'module restore %s s, import %s s, wall to ready %s s' % (
              cold, exported['archive']['size'], exported['checkpoint']['size'], CLONES,
              [result['duration'] for result, _port, _wall in done],
              [result['import_duration'] for result, _port, _wall in done],
              ['%.2f' % wall for _result, _port, wall in done]))
