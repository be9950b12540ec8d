"""C2PA provenance: sign a finished video with a manifest, and read one back.

A :class:`Signer` holds the certificate chain and signs bytes; :class:`PemSigner` does it with
a PEM private key on disk. Anything else with the same two attributes (a key in a KMS or an
HSM) can stand in for it: c2pa-python only ever calls :meth:`Signer.sign` through its callback
signer. c2pa-python and cryptography come with the ``provenance`` extra and are imported here,
lazily, so the rest of Reel runs without them.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from reel.media.errors import MediaError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

__all__ = [
    "TRAINED_ALGORITHMIC_MEDIA",
    "Facts",
    "ManifestSummary",
    "PemSigner",
    "ProvenanceError",
    "Signer",
    "read_manifest",
    "require",
    "sign_video",
]

#: IPTC digital source type of media made by a trained model.
TRAINED_ALGORITHMIC_MEDIA: Final = (
    "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
)
_INSTALL: Final = "C2PA signing needs the provenance extra: pip install 'reel-server[provenance]'"

Algorithm = Literal["es256", "es384", "es512", "ps256", "ed25519"]


class ProvenanceError(MediaError):
    """A manifest could not be made, signed or read."""

    default_message = "The video could not be signed."


class Signer(Protocol):
    """What signing needs: a certificate chain and a way to sign bytes with its leaf's key."""

    #: COSE algorithm of :meth:`sign`'s signatures.
    @property
    def alg(self) -> Algorithm: ...

    #: PEM certificates, the signing (leaf) certificate first, up to but not including the root.
    @property
    def chain_pem(self) -> str: ...

    def sign(self, data: bytes) -> bytes:
        """A COSE signature of ``data``: raw ``r || s`` for ECDSA, PSS for RSA."""
        ...


class PemSigner:
    """Signs with a private key given as PEM (RSA, EC P-256/384/521 or Ed25519)."""

    def __init__(self, chain_pem: str, key_pem: bytes) -> None:
        try:
            from cryptography import x509
            from cryptography.hazmat.primitives.serialization import load_pem_private_key
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ProvenanceError(_INSTALL) from exc
        try:
            certs = x509.load_pem_x509_certificates(chain_pem.encode())
            key = load_pem_private_key(key_pem, password=None)
        except ValueError as exc:
            raise ProvenanceError(f"The C2PA certificate or key is not valid PEM: {exc}") from exc
        leaf_key = certs[0].public_key()
        if leaf_key.public_bytes(*_spki()) != key.public_key().public_bytes(*_spki()):
            raise ProvenanceError("The C2PA private key does not belong to the first certificate")
        self._key = key
        self.chain_pem = chain_pem
        self.alg: Algorithm = _algorithm(key)

    def sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            digest = {"es256": hashes.SHA256(), "es384": hashes.SHA384()}.get(
                self.alg, hashes.SHA512()
            )
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
            size = (key.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if isinstance(key, rsa.RSAPrivateKey):
            pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
            return key.sign(data, pss, hashes.SHA256())
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return key.sign(data)
        raise ProvenanceError("Unsupported C2PA key type")  # pragma: no cover - checked in init


def _spki() -> tuple[Any, Any]:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return Encoding.DER, PublicFormat.SubjectPublicKeyInfo


def _algorithm(key: PrivateKeyTypes) -> Algorithm:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, ec.EllipticCurvePrivateKey):
        curves: dict[str, Algorithm] = {
            "secp256r1": "es256",
            "secp384r1": "es384",
            "secp521r1": "es512",
        }
        if key.curve.name in curves:
            return curves[key.curve.name]
    elif isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    elif isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise ProvenanceError("C2PA keys must be EC P-256/384/521, RSA or Ed25519")


@dataclass(frozen=True, slots=True)
class Facts:
    """What a manifest says about a generated video."""

    #: Reel's version.
    version: str
    #: The model (models-file name) and engine that made the video.
    model: str
    engine: str
    #: The start image of an image-to-video task (a PNG), recorded as an ingredient.
    input_image: Path | None = None
    title: str = "video.mp4"


def _manifest(facts: Facts) -> dict[str, object]:
    model = facts.model if facts.engine == facts.model else f"{facts.model} ({facts.engine})"
    agent = {"name": f"Reel, model {model}", "version": facts.version}
    return {
        "claim_generator_info": [{"name": "Reel", "version": facts.version}],
        "title": facts.title,
        "format": "video/mp4",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                            "softwareAgent": agent,
                            "parameters": {"model": facts.model, "engine": facts.engine},
                        }
                    ]
                },
            }
        ],
    }


