"""The Query codec against botocore itself: botocore serializes requests we parse, and parses
the XML we serialize. No lab needed."""

import datetime as dt
from urllib.parse import urlencode

import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from woolab.facade import protocol
from woolab.facade.protocol import AwsError

UTC = dt.timezone.utc


def op(service, name):
    return protocol.service_model(service).operation_model(name)


def botocore_form(service, name, params):
    """The flat form botocore's own Query serializer sends for ``params``."""
    request = create_serializer("query").serialize_to_request(params, op(service, name))
    return dict(request["body"])


def roundtrip_request(service, name, params):
    flat = protocol.decode_form(urlencode(botocore_form(service, name, params)))
    return protocol.parse_request(op(service, name), flat)


def botocore_parse(service, name, xml, status=200):
    operation = op(service, name)
    response = {"body": xml.encode(), "headers": {}, "status_code": status}
    return create_parser("query").parse(response, operation.output_shape)


# ----------------------------------------------------------------------------- requests


@pytest.mark.parametrize("service,name,params", [
    ("rds", "RebootDBInstance", {"DBInstanceIdentifier": "shop-db", "ForceFailover": True}),
    ("rds", "RebootDBInstance", {"DBInstanceIdentifier": "shop-db", "ForceFailover": False}),
    ("rds", "AddTagsToResource", {"ResourceName": "arn:aws:rds:us-east-1:123456789012:db:shop-db",
                                  "Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}),
    ("rds", "RemoveTagsFromResource", {"ResourceName": "arn:x", "TagKeys": ["a", "b", "c"]}),
    ("rds", "DescribeDBInstances", {"Filters": [{"Name": "engine", "Values": ["mariadb", "mysql"]}],
                                    "MaxRecords": 20}),
    ("rds", "DescribeEvents", {"SourceType": "db-instance", "SourceIdentifier": "shop-db",
                               "StartTime": dt.datetime(2026, 11, 26, 6, 0, 1, 500000, tzinfo=UTC),
                               "EndTime": dt.datetime(2026, 11, 26, 7, 0, tzinfo=UTC),
                               "EventCategories": ["failover", "availability"]}),
    ("elasticache", "IncreaseReplicaCount", {
        "ReplicationGroupId": "shop-cache", "ApplyImmediately": True,
        "ReplicaConfiguration": [{"NodeGroupId": "0001", "NewReplicaCount": 2,
                                  "PreferredAvailabilityZones": ["us-east-1a", "us-east-1b", "us-east-1c"]}]}),
    ("elasticache", "CreateCacheCluster", {"CacheClusterId": "shop-cache-003", "ReplicationGroupId": "shop-cache",
                                           "PreferredAvailabilityZone": "us-east-1c",
                                           "Tags": [{"Key": "chaos:allowed", "Value": "true"}]}),
    ("elasticache", "DescribeCacheClusters", {"CacheClusterId": "shop-cache-001", "ShowCacheNodeInfo": True}),
])
def test_requests_serialized_by_botocore_parse_back_to_the_same_params(service, name, params):
    assert roundtrip_request(service, name, params) == params


def test_generic_member_list_names_are_accepted_like_the_model_names():
    flat = {"Action": "AddTagsToResource", "ResourceName": "arn:x",
            "Tags.member.1.Key": "k", "Tags.member.1.Value": "v"}
    assert protocol.parse_request(op("rds", "AddTagsToResource"), flat)["Tags"] == [{"Key": "k", "Value": "v"}]


def test_empty_list_sent_by_botocore_parses_as_empty_list():
    params = {"ResourceName": "arn:x", "TagKeys": []}
    assert roundtrip_request("rds", "RemoveTagsFromResource", params) == params


def test_list_items_keep_numeric_order_past_nine():
    keys = [f"k{i}" for i in range(1, 13)]
    params = {"ResourceName": "arn:x", "TagKeys": keys}
    assert roundtrip_request("rds", "RemoveTagsFromResource", params)["TagKeys"] == keys


def test_flattened_input_list_uses_the_member_location_name():
    params = {"DomainName": "d", "ItemName": "i",
              "Attributes": [{"Name": "n1", "Value": "v1", "Replace": True}, {"Name": "n2", "Value": "v2"}]}
    assert roundtrip_request("sdb", "PutAttributes", params) == params


def test_missing_required_parameter_is_missing_parameter():
    with pytest.raises(AwsError) as err:
        protocol.parse_request(op("rds", "RebootDBInstance"), {"Action": "RebootDBInstance"})
    assert (err.value.code, err.value.status) == ("MissingParameter", 400)
    assert "DBInstanceIdentifier" in err.value.message


def test_malformed_boolean_is_invalid_parameter_value():
    with pytest.raises(AwsError) as err:
        protocol.parse_request(op("rds", "RebootDBInstance"),
                               {"DBInstanceIdentifier": "shop-db", "ForceFailover": "yes"})
    assert err.value.code == "InvalidParameterValue"


def test_epoch_timestamps_are_accepted():
    params = protocol.parse_request(op("rds", "DescribeEvents"), {"StartTime": "1700000000"})
    assert params["StartTime"] == dt.datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)


# ----------------------------------------------------------------------------- dispatch


def test_version_selects_the_service():
    assert protocol.service_for({"Version": "2014-10-31"}, {}) == "rds"
    assert protocol.service_for({"Version": "2015-02-02"}, {}) == "elasticache"


def test_sigv4_scope_selects_the_service_when_version_is_absent():
    auth = ("AWS4-HMAC-SHA256 Credential=testing/20261126/us-east-1/elasticache/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=abc")
    assert protocol.service_for({}, {"authorization": auth}) == "elasticache"


def test_unknown_version_and_unknown_action_are_refused():
    with pytest.raises(AwsError) as err:
        protocol.service_for({"Version": "2009-01-01"}, {})
    assert err.value.code == "NoSuchVersion"
    with pytest.raises(AwsError) as err:
        protocol.operation_for("rds", {"Action": "LaunchRockets"})
    assert (err.value.code, err.value.status) == ("InvalidAction", 400)


# ----------------------------------------------------------------------------- responses


def test_describe_db_instances_xml_parses_in_botocore_with_nested_lists_timestamps_booleans():
    output = {
        "DBInstances": [{
            "DBInstanceIdentifier": "shop-db", "DBInstanceStatus": "available", "MultiAZ": True,
            "PubliclyAccessible": False, "InstanceCreateTime": 1700000000.25,
            "Endpoint": {"Address": "127.0.0.1", "Port": 15306},
            "AvailabilityZone": "us-east-1a", "SecondaryAvailabilityZone": "us-east-1b",
            "TagList": [{"Key": "chaos:allowed", "Value": "true"}, {"Key": "x", "Value": "<&>"}],
            "ReadReplicaDBInstanceIdentifiers": ["r1", "r2"],
        }],
        "Marker": "20",
    }
    xml = protocol.serialize_response(op("rds", "DescribeDBInstances"), output, "req-1")
    parsed = botocore_parse("rds", "DescribeDBInstances", xml)
    instance = parsed["DBInstances"][0]
    assert instance["MultiAZ"] is True and instance["PubliclyAccessible"] is False
    assert instance["InstanceCreateTime"] == dt.datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC)
    assert instance["Endpoint"] == {"Address": "127.0.0.1", "Port": 15306}
    assert instance["TagList"][1] == {"Key": "x", "Value": "<&>"}
    assert instance["ReadReplicaDBInstanceIdentifiers"] == ["r1", "r2"]
    assert parsed["Marker"] == "20"
    assert parsed["ResponseMetadata"]["RequestId"] == "req-1"
    assert 'xmlns="http://rds.amazonaws.com/doc/2014-10-31/"' in xml


