#!/usr/bin/python3
"""An independent SCITT checker for sluice's interop tests, written from the RFCs only
(RFC 9052 COSE_Sign1, RFC 9162 Merkle trees, draft-ietf-cose-merkle-tree-proofs receipts,
draft-ietf-cose-hash-envelope, RFC 9679 thumbprints), on Debian's python3-cbor2 and
python3-cryptography. It shares no code with libbundle: CBOR is cbor2's, the log record is
made by decoding the statement and re-encoding it canonically with an empty unprotected map
(as @transmute/cose does), the inclusion proof is RFC 9162 section 2.1.3.2.

usage:
  scitt_check.py verify-statement STMT KEY [PREIMAGE]
  scitt_check.py verify-receipt STMT RECEIPT KEY       (STMT may be a transparent statement)
  scitt_check.py verify-transparent TSTMT KEY          (every receipt under 394)
  scitt_check.py make DIR                              (write a statement, a 6-leaf tree receipt,
                                                        a transparent statement and the keys)
KEY: COSE_Key (CBOR), PEM public key, or a JWK JSON file.
Exit 0 when everything verifies, 1 when something does not, 2 on usage errors.
"""
import hashlib
import json
import os
import sys
import base64

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (decode_dss_signature,
                                                            encode_dss_signature)

ES256, ES384, EDDSA = -7, -35, -8


class Fail(Exception):
    pass


def b64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def load_key(path):
    data = open(path, "rb").read()
    if data.lstrip().startswith(b"-----BEGIN"):
        return serialization.load_pem_public_key(data)
    if data.lstrip().startswith(b"{"):
        j = json.loads(data)
        if j["kty"] == "EC":
            curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}[j["crv"]]
            x, y = int.from_bytes(b64u(j["x"]), "big"), int.from_bytes(b64u(j["y"]), "big")
            return ec.EllipticCurvePublicNumbers(x, y, curve).public_key()
        return ed25519.Ed25519PublicKey.from_public_bytes(b64u(j["x"]))
    k = cbor2.loads(data)
    if k[1] == 2:
        curve = {1: ec.SECP256R1(), 2: ec.SECP384R1()}[k[-1]]
        return ec.EllipticCurvePublicNumbers(int.from_bytes(k[-2], "big"), int.from_bytes(k[-3], "big"),
                                             curve).public_key()
    if k[1] == 1 and k[-1] == 6:
        return ed25519.Ed25519PublicKey.from_public_bytes(k[-2])
    raise Fail("unsupported COSE_Key")


def parse_sign1(data):
    obj = cbor2.loads(data)
    if isinstance(obj, cbor2.CBORTag):
        if obj.tag != 18:
            raise Fail("tag %d is not COSE_Sign1" % obj.tag)
        obj = obj.value
    if not isinstance(obj, list) or len(obj) != 4:
        raise Fail("not a COSE_Sign1 array")
    prot, unprot, payload, sig = obj
    if not isinstance(prot, bytes) or not isinstance(unprot, dict) or not isinstance(sig, bytes):
        raise Fail("COSE_Sign1 element types")
    hdr = cbor2.loads(prot) if prot else {}
    return prot, hdr, unprot, payload, sig


def verify_sig(key, alg, prot, payload, sig):
    tbs = cbor2.dumps(["Signature1", prot, b"", payload])
    try:
        if alg in (ES256, ES384):
            n = 32 if alg == ES256 else 48
            if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.key_size != n * 8 or len(sig) != 2 * n:
                raise Fail("key or signature size does not fit alg %d" % alg)
            der = encode_dss_signature(int.from_bytes(sig[:n], "big"), int.from_bytes(sig[n:], "big"))
            key.verify(der, tbs, ec.ECDSA(hashes.SHA256() if alg == ES256 else hashes.SHA384()))
        elif alg == EDDSA:
            if not isinstance(key, ed25519.Ed25519PublicKey):
                raise Fail("EdDSA needs an Ed25519 key")
            key.verify(sig, tbs)
        else:
            raise Fail("unsupported alg %r" % alg)
    except InvalidSignature:
        raise Fail("signature does not verify")


def record(stmt):
    """The log entry: the statement re-encoded canonically with unprotected = {}."""
    prot, _, _, payload, sig = parse_sign1(stmt)
    return cbor2.dumps(cbor2.CBORTag(18, [prot, {}, payload, sig]), canonical=True)


def h(b):
    return hashlib.sha256(b).digest()


