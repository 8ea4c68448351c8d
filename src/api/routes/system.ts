// /_ping, /version, /info, /system/df, /events.
import { systemDiskUsage, systemInfo, versionInfo } from '../../engine/system.js';
import { checkEventFilters, engineEvents } from '../../engine/events.js';
import { filtersFromJSON } from '../../engine/containers.js';
import { commandOf } from '../../engine/containers.js';
import { sendJSON } from '../http.js';
import type { Ctx, Router } from '../router.js';

const network = (name: string, id: string, driver: string) => ({
  Name: name, Id: id, Created: '0001-01-01T00:00:00Z', Scope: 'local', Driver: driver, EnableIPv6: false, IPAM: { Driver: 'default', Options: null, Config: [] },
  Internal: false, Attachable: false, Ingress: false, ConfigFrom: { Network: '' }, ConfigOnly: false, Containers: {}, Options: {}, Labels: {},
});
const NETWORKS = [network('host', 'a'.repeat(64), 'host'), network('none', 'b'.repeat(64), 'null')];

function ping(ctx: Ctx): void {
  ctx.res!.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-cache, no-store, must-revalidate', Pragma: 'no-cache', 'Builder-Version': '1' });
  ctx.res!.end(ctx.req.method === 'HEAD' ? undefined : 'OK');
}

async function df(ctx: Ctx): Promise<void> {
  const du = await systemDiskUsage(ctx.engine);
  sendJSON(ctx.res!, 200, {
    LayersSize: du.imagesSize,
    Images: du.images.map((i) => ({
      Id: i.id, ParentId: '', RepoTags: i.tags, RepoDigests: i.digests, Created: Math.floor(Date.parse(i.created ?? '') / 1000) || 0,
      Size: i.size, SharedSize: i.shared, VirtualSize: i.size, Labels: i.labels, Containers: i.containers,
    })),
    Containers: du.containers.map(({ c, disk }) => ({
      Id: c.id, Names: [`/${c.name}`], Image: c.config.Image, ImageID: c.imageId, Command: commandOf(c), Created: Math.floor(Date.parse(c.created) / 1000),
      Ports: [], SizeRw: disk, SizeRootFs: disk + (ctx.engine.images.get(c.imageId)?.size ?? 0), Labels: c.config.Labels ?? {}, State: c.state.Status,
      Status: c.state.Status, HostConfig: { NetworkMode: c.hostConfig.NetworkMode }, NetworkSettings: { Networks: {} }, Mounts: [],
    })),
    Volumes: du.volumes.map((v) => ({
      Name: v.name, Driver: 'local', Mountpoint: v.mountpoint, CreatedAt: v.created, Labels: v.labels, Scope: 'local', Options: null,
      UsageData: { Size: v.size, RefCount: v.links },
    })),
    BuildCache: du.buildCache.records.map((r) => ({
      ID: r.key.replace(/^sha256:/, '').slice(0, 25), Parent: '', Type: 'regular', Description: '', InUse: false, Shared: r.shared, Size: r.size,
      CreatedAt: r.created, LastUsedAt: r.lastUsed, UsageCount: 1,
    })),
  });
}

/** docker's since/until: unix seconds with optional fraction. */
function eventTime(v: string | null): number | undefined {
  if (v === null || v === '') return undefined;
  const n = Number(v);
  if (Number.isFinite(n)) return n;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : t / 1000;
}

async function events(ctx: Ctx): Promise<void> {
  const filters = filtersFromJSON(ctx.query.get('filters'));
  checkEventFilters(filters); // a bad filter is a 400, before the stream starts
  const res = ctx.res!;
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.flushHeaders();
  for await (const e of engineEvents(ctx.engine, { since: eventTime(ctx.query.get('since')), until: eventTime(ctx.query.get('until')), filters, signal: ctx.signal })) res.write(JSON.stringify(e) + '\n');
  res.end();
}

export function register(r: Router): void {
  r.add('GET', '/_ping', ping)
    .add('HEAD', '/_ping', ping)
    .add('GET', '/version', (ctx) => sendJSON(ctx.res!, 200, versionInfo()))
    .add('GET', '/info', async (ctx) => {
      const { Hybrid: _h, ...info } = await systemInfo(ctx.engine);
      sendJSON(ctx.res!, 200, info);
    })
    .add('GET', '/system/df', df)
    .add('GET', '/events', events)
    // the networks a container can join today (host, none); user networks come with the networks issue
    .add('GET', '/networks', (ctx) => sendJSON(ctx.res!, 200, NETWORKS))
    .add('GET', '/networks/{id}', (ctx) => {
      const n = NETWORKS.find((x) => x.Id === ctx.params[0] || x.Name === ctx.params[0] || x.Id.startsWith(ctx.params[0]));
      if (!n) return sendJSON(ctx.res!, 404, { message: `network ${ctx.params[0]} not found` });
      sendJSON(ctx.res!, 200, n);
    });
}
