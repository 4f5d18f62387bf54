# -*- coding: utf-8 -*-
# Copyright: cryo.docker contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# PRIVATE: this file is for use by the cryo.docker collection only. It may change or go away at
# any time, without notice.

"""Talking to the Docker Engine: connection, checkpoint endpoints, errors.

Everything goes through the public surface of the docker SDK's APIClient: its wrapped calls
(inspect_container, update_container, ...) and, for the checkpoint endpoints it does not wrap, the
requests.Session methods it inherits (get, post, delete) on URLs made from its public base_url and
api_version. Tested with docker 7.1.0; docker >= 5.0 is required.
"""

from __future__ import annotations

import re
import time
import traceback

from ansible.module_utils.basic import env_fallback, missing_required_lib
from ansible.module_utils.six.moves.urllib.parse import quote

from ansible_collections.cryo.docker.plugins.module_utils._common import ModuleError, invalid_name_msg

try:
    import docker
    from docker.errors import APIError, DockerException
    from requests.exceptions import RequestException, Timeout
    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError:
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = traceback.format_exc()

    class APIError(Exception):  # type: ignore[no-redef]
        pass

    class DockerException(Exception):  # type: ignore[no-redef]
        pass

    class RequestException(Exception):  # type: ignore[no-redef]
        pass

    class Timeout(RequestException):  # type: ignore[no-redef]
        pass


# containerd answers that show up right after a checkpoint and go away on a retry. Each retry is counted under
# the first of these its answer holds (the reason in a module's `retries`): the content store's race ("failed to
# upload checkpoint: ... already exists") under 'already exists'.
TRANSIENT_ERRORS = ('already exists', 'transport is closing', 'failed to upload checkpoint')

# What docker_checkpoint names a checkpoint while the engine writes it (on a local engine, and for a retake): renamed
# to the checkpoint's own name once whole. What an engine killed half-way leaves under that name is no checkpoint.
TEMPORARY_SUFFIX = '.cryo-new'
# The directory the runtime path lets runc write a checkpoint into, beside its place, renamed once whole (a dot name:
# the engine never takes it for a checkpoint).
RUNTIME_TEMP_PREFIX = '.cryo-tmp-'

# containerd's answer when an earlier restore, whose engine was killed, left the checkpoint's tarball in its content
# store (with a gc.root label: never collected): the same bytes cannot be uploaded again until that blob is removed.
STALE_CONTENT = re.compile(r'failed to upload checkpoint.*?(sha256:[0-9a-f]{64}).*?already exists', re.IGNORECASE | re.DOTALL)

# What api_version may be: auto (the engine's own), or an Engine API version such as 1.41.
API_VERSION_RE = re.compile(r'^(auto|[0-9]+\.[0-9]+)$')

ENGINE_FIX = ('Turn it on with the cryo.docker.engine role, or set "experimental": true in '
              '/etc/docker/daemon.json and restart dockerd.')


# The connection options every engine module has, with their defaults: what a caller that builds a module's
# options itself (_lifecycle.Parameters) starts from.
CONNECTION_DEFAULTS = dict(docker_host='unix:///var/run/docker.sock', tls=False, validate_certs=False, ca_path=None,
                           client_cert=None, client_key=None, api_version='auto', timeout=60)


def connection(params):
    """The connection options of a module's params (to reach the same engine with other options)."""
    return {key: params.get(key, default) for key, default in CONNECTION_DEFAULTS.items()}


