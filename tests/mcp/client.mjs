// MCP client test for `sluice tools serve`, with the official MCP TypeScript SDK as the client.
// Run by tests/integration/tools_mcp_sdk.sh, which sets up the verdict, transparency service,
// TPM and quote service. Environment:
//   SLUICE       path of the sluice binary
//   SLUICE_ARGS  JSON array of extra arguments after `tools serve`
//   OUT_DIR      where to write call.statement and call.receipt (for `sluice receipt verify`)
//   EXPECT       "unlocked" (default) or "locked"
// Prints `ok NAME` / `not ok NAME: why` lines; exits 1 on any failure.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { writeFileSync } from 'node:fs';

let failed = 0;
const ok = (name) => console.log(`ok ${name}`);
const notOk = (name, why) => { console.log(`not ok ${name}: ${why}`); failed = 1; };
const check = (name, cond, why) => (cond ? ok(name) : notOk(name, why));

const expect = process.env.EXPECT || 'unlocked';
const transport = new StdioClientTransport({
  command: process.env.SLUICE,
  args: ['tools', 'serve', ...JSON.parse(process.env.SLUICE_ARGS || '[]')],
  env: { ...process.env },
  stderr: 'inherit',
});
const client = new Client({ name: 'sluice-mcp-sdk-test', version: '1.0.0' });

async function expectError(name, promise, code, reason) {
  try {
    const r = await promise;
    notOk(name, `expected error ${code}, got ${JSON.stringify(r).slice(0, 300)}`);
  } catch (e) {
    const got = e instanceof McpError ? e.code : `non-MCP error ${e}`;
    const gotReason = e?.data?.reason;
    check(name, got === code && (!reason || gotReason === reason),
      `code ${got} reason ${gotReason}, want ${code} ${reason ?? ''}: ${e.message}`);
  }
}

const timer = setTimeout(() => { notOk('timeout', 'the session took more than 30 s'); process.exit(1); }, 30000);
try {
  // connect() runs initialize and throws if it cannot accept the version we negotiated
  await client.connect(transport);
  const info = client.getServerVersion();
  check('sdk_connects', info?.name === 'sluice', `serverInfo ${JSON.stringify(info)}`);
  check('sdk_tools_capability', !!client.getServerCapabilities()?.tools, JSON.stringify(client.getServerCapabilities()));
  await client.ping();
  ok('sdk_ping');

  const { tools } = await client.listTools();
  if (expect === 'locked') {
    check('sdk_lists_nothing', tools.length === 0, `listed ${tools.map((t) => t.name)}`);
    await expectError('sdk_call_refused', client.callTool({ name: 'stock_price', arguments: { symbol: 'INTC' } }),
      -32001);
  } else {
    const sp = tools.find((t) => t.name === 'stock_price');
    check('sdk_lists_stock_price', !!sp && sp.inputSchema?.required?.includes('symbol'), JSON.stringify(tools));
    const res = await client.callTool({ name: 'stock_price', arguments: { symbol: 'INTC' } });
    let quote = null;
    try { quote = JSON.parse(res.content?.[0]?.text ?? ''); } catch { /* checked below */ }
    check('sdk_call_stock_price', !res.isError && quote?.symbol === 'INTC' && quote?.price === '24.31',
      JSON.stringify(res).slice(0, 400));
    const meta = res._meta ?? {};
    check('sdk_result_has_receipt', typeof meta['sluice/receipt'] === 'string' && typeof meta['sluice/statement'] === 'string' &&
      typeof meta['sluice/entryId'] === 'string' && meta['sluice/entryId'].length > 0, JSON.stringify(meta).slice(0, 300));
    if (meta['sluice/receipt']) {
      writeFileSync(`${process.env.OUT_DIR}/call.receipt`, Buffer.from(meta['sluice/receipt'], 'base64'));
      writeFileSync(`${process.env.OUT_DIR}/call.statement`, Buffer.from(meta['sluice/statement'], 'base64'));
      console.log(`# price ${quote?.price} ${quote?.currency}, entry ${meta['sluice/entryId']}`);
    }
    await expectError('sdk_schema_violation', client.callTool({ name: 'stock_price', arguments: { symbol: 'INTC; rm -rf /' } }),
      -32602, 'arguments.invalid');
    await expectError('sdk_unknown_tool', client.callTool({ name: 'no_such_tool', arguments: {} }), -32602);
  }
} catch (e) {
  notOk('sdk_session', e?.stack ?? String(e));
} finally {
  clearTimeout(timer);
  await client.close().catch(() => {});
}
process.exit(failed);
