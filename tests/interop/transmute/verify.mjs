// Verify sluice statements and SCITT receipts with @transmute/cose (pinned in package-lock.json).
// usage: node verify.mjs receipt STATEMENT RECEIPT KEY | statement STATEMENT KEY
// KEY: PEM public key or JWK. Exit 0 verified, 1 not verified, 2 usage.
import fs from 'node:fs'
import crypto from 'node:crypto'
import * as cose from '@transmute/cose'
const [cmd, a, b, c] = process.argv.slice(2)
function jwkOf(path) {
  const t = fs.readFileSync(path)
  if (t.toString().trim().startsWith('{')) return JSON.parse(t)
  const j = crypto.createPublicKey(t).export({ format: 'jwk' })
  j.alg = j.crv === 'P-384' ? 'ES384' : j.crv === 'Ed25519' ? 'EdDSA' : 'ES256'
  return j
}
const ab = (buf) => buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)
try {
  if (cmd === 'receipt') {
    const stmt = fs.readFileSync(a), receipt = fs.readFileSync(b), jwk = jwkOf(c)
    const verifier = await cose.detached.verifier({ resolver: { resolve: async () => jwk } })
    const entry = await cose.receipt.remove(ab(stmt))
    const leaf = await cose.receipt.leaf(new Uint8Array(entry))
    const root = await cose.receipt.inclusion.verify({ entry: leaf, receipt: ab(receipt), verifier })
    console.log('transmute: receipt verifies, root', Buffer.from(root).toString('hex'))
  } else if (cmd === 'statement') {
    const stmt = fs.readFileSync(a), jwk = jwkOf(b)
    const verifier = await cose.attached.verifier({ resolver: { resolve: async () => jwk } })
    await verifier.verify({ coseSign1: ab(stmt) })
    console.log('transmute: statement verifies')
  } else { console.error('usage'); process.exit(2) }
} catch (e) { console.log('transmute: not verified:', e.message); process.exit(1) }
