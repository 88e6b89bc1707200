/**
 * QMP, QEMU's JSON monitor, reached from inside the VM container (`docker exec python3`): the
 * socket lives in the container's view of the instance dir, which works the same on Docker Desktop
 * and for a non-root host user (the socket belongs to the container's root).
 */
import type Docker from 'dockerode';
import { execCapture } from '../docker/containers.js';
import { VmStateError } from '../errors.js';

/**
 * One QMP command, or a poll: repeat it while `field` of its result is in `while` (or not yet in
 * `until`); with `expect`, the final value must be one of those or the client stops there. Or
 * `unlink`: remove a file (as the container sees it) between two commands.
 */
export type QmpStep =
  | {
      execute: string;
      arguments?: Record<string, unknown>;
      poll?: ({ field: string; while: string[] } | { field: string; until: string[] }) & { expect?: string[] };
    }
  | { unlink: string };

/**
 * The client run in the container: argv = socket, steps (JSON), timeout seconds. Connects (retrying
 * until QEMU has created the socket), negotiates, runs the steps and prints their results as one
 * JSON array; a QMP error or a timeout prints {"error": …} and exits non-zero.
 */
export const QMP_CLIENT = String.raw`
import json, os, socket, sys, time
path, steps, deadline = sys.argv[1], json.loads(sys.argv[2]), time.time() + float(sys.argv[3])
def fail(msg):
    print(json.dumps({"error": msg})); sys.exit(3)
while True:
    try:
        s = socket.socket(socket.AF_UNIX); s.connect(path); break
    except OSError as e:
        if time.time() > deadline: fail("cannot connect to QMP: %s" % e)
        time.sleep(0.02)
f = s.makefile("rw")
def reply():
    while True:
        line = f.readline()
        if not line: return {"return": {}}
        m = json.loads(line)
        if "event" not in m: return m
def run(c, a):
    f.write(json.dumps({"execute": c, "arguments": a} if a else {"execute": c}) + "\n"); f.flush()
    r = reply()
    if "error" in r: fail("%s: %s" % (c, r["error"].get("desc", r["error"])))
    return r["return"]
reply(); run("qmp_capabilities", None); out = []
for st in steps:
    if "unlink" in st:
        try: os.remove(st["unlink"])
        except FileNotFoundError: pass
        out.append({}); continue
    while True:
        r = run(st["execute"], st.get("arguments"))
        p = st.get("poll")
        if not p: break
        v = r.get(p["field"])
        if (v not in p["while"]) if "while" in p else (v in p["until"]): break
        if time.time() > deadline: fail("timed out waiting on %s (%s = %s)" % (st["execute"], p["field"], r.get(p["field"])))
        time.sleep(0.05)
    if p and "expect" in p and r.get(p["field"]) not in p["expect"]:
        fail("%s: %s is %s, expected %s" % (st["execute"], p["field"], r.get(p["field"]), " or ".join(p["expect"])))
    out.append(r)
print(json.dumps(out))
`;

/** The exec argv (pure, for tests). */
export function qmpCommand(socket: string, steps: QmpStep[], timeoutSec: number): string[] {
  return ['python3', '-c', QMP_CLIENT, socket, JSON.stringify(steps), String(timeoutSec)];
}

export async function qmp(docker: Docker, containerId: string, socket: string, steps: QmpStep[], timeoutSec = 60): Promise<Record<string, unknown>[]> {
  const res = await execCapture(docker, containerId, qmpCommand(socket, steps, timeoutSec));
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.stdout.trim().split('\n').pop() ?? '');
  } catch {
    throw new VmStateError(`QMP client failed (exit ${res.exitCode})`, `${res.stdout}${res.stderr}`.trim());
  }
  if (!Array.isArray(parsed)) throw new VmStateError(`QMP: ${(parsed as { error?: string }).error ?? 'unexpected reply'}`, res.stderr.trim());
  return parsed as Record<string, unknown>[];
}
