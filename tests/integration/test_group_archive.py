"""Issue 23's acceptance for a group in one archive: a Compose project moved to another engine through one file.

The project of test_groups.py (redis, a worker RPUSHing 0, 1, 2 ... over ONE TCP connection to it, nginx; Compose's
labels, a network of its own with fixed addresses) on the main engine (Docker 20.10) is exported as one group
archive (docker_checkpoint_export project: ..., tcp_established, the images carried): the group is checkpointed as
one point in time and stops. On a Docker 26.1 engine of the test bed, where the project's network exists (same name
and subnet) but nothing else, docker_checkpoint_import brings the project back whole: every member created under its
name and restored as one group, each verified; the worker's connection to redis is the same one (redis's CLIENT LIST
id), the list has no gap, redis's run and nginx's accepts carry on. A second import changes nothing. Before that,
the same file with one member left out (its identity and manifest rewritten, as a forger would) is refused with
nothing created.
"""

import copy
import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
import uuid

import docker
import pytest

from helpers import FleetBed, call_module, ok
from test_groups import TCP, assert_carried_on, running_project, snapshot

KIND = '26.1'


@pytest.fixture(scope='module')
def target():
    yield from FleetBed.running('the group archive\'s target engine', prefix=os.environ.get('CRYO_GA_PREFIX', 'cryo-ga'),
                                kinds=[KIND])


@pytest.fixture
def shop(engine):
    """The project on the main engine: redis, the worker on one connection to it, nginx; removed afterwards."""
    yield from running_project(engine, apps=('redis', 'nginx'))


class Target:
    """The project as the target engine sees it. Its network is made there once the source's is gone: both engines
    run on this one machine, and two bridges of one subnet would share the host's route to it (another host has
    its own)."""

    def __init__(self, shop, target):
        self.view = copy.copy(shop)
        self.view.client = target.clients[KIND]
        self.view.docker_host = target.docker_host(KIND)
        self.bridge = 'cryo-ga%s' % uuid.uuid4().hex[:4]
        self.rule = ['FORWARD', '-i', self.bridge, '-o', self.bridge, '-j', 'ACCEPT']
        self.made = False

    def make_network(self):
        """The project's network (same name and subnet), on a bridge the main engine's FORWARD DROP lets the
        members talk over."""
        shop = self.view
        shop.client.create_network(shop.network, driver='bridge', labels={'com.docker.compose.project': shop.name},
                                   options={'com.docker.network.bridge.name': self.bridge},
                                   ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(
                                       subnet=shop.subnet + '.0/24')]))
        subprocess.run(['iptables', '-I'] + self.rule, check=True)
        self.made = True

    def remove(self):
        if not self.made:
            return
        subprocess.run(['iptables', '-D'] + self.rule, check=False)
        for name in self.view.names.values():
            try:
                self.view.client.remove_container(name, force=True)
            except docker.errors.NotFound:
                pass
        self.view.client.remove_network(self.view.network)


@pytest.fixture
def moved(shop, target):
    made = Target(shop, target)
    try:
        yield made
    finally:
        made.remove()


def leave_one_out(path, out, member):
    """The group archive at path rewritten without member: cryo-group.json and manifest.json made to agree, as a
    forger would."""
    with tarfile.open(path) as tar:
        members = {info.name: tar.extractfile(info).read() for info in tar.getmembers() if info.isreg()}
    identity = json.loads(members['cryo-group.json'])
    identity['members'] = [entry for entry in identity['members'] if entry['name'] != member]
    members['cryo-group.json'] = json.dumps(identity).encode()
    kept = {name: data for name, data in members.items() if member not in name and name != 'manifest.json'}
    manifest = dict(format=1, members={name: dict(size=len(data), sha256=hashlib.sha256(data).hexdigest())
                                       for name, data in kept.items()})
    with tarfile.open(out, 'w') as tar:
        for name, data in [('cryo-group.json', kept.pop('cryo-group.json'))] + sorted(kept.items()) + [
                ('manifest.json', json.dumps(manifest).encode())]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out


def test_a_project_moves_to_another_engine_in_one_archive(shop, moved, tmp_path):
    path = str(tmp_path / 'shop.tar')
    before = snapshot(shop)
    started = time.monotonic()
    exported = ok(call_module('docker_checkpoint_export', dict(project=shop.name, checkpoint='move', path=path,
                                                               include_image=True, **TCP)))
    assert exported['checkpoint_taken'] is True and exported['group']['members'] == shop.members(), exported['group']
    assert 0 < exported['group']['frozen_seconds'] < 10
    assert [entry['container'] for entry in exported['results']] == shop.members()
    assert not any(shop.running().values()), 'the source stops at the group\'s checkpoint'
    with tarfile.open(path) as tar:
        names = tar.getnames()
    assert names[0] == 'cryo-group.json' and names[-1] == 'manifest.json'
    assert sorted(names[1:-1]) == sorted(['members'] + ['members/%s.tar.zst' % name for name in shop.members()])

    # The source host's part is done: its containers and network go (another host, on this one machine).
    shop.remove()
    moved.make_network()
    moved = moved.view

    # One member left out, identity and manifest recomputed: refused, nothing created on the target.
    forged = leave_one_out(path, str(tmp_path / 'forged.tar'), shop.names['worker'])
    refused = call_module('docker_checkpoint_import', dict(path=forged, docker_host=moved.docker_host))
    assert refused['failed'] is True and 'Traceback' not in refused['msg'], refused
    assert 'not of these containers' in refused['msg'], refused['msg']
    assert not [c for c in moved.client.containers(all=True) if c['Names'][0].lstrip('/') in shop.members()]

    imported = ok(call_module('docker_checkpoint_import', dict(path=path, docker_host=moved.docker_host)))
    assert imported['changed'] is True and imported['group']['members'] == shop.members(), imported['group']
    assert [entry['container']['name'] for entry in imported['restore']] == shop.members()
    assert all(entry['verified'] is True for entry in imported['restore']), imported['restore']
    assert {entry['criu_options'].get('tcp_established') for entry in imported['restore']} == {True}
    print('moved: frozen %.3f s at the source; restored on %s through %s'
          % (exported['group']['frozen_seconds'], KIND, ', '.join(entry['method'] for entry in imported['restore'])))
    assert_carried_on(moved, before, time.monotonic() - started)
    assert {moved.client.inspect_container(name)['HostConfig']['RestartPolicy']['Name']
            for name in shop.members()} == {'unless-stopped'}, 'the recorded restart policies are put back'

    again = ok(call_module('docker_checkpoint_import', dict(path=path, docker_host=moved.docker_host)))
    assert again['changed'] is False, again
