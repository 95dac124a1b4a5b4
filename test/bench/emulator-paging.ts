// Standalone timing of the emulator at scale: generation, a full ListVpcPeerConnections pass over one region
// (V3-signed over HTTP), a tag-filtered ListTagResources pass, and streaming GET /_emulator/state.
// Run: npm run build && node dist/test/bench/emulator-paging.js [count]
import { randomUUID } from 'node:crypto';
import { startEmulator } from '../../src/emulator/index.js';
import { EMPTY_BODY_SHA256, v3Signature } from '../../src/emulator/signature.js';

const KEY = { id: 'tagwarden-test', secret: 'tagwarden-test-secret' };

/** One V3-signed POST with every parameter in the query (the SDK's placement for the tagging APIs). */
async function call(url: string, action: string, query: Record<string, string>): Promise<Record<string, unknown>> {
  const host = new URL(url).host;
  const headers: Record<string, string> = {
    host,
    'x-acs-action': action,
    'x-acs-version': '2022-01-01',
    'x-acs-date': new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
    'x-acs-signature-nonce': randomUUID(),
    'x-acs-content-sha256': EMPTY_BODY_SHA256,
  };
  const signedHeaders = Object.keys(headers).sort();
  const signature = v3Signature({ method: 'POST', path: '/', query, headers, signedHeaders, hashedPayload: EMPTY_BODY_SHA256 }, KEY.secret);
  const { host: _host, ...send } = headers;
  const qs = new URLSearchParams(query).toString().replace(/\+/g, '%20');
  const res = await fetch(`${url}/?${qs}`, {
    method: 'POST',
    headers: { ...send, authorization: `ACS3-HMAC-SHA256 Credential=${KEY.id},SignedHeaders=${signedHeaders.join(';')},Signature=${signature}` },
  });
  const body = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200) throw new Error(`${action}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 1_000_000);
  const regions = ['cn-hangzhou', 'cn-shanghai', 'cn-beijing'];
  const huge = 1e9;
  let t = performance.now();
  const emu = await startEmulator({ generate: { count, seed: 1, regions }, quotas: { ListVpcPeerConnections: huge, ListTagResources: huge } });
  const report: Record<string, number> = { count, generateMs: Math.round(performance.now() - t), heapMb: Math.round(process.memoryUsage().heapUsed / 2 ** 20) };
  try {
    t = performance.now();
    let token = '';
    let pages = 0;
    let listed = 0;
    do {
      const body = await call(emu.url, 'ListVpcPeerConnections', { RegionId: 'cn-hangzhou', MaxResults: '100', ...(token ? { NextToken: token } : {}) });
      listed += (body['VpcPeerConnects'] as unknown[]).length;
      token = body['NextToken'] as string;
      pages++;
    } while (token);
    const listMs = performance.now() - t;
    Object.assign(report, { listedInRegion: listed, listPages: pages, listMs: Math.round(listMs), listMsPerPage: Number((listMs / pages).toFixed(3)) });

    t = performance.now();
    token = '';
    let rows = 0;
    pages = 0;
    do {
      const body = await call(emu.url, 'ListTagResources', {
        RegionId: 'cn-shanghai', ResourceType: 'PeerConnection', 'Tag.1.Key': 'FinanceDept', MaxResults: '50', ...(token ? { NextToken: token } : {}),
      });
      rows += (body['TagResources'] as unknown[]).length;
      token = body['NextToken'] as string;
      pages++;
    } while (token);
    Object.assign(report, { tagRows: rows, tagPages: pages, tagListMs: Math.round(performance.now() - t) });

    t = performance.now();
    const res = await fetch(`${emu.url}/_emulator/state`);
    let bytes = 0;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.length;
    Object.assign(report, { stateMb: Math.round(bytes / 2 ** 20), stateMs: Math.round(performance.now() - t) });
  } finally {
    await emu.close();
  }
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

await main();
