#!/usr/bin/python3
"""Independent checker for sluice-ts (python3-cbor2 + python3-cryptography; shares no code
with the service or libbundle).

  ts_verify.py receipt STATEMENT RECEIPT KEYSET     verify one receipt (exit 0/1)
  ts_verify.py acked --url URL --record DIR [--sample N]
      every (statement, receipt) pair recorded by `ts_load run --record DIR` must verify
      against the service keys (RFC 9162 inclusion + ES256 over the root); for every tree
      head those receipts name, GET /consistency/{size} must prove (RFC 9162 consistency)
      that the current signed head extends it; no two acknowledged statements share an
      index; for a sample, GET /entries/{i}/statement returns exactly the logged record.
Prints one summary line; exit status 1 on any failure.
"""
import hashlib
import os
import random
import struct
import sys
import urllib.request

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def H(b):
    return hashlib.sha256(b).digest()


def node(l, r):
    return H(b"\x01" + l + r)


def record_of(stmt):
    t = cbor2.loads(stmt)
    assert isinstance(t, cbor2.CBORTag) and t.tag == 18 and len(t.value) == 4
    prot, _u, payload, sig = t.value
    return cbor2.dumps(cbor2.CBORTag(18, [prot, {}, payload, sig]))


def inclusion_root(index, size, leaf, path):
    if index >= size:
        raise ValueError("index >= size")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise ValueError("path too long")
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("path too short")
    return r


def consistency_root(size1, size2, root1, path):
    """RFC 9162 2.1.4.2; returns root2 implied by (size1, root1, path) or raises."""
    if size1 == size2:
        if path:
            raise ValueError("non-empty path for equal sizes")
        return root1
    if size1 == 0 or size1 > size2 or not path:
        raise ValueError("bad consistency input")
    path = list(path)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ValueError("path too long")
        if fn & 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0 or fr != root1:
        raise ValueError("consistency proof does not match the old root")
    return sr


def b64u(s):
    import base64
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def load_keys(keyset_bytes):
    """A COSE_KeySet or COSE_Key (CBOR), or a P-256 JWK (JSON) -> {kid: key}."""
    keys = {}
    if keyset_bytes.lstrip()[:1] == b"{":
        import json
        j = json.loads(keyset_bytes)
        pub = ec.EllipticCurvePublicNumbers(int.from_bytes(b64u(j["x"]), "big"), int.from_bytes(b64u(j["y"]), "big"),
                                            ec.SECP256R1()).public_key()
        keys[j.get("kid", "").encode()] = pub
        return keys
    ks = cbor2.loads(keyset_bytes)
    if isinstance(ks, dict):
        ks = [ks]
    for k in ks:
        if k.get(1) != 2 or k.get(-1) != 1:
            continue
        pub = ec.EllipticCurvePublicNumbers(int.from_bytes(k[-2], "big"), int.from_bytes(k[-3], "big"),
                                            ec.SECP256R1()).public_key()
        keys[bytes(k.get(2, b""))] = pub
    return keys


