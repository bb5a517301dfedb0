"""VPC flow logs on the hub and every spoke: every accepted and rejected flow, to one CloudWatch log group.

Owns: the log group `/provision/<deployment>/vpc-flow-logs` (the configured retention), the delivery role
`<deployment>-flowlogs` (only `vpc-flow-logs.amazonaws.com` may assume it, for this account's flow logs; it may
only write to that group), and one flow log per VPC (traffic type ALL). A flow log cannot be changed in place:
one that differs (another group, role or traffic type) is reported, and `up` stops and says to delete it (the
next `up` makes it anew).
"""

from __future__ import annotations

from typing import Any

from provisioner.aws.errors import CloudError
from provisioner.context import Context
from provisioner.design.config import Config
from provisioner.design.naming import resource_name
from provisioner.design.policies import flow_logs_policy, flow_logs_trust_policy
from provisioner.steps import keys
from provisioner.steps.base import Resource, Step, cannot_fix
from provisioner.steps.ec2_common import Ec2Kind, Ec2Step, client_token
from provisioner.steps.iam import Role
from provisioner.steps.logs import LogGroup

LOG_GROUP_KEY = keys.hub("flow-logs/log-group")
ROLE_KEY = keys.hub("flow-logs/role")
TRAFFIC_TYPE = "ALL"
# One-minute aggregation: a flow is in the logs a minute after it ends, not ten.
AGGREGATION_SECONDS = 60

FLOW_LOG = Ec2Kind("flow log", "describe_flow_logs", "FlowLogIds", "FlowLogs", "FlowLogId",
                   ("InvalidFlowLogId.NotFound",), "vpc-flow-log")


def log_group_name(deployment: str) -> str:
    return f"/provision/{deployment}/vpc-flow-logs"


class FlowLogsRole(Role):
    policy_name = "deliver-flow-logs"

    def __init__(self, config: Config) -> None:
        self.config = config
        super().__init__(ROLE_KEY, resource_name(config.deployment, "flowlogs"), (LOG_GROUP_KEY,))

    def details(self) -> dict[str, Any]:
        return {"trusted": "vpc-flow-logs.amazonaws.com"}

    def trust_policy(self, ctx: Context) -> dict[str, Any]:
        return flow_logs_trust_policy(ctx.aws.account_id(), self.config.region)

    def permissions_policy(self, ctx: Context) -> dict[str, Any]:
        arn = ctx.output(LOG_GROUP_KEY, "arn")
        if not arn:
            raise CloudError(f"the flow log group ({LOG_GROUP_KEY}) is not in the state file; run `provision up`")
        return flow_logs_policy(str(arn))

    def description(self, ctx: Context) -> str:
        return f"Delivers the VPC flow logs of deployment {ctx.deployment} to CloudWatch Logs"


class FlowLog(Ec2Step):
    kind = "VPC flow log"
    resource = FLOW_LOG

    def __init__(self, config: Config, key: str, name: str, vpc_key: str) -> None:
        self.config = config
        self.vpc_key = vpc_key
        super().__init__(key, name, (vpc_key, LOG_GROUP_KEY, ROLE_KEY))

    def details(self) -> dict[str, Any]:
        return {"vpc": self.vpc_key, "traffic": TRAFFIC_TYPE}

    def create(self, ctx: Context) -> Resource:
        vpc_id = ctx.output(self.vpc_key)
        role = ctx.output(ROLE_KEY)
        answer = ctx.aws.ec2.create_flow_logs(
            ResourceIds=[vpc_id], ResourceType="VPC", TrafficType=TRAFFIC_TYPE,
            LogDestinationType="cloud-watch-logs", LogGroupName=log_group_name(ctx.deployment),
            DeliverLogsPermissionArn=role, MaxAggregationInterval=AGGREGATION_SECONDS,
            ClientToken=client_token(ctx, self, vpc_id), TagSpecifications=self.tag_specifications(ctx))
        failed = answer.get("Unsuccessful") or []
        if failed or not answer.get("FlowLogIds"):
            error = (failed[0].get("Error") or {}) if failed else {}
            raise CloudError(f"cannot create the flow log of {vpc_id}: {error.get('Message') or 'no ID returned'}")
        flow_id = answer["FlowLogIds"][0]
        return self.created(ctx, {"FlowLogId": flow_id, "ResourceId": vpc_id, "TrafficType": TRAFFIC_TYPE,
                                  "LogGroupName": log_group_name(ctx.deployment), "DeliverLogsPermissionArn": role})

    def ensure_aspects(self, ctx: Context, res: Resource, apply: bool, changes: list[str]) -> None:
        wanted = {"ResourceId": ctx.output(self.vpc_key), "TrafficType": TRAFFIC_TYPE,
                  "LogGroupName": log_group_name(ctx.deployment), "DeliverLogsPermissionArn": ctx.output(ROLE_KEY)}
        wrong = sorted(k for k, v in wanted.items() if res.live.get(k) != v)
        if wrong:
            cannot_fix(changes, apply, self.name, f"differs in {', '.join(wrong)} (flow logs cannot change: delete "
                       f"{res.id}, then `up` makes it anew)")

    def delete_owned(self, ctx: Context, res: Resource) -> None:
        answer = ctx.aws.ec2.delete_flow_logs(FlowLogIds=[res.id])
        for item in answer.get("Unsuccessful") or []:
            error = item.get("Error") or {}
            if error.get("Code") not in FLOW_LOG.missing:
                raise CloudError(f"cannot delete flow log {res.id}: {error.get('Message') or error.get('Code')}")


def steps(config: Config) -> list[Step]:
    d = config.deployment
    found: list[Step] = [
        LogGroup(LOG_GROUP_KEY, log_group_name(d), config.firewall_log_retention_days),
        FlowLogsRole(config),
        FlowLog(config, keys.hub("flow-log"), resource_name(d, "hub-flow-log"), keys.hub("vpc")),
    ]
    found += [FlowLog(config, keys.spoke(s.name, "flow-log"), resource_name(d, s.name, "flow-log"),
                      keys.spoke(s.name, "vpc")) for s in config.spokes]
    return found
