"""The address plan, as the guide's cidrsubnet() layout, extended per hub AZ."""

import pytest

from provisioner.design.cidr import cidrsubnet, hub_cidrs, spoke_cidrs


@pytest.mark.parametrize(
    ("cidr", "newbits", "netnum", "expected"),
    [
        ("10.173.0.0/16", 3, 0, "10.173.0.0/19"),
        ("10.173.0.0/16", 3, 3, "10.173.96.0/19"),
        ("10.10.0.0/16", 3, 2, "10.10.64.0/19"),
        ("10.10.0.0/16", 4, 8, "10.10.128.0/20"),
        ("192.168.0.0/23", 3, 7, "192.168.1.192/26"),
    ],
)
def test_cidrsubnet_matches_terraform(cidr, newbits, netnum, expected):
    assert cidrsubnet(cidr, newbits, netnum) == expected


def test_cidrsubnet_out_of_range():
    with pytest.raises(ValueError):
        cidrsubnet("10.0.0.0/16", 3, 8)


def test_spoke_layout_is_the_guides():
    s = spoke_cidrs("10.173.0.0/16")
    assert s.workspace_subnets == ("10.173.0.0/19", "10.173.32.0/19")
    assert s.tgw_subnets == ("10.173.64.0/19", "10.173.96.0/19")
    # PrivateLink endpoint subnets: the halves of the fifth slot, so nothing above moves.
    assert s.privatelink_subnets == ("10.173.128.0/20", "10.173.144.0/20")
    small = spoke_cidrs("10.1.0.0/23")
    assert small.privatelink_subnets == ("10.1.1.0/27", "10.1.1.32/27")  # /28 is the smallest AWS subnet


def test_privatelink_services_come_from_the_region_table():
    from provisioner.design.regions import all_regions

    # terraform-databricks-sra aws/tf/variables.tf (`workspace_config`, `scc_relay_config`) lists services for
    # every commercial region of the table.
    assert all(r.has_privatelink for r in all_regions().values())
    for name, r in all_regions().items():
        for service in (r.privatelink_workspace_service, r.privatelink_relay_service):
            assert service.startswith(f"com.amazonaws.vpce.{name}.vpce-svc-"), (name, service)
    london = all_regions()["eu-west-2"]
    assert london.privatelink_workspace_service == "com.amazonaws.vpce.eu-west-2.vpce-svc-01148c7cdc1d1326c"
    assert london.privatelink_relay_service == "com.amazonaws.vpce.eu-west-2.vpce-svc-05279412bf5353a45"
    tokyo = all_regions()["ap-northeast-1"]
    assert tokyo.privatelink_workspace_service == "com.amazonaws.vpce.ap-northeast-1.vpce-svc-02691fd610d24fd64"
    assert tokyo.privatelink_relay_service == "com.amazonaws.vpce.ap-northeast-1.vpce-svc-02aa633bda3edbec0"
    frankfurt = all_regions()["eu-central-1"]
    assert frankfurt.privatelink_workspace_service == "com.amazonaws.vpce.eu-central-1.vpce-svc-081f78503812597f7"
    assert frankfurt.privatelink_relay_service == "com.amazonaws.vpce.eu-central-1.vpce-svc-08e5dfca9572c85c4"


@pytest.mark.parametrize(
    ("azs", "expected"),
    [
        (1, [("10.10.0.0/19", "10.10.32.0/19", "10.10.64.0/19")]),
        (2, [("10.10.0.0/19", "10.10.32.0/19", "10.10.64.0/19"),
             ("10.10.96.0/19", "10.10.128.0/19", "10.10.160.0/19")]),
        (3, [("10.10.0.0/20", "10.10.16.0/20", "10.10.32.0/20"), ("10.10.48.0/20", "10.10.64.0/20", "10.10.80.0/20"),
             ("10.10.96.0/20", "10.10.112.0/20", "10.10.128.0/20")]),
    ],
)
def test_hub_layout_per_az(azs, expected):
    got = [(h.tgw_subnet, h.nat_subnet, h.firewall_subnet) for h in hub_cidrs("10.10.0.0/16", azs)]
    assert got == expected


@pytest.mark.parametrize(
    ("azs", "newbits", "first_az"),
    [
        (2, 4, ("10.10.0.0/20", "10.10.16.0/20", "10.10.32.0/20")),  # a 3-AZ hub shrunk to 2 keeps its /20s
        (1, 4, ("10.10.0.0/20", "10.10.16.0/20", "10.10.32.0/20")),
        (4, 4, ("10.10.0.0/20", "10.10.16.0/20", "10.10.32.0/20")),
        (2, 3, ("10.10.0.0/19", "10.10.32.0/19", "10.10.64.0/19")),
        (2, 0, ("10.10.0.0/19", "10.10.32.0/19", "10.10.64.0/19")),  # 0: a new hub's split
    ],
)
def test_a_kept_hub_split_does_not_move_the_subnets(azs, newbits, first_az):
    got = hub_cidrs("10.10.0.0/16", azs, newbits)
    assert len(got) == azs and (got[0].tgw_subnet, got[0].nat_subnet, got[0].firewall_subnet) == first_az
    if newbits == 4:  # the same subnets as the hub had with more AZs
        assert got == hub_cidrs("10.10.0.0/16", 4)[:azs]


def test_a_split_has_room_for_so_many_azs_and_is_read_back_from_subnets():
    from provisioner.design.cidr import hub_azs_room, recorded_hub_newbits

    assert (hub_azs_room(3), hub_azs_room(4)) == (2, 5)
    with pytest.raises(ValueError, match="room for 2 AZs"):
        hub_cidrs("10.10.0.0/16", 3, 3)
    assert recorded_hub_newbits("10.10.0.0/16", ["10.10.48.0/20"]) == 4
    assert recorded_hub_newbits("10.10.0.0/16", ["10.99.0.0/19", "bad", "10.10.96.0/19"]) == 3
    assert recorded_hub_newbits("10.10.0.0/16", []) is None
    assert recorded_hub_newbits("10.10.0.0/16", ["10.20.0.0/20"]) is None  # another hub CIDR: nothing to keep


@pytest.mark.parametrize(
    ("recorded", "azs", "bits", "refused"),
    [
        ({}, 3, 0, False),  # a new hub
        ({"hub/tgw-subnet/eu-central-1a": "10.10.0.0/20"}, 2, 4, False),  # 3 AZs made, 2 now
        ({"hub/nat-subnet/eu-central-1a": "10.10.32.0/19"}, 1, 3, False),
        ({"hub/firewall-subnet/eu-central-1b": "10.10.160.0/19"}, 3, 0, True),  # made for 2: no room for 3
        ({"spoke/main/workspace-subnet/eu-central-1a": "10.10.0.0/20"}, 2, 0, False),  # not the hub's
    ],
)
def test_the_config_takes_the_split_the_hub_was_made_with(tmp_path, recorded, azs, bits, refused):
    from provisioner.design.config import ConfigError, build_config
    from provisioner.settings import with_hub_split
    from provisioner.state import load

    state = load(tmp_path, "split")
    for key, cidr in recorded.items():
        state.record(key, "subnet-1", outputs={"cidr": cidr})
    config = build_config({"deployment": "split", "hub_availability_zones": azs})
    if refused:
        with pytest.raises(ConfigError, match=f"hub_availability_zones = {azs} does not fit the hub"):
            with_hub_split(config, state)
        return
    assert with_hub_split(config, state).hub_subnet_bits == bits
