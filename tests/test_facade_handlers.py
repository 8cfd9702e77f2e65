"""Request/response shapes of every facade operation, driven by real boto3 clients against the
facade's stand-alone HTTP server. The lab behind it is ``ShapeOnlyFakeLab``: an in-memory test
double of the Lab interface (statuses flip, nothing fails over) used ONLY here to check shapes
and refusals. Real failovers are checked in test_facade_lab.py against the real lab."""

import copy
import datetime as dt
import threading
import time
from types import SimpleNamespace

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError

from woolab.errors import LabInvalidState, LabNotFound
from woolab.events import EventLog
from woolab.facade import server

ACCOUNT, REGION = "123456789012", "us-east-1"
DB_ARN = f"arn:aws:rds:{REGION}:{ACCOUNT}:db:shop-db"
RG_ARN = f"arn:aws:elasticache:{REGION}:{ACCOUNT}:replicationgroup:shop-cache"
NODE_ARN = f"arn:aws:elasticache:{REGION}:{ACCOUNT}:cluster:shop-cache-001"


class ShapeOnlyFakeLab:
    """In-memory stand-in for woolab.lab.Lab: same snapshot shape and mutation signatures;
    mutations set the AWS-visible status and record events, tests call ``finish()`` to settle."""

    def __init__(self, tmp_path, multi_az=True, allow_primary_delete=False):
        self.config = SimpleNamespace(region=REGION, account_id=ACCOUNT, min_failover_interval=0.0,
                                      allow_primary_delete=allow_primary_delete)
        self.events = EventLog(tmp_path / "events.jsonl")
        self.calls = []
        node = lambda n, az, role: {"id": f"shop-cache-00{n}", "replication_group_id": "shop-cache",  # noqa: E731
                                    "node_group_id": "0001", "az": az, "address": "127.0.0.1",
                                    "port": 15380 + n, "role": role, "status": "available", "pid": 200 + n,
                                    "created_at": 1700000000.0, "node_type": "cache.lab.small"}
        self.state = {
            "region": REGION, "account_id": ACCOUNT,
            "db_instances": {"shop-db": {
                "id": "shop-db", "engine": "mariadb", "engine_version": "10.11.14", "status": "available",
                "multi_az": multi_az, "endpoint": {"address": "127.0.0.1", "port": 15306},
                "primary": "shop-db-a", "standby": "shop-db-b" if multi_az else None,
                "nodes": {"shop-db-a": {"az": "us-east-1a", "port": 15307, "role": "primary", "pid": 1},
                          "shop-db-b": {"az": "us-east-1b", "port": 15308, "role": "standby", "pid": 2}},
                "db_name": "shop", "master_username": "admin", "instance_class": "db.lab.small",
                "created_at": 1700000000.0, "last_failover_at": None, "tags": {"chaos:allowed": "true"}}},
            "replication_groups": {"shop-cache": {
                "id": "shop-cache", "status": "available", "automatic_failover": True, "multi_az": True,
                "engine": "redis", "engine_version": "7.0.15",
                "primary_endpoint": {"address": "127.0.0.1", "port": 15379},
                "reader_endpoint": {"address": "127.0.0.1", "port": 15380},
                "node_groups": {"0001": {"status": "available", "members": ["shop-cache-001", "shop-cache-002"]}},
                "tags": {"chaos:allowed": "true"}}},
            "cache_clusters": {"shop-cache-001": node(1, "us-east-1a", "primary"),
                               "shop-cache-002": node(2, "us-east-1b", "replica")},
        }

    def snapshot(self):
        return copy.deepcopy(self.state)

    def _get(self, table, key):
        if key not in self.state[table]:
            raise LabNotFound(f"{key} not found")
        return self.state[table][key]

    def start_db_reboot(self, instance_id, force_failover):
        self.calls.append(("reboot", instance_id, force_failover))
        db = self._get("db_instances", instance_id)
        if db["status"] != "available":
            raise LabInvalidState("busy")
        db["status"] = "rebooting"
        if force_failover:
            self.events.record("db-instance", instance_id, "Multi-AZ instance failover started.",
                               "RDS-EVENT-0013", ["failover"])

    def start_db_cluster_failover(self, cluster_id, target=None):
        self.calls.append(("cluster-failover", cluster_id, target))
        if cluster_id not in self.state.get("db_clusters", {}):
            raise LabNotFound(f"DB cluster {cluster_id} not found")
        self.state["db_clusters"][cluster_id]["status"] = "failing-over"
        return target or "reader"

    def start_cache_primary_loss(self, replication_group_id, node_group_id):
        group_id = replication_group_id
        self.calls.append(("primary-loss", group_id, node_group_id))
        self._get("replication_groups", group_id)["status"] = "modifying"
        self.events.record("replication-group", group_id, f"Test Failover API called for node group {node_group_id}")

    def start_delete_cache_node(self, cache_cluster_id):
        cluster_id = cache_cluster_id
        self.calls.append(("delete", cluster_id))
        self._get("cache_clusters", cluster_id)["status"] = "deleting"

    def start_add_cache_node(self, replication_group_id, cache_cluster_id=None, az=None):
        group_id, cluster_id = replication_group_id, cache_cluster_id
        self.calls.append(("add", group_id, cluster_id, az))
        group = self._get("replication_groups", group_id)
        if group["status"] != "available":
            raise LabInvalidState("busy")
        group["status"] = "modifying"
        number = len(self.state["cache_clusters"]) + 1
        new_id = cluster_id or f"{group_id}-{number:03d}"
        self.state["cache_clusters"][new_id] = dict(self.state["cache_clusters"]["shop-cache-002"], id=new_id,
                                                    az=az or "us-east-1c", status="creating", port=15380 + number)
        group["node_groups"]["0001"]["members"].append(new_id)
        return new_id

    def set_tags(self, kind, resource_id, tags):
        table = {"db": "db_instances", "replication-group": "replication_groups", "cache-cluster": "cache_clusters"}
        self._get(table[kind], resource_id).setdefault("tags", {}).update(tags)

    def remove_tags(self, kind, resource_id, keys):
        table = {"db": "db_instances", "replication-group": "replication_groups", "cache-cluster": "cache_clusters"}
        tags = self._get(table[kind], resource_id).setdefault("tags", {})
        for key in keys:
            tags.pop(key, None)

    def start_az_power_interruption(self, az, seconds, node_kinds=None):
        if az not in ("us-east-1a", "us-east-1b", "us-east-1c"):
            raise LabNotFound(f"Availability Zone {az} not found")
        self.calls.append(("power-off", az, seconds))
        return []

    def end_az_power_interruption(self, az):
        self.calls.append(("power-on", az))

    def impair_network(self, values):
        if values.get("az") not in ("us-east-1a", "us-east-1b", "us-east-1c"):
            raise LabInvalidState(f"unknown AZ {values.get('az')!r}")
        self.calls.append(("impair", dict(values)))
        self.impairments = getattr(self, "impairments", []) + [dict(values)]
        return dict(values)

    def clear_network(self, az=None):
        self.calls.append(("clear", az))
        ended = [i for i in getattr(self, "impairments", []) if az is None or i["az"] == az]
        self.impairments = [i for i in getattr(self, "impairments", []) if i not in ended]
        return ended

    def network_impairments(self):
        return list(getattr(self, "impairments", []))

    def finish(self):
        """Settle every running change (what the real lab's background threads do)."""
        self.state["db_instances"]["shop-db"]["status"] = "available"
        self.state["replication_groups"]["shop-cache"]["status"] = "available"
        for cluster in self.state["cache_clusters"].values():
            cluster["status"] = "available"


