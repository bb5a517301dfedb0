"""What a no-op `up` and `status` of a whole deployment read of the Network Firewall: the firewall once, and neither
its policy nor any rule group while the firewall runs each at the UpdateToken `up` recorded when it wrote it or read
it as designed (the control-plane group's included, whose last write is the workspace hosts' update)."""

from __future__ import annotations

import json

from provisioner.steps import firewall as fwsteps
from tests.conftest import client, config_text
from tests.hub_readback import recorded_state

FIREWALL_READS = ("DescribeFirewall", "DescribeFirewallPolicy", "DescribeRuleGroup")


def test_a_no_op_up_and_status_of_a_deployment_read_only_the_firewall(aws, databricks, workdir, calls):
    deployment = "fwreads"
    workdir.write_config(config_text(deployment))
    up = workdir.run("up")
    assert up.code == 0, up.out + up.err

    # Each object's recorded token is its live one; the control-plane group's is that of the workspace hosts' update.
    nfw = client("network-firewall")
    resources = recorded_state(workdir, deployment)["resources"]
    policy = nfw.describe_firewall_policy(FirewallPolicyArn=resources[fwsteps.POLICY_KEY]["id"])
    assert resources[fwsteps.POLICY_KEY]["outputs"]["verified"]["token"] == policy["UpdateToken"]
    roles = [key for key in resources if key.startswith(fwsteps.rule_group_key(""))]
    assert len(roles) == len(policy["FirewallPolicy"]["StatefulRuleGroupReferences"])
    for key in roles:
        live = nfw.describe_rule_group(RuleGroupArn=resources[key]["id"])
        assert resources[key]["outputs"]["verified"]["token"] == live["UpdateToken"], key
    (host,) = resources[fwsteps.HOSTS_KEY]["outputs"]["hosts"]
    control_plane = nfw.describe_rule_group(RuleGroupArn=resources[fwsteps.rule_group_key("control-plane")]["id"])
    assert f'content:"{host}"' in control_plane["RuleGroup"]["RulesSource"]["RulesString"]

    for command in (("up",), ("status", "--json")):
        calls.clear()
        result = workdir.run(*command)
        assert result.code == 0, result.out + result.err
        assert calls.mutating == []
        assert {op: calls.calls.count(op) for op in FIREWALL_READS} == {
            "DescribeFirewall": 1, "DescribeFirewallPolicy": 0, "DescribeRuleGroup": 0}, command


def test_a_tag_removed_outside_from_a_proven_policy_or_group_is_reported_and_put_back(aws, databricks, workdir,
                                                                                      calls):
    """A tag change gives an object no new UpdateToken: its tags come from the Tagging API's one read instead."""
    deployment = "fwtags"
    workdir.write_config(config_text(deployment))
    assert workdir.run("up").code == 0
    resources = recorded_state(workdir, deployment)["resources"]
    nfw = client("network-firewall")
    group = resources[fwsteps.rule_group_key("deny")]["id"]
    policy = resources[fwsteps.POLICY_KEY]["id"]
    for arn in (group, policy):
        nfw.untag_resource(ResourceArn=arn, TagKeys=["provisioner:component"])

    calls.clear()
    status = workdir.run("status", "--json")
    assert status.code == 3, status.out
    drifted = {r["key"]: r for r in json.loads(status.out)["resources"] if r["status"] == "drifted"}
    assert set(drifted) == {fwsteps.rule_group_key("deny"), fwsteps.POLICY_KEY}, drifted
    assert calls.calls.count("DescribeRuleGroup") == calls.calls.count("DescribeFirewallPolicy") == 0

    assert workdir.run("up").code == 0
    for arn in (group, policy):
        tags = {t["Key"]: t["Value"] for t in nfw.list_tags_for_resource(ResourceArn=arn)["Tags"]}
        assert tags["provisioner:component"] in (fwsteps.rule_group_key("deny"), fwsteps.POLICY_KEY)
    assert workdir.run("status").code == 0