def inclusion_root(index, size, leaf, path):
    """RFC 9162 section 2.1.3.2."""
    if index >= size:
        raise Fail("leaf_index >= tree_size")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if len(p) != 32:
            raise Fail("path element is not 32 bytes")
        if sn == 0:
            raise Fail("path too long")
        if fn & 1 or fn == sn:
            r = h(b"\x01" + p + r)
            if not fn & 1:
                while True:
                    fn >>= 1
                    sn >>= 1
                    if fn & 1 or fn == 0:
                        break
        else:
            r = h(b"\x01" + r + p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Fail("path too short")
    return r


def verify_receipt(stmt, receipt, key):
    prot, hdr, unprot, payload, sig = parse_sign1(receipt)
    if payload is not None:
        raise Fail("receipt payload must be detached")
    if hdr.get(395) != 1:
        raise Fail("vds %r is not RFC9162_SHA256" % hdr.get(395))
    proofs = unprot[396][-1]
    tree_size, leaf_index, path = cbor2.loads(proofs[0])
    leaf = h(b"\x00" + record(stmt))
    root = inclusion_root(leaf_index, tree_size, leaf, path)
    verify_sig(key, hdr[1], prot, root, sig)
    return tree_size, leaf_index, root


def verify_statement(stmt, key, preimage=None):
    prot, hdr, _, payload, sig = parse_sign1(stmt)
    cwt = hdr.get(15, {})
    if 1 not in cwt or 2 not in cwt:
        raise Fail("CWT claims iss/sub missing")
    verify_sig(key, hdr[1], prot, payload, sig)
    if preimage is not None:
        if hdr.get(258) != -16 or 3 in hdr:
            raise Fail("not a SHA-256 hash envelope")
        if payload != h(preimage):
            raise Fail("payload is not SHA-256 of the preimage")


# ---------------------------------------------------------------------------------------
# make: statements and a receipt from this implementation, for libbundle to verify

def cose_key(pub, kid):
    if isinstance(pub, ed25519.Ed25519PublicKey):
        x = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {1: 1, 2: kid, -1: 6, -2: x}
    n = pub.public_numbers()
    size = pub.curve.key_size // 8
    return {1: 2, 2: kid, -1: 1 if size == 32 else 2, -2: n.x.to_bytes(size, "big"), -3: n.y.to_bytes(size, "big")}


def thumbprint(pub):
    k = cose_key(pub, b"")
    del k[2]
    return h(cbor2.dumps(k, canonical=True))


def sign(priv, alg, prot, payload):
    tbs = cbor2.dumps(["Signature1", prot, b"", payload])
    if alg == EDDSA:
        return priv.sign(tbs)
    n = 32 if alg == ES256 else 48
    r, s = decode_dss_signature(priv.sign(tbs, ec.ECDSA(hashes.SHA256() if alg == ES256 else hashes.SHA384())))
    return r.to_bytes(n, "big") + s.to_bytes(n, "big")


def mth(leaves):
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return h(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def audit_path(m, leaves):
    """RFC 9162 section 2.1.3.1 PATH(m, D[n])."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return audit_path(m, leaves[:k]) + [mth(leaves[k:])]
    return audit_path(m - k, leaves[k:]) + [mth(leaves[:k])]


def make(d):
    issuer = ed25519.Ed25519PrivateKey.generate()
    ts = ec.generate_private_key(ec.SECP256R1())
    ikid, tkid = thumbprint(issuer.public_key()), thumbprint(ts.public_key())
    preimage = b"evidence from an independent implementation"
    prot = cbor2.dumps({1: EDDSA, 4: ikid, 15: {1: "https://py.example", 2: "interop:1"}, 258: -16,
                        259: "application/vnd.sluice.evidence+cbor"}, canonical=True)
    payload = h(preimage)
    stmt = cbor2.dumps(cbor2.CBORTag(18, [prot, {}, payload, sign(issuer, EDDSA, prot, payload)]), canonical=True)
    leaves = [h(b"\x00" + bytes([i])) for i in range(6)]
    leaves[4] = h(b"\x00" + record(stmt))
    root = mth(leaves)
    rprot = cbor2.dumps({1: ES256, 4: tkid, 15: {1: "https://py-ts.example", 2: "interop"}, 395: 1}, canonical=True)
    proof = cbor2.dumps([6, 4, audit_path(4, leaves)])
    receipt = cbor2.dumps(cbor2.CBORTag(18, [rprot, {396: {-1: [proof]}}, None, sign(ts, ES256, rprot, root)]),
                          canonical=True)
    tstmt = cbor2.dumps(cbor2.CBORTag(18, [prot, {394: [receipt]}, payload, stmt_sig(stmt)]), canonical=True)
    files = {"py_statement.cose": stmt, "py_receipt.cose": receipt, "py_transparent.cose": tstmt,
             "py_preimage.bin": preimage,
             "py_issuer.cose_key": cbor2.dumps(cose_key(issuer.public_key(), ikid), canonical=True),
             "py_ts.cose_key": cbor2.dumps(cose_key(ts.public_key(), tkid), canonical=True),
             "py_ts.pem": ts.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)}
    for name, data in files.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    verify_receipt(tstmt, receipt, ts.public_key())  # self-check


def stmt_sig(stmt):
    return parse_sign1(stmt)[4]


def main(argv):
    try:
        if len(argv) >= 4 and argv[1] == "verify-statement":
            pre = open(argv[4], "rb").read() if len(argv) > 4 else None
            verify_statement(open(argv[2], "rb").read(), load_key(argv[3]), pre)
            print("verified: statement")
        elif len(argv) == 5 and argv[1] == "verify-receipt":
            size, idx, root = verify_receipt(open(argv[2], "rb").read(), open(argv[3], "rb").read(),
                                             load_key(argv[4]))
            print("verified: receipt, leaf %d of %d, root %s" % (idx, size, root.hex()))
        elif len(argv) == 4 and argv[1] == "verify-transparent":
            t = open(argv[2], "rb").read()
            receipts = parse_sign1(t)[2].get(394, [])
            if not receipts:
                raise Fail("no receipts under 394")
            for r in receipts:
                verify_receipt(t, r, load_key(argv[3]))
            print("verified: %d receipts" % len(receipts))
        elif len(argv) == 3 and argv[1] == "make":
            make(argv[2])
            print("made")
        else:
            sys.stderr.write(__doc__)
            return 2
    except (Fail, ValueError, KeyError, IndexError, TypeError, cbor2.CBORDecodeError) as e:
        print("not verified: %s: %s" % (type(e).__name__, e))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
