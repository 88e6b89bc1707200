/**
 * The VM host of the Docker engine (and Podman's Docker API): QEMU in a container of its own, on
 * its own network, SSH published on 127.0.0.1; exec, files and QMP over the Engine API.
 */
import type { DockerClient as Docker } from '../docker/client.js';
import { containerFiles, containerLogs, execCapture, execChannel, execInteractive, execPipe, forceRemove, inspectContainer, listVmContainers, startVmContainer, sweepOrphanTools, vmContainerName, waitExit, type VmContainerInfo } from '../docker/containers.js';
import { removeInstanceNetworks } from '../docker/networks.js';
import type { CleanupScope } from '../cleanup.js';
import type { Engine, FilesMode } from '../engine/engine.js';
import { relayCommand } from '../scripts.js';
import { IN_CONTAINER } from '../vm/instance.js';
import { QmpClient } from '../vm/qmp.js';
import type { RunningVm, VmEntry, VmExec, VmHost, VmHostFeatures, VmHostPlatform, VmLaunch } from './vm-host.js';

/** Commands beside QEMU: docker exec in its container. */
export function containerExec(docker: Docker, id: string): VmExec {
  return {
    ...containerFiles(docker, id),
    capture: (cmd, opts) => execCapture(docker, id, cmd, opts),
    pipe: (cmd, io) => execPipe(docker, id, cmd, io),
    channel: (cmd) => execChannel(docker, id, cmd),
    interactive: (cmd) => execInteractive(docker, id, cmd),
  };
}

function runningVm(docker: Docker, c: { id: string; instance: string; sshPort: number }): RunningVm {
  const exec = containerExec(docker, c.id);
  return {
    ...exec,
    id: c.id,
    instance: c.instance,
    sshPort: c.sshPort,
    monitor: async (timeoutSec, fds) => QmpClient.open(await exec.channel(relayCommand({ unix: IN_CONTAINER.qmp, waitSec: timeoutSec, fds })), timeoutSec),
    console: () => containerLogs(docker, c.id),
    isRunning: async () => (await inspectContainer(docker, c.id))?.State.Running === true,
    waitExit: (ms) => waitExit(docker, c.id, ms),
    remove: () => forceRemove(docker, c.id),
  };
}

const entry = (c: VmContainerInfo): VmEntry => ({ id: c.id, instance: c.instance, running: c.state === 'running', status: c.status, sshPort: c.sshPort });

export class DockerVmHost implements VmHost {
  private readonly docker: Docker;

  constructor(
    private readonly engine: Engine,
    /** The m5dev home: container names and labels keep homes apart on one engine. */
    private readonly home: string,
    readonly features: VmHostFeatures,
  ) {
    this.docker = engine.docker;
  }

  async platform(): Promise<VmHostPlatform> {
    const { arch, rootless } = await this.engine.info();
    return { arch, rootless };
  }

  async kvmUsable(image: string): Promise<boolean> {
    return (await this.platform()).arch === 'aarch64' ? this.engine.kvmUsable(image) : false;
  }

  async launch(spec: VmLaunch, scope: CleanupScope): Promise<RunningVm> {
    const container = await startVmContainer(this.docker, scope, {
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
    return runningVm(this.docker, { id: container.id, instance: spec.instance, sshPort: spec.sshPort });
  }

  async list(instance?: string): Promise<VmEntry[]> {
    return (await listVmContainers(this.docker, this.home, instance)).map(entry);
  }

  async running(instance: string): Promise<RunningVm | undefined> {
    const found = (await this.list(instance)).find((c) => c.running);
    return found ? this.attach(found) : undefined;
  }

  attach(e: VmEntry): RunningVm {
    return runningVm(this.docker, e);
  }

  sweepOrphans(): Promise<number> {
    return sweepOrphanTools(this.docker);
  }

  async forget(instance: string): Promise<void> {
    await removeInstanceNetworks(this.docker, this.home, instance);
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