@pytest.fixture
def fake_lab(tmp_path):
    return ShapeOnlyFakeLab(tmp_path)


@pytest.fixture
def endpoint(fake_lab):
    httpd = server.serve(fake_lab)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def client(endpoint, service):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": 1}))


@pytest.fixture
def rds(endpoint):
    return client(endpoint, "rds")


@pytest.fixture
def ec(endpoint):
    return client(endpoint, "elasticache")


def error_of(exc_info):
    return exc_info.value.response["Error"]["Code"], exc_info.value.response["ResponseMetadata"]["HTTPStatusCode"]


# ----------------------------------------------------------------------------- RDS


def test_describe_db_instances_reports_endpoint_azs_and_tags(rds):
    (instance,) = rds.describe_db_instances(DBInstanceIdentifier="shop-db")["DBInstances"]
    assert instance["DBInstanceStatus"] == "available"
    assert instance["Endpoint"] == {"Address": "127.0.0.1", "Port": 15306}
    assert (instance["AvailabilityZone"], instance["SecondaryAvailabilityZone"]) == ("us-east-1a", "us-east-1b")
    assert instance["MultiAZ"] is True and instance["Engine"] == "mariadb"
    assert instance["DBInstanceArn"] == DB_ARN
    assert instance["TagList"] == [{"Key": "chaos:allowed", "Value": "true"}]
    assert [i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"]] == ["shop-db"]


def test_describe_unknown_db_instance_is_db_instance_not_found_404(rds):
    with pytest.raises(ClientError) as err:
        rds.describe_db_instances(DBInstanceIdentifier="nope")
    assert error_of(err) == ("DBInstanceNotFound", 404)


def test_describe_db_instances_filters_by_engine(rds):
    assert rds.describe_db_instances(Filters=[{"Name": "engine", "Values": ["postgres"]}])["DBInstances"] == []


def test_reboot_with_force_failover_answers_rebooting_and_asks_the_lab_to_fail_over(rds, fake_lab):
    instance = rds.reboot_db_instance(DBInstanceIdentifier="shop-db", ForceFailover=True)["DBInstance"]
    assert instance["DBInstanceStatus"] == "rebooting"
    assert fake_lab.calls == [("reboot", "shop-db", True)]


def test_reboot_while_rebooting_is_invalid_db_instance_state(rds):
    rds.reboot_db_instance(DBInstanceIdentifier="shop-db")
    with pytest.raises(ClientError) as err:
        rds.reboot_db_instance(DBInstanceIdentifier="shop-db")
    assert error_of(err) == ("InvalidDBInstanceState", 400)


def test_force_failover_of_single_az_instance_is_invalid_parameter_combination(tmp_path):
    lab = ShapeOnlyFakeLab(tmp_path, multi_az=False)
    status, _, body = server.handle(lab, "POST", "/", {}, b"Action=RebootDBInstance&Version=2014-10-31"
                                    b"&DBInstanceIdentifier=shop-db&ForceFailover=true")
    assert status == 400 and b"<Code>InvalidParameterCombination</Code>" in body
    assert lab.calls == []


def test_reboot_unknown_instance_is_not_found(rds):
    with pytest.raises(ClientError) as err:
        rds.reboot_db_instance(DBInstanceIdentifier="nope", ForceFailover=True)
    assert error_of(err) == ("DBInstanceNotFound", 404)


def test_waiter_db_instance_available_returns_once_the_lab_settles(rds, fake_lab):
    rds.reboot_db_instance(DBInstanceIdentifier="shop-db", ForceFailover=True)
    threading.Timer(0.3, fake_lab.finish).start()
    rds.get_waiter("db_instance_available").wait(DBInstanceIdentifier="shop-db",
                                                 WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    with pytest.raises(WaiterError):
        rds.get_waiter("db_instance_deleted").wait(DBInstanceIdentifier="shop-db",
                                                   WaiterConfig={"Delay": 0.05, "MaxAttempts": 2})


def test_rds_describe_events_filters_by_source_time_and_category(rds, fake_lab):
    now = time.time()
    fake_lab.events.record("db-instance", "shop-db", "old", "RDS-EVENT-0006", ["availability"], at=now - 7200)
    fake_lab.events.record("db-instance", "shop-db", "Multi-AZ instance failover started.", "RDS-EVENT-0013",
                           ["failover"], at=now - 10)
    fake_lab.events.record("db-instance", "shop-db", "DB instance restarted", "RDS-EVENT-0006",
                           ["availability"], at=now - 5)
    fake_lab.events.record("replication-group", "shop-cache", "not rds", at=now - 5)
    fake_lab.events.record("lab", "shop-db", "internal marker", at=now - 5)
    events = rds.describe_events(SourceType="db-instance", SourceIdentifier="shop-db", Duration=60)["Events"]
    assert [e["Message"] for e in events] == ["Multi-AZ instance failover started.", "DB instance restarted"]
    assert events[0]["EventCategories"] == ["failover"] and events[0]["SourceArn"] == DB_ARN
    assert "EventId" not in events[0] and events[0]["Date"].tzinfo is not None
    start = dt.datetime.fromtimestamp(now - 7300, dt.timezone.utc)
    assert len(rds.describe_events(StartTime=start)["Events"]) == 3
    assert [e["Message"] for e in rds.describe_events(EventCategories=["failover"])["Events"]] == [
        "Multi-AZ instance failover started."]
    end = dt.datetime.fromtimestamp(now - 8, dt.timezone.utc)
    assert len(rds.describe_events(StartTime=start, EndTime=end)["Events"]) == 2
    assert rds.describe_events(SourceType="db-cluster")["Events"] == []


def test_rds_tags_list_add_remove_by_arn(rds):
    assert rds.list_tags_for_resource(ResourceName=DB_ARN)["TagList"] == [{"Key": "chaos:allowed", "Value": "true"}]
    rds.add_tags_to_resource(ResourceName=DB_ARN, Tags=[{"Key": "team", "Value": "sre"}])
    rds.remove_tags_from_resource(ResourceName=DB_ARN, TagKeys=["chaos:allowed"])
    assert rds.list_tags_for_resource(ResourceName=DB_ARN)["TagList"] == [{"Key": "team", "Value": "sre"}]
    with pytest.raises(ClientError) as err:
        rds.list_tags_for_resource(ResourceName=DB_ARN.replace("shop-db", "other"))
    assert error_of(err) == ("DBInstanceNotFound", 404)


# ----------------------------------------------------------------------------- ElastiCache


def test_describe_replication_groups_reports_roles_endpoints_and_flags(ec):
    (group,) = ec.describe_replication_groups(ReplicationGroupId="shop-cache")["ReplicationGroups"]
    assert group["Status"] == "available"
    assert (group["AutomaticFailover"], group["MultiAZ"]) == ("enabled", "enabled")
    assert group["MemberClusters"] == ["shop-cache-001", "shop-cache-002"]
    (node_group,) = group["NodeGroups"]
    assert node_group["PrimaryEndpoint"] == {"Address": "127.0.0.1", "Port": 15379}
    assert node_group["ReaderEndpoint"] == {"Address": "127.0.0.1", "Port": 15380}
    roles = {m["CacheClusterId"]: (m["CurrentRole"], m["PreferredAvailabilityZone"], m["CacheNodeId"])
             for m in node_group["NodeGroupMembers"]}
    assert roles == {"shop-cache-001": ("primary", "us-east-1a", "0001"),
                     "shop-cache-002": ("replica", "us-east-1b", "0001")}
    assert node_group["NodeGroupMembers"][0]["ReadEndpoint"]["Port"] == 15381
    assert group["ARN"] == RG_ARN


def test_unknown_replication_group_is_not_found_404(ec):
    with pytest.raises(ClientError) as err:
        ec.describe_replication_groups(ReplicationGroupId="nope")
    assert error_of(err) == ("ReplicationGroupNotFoundFault", 404)


def test_describe_cache_clusters_shows_node_info_on_request(ec):
    (cluster,) = ec.describe_cache_clusters(CacheClusterId="shop-cache-001", ShowCacheNodeInfo=True)["CacheClusters"]
    assert cluster["ReplicationGroupId"] == "shop-cache" and cluster["CacheClusterStatus"] == "available"
    assert cluster["CacheNodes"][0]["CacheNodeId"] == "0001"
    assert cluster["CacheNodes"][0]["Endpoint"] == {"Address": "127.0.0.1", "Port": 15381}
    assert "CacheNodes" not in ec.describe_cache_clusters(CacheClusterId="shop-cache-001")["CacheClusters"][0]
    assert len(ec.describe_cache_clusters()["CacheClusters"]) == 2
    with pytest.raises(ClientError) as err:
        ec.describe_cache_clusters(CacheClusterId="nope")
    assert error_of(err) == ("CacheClusterNotFound", 404)


def test_test_failover_returns_the_group_and_refuses_while_modifying(ec, fake_lab):
    group = ec.test_failover(ReplicationGroupId="shop-cache", NodeGroupId="0001")["ReplicationGroup"]
    assert group["ReplicationGroupId"] == "shop-cache" and group["Status"] == "modifying"
    assert fake_lab.calls == [("primary-loss", "shop-cache", "0001")]
    with pytest.raises(ClientError) as err:
        ec.test_failover(ReplicationGroupId="shop-cache", NodeGroupId="0001")
    assert error_of(err) == ("InvalidReplicationGroupState", 400)


def test_test_failover_unknown_group_or_node_group_is_not_found(ec):
    with pytest.raises(ClientError) as err:
        ec.test_failover(ReplicationGroupId="nope", NodeGroupId="0001")
    assert error_of(err) == ("ReplicationGroupNotFoundFault", 404)
    with pytest.raises(ClientError) as err:
        ec.test_failover(ReplicationGroupId="shop-cache", NodeGroupId="0002")
    assert error_of(err) == ("NodeGroupNotFoundFault", 404)


def test_delete_primary_is_refused_as_invalid_cache_cluster_state(ec, fake_lab):
    with pytest.raises(ClientError) as err:
        ec.delete_cache_cluster(CacheClusterId="shop-cache-001")
    assert error_of(err) == ("InvalidCacheClusterState", 400)
    assert "primary" in err.value.response["Error"]["Message"]
    assert fake_lab.calls == []


def test_delete_primary_is_allowed_when_the_lab_emulates_hard_loss(tmp_path):
    lab = ShapeOnlyFakeLab(tmp_path, allow_primary_delete=True)
    status, _, body = server.handle(lab, "POST", "/", {}, b"Action=DeleteCacheCluster&Version=2015-02-02"
                                    b"&CacheClusterId=shop-cache-001")
    assert status == 200 and lab.calls == [("delete", "shop-cache-001")]


def test_delete_only_replica_with_autofailover_is_refused(ec):
    with pytest.raises(ClientError) as err:
        ec.delete_cache_cluster(CacheClusterId="shop-cache-002")
    assert error_of(err) == ("InvalidCacheClusterState", 400)


def test_add_replica_then_delete_a_replica(ec, fake_lab):
    cluster = ec.create_cache_cluster(CacheClusterId="shop-cache-003", ReplicationGroupId="shop-cache",
                                      PreferredAvailabilityZone="us-east-1c")["CacheCluster"]
    assert (cluster["CacheClusterId"], cluster["CacheClusterStatus"]) == ("shop-cache-003", "creating")
    with pytest.raises(ClientError) as err:
        ec.create_cache_cluster(CacheClusterId="shop-cache-004", ReplicationGroupId="shop-cache")
    assert error_of(err) == ("InvalidReplicationGroupState", 400)
    fake_lab.finish()
    deleted = ec.delete_cache_cluster(CacheClusterId="shop-cache-002")["CacheCluster"]
    assert deleted["CacheClusterStatus"] == "deleting"
    assert fake_lab.calls[-1] == ("delete", "shop-cache-002")


def test_create_existing_cluster_is_already_exists(ec):
    with pytest.raises(ClientError) as err:
        ec.create_cache_cluster(CacheClusterId="shop-cache-002", ReplicationGroupId="shop-cache")
    assert error_of(err) == ("CacheClusterAlreadyExists", 400)


def test_increase_replica_count_adds_one_replica(ec, fake_lab):
    group = ec.increase_replica_count(ReplicationGroupId="shop-cache", NewReplicaCount=2,
                                      ApplyImmediately=True)["ReplicationGroup"]
    assert group["Status"] == "modifying" and len(group["MemberClusters"]) == 3
    assert fake_lab.calls == [("add", "shop-cache", None, None)]
    with pytest.raises(ClientError) as err:
        ec.increase_replica_count(ReplicationGroupId="nope", NewReplicaCount=2, ApplyImmediately=True)
    assert error_of(err) == ("ReplicationGroupNotFoundFault", 404)


def test_elasticache_describe_events_by_source(ec, fake_lab):
    fake_lab.events.record("replication-group", "shop-cache", "Test Failover API called for node group 0001")
    fake_lab.events.record("cache-cluster", "shop-cache-001", "Recovering cache nodes 0001")
    fake_lab.events.record("db-instance", "shop-db", "DB instance restarted")
    assert [e["Message"] for e in ec.describe_events()["Events"]] == [
        "Test Failover API called for node group 0001", "Recovering cache nodes 0001"]
    events = ec.describe_events(SourceType="cache-cluster", SourceIdentifier="shop-cache-001")["Events"]
    assert [(e["SourceType"], e["SourceIdentifier"]) for e in events] == [("cache-cluster", "shop-cache-001")]


def test_elasticache_tags_by_arn(ec):
    assert ec.list_tags_for_resource(ResourceName=RG_ARN)["TagList"] == [{"Key": "chaos:allowed", "Value": "true"}]
    tags = ec.add_tags_to_resource(ResourceName=NODE_ARN, Tags=[{"Key": "k", "Value": "v"}])["TagList"]
    assert tags == [{"Key": "k", "Value": "v"}]
    assert ec.remove_tags_from_resource(ResourceName=NODE_ARN, TagKeys=["k"])["TagList"] == []
    with pytest.raises(ClientError) as err:
        ec.remove_tags_from_resource(ResourceName=NODE_ARN, TagKeys=["k"])
    assert error_of(err) == ("TagNotFound", 404)
    with pytest.raises(ClientError) as err:
        ec.list_tags_for_resource(ResourceName="not-an-arn")
    assert error_of(err) == ("InvalidARN", 400)


# ----------------------------------------------------------------------------- protocol edges


def test_unknown_action_is_invalid_action_400(fake_lab):
    status, headers, body = server.handle(fake_lab, "POST", "/", {}, b"Action=Nope&Version=2014-10-31")
    assert status == 400 and b"<Code>InvalidAction</Code>" in body and "x-amzn-RequestId" in headers


def test_modelled_but_unimplemented_action_is_invalid_action(rds):
    with pytest.raises(ClientError) as err:
        rds.describe_db_snapshots()
    assert error_of(err) == ("InvalidAction", 400)


def test_get_with_query_string_is_served(fake_lab):
    status, _, body = server.handle(fake_lab, "GET", "/?Action=DescribeDBInstances&Version=2014-10-31", {}, b"")
    assert status == 200 and b"<DBInstanceIdentifier>shop-db</DBInstanceIdentifier>" in body


def test_lab_bug_answers_internal_failure_500(fake_lab):
    fake_lab.snapshot = lambda: 1 / 0
    status, _, body = server.handle(fake_lab, "POST", "/", {}, b"Action=DescribeDBInstances&Version=2014-10-31")
    assert status == 500 and b"<Code>InternalFailure</Code>" in body


def _signature_of(cls, name):
    import inspect
    params = list(inspect.signature(getattr(cls, name)).parameters.values())[1:]
    return [(p.name, p.default) for p in params]


def test_fake_lab_and_real_lab_implement_the_same_backend_protocol(fake_lab):
    """The facade depends on LabBackend; the fake used above must not drift from the real lab."""
    import inspect

    from woolab.backend import LabBackend
    from woolab.lab import Lab
    operations = [name for name, _ in inspect.getmembers(LabBackend, inspect.isfunction) if not name.startswith("_")]
    assert "start_db_reboot" in operations and "snapshot" in operations
    for name in operations:
        assert _signature_of(LabBackend, name) == _signature_of(Lab, name), name
        assert _signature_of(LabBackend, name) == _signature_of(ShapeOnlyFakeLab, name), name
    assert isinstance(fake_lab, LabBackend)
