/**
 * The VM host of the Docker engine (and Podman's Docker API): QEMU in a container of its own, on
 * its own network, SSH published on 127.0.0.1; exec, files and QMP over the Engine API.
 */
import { vmContainerName, type ContainerHandle, type VmContainerInfo, type VmContainers } from '../docker/containers.js';
import type { CleanupScope } from '../cleanup.js';
import type { Engine, FilesMode } from '../engine/engine.js';
import { relayCommand } from '../scripts.js';
import { IN_CONTAINER } from '../vm/instance.js';
import { QmpClient } from '../vm/qmp.js';
import type { RunningVm, VmEntry, VmExec, VmHost, VmHostFeatures, VmHostPlatform, VmLaunch } from './vm-host.js';

/** Commands beside QEMU: docker exec in its container. */
export function containerExec(c: ContainerHandle): VmExec {
  return { putFiles: c.putFiles, putLocalFile: c.putLocalFile, getFiles: c.getFiles, getTree: c.getTree, capture: c.capture, pipe: c.pipe, channel: c.channel, interactive: c.interactive };
}

function runningVm(containers: VmContainers, c: { id: string; instance: string; sshPort: number }): RunningVm {
  const handle = containers.handle(c.id);
  const exec = containerExec(handle);
  return {
    ...exec,
    id: c.id,
    instance: c.instance,
    sshPort: c.sshPort,
    monitor: async (timeoutSec, fds) => QmpClient.open(await exec.channel(relayCommand({ unix: IN_CONTAINER.qmp, waitSec: timeoutSec, fds })), timeoutSec),
    console: handle.logs,
    isRunning: handle.isRunning,
    waitExit: handle.waitExit,
    remove: handle.remove,
  };
}

const entry = (c: VmContainerInfo): VmEntry => ({ id: c.id, instance: c.instance, running: c.state === 'running', status: c.status, sshPort: c.sshPort });

export class DockerVmHost implements VmHost {
  private readonly containers: VmContainers;

  constructor(
    private readonly engine: Engine,
    /** The m5dev home: container names and labels keep homes apart on one engine. */
    private readonly home: string,
    readonly features: VmHostFeatures,
  ) {
    this.containers = engine.containers;
  }

  async platform(): Promise<VmHostPlatform> {
    const { arch, rootless } = await this.engine.info();
    return { arch, rootless };
  }

  async kvmUsable(image: string): Promise<boolean> {
    return (await this.platform()).arch === 'aarch64' ? this.engine.kvmUsable(image) : false;
  }

  async launch(spec: VmLaunch, scope: CleanupScope): Promise<RunningVm> {
    const container = await this.containers.start(scope, {
      name: vmContainerName(spec.instance, this.home),
      image: spec.image,
      cmd: spec.cmd,
      binds: spec.mounts,
      home: this.home,
      instance: spec.instance,
      hostPort: spec.sshPort,
      containerPort: spec.guestSshForward,
      kvm: spec.kvm,
      tmpfs: spec.tmpfs,
      keepNetwork: spec.stillNeeded,
    });
    return runningVm(this.containers, { id: container.id, instance: spec.instance, sshPort: spec.sshPort });
  }

  async list(instance?: string): Promise<VmEntry[]> {
    return (await this.containers.list(this.home, instance)).map(entry);
  }

  async running(instance: string): Promise<RunningVm | undefined> {
    const found = (await this.list(instance)).find((c) => c.running);
    return found ? this.attach(found) : undefined;
  }

  attach(e: VmEntry): RunningVm {
    return runningVm(this.containers, e);
  }

  sweepOrphans(): Promise<number> {
    return this.containers.sweepOrphanTools();
  }

  async forget(instance: string): Promise<void> {
    await this.containers.removeInstanceNetworks(this.home, instance);
  }
}

/**
 * The engine as a VM host for `home`. `files` is where the instance's data lives (an instance keeps
 * the mode it was made with; only a launch and SSH depend on it, not list or forget); today a host
 * that sees our files is also one whose loopback is ours.
 */
export function dockerVmHost(engine: Engine, home: string, files: FilesMode = 'shared'): DockerVmHost {
  const shared = files === 'shared';
  return new DockerVmHost(engine, home, { seesClientFiles: shared, loopbackIsClients: shared });
}
