#!/usr/bin/python3
"""Build sluice evidence bundles with an implementation that is not sluice's: software keys
stand in for the TPM's AK and statement key, and the TPM structures (TPM2B_PUBLIC,
TPMS_ATTEST, TPMT_SIGNATURE) are marshalled here from the TPM 2.0 spec (Part 2), the COSE
objects from RFC 9052, the receipts from RFC 9162, the EAR from draft-ietf-rats-ear and the tar
+ index from docs/formats.md. `sluice audit` must accept the good bundle and name the broken
check in each faulty one.

usage: make_bundle.py DIR
writes DIR/ts.pem, DIR/verifier.pem, DIR/other.pem and DIR/<variant>.tar for every variant in
VARIANTS (good, bad-quote-pcr, bad-eventlog, bad-certify, wrong-verifier, verdict-other-nonce,
verdict-other-statement, verdict-statement-other, verdict-receipt-direct, receipt-other-tree,
traversal, index-mismatch).
"""
import hashlib
import io
import os
import struct
import sys
import tarfile

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from scitt_check import audit_path, mth, record, sign, thumbprint  # noqa: E402

ES256 = -7
SHA256 = 0x000B
ECC, ECDSA, NULL_ALG, P256 = 0x0023, 0x0018, 0x0010, 0x0003
FIXED_TPM, FIXED_PARENT, SDO, USER_AUTH, RESTRICTED, SIGN = 1 << 1, 1 << 4, 1 << 5, 1 << 6, 1 << 16, 1 << 18

VARIANTS = ["good", "bad-quote-pcr", "bad-eventlog", "bad-certify", "wrong-verifier", "verdict-other-nonce",
            "verdict-other-statement", "verdict-statement-other", "verdict-receipt-direct", "receipt-other-tree",
            "traversal", "index-mismatch"]


def h(b):
    return hashlib.sha256(b).digest()


def tpm2b(b):
    return struct.pack(">H", len(b)) + b


def tpmt_public(key, attrs):
    n = key.public_key().public_numbers()
    return (struct.pack(">HHI", ECC, SHA256, attrs) + tpm2b(b"")
            + struct.pack(">HHHHH", NULL_ALG, ECDSA, SHA256, P256, NULL_ALG)
            + tpm2b(n.x.to_bytes(32, "big")) + tpm2b(n.y.to_bytes(32, "big")))


def name(tpmt):
    return struct.pack(">H", SHA256) + h(tpmt)


def tpm_sign(key, msg):
    r, s = decode_dss_signature(key.sign(msg, ec.ECDSA(hashes.SHA256())))
    return struct.pack(">HH", ECDSA, SHA256) + tpm2b(r.to_bytes(32, "big")) + tpm2b(s.to_bytes(32, "big"))


def attest(kind, signer_name, extra, body):
    return (struct.pack(">IH", 0xFF544347, kind) + tpm2b(signer_name) + tpm2b(extra)
            + struct.pack(">QIIB", 1000, 1, 0, 1) + struct.pack(">Q", 0x2023) + body)


def pcr_select(pcrs):
    mask = 0
    for i in pcrs:
        mask |= 1 << i
    return struct.pack(">IHB", 1, SHA256, 3) + mask.to_bytes(4, "little")[:3]


def pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def cose_sign1(key, prot_map, payload, detached=False):
    prot = cbor2.dumps(prot_map, canonical=True)
    sig = sign(key, ES256, prot, payload)
    return cbor2.dumps(cbor2.CBORTag(18, [prot, {}, None if detached else payload, sig]), canonical=True)


def receipt_for(ts, stmt, others=5, index=2):
    leaves = [h(b"\x00" + b"other leaf %d" % i) for i in range(others)]
    leaves.insert(index, h(b"\x00" + record(stmt)))
    root = mth(leaves)
    prot = {1: ES256, 4: thumbprint(ts.public_key()), 15: {1: "https://ts.py.example"}, 395: 1}
    proof = cbor2.dumps([len(leaves), index, audit_path(index, leaves)])
    p = cbor2.dumps(prot, canonical=True)
    return cbor2.dumps(cbor2.CBORTag(18, [p, {396: {-1: [proof]}}, None, sign(ts, ES256, p, root)]), canonical=True)


