// The instructions that change only the image config (CMD, ENV, LABEL, ...): applied to a
// config and described the way BuildKit writes history ("CMD [\"sh\"]", "ENV A=b").
// Used by the builder, and by `import -c` / `commit -c`.
import { invalidArgument } from '../errors.js';
import type { ContainerConfig } from '../oci/index.js';
import { expandWord, expandWords, parseDockerfile, type Env, type Instruction } from './dockerfile/index.js';

export const CONFIG_ONLY = new Set(['CMD', 'ENTRYPOINT', 'ENV', 'LABEL', 'EXPOSE', 'USER', 'WORKDIR', 'VOLUME', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL', 'ONBUILD', 'MAINTAINER', 'ARG']);

const goQuote = (xs: string[]) => `[${xs.map((x) => JSON.stringify(x)).join(' ')}]`;

export function envMap(cfg: ContainerConfig): Env {
  const env: Env = {};
  for (const kv of cfg.Env ?? []) {
    const i = kv.indexOf('=');
    env[i < 0 ? kv : kv.slice(0, i)] = i < 0 ? '' : kv.slice(i + 1);
  }
  return env;
}

export function setEnv(cfg: ContainerConfig, key: string, value: string): void {
  const env = (cfg.Env ?? []).filter((kv) => kv.split('=')[0] !== key);
  env.push(`${key}=${value}`);
  cfg.Env = env;
}

function duration(s: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)$/.exec(s);
  if (!m) throw invalidArgument(`HEALTHCHECK --${what}=${s} is not a duration`, 'use forms like 30s, 1m30s');
  const mult: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  return Math.round(Number(m[1]) * mult[m[2]]);
}

/**
 * Apply one config-only instruction. `env` holds the build's variables (config Env plus ARGs)
 * for expansion. Returns the history created_by text.
 */
export function applyConfigInstruction(cfg: ContainerConfig, ins: Instruction, env: Env, escape = '\\'): string {
  const shell = cfg.Shell ?? ['/bin/sh', '-c'];
  const x = (w: string) => expandWord(w, env, escape);
  const cmdForm = () => (ins.json ? ins.args : [...shell, ins.args.join(' ')]);
  switch (ins.cmd) {
    case 'CMD':
      cfg.Cmd = cmdForm();
      return `CMD ${goQuote(cfg.Cmd)}`;
    case 'ENTRYPOINT':
      cfg.Entrypoint = ins.json || ins.args.length ? cmdForm() : null;
      if (!ins.json) cfg.Cmd = null; // docker: a shell-form ENTRYPOINT drops CMD
      return `ENTRYPOINT ${goQuote(cfg.Entrypoint ?? [])}`;
    case 'ENV': {
      const raw = ins.rawArgs ?? ins.args;
      const parts: string[] = [];
      for (let i = 0; i + 1 < raw.length; i += 2) {
        const k = raw[i];
        const v = x(raw[i + 1]);
        setEnv(cfg, k, v);
        env[k] = v;
        parts.push(`${k}=${v}`);
      }
      return `ENV ${parts.join(' ')}`;
    }
    case 'LABEL': {
      const raw = ins.rawArgs ?? ins.args;
      const parts: string[] = [];
      cfg.Labels = { ...cfg.Labels };
      for (let i = 0; i + 1 < raw.length; i += 2) {
        const k = x(raw[i]);
        const v = x(raw[i + 1]);
        cfg.Labels[k] = v;
        parts.push(`${k}=${v}`);
      }
      return `LABEL ${parts.join(' ')}`;
    }
    case 'EXPOSE': {
      cfg.ExposedPorts = { ...cfg.ExposedPorts };
      const ports: string[] = [];
      for (const a of ins.args) for (const p of expandWords(a, env, escape)) {
        const port = p.includes('/') ? p.toLowerCase() : `${p}/tcp`;
        if (!/^\d+(-\d+)?\/(tcp|udp|sctp)$/.test(port)) throw invalidArgument(`EXPOSE: invalid port ${p}`);
        cfg.ExposedPorts[port] = {};
        ports.push(port);
      }
      return `EXPOSE map[${ports.map((p) => `${p}:{}`).join(' ')}]`;
    }
    case 'USER':
      cfg.User = x(ins.args[0]);
      return `USER ${cfg.User}`;
    case 'WORKDIR': {
      const w = x(ins.args.join(' '));
      cfg.WorkingDir = w.startsWith('/') ? w : `${(cfg.WorkingDir ?? '/').replace(/\/$/, '')}/${w}`;
      return `WORKDIR ${cfg.WorkingDir}`;
    }
    case 'VOLUME': {
      cfg.Volumes = { ...cfg.Volumes };
      const vols = ins.args.map(x).filter(Boolean);
      if (vols.length === 0) throw invalidArgument('VOLUME specified can not be an empty string');
      for (const v of vols) cfg.Volumes[v] = {};
      return `VOLUME ${goQuote(vols)}`;
    }
    case 'STOPSIGNAL':
      cfg.StopSignal = x(ins.args[0]);
      return `STOPSIGNAL ${cfg.StopSignal}`;
    case 'SHELL':
      cfg.Shell = ins.args;
      return `SHELL ${goQuote(ins.args)}`;
    case 'ONBUILD':
      cfg.OnBuild = [...(cfg.OnBuild ?? []), ins.args.join(' ')];
      return `ONBUILD ${ins.args.join(' ')}`;
    case 'HEALTHCHECK': {
      if (ins.args[0]?.toUpperCase() === 'NONE') {
        cfg.Healthcheck = { Test: ['NONE'] };
        return 'HEALTHCHECK NONE';
      }
      const rest = ins.args.slice(1);
      const test = ins.json ? ['CMD', ...rest] : ['CMD-SHELL', rest.join(' ')];
      const f = (k: string) => ins.flags[k]?.[0];
      cfg.Healthcheck = {
        Test: test,
        ...(f('interval') ? { Interval: duration(f('interval')!, 'interval') } : {}),
        ...(f('timeout') ? { Timeout: duration(f('timeout')!, 'timeout') } : {}),
        ...(f('start-period') ? { StartPeriod: duration(f('start-period')!, 'start-period') } : {}),
        ...(f('start-interval') ? { StartInterval: duration(f('start-interval')!, 'start-interval') } : {}),
        ...(f('retries') ? { Retries: Number(f('retries')) } : {}),
      };
      return `HEALTHCHECK &{${goQuote(test)} ...}`;
    }
    case 'MAINTAINER':
      return `MAINTAINER ${ins.args.join(' ')}`;
    case 'ARG':
      return `ARG ${ins.args.join(' ')}`;
  }
  throw invalidArgument(`${ins.cmd} is not a config-only instruction`);
}

/** docker import/commit -c: instructions allowed, applied in order. */
const CHANGE_ALLOWED = new Set(['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'USER', 'VOLUME', 'WORKDIR', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL']);

export function applyChanges(cfg: ContainerConfig, changes: string[]): void {
  for (const c of changes) {
    const df = parseDockerfile(`FROM scratch\n${c}\n`, '--change');
    for (const ins of df.instructions.slice(1)) {
      if (!CHANGE_ALLOWED.has(ins.cmd)) throw invalidArgument(`${ins.cmd} is not a valid change command`, `use one of ${[...CHANGE_ALLOWED].join(', ')}`);
      applyConfigInstruction(cfg, ins, envMap(cfg));
    }
  }
}