def test_replication_group_xml_round_trips_through_botocore():
    group = {
        "ReplicationGroupId": "shop-cache", "Status": "available", "AutomaticFailover": "enabled",
        "MultiAZ": "enabled", "MemberClusters": ["shop-cache-001", "shop-cache-002"], "ClusterEnabled": False,
        "NodeGroups": [{
            "NodeGroupId": "0001", "Status": "available",
            "PrimaryEndpoint": {"Address": "127.0.0.1", "Port": 15379},
            "ReaderEndpoint": {"Address": "127.0.0.1", "Port": 15380},
            "NodeGroupMembers": [
                {"CacheClusterId": "shop-cache-001", "CacheNodeId": "0001", "CurrentRole": "primary",
                 "PreferredAvailabilityZone": "us-east-1a", "ReadEndpoint": {"Address": "127.0.0.1", "Port": 15381}},
                {"CacheClusterId": "shop-cache-002", "CacheNodeId": "0001", "CurrentRole": "replica",
                 "PreferredAvailabilityZone": "us-east-1b", "ReadEndpoint": {"Address": "127.0.0.1", "Port": 15382}},
            ]}],
    }
    xml = protocol.serialize_response(op("elasticache", "TestFailover"), {"ReplicationGroup": group}, "r")
    assert botocore_parse("elasticache", "TestFailover", xml)["ReplicationGroup"] == group