def docker_argument_spec(**options):
    """The connection options every engine module has, with the module's own options."""
    spec = dict(
        docker_host=dict(type='str', default='unix:///var/run/docker.sock', aliases=['docker_url'],
                         fallback=(env_fallback, ['DOCKER_HOST'])),
        tls=dict(type='bool', default=False, fallback=(env_fallback, ['DOCKER_TLS'])),
        validate_certs=dict(type='bool', default=False, aliases=['tls_verify'],
                            fallback=(env_fallback, ['DOCKER_TLS_VERIFY'])),
        ca_path=dict(type='path', aliases=['ca_cert', 'tls_ca_cert']),
        client_cert=dict(type='path', aliases=['tls_client_cert', 'cert_path']),
        client_key=dict(type='path', aliases=['tls_client_key', 'key_path']),
        api_version=dict(type='str', default='auto', aliases=['docker_api_version'],
                         fallback=(env_fallback, ['DOCKER_API_VERSION'])),
        timeout=dict(type='int', default=60, fallback=(env_fallback, ['DOCKER_TIMEOUT'])),
    )
    spec.update(options)
    return spec


class EngineError(ModuleError):
    """A Docker Engine answer turned into a sentence an operator can act on; the HTTP status and
    the engine's own words are kept beside it (http_status, engine_message)."""

    def __init__(self, msg, status=None, engine_message=None, **details):
        super().__init__(msg, **details)
        self.status = status
        self.engine_message = engine_message

    def fail_kwargs(self):
        out = super().fail_kwargs()
        if self.status is not None:
            out['http_status'] = self.status
        if self.engine_message:
            out['engine_message'] = self.engine_message
        return out


def stale_content_digest(message):
    """The digest of the stale blob in containerd's content store that a restore's upload collides with, or None."""
    found = STALE_CONTENT.search(message or '')
    return found.group(1) if found else None


def transient_reason(message):
    """The marker of TRANSIENT_ERRORS a transient engine answer holds (why it is retried), else None."""
    text = (message or '').lower()
    if 'checkpoint with name' in text:
        return None
    return next((marker for marker in TRANSIENT_ERRORS if marker in text), None)


# The reason a restore is tried again after the stale blob of an interrupted restore was removed from containerd's
# content store (RestoreTask.start_from_checkpoint).
STALE_CONTENT_RETRY = 'stale content removed'


def sum_retries(counts):
    """{reason: count} summed over several such dicts."""
    total = {}
    for retries in counts:
        for reason, count in (retries or {}).items():
            total[reason] = total.get(reason, 0) + count
    return total


def is_transient(message):
    return transient_reason(message) is not None


def count_retry(retries, reason):
    """One more retry for reason in a {reason: count} dict (None: not counted)."""
    if retries is not None:
        retries[reason] = retries.get(reason, 0) + 1


