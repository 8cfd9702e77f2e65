"""The encrypted lab (`gameday lab up --tls`): its own CA, the servers' certificates, and the
client options every lab client uses to speak TLS (and, for Redis, the ACL user) to them.

At every `up --tls` a fresh CA signs two server certificates: one for the DB instance (the
instance endpoint name and each node's loopback address) and one for the replication group (its
primary, reader and node endpoint names, each node's address, and 127.0.0.1 for the Sentinels).
Clients verify the certificate against the address they connect to, which is what the lab's DNS
server answered for the name; the names are listed too, so a client that connects by name (as on
AWS) verifies as well. Keys are ECDSA P-256 (generated in milliseconds: `up` stays fast) and
written 0600. docs/encrypted-lab.md describes the whole set-up.
"""
import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .config import MAX_CACHE_NODES, LabConfig
from .network.addresses import peer_address, server_address

REDIS_USERNAME = "gameday"  # the ACL user of an encrypted lab (the default user is off)
CA_NAME = "failover-gameday lab CA"
VALID_DAYS = 30


@dataclass(frozen=True)
class LabTls:
    """Where an encrypted lab's certificates are (under `<state dir>/tls`)."""
    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    def cert(self, service: str) -> Path:
        """`service` is `db` or `cache`."""
        return self.directory / f"{service}.pem"

    def key(self, service: str) -> Path:
        return self.directory / f"{service}.key"


def lab_tls(config: LabConfig) -> Optional[LabTls]:
    """The lab's certificate files when it is encrypted, else None."""
    return LabTls(config.path("tls")) if config.tls else None


# --------------------------------------------------------------------------- generation
def server_names(config: LabConfig) -> Dict[str, Tuple[List[str], List[str]]]:
    """Per server certificate, the DNS names and IP addresses its SANs cover."""
    cache_nodes = range(1, MAX_CACHE_NODES + 1)
    cache_dns = [config.cache_primary_name, config.cache_reader_name]
    cache_dns += [config.cache_node_name(f"shop-cache-{n:03d}") for n in cache_nodes]
    return {
        "db": ([config.db_endpoint_name, "localhost"], _with_twins([config.db_node_address(i) for i in range(2)])),
        "cache": (cache_dns + ["localhost"],
                  _with_twins([config.cache_node_address(n) for n in cache_nodes]) + ["127.0.0.1"]),
    }


def _with_twins(public: List[str]) -> List[str]:
    """A node's addresses: the public one, the server's private one, the replication peer one
    (woolab/network/addresses.py): the admin and replication connect to the latter two."""
    return public + [server_address(a) for a in public] + [peer_address(a) for a in public]


def generate(config: LabConfig) -> LabTls:
    """A fresh CA and the `db` and `cache` server certificates for this lab's names."""
    files = LabTls(config.path("tls"))
    files.directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    ca_key, ca_cert = make_ca(CA_NAME)
    write_key(files.ca_key, ca_key)
    write_cert(files.ca, ca_cert)
    for service, (dns, ips) in server_names(config).items():
        key, cert = make_server_cert(ca_key, ca_cert, f"{service}.{config.dns_zone_id}.lab", dns, ips)
        write_key(files.key(service), key)
        write_cert(files.cert(service), cert)
    return files


def _validity() -> Tuple[datetime.datetime, datetime.datetime]:
    now = datetime.datetime.now(datetime.timezone.utc)
    return now - datetime.timedelta(hours=1), now + datetime.timedelta(days=VALID_DAYS)


def make_ca(common_name: str):
    """A self-signed CA key and certificate (also used by tests for a second, wrong CA)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start, end = _validity()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_server_cert(ca_key, ca_cert, common_name: str, dns: List[str], ips: List[str]):
    """A server key and certificate signed by the CA, valid for `dns` names and `ips`.
    It may also serve as a TLS client certificate (Redis replicas present it to their primary)."""
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    start, end = _validity()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                  ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def write_key(path: Path, key) -> None:
    """A private key, created 0600 (never readable by others, not even for a moment)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


def write_cert(path: Path, cert) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.chmod(path, 0o644)


CA_IDENTIFIER = "woolab-lab-ca"  # the lab's CACertificateIdentifier (RDS names its own rds-ca-rsa2048-g1, ...)
USER_GROUP_ID = "shop-cache-users"  # the ElastiCache RBAC user group the ACL user stands for


def ca_details(tls: Optional[LabTls]) -> Optional[dict]:
    """What DescribeDBInstances shows of the CA (CACertificateIdentifier, CertificateDetails)."""
    if tls is None:
        return None
    cert = x509.load_pem_x509_certificate(tls.ca.read_bytes())
    return {"id": CA_IDENTIFIER, "valid_till": cert.not_valid_after_utc.timestamp()}


# --------------------------------------------------------------------------- client options
_CONTEXTS: Dict[str, ssl.SSLContext] = {}


def verified_context(ca: Path) -> ssl.SSLContext:
    """One shared verifying context per CA file (PyMySQL would build one per connection)."""
    if str(ca) not in _CONTEXTS:
        _CONTEXTS[str(ca)] = ssl.create_default_context(cafile=str(ca))
    return _CONTEXTS[str(ca)]


def mysql_options(tls: Optional[LabTls]) -> dict:
    """PyMySQL keyword arguments for a TCP connection to the lab's MariaDB."""
    return {"ssl": verified_context(tls.ca)} if tls else {"ssl_disabled": True}


def redis_tls_options(tls: Optional[LabTls]) -> dict:
    """redis-py keyword arguments for TLS (verified certificate and host) or nothing."""
    if tls is None:
        return {}
    return {"ssl": True, "ssl_ca_certs": str(tls.ca), "ssl_cert_reqs": "required", "ssl_check_hostname": True}


def redis_options(tls: Optional[LabTls], password: str) -> dict:
    """redis-py keyword arguments for a cache node: TLS + the ACL user, or the plain password."""
    if tls is None:
        return {"password": password}
    return {"username": REDIS_USERNAME, "password": password, **redis_tls_options(tls)}