def build(variant, ts, verifier, other):
    ak, sk = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ak_pub = tpmt_public(ak, FIXED_TPM | FIXED_PARENT | SDO | USER_AUTH | RESTRICTED | SIGN)
    sk_pub = tpmt_public(sk, FIXED_TPM | FIXED_PARENT | SDO | USER_AUTH | SIGN)
    nonce = os.urandom(32)
    # sluice event log (CEL-style): one rootfs event extends PCR 15 with H(type_be32 || content);
    # PCRs 0 and 7 have no events here, so they keep their reset value (zeros)
    content = b"rootfs record"
    event = h(struct.pack(">I", 1) + content)
    pcrs = {0: bytes(32), 7: bytes(32), 15: h(bytes(32) + event)}
    if variant == "bad-eventlog":
        content = b"another rootfs record"
    slog = cbor2.dumps([{0: 0, 1: 15, 2: [[SHA256, h(struct.pack(">I", 1) + content)]], 3: 1, 4: content}],
                       canonical=True)
    quoted = dict(pcrs)
    if variant == "bad-quote-pcr":
        quoted[15] = h(b"another rootfs")
    digest = h(b"".join(quoted[i] for i in sorted(quoted)))
    quote = attest(0x8018, name(ak_pub), nonce, pcr_select(sorted(pcrs)) + tpm2b(digest))
    certified = sk_pub if variant != "bad-certify" else tpmt_public(other, FIXED_TPM | FIXED_PARENT | SDO | SIGN)
    cert = attest(0x8017, name(ak_pub), nonce, tpm2b(name(certified)) + tpm2b(name(certified)))
    evidence = cbor2.dumps({
        1: "py-host", 2: nonce, 3: tpm2b(ak_pub), 4: quote, 5: tpm_sign(ak, quote),
        6: [[SHA256, i, pcrs[i]] for i in sorted(pcrs)], 7: b"", 8: slog,
        9: {1: h(b"root"), 2: "sha256", 3: 42, 4: 4096, 5: ["/proc", "/sys"]},
        10: tpm2b(sk_pub), 11: cert, 12: tpm_sign(ak, cert), 14: 1700000000}, canonical=True)
    skid = thumbprint(sk.public_key())
    stmt = cose_sign1(sk, {1: ES256, 4: skid, 15: {1: "https://py-host", 2: "rootfs:py-host"}, 258: -16,
                           259: "application/vnd.sluice.evidence+cbor"}, h(evidence))
    ear = {4: 1700000600, 6: 1700000000,
           10: nonce if variant != "verdict-other-nonce" else os.urandom(32),
           265: "tag:github.com,2023:veraison/ear",
           266: {"sluice": {1000: 2, 1001: {3: 2, 4: 2}, 1003: "policy:py"}},
           1004: {0: "py", 1: "0"}, "sluice.tools": ["stock.price"], "sluice.host-id": "py-host",
           "sluice.statement-hash": h(stmt) if variant != "verdict-other-statement" else h(b"x"),
           "sluice.credential": b"\x00wrapped"}
    vkey = verifier if variant != "wrong-verifier" else other
    verdict = cose_sign1(vkey, {1: ES256, 3: "application/eat+cwt", 4: thumbprint(vkey.public_key())},
                         cbor2.dumps(ear, canonical=True))
    rcpt = receipt_for(ts, stmt)
    if variant == "receipt-other-tree":
        rcpt = receipt_for(ts, cose_sign1(sk, {1: ES256, 4: skid, 15: {1: "a", 2: "b"}}, b"other"))
    # the verifier registers its own signed statement of the verdict (hash envelope); the verdict
    # receipt is for that statement ("verdict-receipt-direct": legacy, the verdict itself)
    covered = verdict if variant != "verdict-statement-other" else verdict + b"x"
    vstmt = cose_sign1(verifier, {1: ES256, 4: thumbprint(verifier.public_key()),
                                  15: {1: "https://verifier.py.example", 2: "verdict:py-host"}, 258: -16,
                                  259: "application/eat+cwt"}, h(covered))
    files = [("evidence.cbor", evidence), ("statement.cose", stmt), ("receipt.cose", rcpt), ("verdict.cose", verdict)]
    if variant == "verdict-receipt-direct":
        files.append(("verdict-receipt.cose", receipt_for(ts, verdict, 3, 3)))
    else:
        files += [("verdict-statement.cose", vstmt), ("verdict-receipt.cose", receipt_for(ts, vstmt, 3, 3))]
    index = {n: {1: len(d), 2: h(d)} for n, d in files}
    if variant == "index-mismatch":
        index["receipt.cose"][2] = h(b"not it")
    files.append(("index.cbor", cbor2.dumps(index, canonical=True)))
    if variant == "traversal":
        files.insert(0, ("../escape", b"x"))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for n, d in files:
            ti = tarfile.TarInfo(n)
            ti.size, ti.mode, ti.mtime = len(d), 0o444, 0
            tar.addfile(ti, io.BytesIO(d))
    return out.getvalue()


def main(d):
    ts, verifier, other = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    for n, k in (("ts.pem", ts), ("verifier.pem", verifier), ("other.pem", other)):
        with open(os.path.join(d, n), "wb") as f:
            f.write(pem(k))
    for v in VARIANTS:
        with open(os.path.join(d, v + ".tar"), "wb") as f:
            f.write(build(v, ts, verifier, other))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        sys.exit(2)
    main(sys.argv[1])
