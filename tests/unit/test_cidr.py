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
