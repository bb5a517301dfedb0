"""`provision status --report FILE.html`: one self-contained page (inline CSS and SVG, nothing fetched) with

- the deployment as a picture: the internet gateway, the hub per AZ (its TGW, firewall and NAT subnets with the
  firewall endpoint and the NAT gateway), the Transit Gateway, each spoke with its workspace subnets and workspace;
  the egress paths drawn along the routes read back from AWS (`egress.trace_egress`, the walk `status` checks),
  green where a path is as it should be, red where it is broken; a resource `status` found missing or drifted is
  outlined in red;
- the checks `status` ran, each with its evidence (for the egress check, every path walked, out and back);
- each spoke's allowlist, with what the live firewall policy does with a TLS flow to each name
  (`design.evaluate`), and the spoke's DNS Firewall rules as AWS has them;
- every resource's status.

`collect` reads (AWS); `render` is pure.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provisioner import egress
from provisioner.aws.errors import translate
from provisioner.design import evaluate as ev
from provisioner.errors import CloudError, UsageError
from provisioner.steps import keys

if TYPE_CHECKING:
    from provisioner.context import Context
    from provisioner.engine import StatusItem

OK_STATES = ("present", "ok")
GREEN, RED, GREY, BLUE = "#1a7f37", "#cf222e", "#8c959f", "#0969da"


def check_report_path(path: Path | None) -> None:
    """Bad input before anything is read: the report must go to a file in an existing directory."""
    if path is None:
        return
    if path.is_dir():
        raise UsageError(f"--report {path} is a directory; give a file name such as status.html")
    if not path.parent.is_dir():
        raise UsageError(f"--report {path}: the directory {path.parent} does not exist")
    if path.exists() and not path.is_file():
        raise UsageError(f"--report {path} exists and is not a file")


# -- what the page shows ------------------------------------------------------------------------------------------


@dataclass
class SpokeView:
    name: str
    cidr: str
    vpc_id: str | None
    workspace_subnets: dict[str, str | None]  # AZ -> subnet ID
    workspace_url: str | None
    allowlist: list[tuple[str, str]] = field(default_factory=list)  # (name, what the live policy does)
    dns_rules: list[ev.DnsRule] = field(default_factory=list)


@dataclass
class ReportData:
    deployment: str
    region: str
    generated_at: str
    hub_cidr: str
    hub_azs: list[str]
    hub_ids: dict[str, str | None]  # step key -> recorded ID
    spokes: list[SpokeView]
    items: list[StatusItem]
    traces: list[egress.Trace] = field(default_factory=list)
    policy: str | None = None
    default_actions: list[str] = field(default_factory=list)
    rule_order: str | None = None
    unreadable: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return all(i.status in OK_STATES for i in self.items)


def collect(ctx: Context, items: Sequence[StatusItem]) -> ReportData:
    """Read what the picture needs; what cannot be read is said on the page, not raised."""
    from provisioner import egress_live
    from provisioner.render import allowlists

    lay = ctx.layout
    state = ctx.state
    hub_keys = [keys.hub(what) for what in ("vpc", "igw", "transit-gateway", "firewall")]
    hub_keys += [keys.hub(what, h.az) for h in lay.hub_azs for what in ("tgw-subnet", "firewall-subnet", "nat-subnet",
                                                                          "nat")]
    hub_ids = {key: state.resource_id(key) for key in hub_keys}
    endpoints = ((state.resource(keys.hub("firewall")) or {}).get("outputs") or {}).get("endpoints") or {}
    for az, endpoint in endpoints.items():
        hub_ids[f"endpoint/{az}"] = endpoint
    spokes = []
    for s in lay.spokes:
        workspace = (state.resource(keys.spoke(s.name, "workspace")) or {}).get("outputs") or {}
        spokes.append(SpokeView(s.name, s.cidrs.vpc, state.resource_id(keys.spoke(s.name, "vpc")),
                                {az: state.resource_id(keys.spoke(s.name, "workspace-subnet", az)) for az in s.azs},
                                workspace.get("url")))
    data = ReportData(ctx.deployment, ctx.config.region, time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                      lay.hub_cidr, [h.az for h in lay.hub_azs], hub_ids, spokes, list(items))
    sources = [egress.Source(f"spoke {s.name} {az}", subnet) for s in spokes
               for az, subnet in s.workspace_subnets.items() if subnet]
    vpcs = [v for v in [hub_ids[keys.hub("vpc")], *(s.vpc_id for s in spokes)] if v]
    if sources and vpcs:
        try:
            with translate("read the routes"):
                network = egress.read_network(ctx.aws.ec2, vpcs, hub_ids[keys.hub("transit-gateway")])
            data.traces = egress.trace_egress(network, sources).traces
        except CloudError as e:
            data.unreadable.append(f"the routes: {e}")
    names = allowlists(ctx.config)
    try:
        firewall = egress_live.read_firewall(ctx)
    except CloudError as e:
        data.unreadable.append(f"the firewall policy: {e}")
        firewall = None
    if firewall is not None:
        data.policy = firewall.policy.name
        data.default_actions = [str(a) for a in firewall.policy.document.get("StatefulDefaultActions") or []]
        data.rule_order = firewall.policy.rule_order
    for spoke in spokes:
        net = next(s for s in lay.spokes if s.name == spoke.name)
        source = egress_live.Subnet("", "", net.cidrs.workspace_subnets[0]).first_host
        for name in names.get(spoke.name, []):
            host = name.lstrip(".")
            if firewall is None:
                spoke.allowlist.append((name, "not read"))
                continue
            decision = ev.evaluate_flow(firewall.policy, ev.Flow("tls", source, 443, host)).decision
            spoke.allowlist.append((name, decision.verdict))
        if spoke.vpc_id:
            try:
                with translate(f"read the DNS Firewall rules of {spoke.vpc_id}"):
                    spoke.dns_rules = egress_live.read_dns_rules(ctx.aws.route53resolver, spoke.vpc_id)
            except CloudError as e:
                data.unreadable.append(f"the DNS Firewall rules of spoke {spoke.name}: {e}")
    return data


def write_report(path: Path, ctx: Context, items: Sequence[StatusItem]) -> None:
    page = render(collect(ctx, items))
    try:
        path.write_text(page, encoding="utf-8")
    except OSError as e:
        raise UsageError(f"cannot write the report to {path}: {e.strerror}") from e


# -- the picture --------------------------------------------------------------------------------------------------


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


@dataclass
class _Box:
    key: str
    x: float
    y: float
    w: float
    h: float

    @property
    def top(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y)

    @property
    def bottom(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h)

    @property
    def center(self) -> tuple[float, float]:
        return (self.x + self.w / 2, self.y + self.h / 2)


COLUMN = 290      # one hub AZ
SPOKE_W = 350
MARGIN = 24
GUTTER = 190      # left of the hub and the spokes: the Transit Gateway's label
LANE_RIGHT = 16   # paths run in lanes at the right of each hub column, clear of the labels
LANE_STEP = 7
HEIGHT = 830


class _Picture:
    """The SVG: boxes placed on a grid, then each path drawn through the boxes of its hops, in its own lane."""

    def __init__(self, data: ReportData) -> None:
        self.data = data
        self.parts: list[str] = []
        self.boxes: dict[str, _Box] = {}
        azs = max(len(data.hub_azs), 1)
        content = max(azs * COLUMN + 24, len(data.spokes) * (SPOKE_W + 24))
        self.width = max(GUTTER + content + 2 * MARGIN, 980)
        self.content_x = GUTTER + MARGIN + (self.width - GUTTER - 2 * MARGIN - content) / 2
        self.content_w = content
        self.bad = {i.key: i for i in data.items if i.status not in OK_STATES}

    def _broken(self, *item_keys: str) -> list[str]:
        found = []
        for key in item_keys:
            item = self.bad.get(key)
            if item is not None:
                found.append(f"{key}: {item.status}" + (f" ({'; '.join(item.drift)})" if item.drift else ""))
        return found

    def box(self, key: str, x: float, y: float, w: float, h: float, label: str, sub: str = "",
            item_keys: Sequence[str] = (), fill: str = "#ffffff", kind: str = "node") -> _Box:
        broken = self._broken(*item_keys)
        stroke, width = (RED, 3) if broken else ("#57606a", 1.2)
        title = "; ".join(broken) if broken else sub or label
        self.parts.append(
            f'<g class="{kind}{" broken" if broken else ""}" data-key="{_e(key)}"><title>{_e(title)}</title>'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" rx="6" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="{width}"/>'
            f'<text x="{x + 8:.0f}" y="{y + 17:.0f}" class="label{" red" if broken else ""}">{_e(label)}</text>'
            + (f'<text x="{x + 8:.0f}" y="{y + 32:.0f}" class="sub">{_e(sub)}</text>' if sub else "")
            + (f'<text x="{x + 8:.0f}" y="{y + h - 6:.0f}" class="bad">{_e(self._short(broken))}</text>'
               if broken and h >= 50 else "")
            + "</g>")
        found = _Box(key, x, y, w, h)
        self.boxes[key] = found
        return found

    @staticmethod
    def _short(broken: list[str]) -> str:
        text = broken[0].split(": ", 1)[1] if ": " in broken[0] else broken[0]
        return text if len(text) <= 34 else text[:33] + "\u2026"

    def _container(self, key: str, x: float, y: float, w: float, h: float, title: str, note: str, fill: str,
                   colour: str, item_keys: Sequence[str], title_y: float = 20) -> None:
        broken = self._broken(*item_keys)
        self.parts.append(
            f'<g class="container{" broken" if broken else ""}" data-key="{_e(key)}">'
            f'<title>{_e("; ".join(broken) or note or title)}</title>'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" rx="10" fill="{fill}" '
            f'stroke="{RED if broken else colour}" stroke-width="{3 if broken else 1.5}"/>'
            f'<text x="{x + 12:.0f}" y="{y + title_y:.0f}" class="title{" red" if broken else ""}">{_e(title)}</text>'
            f'<text x="{x + w - 12:.0f}" y="{y + title_y:.0f}" class="sub" text-anchor="end">{_e(note)}</text></g>')

    def draw(self) -> str:
        d = self.data
        ids = d.hub_ids
        mid = self.content_x + self.content_w / 2
        # The internet and its gateway.
        self.parts.append(f'<g class="internet"><ellipse cx="{mid:.0f}" cy="36" rx="74" ry="22" fill="#f6f8fa" '
                          f'stroke="#57606a"/><text x="{mid:.0f}" y="41" text-anchor="middle" class="label">internet'
                          "</text></g>")
        self.boxes["internet"] = _Box("internet", mid - 74, 14, 148, 44)
        igw = self.box("igw", mid - 110, 84, 220, 42, "internet gateway", ids.get(keys.hub("igw")) or "(none)",
                       [keys.hub("igw")], "#fff8c5")
        broken_igw = bool(self._broken(keys.hub("igw")))
        self.parts.append(f'<line x1="{mid:.0f}" y1="{igw.y:.0f}" x2="{mid:.0f}" y2="58" stroke="'
                          f'{RED if broken_igw else GREEN}" stroke-width="3"/>')
        # The hub: one column per AZ.
        hub_w = max(len(d.hub_azs), 1) * COLUMN
        hub_x = mid - hub_w / 2
        self._container("hub", hub_x - 12, 148, hub_w + 24, 342, f"hub VPC {d.hub_cidr}", "", "#ddf4ff", BLUE,
                        [keys.hub("vpc")])
        # Its ID at the bottom left, clear of the paths' lanes.
        self.parts.append(f'<text x="{hub_x:.0f}" y="484" class="sub">{_e(ids.get(keys.hub("vpc")) or "")}</text>')
        for i, az in enumerate(d.hub_azs):
            x = hub_x + i * COLUMN + 8
            w = COLUMN - 16
            self.parts.append(f'<text x="{x + 4:.0f}" y="192" class="az">{_e(az)}</text>')
            self.box(f"nat-subnet/{az}", x, 198, w, 84, "NAT subnet", ids.get(keys.hub("nat-subnet", az)) or "",
                     [keys.hub("nat-subnet", az), keys.hub("nat-subnet-route-table", az)], "#f6f8fa", "subnet")
            self.box(f"nat/{az}", x + 10, 240, w - 20, 36, "NAT gateway", ids.get(keys.hub("nat", az)) or "(none)",
                     [keys.hub("nat", az), keys.hub("eip", az)], "#ffffff")
            self.box(f"firewall-subnet/{az}", x, 292, w, 84, "firewall subnet",
                     ids.get(keys.hub("firewall-subnet", az)) or "",
                     [keys.hub("firewall-subnet", az), keys.hub("firewall-subnet-route-table", az)], "#f6f8fa",
                     "subnet")
            self.box(f"endpoint/{az}", x + 10, 334, w - 20, 36, "firewall endpoint",
                     ids.get(f"endpoint/{az}") or "(none)",
                     [keys.hub("firewall"), keys.hub("firewall/routes", az), keys.hub("firewall/policy")], "#ffebe9")
            # The firewall's routes are in the TGW and NAT subnets' tables: a wrong one marks those too.
            self.box(f"hub-tgw/{az}", x, 386, w, 84, "TGW subnet", ids.get(keys.hub("tgw-subnet", az)) or "",
                     [keys.hub("tgw-subnet", az), keys.hub("tgw-subnet-route-table", az),
                      keys.hub("firewall/routes", az)], "#f6f8fa", "subnet")
        # The Transit Gateway, its label in the gutter (the paths cross the rest).
        tgw_keys = [keys.hub("transit-gateway"), keys.hub("tgw-attachment"), keys.hub("tgw-route-table/spokes"),
                    keys.hub("tgw-route-table/hub")]
        broken = self._broken(*tgw_keys)
        self.parts.append(
            f'<g class="node{" broken" if broken else ""}" data-key="tgw"><title>{_e("; ".join(broken) or "")}'
            f'</title><rect x="{MARGIN}" y="518" width="{self.width - 2 * MARGIN:.0f}" height="40" rx="6" '
            f'fill="#fbefff" stroke="{RED if broken else "#8250df"}" stroke-width="{3 if broken else 1.2}"/>'
            f'<text x="{MARGIN + 8}" y="535" class="label{" red" if broken else ""}">Transit Gateway</text>'
            f'<text x="{MARGIN + 8}" y="550" class="sub">{_e(ids.get(keys.hub("transit-gateway")) or "(none)")}'
            "</text></g>")
        self.boxes["tgw"] = _Box("tgw", MARGIN, 518, self.width - 2 * MARGIN, 40)
        # The spokes.
        total = len(d.spokes) * SPOKE_W + max(len(d.spokes) - 1, 0) * 24
        x0 = mid - total / 2
        for i, spoke in enumerate(d.spokes):
            x = x0 + i * (SPOKE_W + 24)
            # The title at the bottom: the paths leave the workspace subnets upwards.
            self._container(f"spoke/{spoke.name}", x, 596, SPOKE_W, 176, f"spoke {spoke.name}", spoke.cidr,
                            "#dafbe1", GREEN, [keys.spoke(spoke.name, w) for w in (
                                "vpc", "route-table", "tgw-attachment", "security-group", "dns-firewall")],
                            title_y=166)
            half = (SPOKE_W - 30) / 2
            for j, (az, subnet) in enumerate(spoke.workspace_subnets.items()):
                self.box(f"ws/{spoke.name}/{az}", x + 10 + j * (half + 10), 606, half, 56,
                         f"workspace subnet {az[-2:]}", subnet or "(none)",
                         [keys.spoke(spoke.name, "workspace-subnet", az)], "#ffffff", "subnet")
            self.box(f"workspace/{spoke.name}", x + 10, 674, SPOKE_W - 20, 60, "Databricks workspace",
                     spoke.workspace_url or "(no workspace yet)",
                     [keys.spoke(spoke.name, "workspace"), keys.spoke(spoke.name, "network"),
                      keys.spoke(spoke.name, "credentials"), keys.spoke(spoke.name, "storage")], "#ffffff")
        self._paths()
        self._legend()
        return (f'<svg xmlns="http://www.w3.org/2000/svg" id="picture" role="img" viewBox="0 0 {self.width:.0f} '
                f'{HEIGHT}" width="{self.width:.0f}" height="{HEIGHT}" aria-label="deployment {_e(d.deployment)}">'
                "<style>.label{font:600 13px sans-serif;fill:#1f2328}.sub{font:10.5px monospace;fill:#57606a}"
                ".title{font:700 14px sans-serif;fill:#1f2328}.az{font:600 12px sans-serif;fill:#0969da}"
                ".red{fill:#cf222e}.bad{font:600 11px sans-serif;fill:#cf222e}"
                ".path{fill:none;stroke-width:2.2;stroke-linejoin:round;opacity:.9}"
                ".legend{font:12px sans-serif;fill:#1f2328}</style>"
                + "".join(self.parts) + "</svg>")

    def _lane(self, az: str | None, k: int) -> float | None:
        """The x of lane `k` in the column of hub AZ `az`."""
        if az is None or f"hub-tgw/{az}" not in self.boxes:
            return None
        column = self.boxes[f"hub-tgw/{az}"]
        return column.x + column.w - LANE_RIGHT - k * LANE_STEP

    def _paths(self) -> None:
        lanes: dict[str | None, int] = {}
        tgw_y = self.boxes["tgw"].center[1]
        for n, trace in enumerate(self.data.traces):
            k = lanes.get(trace.hub_az, 0)
            lanes[trace.hub_az] = k + 1
            lane = self._lane(trace.hub_az, k)
            points: list[tuple[float, float]] = []
            crossing = tgw_y - 12 + (n % 8) * 3  # each path crosses the TGW at its own height
            for hop in trace.egress.hops:
                box = self._box_of(hop)
                if box is None:
                    continue
                if box.key.startswith("ws/"):
                    points.append((box.top[0] - 20 + (n % 6) * 8, box.top[1]))
                elif hop.kind == egress.TRANSIT_GATEWAY and points:
                    points.append((points[-1][0], crossing))
                elif box.key.startswith("hub-tgw/") and lane is not None:
                    points += [(lane, crossing), (lane, box.y + box.h)]
                elif lane is not None and box.key.split("/")[0] in ("endpoint", "nat"):
                    points.append((lane, box.center[1]))
                elif box.key == "igw":
                    into = box.x + box.w / 2 - 40 + (n % 16) * 5
                    if lane is not None:  # up out of the hub, then across to the gateway, above the hub's title
                        above = box.y + box.h + 8 + (n % 4) * 2
                        points += [(lane, above), (into, above)]
                    points.append((into, box.y + box.h))
            if len(points) < 2:
                continue
            problems = trace.problems()
            colour = RED if problems else GREEN
            title = "; ".join(problems) if problems else str(trace.egress)
            joined = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            self.parts.append(f'<g class="path-group{" broken" if problems else ""}" data-source="{_e(trace.label)}">'
                              f'<title>{_e(title)}</title><polyline class="path" points="{joined}" '
                              f'stroke="{colour}"/>')
            for x, y in points[1:-1] if trace.egress.end == egress.INTERNET else points[1:]:
                if any(abs(y - b.center[1]) < 1 for b in self.boxes.values() if b.key.split("/")[0] in
                       ("endpoint", "nat")):
                    self.parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.2" fill="{colour}"/>')
            if trace.egress.end != egress.INTERNET:
                x, y = points[-1]
                self.parts.append(f'<path d="M{x - 7:.0f},{y - 7:.0f} l14,14 m0,-14 l-14,14" stroke="{RED}" '
                                  'stroke-width="3"/>')
            self.parts.append("</g>")

    def _box_of(self, hop: egress.Hop) -> _Box | None:
        if hop.kind == egress.SUBNET:
            for spoke in self.data.spokes:
                for az, subnet in spoke.workspace_subnets.items():
                    if subnet == hop.id:
                        return self.boxes.get(f"ws/{spoke.name}/{az}")
            return self.boxes.get(f"hub-tgw/{hop.az}")
        if hop.kind == egress.TRANSIT_GATEWAY:
            return self.boxes.get("tgw")
        if hop.kind == egress.FIREWALL_ENDPOINT:
            return self.boxes.get(f"endpoint/{hop.az}")
        if hop.kind == egress.NAT_GATEWAY:
            return self.boxes.get(f"nat/{hop.az}")
        if hop.kind == egress.INTERNET_GATEWAY:
            return self.boxes.get("igw")
        return None

    def _legend(self) -> None:
        y = HEIGHT - 34
        rows = [(GREEN, "an egress path, drawn along the routes read back from AWS: spoke, Transit Gateway, firewall "
                        "endpoint, NAT gateway, internet gateway (hover a line for its hops)"),
                (RED, "a broken path (X where it stops), or a resource status found missing or drifted (hover for "
                      "why)")]
        for colour, text in rows:
            self.parts.append(f'<line x1="{MARGIN}" y1="{y - 4}" x2="{MARGIN + 28}" y2="{y - 4}" stroke="{colour}" '
                              f'stroke-width="3"/><text x="{MARGIN + 36}" y="{y}" class="legend">{_e(text)}</text>')
            y += 20


# -- the page -----------------------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1f2328;margin:24px auto;
max-width:1400px;padding:0 24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;
padding-bottom:4px}
.meta{color:#57606a}.ok{color:#1a7f37;font-weight:600}.failed,.missing,.drifted,.unreadable,.drop{color:#cf222e;
font-weight:600}.pass{color:#1a7f37;font-weight:600}.unknown{color:#9a6700;font-weight:600}
table{border-collapse:collapse;width:100%;margin:6px 0}td,th{border:1px solid #d0d7de;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f6f8fa}code,.mono{font:12px ui-monospace,monospace}
.picture{overflow-x:auto;border:1px solid #d0d7de;border-radius:6px;padding:8px;background:#fff}
.check{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;margin:10px 0}
.check.failed{border-color:#cf222e;background:#fff5f5}.check h3{margin:0 0 4px;font-size:15px}
ul.evidence{margin:4px 0 0;padding-left:20px}ul.evidence li{font:12px ui-monospace,monospace;margin:2px 0}
.spokes{display:flex;flex-wrap:wrap;gap:16px}.spokecard{flex:1 1 420px;border:1px solid #d0d7de;
border-radius:6px;padding:8px 12px}
.banner{padding:8px 12px;border-radius:6px;font-weight:600}.banner.good{background:#dafbe1}
.banner.bad{background:#ffebe9}
"""



