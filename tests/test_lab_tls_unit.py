"""The encrypted lab's certificates and settings without servers: what the SANs cover, who may
read the keys, which CA verifies them, and what `gameday lab env` / the facade say about TLS."""
import ipaddress
import ssl
import stat

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature

from gameday import cli
from woolab import manage, tls
from woolab.config import MAX_CACHE_NODES, LabConfig
from woolab.facade import elasticache_shapes
from woolab.network.addresses import peer_address, server_address


@pytest.fixture
def config(tmp_path) -> LabConfig:
    return LabConfig(state_dir=tmp_path, base_port=26300, tls=True)


def sans(path):
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(names.get_values_for_type(x509.DNSName)), {str(i) for i in names.get_values_for_type(x509.IPAddress)}


def test_certificates_cover_every_endpoint_name_and_node_address(config):
    files = tls.generate(config)
    db_dns, db_ips = sans(files.cert("db"))
    assert config.db_endpoint_name in db_dns
    public = [config.db_node_address(0), config.db_node_address(1)]
    # each node's own address, and the private and replication twins behind the lab's relay
    assert db_ips == set(public) | {server_address(a) for a in public} | {peer_address(a) for a in public}
    cache_dns, cache_ips = sans(files.cert("cache"))
    assert {config.cache_primary_name, config.cache_reader_name} <= cache_dns
    assert {config.cache_node_name(f"shop-cache-{n:03d}") for n in range(1, MAX_CACHE_NODES + 1)} <= cache_dns
    nodes = {config.cache_node_address(n) for n in range(1, MAX_CACHE_NODES + 1)}
    twins = {server_address(a) for a in nodes} | {peer_address(a) for a in nodes}
    assert cache_ips == nodes | twins | {"127.0.0.1"}  # 127.0.0.1: the Sentinels
    assert all(ipaddress.ip_address(ip).is_loopback for ip in db_ips | cache_ips)
    assert not db_dns & {config.cache_primary_name}  # each service's certificate names only its own endpoints


def test_private_keys_are_readable_by_the_owner_only(config):
    files = tls.generate(config)
    for key in (files.ca_key, files.key("db"), files.key("cache")):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key
    for cert in (files.ca, files.cert("db"), files.cert("cache")):
        assert stat.S_IMODE(cert.stat().st_mode) == 0o644, cert


def test_server_certificates_verify_against_the_lab_ca_and_not_against_another(config):
    files = tls.generate(config)
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    _, other = tls.make_ca("another CA")
    for service in ("db", "cache"):
        cert = x509.load_pem_x509_certificate(files.cert(service).read_bytes())
        cert.verify_directly_issued_by(ca)
        with pytest.raises((ValueError, InvalidSignature)):
            cert.verify_directly_issued_by(other)
    context = ssl.create_default_context(cafile=str(files.ca))  # Python's TLS accepts the CA file
    assert context.cert_store_stats()["x509_ca"] == 1


def test_a_second_up_makes_a_fresh_ca(config):
    first = tls.generate(config).ca.read_bytes()
    assert tls.generate(config).ca.read_bytes() != first


def test_plain_lab_env_adds_nothing_and_the_encrypted_one_names_ca_and_user(config):
    assert manage.tls_env(LabConfig(state_dir=config.state_dir)) == {}
    env = manage.tls_env(config)
    ca = str(config.path("tls", "ca.pem"))
    assert env["GAMEDAY_MYSQL_TLS"] == env["GAMEDAY_REDIS_TLS"] == "true"
    assert env["GAMEDAY_MYSQL_CA"] == env["GAMEDAY_REDIS_CA"] == ca
    assert env["GAMEDAY_REDIS_USERNAME"] == tls.REDIS_USERNAME


def test_tls_comes_from_the_environment_like_the_timing(monkeypatch, tmp_path):
    monkeypatch.setenv("GAMEDAY_LAB_TLS", "1")
    assert LabConfig.from_env(state_dir=tmp_path).tls is True
    monkeypatch.delenv("GAMEDAY_LAB_TLS")
    assert LabConfig.from_env(state_dir=tmp_path).tls is False


def test_lab_client_options_verify_certificate_and_host(config):
    files = tls.generate(config)
    options = tls.redis_options(files, "pw")
    assert options["username"] == tls.REDIS_USERNAME and options["ssl_cert_reqs"] == "required"
    assert options["ssl_check_hostname"] is True and options["ssl_ca_certs"] == str(files.ca)
    assert tls.redis_options(None, "pw") == {"password": "pw"}
    context = tls.mysql_options(files)["ssl"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_replication_group_reports_transit_encryption_and_a_user_group():
    encrypted = elasticache_shapes._transit({"transit_encryption": True, "user_group_ids": ["shop-cache-users"]})
    assert encrypted == {"AuthTokenEnabled": False, "TransitEncryptionEnabled": True,
                         "TransitEncryptionMode": "required", "UserGroupIds": ["shop-cache-users"]}
    assert "UserGroupIds" not in elasticache_shapes._transit({"transit_encryption": True}, cluster=True)
    assert elasticache_shapes._transit({}) == {"AuthTokenEnabled": False, "TransitEncryptionEnabled": False}


def test_run_tls_on_aws_is_one_line(capsys):
    code = cli.main(["run", "rds-force-failover", "--target", "aws", "--tls", "--region", "us-east-1"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "--tls starts an encrypted lab" in err
