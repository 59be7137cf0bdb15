#!/usr/bin/python3
"""Make good and bad signed statements for sluice-ts tests (python3-cbor2 + cryptography).

  ts_forge.py ISSUER_KEY.pem OUTDIR

Writes OUTDIR/<name>.cose for: good, unprot (good, with a non-empty unprotected header),
garbage, untagged, tag17, trailing, noclaims, nosub, nokid, badsig, detached, ctype_envelope,
unknown_kid, es384 (valid ES384 by a P-384 key the trust store also holds: OUTDIR/p384.pub.pem),
big (300 KiB payload), indefinite (indefinite-length array), crit_unknown, x5chain (signed
by the key of its own protected self-signed x5chain leaf, no kid), x5chain_forged (signed by
another key).
The kid is SHA-256 of the issuer key's SubjectPublicKeyInfo DER.
"""
import hashlib
import os
import sys

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def spki_kid(pub):
    der = pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).digest()


def sign(key, prot, payload, alg_hash=hashes.SHA256(), size=32, detached=False, unprot=None, tag=18):
    pb = cbor2.dumps(prot, canonical=True)
    tbs = cbor2.dumps(["Signature1", pb, b"", payload])
    r, s = decode_dss_signature(key.sign(tbs, ec.ECDSA(alg_hash)))
    sig = r.to_bytes(size, "big") + s.to_bytes(size, "big")
    arr = [pb, unprot or {}, None if detached else payload, sig]
    return cbor2.dumps(cbor2.CBORTag(tag, arr) if tag else arr, canonical=True)


def main():
    keyfile, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    key = serialization.load_pem_private_key(open(keyfile, "rb").read(), None)
    kid = spki_kid(key.public_key())
    payload = os.urandom(32)
    claims = {1: "https://host.example/agent", 2: "rootfs:test"}
    base = {1: -7, 4: kid, 15: claims, 258: -16, 259: "application/vnd.sluice.evidence+cbor"}
    w = {}
    w["good"] = sign(key, base, payload)
    w["unprot"] = sign(key, base, os.urandom(32), unprot={33: b"junk", "note": "dropped before logging"})
    w["garbage"] = b"\xff\x00this is not cbor"
    w["untagged"] = sign(key, base, os.urandom(32), tag=None)
    w["tag17"] = sign(key, base, os.urandom(32), tag=17)
    w["trailing"] = sign(key, base, os.urandom(32)) + b"\x00"
    w["noclaims"] = sign(key, {k: v for k, v in base.items() if k != 15}, os.urandom(32))
    w["nosub"] = sign(key, {**base, **{15: {1: claims[1]}}}, os.urandom(32))
    w["nokid"] = sign(key, {k: v for k, v in base.items() if k != 4}, os.urandom(32))
    good = cbor2.loads(w["good"]).value
    forged = bytearray(good[3])
    forged[10] ^= 1
    w["badsig"] = cbor2.dumps(cbor2.CBORTag(18, [good[0], {}, good[2], bytes(forged)]))
    w["detached"] = sign(key, base, os.urandom(32), detached=True)
    w["ctype_envelope"] = sign(key, {**base, **{3: "application/json"}}, os.urandom(32))
    other = ec.generate_private_key(ec.SECP256R1())
    w["unknown_kid"] = sign(other, {**base, **{4: spki_kid(other.public_key())}}, os.urandom(32))
    p384 = ec.generate_private_key(ec.SECP384R1())
    open(os.path.join(out, "p384.pub.pem"), "wb").write(p384.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    w["es384"] = sign(p384, {**base, **{1: -35, 4: spki_kid(p384.public_key())}}, os.urandom(32),
                      alg_hash=hashes.SHA384(), size=48)
    w["big"] = sign(key, {k: v for k, v in base.items() if k not in (258, 259)}, os.urandom(300 * 1024))
    w["indefinite"] = b"\xd2\x9f" + b"".join(cbor2.dumps(x) for x in good) + b"\xff"
    w["crit_unknown"] = sign(key, {**base, **{2: [999], 999: 1}}, os.urandom(32))
    # open registration: the key travels in a protected x5chain (self-signed leaf), no kid
    import datetime
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    xk = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "open issuer")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(xk.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(xk, hashes.SHA256()))
    der = cert.public_bytes(serialization.Encoding.DER)
    xbase = {1: -7, 15: claims, 33: der, 258: -16, 259: "application/vnd.sluice.evidence+cbor"}
    w["x5chain"] = sign(xk, xbase, os.urandom(32))
    w["x5chain_forged"] = sign(ec.generate_private_key(ec.SECP256R1()), xbase, os.urandom(32))
    for name, data in w.items():
        open(os.path.join(out, name + ".cose"), "wb").write(data)


if __name__ == "__main__":
    main()