def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")

def _evidence(data: ReportData, item: StatusItem) -> list[str]:
    """What a check's verdict rests on."""
    if item.key == "network/egress":
        lines = []
        for trace in data.traces:
            lines.append(f"{trace.label}: out {trace.egress}")
            lines += [f"{trace.label}: back {path}" for path in trace.returns]
        return lines
    return []


def render(data: ReportData) -> str:
    """The whole page."""
    picture = _Picture(data).draw()
    checks = [i for i in data.items if i.kind == "check"]
    resources = [i for i in data.items if i.kind != "check"]
    bad = [i for i in data.items if i.status not in OK_STATES]
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>provision status: {_e(data.deployment)}</title>", f"<style>{_CSS}</style></head><body>",
             f"<h1>Deployment {_e(data.deployment)}</h1>",
             f'<p class="meta">{_e(data.region)}, hub {_e(data.hub_cidr)} over {_count(len(data.hub_azs), "AZ")}, '
             f"{_count(len(data.spokes), 'spoke')}; read from AWS at {_e(data.generated_at)} by "
             "<code>provision status</code>"
             + (f"; firewall policy {_e(data.policy)} ({_e(data.rule_order)}, default actions "
                f"{_e(', '.join(data.default_actions) or 'none')})" if data.policy else "") + "</p>"]
    if data.healthy:
        parts.append('<p class="banner good" id="verdict">Healthy: every resource present and as configured, every '
                     "check passed.</p>")
    else:
        parts.append(f'<p class="banner bad" id="verdict">{len(bad)} of {len(data.items)} missing, drifted or '
                     "failed (in red below).</p>")
    for line in data.unreadable:
        parts.append(f'<p class="banner bad">Could not read {_e(line)}</p>')
    parts += ['<h2 id="picture-title">The deployment</h2>', f'<div class="picture">{picture}</div>']
    parts.append('<h2>Checks</h2><div id="checks">')
    for item in checks:
        parts.append(f'<div class="check {_e(item.status)}" data-check="{_e(item.key)}">'
                     f'<h3><span class="{_e(item.status)}">{_e(item.status.upper())}</span> {_e(item.key)}: '
                     f"{_e(item.name)}</h3>")
        if item.drift:
            parts.append('<ul class="evidence problems">' + "".join(
                f'<li class="failed">{_e(p)}</li>' for p in item.drift) + "</ul>")
        evidence = _evidence(data, item)
        if evidence:
            back = sum(len(t.returns) for t in data.traces)
            parts.append("<details" + (" open" if item.drift else "") + "><summary>Evidence: "
                         f"{len(data.traces)} paths walked out along the routes read back, and {back} ways back"
                         "</summary>"
                         '<ul class="evidence">' + "".join(f"<li>{_e(e)}</li>" for e in evidence) + "</ul></details>")
        parts.append("</div>")
    if not checks:
        parts.append("<p>No checks ran.</p>")
    parts.append("</div>")
    parts.append('<h2>Allowlists</h2><div class="spokes" id="allowlists">')
    for spoke in data.spokes:
        parts.append(f'<div class="spokecard" data-spoke="{_e(spoke.name)}"><h3>spoke {_e(spoke.name)} '
                     f'<span class="meta">{_e(spoke.cidr)}</span></h3>'
                     "<table><tr><th>may reach (TLS SNI / HTTP Host)</th><th>the live policy, a TLS flow from "
                     "this spoke</th></tr>")
        for name, verdict in spoke.allowlist:
            parts.append(f'<tr><td class="mono">{_e(name)}</td><td class="{_e(verdict)}">{_e(verdict)}</td></tr>')
        parts.append("</table>")
        if spoke.dns_rules:
            parts.append("<p>DNS Firewall on its VPC:</p><table><tr><th>group</th><th>priority</th><th>rule</th>"
                         "<th>action</th><th>domain list</th></tr>")
            for rule in sorted(spoke.dns_rules, key=lambda r: (r.association_priority, r.priority)):
                parts.append(f"<tr><td>{_e(rule.group)} ({rule.association_priority})</td><td>{rule.priority}</td>"
                             f"<td>{_e(rule.name)}</td><td>{_e(rule.action)}</td><td>{_e(rule.domain_list)} "
                             f"({len(rule.domains)} names)</td></tr>")
            parts.append("</table>")
        parts.append("</div>")
    parts.append("</div>")
    parts.append('<h2>Resources</h2><table id="resources"><tr><th>status</th><th>resource</th><th>id</th>'
                 "<th>what differs</th></tr>")
    for item in resources:
        parts.append(f'<tr data-key="{_e(item.key)}"><td class="{_e(item.status)}">{_e(item.status)}</td>'
                     f"<td>{_e(item.key)}</td><td class=\"mono\">{_e(item.id or item.name)}</td>"
                     f"<td>{_e('; '.join(item.drift))}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)
