"""Bad input: one clear line naming the setting and the fix, exit code 2, and no cloud call."""

import pytest

from provisioner.design.config import DEFAULT_EXTRA_FQDNS, TEMPLATE, ConfigError, build_config, parse_toml
from tests.conftest import ACCOUNT_ID

GOOD = f'deployment = "acme"\ndatabricks_account_id = "{ACCOUNT_ID}"\n'
SPOKE_A = "[[spokes]]\nname='a'\ncidr='10.1.0.0/16'\n"

BAD = [
    # (config text, words the one-line error must contain)
    ("deployment = \n", ["not valid TOML"]),
    (GOOD + "regoin = 'eu-west-1'\n", ["unknown setting `regoin`", "did you mean `region`"]),
    (GOOD + "legacy_hive_metastore = false\n", ["unknown setting", "[firewall]"]),
    (GOOD + "[firewall]\nlog_retention = 30\n", ["firewall.log_retention", "log_retention_days"]),
    (GOOD + "hub_availability_zones = '2'\n", ["hub_availability_zones must be a whole number"]),
    (GOOD + "hub_availability_zones = true\n", ["hub_availability_zones must be a whole number"]),
    (GOOD + "hub_cidr = '10.10.0.0/33'\n", ["hub_cidr", "not a CIDR"]),
    (GOOD + "hub_cidr = '10.10.0.1/16'\n", ["host bits", "10.10.0.0/16"]),
    (GOOD + "hub_cidr = '8.8.0.0/16'\n", ["not a private range"]),
    (GOOD + "hub_cidr = '10.173.0.0/16'\n", ["overlaps", "hub_cidr"]),
    (GOOD + "[[spokes]]\nname='a'\ncidr='10.1.0.0/16'\n[[spokes]]\nname='b'\ncidr='10.1.128.0/17'\n",
     ["spokes[1].cidr", "overlaps spokes[0].cidr"]),
    (GOOD + "[[spokes]]\nname='a'\ncidr='10.1.0.0/24'\n", ["/27 workspace subnets", "/17 to /26"]),
    (GOOD + "[[spokes]]\nname='a'\ncidr='10.0.0.0/15'\n", ["/16"]),
    (GOOD + "hub_cidr = '10.10.0.0/26'\n", ["hub_cidr", "/28"]),
    (GOOD + "region = 'mars-1'\n", ["region `mars-1` is not supported", "eu-central-1"]),
    ('databricks_account_id = "not-a-uuid"\n', ["not a UUID"]),
    (f'deployment = "Acme_Corp"\ndatabricks_account_id = "{ACCOUNT_ID}"\n', ["deployment `Acme_Corp`", "lowercase"]),
    (f'deployment = "a-very-long-deployment-name"\ndatabricks_account_id = "{ACCOUNT_ID}"\n', ["at most 20"]),
    (f'deployment = "sg-prod"\ndatabricks_account_id = "{ACCOUNT_ID}"\n', ["deployment `sg-prod`", "`sg-`"]),
    (f'deployment = "sthree-x"\ndatabricks_account_id = "{ACCOUNT_ID}"\n', ["`sthree-`", "reserves"]),
    (GOOD + "[[spokes]]\nname='x'\ncidr='10.1.0.0/16'\n[[spokes]]\nname='x'\ncidr='10.2.0.0/16'\n",
     ["used twice"]),
    (GOOD + "[[spokes]]\nname='" + "b" * 50 + "'\ncidr='10.1.0.0/16'\n", ["spokes[0].name", "at most"]),
    (GOOD + "[[spokes]]\nname='a'\n", ["spokes[0] has no `cidr`"]),
    (f'deployment = "{"d" * 20}"\ndatabricks_account_id = "{ACCOUNT_ID}"\n[[spokes]]\nname="{"s" * 31}"\n'
     "cidr='10.1.0.0/16'\n", ["spokes[0].name", "at most 30"]),
    (GOOD + "[[spokes]]\nname='a'\ncidr='10.1.0.0/16'\nzone='x'\n", ["unknown setting `spokes[0].zone`"]),
    (GOOD + "hub_availability_zones = 5\n", ["out of range", "1 to 3"]),
    (GOOD + "hub_availability_zones = 0\n", ["out of range"]),
    (GOOD + "region = 'us-west-1'\nhub_availability_zones = 3\n", ["us-west-1 has 2 availability zones"]),
    (GOOD + "[firewall]\nlog_retention_days = 10\n", ["not a CloudWatch retention period"]),
    (GOOD + "[firewall]\nextra_allowed_fqdns = ['not a domain']\n", ["not a domain name"]),
    (GOOD + "[workspace]\ncrossaccount_policy_type = 'managed'\n", ["crossaccount_policy_type", "customer"]),
    (GOOD + "[workspace]\npat_lifetime_seconds = 10\n", ["pat_lifetime_seconds", "out of range"]),
    (GOOD + "[tags]\nManagedBy = 'me'\n", ["tags.ManagedBy", "set by provision"]),
    (GOOD + "[tags]\nTeam = 3\n", ["tags.Team must be a string"]),
    (GOOD + SPOKE_A + "extra_allowed_fqdns = ['ok.example.com', 'not a domain']\n",
     ["spokes[0].extra_allowed_fqdns[1]", "not a domain name"]),
    (GOOD + SPOKE_A + "extra_allowed_fqdns = 'example.com'\n", ["spokes[0].extra_allowed_fqdns must be a list"]),
    (GOOD + "[dns_firewall]\nmode = 'deny'\n", ["dns_firewall.mode `deny`", "block, alert, off"]),
    (GOOD + "[serverless]\negress = 'open'\n", ["serverless.egress `open`", "restricted, full"]),
    (GOOD + "[private_link]\npublic_access = false\n", ["private_link.public_access", "PrivateLink is off"]),
    (GOOD + "private_link = 'yes'\n", ["private_link must be true, false or a [private_link] table", "'yes'"]),
    (GOOD + "[serverless]\negres = 'full'\n", ["unknown setting `serverless.egres`", "egress"]),
    (f'deployment = ""\ndatabricks_account_id = "{ACCOUNT_ID}"\n', ["deployment is empty"]),
]