class Receipt:
    def __init__(self, raw):
        t = cbor2.loads(raw)
        if not isinstance(t, cbor2.CBORTag) or t.tag != 18 or len(t.value) != 4:
            raise ValueError("not a tagged COSE_Sign1")
        self.prot_bstr, unprot, payload, self.sig = t.value
        if payload is not None:
            raise ValueError("receipt payload must be detached")
        self.prot = cbor2.loads(self.prot_bstr)
        if self.prot.get(1) != -7 or self.prot.get(395) != 1:
            raise ValueError("want alg ES256 and vds 1")
        kid = self.prot.get(4, b"")
        self.kid = kid.encode() if isinstance(kid, str) else bytes(kid)
        vdp = unprot[396]
        if -1 in vdp:
            self.kind = "inclusion"
            self.a, self.b, self.path = cbor2.loads(vdp[-1][0])
        else:
            self.kind = "consistency"
            self.a, self.b, self.path = cbor2.loads(vdp[-2][0])
        for p in self.path:
            if len(p) != 32:
                raise ValueError("path element not 32 bytes")

    def check_sig(self, keys, root, cache=None):
        ck = (self.prot_bstr, self.sig, root)
        if cache is not None and ck in cache:
            return
        key = keys.get(self.kid)
        if key is None and len(keys) == 1 and not self.kid:
            key = next(iter(keys.values()))
        if key is None:
            raise ValueError("no service key with the receipt's kid")
        tbs = cbor2.dumps(["Signature1", self.prot_bstr, b"", root])
        if len(self.sig) != 64:
            raise ValueError("signature not 64 bytes")
        der = encode_dss_signature(int.from_bytes(self.sig[:32], "big"), int.from_bytes(self.sig[32:], "big"))
        try:
            key.verify(der, tbs, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise ValueError("receipt signature does not verify")
        if cache is not None:
            cache.add(ck)


def verify_receipt(stmt, raw, keys, cache=None):
    r = Receipt(raw)
    if r.kind != "inclusion":
        raise ValueError("not an inclusion receipt")
    size, index = r.a, r.b
    root = inclusion_root(index, size, H(b"\x00" + record_of(stmt)), r.path)
    r.check_sig(keys, root, cache)
    return size, index, root


def get(url):
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read()


def read_acked(d):
    pairs = []
    for name in sorted(os.listdir(d)):
        if not name.startswith("acked."):
            continue
        data = open(os.path.join(d, name), "rb").read()
        off = 0
        while off + 4 <= len(data):
            (n,) = struct.unpack(">I", data[off:off + 4])
            stmt = data[off + 4:off + 4 + n]
            off += 4 + n
            if off + 4 > len(data):
                break
            (m,) = struct.unpack(">I", data[off:off + 4])
            rc = data[off + 4:off + 4 + m]
            off += 4 + m
            if len(stmt) == n and len(rc) == m:
                pairs.append((stmt, rc))
    return pairs


def cmd_acked(args):
    url = args[args.index("--url") + 1].rstrip("/")
    rec = args[args.index("--record") + 1]
    sample = int(args[args.index("--sample") + 1]) if "--sample" in args else 50
    keys = load_keys(get(url + "/.well-known/scitt-keys"))
    pairs = read_acked(rec)
    cache, heads, seen = set(), {}, {}
    for stmt, rc in pairs:
        size, index, root = verify_receipt(stmt, rc, keys, cache)
        if index in seen and seen[index] != stmt:
            raise ValueError("two acknowledged statements share index %d" % index)
        seen[index] = stmt
        heads[size] = root
    final = None
    for size1, root1 in sorted(heads.items()):
        c = Receipt(get("%s/consistency/%d" % (url, size1)))
        if c.kind != "consistency" or c.a != size1:
            raise ValueError("bad consistency receipt for %d" % size1)
        root2 = consistency_root(size1, c.b, root1, c.path)
        c.check_sig(keys, root2, cache)
        if final and final != (c.b, root2):
            raise ValueError("current head changed during the check")
        final = (c.b, root2)
    idx = list(seen)
    random.shuffle(idx)
    for i in idx[:sample]:
        if get("%s/entries/%d/statement" % (url, i)) != record_of(seen[i]):
            raise ValueError("entry %d in the log differs from the acknowledged statement" % i)
        verify_receipt(seen[i], get("%s/entries/%d" % (url, i)), keys, cache)
    print("acked %d receipts verified, %d tree heads consistent with head %s, %d entries compared" %
          (len(pairs), len(heads), final[0] if final else "-", min(sample, len(idx))))


def main():
    a = sys.argv[1:]
    try:
        if a and a[0] == "receipt" and len(a) == 4:
            keys = load_keys(open(a[3], "rb").read())
            size, index, _ = verify_receipt(open(a[1], "rb").read(), open(a[2], "rb").read(), keys)
            print("receipt ok: index %d in tree of %d" % (index, size))
        elif a and a[0] == "acked":
            cmd_acked(a)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Exception as e:  # one clear line for the test log
        print("ts_verify: FAILED: %s" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