class Engine:
    """A thin layer over docker.APIClient with the calls this collection needs."""

    def __init__(self, params, client=None):
        self.params = params
        self.host = params.get('docker_host')
        self.timeout = params.get('timeout') or 60
        self._version = self._info = None
        self.client = client or self._connect()

    def _connect(self):
        tls_config = False
        if self.params.get('tls') or self.params.get('validate_certs'):
            cert = None
            if self.params.get('client_cert') and self.params.get('client_key'):
                cert = (self.params['client_cert'], self.params['client_key'])
            try:
                tls_config = docker.tls.TLSConfig(
                    client_cert=cert, ca_cert=self.params.get('ca_path'),
                    verify=bool(self.params.get('validate_certs')))
            except DockerException as exc:
                raise EngineError('The TLS options for the Docker Engine at %s cannot be used: %s Give client_cert and '
                                  'client_key (and ca_path) as files that exist.' % (self.host, exc))
        version = self.params.get('api_version') or 'auto'
        if not API_VERSION_RE.match(version):
            raise EngineError('api_version %r is not an Engine API version. Give one such as 1.41, or auto.' % version)
        try:
            return docker.APIClient(base_url=self.host, version=version, timeout=self.timeout, tls=tls_config)
        except ValueError as exc:
            # The docker SDK cannot read docker_host as an address (a port that is not a number, say).
            raise EngineError('docker_host %r is not the address of a Docker Engine (%s). Give one such as '
                              'unix:///var/run/docker.sock or tcp://HOST:2376.' % (self.host, exc))
        except (DockerException, RequestException) as exc:
            raise EngineError(
                'Cannot reach the Docker Engine at %s: %s. Check that dockerd is running and that '
                'docker_host points at its socket (the cryo.docker.engine role starts it).' % (self.host, exc))

    # -- raw calls -------------------------------------------------------

    def url(self, path, *args):
        """The versioned URL of an Engine API path ('/containers/{0}/checkpoints' with its arguments quoted)."""
        return '%s/v%s%s' % (self.client.base_url, self.client.api_version,
                             path.format(*[quote(arg, safe='/:') for arg in args]))

    def _request(self, method, path, *args, **kwargs):
        """A call the SDK does not wrap, through the requests.Session methods of its APIClient."""
        call = dict(GET=self.client.get, POST=self.client.post, DELETE=self.client.delete)[method]
        options = dict(params=kwargs.get('params'), timeout=self.timeout)
        if kwargs.get('data') is not None:
            options['json'] = kwargs['data']
        try:
            resp = call(self.url(path, *args), **options)
        except Timeout as exc:
            raise EngineError(
                'The Docker Engine at %s did not answer within %s seconds (%s). The operation may still be running: '
                'a CRIU checkpoint or restore that hangs shows up this way; look at the CRIU log and raise timeout '
                'for large containers.' % (self.host, self.timeout, exc), timed_out=True)
        except (DockerException, RequestException) as exc:
            raise EngineError('Cannot reach the Docker Engine at %s: %s' % (self.host, exc))
        if resp.status_code >= 400:
            try:
                message = resp.json().get('message', resp.text)
            except ValueError:
                message = resp.text
            raise EngineError(message.strip(), status=resp.status_code, engine_message=message.strip())
        return resp

    def _sdk(self, func, *args, **kwargs):
        try:
            return func(*args, **kwargs)
        except APIError as exc:
            status = exc.response.status_code if exc.response is not None else None
            message = exc.explanation or str(exc)
            if isinstance(message, bytes):
                message = message.decode('utf-8', 'replace')
            raise EngineError(str(message), status=status, engine_message=str(message))
        except (DockerException, RequestException) as exc:
            raise EngineError('Cannot reach the Docker Engine at %s: %s. Check that dockerd is running '
                              'and that docker_host points at its socket.' % (self.host, exc))

    def _sdk_or_none(self, func, *args, **kwargs):
        """_sdk, or None when the engine has no such object (404)."""
        try:
            return self._sdk(func, *args, **kwargs)
        except EngineError as exc:
            if exc.status == 404:
                return None
            raise

    def _sdk_saying(self, failure, func, *args, **kwargs):
        """_sdk, its error message prefixed with failure (what could not be done) and a colon."""
        try:
            return self._sdk(func, *args, **kwargs)
        except EngineError as exc:
            exc.msg = '%s: %s' % (failure, exc.msg)
            raise

    # -- engine ----------------------------------------------------------

    def version(self):
        """The engine's /version, asked once per module run (it does not change under a running module)."""
        if self._version is None:
            self._version = self._sdk(self.client.version)
        return self._version

    def daemon_events(self, since, until):
        """The engine's own events (reload, ...) between two times in unix seconds, oldest first."""
        return self._sdk(lambda: list(self.client.events(since=since, until=until, decode=True,
                                                         filters={'type': 'daemon'})))

    def info(self):
        """The engine's /info, asked once per module run: what the modules read of it (data root, runtimes, cgroup
        driver, live-restore) does not change under a running module, and every call costs dockerd a survey."""
        if self._info is None:
            self._info = self._sdk(self.client.info)
        return self._info

    def require_experimental(self):
        version = self.version()
        if not version.get('Experimental'):
            raise EngineError(
                'The Docker Engine at %s (version %s) is not in experimental mode, and checkpoint '
                'and restore exist only there. %s' % (self.host, version.get('Version', '?'), ENGINE_FIX))
        return version

    def data_root(self):
        return self.info().get('DockerRootDir') or '/var/lib/docker'

    # -- containers ------------------------------------------------------

    def inspect(self, container):
        try:
            return self._sdk(self.client.inspect_container, container)
        except EngineError as exc:
            if exc.status == 404:
                raise EngineError(
                    'Container %s does not exist on the Docker Engine at %s. Check the name or id '
                    '(docker_checkpoint_info lists the containers that have checkpoints).'
                    % (container, self.host), status=404, engine_message=exc.engine_message)
            raise

    def find(self, container):
        """The inspect of a container, or None when there is none of that name or id."""
        return self._sdk_or_none(self.client.inspect_container, container)

    def network(self, name):
        """The inspect of a network, or None when there is none of that name or id."""
        return self._sdk_or_none(self.client.inspect_network, name)

    def containers(self, all=True):  # pylint: disable=redefined-builtin
        return self._sdk(self.client.containers, all=all)

    def wait_stopped(self, container, timeout=None):
        """Poll until the engine no longer reports the container running (it can show Paused briefly)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            state = self.inspect(container)['State']
            if not state.get('Running') and not state.get('Paused'):
                return state
            if time.monotonic() > deadline:
                raise EngineError('Container %s is still running %s seconds after the checkpoint.'
                                  % (container, timeout or self.timeout))
            time.sleep(0.1)

    def wait_running(self, container, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            info = self.inspect(container)
            if info['State'].get('Running'):
                return info
            if time.monotonic() > deadline:
                return info
            time.sleep(0.1)

    def set_restart_policy(self, container, policy):
        policy = dict(Name=policy.get('Name') or 'no', MaximumRetryCount=policy.get('MaximumRetryCount') or 0)
        if policy['Name'] != 'on-failure':
            policy['MaximumRetryCount'] = 0
        self._sdk(self.client.update_container, container, restart_policy=policy)

    def start(self, container):
        self._sdk(self.client.start, container)

    def stop(self, container, timeout=10):
        self._sdk(self.client.stop, container, timeout=timeout)

    def pause(self, container):
        self._sdk(self.client.pause, container)

    def unpause(self, container):
        self._sdk(self.client.unpause, container)

    def kill(self, container, signal='SIGKILL'):
        self._sdk(self.client.kill, container, signal=signal)

    # -- checkpoints -----------------------------------------------------

    def list_checkpoints(self, container, checkpoint_dir=None):
        params = {'dir': checkpoint_dir} if checkpoint_dir else None
        try:
            resp = self._request('GET', '/containers/{0}/checkpoints', container, params=params)
        except EngineError as exc:
            raise self._explain(exc, container)
        # A name that starts with a dot is no checkpoint (the engine refuses such names): the runtime path's
        # temporary directory in a checkpoint_dir while runc writes it. A name that ends with TEMPORARY_SUFFIX is
        # a checkpoint being written (or what a killed engine left of one): not a checkpoint either.
        return sorted(entry['Name'] for entry in (resp.json() or [])
                      if not entry['Name'].startswith('.') and not entry['Name'].endswith(TEMPORARY_SUFFIX))

    def create_checkpoint(self, container, checkpoint, leave_running=False, checkpoint_dir=None,
                          retries=3, delay=1.0, retried=None):
        """The attempts it took (at most retries); each retry counted in retried ({reason: count}) by its reason."""
        data = {'CheckpointID': checkpoint, 'Exit': not leave_running}
        if checkpoint_dir:
            data['CheckpointDir'] = checkpoint_dir
        attempt = 0
        while True:
            attempt += 1
            try:
                self._request('POST', '/containers/{0}/checkpoints', container, data=data)
                return attempt
            except EngineError as exc:
                if attempt >= retries or not is_transient(exc.engine_message):
                    raise self._explain(exc, container, checkpoint)
                if not self.inspect(container)['State'].get('Running'):
                    raise self._explain(exc, container, checkpoint)
                count_retry(retried, transient_reason(exc.engine_message))
                time.sleep(delay)
                # The name was free before the first attempt: what a failed attempt left is ours.
                try:
                    self.delete_checkpoint(container, checkpoint, checkpoint_dir)
                except EngineError:
                    pass

    def delete_checkpoint(self, container, checkpoint, checkpoint_dir=None):
        params = {'dir': checkpoint_dir} if checkpoint_dir else None
        try:
            self._request('DELETE', '/containers/{0}/checkpoints/{1}', container, checkpoint, params=params)
        except EngineError as exc:
            raise self._explain(exc, container, checkpoint)

    def start_from_checkpoint(self, container, checkpoint, retries=3, delay=1.0, retried=None, retry_stale=True):
        # containerd's transient answers right after a checkpoint (TRANSIENT_ERRORS) go away on a retry, counted in
        # retried ({reason: count}). The tarball of the same checkpoint already in its content store (left by the
        # checkpoint until containerd's garbage collection, or by an interrupted restore) goes away only when it is
        # removed: with retry_stale False that answer is raised at once, for RestoreTask.start_from_checkpoint to
        # remove the blob; True retries it blindly, the last resort where it cannot be removed.
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self._request('POST', '/containers/{0}/start', container, params={'checkpoint': checkpoint})
                return resp.status_code
            except EngineError as exc:
                stale = not retry_stale and stale_content_digest(exc.engine_message)
                if attempt >= retries or stale or not is_transient(exc.engine_message):
                    raise self._explain(exc, container, checkpoint)
                count_retry(retried, transient_reason(exc.engine_message))
                time.sleep(delay)

    def _explain(self, exc, container, checkpoint=None):
        """Turn the engine's terse answers into what happened and what to do."""
        text = exc.engine_message or exc.msg
        low = text.lower()
        if exc.status == 501 or (exc.status == 404 and 'page not found' in low):
            exc.msg = ('The Docker Engine at %s does not offer checkpoints (HTTP %s): it is not in experimental '
                       'mode. %s' % (self.host, exc.status, ENGINE_FIX))
        elif exc.status == 404:
            exc.msg = 'Container %s does not exist on the Docker Engine at %s.' % (container, self.host)
        elif 'not running' in low:
            exc.msg = ('Container %s is not running, and only a running container can be checkpointed. '
                       'Start it first, or restore it from one of its checkpoints.' % container)
        elif 'does not exist for container' in low:
            exc.msg = ('Checkpoint %s does not exist for container %s. docker_checkpoint_info lists the '
                       'checkpoints it has.' % (checkpoint, container))
        elif 'invalid checkpoint id' in low:
            exc.msg = invalid_name_msg(checkpoint)
        elif 'bind-mount /proc/0/ns/net' in low:
            # Imported here, on this rare branch only: the engine layer serves every module, and the table of
            # engines that cannot restore (_preflight) is not on the path of most.
            from ansible_collections.cryo.docker.plugins.module_utils._preflight import NETNS_REMEDY
            exc.msg = ('The Docker Engine at %s cannot restore container %s, which has a network namespace of '
                       'its own: the engine sets that namespace up only after the task is created, and a '
                       'restored task has no process yet ("bind-mount /proc/0/ns/net ... no such file or '
                       'directory"), a bug of Docker 26.0.0 and 28.0 to 29.x (containerd/containerd#12141, '
                       'moby/moby#50750). CRIU never ran; the checkpoint is intact. %s'
                       % (self.host, container, NETNS_REMEDY))
        elif 'custom checkpointdir is not supported' in low:
            exc.msg = ('The Docker Engine refuses to restore from a custom checkpoint directory; stage the '
                       'checkpoint into the container first (docker_restore does this).')
        return exc


def connect(params, engine_class=None):
    """An Engine (or engine_class, a subclass) for a module's connection options; ModuleError when the SDK
    is missing or the engine cannot be reached."""
    if not HAS_DOCKER:
        raise ModuleError(missing_required_lib('docker (the Docker SDK for Python)') +
                          '. The cryo.docker.engine role installs it on the host.', exception=DOCKER_IMPORT_ERROR)
    return (engine_class or Engine)(params)