def without_privatelink_services(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The region table as config reads it, with `name`'s PrivateLink endpoint services taken out."""
    import dataclasses

    from provisioner.design import config as config_module
    from provisioner.design.regions import all_regions

    table = dict(all_regions())
    table[name] = dataclasses.replace(table[name], privatelink_workspace_service="", privatelink_relay_service="")
    monkeypatch.setattr(config_module, "all_regions", lambda: table)


def test_private_link_in_a_region_without_endpoint_services_is_one_line_exit_2(workdir, calls, monkeypatch):
    without_privatelink_services(monkeypatch, "ap-northeast-1")
    workdir.write_config(GOOD + "private_link = true\nregion = 'ap-northeast-1'\n")
    result = workdir.run("plan")
    assert result.code == 2, result
    line = result.err.strip()
    assert "\n" not in line and "ap-northeast-1 has no Databricks PrivateLink endpoint services" in line
    assert "eu-central-1" in line and "ap-northeast-1," not in line
    assert calls.calls == []


@pytest.mark.parametrize(("text", "words"), BAD, ids=[w[0] for _, w in BAD])
def test_bad_config_is_one_line_exit_2_and_no_cloud_call(workdir, calls, text, words):
    workdir.write_config(text)
    for command in (["plan"], ["up"]):
        result = workdir.run(*command)
        assert result.code == 2, result
        line = result.err.strip()
        assert "\n" not in line and line.startswith("error: ")
        for word in words:
            assert word in line
    assert calls.calls == []


def test_missing_explicit_config_file(workdir):
    result = workdir.run("plan", "-c", "nope.toml")
    assert result.code == 2
    assert "nope.toml does not exist" in result.err and "provision init" in result.err


def test_up_without_account_id_exit_2(workdir, calls):
    workdir.write_config('deployment = "acme"\n')
    result = workdir.run("up")
    assert result.code == 2 and "DATABRICKS_ACCOUNT_ID" in result.err
    assert calls.calls == []


def test_defaults_are_the_guides():
    config = build_config({"databricks_account_id": ACCOUNT_ID})
    assert config.region == "eu-central-1"
    assert config.hub_cidr == "10.10.0.0/16" and config.hub_availability_zones == 2
    assert [(s.name, s.cidr) for s in config.spokes] == [("main", "10.173.0.0/16")]
    assert config.extra_allowed_fqdns == ("pypi.org", "files.pythonhosted.org", "cran.r-project.org")
    assert config.legacy_hive_metastore and config.pat_lifetime_seconds == 86400
    assert config.crossaccount_policy_type == "restricted" and config.firewall_log_retention_days == 365
    assert config.deployment.startswith("demo") and len(config.deployment) == 10 and config.deployment_generated
    assert config.spokes[0].extra_allowed_fqdns == () and config.dns_firewall_mode == "block"
    assert config.warnings == ()


def test_private_link_settings():
    assert not build_config({"databricks_account_id": ACCOUNT_ID}).private_link
    short = build_config({"databricks_account_id": ACCOUNT_ID, "private_link": True})
    assert short.private_link and short.private_link_public_access
    table = build_config({"databricks_account_id": ACCOUNT_ID,
                          "private_link": {"enabled": True, "public_access": False}})
    assert table.private_link and not table.private_link_public_access


def test_template_parses_to_the_defaults():
    """`provision init`'s file, uncommented, is valid and equals the defaults."""
    uncommented = "\n".join(line[2:] if (line.startswith("# ") and "=" in line) or line.startswith("# [") else line
                            for line in TEMPLATE.splitlines())
    raw = parse_toml(uncommented, "template")
    config = build_config(raw)
    default = build_config({"databricks_account_id": "00000000-0000-0000-0000-000000000000"},
                           deployment="demo1a2b3c")
    assert config.spokes == default.spokes and config.hub_cidr == default.hub_cidr
    assert config.extra_allowed_fqdns == default.extra_allowed_fqdns
    assert config.dns_firewall_mode == default.dns_firewall_mode
    assert config.serverless_egress == default.serverless_egress == "restricted"
    assert config.firewall_log_retention_days == default.firewall_log_retention_days
    assert config.crossaccount_policy_type == default.crossaccount_policy_type


def test_env_overrides(workdir, monkeypatch):
    workdir.write_config('deployment = "acme"\n')
    monkeypatch.setenv("PROVISION_REGION", "mars-1")
    assert "mars-1" in workdir.run("plan").err


def test_init_writes_template_and_refuses_to_overwrite(workdir):
    assert workdir.run("init").code == 0
    assert (workdir.path / "provision.toml").read_text() == TEMPLATE
    again = workdir.run("init")
    assert again.code == 2 and "--force" in again.err


def _build(**raw):
    return build_config({"deployment": "acme", "databricks_account_id": ACCOUNT_ID, **raw})


OTHER_SPOKE = {"name": "z", "cidr": "10.9.0.0/16"}


@pytest.mark.parametrize(("extras", "expected"), [
    (None, ()),
    ([], ()),
    (["example.com", ".example.org"], ("example.com", ".example.org")),
    (["example.com", ".example.org", "example.com"], ("example.com", ".example.org")),  # a repeat is dropped
    (["a-b.example.co.uk", "x" * 63 + ".com"], ("a-b.example.co.uk", "x" * 63 + ".com")),
])
def test_a_spoke_may_have_its_own_domains(extras, expected):
    spoke = {"name": "a", "cidr": "10.1.0.0/16", **({} if extras is None else {"extra_allowed_fqdns": extras})}
    config = _build(spokes=[OTHER_SPOKE, spoke])
    assert config.spokes[1].extra_allowed_fqdns == expected
    assert config.spokes[0].extra_allowed_fqdns == ()
    assert config.extra_allowed_fqdns == DEFAULT_EXTRA_FQDNS  # the deployment-wide list is untouched


@pytest.mark.parametrize(("extras", "words"), [
    (["ok.example.com", "not a domain"], ["spokes[1].extra_allowed_fqdns[1] `not a domain` is not a domain name",
                                          "`.example.com`"]),
    (["*.example.com"], ["spokes[1].extra_allowed_fqdns[0] `*.example.com` is not a domain name"]),
    (["https://example.com"], ["spokes[1].extra_allowed_fqdns[0]", "not a domain name"]),
    (["localhost"], ["spokes[1].extra_allowed_fqdns[0]", "not a domain name"]),
    (["example..com"], ["spokes[1].extra_allowed_fqdns[0]", "not a domain name"]),
    ([("a" * 63 + ".") * 4 + "com"], ["spokes[1].extra_allowed_fqdns[0]", "at most 253"]),
    ([3], ["spokes[1].extra_allowed_fqdns[0] must be a string"]),
    ("example.com", ["spokes[1].extra_allowed_fqdns must be a list"]),
    ({"host": "example.com"}, ["spokes[1].extra_allowed_fqdns must be a list"]),
])
def test_a_spokes_bad_domain_names_the_setting(extras, words):
    with pytest.raises(ConfigError) as caught:
        _build(spokes=[OTHER_SPOKE, {"name": "a", "cidr": "10.1.0.0/16", "extra_allowed_fqdns": extras}])
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize(("section", "mode"), [
    (None, "block"),
    ({}, "block"),
    ({"mode": "block"}, "block"),
    ({"mode": "alert"}, "alert"),
    ({"mode": "off"}, "off"),
])
def test_dns_firewall_modes(section, mode):
    assert _build(**({} if section is None else {"dns_firewall": section})).dns_firewall_mode == mode


@pytest.mark.parametrize(("section", "words"), [
    ({"mode": "deny"}, ["dns_firewall.mode `deny` is not one of: block, alert, off", '(default "block")']),
    ({"mode": "Block"}, ["dns_firewall.mode `Block` is not one of"]),
    ({"mode": ""}, ["dns_firewall.mode `` is not one of"]),
    ({"mode": False}, ["dns_firewall.mode must be a string"]),
    ({"mod": "block"}, ["unknown setting `dns_firewall.mod`", "did you mean `mode`"]),
])
def test_unknown_dns_firewall_mode(section, words):
    with pytest.raises(ConfigError) as caught:
        _build(dns_firewall=section)
    for word in words:
        assert word in str(caught.value)


@pytest.mark.parametrize("name", ["", "   "])
def test_an_empty_deployment_name_is_refused_not_replaced(name):
    """An empty name in the file is a mistake to point at, not a request for a generated one."""
    with pytest.raises(ConfigError, match="deployment is empty; name the deployment"):
        build_config({"deployment": name, "databricks_account_id": ACCOUNT_ID}, deployment="demo1a2b3c")
    unnamed = build_config({"databricks_account_id": ACCOUNT_ID}, deployment="demo1a2b3c")
    assert unnamed.deployment == "demo1a2b3c" and unnamed.deployment_generated


@pytest.mark.parametrize(("raw", "expected"), [
    ({}, []),
    ({"hub_availability_zones": 2}, []),
    ({"hub_availability_zones": 3}, []),
    ({"dns_firewall": {"mode": "block"}}, []),
    ({"hub_availability_zones": 1}, [["hub_availability_zones = 1", "one NAT gateway and one firewall endpoint",
                                      "use 2 or more"]]),
    ({"dns_firewall": {"mode": "alert"}}, [['dns_firewall.mode = "alert"', "logged, not refused", 'use "block"']]),
    ({"dns_firewall": {"mode": "off"}}, [['dns_firewall.mode = "off"', "resolve any name"]]),
    ({"hub_availability_zones": 1, "dns_firewall": {"mode": "alert"}},
     [["hub_availability_zones = 1"], ['dns_firewall.mode = "alert"']]),
])
def test_warnings_for_valid_but_weaker_settings(raw, expected):
    warnings = _build(**raw).warnings
    assert len(warnings) == len(expected), warnings
    for warning, words in zip(warnings, expected, strict=True):
        assert "\n" not in warning
        for word in words:
            assert word in warning