def test_operation_without_output_shape_answers_metadata_only():
    xml = protocol.serialize_response(op("rds", "AddTagsToResource"), None, "req-2")
    assert botocore_parse("rds", "AddTagsToResource", xml)["ResponseMetadata"]["RequestId"] == "req-2"


def test_flattened_output_list_and_map_round_trip():
    xml = protocol.serialize_response(op("sdb", "ListDomains"), {"DomainNames": ["a", "b"]}, "r")
    assert botocore_parse("sdb", "ListDomains", xml)["DomainNames"] == ["a", "b"]
    output = {"IntegrationName": "i", "AdditionalEncryptionContext": {"k1": "v1", "k2": "v2"}}
    xml = protocol.serialize_response(op("rds", "CreateIntegration"), output, "r")
    assert botocore_parse("rds", "CreateIntegration", xml)["AdditionalEncryptionContext"] == {"k1": "v1", "k2": "v2"}


def test_unknown_output_member_is_a_bug_not_a_silent_drop():
    with pytest.raises(KeyError):
        protocol.serialize_response(op("rds", "DescribeDBInstances"), {"DBInstances": [{"Nope": 1}]}, "r")


# ----------------------------------------------------------------------------- errors


def test_model_errors_carry_code_and_status_from_the_model():
    error = protocol.model_error("rds", "DBInstanceNotFoundFault", "DBInstance x not found.")
    assert (error.code, error.status) == ("DBInstanceNotFound", 404)
    error = protocol.model_error("elasticache", "ReplicationGroupNotFoundFault", "m")
    assert (error.code, error.status) == ("ReplicationGroupNotFoundFault", 404)
    error = protocol.model_error("rds", "InvalidParameterCombination", "m")
    assert (error.code, error.status) == ("InvalidParameterCombination", 400)


def test_error_body_parses_in_botocore_with_code_and_message():
    error = protocol.model_error("elasticache", "InvalidCacheClusterStateFault", "busy <now>")
    xml = protocol.serialize_error(error, "req-3", "http://elasticache.amazonaws.com/doc/2015-02-02/")
    parsed = botocore_parse("elasticache", "DeleteCacheCluster", xml, status=error.status)
    assert parsed["Error"]["Code"] == "InvalidCacheClusterState"
    assert parsed["Error"]["Message"] == "busy <now>"
    assert parsed["Error"]["Type"] == "Sender"
    assert parsed["ResponseMetadata"]["RequestId"] == "req-3"