def sign_video(
    src: Path, dst: Path, signer: Signer, facts: Facts, *, tsa_url: str | None = None
) -> None:
    """Write ``src`` with an embedded, signed C2PA manifest to ``dst`` (atomically).

    The media data is left as it was (only the manifest box is added), so the file decodes
    exactly as before, audio included. ``tsa_url`` timestamps the signature (RFC 3161).
    """
    c2pa = _c2pa()
    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(6)}.part")
    try:
        callback_signer = c2pa.Signer.from_callback(
            signer.sign, getattr(c2pa.C2paSigningAlg, signer.alg.upper()), signer.chain_pem, tsa_url
        )
        with c2pa.Context() as context, c2pa.Builder(_manifest(facts), context) as builder:
            if facts.input_image is not None:
                with facts.input_image.open("rb") as image:
                    builder.add_ingredient(
                        {"title": facts.input_image.name, "relationship": "inputTo"},
                        "image/png",
                        image,
                    )
            builder.sign_file(src, tmp, callback_signer)
        os.replace(tmp, dst)
    except c2pa.C2paError as exc:
        raise ProvenanceError() from exc
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True, slots=True)
class ManifestSummary:
    """The active manifest of a file, as a verifier sees it."""

    #: ``Trusted`` (chain ends in a trust anchor), ``Valid`` (intact, signer not trusted here)
    #: or ``Invalid``.
    validation_state: str
    #: Validation codes of the active manifest, e.g. ``signingCredential.untrusted``.
    status_codes: Sequence[str]
    claim_generator: str
    signer: str
    issuer: str
    signed_at: str | None
    actions: Sequence[Mapping[str, object]]
    ingredients: Sequence[str]
    raw: Mapping[str, object] = field(repr=False)


def read_manifest(path: Path, *, trust_anchors_pem: str | None = None) -> ManifestSummary | None:
    """The file's active manifest and its validation, or ``None`` when it carries none.

    ``trust_anchors_pem`` lists root certificates to trust; without it no signer is trusted
    and an intact manifest is ``Valid``, not ``Trusted``.
    """
    c2pa = _c2pa()
    config: dict[str, object] = {}
    if trust_anchors_pem:
        config["trust"] = {"trust_anchors": trust_anchors_pem}
    try:
        with (
            c2pa.Context.from_dict(config) as context,
            c2pa.Reader(str(path), context=context) as reader,
        ):
            store: dict[str, Any] = json.loads(reader.json())
    except c2pa.C2paError as exc:
        if type(exc).__name__ in ("ManifestNotFound", "_C2paManifestNotFound") or (
            "ManifestNotFound" in str(exc)
        ):
            return None
        raise ProvenanceError("The file's C2PA manifest could not be read.") from exc
    active: dict[str, Any] = store.get("manifests", {}).get(store.get("active_manifest"), {})
    if not active:
        return None
    return _summary(store, active)


def _summary(store: Mapping[str, Any], active: Mapping[str, Any]) -> ManifestSummary:
    actions: list[Mapping[str, object]] = []
    for assertion in active.get("assertions", []):
        if str(assertion.get("label", "")).startswith("c2pa.actions"):
            actions += assertion.get("data", {}).get("actions", [])
    results = store.get("validation_results", {}).get("activeManifest", {})
    codes = [str(s.get("code")) for s in store.get("validation_status", []) or []]
    codes += [str(s.get("code")) for s in results.get("failure", [])]
    generator = ", ".join(
        f"{g.get('name', '')} {g.get('version', '')}".strip()
        for g in active.get("claim_generator_info", [])
    )
    info = active.get("signature_info", {})
    return ManifestSummary(
        validation_state=str(store.get("validation_state", "Invalid")),
        status_codes=sorted(set(codes)),
        claim_generator=generator or str(active.get("claim_generator", "")),
        signer=str(info.get("common_name", "")),
        issuer=str(info.get("issuer", "")),
        signed_at=info.get("time"),
        actions=actions,
        ingredients=[str(i.get("title", "")) for i in active.get("ingredients", [])],
        raw=dict(store),
    )


def require() -> None:
    """Raise :class:`ProvenanceError` unless c2pa-python is installed."""
    _c2pa()


def _c2pa() -> Any:
    try:
        import c2pa
    except ImportError as exc:
        raise ProvenanceError(_INSTALL) from exc
    return c2pa
