"""The Route 53 Resolver DNS Firewall as data: what a spoke may resolve, the rules, the association.

Pure: no I/O. Without it DNS is a way out that never reaches the network firewall: the VPC resolver forwards a
query for any name to that name's authoritative servers, so code on a cluster can leave data as the labels of
queries (`<data>.attacker.example`) to a server the attacker runs. The DNS Firewall answers only for names on the
allowed list and NXDOMAIN for every other name, fails closed, and every query is logged.

What a workspace must resolve (docs/security.md, "DNS", says why each entry is there):

- every name the network firewall allows (its own allowlist, the spoke's extras): a name that cannot be resolved
  cannot be reached either; a leading-dot entry `.example.com` becomes `example.com` and `*.example.com`;
- the regional AWS endpoints a spoke reaches through its VPC endpoints, which never cross the firewall: S3 (the
  regional and the global name, and buckets under both as virtual-hosted names), STS and Kinesis; with private DNS
  on, the interface endpoints answer for these names inside the VPC;
- Databricks' zone `cloud.databricks.com`: the workspace's own URL (clusters call their workspace's REST API), whose
  name Databricks chooses (`<prefix>-<name>` or `dbc-...`) and is known only once the workspace exists, and the
  region's web application and relay;
- the EC2 internal names (`ip-10-0-0-1.<region>.compute.internal`) and the reverse zones of the private ranges:
  Spark resolves its executors and driver by name and address. The VPC resolver answers these itself; they are
  never forwarded, so they carry nothing out.

Names under AWS's and Databricks' zones are answered by their operators' servers: a query there reaches no
server an attacker runs, which is what makes an allowlist of whole zones safe for DNS where it would not be for
the network firewall.
"""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.design import firewall
from provisioner.design.config import Config
from provisioner.design.layout import Layout
from provisioner.design.naming import resource_name

BLOCK, ALERT, OFF = "block", "alert", "off"
DATABRICKS_ZONE = "cloud.databricks.com"
ALLOWED, BLOCKED = "allowed", "blocked"
# Rule priorities inside the rule group: the allowed names first, then everything else.
ALLOW_PRIORITY = 100
BLOCK_PRIORITY = 200
# The rule group's priority among those associated with a VPC (AWS takes 101 to 9899): room on both sides.
ASSOCIATION_PRIORITY = 1000
# The DNS Firewall answers a blocked query with NXDOMAIN: the name does not exist, so a client fails at once.
BLOCK_RESPONSE = "NXDOMAIN"
# Private address ranges (RFC 1918) as reverse-lookup zones.
PRIVATE_REVERSE_ZONES = ("10.in-addr.arpa", "168.192.in-addr.arpa",
                         *(f"{n}.172.in-addr.arpa" for n in range(16, 32)))


@dataclass(frozen=True)
class DnsRule:
    """One rule of the rule group: a domain list (by role) and what happens to queries that match it."""

    name: str
    domain_list: str
    priority: int
    action: str  # ALLOW | BLOCK | ALERT
    block_response: str | None = None

    def api_fields(self) -> dict[str, object]:
        """The CreateFirewallRule / UpdateFirewallRule members besides the group and the list."""
        found: dict[str, object] = {"Name": self.name, "Priority": self.priority, "Action": self.action}
        if self.block_response:
            found["BlockResponse"] = self.block_response
        return found


def _zone(name: str) -> tuple[str, ...]:
    """A name and everything under it, as DNS Firewall domain entries."""
    return (name, f"*.{name}")


def _dns_names(fqdn: str) -> tuple[str, ...]:
    """A network firewall allowlist entry as DNS Firewall entries (`.example.com` is the domain and its
    subdomains there; DNS Firewall spells that `example.com` plus `*.example.com`)."""
    return _zone(fqdn[1:]) if fqdn.startswith(".") else (fqdn,)


def compute_internal_zone(region: str) -> str:
    """Where EC2 names its instances: `ec2.internal` in us-east-1, `<region>.compute.internal` elsewhere."""
    return "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"


def aws_endpoint_names(region: str) -> tuple[str, ...]:
    """The AWS endpoints a spoke reaches through its own VPC endpoints (S3 gateway, STS and Kinesis interfaces)."""
    return (*_zone(f"s3.{region}.amazonaws.com"), *_zone("s3.amazonaws.com"),
            f"sts.{region}.amazonaws.com", f"kinesis.{region}.amazonaws.com")


def allowed_domains(config: Config, layout: Layout) -> tuple[str, ...]:
    """Every name any spoke may resolve, sorted and without duplicates.

    One list serves every spoke: a name one spoke alone may reach through the network firewall resolves in the
    others too, but their traffic to it is still dropped there; DNS Firewall has no per-source rules within one
    VPC, and one list per spoke would only split what every spoke must resolve anyway."""
    names: set[str] = set()
    for fqdn in firewall.allowed_fqdns(config, layout):
        names.update(_dns_names(fqdn))
    for domains in firewall.spoke_fqdns(config).values():
        for fqdn in domains:
            names.update(_dns_names(fqdn))
    reg = layout.region
    names.update(aws_endpoint_names(reg.name))
    names.update(_zone(DATABRICKS_ZONE))
    names.update(_zone(compute_internal_zone(reg.name)))
    for zone in PRIVATE_REVERSE_ZONES:
        names.add(f"*.{zone}")
    return tuple(sorted(names))


BLOCKED_DOMAINS = ("*",)


def domain_list_name(deployment: str, role: str) -> str:
    return resource_name(deployment, "dns", role)


def rule_group_name(deployment: str) -> str:
    return resource_name(deployment, "dns-firewall")


def rules(deployment: str, mode: str) -> tuple[DnsRule, ...]:
    """ALLOW the allowed list, then BLOCK (answer NXDOMAIN) or, in `alert` mode, only log everything else."""
    last = (DnsRule(resource_name(deployment, "dns-block-rest"), BLOCKED, BLOCK_PRIORITY, "BLOCK", BLOCK_RESPONSE)
            if mode == BLOCK else
            DnsRule(resource_name(deployment, "dns-alert-rest"), BLOCKED, BLOCK_PRIORITY, "ALERT"))
    return (DnsRule(resource_name(deployment, "dns-allow"), ALLOWED, ALLOW_PRIORITY, "ALLOW"), last)


def query_log_group_name(deployment: str) -> str:
    # Under /aws/vendedlogs/ as the firewall's groups are: the log delivery service is granted by one policy.
    return f"/aws/vendedlogs/route53resolver/{deployment}/queries"


def query_log_config_name(deployment: str) -> str:
    return resource_name(deployment, "dns-query-logs")
